//! Bring incoming resources into the stored form: canonical type spelling,
//! normalised location, and child resources merged into their parents.

use serde_json::{json, Map, Value};

use crate::model::{
    normalize_location, AzureError, GenericResource, LabState, RecordType, ResourceKind,
    DEFAULT_LOCATION, GLOBAL_LOCATION,
};

/// Child types the lab folds into their parent resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildKind {
    /// `Microsoft.Network/virtualNetworks/subnets`: an entry of `properties.subnets`.
    Subnet,
    /// `Microsoft.Network/virtualNetworks/virtualNetworkPeerings`: an entry of
    /// `properties.virtualNetworkPeerings`.
    VnetPeering,
    /// `Microsoft.Web/sites/config` `web` (-> `siteConfig`) or `appsettings`.
    SiteConfig,
    /// `Microsoft.Web/sites/networkConfig` `virtualNetwork` (-> `virtualNetworkSubnetId`).
    SiteNetworkConfig,
    /// `Microsoft.Network/privateDnsZones/{A,AAAA,CNAME,TXT}`: an entry of
    /// `properties.recordSets` (`name`, `type`, `properties`).
    DnsRecordSet(RecordType),
    /// `Microsoft.Network/privateDnsZones/virtualNetworkLinks`: an entry of
    /// `properties.virtualNetworkLinks`.
    DnsZoneLink,
    /// `Microsoft.Compute/virtualMachines/extensions`: an entry of
    /// `properties.extensions` (`name`, `properties`).
    VmExtension,
    /// `Microsoft.Network/privateEndpoints/privateDnsZoneGroups`: an entry of
    /// the endpoint's `properties.privateDnsZoneGroups`.
    PrivateDnsZoneGroup,
    /// `Microsoft.KeyVault/vaults/secrets`: an entry of the vault's
    /// `properties.secrets` (`name`, `properties.value`).
    VaultSecret,
    /// `Microsoft.Network/expressRouteCircuits/peerings`: an entry of the
    /// circuit's `properties.peerings` (`name`, `properties`).
    CircuitPeering,
}

