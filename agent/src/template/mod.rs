//! ARM template reader: parameters (with defaults, request values override),
//! variables, resources (nested child resources flattened), and the two
//! expressions `[parameters('x')]` / `[variables('x')]`.
//!
//! Output: [`GenericResource`]s with full ids in the request's subscription and
//! resource group. Child types (`virtualNetworks/subnets`, `sites/config`,
//! `sites/networkConfig`) are returned as they are; `validate` merges them
//! into their parents, which may come from an earlier deployment.

mod expr;
mod functions;
mod lang;
mod params;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{AzureError, GenericResource, ResourceId};
use expr::{invalid_template, Evaluator};

/// The subscription of a lab that names none, and the placeholder templates
/// may write in resource ids: ids naming it are rewritten to the request's
/// subscription.
pub const DEFAULT_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";

/// The region of the lab's resource groups: what `resourceGroup().location`
/// answers (the lab's examples and tests live in westeurope).
pub const DEFAULT_LOCATION: &str = "westeurope";

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
}

fn default_subscription() -> String {
    DEFAULT_SUBSCRIPTION.to_string()
}

/// ARM template -> resources with full ids in that subscription/resource group.
pub fn expand(req: &DeploymentRequest) -> Result<Vec<GenericResource>, AzureError> {
    if req.resource_group.trim().is_empty() {
        return Err(AzureError::bad_request(
            "InvalidResourceGroup",
            "A deployment needs a resource group name (e.g. -g rg1).",
        ));
    }
    let template = req.template.as_object().ok_or_else(|| {
        invalid_template("The template must be a JSON object with a 'resources' array.".into())
    })?;
    let scope = functions::Scope {
        subscription: req.subscription.clone(),
        resource_group: req.resource_group.clone(),
        location: DEFAULT_LOCATION.to_string(),
        deployment: "lab".to_string(),
    };
    let params = params::resolve(template, &req.parameters, &scope)?;
    let variables = match template.get("variables") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        Some(_) => {
            return Err(invalid_template(
                "The template's 'variables' must be an object.".into(),
            ))
        }
    };
    let ev = Evaluator {
        params,
        variables,
        scope,
    };
    let resources = match template.get("resources") {
        Some(Value::Array(r)) => r,
        _ => {
            return Err(invalid_template(
                "The template has no 'resources' array. Put the resources to deploy in \"resources\": [ ... ].".into(),
            ))
        }
    };
    let mut flat = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        flatten(r, None, &format!("resources[{i}]"), &mut flat)?;
    }
    let mut out: Vec<GenericResource> = Vec::new();
    for (raw, parent, at) in flat {
        if let Some(res) = build(req, &ev, &raw, parent.as_ref(), &at)? {
            if out.iter().any(|o| o.id == res.id) {
                return Err(invalid_template(format!(
                    "Deployment template validation failed: the resource '{}' is defined multiple times in the template.",
                    res.id
                )));
            }
            out.push(res);
        }
    }
    Ok(out)
}

/// `(resource JSON, (parent type, parent name) as written, template path)`.
type Flat = (Value, Option<(Value, Value)>, String);

/// Nested `resources` become separate entries that remember their parent.
fn flatten(
    r: &Value,
    parent: Option<(Value, Value)>,
    at: &str,
    out: &mut Vec<Flat>,
) -> Result<(), AzureError> {
    let obj = r.as_object().ok_or_else(|| {
        invalid_template(format!(
            "Template entry {at} must be an object with 'type' and 'name'."
        ))
    })?;
    if let Some(Value::Array(children)) = obj.get("resources") {
        let me = (
            obj.get("type").cloned().unwrap_or(Value::Null),
            obj.get("name").cloned().unwrap_or(Value::Null),
        );
        let me = match &parent {
            None => me,
            // A grandchild: its parent's full type and name are the joined ones.
            Some((pt, pn)) => (join(pt, &me.0), join(pn, &me.1)),
        };
        for (i, c) in children.iter().enumerate() {
            flatten(c, Some(me.clone()), &format!("{at}.resources[{i}]"), out)?;
        }
    }
    let mut own = obj.clone();
    own.remove("resources");
    out.push((Value::Object(own), parent, at.to_string()));
    Ok(())
}

fn join(a: &Value, b: &Value) -> Value {
    match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) => Value::String(format!("{a}/{b}")),
        _ => Value::Null,
    }
}

