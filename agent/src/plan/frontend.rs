//! The App Service front end of each stamp (docs/datapath.md "Front end"):
//! the public, inbound side of an app. Seed, "Network routing": integration
//! "affects only outbound traffic from your app. To control inbound traffic
//! to your app, use the access restrictions feature or private endpoints".
//!
//! Each stamp holds an inbound address (`inboundIpAddress` of its sites,
//! what `NAME.azurewebsites.net` resolves to) on `lo`; a supervised
//! `front-end` process in the stamp listens on it (HTTP 80, HTTPS 443 with
//! the lab CA), decides access restrictions, and forwards each connection to
//! one of the site's instances: to the worker's `pub0` address on port
//! `FRONT_END_PORT_BASE + k`, which the worker DNATs to sandbox `k`'s
//! listener. "Routes don't apply to replies from inbound app requests": the
//! worker marks those flows and routes their replies by the main table
//! (back over `pub0`), never by the sandbox's Route All table.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::builder::Builder;
use super::layout::{Layout, WorkerL, STAMP_GW};
use super::nft::{self, Batch, ChainType};
use super::site_endpoint::listening_port;
use super::types::{RulePlan, ServiceHostPlan};
use crate::frontend::config::{Backend, FrontEndConfig, FrontEndSite};
use crate::model::access_restriction::{policy, AccessPolicy};
use crate::model::{LabState, ResourceId, ServiceTag};

/// Sandbox `k` of a worker is reached from the front end on this port + k.
pub const FRONT_END_PORT_BASE: u16 = 10000;
/// Mark of front-end flows in a worker (conntrack mark, then packet mark of
/// their replies), and the priority of the rule that sends those replies by
/// the main table: before the sandboxes' `iif` rules.
pub const FRONT_END_MARK: u32 = 0x400;
const FRONT_END_RULE_PRIORITY: u32 = 90;
const MAIN_TABLE: u32 = 254;

/// The sandboxes of `w` with their front-end port and listener.
fn mapped(w: &WorkerL) -> impl Iterator<Item = (u16, Ipv4Addr, u16)> + '_ {
    w.sandboxes.iter().map(|sb| {
        (
            FRONT_END_PORT_BASE + sb.k as u16,
            sb.ip,
            listening_port(&sb.site.app_settings),
        )
    })
}

/// The worker's side: `fe-pre` marks front-end flows and their replies,
/// `fe-dnat` maps each port to its sandbox's listener.
pub(crate) fn worker_rules(w: &WorkerL, batch: &mut Batch) {
    let ports: Vec<(u16, Ipv4Addr, u16)> = mapped(w).collect();
    if ports.is_empty() {
        return;
    }
    batch.chain("fe-pre", ChainType::Filter, "prerouting", -150);
    batch.chain("fe-dnat", ChainType::Nat, "prerouting", -100);
    let list: Vec<u16> = ports.iter().map(|(p, _, _)| *p).collect();
    batch.counter("front-end-in");
    batch.rule(
        "fe-pre",
        vec![
            nft::iifname("pub0"),
            nft::ip_daddr(w.pub0),
            nft::dport_in("tcp", &list),
            nft::named_counter("front-end-in"),
            nft::ct_mark_set(FRONT_END_MARK),
        ],
    );
    batch.rule("fe-pre", vec![nft::ct_reply(), nft::mark_from_ct_mark()]);
    for (port, ip, listen) in ports {
        batch.rule(
            "fe-dnat",
            vec![
                nft::iifname("pub0"),
                nft::ip_daddr(w.pub0),
                nft::tcp_dport(port),
                nft::dnat_port(ip, listen),
            ],
        );
    }
}

/// Prefixes a service tag holds in the lab, for access restrictions.
fn tag_prefixes(l: &Layout, tag: &ServiceTag) -> Vec<Ipv4Net> {
    match tag {
        ServiceTag::Internet => vec![Ipv4Net::default()],
        ServiceTag::AzureLoadBalancer => vec![Ipv4Net::from(crate::model::AZURE_PLATFORM_IP)],
        ServiceTag::VirtualNetwork => Vec::new(),
        ServiceTag::Service(_) => l
            .service_addrs
            .iter()
            .filter(|a| tag.covers(a.kind, &a.location))
            .map(|a| Ipv4Net::from(a.ip))
            .collect(),
    }
}

pub(crate) fn build(l: &Layout, state: &LabState, b: &mut Builder) {
    for w in &l.workers {
        if mapped(w).next().is_some() {
            b.get(&w.netns).rules.push(RulePlan {
                priority: FRONT_END_RULE_PRIORITY,
                fwmark: Some((FRONT_END_MARK, u32::MAX)),
                iif: None,
                table: MAIN_TABLE,
            });
        }
    }
    let subnet_prefix = |id: &ResourceId| l.inv.subnet(id).map(|(_, s, _)| s.address_prefix);
    for (si, s) in l.stamps.iter().enumerate() {
        let Some(inbound) = s.inbound else { continue };
        let mut sites: Vec<FrontEndSite> = Vec::new();
        for w in l.workers.iter().filter(|w| w.stamp == si) {
            for (sb, (port, _, _)) in w.sandboxes.iter().zip(mapped(w)) {
                let name = sb.site.name.to_ascii_lowercase();
                let backend = Backend {
                    instance: w.instance,
                    address: w.pub0,
                    port,
                };
                match sites.iter_mut().find(|x| x.name == name) {
                    Some(site) => site.backends.push(backend),
                    None => {
                        // Validated before commit; a policy that fails now
                        // (a subnet gone since) closes the public path.
                        let access = state
                            .get(&sb.site.id)
                            .and_then(|res| {
                                policy(res, &subnet_prefix, &|t| tag_prefixes(l, t)).ok()
                            })
                            .unwrap_or_else(closed);
                        sites.push(FrontEndSite {
                            name,
                            backends: vec![backend],
                            access,
                        });
                    }
                }
            }
        }
        sites.sort_by(|a, b| a.name.cmp(&b.name));
        let config = FrontEndConfig {
            location: s.location.clone(),
            inbound,
            source: STAMP_GW,
            sites,
            private_endpoint_marks: super::site_endpoint::stamp_marks(l, si),
            service_endpoint_marks: s
                .fabrics
                .iter()
                .map(|(fi, mark)| (*mark, l.fabrics[*fi].vnet.id.key()))
                .collect(),
            ca: None,
        };
        b.service_host(ServiceHostPlan {
            key: format!("{}/front-end", s.netns),
            netns: s.netns.clone(),
            command: "front-end".into(),
            config: serde_json::to_value(config).expect("serialisable"),
        });
    }
}

fn closed() -> AccessPolicy {
    AccessPolicy {
        public_network_access: false,
        main: Default::default(),
        scm: Default::default(),
    }
}
