//! Template expressions: a string wholly in `[...]` is parsed (`lang.rs`)
//! and evaluated here; `[[...` is an escaped literal `[`. The evaluator owns
//! the functions that need more than their arguments: `parameters`,
//! `variables` (lazy, with `copy` loops), `copyIndex`, the lazy `if`, `and`,
//! `or` and `coalesce`, lambdas, `reference` and `list*` (through the
//! [`World`] of the deployment), user-defined functions, and `newGuid` /
//! `utcNow`, which Azure allows only in parameter defaults.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{Map, Value};

use super::functions::{self, text, Scope};
use super::lang::{parse, Node};
use crate::model::AzureError;

/// What `reference()` and `list*()` see: the deployment's own resources and
/// the lab's state. The engine implements it.
pub(crate) trait World {
    /// `reference(target, apiVersion, 'Full')`: `target` is a resource id,
    /// a resource name of this template, or a symbolic name.
    fn reference(&self, target: &str, full: bool) -> Result<Value, Refusal>;
    /// `listKeys(target, apiVersion)` and the other `list*` operations.
    fn list(&self, operation: &str, target: &str) -> Result<Value, Refusal>;
}

/// Why the [`World`] can't answer: a reason the evaluator puts in context,
/// or an error that is whole already (a resource not found, a failure of
/// the resource evaluated on demand).
pub(crate) enum Refusal {
    Why(String),
    Error(AzureError),
}

impl From<AzureError> for Refusal {
    fn from(e: AzureError) -> Self {
        Refusal::Error(e)
    }
}

/// A user-defined function (`functions[].members`).
#[derive(Debug, Clone)]
pub(crate) struct UserFunction {
    pub parameters: Vec<String>,
    pub output: Value,
}

/// Values of parameters (final) and variables (raw, evaluated on use), the
/// template's own functions, and where the deployment goes.
#[derive(Clone)]
pub(crate) struct Evaluator {
    /// Lower-cased name -> value.
    pub params: BTreeMap<String, Value>,
    /// Lower-cased name -> raw template value. A `copy` variable is stored as
    /// `{"$copy": {"count": ..., "input": ...}, "$name": name}`.
    pub variables: BTreeMap<String, Value>,
    /// `namespace.member`, lower-cased.
    pub functions: BTreeMap<String, UserFunction>,
    pub scope: Scope,
    /// Shared by every evaluator of one deployment (user functions, nested
    /// deployments).
    pub budget: Budget,
}

/// What evaluating one deployment may spend. A template is at most 4 MB,
/// but variables evaluated on use can double a value per reference or
/// call each other exponentially often: every value an expression makes
/// is charged against a total, and the evaluation's nesting (JSON,
/// expressions, variables, functions) is counted, so a hostile template
/// is refused with `InvalidTemplate` instead of exhausting the memory,
/// the time or the stack of the daemon.
#[derive(Clone, Default)]
pub(crate) struct Budget(Rc<Spent>);

#[derive(Default)]
struct Spent {
    bytes: Cell<usize>,
    depth: Cell<u32>,
}

/// The total size of the values one deployment's expressions may make.
pub(crate) const MAX_EVALUATED_BYTES: usize = 256 << 20;
/// How deep evaluation may nest: JSON levels, calls inside calls, a
/// variable or user function used by another. Real templates stay under
/// 50; 128 levels fit the 2 MiB stack of the daemon's worker threads.
pub(crate) const MAX_EVALUATION_DEPTH: u32 = 128;

/// Leaves one level of [`Budget`]'s nesting when dropped.
struct Level<'a>(&'a Spent);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.depth.set(self.0.depth.get() - 1);
    }
}

impl Budget {
    fn enter(&self) -> Result<Level<'_>, String> {
        let d = self.0.depth.get() + 1;
        if d > MAX_EVALUATION_DEPTH {
            return Err(format!(
                "the template nests JSON, expressions, variables and functions more than \
                 {MAX_EVALUATION_DEPTH} levels deep"
            ));
        }
        self.0.depth.set(d);
        Ok(Level(&self.0))
    }

    fn charge(&self, v: &Value) -> Result<(), String> {
        let total = self.0.bytes.get().saturating_add(size_of(v));
        self.0.bytes.set(total);
        if total > MAX_EVALUATED_BYTES {
            return Err(format!(
                "evaluating the template makes more than {} MB of values; the lab stops there \
                 (a variable that doubles another, or an expression repeated exponentially often)",
                MAX_EVALUATED_BYTES >> 20
            ));
        }
        Ok(())
    }
}

