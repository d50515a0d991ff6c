//! Effective routes of a subnet as Azure computes them (AZURE-FACTS §2.1–2.3):
//! system routes (VNet ranges, 0.0.0.0/0 Internet, the `None` prefixes with
//! the VNet-range adjustments), optional peering, gateway and service
//! endpoint routes, private endpoints' /32 `InterfaceEndpoint` routes, and
//! user-defined routes; longest prefix wins, on a tie
//! UDR > BGP > System, except that the system routes of the VNet, peerings
//! and service endpoints beat even more specific BGP routes. Every candidate
//! is returned with its State (Active or Invalid), the way
//! `az network nic show-effective-route-table` shows them.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;
use serde_json::{json, Value};

pub use crate::model::NextHopType;
use crate::model::{Route, VirtualNetwork};

/// Where a route comes from (`source` in Azure's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RouteSource {
    /// A system route (also optional ones: peering, service endpoints,
    /// static gateway prefixes).
    Default,
    /// Learned over BGP from a virtual network gateway.
    VirtualNetworkGateway,
    /// A user-defined route of the subnet's route table.
    User,
}

/// `state` in Azure's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RouteState {
    Active,
    Invalid,
}

/// One candidate route of a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveRoute {
    pub source: RouteSource,
    pub state: RouteState,
    pub prefix: Ipv4Net,
    pub next_hop_type: NextHopType,
    pub next_hop_ips: Vec<Ipv4Addr>,
    /// The UDR's name (user routes only).
    pub name: Option<String>,
}

impl EffectiveRoute {
    pub fn is_active(&self) -> bool {
        self.state == RouteState::Active
    }

    /// Azure's JSON row (`az network nic show-effective-route-table`).
    pub fn to_json(&self, disable_bgp_route_propagation: bool) -> Value {
        json!({
            "name": self.name,
            "source": self.source,
            "state": self.state,
            "addressPrefix": [self.prefix.to_string()],
            "nextHopType": self.next_hop_type.as_str(),
            "nextHopIpAddress": self.next_hop_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "disableBgpRoutePropagation": disable_bgp_route_propagation,
            "hasBgpOverride": false,
        })
    }
}

/// A route a virtual network gateway brings to every subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRoute {
    pub prefix: Ipv4Net,
    /// The gateway's address(es).
    pub next_hop_ips: Vec<Ipv4Addr>,
    /// Learned over BGP (source `VirtualNetworkGateway`, rank BGP); false for a
    /// local network gateway's static prefix (a system route, source `Default`).
    pub bgp: bool,
}

/// A private endpoint of the VNet: a /32 system route (next hop
/// `InterfaceEndpoint`) on every subnet (AZURE-FACTS §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointRoute {
    pub address: Ipv4Addr,
    /// The endpoint's subnet has `privateEndpointNetworkPolicies` Enabled or
    /// RouteTableEnabled: a UDR whose prefix is at least as long as the VNet
    /// range holding the address invalidates the /32 (a 0.0.0.0/0 never does).
    pub route_tables_apply: bool,
}

/// Everything that decides a subnet's routes. The lab has no peering or
/// gateways yet; the function takes them so every Azure case can be computed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteInputs {
    /// The VNet's address space.
    pub vnet_prefixes: Vec<Ipv4Net>,
    /// Address ranges of peered VNets (next hop VNetPeering, every subnet).
    pub peerings: Vec<Ipv4Net>,
    /// Gateway routes (every subnet), dropped by `disable_bgp_route_propagation`.
    pub gateway: Vec<GatewayRoute>,
    /// Service endpoint prefixes of this subnet (VirtualNetworkServiceEndpoint).
    pub service_endpoints: Vec<Ipv4Net>,
    /// The private endpoints of the VNet (InterfaceEndpoint /32s, every subnet).
    pub private_endpoints: Vec<EndpointRoute>,
    /// The user-defined routes of the subnet's route table.
    pub udrs: Vec<Route>,
    /// `disableBgpRoutePropagation` of the subnet's route table.
    pub disable_bgp_route_propagation: bool,
}

