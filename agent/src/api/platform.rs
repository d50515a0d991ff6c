//! The platform's work around an app's start (configuration routing, Key
//! Vault references) and custom backup/restore, on the daemon. Results are
//! kept per instance in `<state dir>/startups.json` with a hash of what
//! produced them: an instance's startup runs again only when its spec
//! changes or the app is restarted, never because the agent restarted (a
//! restart of the agent disturbs no running app).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::daemon::{ApiError, Daemon};
use crate::model::{AzureError, LabState, ResourceId};
use crate::plan::startup::{self, PlatformRoute, StartupSpec};
use crate::plan::ProcessPlan;
use crate::platform::{self, InstanceStartup};

/// One instance's startup result and what produced it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Recorded {
    spec_hash: String,
    site: String,
    startup: InstanceStartup,
}

/// The startup records of every instance, by process key.
#[derive(Debug, Default)]
pub(super) struct Startups {
    path: PathBuf,
    records: BTreeMap<String, Recorded>,
}

impl Startups {
    pub(super) fn open(state_dir: &std::path::Path) -> Startups {
        let path = state_dir.join("startups.json");
        let records = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Startups { path, records }
    }

    fn save(&self) {
        let tmp = self.path.with_extension("json.tmp");
        let write = serde_json::to_vec_pretty(&self.records)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(std::fs::write(&tmp, b)?))
            .and_then(|_| Ok(std::fs::rename(&tmp, &self.path)?));
        if let Err(e) = write {
            tracing::warn!("saving {}: {e:#}", self.path.display());
        }
    }
}