/// Roughly the bytes `v` holds: its text and a word or four per node.
fn size_of(v: &Value) -> usize {
    const NODE: usize = 32;
    match v {
        Value::String(s) => NODE + s.len(),
        Value::Array(a) => NODE + a.iter().map(size_of).sum::<usize>(),
        Value::Object(m) => NODE + m.iter().map(|(k, x)| k.len() + size_of(x)).sum::<usize>(),
        _ => NODE,
    }
}

/// Where an evaluation happens: for messages, and the loop indexes and
/// lambda variables in reach.
#[derive(Clone, Default)]
pub(crate) struct Frame<'a> {
    /// `resource Microsoft.Web/sites 'web1' (resources[2])`, `variable 'x'`.
    pub ctx: String,
    /// Copy loops in reach, innermost last: (lower-cased loop name, index).
    pub copy: Vec<(String, i64)>,
    pub lambda: Vec<(String, Value)>,
    /// Parameter defaults may call `newGuid()` and `utcNow()`.
    pub in_default: bool,
    pub world: Option<&'a dyn World>,
    pub depth: u32,
}

impl<'a> Frame<'a> {
    pub fn new(ctx: impl Into<String>, world: Option<&'a dyn World>) -> Self {
        Frame {
            ctx: ctx.into(),
            world,
            ..Frame::default()
        }
    }

    pub fn with_copy(&self, name: &str, index: i64) -> Self {
        let mut f = self.clone();
        f.copy.push((name.to_ascii_lowercase(), index));
        f
    }
}

pub(crate) fn invalid_template(message: String) -> AzureError {
    AzureError::bad_request("InvalidTemplate", message)
}

