//! Deployments as resources: `az deployment group create|show|list|delete|
//! what-if`. A deployment evaluates its template (`template::evaluate`),
//! validates and commits the whole change at once, applies it, then
//! evaluates its outputs against the applied state. Every attempt, failed
//! ones too, is kept in `deployments.json` beside the lab's state (Azure
//! keeps failed deployments; the lab's state itself is unchanged by them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::daemon::{ApiError, Daemon};
use crate::model::{AzureError, LabConfig, LabState, ResourceId};
use crate::template::{self, DeploymentMode, DeploymentRequest, Expansion, StateLookup};
use crate::validate::{self, RequestContext};

/// Azure keeps at most 800 deployments per resource group and deletes the
/// oldest beyond that.
const MAX_PER_RESOURCE_GROUP: usize = 800;

/// The deployment records, by lower-cased id.
pub struct History {
    path: PathBuf,
    records: std::sync::Mutex<BTreeMap<String, Value>>,
}

impl History {
    pub fn open(state_dir: &std::path::Path) -> History {
        let path = state_dir.join("deployments.json");
        let records = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        History {
            path,
            records: std::sync::Mutex::new(records),
        }
    }

    fn put(&self, record: Value) {
        let mut r = self.records.lock().expect("history lock");
        let id = record["id"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        r.insert(id.clone(), record);
        // The oldest beyond Azure's limit go.
        let group = id
            .rsplit_once("/providers/")
            .map(|x| x.0.to_string())
            .unwrap_or_default();
        let mut same: Vec<(String, String)> = r
            .iter()
            .filter(|(k, _)| k.starts_with(&group))
            .map(|(k, v)| {
                (
                    v["properties"]["timestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    k.clone(),
                )
            })
            .collect();
        if same.len() > MAX_PER_RESOURCE_GROUP {
            same.sort();
            for (_, k) in same.iter().take(same.len() - MAX_PER_RESOURCE_GROUP) {
                r.remove(k);
            }
        }
        self.save(&r);
    }

    fn save(&self, r: &BTreeMap<String, Value>) {
        if let Ok(bytes) = serde_json::to_vec(r) {
            if let Err(e) = crate::store::write_atomic(&self.path, &bytes) {
                tracing::warn!(error = %e, "writing the deployment history");
            }
        }
    }

    fn get(&self, id: &str) -> Option<Value> {
        self.records
            .lock()
            .expect("history lock")
            .get(&id.to_ascii_lowercase())
            .cloned()
    }

    fn remove(&self, id: &str) -> Option<Value> {
        let mut r = self.records.lock().expect("history lock");
        let v = r.remove(&id.to_ascii_lowercase());
        self.save(&r);
        v
    }

    fn list(&self, prefix: &str) -> Vec<Value> {
        let prefix = prefix.to_ascii_lowercase();
        self.records
            .lock()
            .expect("history lock")
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// `reference()` to resources outside the template reads the committed
/// state, laid out once per evaluation.
struct Committed<'a>(crate::plan::view::Viewer<'a>);

impl<'a> Committed<'a> {
    fn new(state: &'a LabState, lab: &LabConfig) -> Self {
        Committed(crate::plan::view::Viewer::new(state, lab))
    }
}

impl StateLookup for Committed<'_> {
    fn view(&self, id: &ResourceId) -> Option<Value> {
        self.0.view(id).ok()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The seed of `newGuid()`: the kernel's randomness.
fn nonce() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u64::from_le_bytes(b)
}

fn rfc3339(t: i64) -> String {
    crate::template::format_time(t, "yyyy-MM-ddTHH:mm:ss.0000000Z")
}

/// `DeploymentFailed` around a resource's error, as ARM reports a
/// deployment whose operations failed; template and authorization errors
/// stay as they are (ARM's preflight answers them directly).
fn deployment_failed(e: AzureError) -> AzureError {
    if matches!(
        e.code.as_str(),
        "InvalidTemplate"
            | "InvalidTemplateDeployment"
            | "AuthorizationFailed"
            | "LinkedAuthorizationFailed"
            | "InvalidResourceGroup"
            | "InvalidContentLink"
            | "ResourceNotFound"
    ) {
        return e;
    }
    let status = e.status;
    let mut out = AzureError::new(
        status,
        "DeploymentFailed",
        format!(
            "At least one resource deployment operation failed. Please list deployment operations for details. \
             Please see https://aka.ms/arm-deployment-operations for usage details. ({}: {})",
            e.code, e.message
        ),
    );
    out.details = vec![e];
    out
}

/// The deployment's parameters as ARM echoes them: secure ones never.
fn echoed_parameters(req: &DeploymentRequest) -> Value {
    let declared = req.template.get("parameters").cloned().unwrap_or(json!({}));
    let mut out = serde_json::Map::new();
    for (k, v) in &req.parameters {
        let ty = declared
            .as_object()
            .and_then(|d| d.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
            .and_then(|(_, d)| d.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("String")
            .to_string();
        let secure = ty.to_ascii_lowercase().starts_with("secure");
        let mut p = json!({ "type": ty });
        if !secure {
            p["value"] = v.clone();
        }
        out.insert(k.clone(), p);
    }
    Value::Object(out)
}

fn deployment_id(req: &DeploymentRequest, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Resources/deployments/{}",
        req.subscription, req.resource_group, name
    )
}

/// The types of `expansion` the lab keeps as records, once each, with
/// the note that they carry no traffic.
fn not_emulated(expansion: &Expansion) -> Vec<Value> {
    let mut types: Vec<String> = expansion
        .resources
        .iter()
        .map(|r| r.type_.clone())
        .filter(|t| !validate::emulated(t))
        .collect();
    types.sort_by_key(|t| t.to_ascii_lowercase());
    types.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    types
        .into_iter()
        .map(|t| json!({"type": t, "note": "Deployed as an ARM record; the lab does not emulate this type, so it carries no traffic."}))
        .collect()
}

/// `--mode Complete`: the resources of the group the template does not
/// name are deleted, each under the rules of a delete (a resource in use is
/// refused, and nothing is applied). Dependents go first.
fn complete_mode(
    mut next: LabState,
    expansion: &Expansion,
    req: &DeploymentRequest,
    lab: &LabConfig,
    ctx: &RequestContext,
) -> Result<LabState, AzureError> {
    let keep: std::collections::BTreeSet<String> =
        expansion.resources.iter().map(|r| r.id.key()).collect();
    let mut doomed: Vec<ResourceId> = next
        .resources
        .values()
        .filter(|r| {
            r.id.subscription.eq_ignore_ascii_case(&req.subscription)
                && r.id
                    .resource_group
                    .eq_ignore_ascii_case(&req.resource_group)
                && !keep.contains(&r.id.key())
        })
        .map(|r| r.id.clone())
        .collect();
    while !doomed.is_empty() {
        let mut progress = false;
        let mut last = None;
        let mut left = Vec::new();
        for id in doomed {
            if next.get(&id).is_none() {
                progress = true;
                continue;
            }
            match validate::delete_resource(&next, &id, lab, ctx) {
                Ok(s) => {
                    next = s;
                    progress = true;
                }
                Err(e) => {
                    last = Some(e);
                    left.push(id);
                }
            }
        }
        if !progress {
            return Err(last.expect("a delete failed"));
        }
        doomed = left;
    }
    Ok(next)
}

fn deployment_not_found(id: &str) -> AzureError {
    AzureError::not_found(
        "DeploymentNotFound",
        format!(
            "Deployment '{}' could not be found.",
            id.rsplit('/').next().unwrap_or(id)
        ),
    )
}

impl Daemon {
    fn request_with_clock(&self, mut req: DeploymentRequest, name: &str) -> DeploymentRequest {
        req.name = Some(name.to_string());
        if req.now_unix == 0 {
            req.now_unix = unix_now();
        }
        if req.nonce == 0 {
            req.nonce = nonce();
        }
        req
    }

    /// `az deployment group create`.
    pub async fn deploy(&self, name: &str, req: DeploymentRequest) -> Result<Value, ApiError> {
        let req = self.request_with_clock(req, name);
        let id = deployment_id(&req, name);
        let started = unix_now();
        let lab = self.config.lab.clone();
        let ctx = self.context();
        let mut expansion = None;
        let result = self
            .commit_and_apply(|s| {
                let e = template::evaluate(&req, &Committed::new(s, &lab))?;
                let resources = e.resources.clone();
                let next = validate::apply_resources(s, resources, &lab, &ctx)
                    .map_err(deployment_failed)?;
                let next = match req.mode {
                    DeploymentMode::Complete => {
                        complete_mode(next, &e, &req, &lab, &ctx).map_err(deployment_failed)?
                    }
                    DeploymentMode::Incremental => next,
                };
                expansion = Some(e);
                Ok(next)
            })
            .await;
        let mut record = json!({
            "id": id,
            "name": name,
            "type": "Microsoft.Resources/deployments",
            "properties": {
                "mode": format!("{:?}", req.mode),
                "timestamp": rfc3339(started),
                "duration": format!("PT{}S", (unix_now() - started).max(0)),
                "correlationId": template::guid_of(&[id.clone(), started.to_string()]),
                "parameters": echoed_parameters(&req),
                "templateHash": template::hash_of(&req.template),
            }
        });
        match result {
            Err(e) => {
                let err = match &e {
                    ApiError::Azure(a) => serde_json::to_value(a).unwrap_or_default(),
                    ApiError::Internal(i) => {
                        json!({"code": "InternalServerError", "message": format!("{i:#}")})
                    }
                };
                record["properties"]["provisioningState"] = json!("Failed");
                record["properties"]["error"] = err;
                self.history.put(record);
                Err(e)
            }
            Ok((state, report)) => {
                let expansion = expansion.expect("evaluated");
                // Outputs see the applied state (allocated addresses and the
                // like): a second evaluation, only for a template that has outputs.
                let has_outputs = req
                    .template
                    .get("outputs")
                    .and_then(Value::as_object)
                    .is_some_and(|o| !o.is_empty());
                let outputs = if !has_outputs {
                    expansion.outputs.clone()
                } else {
                    match template::evaluate_after_apply(&req, &Committed::new(&state, &lab)) {
                        Ok(e) => e.outputs,
                        // The resources stay deployed; the deployment fails
                        // on its outputs, as ARM's does.
                        Err(inner) => {
                            let e = AzureError::bad_request(
                                "DeploymentOutputEvaluationFailed",
                                format!("Unable to evaluate template outputs: {}", inner.message),
                            );
                            record["properties"]["provisioningState"] = json!("Failed");
                            record["properties"]["error"] =
                                serde_json::to_value(&e).unwrap_or_default();
                            self.history.put(record);
                            return Err(e.into());
                        }
                    }
                };
                let p = &mut record["properties"];
                p["provisioningState"] = json!("Succeeded");
                p["outputs"] = Value::Object(outputs);
                p["outputResources"] = json!(expansion
                    .resources
                    .iter()
                    .map(|r| json!({"id": r.id.to_string()}))
                    .collect::<Vec<_>>());
                // Beyond Azure: what the lab stores without emulating, and
                // what the apply did to the kernel.
                p["emulator"] = json!({
                    "notEmulated": not_emulated(&expansion),
                    "nestedDeployments": expansion.nested,
                });
                p["reconcile"] = json!(report);
                self.history.put(record.clone());
                Ok(record)
            }
        }
    }

    /// `az deployment group what-if`: Azure's change types per resource,
    /// and the kernel changes the apply would make, from the pure planner.
    pub async fn what_if(&self, name: &str, req: DeploymentRequest) -> Result<Value, ApiError> {
        let req = self.request_with_clock(req, name);
        let lab = self.config.lab.clone();
        let ctx = self.context();
        let state = self.snapshot();
        let e = template::evaluate(&req, &Committed::new(&state, &lab))?;
        let next = validate::apply_resources(&state, e.resources.clone(), &lab, &ctx)
            .map_err(deployment_failed)?;
        let next = match req.mode {
            DeploymentMode::Complete => {
                complete_mode(next, &e, &req, &lab, &ctx).map_err(deployment_failed)?
            }
            DeploymentMode::Incremental => next,
        };
        let changes = crate::plan::what_if::resource_changes(
            &state,
            &next,
            &lab,
            &e.resources,
            &req.subscription,
            &req.resource_group,
        );
        let kernel = crate::plan::what_if::kernel_changes(
            &crate::plan::build(&state, &lab),
            &crate::plan::build(&next, &lab),
        );
        Ok(json!({
            "status": "Succeeded",
            "properties": {
                "changes": changes,
                "kernelChanges": kernel,
            }
        }))
    }

    pub fn deployment_show(&self, id: &str) -> Result<Value, ApiError> {
        self.history
            .get(id)
            .ok_or_else(|| deployment_not_found(id).into())
    }

    pub fn deployment_list(&self, group_prefix: &str) -> Value {
        json!({ "value": self.history.list(&format!("{group_prefix}/providers/Microsoft.Resources/deployments/")) })
    }

    /// Deleting a deployment forgets its record; its resources stay (as in Azure).
    pub fn deployment_delete(&self, id: &str) -> Result<Value, ApiError> {
        self.history
            .remove(id)
            .map(|_| json!({"id": id, "deleted": true}))
            .ok_or_else(|| deployment_not_found(id).into())
    }
}
