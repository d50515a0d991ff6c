//! The App Service stamp of a region (docs/datapath.md, "Stamp"): owns the
//! plans' outbound IPs and SNATs workers (and route-all traffic handed back
//! by fabrics) to them. Seed, "How virtual network integration works": "The
//! outbound addresses that are listed in the app properties portal are the
//! addresses still used by your app."

use std::net::Ipv4Addr;

use super::builder::{default_route, host, Builder, NsExt, MAIN};
use super::fabric::SMTP_PORT;
use super::layout::{Layout, WorkerL, INET_GW, RULE_PRIORITY, STAMP_GW};
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
        for ip in s.outbound.iter().chain(&s.inbound) {
            ns.addr("lo", host(*ip));
        }
        if s.inbound.is_some() {
            // The front end's accepted sockets take the mark of their SYN
            // (a private endpoint's or a service endpoint's link).
            ns.sysctl("net/ipv4/tcp_fwmark_accept".into(), "1");
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
        for ip in s.outbound.iter().chain(&s.inbound) {
            inet.dev_route(host(*ip), &uplink);
        }
    }
}

/// First SNAT port of the stamp's per-instance ranges.
pub(crate) const SNAT_PORT_BASE: u32 = 1024;

/// The SNAT port range of each worker of stamp `si` on its outbound IP:
/// `ports` ports each, distinct among the workers sharing that IP (in worker
/// order), wrapping around when more workers share an IP than 64,512 / `ports`.
/// Empty when `ports` is 0 (no bound).
pub(crate) fn port_ranges<'a>(
    workers: &[&'a WorkerL],
    ports: u32,
) -> Vec<(&'a WorkerL, Ipv4Addr, (u16, u16))> {
    if ports == 0 {
        return Vec::new();
    }
    let ports = ports.min(65536 - SNAT_PORT_BASE);
    let slots = (65536 - SNAT_PORT_BASE) / ports;
    let mut used: std::collections::BTreeMap<Ipv4Addr, u32> = Default::default();
    workers
        .iter()
        .filter_map(|w| {
            let ip = w.outbound?;
            let n = used.entry(ip).or_insert(0);
            let lo = SNAT_PORT_BASE + (*n % slots) * ports;
            *n += 1;
            Some((*w, ip, (lo as u16, (lo + ports - 1) as u16)))
        })
        .collect()
}

/// The subnet addresses one worker's traffic may arrive with from a fabric
/// (instance and Windows container addresses), with the fabric's stamp link.
fn fabric_sources(l: &Layout, w: &WorkerL) -> Vec<(String, Ipv4Addr)> {
    let containers = w
        .sandboxes
        .iter()
        .filter_map(|sb| Some((&w.vnics[sb.vnic?], sb.container_ip?)));
    w.vnics
        .iter()
        .map(|v| (v, v.ip))
        .chain(containers)
        .map(|(v, ip)| (names::link('f', &l.fabrics[v.fabric].netns, "stamp0"), ip))
        .collect()
}

fn nft_batch(l: &Layout, si: usize) -> serde_json::Value {
    let s = &l.stamps[si];
    let mut batch = Batch::default();
    batch.chain("prerouting", ChainType::Filter, "prerouting", -150);
    batch.chain("forward", ChainType::Filter, "forward", 0);
    batch.chain("postrouting", ChainType::Nat, "postrouting", 100);
    let fabric_marks: Vec<(String, u32)> = s
        .fabrics
        .iter()
        .map(|(fi, mark)| (names::link('f', &l.fabrics[*fi].netns, "stamp0"), *mark))
        .collect();
    if !fabric_marks.is_empty() {
        // Connections a fabric hands over remember it; replies go back to it.
        batch.rule("prerouting", vec![nft::ct_mark_by_iifname(&fabric_marks)]);
        // To the front end over a `Microsoft.Web` service endpoint: the
        // packet carries its fabric's mark, which the accepted socket keeps
        // (`tcp_fwmark_accept`): the front end knows the VNet, and its
        // replies go back over the same link by the fabric's table.
        if let Some(inbound) = s.inbound {
            batch.rule(
                "prerouting",
                vec![nft::ip_daddr(inbound), nft::mark_by_iifname(&fabric_marks)],
            );
        }
        batch.rule(
            "prerouting",
            vec![nft::iifname("inet0"), nft::mark_from_ct_mark()],
        );
    }
    let workers: Vec<_> = l.workers.iter().filter(|w| w.stamp == si).collect();
    // SMTP: never on the direct path; through a VNet only when its
    // subscription allows it.
    let mut smtp_blocked: Vec<String> = workers
        .iter()
        .map(|w| names::link('w', &w.netns, "pub0"))
        .chain(
            s.fabrics
                .iter()
                .filter(|(fi, _)| !l.fabrics[*fi].allow_smtp)
                .map(|(fi, _)| names::link('f', &l.fabrics[*fi].netns, "stamp0")),
        )
        .collect();
    smtp_blocked.sort();
    if !smtp_blocked.is_empty() {
        batch.counter("smtp-blocked");
        batch.rule(
            "forward",
            vec![
                nft::oifname("inet0"),
                nft::tcp_dport(SMTP_PORT),
                nft::iifname_in(&smtp_blocked),
                nft::named_counter("smtp-blocked"),
                nft::drop(),
            ],
        );
    }
    // TCP/UDP: each instance within its own port range of its outbound IP.
    for (w, ip, ports) in port_ranges(&workers, l.snat_ports) {
        batch.rule(
            "postrouting",
            vec![
                nft::oifname("inet0"),
                nft::iifname(&names::link('w', &w.netns, "pub0")),
                nft::l4proto_tcp_udp(),
                nft::snat_ports(ip, ports),
            ],
        );
        for (link, src) in fabric_sources(l, w) {
            batch.rule(
                "postrouting",
                vec![
                    nft::oifname("inet0"),
                    nft::iifname(&link),
                    nft::ip_saddr(src),
                    nft::l4proto_tcp_udp(),
                    nft::snat_ports(ip, ports),
                ],
            );
        }
    }
    // Anything else (ICMP) by address only.
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
            fabric_sources(l, w)
                .into_iter()
                .filter_map(|(link, src)| Some((link, src, w.outbound?)))
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
    super::site_endpoint::stamp_rules(l, si, &mut batch);
    batch.finish()
}
