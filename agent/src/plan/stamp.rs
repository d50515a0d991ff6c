//! The App Service stamp of a region (docs/datapath.md, "Stamp"): owns the
//! plans' outbound IPs and SNATs workers (and route-all traffic handed back
//! by fabrics) to them. Seed, "How virtual network integration works": "The
//! outbound addresses that are listed in the app properties portal are the
//! addresses still used by your app."

use std::net::Ipv4Addr;

use super::builder::{default_route, host, Builder, NsExt, MAIN};
use super::layout::{Layout, INET_GW, RULE_PRIORITY, STAMP_GW};
use super::names;
use super::nft::{self, Batch, ChainType};
use super::types::{NamespaceRole, RouteKind, RulePlan};

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    for (si, s) in l.stamps.iter().enumerate() {
        let st = s.netns.as_str();
        let uplink = names::link('s', st, "inet0");
        let ns = b.namespace(
            st,
            NamespaceRole::Stamp {
                location: s.location.clone(),
            },
            true,
        );
        ns.addr("lo", host(STAMP_GW));
        for ip in &s.outbound {
            ns.addr("lo", host(*ip));
        }
        ns.via(MAIN, default_route(), INET_GW, "inet0");
        for (fi, mark) in &s.fabrics {
            let f_link = names::link('f', &l.fabrics[*fi].netns, "stamp0");
            ns.rules.push(RulePlan {
                priority: RULE_PRIORITY,
                fwmark: Some((*mark, u32::MAX)),
                iif: None,
                table: *mark,
            });
            ns.route(*mark, default_route(), RouteKind::Dev { ifname: f_link });
        }
        ns.nft = Some(nft_batch(l, si));
        b.veth(&l.inet, &uplink, st, "inet0");
        let inet = b.get(&l.inet);
        for ip in &s.outbound {
            inet.dev_route(host(*ip), &uplink);
        }
    }
}

fn nft_batch(l: &Layout, si: usize) -> serde_json::Value {
    let s = &l.stamps[si];
    let mut batch = Batch::default();
    batch.chain("prerouting", ChainType::Filter, "prerouting", -150);
    batch.chain("postrouting", ChainType::Nat, "postrouting", 100);
    let fabric_marks: Vec<(String, u32)> = s
        .fabrics
        .iter()
        .map(|(fi, mark)| (names::link('f', &l.fabrics[*fi].netns, "stamp0"), *mark))
        .collect();
    if !fabric_marks.is_empty() {
        // Connections a fabric hands over remember it; replies go back to it.
        batch.rule("prerouting", vec![nft::ct_mark_by_iifname(&fabric_marks)]);
        batch.rule(
            "prerouting",
            vec![nft::iifname("inet0"), nft::mark_from_ct_mark()],
        );
    }
    let workers: Vec<_> = l.workers.iter().filter(|w| w.stamp == si).collect();
    let by_worker: Vec<(String, Ipv4Addr)> = workers
        .iter()
        .filter_map(|w| Some((names::link('w', &w.netns, "pub0"), w.outbound?)))
        .collect();
    if !by_worker.is_empty() {
        batch.rule(
            "postrouting",
            vec![nft::oifname("inet0"), nft::snat_by_iifname(&by_worker)],
        );
    }
    let by_fabric: Vec<(String, Ipv4Addr, Ipv4Addr)> = workers
        .iter()
        .flat_map(|w| {
            let containers = w
                .sandboxes
                .iter()
                .filter_map(|sb| Some((&w.vnics[sb.vnic?], sb.container_ip?)));
            w.vnics
                .iter()
                .map(|v| (v, v.ip))
                .chain(containers)
                .filter_map(|(v, ip)| {
                    Some((
                        names::link('f', &l.fabrics[v.fabric].netns, "stamp0"),
                        ip,
                        w.outbound?,
                    ))
                })
        })
        .collect();
    if !by_fabric.is_empty() {
        batch.rule(
            "postrouting",
            vec![
                nft::oifname("inet0"),
                nft::snat_by_iifname_saddr(&by_fabric),
            ],
        );
    }
    batch.finish()
}
