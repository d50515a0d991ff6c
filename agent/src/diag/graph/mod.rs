//! `lab graph`: the lab as a picture. Nodes are the namespaces of the plan
//! (VNet fabrics, app workers and sandboxes, VMs, services, gateways, stamps,
//! the internet and its hosts) named in Azure's words, and the resources
//! that shape them (subnets, NSGs, route tables, NAT gateways, private
//! endpoints); edges are the real links (the plan's veths, labelled with the
//! addresses at each end) and the associations. Pure: rendered as Graphviz
//! dot, Mermaid, JSON, or one self-contained HTML page (`html`).

mod html;
mod text;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{AzureError, Inventory, LabConfig, LabState, ResourceId};
use crate::plan::{NamespaceRole, NetworkPlan};

pub use html::html;
pub use text::{dot, mermaid};

/// Azure's words for a namespace of the plan.
pub fn role_words(role: &NamespaceRole) -> String {
    use NamespaceRole as R;
    let name = |id: &str| id.rsplit('/').next().unwrap_or(id).to_string();
    match role {
        R::Internet => "the internet".into(),
        R::InternetHost { resource_id } => format!("internet host {}", name(resource_id)),
        R::Stamp { location } => format!("the App Service stamp of {location}"),
        R::Fabric { vnet_id } => format!("the fabric of VNet {}", name(vnet_id)),
        R::Worker { plan_id, instance } => {
            format!("App Service worker {} #{instance}", name(plan_id))
        }
        R::AppSandbox { site_id, instance } => {
            format!("app {} (instance {instance})", name(site_id))
        }
        R::VirtualMachine { vm_id } => format!("VM {}", name(vm_id)),
        R::Service { resource_id } => format!("service {}", name(resource_id)),
        R::Gateway { resource_id } => format!("gateway {}", name(resource_id)),
        R::OnPremisesSite { resource_id } => format!("on-premises site {}", name(resource_id)),
        R::OnPremisesHost { resource_id } => format!("on-premises host {}", name(resource_id)),
    }
}

/// The resource a namespace stands for, if any.
fn role_resource(role: &NamespaceRole) -> Option<&str> {
    use NamespaceRole as R;
    match role {
        R::Internet | R::Stamp { .. } => None,
        R::InternetHost { resource_id }
        | R::Service { resource_id }
        | R::Gateway { resource_id }
        | R::OnPremisesSite { resource_id }
        | R::OnPremisesHost { resource_id } => Some(resource_id),
        R::Fabric { vnet_id } => Some(vnet_id),
        R::Worker { plan_id, .. } => Some(plan_id),
        R::AppSandbox { site_id, .. } => Some(site_id),
        R::VirtualMachine { vm_id } => Some(vm_id),
    }
}

fn role_kind(role: &NamespaceRole) -> &'static str {
    use NamespaceRole as R;
    match role {
        R::Internet => "internet",
        R::InternetHost { .. } => "internetHost",
        R::Stamp { .. } => "stamp",
        R::Fabric { .. } => "vnet",
        R::Worker { .. } => "worker",
        R::AppSandbox { .. } => "app",
        R::VirtualMachine { .. } => "vm",
        R::Service { .. } => "service",
        R::Gateway { .. } => "gateway",
        R::OnPremisesSite { .. } => "onPremisesSite",
        R::OnPremisesHost { .. } => "onPremisesHost",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: String,
    pub label: String,
    pub kind: &'static str,
    /// The VNet whose box it is drawn in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub a: String,
    pub b: String,
    pub label: String,
    /// `link` (a veth), `association`, `privateLink`.
    pub kind: &'static str,
    /// `<netns>/<ifname>` of the link's first end: its counters' key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Every NSG in the picture, with its rules (their live hits come from
    /// the counters endpoint).
    pub nsgs: BTreeMap<String, Vec<String>>,
}

fn in_group(id: &str, group: Option<&str>) -> bool {
    let Some(g) = group else { return true };
    id.parse::<ResourceId>()
        .is_ok_and(|r| r.resource_group.eq_ignore_ascii_case(g))
}

