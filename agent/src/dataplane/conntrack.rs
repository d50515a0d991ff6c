//! Conntrack over netlink (`NETLINK_NETFILTER`, ctnetlink), in one lab
//! namespace: its flow events (new, update, destroy) and dumps of its table
//! with packet and byte counters. VNet flow logs are made from these
//! (`diag::flow_log`); the fabric's conntrack sees every flow the NSGs judge.
//!
//! The messages are small and fixed in shape (nfgenmsg + nested attributes),
//! so they are read here directly rather than through a crate.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::netns;
use super::nfnetlink::{find, messages, nla, recv, send, socket};
pub use crate::diag::flow_log::{CtEvent, CtFlow};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
/// `NFNLGRP_CONNTRACK_NEW`, `_UPDATE`, `_DESTROY` as `nl_groups` bits.
const GROUPS: u32 = 0b111;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_CREATE: u16 = 0x400;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_PROTOINFO: u16 = 4;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_ID: u16 = 12;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;

fn be_u64(p: &[u8]) -> u64 {
    match p.len() {
        8 => u64::from_be_bytes(p.try_into().expect("8 bytes")),
        4 => u64::from(u32::from_be_bytes(p.try_into().expect("4 bytes"))),
        _ => 0,
    }
}

fn ip(p: Option<&[u8]>) -> Option<Ipv4Addr> {
    let p = p?;
    (p.len() == 4).then(|| Ipv4Addr::new(p[0], p[1], p[2], p[3]))
}

fn counters(p: Option<&[u8]>) -> (u64, u64) {
    p.map(|c| {
        (
            find(c, CTA_COUNTERS_PACKETS).map(be_u64).unwrap_or(0),
            find(c, CTA_COUNTERS_BYTES).map(be_u64).unwrap_or(0),
        )
    })
    .unwrap_or((0, 0))
}

/// Parses one ctnetlink message body (after the netlink header).
fn parse(event: CtEvent, body: &[u8]) -> Option<CtFlow> {
    // nfgenmsg: family, version, res_id.
    if body.len() < 4 || body[0] != libc::AF_INET as u8 {
        return None;
    }
    let a = &body[4..];
    let orig = find(a, CTA_TUPLE_ORIG)?;
    let tip = find(orig, CTA_TUPLE_IP)?;
    let tproto = find(orig, CTA_TUPLE_PROTO)?;
    let port = |t| {
        find(tproto, t)
            .filter(|p| p.len() == 2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .unwrap_or(0)
    };
    Some(CtFlow {
        event,
        id: find(a, CTA_ID)
            .filter(|p| p.len() == 4)
            .map(|p| u32::from_be_bytes(p.try_into().expect("4 bytes")))
            .unwrap_or(0),
        src: ip(find(tip, CTA_IP_V4_SRC))?,
        dst: ip(find(tip, CTA_IP_V4_DST))?,
        reply_src: find(a, CTA_TUPLE_REPLY)
            .and_then(|r| find(r, CTA_TUPLE_IP))
            .and_then(|r| ip(find(r, CTA_IP_V4_SRC)))
            .unwrap_or(Ipv4Addr::UNSPECIFIED),
        protocol: *find(tproto, CTA_PROTO_NUM)?.first()?,
        src_port: port(CTA_PROTO_SRC_PORT),
        dst_port: port(CTA_PROTO_DST_PORT),
        orig: counters(find(a, CTA_COUNTERS_ORIG)),
        reply: counters(find(a, CTA_COUNTERS_REPLY)),
        tcp_state: find(a, CTA_PROTOINFO)
            .and_then(|p| find(p, CTA_PROTOINFO_TCP))
            .and_then(|t| find(t, CTA_PROTOINFO_TCP_STATE))
            .and_then(|s| s.first().copied()),
    })
}

fn event_of(ty: u16, flags: u16) -> Option<CtEvent> {
    if ty >> 8 != NFNL_SUBSYS_CTNETLINK {
        return None;
    }
    match ty & 0xff {
        IPCTNL_MSG_CT_NEW if flags & NLM_F_CREATE != 0 => Some(CtEvent::New),
        IPCTNL_MSG_CT_NEW => Some(CtEvent::Update),
        IPCTNL_MSG_CT_DELETE => Some(CtEvent::Destroy),
        _ => None,
    }
}

/// A ctnetlink socket opened inside a namespace (a socket keeps the
/// namespace it was made in, so it is read from any thread afterwards).
pub struct Conntrack {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Conntrack {
    /// Subscribes to the flow events of namespace `name`; reads block at most
    /// `timeout` so the reader can notice it should stop.
    pub fn events(name: &str, timeout: Duration) -> Result<Conntrack> {
        let fd = netns::in_netns(name, move || socket(GROUPS, false))
            .with_context(|| format!("conntrack events in {name}"))?;
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: setsockopt with a timeval option value.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(Conntrack {
            fd,
            buf: vec![0; 1 << 16],
        })
    }

    /// The next batch of events; empty on timeout. An overrun (ENOBUFS: the
    /// kernel dropped events) is reported as an error the caller counts.
    pub fn read_batch(&mut self) -> Result<Vec<CtFlow>> {
        let n = match recv(&self.fd, &mut self.buf, 0) {
            Ok(n) => n,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(Vec::new()),
                    _ => Err(e).context("reading conntrack events"),
                }
            }
        };
        Ok(messages(&self.buf[..n])
            .into_iter()
            .filter_map(|(ty, flags, body)| parse(event_of(ty, flags)?, body))
            .collect())
    }
}