/// One template resource -> a `GenericResource` (None when `condition` is false).
fn build(
    req: &DeploymentRequest,
    ev: &Evaluator,
    raw: &Value,
    parent: Option<&(Value, Value)>,
    at: &str,
) -> Result<Option<GenericResource>, AzureError> {
    let obj = raw.as_object().expect("flatten keeps objects");
    let shown = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let ctx = format!("resource {} '{}' ({at})", shown("type"), shown("name"));
    if obj.contains_key("copy") {
        return Err(invalid_template(format!(
            "Deployment template validation failed: {ctx}: 'copy' loops are not supported yet; write each resource out."
        )));
    }
    let v = ev.eval(raw, &ctx, "", 0)?;
    if let Some(cond) = v.get("condition") {
        match cond {
            Value::Bool(false) => return Ok(None),
            Value::Bool(true) => {}
            _ => {
                return Err(invalid_template(format!(
                    "{ctx}: 'condition' must be true or false."
                )))
            }
        }
    }
    let field = |k: &str| -> Result<String, AzureError> {
        match v.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(invalid_template(format!(
                "Deployment template validation failed: {ctx}: '{k}' is required and must be a string."
            ))),
        }
    };
    let (mut type_, mut name) = (field("type")?, field("name")?);
    if let Some((pt, pn)) = parent {
        let pt = ev.eval(pt, &ctx, "type", 0)?;
        let pn = ev.eval(pn, &ctx, "name", 0)?;
        let (Some(pt), Some(pn)) = (pt.as_str(), pn.as_str()) else {
            return Err(invalid_template(format!(
                "{ctx}: the parent resource needs a string 'type' and 'name'."
            )));
        };
        // ARM accepts the short child type ("subnets") or the full one.
        let full_type_given = type_.split('/').next().is_some_and(|ns| ns.contains('.'));
        if !full_type_given {
            type_ = format!("{pt}/{type_}");
        }
        if name.split('/').count() < type_.split('/').count() - 1 {
            name = format!("{pn}/{name}");
        }
    }
    let id = resource_id(req, &type_, &name, &ctx)?;
    let mut properties = v
        .get("properties")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    rewrite_subscription(&mut properties, &req.subscription);
    let opt_str = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Some(GenericResource {
        id,
        type_,
        name,
        location: opt_str("location"),
        kind: opt_str("kind"),
        sku: v.get("sku").filter(|s| !s.is_null()).cloned(),
        properties,
        tags: v.get("tags").filter(|s| !s.is_null()).cloned(),
        identity: v.get("identity").filter(|s| !s.is_null()).cloned(),
    }))
}

/// `Microsoft.Network/virtualNetworks/subnets` + `vnet1/s1` -> the full id.
fn resource_id(
    req: &DeploymentRequest,
    type_: &str,
    name: &str,
    ctx: &str,
) -> Result<ResourceId, AzureError> {
    let mut types = type_.split('/');
    let namespace = types.next().unwrap_or_default();
    let types: Vec<&str> = types.collect();
    let names: Vec<&str> = name.split('/').collect();
    if namespace.is_empty() || types.is_empty() || types.iter().any(|t| t.is_empty()) {
        return Err(invalid_template(format!(
            "Deployment template validation failed: {ctx}: '{type_}' is not a resource type like Microsoft.Web/sites."
        )));
    }
    if types.len() != names.len() || names.iter().any(|n| n.is_empty()) {
        return Err(invalid_template(format!(
            "Deployment template validation failed: {ctx}: the name '{name}' must have {} segment(s) separated by '/' \
             for type '{type_}' (e.g. 'vnet1/subnet1' for Microsoft.Network/virtualNetworks/subnets).",
            types.len()
        )));
    }
    Ok(ResourceId {
        subscription: req.subscription.clone(),
        resource_group: req.resource_group.clone(),
        namespace: namespace.to_string(),
        segments: types
            .iter()
            .zip(&names)
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect(),
    })
}

/// Ids written with the placeholder subscription point into the request's.
fn rewrite_subscription(v: &mut Value, subscription: &str) {
    match v {
        Value::String(s) => {
            let prefix = format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/");
            if s.len() > prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(&prefix) {
                *s = format!("/subscriptions/{subscription}/{}", &s[prefix.len()..]);
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| rewrite_subscription(x, subscription)),
        Value::Object(m) => m
            .values_mut()
            .for_each(|x| rewrite_subscription(x, subscription)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
