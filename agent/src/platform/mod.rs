//! The platform's own traffic for an app instance (seed, "Configuration
//! routing"): content share, container image pull and Key Vault references
//! at start, and custom backup/restore on demand. Each goes over the public
//! route or through the integration as `plan::startup` decided, as real
//! connections from the worker namespace to the emulated services; what the
//! service answered (and the source address it saw) is kept as the
//! instance's startup status.

pub mod client;
pub mod kv_ref;
mod run;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::plan::startup::{PlatformRoute, StartupSpec};
pub use kv_ref::ResolveStatus;
pub use run::{backup, start_instance, BackupOutcome, Env};

/// One connection the platform made, as the service saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub host: String,
    pub address: String,
    pub port: u16,
    pub route: PlatformRoute,
    /// True when the service admitted the request.
    pub ok: bool,
    /// The source address the service reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// How the service was reached (`public`, `serviceEndpoint`, `privateEndpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The service's error code or the connection error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of one startup step (content share, image pull).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// `Succeeded` or `Failed`.
    pub status: String,
    pub route: PlatformRoute,
    pub target: String,
    pub contacts: Vec<Contact>,
    pub message: String,
}

/// One storage mount as the platform made it: Azure's `AzureStorageState`
/// (`Ok`, `InvalidCredentials`, `InvalidShare`, `NotValidated`) and how.
/// A share the platform cannot reach or that refuses it (a storage firewall
/// that admits only the integration subnet) is `InvalidShare`: the lab's
/// reading, as no Azure page says which state a firewall gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageMountStatus {
    pub state: String,
    pub mount_path: String,
    #[serde(flatten)]
    pub step: Step,
}

/// Azure's `ApiKVReference` for one app setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVaultReferenceStatus {
    pub reference: String,
    pub status: ResolveStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<String>,
    pub identity_type: String,
    pub details: String,
    pub source: String,
    /// The route that resolved it (public first, then the integration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<PlatformRoute>,
    pub contacts: Vec<Contact>,
    /// The secret (kept in the daemon's state directory, never shown by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Everything the platform did when an instance started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStartup {
    pub instance: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_share: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull: Option<Step>,
    /// Keyed by app setting name.
    pub key_vault_references: BTreeMap<String, KeyVaultReferenceStatus>,
    /// The app's own storage mounts (`azureStorageAccounts`), by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub storage_mounts: BTreeMap<String, StorageMountStatus>,
    /// False when a failed content share or image pull keeps the app down.
    pub app_started: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl InstanceStartup {
    /// The status as the API shows it: without the secrets' values.
    pub fn redacted(&self) -> InstanceStartup {
        let mut out = self.clone();
        for r in out.key_vault_references.values_mut() {
            r.value = None;
        }
        out
    }

    /// The app settings Key Vault references resolved to (an unresolved
    /// reference keeps its literal text, as in Azure).
    pub fn env_overrides(&self) -> impl Iterator<Item = (&String, &String)> {
        self.key_vault_references
            .iter()
            .filter_map(|(k, s)| Some((k, s.value.as_ref()?)))
    }
}
