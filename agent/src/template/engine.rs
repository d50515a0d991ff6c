//! One deployment, as ARM runs it: resources declared as an array or (in
//! languageVersion 2.0) by symbolic name, nested children flattened, copy
//! loops expanded, conditions and `existing` honoured, `dependsOn` put in
//! order (a cycle is Azure's InvalidTemplate), bodies evaluated in that
//! order with `reference()` answered by the resources already evaluated
//! (evaluating one on demand), nested and linked deployments run as
//! engines of their own, and outputs last.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::expr::{invalid_template, Budget, Evaluator, Frame, Refusal, UserFunction, World};
use super::functions::{self, Scope};
use super::{
    params, position, DeploymentRequest, Expansion, NestedDeployment, StateLookup,
    DEFAULT_SUBSCRIPTION,
};
use crate::model::record;
use crate::model::{AzureError, GenericResource, ResourceId, DEFAULT_LOCATION};

/// How deep nested deployments may go (Azure allows 64 levels... of
/// patience; real templates use two or three).
const MAX_NESTING: u32 = 16;

/// What every engine of one request shares: what has been deployed so far
/// (for `reference()` across nested deployments) and the nested deployments.
struct Shared<'a> {
    req: &'a DeploymentRequest,
    state: &'a dyn StateLookup,
    after_apply: bool,
    resources: RefCell<Vec<GenericResource>>,
    /// Keys of `resources`, for the duplicate check.
    keys: RefCell<BTreeSet<String>>,
    nested: RefCell<Vec<NestedDeployment>>,
}

pub(super) fn run(
    req: &DeploymentRequest,
    state: &dyn StateLookup,
    after_apply: bool,
) -> Result<Expansion, AzureError> {
    if req.resource_group.trim().is_empty() {
        return Err(AzureError::bad_request(
            "InvalidResourceGroup",
            "A deployment needs a resource group name (e.g. -g rg1).",
        ));
    }
    let template = req.template.as_object().ok_or_else(|| {
        invalid_template("The template must be a JSON object with a 'resources' array.".into())
    })?;
    super::limits::check_template(template)?;
    let name = req.name.clone().unwrap_or_else(|| "lab".into());
    let scope = Scope {
        subscription: req.subscription.clone(),
        resource_group: req.resource_group.clone(),
        location: DEFAULT_LOCATION.to_string(),
        deployment: name,
        now_unix: req.now_unix,
        nonce: req.nonce,
    };
    let shared = Shared {
        req,
        state,
        after_apply,
        resources: RefCell::new(Vec::new()),
        keys: RefCell::new(BTreeSet::new()),
        nested: RefCell::new(Vec::new()),
    };
    let given = req.parameters.clone();
    let result = (|| {
        let ev = evaluator(
            template,
            &given,
            &scope,
            req.template_uri.as_deref(),
            Budget::default(),
        )?;
        let engine = Engine::new(
            &shared,
            scope.clone(),
            ev,
            template,
            req.template_uri.clone(),
            0,
        )?;
        engine.run()
    })();
    let outputs = result.map_err(|e| match &req.template_text {
        Some(text) => position::locate(e, text),
        None => e,
    })?;
    super::limits::check_expansion(shared.resources.borrow().len())?;
    Ok(Expansion {
        resources: shared.resources.into_inner(),
        outputs,
        nested: shared.nested.into_inner(),
    })
}

/// One expression string evaluated with `template`'s parameters (default
/// values), variables and functions, inside copy loop `loop` at index 1,
/// after the template's limits (the expression-length limit included).
pub(super) fn expression(
    template: &Map<String, Value>,
    expression: &str,
) -> Result<Value, AzureError> {
    let mut checked = template.clone();
    checked.insert("outputs".into(), json!({ "o": { "value": expression } }));
    super::limits::check_template(&checked)?;
    let scope = Scope {
        subscription: DEFAULT_SUBSCRIPTION.to_string(),
        resource_group: "lab".into(),
        location: DEFAULT_LOCATION.to_string(),
        deployment: "lab".into(),
        now_unix: 0,
        nonce: 0,
    };
    let ev = evaluator(template, &BTreeMap::new(), &scope, None, Budget::default())?;
    let frame = Frame::new("output 'o'", None).with_copy("loop", 1);
    ev.eval(
        &Value::String(expression.to_string()),
        &frame,
        "outputs.o.value",
    )
}

