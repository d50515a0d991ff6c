//! The agent's nftables table (`inet vnet_agent`) of a namespace: NSGs, NAT
//! gateway SNAT, stamp SNAT, subnet marks and counters (docs/datapath.md).
//!
//! The plan carries the complete JSON batch that replaces the table
//! atomically, one batch per namespace per apply, run in-process through
//! libnftables on a thread inside the namespace (`libnft.rs`); only without
//! the library is it piped to an `nft -j -f -` child that `setns`es first.
//!
//! Whether a table needs writing is decided without writing: the table is read
//! back (`nft -j list table`), normalised (no handles, no counter values, no
//! metainfo) and hashed. [`NftCache`] remembers, per namespace, which readback
//! hash the desired batch produced last time; the same pair means nothing to
//! do. The cache lives on disk so a restarted daemon writes nothing either; a
//! lost or corrupt cache only costs one extra apply.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::plan::{NFT_FAMILY, NFT_TABLE};

/// What one apply of a desired batch left in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CacheEntry {
    /// sha256 of the plan's batch JSON.
    pub plan: String,
    /// sha256 of the normalised readback right after applying it.
    pub readback: String,
}

/// Per-namespace [`CacheEntry`]s of one lab, stored as JSON in the cache dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NftCache {
    pub namespaces: BTreeMap<String, CacheEntry>,
}

impl NftCache {
    /// Path of the lab's cache file.
    pub fn path(cache_dir: &Path, lab: &str) -> PathBuf {
        cache_dir.join(format!("nft-{lab}.json"))
    }

    /// Loads the cache; missing or corrupt means empty.
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "corrupt nft cache; ignoring it");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Writes the cache atomically (temporary file, fsync, rename).
    pub fn store(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let dir = path.parent().context("cache path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
        Ok(())
    }
}

/// sha256 of bytes, hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hash of a plan batch.
pub(crate) fn plan_hash(batch: &Value) -> String {
    sha256_hex(&serde_json::to_vec(batch).expect("JSON values serialise"))
}

/// Drops what changes without anyone writing: handles, counter values, metainfo.
fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("handle");
            map.remove("packets");
            map.remove("bytes");
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// The normalised form of `nft -j list table` output.
pub(crate) fn normalise(mut listing: Value) -> Value {
    if let Some(items) = listing.get_mut("nftables").and_then(Value::as_array_mut) {
        items.retain(|i| i.get("metainfo").is_none());
    }
    strip(&mut listing);
    listing
}

