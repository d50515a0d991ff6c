//! IPv4 routes of a namespace, in every table but `local` (255).
//!
//! Subnet tables, per-sandbox app-routing tables and the main table of the
//! emulated VNet (docs/datapath.md): VnetLocal is `throw`, next hop None is
//! `blackhole`, the 169.254 next hops are `via ... onlink`. Connected routes
//! (`proto kernel`) belong to the kernel and are left alone, and so do the
//! routes a lab's BGP speaker installs (`proto bird`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use super::links::Link;
use super::nl::{self, NsConn};
use super::ReconcileReport;
use crate::plan::{RouteKind, RoutePlan};

const TABLE_LOCAL: u32 = 255;

/// The plan's view of a kernel route, or `None` when the route is something
/// no plan can express (multipath, prohibit, ...) and so must go.
fn parse(msg: &RouteMessage, names: &BTreeMap<u32, String>) -> Option<RoutePlan> {
    let h = &msg.header;
    let mut table = u32::from(h.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut gateway = None;
    let mut oif = None;
    let mut multipath = false;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(*ip),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::MultiPath(_) => multipath = true,
            _ => {}
        }
    }
    let destination = Ipv4Net::new(dst, h.destination_prefix_length).ok()?;
    if multipath || h.source_prefix_length != 0 || h.tos != 0 {
        return None;
    }
    let kind = match h.kind {
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Throw => RouteKind::Throw,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Unicast => {
            let ifname = names.get(&oif?)?.clone();
            match gateway {
                Some(gateway) => RouteKind::Via {
                    gateway,
                    ifname,
                    onlink: h.flags.contains(RouteFlags::Onlink),
                },
                None => RouteKind::Dev { ifname },
            }
        }
        _ => return None,
    };
    Some(RoutePlan {
        table,
        destination,
        kind,
    })
}

fn table_of(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table))
}

fn build(r: &RoutePlan, links: &BTreeMap<String, Link>, ns: &str) -> Result<RouteMessage> {
    let dst = r.destination.trunc();
    let b = RouteMessageBuilder::<Ipv4Addr>::new()
        .table_id(r.table)
        .destination_prefix(dst.addr(), dst.prefix_len());
    let index = |ifname: &str| {
        links.get(ifname).map(|l| l.index).with_context(|| {
            format!(
                "route {} names link {ifname} missing in {ns}",
                r.destination
            )
        })
    };
    Ok(match &r.kind {
        RouteKind::Dev { ifname } => b
            .output_interface(index(ifname)?)
            .scope(RouteScope::Link)
            .build(),
        RouteKind::Via {
            gateway,
            ifname,
            onlink,
        } => {
            let b = b.output_interface(index(ifname)?).gateway(*gateway);
            if *onlink { b.onlink() } else { b }.build()
        }
        RouteKind::Blackhole => b.kind(RouteType::BlackHole).build(),
        RouteKind::Throw => b.kind(RouteType::Throw).build(),
        RouteKind::Unreachable => b.kind(RouteType::Unreachable).build(),
    })
}

/// Makes the namespace's IPv4 routes (all tables but local, `proto kernel`
/// excepted) exactly `want`: deletes extra ones first, then adds missing.
pub(crate) async fn reconcile(
    conn: &NsConn,
    links: &BTreeMap<String, Link>,
    want: &[RoutePlan],
    report: &mut ReconcileReport,
) -> Result<()> {
    let names: BTreeMap<u32, String> = links.values().map(|l| (l.index, l.name.clone())).collect();
    // Normalise destinations as the kernel stores them (host bits cleared).
    let want: BTreeSet<RoutePlan> = want
        .iter()
        .map(|r| RoutePlan {
            destination: r.destination.trunc(),
            ..r.clone()
        })
        .collect();
    // A non-strict dump returns every table.
    let msgs = nl::collect(
        conn.handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute(),
    )
    .await
    .with_context(|| format!("listing routes in {}", conn.name))?;

    let mut have: BTreeSet<RoutePlan> = BTreeSet::new();
    for msg in msgs {
        if msg.header.address_family != AddressFamily::Inet
            || msg.header.protocol == RouteProtocol::Kernel
            // A BGP speaker's routes belong to it (docs/datapath.md, "Gateways").
            || msg.header.protocol == RouteProtocol::Bird
            || table_of(&msg) == TABLE_LOCAL
        {
            continue;
        }
        let parsed = parse(&msg, &names);
        if let Some(r) = &parsed {
            if want.contains(r) && have.insert(r.clone()) {
                continue;
            }
        }
        let what = parsed.map_or_else(|| format!("{:?}", msg.header), |r| format!("{r:?}"));
        tracing::debug!(netns = %conn.name, route = %what, "deleting route not in the plan");
        conn.handle
            .route()
            .del(msg)
            .execute()
            .await
            .map_err(nl::nl_err)
            .with_context(|| format!("deleting route {what} in {}", conn.name))?;
        report.routes_deleted += 1;
        report.kernel_writes += 1;
    }
    for r in want.difference(&have) {
        let msg = build(r, links, &conn.name)?;
        conn.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(nl::nl_err)
            .with_context(|| format!("adding route {r:?} in {}", conn.name))?;
        report.routes_added += 1;
        report.kernel_writes += 1;
    }
    Ok(())
}
