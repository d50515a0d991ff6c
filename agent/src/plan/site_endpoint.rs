//! Private endpoints to apps (`Microsoft.Web/sites`, group `sites`,
//! docs/datapath.md "Private endpoints"): a separate inbound path from the
//! endpoint's VNet fabric into the front end of the app's stamp, as Azure's
//! private endpoints reach an app through its front ends. The endpoint's
//! address on 80 and 443 is DNATed to the stamp's inbound address, where the
//! front end serves it: every instance in turn, HTTPS with the lab CA, and
//! no access restriction ("Access restrictions does not apply to traffic
//! coming through a private endpoint", seed). The front end knows the flow
//! by the mark its accepted socket inherits from the link
//! (`tcp_fwmark_accept`), keeps the client's private address in
//! `X-Forwarded-For`, and its replies go back by the link they came in on.
//! The worker's vNICs stay outbound only: this path never touches them.

use std::net::Ipv4Addr;

use super::builder::{default_route, host, Builder, NsExt};
use super::layout::{Layout, StampL, WorkerL, RULE_PRIORITY};
use super::names;
use super::nft::{self, Batch, ChainType};
use super::private_endpoint::approved_endpoints;
use super::services::FABRIC_SERVICE_GW;
use super::types::{RouteKind, RulePlan};
use crate::model::{Inventory, LabState, VirtualNetwork};
use serde_json::json;

/// Mark (= routing table) of a stamp's j-th endpoint link: the front end's
/// accepted socket inherits it, so its replies (SYN-ACK included) go back by
/// the link the flow came in on, and it knows the caller came through a
/// private endpoint.
pub const SITE_ENDPOINT_MARK_BASE: u32 = 0x300;
/// The stamp's j-th endpoint link holds `.1 + j` on `lo`: the fabric's next
/// hop for the endpoint's /32 (the stamp answers ARP for it).
pub const SITE_LINK_ADDR_BASE: Ipv4Addr = Ipv4Addr::new(169, 254, 65, 0);
/// The ports an app endpoint passes: the front end's HTTP and HTTPS.
pub const SITE_ENDPOINT_PORTS: [u16; 2] = [80, 443];

/// One Approved private endpoint to an app whose stamp has a front end.
#[derive(Debug, Clone)]
pub(crate) struct SiteEndpointL {
    /// The endpoint's VNet fabric.
    pub fabric: usize,
    /// The endpoint's private address.
    pub address: Ipv4Addr,
    /// The stamp (index) of the target app's plan.
    pub stamp: usize,
    /// This endpoint's index among the stamp's endpoint links.
    pub j: u32,
}

/// The Approved endpoints to apps, in inventory order.
pub(crate) fn layout(
    inv: &Inventory,
    state: &LabState,
    vnets: &[VirtualNetwork],
    workers: &[WorkerL],
    stamps: &[StampL],
) -> Vec<SiteEndpointL> {
    let mut out: Vec<SiteEndpointL> = Vec::new();
    for e in approved_endpoints(inv, state, vnets) {
        if !e
            .target
            .full_type()
            .eq_ignore_ascii_case("Microsoft.Web/sites")
        {
            continue;
        }
        let Some(stamp) = workers
            .iter()
            .find(|w| w.sandboxes.iter().any(|sb| &sb.site.id == e.target))
            .map(|w| w.stamp)
            .filter(|si| stamps[*si].inbound.is_some())
        else {
            continue;
        };
        let j = out.iter().filter(|e| e.stamp == stamp).count() as u32;
        out.push(SiteEndpointL {
            fabric: e.fabric,
            address: e.address,
            stamp,
            j,
        });
    }
    out
}

fn mark(e: &SiteEndpointL) -> u32 {
    SITE_ENDPOINT_MARK_BASE + e.j
}

fn local(e: &SiteEndpointL) -> Ipv4Addr {
    super::layout::add(SITE_LINK_ADDR_BASE, 1 + e.j)
}

/// (stamp side, fabric side) link names.
fn links(l: &Layout, e: &SiteEndpointL) -> (String, String) {
    let st = &l.stamps[e.stamp].netns;
    let peer = format!("{}/{}", l.fabrics[e.fabric].netns, e.address);
    (names::link('f', &peer, st), names::link('p', st, &peer))
}

/// The marks of stamp `si`'s endpoint links: what the front end treats as
/// private endpoint callers.
pub(crate) fn stamp_marks(l: &Layout, si: usize) -> Vec<u32> {
    l.site_endpoints
        .iter()
        .filter(|e| e.stamp == si)
        .map(mark)
        .collect()
}

