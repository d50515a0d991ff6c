//! One rtnetlink connection per namespace, and netlink errors in words.
//!
//! A netlink socket belongs to the namespace it was created in. The socket is
//! made on a short thread that entered the namespace, then driven by the tokio
//! runtime like any other socket: no tokio worker thread ever calls `setns`.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};

use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::Handle;

use super::netns;

/// An open namespace: its fd (for veth peers and `nft` children) and a
/// netlink handle whose socket lives inside it.
pub(crate) struct NsConn {
    pub name: String,
    fd: File,
    pub handle: Handle,
}

impl NsConn {
    /// Opens namespace `name` and a netlink connection inside it.
    pub async fn open(name: &str) -> Result<Self> {
        let fd = netns::open(name)?;
        let rt = tokio::runtime::Handle::current();
        let (conn, handle) = netns::in_netns_async(name, move || {
            let _guard = rt.enter();
            let (conn, handle, _) =
                rtnetlink::new_connection().context("opening netlink socket")?;
            Ok((conn, handle))
        })
        .await
        .with_context(|| format!("netlink connection in {name}"))?;
        // Ends by itself once every handle is dropped.
        tokio::spawn(conn);
        Ok(Self {
            name: name.to_string(),
            fd,
            handle,
        })
    }

    /// Raw fd of the namespace file (valid while `self` lives).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The errno of a netlink error reply, if it is one.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<Errno> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| Errno::from_raw(-c.get())),
        _ => None,
    }
}

/// A netlink error as words: `EEXIST (File exists)`.
pub(crate) fn nl_err(e: rtnetlink::Error) -> anyhow::Error {
    match errno(&e) {
        Some(errno) => anyhow!("{errno:?} ({})", errno.desc()),
        None => anyhow!("{e}"),
    }
}

/// Collects a netlink dump, mapping errors to words.
pub(crate) async fn collect<T>(
    stream: impl futures::Stream<Item = Result<T, rtnetlink::Error>>,
) -> Result<Vec<T>> {
    stream.map_err(nl_err).try_collect().await
}
