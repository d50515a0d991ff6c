//! A supervised host's configuration file (a service host, a stamp's front
//! end): the daemon rewrites it only when it changes; the host re-reads it
//! when its modification time moves, so a change takes effect on the next
//! connection without a restart.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

/// The configuration at `path`, and when it was written.
pub fn load<T: DeserializeOwned>(path: &Path, what: &str) -> Result<(T, Option<SystemTime>)> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let config = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a {what}", path.display()))?;
    Ok((config, modified))
}

/// Every `every`, when the file's modification time moved since `seen`,
/// hands the new configuration to `apply`; a file that does not read or
/// that `apply` refuses keeps the previous configuration. Never returns.
pub async fn watch<T, F>(
    path: PathBuf,
    what: &str,
    every: Duration,
    mut seen: Option<SystemTime>,
    mut apply: F,
) where
    T: DeserializeOwned,
    F: FnMut(T) -> Result<()>,
{
    loop {
        tokio::time::sleep(every).await;
        let now = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if now == seen {
            continue;
        }
        match load::<T>(&path, what).and_then(|(config, modified)| apply(config).map(|_| modified))
        {
            Ok(modified) => seen = modified,
            Err(e) => eprintln!("keeping the previous configuration: {e:#}"),
        }
    }
}