/// The kernel route of a private endpoint's /32 to an app in fabric `fi`,
/// if it is one.
pub(crate) fn route(l: &Layout, fi: usize, address: Ipv4Addr) -> Option<RouteKind> {
    let e = l
        .site_endpoints
        .iter()
        .find(|e| e.fabric == fi && e.address == address)?;
    Some(RouteKind::Via {
        gateway: local(e),
        ifname: links(l, e).1,
        onlink: true,
    })
}

pub(crate) fn build(l: &Layout, b: &mut Builder) {
    for e in &l.site_endpoints {
        let (st, fab) = (&l.stamps[e.stamp].netns, &l.fabrics[e.fabric].netns);
        let (near, far) = links(l, e);
        b.veth(st, &near, fab, &far);
        b.get(fab).addr("lo", host(FABRIC_SERVICE_GW));
        let ns = b.get(st);
        ns.addr("lo", host(local(e)));
        ns.rules.push(RulePlan {
            priority: RULE_PRIORITY - 10,
            fwmark: Some((mark(e), u32::MAX)),
            iif: None,
            table: mark(e),
        });
        ns.via(mark(e), default_route(), FABRIC_SERVICE_GW, &near);
    }
}

/// The stamp's nft for its endpoint links (added to its batch): mark the
/// packets by link (the accepted socket inherits it), DNAT the endpoint's
/// address on 80 and 443 to the inbound address, where the front end
/// listens, and let nothing else in from these links.
pub(crate) fn stamp_rules(l: &Layout, si: usize, batch: &mut Batch) {
    let mine: Vec<&SiteEndpointL> = l.site_endpoints.iter().filter(|e| e.stamp == si).collect();
    let Some(inbound) = l.stamps[si].inbound else {
        return;
    };
    if mine.is_empty() {
        return;
    }
    batch.chain("pe-pre", ChainType::Filter, "prerouting", -150);
    batch.chain("pe-dnat", ChainType::Nat, "prerouting", -100);
    batch.chain("pe-input", ChainType::Filter, "input", 0);
    let near: Vec<String> = mine.iter().map(|e| links(l, e).0).collect();
    let marks: Vec<(String, u32)> = near
        .iter()
        .cloned()
        .zip(mine.iter().map(|e| mark(e)))
        .collect();
    batch.rule("pe-pre", vec![nft::mark_by_iifname(&marks)]);
    for (e, link) in mine.iter().zip(&near) {
        batch.rule(
            "pe-dnat",
            vec![
                nft::iifname(link),
                nft::ip_daddr(e.address),
                nft::dport_in("tcp", &SITE_ENDPOINT_PORTS),
                json!({"dnat": {"family": "ip", "addr": inbound.to_string()}}),
            ],
        );
    }
    let counters: Vec<(String, String)> = near
        .iter()
        .map(|k| (k.clone(), format!("in-{k}")))
        .collect();
    for (_, name) in &counters {
        batch.counter(name);
    }
    let to_front_end: Vec<(String, Ipv4Addr)> = near.iter().map(|k| (k.clone(), inbound)).collect();
    batch.rule(
        "pe-input",
        vec![
            nft::iifname_daddr_in(&to_front_end),
            nft::dport_in("tcp", &SITE_ENDPOINT_PORTS),
            nft::counter_by_ifname("iifname", &counters),
            json!({"accept": null}),
        ],
    );
    batch.rule("pe-input", vec![nft::iifname_in(&near), nft::drop()]);
    batch.rule("forward", vec![nft::iifname_in(&near), nft::drop()]);
}

/// `WEBSITES_PORT`, else `PORT`, else 80.
pub(crate) fn listening_port(settings: &[(String, String)]) -> u16 {
    ["WEBSITES_PORT", "PORT"]
        .iter()
        .find_map(|k| {
            settings
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .and_then(|(_, v)| v.trim().parse().ok())
        })
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::listening_port;

    #[test]
    fn the_listening_port_is_websites_port_then_port_then_80() {
        let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(listening_port(&s(&[])), 80);
        assert_eq!(listening_port(&s(&[("PORT", "3000")])), 3000);
        assert_eq!(
            listening_port(&s(&[("PORT", "3000"), ("websites_port", "8080")])),
            8080
        );
        assert_eq!(listening_port(&s(&[("WEBSITES_PORT", "x")])), 80);
    }
}
