//! PURE: what a deployment would change, before it is applied.
//! - Azure's view: each resource's change type (Create, Modify with
//!   property changes, Delete, NoChange, Ignore), from the resource views
//!   of the committed state and of the state the deployment would commit.
//! - Beyond Azure: the kernel changes, from the plans of both states, in
//!   the dataplane's own terms (namespaces, veth links, addresses, routes,
//!   rules, nft tables, processes), with counts that the apply's reconcile
//!   report can be compared with.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::view::Viewer;
use super::{NamespacePlan, NetworkPlan};
use crate::model::{GenericResource, LabConfig, LabState, ResourceId};

/// One entry per resource the template names, then (in the resource group)
/// the ones it does not: `Delete` if the new state lacks them, else `Ignore`.
pub fn resource_changes(
    old: &LabState,
    new: &LabState,
    lab: &LabConfig,
    template: &[GenericResource],
    subscription: &str,
    resource_group: &str,
) -> Vec<Value> {
    let (before_views, after_views) = (Viewer::new(old, lab), Viewer::new(new, lab));
    let mut out = Vec::new();
    let mut named = BTreeSet::new();
    for r in template {
        if !named.insert(r.id.key()) {
            continue;
        }
        let before = before_views.view(&r.id).ok();
        let after = after_views.view(&r.id).ok();
        out.push(change(&r.id, before, after));
    }
    for r in old.resources.values() {
        if named.contains(&r.id.key())
            || !r.id.subscription.eq_ignore_ascii_case(subscription)
            || !r.id.resource_group.eq_ignore_ascii_case(resource_group)
        {
            continue;
        }
        let before = before_views.view(&r.id).ok();
        let change_type = if new.get(&r.id).is_none() {
            "Delete"
        } else {
            "Ignore"
        };
        out.push(json!({
            "resourceId": r.id.to_string(),
            "changeType": change_type,
            "before": before,
            "after": null,
        }));
    }
    out
}

fn change(id: &ResourceId, before: Option<Value>, after: Option<Value>) -> Value {
    let (change_type, delta) = match (&before, &after) {
        (None, _) => ("Create", Vec::new()),
        (Some(_), None) => ("Delete", Vec::new()),
        (Some(b), Some(a)) => {
            let mut d = Vec::new();
            diff("", b, a, &mut d);
            if d.is_empty() {
                ("NoChange", d)
            } else {
                ("Modify", d)
            }
        }
    };
    let mut v = json!({
        "resourceId": id.to_string(),
        "changeType": change_type,
        "before": before,
        "after": after,
    });
    if change_type == "Modify" {
        v["delta"] = Value::Array(delta);
    }
    v
}

/// Property changes in what-if's shape: `{path, propertyChangeType, before, after}`.
fn diff(path: &str, b: &Value, a: &Value, out: &mut Vec<Value>) {
    let at = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (b, a) {
        (Value::Object(bm), Value::Object(am)) => {
            let keys: BTreeSet<&String> = bm.keys().chain(am.keys()).collect();
            for k in keys {
                match (bm.get(k), am.get(k)) {
                    (Some(x), Some(y)) => diff(&at(k), x, y, out),
                    (None, Some(y)) => {
                        out.push(json!({"path": at(k), "propertyChangeType": "Create", "after": y}))
                    }
                    (Some(x), None) => out
                        .push(json!({"path": at(k), "propertyChangeType": "Delete", "before": x})),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), p, q, out);
            }
        }
        _ if b != a => {
            out.push(json!({"path": path, "propertyChangeType": "Modify", "before": b, "after": a}))
        }
        _ => {}
    }
}