/// Parameters, variables (with `copy` variables) and functions of a template.
fn evaluator(
    template: &Map<String, Value>,
    given: &BTreeMap<String, Value>,
    scope: &Scope,
    template_uri: Option<&str>,
    budget: Budget,
) -> Result<Evaluator, AzureError> {
    let mut variables: BTreeMap<String, Value> = BTreeMap::new();
    match template.get("variables") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if k.eq_ignore_ascii_case("copy") && v.is_array() {
                    for c in v.as_array().into_iter().flatten() {
                        let name = c.get("name").and_then(Value::as_str).ok_or_else(|| {
                            invalid_template("Deployment template validation failed: a variable copy needs a 'name'.".into())
                        })?;
                        variables.insert(
                            name.to_ascii_lowercase(),
                            json!({"$copy": c, "$name": name}),
                        );
                    }
                } else {
                    variables.insert(k.to_ascii_lowercase(), v.clone());
                }
            }
        }
        Some(_) => {
            return Err(invalid_template(
                "The template's 'variables' must be an object.".into(),
            ))
        }
    }
    let mut functions = BTreeMap::new();
    for ns in template
        .get("functions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let namespace = ns
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for (member, def) in ns
            .get("members")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let parameters = def
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            let output = def
                .get("output")
                .and_then(|o| o.get("value"))
                .cloned()
                .unwrap_or(Value::Null);
            functions.insert(
                format!("{namespace}.{member}").to_ascii_lowercase(),
                UserFunction { parameters, output },
            );
        }
    }
    let mut ev = Evaluator {
        params: BTreeMap::new(),
        variables,
        functions,
        scope: scope.clone(),
        budget,
    };
    ev.variables.insert(
        "$deployment".into(),
        deployment_object(template, scope, template_uri),
    );
    ev.params = params::resolve(template, given, &ev)?;
    Ok(ev)
}

/// What `deployment()` answers.
fn deployment_object(
    template: &Map<String, Value>,
    scope: &Scope,
    template_uri: Option<&str>,
) -> Value {
    let mut props = json!({
        "template": {
            "contentVersion": template.get("contentVersion").cloned().unwrap_or(json!("1.0.0.0")),
        },
        "mode": "Incremental",
        "provisioningState": "Accepted",
    });
    if let Some(uri) = template_uri {
        props["templateLink"] = json!({ "uri": uri, "contentVersion": template.get("contentVersion").cloned().unwrap_or(json!("1.0.0.0")) });
    }
    json!({ "name": scope.deployment, "location": scope.location, "properties": props })
}

#[derive(Debug, Clone)]
struct Instance {
    raw: Map<String, Value>,
    /// `resources[2]`, `resources[2].resources[0]`, `resources.web`.
    at: String,
    symbolic: Option<String>,
    parent: Option<(Value, Value)>,
    /// (loop name, index, batch size) when made by a copy loop.
    copy: Option<(String, i64, Option<i64>)>,
    // Phase 1:
    id: Option<ResourceId>,
    type_: String,
    name: String,
    enabled: bool,
    existing: bool,
    depends: Vec<usize>,
}

impl Instance {
    fn ctx(&self) -> String {
        let t = self.raw.get("type").and_then(Value::as_str).unwrap_or("?");
        let n = self.raw.get("name").and_then(Value::as_str).unwrap_or("?");
        format!("resource {t} '{n}' ({})", self.at)
    }

    fn frame<'w>(&self, world: Option<&'w dyn World>) -> Frame<'w> {
        let f = Frame::new(self.ctx(), world);
        match &self.copy {
            Some((loop_name, i, _)) => f.with_copy(loop_name, *i),
            None => f,
        }
    }

    fn is_deployment(&self) -> bool {
        self.type_
            .eq_ignore_ascii_case("Microsoft.Resources/deployments")
    }
}

enum Slot {
    Todo,
    Busy,
    Done(Value),
}

struct Engine<'s, 'a> {
    shared: &'s Shared<'a>,
    scope: Scope,
    ev: Evaluator,
    outputs_decl: Option<Value>,
    template_uri: Option<String>,
    instances: Vec<Instance>,
    /// What `dependsOn` and `reference()` may name, lower-cased, to the
    /// instances it names (ids, names, `type/name`, symbolic names, loops,
    /// a nested child's short name): lookups stay cheap in big templates.
    index: BTreeMap<String, Vec<usize>>,
    loops: BTreeSet<String>,
    slots: RefCell<Vec<Slot>>,
    depth: u32,
}

impl<'s, 'a> Engine<'s, 'a> {
    fn new(
        shared: &'s Shared<'a>,
        scope: Scope,
        ev: Evaluator,
        template: &Map<String, Value>,
        template_uri: Option<String>,
        depth: u32,
    ) -> Result<Self, AzureError> {
        let mut decls: Vec<(Value, Option<String>, String)> = Vec::new();
        match template.get("resources") {
            Some(Value::Array(r)) => {
                for (i, d) in r.iter().enumerate() {
                    decls.push((d.clone(), None, format!("resources[{i}]")));
                }
            }
            Some(Value::Object(m)) => {
                for (k, d) in m {
                    decls.push((d.clone(), Some(k.clone()), format!("resources.{k}")));
                }
            }
            None if template.contains_key("outputs") => {}
            _ => {
                return Err(invalid_template(
                    "The template has no 'resources'. Put the resources to deploy in \"resources\": [ ... ].".into(),
                ))
            }
        }
        let mut e = Engine {
            shared,
            scope,
            ev,
            outputs_decl: template.get("outputs").cloned(),
            template_uri,
            instances: Vec::new(),
            index: BTreeMap::new(),
            loops: BTreeSet::new(),
            slots: RefCell::new(Vec::new()),
            depth,
        };
        let mut flat = Vec::new();
        for (d, symbolic, at) in decls {
            flatten(&d, None, symbolic, &at, &mut flat)?;
        }
        for (raw, parent, symbolic, at) in flat {
            e.expand_copies(raw, parent, symbolic, at)?;
        }
        for i in 0..e.instances.len() {
            e.identify(i)?;
        }
        e.build_index();
        e.dependencies()?;
        e.slots = RefCell::new(e.instances.iter().map(|_| Slot::Todo).collect());
        Ok(e)
    }

