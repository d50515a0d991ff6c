//! Test fixtures shared by validation, plan and view tests: the example lab
//! and one-line deployments into resource group `lab`.

use serde_json::{json, Value};

use crate::model::{AzureError, LabConfig, LabState, ResourceId};
use crate::template::{expand, DeploymentRequest, DEFAULT_SUBSCRIPTION};

/// `examples/lab.json`.
pub(crate) const EXAMPLE: &str = include_str!("../../../examples/lab.json");

/// The id of `path` (`Microsoft.Web/sites/web1`) in resource group `lab`.
pub(crate) fn rid(path: &str) -> ResourceId {
    format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/lab/providers/{path}")
        .parse()
        .unwrap()
}

/// Deploy template resources (JSON array) into `state`.
pub(crate) fn deploy(state: &LabState, resources: Value) -> Result<LabState, AzureError> {
    let req = DeploymentRequest {
        subscription: DEFAULT_SUBSCRIPTION.into(),
        resource_group: "lab".into(),
        template: json!({ "resources": resources }),
        parameters: Default::default(),
    };
    super::apply_resources(
        state,
        expand(&req)?,
        &LabConfig::default(),
        &super::RequestContext::default(),
    )
}

/// The example lab, deployed into an empty state.
pub(crate) fn example_state() -> LabState {
    deploy_template(&LabState::default(), serde_json::from_str(EXAMPLE).unwrap()).unwrap()
}

/// Deploy a whole template (default parameter values) into `state`.
pub(crate) fn deploy_template(state: &LabState, template: Value) -> Result<LabState, AzureError> {
    let req = DeploymentRequest {
        subscription: DEFAULT_SUBSCRIPTION.into(),
        resource_group: "lab".into(),
        template,
        parameters: Default::default(),
    };
    super::apply_resources(
        state,
        expand(&req)?,
        &LabConfig::default(),
        &super::RequestContext::default(),
    )
}

/// A resource's id string, for templates.
pub(crate) fn id_str(path: &str) -> String {
    rid(path).to_string()
}
