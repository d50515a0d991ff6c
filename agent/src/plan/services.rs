//! The emulated services' namespaces (docs/datapath.md, "Service"): one per
//! storage account, key vault and registry, holding its public IP, routed
//! from the internet, and one link per VNet fabric whose subnets have a
//! service endpoint reaching it (seed, "Service endpoints"; AZURE-FACTS §7:
//! the service sees the private source address). Packets from each link get
//! that link's mark and conntrack zone, so overlapping VNets stay apart and
//! replies leave by the link the flow came in on; the host reads the mark
//! back from its accepted socket to know the path.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::builder::{default_route, host, Builder, NsExt, MAIN};
use super::layout::{Layout, INET_GW, RULE_PRIORITY};
use super::names;
use super::nft::{self, Batch, ChainType};
use super::private_endpoint::{approved_endpoints, ApprovedEndpoint};
use super::types::{NamespaceRole, RouteKind, RulePlan, ServiceHostPlan};
use crate::ipam::Allocations;
use crate::model::{
    DefaultAction, Inventory, LabState, PaasService, PublicNetworkAccess, ResourceId, ServiceKind,
    ServiceTag, Subnet,
};
use crate::services::config::{Access, AccessPath, HostConfig, ImageConfig, Ingress, SecretConfig};

/// Mark (= routing table = conntrack zone) of a service namespace's k-th
/// fabric link.
pub const SERVICE_MARK_BASE: u32 = 0x1000;
/// Base of the per-link local addresses of a service namespace (link k holds
/// `.1 + k` on `lo`): the public IP is DNATed to it per ingress link, so two
/// VNets' clients with the same private address and port are two sockets.
pub const SERVICE_LINK_ADDR_BASE: Ipv4Addr = Ipv4Addr::new(169, 254, 64, 0);
/// A fabric's gateway for its service links (on its `lo`): the next hop of
/// replies a service sends back into the VNet.
pub const FABRIC_SERVICE_GW: Ipv4Addr = Ipv4Addr::new(169, 254, 4, 1);

/// The public address of one emulated service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceAddr {
    pub kind: ServiceKind,
    pub location: String,
    pub ip: Ipv4Addr,
}

/// Every service that has its public address, in inventory order.
pub(crate) fn service_addrs(inv: &Inventory, alloc: &Allocations) -> Vec<ServiceAddr> {
    inv.services
        .iter()
        .filter_map(|s| {
            Some(ServiceAddr {
                kind: s.kind,
                location: s.location.clone(),
                ip: *alloc.service_ips.get(&s.id.key())?,
            })
        })
        .collect()
}

fn host_net(ip: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(ip, 32).expect("/32")
}

/// The prefixes a subnet's service endpoints reach (one /32 per service
/// public IP of that kind in a covered region): its
/// `VirtualNetworkServiceEndpoint` routes.
pub(crate) fn endpoint_prefixes(subnet: &Subnet, addrs: &[ServiceAddr]) -> Vec<Ipv4Net> {
    let mut out: Vec<Ipv4Net> = addrs
        .iter()
        .filter(|a| {
            subnet
                .service_endpoints
                .iter()
                .any(|e| e.reaches(a.kind, &a.location))
        })
        .map(|a| host_net(a.ip))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The Active `VirtualNetworkServiceEndpoint` prefixes of a subnet: what an
/// integrated app sends into its vNIC even with Route All off.
pub(crate) fn active_endpoint_prefixes(s: &super::layout::SubnetL) -> Vec<Ipv4Net> {
    s.routes
        .iter()
        .filter(|r| r.is_active())
        .filter(|r| r.next_hop_type == super::routes::NextHopType::VirtualNetworkServiceEndpoint)
        .map(|r| r.prefix)
        .collect()
}

/// The addresses of an emulated-service tag (`Storage`, `AzureKeyVault.WestEurope`, ...).
pub(crate) fn tag_prefixes(addrs: &[ServiceAddr], tag: &ServiceTag) -> Vec<Ipv4Net> {
    addrs
        .iter()
        .filter(|a| tag.covers(a.kind, &a.location))
        .map(|a| host_net(a.ip))
        .collect()
}

/// One ingress link of a service namespace from a fabric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceLink {
    /// The fabric (index) at the other end.
    pub fabric: usize,
    /// `None`: the VNet's service-endpoint link (traffic to the public IP);
    /// `Some(ip)`: an Approved private endpoint of that VNet with address
    /// `ip` (traffic to `ip`), a link of its own so that its packets carry
    /// the `privateEndpoint` path.
    pub private_endpoint: Option<Ipv4Addr>,
    /// The TCP ports a private endpoint's link passes (its group's, e.g.
    /// blob 80 and 443); unused on a service-endpoint link.
    pub ports: &'static [u16],
}

