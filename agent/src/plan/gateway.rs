//! Virtual network gateways and on-premises sites (docs/datapath.md,
//! "Gateways and on-premises sites"): a namespace per gateway behind a
//! GatewaySubnet link of its fabric, a router namespace per site (a local
//! network gateway, or the customer edge of an ExpressRoute circuit), a
//! namespace per on-premises host, one veth per connection between gateway
//! and site, and a supervised BIRD on each side of a BGP connection.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::builder::{default_route, host, net, Builder, NsExt};
use super::layout::Layout;
use super::names;
use super::routes::GatewayRoute;
use super::types::{NamespaceRole, ServiceHostPlan};
use crate::bgp::config::{announcement_name, Announcement, Session, Speaker};
use crate::model::{
    Connection, ConnectionPeer, ConnectionType, Inventory, LabState, ResourceId, VirtualNetwork,
    VirtualNetworkGateway, MSEE_ASN,
};

/// The site router's address on `lo`: the next hop of its hosts.
pub const SITE_GW: Ipv4Addr = Ipv4Addr::new(169, 254, 8, 1);

/// One gateway: its namespace and where it sits in its VNet.
#[derive(Debug, Clone)]
pub(crate) struct GatewayL {
    pub gw: VirtualNetworkGateway,
    pub fabric: usize,
    pub netns: String,
    /// Its address in GatewaySubnet (`bgpPeeringAddress`).
    pub ip: Ipv4Addr,
    pub subnet: Ipv4Net,
    /// GatewaySubnet's table in the fabric.
    pub subnet_table: u32,
    /// The fabric's end of the gateway's link (a NIC with IP forwarding).
    pub link: String,
    /// What it originates: its VNet's space, and the spaces of peered VNets
    /// that use it as their remote gateway.
    pub advertised: Vec<Ipv4Net>,
}

/// An on-premises site: a local network gateway's device, or the customer
/// edge router of an ExpressRoute circuit.
#[derive(Debug, Clone)]
pub(crate) struct SiteL {
    pub id: ResourceId,
    pub netns: String,
    pub asn: Option<u32>,
    /// The router's BGP address (a local network gateway's
    /// `bgpPeeringAddress`; the customer side of a circuit's /30).
    pub bgp_address: Option<Ipv4Addr>,
    /// Its hosts' LANs (announced over BGP, one announcement each).
    pub lans: Vec<Ipv4Net>,
    pub hosts: Vec<OnPremHostL>,
}

#[derive(Debug, Clone)]
pub(crate) struct OnPremHostL {
    pub id: ResourceId,
    pub netns: String,
    pub ip: Ipv4Addr,
    /// The site router's end of the host's link.
    pub link: String,
}

/// One connection between a gateway and a site: a veth.
#[derive(Debug, Clone)]
pub(crate) struct ConnL {
    pub id: ResourceId,
    pub gateway: usize,
    pub site: usize,
    /// The gateway's end, and the site's end.
    pub gw_if: String,
    pub site_if: String,
    /// Addresses of the two ends of the BGP session (or of the link).
    pub gw_addr: Ipv4Addr,
    pub site_addr: Ipv4Addr,
    pub bgp: bool,
    /// The gateway side's ASN on this session (Microsoft's edge for ExpressRoute).
    pub gw_asn: u32,
    /// Routed to the site without BGP: the local network gateway's prefixes.
    pub static_prefixes: Vec<Ipv4Net>,
}

/// A VNet-to-VNet connection pair (one `Vnet2Vnet` connection each way):
/// a veth between the two gateways.
#[derive(Debug, Clone)]
pub(crate) struct Vnet2VnetL {
    /// The two connections (the first names the link and the session).
    pub ids: [ResourceId; 2],
    /// The two gateways, and each one's end of the veth.
    pub gateways: [usize; 2],
    pub ifnames: [String; 2],
    pub bgp: bool,
}

/// The gateways, sites and connections of a lab.
#[derive(Debug, Clone, Default)]
pub(crate) struct GatewaysL {
    pub gateways: Vec<GatewayL>,
    pub sites: Vec<SiteL>,
    pub conns: Vec<ConnL>,
    pub vnet2vnet: Vec<Vnet2VnetL>,
}

