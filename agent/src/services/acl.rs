//! The firewall of an emulated service (notes/service-api.md, "Rule"):
//! a private endpoint connection is always admitted; `publicNetworkAccess:
//! Disabled` refuses public AND service-endpoint traffic; otherwise
//! `defaultAction: Allow` admits all; `Deny` admits only `ipRules` (public
//! sources) and `virtualNetworkRules` (service-endpoint sources from that
//! subnet). Pure.

use std::net::Ipv4Addr;

use super::config::Access;
use super::config::{AccessPath, Ingress};

/// Where one connection came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: AccessPath,
    pub source: Ipv4Addr,
    /// The VNet (service and private endpoints).
    pub virtual_network: Option<String>,
    /// The source's subnet (lower-cased id), when it came from a VNet.
    pub subnet: Option<String>,
}

impl Origin {
    /// A connection with `source`, on the ingress `ingress` (None = internet).
    pub fn of(source: Ipv4Addr, ingress: Option<&Ingress>) -> Origin {
        match ingress {
            None => Origin {
                path: AccessPath::Public,
                source,
                virtual_network: None,
                subnet: None,
            },
            Some(i) => Origin {
                path: i.path,
                source,
                virtual_network: Some(i.virtual_network.clone()),
                subnet: i
                    .subnets
                    .iter()
                    .find(|(_, p)| p.contains(&source))
                    .map(|(id, _)| id.to_ascii_lowercase()),
            },
        }
    }
}

/// Is this connection admitted?
pub fn admits(access: &Access, origin: &Origin) -> bool {
    match origin.path {
        AccessPath::PrivateEndpoint => true,
        _ if !access.public_network_access => false,
        _ if access.default_allow => true,
        AccessPath::Public => access.ip_rules.iter().any(|r| r.contains(&origin.source)),
        AccessPath::ServiceEndpoint => origin
            .subnet
            .as_ref()
            .is_some_and(|s| access.virtual_network_rules.iter().any(|r| r == s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBNET: &str = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/v/subnets/a";

    fn access(enabled: bool, allow: bool) -> Access {
        Access {
            public_network_access: enabled,
            default_allow: allow,
            ip_rules: vec!["198.18.0.0/30".parse().unwrap()],
            virtual_network_rules: vec![SUBNET.into()],
        }
    }

    fn ingress(path: AccessPath) -> Ingress {
        Ingress {
            mark: 4096,
            path,
            virtual_network: "/v".into(),
            subnets: vec![
                (SUBNET.to_uppercase(), "10.0.1.0/24".parse().unwrap()),
                ("other".into(), "10.0.2.0/24".parse().unwrap()),
            ],
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn azure_rule() {
        let public_in = Origin::of(ip("198.18.0.2"), None);
        let public_out = Origin::of(ip("198.18.0.9"), None);
        let se_in = Origin::of(ip("10.0.1.4"), Some(&ingress(AccessPath::ServiceEndpoint)));
        let se_out = Origin::of(ip("10.0.2.4"), Some(&ingress(AccessPath::ServiceEndpoint)));
        let pe = Origin::of(ip("10.0.2.4"), Some(&ingress(AccessPath::PrivateEndpoint)));
        assert_eq!(se_in.subnet.as_deref(), Some(SUBNET));
        // Allow: everything.
        let a = access(true, true);
        assert!([&public_in, &public_out, &se_in, &se_out, &pe]
            .iter()
            .all(|o| admits(&a, o)));
        // Deny: ipRules for public sources, virtualNetworkRules for service endpoints.
        let d = access(true, false);
        assert!(admits(&d, &public_in) && !admits(&d, &public_out));
        assert!(admits(&d, &se_in) && !admits(&d, &se_out));
        // Service-endpoint traffic is judged by VNet rules only, never by ipRules.
        let mut d2 = d.clone();
        d2.ip_rules = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(!admits(&d2, &se_out));
        // Disabled: only private endpoints.
        let off = access(false, true);
        assert!(!admits(&off, &public_in) && !admits(&off, &se_in) && admits(&off, &pe));
    }
}
