//! Typed view of `Lab.Emulator/internetHosts`: a public test host (no Azure twin).

use std::net::Ipv4Addr;

use super::props::{invalid, Props};
use super::{AzureError, GenericResource, ResourceId};

/// A host on the lab's internet with one public address, e.g. to check which
/// source address an app's outbound call arrives with.
#[derive(Debug, Clone, PartialEq)]
pub struct InternetHost {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `properties.ipAddress`; allocated from the lab's public pool when absent.
    pub ip_address: Option<Ipv4Addr>,
    /// `properties.dnsName`: the host's name in the lab's public DNS
    /// (lower-cased, no trailing dot); [`InternetHost::dns_name`] gives the
    /// default `<name>.internet.lab` when absent.
    pub dns_name_property: Option<String>,
}

/// The lab's public domain of internet hosts without a `dnsName`.
pub const INTERNET_HOST_DOMAIN: &str = "internet.lab";

impl InternetHost {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let ip_address = p
            .opt_str("properties.ipAddress")?
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv4Addr>().map_err(|_| {
                    invalid(
                        res,
                        "properties.ipAddress",
                        &format!("'{s}' is not an IPv4 address"),
                    )
                })
            })
            .transpose()?;
        let dns_name_property = p
            .opt_str("properties.dnsName")?
            .map(|s| super::canonical_name(&s))
            .filter(|s| !s.is_empty());
        Ok(InternetHost {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            ip_address,
            dns_name_property,
        })
    }

    /// The host's name in the lab's public DNS: `properties.dnsName`, else
    /// `<name>.internet.lab` (lower-cased).
    pub fn dns_name(&self) -> String {
        self.dns_name_property
            .clone()
            .unwrap_or_else(|| format!("{}.{INTERNET_HOST_DOMAIN}", self.name.to_ascii_lowercase()))
    }
}

/// The lab's public DNS server (TEST-NET-1, outside the default public pool
/// so no allocation takes it; docs/datapath.md "DNS").
pub const LAB_PUBLIC_DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

/// Why `a` cannot be an internet host's own address, or `None` when it can:
/// a host stands for a real public endpoint (a partner API at
/// `203.0.113.77`, `20.50.1.1`), so any public unicast IPv4 address is
/// accepted, inside the lab's pool or not, except the spaces that are never
/// on the internet and the addresses the lab itself answers on.
pub fn internet_host_address_problem(a: Ipv4Addr) -> Option<&'static str> {
    let o0 = a.octets()[0];
    let in_net = |net: [u8; 4], len: u32| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
    };
    Some(if a.is_private() {
        "a private (RFC 1918) address; model a host in a virtual network as a VM instead"
    } else if in_net([100, 64, 0, 0], 10) {
        "in the shared address space 100.64.0.0/10 (RFC 6598), never routed on the internet"
    } else if a.is_loopback() {
        "a loopback address (127.0.0.0/8)"
    } else if a.is_link_local() {
        "a link-local address (169.254.0.0/16)"
    } else if a.is_multicast() {
        "a multicast address (224.0.0.0/4)"
    } else if a.is_broadcast() || o0 >= 240 {
        "in the reserved space 240.0.0.0/4 (or the broadcast address)"
    } else if o0 == 0 {
        "in 0.0.0.0/8 (\"this network\")"
    } else if a == super::AZURE_PLATFORM_IP {
        "Azure's platform address 168.63.129.16 (Azure DNS, health probes), which every VNet answers itself"
    } else if a == LAB_PUBLIC_DNS {
        "the lab's public DNS server"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internet_hosts_take_any_public_unicast_address() {
        for ok in [
            "203.0.113.77",
            "20.50.1.1",
            "52.239.1.1",
            "8.8.8.8",
            "198.18.7.7",
            "1.1.1.1",
        ] {
            let a: Ipv4Addr = ok.parse().unwrap();
            assert_eq!(internet_host_address_problem(a), None, "{ok}");
        }
        for (bad, why) in [
            ("10.1.2.3", "RFC 1918"),
            ("172.16.0.9", "RFC 1918"),
            ("172.31.255.1", "RFC 1918"),
            ("192.168.1.1", "RFC 1918"),
            ("100.64.0.1", "100.64.0.0/10"),
            ("100.127.255.254", "100.64.0.0/10"),
            ("127.0.0.1", "loopback"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.251", "multicast"),
            ("239.1.1.1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("0.1.2.3", "0.0.0.0/8"),
            ("168.63.129.16", "platform"),
            ("192.0.2.53", "public DNS"),
        ] {
            let a: Ipv4Addr = bad.parse().unwrap();
            let problem =
                internet_host_address_problem(a).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(problem.contains(why), "{bad}: {problem}");
        }
        // Just outside the refused ranges.
        for edge in [
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "223.255.255.255",
        ] {
            assert_eq!(
                internet_host_address_problem(edge.parse().unwrap()),
                None,
                "{edge}"
            );
        }
    }
}