const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PAYLOAD: u16 = 9;

/// The 5-tuple of a packet an NSG dropped (from its IPv4 header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeniedPacket {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

fn denied_packet(payload: &[u8]) -> Option<DeniedPacket> {
    if payload.len() < 20 || payload[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(payload[0] & 0x0f) * 4;
    let protocol = payload[9];
    let port = |at: usize| {
        payload
            .get(ihl + at..ihl + at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(0)
    };
    let ported = protocol == 6 || protocol == 17;
    Some(DeniedPacket {
        src: Ipv4Addr::new(payload[12], payload[13], payload[14], payload[15]),
        dst: Ipv4Addr::new(payload[16], payload[17], payload[18], payload[19]),
        protocol,
        src_port: if ported { port(0) } else { 0 },
        dst_port: if ported { port(2) } else { 0 },
    })
}

/// The NFLOG group the NSGs' deny chain logs to, read in one namespace.
pub struct DeniedLog {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl DeniedLog {
    /// Binds NFLOG `group` in namespace `name` (headers only).
    pub fn open(name: &str, group: u16) -> Result<DeniedLog> {
        let fd = netns::in_netns(name, move || socket(0, false))
            .with_context(|| format!("NFLOG socket in {name}"))?;
        let mut body = vec![libc::AF_INET as u8, 0];
        body.extend_from_slice(&group.to_be_bytes());
        body.extend(nla(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND]));
        let mut mode = 64u32.to_be_bytes().to_vec();
        mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
        body.extend(nla(NFULA_CFG_MODE, &mode));
        let mut req = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        req.extend_from_slice(&((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG).to_ne_bytes());
        req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&body);
        send(&fd, &req).context("binding the NFLOG group")?;
        let mut log = DeniedLog {
            fd,
            buf: vec![0; 1 << 16],
        };
        // The ACK (or the refusal: another listener holds the group).
        let n = log.recv(0)?;
        for (ty, _, body) in messages(&log.buf[..n]) {
            if ty == NLMSG_ERROR {
                let code = body
                    .get(..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(0);
                if code != 0 {
                    bail!(
                        "binding NFLOG group {group}: {}",
                        std::io::Error::from_raw_os_error(-code)
                    );
                }
            }
        }
        Ok(log)
    }

    fn recv(&mut self, flags: libc::c_int) -> Result<usize> {
        recv(&self.fd, &mut self.buf, flags).context("reading NFLOG")
    }

    /// Every denied packet queued now (never blocks).
    pub fn drain(&mut self) -> Vec<DeniedPacket> {
        let mut out = Vec::new();
        while let Ok(n) = self.recv(libc::MSG_DONTWAIT) {
            for (ty, _, body) in messages(&self.buf[..n]) {
                if ty == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET && body.len() >= 4 {
                    out.extend(find(&body[4..], NFULA_PAYLOAD).and_then(denied_packet));
                }
            }
        }
        out
    }
}

/// Every IPv4 flow conntrack of namespace `name` tracks now, with counters.
pub fn dump(name: &str) -> Result<Vec<CtFlow>> {
    netns::in_netns(name, move || {
        let fd = socket(0, false)?;
        let mut req = Vec::with_capacity(20);
        req.extend_from_slice(&20u32.to_ne_bytes());
        req.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET).to_ne_bytes());
        req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
        send(&fd, &req).context("asking for the conntrack table")?;
        let mut buf = vec![0u8; 1 << 16];
        let mut out = Vec::new();
        loop {
            let n = recv(&fd, &mut buf, 0).context("reading the conntrack table")?;
            for (ty, _, body) in messages(&buf[..n]) {
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .unwrap_or(0);
                        if code != 0 {
                            bail!(
                                "conntrack dump: {}",
                                std::io::Error::from_raw_os_error(-code)
                            );
                        }
                    }
                    _ => out.extend(parse(CtEvent::Dumped, body)),
                }
            }
        }
    })
    .with_context(|| format!("conntrack table of {name}"))
}