/// The `Vnet2Vnet` connection back from `c`'s far gateway, when it exists:
/// a VNet-to-VNet connection is Connected once both sides made theirs.
fn reverse_vnet2vnet<'a>(inv: &'a Inventory, c: &Connection) -> Option<&'a Connection> {
    let ConnectionPeer::Gateway(other) = &c.peer else {
        return None;
    };
    inv.connections.iter().find(|d| {
        d.connection_type == ConnectionType::Vnet2Vnet
            && &d.gateway == other
            && d.peer == ConnectionPeer::Gateway(c.gateway.clone())
    })
}

/// The gateway's address in its subnet, with the subnet's prefix.
fn gateway_address(inv: &Inventory, g: &VirtualNetworkGateway) -> Option<(Ipv4Addr, Ipv4Net)> {
    let (_, subnet, _) = inv.subnet(&g.subnet)?;
    Some((
        g.peering_address(subnet.address_prefix),
        subnet.address_prefix,
    ))
}

/// Does `vnet` use the gateways of the peered `remote` (its peering has
/// `useRemoteGateways`, the remote's back has `allowGatewayTransit`)?
fn uses_remote_gateways(vnet: &VirtualNetwork, remote: &VirtualNetwork) -> bool {
    vnet.peerings
        .iter()
        .any(|p| p.remote == remote.id && p.use_remote_gateways)
        && remote
            .peerings
            .iter()
            .any(|p| p.remote == vnet.id && p.allow_gateway_transit)
}

/// The VNets whose gateways serve `vnet`: its own, else the peered hub's it
/// uses with gateway transit.
pub(crate) fn serving_vnet<'a>(inv: &'a Inventory, vnet: &'a VirtualNetwork) -> &'a VirtualNetwork {
    if inv.gateways.iter().any(|g| g.vnet() == vnet.id) {
        return vnet;
    }
    inv.connected_peerings(vnet)
        .find(|(_, remote)| {
            uses_remote_gateways(vnet, remote) && inv.gateways.iter().any(|g| g.vnet() == remote.id)
        })
        .map(|(_, r)| r)
        .unwrap_or(vnet)
}

/// The gateway routes of every subnet of `vnet` (before
/// `disableBgpRoutePropagation`): a local network gateway's prefixes over
/// each connection without BGP... and with it (source Default, Azure
/// programs them either way), and what each gateway's speaker learned
/// (source VirtualNetworkGateway). A spoke that uses the hub's gateways gets
/// the hub's.
pub(crate) fn vnet_gateway_routes(
    inv: &Inventory,
    state: &LabState,
    vnet: &VirtualNetwork,
) -> Vec<GatewayRoute> {
    let serving = serving_vnet(inv, vnet);
    let mut out: Vec<GatewayRoute> = Vec::new();
    for g in inv.gateways.iter().filter(|g| g.vnet() == serving.id) {
        let Some((ip, _)) = gateway_address(inv, g) else {
            continue;
        };
        for c in inv.connections.iter().filter(|c| c.gateway == g.id) {
            // VNet to VNet without BGP: the other VNet's space, as Azure
            // fills the hidden local network gateway of such a connection.
            if let (ConnectionPeer::Gateway(other), Some(back)) =
                (&c.peer, reverse_vnet2vnet(inv, c))
            {
                let bgp = c.enable_bgp && back.enable_bgp;
                let remote = inv
                    .gateways
                    .iter()
                    .find(|x| &x.id == other)
                    .and_then(|x| inv.vnet(&x.vnet()));
                if let (false, Some(remote)) = (bgp, remote) {
                    for p in &remote.address_prefixes {
                        out.push(GatewayRoute {
                            prefix: *p,
                            next_hop_ips: vec![ip],
                            bgp: false,
                        });
                    }
                }
            }
            if let ConnectionPeer::Local(lng) = &c.peer {
                if let Some(lng) = inv.local_gateways.iter().find(|x| &x.id == lng) {
                    for p in &lng.address_prefixes {
                        out.push(GatewayRoute {
                            prefix: *p,
                            next_hop_ips: vec![ip],
                            bgp: false,
                        });
                    }
                }
            }
        }
        for r in state
            .learned_routes
            .get(&g.id.key())
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            // What the gateway originates itself never comes back as a route.
            if serving
                .address_prefixes
                .iter()
                .any(|p| p.contains(&r.prefix))
            {
                continue;
            }
            out.push(GatewayRoute {
                prefix: r.prefix,
                next_hop_ips: vec![ip],
                bgp: true,
            });
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|r| seen.insert((r.prefix, r.bgp)));
    out.sort_by_key(|r| (r.prefix, r.bgp));
    out
}

