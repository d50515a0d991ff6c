//! Per-link packet and byte counters of a lab namespace (`lab graph`'s live
//! counters), from the kernel's link statistics over netlink.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rtnetlink::packet_route::link::LinkAttribute;

use super::nl::{self, NsConn};

/// `(rx packets, rx bytes, tx packets, tx bytes)` by interface name.
pub type LinkCounters = BTreeMap<String, (u64, u64, u64, u64)>;

pub async fn read(netns: &str) -> Result<LinkCounters> {
    let conn = NsConn::open(netns).await?;
    let msgs = nl::collect(conn.handle.link().get().execute())
        .await
        .with_context(|| format!("link statistics of {netns}"))?;
    let mut out = BTreeMap::new();
    for m in msgs {
        let mut name = None;
        let mut stats = None;
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Stats64(s) => {
                    stats = Some((s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes))
                }
                _ => {}
            }
        }
        if let (Some(n), Some(s)) = (name, stats) {
            out.insert(n, s);
        }
    }
    Ok(out)
}