    /// A resource with `copy` becomes `count` instances.
    fn expand_copies(
        &mut self,
        raw: Map<String, Value>,
        parent: Option<(Value, Value)>,
        symbolic: Option<String>,
        at: String,
    ) -> Result<(), AzureError> {
        let Some(copy) = raw.get("copy").cloned() else {
            self.instances
                .push(instance(raw, parent, symbolic, at, None));
            return Ok(());
        };
        let probe = instance(raw.clone(), None, symbolic.clone(), at.clone(), None);
        let f = probe.frame(None);
        let name = copy.get("name").and_then(Value::as_str).ok_or_else(|| {
            invalid_template(format!(
                "Deployment template validation failed: {}: the copy loop needs a 'name'.",
                probe.ctx()
            ))
            .with_target(format!("{at}.copy"))
        })?;
        let count = self
            .ev
            .count(copy.get("count"), &f, &format!("{at}.copy.count"))?;
        let serial = copy
            .get("mode")
            .and_then(Value::as_str)
            .is_some_and(|m| m.eq_ignore_ascii_case("serial"));
        let batch = if serial {
            let b = match copy.get("batchSize") {
                Some(b) => self
                    .ev
                    .eval(b, &f, &format!("{at}.copy.batchSize"))?
                    .as_i64()
                    .unwrap_or(1),
                None => 1,
            };
            Some(b.max(1))
        } else {
            None
        };
        self.loops.insert(name.to_ascii_lowercase());
        for i in 0..count {
            let mut r = raw.clone();
            r.remove("copy");
            self.instances.push(instance(
                r,
                parent.clone(),
                symbolic.clone(),
                format!("{at}[copy {i}]"),
                Some((name.to_string(), i, batch)),
            ));
        }
        Ok(())
    }

    /// Phase 1: type, name, id, condition, `existing`.
    fn identify(&mut self, i: usize) -> Result<(), AzureError> {
        let inst = self.instances[i].clone();
        let f = inst.frame(None);
        let field = |k: &str| -> Result<String, AzureError> {
            match self.ev.eval(inst.raw.get(k).unwrap_or(&Value::Null), &f, &format!("{}.{k}", inst.at))? {
                Value::String(s) if !s.is_empty() => Ok(s),
                _ => Err(invalid_template(format!(
                    "Deployment template validation failed: {}: '{k}' is required and must be a string.",
                    inst.ctx()
                ))
                .with_target(format!("{}.{k}", inst.at))),
            }
        };
        let (mut type_, mut name) = (field("type")?, field("name")?);
        if let Some((pt, pn)) = &inst.parent {
            let pt = self.ev.eval(pt, &f, &format!("{}.type", inst.at))?;
            let pn = self.ev.eval(pn, &f, &format!("{}.name", inst.at))?;
            let (Some(pt), Some(pn)) = (pt.as_str(), pn.as_str()) else {
                return Err(invalid_template(format!(
                    "{}: the parent resource needs a string 'type' and 'name'.",
                    inst.ctx()
                )));
            };
            // ARM accepts the short child type ("subnets") or the full one.
            if !type_.split('/').next().is_some_and(|ns| ns.contains('.')) {
                type_ = format!("{pt}/{type_}");
            }
            if name.split('/').count() < type_.split('/').count() - 1 {
                name = format!("{pn}/{name}");
            }
        }
        let enabled = match inst.raw.get("condition") {
            None => true,
            Some(c) => match self.ev.eval(c, &f, &format!("{}.condition", inst.at))? {
                Value::Bool(b) => b,
                Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                other => {
                    return Err(invalid_template(format!(
                        "Deployment template validation failed: {}: 'condition' must be true or false, not {other}.",
                        inst.ctx()
                    ))
                    .with_target(format!("{}.condition", inst.at)))
                }
            },
        };
        let existing = inst
            .raw
            .get("existing")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let (sub, rg) = self.target_of(&inst, &f)?;
        let mut id = resource_id(&sub, &rg, &type_, &name, &inst.ctx())?;
        if let Some(scope) = inst.raw.get("scope") {
            // An extension resource (a lock, a role assignment, diagnostic
            // settings): its id hangs under the resource it applies to.
            let s = self.ev.eval(scope, &f, &format!("{}.scope", inst.at))?;
            if let Some(target) = s.as_str().and_then(|s| self.scope_id(s)) {
                let mut t = target;
                t.segments
                    .push((format!("providers/{}", id.namespace), String::new()));
                let last = t.segments.len() - 1;
                let mut segs = id.segments.clone();
                t.segments[last].0 = format!("providers/{}/{}", id.namespace, segs[0].0);
                t.segments[last].1 = std::mem::take(&mut segs[0].1);
                t.segments.extend(segs.into_iter().skip(1));
                id = t;
            }
        }
        let me = &mut self.instances[i];
        me.type_ = type_;
        me.name = name;
        me.enabled = enabled;
        me.existing = existing;
        me.id = Some(id);
        Ok(())
    }