/// The address a `VirtualNetworkGateway` next hop of `vnet` goes to when the
/// route names none (a UDR): its VPN gateway, else its ExpressRoute gateway,
/// else the hub's it uses.
pub(crate) fn gateway_hop(inv: &Inventory, vnet: &VirtualNetwork) -> Option<Ipv4Addr> {
    let serving = serving_vnet(inv, vnet);
    let mut gws: Vec<&VirtualNetworkGateway> = inv
        .gateways
        .iter()
        .filter(|g| g.vnet() == serving.id)
        .collect();
    gws.sort_by_key(|g| g.gateway_type);
    gws.into_iter()
        .find_map(|g| gateway_address(inv, g).map(|(ip, _)| ip))
}

pub(crate) fn layout(inv: &Inventory, lab: &str, fabric_vnets: &[VirtualNetwork]) -> GatewaysL {
    let mut out = GatewaysL::default();
    for g in &inv.gateways {
        let Some(fabric) = fabric_vnets.iter().position(|v| v.id == g.vnet()) else {
            continue;
        };
        let Some((vnet, _, si)) = inv.subnet(&g.subnet) else {
            continue;
        };
        let Some((ip, subnet)) = gateway_address(inv, g) else {
            continue;
        };
        let netns = names::netns(lab, "gw", &g.name, &g.id.key());
        let mut advertised = vnet.address_prefixes.clone();
        for (p, remote) in inv.connected_peerings(vnet) {
            if uses_remote_gateways(remote, vnet) {
                advertised.extend(p.remote_prefixes(remote));
            }
        }
        advertised.sort();
        advertised.dedup();
        out.gateways.push(GatewayL {
            link: names::link('n', &netns, "eth0"),
            gw: g.clone(),
            fabric,
            netns,
            ip,
            subnet,
            subnet_table: super::layout::SUBNET_TABLE_BASE + si as u32,
            advertised,
        });
    }
    let site_of = |out: &mut GatewaysL, id: &ResourceId| -> Option<usize> {
        if let Some(i) = out.sites.iter().position(|s| &s.id == id) {
            return Some(i);
        }
        let (name, asn, bgp_address) =
            if let Some(l) = inv.local_gateways.iter().find(|x| &x.id == id) {
                (
                    l.name.clone(),
                    l.bgp.map(|b| b.asn),
                    l.bgp.map(|b| b.peering_address),
                )
            } else {
                let c = inv.circuits.iter().find(|x| &x.id == id)?;
                let pp = c.private_peering?;
                (c.name.clone(), Some(pp.peer_asn), Some(pp.addresses().0))
            };
        let netns = names::netns(lab, "site", &name, &id.key());
        let hosts: Vec<OnPremHostL> = inv
            .onprem_hosts
            .iter()
            .filter(|h| &h.site == id)
            .map(|h| {
                let hns = names::netns(lab, "onprem", &h.name, &h.id.key());
                OnPremHostL {
                    link: names::link('h', &hns, "eth0"),
                    id: h.id.clone(),
                    netns: hns,
                    ip: h.ip_address,
                }
            })
            .collect();
        let mut lans: Vec<Ipv4Net> = inv
            .onprem_hosts
            .iter()
            .filter(|h| &h.site == id)
            .map(|h| h.lan)
            .collect();
        lans.sort();
        lans.dedup();
        out.sites.push(SiteL {
            id: id.clone(),
            netns,
            asn,
            bgp_address,
            lans,
            hosts,
        });
        Some(out.sites.len() - 1)
    };
    for c in &inv.connections {
        let Some(gi) = out.gateways.iter().position(|g| g.gw.id == c.gateway) else {
            continue;
        };
        let g = out.gateways[gi].clone();
        let (site_id, static_prefixes) = match &c.peer {
            ConnectionPeer::Local(id) if c.connection_type == ConnectionType::IPsec => (
                id,
                inv.local_gateways
                    .iter()
                    .find(|x| &x.id == id)
                    .map(|x| x.address_prefixes.clone())
                    .unwrap_or_default(),
            ),
            ConnectionPeer::Circuit(id) if c.connection_type == ConnectionType::ExpressRoute => {
                (id, Vec::new())
            }
            // Vnet2Vnet: below, once per pair.
            _ => continue,
        };
        let Some(si) = site_of(&mut out, site_id) else {
            continue;
        };
        let site = &out.sites[si];
        let circuit = inv.circuits.iter().find(|x| &x.id == site_id);
        // ExpressRoute: the session runs over the circuit's primary /30
        // (Microsoft's edge holds the second address, ASN 12076). VPN: the
        // gateway's and the device's BGP addresses (or, without BGP, the
        // gateway's address and the device's public one, for the link).
        let (gw_addr, site_addr, gw_asn) = match circuit.and_then(|c| c.private_peering) {
            Some(pp) => (pp.addresses().1, pp.addresses().0, MSEE_ASN),
            None => (
                g.ip,
                site.bgp_address
                    .or_else(|| {
                        inv.local_gateways
                            .iter()
                            .find(|x| &x.id == site_id)
                            .and_then(|x| x.gateway_ip)
                    })
                    .unwrap_or(SITE_GW),
                g.gw.asn,
            ),
        };
        let key = c.id.key();
        out.conns.push(ConnL {
            gw_if: names::link('c', &site.netns, &key),
            site_if: names::link('c', &g.netns, &key),
            id: c.id.clone(),
            gateway: gi,
            site: si,
            gw_addr,
            site_addr,
            bgp: c.enable_bgp
                && g.gw.enable_bgp
                && site.asn.is_some()
                && site.bgp_address.is_some(),
            gw_asn,
            static_prefixes,
        });
    }
    for c in inv
        .connections
        .iter()
        .filter(|c| c.connection_type == ConnectionType::Vnet2Vnet)
    {
        let (ConnectionPeer::Gateway(other), Some(back)) = (&c.peer, reverse_vnet2vnet(inv, c))
        else {
            continue;
        };
        if c.id.key() > back.id.key() {
            continue;
        }
        let (Some(a), Some(b)) = (
            out.gateways.iter().position(|g| g.gw.id == c.gateway),
            out.gateways.iter().position(|g| &g.gw.id == other),
        ) else {
            continue;
        };
        let key = c.id.key();
        let (ga, gb) = (&out.gateways[a], &out.gateways[b]);
        out.vnet2vnet.push(Vnet2VnetL {
            ifnames: [
                names::link('c', &gb.netns, &key),
                names::link('c', &ga.netns, &key),
            ],
            bgp: c.enable_bgp && back.enable_bgp && ga.gw.enable_bgp && gb.gw.enable_bgp,
            ids: [c.id.clone(), back.id.clone()],
            gateways: [a, b],
        });
    }
    out
}

