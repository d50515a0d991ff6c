//! Links: veth pairs born in their namespaces, and links set up.
//!
//! Every NIC, uplink and peering of the emulated VNet is a veth
//! (docs/datapath.md). Both ends are created by one RTM_NEWLINK sent on the
//! `a` end's namespace socket, with the peer's message carrying the `b`
//! namespace's fd, so the peer is born where it belongs (no create-then-move).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result};
use futures::StreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::nl::{self, NsConn};
use super::ReconcileReport;
use crate::plan::VethPlan;

/// What the dataplane needs to know about one existing link.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub index: u32,
    pub name: String,
    pub is_veth: bool,
    /// `IFLA_LINK`: for a veth, the peer's ifindex in the peer's namespace.
    pub peer_index: Option<u32>,
    pub up: bool,
}

fn parse(msg: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut is_veth = false;
    let mut peer_index = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Link(i) => peer_index = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                is_veth = infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth)))
            }
            _ => {}
        }
    }
    Some(Link {
        index: msg.header.index,
        name: name?,
        is_veth,
        peer_index,
        up: msg.header.flags.contains(LinkFlags::Up),
    })
}

/// All links of the connection's namespace, by name.
pub(crate) async fn dump(conn: &NsConn) -> Result<BTreeMap<String, Link>> {
    let msgs = nl::collect(conn.handle.link().get().execute())
        .await
        .with_context(|| format!("listing links in {}", conn.name))?;
    Ok(msgs
        .iter()
        .filter_map(parse)
        .map(|l| (l.name.clone(), l))
        .collect())
}

/// Makes every planned veth exist as a pair with both ends in their
/// namespaces; deletes broken halves and veths no plan names.
pub(crate) async fn reconcile_veths(
    conns: &HashMap<String, NsConn>,
    veths: &[VethPlan],
    report: &mut ReconcileReport,
) -> Result<()> {
    let dumps = futures::future::try_join_all(
        conns
            .values()
            .map(|c| async move { Ok::<_, anyhow::Error>((c.name.clone(), dump(c).await?)) }),
    )
    .await?;
    let links: HashMap<String, BTreeMap<String, Link>> = dumps.into_iter().collect();
    let get = |ns: &str, ifname: &str| links.get(ns).and_then(|m| m.get(ifname));

    let planned: BTreeSet<(&str, &str)> = veths
        .iter()
        .flat_map(|v| {
            [
                (v.a.netns.as_str(), v.a.ifname.as_str()),
                (v.b.netns.as_str(), v.b.ifname.as_str()),
            ]
        })
        .collect();

    // (namespace, ifindex, ifname) to delete; then the pairs to create.
    let mut doomed: BTreeSet<(String, u32, String)> = BTreeSet::new();
    let mut missing: Vec<&VethPlan> = Vec::new();
    for v in veths {
        let a = get(&v.a.netns, &v.a.ifname);
        let b = get(&v.b.netns, &v.b.ifname);
        let paired = match (a, b) {
            (Some(a), Some(b)) => {
                a.is_veth
                    && b.is_veth
                    && a.peer_index == Some(b.index)
                    && b.peer_index == Some(a.index)
            }
            _ => false,
        };
        if paired {
            continue;
        }
        for (end, link) in [(&v.a, a), (&v.b, b)] {
            if let Some(link) = link {
                tracing::info!(netns = %end.netns, ifname = %end.ifname, "link is not the planned veth pair; recreating");
                doomed.insert((end.netns.clone(), link.index, link.name.clone()));
            }
        }
        missing.push(v);
    }
    for (ns, map) in &links {
        for link in map.values() {
            if link.is_veth && !planned.contains(&(ns.as_str(), link.name.as_str())) {
                tracing::info!(netns = %ns, ifname = %link.name, "deleting veth not in the plan");
                doomed.insert((ns.clone(), link.index, link.name.clone()));
            }
        }
    }

    for (ns, index, name) in &doomed {
        let conn = &conns[ns];
        match conn.handle.link().del(*index).execute().await {
            Ok(()) => {
                report.links_deleted += 1;
                report.kernel_writes += 1;
            }
            // Already gone with its peer.
            Err(e) if nl::errno(&e) == Some(Errno::ENODEV) => {}
            Err(e) => {
                return Err(nl::nl_err(e)).with_context(|| format!("deleting link {name} in {ns}"))
            }
        }
    }

    // Collected first: see the note in `reconcile_inner` on higher-ranked `Send`.
    let creates: Vec<_> = missing.into_iter().map(|v| create_veth(conns, v)).collect();
    let created = futures::stream::iter(creates)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for r in created {
        r?;
        report.links_created += 1;
        report.kernel_writes += 1;
    }
    Ok(())
}

async fn create_veth(conns: &HashMap<String, NsConn>, v: &VethPlan) -> Result<()> {
    let a = &conns[&v.a.netns];
    let b = &conns[&v.b.netns];
    let peer = LinkUnspec::new_with_name(&v.b.ifname)
        .setns_by_fd(b.raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(v.a.ifname.clone())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .up()
        .build();
    a.handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(nl::nl_err)
        .with_context(|| {
            format!(
                "creating veth {}/{} <-> {}/{}",
                v.a.netns, v.a.ifname, v.b.netns, v.b.ifname
            )
        })
}

/// Sets `lo` and every planned link of the namespace up, where it is not.
pub(crate) async fn set_up(
    conn: &NsConn,
    links: &BTreeMap<String, Link>,
    wanted: &BTreeSet<String>,
    report: &mut ReconcileReport,
) -> Result<()> {
    for name in wanted {
        let link = links
            .get(name)
            .with_context(|| format!("link {name} missing in {} after creation", conn.name))?;
        if link.up {
            continue;
        }
        conn.handle
            .link()
            .set(LinkUnspec::new_with_index(link.index).up().build())
            .execute()
            .await
            .map_err(nl::nl_err)
            .with_context(|| format!("setting {name} up in {}", conn.name))?;
        report.links_set_up += 1;
        report.kernel_writes += 1;
    }
    Ok(())
}
