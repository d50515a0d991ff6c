//! nft JSON (`man libnftables-json`) for the one table the agent owns in a
//! namespace. Built with `serde_json::json!` in the exact shape `nft -j list`
//! prints, and checked against the real `nft -c` by a test.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::types::{NFT_FAMILY, NFT_TABLE};

/// A batch that replaces table `inet vnet_agent` atomically: add (so the
/// delete cannot fail), delete, add, then chains, named counters and rules.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    chains: Vec<Value>,
    /// Named sets, counters and ct timeout objects (before the rules using them).
    objects: Vec<Value>,
    rules: Vec<Value>,
}

/// A base chain's type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChainType {
    Filter,
    Nat,
}

impl Batch {
    /// A base chain with policy accept.
    pub fn chain(&mut self, name: &str, ty: ChainType, hook: &str, prio: i32) {
        let ty = match ty {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        };
        self.chains.push(json!({"add": {"chain": {
            "family": NFT_FAMILY, "table": NFT_TABLE, "name": name,
            "type": ty, "hook": hook, "prio": prio, "policy": "accept"
        }}}));
    }

    /// A regular chain (a jump target).
    pub fn regular_chain(&mut self, name: &str) {
        self.chains.push(json!({"add": {"chain": {
            "family": NFT_FAMILY, "table": NFT_TABLE, "name": name
        }}}));
    }

    /// A named counter object (tests read it to see what crossed).
    pub fn counter(&mut self, name: &str) {
        self.objects.push(
            json!({"add": {"counter": {"family": NFT_FAMILY, "table": NFT_TABLE, "name": name}}}),
        );
    }

    /// Another object of the table (a named set), given as its inner JSON
    /// (`{"set": {...}}` without family/table, which are filled in); added
    /// after chains and counters, before rules.
    pub fn object(&mut self, mut obj: Value) {
        if let Some(inner) = obj.as_object_mut().and_then(|o| o.values_mut().next()) {
            inner["family"] = json!(NFT_FAMILY);
            inner["table"] = json!(NFT_TABLE);
        }
        self.objects.push(json!({ "add": obj }));
    }

    /// A named map of `key` to `data` with `elements` (`[key, value]` pairs).
    pub fn map(&mut self, name: &str, key: &str, data: &str, elements: Vec<Value>) {
        let mut map = json!({"family": NFT_FAMILY, "table": NFT_TABLE, "name": name, "type": key, "map": data});
        if !elements.is_empty() {
            map["elem"] = Value::Array(elements);
        }
        self.objects.push(json!({"add": {"map": map}}));
    }

    pub fn rule(&mut self, chain: &str, expr: Vec<Value>) {
        self.rules.push(json!({"add": {"rule": {
            "family": NFT_FAMILY, "table": NFT_TABLE, "chain": chain, "expr": expr
        }}}));
    }

    pub fn finish(self) -> Value {
        let table = json!({"table": {"family": NFT_FAMILY, "name": NFT_TABLE}});
        let mut all = vec![
            json!({"add": table.clone()}),
            json!({"delete": table.clone()}),
            json!({"add": table}),
        ];
        all.extend(self.chains);
        all.extend(self.objects);
        all.extend(self.rules);
        json!({ "nftables": all })
    }
}

/// `meta <key>` (an expression's left side).
pub(crate) fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

/// `<protocol> <field>` of the packet (an expression's left side).
pub(crate) fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

/// `iifname "<name>"`.
pub(crate) fn iifname(name: &str) -> Value {
    json!({"match": {"op": "==", "left": meta("iifname"), "right": name}})
}

/// `oifname "<name>"`.
pub(crate) fn oifname(name: &str) -> Value {
    json!({"match": {"op": "==", "left": meta("oifname"), "right": name}})
}

/// `ip saddr <addr>`.
pub(crate) fn ip_saddr(addr: Ipv4Addr) -> Value {
    json!({"match": {"op": "==", "left": payload("ip", "saddr"), "right": addr.to_string()}})
}

/// `ct state new`.
pub(crate) fn ct_state_new() -> Value {
    json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}})
}

/// An anonymous counter.
pub(crate) fn counter() -> Value {
    json!({"counter": {"packets": 0, "bytes": 0}})
}

/// `counter name "<name>"`.
pub(crate) fn named_counter(name: &str) -> Value {
    json!({ "counter": name })
}

pub(crate) fn drop() -> Value {
    json!({ "drop": null })
}

/// `snat ip to <addr>`.
pub(crate) fn snat(addr: Ipv4Addr) -> Value {
    json!({"snat": {"family": "ip", "addr": addr.to_string()}})
}

/// `snat ip to iifname map { "<if>" : <addr>, ... }`.
pub(crate) fn snat_by_iifname(pairs: &[(String, Ipv4Addr)]) -> Value {
    let set: Vec<Value> = pairs
        .iter()
        .map(|(i, a)| json!([i, a.to_string()]))
        .collect();
    json!({"snat": {"family": "ip", "addr": {"map": {"key": meta("iifname"), "data": {"set": set}}}}})
}

