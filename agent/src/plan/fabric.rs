//! The SDN host of a virtual network (docs/datapath.md, "Fabric"): one
//! routing table per subnet holding its effective routes, every NIC behind a
//! proxy-ARP veth, spoofing checks for NICs without IP forwarding, NAT
//! gateways, instance-level public IPs (1:1 NAT) and default outbound access,
//! SMTP per the VNet's subscription, named counters per NIC.

use std::net::Ipv4Addr;

use super::builder::{host, Builder, NsExt};
use super::effective_routes::appliance_link;
use super::layout::{FabricL, Layout, SubnetL, INET_GW, RULE_PRIORITY, STAMP_GW};
use super::names;
use super::nft::{self, Batch, ChainType};
use super::routes::NextHopType;
use super::types::{NamespaceRole, RouteKind, RulePlan};

/// The port range NAT gateways and public IPs SNAT to (AZURE-FACTS §0: 64,512 per IP).
pub(crate) const SNAT_PORTS: (u16, u16) = (1024, 65535);

/// Routing tables of transit through this VNet's NVAs for its peers
/// (`PEER_TABLE_BASE + peering index`).
pub(crate) const PEER_TABLE_BASE: u32 = 2000;

/// The peered VNets' spaces, for replies of this VNet's private endpoints.
pub(crate) const PEERED_TABLE: u32 = 2999;

/// TCP port of SMTP.
pub(crate) const SMTP_PORT: u16 = 25;

