//! Entry points for the coverage-guided fuzzers (`fuzz/`, `cargo xtask
//! fuzz`, docs/fuzzing.md). Each one is the path a hostile input takes in
//! the daemon, from bytes on: nothing here parses anything itself. A fuzz
//! target only calls one of these and ignores the answer; an `Err` is
//! Azure's refusal, which is fine; a panic, a hang or a huge allocation is
//! a bug.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::api::{children, daemon, operations, routes};
use crate::model::{AzureError, LabConfig, LabState, ResourceId};
use crate::template::{self, NoState, DEFAULT_SUBSCRIPTION};
use crate::validate::{self, RequestContext};

/// `PUT .../deployments/fuzz` with this template text: the deployment
/// request the API builds, the template's limits, its evaluation, and the
/// validation of what it expands to against an empty lab.
pub fn deploy_template(data: &[u8]) -> Result<(), AzureError> {
    let text = std::str::from_utf8(data).map_err(|_| bad_json())?;
    let template: Value = serde_json::from_str(text).map_err(|_| bad_json())?;
    let body = json!({ "properties": { "template": template, "lab": { "templateText": text } } });
    let id: ResourceId = format!(
        "/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/lab/providers/Microsoft.Resources/deployments/fuzz"
    )
    .parse()?;
    let req = routes::deployment_request(&id, &body)?;
    let expansion = template::evaluate(&req, &NoState)?;
    validate::apply_resources(
        &LabState::default(),
        expansion.resources,
        &LabConfig::default(),
        &RequestContext::default(),
    )?;
    Ok(())
}

/// The context of [`expression`]: parameters with default values,
/// variables (a `copy` variable among them) and one user-defined function.
const EXPRESSION_CONTEXT: &str = r#"{
  "parameters": {
    "name": { "type": "string", "defaultValue": "web1" },
    "count": { "type": "int", "defaultValue": 3 },
    "enabled": { "type": "bool", "defaultValue": true },
    "tags": { "type": "object", "defaultValue": { "env": "lab", "owner": "me" } },
    "prefixes": { "type": "array", "defaultValue": ["10.0.0.0/16", "10.1.0.0/16"] },
    "secret": { "type": "securestring", "defaultValue": "p@ss" }
  },
  "variables": {
    "vnetName": "[concat(parameters('name'), '-vnet')]",
    "numbers": [1, 2, 3],
    "object": { "a": 1, "b": { "c": "d" }, "e": ["x", "y"] },
    "subnetId": "[resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnetName'), 'default')]",
    "copy": [ { "name": "names", "count": 3, "input": "[concat('n', copyIndex('names'))]" } ]
  },
  "functions": [ { "namespace": "lab", "members": { "double": {
    "parameters": [ { "name": "x", "type": "int" } ],
    "output": { "type": "int", "value": "[mul(parameters('x'), 2)]" } } } } ]
}"#;

/// One expression string (`[...]`), evaluated as a template evaluates a
/// property, in a small fixed context (see `EXPRESSION_CONTEXT`).
pub fn expression(data: &[u8]) -> Result<Value, AzureError> {
    static CONTEXT: OnceLock<Map<String, Value>> = OnceLock::new();
    let context = CONTEXT.get_or_init(|| {
        serde_json::from_str(EXPRESSION_CONTEXT).expect("the fuzzing context is JSON")
    });
    let text = String::from_utf8_lossy(data);
    template::evaluate_expression(context, &text)
}

/// The resources a request body may name: every emulated type and the
/// array children, in resource group `lab` of the example lab.
pub const BODY_TARGETS: &[&str] = &[
    "Microsoft.Network/virtualNetworks/vnet1",
    "Microsoft.Web/serverfarms/plan1",
    "Microsoft.Web/sites/web1",
    "Microsoft.Network/networkInterfaces/vm1-nic",
    "Microsoft.Compute/virtualMachines/vm1",
    "Lab.Emulator/internetHosts/host1",
    "Microsoft.Network/networkSecurityGroups/nsg1",
    "Microsoft.Network/applicationSecurityGroups/asg1",
    "Microsoft.Network/routeTables/rt1",
    "Microsoft.Network/natGateways/nat1",
    "Microsoft.Network/publicIPAddresses/pip1",
    "Microsoft.Network/publicIPPrefixes/prefix1",
    "Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net",
    "Microsoft.Network/privateEndpoints/pe1",
    "Microsoft.Storage/storageAccounts/sa1",
    "Microsoft.KeyVault/vaults/kv1",
    "Microsoft.ContainerRegistry/registries/acr1",
    "Microsoft.Network/virtualNetworkGateways/gw1",
    "Microsoft.Network/localNetworkGateways/onprem",
    "Microsoft.Network/connections/c1",
    "Microsoft.Network/expressRouteCircuits/er1",
    "Lab.Emulator/onPremisesHosts/db1",
    "Microsoft.Network/virtualNetworks/vnet1/subnets/integration",
    "Microsoft.Network/virtualNetworks/vnet1/subnets/new",
    "Microsoft.Network/virtualNetworks/vnet1/virtualNetworkPeerings/p1",
    "Microsoft.Network/networkSecurityGroups/nsg1/securityRules/r1",
    "Microsoft.Network/routeTables/rt1/routes/r1",
    "Microsoft.Web/sites/web1/config/web",
    "Microsoft.Web/sites/web1/config/appsettings",
    "Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net/A/sa1",
    "Microsoft.KeyVault/vaults/kv1/secrets/s1",
    "Microsoft.Insights/components/ai1",
];

