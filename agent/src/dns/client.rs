//! A DNS stub client: one query to one server over UDP (TCP when the answer
//! is truncated), from the calling thread's network namespace, optionally
//! with a socket mark (the platform's traffic through an integration). Used
//! by `webapp nameresolver` and by the platform's own name resolution when an
//! app has custom DNS servers.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::Result;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// How long one try waits for its answer.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(1);
/// Tries per server.
pub const TRIES: usize = 2;

/// One query to `server`; `None` when it never answered.
pub fn ask(
    server: Ipv4Addr,
    name: &Name,
    rtype: RecordType,
    mark: Option<u32>,
) -> Result<Option<Message>> {
    let mut q = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(name.clone(), rtype));
    let bytes = q.to_vec()?;
    let peer = SocketAddr::from((server, 53));
    let sock = UdpSocket::bind(("0.0.0.0", 0))?;
    if let Some(mark) = mark {
        crate::platform::client::set_mark(sock.as_raw_fd(), mark)?;
    }
    sock.set_read_timeout(Some(TRY_TIMEOUT))?;
    let mut buf = [0u8; 4096];
    for _ in 0..TRIES {
        sock.send_to(&bytes, peer)?;
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Ok(m) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if from != peer || m.metadata.id != q.metadata.id {
                continue;
            }
            if m.metadata.truncation {
                return ask_tcp(SocketAddrV4::new(server, 53), &bytes, mark).map(Some);
            }
            return Ok(Some(m));
        }
    }
    Ok(None)
}

fn ask_tcp(peer: SocketAddrV4, query: &[u8], mark: Option<u32>) -> Result<Message> {
    use std::io::{Read, Write};
    let mut s = crate::platform::client::connect(peer, mark)?;
    s.set_read_timeout(Some(TRY_TIMEOUT))?;
    let mut out = (query.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(query);
    s.write_all(&out)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(Message::from_vec(&buf)?)
}

fn rand_id() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t ^ std::process::id()) as u16
}

/// The IPv4 address of `host` as the first of `servers` that answers gives
/// it (the last A record of the answer, after any CNAMEs), or why not.
pub fn lookup_a(servers: &[Ipv4Addr], host: &str, mark: Option<u32>) -> Result<Ipv4Addr, String> {
    let fqdn = if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    };
    let name = Name::from_ascii(&fqdn).map_err(|e| format!("{host}: {e}"))?;
    for server in servers {
        let m = match ask(*server, &name, RecordType::A, mark) {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => continue,
        };
        return match m.metadata.response_code {
            ResponseCode::NoError => m
                .answers
                .iter()
                .rev()
                .find_map(|r| match &r.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .ok_or_else(|| format!("{host}: no A record (DNS server {server})")),
            ResponseCode::NXDomain => Err(format!("{host}: NXDOMAIN (DNS server {server})")),
            rc => Err(format!("{host}: {rc} (DNS server {server})")),
        };
    }
    Err(format!(
        "{host}: no answer from the DNS servers {servers:?} (timed out)"
    ))
}
