//! `network watcher explain` (lab only; Azure has no equivalent): one probe
//! followed through every namespace it crosses by the kernel's own nftables
//! trace, told in Azure's words. Pure: turns the trace events the dataplane
//! recorded (`dataplane::trace`) and the planner's prediction into the
//! report: hop by hop, each chain and rule met with its verdict, the NAT
//! done, where the packet died, one sentence why, and the prediction beside.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::model::ResourceId;

/// One nftables trace event (NFT_MSG_TRACE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceEvent {
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    /// `NFT_TRACETYPE_*`: 1 policy, 2 return, 3 rule.
    pub kind: u32,
    /// `NF_DROP` 0, `NF_ACCEPT` 1, continue -1, break -2, jump -3, goto -4, return -5.
    pub verdict: Option<i32>,
    /// The chain of a jump or goto.
    pub target: Option<String>,
    pub iif_index: Option<u32>,
    pub oif_index: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub src: Option<Ipv4Addr>,
    pub dst: Option<Ipv4Addr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub mark: u32,
}

/// A namespace the probe may cross, in path order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub netns: String,
    /// Azure's words for it: `VM vm1`, `fabric of VNet v1`, ...
    pub role: String,
    /// The probe ends here when it arrives (its destination).
    pub destination: bool,
}

/// What the report needs besides the events.
pub struct Context<'a> {
    pub places: &'a [Place],
    /// NSG names by the 8 hex digits their chains carry (`nsg-<h>-out`).
    pub nsgs: &'a BTreeMap<String, ResourceId>,
    /// The rule texts of each namespace: handle -> `nft` text.
    pub rules: &'a BTreeMap<String, BTreeMap<u64, String>>,
    /// The planner's answers: `outbound`, `inbound` (IP flow verify),
    /// `nextHop`, `route` (the effective route row).
    pub prediction: &'a Value,
    pub trace_table: &'a str,
}

fn verdict_name(e: &TraceEvent) -> String {
    match (e.kind, e.verdict) {
        (2, _) => "return".into(),
        (1, Some(1)) => "policy accept".into(),
        (1, Some(0)) => "policy drop".into(),
        (_, Some(0)) => "drop".into(),
        (_, Some(1)) => "accept".into(),
        (_, Some(-1)) => "continue".into(),
        (_, Some(-2)) => "break".into(),
        (_, Some(-3)) => format!("jump {}", e.target.clone().unwrap_or_default()),
        (_, Some(-4)) => format!("goto {}", e.target.clone().unwrap_or_default()),
        (_, Some(-5)) => "return".into(),
        (_, Some(v)) => format!("verdict {v}"),
        (_, None) => String::new(),
    }
}

/// Azure's words for the lab's chains (docs/datapath.md).
fn azure_words(ctx: &Context, chain: &str) -> Option<String> {
    if let Some(rest) = chain.strip_prefix("nsg-") {
        let mut parts = rest.splitn(3, '-');
        if let (Some(h), Some(dir)) = (parts.next(), parts.next()) {
            if let Some(id) = ctx.nsgs.get(h) {
                let d = if dir == "out" { "outbound" } else { "inbound" };
                return Some(format!("NSG {} ({d} rules)", id.name()));
            }
        }
        return Some(match chain {
            "nsg-deny" => "an NSG rule denied it (Deny)".into(),
            "nsg-allow" => "an NSG rule allowed it; on to the next NSG".into(),
            _ => "NSG evaluation".into(),
        });
    }
    if chain == "nsg" {
        return Some(
            "the NSGs of the source NIC and subnet, then of the destination subnet and NIC".into(),
        );
    }
    if chain.starts_with("natgw-") {
        return Some("NAT gateway (SNAT to its public addresses)".into());
    }
    match chain {
        "forward" => Some("forwarding between NICs (spoofing checks, outbound SMTP block)".into()),
        "postrouting" => Some(
            "outbound SNAT (NAT gateway, instance public IP or default outbound access)".into(),
        ),
        "prerouting" => Some("ingress (the source subnet picks its route table)".into()),
        _ => None,
    }
}

fn endpoint(ip: Option<Ipv4Addr>, port: Option<u16>) -> String {
    match (ip, port) {
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (Some(ip), None) => ip.to_string(),
        _ => "?".into(),
    }
}

