//! Template functions with an offline meaning (Azure's template-functions
//! reference), keyed by lower-cased name. The evaluator (`expr.rs`) owns the
//! ones that need its state: `parameters`, `variables`, `copyIndex`, the
//! lazy `if`/`and`/`or`/`coalesce`, lambdas, `reference` and `list*`, and
//! user-defined functions. Every function here is a pure function of its
//! evaluated arguments and the deployment's [`Scope`].

mod collections;
mod hash;
mod resources;
mod strings;

use serde_json::{json, Value};

pub(crate) use hash::guid;
pub(crate) use strings::{format_time, uri};

/// Where the deployment goes: what `resourceGroup()`, `subscription()`,
/// `resourceId()` and `deployment()` answer, and the two inputs that make
/// `utcNow()` and `newGuid()` vary between deployments (drawn by the daemon,
/// so evaluation itself stays pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub subscription: String,
    pub resource_group: String,
    /// The resource group's region (the lab's default when not given).
    pub location: String,
    pub deployment: String,
    pub now_unix: i64,
    pub nonce: u64,
}

/// A value as text, as ARM converts it: strings as they are, booleans as
/// .NET prints them (`True`), arrays and objects as compact JSON.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The longest text a function may make: a whole template's size (ARM's
/// 4 MB). Padding, alignment, precision, `replace` and `join` check it
/// before they allocate, so a hostile width is a refusal, not an
/// allocation of gigabytes.
pub(crate) const MAX_TEXT_BYTES: usize = crate::template::limits::MAX_TEMPLATE_BYTES;

/// Err when `name` would make text of `len` bytes, over [`MAX_TEXT_BYTES`].
pub(crate) fn text_fits(name: &str, len: usize) -> Result<(), String> {
    if len > MAX_TEXT_BYTES {
        return Err(format!(
            "the template function '{name}' would make a value of {len} bytes; a value can't exceed \
             {MAX_TEXT_BYTES} bytes (4 MB, the size of a whole template)"
        ));
    }
    Ok(())
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
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| format!("the template function '{name}' expects an integer, not {v}"))
}

fn string(name: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the template function '{name}' expects a string, not {v}"))
}

/// ARM's equality: strings ignore case, numbers compare by value.
pub(crate) fn equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equals(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(kk, _)| kk.eq_ignore_ascii_case(k))
                        .is_some_and(|(_, w)| equals(v, w))
                })
        }
        _ => a == b,
    }
}

/// Calls function `name` (lower-cased) on evaluated `args`. `None`: the
/// function is not one of these (the evaluator's own, or unknown).
pub(crate) fn call(scope: &Scope, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    if let Some(r) = strings::call(scope, name, args)
        .or_else(|| resources::call(scope, name, args))
        .or_else(|| collections::call(name, args))
    {
        return Some(r);
    }
    let a = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    Some(match name {
        "int" => arity(name, args, 1, 1).and_then(|_| int(name, &a(0)).map(|i| json!(i))),
        "float" => arity(name, args, 1, 1).and_then(|_| {
            a(0).as_f64()
                .or_else(|| a(0).as_str().and_then(|s| s.trim().parse().ok()))
                .map(|f| json!(f))
                .ok_or_else(|| format!("float: {} is not a number", a(0)))
        }),
        "bool" => arity(name, args, 1, 1).and_then(|_| match a(0) {
            Value::Bool(b) => Ok(json!(b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(json!(false)),
            Value::Number(n) => Ok(json!(n.as_f64() != Some(0.0))),
            other => Err(format!("bool: {other} is not a boolean value")),
        }),
        "true" => arity(name, args, 0, 0).map(|_| json!(true)),
        "false" => arity(name, args, 0, 0).map(|_| json!(false)),
        "null" => arity(name, args, 0, 0).map(|_| Value::Null),
        "equals" => arity(name, args, 2, 2).map(|_| json!(equals(&a(0), &a(1)))),
        "not" => arity(name, args, 1, 1).and_then(|_| {
            a(0).as_bool()
                .map(|b| json!(!b))
                .ok_or_else(|| format!("not takes a boolean, not {}", a(0)))
        }),
        "less" | "lessorequals" | "greater" | "greaterorequals" => arity(name, args, 2, 2)
            .and_then(|_| {
                let ord = match (a(0), a(1)) {
                    (Value::String(x), Value::String(y)) => x.cmp(&y),
                    (x, y) => {
                        let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) else {
                            return Err(format!(
                                "{name} compares two numbers or two strings, not {x} and {y}"
                            ));
                        };
                        x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
                    }
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
            // .NET's unchecked long arithmetic wraps; its division of the
            // smallest long by -1 overflows (OverflowException).
            Ok(json!(match name {
                "add" => x.wrapping_add(y),
                "sub" => x.wrapping_sub(y),
                "mul" => x.wrapping_mul(y),
                "div" => x
                    .checked_div(y)
                    .ok_or_else(|| format!("div: {x} / {y} overflows a 64-bit integer"))?,
                _ => x
                    .checked_rem(y)
                    .ok_or_else(|| format!("mod: {x} % {y} overflows a 64-bit integer"))?,
            }))
        }),
        _ => return None,
    })
}