/// A gateway's namespace, its link into the fabric, every site, host and
/// connection link, and the BGP speakers.
pub(crate) fn build(l: &Layout, b: &mut Builder) {
    let gl = &l.gateways;
    for g in &gl.gateways {
        let fabric = &l.fabrics[g.fabric];
        let ns = b.namespace(
            &g.netns,
            NamespaceRole::Gateway {
                resource_id: g.gw.id.to_string(),
            },
            true,
        );
        ns.addr("eth0", net(g.ip, g.subnet.prefix_len()));
        let hop = Ipv4Addr::from(u32::from(g.subnet.network()) + 1);
        // Only what it serves goes back into the VNet: an address nobody
        // announces is unreachable here, not bounced between the two.
        for p in &g.advertised {
            ns.via(super::builder::MAIN, *p, hop, "eth0");
        }
        b.veth(&fabric.netns, &g.link, &g.netns, "eth0");
        let f = b.get(&fabric.netns);
        f.proxy_arp(&g.link);
        f.dev_route(host(g.ip), &g.link);
    }
    for s in &gl.sites {
        let ns = b.namespace(
            &s.netns,
            NamespaceRole::OnPremisesSite {
                resource_id: s.id.to_string(),
            },
            true,
        );
        ns.addr("lo", host(SITE_GW));
        for h in &s.hosts {
            ns.dev_route(host(h.ip), &h.link);
        }
        for h in &s.hosts {
            let hn = b.namespace(
                &h.netns,
                NamespaceRole::OnPremisesHost {
                    resource_id: h.id.to_string(),
                },
                false,
            );
            hn.addr("eth0", host(h.ip));
            hn.via(super::builder::MAIN, default_route(), SITE_GW, "eth0");
            b.veth(&s.netns, &h.link, &h.netns, "eth0");
        }
    }
    for c in &gl.conns {
        let g = &gl.gateways[c.gateway];
        let s = &gl.sites[c.site];
        b.veth(&g.netns, &c.gw_if, &s.netns, &c.site_if);
        let gns = b.get(&g.netns);
        gns.addr(&c.gw_if, host(c.gw_addr));
        gns.dev_route(host(c.site_addr), &c.gw_if);
        // Static routes go via the far end's address (it answers ARP for
        // it), as BGP's do.
        if !c.bgp {
            for p in &c.static_prefixes {
                gns.via(super::builder::MAIN, *p, c.site_addr, &c.gw_if);
            }
        }
        let sns = b.get(&s.netns);
        sns.addr(&c.site_if, host(c.site_addr));
        sns.dev_route(host(c.gw_addr), &c.site_if);
        // Without BGP the device knows what it was configured with: the
        // gateway's own VNet (the connection's traffic selectors). A spoke
        // that uses the hub's gateway is not in it, so the spoke's replies
        // die at the device, as on a real one nobody updated. With BGP it
        // learns every advertised space, spokes included.
        if !c.bgp {
            for p in &l.fabrics[g.fabric].vnet.address_prefixes {
                sns.via(super::builder::MAIN, *p, c.gw_addr, &c.site_if);
            }
        }
    }
    for v in &gl.vnet2vnet {
        let (ga, gb) = (&gl.gateways[v.gateways[0]], &gl.gateways[v.gateways[1]]);
        b.veth(&ga.netns, &v.ifnames[0], &gb.netns, &v.ifnames[1]);
        for (me, other, ifname) in [(ga, gb, &v.ifnames[0]), (gb, ga, &v.ifnames[1])] {
            let ns = b.get(&me.netns);
            ns.addr(ifname, host(me.ip));
            ns.dev_route(host(other.ip), ifname);
            if !v.bgp {
                for p in &l.fabrics[other.fabric].vnet.address_prefixes {
                    ns.via(super::builder::MAIN, *p, other.ip, ifname);
                }
            }
        }
    }
    for (gi, g) in gl.gateways.iter().enumerate() {
        let mut sessions: Vec<Session> = gl
            .conns
            .iter()
            .filter(|c| c.gateway == gi && c.bgp)
            .map(|c| {
                let s = &gl.sites[c.site];
                Session {
                    name: session_name(&c.id),
                    description: c.id.name().to_string(),
                    local_address: c.gw_addr,
                    local_asn: c.gw_asn,
                    peer_address: c.site_addr,
                    peer_asn: s.asn.unwrap_or_default(),
                    ifname: c.gw_if.clone(),
                }
            })
            .collect();
        for v in gl.vnet2vnet.iter().filter(|v| v.bgp) {
            let Some(side) = v.gateways.iter().position(|x| *x == gi) else {
                continue;
            };
            let other = &gl.gateways[v.gateways[1 - side]];
            sessions.push(Session {
                name: session_name(&v.ids[0]),
                description: v.ids[side].name().to_string(),
                local_address: g.ip,
                local_asn: g.gw.asn,
                peer_address: other.ip,
                peer_asn: other.gw.asn,
                ifname: v.ifnames[side].clone(),
            });
        }
        if sessions.is_empty() {
            continue;
        }
        speaker(
            b,
            &g.gw.id,
            &g.netns,
            Speaker {
                what: format!("virtual network gateway {}", g.gw.id),
                router_id: g.ip,
                announcements: vec![Announcement {
                    name: "vnet".into(),
                    prefixes: g.advertised.clone(),
                }],
                sessions,
            },
        );
    }
    for (si, s) in gl.sites.iter().enumerate() {
        let sessions: Vec<Session> = gl
            .conns
            .iter()
            .filter(|c| c.site == si && c.bgp)
            .map(|c| Session {
                name: session_name(&c.id),
                description: c.id.name().to_string(),
                local_address: c.site_addr,
                local_asn: s.asn.unwrap_or_default(),
                peer_address: c.gw_addr,
                peer_asn: c.gw_asn,
                ifname: c.site_if.clone(),
            })
            .collect();
        let (Some(router_id), false) = (s.bgp_address, sessions.is_empty()) else {
            continue;
        };
        speaker(
            b,
            &s.id,
            &s.netns,
            Speaker {
                what: format!("on-premises router of {}", s.id),
                router_id,
                announcements: s
                    .lans
                    .iter()
                    .map(|p| Announcement {
                        name: announcement_name("lan", *p),
                        prefixes: vec![*p],
                    })
                    .collect(),
                sessions,
            },
        );
    }
}