/// The report.
pub fn report(ctx: &Context, events: &[(String, TraceEvent)], answered: bool) -> Value {
    let mut hops = Vec::new();
    let mut dropped: Option<(String, String, String)> = None;
    let mut last_seen: Option<&Place> = None;
    let mut arrived = false;
    for place in ctx.places {
        let ev: Vec<&TraceEvent> = events
            .iter()
            .filter(|(ns, _)| ns == &place.netns)
            .map(|(_, e)| e)
            .collect();
        if ev.is_empty() {
            continue;
        }
        last_seen = Some(place);
        if place.destination {
            arrived = true;
        }
        let first = ev[0];
        let last_packet = ev
            .iter()
            .rev()
            .find(|e| e.src.is_some())
            .copied()
            .unwrap_or(first);
        let before = format!(
            "{} -> {}",
            endpoint(first.src, first.sport),
            endpoint(first.dst, first.dport)
        );
        let _after = format!(
            "{} -> {}",
            endpoint(last_packet.src, last_packet.sport),
            endpoint(last_packet.dst, last_packet.dport)
        );
        let mut steps = Vec::new();
        for e in &ev {
            if e.table == ctx.trace_table {
                continue;
            }
            let rule = e
                .handle
                .and_then(|h| ctx.rules.get(&place.netns).and_then(|r| r.get(&h)))
                .cloned();
            let v = verdict_name(e);
            let mut step = json!({ "table": e.table, "chain": e.chain, "verdict": v });
            if let Some(r) = rule {
                step["rule"] = json!(r);
            }
            if let Some(w) = azure_words(ctx, &e.chain) {
                step["azure"] = json!(w);
            }
            if e.verdict == Some(0) && dropped.is_none() {
                // The deciding NSG is the last NSG chain met before the drop.
                let nsg = ev
                    .iter()
                    .take_while(|x| !std::ptr::eq(*x, e))
                    .filter(|x| {
                        x.chain.starts_with("nsg-")
                            && x.chain != "nsg-deny"
                            && x.chain != "nsg-allow"
                    })
                    .filter_map(|x| azure_words(ctx, &x.chain))
                    .last();
                dropped = Some((
                    place.netns.clone(),
                    e.chain.clone(),
                    nsg.unwrap_or_else(|| {
                        azure_words(ctx, &e.chain).unwrap_or_else(|| e.chain.clone())
                    }),
                ));
            }
            steps.push(step);
        }
        let mut hop = json!({
            "namespace": place.netns,
            "role": place.role,
            "in": first.iif, "out": last_packet.oif,
            "packet": before,
            "steps": steps,
        });
        if before != _after {
            hop["nat"] = json!(format!("{before} became {_after}"));
        }
        // NAT in a chain of this hop shows in the next namespace: the packet
        // arrives there changed.
        if let Some(prev) = hops.last_mut() {
            let prev: &mut Value = prev;
            if prev["packet"] != json!(before) && prev.get("nat").is_none() {
                prev["nat"] = json!(format!(
                    "{} became {before}",
                    prev["packet"].as_str().unwrap_or("?")
                ));
            }
        }
        hops.push(hop);
    }
    let p = ctx.prediction;
    let predicted_rule = |dir: &str| {
        p[dir]["access"]
            .as_str()
            .filter(|a| *a == "Deny")
            .map(|_| p[dir]["ruleName"].as_str().unwrap_or_default().to_string())
    };
    let hop_type = p["nextHop"]["nextHopType"].as_str().unwrap_or("None");
    let route = &p["route"];
    let route_words = format!(
        "{} route {}{} (next hop {hop_type})",
        route["source"].as_str().unwrap_or("System"),
        route["addressPrefix"][0].as_str().unwrap_or("?"),
        route["name"]
            .as_str()
            .map(|n| format!(" '{n}'"))
            .unwrap_or_default()
    );
    let says = if let Some(r) = predicted_rule("outbound") {
        format!("the planner predicts a drop by {r} (outbound)")
    } else if hop_type == "None" {
        format!("the planner predicts a drop by the {route_words}")
    } else if let Some(r) = predicted_rule("inbound") {
        format!("the planner predicts a drop by {r} (inbound)")
    } else {
        format!("the planner predicts delivery by the {route_words}")
    };
    let (result, why) = match (&dropped, arrived, answered) {
        (Some((ns, chain, words)), _, _) => {
            let rule = predicted_rule("outbound").or_else(|| predicted_rule("inbound"));
            (
                "Dropped",
                format!(
                    "Dropped in {} by chain {chain}: {words}{}.",
                    ctx.places
                        .iter()
                        .find(|x| &x.netns == ns)
                        .map(|x| x.role.as_str())
                        .unwrap_or(ns),
                    rule.map(|r| format!(", rule {r}")).unwrap_or_default()
                ),
            )
        }
        (None, true, _) => (
            "Delivered",
            format!(
                "Delivered to {}{}.",
                last_seen.map(|x| x.role.as_str()).unwrap_or("?"),
                if answered { ", which answered" } else { "" }
            ),
        ),
        (None, false, _) => {
            let at = last_seen
                .map(|x| x.role.clone())
                .unwrap_or_else(|| "the source".into());
            (
                "Dropped",
                if hop_type == "None" {
                    format!("Last seen in {at}: no route forwarded it; the {route_words} drops it.")
                } else {
                    format!("Last seen in {at}, which did not forward it (nothing in nftables dropped it: a route, or a guest that does not forward).")
                },
            )
        }
    };
    json!({
        "result": result,
        "why": why,
        "prediction": { "says": says, "ipFlowVerify": { "outbound": p["outbound"], "inbound": p["inbound"] }, "nextHop": p["nextHop"] },
        "hops": hops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(table: &str, chain: &str, verdict: i32, kind: u32) -> TraceEvent {
        TraceEvent {
            table: table.into(),
            chain: chain.into(),
            kind,
            verdict: Some(verdict),
            src: Some(Ipv4Addr::new(10, 0, 1, 4)),
            dst: Some(Ipv4Addr::new(10, 0, 2, 4)),
            sport: Some(40000),
            dport: Some(80),
            ..Default::default()
        }
    }

    #[test]
    fn a_drop_by_an_nsg_names_the_nsg_and_the_predicted_rule() {
        let places = vec![
            Place {
                netns: "vm1".into(),
                role: "VM vm1".into(),
                destination: false,
            },
            Place {
                netns: "fab".into(),
                role: "fabric of VNet v1".into(),
                destination: false,
            },
            Place {
                netns: "vm2".into(),
                role: "VM vm2".into(),
                destination: true,
            },
        ];
        let nsg: ResourceId = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/nsg2".parse().unwrap();
        let nsgs = BTreeMap::from([("abcd1234".to_string(), nsg)]);
        let rules = BTreeMap::new();
        let prediction = json!({
            "outbound": {"access": "Allow", "ruleName": "defaultSecurityRules/AllowVnetOutBound"},
            "inbound": {"access": "Deny", "ruleName": "securityRules/deny-80"},
            "nextHop": {"nextHopType": "VnetLocal"},
            "route": {"source": "Default", "addressPrefix": ["10.0.0.0/16"]},
        });
        let ctx = Context {
            places: &places,
            nsgs: &nsgs,
            rules: &rules,
            prediction: &prediction,
            trace_table: "vnet_explain",
        };
        let events = vec![
            ("vm1".to_string(), ev("vnet_explain", "out", -1, 3)),
            ("fab".to_string(), ev("vnet_explain", "pre", -1, 3)),
            ("fab".to_string(), ev("vnet_agent", "forward", -3, 3)),
            (
                "fab".to_string(),
                ev("vnet_agent", "nsg-abcd1234-in-0", -5, 2),
            ),
            ("fab".to_string(), ev("vnet_agent", "nsg-deny", 0, 3)),
        ];
        let r = report(&ctx, &events, false);
        assert_eq!(r["result"], "Dropped");
        assert_eq!(
            r["why"],
            "Dropped in fabric of VNet v1 by chain nsg-deny: NSG nsg2 (inbound rules), rule securityRules/deny-80."
        );
        assert_eq!(r["hops"].as_array().unwrap().len(), 2);
        assert!(r["prediction"]["says"]
            .as_str()
            .unwrap()
            .contains("securityRules/deny-80"));
    }

    #[test]
    fn a_packet_no_route_forwards_is_lost_where_it_was_last_seen() {
        let places = vec![
            Place {
                netns: "vm1".into(),
                role: "VM vm1".into(),
                destination: false,
            },
            Place {
                netns: "fab".into(),
                role: "fabric of VNet v1".into(),
                destination: false,
            },
        ];
        let (nsgs, rules) = (BTreeMap::new(), BTreeMap::new());
        let prediction = json!({
            "outbound": {"access": "Allow", "ruleName": ""}, "inbound": null,
            "nextHop": {"nextHopType": "None"},
            "route": {"source": "User", "name": "blackhole", "addressPrefix": ["10.9.0.0/24"]},
        });
        let ctx = Context {
            places: &places,
            nsgs: &nsgs,
            rules: &rules,
            prediction: &prediction,
            trace_table: "vnet_explain",
        };
        let events = vec![
            ("vm1".to_string(), ev("vnet_explain", "out", -1, 3)),
            ("fab".to_string(), ev("vnet_explain", "pre", 1, 1)),
        ];
        let r = report(&ctx, &events, false);
        assert_eq!(r["result"], "Dropped");
        assert_eq!(
            r["why"],
            "Last seen in fabric of VNet v1: no route forwarded it; the User route 10.9.0.0/24 'blackhole' (next hop None) drops it."
        );
    }
}
