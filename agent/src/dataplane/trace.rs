//! nftables tracing of one probe (`network watcher explain`): a temporary
//! table `ip vnet_explain` per namespace whose only rules set `nftrace` on
//! packets carrying the probe's DSCP mark and destination port, read back
//! as the kernel's trace events (nfnetlink group NFNLGRP_NFTRACE, one
//! socket per namespace). The tables are removed when the probe is done,
//! whatever happened: tracing is on only for the probe.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::netns;
use super::nfnetlink::{attrs, messages, recv, socket};
pub use crate::diag::explain::TraceEvent;

/// The DSCP the probe carries (unassigned codepoint 21, TOS byte 0x54):
/// what tells the trace rules its packets from everyone else's.
pub const TRACE_DSCP: u8 = 21;
/// The trace table's name (family `ip`).
pub const TRACE_TABLE: &str = "vnet_explain";

const NFNLGRP_NFTRACE: u32 = 9;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_TRACE: u16 = 17;

fn text(p: &[u8]) -> String {
    String::from_utf8_lossy(p.split(|c| *c == 0).next().unwrap_or(&[])).into_owned()
}

fn be32(p: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(..4)?.try_into().ok()?))
}

/// One NFT_MSG_TRACE message (after the netlink header).
fn parse(body: &[u8]) -> Option<TraceEvent> {
    let a = body.get(4..)?;
    let mut e = TraceEvent::default();
    for (ty, p) in attrs(a) {
        match ty {
            1 => e.table = text(p),
            2 => e.chain = text(p),
            3 => {
                e.handle = p
                    .get(..8)
                    .map(|b| u64::from_be_bytes(b.try_into().expect("8")))
            }
            4 => e.kind = be32(p).unwrap_or(0),
            5 => {
                for (vt, vp) in attrs(p) {
                    match vt {
                        1 => e.verdict = be32(vp).map(|v| v as i32),
                        2 => e.target = Some(text(vp)),
                        _ => {}
                    }
                }
            }
            8 if p.len() >= 20 => {
                e.src = Some(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
                e.dst = Some(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
            }
            9 if p.len() >= 4 => {
                e.sport = Some(u16::from_be_bytes([p[0], p[1]]));
                e.dport = Some(u16::from_be_bytes([p[2], p[3]]));
            }
            10 => e.iif_index = be32(p),
            12 => e.oif_index = be32(p),
            14 => e.mark = be32(p).unwrap_or(0),
            // NFTA_TRACE_POLICY: a base chain's policy verdict.
            16 => e.verdict = be32(p).map(|v| v as i32),
            _ => {}
        }
    }
    Some(e)
}

fn table_batch(protocol: &str, dport: u16) -> Value {
    let chain = |name: &str, hook: &str| {
        json!({"add": {"chain": {"family": "ip", "table": TRACE_TABLE, "name": name,
            "type": "filter", "hook": hook, "prio": -350, "policy": "accept"}}})
    };
    let rule = |chain: &str| {
        json!({"add": {"rule": {"family": "ip", "table": TRACE_TABLE, "chain": chain, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "dscp"}}, "right": TRACE_DSCP}},
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": protocol}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": dport}},
            {"mangle": {"key": {"meta": {"key": "nftrace"}}, "value": 1}}
        ]}}})
    };
    let table = json!({"table": {"family": "ip", "name": TRACE_TABLE}});
    json!({"nftables": [
        {"add": table.clone()}, {"delete": table.clone()}, {"add": table},
        chain("pre", "prerouting"), chain("out", "output"), rule("pre"), rule("out"),
    ]})
}

fn delete_batch() -> Value {
    json!({"nftables": [{"delete": {"table": {"family": "ip", "name": TRACE_TABLE}}}]})
}

/// Tracing switched on in a set of namespaces.
pub struct Tracing {
    sockets: Vec<(String, OwnedFd)>,
}