/// One service namespace.
#[derive(Debug, Clone)]
pub(crate) struct ServiceL {
    pub svc: PaasService,
    pub netns: String,
    pub ip: Ipv4Addr,
    /// Fabrics (indexes) with a subnet whose service endpoint reaches it, in
    /// fabric order.
    pub fabrics: Vec<usize>,
    /// Every ingress link: the service-endpoint links (one per entry of
    /// `fabrics`), then the private endpoints' links (by fabric, address).
    /// Link k gets mark `SERVICE_MARK_BASE + k`.
    pub links: Vec<ServiceLink>,
}

/// The services of a lab and the fabrics linked to each.
pub(crate) fn layout(
    inv: &Inventory,
    state: &LabState,
    lab: &str,
    vnets: &[crate::model::VirtualNetwork],
) -> Vec<ServiceL> {
    let alloc = &state.allocations;
    let approved: Vec<ApprovedEndpoint> = approved_endpoints(inv, state, vnets).collect();
    inv.services
        .iter()
        .filter_map(|s| {
            let ip = *alloc.service_ips.get(&s.id.key())?;
            let fabrics = vnets
                .iter()
                .enumerate()
                .filter(|(_, v)| {
                    v.subnets.iter().any(|sn| {
                        sn.service_endpoints
                            .iter()
                            .any(|e| e.reaches(s.kind, &s.location))
                    })
                })
                .map(|(fi, _)| fi)
                .collect::<Vec<usize>>();
            let mut links: Vec<ServiceLink> = fabrics
                .iter()
                .map(|fi| ServiceLink {
                    fabric: *fi,
                    private_endpoint: None,
                    ports: &[],
                })
                .collect();
            links.extend(endpoint_links(&approved, &s.id));
            Some(ServiceL {
                svc: s.clone(),
                netns: names::netns(lab, "svc", &s.name, &s.id.key()),
                ip,
                fabrics,
                links,
            })
        })
        .collect()
}

/// The Approved private endpoints to service `target`, as links from their
/// VNets' fabrics, by (fabric, address).
fn endpoint_links(approved: &[ApprovedEndpoint], target: &ResourceId) -> Vec<ServiceLink> {
    let mut links: Vec<ServiceLink> = approved
        .iter()
        .filter(|e| e.target == target)
        .map(|e| ServiceLink {
            fabric: e.fabric,
            private_endpoint: Some(e.address),
            ports: e.pe.group().map_or(&[][..], |g| g.ports),
        })
        .collect();
    links.sort_by_key(|k| (k.fabric, k.private_endpoint));
    links.dedup();
    links
}

/// The local address of a service namespace's k-th link.
fn link_addr(k: usize) -> Ipv4Addr {
    super::layout::add(SERVICE_LINK_ADDR_BASE, 1 + k as u32)
}

/// What names a link's fabric end: the fabric, plus the private endpoint's
/// address for an endpoint link (one VNet may hold several).
fn link_peer(fab_ns: &str, link: &ServiceLink) -> String {
    match link.private_endpoint {
        None => fab_ns.to_string(),
        Some(ip) => format!("{fab_ns}/{ip}"),
    }
}

/// The service-side name of a link (leads to the fabric).
fn service_side(svc_ns: &str, peer: &str) -> String {
    names::link('f', peer, svc_ns)
}

/// The fabric-side name of a link to service `svc_ns` (leads to the service).
fn fabric_side(svc_ns: &str, peer: &str) -> String {
    names::link('p', svc_ns, peer)
}

/// The fabric-side links of fabric `fi` to private endpoints' services:
/// replies of an endpoint come back on them, and those for a peered VNet
/// must follow the peering (`fabric::build`).
pub(crate) fn private_endpoint_links(l: &Layout, fi: usize) -> Vec<String> {
    let fab = &l.fabrics[fi].netns;
    l.services
        .iter()
        .flat_map(|s| {
            s.links
                .iter()
                .filter(|k| k.fabric == fi && k.private_endpoint.is_some())
                .map(move |k| fabric_side(&s.netns, &link_peer(fab, k)))
        })
        .collect()
}