/// The `Microsoft.Web/sites/config` names merged into the site; any other
/// (`logs`, `authsettingsV2`, `slotConfigNames`, ...) is kept as a record.
pub(crate) fn merged_site_config(name: &str) -> bool {
    ["web", "appsettings", "azurestorageaccounts"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

impl ChildKind {
    pub fn from_type(type_: &str) -> Option<ChildKind> {
        let t = type_.to_ascii_lowercase();
        match t.as_str() {
            "microsoft.network/virtualnetworks/subnets" => Some(ChildKind::Subnet),
            "microsoft.network/virtualnetworks/virtualnetworkpeerings" => {
                Some(ChildKind::VnetPeering)
            }
            "microsoft.web/sites/config" => Some(ChildKind::SiteConfig),
            "microsoft.web/sites/networkconfig" => Some(ChildKind::SiteNetworkConfig),
            "microsoft.network/privatednszones/virtualnetworklinks" => Some(ChildKind::DnsZoneLink),
            "microsoft.compute/virtualmachines/extensions" => Some(ChildKind::VmExtension),
            "microsoft.network/privateendpoints/privatednszonegroups" => {
                Some(ChildKind::PrivateDnsZoneGroup)
            }
            "microsoft.keyvault/vaults/secrets" => Some(ChildKind::VaultSecret),
            "microsoft.network/expressroutecircuits/peerings" => Some(ChildKind::CircuitPeering),
            _ => t
                .strip_prefix("microsoft.network/privatednszones/")
                .and_then(RecordType::parse)
                .map(ChildKind::DnsRecordSet),
        }
    }
}

/// A top-level resource in stored form.
pub(crate) fn top_level(
    mut res: GenericResource,
    canonical: &'static str,
) -> Result<GenericResource, AzureError> {
    if !res.id.full_type().eq_ignore_ascii_case(&res.type_) {
        return Err(AzureError::bad_request(
            "InvalidResourceType",
            format!(
                "Resource '{}' has type '{}' but its id '{}' names type '{}'.",
                res.name,
                res.type_,
                res.id,
                res.id.full_type()
            ),
        ));
    }
    let (namespace, type_) = canonical
        .split_once('/')
        .expect("canonical types have a namespace");
    res.id.namespace = namespace.to_string();
    res.id.segments[0].0 = type_.to_string();
    res.type_ = canonical.to_string();
    res.name = res.id.name().to_string();
    let global = canonical == ResourceKind::PrivateDnsZone.canonical();
    res.location = Some(normalize_location(
        res.location
            .as_deref()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or(if global {
                GLOBAL_LOCATION
            } else {
                DEFAULT_LOCATION
            }),
    ));
    if global && res.location.as_deref() != Some(GLOBAL_LOCATION) {
        return Err(AzureError::bad_request(
            "LocationNotAvailableForResourceType",
            format!(
                "The provided location '{}' is not available for resource type '{canonical}'. List of available \
                 regions for the resource type is 'global'.",
                res.location.as_deref().unwrap_or_default()
            ),
        ));
    }
    if res.properties.is_null() {
        res.properties = Value::Object(Map::new());
    }
    if !res.properties.is_object() {
        return Err(AzureError::bad_request(
            "InvalidRequestFormat",
            format!(
                "{} '{}': 'properties' must be an object.",
                res.type_, res.name
            ),
        ));
    }
    Ok(res)
}

/// Fold a child resource into its parent, which must already be in `state`.
pub(crate) fn merge_child(
    state: &mut LabState,
    child: &GenericResource,
    kind: ChildKind,
) -> Result<(), AzureError> {
    let parent_id = child.id.parent().expect("child ids have a parent");
    let parent = state.resources.get_mut(&parent_id.key()).ok_or_else(|| {
        AzureError::bad_request(
            "ParentResourceNotFound",
            format!(
                "Cannot deploy {} '{}': its parent resource '{parent_id}' does not exist. Deploy the parent first \
                 (in the same template or an earlier deployment).",
                child.type_,
                child.id.segments.iter().map(|s| s.1.as_str()).collect::<Vec<_>>().join("/")
            ),
        )
    })?;
    let name = child.id.name().to_string();
    let props = parent
        .properties
        .as_object_mut()
        .expect("stored properties are objects");
    match kind {
        ChildKind::Subnet => {
            let entry = json!({ "name": name, "properties": child.properties });
            let subnets = props.entry("subnets").or_insert_with(|| json!([]));
            let list = subnets.as_array_mut().ok_or_else(|| {
                AzureError::bad_request(
                    "InvalidRequestFormat",
                    format!(
                        "Virtual network '{}': properties.subnets must be an array.",
                        parent_id.name()
                    ),
                )
            })?;
            match list.iter_mut().find(|s| {
                s.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
            }) {
                Some(existing) => *existing = entry,
                None => list.push(entry),
            }
        }
        ChildKind::SiteConfig if name.eq_ignore_ascii_case("web") => {
            let site_config = props.entry("siteConfig").or_insert_with(|| json!({}));
            if let (Some(dst), Some(src)) =
                (site_config.as_object_mut(), child.properties.as_object())
            {
                for (k, v) in src {
                    dst.insert(k.clone(), v.clone());
                }
            }
        }
        ChildKind::SiteConfig if name.eq_ignore_ascii_case("appsettings") => {
            let settings: Vec<Value> = child
                .properties
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect()
                })
                .unwrap_or_default();
            let site_config = props.entry("siteConfig").or_insert_with(|| json!({}));
            if let Some(sc) = site_config.as_object_mut() {
                sc.insert("appSettings".into(), Value::Array(settings));
            }
        }
        // The site's storage mounts, replaced whole as ARM's PUT does.
        ChildKind::SiteConfig if name.eq_ignore_ascii_case("azurestorageaccounts") => {
            let site_config = props.entry("siteConfig").or_insert_with(|| json!({}));
            if let Some(sc) = site_config.as_object_mut() {
                sc.insert("azureStorageAccounts".into(), child.properties.clone());
            }
        }
        ChildKind::SiteConfig => {
            unreachable!("other site configs are stored as records (merged_site_config)")
        }
        ChildKind::SiteNetworkConfig => {
            if !name.eq_ignore_ascii_case("virtualNetwork") {
                return Err(AzureError::bad_request(
                    "InvalidRequestFormat",
                    format!("Microsoft.Web/sites/networkConfig must be named 'virtualNetwork', not '{name}'."),
                ));
            }
            let subnet = child
                .properties
                .get("subnetResourceId")
                .cloned()
                .unwrap_or(Value::Null);
            let same = |a: &str, b: &str| {
                a.trim_end_matches('/')
                    .eq_ignore_ascii_case(b.trim_end_matches('/'))
            };
            if let (Some(Value::String(current)), Value::String(wanted)) =
                (props.get("virtualNetworkSubnetId"), &subnet)
            {
                if !current.is_empty() && !same(current, wanted) {
                    return Err(AzureError::bad_request(
                        "SiteAlreadyHasVnetIntegration",
                        format!(
                            "Site '{}' is already integrated with subnet '{current}', so networkConfig \
                             'virtualNetwork' cannot add subnet '{wanted}': an app can only have a single virtual \
                             network integration at a given time. Disconnect the app first (set \
                             subnetResourceId to null or `az webapp vnet-integration remove`), then integrate \
                             with the new subnet.",
                            parent_id.name()
                        ),
                    ));
                }
            }
            props.insert("virtualNetworkSubnetId".into(), subnet);
        }
        ChildKind::DnsRecordSet(rtype) => {
            let entry = json!({ "name": name.to_ascii_lowercase(), "type": rtype.as_str(), "properties": child.properties });
            upsert(
                props,
                "recordSets",
                entry,
                |e| {
                    e.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&name))
                        && e.get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.eq_ignore_ascii_case(rtype.as_str()))
                },
                parent_id.name(),
            )?;
        }
        ChildKind::VmExtension => {
            let entry = json!({ "name": name, "properties": child.properties });
            upsert_named(props, "extensions", entry, &name, parent_id.name())?;
        }
        ChildKind::VaultSecret => {
            let entry = json!({ "name": name, "properties": { "value": child.properties.get("value").cloned().unwrap_or(json!("")) } });
            upsert_named(props, "secrets", entry, &name, parent_id.name())?;
        }
        ChildKind::VnetPeering => {
            let entry = json!({ "name": name, "properties": child.properties });
            upsert_named(
                props,
                "virtualNetworkPeerings",
                entry,
                &name,
                parent_id.name(),
            )?;
        }
        ChildKind::CircuitPeering => {
            let entry = json!({ "name": name, "properties": child.properties });
            upsert_named(props, "peerings", entry, &name, parent_id.name())?;
        }
        ChildKind::DnsZoneLink | ChildKind::PrivateDnsZoneGroup => {
            let key = if kind == ChildKind::DnsZoneLink {
                "virtualNetworkLinks"
            } else {
                "privateDnsZoneGroups"
            };
            let entry = json!({ "name": name, "properties": child.properties });
            upsert_named(props, key, entry, &name, parent_id.name())?;
        }
    }
    Ok(())
}

/// [`upsert`] of an entry identified by its `name` (case-insensitive).
fn upsert_named(
    props: &mut Map<String, Value>,
    key: &str,
    entry: Value,
    name: &str,
    parent: &str,
) -> Result<(), AzureError> {
    let same = |e: &Value| {
        e.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    };
    upsert(props, key, entry, same, parent)
}

/// Replace the entry of `props[key]` that `same` picks, or append `entry`.
fn upsert(
    props: &mut Map<String, Value>,
    key: &str,
    entry: Value,
    same: impl Fn(&Value) -> bool,
    parent: &str,
) -> Result<(), AzureError> {
    let list = props
        .entry(key)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| {
            AzureError::bad_request(
                "InvalidRequestFormat",
                format!("Resource '{parent}': properties.{key} must be an array."),
            )
        })?;
    match list.iter_mut().find(|e| same(e)) {
        Some(existing) => *existing = entry,
        None => list.push(entry),
    }
    Ok(())
}
