//! Template parameters: declared types, defaults, allowed values, and the
//! values of the request.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::expr::{invalid_template, Evaluator};
use crate::model::AzureError;

/// Final parameter values by lower-cased name. Request values win over
/// `defaultValue`; a default may use `[parameters()]`/`[variables()]` of
/// parameters declared before it.
pub(crate) fn resolve(
    template: &Map<String, Value>,
    given: &BTreeMap<String, Value>,
    scope: &super::functions::Scope,
) -> Result<BTreeMap<String, Value>, AzureError> {
    let declared = match template.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(invalid_template(
                "The template's 'parameters' must be an object.".into(),
            ))
        }
    };
    let unknown: Vec<&str> = given
        .keys()
        .filter(|k| !declared.keys().any(|d| d.eq_ignore_ascii_case(k)))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(invalid_template(format!(
            "The template parameters '{}' given to the deployment are not declared in the template. \
             Declared parameters: {}.",
            unknown.join("', '"),
            declared.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let variables: BTreeMap<String, Value> = match template.get("variables") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let mut ev = Evaluator {
        params: BTreeMap::new(),
        variables,
        scope: scope.clone(),
    };
    for (name, decl) in &declared {
        let ty = decl
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string")
            .to_ascii_lowercase();
        let value = match given.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, v)) => coerce(name, &ty, v)?,
            None => match decl.get("defaultValue") {
                Some(d) => ev.eval(d, &format!("parameter '{name}'"), "defaultValue", 0)?,
                None => {
                    return Err(AzureError::bad_request(
                        "InvalidTemplate",
                        format!(
                            "Deployment template validation failed: the value for the template parameter '{name}' \
                             is not provided and it has no defaultValue. Give it with -p {name}=<value>."
                        ),
                    ))
                }
            },
        };
        if let Some(Value::Array(allowed)) = decl.get("allowedValues") {
            if !allowed.contains(&value) {
                return Err(invalid_template(format!(
                    "Deployment template validation failed: the provided value {value} for the template parameter \
                     '{name}' is not valid. Allowed values: {}.",
                    Value::Array(allowed.clone())
                )));
            }
        }
        ev.params.insert(name.to_ascii_lowercase(), value);
    }
    Ok(ev.params)
}

/// Check a given value against the declared type, converting strings for int/bool.
fn coerce(name: &str, ty: &str, v: &Value) -> Result<Value, AzureError> {
    let bad = |want: &str| {
        invalid_template(format!(
            "Deployment template validation failed: the template parameter '{name}' is declared as {want}, \
             but the value {v} is not one."
        ))
    };
    match (ty, v) {
        ("string" | "securestring", Value::String(_)) => Ok(v.clone()),
        ("int", Value::Number(n)) if n.is_i64() => Ok(v.clone()),
        ("int", Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("int")),
        ("bool", Value::Bool(_)) => Ok(v.clone()),
        ("bool", Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        ("bool", Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        ("object" | "secureobject", Value::Object(_)) | ("array", Value::Array(_)) => Ok(v.clone()),
        ("object" | "secureobject" | "array", Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(|p| p.is_object() == (ty != "array"))
            .ok_or_else(|| bad(ty)),
        ("string" | "securestring", _) => Err(bad("string")),
        ("int" | "bool" | "object" | "secureobject" | "array", _) => Err(bad(ty)),
        _ => Ok(v.clone()),
    }
}
