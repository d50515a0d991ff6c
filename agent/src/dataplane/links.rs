//! Links: veth pairs born in their namespaces, and links set up.
//!
//! Every NIC, uplink and peering of the emulated VNet is a veth
//! (docs/datapath.md). Both ends are created by one RTM_NEWLINK sent on the
//! `a` end's namespace socket, with the peer's message carrying the `b`
//! namespace's fd, so the peer is born where it belongs (no create-then-move).
//!
//! Every end carries IPv4 GSO/GRO packets of up to [`BIG_TCP_MAX_SIZE`]
//! ("BIG TCP", kernel >= 6.3) where the kernel has it: a path of the lab
//! crosses up to three veths and two forwarding namespaces (conntrack,
//! routing, nft per packet), and per-packet costs dominate the price of a
//! hop; a packet four times larger pays them once for four times the bytes.

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
    /// `IFLA_GSO_IPV4_MAX_SIZE` (and GRO's): `None` on kernels before 6.3,
    /// which have no IPv4 BIG TCP and do not report it.
    pub gso_ipv4_max_size: Option<u32>,
    pub gro_ipv4_max_size: Option<u32>,
    /// `IFLA_TSO_MAX_SIZE`: the largest GSO packet the device takes.
    pub tso_max_size: Option<u32>,
}

/// Largest IPv4 GSO/GRO packet on the lab's links (bytes). Measured with
/// `cargo xtask bench --datapath-only` on 2 vCPUs (both the lab's and the
/// direct pair's links set alike): 131,072 gained little over the legacy
/// 65,536; 196,608 reached the ceiling both paths share (~20 Gbit/s), and
/// larger sizes did not go beyond it. The smallest size that does.
pub const BIG_TCP_MAX_SIZE: u32 = 196_608;

impl Link {
    /// The GSO/GRO size this link should carry, when it differs from what it
    /// carries: `None` when it already matches or the kernel has no IPv4 BIG
    /// TCP (the attribute is missing from its dump).
    fn offload_change(&self) -> Option<u32> {
        if !self.is_veth {
            return None;
        }
        let current = self.gso_ipv4_max_size?;
        let wanted = BIG_TCP_MAX_SIZE.min(self.tso_max_size.unwrap_or(BIG_TCP_MAX_SIZE));
        (current != wanted || self.gro_ipv4_max_size != Some(wanted)).then_some(wanted)
    }
}

