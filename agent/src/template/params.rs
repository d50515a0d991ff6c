//! Template parameters: declared types, defaults, allowed values, and the
//! values of the request.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::expr::{invalid_template, Evaluator, Frame};
use crate::model::AzureError;

/// Final parameter values by lower-cased name. Request values win over
/// `defaultValue`; a default may use `[parameters()]` of parameters
/// declared before it, and `newGuid()`/`utcNow()` (only defaults may).
pub(crate) fn resolve(
    template: &Map<String, Value>,
    given: &BTreeMap<String, Value>,
    base: &Evaluator,
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
    let mut ev = base.clone();
    ev.params = BTreeMap::new();
    // A default may name a parameter declared after it (the JSON object
    // has no order here): resolve in passes until nothing moves.
    let mut pending: Vec<(&String, &Value)> = declared.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        let mut last = None;
        for (name, decl) in pending {
            match one(name, decl, given, &ev) {
                Ok(value) => {
                    ev.params.insert(name.to_ascii_lowercase(), value);
                }
                Err(e)
                    if e.message.contains("the template parameter '")
                        && e.message.contains("is not found") =>
                {
                    waiting.push((name, decl));
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        if waiting.len() == before {
            return Err(last.expect("something waits"));
        }
        pending = waiting;
    }
    Ok(ev.params)
}

/// One parameter's final value.
fn one(
    name: &str,
    decl: &Value,
    given: &BTreeMap<String, Value>,
    ev: &Evaluator,
) -> Result<Value, AzureError> {
    {
        let ty = decl
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string")
            .to_ascii_lowercase();
        let value = match given.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, v)) => coerce(name, &ty, v)?,
            None => match decl.get("defaultValue") {
                Some(d) => {
                    let mut f = Frame::new(format!("parameter '{name}'"), None);
                    f.in_default = true;
                    ev.eval(d, &f, &format!("parameters.{name}.defaultValue"))?
                }
                None if decl.get("nullable").and_then(Value::as_bool) == Some(true) => Value::Null,
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
        check_limits(name, decl, &value)?;
        if let Some(Value::Array(allowed)) = decl.get("allowedValues") {
            if !allowed.contains(&value) {
                // A secure parameter's value is never echoed, not even in an error.
                let shown = if ty.starts_with("secure") {
                    "(secure)".to_string()
                } else {
                    value.to_string()
                };
                return Err(invalid_template(format!(
                    "Deployment template validation failed: the provided value {shown} for the template parameter \
                     '{name}' is not valid. Allowed values: {}.",
                    Value::Array(allowed.clone())
                )));
            }
        }
        Ok(value)
    }
}

/// Check a given value against the declared type, converting strings for int/bool.
fn coerce(name: &str, ty: &str, v: &Value) -> Result<Value, AzureError> {
    let shown = if ty.starts_with("secure") {
        "(secure)".to_string()
    } else {
        v.to_string()
    };
    let bad = |want: &str| {
        invalid_template(format!(
            "Deployment template validation failed: the template parameter '{name}' is declared as {want}, \
             but the value {shown} is not one."
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

/// `minValue`/`maxValue` (int) and `minLength`/`maxLength` (string, array),
/// with ARM's wording.
fn check_limits(name: &str, decl: &Value, value: &Value) -> Result<(), AzureError> {
    let limit = |k: &str| decl.get(k).and_then(Value::as_i64);
    let fail = |what: String| {
        Err(invalid_template(format!(
            "Deployment template validation failed: 'The provided value for the template parameter '{name}' is not \
             valid. {what} Please see https://aka.ms/arm-syntax-parameters for usage details.'."
        )))
    };
    if let Some(n) = value.as_i64() {
        if let Some(min) = limit("minValue").filter(|m| n < *m) {
            return fail(format!(
                "The value '{n}' is less than the minimum value '{min}'."
            ));
        }
        if let Some(max) = limit("maxValue").filter(|m| n > *m) {
            return fail(format!(
                "The value '{n}' is greater than the maximum value '{max}'."
            ));
        }
    }
    let len = match value {
        Value::String(s) => Some(s.chars().count() as i64),
        Value::Array(a) => Some(a.len() as i64),
        _ => None,
    };
    if let Some(len) = len {
        if let Some(min) = limit("minLength").filter(|m| len < *m) {
            return fail(format!(
                "The length '{len}' is less than the minimum length '{min}'."
            ));
        }
        if let Some(max) = limit("maxLength").filter(|m| len > *m) {
            return fail(format!(
                "The length '{len}' is greater than the maximum length '{max}'."
            ));
        }
    }
    Ok(())
}