/// The kernel route of a `VirtualNetworkServiceEndpoint` route of fabric
/// `fi`: straight to the service's link (no SNAT: the service sees the
/// private source); blackhole if no service holds the prefix.
pub(crate) fn endpoint_route(l: &Layout, fi: usize, prefix: Ipv4Net) -> RouteKind {
    // A stamp's inbound address (`Microsoft.Web`): over the fabric's stamp
    // link, where the front end sees the private source.
    if let Some(si) = l.fabrics[fi].stamp {
        if l.stamps[si].inbound.map(host_net) == Some(prefix) {
            return RouteKind::Via {
                gateway: super::layout::STAMP_GW,
                ifname: "stamp0".into(),
                onlink: true,
            };
        }
    }
    l.services
        .iter()
        .find(|s| host_net(s.ip) == prefix && s.fabrics.contains(&fi))
        .map(|s| RouteKind::Dev {
            ifname: fabric_side(&s.netns, &l.fabrics[fi].netns),
        })
        .unwrap_or(RouteKind::Blackhole)
}

/// The kernel route of a private endpoint's `InterfaceEndpoint` /32 in
/// fabric `fi`: into the target service's link for that endpoint; `throw`
/// (unreachable, like an unused VNet address) while the endpoint is not
/// Approved or its target has no namespace.
pub(crate) fn private_endpoint_route(l: &Layout, fi: usize, prefix: Ipv4Net) -> RouteKind {
    let fab = &l.fabrics[fi].netns;
    l.services
        .iter()
        .find_map(|s| {
            let (k, link) = s.links.iter().enumerate().find(|(_, k)| {
                k.fabric == fi && k.private_endpoint.map(host_net) == Some(prefix)
            })?;
            // Via the link's local address: the service namespace does not
            // hold the endpoint's address, so it would not answer ARP for it.
            Some(RouteKind::Via {
                gateway: link_addr(k),
                ifname: fabric_side(&s.netns, &link_peer(fab, link)),
                onlink: true,
            })
        })
        .or_else(|| super::site_endpoint::route(l, fi, prefix.addr()))
        .unwrap_or(RouteKind::Throw)
}

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    for s in &l.services {
        let ns = b.namespace(
            &s.netns,
            NamespaceRole::Service {
                resource_id: s.svc.id.to_string(),
            },
            false,
        );
        ns.addr("lo", host(s.ip));
        ns.via(MAIN, default_route(), INET_GW, "inet0");
        // Accepted sockets take the mark of the packet that opened them:
        // the host reads the path from it, and replies follow it back.
        ns.sysctl("net/ipv4/tcp_fwmark_accept".into(), "1");
        let uplink = names::link('p', &s.netns, "inet0");
        b.veth(&l.inet, &uplink, &s.netns, "inet0");
        b.get(&l.inet).dev_route(host(s.ip), &uplink);

        let mut marks: Vec<IngressLink> = Vec::new();
        for (k, link) in s.links.iter().enumerate() {
            let fab = &l.fabrics[link.fabric].netns;
            let peer = link_peer(fab, link);
            let (near, far) = (service_side(&s.netns, &peer), fabric_side(&s.netns, &peer));
            let mark = SERVICE_MARK_BASE + k as u32;
            let local = link_addr(k);
            b.veth(&s.netns, &near, fab, &far);
            b.get(fab).addr("lo", host(FABRIC_SERVICE_GW));
            let ns = b.get(&s.netns);
            ns.rules.push(RulePlan {
                priority: RULE_PRIORITY,
                fwmark: Some((mark, u32::MAX)),
                iif: None,
                table: mark,
            });
            ns.via(mark, default_route(), FABRIC_SERVICE_GW, &near);
            ns.addr("lo", host(local));
            marks.push(IngressLink {
                ifname: near,
                mark,
                local,
                daddr: link.private_endpoint.unwrap_or(s.ip),
                ports: link.private_endpoint.map(|_| link.ports),
            });
        }
        b.get(&s.netns).nft = Some(nft_batch(&marks));
        b.service_host(ServiceHostPlan {
            key: format!("{}/host", s.svc.id.key()),
            netns: s.netns.clone(),
            command: "service-host".into(),
            config: serde_json::to_value(host_config(l, s)).expect("serialisable"),
        });
    }
}

/// One ingress link as the service namespace's nft sees it.
struct IngressLink {
    ifname: String,
    mark: u32,
    /// The link's own address on `lo`.
    local: Ipv4Addr,
    /// What clients address on this link: the public IP (service endpoint)
    /// or the private endpoint's address.
    daddr: Ipv4Addr,
    /// A private endpoint's link: the only TCP ports it passes.
    ports: Option<&'static [u16]>,
}

