//! Effective routes of a subnet: Azure's system routes (AZURE-FACTS §2.1),
//! with the VNet-range adjustments of the `None` prefixes. UDRs, peering and
//! gateways come later; the selection is already longest prefix first.

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::model::VirtualNetwork;

/// Azure's next hop types (API names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum NextHopType {
    /// Inside the virtual network: delivered to the NIC that holds the address.
    VnetLocal,
    /// Out to the internet (from App Service integration subnets: back to the stamp).
    Internet,
    /// Dropped.
    None,
    VirtualAppliance,
    VirtualNetworkGateway,
    VNetPeering,
    VirtualNetworkServiceEndpoint,
}

/// Where a route comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RouteSource {
    Default,
    User,
}

/// One active route of a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveRoute {
    pub source: RouteSource,
    pub prefix: Ipv4Net,
    pub next_hop_type: NextHopType,
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

/// The system routes of every subnet of `vnet`, sorted by prefix length
/// (longest first), then address. A VNet range equal to or containing a
/// `None` prefix removes that `None` route (the range's VnetLocal route
/// covers it).
pub fn system_routes(vnet: &VirtualNetwork) -> Vec<EffectiveRoute> {
    let mut routes: Vec<EffectiveRoute> = vnet
        .address_prefixes
        .iter()
        .map(|p| EffectiveRoute {
            source: RouteSource::Default,
            prefix: p.trunc(),
            next_hop_type: NextHopType::VnetLocal,
        })
        .collect();
    routes.push(EffectiveRoute {
        source: RouteSource::Default,
        prefix: "0.0.0.0/0".parse().expect("constant"),
        next_hop_type: NextHopType::Internet,
    });
    for none in NONE_PREFIXES
        .iter()
        .map(|p| p.parse::<Ipv4Net>().expect("constant"))
    {
        if !vnet.address_prefixes.iter().any(|r| r.contains(&none)) {
            routes.push(EffectiveRoute {
                source: RouteSource::Default,
                prefix: none,
                next_hop_type: NextHopType::None,
            });
        }
    }
    routes.sort_by(|a, b| {
        b.prefix
            .prefix_len()
            .cmp(&a.prefix.prefix_len())
            .then(a.prefix.cmp(&b.prefix))
    });
    routes
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
        }
    }

    #[test]
    fn doc_example_subnet2() {
        let r = system_routes(&vnet(&["10.0.0.0/16"]));
        let find = |p: &str| {
            r.iter()
                .find(|x| x.prefix == p.parse::<Ipv4Net>().unwrap())
                .map(|x| x.next_hop_type)
        };
        assert_eq!(find("10.0.0.0/16"), Some(NextHopType::VnetLocal));
        assert_eq!(find("10.0.0.0/8"), Some(NextHopType::None));
        assert_eq!(find("0.0.0.0/0"), Some(NextHopType::Internet));
        assert_eq!(r[0].prefix.prefix_len(), 16);
    }

    #[test]
    fn vnet_range_covering_a_none_prefix_removes_it() {
        let r = system_routes(&vnet(&["10.0.0.0/8"]));
        assert!(!r
            .iter()
            .any(|x| x.next_hop_type == NextHopType::None && x.prefix.to_string() == "10.0.0.0/8"));
        assert!(r
            .iter()
            .any(|x| x.next_hop_type == NextHopType::VnetLocal
                && x.prefix.to_string() == "10.0.0.0/8"));
    }
}