fn parse(msg: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut is_veth = false;
    let mut peer_index = None;
    let (mut gso, mut gro, mut tso) = (None, None, None);
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Link(i) => peer_index = Some(*i),
            LinkAttribute::GsoIpv4MaxSize(v) => gso = Some(*v),
            LinkAttribute::GroIpv4MaxSize(v) => gro = Some(*v),
            LinkAttribute::TsoMaxSize(v) => tso = Some(*v),
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
        gso_ipv4_max_size: gso,
        gro_ipv4_max_size: gro,
        tso_max_size: tso,
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
/// namespaces; deletes broken halves and veths no plan names. Returns the
/// link dump of every namespace where it wrote nothing, still exact, so the
/// per-namespace step does not list the same links a second time.
pub(crate) async fn reconcile_veths(
    conns: &HashMap<String, NsConn>,
    veths: &[VethPlan],
    report: &mut ReconcileReport,
) -> Result<HashMap<String, BTreeMap<String, Link>>> {
    let dumps = futures::future::try_join_all(
        conns
            .values()
            .map(|c| async move { Ok::<_, anyhow::Error>((c.name.clone(), dump(c).await?)) }),
    )
    .await?;
    let mut links: HashMap<String, BTreeMap<String, Link>> = dumps.into_iter().collect();
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
    // Only pairs whose both namespaces are being reconciled are checked (a
    // proportional apply opens only the changed ones); every planned end
    // still counts as planned, so none is deleted for being out of view.
    for v in veths
        .iter()
        .filter(|v| conns.contains_key(&v.a.netns) && conns.contains_key(&v.b.netns))
    {
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

    // The namespaces written to list their links again (new ifindexes).
    // Deleting an end also removes its peer, which is either planned (then
    // its pair was broken and is recreated: its namespace is written to) or
    // itself doomed.
    for (ns, _, _) in &doomed {
        links.remove(ns);
    }
    for v in &missing {
        links.remove(&v.a.netns);
        links.remove(&v.b.netns);
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
    Ok(links)
}

async fn create_veth(conns: &HashMap<String, NsConn>, v: &VethPlan) -> Result<()> {
    let a = &conns[&v.a.netns];
    let b = &conns[&v.b.netns];
    // Both ends are born with the lab's GSO/GRO size, so a new pair needs
    // no second write; a kernel before 6.3 ignores the attributes it does not
    // know (`set_up` then finds nothing to change either).
    let big_tcp = [
        LinkAttribute::GsoIpv4MaxSize(BIG_TCP_MAX_SIZE),
        LinkAttribute::GroIpv4MaxSize(BIG_TCP_MAX_SIZE),
    ];
    let peer = big_tcp
        .iter()
        .fold(
            LinkUnspec::new_with_name(&v.b.ifname).setns_by_fd(b.raw_fd()),
            |m, a| m.append_extra_attribute(a.clone()),
        )
        .build();
    let msg = big_tcp
        .iter()
        .fold(
            LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth),
            |m, a| m.append_extra_attribute(a.clone()),
        )
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

/// Sets every planned link of the namespace up and to the lab's GSO/GRO
/// size, where it is not: one RTM_SETLINK per link that needs anything.
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
        let offload = link.offload_change();
        if link.up && offload.is_none() {
            continue;
        }
        set_link(conn, link, !link.up, offload)
            .await
            .with_context(|| format!("setting link {name} in {}", conn.name))?;
        report.links_set_up += u64::from(!link.up);
        report.links_tuned += u64::from(offload.is_some());
        report.kernel_writes += 1;
    }
    Ok(())
}

async fn set_link(conn: &NsConn, link: &Link, up: bool, offload: Option<u32>) -> Result<()> {
    let mut msg = LinkUnspec::new_with_index(link.index);
    if up {
        msg = msg.up();
    }
    if let Some(size) = offload {
        msg = msg
            .append_extra_attribute(LinkAttribute::GsoIpv4MaxSize(size))
            .append_extra_attribute(LinkAttribute::GroIpv4MaxSize(size));
    }
    conn.handle
        .link()
        .set(msg.build())
        .execute()
        .await
        .map_err(nl::nl_err)
}

/// Gives link `ifname` of namespace `netns` the lab's GSO/GRO size, as every
/// lab link has it (the benchmark's direct veth pair uses this so both paths
/// are compared with the same link settings); returns the IPv4 GSO size in
/// effect, `None` on a kernel without IPv4 BIG TCP. `apply: false` only
/// reads it.
pub(crate) async fn offload_size(netns: &str, ifname: &str, apply: bool) -> Result<Option<u32>> {
    let conn = NsConn::open(netns).await?;
    let read = |links: BTreeMap<String, Link>| {
        links
            .get(ifname)
            .cloned()
            .with_context(|| format!("no link {ifname} in {netns}"))
    };
    let link = read(dump(&conn).await?)?;
    if !apply {
        return Ok(link.gso_ipv4_max_size);
    }
    if let Some(size) = link.offload_change() {
        set_link(&conn, &link, false, Some(size))
            .await
            .with_context(|| format!("setting the GSO size of {ifname} in {netns}"))?;
    }
    Ok(read(dump(&conn).await?)?.gso_ipv4_max_size)
}

#[cfg(test)]
mod offload_tests {
    use super::*;

    fn link(gso: Option<u32>, gro: Option<u32>, tso: Option<u32>) -> Link {
        Link {
            index: 2,
            name: "eth0".into(),
            is_veth: true,
            peer_index: Some(2),
            up: true,
            gso_ipv4_max_size: gso,
            gro_ipv4_max_size: gro,
            tso_max_size: tso,
        }
    }

    #[test]
    fn big_tcp_only_where_the_kernel_has_it() {
        // A kernel before 6.3 reports no IPv4 GSO size: nothing to write.
        assert_eq!(link(None, None, Some(524_280)).offload_change(), None);
        // A fresh veth (legacy 64 KiB) is raised; a tuned one is left alone.
        let fresh = link(Some(65_536), Some(65_536), Some(524_280));
        assert_eq!(fresh.offload_change(), Some(BIG_TCP_MAX_SIZE));
        let tuned = link(
            Some(BIG_TCP_MAX_SIZE),
            Some(BIG_TCP_MAX_SIZE),
            Some(524_280),
        );
        assert_eq!(tuned.offload_change(), None);
        // GRO alone out of step is mended too.
        let gro = link(Some(BIG_TCP_MAX_SIZE), Some(65_536), Some(524_280));
        assert_eq!(gro.offload_change(), Some(BIG_TCP_MAX_SIZE));
        // Never above what the device takes.
        let small = link(Some(65_536), Some(65_536), Some(131_072));
        assert_eq!(small.offload_change(), Some(131_072));
        // Only veths (the lab's own links).
        let lo = Link {
            is_veth: false,
            ..fresh
        };
        assert_eq!(lo.offload_change(), None);
    }
}
