//! Real connection probes from inside a lab namespace (connection
//! troubleshoot): TCP connects, each timed, optionally followed by an HTTP
//! GET whose status line must come back.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::netns;

fn one(dst: Ipv4Addr, port: u16, timeout: Duration, http: bool) -> Option<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((dst, port)), timeout).ok()?;
    let took = start.elapsed();
    if http {
        s.set_read_timeout(Some(timeout)).ok()?;
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {dst}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).ok()?;
        if !line.starts_with("HTTP/") {
            return None;
        }
    }
    Some(took)
}

/// `count` probes to `dst:port` from namespace `name`, one after the other;
/// each one's connect time, or `None` when it failed.
pub fn tcp_probes(
    name: &str,
    dst: Ipv4Addr,
    port: u16,
    count: u32,
    timeout: Duration,
    http: bool,
) -> Result<Vec<Option<Duration>>> {
    netns::in_netns(name, move || {
        Ok((0..count).map(|_| one(dst, port, timeout, http)).collect())
    })
}