/// `snat ip to iifname . ip saddr map { "<if>" . <saddr> : <addr>, ... }`.
pub(crate) fn snat_by_iifname_saddr(entries: &[(String, Ipv4Addr, Ipv4Addr)]) -> Value {
    let key = json!({"concat": [meta("iifname"), payload("ip", "saddr")]});
    let set: Vec<Value> = entries
        .iter()
        .map(|(i, s, a)| json!([concat(i, *s), a.to_string()]))
        .collect();
    json!({"snat": {"family": "ip", "addr": {"map": {"key": key, "data": {"set": set}}}}})
}

/// `meta mark set iifname map { "<if>" : <mark>, ... }`.
pub(crate) fn mark_by_iifname(pairs: &[(String, u32)]) -> Value {
    mangle(meta("mark"), pairs)
}

/// `meta mark set iifname map @<map>`.
pub(crate) fn mark_by_iifname_map(map: &str) -> Value {
    json!({"mangle": {"key": meta("mark"), "value": {"map": {"key": meta("iifname"), "data": format!("@{map}")}}}})
}

/// `<iifname|oifname> vmap { "<if>" : jump <chain>, ... }`.
pub(crate) fn jump_by_ifname(key: &str, pairs: &[(String, String)]) -> Value {
    let set: Vec<Value> = pairs
        .iter()
        .map(|(i, c)| json!([i, {"jump": {"target": c}}]))
        .collect();
    json!({"vmap": {"key": meta(key), "data": {"set": set}}})
}

/// `meta nfproto ipv4`.
pub(crate) fn ipv4() -> Value {
    json!({"match": {"op": "==", "left": meta("nfproto"), "right": "ipv4"}})
}

/// `ip <saddr|daddr> != <addr>` or `!= { <addr>, ... }` (at least one).
pub(crate) fn ip_not(field: &str, addresses: &[Ipv4Addr]) -> Value {
    let right = match addresses {
        [one] => json!(one.to_string()),
        many => json!({"set": many.iter().map(ToString::to_string).collect::<Vec<_>>()}),
    };
    json!({"match": {"op": "!=", "left": payload("ip", field), "right": right}})
}

/// `ip <saddr|daddr> != { <prefix>, ... }` (at least one prefix).
pub(crate) fn ip_not_in_prefixes(field: &str, prefixes: &[ipnet::Ipv4Net]) -> Value {
    let set: Vec<Value> = prefixes
        .iter()
        .map(|n| json!({"prefix": {"addr": n.network().to_string(), "len": n.prefix_len()}}))
        .collect();
    json!({"match": {"op": "!=", "left": payload("ip", field), "right": {"set": set}}})
}

/// `meta mark set <mark>`.
pub(crate) fn set_mark(mark: u32) -> Value {
    json!({"mangle": {"key": meta("mark"), "value": mark}})
}

/// `counter name <iifname|oifname> map { "<if>" : "<counter>", ... }`.
pub(crate) fn counter_by_ifname(key: &str, pairs: &[(String, String)]) -> Value {
    let set: Vec<Value> = pairs.iter().map(|(i, c)| json!([i, c])).collect();
    json!({"counter": {"map": {"key": meta(key), "data": {"set": set}}}})
}

/// `ct mark set iifname map { "<if>" : <mark>, ... }`.
pub(crate) fn ct_mark_by_iifname(pairs: &[(String, u32)]) -> Value {
    mangle(json!({"ct": {"key": "mark"}}), pairs)
}

/// `ct zone set iifname map { "<if>" : <zone>, ... }`.
pub(crate) fn ct_zone_by_iifname(pairs: &[(String, u32)]) -> Value {
    mangle(ct_zone(), pairs)
}

/// `ct zone set meta mark map { <mark> : <mark>, ... }`: `ct zone set meta
/// mark` is a type error for nft (a zone is an integer, a mark a packet
/// mark), so each mark is mapped to the zone of the same number.
pub(crate) fn ct_zone_from_mark(marks: &[u32]) -> Value {
    let set: Vec<Value> = marks.iter().map(|m| json!([m, m])).collect();
    json!({"mangle": {"key": ct_zone(), "value": {"map": {"key": meta("mark"), "data": {"set": set}}}}})
}

fn ct_zone() -> Value {
    json!({"ct": {"key": "zone"}})
}

fn mangle(key: Value, pairs: &[(String, u32)]) -> Value {
    let set: Vec<Value> = pairs.iter().map(|(i, m)| json!([i, m])).collect();
    json!({"mangle": {"key": key, "value": {"map": {"key": meta("iifname"), "data": {"set": set}}}}})
}

/// `meta mark set ct mark`.
pub(crate) fn mark_from_ct_mark() -> Value {
    json!({"mangle": {"key": meta("mark"), "value": {"ct": {"key": "mark"}}}})
}

fn daddr() -> Value {
    payload("ip", "daddr")
}

