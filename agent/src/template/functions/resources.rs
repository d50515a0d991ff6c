//! Scope and resource-id functions: `resourceGroup()`, `subscription()`,
//! `tenant()`, `environment()`, `resourceId()` and its subscription, tenant
//! and extension forms, and `pickZones()`.

use serde_json::{json, Value};

use super::{arity, int, string, text, Scope};

use crate::model::LAB_TENANT_ID as LAB_TENANT;

/// Regions with availability zones (Azure's list of regions with zones, the
/// ones a lab user is likely to name); elsewhere `pickZones` returns `[]`.
const ZONAL_REGIONS: &[&str] = &[
    "westeurope",
    "northeurope",
    "francecentral",
    "germanywestcentral",
    "uksouth",
    "swedencentral",
    "switzerlandnorth",
    "norwayeast",
    "polandcentral",
    "italynorth",
    "eastus",
    "eastus2",
    "centralus",
    "southcentralus",
    "westus2",
    "westus3",
    "canadacentral",
    "brazilsouth",
    "australiaeast",
    "japaneast",
    "koreacentral",
    "southeastasia",
    "eastasia",
    "centralindia",
    "southafricanorth",
    "uaenorth",
    "qatarcentral",
    "israelcentral",
    "mexicocentral",
    "newzealandnorth",
    "spaincentral",
];

pub(super) fn call(scope: &Scope, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let a = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    Some(match name {
        "resourcegroup" => arity(name, args, 0, 0).map(|_| {
            json!({
                "id": format!("/subscriptions/{}/resourceGroups/{}", scope.subscription, scope.resource_group),
                "name": scope.resource_group,
                "type": "Microsoft.Resources/resourceGroups",
                "location": scope.location,
                "managedBy": null,
                "tags": {},
                "properties": { "provisioningState": "Succeeded" }
            })
        }),
        "subscription" => arity(name, args, 0, 0).map(|_| {
            json!({
                "id": format!("/subscriptions/{}", scope.subscription),
                "subscriptionId": scope.subscription,
                "tenantId": LAB_TENANT,
                "displayName": "Lab subscription"
            })
        }),
        "tenant" => arity(name, args, 0, 0).map(|_| {
            json!({
                "countryCode": "US",
                "displayName": "Lab tenant",
                "id": format!("/tenants/{LAB_TENANT}"),
                "tenantId": LAB_TENANT
            })
        }),
        "managementgroup" => Err(
            "managementGroup() can only be used in a deployment at management group scope; this deployment \
             targets a resource group"
                .into(),
        ),
        "environment" => arity(name, args, 0, 0).map(|_| environment()),
        "resourceid" => arity(name, args, 2, usize::MAX).and_then(|_| resource_id(scope, args)),
        "subscriptionresourceid" => arity(name, args, 2, usize::MAX).and_then(|_| {
            let args: Vec<String> = args.iter().map(text).collect();
            let (sub, rest) = if is_type(&args[0]) {
                (scope.subscription.as_str(), &args[..])
            } else {
                (args[0].as_str(), &args[1..])
            };
            Ok(json!(format!("/subscriptions/{sub}{}", provider_path(rest)?)))
        }),
        "tenantresourceid" => arity(name, args, 2, usize::MAX).and_then(|_| {
            let args: Vec<String> = args.iter().map(text).collect();
            Ok(json!(provider_path(&args)?))
        }),
        "extensionresourceid" => arity(name, args, 3, usize::MAX).and_then(|_| {
            let args: Vec<String> = args.iter().map(text).collect();
            Ok(json!(format!(
                "{}{}",
                args[0].trim_end_matches('/'),
                provider_path(&args[1..])?
            )))
        }),
        "pickzones" => arity(name, args, 3, 5).and_then(|_| {
            let location = string(name, &a(2))?.to_lowercase().replace(' ', "");
            let count = if args.len() > 3 { int(name, &a(3))? } else { 1 };
            let offset = if args.len() > 4 { int(name, &a(4))? } else { 0 };
            if !ZONAL_REGIONS.contains(&location.as_str()) {
                return Ok(json!([]));
            }
            Ok(json!((0..count.clamp(0, 3))
                .map(|i| ((i + offset.rem_euclid(3)) % 3 + 1).to_string())
                .collect::<Vec<_>>()))
        }),
        _ => return None,
    })
}

fn is_type(s: &str) -> bool {
    s.split_once('/')
        .is_some_and(|(ns, t)| ns.contains('.') && !t.is_empty())
}

/// `/providers/Namespace/type1/name1/type2/name2`.
fn provider_path(args: &[String]) -> Result<String, String> {
    let (ty, names) = args
        .split_first()
        .ok_or("a resource type such as 'Microsoft.Network/virtualNetworks' is needed")?;
    // ARM tolerates a trailing '/' ('Microsoft.Network/networkSecurityGroups/').
    let (ns, types) = ty
        .trim_end_matches('/')
        .split_once('/')
        .ok_or_else(|| format!("'{ty}' is not a resource type (Namespace/type)"))?;
    let types: Vec<&str> = types.split('/').collect();
    if types.len() != names.len() {
        return Err(format!(
            "the type '{ty}' has {} segment(s) but {} name(s) were given",
            types.len(),
            names.len()
        ));
    }
    let mut id = format!("/providers/{ns}");
    for (t, n) in types.iter().zip(names) {
        id.push_str(&format!("/{t}/{n}"));
    }
    Ok(id)
}

/// `resourceId([subscriptionId], [resourceGroupName], type, name1, name2, ...)`.
pub(crate) fn resource_id(scope: &Scope, args: &[Value]) -> Result<Value, String> {
    let args: Vec<String> = args.iter().map(text).collect();
    let at = args
        .iter()
        .position(|a| is_type(a))
        .ok_or("resourceId needs a resource type such as 'Microsoft.Network/virtualNetworks'")?;
    let (sub, rg) = match at {
        0 => (scope.subscription.clone(), scope.resource_group.clone()),
        1 => (scope.subscription.clone(), args[0].clone()),
        2 => (args[0].clone(), args[1].clone()),
        _ => {
            return Err(
                "resourceId takes at most a subscription and a resource group before the type"
                    .into(),
            )
        }
    };
    Ok(json!(format!(
        "/subscriptions/{sub}/resourceGroups/{rg}{}",
        provider_path(&args[at..])?
    )))
}

/// `environment()` of the AzureCloud, as Azure's reference page prints it.
fn environment() -> Value {
    json!({
        "name": "AzureCloud",
        "gallery": "https://gallery.azure.com/",
        "graph": "https://graph.windows.net/",
        "portal": "https://portal.azure.com",
        "graphAudience": "https://graph.windows.net/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "batch": "https://batch.core.windows.net/",
        "media": "https://rest.media.azure.net",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
        "resourceManager": "https://management.azure.com/",
        "authentication": {
            "loginEndpoint": "https://login.microsoftonline.com/",
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD"
        },
        "suffixes": {
            "acrLoginServer": ".azurecr.io",
            "azureDatalakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
            "azureDatalakeStoreFileSystem": "azuredatalakestore.net",
            "azureFrontDoorEndpointSuffix": "azurefd.net",
            "keyvaultDns": ".vault.azure.net",
            "sqlServerHostname": ".database.windows.net",
            "storage": "core.windows.net"
        }
    })
}