/// The BIRD protocol name of a connection's session.
pub(crate) fn session_name(conn: &ResourceId) -> String {
    format!("conn_{}", &names::sha256_hex(&conn.key())[..8])
}

/// The process key of the speaker of `owner` (a gateway or a site).
pub fn speaker_key(owner: &ResourceId) -> String {
    format!("{}/bgp", owner.key())
}

fn speaker(b: &mut Builder, owner: &ResourceId, netns: &str, speaker: Speaker) {
    b.service_host(ServiceHostPlan {
        key: speaker_key(owner),
        netns: netns.to_string(),
        command: "bgp-speaker".into(),
        config: json!({ "speaker": speaker }),
    });
}

/// The fabric link and table of each gateway of fabric `fi` (a NIC with IP
/// forwarding: on-premises sources pass).
pub(crate) fn fabric_nics(l: &Layout, fi: usize) -> Vec<(String, u32, Ipv4Addr)> {
    l.gateways
        .gateways
        .iter()
        .filter(|g| g.fabric == fi)
        .map(|g| (g.link.clone(), g.subnet_table, g.ip))
        .collect()
}

/// The fabric link of the gateway at `ip` in fabric `fi`.
pub(crate) fn gateway_link(l: &Layout, fi: usize, ip: Ipv4Addr) -> Option<String> {
    l.gateways
        .gateways
        .iter()
        .find(|g| g.fabric == fi && g.ip == ip)
        .map(|g| g.link.clone())
}

