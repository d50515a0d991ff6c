//! Template functions with an offline meaning (Azure's template-functions
//! reference), keyed by lower-cased name. `parameters` and `variables` are
//! the evaluator's own (they need its scope); every other function is a
//! pure function of its evaluated arguments and the deployment's scope.

use serde_json::{json, Map, Value};

/// Where the deployment goes: what `resourceGroup()`, `subscription()`,
/// `resourceId()` and `deployment()` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub subscription: String,
    pub resource_group: String,
    /// The resource group's region (the lab's default when not given).
    pub location: String,
    pub deployment: String,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn arity(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), String> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!(
            "the template function '{name}' takes {want} argument(s), not {}",
            args.len()
        ));
    }
    Ok(())
}

fn int(name: &str, v: &Value) -> Result<i64, String> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| format!("the template function '{name}' expects an integer, not {v}"))
}

fn string(name: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the template function '{name}' expects a string, not {v}"))
}

/// `resourceId([subscriptionId], [resourceGroupName], type, name1, name2, ...)`.
fn resource_id(scope: &Scope, args: &[Value]) -> Result<Value, String> {
    let args: Vec<String> = args.iter().map(text).collect();
    let at = args
        .iter()
        .position(|a| a.contains('/') && a.split('/').count() >= 2 && a.contains('.'))
        .ok_or("resourceId needs a resource type such as 'Microsoft.Network/virtualNetworks'")?;
    let (sub, rg) = match at {
        0 => (scope.subscription.clone(), scope.resource_group.clone()),
        1 => (scope.subscription.clone(), args[0].clone()),
        2 => (args[0].clone(), args[1].clone()),
        _ => {
            return Err(
                "resourceId takes at most a subscription and a resource group before the type"
                    .into(),
            )
        }
    };
    let ty = &args[at];
    let names = &args[at + 1..];
    let (ns, types) = ty
        .split_once('/')
        .ok_or("resourceId: a type is Namespace/type")?;
    let types: Vec<&str> = types.split('/').collect();
    if types.len() != names.len() {
        return Err(format!(
            "resourceId: the type '{ty}' has {} segment(s) but {} name(s) were given",
            types.len(),
            names.len()
        ));
    }
    let mut id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}");
    for (t, n) in types.iter().zip(names) {
        id.push_str(&format!("/{t}/{n}"));
    }
    Ok(json!(id))
}

/// .NET composite formatting for `format()`: `{0}`, `{1}`, ... (format
/// specifiers after `:` are kept as the plain value's text).
fn format(args: &[Value]) -> Result<Value, String> {
    let pattern = args.first().map(text).unwrap_or_default();
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut spec = String::new();
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                    spec.push(d);
                }
                let index: usize = spec
                    .split([':', ','])
                    .next()
                    .and_then(|i| i.trim().parse().ok())
                    .ok_or_else(|| format!("format: '{{{spec}}}' is not a placeholder"))?;
                let v = args
                    .get(index + 1)
                    .ok_or_else(|| format!("format: there is no argument {index}"))?;
                out.push_str(&text(v));
            }
            other => out.push(other),
        }
    }
    Ok(json!(out))
}

fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