/// The graph of the lab (`group`: only what belongs to that resource group,
/// with the internet, stamps and links between kept nodes).
pub fn build(
    state: &LabState,
    lab: &LabConfig,
    plan: &NetworkPlan,
    group: Option<&str>,
) -> Result<Graph, AzureError> {
    let inv = Inventory::parse_lenient(&state.resources);
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let vnet_ns: BTreeMap<String, String> = plan
        .namespaces
        .values()
        .filter_map(|ns| match &ns.role {
            NamespaceRole::Fabric { vnet_id } => {
                Some((vnet_id.to_ascii_lowercase(), ns.name.clone()))
            }
            _ => None,
        })
        .collect();
    for ns in plan.namespaces.values() {
        let res = role_resource(&ns.role).map(str::to_string);
        let kept = match &res {
            Some(r) => in_group(r, group),
            None => true,
        };
        if !kept {
            continue;
        }
        let vnet = match &ns.role {
            NamespaceRole::Fabric { vnet_id } => Some(vnet_id.clone()),
            _ => None,
        };
        keep.insert(ns.name.clone());
        nodes.push(Node {
            id: ns.name.clone(),
            label: role_words(&ns.role),
            kind: role_kind(&ns.role),
            vnet,
            resource: res,
        });
    }
    let addr_of = |netns: &str, ifname: &str| -> String {
        plan.namespaces
            .get(netns)
            .map(|ns| {
                ns.addresses
                    .iter()
                    .filter(|a| a.ifname == ifname)
                    .map(|a| a.address.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ifname.to_string())
    };
    for v in &plan.veths {
        if !keep.contains(&v.a.netns) || !keep.contains(&v.b.netns) {
            continue;
        }
        edges.push(Edge {
            a: v.a.netns.clone(),
            b: v.b.netns.clone(),
            label: format!(
                "{} ({}) — {} ({})",
                v.a.ifname,
                addr_of(&v.a.netns, &v.a.ifname),
                v.b.ifname,
                addr_of(&v.b.netns, &v.b.ifname)
            ),
            kind: "link",
            counter: Some(format!("{}/{}", v.a.netns, v.a.ifname)),
        });
    }
    // Resources that shape the fabrics: subnets and what is attached to them.
    let mut nsgs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let resource_node = |nodes: &mut Vec<Node>,
                         keep: &mut BTreeSet<String>,
                         id: &ResourceId,
                         kind: &'static str,
                         label: String,
                         vnet: Option<String>| {
        let key = id.to_string();
        if keep.insert(key.clone()) {
            nodes.push(Node {
                id: key.clone(),
                label,
                kind,
                vnet,
                resource: Some(key.clone()),
            });
        }
        key
    };
    for v in &inv.vnets {
        if !in_group(&v.id.to_string(), group) {
            continue;
        }
        let Some(fabric) = vnet_ns.get(&v.id.to_string().to_ascii_lowercase()) else {
            continue;
        };
        for s in &v.subnets {
            let sid = resource_node(
                &mut nodes,
                &mut keep,
                &s.id,
                "subnet",
                format!("subnet {} {}", s.name, s.address_prefix),
                Some(v.id.to_string()),
            );
            edges.push(Edge {
                a: fabric.clone(),
                b: sid.clone(),
                label: "subnet".into(),
                kind: "association",
                counter: None,
            });
            let attach = [
                (s.network_security_group.as_ref(), "nsg", "NSG"),
                (s.route_table_id.as_ref(), "routeTable", "route table"),
                (s.nat_gateway_id.as_ref(), "natGateway", "NAT gateway"),
            ];
            for (id, kind, words) in attach {
                if let Some(id) = id {
                    let n = resource_node(
                        &mut nodes,
                        &mut keep,
                        id,
                        kind,
                        format!("{words} {}", id.name()),
                        None,
                    );
                    edges.push(Edge {
                        a: sid.clone(),
                        b: n,
                        label: words.into(),
                        kind: "association",
                        counter: None,
                    });
                }
            }
        }
    }
    for nic in &inv.nics {
        if let Some(nsg) = &nic.network_security_group {
            if let Some(vm) = inv.vms.iter().find(|v| v.nic_ids.contains(&nic.id)) {
                if let Some(vm_ns) = nodes
                    .iter()
                    .find(|n| {
                        n.resource
                            .as_deref()
                            .is_some_and(|r| r.eq_ignore_ascii_case(&vm.id.to_string()))
                    })
                    .map(|n| n.id.clone())
                {
                    let n = resource_node(
                        &mut nodes,
                        &mut keep,
                        nsg,
                        "nsg",
                        format!("NSG {}", nsg.name()),
                        None,
                    );
                    edges.push(Edge {
                        a: vm_ns,
                        b: n,
                        label: format!("NIC {}", nic.id.name()),
                        kind: "association",
                        counter: None,
                    });
                }
            }
        }
    }
    for pe in &inv.private_endpoints {
        if !in_group(&pe.id.to_string(), group) {
            continue;
        }
        let n = resource_node(
            &mut nodes,
            &mut keep,
            &pe.id,
            "privateEndpoint",
            format!("private endpoint {}", pe.name),
            None,
        );
        if keep.contains(&pe.subnet_id.to_string()) {
            edges.push(Edge {
                a: pe.subnet_id.to_string(),
                b: n.clone(),
                label: "private endpoint".into(),
                kind: "association",
                counter: None,
            });
        }
        for c in pe.connections.iter().filter_map(|c| c.target.as_ref()) {
            if let Some(target) = nodes
                .iter()
                .find(|x| {
                    x.resource
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(&c.to_string()))
                })
                .map(|x| x.id.clone())
            {
                edges.push(Edge {
                    a: n.clone(),
                    b: target,
                    label: "private link".into(),
                    kind: "privateLink",
                    counter: None,
                });
            }
        }
    }
    for n in &inv.nsgs {
        if keep.contains(&n.id.to_string()) {
            let mut rules: Vec<String> = n
                .rules
                .iter()
                .map(|r| format!("securityRules/{}", r.name))
                .collect();
            rules.extend(
                crate::model::default_rules()
                    .iter()
                    .map(|r| format!("defaultSecurityRules/{}", r.name)),
            );
            nsgs.insert(n.id.to_string(), rules);
        }
    }
    if let Some(g) = group {
        if !nodes
            .iter()
            .any(|n| n.resource.as_deref().is_some_and(|r| in_group(r, Some(g))))
        {
            return Err(AzureError::not_found(
                "ResourceGroupNotFound",
                format!("Resource group '{g}' has nothing the lab draws (or does not exist)."),
            ));
        }
    }
    let _ = lab;
    Ok(Graph { nodes, edges, nsgs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fixtures::{fresh, id_str};
    use serde_json::json;

    fn state() -> LabState {
        let sub = |s: &str| id_str(&format!("Microsoft.Network/virtualNetworks/v1/subnets/{s}"));
        fresh(json!([
            {"type": "Microsoft.Network/networkSecurityGroups", "name": "nsg1", "properties": {"securityRules": []}},
            {"type": "Microsoft.Network/routeTables", "name": "rt1", "properties": {"routes": []}},
            {"type": "Microsoft.Network/virtualNetworks", "name": "v1", "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "a", "properties": {"addressPrefix": "10.0.1.0/24",
                    "networkSecurityGroup": {"id": id_str("Microsoft.Network/networkSecurityGroups/nsg1")},
                    "routeTable": {"id": id_str("Microsoft.Network/routeTables/rt1")}}}]}},
            {"type": "Microsoft.Network/networkInterfaces", "name": "nic1", "properties": {
                "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": sub("a")},
                "privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.1.4"}}]}},
            {"type": "Microsoft.Compute/virtualMachines", "name": "vm1", "properties": {
                "networkProfile": {"networkInterfaces": [{"id": id_str("Microsoft.Network/networkInterfaces/nic1")}]}}},
        ]))
        .unwrap()
    }

    #[test]
    fn the_graph_names_namespaces_and_resources_and_labels_links_with_addresses() {
        let s = state();
        let lab = LabConfig::default();
        let plan = crate::plan::build(&s, &lab);
        let g = build(&s, &lab, &plan, None).unwrap();
        let labels: Vec<&str> = g.nodes.iter().map(|n| n.label.as_str()).collect();
        for want in [
            "VM vm1",
            "the fabric of VNet v1",
            "subnet a 10.0.1.0/24",
            "NSG nsg1",
            "route table rt1",
            "the internet",
        ] {
            assert!(labels.contains(&want), "{want} missing from {labels:?}");
        }
        assert!(
            g.edges
                .iter()
                .any(|e| e.kind == "link" && e.label.contains("10.0.1.4/24")),
            "{:?}",
            g.edges
        );
        assert!(g
            .nsgs
            .values()
            .next()
            .unwrap()
            .contains(&"defaultSecurityRules/DenyAllInBound".to_string()));
        let d = dot(&g);
        assert!(
            d.starts_with("graph lab {")
                && d.contains("subgraph cluster_0")
                && d.contains("label=\"VNet v1\""),
            "{d}"
        );
        let m = mermaid(&g);
        assert!(
            m.starts_with("flowchart LR\n") && m.contains("subgraph v0[\"VNet v1\"]"),
            "{m}"
        );
        let h = html(&g, &serde_json::json!({}));
        assert!(
            h.contains("<!doctype html>") && !h.contains("<script src") && !h.contains("<link "),
            "self-contained"
        );
        assert_eq!(
            build(&s, &lab, &plan, Some("nope")).unwrap_err().code,
            "ResourceGroupNotFound"
        );
    }
}
