//! Accumulates namespaces and links into a [`NetworkPlan`], with the sysctls
//! every namespace gets.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::types::*;

pub(crate) fn host(a: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(a, 32).expect("/32 is valid")
}

pub(crate) fn net(a: Ipv4Addr, len: u8) -> Ipv4Net {
    Ipv4Net::new(a, len).expect("prefix length checked by validation")
}

pub(crate) fn default_route() -> Ipv4Net {
    "0.0.0.0/0".parse().expect("constant")
}

/// Main routing table.
pub(crate) const MAIN: u32 = 254;

pub(crate) struct Builder {
    plan: NetworkPlan,
}

impl Builder {
    /// The lab's name.
    pub fn lab(&self) -> &str {
        &self.plan.lab
    }

    pub fn new(lab: &str) -> Self {
        Builder {
            plan: NetworkPlan {
                lab: lab.to_string(),
                ..Default::default()
            },
        }
    }

    /// A new namespace with the lab's base sysctls (rp_filter off, IPv6 off)
    /// and, for routers, forwarding on and redirects off.
    pub fn namespace(
        &mut self,
        name: &str,
        role: NamespaceRole,
        router: bool,
    ) -> &mut NamespacePlan {
        let mut sysctls = BTreeMap::new();
        for (k, v) in [
            ("net/ipv4/conf/all/rp_filter", "0"),
            ("net/ipv4/conf/default/rp_filter", "0"),
            ("net/ipv6/conf/all/disable_ipv6", "1"),
            ("net/ipv6/conf/default/disable_ipv6", "1"),
        ] {
            sysctls.insert(k.to_string(), v.to_string());
        }
        if router {
            for (k, v) in [
                ("net/ipv4/ip_forward", "1"),
                ("net/ipv4/conf/all/send_redirects", "0"),
                ("net/ipv4/conf/default/send_redirects", "0"),
            ] {
                sysctls.insert(k.to_string(), v.to_string());
            }
        }
        self.plan.namespaces.insert(
            name.to_string(),
            NamespacePlan {
                name: name.to_string(),
                role,
                sysctls,
                addresses: Vec::new(),
                routes: Vec::new(),
                rules: Vec::new(),
                nft: None,
            },
        );
        self.get(name)
    }

    pub fn get(&mut self, name: &str) -> &mut NamespacePlan {
        self.plan
            .namespaces
            .get_mut(name)
            .expect("namespace made before use")
    }

    /// A veth pair; both ends get `rp_filter=0` (the effective value is the
    /// max of `all` and the interface's own).
    pub fn veth(&mut self, a_ns: &str, a_if: &str, b_ns: &str, b_if: &str) {
        for (ns, ifname) in [(a_ns, a_if), (b_ns, b_if)] {
            self.get(ns)
                .sysctls
                .insert(format!("net/ipv4/conf/{ifname}/rp_filter"), "0".into());
        }
        self.plan.veths.push(VethPlan {
            a: VethEnd {
                netns: a_ns.to_string(),
                ifname: a_if.to_string(),
            },
            b: VethEnd {
                netns: b_ns.to_string(),
                ifname: b_if.to_string(),
            },
        });
    }

    pub fn process(&mut self, p: ProcessPlan) {
        self.plan.processes.push(p);
    }

    pub fn dns_server(&mut self, d: DnsServerPlan) {
        self.plan.dns_servers.push(d);
    }

    pub fn resolver(&mut self, netns: &str, r: ResolverConfig) {
        self.plan.resolvers.insert(netns.to_string(), r);
    }

    pub fn service_host(&mut self, p: ServiceHostPlan) {
        self.plan.services.push(p);
    }

    pub fn finish(mut self) -> NetworkPlan {
        for ns in self.plan.namespaces.values_mut() {
            ns.addresses.sort();
            ns.addresses.dedup();
            ns.routes.sort();
            ns.rules.sort();
        }
        self.plan.veths.sort();
        self.plan.processes.sort_by(|a, b| a.key.cmp(&b.key));
        self.plan.services.sort_by(|a, b| a.key.cmp(&b.key));
        self.plan
    }
}

/// Small conveniences on a namespace.
pub(crate) trait NsExt {
    fn addr(&mut self, ifname: &str, address: Ipv4Net);
    fn route(&mut self, table: u32, destination: Ipv4Net, kind: RouteKind);
    fn dev_route(&mut self, destination: Ipv4Net, ifname: &str);
    fn via(&mut self, table: u32, destination: Ipv4Net, gateway: Ipv4Addr, ifname: &str);
    fn sysctl(&mut self, key: String, value: &str);
    fn proxy_arp(&mut self, ifname: &str);
}

impl NsExt for NamespacePlan {
    fn addr(&mut self, ifname: &str, address: Ipv4Net) {
        self.addresses.push(AddressPlan {
            ifname: ifname.to_string(),
            address,
        });
    }
    fn route(&mut self, table: u32, destination: Ipv4Net, kind: RouteKind) {
        self.routes.push(RoutePlan {
            table,
            destination,
            kind,
        });
    }
    fn dev_route(&mut self, destination: Ipv4Net, ifname: &str) {
        self.route(
            MAIN,
            destination,
            RouteKind::Dev {
                ifname: ifname.to_string(),
            },
        );
    }
    /// Lab next hops are never inside a prefix of the link: always `onlink`.
    fn via(&mut self, table: u32, destination: Ipv4Net, gateway: Ipv4Addr, ifname: &str) {
        self.route(
            table,
            destination,
            RouteKind::Via {
                gateway,
                ifname: ifname.to_string(),
                onlink: true,
            },
        );
    }
    fn sysctl(&mut self, key: String, value: &str) {
        self.sysctls.insert(key, value.to_string());
    }
    fn proxy_arp(&mut self, ifname: &str) {
        self.sysctl(format!("net/ipv4/conf/{ifname}/proxy_arp"), "1");
        // The kernel answers a broadcast request for a proxied address after
        // a random wait of up to `proxy_delay` (0.8 s by default); a path
        // that crosses several proxy-ARP links (spoke, hub NVA, spoke) lost
        // its first SYNs to it.
        self.sysctl(format!("net/ipv4/neigh/{ifname}/proxy_delay"), "0");
    }
}