    /// A `scope` value: an id, or `Namespace/type/name` in this resource group.
    fn scope_id(&self, s: &str) -> Option<ResourceId> {
        if s.starts_with('/') {
            return s.parse().ok();
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() >= 3 && parts.len() % 2 == 1 {
            let types: Vec<&str> = parts[1..].iter().step_by(2).copied().collect();
            let names: Vec<&str> = parts[2..].iter().step_by(2).copied().collect();
            return resource_id(
                &self.scope.subscription,
                &self.scope.resource_group,
                &format!("{}/{}", parts[0], types.join("/")),
                &names.join("/"),
                "",
            )
            .ok();
        }
        None
    }

    /// Where a resource goes: this deployment's resource group, or the
    /// `subscriptionId`/`resourceGroup` a nested deployment names.
    fn target_of(&self, inst: &Instance, f: &Frame) -> Result<(String, String), AzureError> {
        let mut sub = self.scope.subscription.clone();
        let mut rg = self.scope.resource_group.clone();
        let is_deployment = inst
            .raw
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Resources/deployments"));
        if is_deployment {
            if let Some(s) = inst.raw.get("subscriptionId") {
                if let Some(s) = self
                    .ev
                    .eval(s, f, &format!("{}.subscriptionId", inst.at))?
                    .as_str()
                {
                    sub = s.to_string();
                }
            }
            if let Some(r) = inst.raw.get("resourceGroup") {
                if let Some(r) = self
                    .ev
                    .eval(r, f, &format!("{}.resourceGroup", inst.at))?
                    .as_str()
                {
                    rg = r.to_string();
                }
            }
        }
        Ok((sub, rg))
    }

    /// `dependsOn`, resolved to instances; batches of serial copy loops;
    /// then a cycle check.
    fn dependencies(&mut self) -> Result<(), AzureError> {
        for i in 0..self.instances.len() {
            let inst = self.instances[i].clone();
            let f = inst.frame(None);
            let mut deps = Vec::new();
            let entries = inst
                .raw
                .get("dependsOn")
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            let entries = self
                .ev
                .eval(&entries, &f, &format!("{}.dependsOn", inst.at))?;
            for (k, entry) in entries.as_array().into_iter().flatten().enumerate() {
                let Some(entry) = entry.as_str() else {
                    continue;
                };
                let hits = self.matching(entry);
                if hits.is_empty() && !self.loops.contains(&entry.to_ascii_lowercase()) {
                    return Err(invalid_template(format!(
                        "Deployment template validation failed: 'The resource '{entry}' is not defined in the template. \
                         Please see https://aka.ms/arm-syntax for usage details.' ({}, dependsOn[{k}])",
                        inst.ctx()
                    ))
                    .with_target(format!("{}.dependsOn[{k}]", inst.at)));
                }
                deps.extend(hits.into_iter().filter(|j| *j != i));
            }
            if let Some((loop_name, index, Some(batch))) = &inst.copy {
                let my_batch = index / batch;
                for (j, other) in self.instances.iter().enumerate() {
                    if let Some((l, x, _)) = &other.copy {
                        if l == loop_name
                            && x / batch == my_batch - 1
                            && other
                                .at
                                .starts_with(inst.at.split("[copy").next().unwrap_or(""))
                        {
                            deps.push(j);
                        }
                    }
                }
            }
            deps.sort_unstable();
            deps.dedup();
            self.instances[i].depends = deps;
        }
        self.check_cycles()
    }

    /// Instances a `dependsOn` entry or `reference()` target names: an id,
    /// a symbolic name, a name (`vnet1` or `vnet1/subnet1`), `type/name`,
    /// or a copy loop's name.
    fn matching(&self, entry: &str) -> Vec<usize> {
        let e = entry.trim().to_ascii_lowercase();
        if e.starts_with('/') {
            return self
                .index
                .get(&format!("id:{e}"))
                .cloned()
                .unwrap_or_default();
        }
        if let Some(hits) = self.index.get(&format!("sym:{e}")) {
            return hits.clone();
        }
        let mut hits: Vec<usize> = ["name", "tn", "loop", "short"]
            .iter()
            .filter_map(|k| self.index.get(&format!("{k}:{e}")))
            .flatten()
            .copied()
            .collect();
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    fn build_index(&mut self) {
        let mut index: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (j, x) in self.instances.iter().enumerate() {
            let mut keys = vec![
                format!("name:{}", x.name.to_ascii_lowercase()),
                format!("tn:{}/{}", x.type_, x.name).to_ascii_lowercase(),
            ];
            if let Some(id) = &x.id {
                keys.push(format!("id:{}", id.key()));
            }
            if let Some(sym) = &x.symbolic {
                keys.push(format!("sym:{}", sym.to_ascii_lowercase()));
            }
            if let Some((l, _, _)) = &x.copy {
                keys.push(format!("loop:{}", l.to_ascii_lowercase()));
            }
            if x.parent.is_some() {
                if let Some(short) = x.name.rsplit('/').next() {
                    keys.push(format!("short:{}", short.to_ascii_lowercase()));
                }
            }
            for k in keys {
                index.entry(k).or_default().push(j);
            }
        }
        self.index = index;
    }

    fn check_cycles(&self) -> Result<(), AzureError> {
        // 0 unvisited, 1 on the path, 2 done.
        let mut mark = vec![0u8; self.instances.len()];
        fn visit(e: &Engine, i: usize, mark: &mut [u8]) -> Result<(), usize> {
            match mark[i] {
                1 => return Err(i),
                2 => return Ok(()),
                _ => {}
            }
            mark[i] = 1;
            for &d in &e.instances[i].depends {
                visit(e, d, mark)?;
            }
            mark[i] = 2;
            Ok(())
        }
        for i in 0..self.instances.len() {
            if let Err(j) = visit(self, i, &mut mark) {
                let id = self.instances[j]
                    .id
                    .as_ref()
                    .map(|x| x.to_string())
                    .unwrap_or_default();
                return Err(circular(&id));
            }
        }
        Ok(())
    }

    /// Phase 2 and the outputs.
    fn run(&self) -> Result<Map<String, Value>, AzureError> {
        let mut order = Vec::new();
        let mut seen = vec![false; self.instances.len()];
        fn post(e: &Engine, i: usize, seen: &mut [bool], order: &mut Vec<usize>) {
            if seen[i] {
                return;
            }
            seen[i] = true;
            for &d in &e.instances[i].depends {
                post(e, d, seen, order);
            }
            order.push(i);
        }
        for i in 0..self.instances.len() {
            post(self, i, &mut seen, &mut order);
        }
        for i in order {
            if self.instances[i].enabled && !self.instances[i].existing {
                self.realize(i)?;
            }
        }
        self.outputs()
    }

    fn outputs(&self) -> Result<Map<String, Value>, AzureError> {
        let mut out = Map::new();
        let Some(Value::Object(decl)) = &self.outputs_decl else {
            return Ok(out);
        };
        for (name, o) in decl {
            let ty = o
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("string")
                .to_string();
            let f = Frame::new(format!("output '{name}'"), Some(self as &dyn World));
            let path = format!("outputs.{name}");
            if let Some(c) = o.get("condition") {
                if self.ev.eval(c, &f, &format!("{path}.condition"))? == Value::Bool(false) {
                    continue;
                }
            }
            let value = match o.get("copy") {
                Some(copy) => {
                    let count =
                        self.ev
                            .count(copy.get("count"), &f, &format!("{path}.copy.count"))?;
                    let input = copy.get("input").cloned().unwrap_or(Value::Null);
                    let mut v = Vec::new();
                    for i in 0..count {
                        v.push(self.ev.eval(
                            &input,
                            &f.with_copy("", i),
                            &format!("{path}.copy.input"),
                        )?);
                    }
                    Value::Array(v)
                }
                None => match self.ev.eval(
                    o.get("value").unwrap_or(&Value::Null),
                    &f,
                    &format!("{path}.value"),
                ) {
                    Ok(v) => v,
                    // Before the apply, a resource of this template shows
                    // only what was declared; ARM evaluates outputs after the
                    // deployment, when the runtime properties exist (a
                    // gateway's BGP address). The second evaluation decides.
                    Err(_) if !self.shared.after_apply && self.references_template_resource(o) => {
                        continue
                    }
                    Err(e) => return Err(e),
                },
            };
            if ty.to_ascii_lowercase().starts_with("secure") {
                continue;
            }
            out.insert(
                name.clone(),
                json!({ "type": output_type(&ty), "value": value }),
            );
        }
        Ok(out)
    }

    /// Does an output's expression read a resource (`reference(...)`)?
    fn references_template_resource(&self, output: &Value) -> bool {
        output
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| v.to_ascii_lowercase().contains("reference("))
    }

    /// Evaluate instance `i` (once) and return what `reference()` sees.
    fn realize(&self, i: usize) -> Result<Value, AzureError> {
        match &self.slots.borrow()[i] {
            Slot::Done(v) => return Ok(v.clone()),
            Slot::Busy => {
                let id = self.instances[i]
                    .id
                    .as_ref()
                    .map(|x| x.to_string())
                    .unwrap_or_default();
                return Err(circular(&id));
            }
            Slot::Todo => {}
        }
        self.slots.borrow_mut()[i] = Slot::Busy;
        let r = self.evaluate_instance(i);
        match r {
            Ok(v) => {
                self.slots.borrow_mut()[i] = Slot::Done(v.clone());
                Ok(v)
            }
            Err(e) => {
                self.slots.borrow_mut()[i] = Slot::Todo;
                Err(e)
            }
        }
    }

    fn evaluate_instance(&self, i: usize) -> Result<Value, AzureError> {
        let inst = &self.instances[i];
        let id = inst.id.clone().expect("identified");
        let f = inst.frame(Some(self as &dyn World));
        if inst.is_deployment() {
            return self.nested_deployment(inst, &id, &f);
        }
        let mut body = inst.raw.clone();
        for k in [
            "name",
            "type",
            "copy",
            "dependsOn",
            "condition",
            "comments",
            "existing",
            "scope",
            "metadata",
            "resourceGroup",
            "subscriptionId",
        ] {
            body.remove(k);
        }
        let v = self.ev.eval(&Value::Object(body), &f, &inst.at)?;
        let opt_str = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let mut properties = v.get("properties").cloned().unwrap_or_else(|| json!({}));
        rewrite_subscription(&mut properties, &self.scope.subscription);
        let res = GenericResource {
            id: id.clone(),
            type_: inst.type_.clone(),
            name: inst.name.clone(),
            location: opt_str("location"),
            kind: opt_str("kind"),
            sku: v.get("sku").filter(|s| !s.is_null()).cloned(),
            properties,
            tags: v.get("tags").filter(|s| !s.is_null()).cloned(),
            identity: v.get("identity").filter(|s| !s.is_null()).cloned(),
        };
        let view = declared_view(&res, v.get("apiVersion"));
        {
            let mut all = self.shared.resources.borrow_mut();
            if !self.shared.keys.borrow_mut().insert(res.id.key()) {
                return Err(invalid_template(format!(
                    "Deployment template validation failed: the resource '{}' is defined multiple times in the template.",
                    res.id
                )));
            }
            all.push(res);
        }
        Ok(view)
    }

    /// A `Microsoft.Resources/deployments`: its template inline or linked,
    /// evaluated in the outer scope (the parent's parameters and variables)
    /// or the inner one (its own, from `properties.parameters`).
    fn nested_deployment(
        &self,
        inst: &Instance,
        id: &ResourceId,
        f: &Frame,
    ) -> Result<Value, AzureError> {
        let at = &inst.at;
        if self.depth >= MAX_NESTING {
            return Err(invalid_template(format!(
                "Deployment template validation failed: {}: deployments nest more than {MAX_NESTING} levels deep.",
                inst.ctx()
            )));
        }
        let props = inst
            .raw
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        // A linked template always has its own scope; an inline one uses
        // the parent's unless it asks for `inner`.
        let inner = props.get("template").is_none()
            || props
                .get("expressionEvaluationOptions")
                .and_then(|o| o.get("scope"))
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("inner"));
        let (template, uri) = match (props.get("template"), props.get("templateLink")) {
            (Some(t), _) => (t.clone(), self.template_uri.clone()),
            (None, Some(link)) => {
                let link = self.ev.eval(link, f, &format!("{at}.properties.templateLink"))?;
                let uri = self.link_uri(&link).ok_or_else(|| {
                    invalid_template(format!(
                        "Deployment template validation failed: {}: 'templateLink' needs a 'uri' or a 'relativePath'.",
                        inst.ctx()
                    ))
                })?;
                let key = uri.split('?').next().unwrap_or(&uri).to_string();
                let t = self.shared.req.linked_templates.get(&key).cloned().ok_or_else(|| {
                    AzureError::bad_request(
                        "InvalidContentLink",
                        format!(
                            "Unable to download deployment content from '{uri}' for {}. The lab reads linked templates \
                             from the files beside the main template; put the file there (or deploy with the path \
                             the template expects).",
                            inst.ctx()
                        ),
                    )
                })?;
                (t, Some(key))
            }
            (None, None) => {
                return Err(invalid_template(format!(
                    "Deployment template validation failed: {}: a deployment needs 'properties.template' or \
                     'properties.templateLink'.",
                    inst.ctx()
                )))
            }
        };
        let template = template.as_object().cloned().ok_or_else(|| {
            invalid_template(format!(
                "{}: the nested template must be a JSON object.",
                inst.ctx()
            ))
        })?;
        let scope = Scope {
            subscription: id.subscription.clone(),
            resource_group: id.resource_group.clone(),
            deployment: id.name().to_string(),
            ..self.scope.clone()
        };
        let ev = if inner {
            let given = match props.get("parameters") {
                Some(p) => self.ev.eval(p, f, &format!("{at}.properties.parameters"))?,
                None => json!({}),
            };
            let mut values = BTreeMap::new();
            for (k, v) in given.as_object().into_iter().flatten() {
                match v.get("value") {
                    Some(x) => {
                        values.insert(k.clone(), x.clone());
                    }
                    None => {
                        return Err(invalid_template(format!(
                            "Deployment template validation failed: {}: parameter '{k}' of the nested deployment \
                             needs a 'value' (Key Vault references are not emulated).",
                            inst.ctx()
                        )))
                    }
                }
            }
            evaluator(
                &template,
                &values,
                &scope,
                uri.as_deref(),
                self.ev.budget.clone(),
            )?
        } else {
            let mut ev = self.ev.clone();
            ev.scope = scope.clone();
            ev
        };
        let engine = Engine::new(self.shared, scope, ev, &template, uri, self.depth + 1)?;
        let outputs = engine.run()?;
        self.shared.nested.borrow_mut().push(NestedDeployment {
            id: id.to_string(),
            name: id.name().to_string(),
            outputs: outputs.clone(),
        });
        Ok(json!({
            "id": id.to_string(),
            "name": id.name(),
            "type": "Microsoft.Resources/deployments",
            "properties": {
                "outputs": outputs,
                "provisioningState": "Succeeded",
                "mode": "Incremental",
            }
        }))
    }