/// What an nft command said.
struct Said {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

/// `nft -j ARGS` (with `stdin` as its input file when given) inside the
/// namespace whose file is open as `ns_fd`: in-process when libnftables is
/// there, else as a child process.
async fn nft(ns_fd: RawFd, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Said> {
    if super::libnft::available() {
        let command = match stdin {
            Some(input) => String::from_utf8(input).context("nft input is not UTF-8")?,
            None => args
                .iter()
                .filter(|a| **a != "-j")
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        };
        let o = super::libnft::run(ns_fd, command).await?;
        return Ok(Said {
            ok: o.ok,
            stdout: o.stdout,
            stderr: o.stderr,
        });
    }
    let out = run(ns_fd, args, stdin).await?;
    Ok(Said {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `nft ARGS` inside the namespace whose file is open as `ns_fd`.
async fn run(ns_fd: RawFd, args: &[&str], stdin: Option<Vec<u8>>) -> Result<std::process::Output> {
    let mut cmd = tokio::process::Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: only the async-signal-safe setns(2) runs between fork and exec;
    // `ns_fd` stays open in the parent until the child has been awaited.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .context("running nft (is nftables installed?)")?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("nft stdin")?;
        pipe.write_all(&input).await.context("writing to nft")?;
        drop(pipe);
    }
    child.wait_with_output().await.context("waiting for nft")
}

/// The normalised hash of the agent's table, or `None` when it does not exist.
pub(crate) async fn readback(ns_fd: RawFd, ns: &str) -> Result<Option<String>> {
    let out = nft(ns_fd, &["-j", "list", "table", NFT_FAMILY, NFT_TABLE], None).await?;
    if !out.ok {
        let err = &out.stderr;
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        bail!(
            "nft list table {NFT_FAMILY} {NFT_TABLE} in {ns}: {}",
            err.trim()
        );
    }
    let listing: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing nft listing of {ns}"))?;
    Ok(Some(sha256_hex(&serde_json::to_vec(&normalise(listing))?)))
}

/// Applies one JSON batch atomically.
pub(crate) async fn apply(ns_fd: RawFd, ns: &str, batch: &Value) -> Result<()> {
    let out = nft(ns_fd, &["-j", "-f", "-"], Some(serde_json::to_vec(batch)?)).await?;
    if !out.ok {
        return Err(anyhow!("{}", out.stderr.trim()))
            .with_context(|| format!("nft batch rejected in {ns}"));
    }
    Ok(())
}

/// The batch that deletes the agent's table.
pub(crate) fn delete_batch() -> Value {
    serde_json::json!({"nftables": [{"delete": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}}]})
}

/// Outcome of reconciling one namespace's table.
pub(crate) struct Outcome {
    /// Batches sent (0 or 1).
    pub batches: u64,
    /// New cache entry for the namespace (`None`: no table wanted).
    pub entry: Option<CacheEntry>,
}

/// Makes the agent's table in the namespace match `want`. `fresh`: the
/// namespace was created by this apply, so it has no table yet.
pub(crate) async fn reconcile(
    ns_fd: RawFd,
    ns: &str,
    want: Option<&Value>,
    cached: Option<&CacheEntry>,
    fresh: bool,
) -> Result<Outcome> {
    let current = if fresh {
        None
    } else {
        readback(ns_fd, ns).await?
    };
    match (want, current) {
        (None, None) => Ok(Outcome {
            batches: 0,
            entry: None,
        }),
        (None, Some(_)) => {
            apply(ns_fd, ns, &delete_batch()).await?;
            Ok(Outcome {
                batches: 1,
                entry: None,
            })
        }
        (Some(batch), current) => {
            let plan = plan_hash(batch);
            if let (Some(have), Some(c)) = (&current, cached) {
                if c.plan == plan && &c.readback == have {
                    return Ok(Outcome {
                        batches: 0,
                        entry: Some(c.clone()),
                    });
                }
            }
            apply(ns_fd, ns, batch).await?;
            let readback = readback(ns_fd, ns).await?.with_context(|| {
                format!("table {NFT_FAMILY} {NFT_TABLE} missing in {ns} right after applying it")
            })?;
            Ok(Outcome {
                batches: 1,
                entry: Some(CacheEntry { plan, readback }),
            })
        }
    }
}

/// Packet and byte counts of every named counter of the lab's table in a
/// namespace (NSG rule hits, NIC crossings). A namespace without the table
/// has no counters.
pub async fn read_counters(netns: &str) -> Result<std::collections::BTreeMap<String, (u64, u64)>> {
    use std::os::fd::AsRawFd;
    let ns = super::netns::open(netns)?;
    let out = nft(
        ns.as_raw_fd(),
        &["-j", "list", "counters", "table", NFT_FAMILY, NFT_TABLE],
        None,
    )
    .await?;
    drop(ns);
    let mut counters = std::collections::BTreeMap::new();
    if !out.ok {
        return Ok(counters);
    }
    let listing: Value = serde_json::from_slice(&out.stdout).context("parsing nft counters")?;
    for item in listing["nftables"].as_array().into_iter().flatten() {
        if let Some(c) = item.get("counter") {
            if let Some(name) = c["name"].as_str() {
                let packets = c["packets"].as_u64().unwrap_or(0);
                let bytes = c["bytes"].as_u64().unwrap_or(0);
                counters.insert(name.to_string(), (packets, bytes));
            }
        }
    }
    Ok(counters)
}

/// Applies a JSON batch in namespace `netns` (for tables other than the
/// agent's own: `network watcher explain`'s trace table).
pub(crate) async fn apply_in(netns: &str, batch: &Value) -> Result<()> {
    use std::os::fd::AsRawFd;
    let ns = super::netns::open(netns)?;
    let r = apply(ns.as_raw_fd(), netns, batch).await;
    drop(ns);
    r
}

/// `nft -j list ruleset` of namespace `netns` (what a trace's rule handles name).
pub(crate) async fn list_ruleset(netns: &str) -> Result<Value> {
    use std::os::fd::AsRawFd;
    let ns = super::netns::open(netns)?;
    let out = nft(ns.as_raw_fd(), &["-j", "list", "ruleset"], None).await?;
    drop(ns);
    if !out.ok {
        bail!("nft list ruleset in {netns}: {}", out.stderr.trim());
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("parsing the ruleset of {netns}"))
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalise_ignores_handles_counters_and_metainfo() {
        let a = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "vnet_agent", "handle": 3}},
            {"counter": {"family": "inet", "name": "c", "table": "vnet_agent", "handle": 4, "packets": 9, "bytes": 900}},
            {"rule": {"chain": "forward", "handle": 7, "expr": [{"counter": {"packets": 1, "bytes": 2}}]}}
        ]});
        let b = json!({"nftables": [
            {"metainfo": {"version": "1.0.7"}},
            {"table": {"family": "inet", "name": "vnet_agent", "handle": 8}},
            {"counter": {"family": "inet", "name": "c", "table": "vnet_agent", "handle": 9, "packets": 0, "bytes": 0}},
            {"rule": {"chain": "forward", "handle": 1, "expr": [{"counter": {"packets": 0, "bytes": 0}}]}}
        ]});
        assert_eq!(normalise(a), normalise(b));
    }

    #[test]
    fn cache_round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = NftCache::path(dir.path(), "lab");
        assert_eq!(NftCache::load(&path), NftCache::default());
        let mut c = NftCache::default();
        c.namespaces.insert(
            "lab-x".into(),
            CacheEntry {
                plan: "p".into(),
                readback: "r".into(),
            },
        );
        c.store(&path).unwrap();
        assert_eq!(NftCache::load(&path), c);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(NftCache::load(&path), NftCache::default());
    }
}
