//! Template expressions: `[parameters('x')]` and `[variables('x')]` are
//! evaluated; `[[...` is an escaped literal `[`; every other expression is
//! refused with a message that says where it is and what to write instead.

use std::collections::BTreeMap;

use serde_json::Value;

use super::functions::{self, Scope};
use super::lang::{parse, Node};
use crate::model::AzureError;

/// Where a value sits, for messages: `resource Microsoft.Web/sites 'web1'`,
/// `variable 'subnetId'`, `parameter 'location'`.
pub(crate) type Context<'a> = &'a str;

/// Values of parameters (final) and variables (raw, evaluated on use), and
/// where the deployment goes.
pub(crate) struct Evaluator {
    /// Lower-cased name -> value.
    pub params: BTreeMap<String, Value>,
    /// Lower-cased name -> raw template value.
    pub variables: BTreeMap<String, Value>,
    pub scope: Scope,
}

pub(crate) fn invalid_template(message: String) -> AzureError {
    AzureError::bad_request("InvalidTemplate", message)
}

/// `InvalidTemplate` for an expression that does not parse or evaluate,
/// naming where it is, as ARM's "Unable to evaluate template language
/// function" / "The template language expression ... is not valid" do.
fn not_valid(ctx: Context, path: &str, s: &str, why: &str) -> AzureError {
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(", property '{path}'")
    };
    invalid_template(format!(
        "Deployment template validation failed: {ctx}{at}: the template language expression \"{s}\" is not valid: \
         {why}. A literal string that starts with '[' is written '[['."
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
        // Only a string that is wholly `[...]` is an expression (ARM's rule).
        let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
            return Ok(Value::String(s.to_string()));
        };
        let node = parse(inner).map_err(|why| not_valid(ctx, path, s, &why))?;
        self.node(&node, ctx, path, s, depth)
    }

    fn node(
        &self,
        n: &Node,
        ctx: Context,
        path: &str,
        s: &str,
        depth: u32,
    ) -> Result<Value, AzureError> {
        let bad = |why: String| not_valid(ctx, path, s, &why);
        match n {
            Node::Str(x) => Ok(Value::String(x.clone())),
            Node::Int(i) => Ok(Value::from(*i)),
            Node::Member(base, name) => {
                let v = self.node(base, ctx, path, s, depth)?;
                v.as_object()
                    .and_then(|o| {
                        o.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v.clone())
                    })
                    .ok_or_else(|| {
                        bad(format!(
                            "the language expression property '{name}' doesn't exist"
                        ))
                    })
            }
            Node::Index(base, index) => {
                let v = self.node(base, ctx, path, s, depth)?;
                let i = self.node(index, ctx, path, s, depth)?;
                match (&v, &i) {
                    (Value::Array(items), Value::Number(k)) => k
                        .as_u64()
                        .and_then(|k| items.get(k as usize).cloned())
                        .ok_or_else(|| bad(format!("the index {k} is out of range"))),
                    (Value::Object(o), Value::String(k)) => o
                        .iter()
                        .find(|(kk, _)| kk.eq_ignore_ascii_case(k))
                        .map(|(_, x)| x.clone())
                        .ok_or_else(|| {
                            bad(format!(
                                "the language expression property '{k}' doesn't exist"
                            ))
                        }),
                    _ => Err(bad(format!("{i} cannot index {v}"))),
                }
            }
            Node::Call(name, args) => {
                let lower = name.to_ascii_lowercase();
                match lower.as_str() {
                    "parameters" | "variables" => {
                        let [Node::Str(_) | Node::Call(..) | Node::Member(..) | Node::Index(..)] =
                            args.as_slice()
                        else {
                            return Err(bad(format!("'{name}' takes one name")));
                        };
                        let key = match self.node(&args[0], ctx, path, s, depth)? {
                            Value::String(k) => k,
                            other => {
                                return Err(bad(format!("'{name}' takes a name, not {other}")))
                            }
                        };
                        if lower == "parameters" {
                            self.params.get(&key.to_ascii_lowercase()).cloned().ok_or_else(|| {
                                invalid_template(format!(
                                    "Deployment template validation failed: {ctx}, property '{path}': the template \
                                     parameter '{key}' is not declared in the template's 'parameters'."
                                ))
                            })
                        } else {
                            let raw = self.variables.get(&key.to_ascii_lowercase()).ok_or_else(|| {
                                invalid_template(format!(
                                    "Deployment template validation failed: {ctx}, property '{path}': the template \
                                     variable '{key}' is not declared in the template's 'variables'."
                                ))
                            })?;
                            if depth > 32 {
                                return Err(invalid_template(format!(
                                    "Deployment template validation failed: variable '{key}' refers to itself \
                                     (circular reference)."
                                )));
                            }
                            self.eval(raw, &format!("variable '{key}'"), "", depth + 1)
                        }
                    }
                    // Lazy: only the branch taken is evaluated.
                    "if" => {
                        let [c, yes, no] = args.as_slice() else {
                            return Err(bad("'if' takes a condition and two values".into()));
                        };
                        let c = self.node(c, ctx, path, s, depth)?;
                        let branch = if c.as_bool().unwrap_or(false) {
                            yes
                        } else {
                            no
                        };
                        self.node(branch, ctx, path, s, depth)
                    }
                    _ => {
                        let values = args
                            .iter()
                            .map(|a| self.node(a, ctx, path, s, depth))
                            .collect::<Result<Vec<_>, _>>()?;
                        match functions::call(&self.scope, &lower, &values) {
                            Some(r) => r.map_err(bad),
                            None => Err(bad(format!(
                                "the template function '{name}' is not valid here or not supported by the lab yet"
                            ))),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            subscription: "sub1".into(),
            resource_group: "rg1".into(),
            location: "westeurope".into(),
            deployment: "d1".into(),
        }
    }

    fn ev() -> Evaluator {
        Evaluator {
            params: [
                ("loc".to_string(), json!("westeurope")),
                ("n".to_string(), json!(3)),
            ]
            .into(),
            variables: [
                ("a".to_string(), json!("[variables('b')]")),
                ("b".to_string(), json!(["[parameters('LOC')]"])),
                ("o".to_string(), json!({"Inner": {"x": [10, 20]}})),
            ]
            .into(),
            scope: scope(),
        }
    }

    fn one(s: &str) -> Value {
        ev().eval(&json!(s), "r", "p", 0)
            .unwrap_or_else(|e| panic!("{s}: {}", e.message))
    }

    /// Examples from Azure's template-functions reference (their Outputs
    /// tables are the oracle).
    #[test]
    fn functions_as_azure_documents_them() {
        assert_eq!(one("[resourceGroup().location]"), json!("westeurope"));
        assert_eq!(one("[resourceGroup().name]"), json!("rg1"));
        assert_eq!(
            one("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v1', 's1')]"),
            json!("/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1")
        );
        assert_eq!(
            one("[resourceId('otherRG', 'Microsoft.Web/serverfarms', 'p')]"),
            json!(
                "/subscriptions/sub1/resourceGroups/otherRG/providers/Microsoft.Web/serverfarms/p"
            )
        );
        assert_eq!(
            one("[concat('web-', toLower('ABC'), '-', string(parameters('n')))]"),
            json!("web-abc-3")
        );
        assert_eq!(
            one("[concat(createArray(1, 2), createArray(3))]"),
            json!([1, 2, 3])
        );
        assert_eq!(one("[format('{0}-{1}', 'a', 2)]"), json!("a-2"));
        assert_eq!(one("[format('{{x}} {0}', 'y')]"), json!("{x} y"));
        assert_eq!(
            one("[if(equals(parameters('n'), 3), 'yes', nosuchfunction())]"),
            json!("yes"),
            "if is lazy"
        );
        assert_eq!(one("[variables('o').inner.x[1]]"), json!(20));
        assert_eq!(one("[variables('o')['Inner']['x'][0]]"), json!(10));
        assert_eq!(one("[length(split('a,b,c', ','))]"), json!(3));
        assert_eq!(one("[add(mul(2, 3), sub(10, div(9, 3)))]"), json!(13));
        assert_eq!(one("[substring('hello', 1, 3)]"), json!("ell"));
        assert_eq!(
            one("[environment().suffixes.storage]"),
            json!("core.windows.net")
        );
        assert_eq!(one("[and(true(), not(false()))]"), json!(true));
        assert_eq!(
            one("[union(createObject('a', 1), createObject('b', 2))]"),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(one("[coalesce(null(), 'x')]"), json!("x"));
        assert_eq!(one("[replace('a-b-c', '-', '')]"), json!("abc"));
        assert_eq!(one("[uriComponent('a b/c')]"), json!("a%20b%2Fc"));
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
        assert!(
            e.message.contains("takes at least 2 argument"),
            "{}",
            e.message
        );
        let e = ev()
            .eval(&json!("[listKeys('x')]"), "r", "p", 0)
            .unwrap_err();
        assert!(
            e.message.contains("not supported by the lab yet"),
            "{}",
            e.message
        );
        let e = ev().eval(&json!("[concat('a'"), "r", "p", 0);
        assert!(e.is_ok(), "not wholly [...]: a literal");
        let e = ev().eval(&json!("[concat('a']"), "r", "p", 0).unwrap_err();
        assert!(e.message.contains("is not valid"), "{}", e.message);
    }

    #[test]
    fn cycles_are_refused() {
        let e = Evaluator {
            params: BTreeMap::new(),
            variables: [("a".to_string(), json!("[variables('a')]"))].into(),
            scope: scope(),
        };
        assert!(e
            .eval(&json!("[variables('a')]"), "r", "x", 0)
            .unwrap_err()
            .message
            .contains("circular"));
    }
}
