//! EFFECTFUL: makes the kernel match a [`NetworkPlan`](crate::plan::NetworkPlan).
//!
//! Level-triggered, as the Azure host agents are: every apply reads what the
//! kernel holds, diffs it against the plan and writes only the differences,
//! so a reconcile of an unchanged plan writes nothing, and one after a
//! restart or a manual `ip route del` restores exactly what is missing.
//!
//! Order of an apply: delete this lab's namespaces that left the plan ->
//! create missing namespaces -> veth pairs -> per namespace, concurrently:
//! links up, sysctls, addresses, routes, rules, nftables.
//!
//! Safety: only namespaces under `/run/netns` whose names start with
//! `<lab>-` are ever opened or deleted; the namespace the agent runs in (the
//! host's) is never changed.

mod addrs;
mod applied;
pub mod capture;
pub mod conntrack;
mod libnft;
pub mod link_stats;
mod links;
mod netns;
mod nfnetlink;
mod nft;
mod nl;
pub mod probe;
pub mod progress;
pub mod route_watch;
mod routes;
mod rules;
mod sysctl;
#[cfg(test)]
mod tests;
pub mod trace;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use serde::Serialize;
use tracing::Instrument;

use crate::plan::{NamespacePlan, NetworkPlan};

pub use links::BIG_TCP_MAX_SIZE;
pub(crate) use netns::in_netns_async;
pub use netns::{check_name as check_netns_name, in_netns, netns_path};
pub use nft::read_counters;

/// `nft -j list ruleset` of a lab namespace.
pub async fn nft_list_ruleset(netns: &str) -> Result<serde_json::Value> {
    nft::list_ruleset(netns).await
}

/// How many namespaces are worked on at once (RTNL serialises the kernel side).
const CONCURRENCY: usize = 16;

/// What one [`Dataplane::reconcile`] changed in the kernel.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Every state-changing kernel operation: namespace create/delete, netlink
    /// write, sysctl write, nft batch. 0 when the kernel already matched.
    pub kernel_writes: u64,
    /// Namespaces this apply opened and compared with the plan (all of them
    /// in an audit; in a proportional apply, the changed ones).
    pub namespaces_examined: u64,
    /// Namespaces made by this apply.
    pub namespaces_created: u64,
    /// Namespaces of this lab removed because they left the plan.
    pub namespaces_deleted: u64,
    /// Veth pairs created (one NEWLINK each).
    pub links_created: u64,
    /// Links deleted (broken halves of pairs, veths no plan names).
    pub links_deleted: u64,
    /// Links set up.
    pub links_set_up: u64,
    /// Links given the lab's GSO/GRO size (`links::BIG_TCP_MAX_SIZE`).
    pub links_tuned: u64,
    /// IPv4 addresses added.
    pub addresses_added: u64,
    /// IPv4 addresses deleted.
    pub addresses_deleted: u64,
    /// IPv4 routes added.
    pub routes_added: u64,
    /// IPv4 routes deleted.
    pub routes_deleted: u64,
    /// IPv4 rules added plus deleted.
    pub rules_changed: u64,
    /// Sysctl values written.
    pub sysctls_written: u64,
    /// nft batches applied (table replaced or deleted).
    pub nft_batches: u64,
}

impl ReconcileReport {
    fn absorb(&mut self, o: &ReconcileReport) {
        self.kernel_writes += o.kernel_writes;
        self.namespaces_created += o.namespaces_created;
        self.namespaces_deleted += o.namespaces_deleted;
        self.links_created += o.links_created;
        self.links_deleted += o.links_deleted;
        self.links_set_up += o.links_set_up;
        self.links_tuned += o.links_tuned;
        self.addresses_added += o.addresses_added;
        self.addresses_deleted += o.addresses_deleted;
        self.routes_added += o.routes_added;
        self.routes_deleted += o.routes_deleted;
        self.rules_changed += o.rules_changed;
        self.sysctls_written += o.sysctls_written;
        self.nft_batches += o.nft_batches;
    }
}

/// The IPv4 GSO size of link `ifname` in namespace `netns`, after giving it
/// the lab's ([`BIG_TCP_MAX_SIZE`]) when `apply`; `None` on a kernel without
/// IPv4 BIG TCP. Blocking, for tools without a runtime: the benchmark sets
/// its direct veth pair like the lab's links, so both paths are compared with
/// the same link settings, and reports the size in effect.
pub fn link_gso_size(netns: &str, ifname: &str, apply: bool) -> Result<Option<u32>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?
        .block_on(links::offload_size(netns, ifname, apply))
}