/// Calls function `name` (lower-cased) on evaluated `args`. `None`: the
/// function is not one of these (the evaluator's own, or unknown).
pub(crate) fn call(scope: &Scope, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let f = |r: Result<Value, String>| Some(r);
    let a = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    Some(match name {
        "resourcegroup" => arity(name, args, 0, 0).map(|_| {
            json!({
                "id": format!("/subscriptions/{}/resourceGroups/{}", scope.subscription, scope.resource_group),
                "name": scope.resource_group,
                "type": "Microsoft.Resources/resourceGroups",
                "location": scope.location,
                "properties": { "provisioningState": "Succeeded" }
            })
        }),
        "subscription" => arity(name, args, 0, 0).map(|_| {
            json!({
                "id": format!("/subscriptions/{}", scope.subscription),
                "subscriptionId": scope.subscription,
                "tenantId": "00000000-0000-0000-0000-000000000000",
                "displayName": "lab"
            })
        }),
        "deployment" => arity(name, args, 0, 0).map(|_| json!({ "name": scope.deployment, "properties": {} })),
        "environment" => arity(name, args, 0, 0).map(|_| {
            json!({
                "name": "AzureCloud",
                "suffixes": {
                    "storage": "core.windows.net",
                    "keyvaultDns": ".vault.azure.net",
                    "acrLoginServer": ".azurecr.io",
                    "sqlServerHostname": ".database.windows.net"
                }
            })
        }),
        "resourceid" => arity(name, args, 2, usize::MAX).and_then(|_| resource_id(scope, args)),
        "concat" => {
            if args.iter().all(Value::is_array) && !args.is_empty() {
                Ok(Value::Array(args.iter().flat_map(|v| v.as_array().cloned().unwrap_or_default()).collect()))
            } else {
                Ok(json!(args.iter().map(text).collect::<String>()))
            }
        }
        "format" => arity(name, args, 1, usize::MAX).and_then(|_| format(args)),
        "tolower" => arity(name, args, 1, 1).and_then(|_| string(name, &a(0)).map(|s| json!(s.to_lowercase()))),
        "toupper" => arity(name, args, 1, 1).and_then(|_| string(name, &a(0)).map(|s| json!(s.to_uppercase()))),
        "trim" => arity(name, args, 1, 1).and_then(|_| string(name, &a(0)).map(|s| json!(s.trim()))),
        "string" => arity(name, args, 1, 1).map(|_| json!(text(&a(0)))),
        "int" => arity(name, args, 1, 1).and_then(|_| int(name, &a(0)).map(|i| json!(i))),
        "bool" => arity(name, args, 1, 1).map(|_| {
            json!(match a(0) {
                Value::Bool(b) => b,
                Value::String(s) => s.eq_ignore_ascii_case("true"),
                Value::Number(n) => n.as_i64() != Some(0),
                _ => false,
            })
        }),
        "true" => arity(name, args, 0, 0).map(|_| json!(true)),
        "false" => arity(name, args, 0, 0).map(|_| json!(false)),
        "null" => arity(name, args, 0, 0).map(|_| Value::Null),
        "replace" => arity(name, args, 3, 3).and_then(|_| {
            Ok(json!(string(name, &a(0))?.replace(&string(name, &a(1))?, &string(name, &a(2))?)))
        }),
        "split" => arity(name, args, 2, 2).and_then(|_| {
            let s = string(name, &a(0))?;
            let parts: Vec<String> = match a(1) {
                Value::Array(seps) => {
                    let seps: Vec<String> = seps.iter().map(text).collect();
                    s.split(|c: char| seps.iter().any(|x| x.starts_with(c))).map(str::to_string).collect()
                }
                sep => s.split(text(&sep).as_str()).map(str::to_string).collect(),
            };
            Ok(json!(parts))
        }),
        "substring" => arity(name, args, 2, 3).and_then(|_| {
            let s = string(name, &a(0))?;
            let start = int(name, &a(1))? as usize;
            let len = if args.len() == 3 { int(name, &a(2))? as usize } else { s.len().saturating_sub(start) };
            s.get(start..start + len)
                .map(|x| json!(x))
                .ok_or_else(|| format!("substring: {start}+{len} is outside '{s}'"))
        }),
        "startswith" => arity(name, args, 2, 2).and_then(|_| {
            Ok(json!(string(name, &a(0))?.to_lowercase().starts_with(&string(name, &a(1))?.to_lowercase())))
        }),
        "endswith" => arity(name, args, 2, 2).and_then(|_| {
            Ok(json!(string(name, &a(0))?.to_lowercase().ends_with(&string(name, &a(1))?.to_lowercase())))
        }),
        "contains" => arity(name, args, 2, 2).map(|_| {
            json!(match (a(0), a(1)) {
                (Value::String(s), v) => s.to_lowercase().contains(&text(&v).to_lowercase()),
                (Value::Array(items), v) => items.iter().any(|i| equals(i, &v)),
                (Value::Object(m), v) => m.keys().any(|k| k.eq_ignore_ascii_case(&text(&v))),
                _ => false,
            })
        }),
        "length" => arity(name, args, 1, 1).map(|_| {
            json!(match a(0) {
                Value::String(s) => s.chars().count(),
                Value::Array(v) => v.len(),
                Value::Object(m) => m.len(),
                _ => 0,
            })
        }),
        "empty" => arity(name, args, 1, 1).map(|_| {
            json!(match a(0) {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(v) => v.is_empty(),
                Value::Object(m) => m.is_empty(),
                _ => false,
            })
        }),
        "first" => arity(name, args, 1, 1).map(|_| match a(0) {
            Value::Array(v) => v.first().cloned().unwrap_or(Value::Null),
            Value::String(s) => json!(s.chars().next().map(String::from).unwrap_or_default()),
            _ => Value::Null,
        }),
        "last" => arity(name, args, 1, 1).map(|_| match a(0) {
            Value::Array(v) => v.last().cloned().unwrap_or(Value::Null),
            Value::String(s) => json!(s.chars().last().map(String::from).unwrap_or_default()),
            _ => Value::Null,
        }),
        "createarray" | "array" if name == "createarray" || args.len() == 1 => Ok(match name {
            "array" => match a(0) {
                Value::Array(v) => Value::Array(v),
                other => Value::Array(vec![other]),
            },
            _ => Value::Array(args.to_vec()),
        }),
        "createobject" => {
            if !args.len().is_multiple_of(2) {
                return f(Err("createObject takes key, value pairs".into()));
            }
            let mut m = Map::new();
            for pair in args.chunks(2) {
                m.insert(text(&pair[0]), pair[1].clone());
            }
            Ok(Value::Object(m))
        }
        "json" => arity(name, args, 1, 1)
            .and_then(|_| serde_json::from_str(&string(name, &a(0))?).map_err(|e| format!("json: {e}"))),
        "coalesce" => Ok(args.iter().find(|v| !v.is_null()).cloned().unwrap_or(Value::Null)),
        "equals" => arity(name, args, 2, 2).map(|_| json!(equals(&a(0), &a(1)))),
        "not" => arity(name, args, 1, 1).map(|_| json!(!a(0).as_bool().unwrap_or(false))),
        "and" => arity(name, args, 2, usize::MAX).map(|_| json!(args.iter().all(|v| v.as_bool() == Some(true)))),
        "or" => arity(name, args, 2, usize::MAX).map(|_| json!(args.iter().any(|v| v.as_bool() == Some(true)))),
        "less" | "lessorequals" | "greater" | "greaterorequals" => arity(name, args, 2, 2).and_then(|_| {
            let ord = match (a(0), a(1)) {
                (Value::String(x), Value::String(y)) => x.cmp(&y),
                (x, y) => int(name, &x)?.cmp(&int(name, &y)?),
            };
            Ok(json!(match name {
                "less" => ord.is_lt(),
                "lessorequals" => ord.is_le(),
                "greater" => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }),
        "add" | "sub" | "mul" | "div" | "mod" => arity(name, args, 2, 2).and_then(|_| {
            let (x, y) = (int(name, &a(0))?, int(name, &a(1))?);
            if matches!(name, "div" | "mod") && y == 0 {
                return Err(format!("{name}: division by zero"));
            }
            Ok(json!(match name {
                "add" => x + y,
                "sub" => x - y,
                "mul" => x * y,
                "div" => x / y,
                _ => x % y,
            }))
        }),
        "min" | "max" => {
            let items: Vec<Value> = match args {
                [Value::Array(v)] => v.clone(),
                _ => args.to_vec(),
            };
            let ints: Result<Vec<i64>, String> = items.iter().map(|v| int(name, v)).collect();
            ints.and_then(|v| {
                let r = if name == "min" { v.iter().min() } else { v.iter().max() };
                r.map(|x| json!(x)).ok_or_else(|| format!("{name} of nothing"))
            })
        }
        "range" => arity(name, args, 2, 2)
            .and_then(|_| Ok(json!((int(name, &a(0))?..int(name, &a(0))? + int(name, &a(1))?).collect::<Vec<i64>>()))),
        "take" | "skip" => arity(name, args, 2, 2).and_then(|_| {
            let n = int(name, &a(1))?.max(0) as usize;
            Ok(match a(0) {
                Value::Array(v) if name == "take" => Value::Array(v.into_iter().take(n).collect()),
                Value::Array(v) => Value::Array(v.into_iter().skip(n).collect()),
                Value::String(s) if name == "take" => json!(s.chars().take(n).collect::<String>()),
                Value::String(s) => json!(s.chars().skip(n).collect::<String>()),
                other => other,
            })
        }),
        "union" => {
            if args.iter().all(Value::is_object) {
                let mut m = Map::new();
                for v in args {
                    m.extend(v.as_object().cloned().unwrap_or_default());
                }
                Ok(Value::Object(m))
            } else {
                let mut out: Vec<Value> = Vec::new();
                for v in args.iter().flat_map(|v| v.as_array().cloned().unwrap_or_default()) {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
        }
        "uricomponent" => arity(name, args, 1, 1).and_then(|_| {
            let s = string(name, &a(0))?;
            Ok(json!(s
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect::<String>()))
        }),
        _ => return None,
    })
}