    /// The absolute URI of a `templateLink`.
    fn link_uri(&self, link: &Value) -> Option<String> {
        if let Some(u) = link.get("uri").and_then(Value::as_str) {
            return Some(u.to_string());
        }
        let rel = link.get("relativePath").and_then(Value::as_str)?;
        let base = self
            .template_uri
            .clone()
            .unwrap_or_else(|| "file:///".into());
        Some(functions::uri(&base, rel))
    }

    /// The instance a `reference()`/`list*()` target names.
    fn find(&self, target: &str) -> Result<Option<usize>, Refusal> {
        let hits: Vec<usize> = self
            .matching(target)
            .into_iter()
            .filter(|j| self.instances[*j].enabled)
            .collect();
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(Refusal::Why(format!(
                "'{target}' names {} resources of the template; use resourceId(...) to say which",
                hits.len()
            ))),
        }
    }

    fn lookup(&self, id: &ResourceId) -> Option<Value> {
        if let Some(r) = self.shared.resources.borrow().iter().find(|r| r.id == *id) {
            if !self.shared.after_apply {
                return Some(declared_view(r, None));
            }
        }
        self.shared.state.view(id)
    }
}

impl World for Engine<'_, '_> {
    fn reference(&self, target: &str, full: bool) -> Result<Value, Refusal> {
        let view = match self.find(target)? {
            Some(j) if !self.instances[j].existing => {
                let declared = self.realize(j)?;
                let id = self.instances[j].id.clone().expect("identified");
                match (self.shared.after_apply && !self.instances[j].is_deployment())
                    .then(|| self.shared.state.view(&id))
                    .flatten()
                {
                    Some(v) => v,
                    None => declared,
                }
            }
            found => {
                let id: ResourceId = match found {
                    Some(j) => self.instances[j].id.clone().expect("identified"),
                    None => target.parse().map_err(|_| {
                        not_found(format!(
                            "The Resource '{target}' under resource group '{}' was not found. reference() takes a \
                             resource id (resourceId(...)) or the name of a resource of this template. For more \
                             details please go to https://aka.ms/ARMResourceNotFoundFix",
                            self.scope.resource_group
                        ))
                    })?,
                };
                self.lookup(&id).ok_or_else(|| {
                    not_found(format!(
                        "The Resource '{}/{}' under resource group '{}' was not found. For more details please go \
                         to https://aka.ms/ARMResourceNotFoundFix",
                        id.full_type(),
                        id.segments.iter().map(|s| s.1.as_str()).collect::<Vec<_>>().join("/"),
                        id.resource_group
                    ))
                })?
            }
        };
        Ok(if full {
            view
        } else {
            view.get("properties").cloned().unwrap_or_else(|| json!({}))
        })
    }

