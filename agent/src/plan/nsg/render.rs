//! NSGs as nft in the fabric's one batch (docs/datapath.md, "NSGs").

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::super::fabric::MAP_SUBNET_MARKS;
use super::super::layout::Layout;
use super::super::nft::{self, meta, payload, Batch};
use super::classify::{classify, merged_ports, KeyField};
use super::compile::{self, chain_name, Addr, AddrSet, CompiledRule};
use crate::model::{Access, Direction, PortMatch, RuleProtocol, AZURE_PLATFORM_IP};

/// The chain that dispatches to the NSG chains: the fabric's `forward`
/// chain jumps to it last (after its spoofing checks and counters).
pub(crate) const NSG_CHAIN: &str = "nsg";
/// Where an Allow goes: gives the packet its subnet mark back, then returns
/// to `nsg` (on to the next NSG).
pub(crate) const NSG_ALLOW_CHAIN: &str = "nsg-allow";
/// Where a Deny goes: the packet is offered to NFLOG group
/// [`DENIED_LOG_GROUP`] (headers only), then dropped. A VNet flow log's
/// reader listens to that group for its `D` tuples; with nobody listening
/// the log costs nothing but the lookup.
pub(crate) const NSG_DENY_CHAIN: &str = "nsg-deny";
/// The NFLOG group of packets an NSG denied (per namespace).
pub const DENIED_LOG_GROUP: u16 = 100;
/// Bytes of a denied packet copied to NFLOG: IPv4 and TCP/UDP headers.
const DENIED_LOG_SNAPLEN: u32 = 64;
/// The rank register's value before any rule matched.
const NO_RANK: u32 = u32::MAX;

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
    let elems: Vec<Value> = merged_ports(r)
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

/// The nft match expressions of one rule: protocol, addresses, ports;
/// without the fields `skip` that lookups have already matched.
fn match_expr(r: &CompiledRule, skip: &[KeyField]) -> Vec<Value> {
    let t = &r.rule;
    let ports =
        !matches!(t.source_ports, PortMatch::Any) || !matches!(t.destination_ports, PortMatch::Any);
    let keep = |f: KeyField| !skip.contains(&f);
    let mut e = Vec::new();
    match t.protocol {
        RuleProtocol::Tcp => e.push(eq(meta("l4proto"), json!("tcp"))),
        RuleProtocol::Udp => e.push(eq(meta("l4proto"), json!("udp"))),
        RuleProtocol::Icmp => e.push(eq(meta("l4proto"), json!("icmp"))),
        // Ports exist on TCP and UDP only.
        RuleProtocol::Any if ports => e.push(tcp_or_udp()),
        RuleProtocol::Any => {}
    }
    if keep(KeyField::Saddr) {
        e.extend(addr_match("saddr", &r.src));
    }
    if keep(KeyField::Daddr) {
        e.extend(addr_match("daddr", &r.dst));
    }
    if t.protocol != RuleProtocol::Icmp {
        if keep(KeyField::Sport) {
            e.extend(port_match("sport", &t.source_ports));
        }
        if keep(KeyField::Dport) {
            e.extend(port_match("dport", &t.destination_ports));
        }
    }
    e
}

fn tcp_or_udp() -> Value {
    eq(meta("l4proto"), json!({"set": ["tcp", "udp"]}))
}

/// `meta mark > <rank> meta mark set <rank>`: the rule matched; it decides
/// unless a rule of a lower rank (earlier in priority order) matched too.
fn offer_rank(rank: u32) -> [Value; 2] {
    [
        json!({"match": {"op": ">", "left": meta("mark"), "right": rank}}),
        json!({"mangle": {"key": meta("mark"), "value": rank}}),
    ]
}

/// The packet field a lookup is keyed by.
fn key_expr(f: KeyField) -> Value {
    match f {
        KeyField::Dport => payload("th", "dport"),
        KeyField::Sport => payload("th", "sport"),
        KeyField::Daddr => payload("ip", "daddr"),
        KeyField::Saddr => payload("ip", "saddr"),
    }
}

/// A vmap key element: one value or a range of `f`.
fn key_elem(f: KeyField, (a, b): (u32, u32)) -> Value {
    let v = |x: u32| {
        if f.is_port() {
            json!(x)
        } else {
            json!(Ipv4Addr::from(x).to_string())
        }
    };
    if a == b {
        v(a)
    } else {
        json!({"range": [v(a), v(b)]})
    }
}