impl Tracing {
    /// Listens first, then adds the trace table in every namespace (one
    /// batch each). On failure what was added is removed again.
    pub async fn start(namespaces: &[String], protocol: &str, dport: u16) -> Result<Tracing> {
        let mut t = Tracing {
            sockets: Vec::new(),
        };
        for ns in namespaces {
            let fd = netns::in_netns_async(ns, || socket(1 << (NFNLGRP_NFTRACE - 1), true))
                .await
                .with_context(|| format!("trace socket in {ns}"))?;
            t.sockets.push((ns.clone(), fd));
        }
        let batch = table_batch(protocol, dport);
        for ns in namespaces {
            if let Err(e) = super::nft::apply_in(ns, &batch).await {
                t.stop().await;
                return Err(e);
            }
        }
        Ok(t)
    }

    /// Every trace event received so far, by namespace, in arrival order,
    /// with interface indexes named as the namespace names them.
    pub async fn collect(&self) -> Vec<(String, TraceEvent)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        for (ns, fd) in &self.sockets {
            let mut events = Vec::new();
            while let Ok(n @ 1..) = recv(fd, &mut buf, libc::MSG_DONTWAIT) {
                for (ty, _, body) in messages(&buf[..n]) {
                    if ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE {
                        events.extend(parse(body));
                    }
                }
            }
            let indexes: Vec<u32> = events
                .iter()
                .flat_map(|e| [e.iif_index, e.oif_index])
                .flatten()
                .collect();
            let names = netns::in_netns_async(ns, move || {
                Ok(indexes
                    .into_iter()
                    .map(|i| {
                        let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
                        // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes.
                        let p = unsafe { libc::if_indextoname(i, name.as_mut_ptr()) };
                        let text = if p.is_null() {
                            format!("if{i}")
                        } else {
                            // SAFETY: if_indextoname NUL-terminated it.
                            unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
                                .to_string_lossy()
                                .into_owned()
                        };
                        (i, text)
                    })
                    .collect::<std::collections::BTreeMap<u32, String>>())
            })
            .await
            .unwrap_or_default();
            for mut e in events {
                e.iif = e.iif_index.and_then(|i| names.get(&i).cloned());
                e.oif = e.oif_index.and_then(|i| names.get(&i).cloned());
                out.push((ns.clone(), e));
            }
        }
        out
    }

    /// Removes the trace table everywhere (a namespace that is gone has none).
    pub async fn stop(self) {
        for (ns, _) in &self.sockets {
            if let Err(e) = super::nft::apply_in(ns, &delete_batch()).await {
                tracing::debug!(netns = %ns, "removing the trace table: {e:#}");
            }
        }
    }
}

/// The probe: one connection attempt (TCP) or datagram (UDP) from namespace
/// `name` to `dst:port` carrying [`TRACE_DSCP`]; `true` when a TCP
/// connection was answered (UDP: sent).
pub fn probe(
    name: &str,
    protocol: &str,
    dst: Ipv4Addr,
    port: u16,
    timeout: Duration,
) -> Result<bool> {
    let udp = protocol == "udp";
    netns::in_netns(name, move || {
        let ty = if udp {
            libc::SOCK_DGRAM
        } else {
            libc::SOCK_STREAM
        };
        // SAFETY: plain socket(2); owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
                ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("probe socket");
        }
        // SAFETY: a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tos: libc::c_int = i32::from(TRACE_DSCP) << 2;
        // SAFETY: setsockopt with a c_int value.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_TOS,
                &tos as *const _ as *const libc::c_void,
                4,
            );
        }
        let sa = SocketAddr::from((dst, port));
        let SocketAddr::V4(v4) = sa else {
            unreachable!()
        };
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        if udp {
            // SAFETY: sending 5 bytes of our own to a valid sockaddr_in.
            let n = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    b"probe".as_ptr() as *const libc::c_void,
                    5,
                    0,
                    &addr as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            };
            std::thread::sleep(timeout.min(Duration::from_millis(300)));
            return Ok(n == 5);
        }
        // SAFETY: connect(2) on our socket with a valid sockaddr_in.
        unsafe {
            libc::connect(
                fd.as_raw_fd(),
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd we own.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
        if ready <= 0 {
            return Ok(false);
        }
        let mut err: libc::c_int = 0;
        let mut len = 4u32;
        // SAFETY: getsockopt SO_ERROR into a c_int.
        unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut err as *mut _ as *mut libc::c_void,
                &mut len,
            );
        }
        Ok(err == 0)
    })
}