    fn list(&self, operation: &str, target: &str) -> Result<Value, Refusal> {
        let id: ResourceId = match self.find(target)? {
            Some(j) => {
                if !self.instances[j].existing {
                    self.realize(j)?;
                }
                self.instances[j].id.clone().expect("identified")
            }
            None => target.parse().map_err(|_| {
                Refusal::Why(format!("{operation}() takes a resource id, not '{target}'"))
            })?,
        };
        record::list_operation(&id, operation).ok_or_else(|| {
            Refusal::Why(format!(
                "the lab has no '{operation}' operation for {} ('{}')",
                id.full_type(),
                id.name()
            ))
        })
    }
}

fn instance(
    raw: Map<String, Value>,
    parent: Option<(Value, Value)>,
    symbolic: Option<String>,
    at: String,
    copy: Option<(String, i64, Option<i64>)>,
) -> Instance {
    Instance {
        raw,
        at,
        symbolic,
        parent,
        copy,
        id: None,
        type_: String::new(),
        name: String::new(),
        enabled: true,
        existing: false,
        depends: Vec::new(),
    }
}

type Flat = (
    Map<String, Value>,
    Option<(Value, Value)>,
    Option<String>,
    String,
);

/// Nested `resources` become separate entries that remember their parent.
fn flatten(
    r: &Value,
    parent: Option<(Value, Value)>,
    symbolic: Option<String>,
    at: &str,
    out: &mut Vec<Flat>,
) -> Result<(), AzureError> {
    let obj = r.as_object().ok_or_else(|| {
        invalid_template(format!(
            "Template entry {at} must be an object with 'type' and 'name'."
        ))
        .with_target(at.to_string())
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
            flatten(
                c,
                Some(me.clone()),
                None,
                &format!("{at}.resources[{i}]"),
                out,
            )?;
        }
    }
    let mut own = obj.clone();
    own.remove("resources");
    out.push((own, parent, symbolic, at.to_string()));
    Ok(())
}

