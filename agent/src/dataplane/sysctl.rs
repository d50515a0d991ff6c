//! Per-namespace sysctls (`ip_forward`, `rp_filter`, `proxy_arp`, ...).
//!
//! `/proc/sys/net` follows the calling thread's namespace, so values are read
//! and written from a short thread inside the namespace; a value is written
//! only when it differs.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::netns;

/// Compares sysctl values the way a person would: `1024\t65535` equals `1024 65535`.
fn normalise(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn path_of(key: &str) -> Result<PathBuf> {
    let rel = Path::new(key);
    if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("invalid sysctl key {key:?}");
    }
    Ok(Path::new("/proc/sys").join(rel))
}

/// Makes `/proc/sys/<key>` equal `value` for every entry inside namespace
/// `ns`; returns how many were written.
pub(crate) async fn reconcile(ns: &str, want: &BTreeMap<String, String>) -> Result<u64> {
    if want.is_empty() {
        return Ok(0);
    }
    let want = want.clone();
    let name = ns.to_string();
    netns::in_netns_async(ns, move || {
        let mut written = 0;
        for (key, value) in &want {
            let path = path_of(key)?;
            let have = std::fs::read_to_string(&path)
                .with_context(|| format!("reading sysctl {key} in {name}"))?;
            if normalise(&have) == normalise(value) {
                continue;
            }
            std::fs::write(&path, value.as_bytes())
                .with_context(|| format!("writing sysctl {key}={value} in {name}"))?;
            written += 1;
        }
        Ok(written)
    })
    .await
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn keys_stay_under_proc_sys() {
        assert_eq!(
            path_of("net/ipv4/ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert!(path_of("../etc/passwd").is_err());
        assert!(path_of("/etc/passwd").is_err());
        assert_eq!(normalise("1024\t65535\n"), "1024 65535");
    }
}
