//! Watching a gateway namespace's routes: the BGP speaker installs what it
//! learned in the main table (`proto bird`); the kernel tells every socket
//! subscribed to `RTMGRP_IPV4_ROUTE` in that namespace when it does, so the
//! agent follows announcements and withdrawals without polling.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use futures::channel::mpsc::UnboundedReceiver;
use ipnet::Ipv4Net;
use rtnetlink::packet_core::NetlinkMessage;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteProtocol};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, RouteMessageBuilder};

use super::netns;
use super::nl;
use crate::model::LearnedRoute;

const RTMGRP_IPV4_ROUTE: u32 = 64;
const MAIN: u32 = 254;

/// A netlink connection inside `netns`, subscribed to its IPv4 route changes.
pub struct RouteWatch {
    pub handle: Handle,
    pub events: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

pub async fn open(name: &str) -> Result<RouteWatch> {
    let rt = tokio::runtime::Handle::current();
    let (conn, handle, events) = netns::in_netns_async(name, move || {
        let _guard = rt.enter();
        let (mut conn, handle, events) =
            rtnetlink::new_connection().context("opening netlink socket")?;
        conn.socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, RTMGRP_IPV4_ROUTE))
            .context("subscribing to route changes")?;
        Ok((conn, handle, events))
    })
    .await
    .with_context(|| format!("route watch in {name}"))?;
    tokio::spawn(conn);
    Ok(RouteWatch { handle, events })
}

/// The routes a BGP speaker installed in the main table, sorted.
pub async fn bird_routes(handle: &Handle) -> Result<Vec<LearnedRoute>> {
    let msgs = nl::collect(
        handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute(),
    )
    .await?;
    let mut out = Vec::new();
    for m in msgs {
        if m.header.address_family != AddressFamily::Inet
            || m.header.protocol != RouteProtocol::Bird
        {
            continue;
        }
        let mut table = u32::from(m.header.table);
        let mut dst = Ipv4Addr::UNSPECIFIED;
        let mut gw = Ipv4Addr::UNSPECIFIED;
        for a in &m.attributes {
            match a {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
                RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gw = *ip,
                _ => {}
            }
        }
        if table != MAIN {
            continue;
        }
        if let Ok(prefix) = Ipv4Net::new(dst, m.header.destination_prefix_length) {
            out.push(LearnedRoute {
                prefix,
                next_hop: gw,
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
