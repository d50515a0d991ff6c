//! Name resolution in the lab's namespaces (docs/datapath.md, "DNS"):
//! Azure-provided DNS at 168.63.129.16 on `lo` of every fabric (AZURE-FACTS
//! §6: "Microsoft-owned virtual IP, the same in all regions"), the lab's
//! public DNS on `lo` of the internet, and which servers each namespace's
//! programs use. Seed, "Azure DNS private zones": *After your app integrates
//! with your virtual network, it uses the same DNS server that your virtual
//! network is configured with. If no custom DNS is specified, it uses Azure
//! default DNS and any private zones linked to the virtual network.*

use std::net::Ipv4Addr;

use super::builder::{host, Builder, NsExt};
use super::layout::{FabricL, Layout, SandboxL};
use super::types::{DnsServerPlan, DnsView, ResolverConfig};
use crate::model::AZURE_PLATFORM_IP;

/// Azure-provided DNS: 168.63.129.16, in every VNet.
pub const AZURE_DNS: Ipv4Addr = AZURE_PLATFORM_IP;

/// The lab's public DNS, on `lo` of the internet namespace: what internet
/// hosts and apps without integration resolve with. A fixed address outside
/// the default public pool (TEST-NET-1, RFC 5737), so no allocation can take it.
pub const PUBLIC_DNS: Ipv4Addr = crate::model::LAB_PUBLIC_DNS;

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    b.get(&l.inet).addr("lo", host(PUBLIC_DNS));
    b.dns_server(DnsServerPlan {
        netns: l.inet.clone(),
        address: PUBLIC_DNS,
        view: DnsView::Public,
    });
    for f in &l.fabrics {
        b.get(&f.netns).addr("lo", host(AZURE_DNS));
        b.dns_server(DnsServerPlan {
            netns: f.netns.clone(),
            address: AZURE_DNS,
            view: DnsView::VirtualNetwork {
                vnet_id: f.vnet.id.to_string(),
            },
        });
    }
    for w in &l.workers {
        for sb in &w.sandboxes {
            let fabric = sb.vnic.map(|i| &l.fabrics[w.vnics[i].fabric]);
            b.resolver(&sb.netns, sandbox_resolver(sb, fabric));
        }
    }
    for vm in &l.vms {
        let primary = vm.nics.iter().find(|n| n.primary).or(vm.nics.first());
        if let Some(n) = primary {
            b.resolver(&vm.netns, vnet_resolver(&l.fabrics[n.fabric]));
        }
    }
    for h in &l.hosts {
        b.resolver(&h.netns, public_resolver());
    }
}

/// An app's DNS (AZURE-FACTS §6, "Which DNS the app uses"): its
/// WEBSITE_DNS_SERVER (+ WEBSITE_DNS_ALT_SERVER) if set; else, when it is
/// integrated, its VNet's (custom servers or Azure-provided DNS); else the
/// platform's resolver of public names.
fn sandbox_resolver(sb: &SandboxL, fabric: Option<&FabricL>) -> ResolverConfig {
    if !sb.site.dns_servers.is_empty() {
        return ResolverConfig {
            servers: sb.site.dns_servers.clone(),
            source: format!(
                "app settings WEBSITE_DNS_SERVER/WEBSITE_DNS_ALT_SERVER of site {}",
                sb.site.name
            ),
        };
    }
    match fabric {
        Some(f) => vnet_resolver(f),
        None => public_resolver(),
    }
}

/// A VNet's DNS: its `dhcpOptions.dnsServers`, else Azure-provided DNS.
fn vnet_resolver(f: &FabricL) -> ResolverConfig {
    if f.vnet.dns_servers.is_empty() {
        ResolverConfig {
            servers: vec![AZURE_DNS],
            source: format!(
                "Azure-provided DNS of virtual network {} (private zones linked to it, then public names)",
                f.vnet.name
            ),
        }
    } else {
        ResolverConfig {
            servers: f.vnet.dns_servers.clone(),
            source: format!(
                "custom DNS servers of virtual network {} (dhcpOptions.dnsServers)",
                f.vnet.name
            ),
        }
    }
}

fn public_resolver() -> ResolverConfig {
    ResolverConfig {
        servers: vec![PUBLIC_DNS],
        source: "the lab's public DNS".into(),
    }
}

impl ResolverConfig {
    /// The resolv.conf text: one `nameserver` per server in order (glibc reads
    /// the first three), and App Service's Linux defaults of one second per
    /// try and five tries (AZURE-FACTS §5.1, `dnsConfiguration` defaults).
    pub fn resolv_conf(&self) -> String {
        let mut text = format!("# Written by vnet-agent: {}.\n", self.source);
        for s in &self.servers {
            text.push_str(&format!("nameserver {s}\n"));
        }
        text.push_str("options timeout:1 attempts:5\n");
        text
    }
}