/// Prefixes Azure drops by default (next hop `None`).
pub const NONE_PREFIXES: [&str; 4] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
];

/// RFC1918 space: what an app sends into its VNet when Route All is off (seed,
/// "Application routing").
pub const RFC1918: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

fn default_route() -> Ipv4Net {
    "0.0.0.0/0".parse().expect("constant")
}

/// Rank on a tie (AZURE-FACTS §2.3): UDR > BGP > System.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    System,
    Bgp,
    User,
}

struct Candidate {
    route: EffectiveRoute,
    rank: Rank,
    /// A private endpoint's /32: `Some(invalidated by a UDR)`. It takes no
    /// part in the tie-break: it is Active unless invalidated, and then
    /// beats anything else at its /32.
    endpoint: Option<bool>,
}

/// Every candidate route of a subnet with its State, sorted by prefix length
/// (longest first), address, then source (Default, VirtualNetworkGateway, User).
pub fn effective_routes(inputs: &RouteInputs) -> Vec<EffectiveRoute> {
    let mut c: Vec<Candidate> = Vec::new();
    let system = |prefix: Ipv4Net, t: NextHopType, ips: Vec<Ipv4Addr>| Candidate {
        route: EffectiveRoute {
            source: RouteSource::Default,
            state: RouteState::Active,
            prefix: prefix.trunc(),
            next_hop_type: t,
            next_hop_ips: ips,
            name: None,
        },
        rank: Rank::System,
        endpoint: None,
    };
    for p in &inputs.vnet_prefixes {
        c.push(system(*p, NextHopType::VnetLocal, vec![]));
    }
    c.push(system(default_route(), NextHopType::Internet, vec![]));
    // "The None routes vanish once a 0.0.0.0/0 UDR is added" (AZURE-FACTS §2.4).
    let udr_default = inputs
        .udrs
        .iter()
        .any(|r| r.address_prefix.prefix_len() == 0);
    if !udr_default {
        for none in NONE_PREFIXES
            .iter()
            .map(|p| p.parse::<Ipv4Net>().expect("constant"))
        {
            // A VNet range equal to or containing a None prefix removes it
            // (the range's VnetLocal route covers it).
            if !inputs.vnet_prefixes.iter().any(|r| r.contains(&none)) {
                c.push(system(none, NextHopType::None, vec![]));
            }
        }
    }
    for p in &inputs.peerings {
        c.push(system(*p, NextHopType::VNetPeering, vec![]));
    }
    for p in &inputs.service_endpoints {
        c.push(system(
            *p,
            NextHopType::VirtualNetworkServiceEndpoint,
            vec![],
        ));
    }
    if !inputs.disable_bgp_route_propagation {
        for g in &inputs.gateway {
            let mut cand = system(
                g.prefix,
                NextHopType::VirtualNetworkGateway,
                g.next_hop_ips.clone(),
            );
            if g.bgp {
                cand.route.source = RouteSource::VirtualNetworkGateway;
                cand.rank = Rank::Bgp;
            }
            c.push(cand);
        }
    }
    // An optional route (a peering's range, a local network gateway's
    // prefix) equal to a `None` prefix replaces it, as a VNet range does: a
    // site-to-site VPN to 192.168.0.0/16 carries traffic.
    let optional: Vec<Ipv4Net> = c
        .iter()
        .filter(|x| {
            matches!(
                x.route.next_hop_type,
                NextHopType::VNetPeering | NextHopType::VirtualNetworkGateway
            )
        })
        .map(|x| x.route.prefix)
        .collect();
    c.retain(|x| {
        !(x.route.next_hop_type == NextHopType::None
            && x.route.source == RouteSource::Default
            && optional.contains(&x.route.prefix))
    });
    for r in &inputs.udrs {
        c.push(Candidate {
            route: EffectiveRoute {
                source: RouteSource::User,
                state: RouteState::Active,
                prefix: r.address_prefix.trunc(),
                next_hop_type: r.next_hop_type,
                next_hop_ips: r.next_hop_ip.into_iter().collect(),
                name: Some(r.name.clone()),
            },
            rank: Rank::User,
            endpoint: None,
        });
    }
    for e in &inputs.private_endpoints {
        let mut cand = system(
            Ipv4Net::from(e.address),
            NextHopType::InterfaceEndpoint,
            vec![],
        );
        cand.endpoint = Some(e.route_tables_apply && udr_invalidates(inputs, e.address));
        c.push(cand);
    }
    // The exception: system routes of the VNet, peerings and service
    // endpoints beat BGP routes inside them, even more specific ones.
    let covering: Vec<Ipv4Net> = c
        .iter()
        .filter(|x| {
            x.rank == Rank::System
                && matches!(
                    x.route.next_hop_type,
                    NextHopType::VnetLocal
                        | NextHopType::VNetPeering
                        | NextHopType::VirtualNetworkServiceEndpoint
                )
        })
        .map(|x| x.route.prefix)
        .collect();
    let mut excluded = vec![false; c.len()];
    for (i, x) in c.iter().enumerate() {
        if x.rank == Rank::Bgp && covering.iter().any(|p| p.contains(&x.route.prefix)) {
            excluded[i] = true;
        }
    }
    // One winner per prefix: highest rank, first written among equals; a
    // private endpoint's /32 wins its prefix unless a UDR invalidated it.
    for i in 0..c.len() {
        if let Some(invalidated) = c[i].endpoint {
            c[i].route.state = if invalidated {
                RouteState::Invalid
            } else {
                RouteState::Active
            };
            continue;
        }
        let endpoint_holds = c
            .iter()
            .any(|y| y.endpoint == Some(false) && y.route.prefix == c[i].route.prefix);
        let winner = !excluded[i]
            && !endpoint_holds
            && !c.iter().enumerate().any(|(j, y)| {
                j != i
                    && !excluded[j]
                    && y.endpoint.is_none()
                    && y.route.prefix == c[i].route.prefix
                    && (y.rank > c[i].rank || (y.rank == c[i].rank && j < i))
            });
        c[i].route.state = if winner {
            RouteState::Active
        } else {
            RouteState::Invalid
        };
    }
    let mut out: Vec<EffectiveRoute> = c.into_iter().map(|x| x.route).collect();
    out.sort_by(|a, b| {
        b.prefix
            .prefix_len()
            .cmp(&a.prefix.prefix_len())
            .then(a.prefix.cmp(&b.prefix))
            .then(a.source.cmp(&b.source))
    });
    out
}

