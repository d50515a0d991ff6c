//! Private endpoints to apps (`Microsoft.Web/sites`, group `sites`,
//! docs/datapath.md "Private endpoint to an app"): a separate inbound path
//! from the endpoint's VNet fabric into one worker of the target app, where
//! the endpoint's address and port 80 are DNATed to a sandbox's listener.
//! The client's private source is kept. The worker's vNICs stay outbound
//! only: this link is not a vNIC, and it passes nothing but the DNATed port.

use std::net::Ipv4Addr;

use super::builder::{default_route, host, Builder, NsExt};
use super::layout::{Layout, WorkerL, RULE_PRIORITY};
use super::names;
use super::nft::{self, Batch};
use super::private_endpoint::approved_endpoints;
use super::services::FABRIC_SERVICE_GW;
use super::types::{RouteKind, RulePlan};
use crate::model::{Inventory, LabState, VirtualNetwork};
use serde_json::json;

/// Mark (= routing table) of a worker's j-th endpoint link: set on the
/// flow's conntrack entry as it comes in, so the sandbox's replies (which
/// carry no trace of the VNet) go back by the link they came in on.
pub const SITE_ENDPOINT_MARK_BASE: u32 = 0x300;
/// The worker's j-th endpoint link holds `.1 + j` on `lo`: the fabric's next
/// hop for the endpoint's /32 (the worker answers ARP for it).
pub const SITE_LINK_ADDR_BASE: Ipv4Addr = Ipv4Addr::new(169, 254, 65, 0);
/// The only port an app endpoint passes: App Service's front end serves
/// HTTP 80 to the app's listener (TLS on 443 would need the front end's
/// certificate and is not emulated).
pub const SITE_ENDPOINT_PORT: u16 = 80;

/// One Approved private endpoint to an app with a running sandbox.
#[derive(Debug, Clone)]
pub(crate) struct SiteEndpointL {
    /// The endpoint's VNet fabric.
    pub fabric: usize,
    /// The endpoint's private address.
    pub address: Ipv4Addr,
    /// The worker (index) of the target's first instance.
    pub worker: usize,
    /// This endpoint's index among the worker's endpoint links.
    pub j: u32,
    /// The sandbox's address and the app's listening port (`WEBSITES_PORT`,
    /// else `PORT`, else 80, as App Service's front end).
    pub sandbox: Ipv4Addr,
    pub port: u16,
}

/// The Approved endpoints to apps, in inventory order.
pub(crate) fn layout(
    inv: &Inventory,
    state: &LabState,
    vnets: &[VirtualNetwork],
    workers: &[WorkerL],
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
        let Some((worker, sb)) = workers.iter().enumerate().find_map(|(wi, w)| {
            let sb = w.sandboxes.iter().find(|sb| &sb.site.id == e.target)?;
            Some((wi, sb))
        }) else {
            continue;
        };
        let j = out.iter().filter(|e| e.worker == worker).count() as u32;
        out.push(SiteEndpointL {
            fabric: e.fabric,
            address: e.address,
            worker,
            j,
            sandbox: sb.ip,
            port: listening_port(&sb.site.app_settings),
        });
    }
    out
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

fn mark(e: &SiteEndpointL) -> u32 {
    SITE_ENDPOINT_MARK_BASE + e.j
}

fn local(e: &SiteEndpointL) -> Ipv4Addr {
    super::layout::add(SITE_LINK_ADDR_BASE, 1 + e.j)
}

/// (worker side, fabric side) link names.
fn links(l: &Layout, e: &SiteEndpointL) -> (String, String) {
    let wk = &l.workers[e.worker].netns;
    let peer = format!("{}/{}", l.fabrics[e.fabric].netns, e.address);
    (names::link('f', &peer, wk), names::link('p', wk, &peer))
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
        let (wk, fab) = (&l.workers[e.worker].netns, &l.fabrics[e.fabric].netns);
        let (near, far) = links(l, e);
        b.veth(wk, &near, fab, &far);
        b.get(fab).addr("lo", host(FABRIC_SERVICE_GW));
        let ns = b.get(wk);
        ns.addr("lo", host(local(e)));
        // Before the sandboxes' `iif` rules: a marked reply goes back to
        // the VNet, not to the sandbox's own route.
        ns.rules.push(RulePlan {
            priority: RULE_PRIORITY - 10,
            fwmark: Some((mark(e), u32::MAX)),
            iif: None,
            table: mark(e),
        });
        ns.via(mark(e), default_route(), FABRIC_SERVICE_GW, &near);
    }
}

/// The worker's nft for its endpoint links (added to its batch): mark the
/// flow by link, restore the mark on the sandbox's replies, DNAT the
/// endpoint's address and port 80 to the sandbox, drop anything else
/// coming in on these links.
pub(crate) fn worker_rules(l: &Layout, wi: usize, batch: &mut Batch) {
    let mine: Vec<&SiteEndpointL> = l.site_endpoints.iter().filter(|e| e.worker == wi).collect();
    if mine.is_empty() {
        return;
    }
    batch.chain("pe-pre", super::nft::ChainType::Filter, "prerouting", -150);
    batch.chain("pe-dnat", super::nft::ChainType::Nat, "prerouting", -100);
    let near: Vec<String> = mine.iter().map(|e| links(l, e).0).collect();
    let marks: Vec<(String, u32)> = near
        .iter()
        .cloned()
        .zip(mine.iter().map(|e| mark(e)))
        .collect();
    batch.rule("pe-pre", vec![nft::ct_mark_by_iifname(&marks)]);
    // Only replies take the mark back: the flow's own packets must be
    // routed to the sandbox, not back to the VNet.
    batch.rule("pe-pre", vec![nft::ct_reply(), nft::mark_from_ct_mark()]);
    for (e, link) in mine.iter().zip(&near) {
        batch.rule(
            "pe-dnat",
            vec![
                nft::iifname(link),
                nft::ip_daddr(e.address),
                nft::tcp_dport(SITE_ENDPOINT_PORT),
                json!({"dnat": {"family": "ip", "addr": e.sandbox.to_string(), "port": e.port}}),
            ],
        );
    }
    // Only the DNATed flow may cross; the rest (another port, the link's
    // own address) goes nowhere.
    let to_sandbox: Vec<(String, Ipv4Addr)> = near
        .iter()
        .cloned()
        .zip(mine.iter().map(|e| e.sandbox))
        .collect();
    let counters: Vec<(String, String)> = near
        .iter()
        .map(|k| (k.clone(), format!("in-{k}")))
        .collect();
    for (_, name) in &counters {
        batch.counter(name);
    }
    batch.rule(
        "forward",
        vec![
            nft::iifname_daddr_in(&to_sandbox),
            nft::counter_by_ifname("iifname", &counters),
            json!({"accept": null}),
        ],
    );
    batch.rule("forward", vec![nft::iifname_in(&near), nft::drop()]);
    batch.rule("input", vec![nft::iifname_in(&near), nft::drop()]);
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
