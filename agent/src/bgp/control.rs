//! BIRD's control socket: the text protocol `birdc` speaks. Each reply line
//! starts with a 4-digit code and `-` (more follows) or ` ` (the last line);
//! a line starting with a space continues the previous code's text.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;

/// Sends one command and returns the reply's text lines (codes stripped).
pub fn query(socket: &Path, command: &str) -> Result<Vec<String>> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to BIRD's control socket {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    // The greeting: `0001 BIRD 2.0.12 ready.`
    reader.read_line(&mut line)?;
    if !line.starts_with("0001") {
        bail!("unexpected greeting from BIRD: {line:?}");
    }
    (&stream).write_all(format!("{command}\n").as_bytes())?;
    let mut out = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("BIRD closed the control socket in the middle of a reply");
        }
        let text = line.trim_end_matches('\n');
        let bytes = text.as_bytes();
        if bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit) {
            let code = &text[..4];
            let last = bytes[4] == b' ';
            if code.starts_with('8') || code.starts_with('9') {
                bail!("BIRD refused '{command}': {}", &text[5..]);
            }
            out.push(text[5..].to_string());
            if last {
                break;
            }
        } else {
            out.push(text.trim_start_matches(' ').to_string());
        }
    }
    Ok(out)
}

/// One route of `show route all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdRoute {
    pub network: Ipv4Net,
    /// The protocol that brought it (a session or a static announcement).
    pub protocol: String,
    /// Chosen as the best route for its network.
    pub primary: bool,
    pub as_path: Vec<u32>,
    pub next_hop: Option<Ipv4Addr>,
    /// `BGP.origin`: IGP, EGP or Incomplete (None for a static route).
    pub origin: Option<String>,
    pub local_pref: Option<u32>,
    pub from: Option<Ipv4Addr>,
}

/// Parses the lines of `show route all [...]`.
pub fn parse_routes(lines: &[String]) -> Vec<BirdRoute> {
    let mut out: Vec<BirdRoute> = Vec::new();
    let mut network: Option<Ipv4Net> = None;
    for raw in lines {
        let line = raw.trim();
        if line.starts_with("Table ") || line.is_empty() {
            continue;
        }
        // A route line: `<net>  unicast [proto time] * (100) [AS65050i]`, or
        // a further route of the same network: `unicast [proto ...]`.
        let first = line.split_whitespace().next().unwrap_or_default();
        let route_line =
            line.contains('[') && !line.contains(':') || first.parse::<Ipv4Net>().is_ok();
        if route_line && line.contains('[') {
            let mut rest = line;
            if let Ok(n) = first.parse::<Ipv4Net>() {
                network = Some(n);
                rest = line[first.len()..].trim_start();
            }
            let Some(net) = network else { continue };
            let protocol = rest
                .split('[')
                .nth(1)
                .and_then(|p| p.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            out.push(BirdRoute {
                network: net,
                protocol,
                primary: rest.contains("] *"),
                as_path: Vec::new(),
                next_hop: None,
                origin: None,
                local_pref: None,
                from: None,
            });
            continue;
        }
        let Some(r) = out.last_mut() else { continue };
        if let Some(v) = line.strip_prefix("BGP.as_path:") {
            r.as_path = v
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
        } else if let Some(v) = line.strip_prefix("BGP.next_hop:") {
            r.next_hop = v.split_whitespace().next().and_then(|a| a.parse().ok());
        } else if let Some(v) = line.strip_prefix("BGP.origin:") {
            r.origin = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("BGP.local_pref:") {
            r.local_pref = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("from ") {
            r.from = v.split_whitespace().next().and_then(|a| a.parse().ok());
        } else if let Some(v) = line.strip_prefix("via ") {
            if r.next_hop.is_none() {
                r.next_hop = v.split_whitespace().next().and_then(|a| a.parse().ok());
            }
        }
    }
    out
}

/// `show protocols`: (name, protocol type, state, info) of each protocol.
pub fn parse_protocols(lines: &[String]) -> Vec<(String, String, String, String)> {
    lines
        .iter()
        .skip_while(|l| !l.starts_with("Name"))
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let proto = f.next()?.to_string();
            let _table = f.next()?;
            let state = f.next()?.to_string();
            let _since = f.next();
            let info = f.collect::<Vec<_>>().join(" ");
            Some((name, proto, state, info))
        })
        .collect()
}