/// `iifname { "<a>", "<b>" }`.
pub(crate) fn iifname_in(names: &[String]) -> Value {
    json!({"match": {"op": "==", "left": meta("iifname"), "right": {"set": names}}})
}

/// `ip daddr <addr>`.
pub(crate) fn ip_daddr(addr: Ipv4Addr) -> Value {
    json!({"match": {"op": "==", "left": daddr(), "right": addr.to_string()}})
}

/// `iifname . ip daddr { "<if>" . <addr>, ... }`.
pub(crate) fn iifname_daddr_in(pairs: &[(String, Ipv4Addr)]) -> Value {
    let set: Vec<Value> = pairs.iter().map(|(i, a)| concat(i, *a)).collect();
    json!({"match": {"op": "==", "left": {"concat": [meta("iifname"), daddr()]}, "right": {"set": set}}})
}

/// `ct mark set <mark>`.
pub(crate) fn ct_mark_set(mark: u32) -> Value {
    json!({"mangle": {"key": {"ct": {"key": "mark"}}, "value": mark}})
}

/// `dnat ip to <addr>:<port>`.
pub(crate) fn dnat_port(addr: Ipv4Addr, port: u16) -> Value {
    json!({"dnat": {"family": "ip", "addr": addr.to_string(), "port": port}})
}

/// `oifname { <name>, ... }`.
pub(crate) fn oifname_in(names: &[String]) -> Value {
    json!({"match": {"op": "==", "left": meta("oifname"), "right": {"set": names}}})
}

/// `<tcp|udp> dport { <port>, ... }`.
pub(crate) fn dport_in(protocol: &str, ports: &[u16]) -> Value {
    json!({"match": {"op": "==", "left": payload(protocol, "dport"), "right": {"set": ports}}})
}

/// `tcp dport != { <port>, ... }`.
pub(crate) fn tcp_dport_not_in(ports: &[u16]) -> Value {
    json!({"match": {"op": "!=", "left": payload("tcp", "dport"), "right": {"set": ports}}})
}

/// `ct direction reply`.
pub(crate) fn ct_reply() -> Value {
    json!({"match": {"op": "==", "left": {"ct": {"key": "direction"}}, "right": "reply"}})
}

/// `tcp dport <port>`.
pub(crate) fn tcp_dport(port: u16) -> Value {
    json!({"match": {"op": "==", "left": payload("tcp", "dport"), "right": port}})
}

/// `meta l4proto { tcp, udp }`: needed before a SNAT with a port range.
pub(crate) fn l4proto_tcp_udp() -> Value {
    json!({"match": {"op": "==", "left": meta("l4proto"), "right": {"set": ["tcp", "udp"]}}})
}

/// `numgen inc mod <m> 0`: true for one flow in `m`.
pub(crate) fn numgen_inc_is_zero(m: u32) -> Value {
    json!({"match": {"op": "==", "left": {"numgen": {"mode": "inc", "mod": m, "offset": 0}}, "right": 0}})
}

/// `snat ip to <addr>:<lo>-<hi>` (after an l4proto match).
pub(crate) fn snat_ports(addr: Ipv4Addr, ports: (u16, u16)) -> Value {
    json!({"snat": {"family": "ip", "addr": addr.to_string(), "port": {"range": [ports.0, ports.1]}}})
}

/// `meta mark vmap { <m> : jump <chain>, ... }`.
pub(crate) fn jump_by_mark(pairs: &[(u32, String)]) -> Value {
    let set: Vec<Value> = pairs
        .iter()
        .map(|(m, c)| json!([m, {"jump": {"target": c}}]))
        .collect();
    json!({"vmap": {"key": meta("mark"), "data": {"set": set}}})
}

/// `dnat ip to ip daddr map { <public> : <private>, ... }`.
pub(crate) fn dnat_by_daddr(pairs: &[(Ipv4Addr, Ipv4Addr)]) -> Value {
    let set: Vec<Value> = pairs
        .iter()
        .map(|(a, b)| json!([a.to_string(), b.to_string()]))
        .collect();
    json!({"dnat": {"family": "ip", "addr": {"map": {"key": daddr(), "data": {"set": set}}}}})
}

/// `dnat ip to iifname . ip daddr map { "<if>" . <daddr> : <addr>, ... }`.
pub(crate) fn dnat_by_iifname_daddr(entries: &[(String, Ipv4Addr, Ipv4Addr)]) -> Value {
    let key = json!({"concat": [meta("iifname"), daddr()]});
    let set: Vec<Value> = entries
        .iter()
        .map(|(i, d, a)| json!([concat(i, *d), a.to_string()]))
        .collect();
    json!({"dnat": {"family": "ip", "addr": {"map": {"key": key, "data": {"set": set}}}}})
}

/// A `"<if>" . <addr>` element.
pub(crate) fn concat(ifname: &str, addr: Ipv4Addr) -> Value {
    json!({"concat": [ifname, addr.to_string()]})
}
