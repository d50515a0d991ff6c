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
        ..Default::default()
    };
    super::apply_resources(
        state,
        expand(&req)?,
        &LabConfig::default(),
        &super::RequestContext::default(),
    )
}

/// Deploy template resources into resource group `lab` of `subscription`, as `ctx`'s principal.
pub(crate) fn deploy_as(
    state: &LabState,
    subscription: &str,
    resources: Value,
    ctx: &super::RequestContext,
) -> Result<LabState, AzureError> {
    let req = DeploymentRequest {
        subscription: subscription.into(),
        resource_group: "lab".into(),
        template: json!({ "resources": resources }),
        parameters: Default::default(),
        ..Default::default()
    };
    super::apply_resources(state, expand(&req)?, &LabConfig::default(), ctx)
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
        ..Default::default()
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

// Template resources for rule tests, all in resource group `lab`.

/// A VNet resource.
pub(crate) fn vnet(name: &str, prefixes: Value, subnets: Value) -> Value {
    json!({"type": "Microsoft.Network/virtualNetworks", "name": name,
           "properties": {"addressSpace": {"addressPrefixes": prefixes}, "subnets": subnets}})
}

pub(crate) fn subnet(name: &str, prefix: &str) -> Value {
    json!({"name": name, "properties": {"addressPrefix": prefix}})
}

pub(crate) fn plan(name: &str, sku: &str, capacity: u32) -> Value {
    json!({"type": "Microsoft.Web/serverfarms", "name": name, "kind": "linux", "sku": {"name": sku, "capacity": capacity}})
}

pub(crate) fn site(name: &str, plan: &str, subnet: Option<&str>) -> Value {
    let mut props = json!({"serverFarmId": id_str(&format!("Microsoft.Web/serverfarms/{plan}"))});
    if let Some(s) = subnet {
        props["virtualNetworkSubnetId"] =
            json!(id_str(&format!("Microsoft.Network/virtualNetworks/{s}")));
    }
    json!({"type": "Microsoft.Web/sites", "name": name, "properties": props})
}

pub(crate) fn nic(name: &str, subnet: &str, addr: Option<&str>) -> Value {
    let mut cfg = json!({"name": "ipconfig1", "properties": {
        "subnet": {"id": id_str(&format!("Microsoft.Network/virtualNetworks/{subnet}"))}}});
    if let Some(a) = addr {
        cfg["properties"]["privateIPAllocationMethod"] = json!("Static");
        cfg["properties"]["privateIPAddress"] = json!(a);
    }
    json!({"type": "Microsoft.Network/networkInterfaces", "name": name, "properties": {"ipConfigurations": [cfg]}})
}

pub(crate) fn vm(name: &str, nics: &[&str]) -> Value {
    let nics: Vec<Value> = nics
        .iter()
        .map(|n| json!({"id": id_str(&format!("Microsoft.Network/networkInterfaces/{n}"))}))
        .collect();
    json!({"type": "Microsoft.Compute/virtualMachines", "name": name, "properties": {"networkProfile": {"networkInterfaces": nics}}})
}

/// `e` has Azure's `code` and its message names `needle`.
#[track_caller]
pub(crate) fn assert_refused(e: &AzureError, code: &str, needle: &str) {
    assert_eq!(e.code, code, "{}", e.message);
    assert!(e.message.contains(needle), "{}", e.message);
}

/// The error code of a result, or `Ok`.
pub(crate) fn code(r: Result<LabState, AzureError>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => e.code,
    }
}

/// Deploy into an empty state.
pub(crate) fn fresh(resources: Value) -> Result<LabState, AzureError> {
    deploy(&LabState::default(), resources)
}