/// Read-only properties Azure shows on the gateway resources.
pub(crate) fn gateway_view(l: &Layout, id: &ResourceId, mut v: Value) -> Value {
    if let Some(g) = l.gateways.gateways.iter().find(|g| &g.gw.id == id) {
        let p = &mut v["properties"];
        p["bgpSettings"]["asn"] = json!(g.gw.asn);
        p["bgpSettings"]["bgpPeeringAddress"] = json!(g.ip.to_string());
        p["bgpSettings"]["peerWeight"] = json!(0);
        p["bgpSettings"]["bgpPeeringAddresses"] = json!([{
            "ipconfigurationId": format!("{}/ipConfigurations/default", g.gw.id),
            "defaultBgpIpAddresses": [g.ip.to_string()],
            "customBgpIpAddresses": [],
            "tunnelIpAddresses": [],
        }]);
        p["gatewayType"] = json!(g.gw.gateway_type.as_str());
        p["enableBgp"] = json!(g.gw.enable_bgp);
        p["activeActive"] = json!(false);
        v["emulator"] = json!({
            "namespace": g.netns,
            "fabricLink": g.link,
            "advertisedPrefixes": g.advertised.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "bgpSpeaker": g.gw.enable_bgp.then(|| speaker_key(&g.gw.id)),
        });
    } else if l.inv.gateways.iter().any(|g| &g.id == id) {
        v["properties"]["provisioningState"] = json!("Failed");
    }
    v
}

