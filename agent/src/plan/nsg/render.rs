//! NSGs as nft in the fabric's one batch (docs/datapath.md, "NSGs").

use serde_json::{json, Value};

use super::super::layout::Layout;
use super::super::nft::{Batch, ChainType};
use super::compile::{self, chain_name, Addr, AddrSet, CompiledRule};
use crate::model::{Access, Direction, PortMatch, RuleProtocol, AZURE_PLATFORM_IP};

/// The base chain that dispatches to the NSG chains.
pub(crate) const NSG_CHAIN: &str = "nsg";
/// Its priority on the forward hook: after the fabric's counters (0).
pub(crate) const NSG_CHAIN_PRIORITY: i32 = 10;

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn set_elems(s: &AddrSet) -> Vec<Value> {
    s.cidrs()
        .into_iter()
        .map(|n| {
            if n.prefix_len() == 32 {
                json!(n.addr().to_string())
            } else {
                json!({"prefix": {"addr": n.addr().to_string(), "len": n.prefix_len()}})
            }
        })
        .collect()
}

/// `ip saddr|daddr <match>`, or nothing for `*`. A literal list that is
/// empty cannot happen (validation needs at least one entry).
fn addr_match(field: &str, a: &Addr) -> Option<Value> {
    let right = match a {
        Addr::Any => return None,
        Addr::Literal(s) => {
            let e = set_elems(s);
            if e.len() == 1 {
                e[0].clone()
            } else {
                json!({"set": e})
            }
        }
        Addr::Named { set, .. } => json!(format!("@{set}")),
    };
    Some(eq(payload("ip", field), right))
}

