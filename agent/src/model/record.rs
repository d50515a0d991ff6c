//! What Azure computes for a resource and templates read back with
//! `reference()`: host names, endpoints, keys and ids that no template
//! writes. For the types the lab stores without emulating (Application
//! Insights, databases, ...) these make the record look like Azure's; for
//! the emulated ones they are what a template may reference before the
//! resource is applied.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::ResourceId;

/// A stable GUID-shaped value for `what` of `id` (keys and ids Azure draws
/// at random; the lab's are the same on every deploy of the same id).
pub fn stable_guid(id: &ResourceId, what: &str) -> String {
    let d = Sha256::digest(format!("{}|{what}", id.key()).as_bytes());
    let h: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A stable base64 key of 64 bytes (the size of a storage account key).
pub fn stable_key(id: &ResourceId, which: &str) -> String {
    use base64::Engine as _;
    let a = Sha256::digest(format!("{}|key|{which}|a", id.key()).as_bytes());
    let b = Sha256::digest(format!("{}|key|{which}|b", id.key()).as_bytes());
    let mut bytes = a.to_vec();
    bytes.extend_from_slice(&b);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The read-only properties Azure would show for this resource.
pub fn computed_properties(id: &ResourceId, location: Option<&str>) -> Map<String, Value> {
    let name = id.name().to_ascii_lowercase();
    let region = location
        .unwrap_or(crate::model::DEFAULT_LOCATION)
        .to_ascii_lowercase()
        .replace(' ', "");
    let mut p = Map::new();
    p.insert("provisioningState".into(), json!("Succeeded"));
    let t = id.full_type().to_ascii_lowercase();
    let extra = match t.as_str() {
        // A VNet flow log's GUID is its records' `flowLogGUID` (diag::flow_log).
        "microsoft.network/networkwatchers/flowlogs" => {
            json!({ "resourceGuid": stable_guid(id, "resourceGuid") })
        }
        "microsoft.insights/components" => {
            let key = stable_guid(id, "InstrumentationKey");
            json!({
                "InstrumentationKey": key,
                "ConnectionString": format!(
                    "InstrumentationKey={key};IngestionEndpoint=https://{region}-0.in.applicationinsights.azure.com/;\
                     LiveEndpoint=https://{region}.livediagnostics.monitor.azure.com/"
                ),
                "AppId": stable_guid(id, "AppId"),
                "ApplicationId": id.name(),
                "TenantId": crate::model::LAB_TENANT_ID,
            })
        }
        "microsoft.operationalinsights/workspaces" => {
            json!({ "customerId": stable_guid(id, "customerId") })
        }
        "microsoft.sql/servers" => {
            json!({ "fullyQualifiedDomainName": format!("{name}.database.windows.net"), "state": "Ready" })
        }
        "microsoft.dbforpostgresql/flexibleservers" => {
            json!({ "fullyQualifiedDomainName": format!("{name}.postgres.database.azure.com"), "state": "Ready" })
        }
        "microsoft.dbformysql/flexibleservers" => {
            json!({ "fullyQualifiedDomainName": format!("{name}.mysql.database.azure.com"), "state": "Ready" })
        }
        "microsoft.documentdb/databaseaccounts" => {
            json!({ "documentEndpoint": format!("https://{name}.documents.azure.com:443/") })
        }
        "microsoft.cache/redis" => {
            json!({ "hostName": format!("{name}.redis.cache.windows.net"), "port": 6379, "sslPort": 6380 })
        }
        "microsoft.servicebus/namespaces" | "microsoft.eventhub/namespaces" => {
            json!({ "serviceBusEndpoint": format!("https://{name}.servicebus.windows.net:443/") })
        }
        "microsoft.managedidentity/userassignedidentities" => json!({
            "principalId": stable_guid(id, "principalId"),
            "clientId": stable_guid(id, "clientId"),
            "tenantId": crate::model::LAB_TENANT_ID,
        }),
        "microsoft.cognitiveservices/accounts" => {
            json!({ "endpoint": format!("https://{name}.cognitiveservices.azure.com/") })
        }
        "microsoft.signalrservice/signalr" => {
            json!({ "hostName": format!("{name}.service.signalr.net") })
        }
        "microsoft.web/sites/slots" => {
            let site = id.segments[0].1.to_ascii_lowercase();
            json!({
                "defaultHostName": format!("{site}-{name}.azurewebsites.net"),
                "hostNames": [format!("{site}-{name}.azurewebsites.net")],
                "state": "Running",
            })
        }
        "microsoft.web/sites" => json!({
            "defaultHostName": format!("{name}.azurewebsites.net"),
            "hostNames": [format!("{name}.azurewebsites.net")],
            "enabledHostNames": [format!("{name}.azurewebsites.net"), format!("{name}.scm.azurewebsites.net")],
            "state": "Running",
            "customDomainVerificationId": stable_guid(id, "customDomainVerificationId").replace('-', "").to_uppercase(),
        }),
        "microsoft.storage/storageaccounts" => json!({
            "primaryEndpoints": {
                "blob": format!("https://{name}.blob.core.windows.net/"),
                "queue": format!("https://{name}.queue.core.windows.net/"),
                "table": format!("https://{name}.table.core.windows.net/"),
                "file": format!("https://{name}.file.core.windows.net/"),
                "web": format!("https://{name}.z6.web.core.windows.net/"),
                "dfs": format!("https://{name}.dfs.core.windows.net/"),
            },
            "primaryLocation": region,
            "statusOfPrimary": "available",
        }),
        "microsoft.keyvault/vaults" => {
            json!({ "vaultUri": format!("https://{name}.vault.azure.net/") })
        }
        "microsoft.containerregistry/registries" => {
            json!({ "loginServer": format!("{name}.azurecr.io") })
        }
        _ => json!({}),
    };
    if let Value::Object(m) = extra {
        p.extend(m);
    }
    p
}

/// A system-assigned identity's ids, as Azure fills them in.
pub fn identity_with_ids(id: &ResourceId, identity: &Value) -> Value {
    let mut identity = identity.clone();
    let system = identity
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.to_ascii_lowercase().contains("systemassigned"));
    if let (true, Some(m)) = (system, identity.as_object_mut()) {
        m.entry("principalId")
            .or_insert_with(|| json!(stable_guid(id, "identity.principalId")));
        m.entry("tenantId")
            .or_insert_with(|| json!(crate::model::LAB_TENANT_ID));
    }
    identity
}

/// `listKeys` and the other list operations a template may call.
pub fn list_operation(id: &ResourceId, operation: &str) -> Option<Value> {
    let t = id.full_type().to_ascii_lowercase();
    let op = operation.to_ascii_lowercase();
    let name = id.name();
    match (t.as_str(), op.as_str()) {
        ("microsoft.storage/storageaccounts", "listkeys") => Some(json!({
            "keys": [
                {"keyName": "key1", "value": stable_key(id, "key1"), "permissions": "FULL"},
                {"keyName": "key2", "value": stable_key(id, "key2"), "permissions": "FULL"}
            ]
        })),
        ("microsoft.containerregistry/registries", "listcredentials") => Some(json!({
            "username": name,
            "passwords": [
                {"name": "password", "value": stable_key(id, "password")},
                {"name": "password2", "value": stable_key(id, "password2")}
            ]
        })),
        (_, "listkeys") => Some(json!({
            "primaryKey": stable_key(id, "primary"),
            "secondaryKey": stable_key(id, "secondary"),
            "primaryConnectionString": format!("Endpoint=sb://{name}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={}", stable_key(id, "primary")),
            "keys": [
                {"keyName": "key1", "value": stable_key(id, "key1")},
                {"keyName": "key2", "value": stable_key(id, "key2")}
            ]
        })),
        _ => None,
    }
}
