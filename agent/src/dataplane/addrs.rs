//! IPv4 addresses of a namespace: add missing, delete extra.
//!
//! Gateway addresses (169.254.x.1, a subnet's `.1`) and owned public
//! addresses live on `lo`; NIC addresses on veths (docs/datapath.md).
//! `127.0.0.1/8` on `lo` is the kernel's and is never touched; IPv6 is ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::AddressFamily;

use super::links::Link;
use super::nl::{self, NsConn};
use super::ReconcileReport;
use crate::plan::AddressPlan;

fn loopback() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 1), 8).expect("valid prefix")
}

async fn dump(
    conn: &NsConn,
    names: &BTreeMap<u32, String>,
) -> Result<Vec<(AddressPlan, AddressMessage)>> {
    let msgs = nl::collect(conn.handle.address().get().execute())
        .await
        .with_context(|| format!("listing addresses in {}", conn.name))?;
    let mut out = Vec::new();
    for msg in msgs {
        if msg.header.family != AddressFamily::Inet {
            continue;
        }
        let ip = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
            _ => None,
        });
        let ip = ip.or_else(|| {
            msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            })
        });
        let (Some(ip), Some(ifname)) = (ip, names.get(&msg.header.index)) else {
            continue;
        };
        let Ok(address) = Ipv4Net::new(ip, msg.header.prefix_len) else {
            continue;
        };
        if ifname == "lo" && address == loopback() {
            continue;
        }
        out.push((
            AddressPlan {
                ifname: ifname.clone(),
                address,
            },
            msg,
        ));
    }
    Ok(out)
}

/// Makes the namespace's IPv4 addresses exactly `want` (plus 127.0.0.1/8).
pub(crate) async fn reconcile(
    conn: &NsConn,
    links: &BTreeMap<String, Link>,
    want: &[AddressPlan],
    report: &mut ReconcileReport,
) -> Result<()> {
    let names: BTreeMap<u32, String> = links.values().map(|l| (l.index, l.name.clone())).collect();
    let want: BTreeSet<&AddressPlan> = want.iter().collect();

    let mut have: BTreeSet<AddressPlan> = BTreeSet::new();
    let mut deleted = false;
    for (addr, msg) in dump(conn, &names).await? {
        if want.contains(&addr) {
            have.insert(addr);
            continue;
        }
        let have = addr;
        conn.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(nl::nl_err)
            .with_context(|| {
                format!(
                    "deleting {} from {} in {}",
                    have.address, have.ifname, conn.name
                )
            })?;
        report.addresses_deleted += 1;
        report.kernel_writes += 1;
        deleted = true;
    }
    // Deleting a primary address can take its secondaries with it: look again.
    if deleted {
        have = dump(conn, &names)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect();
    }
    for a in want {
        if have.contains(a) {
            continue;
        }
        let link = links.get(&a.ifname).with_context(|| {
            format!(
                "address {} names link {} missing in {}",
                a.address, a.ifname, conn.name
            )
        })?;
        conn.handle
            .address()
            .add(
                link.index,
                IpAddr::V4(a.address.addr()),
                a.address.prefix_len(),
            )
            .execute()
            .await
            .map_err(nl::nl_err)
            .with_context(|| format!("adding {} to {} in {}", a.address, a.ifname, conn.name))?;
        report.addresses_added += 1;
        report.kernel_writes += 1;
    }
    Ok(())
}