fn port_match(field: &str, p: &PortMatch) -> Option<Value> {
    let PortMatch::Ranges(r) = p else {
        return None;
    };
    let mut r = r.clone();
    r.sort();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (a, b) in r {
        match merged.last_mut() {
            Some(l) if u32::from(a) <= u32::from(l.1) + 1 => l.1 = l.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let elems: Vec<Value> = merged
        .iter()
        .map(|&(a, b)| {
            if a == b {
                json!(a)
            } else {
                json!({"range": [a, b]})
            }
        })
        .collect();
    let right = if elems.len() == 1 {
        elems[0].clone()
    } else {
        json!({"set": elems})
    };
    Some(eq(payload("th", field), right))
}

/// The nft expressions of one rule: protocol, addresses, ports, the rule's
/// named counter, then `return` (Allow: on to the next NSG) or `drop`.
pub(crate) fn rule_expr(r: &CompiledRule) -> Vec<Value> {
    let t = &r.rule;
    let ports =
        !matches!(t.source_ports, PortMatch::Any) || !matches!(t.destination_ports, PortMatch::Any);
    let mut e = Vec::new();
    match t.protocol {
        RuleProtocol::Tcp => e.push(eq(meta("l4proto"), json!("tcp"))),
        RuleProtocol::Udp => e.push(eq(meta("l4proto"), json!("udp"))),
        RuleProtocol::Icmp => e.push(eq(meta("l4proto"), json!("icmp"))),
        // Ports exist on TCP and UDP only.
        RuleProtocol::Any if ports => e.push(eq(meta("l4proto"), json!({"set": ["tcp", "udp"]}))),
        RuleProtocol::Any => {}
    }
    e.extend(addr_match("saddr", &r.src));
    e.extend(addr_match("daddr", &r.dst));
    if t.protocol != RuleProtocol::Icmp {
        e.extend(port_match("sport", &t.source_ports));
        e.extend(port_match("dport", &t.destination_ports));
    }
    e.push(json!({ "counter": r.counter }));
    e.push(match t.access {
        Access::Allow => json!({"return": null}),
        Access::Deny => json!({"drop": null}),
    });
    e
}

fn vmap<K: serde::Serialize>(key: Value, entries: &[(K, String)]) -> Value {
    let set: Vec<Value> = entries
        .iter()
        .map(|(k, chain)| json!([k, {"jump": {"target": chain}}]))
        .collect();
    json!({"vmap": {"key": key, "data": {"set": set}}})
}

/// Append fabric `fi`'s NSGs to its batch: nothing when no NSG applies there.
///
/// - base chain `nsg` (filter, hook forward, priority 10): `ct state
///   established,related accept`; `ip daddr|saddr 168.63.129.16 accept`;
///   then, in Azure's order, `iifname vmap` (source NIC's NSG, outbound),
///   `meta mark vmap` (source subnet's NSG, outbound; the mark is the ingress
///   NIC's subnet table), `oifname vmap` (destination subnet's NSG, inbound),
///   `oifname vmap` (destination NIC's NSG, inbound). Only VM NIC links are in
///   the `oifname` maps: inbound rules never apply to worker vNICs.
/// - per NSG, regular chains `nsg-<h>-out` and `nsg-<h>-in`, one rule per
///   NSG rule by priority, then the default rules; named sets `tag-*`, `asg-*`.
pub(crate) fn append(l: &Layout, fi: usize, batch: &mut Batch) {
    let fab = compile::fabric(l, fi);
    if fab.nsgs.is_empty() {
        return;
    }
    batch.chain(NSG_CHAIN, ChainType::Filter, "forward", NSG_CHAIN_PRIORITY);
    for n in &fab.nsgs {
        for d in [Direction::Outbound, Direction::Inbound] {
            batch.regular_chain(&chain_name(&n.id, d));
        }
        for r in &n.rules {
            batch.counter(&r.counter);
        }
    }
    for (name, content) in fab.named_sets() {
        let mut set = json!({"name": name, "type": "ipv4_addr", "flags": ["interval"]});
        if !content.is_empty() {
            set["elem"] = json!(set_elems(&content));
        }
        batch.object(json!({ "set": set }));
    }
    batch.rule(
        NSG_CHAIN,
        vec![
            json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}),
            json!({"accept": null}),
        ],
    );
    for field in ["daddr", "saddr"] {
        batch.rule(
            NSG_CHAIN,
            vec![
                eq(payload("ip", field), json!(AZURE_PLATFORM_IP.to_string())),
                json!({"accept": null}),
            ],
        );
    }
    let out_nic: Vec<(String, String)> = fab
        .nics
        .iter()
        .filter_map(|n| {
            Some((
                n.link.clone(),
                chain_name(n.nic_nsg.as_ref()?, Direction::Outbound),
            ))
        })
        .collect();
    let out_subnet: Vec<(u32, String)> = fab
        .subnets
        .iter()
        .map(|(_, mark, nsg)| (*mark, chain_name(nsg, Direction::Outbound)))
        .collect();
    let in_subnet: Vec<(String, String)> = fab
        .nics
        .iter()
        .filter_map(|n| {
            Some((
                n.link.clone(),
                chain_name(n.subnet_nsg.as_ref()?, Direction::Inbound),
            ))
        })
        .collect();
    let in_nic: Vec<(String, String)> = fab
        .nics
        .iter()
        .filter_map(|n| {
            Some((
                n.link.clone(),
                chain_name(n.nic_nsg.as_ref()?, Direction::Inbound),
            ))
        })
        .collect();
    if !out_nic.is_empty() {
        batch.rule(NSG_CHAIN, vec![vmap(meta("iifname"), &out_nic)]);
    }
    if !out_subnet.is_empty() {
        batch.rule(NSG_CHAIN, vec![vmap(meta("mark"), &out_subnet)]);
    }
    if !in_subnet.is_empty() {
        batch.rule(NSG_CHAIN, vec![vmap(meta("oifname"), &in_subnet)]);
    }
    if !in_nic.is_empty() {
        batch.rule(NSG_CHAIN, vec![vmap(meta("oifname"), &in_nic)]);
    }
    for n in &fab.nsgs {
        for d in [Direction::Outbound, Direction::Inbound] {
            let chain = chain_name(&n.id, d);
            for r in n.direction(d) {
                batch.rule(&chain, rule_expr(r));
            }
        }
    }
}
