//! Key Vault references in app settings (seed, "App settings using Key Vault
//! references"): `@Microsoft.KeyVault(SecretUri=https://NAME.vault.azure.net/secrets/S[/V])`
//! and `@Microsoft.KeyVault(VaultName=NAME;SecretName=S[;SecretVersion=V])`.
//! Parsing is pure; resolving them is [`super::startup`]'s job.

use serde::{Deserialize, Serialize};

/// Azure's `ResolveStatus` of a reference (`Microsoft.Web` API
/// `config/configreferences/appsettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResolveStatus {
    Initialized,
    Resolved,
    InvalidSyntax,
    #[serde(rename = "MSINotEnabled")]
    MsiNotEnabled,
    VaultNotFound,
    SecretNotFound,
    SecretVersionNotFound,
    AccessToKeyVaultDenied,
    OtherReasons,
    FetchTimedOut,
    UnauthorizedClient,
}

/// One parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultReference {
    /// Vault name (the first label of its host name), lower-cased.
    pub vault_name: String,
    pub secret_name: String,
    pub secret_version: Option<String>,
}

impl KeyVaultReference {
    /// The vault's public host name (`NAME.vault.azure.net`).
    pub fn vault_host(&self) -> String {
        format!("{}.vault.azure.net", self.vault_name)
    }

    /// The REST path of the secret on the vault.
    pub fn secret_path(&self) -> String {
        match &self.secret_version {
            Some(v) => format!("/secrets/{}/{v}?api-version=7.4", self.secret_name),
            None => format!("/secrets/{}?api-version=7.4", self.secret_name),
        }
    }

    /// The secret's URI as Azure's status API shows it.
    pub fn secret_uri(&self) -> String {
        let base = format!("https://{}/secrets/{}", self.vault_host(), self.secret_name);
        match &self.secret_version {
            Some(v) => format!("{base}/{v}"),
            None => base,
        }
    }
}

const PREFIX: &str = "@Microsoft.KeyVault(";

/// True when an app setting's value is meant as a Key Vault reference (even a
/// malformed one: Azure reports those as `InvalidSyntax` instead of passing
/// the text through).
pub fn is_reference(value: &str) -> bool {
    value
        .trim()
        .get(..PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

/// Parses a reference; `Err` carries the reason for `InvalidSyntax`.
pub fn parse(value: &str) -> Result<KeyVaultReference, String> {
    let v = value.trim();
    if !is_reference(v) || !v.ends_with(')') {
        return Err(format!(
            "expected @Microsoft.KeyVault(SecretUri=...) or \
             @Microsoft.KeyVault(VaultName=...;SecretName=...), got {v:?}"
        ));
    }
    let inner = &v[PREFIX.len()..v.len() - 1];
    let mut fields = std::collections::BTreeMap::new();
    for part in inner.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not NAME=VALUE"))?;
        fields.insert(k.trim().to_ascii_lowercase(), val.trim().to_string());
    }
    if let Some(uri) = fields.get("secreturi") {
        return parse_uri(uri);
    }
    let vault = fields
        .get("vaultname")
        .ok_or("SecretUri or VaultName is required")?;
    let secret = fields
        .get("secretname")
        .ok_or("SecretName is required with VaultName")?;
    if !valid_name(vault) || !valid_name(secret) {
        return Err("VaultName and SecretName may hold letters, digits and '-' only".into());
    }
    Ok(KeyVaultReference {
        vault_name: vault.to_ascii_lowercase(),
        secret_name: secret.clone(),
        secret_version: fields
            .get("secretversion")
            .filter(|s| !s.is_empty())
            .cloned(),
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `https://NAME.vault.azure.net/secrets/SECRET[/VERSION][/]`.
fn parse_uri(uri: &str) -> Result<KeyVaultReference, String> {
    let rest = uri
        .strip_prefix("https://")
        .ok_or_else(|| format!("SecretUri {uri:?} must start with https://"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("SecretUri {uri:?} has no path"))?;
    let vault = host
        .to_ascii_lowercase()
        .strip_suffix(".vault.azure.net")
        .map(str::to_string)
        .filter(|v| valid_name(v))
        .ok_or_else(|| format!("SecretUri {uri:?} is not a NAME.vault.azure.net address"))?;
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["secrets", name] if valid_name(name) => Ok(KeyVaultReference {
            vault_name: vault,
            secret_name: name.to_string(),
            secret_version: None,
        }),
        ["secrets", name, version] if valid_name(name) && valid_name(version) => {
            Ok(KeyVaultReference {
                vault_name: vault,
                secret_name: name.to_string(),
                secret_version: Some(version.to_string()),
            })
        }
        _ => Err(format!(
            "SecretUri {uri:?} must be https://NAME.vault.azure.net/secrets/SECRET[/VERSION]"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse() {
        let a =
            parse("@Microsoft.KeyVault(SecretUri=https://Kv1.vault.azure.net/secrets/db-pass/)")
                .unwrap();
        assert_eq!(a.vault_name, "kv1");
        assert_eq!(a.secret_name, "db-pass");
        assert_eq!(a.secret_version, None);
        assert_eq!(
            a.secret_uri(),
            "https://kv1.vault.azure.net/secrets/db-pass"
        );
        let b = parse(
            "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/db-pass/0123abc)",
        )
        .unwrap();
        assert_eq!(b.secret_version.as_deref(), Some("0123abc"));
        assert_eq!(b.secret_path(), "/secrets/db-pass/0123abc?api-version=7.4");
        let c = parse("@Microsoft.KeyVault(VaultName=kv1; SecretName=db-pass ;SecretVersion=v2)")
            .unwrap();
        assert_eq!(c.vault_name, "kv1");
        assert_eq!(c.secret_version.as_deref(), Some("v2"));
        let d = parse("@Microsoft.KeyVault(VaultName=kv1;SecretName=db-pass)").unwrap();
        assert_eq!(d.secret_version, None);
    }

    #[test]
    fn malformed_references_are_invalid_syntax() {
        for bad in [
            "@Microsoft.KeyVault(SecretUri=http://kv1.vault.azure.net/secrets/a)",
            "@Microsoft.KeyVault(SecretUri=https://kv1.example.com/secrets/a)",
            "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/keys/a)",
            "@Microsoft.KeyVault(VaultName=kv1)",
            "@Microsoft.KeyVault(SecretName=a)",
            "@Microsoft.KeyVault(VaultName=kv1;SecretName=a",
            "@Microsoft.KeyVault(VaultName=k v;SecretName=a)",
        ] {
            assert!(is_reference(bad), "{bad}");
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(!is_reference("plain value"));
        assert!(is_reference(
            "@microsoft.keyvault(VaultName=a;SecretName=b)"
        ));
    }
}
