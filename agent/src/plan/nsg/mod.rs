//! Network security groups (AZURE-FACTS §3; seed, "Network routing"): the
//! rules compiled per fabric, rendered as nft chains in the fabric's batch,
//! Azure's effective security rules, hit-counter names, and a pure "which
//! rule decides" evaluator the kernel tests are checked against.
//!
//! Order (as Azure): a packet between two NICs of the fabric meets the source
//! NIC's NSG (outbound), the source subnet's NSG (outbound), the destination
//! subnet's NSG (inbound), the destination NIC's NSG (inbound); the lowest
//! priority number wins in each; Deny stops, Allow goes on to the next NSG.
//! Replies of an allowed flow pass (stateful). On an integration subnet only
//! the outbound rules apply, to app traffic entering the VNet. Traffic to or
//! from 168.63.129.16 is never filtered (the lab's reading of AZURE-FACTS §3:
//! the AzurePlatformDNS/IMDS/LKM tags that would filter it are not emulated).

mod classify;
mod compile;
mod render;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::layout::Layout;
use crate::model::{
    Access, AddressMatch, AzureError, Direction, LabConfig, LabState, PortMatch, ResourceId,
    RuleProtocol, TypedRule, AZURE_PLATFORM_IP,
};
use compile::{Addr, CompiledNsg, CompiledRule, FabricNsgs};

pub(crate) use render::append as append_to_fabric_batch;
pub use render::DENIED_LOG_GROUP;

/// The transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowProtocol {
    Tcp,
    Udp,
    Icmp,
}

/// Where a flow starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowOrigin {
    /// A VM's NIC (`Microsoft.Network/networkInterfaces` id).
    Nic(ResourceId),
    /// An integrated app's instance: its VNet traffic enters through the
    /// integration subnet (outbound rules of that subnet's NSG only).
    App { site: ResourceId, instance: u32 },
    /// The internet (`inet0` of the VNet's fabric), towards a VM NIC's address.
    Internet { vnet: ResourceId },
}

/// A new flow (its first packet), as the fabric sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub origin: FlowOrigin,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: FlowProtocol,
    /// Ignored for ICMP.
    pub src_port: u16,
    pub dst_port: u16,
}

/// One NSG evaluation of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub nsg: ResourceId,
    /// `subnet` or `networkInterface`, and its id.
    pub association: (String, ResourceId),
    pub direction: Direction,
    /// `securityRules/<name>` or `defaultSecurityRules/<name>`.
    pub rule: String,
    pub priority: u32,
    pub access: Access,
    /// The nft counter that counts this rule's hits.
    pub counter: String,
}

/// What the NSGs do with a new flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub access: Access,
    /// Every NSG evaluated, in order; the last one decides.
    pub steps: Vec<Step>,
    /// Why no NSG was evaluated, when none was.
    pub note: Option<String>,
}

impl Verdict {
    /// The deciding NSG and rule (the Deny that stopped it, or the last
    /// Allow); `None` when no NSG applies.
    pub fn deciding(&self) -> Option<&Step> {
        self.steps.last()
    }
}

use super::not_found;

fn fabric_of_vnet(l: &Layout, vnet: &ResourceId) -> Option<usize> {
    l.fabrics.iter().position(|f| &f.vnet.id == vnet)
}

fn rule_matches(r: &CompiledRule, f: &Flow) -> bool {
    let t = &r.rule;
    let proto_ok = matches!(
        (t.protocol, f.protocol),
        (RuleProtocol::Any, _)
            | (RuleProtocol::Tcp, FlowProtocol::Tcp)
            | (RuleProtocol::Udp, FlowProtocol::Udp)
            | (RuleProtocol::Icmp, FlowProtocol::Icmp)
    );
    let port_in = |p: &PortMatch, port: u16| match p {
        PortMatch::Any => true,
        PortMatch::Ranges(r) => r.iter().any(|&(a, b)| a <= port && port <= b),
    };
    let ports_ok = if t.protocol == RuleProtocol::Icmp {
        true
    } else if f.protocol == FlowProtocol::Icmp {
        matches!(t.source_ports, PortMatch::Any) && matches!(t.destination_ports, PortMatch::Any)
    } else {
        port_in(&t.source_ports, f.src_port) && port_in(&t.destination_ports, f.dst_port)
    };
    proto_ok && ports_ok && r.src.contains(f.src) && r.dst.contains(f.dst)
}