/// Does a UDR invalidate a private endpoint's /32 at `address`? One whose
/// prefix holds the address and is at least as long as the VNet range
/// holding it (AZURE-FACTS §2.5: "a user-defined routes default route
/// (0.0.0.0/0) doesn't invalidate private endpoint routes").
fn udr_invalidates(inputs: &RouteInputs, address: Ipv4Addr) -> bool {
    let range = inputs
        .vnet_prefixes
        .iter()
        .filter(|p| p.contains(&address))
        .map(|p| p.prefix_len())
        .max()
        .unwrap_or(0);
    inputs.udrs.iter().any(|r| {
        r.address_prefix.contains(&address)
            && r.address_prefix.prefix_len() >= range
            && r.address_prefix.prefix_len() > 0
    })
}

/// The system routes of every subnet of `vnet` (no route table, no peering).
pub fn system_routes(vnet: &VirtualNetwork) -> Vec<EffectiveRoute> {
    effective_routes(&RouteInputs {
        vnet_prefixes: vnet.address_prefixes.clone(),
        ..Default::default()
    })
}

/// The route longest-prefix matching picks among the Active ones.
pub fn lookup(routes: &[EffectiveRoute], dst: Ipv4Addr) -> Option<&EffectiveRoute> {
    routes
        .iter()
        .filter(|r| r.is_active() && r.prefix.contains(&dst))
        .max_by_key(|r| r.prefix.prefix_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceId;

    fn vnet(prefixes: &[&str]) -> VirtualNetwork {
        VirtualNetwork {
            id: ResourceId::new("s", "rg", "Microsoft.Network", "virtualNetworks", "v"),
            name: "v".into(),
            location: "westeurope".into(),
            address_prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
            ipv6_prefixes: vec![],
            subnets: vec![],
            dns_servers: vec![],
            peerings: vec![],
        }
    }

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn udr(name: &str, prefix: &str, t: NextHopType, ip: Option<&str>) -> Route {
        Route {
            name: name.into(),
            address_prefix: n(prefix),
            next_hop_type: t,
            next_hop_ip: ip.map(|i| i.parse().unwrap()),
        }
    }

    /// `(source, state, prefix, next hop, ip, name)` rows, in output order.
    type Row = (
        RouteSource,
        RouteState,
        &'static str,
        NextHopType,
        Option<&'static str>,
        Option<&'static str>,
    );

    type OwnedRow = (
        RouteSource,
        RouteState,
        String,
        NextHopType,
        Option<String>,
        Option<String>,
    );

    fn rows(r: &[EffectiveRoute]) -> Vec<OwnedRow> {
        r.iter()
            .map(|x| {
                (
                    x.source,
                    x.state,
                    x.prefix.to_string(),
                    x.next_hop_type,
                    x.next_hop_ips.first().map(ToString::to_string),
                    x.name.clone(),
                )
            })
            .collect()
    }

    fn sorted(mut want: Vec<Row>) -> Vec<OwnedRow> {
        want.sort_by(|a, b| {
            let (pa, pb) = (n(a.2), n(b.2));
            pb.prefix_len()
                .cmp(&pa.prefix_len())
                .then(pa.cmp(&pb))
                .then(a.0.cmp(&b.0))
        });
        want.into_iter()
            .map(|(s, st, p, t, ip, name)| {
                (
                    s,
                    st,
                    p.to_string(),
                    t,
                    ip.map(Into::into),
                    name.map(Into::into),
                )
            })
            .collect()
    }

    /// AZURE-FACTS §2.4: VNet1 10.0.0.0/16 peered with VNet2 (10.1/16,
    /// 10.2/16), a VPN gateway with on-premises 10.10/16 (a local network
    /// gateway prefix: source Default, as the doc's row 8), an NVA at
    /// 10.0.100.4, a Storage service endpoint on Subnet1.
    fn doc_inputs(subnet1: bool) -> RouteInputs {
        use NextHopType as H;
        let nva = Some("10.0.100.4");
        RouteInputs {
            vnet_prefixes: vec![n("10.0.0.0/16")],
            peerings: vec![n("10.1.0.0/16"), n("10.2.0.0/16")],
            gateway: vec![GatewayRoute {
                prefix: n("10.10.0.0/16"),
                next_hop_ips: vec!["10.0.255.254".parse().unwrap()],
                bgp: false,
            }],
            // A stand-in for the Storage service tag's prefixes.
            service_endpoints: if subnet1 {
                vec![n("20.60.0.0/16")]
            } else {
                vec![]
            },
            udrs: if subnet1 {
                vec![
                    udr("Within-VNet1", "10.0.0.0/16", H::VirtualAppliance, nva),
                    udr("Within-Subnet1", "10.0.0.0/24", H::VnetLocal, None),
                    udr("ToVNet2-1-Drop", "10.1.0.0/16", H::None, None),
                    udr("ToVNet2-2-Drop", "10.2.0.0/16", H::None, None),
                    udr("To-On-Prem", "10.10.0.0/16", H::VirtualAppliance, nva),
                    udr("Default-NVA", "0.0.0.0/0", H::VirtualAppliance, nva),
                ]
            } else {
                vec![]
            },
            private_endpoints: vec![],
            disable_bgp_route_propagation: false,
        }
    }

    #[test]
    fn doc_example_subnet1_every_row_and_state() {
        use NextHopType::*;
        use RouteSource::{Default as D, User as U};
        use RouteState::{Active as A, Invalid as I};
        let nva = Some("10.0.100.4");
        let got = rows(&effective_routes(&doc_inputs(true)));
        let want = sorted(vec![
            (D, I, "10.0.0.0/16", VnetLocal, Option::None, Option::None),
            (
                U,
                A,
                "10.0.0.0/16",
                VirtualAppliance,
                nva,
                Some("Within-VNet1"),
            ),
            (
                U,
                A,
                "10.0.0.0/24",
                VnetLocal,
                Option::None,
                Some("Within-Subnet1"),
            ),
            (D, I, "10.1.0.0/16", VNetPeering, Option::None, Option::None),
            (D, I, "10.2.0.0/16", VNetPeering, Option::None, Option::None),
            (
                U,
                A,
                "10.1.0.0/16",
                None,
                Option::None,
                Some("ToVNet2-1-Drop"),
            ),
            (
                U,
                A,
                "10.2.0.0/16",
                None,
                Option::None,
                Some("ToVNet2-2-Drop"),
            ),
            (
                D,
                I,
                "10.10.0.0/16",
                VirtualNetworkGateway,
                Some("10.0.255.254"),
                Option::None,
            ),
            (
                U,
                A,
                "10.10.0.0/16",
                VirtualAppliance,
                nva,
                Some("To-On-Prem"),
            ),
            (
                D,
                A,
                "20.60.0.0/16",
                VirtualNetworkServiceEndpoint,
                Option::None,
                Option::None,
            ),
            (D, I, "0.0.0.0/0", Internet, Option::None, Option::None),
            (
                U,
                A,
                "0.0.0.0/0",
                VirtualAppliance,
                nva,
                Some("Default-NVA"),
            ),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn doc_example_subnet2_all_active() {
        use NextHopType::*;
        use RouteSource::Default as D;
        use RouteState::Active as A;
        let got = rows(&effective_routes(&doc_inputs(false)));
        // The doc's Subnet2 list leaves out 172.16.0.0/12 None; Azure's rule
        // (§2.1) keeps it, like the three other None prefixes.
        let want = sorted(vec![
            (D, A, "10.0.0.0/16", VnetLocal, Option::None, Option::None),
            (D, A, "10.1.0.0/16", VNetPeering, Option::None, Option::None),
            (D, A, "10.2.0.0/16", VNetPeering, Option::None, Option::None),
            (
                D,
                A,
                "10.10.0.0/16",
                VirtualNetworkGateway,
                Some("10.0.255.254"),
                Option::None,
            ),
            (D, A, "0.0.0.0/0", Internet, Option::None, Option::None),
            (D, A, "10.0.0.0/8", None, Option::None, Option::None),
            (D, A, "100.64.0.0/10", None, Option::None, Option::None),
            (D, A, "192.168.0.0/16", None, Option::None, Option::None),
            (D, A, "172.16.0.0/12", None, Option::None, Option::None),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn bgp_ties_exception_and_propagation() {
        let bgp = |p: &str| GatewayRoute {
            prefix: n(p),
            next_hop_ips: vec!["10.0.255.4".parse().unwrap()],
            bgp: true,
        };
        let mut inputs = RouteInputs {
            vnet_prefixes: vec![n("10.0.0.0/16")],
            peerings: vec![n("10.1.0.0/16")],
            gateway: vec![
                bgp("10.0.1.0/24"),
                bgp("10.1.5.0/24"),
                bgp("10.20.0.0/16"),
                bgp("0.0.0.0/0"),
            ],
            ..Default::default()
        };
        let r = effective_routes(&inputs);
        let state = |p: &str, src: RouteSource| {
            r.iter()
                .find(|x| x.prefix == n(p) && x.source == src)
                .map(|x| x.state)
        };
        // More specific BGP routes inside the VNet or a peering lose.
        assert_eq!(
            state("10.0.1.0/24", RouteSource::VirtualNetworkGateway),
            Some(RouteState::Invalid)
        );
        assert_eq!(
            state("10.1.5.0/24", RouteSource::VirtualNetworkGateway),
            Some(RouteState::Invalid)
        );
        // Elsewhere BGP beats System on a tie and is Active on its own.
        assert_eq!(
            state("10.20.0.0/16", RouteSource::VirtualNetworkGateway),
            Some(RouteState::Active)
        );
        assert_eq!(
            state("0.0.0.0/0", RouteSource::VirtualNetworkGateway),
            Some(RouteState::Active)
        );
        assert_eq!(
            state("0.0.0.0/0", RouteSource::Default),
            Some(RouteState::Invalid)
        );
        assert_eq!(
            lookup(&r, "10.0.1.9".parse().unwrap())
                .unwrap()
                .next_hop_type,
            NextHopType::VnetLocal
        );
        // A UDR beats BGP on a tie.
        inputs.udrs = vec![udr("u", "10.20.0.0/16", NextHopType::None, None)];
        let r = effective_routes(&inputs);
        assert_eq!(
            lookup(&r, "10.20.0.1".parse().unwrap()).unwrap().source,
            RouteSource::User
        );
        // disableBgpRoutePropagation removes gateway routes.
        inputs.disable_bgp_route_propagation = true;
        let r = effective_routes(&inputs);
        assert!(r
            .iter()
            .all(|x| x.next_hop_type != NextHopType::VirtualNetworkGateway));
        assert_eq!(
            lookup(&r, "8.8.8.8".parse().unwrap())
                .unwrap()
                .next_hop_type,
            NextHopType::Internet
        );
    }

    /// A local network gateway's 192.168.0.0/16 (the quickstart
    /// site-to-site-vpn-create) replaces the `None` route of that prefix.
    #[test]
    fn a_gateway_prefix_equal_to_a_none_prefix_replaces_it() {
        let r = effective_routes(&RouteInputs {
            vnet_prefixes: vec![n("10.3.0.0/16")],
            gateway: vec![GatewayRoute {
                prefix: n("192.168.0.0/16"),
                next_hop_ips: vec!["10.3.200.6".parse().unwrap()],
                bgp: false,
            }],
            ..Default::default()
        });
        let hop = lookup(&r, "192.168.1.10".parse().unwrap()).unwrap();
        assert_eq!(hop.next_hop_type, NextHopType::VirtualNetworkGateway);
        assert!(!r
            .iter()
            .any(|x| x.prefix == n("192.168.0.0/16") && x.next_hop_type == NextHopType::None));
    }

    /// The doc's worked example with the on-premises prefix learned over BGP
    /// instead of a local network gateway: the row's source becomes
    /// VirtualNetworkGateway; Subnet1's UDR still wins the tie (UDR > BGP),
    /// and in Subnet2 it is Active.
    #[test]
    fn doc_example_with_the_gateway_route_learned_over_bgp() {
        for (subnet1, state) in [(true, RouteState::Invalid), (false, RouteState::Active)] {
            let mut inputs = doc_inputs(subnet1);
            inputs.gateway[0].bgp = true;
            let r = effective_routes(&inputs);
            let row = r
                .iter()
                .find(|x| {
                    x.prefix == n("10.10.0.0/16")
                        && x.next_hop_type == NextHopType::VirtualNetworkGateway
                })
                .unwrap();
            assert_eq!(
                (row.source, row.state),
                (RouteSource::VirtualNetworkGateway, state)
            );
        }
    }

    #[test]
    fn system_routes_of_a_plain_vnet() {
        let r = system_routes(&vnet(&["10.0.0.0/16"]));
        let find = |p: &str| r.iter().find(|x| x.prefix == n(p)).map(|x| x.next_hop_type);
        assert_eq!(find("10.0.0.0/16"), Some(NextHopType::VnetLocal));
        assert_eq!(find("10.0.0.0/8"), Some(NextHopType::None));
        assert_eq!(find("0.0.0.0/0"), Some(NextHopType::Internet));
        assert_eq!(r[0].prefix.prefix_len(), 16);
        assert!(r.iter().all(|x| x.is_active()));
    }

    #[test]
    fn vnet_range_covering_a_none_prefix_removes_it() {
        let r = system_routes(&vnet(&["10.0.0.0/8"]));
        assert!(!r
            .iter()
            .any(|x| x.next_hop_type == NextHopType::None && x.prefix == n("10.0.0.0/8")));
        assert!(r
            .iter()
            .any(|x| x.next_hop_type == NextHopType::VnetLocal && x.prefix == n("10.0.0.0/8")));
    }
}
