//! A small blocking HTTP/1.1 client for the daemon's Unix socket: the CLI
//! sends one request per connection and reads the whole answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The header that names the principal a request acts as (the lab's RBAC).
pub const PRINCIPAL_HEADER: &str = "x-ms-client-principal-name";

/// Sends `method path` with an optional JSON body, acting as `principal`;
/// returns the status and the JSON answer.
pub fn request(
    socket: &Path,
    principal: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let (status, body) = request_raw(socket, principal, method, path, body)?;
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "daemon answered {status} with a body that is not JSON: {}",
                String::from_utf8_lossy(&body)
            )
        })?
    };
    Ok((status, value))
}

/// Like [`request`], with the answer's bytes as they came (`lab graph`'s
/// dot, Mermaid and HTML are not JSON).
pub fn request_raw(
    socket: &Path,
    principal: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Vec<u8>)> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the vnet-agent daemon at {} (is `vnet-agent serve` running? \
             set --socket or VNET_AGENT_SOCKET)",
            socket.display()
        )
    })?;
    let payload = body
        .map(serde_json::to_vec)
        .transpose()?
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: vnet-agent\r\nConnection: close\r\n\
         Content-Type: application/json\r\n{PRINCIPAL_HEADER}: {principal}\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&payload)?;

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line from daemon: {line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("daemon closed the connection in the middle of the headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .context("bad chunk size")?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = content_length {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok((status, body))
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