fn evaluate_one(n: &CompiledNsg, assoc: (&str, &ResourceId), d: Direction, f: &Flow) -> Step {
    let r = n
        .direction(d)
        .find(|r| rule_matches(r, f))
        .expect("the default rules match everything");
    Step {
        nsg: n.id.clone(),
        association: (assoc.0.to_string(), assoc.1.clone()),
        direction: d,
        rule: r.path.clone(),
        priority: r.rule.priority,
        access: r.rule.access,
        counter: r.counter.clone(),
    }
}

/// `(association kind, its id, its NSG)`.
type Assoc = (&'static str, ResourceId, Option<ResourceId>);

fn is_private(ip: Ipv4Addr) -> bool {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .any(|p| p.parse::<Ipv4Net>().expect("constant").contains(&ip))
}

/// Which NSG rules decide a new flow, from the desired state alone: the
/// answer the kernel's `nsg` chains give (the tests check both agree).
pub fn evaluate(state: &LabState, lab: &LabConfig, flow: &Flow) -> Result<Verdict, AzureError> {
    let l = Layout::new(state, lab);
    let none = |note: &str| Verdict {
        access: Access::Allow,
        steps: Vec::new(),
        note: Some(note.to_string()),
    };
    if flow.src == AZURE_PLATFORM_IP || flow.dst == AZURE_PLATFORM_IP {
        return Ok(none("168.63.129.16 is not filtered by NSGs"));
    }
    // (fabric, outbound (association, nsg) list)
    let (fi, outbound): (usize, Vec<Assoc>) = match &flow.origin {
        FlowOrigin::Nic(id) => {
            let nic = l
                .inv
                .nic(id)
                .ok_or_else(|| not_found("network interface", id))?;
            let (vnet, subnet, _) = l
                .inv
                .subnet(nic.subnet_id())
                .ok_or_else(|| not_found("subnet", nic.subnet_id()))?;
            let fi = fabric_of_vnet(&l, &vnet.id).expect("every VNet has a fabric");
            (
                fi,
                vec![
                    (
                        "networkInterface",
                        nic.id.clone(),
                        nic.network_security_group.clone(),
                    ),
                    (
                        "subnet",
                        subnet.id.clone(),
                        subnet.network_security_group.clone(),
                    ),
                ],
            )
        }
        FlowOrigin::App { site, instance } => {
            let s = l.inv.site(site).ok_or_else(|| not_found("site", site))?;
            l.site_worker(s, *instance)?;
            let Some(subnet_id) = &s.subnet_id else {
                return Ok(none("the app is not integrated with a virtual network"));
            };
            if !s.route_all && !is_private(flow.dst) {
                return Ok(none(
                    "with Route All off only RFC1918 traffic enters the virtual network; this flow leaves through the stamp",
                ));
            }
            let (vnet, subnet, _) = l
                .inv
                .subnet(subnet_id)
                .ok_or_else(|| not_found("subnet", subnet_id))?;
            let fi = fabric_of_vnet(&l, &vnet.id).expect("every VNet has a fabric");
            (
                fi,
                vec![(
                    "subnet",
                    subnet.id.clone(),
                    subnet.network_security_group.clone(),
                )],
            )
        }
        FlowOrigin::Internet { vnet } => {
            let fi = fabric_of_vnet(&l, vnet).ok_or_else(|| not_found("virtual network", vnet))?;
            (fi, Vec::new())
        }
    };
    let fab = compile::fabric(&l, fi);
    let mut steps = Vec::new();
    let mut run = |assoc: &str, id: &ResourceId, nsg: &Option<ResourceId>, d| {
        let Some(n) = nsg.as_ref().and_then(|n| fab.nsg(n)) else {
            return true;
        };
        let s = evaluate_one(n, (assoc, id), d, flow);
        let go_on = s.access == Access::Allow;
        steps.push(s);
        go_on
    };
    for (assoc, id, nsg) in &outbound {
        if !run(assoc, id, nsg, Direction::Outbound) {
            return Ok(Verdict {
                access: Access::Deny,
                steps,
                note: None,
            });
        }
    }
    if let Some(dst) = fab.nics.iter().find(|n| n.addresses.contains(&flow.dst)) {
        for (assoc, id, nsg) in [
            ("subnet", &dst.subnet, &dst.subnet_nsg),
            ("networkInterface", &dst.nic, &dst.nic_nsg),
        ] {
            if !run(assoc, id, nsg, Direction::Inbound) {
                return Ok(Verdict {
                    access: Access::Deny,
                    steps,
                    note: None,
                });
            }
        }
    }
    let note = steps
        .is_empty()
        .then(|| "no NSG applies to this flow".to_string());
    Ok(Verdict {
        access: Access::Allow,
        steps,
        note,
    })
}

fn ports_json(p: &PortMatch) -> Vec<String> {
    match p {
        PortMatch::Any => vec!["0-65535".into()],
        PortMatch::Ranges(r) => r.iter().map(|(a, b)| format!("{a}-{b}")).collect(),
    }
}

fn prefixes_json(m: &AddressMatch) -> Vec<String> {
    match m {
        AddressMatch::Any => vec!["0.0.0.0/0".into()],
        AddressMatch::Prefixes(p) => p.iter().map(ToString::to_string).collect(),
        AddressMatch::Tag(t) => vec![t.name()],
        AddressMatch::Asg(a) => vec![a.to_string()],
    }
}

fn expanded(a: &Addr) -> Value {
    match a {
        Addr::Named { content, .. } => {
            json!(content
                .cidrs()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>())
        }
        _ => Value::Null,
    }
}

fn one(v: &[String]) -> Value {
    match v {
        [one] => json!(one),
        _ => Value::Null,
    }
}

/// One effective rule in Azure's shape (`az network nic list-effective-nsg`).
fn effective_rule(r: &CompiledRule) -> Value {
    let t: &TypedRule = &r.rule;
    let (sp, dp) = (
        ports_json(&t.source_ports),
        ports_json(&t.destination_ports),
    );
    let (sa, da) = (prefixes_json(&t.source), prefixes_json(&t.destination));
    json!({
        "name": r.path,
        "protocol": if t.protocol == RuleProtocol::Any { "All" } else { t.protocol.as_str() },
        "sourcePortRange": one(&sp),
        "destinationPortRange": one(&dp),
        "sourcePortRanges": sp,
        "destinationPortRanges": dp,
        "sourceAddressPrefix": one(&sa),
        "destinationAddressPrefix": one(&da),
        "sourceAddressPrefixes": sa,
        "destinationAddressPrefixes": da,
        "expandedSourceAddressPrefix": expanded(&r.src),
        "expandedDestinationAddressPrefix": expanded(&r.dst),
        "access": t.access.as_str(),
        "priority": t.priority,
        "direction": t.direction.as_str(),
    })
}

fn effective_entry(
    fab: &FabricNsgs,
    nsg: &ResourceId,
    assoc: &str,
    id: &ResourceId,
    only: Option<Direction>,
) -> Option<Value> {
    let n = fab.nsg(nsg)?;
    let rules: Vec<Value> = n
        .rules
        .iter()
        .filter(|r| only.is_none_or(|d| r.rule.direction == d))
        .map(effective_rule)
        .collect();
    let mut association = json!({});
    association[assoc] = json!({"id": id.to_string()});
    Some(json!({
        "networkSecurityGroup": {"id": nsg.to_string()},
        "association": association,
        "effectiveSecurityRules": rules,
    }))
}

/// `az network nic list-effective-nsg`: the NIC's own NSG, then its subnet's.
pub fn effective_security_rules_for_nic(
    state: &LabState,
    lab: &LabConfig,
    nic_id: &ResourceId,
) -> Result<Value, AzureError> {
    let l = Layout::new(state, lab);
    let nic = l
        .inv
        .nic(nic_id)
        .ok_or_else(|| not_found("network interface", nic_id))?;
    let (vnet, subnet, _) = l
        .inv
        .subnet(nic.subnet_id())
        .ok_or_else(|| not_found("subnet", nic.subnet_id()))?;
    let fab = compile::fabric_for_effective(&l, &vnet.id);
    let mut value = Vec::new();
    if let Some(n) = &nic.network_security_group {
        value.extend(effective_entry(&fab, n, "networkInterface", &nic.id, None));
    }
    if let Some(n) = &subnet.network_security_group {
        value.extend(effective_entry(&fab, n, "subnet", &subnet.id, None));
    }
    Ok(json!({ "value": value }))
}

/// The effective rules of a subnet's NSG (both directions).
pub fn effective_security_rules_for_subnet(
    state: &LabState,
    lab: &LabConfig,
    subnet_id: &ResourceId,
) -> Result<Value, AzureError> {
    let l = Layout::new(state, lab);
    let (vnet, subnet, _) = l
        .inv
        .subnet(subnet_id)
        .ok_or_else(|| not_found("subnet", subnet_id))?;
    let fab = compile::fabric_for_effective(&l, &vnet.id);
    let value: Vec<Value> = subnet
        .network_security_group
        .iter()
        .filter_map(|n| effective_entry(&fab, n, "subnet", &subnet.id, None))
        .collect();
    Ok(json!({ "value": value }))
}

/// The rules that filter an app instance's VNet traffic: the OUTBOUND rules
/// of its integration subnet's NSG (seed, "Network routing": *inbound rules
/// in an NSG don't apply to your app*). Empty when the app is not integrated.
pub fn effective_security_rules_for_app(
    state: &LabState,
    lab: &LabConfig,
    site_id: &ResourceId,
    instance: u32,
) -> Result<Value, AzureError> {
    let l = Layout::new(state, lab);
    let site = l
        .inv
        .site(site_id)
        .ok_or_else(|| not_found("site", site_id))?;
    l.site_worker(site, instance)?;
    let mut value = Vec::new();
    if let Some((vnet, subnet, _)) = site.subnet_id.as_ref().and_then(|s| l.inv.subnet(s)) {
        let fab = compile::fabric_for_effective(&l, &vnet.id);
        if let Some(n) = &subnet.network_security_group {
            value.extend(effective_entry(
                &fab,
                n,
                "subnet",
                &subnet.id,
                Some(Direction::Outbound),
            ));
        }
    }
    Ok(json!({ "value": value }))
}

/// `(rule, fabric netns, counter)` for every rule of the NSG in every fabric
/// whose batch holds it: rule = `securityRules/<name>` or
/// `defaultSecurityRules/<name>`, counter = `nsg-<h8>-<r8>` (a named nft
/// counter in table `inet vnet_agent` of that namespace; docs/datapath.md).
pub fn nsg_counter_names(
    state: &LabState,
    lab: &LabConfig,
    nsg_id: &ResourceId,
) -> Vec<(String, String, String)> {
    let l = Layout::new(state, lab);
    let mut out = Vec::new();
    for (fi, f) in l.fabrics.iter().enumerate() {
        let fab = compile::fabric(&l, fi);
        if let Some(n) = fab.nsg(nsg_id) {
            out.extend(
                n.rules
                    .iter()
                    .map(|r| (r.path.clone(), f.netns.clone(), r.counter.clone())),
            );
        }
    }
    out
}

/// The NSG view's computed properties (as Azure shows them): rule ids and
/// provisioning states, `defaultSecurityRules[]`, `subnets[]`,
/// `networkInterfaces[]`; `emulator` names the chains and counters.
pub(crate) fn nsg_view(l: &Layout, mut v: Value) -> Value {
    let Ok(id) = v["id"].as_str().unwrap_or_default().parse::<ResourceId>() else {
        return v;
    };
    if let Some(rules) = v["properties"]["securityRules"].as_array_mut() {
        for r in rules.iter_mut() {
            let name = r["name"].as_str().unwrap_or_default().to_string();
            r["id"] = json!(id.child("securityRules", &name).to_string());
            r["type"] = json!("Microsoft.Network/networkSecurityGroups/securityRules");
            if r["properties"].is_object() {
                r["properties"]["provisioningState"] = json!("Succeeded");
            }
        }
    }
    let defaults: Vec<Value> = crate::model::default_rules()
        .iter()
        .map(|r| {
            json!({
                "id": id.child("defaultSecurityRules", &r.name).to_string(),
                "name": r.name,
                "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
                "properties": {
                    "description": default_description(&r.name),
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": prefix_word(&r.source),
                    "destinationAddressPrefix": prefix_word(&r.destination),
                    "access": r.access.as_str(),
                    "priority": r.priority,
                    "direction": r.direction.as_str(),
                    "provisioningState": "Succeeded",
                    "sourcePortRanges": [], "destinationPortRanges": [],
                    "sourceAddressPrefixes": [], "destinationAddressPrefixes": [],
                }
            })
        })
        .collect();
    let mut subnets: Vec<String> = l
        .inv
        .vnets
        .iter()
        .flat_map(|v| &v.subnets)
        .filter(|s| s.network_security_group.as_ref() == Some(&id))
        .map(|s| s.id.to_string())
        .collect();
    subnets.sort_by_key(|s| s.to_ascii_lowercase());
    let nics: Vec<String> = l
        .inv
        .nics
        .iter()
        .filter(|n| n.network_security_group.as_ref() == Some(&id))
        .map(|n| n.id.to_string())
        .collect();
    if let Some(p) = v["properties"].as_object_mut() {
        p.insert("defaultSecurityRules".into(), json!(defaults));
        p.entry("securityRules").or_insert_with(|| json!([]));
        if !subnets.is_empty() {
            p.insert(
                "subnets".into(),
                json!(subnets.iter().map(|s| json!({"id": s})).collect::<Vec<_>>()),
            );
        }
        if !nics.is_empty() {
            p.insert(
                "networkInterfaces".into(),
                json!(nics.iter().map(|s| json!({"id": s})).collect::<Vec<_>>()),
            );
        }
    }
    let fabrics: Vec<Value> = l
        .fabrics
        .iter()
        .enumerate()
        .filter_map(|(fi, f)| {
            let fab = compile::fabric(l, fi);
            let n = fab.nsg(&id)?;
            Some(json!({
                "fabricNamespace": f.netns,
                "chains": [compile::chain_name(&id, Direction::Outbound), compile::chain_name(&id, Direction::Inbound)],
                "counters": n.rules.iter().map(|r| json!({"rule": r.path, "counter": r.counter})).collect::<Vec<_>>(),
            }))
        })
        .collect();
    v["emulator"] = json!({ "fabrics": fabrics });
    v
}

fn prefix_word(m: &AddressMatch) -> String {
    match m {
        AddressMatch::Any => "*".into(),
        other => prefixes_json(other).join(","),
    }
}

fn default_description(name: &str) -> &'static str {
    match name {
        "AllowVnetInBound" => "Allow inbound traffic from all VMs in VNET",
        "AllowAzureLoadBalancerInBound" => "Allow inbound traffic from azure load balancer",
        "DenyAllInBound" => "Deny all inbound traffic",
        "AllowVnetOutBound" => "Allow outbound traffic from all VMs to all VMs in VNET",
        "AllowInternetOutBound" => "Allow outbound traffic from all VMs to Internet",
        _ => "Deny all outbound traffic",
    }
}