/// The kernel changes from plan `old` to plan `new`.
pub fn kernel_changes(old: &NetworkPlan, new: &NetworkPlan) -> Value {
    let names = |p: &NetworkPlan| p.namespaces.keys().cloned().collect::<BTreeSet<_>>();
    let (on, nn) = (names(old), names(new));
    let added: Vec<&String> = nn.difference(&on).collect();
    let removed: Vec<&String> = on.difference(&nn).collect();
    let veth = |v: &super::VethPlan| {
        format!(
            "{}:{} <-> {}:{}",
            v.a.netns, v.a.ifname, v.b.netns, v.b.ifname
        )
    };
    let ov: BTreeSet<String> = old.veths.iter().map(veth).collect();
    let nv: BTreeSet<String> = new.veths.iter().map(veth).collect();
    let empty = NamespacePlan {
        name: String::new(),
        role: super::NamespaceRole::Internet,
        sysctls: BTreeMap::new(),
        addresses: vec![],
        routes: vec![],
        rules: vec![],
        nft: None,
    };
    let mut addresses = (Vec::new(), Vec::new());
    let mut routes = (Vec::new(), Vec::new());
    let mut rules = (Vec::new(), Vec::new());
    let mut nft = Vec::new();
    for ns in on.union(&nn) {
        let o = old.namespaces.get(ns).unwrap_or(&empty);
        let n = new.namespaces.get(ns).unwrap_or(&empty);
        let gone = !new.namespaces.contains_key(ns);
        let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
        let a_o = set(o
            .addresses
            .iter()
            .map(|a| format!("{} {}", a.ifname, a.address))
            .collect());
        let a_n = set(n
            .addresses
            .iter()
            .map(|a| format!("{} {}", a.ifname, a.address))
            .collect());
        let r_o = set(o.routes.iter().map(route).collect());
        let r_n = set(n.routes.iter().map(route).collect());
        let u_o = set(o
            .rules
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect());
        let u_n = set(n
            .rules
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect());
        for x in a_n.difference(&a_o) {
            addresses.0.push(format!("{ns}: {x}"));
        }
        // A namespace that goes takes its contents with it: not counted.
        if !gone {
            for x in a_o.difference(&a_n) {
                addresses.1.push(format!("{ns}: {x}"));
            }
            for x in r_o.difference(&r_n) {
                routes.1.push(format!("{ns}: {x}"));
            }
            for x in u_o.difference(&u_n) {
                rules.1.push(format!("{ns}: {x}"));
            }
        }
        for x in r_n.difference(&r_o) {
            routes.0.push(format!("{ns}: {x}"));
        }
        for x in u_n.difference(&u_o) {
            rules.0.push(format!("{ns}: {x}"));
        }
        if n.nft.is_some() && o.nft != n.nft && !gone {
            nft.push(ns.clone());
        }
    }
    let keys = |p: &NetworkPlan| {
        p.processes
            .iter()
            .map(|x| x.key.clone())
            .chain(p.services.iter().map(|s| s.key.clone()))
            .collect::<BTreeSet<_>>()
    };
    let (op, np) = (keys(old), keys(new));
    let links_added: Vec<&String> = nv.difference(&ov).collect();
    let links_removed: Vec<&String> = ov.difference(&nv).collect();
    let mut m = Map::new();
    m.insert(
        "summary".into(),
        json!({
            "namespacesCreated": added.len(),
            "namespacesDeleted": removed.len(),
            "linksCreated": links_added.len(),
            "linksDeleted": links_removed.len(),
            "addressesAdded": addresses.0.len(),
            "addressesDeleted": addresses.1.len(),
            "routesAdded": routes.0.len(),
            "routesDeleted": routes.1.len(),
            "rulesChanged": rules.0.len() + rules.1.len(),
            "nftBatches": nft.len(),
            "processesStarted": np.difference(&op).count(),
            "processesStopped": op.difference(&np).count(),
        }),
    );
    m.insert("namespacesCreated".into(), json!(added));
    m.insert("namespacesDeleted".into(), json!(removed));
    m.insert("linksCreated".into(), json!(links_added));
    m.insert("linksDeleted".into(), json!(links_removed));
    m.insert("addressesAdded".into(), json!(addresses.0));
    m.insert("addressesDeleted".into(), json!(addresses.1));
    m.insert("routesAdded".into(), json!(routes.0));
    m.insert("routesDeleted".into(), json!(routes.1));
    m.insert("rulesAdded".into(), json!(rules.0));
    m.insert("rulesDeleted".into(), json!(rules.1));
    m.insert("nftTablesReplaced".into(), json!(nft));
    m.insert(
        "processesStarted".into(),
        json!(np.difference(&op).collect::<Vec<_>>()),
    );
    m.insert(
        "processesStopped".into(),
        json!(op.difference(&np).collect::<Vec<_>>()),
    );
    Value::Object(m)
}

fn route(r: &super::RoutePlan) -> String {
    let kind = serde_json::to_value(&r.kind).unwrap_or_default();
    format!("table {} {} {}", r.table, r.destination, kind)
}
