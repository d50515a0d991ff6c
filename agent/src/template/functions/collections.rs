//! Array and object functions (the ones that need no lambda; `filter`,
//! `map`, `reduce`, `sort` and `toObject` are the evaluator's, since they
//! evaluate an expression per element).

use serde_json::{json, Map, Value};

use super::{arity, equals, int, string, text, text_fits};

pub(super) fn call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let a = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    Some(match name {
        "array" => arity(name, args, 1, 1).map(|_| match a(0) {
            Value::Array(v) => Value::Array(v),
            other => Value::Array(vec![other]),
        }),
        "createarray" => Ok(Value::Array(args.to_vec())),
        "createobject" => {
            if !args.len().is_multiple_of(2) {
                return Some(Err("createObject takes key, value pairs".into()));
            }
            let mut m = Map::new();
            for pair in args.chunks(2) {
                m.insert(text(&pair[0]), pair[1].clone());
            }
            Ok(Value::Object(m))
        }
        "concat" => Ok(
            if !args.is_empty() && args.iter().all(|v| v.is_array() || v.is_null()) {
                Value::Array(
                    args.iter()
                        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                        .collect(),
                )
            } else {
                json!(args.iter().map(text).collect::<String>())
            },
        ),
        "contains" => arity(name, args, 2, 2).map(|_| {
            json!(match (a(0), a(1)) {
                (Value::String(s), v) => s.contains(&text(&v)),
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
        "first" | "last" => arity(name, args, 1, 1).map(|_| match a(0) {
            Value::Array(v) if name == "first" => v.first().cloned().unwrap_or(Value::Null),
            Value::Array(v) => v.last().cloned().unwrap_or(Value::Null),
            Value::String(s) if name == "first" => {
                json!(s.chars().next().map(String::from).unwrap_or_default())
            }
            Value::String(s) => json!(s.chars().last().map(String::from).unwrap_or_default()),
            _ => Value::Null,
        }),
        "flatten" => arity(name, args, 1, 1).and_then(|_| match a(0) {
            Value::Array(v) => Ok(Value::Array(
                v.into_iter()
                    .flat_map(|x| match x {
                        Value::Array(inner) => inner,
                        other => vec![other],
                    })
                    .collect(),
            )),
            other => Err(format!("flatten takes an array of arrays, not {other}")),
        }),
        "intersection" => arity(name, args, 2, usize::MAX).map(|_| {
            if args.iter().all(Value::is_object) {
                let first = args[0].as_object().cloned().unwrap_or_default();
                Value::Object(
                    first
                        .into_iter()
                        .filter(|(k, v)| args[1..].iter().all(|o| o.get(k).is_some_and(|x| x == v)))
                        .collect(),
                )
            } else {
                let first = args[0].as_array().cloned().unwrap_or_default();
                let mut out: Vec<Value> = Vec::new();
                for v in first {
                    let everywhere = args[1..]
                        .iter()
                        .all(|o| o.as_array().is_some_and(|x| x.contains(&v)));
                    if everywhere && !out.contains(&v) {
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
        }),
        "union" => Ok(if args.iter().all(Value::is_object) {
            let mut m = Map::new();
            for v in args {
                deep_merge(&mut m, v.as_object().cloned().unwrap_or_default());
            }
            Value::Object(m)
        } else {
            let mut out: Vec<Value> = Vec::new();
            for v in args
                .iter()
                .flat_map(|v| v.as_array().cloned().unwrap_or_default())
            {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::Array(out)
        }),
        "shallowmerge" => arity(name, args, 1, 1).map(|_| {
            let mut m = Map::new();
            for o in a(0).as_array().cloned().unwrap_or_default() {
                m.extend(o.as_object().cloned().unwrap_or_default());
            }
            Value::Object(m)
        }),
        "items" => arity(name, args, 1, 1).and_then(|_| {
            let Value::Object(m) = a(0) else {
                return Err(format!("items takes an object, not {}", a(0)));
            };
            // Azure returns the entries sorted by key.
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|x, y| {
                x.0.to_lowercase()
                    .cmp(&y.0.to_lowercase())
                    .then(x.0.cmp(&y.0))
            });
            Ok(Value::Array(
                entries
                    .into_iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect(),
            ))
        }),
        "objectkeys" => arity(name, args, 1, 1).map(|_| {
            json!(a(0)
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default())
        }),
        "join" => arity(name, args, 2, 2).and_then(|_| {
            let sep = string(name, &a(1))?;
            let items = a(0)
                .as_array()
                .cloned()
                .ok_or("join takes an array and a delimiter")?;
            let parts: Vec<String> = items.iter().map(text).collect();
            let len = parts.iter().map(String::len).sum::<usize>()
                + sep.len().saturating_mul(parts.len().saturating_sub(1));
            text_fits(name, len)?;
            Ok(json!(parts.join(&sep)))
        }),
        "json" => arity(name, args, 1, 1).and_then(|_| {
            serde_json::from_str(&string(name, &a(0))?).map_err(|e| format!("json: {e}"))
        }),
        "trygetvalue" | "tryget" => arity(name, args, 2, usize::MAX).map(|_| {
            let mut cur = a(0);
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Object(m), k) => m
                        .iter()
                        .find(|(kk, _)| kk.eq_ignore_ascii_case(&text(k)))
                        .map(|(_, v)| v.clone())
                        .unwrap_or(Value::Null),
                    (Value::Array(v), Value::Number(i)) => i
                        .as_u64()
                        .and_then(|i| v.get(i as usize).cloned())
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                };
            }
            cur
        }),
        "indexfromend" | "tryindexfromend" => arity(name, args, 2, 2).and_then(|_| {
            let v = a(0)
                .as_array()
                .cloned()
                .ok_or("indexFromEnd takes an array")?;
            let i = int(name, &a(1))?;
            match (i >= 1)
                .then(|| v.len().checked_sub(i as usize))
                .flatten()
                .and_then(|k| v.get(k))
            {
                Some(x) => Ok(x.clone()),
                None if name == "tryindexfromend" => Ok(Value::Null),
                None => Err(format!("indexFromEnd: {i} is out of range")),
            }
        }),
        "range" => arity(name, args, 2, 2).and_then(|_| {
            let (start, count) = (int(name, &a(0))?, int(name, &a(1))?);
            if !(0..=10_000).contains(&count) {
                return Err(format!(
                    "range: the count {count} must be between 0 and 10000"
                ));
            }
            // Azure's rule, which also keeps the last number in range.
            if start.saturating_add(count) > i64::from(i32::MAX) {
                return Err(format!(
                    "range: the sum of the start index {start} and the count {count} must be no greater than 2147483647"
                ));
            }
            Ok(json!((start..start + count).collect::<Vec<i64>>()))
        }),
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
        "min" | "max" => {
            let items: Vec<Value> = match args {
                [Value::Array(v)] => v.clone(),
                _ => args.to_vec(),
            };
            if items.iter().any(|v| v.is_f64()) {
                let fs: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
                fs.ok_or_else(|| format!("{name} takes numbers"))
                    .and_then(|v| {
                        let r = v.iter().copied().reduce(if name == "min" {
                            f64::min
                        } else {
                            f64::max
                        });
                        r.map(|x| json!(x))
                            .ok_or_else(|| format!("{name} of nothing"))
                    })
            } else {
                let ints: Result<Vec<i64>, String> = items.iter().map(|v| int(name, v)).collect();
                ints.and_then(|v| {
                    let r = if name == "min" {
                        v.iter().min()
                    } else {
                        v.iter().max()
                    };
                    r.map(|x| json!(x))
                        .ok_or_else(|| format!("{name} of nothing"))
                })
            }
        }
        _ => return None,
    })
}

/// `union` of objects merges nested objects too (Azure's documented deep merge).
fn deep_merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => deep_merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}