/// What [`Dataplane::teardown`] removed, and what it could not.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeardownReport {
    /// Namespaces of the lab removed (their links go with them).
    pub namespaces_deleted: u64,
    /// One line per failure; teardown keeps going after each.
    pub errors: Vec<String>,
}

/// The kernel side of one lab: every namespace named `<lab>-*`.
pub struct Dataplane {
    lab: String,
    cache_dir: PathBuf,
    /// One apply at a time.
    lock: tokio::sync::Mutex<()>,
    /// What the running apply or teardown is doing (read without the lock).
    pub progress: std::sync::Arc<progress::Progress>,
    /// What the last applies left in the kernel, namespace by namespace: a
    /// proportional apply reads and writes only what differs from it.
    applied: std::sync::Mutex<applied::Applied>,
}

/// How much of the kernel an apply looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the namespaces whose part of the plan changed since the last
    /// apply (and those missing): what an API change costs.
    Changed,
    /// Every namespace read back and compared: the start, the periodic
    /// audit, `lab reconcile`, SIGHUP.
    Audit,
}

impl Dataplane {
    /// A dataplane for lab `lab`, keeping its nft readback cache in `cache_dir`.
    pub fn new(lab: &str, cache_dir: &Path) -> Self {
        Self {
            lab: lab.to_string(),
            cache_dir: cache_dir.to_path_buf(),
            lock: tokio::sync::Mutex::new(()),
            progress: Default::default(),
            applied: Default::default(),
        }
    }

    fn prefix(&self) -> String {
        format!("{}-", self.lab)
    }

    fn cache_path(&self) -> PathBuf {
        nft::NftCache::path(&self.cache_dir, &self.lab)
    }

    /// Refuses plans that would touch anything outside this lab.
    fn check(&self, plan: &NetworkPlan) -> Result<()> {
        netns::check_name(&self.lab).context("lab name")?;
        if plan.lab != self.lab {
            bail!(
                "plan is for lab {:?}, this dataplane runs lab {:?}",
                plan.lab,
                self.lab
            );
        }
        let prefix = self.prefix();
        for (key, ns) in &plan.namespaces {
            if key != &ns.name {
                bail!("namespace keyed {key:?} is named {:?}", ns.name);
            }
            netns::check_name(&ns.name)?;
            if !ns.name.starts_with(&prefix) || ns.name.len() == prefix.len() {
                bail!(
                    "namespace {:?} does not start with the lab prefix {prefix:?}",
                    ns.name
                );
            }
        }
        let mut ends = BTreeSet::new();
        for v in &plan.veths {
            for end in [&v.a, &v.b] {
                if !plan.namespaces.contains_key(&end.netns) {
                    bail!(
                        "veth end {}/{} is in a namespace the plan does not have",
                        end.netns,
                        end.ifname
                    );
                }
                if end.ifname.is_empty()
                    || end.ifname.len() > 15
                    || end.ifname.contains(['/', ' ', '\0'])
                {
                    bail!("invalid interface name {:?} in {}", end.ifname, end.netns);
                }
                if end.ifname == "lo" || !ends.insert((&end.netns, &end.ifname)) {
                    bail!("interface {} in {} is planned twice", end.ifname, end.netns);
                }
            }
        }
        Ok(())
    }

    /// Makes the kernel match `plan`: reads what is there, diffs, writes only
    /// the differences. A second call with the same plan writes nothing.
    pub async fn reconcile(&self, plan: &NetworkPlan, scope: Scope) -> Result<ReconcileReport> {
        let span = tracing::info_span!("reconcile", lab = %self.lab, namespaces = plan.namespaces.len(), ?scope);
        let result = self.reconcile_inner(plan, scope).instrument(span).await;
        self.progress.finish();
        result
    }