pub(crate) fn connection_view(l: &Layout, id: &ResourceId, mut v: Value) -> Value {
    let c = l.gateways.conns.iter().find(|c| &c.id == id);
    let pair = l.gateways.vnet2vnet.iter().find(|p| p.ids.contains(id));
    v["properties"]["connectionStatus"] = json!(if c.is_some() || pair.is_some() {
        "Connected"
    } else {
        "NotConnected"
    });
    if let Some(p) = pair {
        let side = usize::from(&p.ids[1] == id);
        v["emulator"] = json!({
            "gatewayLink": p.ifnames[side],
            "bgp": p.bgp,
            "bgpSession": p.bgp.then(|| session_name(&p.ids[0])),
            "gatewayAddress": l.gateways.gateways[p.gateways[side]].ip.to_string(),
            "siteAddress": l.gateways.gateways[p.gateways[1 - side]].ip.to_string(),
        });
    }
    v["properties"]["ingressBytesTransferred"] = json!(0);
    v["properties"]["egressBytesTransferred"] = json!(0);
    if let Some(p) = v["properties"].as_object_mut() {
        // The pre-shared key is a secret: ARM does not return it.
        p.remove("sharedKey");
    }
    if let Some(c) = c {
        v["emulator"] = json!({
            "gatewayLink": c.gw_if,
            "siteLink": c.site_if,
            "siteNamespace": l.gateways.sites[c.site].netns,
            "bgp": c.bgp,
            "bgpSession": c.bgp.then(|| session_name(&c.id)),
            "gatewayAddress": c.gw_addr.to_string(),
            "siteAddress": c.site_addr.to_string(),
        });
    }
    v
}

pub(crate) fn site_view(l: &Layout, id: &ResourceId, mut v: Value) -> Value {
    if let Some(s) = l.gateways.sites.iter().find(|s| &s.id == id) {
        v["emulator"] = json!({
            "routerNamespace": s.netns,
            "announcements": s.lans.iter().map(|p| json!({
                "prefix": p.to_string(),
                "birdProtocol": announcement_name("lan", *p),
            })).collect::<Vec<_>>(),
            "bgpSpeaker": s.bgp_address.map(|_| speaker_key(&s.id)),
        });
    }
    if l.inv.circuits.iter().any(|c| &c.id == id) {
        let p = &mut v["properties"];
        p["circuitProvisioningState"] = json!("Enabled");
        p["serviceProviderProvisioningState"] = json!("Provisioned");
        p["serviceKey"] = json!(uuid_like(&id.key()));
        // Each peering as ARM shows it: a child resource with its own id.
        let peerings = p.get_mut("peerings").and_then(|a| a.as_array_mut());
        for entry in peerings.into_iter().flatten() {
            let Some(name) = entry["name"].as_str().map(str::to_string) else {
                continue;
            };
            entry["id"] = json!(id.child("peerings", &name).to_string());
            entry["type"] = json!("Microsoft.Network/expressRouteCircuits/peerings");
            if entry["properties"].is_object() {
                entry["properties"]["provisioningState"] = json!("Succeeded");
                entry["properties"]["state"] = json!("Enabled");
            }
        }
    }
    v
}

pub(crate) fn onprem_host_view(l: &Layout, id: &ResourceId, mut v: Value) -> Value {
    for s in &l.gateways.sites {
        if let Some(h) = s.hosts.iter().find(|h| &h.id == id) {
            v["emulator"] = json!({ "namespace": h.netns, "routerNamespace": s.netns });
        }
    }
    v
}

/// A stable GUID-shaped value (a circuit's service key).
fn uuid_like(seed: &str) -> String {
    let h = names::sha256_hex(seed);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