/// `InvalidTemplate` for an expression that does not parse or evaluate,
/// naming where it is, as ARM's "The template language expression ... is
/// not valid" does. The target is the JSON path, which the engine turns
/// into a line and column when it has the template's text.
fn not_valid(ctx: &str, path: &str, s: &str, why: &str) -> AzureError {
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
    /// Evaluate every string of `v`; objects whose `copy` is an array get
    /// their property loops expanded.
    pub fn eval(&self, v: &Value, f: &Frame, path: &str) -> Result<Value, AzureError> {
        let _level = self.budget.enter().map_err(|why| {
            invalid_template(format!(
                "Deployment template validation failed: {}, property '{path}': {why}.",
                f.ctx
            ))
            .with_target(path.to_string())
        })?;
        match v {
            Value::String(s) => self.eval_str(s, f, path),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.eval(item, f, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, item) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    if k.eq_ignore_ascii_case("copy") && item.is_array() {
                        for (name, values) in self.property_copies(item, f, &p)? {
                            out.insert(name, Value::Array(values));
                        }
                        continue;
                    }
                    out.insert(k.clone(), self.eval(item, f, &p)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// `"copy": [{"name": "subnets", "count": n, "input": {...}}]` inside
    /// properties: each entry becomes an array property `name`.
    fn property_copies(
        &self,
        loops: &Value,
        f: &Frame,
        path: &str,
    ) -> Result<Vec<(String, Vec<Value>)>, AzureError> {
        let mut out = Vec::new();
        for (i, l) in loops.as_array().into_iter().flatten().enumerate() {
            let at = format!("{path}[{i}]");
            let name = l.get("name").and_then(Value::as_str).ok_or_else(|| {
                invalid_template(format!(
                    "Deployment template validation failed: {}: the property copy at '{at}' needs a 'name'.",
                    f.ctx
                ))
            })?;
            let count = self.count(l.get("count"), f, &format!("{at}.count"))?;
            let input = l.get("input").cloned().unwrap_or(Value::Null);
            let mut values = Vec::with_capacity(count as usize);
            for k in 0..count {
                values.push(self.eval(&input, &f.with_copy(name, k), &format!("{at}.input"))?);
            }
            out.push((name.to_string(), values));
        }
        Ok(out)
    }

    /// A copy loop's `count`: an integer from 0 to 800 (Azure's limit).
    pub fn count(&self, v: Option<&Value>, f: &Frame, path: &str) -> Result<i64, AzureError> {
        let v = self.eval(v.unwrap_or(&Value::Null), f, path)?;
        let n = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| {
                invalid_template(format!(
                    "Deployment template validation failed: {}: the copy count at '{path}' must be an integer, not {v}.",
                    f.ctx
                ))
                .with_target(path.to_string())
            })?;
        if !(0..=800).contains(&n) {
            return Err(invalid_template(format!(
                "Deployment template validation failed: {}: the copy count {n} at '{path}' is outside 0 to 800.",
                f.ctx
            ))
            .with_target(path.to_string()));
        }
        Ok(n)
    }

    fn eval_str(&self, s: &str, f: &Frame, path: &str) -> Result<Value, AzureError> {
        if let Some(rest) = s.strip_prefix("[[") {
            return Ok(Value::String(format!("[{rest}")));
        }
        // Only a string that is wholly `[...]` is an expression (ARM's rule).
        let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
            return Ok(Value::String(s.to_string()));
        };
        let node = parse(inner).map_err(|why| not_valid(&f.ctx, path, s, &why))?;
        self.node(&node, f, path, s)
    }

    fn node(&self, n: &Node, f: &Frame, path: &str, s: &str) -> Result<Value, AzureError> {
        let bad = |why: String| not_valid(&f.ctx, path, s, &why);
        let _level = self.budget.enter().map_err(&bad)?;
        let v = self.node_value(n, f, path, s)?;
        self.budget.charge(&v).map_err(bad)?;
        Ok(v)
    }

    fn node_value(&self, n: &Node, f: &Frame, path: &str, s: &str) -> Result<Value, AzureError> {
        let bad = |why: String| not_valid(&f.ctx, path, s, &why);
        match n {
            Node::Str(x) => Ok(Value::String(x.clone())),
            Node::Int(i) => Ok(Value::from(*i)),
            Node::Member(base, name) => {
                let v = self.node(base, f, path, s)?;
                member(&v, name).ok_or_else(|| {
                    bad(format!(
                        "the language expression property '{name}' doesn't exist, available properties are '{}'",
                        keys(&v)
                    ))
                })
            }
            Node::Index(base, index) => {
                let v = self.node(base, f, path, s)?;
                let i = self.node(index, f, path, s)?;
                match (&v, &i) {
                    (Value::Array(items), Value::Number(k)) => k
                        .as_u64()
                        .and_then(|k| items.get(k as usize).cloned())
                        .ok_or_else(|| {
                            bad(format!(
                                "the language expression index {k} is out of bounds: the array has {} element(s)",
                                items.len()
                            ))
                        }),
                    (Value::Object(_), Value::String(k)) => member(&v, k).ok_or_else(|| {
                        bad(format!(
                            "the language expression property '{k}' doesn't exist, available properties are '{}'",
                            keys(&v)
                        ))
                    }),
                    _ => Err(bad(format!("{i} cannot index {v}"))),
                }
            }
            Node::Call(name, args) => self.call(name, args, f, path, s),
        }
    }

    fn call(
        &self,
        name: &str,
        args: &[Node],
        f: &Frame,
        path: &str,
        s: &str,
    ) -> Result<Value, AzureError> {
        let bad = |why: String| not_valid(&f.ctx, path, s, &why);
        let lower = name.to_ascii_lowercase();
        let arg = |i: usize| -> Result<Value, AzureError> {
            match args.get(i) {
                Some(a) => self.node(a, f, path, s),
                None => Err(bad(format!("'{name}' needs argument {}", i + 1))),
            }
        };
        let name_arg = |i: usize| -> Result<String, AzureError> {
            match arg(i)? {
                Value::String(k) => Ok(k),
                other => Err(bad(format!("'{name}' takes a name, not {other}"))),
            }
        };
        match lower.as_str() {
            "parameters" => {
                let key = name_arg(0)?;
                self.params.get(&key.to_ascii_lowercase()).cloned().ok_or_else(|| {
                    invalid_template(format!(
                        "Deployment template validation failed: {}, property '{path}': the template parameter \
                         '{key}' is not found. Declared parameters: {}.",
                        f.ctx,
                        self.params.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                    .with_target(path.to_string())
                })
            }
            "variables" => {
                let key = name_arg(0)?;
                self.variable(&key, f, path)
            }
            "copyindex" => {
                // copyIndex(), copyIndex(offset), copyIndex('loop'), copyIndex('loop', offset)
                let (loop_name, offset) = match args.len() {
                    0 => (None, 0),
                    1 => match arg(0)? {
                        Value::String(n) => (Some(n), 0),
                        v => (
                            None,
                            v.as_i64()
                                .ok_or_else(|| bad(format!("copyIndex offset {v}")))?,
                        ),
                    },
                    2 => (
                        Some(name_arg(0)?),
                        arg(1)?
                            .as_i64()
                            .ok_or_else(|| bad("copyIndex offset must be an integer".into()))?,
                    ),
                    _ => {
                        return Err(bad(
                            "copyIndex takes a loop name and an offset at most".into()
                        ))
                    }
                };
                let found = match &loop_name {
                    None => f.copy.last(),
                    Some(n) => f.copy.iter().rev().find(|(l, _)| l.eq_ignore_ascii_case(n)),
                };
                let found = match found {
                    Some((_, i)) => Some(i.checked_add(offset).ok_or_else(|| {
                        bad(format!(
                            "copyIndex: {i} + {offset} overflows a 64-bit integer"
                        ))
                    })?),
                    None => None,
                };
                found.map(Value::from).ok_or_else(|| {
                    bad(match loop_name {
                        None => "copyIndex() is only valid inside a copy loop".into(),
                        Some(n) => {
                            format!("copyIndex('{n}'): there is no copy loop named '{n}' here")
                        }
                    })
                })
            }
            // Lazy: only the branch taken is evaluated.
            "if" => {
                if args.len() != 3 {
                    return Err(bad("'if' takes a condition and two values".into()));
                }
                match arg(0)? {
                    Value::Bool(true) => arg(1),
                    Value::Bool(false) => arg(2),
                    other => Err(bad(format!(
                        "the condition of 'if' must be a boolean, not {other}"
                    ))),
                }
            }
            "and" | "or" => {
                if args.len() < 2 {
                    return Err(bad(format!("'{name}' takes at least 2 arguments")));
                }
                let stop = lower == "or";
                for i in 0..args.len() {
                    match arg(i)? {
                        Value::Bool(b) if b == stop => return Ok(Value::Bool(stop)),
                        Value::Bool(_) => {}
                        other => return Err(bad(format!("'{name}' takes booleans, not {other}"))),
                    }
                }
                Ok(Value::Bool(!stop))
            }
            "coalesce" => {
                for i in 0..args.len() {
                    let v = arg(i)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Ok(Value::Null)
            }
            "lambdavariables" => {
                let key = name_arg(0)?;
                f.lambda
                    .iter()
                    .rev()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| bad(format!("there is no lambda variable '{key}' here")))
            }
            "lambda" => Err(bad(
                "a lambda is only valid as the argument of filter, map, reduce, sort, toObject, \
                                 mapValues or groupBy"
                    .into(),
            )),
            "filter" | "map" | "sort" | "reduce" | "toobject" | "mapvalues" | "groupby" => {
                self.higher_order(&lower, args, f, path, s)
            }
            "newguid" | "utcnow" if !f.in_default => Err(bad(format!(
                "the '{name}' function can only be used within the default value of a parameter"
            ))),
            "reference" => {
                let target = arg(0)?;
                let full = match args.len() {
                    3 => text(&arg(2)?).eq_ignore_ascii_case("full"),
                    _ => false,
                };
                let target = reference_target(&target).map_err(&bad)?;
                let world = f.world.ok_or_else(|| {
                    bad("reference() can't be used in parameters, variables or a resource's name and type".into())
                })?;
                world.reference(&target, full).map_err(|r| match r {
                    Refusal::Why(why) => bad(why),
                    Refusal::Error(e) => e,
                })
            }
            l if l.starts_with("list") && l.len() > 4 && !self.functions.contains_key(l) => {
                let target = text(&arg(0)?);
                let world = f
                    .world
                    .ok_or_else(|| bad(format!("{name}() can't be used here")))?;
                world.list(name, &target).map_err(|r| match r {
                    Refusal::Why(why) => bad(why),
                    Refusal::Error(e) => e,
                })
            }
            l if l.contains('.') => {
                let func = self.functions.get(l).ok_or_else(|| {
                    bad(format!("the user-defined function '{name}' is not declared in the template's 'functions'"))
                })?;
                if func.parameters.len() != args.len() {
                    return Err(bad(format!(
                        "'{name}' takes {} argument(s), not {}",
                        func.parameters.len(),
                        args.len()
                    )));
                }
                let mut inner = Evaluator {
                    params: BTreeMap::new(),
                    variables: BTreeMap::new(),
                    functions: self.functions.clone(),
                    scope: self.scope.clone(),
                    budget: self.budget.clone(),
                };
                for (i, p) in func.parameters.iter().enumerate() {
                    inner.params.insert(p.to_ascii_lowercase(), arg(i)?);
                }
                if f.depth > 32 {
                    return Err(bad(format!("'{name}' calls itself")));
                }
                let mut g = Frame::new(format!("function '{name}'"), f.world);
                g.depth = f.depth + 1;
                inner.eval(&func.output, &g, "output.value")
            }
            _ => {
                let values = (0..args.len()).map(arg).collect::<Result<Vec<_>, _>>()?;
                if lower == "deployment" {
                    if !values.is_empty() {
                        return Err(bad(
                            "the template function 'deployment' takes 0 argument(s)".into(),
                        ));
                    }
                    return Ok(self.deployment_object());
                }
                match functions::call(&self.scope, &lower, &values) {
                    Some(r) => r.map_err(bad),
                    None => Err(bad(format!(
                        "the template function '{name}' is not valid. Please see https://aka.ms/arm-functions for usage details"
                    ))),
                }
            }
        }
    }

    fn deployment_object(&self) -> Value {
        self.variables.get("$deployment").cloned().unwrap_or_else(
            || serde_json::json!({ "name": self.scope.deployment, "properties": {} }),
        )
    }

    /// A variable: evaluated on use (variables may refer to each other in
    /// any order); a `copy` variable builds its array.
    pub fn variable(&self, key: &str, f: &Frame, path: &str) -> Result<Value, AzureError> {
        let raw = self.variables.get(&key.to_ascii_lowercase()).ok_or_else(|| {
            invalid_template(format!(
                "Deployment template validation failed: {}, property '{path}': the template variable '{key}' is not found. \
                 Please see https://aka.ms/arm-syntax-variables for usage details.",
                f.ctx
            ))
            .with_target(path.to_string())
        })?;
        if f.depth > 32 {
            return Err(invalid_template(format!(
                "Deployment template validation failed: the variable '{key}' refers to itself (circular reference)."
            )));
        }
        // Variables see parameters and other variables, never a resource's loop.
        let mut g = Frame::new(format!("variable '{key}'"), None);
        g.depth = f.depth + 1;
        g.lambda = f.lambda.clone();
        if let Some(spec) = raw.get("$copy") {
            let name = raw.get("$name").and_then(Value::as_str).unwrap_or(key);
            let count = self.count(spec.get("count"), &g, "count")?;
            let input = spec.get("input").cloned().unwrap_or(Value::Null);
            return (0..count)
                .map(|i| self.eval(&input, &g.with_copy(name, i), "input"))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array);
        }
        self.eval(raw, &g, "")
    }

    /// `filter(array, lambda('x', ...))` and the other functions that
    /// evaluate a lambda per element.
    fn higher_order(
        &self,
        name: &str,
        args: &[Node],
        f: &Frame,
        path: &str,
        s: &str,
    ) -> Result<Value, AzureError> {
        let bad = |why: String| not_valid(&f.ctx, path, s, &why);
        let lambda = |n: &Node| -> Result<(Vec<String>, Node), AzureError> {
            let Node::Call(l, la) = n else {
                return Err(bad(format!("'{name}' expects a lambda(...) argument")));
            };
            if !l.eq_ignore_ascii_case("lambda") || la.is_empty() {
                return Err(bad(format!("'{name}' expects a lambda(...) argument")));
            }
            let mut vars = Vec::new();
            for v in &la[..la.len() - 1] {
                match v {
                    Node::Str(x) => vars.push(x.clone()),
                    _ => return Err(bad("lambda variable names must be string literals".into())),
                }
            }
            Ok((vars, la[la.len() - 1].clone()))
        };
        let apply = |vars: &[String], body: &Node, values: &[Value]| -> Result<Value, AzureError> {
            let mut g = f.clone();
            for (k, v) in vars.iter().zip(values) {
                g.lambda.push((k.clone(), v.clone()));
            }
            self.node(body, &g, path, s)
        };
        let input = match args.first() {
            Some(a) => self.node(a, f, path, s)?,
            None => return Err(bad(format!("'{name}' needs an array"))),
        };
        let items: Vec<Value> = match (&input, name) {
            (Value::Object(m), "mapvalues") => m.values().cloned().collect(),
            (Value::Array(v), _) => v.clone(),
            (other, _) => return Err(bad(format!("'{name}' takes an array, not {other}"))),
        };
        match name {
            "filter" | "map" | "groupby" => {
                let (vars, body) = lambda(
                    args.get(1)
                        .ok_or_else(|| bad(format!("'{name}' needs a lambda")))?,
                )?;
                let mut out = Vec::new();
                let mut groups: Map<String, Value> = Map::new();
                for (i, item) in items.iter().enumerate() {
                    let r = apply(&vars, &body, &[item.clone(), Value::from(i as i64)])?;
                    match name {
                        "filter" => match r {
                            Value::Bool(true) => out.push(item.clone()),
                            Value::Bool(false) => {}
                            other => {
                                return Err(bad(format!(
                                    "the filter lambda must return a boolean, not {other}"
                                )))
                            }
                        },
                        "map" => out.push(r),
                        _ => {
                            let k = text(&r);
                            match groups.entry(k).or_insert_with(|| Value::Array(vec![])) {
                                Value::Array(g) => g.push(item.clone()),
                                _ => unreachable!("groups hold arrays"),
                            }
                        }
                    }
                }
                Ok(if name == "groupby" {
                    Value::Object(groups)
                } else {
                    Value::Array(out)
                })
            }
            "mapvalues" => {
                let (vars, body) = lambda(
                    args.get(1)
                        .ok_or_else(|| bad("mapValues needs a lambda".into()))?,
                )?;
                let mut out = Map::new();
                for (k, v) in input.as_object().into_iter().flatten() {
                    out.insert(k.clone(), apply(&vars, &body, std::slice::from_ref(v))?);
                }
                Ok(Value::Object(out))
            }
            "reduce" => {
                let mut acc = match args.get(1) {
                    Some(a) => self.node(a, f, path, s)?,
                    None => return Err(bad("reduce needs an initial value".into())),
                };
                let (vars, body) = lambda(
                    args.get(2)
                        .ok_or_else(|| bad("reduce needs a lambda".into()))?,
                )?;
                for (i, item) in items.iter().enumerate() {
                    acc = apply(&vars, &body, &[acc, item.clone(), Value::from(i as i64)])?;
                }
                Ok(acc)
            }
            "sort" => {
                let (vars, body) = lambda(
                    args.get(1)
                        .ok_or_else(|| bad("sort needs a lambda".into()))?,
                )?;
                // Insertion sort: the comparator may fail, and arrays are small.
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for item in items {
                    let mut at = out.len();
                    for (j, o) in out.iter().enumerate() {
                        if apply(&vars, &body, &[item.clone(), o.clone()])? == Value::Bool(true) {
                            at = j;
                            break;
                        }
                    }
                    out.insert(at, item);
                }
                Ok(Value::Array(out))
            }
            "toobject" => {
                let (kv, kb) = lambda(
                    args.get(1)
                        .ok_or_else(|| bad("toObject needs a key lambda".into()))?,
                )?;
                let value_lambda = args.get(2).map(lambda).transpose()?;
                let mut out = Map::new();
                for item in items {
                    let k = text(&apply(&kv, &kb, std::slice::from_ref(&item))?);
                    let v = match &value_lambda {
                        Some((vv, vb)) => apply(vv, vb, std::slice::from_ref(&item))?,
                        None => item,
                    };
                    out.insert(k, v);
                }
                Ok(Value::Object(out))
            }
            _ => unreachable!("dispatched above"),
        }
    }
}

/// Case-insensitive member access, as ARM's is.
fn member(v: &Value, name: &str) -> Option<Value> {
    v.as_object().and_then(|o| {
        o.get(name).cloned().or_else(|| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    })
}

fn keys(v: &Value) -> String {
    v.as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// `reference()` takes an id, a name, or (languageVersion 2.0) a symbolic name.
fn reference_target(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => Err(format!(
            "reference() takes a resource id or name, not {other}"
        )),
    }
}

#[cfg(test)]
mod tests;