    async fn reconcile_inner(&self, plan: &NetworkPlan, scope: Scope) -> Result<ReconcileReport> {
        self.check(plan)?;
        let _one_at_a_time = self.lock.lock().await;
        let mut report = ReconcileReport::default();
        let digests = applied::Applied::of(plan);
        // The namespaces this apply opens: all of them for an audit, else
        // the changed ones and the other ends of their changed links.
        let touched: BTreeSet<String> = match scope {
            Scope::Audit => plan.namespaces.keys().cloned().collect(),
            Scope::Changed => self.applied.lock().unwrap().changed(&digests, plan),
        };
        report.namespaces_examined = touched.len() as u64;

        let t0 = std::time::Instant::now();
        // 1. Namespaces that left the plan.
        let existing = netns::list_with_prefix(&self.prefix())?;
        let gone: Vec<String> = existing
            .iter()
            .filter(|n| !plan.namespaces.contains_key(*n))
            .cloned()
            .collect();
        if !gone.is_empty() {
            let progress = self.progress.clone();
            progress.step("deleting namespaces", gone.len());
            let deleted = netns::on_thread(move || {
                let mut n = 0;
                for name in &gone {
                    tracing::info!(netns = %name, "deleting namespace not in the plan");
                    if netns::delete(name)? {
                        n += 1;
                    }
                    progress.tick();
                }
                Ok(n)
            })
            .await?;
            report.namespaces_deleted += deleted;
            report.kernel_writes += deleted;
        }

        tracing::debug!(phase = "deleted", elapsed = ?t0.elapsed(), "phase done");
        // 2. Missing namespaces, concurrently.
        let missing: Vec<String> = touched
            .iter()
            .filter(|n| !netns::is_live(n))
            .cloned()
            .collect();
        let fresh: BTreeSet<String> = missing.iter().cloned().collect();
        self.progress.step("creating namespaces", missing.len());
        let creates: Vec<_> = missing
            .into_iter()
            .map(|name| {
                let progress = self.progress.clone();
                netns::on_thread(move || {
                    let r = netns::create(&name);
                    progress.tick();
                    r
                })
            })
            .collect();
        let created = futures::stream::iter(creates)
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for r in created {
            r?;
            report.namespaces_created += 1;
            report.kernel_writes += 1;
        }

        tracing::debug!(phase = "created", elapsed = ?t0.elapsed(), "phase done");
        // One netlink connection per namespace.
        // Futures are collected before streaming them (here and below): a
        // closure inside the stream type trips the higher-ranked `Send` check
        // when the reconcile future is spawned.
        let opens: Vec<_> = touched
            .iter()
            .map(|name| async move {
                Ok::<_, anyhow::Error>((name.clone(), nl::NsConn::open(name).await?))
            })
            .collect();
        let conns: HashMap<String, nl::NsConn> = futures::stream::iter(opens)
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;

        tracing::debug!(phase = "conns", elapsed = ?t0.elapsed(), "phase done");
        // 3. Veth pairs.
        self.progress.step("links", plan.veths.len());
        let mut dumps = links::reconcile_veths(&conns, &plan.veths, &mut report)
            .instrument(tracing::info_span!("veths", count = plan.veths.len()))
            .await?;

        tracing::debug!(phase = "veths", elapsed = ?t0.elapsed(), "phase done");
        // 4. Everything inside each namespace, concurrently.
        let mut ends: HashMap<&str, BTreeSet<String>> = HashMap::new();
        for v in &plan.veths {
            for end in [&v.a, &v.b] {
                ends.entry(end.netns.as_str())
                    .or_default()
                    .insert(end.ifname.clone());
            }
        }
        let cache_path = self.cache_path();
        let cache = nft::NftCache::load(&cache_path);
        self.progress.step("configuring namespaces", touched.len());
        let progress = &self.progress;
        let work: Vec<_> = touched
            .iter()
            .map(|name| &plan.namespaces[name])
            .map(|ns| {
                let mut wanted = ends.get(ns.name.as_str()).cloned().unwrap_or_default();
                wanted.insert("lo".to_string());
                let conn = &conns[&ns.name];
                let cached = cache.namespaces.get(&ns.name);
                let fresh = fresh.contains(&ns.name);
                let dumped = dumps.remove(&ns.name);
                let span = tracing::info_span!("netns", name = %ns.name);
                async move {
                    let r = reconcile_namespace(conn, ns, &wanted, dumped, cached, fresh).await;
                    progress.tick();
                    (ns.name.clone(), r)
                }
                .instrument(span)
            })
            .collect();
        let results = futures::stream::iter(work)
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        tracing::debug!(phase = "per-namespace", elapsed = ?t0.elapsed(), "phase done");
        drop(conns);

        // Namespaces not touched keep their entries; gone ones lose them.
        let mut new_cache = nft::NftCache::default();
        for (name, entry) in &cache.namespaces {
            if plan.namespaces.contains_key(name) && !touched.contains(name) {
                new_cache.namespaces.insert(name.clone(), entry.clone());
            }
        }
        let mut errors = Vec::new();
        let mut done = Vec::new();
        for (name, r) in results {
            match r {
                Ok((part, entry)) => {
                    report.absorb(&part);
                    if let Some(entry) = entry {
                        new_cache.namespaces.insert(name.clone(), entry);
                    }
                    done.push(name);
                }
                Err(e) => {
                    // Keep what is known to be right for the next apply.
                    if let Some(old) = cache.namespaces.get(&name) {
                        new_cache.namespaces.insert(name.clone(), old.clone());
                    }
                    errors.push(format!("{name}: {e:#}"));
                }
            }
        }
        // What is now known to be in the kernel: a namespace that failed is
        // left out, so the next apply, proportional or not, tries it again.
        self.applied.lock().unwrap().record(digests, &done, plan);
        if new_cache != cache {
            new_cache
                .store(&cache_path)
                .context("writing the nft cache")?;
        }
        if !errors.is_empty() {
            bail!(
                "reconcile of lab {} failed in {} namespace(s): {}",
                self.lab,
                errors.len(),
                errors.join("; ")
            );
        }
        tracing::info!(?report, "reconciled");
        Ok(report)
    }

