//! The netfilter netlink family (`NETLINK_NETFILTER`) at the byte level:
//! sockets bound to multicast groups, messages and nested attributes. Shared
//! by the conntrack reader, the NFLOG reader (flow logs) and the nftables
//! trace reader (explain); their messages are small and fixed in shape, so
//! they are read here directly rather than through a crate.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};

const NETLINK_NETFILTER: libc::c_int = 12;

/// The attributes of a message body or of a nested attribute: `(type, payload)`.
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER are flags, not the type.
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((ty, payload))
    })
}

/// The payload of attribute `ty`.
pub fn find(b: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(b).find(|(t, _)| *t == ty).map(|(_, p)| p)
}

/// One attribute, padded.
pub fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(payload);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// Splits a datagram into netlink messages: `(type, flags, body)`.
pub fn messages(mut b: &[u8]) -> Vec<(u16, u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32::from_ne_bytes(b[0..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > b.len() {
            break;
        }
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        out.push((ty, flags, &b[16..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// A netfilter netlink socket of the calling thread's namespace, joined to
/// the multicast `groups` (a bitmask), with a large receive buffer so a
/// burst does not overflow it.
pub fn socket(groups: u32, nonblocking: bool) -> Result<OwnedFd> {
    let flags =
        libc::SOCK_RAW | libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_NETLINK, flags, NETLINK_NETFILTER) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("netlink socket");
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: a zeroed sockaddr_nl is valid; the fields are set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    addr.nl_groups = groups;
    // SAFETY: `addr` lives across the call and its size is passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).context("binding the netlink socket");
    }
    let size: libc::c_int = 4 << 20;
    // SAFETY: setsockopt with a c_int option value.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
    }
    Ok(fd)
}

/// One datagram into `buf` (`flags`: 0, or `MSG_DONTWAIT`).
pub fn recv(fd: &OwnedFd, buf: &mut [u8], flags: libc::c_int) -> std::io::Result<usize> {
    // SAFETY: reading into a buffer we own, of its length.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            flags,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sends one request to the kernel.
pub fn send(fd: &OwnedFd, req: &[u8]) -> std::io::Result<()> {
    // SAFETY: sending a buffer we own, of its length, to the kernel.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