/// The lab a body is applied to: examples/lab.json with an NSG and a
/// route table (each with one rule) beside it.
fn body_state() -> &'static LabState {
    static STATE: OnceLock<LabState> = OnceLock::new();
    STATE.get_or_init(|| {
        let lab: Value =
            serde_json::from_str(include_str!("../../examples/lab.json")).expect("example JSON");
        let extra = json!({ "resources": [
            { "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg1", "properties": {
                "securityRules": [ { "name": "r1", "properties": { "priority": 100, "direction": "Inbound",
                  "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*", "sourcePortRange": "*",
                  "destinationAddressPrefix": "*", "destinationPortRange": "80" } } ] } },
            { "type": "Microsoft.Network/routeTables", "name": "rt1", "properties": {
                "routes": [ { "name": "r1", "properties": { "addressPrefix": "0.0.0.0/0",
                  "nextHopType": "Internet" } } ] } }
        ]});
        let mut state = LabState::default();
        for t in [lab, extra] {
            let req = template::DeploymentRequest {
                resource_group: "lab".into(),
                template: t,
                ..Default::default()
            };
            let resources = template::expand(&req).expect("the fixture expands");
            state = validate::apply_resources(
                &state,
                resources,
                &LabConfig::default(),
                &RequestContext::default(),
            )
            .expect("the fixture is valid");
        }
        state
    })
}

/// An ARM request body for one resource of the example lab: the first
/// byte picks the resource (`BODY_TARGETS`) and the method (high bit:
/// `PATCH`, else `PUT`); the rest is the body. The API's path: the JSON
/// parse, the resource the body declares (or the stored one patched, or
/// the parent with its array child edited), validation of the whole lab,
/// and the view the API answers with.
pub fn request_body(data: &[u8]) -> Result<Value, AzureError> {
    let Some((&selector, body)) = data.split_first() else {
        return Ok(Value::Null);
    };
    let patch = selector & 0x80 != 0;
    let target = BODY_TARGETS[usize::from(selector & 0x7f) % BODY_TARGETS.len()];
    let id: ResourceId =
        format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/lab/providers/{target}")
            .parse()?;
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| bad_json())?
    };
    let state = body_state();
    let lab = LabConfig::default();
    let ctx = RequestContext::default();
    if children::array_of(&id).is_some() {
        let edit = if patch {
            children::Edit::Patch(&body)
        } else {
            children::Edit::Put(&body)
        };
        let parent = children::edited(state, &id, edit)?;
        let next = validate::apply_resources(state, vec![parent], &lab, &ctx)?;
        return children::child_view(&next, &lab, &id).map_err(api_error);
    }
    let resource = if patch {
        operations::patched(state, &id, &body)?
    } else {
        daemon::resource_from_body(&id, &body)
    };
    let next = validate::apply_resources(state, vec![resource], &lab, &ctx)?;
    crate::plan::view::resource_view(&next, &lab, &id)
}

/// A resource id as the API reads it from a path or a body.
pub fn resource_id(data: &[u8]) -> Result<ResourceId, AzureError> {
    let text = String::from_utf8_lossy(data);
    let id: ResourceId = text.parse()?;
    // What every caller does with an id next.
    let _ = (id.key(), id.full_type(), id.name(), id.parent());
    Ok(id)
}

fn bad_json() -> AzureError {
    AzureError::bad_request(
        "InvalidRequestContent",
        "the request body is not valid JSON",
    )
}

fn api_error(e: daemon::ApiError) -> AzureError {
    match e {
        daemon::ApiError::Azure(e) => e,
        daemon::ApiError::Internal(e) => AzureError::bad_request("InternalError", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_load_and_each_entry_point_answers() {
        let lab = include_bytes!("../../examples/lab.json");
        deploy_template(lab).unwrap();
        assert_eq!(
            expression(b"[lab.double(parameters('count'))]").unwrap(),
            json!(6)
        );
        assert_eq!(
            expression(b"[variables('names')[copyIndex()]]").unwrap(),
            json!("n1")
        );
        let mut body = vec![2u8];
        body.extend_from_slice(
            br#"{"location": "westeurope", "properties": {"serverFarmId": "x"}}"#,
        );
        assert!(request_body(&body).is_err());
        let view = request_body(&[0x80 | 2, b'{', b'}']).unwrap();
        assert_eq!(view["name"], "web1");
        assert!(resource_id(b"/subscriptions/s/resourceGroups/r/providers/A.B/c/d").is_ok());
        assert!(resource_id(b"/subscriptions/s").is_err());
    }
}
