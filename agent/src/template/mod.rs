//! ARM templates, evaluated as Azure Resource Manager does:
//! - `lang`: the expression grammar; `expr`: the evaluator; `functions/`:
//!   the template functions;
//! - `params`: parameters (types, defaults, allowed values, given values);
//! - `engine`: a deployment: copy loops, conditions, `dependsOn` order,
//!   `reference()`/`list*()`, nested and linked deployments, outputs;
//! - `position`: line and column of a JSON path, for errors.
//!
//! Output: [`GenericResource`]s with full ids in the request's subscription
//! and resource group (or those a nested deployment names). Child types are
//! returned as they are; `validate` merges them into their parents.

mod engine;
mod expr;
mod functions;
mod lang;
pub mod limits;
mod params;
mod position;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{AzureError, GenericResource, ResourceId};

pub use crate::model::DEFAULT_LOCATION;

/// The subscription of a lab that names none, and the placeholder templates
/// may write in resource ids: ids naming it are rewritten to the request's
/// subscription.
pub const DEFAULT_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";

/// `Incremental` leaves what the template does not name; `Complete` deletes
/// it from the resource group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentMode {
    #[default]
    Incremental,
    Complete,
}

/// One `az deployment group create`: a template, its parameter values, and
/// where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRequest {
    #[serde(default = "default_subscription")]
    pub subscription: String,
    pub resource_group: String,
    pub template: Value,
    /// Parameter values (plain values, not `{"value": ...}` wrappers). A string
    /// for an `int` or `bool` parameter is converted, as `-p name=value` gives strings.
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    /// The deployment's name (what `deployment().name` answers).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mode: DeploymentMode,
    /// Where the template came from (`file:///dir/azuredeploy.json`): what
    /// `deployment().properties.templateLink.uri` answers, and the base of
    /// linked templates' relative paths.
    #[serde(default)]
    pub template_uri: Option<String>,
    /// Templates a linked deployment may name, by absolute URI (the CLI
    /// sends the JSON files beside the main template).
    #[serde(default)]
    pub linked_templates: BTreeMap<String, Value>,
    /// The template file's text, for the line and column of an error.
    #[serde(default)]
    pub template_text: Option<String>,
    /// What `utcNow()` answers (Unix seconds), drawn by the daemon.
    #[serde(default)]
    pub now_unix: i64,
    /// The seed of `newGuid()`, drawn by the daemon per deployment.
    #[serde(default)]
    pub nonce: u64,
}

impl Default for DeploymentRequest {
    fn default() -> Self {
        DeploymentRequest {
            subscription: default_subscription(),
            resource_group: String::new(),
            template: Value::Null,
            parameters: BTreeMap::new(),
            name: None,
            mode: DeploymentMode::default(),
            template_uri: None,
            linked_templates: BTreeMap::new(),
            template_text: None,
            now_unix: 0,
            nonce: 0,
        }
    }
}

fn default_subscription() -> String {
    DEFAULT_SUBSCRIPTION.to_string()
}

/// What the engine may read of the lab: the view of a resource that exists
/// (for `reference()` to resources outside the template, `existing`
/// resources, and outputs after the apply).
pub trait StateLookup {
    fn view(&self, id: &ResourceId) -> Option<Value>;
}

/// A lab with nothing in it (tests, what-if of a first deployment).
pub struct NoState;

impl StateLookup for NoState {
    fn view(&self, _: &ResourceId) -> Option<Value> {
        None
    }
}

/// A nested `Microsoft.Resources/deployments` and what it produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NestedDeployment {
    pub id: String,
    pub name: String,
    pub outputs: Map<String, Value>,
}

/// A template, evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    /// In deployment order (`dependsOn`, `reference()`), nested deployments'
    /// resources where their deployment is.
    pub resources: Vec<GenericResource>,
    /// `name -> {"type": ..., "value": ...}`, secure outputs left out.
    pub outputs: Map<String, Value>,
    pub nested: Vec<NestedDeployment>,
}

/// ARM template -> resources with full ids in that subscription/resource group.
pub fn expand(req: &DeploymentRequest) -> Result<Vec<GenericResource>, AzureError> {
    evaluate(req, &NoState).map(|e| e.resources)
}

/// The whole evaluation: resources in order, outputs, nested deployments.
/// `state` answers `reference()` to what the template does not deploy.
pub fn evaluate(req: &DeploymentRequest, state: &dyn StateLookup) -> Result<Expansion, AzureError> {
    engine::run(req, state, false)
}

/// Outputs evaluated after the apply: `reference()` to the template's own
/// resources reads the lab's state (allocated addresses and the like).
pub fn evaluate_after_apply(
    req: &DeploymentRequest,
    state: &dyn StateLookup,
) -> Result<Expansion, AzureError> {
    engine::run(req, state, true)
}

/// One template language expression (`[...]`) evaluated in `template`'s
/// context (its parameters' defaults, variables and functions), as the
/// engine evaluates a property of an output: for the fuzzer (`fuzzing`).
pub(crate) fn evaluate_expression(
    template: &Map<String, Value>,
    expression: &str,
) -> Result<Value, AzureError> {
    engine::expression(template, expression)
}

/// `guid(parts...)` as ARM computes it (ids the daemon derives, such as a
/// deployment's correlation id).
pub fn guid_of(parts: &[String]) -> String {
    functions::guid(parts)
}

/// A .NET-style date of Unix time `t` (`yyyy-MM-ddTHH:mm:ssZ` and the like).
pub fn format_time(t: i64, format: &str) -> String {
    functions::format_time(t, format)
}

/// ARM's `templateHash`: a decimal number derived from the template.
pub fn hash_of(template: &Value) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(template.to_string().as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes")).to_string()
}

#[cfg(test)]
mod tests;
