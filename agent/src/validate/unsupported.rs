//! The seed's two cases Key Vault and storage networking do not cover
//! (seed, "App settings using Key Vault references", note): TLS/SSL
//! certificates from a private key vault, and App Service logs to a private
//! storage account. Both are refused with a clear error instead of silently
//! failing later.

use serde_json::Value;

use crate::model::{
    AzureError, DefaultAction, GenericResource, Inventory, LabState, PaasService,
    PublicNetworkAccess, ServiceKind,
};

/// A service that refuses (some) public traffic: what "private" means here.
fn is_private(s: &PaasService) -> bool {
    s.public_network_access == PublicNetworkAccess::Disabled
        || s.rules.default_action == DefaultAction::Deny
}

fn find<'a>(inv: &'a Inventory, kind: ServiceKind, name: &str) -> Option<&'a PaasService> {
    inv.services
        .iter()
        .find(|s| s.kind == kind && s.name.eq_ignore_ascii_case(name))
}

/// `Microsoft.Web/certificates` with `keyVaultId`: refused with the seed's
/// reason when the vault is private; otherwise certificates are not emulated.
pub(crate) fn certificate(state: &LabState, res: &GenericResource) -> Option<AzureError> {
    if !res.type_.eq_ignore_ascii_case("Microsoft.Web/certificates") {
        return None;
    }
    let vault_id = res.properties.get("keyVaultId").and_then(Value::as_str)?;
    let vault_name = vault_id.trim_end_matches('/').rsplit('/').next()?;
    let inv = Inventory::parse_lenient(&state.resources);
    let vault = find(&inv, ServiceKind::KeyVault, vault_name)?;
    is_private(vault).then(|| {
        AzureError::bad_request(
            "KeyVaultCertificateFromPrivateVaultNotSupported",
            format!(
                "Certificate '{}': importing a TLS/SSL certificate from the key vault '{}' is not supported \
                 because the vault blocks public access (publicNetworkAccess or networkAcls.defaultAction \
                 Deny). App Service fetches certificates over the public route only; configuring TLS/SSL \
                 certificates from private key vaults is currently not supported.",
                res.name, vault.name
            ),
        )
    })
}

/// `Microsoft.Web/sites/config/logs` writing to a storage account that
/// blocks public access.
pub(crate) fn logs_config(state: &LabState, site: &str, properties: &Value) -> Option<AzureError> {
    let inv = Inventory::parse_lenient(&state.resources);
    ["applicationLogs", "httpLogs"].iter().find_map(|kind| {
        let url = properties
            .pointer(&format!("/{kind}/azureBlobStorage/sasUrl"))
            .and_then(Value::as_str)?;
        let host = url.strip_prefix("https://")?.split('/').next()?.to_ascii_lowercase();
        let account = host.strip_suffix(".blob.core.windows.net")?;
        let sa = find(&inv, ServiceKind::Storage, account)?;
        is_private(sa).then(|| {
            AzureError::bad_request(
                "AppServiceLogsToPrivateStorageNotSupported",
                format!(
                    "Site '{site}': {kind} to the storage account '{}' is not supported because the account \
                     blocks public access. App Service logs to private storage accounts are currently not \
                     supported; use diagnostic settings, or allow trusted services on the storage account.",
                    sa.name
                ),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::validate::fixtures::{code, deploy, fresh, id_str, plan, site};

    fn vault(default_action: &str) -> serde_json::Value {
        json!({"type": "Microsoft.KeyVault/vaults", "name": "kv1", "properties": {
            "sku": {"family": "A", "name": "standard"},
            "tenantId": "00000000-0000-0000-0000-000000000000",
            "networkAcls": {"defaultAction": default_action}}})
    }

    fn storage(access: &str) -> serde_json::Value {
        json!({"type": "Microsoft.Storage/storageAccounts", "name": "logs1", "kind": "StorageV2",
               "sku": {"name": "Standard_LRS"}, "properties": {"publicNetworkAccess": access}})
    }

    #[test]
    fn certificates_from_private_vaults_are_refused() {
        let cert = json!({"type": "Microsoft.Web/certificates", "name": "cert1", "properties": {
            "keyVaultId": id_str("Microsoft.KeyVault/vaults/kv1"), "keyVaultSecretName": "tls"}});
        let private = fresh(json!([vault("Deny")])).unwrap();
        assert_eq!(
            code(deploy(&private, json!([cert.clone()]))),
            "KeyVaultCertificateFromPrivateVaultNotSupported"
        );
        // From a public vault, certificates are kept as records.
        let public = fresh(json!([vault("Allow")])).unwrap();
        assert!(deploy(&public, json!([cert])).is_ok());
    }

    #[test]
    fn logs_to_private_storage_are_refused() {
        let logs = |url: &str| {
            json!({"type": "Microsoft.Web/sites/config", "name": "web1/logs", "properties": {
                "applicationLogs": {"azureBlobStorage": {"level": "Information", "sasUrl": url}}}})
        };
        let base = json!([
            plan("plan1", "P1v3", 1),
            site("web1", "plan1", None),
            storage("Disabled")
        ]);
        let state = fresh(base).unwrap();
        assert_eq!(
            code(deploy(
                &state,
                json!([logs("https://logs1.blob.core.windows.net/c?sv=x")])
            )),
            "AppServiceLogsToPrivateStorageNotSupported"
        );
        // Any other destination: the logs config is kept as a record.
        assert!(deploy(
            &state,
            json!([logs("https://elsewhere.blob.core.windows.net/c")])
        )
        .is_ok());
    }
}
