//! The SDN host of a virtual network (docs/datapath.md, "Fabric"): one
//! routing table per subnet holding its effective routes, every NIC behind a
//! proxy-ARP veth, named counters per NIC.

use super::builder::{host, Builder, NsExt};
use super::layout::{FabricL, Layout, INET_GW, RULE_PRIORITY, STAMP_GW};
use super::names;
use super::nft::{self, Batch, ChainType};
use super::routes::{system_routes, NextHopType};
use super::types::{NamespaceRole, RouteKind, RulePlan};

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    let routes_by_vnet: Vec<_> = l.fabrics.iter().map(|f| system_routes(&f.vnet)).collect();
    for (fi, f) in l.fabrics.iter().enumerate() {
        let fab = f.netns.as_str();
        let ns = b.namespace(
            fab,
            NamespaceRole::Fabric {
                vnet_id: f.vnet.id.to_string(),
            },
            true,
        );
        for s in &f.subnets {
            ns.addr("lo", host(s.gateway));
        }
        if let Some(ip) = f.default_outbound {
            ns.addr("lo", host(ip));
        }
        let stamp = f.stamp.map(|si| &l.stamps[si]);
        for s in &f.subnets {
            ns.rules.push(RulePlan {
                priority: RULE_PRIORITY,
                fwmark: Some((s.table, u32::MAX)),
                iif: None,
                table: s.table,
            });
            for r in &routes_by_vnet[fi] {
                let kind = match r.next_hop_type {
                    NextHopType::VnetLocal => RouteKind::Throw,
                    NextHopType::None => RouteKind::Blackhole,
                    NextHopType::Internet if s.delegated_to_web && stamp.is_some() => {
                        RouteKind::Via {
                            gateway: STAMP_GW,
                            ifname: "stamp0".into(),
                            onlink: true,
                        }
                    }
                    _ => RouteKind::Via {
                        gateway: INET_GW,
                        ifname: "inet0".into(),
                        onlink: true,
                    },
                };
                ns.route(s.table, r.prefix, kind);
            }
        }
        ns.nft = Some(nft_batch(l, fi, f));
        let uplink = names::link('f', fab, "inet0");
        b.veth(&l.inet, &uplink, fab, "inet0");
        if let Some(ip) = f.default_outbound {
            b.get(&l.inet).dev_route(host(ip), &uplink);
        }
        if let Some(stamp) = stamp {
            b.veth(
                &stamp.netns,
                &names::link('f', fab, "stamp0"),
                fab,
                "stamp0",
            );
            b.get(fab).proxy_arp("stamp0");
        }
    }
}

/// `(fabric-side link name, subnet table)` of every NIC in fabric `fi`.
pub(crate) fn nic_links(l: &Layout, fi: usize) -> Vec<(String, u32)> {
    let mut links: Vec<(String, u32)> = l
        .workers
        .iter()
        .flat_map(|w| {
            w.vnics
                .iter()
                .filter(|v| v.fabric == fi)
                .map(|v| (names::link('n', &w.netns, &v.ifname), v.subnet_table))
        })
        .chain(l.vms.iter().flat_map(|vm| {
            vm.nics
                .iter()
                .filter(|n| n.fabric == fi)
                .map(|n| (names::link('n', &vm.netns, &n.ifname), n.subnet_table))
        }))
        .collect();
    links.sort();
    links
}

fn nft_batch(l: &Layout, fi: usize, f: &FabricL) -> serde_json::Value {
    let links = nic_links(l, fi);
    let mut batch = Batch::default();
    batch.chain("prerouting", ChainType::Filter, "prerouting", -150);
    batch.chain("forward", ChainType::Filter, "forward", 0);
    batch.chain("postrouting", ChainType::Nat, "postrouting", 100);
    if !links.is_empty() {
        // The subnet of the ingress NIC picks the routing table.
        batch.rule("prerouting", vec![nft::mark_by_iifname(&links)]);
    }
    for (link, _) in &links {
        let (cin, cout) = (format!("in-{link}"), format!("out-{link}"));
        batch.counter(&cin);
        batch.counter(&cout);
        batch.rule(
            "forward",
            vec![nft::iifname(link), nft::named_counter(&cin)],
        );
        batch.rule(
            "forward",
            vec![nft::oifname(link), nft::named_counter(&cout)],
        );
    }
    if let Some(ip) = f.default_outbound {
        batch.rule("postrouting", vec![nft::oifname("inet0"), nft::snat(ip)]);
    }
    super::nsg::append_to_fabric_batch(l, fi, &mut batch);
    batch.finish()
}