/// Per ingress link: the mark (replies follow it back, the host reads the
/// path from it), a conntrack zone of its own and a DNAT of the address the
/// clients use on it (public IP or private endpoint IP) to the link's local
/// address, so two unpeered VNets with the same private addresses (legal in
/// Azure) never share a flow or a socket, even with equal source ports.
/// A constant number of rules however many links: maps keyed by link.
fn nft_batch(links: &[IngressLink]) -> serde_json::Value {
    let mut batch = Batch::default();
    batch.chain("raw-pre", ChainType::Filter, "prerouting", -300);
    batch.chain("raw-out", ChainType::Filter, "output", -300);
    batch.chain("dnat", ChainType::Nat, "prerouting", -100);
    if links.is_empty() {
        return batch.finish();
    }
    let marks: Vec<(String, u32)> = links.iter().map(|k| (k.ifname.clone(), k.mark)).collect();
    batch.rule("raw-pre", vec![nft::mark_by_iifname(&marks)]);
    batch.rule("raw-pre", vec![nft::ct_zone_by_iifname(&marks)]);
    let zones: Vec<u32> = links.iter().map(|k| k.mark).collect();
    batch.rule("raw-out", vec![nft::ct_zone_from_mark(&zones)]);
    // Anything else (another address on a link) is not DNATed and finds no
    // socket.
    let to_local: Vec<(String, Ipv4Addr, Ipv4Addr)> = links
        .iter()
        .map(|k| (k.ifname.clone(), k.daddr, k.local))
        .collect();
    batch.rule("dnat", vec![nft::dnat_by_iifname_daddr(&to_local)]);
    // A private endpoint maps one sub-resource (group) of its target: other
    // ports of the service are not reachable through it. One rule per
    // group's ports, naming every endpoint link of that group.
    let mut by_ports: Vec<(&'static [u16], Vec<String>)> = Vec::new();
    for (link, ports) in links.iter().filter_map(|k| Some((&k.ifname, k.ports?))) {
        match by_ports.iter_mut().find(|(p, _)| *p == ports) {
            Some((_, names)) => names.push(link.clone()),
            None => by_ports.push((ports, vec![link.clone()])),
        }
    }
    for (ports, names) in &by_ports {
        batch.rule(
            "raw-pre",
            vec![
                nft::iifname_in(names),
                nft::tcp_dport_not_in(ports),
                nft::drop(),
            ],
        );
    }
    let counters: Vec<(String, String)> = links
        .iter()
        .map(|k| (k.ifname.clone(), format!("in-{}", k.ifname)))
        .collect();
    for (_, name) in &counters {
        batch.counter(name);
    }
    batch.rule(
        "raw-pre",
        vec![nft::counter_by_ifname("iifname", &counters)],
    );
    batch.finish()
}

/// What the service's host serves.
fn host_config(l: &Layout, s: &ServiceL) -> HostConfig {
    let svc = &s.svc;
    HostConfig {
        service: svc.kind.resource_type().to_string(),
        id: svc.id.to_string(),
        name: svc.name.clone(),
        public_ip: s.ip,
        host_names: svc.host_names(),
        access: Access {
            public_network_access: svc.public_network_access == PublicNetworkAccess::Enabled,
            default_allow: svc.rules.default_action == DefaultAction::Allow,
            ip_rules: svc.rules.ip_rules.clone(),
            virtual_network_rules: svc
                .rules
                .virtual_network_rules
                .iter()
                .map(|r| r.subnet.key())
                .collect(),
        },
        ingress: s
            .links
            .iter()
            .enumerate()
            .map(|(k, link)| {
                let vnet = &l.fabrics[link.fabric].vnet;
                Ingress {
                    mark: SERVICE_MARK_BASE + k as u32,
                    path: match link.private_endpoint {
                        None => AccessPath::ServiceEndpoint,
                        Some(_) => AccessPath::PrivateEndpoint,
                    },
                    virtual_network: vnet.id.to_string(),
                    subnets: vnet
                        .subnets
                        .iter()
                        .map(|sn| (sn.id.key(), sn.address_prefix))
                        .collect(),
                }
            })
            .collect(),
        secrets: svc
            .secrets
            .iter()
            .map(|x| SecretConfig {
                name: x.name.clone(),
                value: x.value.clone(),
                version: x.version(),
            })
            .collect(),
        images: svc
            .images
            .iter()
            .map(|i| ImageConfig {
                repository: i.repository.clone(),
                tag: i.tag.clone(),
            })
            .collect(),
        ca: None,
    }
}

/// The service of a resource id, for views.
pub(crate) fn find<'a>(l: &'a Layout, id: &ResourceId) -> Option<&'a ServiceL> {
    l.services.iter().find(|s| &s.svc.id == id)
}
