//! Template expressions: `[parameters('x')]` and `[variables('x')]` are
//! evaluated; `[[...` is an escaped literal `[`; every other expression is
//! refused with a message that says where it is and what to write instead.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::AzureError;

/// Where a value sits, for messages: `resource Microsoft.Web/sites 'web1'`,
/// `variable 'subnetId'`, `parameter 'location'`.
pub(crate) type Context<'a> = &'a str;

/// Values of parameters (final) and variables (raw, evaluated on use).
pub(crate) struct Evaluator {
    /// Lower-cased name -> value.
    pub params: BTreeMap<String, Value>,
    /// Lower-cased name -> raw template value.
    pub variables: BTreeMap<String, Value>,
}

/// One recognised expression.
enum Expr {
    Parameter(String),
    Variable(String),
}

/// `parameters('x')` / `variables('x')`, spaces allowed, function names
/// case-insensitive as in ARM.
fn parse(inner: &str) -> Option<Expr> {
    let inner = inner.trim();
    let open = inner.find('(')?;
    let func = inner[..open].trim().to_ascii_lowercase();
    let rest = inner[open + 1..].trim();
    let arg = rest.strip_suffix(')')?.trim();
    let name = arg.strip_prefix('\'')?.strip_suffix('\'')?;
    if name.contains('\'') || name.is_empty() {
        return None;
    }
    match func.as_str() {
        "parameters" => Some(Expr::Parameter(name.to_string())),
        "variables" => Some(Expr::Variable(name.to_string())),
        _ => None,
    }
}

pub(crate) fn invalid_template(message: String) -> AzureError {
    AzureError::bad_request("InvalidTemplate", message)
}

fn unsupported(ctx: Context, path: &str, s: &str) -> AzureError {
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(", property '{path}'")
    };
    invalid_template(format!(
        "Deployment template validation failed: {ctx}{at}: the template expression \"{s}\" is not supported yet. \
         The lab evaluates only [parameters('name')] and [variables('name')]; write the literal value instead \
         (for a resource id, the full id: /subscriptions/<subscription>/resourceGroups/<group>/providers/...). \
         A literal string that starts with '[' is written '[['."
    ))
    .with_target(path.to_string())
}

impl Evaluator {
    /// Evaluate every string of `v`. `depth` guards against variables that refer to themselves.
    pub fn eval(
        &self,
        v: &Value,
        ctx: Context,
        path: &str,
        depth: u32,
    ) -> Result<Value, AzureError> {
        match v {
            Value::String(s) => self.eval_str(s, ctx, path, depth),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.eval(item, ctx, &format!("{path}[{i}]"), depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, item) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.insert(k.clone(), self.eval(item, ctx, &p, depth)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn eval_str(&self, s: &str, ctx: Context, path: &str, depth: u32) -> Result<Value, AzureError> {
        if let Some(rest) = s.strip_prefix("[[") {
            return Ok(Value::String(format!("[{rest}")));
        }
        if !s.starts_with('[') {
            return Ok(Value::String(s.to_string()));
        }
        let inner = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        match inner.and_then(parse) {
            Some(Expr::Parameter(name)) => self.params.get(&name.to_ascii_lowercase()).cloned().ok_or_else(|| {
                invalid_template(format!(
                    "Deployment template validation failed: {ctx}, property '{path}': the template parameter \
                     '{name}' is not declared in the template's 'parameters'."
                ))
            }),
            Some(Expr::Variable(name)) => {
                let raw = self.variables.get(&name.to_ascii_lowercase()).ok_or_else(|| {
                    invalid_template(format!(
                        "Deployment template validation failed: {ctx}, property '{path}': the template variable \
                         '{name}' is not declared in the template's 'variables'."
                    ))
                })?;
                if depth > 32 {
                    return Err(invalid_template(format!(
                        "Deployment template validation failed: variable '{name}' refers to itself (circular reference)."
                    )));
                }
                self.eval(raw, &format!("variable '{name}'"), "", depth + 1)
            }
            None => Err(unsupported(ctx, path, s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev() -> Evaluator {
        Evaluator {
            params: [("loc".to_string(), json!("westeurope"))].into(),
            variables: [
                ("a".to_string(), json!("[variables('b')]")),
                ("b".to_string(), json!(["[parameters('LOC')]"])),
            ]
            .into(),
        }
    }

    #[test]
    fn substitutes_and_unescapes() {
        let v = ev().eval(
            &json!({"x": "[parameters( 'loc' )]", "y": "[variables('a')]", "z": "[[lit]"}),
            "r",
            "",
            0,
        );
        assert_eq!(
            v.unwrap(),
            json!({"x": "westeurope", "y": ["westeurope"], "z": "[lit]"})
        );
    }

    #[test]
    fn other_functions_name_the_place() {
        let e = ev()
            .eval(
                &json!({"p": {"id": "[resourceId('x')]"}}),
                "resource T 'n'",
                "properties",
                0,
            )
            .unwrap_err();
        assert_eq!(e.code, "InvalidTemplate");
        assert!(e.message.contains("properties.p.id"), "{}", e.message);
        assert!(e.message.contains("not supported yet"), "{}", e.message);
    }

    #[test]
    fn cycles_are_refused() {
        let e = Evaluator {
            params: BTreeMap::new(),
            variables: [("a".to_string(), json!("[variables('a')]"))].into(),
        };
        assert!(e
            .eval(&json!("[variables('a')]"), "r", "x", 0)
            .unwrap_err()
            .message
            .contains("circular"));
    }
}