fn join(a: &Value, b: &Value) -> Value {
    match (a.as_str(), b.as_str()) {
        (Some(a), Some(b)) if a.starts_with('[') || b.starts_with('[') => {
            // Expressions: join after evaluation.
            Value::String(format!("[concat({}, '/', {})]", as_expr(a), as_expr(b)))
        }
        (Some(a), Some(b)) => Value::String(format!("{a}/{b}")),
        _ => Value::Null,
    }
}

/// A template string as an expression operand: `[x]` -> `x`, `lit` -> `'lit'`.
fn as_expr(s: &str) -> String {
    match s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(inner) if !s.starts_with("[[") => inner.to_string(),
        _ => format!("'{}'", s.replace('\'', "''")),
    }
}

/// `Microsoft.Network/virtualNetworks/subnets` + `vnet1/s1` -> the full id.
fn resource_id(
    sub: &str,
    rg: &str,
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
        subscription: sub.to_string(),
        resource_group: rg.to_string(),
        namespace: namespace.to_string(),
        segments: types
            .iter()
            .zip(&names)
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect(),
    })
}

/// What `reference()` sees of a resource the template declares, before it
/// exists: what it declares plus what Azure computes.
fn declared_view(res: &GenericResource, api: Option<&Value>) -> Value {
    let mut props = res.properties.as_object().cloned().unwrap_or_default();
    for (k, v) in record::computed_properties(&res.id, res.location.as_deref()) {
        props.entry(k).or_insert(v);
    }
    // Inline children get the ids Azure gives them (`reference(vnet).subnets[0].id`).
    for key in CHILD_COLLECTIONS {
        if let Some(Value::Array(items)) = props.get_mut(*key) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(name) = item.get("name").and_then(Value::as_str).map(str::to_string) {
                    item.entry("id")
                        .or_insert_with(|| json!(format!("{}/{key}/{name}", res.id)));
                }
            }
        }
    }
    let mut v = json!({
        "id": res.id.to_string(),
        "name": res.id.name(),
        "type": res.type_,
        "location": res.location.clone().unwrap_or_else(|| DEFAULT_LOCATION.into()),
        "properties": props,
    });
    for (k, x) in [
        ("sku", &res.sku),
        ("kind", &res.kind.clone().map(Value::String)),
        ("tags", &res.tags),
    ] {
        if let Some(x) = x {
            v[k] = x.clone();
        }
    }
    if let Some(identity) = &res.identity {
        v["identity"] = record::identity_with_ids(&res.id, identity);
    }
    if let Some(api) = api {
        v["apiVersion"] = api.clone();
    }
    v
}

fn not_found(message: String) -> Refusal {
    Refusal::Error(AzureError::not_found("ResourceNotFound", message))
}

/// Arrays of child resources declared inline, whose entries Azure gives ids.
const CHILD_COLLECTIONS: &[&str] = &[
    "subnets",
    "securityRules",
    "routes",
    "ipConfigurations",
    "privateLinkServiceConnections",
    "virtualNetworkPeerings",
    "frontendIPConfigurations",
    "backendAddressPools",
];

fn circular(id: &str) -> AzureError {
    invalid_template(format!(
        "Deployment template validation failed: 'Circular dependency detected on resource: '{id}'. Please see \
         https://aka.ms/arm-syntax-resources for usage details.'."
    ))
}

/// ARM's capitalisation of output types (`String`, `Int`, `Bool`, `Array`, `Object`).
fn output_type(t: &str) -> String {
    let mut c = t.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => "String".into(),
    }
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