/// One direction of one NSG (`rules` in evaluation order) as chain `chain`
/// (see `classify`): the rank register starts at "no rule"; `<chain>-0`
/// (the tree's root; node k is chain `<chain>-<k>`) lowers it to the rank
/// of the first matching rule; then that rule's counter counts the packet
/// and its access decides (`drop`, or `goto nsg-allow`).
fn append_direction(batch: &mut Batch, chain: &str, rules: &[&CompiledRule]) {
    let tree = classify(rules);
    let rank = |i: usize| u32::try_from(i).expect("fewer than 2^32 rules");
    let node = |k: usize| format!("{chain}-{k}");
    batch.rule(
        chain,
        vec![json!({"mangle": {"key": meta("mark"), "value": NO_RANK}})],
    );
    batch.rule(chain, vec![json!({"jump": {"target": node(0)}})]);
    for (k, n) in tree.nodes.iter().enumerate() {
        let name = node(k);
        batch.regular_chain(&name);
        for g in &n.groups {
            let entries: Vec<(Value, String)> = g
                .elements
                .iter()
                .map(|&(r, child)| (key_elem(g.field, r), node(child)))
                .collect();
            let mut e = Vec::new();
            if g.field.is_port() {
                e.push(tcp_or_udp());
            }
            e.push(vmap(key_expr(g.field), &entries));
            batch.rule(&name, e);
        }
        for &i in &n.singles {
            let mut e = match_expr(rules[i], &n.decided);
            e.extend(offer_rank(rank(i)));
            e.push(json!({"return": null}));
            batch.rule(&name, e);
        }
    }
    let decided: Vec<usize> = (0..rules.len())
        .filter(|i| !tree.never.contains(i))
        .collect();
    let counters: Vec<Value> = decided
        .iter()
        .map(|&i| json!([rank(i), rules[i].counter]))
        .collect();
    batch.rule(
        chain,
        vec![json!({"counter": {"map": {"key": meta("mark"), "data": {"set": counters}}}})],
    );
    let verdicts: Vec<Value> = decided
        .iter()
        .map(|&i| {
            let v = match rules[i].rule.access {
                Access::Allow => json!({"goto": {"target": NSG_ALLOW_CHAIN}}),
                Access::Deny => json!({"goto": {"target": NSG_DENY_CHAIN}}),
            };
            json!([rank(i), v])
        })
        .collect();
    batch.rule(
        chain,
        vec![json!({"vmap": {"key": meta("mark"), "data": {"set": verdicts}}})],
    );
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
/// - chain `nsg`, jumped to at the end of `forward`: `ct state
///   established,related return`; `ip daddr|saddr 168.63.129.16 return`
///   (what returns is accepted by `forward`'s policy);
///   then, in Azure's order, `iifname vmap` (source NIC's NSG, outbound),
///   `meta mark vmap` (source subnet's NSG, outbound; the mark is the ingress
///   NIC's subnet table), `oifname vmap` (destination subnet's NSG, inbound),
///   `oifname vmap` (destination NIC's NSG, inbound). Only VM NIC links are in
///   the `oifname` maps: inbound rules never apply to worker vNICs.
/// - per NSG, regular chains `nsg-<h>-out` and `nsg-<h>-in` that find the
///   first matching rule by priority (the default rules last) in a few
///   lookups (`append_direction`, the chains `nsg-<h>-<dir>-<n>` of its
///   tree); a named counter per rule; named sets `tag-*`, `asg-*`.
pub(crate) fn append(l: &Layout, fi: usize, batch: &mut Batch) {
    let fab = compile::fabric(l, fi);
    if fab.nsgs.is_empty() {
        return;
    }
    batch.regular_chain(NSG_CHAIN);
    batch.rule("forward", vec![json!({"jump": {"target": NSG_CHAIN}})]);
    // The rank register is the packet's mark: an Allow restores the subnet
    // mark (`meta mark vmap` below and the NAT gateway read it).
    batch.regular_chain(NSG_ALLOW_CHAIN);
    batch.rule(
        NSG_ALLOW_CHAIN,
        vec![json!({"mangle": {"key": meta("mark"), "value": 0}})],
    );
    batch.rule(
        NSG_ALLOW_CHAIN,
        vec![nft::mark_by_iifname_map(MAP_SUBNET_MARKS)],
    );
    batch.rule(NSG_ALLOW_CHAIN, vec![json!({"return": null})]);
    batch.regular_chain(NSG_DENY_CHAIN);
    batch.rule(
        NSG_DENY_CHAIN,
        vec![
            json!({"log": {"group": DENIED_LOG_GROUP, "snaplen": DENIED_LOG_SNAPLEN}}),
            json!({"drop": null}),
        ],
    );
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
            json!({"return": null}),
        ],
    );
    for field in ["daddr", "saddr"] {
        batch.rule(
            NSG_CHAIN,
            vec![
                eq(payload("ip", field), json!(AZURE_PLATFORM_IP.to_string())),
                json!({"return": null}),
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
            let rules: Vec<&CompiledRule> = n.direction(d).collect();
            append_direction(batch, &chain_name(&n.id, d), &rules);
        }
    }
}