fn spec_hash(spec: &StartupSpec) -> String {
    let digest = Sha256::digest(format!("{spec:?}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Daemon {
    /// The PEM of the lab CA the emulated services' certificates chain to.
    fn lab_ca_pem(&self) -> Option<Arc<Vec<u8>>> {
        std::fs::read(&self.lab_ca.0).ok().map(Arc::new)
    }

    /// Runs the startup of every instance whose spec changed since its last
    /// run (concurrently), and forgets instances that are gone. True when
    /// anything ran.
    #[tracing::instrument(skip_all)]
    pub(super) async fn run_startups(&self, state: &LabState, specs: &[StartupSpec]) -> bool {
        let todo: Vec<(StartupSpec, String)> = {
            let mut s = self.startups.lock().unwrap();
            let live: std::collections::BTreeSet<&str> =
                specs.iter().map(|sp| sp.key.as_str()).collect();
            let before = s.records.len();
            s.records.retain(|k, _| live.contains(k.as_str()));
            if s.records.len() != before {
                s.save();
            }
            specs
                .iter()
                .filter(|sp| !sp.is_empty())
                .map(|sp| {
                    let h = spec_hash(sp);
                    (sp.clone(), h)
                })
                .filter(|(sp, h)| s.records.get(&sp.key).is_none_or(|r| &r.spec_hash != h))
                .collect()
        };
        if todo.is_empty() {
            return false;
        }
        let env = platform::Env::new(state.clone(), self.lab_ca_pem());
        let results = futures::future::join_all(
            todo.iter()
                .map(|(sp, _)| platform::start_instance(&env, sp)),
        )
        .await;
        let mut s = self.startups.lock().unwrap();
        for ((sp, h), startup) in todo.into_iter().zip(results) {
            s.records.insert(
                sp.key.clone(),
                Recorded {
                    spec_hash: h,
                    site: sp.site.key(),
                    startup,
                },
            );
        }
        s.save();
        true
    }

    /// The app processes as the platform lets them start: Key Vault
    /// references replaced by their secrets, and no process for an instance
    /// whose content share or image pull failed, and none yet for an
    /// instance whose startup has not run for its current spec.
    pub(super) fn started_processes(
        &self,
        plans: &[ProcessPlan],
        specs: &[StartupSpec],
    ) -> Vec<ProcessPlan> {
        // The current spec hash of every instance that has startup work.
        let current: BTreeMap<&str, String> = specs
            .iter()
            .filter(|sp| !sp.is_empty())
            .map(|sp| (sp.key.as_str(), spec_hash(sp)))
            .collect();
        let s = self.startups.lock().unwrap();
        plans
            .iter()
            .filter_map(|p| {
                let mut p = p.clone();
                let Some(hash) = current.get(p.key.as_str()) else {
                    return Some(p);
                };
                let r = s.records.get(&p.key).filter(|r| &r.spec_hash == hash)?;
                if !r.startup.app_started {
                    return None;
                }
                for (k, v) in r.startup.env_overrides() {
                    p.env.insert(k.clone(), v.clone());
                }
                Some(p)
            })
            .collect()
    }

    /// The app settings an instance's programs see (for `exec --app`).
    pub(super) fn startup_env(&self, key: &str, env: &mut BTreeMap<String, String>) {
        let s = self.startups.lock().unwrap();
        if let Some(r) = s.records.get(key) {
            for (k, v) in r.startup.env_overrides() {
                env.insert(k.clone(), v.clone());
            }
        }
    }

    /// Forgets a site's startup results, so its next reconcile runs them
    /// again (and stops, then starts, those instances' processes); returns
    /// the process keys that restart that way.
    pub(super) fn forget_startups(&self, site: &ResourceId) -> Vec<String> {
        let mut s = self.startups.lock().unwrap();
        let key = site.key();
        let gone: Vec<String> = s
            .records
            .iter()
            .filter(|(_, r)| r.site == key)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            s.records.remove(k);
        }
        s.save();
        gone
    }

    /// The startup status of each instance of a site (for its view).
    pub(super) fn site_startups(&self, site_key: &str) -> Vec<InstanceStartup> {
        let s = self.startups.lock().unwrap();
        s.records
            .values()
            .filter(|r| r.site.eq_ignore_ascii_case(site_key))
            .map(|r| r.startup.redacted())
            .collect()
    }

    /// `GET {site}/config/configreferences/appsettings`: Azure's
    /// `ApiKVReference` of each app setting holding a Key Vault reference
    /// (instance 0's resolution, as Azure reports one per site).
    pub async fn config_references(&self, site: &ResourceId) -> Result<Value, ApiError> {
        let state = self.snapshot();
        let inv = crate::model::Inventory::parse_lenient(&state.resources);
        let site = inv
            .site(site)
            .ok_or_else(|| crate::plan::view::not_found(site))?
            .clone();
        drop(state);
        let statuses = self
            .site_startups(&site.id.key())
            .into_iter()
            .min_by_key(|s| s.instance)
            .map(|s| s.key_vault_references)
            .unwrap_or_default();
        let value: Vec<Value> = site
            .app_settings
            .iter()
            .filter(|(_, v)| platform::kv_ref::is_reference(v))
            .map(|(name, raw)| {
                let props = statuses.get(name).map(|s| json!(s)).unwrap_or_else(
                    || json!({"reference": raw, "status": "Initialized", "source": "KeyVault"}),
                );
                json!({
                    "id": format!("{}/config/configreferences/appsettings/{name}", site.id),
                    "name": name,
                    "type": "Microsoft.Web/sites/config/configreferences",
                    "properties": props,
                })
            })
            .collect();
        Ok(json!({ "value": value }))
    }

    /// `POST {site}/backup` and `{site}/restore` to a customer storage
    /// account (`storageAccountUrl`, a blob container SAS URL). The route is
    /// the integration when `vnetBackupRestoreEnabled` is on; database backup
    /// is refused there (seed: "Database backup isn't supported over the
    /// virtual network integration").
    pub async fn backup_restore(
        &self,
        site_id: &ResourceId,
        body: &Value,
        restore: bool,
    ) -> Result<Value, ApiError> {
        let state = self.snapshot();
        let inv = crate::model::Inventory::parse_lenient(&state.resources);
        let site = inv
            .site(site_id)
            .ok_or_else(|| crate::plan::view::not_found(site_id))?
            .clone();
        let url = body
            .pointer("/properties/storageAccountUrl")
            .or_else(|| body.get("storageAccountUrl"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AzureError::bad_request(
                    "InvalidRequestContent",
                    "properties.storageAccountUrl is required: the SAS URL of a blob container \
                     (https://ACCOUNT.blob.core.windows.net/CONTAINER?...)",
                )
            })?;
        let (account, container) = parse_container_url(url).ok_or_else(|| {
            AzureError::bad_request(
                "InvalidStorageAccountUrl",
                format!(
                    "storageAccountUrl {url:?} must be https://ACCOUNT.blob.core.windows.net/CONTAINER[?SAS]"
                ),
            )
        })?;
        let name = body
            .pointer("/properties/backupName")
            .or_else(|| body.pointer("/properties/blobName"))
            .or_else(|| body.get("backupName"))
            .and_then(Value::as_str)
            .unwrap_or(&site.name)
            .to_string();
        let databases = body
            .pointer("/properties/databases")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
        let specs = startup::startup_specs(&state, &self.config.lab);
        let spec = specs
            .into_iter()
            .filter(|sp| sp.site == site.id)
            .min_by_key(|sp| sp.instance)
            .ok_or_else(|| {
                AzureError::conflict(
                    "SiteHasNoInstances",
                    format!(
                        "the app {} has no running instance to back up from",
                        site.name
                    ),
                )
            })?;
        let route = if site.config_routing.backup_restore && spec.integration.is_some() {
            PlatformRoute::VirtualNetwork
        } else {
            PlatformRoute::Public
        };
        if databases && route == PlatformRoute::VirtualNetwork {
            return Err(AzureError::bad_request(
                "DatabaseBackupNotSupportedOverVirtualNetwork",
                format!(
                    "database backup isn't supported over the virtual network integration: the app {} \
                     routes backup/restore through its integration (vnetBackupRestoreEnabled); back up \
                     the files without databases, or turn the setting off",
                    site.name
                ),
            )
            .into());
        }
        let env = platform::Env::new((*state).clone(), self.lab_ca_pem());
        drop(state);
        let blob = format!("/{container}/{name}.zip");
        let content = (!restore).then(|| {
            serde_json::to_vec(&json!({
                "site": site.id.to_string(),
                "backupName": name,
                "appSettings": site.app_settings.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            }))
            .unwrap_or_default()
        });
        let (outcome, restored) =
            platform::backup(&env, &spec, route, &account, &blob, content).await;
        if outcome.status != "Succeeded" {
            return Err(AzureError::bad_request(
                if restore {
                    "RestoreFailed"
                } else {
                    "BackupFailed"
                },
                outcome.message.clone(),
            )
            .into());
        }
        Ok(json!({
            "id": format!("{}/{}/{name}", site.id, if restore { "restore" } else { "backups" }),
            "name": name,
            "properties": {
                "status": outcome.status,
                "storageAccountUrl": url,
                "blobName": format!("{name}.zip"),
                "route": outcome.route,
                "contact": outcome.contact,
                "message": outcome.message,
                "restoredBytes": restored.map(|b| b.len()),
            }
        }))
    }
}

/// `https://ACCOUNT.blob.core.windows.net/CONTAINER[?SAS]` -> (account, container).
fn parse_container_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let account = host
        .to_ascii_lowercase()
        .strip_suffix(".blob.core.windows.net")?
        .to_string();
    let container = path.split(['?', '/']).next()?.to_string();
    (!account.is_empty() && !container.is_empty()).then_some((account, container))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_urls() {
        assert_eq!(
            parse_container_url("https://St1.blob.core.windows.net/backups?sv=2022&sig=x"),
            Some(("st1".into(), "backups".into()))
        );
        assert_eq!(
            parse_container_url("https://st1.file.core.windows.net/x"),
            None
        );
        assert_eq!(
            parse_container_url("http://st1.blob.core.windows.net/x"),
            None
        );
        assert_eq!(
            parse_container_url("https://st1.blob.core.windows.net/"),
            None
        );
    }
}