    /// Whether a namespace the last applies made has disappeared (deleted
    /// from outside): the daemon then applies proportionally, which rebuilds
    /// it and its links, within a second instead of at the next audit.
    pub fn lost_namespace(&self) -> bool {
        self.applied.lock().unwrap().lost_namespace(&self.prefix())
    }

    /// Removes every namespace of this lab (`/run/netns/<lab>-*`), collecting
    /// errors and continuing; a namespace already gone is not an error.
    pub async fn teardown(&self) -> Result<TeardownReport> {
        let span = tracing::info_span!("teardown", lab = %self.lab);
        async {
            netns::check_name(&self.lab).context("lab name")?;
            let _one_at_a_time = self.lock.lock().await;
            let prefix = self.prefix();
            let cache_path = self.cache_path();
            let progress = self.progress.clone();
            *self.applied.lock().unwrap() = Default::default();
            let result = netns::on_thread(move || {
                let mut report = TeardownReport::default();
                match netns::list_with_prefix(&prefix) {
                    Ok(names) => {
                        progress.step("removing namespaces", names.len());
                        for name in names {
                            match netns::delete(&name) {
                                Ok(true) => report.namespaces_deleted += 1,
                                Ok(false) => {}
                                Err(e) => report.errors.push(format!("{name}: {e:#}")),
                            }
                            progress.tick();
                        }
                    }
                    Err(e) => report.errors.push(format!("{e:#}")),
                }
                match std::fs::remove_file(&cache_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => report.errors.push(format!("{}: {e}", cache_path.display())),
                }
                Ok(report)
            })
            .await;
            self.progress.finish();
            result
        }
        .instrument(span)
        .await
    }
}

/// Links up, sysctls, addresses, routes, rules and nft of one namespace.
async fn reconcile_namespace(
    conn: &nl::NsConn,
    ns: &NamespacePlan,
    wanted_links: &BTreeSet<String>,
    dumped: Option<BTreeMap<String, links::Link>>,
    cached: Option<&nft::CacheEntry>,
    fresh: bool,
) -> Result<(ReconcileReport, Option<nft::CacheEntry>)> {
    let mut report = ReconcileReport::default();
    // The veth step's dump, unless it wrote links here.
    let links = match dumped {
        Some(links) => links,
        None => links::dump(conn).await?,
    };
    links::set_up(conn, &links, wanted_links, &mut report).await?;

    let written = sysctl::reconcile(&ns.name, &ns.sysctls).await?;
    report.sysctls_written += written;
    report.kernel_writes += written;

    addrs::reconcile(conn, &links, &ns.addresses, &mut report).await?;
    routes::reconcile(conn, &links, &ns.routes, &mut report).await?;
    rules::reconcile(conn, &ns.rules, &mut report).await?;

    let outcome = nft::reconcile(conn.raw_fd(), &ns.name, ns.nft.as_ref(), cached, fresh).await?;
    report.nft_batches += outcome.batches;
    report.kernel_writes += outcome.batches;
    Ok((report, outcome.entry))
}