/// Turns on per-flow packet and byte counters in namespace `name`
/// (`net.netfilter.nf_conntrack_acct`, per namespace; flows that began
/// before count from zero on their next packet only).
pub fn enable_accounting(name: &str) -> Result<()> {
    netns::in_netns(name, || {
        std::fs::write("/proc/sys/net/netfilter/nf_conntrack_acct", "1")
            .context("nf_conntrack_acct")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destroy_event_is_read_with_its_counters() {
        let tuple = [
            nla(
                0x8000 | CTA_TUPLE_IP,
                &[nla(1, &[10, 0, 1, 4]), nla(2, &[10, 0, 2, 4])].concat(),
            ),
            nla(
                0x8000 | CTA_TUPLE_PROTO,
                &[
                    nla(1, &[6]),
                    nla(2, &40000u16.to_be_bytes()),
                    nla(3, &80u16.to_be_bytes()),
                ]
                .concat(),
            ),
        ]
        .concat();
        let counters = [nla(1, &5u64.to_be_bytes()), nla(2, &420u64.to_be_bytes())].concat();
        let body = [
            vec![libc::AF_INET as u8, 0, 0, 0],
            nla(0x8000 | CTA_TUPLE_ORIG, &tuple),
            nla(0x8000 | CTA_COUNTERS_ORIG, &counters),
            nla(CTA_ID, &7u32.to_be_bytes()),
        ]
        .concat();
        let f = parse(CtEvent::Destroy, &body).unwrap();
        assert_eq!(f.src, Ipv4Addr::new(10, 0, 1, 4));
        assert_eq!(f.dst, Ipv4Addr::new(10, 0, 2, 4));
        assert_eq!((f.protocol, f.src_port, f.dst_port), (6, 40000, 80));
        assert_eq!(f.orig, (5, 420));
        assert_eq!(f.reply, (0, 0));
        assert_eq!(f.id, 7);
        assert_eq!(event_of(0x100, NLM_F_CREATE), Some(CtEvent::New));
        assert_eq!(event_of(0x100, 0), Some(CtEvent::Update));
        assert_eq!(event_of(0x102, 0), Some(CtEvent::Destroy));
    }
}
