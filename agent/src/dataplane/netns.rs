//! Named network namespaces under `/run/netns`: create, delete, list, enter.
//!
//! Every VNet, stamp, worker and sandbox of the emulated Azure picture is one
//! namespace (DESIGN.md, "How Azure maps onto the kernel"). Namespaces are
//! made the way `ip netns add` makes them, without forking: a short helper
//! thread `unshare`s a new network namespace and bind-mounts
//! `/proc/thread-self/ns/net` onto `/run/netns/NAME`. The calling thread (and
//! so the host's namespace) is never changed.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

/// Directory holding the bind mounts of named namespaces (as `ip netns`).
pub const NETNS_DIR: &str = "/run/netns";

/// Path of the named namespace `name`: `/run/netns/NAME`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Refuses names that would escape `/run/netns` or that no kernel accepts.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.len() > 255
    {
        bail!("invalid namespace name {name:?}");
    }
    Ok(())
}

/// Whether `/run/netns/NAME` is a live namespace (an nsfs bind mount), not a
/// stale file left by a crash between create and mount.
pub(crate) fn is_live(name: &str) -> bool {
    statfs(&netns_path(name))
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Names under `/run/netns` that start with `prefix`, sorted. A missing
/// directory is an empty list.
pub(crate) fn list_with_prefix(prefix: &str) -> Result<Vec<String>> {
    let entries = match fs::read_dir(NETNS_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(format!("reading {NETNS_DIR}")),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {NETNS_DIR}"))?;
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with(prefix) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Creates the named namespace `name` (blocking, about 0.5 ms). A stale
/// non-namespace file at the path is replaced.
pub(crate) fn create(name: &str) -> Result<()> {
    check_name(name)?;
    let path = netns_path(name);
    fs::create_dir_all(NETNS_DIR).with_context(|| format!("creating {NETNS_DIR}"))?;
    if path.exists() && !is_live(name) {
        // A crash between create and bind mount leaves an empty file.
        fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let worker_path = path.clone();
    let result = std::thread::Builder::new()
        .name("netns-create".into())
        .spawn(move || -> Result<()> {
            // This thread alone moves to the new namespace; it ends right after.
            unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &worker_path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("bind mount onto {}", worker_path.display()))?;
            Ok(())
        })
        .context("spawning netns thread")?
        .join()
        .map_err(|_| anyhow!("netns thread panicked"))?;
    if let Err(e) = result {
        let _ = fs::remove_file(&path);
        return Err(e.context(format!("creating namespace {name}")));
    }
    Ok(())
}

/// Deletes the named namespace `name`: lazy unmount, then unlink. Returns
/// whether something was there. The kernel frees the namespace (and its
/// links) once the last socket or fd in it is closed.
pub(crate) fn delete(name: &str) -> Result<bool> {
    check_name(name)?;
    let path = netns_path(name);
    if !path.exists() {
        return Ok(false);
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a stale file); still unlink it.
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(anyhow!("{e:?} ({})", e.desc()))
                .with_context(|| format!("unmounting {}", path.display()))
        }
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Opens the namespace file of `name` (to `setns` into, or to hand to the
/// kernel as a veth peer's target).
pub(crate) fn open(name: &str) -> Result<File> {
    check_name(name)?;
    let path = netns_path(name);
    File::open(&path).with_context(|| format!("opening namespace {}", path.display()))
}

fn enter_and_run<T>(fd: File, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    setns(&fd, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns into {name}"))?;
    drop(fd);
    f()
}

/// Runs `f` on a short-lived thread that entered the named namespace `name`
/// (for sockets, `/proc/sys/net` reads and the like), and waits for it. The
/// calling thread never changes namespace.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let fd = open(name)?;
    let owned = name.to_string();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || enter_and_run(fd, &owned, f))
        .context("spawning netns thread")?
        .join()
        .map_err(|_| anyhow!("thread in namespace {name} panicked"))?
}

/// Like [`in_netns`], but awaits the thread instead of blocking the caller
/// (for use on tokio worker threads).
pub(crate) async fn in_netns_async<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let fd = open(name)?;
    let owned = name.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let _ = tx.send(enter_and_run(fd, &owned, f));
        })
        .context("spawning netns thread")?;
    rx.await
        .map_err(|_| anyhow!("thread in namespace {name} panicked"))?
}

/// Runs blocking `f` on a fresh thread and awaits it.
pub(crate) async fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-op".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .context("spawning helper thread")?;
    rx.await.map_err(|_| anyhow!("helper thread panicked"))?
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn names_cannot_escape_run_netns() {
        assert!(check_name("vl-inet").is_ok());
        for bad in ["", ".", "..", "a/b", "../etc"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(netns_path("vl-inet"), PathBuf::from("/run/netns/vl-inet"));
    }
}