/// The kernel route of one Active effective route of subnet `s`:
/// VnetLocal -> throw (to main, which has the NIC /32s); Internet -> inet0,
/// or stamp0 for an App Service subnet without a NAT gateway; None ->
/// blackhole; VirtualAppliance -> via the NVA's NIC link (blackhole when no NIC
/// of the VNet or of a peered one has the address: Azure drops it too);
/// VNetPeering -> out of the veth to the peered fabric (`peer_route`).
/// VirtualNetworkGateway -> via the gateway's link (the route's address, or
/// for a UDR the VNet's gateway, or the hub's across the peering). Service
/// endpoint routes go to the service's link (`services::endpoint_route`), a
/// private endpoint's InterfaceEndpoint /32 to its own link into the target
/// (`services::private_endpoint_route`).
pub(crate) fn kernel_route(
    l: &Layout,
    fi: usize,
    s: &SubnetL,
    t: NextHopType,
    ips: &[Ipv4Addr],
) -> RouteKind {
    let to_stamp = s.delegated_to_web && s.nat.is_none() && l.fabrics[fi].stamp.is_some();
    match t {
        NextHopType::VnetLocal | NextHopType::InterfaceEndpoint => RouteKind::Throw,
        NextHopType::Internet if to_stamp => RouteKind::Via {
            gateway: STAMP_GW,
            ifname: "stamp0".into(),
            onlink: true,
        },
        NextHopType::Internet => RouteKind::Via {
            gateway: INET_GW,
            ifname: "inet0".into(),
            onlink: true,
        },
        NextHopType::VirtualAppliance => ips
            .first()
            .and_then(|ip| {
                // An NVA in this VNet, or in a peered one (hub and spoke).
                let ifname = appliance_link(l, fi, *ip)
                    .or_else(|| peer_link(l, fi, ipnet::Ipv4Net::from(*ip)))?;
                Some(RouteKind::Via {
                    gateway: *ip,
                    ifname,
                    onlink: true,
                })
            })
            .unwrap_or(RouteKind::Blackhole),
        NextHopType::VirtualNetworkGateway => ips
            .first()
            .copied()
            .or(l.fabrics[fi].gateway_hop)
            .and_then(|ip| {
                // The VNet's own gateway, or the hub's across the peering.
                if let Some(ifname) = super::gateway::gateway_link(l, fi, ip) {
                    return Some(RouteKind::Via {
                        gateway: ip,
                        ifname,
                        onlink: true,
                    });
                }
                peer_link(l, fi, ipnet::Ipv4Net::from(ip)).map(|ifname| RouteKind::Dev { ifname })
            })
            .unwrap_or(RouteKind::Blackhole),
        NextHopType::None
        | NextHopType::VNetPeering
        | NextHopType::VirtualNetworkServiceEndpoint => RouteKind::Blackhole,
    }
}

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    for (fi, f) in l.fabrics.iter().enumerate() {
        let fab = f.netns.as_str();
        let ns = b.namespace(
            fab,
            NamespaceRole::Fabric {
                vnet_id: f.vnet.id.to_string(),
            },
            true,
        );
        super::worker::skip_source_validation(ns);
        for s in &f.subnets {
            ns.addr("lo", host(s.gateway));
        }
        for ip in owned_public(l, fi) {
            ns.addr("lo", host(ip));
        }
        for s in &f.subnets {
            ns.rules.push(RulePlan {
                priority: RULE_PRIORITY,
                fwmark: Some((s.table, u32::MAX)),
                iif: None,
                table: s.table,
            });
            for r in s.routes.iter().filter(|r| r.is_active()) {
                let kind = match r.next_hop_type {
                    NextHopType::VirtualNetworkServiceEndpoint => {
                        super::services::endpoint_route(l, fi, r.prefix)
                    }
                    NextHopType::InterfaceEndpoint => {
                        super::services::private_endpoint_route(l, fi, r.prefix)
                    }
                    NextHopType::VNetPeering => peer_route(l, fi, r.prefix),
                    t => kernel_route(l, fi, s, t, &r.next_hop_ips),
                };
                ns.route(s.table, r.prefix, kind);
            }
        }
        // Transit through an NVA of this VNet for a peered VNet (hub and
        // spoke): the spoke's UDR names the NVA, but across the peering the
        // packet reaches this fabric, not the NVA. What arrives on the
        // peering for the spoke's UDR prefixes goes on to the NVA, as Azure
        // delivers it there.
        for (pi, p) in f.peers.iter().enumerate() {
            let table = PEER_TABLE_BASE + pi as u32;
            let mut any = false;
            let mut seen = std::collections::BTreeSet::new();
            for s in &l.fabrics[p.remote].subnets {
                for r in s.routes.iter().filter(|r| r.is_active()) {
                    if r.next_hop_type != NextHopType::VirtualAppliance {
                        continue;
                    }
                    let Some(ip) = r.next_hop_ips.first() else {
                        continue;
                    };
                    let Some(link) = appliance_link(l, fi, *ip) else {
                        continue;
                    };
                    if !seen.insert(r.prefix) {
                        continue;
                    }
                    ns.route(
                        table,
                        r.prefix,
                        RouteKind::Via {
                            gateway: *ip,
                            ifname: link,
                            onlink: true,
                        },
                    );
                    any = true;
                }
            }
            // A spoke that uses this VNet's gateways: its on-premises
            // traffic arrives on the peering and goes on to the gateway.
            let spoke = &l.fabrics[p.remote];
            if spoke.gateway_hop.is_some() && spoke.gateway_hop == f.gateway_hop {
                for r in &f.gateway_routes {
                    let Some(ip) = r.next_hop_ips.first().copied() else {
                        continue;
                    };
                    let Some(link) = super::gateway::gateway_link(l, fi, ip) else {
                        continue;
                    };
                    if seen.insert(r.prefix) {
                        ns.route(
                            table,
                            r.prefix,
                            RouteKind::Via {
                                gateway: ip,
                                ifname: link,
                                onlink: true,
                            },
                        );
                        any = true;
                    }
                }
            }
            if any {
                ns.rules.push(RulePlan {
                    priority: RULE_PRIORITY + 1,
                    fwmark: None,
                    iif: Some(p.ifname.clone()),
                    table,
                });
            }
        }
        // Private endpoints of this VNet for peered VNets: what arrives on a
        // peering for an endpoint's /32 goes to its link (the transit tables
        // hold them), and the endpoint's replies to a peer's space follow
        // the peering (table PEERED_TABLE, for the endpoints' links).
        if !f.peers.is_empty() {
            let endpoints: Vec<ipnet::Ipv4Net> = f
                .subnets
                .iter()
                .flat_map(|s| s.routes.iter())
                .filter(|r| r.is_active() && r.next_hop_type == NextHopType::InterfaceEndpoint)
                .map(|r| r.prefix)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            for (pi, p) in f.peers.iter().enumerate() {
                let table = PEER_TABLE_BASE + pi as u32;
                for e in &endpoints {
                    ns.route(
                        table,
                        *e,
                        super::services::private_endpoint_route(l, fi, *e),
                    );
                }
                if !endpoints.is_empty() && !ns.rules.iter().any(|r| r.table == table) {
                    ns.rules.push(RulePlan {
                        priority: RULE_PRIORITY + 1,
                        fwmark: None,
                        iif: Some(p.ifname.clone()),
                        table,
                    });
                }
                for n in &p.remote_prefixes {
                    ns.route(
                        PEERED_TABLE,
                        *n,
                        RouteKind::Dev {
                            ifname: p.ifname.clone(),
                        },
                    );
                }
            }
            for link in super::services::private_endpoint_links(l, fi) {
                ns.rules.push(RulePlan {
                    priority: RULE_PRIORITY + 2,
                    fwmark: None,
                    iif: Some(link),
                    table: PEERED_TABLE,
                });
            }
        }
        ns.nft = Some(nft_batch(l, fi, f));
        // The NAT gateway's idle timeout is the conntrack timeout of its
        // established TCP flows. An nft `ct timeout` object would scope it to
        // those flows, but nft 1.0.6 drops the policy of a `ct timeout` given
        // as JSON (measured: `policy = { }`), so the fabric's own conntrack
        // setting carries it: the longest idle timeout of the VNet's NAT
        // gateways, for every TCP flow this fabric tracks.
        if let Some(minutes) = l
            .nats
            .iter()
            .filter(|n| n.fabric == fi && !n.addresses.is_empty())
            .map(|n| n.idle_timeout_minutes)
            .max()
        {
            ns.sysctl(
                "net/netfilter/nf_conntrack_tcp_timeout_established".into(),
                &(u64::from(minutes) * 60).to_string(),
            );
        }
        let uplink = names::link('f', fab, "inet0");
        b.veth(&l.inet, &uplink, fab, "inet0");
        let inet = b.get(&l.inet);
        for ip in owned_public(l, fi) {
            inet.dev_route(host(ip), &uplink);
        }
        if let Some(si) = f.stamp {
            let stamp = &l.stamps[si];
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

/// Sources a peering passes without `allowForwardedTraffic`: the remote
/// VNet's space, and, when this VNet uses the remote's gateways, the
/// on-premises prefixes behind them (gateway transit needs no forwarding).
fn forwarded_sources(l: &Layout, fi: usize, p: &super::layout::PeerL) -> Vec<ipnet::Ipv4Net> {
    let mut out = p.remote_prefixes.clone();
    let f = &l.fabrics[fi];
    let remote = &l.fabrics[p.remote];
    if f.gateway_hop.is_some() && f.gateway_hop == remote.gateway_hop {
        out.extend(f.gateway_routes.iter().map(|r| r.prefix));
    }
    out.sort();
    out.dedup();
    out
}

/// A VNetPeering route: out of the veth to the fabric whose VNet holds
/// `prefix` (that fabric answers ARP for its space and routes to its NICs).
fn peer_route(l: &Layout, fi: usize, prefix: ipnet::Ipv4Net) -> RouteKind {
    peer_link(l, fi, prefix)
        .map(|ifname| RouteKind::Dev { ifname })
        .unwrap_or(RouteKind::Blackhole)
}

/// Fabric `fi`'s link to the peered VNet that holds `net`.
fn peer_link(l: &Layout, fi: usize, net: ipnet::Ipv4Net) -> Option<String> {
    l.fabrics[fi]
        .peers
        .iter()
        .find(|p| p.remote_prefixes.iter().any(|n| n.contains(&net)))
        .map(|p| p.ifname.clone())
}

/// One veth per Connected peering, between the two fabrics, made once
/// (from the lower index). Each end answers ARP for its own VNet: a peering
/// is a link between two routers, so non-transitivity follows from each
/// fabric routing only its direct peers' spaces.
pub(crate) fn build_peerings(l: &Layout, b: &mut Builder) {
    for (fi, f) in l.fabrics.iter().enumerate() {
        for p in f.peers.iter().filter(|p| p.remote > fi) {
            let remote = &l.fabrics[p.remote];
            let Some(back) = remote.peers.iter().find(|q| q.remote == fi) else {
                continue;
            };
            b.veth(&f.netns, &p.ifname, &remote.netns, &back.ifname);
            b.get(&f.netns).proxy_arp(&p.ifname);
            b.get(&remote.netns).proxy_arp(&back.ifname);
        }
    }
}

/// Public addresses fabric `fi` owns (on `lo`, routed to it by inet): the
/// VNet's default outbound IP, its NAT gateways' IPs, its NICs' public IPs.
pub(crate) fn owned_public(l: &Layout, fi: usize) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = l.fabrics[fi].default_outbound.into_iter().collect();
    ips.extend(
        l.nats
            .iter()
            .filter(|n| n.fabric == fi)
            .flat_map(|n| n.addresses.iter().copied()),
    );
    ips.extend(
        public_ip_pairs(l, fi)
            .into_iter()
            .map(|(_, _, public)| public),
    );
    ips.sort();
    ips.dedup();
    ips
}

/// `(NIC link, private, public)` of every instance-level public IP in fabric `fi`.
fn public_ip_pairs(l: &Layout, fi: usize) -> Vec<(String, Ipv4Addr, Ipv4Addr)> {
    let mut out: Vec<_> = l
        .vms
        .iter()
        .flat_map(|vm| {
            vm.nics.iter().filter(|n| n.fabric == fi).flat_map(|n| {
                let link = names::link('n', &vm.netns, &n.ifname);
                n.public
                    .iter()
                    .map(move |(private, public)| (link.clone(), *private, *public))
            })
        })
        .collect();
    out.sort();
    out
}

/// A NIC as the fabric sees it.
pub(crate) struct FabricNic {
    pub link: String,
    pub table: u32,
    /// Addresses the NIC holds (instance + Windows container addresses for a worker vNIC).
    pub addresses: Vec<Ipv4Addr>,
    pub forwarding: bool,
}

fn nic_addresses(l: &Layout, fi: usize) -> Vec<FabricNic> {
    let mut out: Vec<FabricNic> = l
        .workers
        .iter()
        .flat_map(|w| {
            w.vnics
                .iter()
                .enumerate()
                .filter(|(_, v)| v.fabric == fi)
                .map(|(vi, v)| {
                    let mut addresses = vec![v.ip];
                    addresses.extend(
                        w.sandboxes
                            .iter()
                            .filter(|sb| sb.vnic == Some(vi))
                            .filter_map(|sb| sb.container_ip),
                    );
                    FabricNic {
                        link: names::link('n', &w.netns, &v.ifname),
                        table: v.subnet_table,
                        addresses,
                        forwarding: false,
                    }
                })
        })
        .chain(l.vms.iter().flat_map(|vm| {
            vm.nics
                .iter()
                .filter(|n| n.fabric == fi)
                .map(|n| FabricNic {
                    link: names::link('n', &vm.netns, &n.ifname),
                    table: n.subnet_table,
                    addresses: n.addresses.clone(),
                    forwarding: n.forwarding,
                })
        }))
        .chain(
            super::gateway::fabric_nics(l, fi)
                .into_iter()
                .map(|(link, table, ip)| FabricNic {
                    link,
                    table,
                    addresses: vec![ip],
                    forwarding: true,
                }),
        )
        .collect();
    out.sort_by(|a, b| a.link.cmp(&b.link));
    out
}

/// Name of the map NIC link -> its subnet's table (the packet's mark).
pub(crate) const MAP_SUBNET_MARKS: &str = "subnet_marks";

/// `ip <field> != <addresses> counter name "<counter>" drop`: an IPv4 packet
/// from (or to) a NIC without IP forwarding for an address it does not hold.
/// A NIC that holds none (not allocated yet) has all its IPv4 dropped.
fn spoofed(field: &str, addresses: &[Ipv4Addr], counter: &str) -> Vec<serde_json::Value> {
    let mut e = vec![if addresses.is_empty() {
        nft::ipv4()
    } else {
        nft::ip_not(field, addresses)
    }];
    e.extend([nft::named_counter(counter), nft::drop()]);
    e
}

fn nft_batch(l: &Layout, fi: usize, f: &FabricL) -> serde_json::Value {
    let nics = nic_addresses(l, fi);
    let mut batch = Batch::default();
    batch.chain("prerouting", ChainType::Filter, "prerouting", -150);
    batch.chain("dnat", ChainType::Nat, "prerouting", -100);
    batch.chain("forward", ChainType::Filter, "forward", 0);
    batch.chain("postrouting", ChainType::Nat, "postrouting", 100);
    // The NSGs give a packet its subnet mark back from this map.
    batch.map(
        MAP_SUBNET_MARKS,
        "ifname",
        "mark",
        nics.iter()
            .map(|n| serde_json::json!([n.link, n.table]))
            .collect(),
    );
    batch.counter("spoofed-source");
    batch.counter("spoofed-destination");
    // Per NIC link, two chains reached by one lookup of the packet's
    // link: `from-<link>` marks the packet with its subnet's table and, for a
    // NIC without IP forwarding, drops what it sends from an address not its
    // own; `to-<link>` drops what would reach such a NIC for an address not
    // its own, then counts what it receives. So a packet costs one lookup
    // per hook however many NICs the VNet has.
    let mut from = Vec::new();
    let mut to = Vec::new();
    let mut by_in = Vec::new();
    for n in &nics {
        let (from_chain, to_chain) = (format!("from-{}", n.link), format!("to-{}", n.link));
        let (cin, cout) = (format!("in-{}", n.link), format!("out-{}", n.link));
        batch.regular_chain(&from_chain);
        batch.regular_chain(&to_chain);
        batch.counter(&cin);
        batch.counter(&cout);
        batch.rule(&from_chain, vec![nft::set_mark(n.table)]);
        if !n.forwarding {
            batch.rule(
                &from_chain,
                spoofed("saddr", &n.addresses, "spoofed-source"),
            );
            batch.rule(
                &to_chain,
                spoofed("daddr", &n.addresses, "spoofed-destination"),
            );
        }
        batch.rule(&to_chain, vec![nft::named_counter(&cout)]);
        from.push((n.link.clone(), from_chain));
        to.push((n.link.clone(), to_chain));
        by_in.push((n.link.clone(), cin));
    }
    if !nics.is_empty() {
        batch.rule("prerouting", vec![nft::jump_by_ifname("iifname", &from)]);
        batch.rule("forward", vec![nft::jump_by_ifname("oifname", &to)]);
        batch.rule("forward", vec![nft::counter_by_ifname("iifname", &by_in)]);
    }
    // SMTP leaves the VNet only when its subscription allows it.
    if !f.allow_smtp {
        batch.counter("smtp-blocked");
        batch.rule(
            "forward",
            vec![
                nft::oifname("inet0"),
                nft::tcp_dport(SMTP_PORT),
                nft::named_counter("smtp-blocked"),
                nft::drop(),
            ],
        );
    }
    // NAT gateways: their subnets' internet flows (TCP/UDP) leave with the
    // gateway's IPs, spread over them, with the gateway's idle timeout.
    let mut by_mark: Vec<(u32, String)> = Vec::new();
    for (ni, nat) in l.nats.iter().enumerate().filter(|(_, n)| n.fabric == fi) {
        if nat.addresses.is_empty() {
            continue;
        }
        let marks: Vec<u32> = f
            .subnets
            .iter()
            .filter(|s| s.nat == Some(ni))
            .map(|s| s.table)
            .collect();
        let chain = format!("natgw-{ni}");
        batch.regular_chain(&chain);
        let n = nat.addresses.len();
        for (k, ip) in nat.addresses.iter().enumerate() {
            let mut expr = vec![nft::l4proto_tcp_udp()];
            if k + 1 < n {
                // Flow k of every (n - k) still here takes this address.
                expr.push(nft::numgen_inc_is_zero((n - k) as u32));
            }
            expr.push(nft::snat_ports(*ip, SNAT_PORTS));
            batch.rule(&chain, expr);
        }
        by_mark.extend(marks.into_iter().map(|m| (m, chain.clone())));
    }
    if !by_mark.is_empty() {
        by_mark.sort();
        batch.rule(
            "postrouting",
            vec![
                nft::oifname("inet0"),
                nft::l4proto_tcp_udp(),
                nft::jump_by_mark(&by_mark),
            ],
        );
    }
    // Instance-level public IPs: 1:1 NAT.
    let pairs = public_ip_pairs(l, fi);
    if !pairs.is_empty() {
        let inbound: Vec<(Ipv4Addr, Ipv4Addr)> = pairs.iter().map(|(_, p, q)| (*q, *p)).collect();
        batch.rule(
            "dnat",
            vec![nft::iifname("inet0"), nft::dnat_by_daddr(&inbound)],
        );
        let outbound: Vec<(String, Ipv4Addr, Ipv4Addr)> = pairs;
        batch.rule(
            "postrouting",
            vec![nft::oifname("inet0"), nft::snat_by_iifname_saddr(&outbound)],
        );
    }
    if let Some(ip) = f.default_outbound {
        batch.rule("postrouting", vec![nft::oifname("inet0"), nft::snat(ip)]);
    }
    // Peerings: `allowVirtualNetworkAccess: false` drops everything across
    // the link; without `allowForwardedTraffic`, what comes from the peer
    // with a source outside its VNet (an NVA forwarded it) is dropped.
    for p in &f.peers {
        if !p.allow_access {
            let c = format!("peering-blocked-{}", p.ifname);
            batch.counter(&c);
            batch.rule(
                "forward",
                vec![nft::iifname(&p.ifname), nft::named_counter(&c), nft::drop()],
            );
            batch.rule(
                "forward",
                vec![nft::oifname(&p.ifname), nft::named_counter(&c), nft::drop()],
            );
        } else if !p.allow_forwarded {
            let c = format!("peering-forwarded-{}", p.ifname);
            batch.counter(&c);
            batch.rule(
                "forward",
                vec![
                    nft::iifname(&p.ifname),
                    nft::ip_not_in_prefixes("saddr", &forwarded_sources(l, fi, p)),
                    nft::named_counter(&c),
                    nft::drop(),
                ],
            );
        }
    }
    super::nsg::append_to_fabric_batch(l, fi, &mut batch);
    batch.finish()
}
