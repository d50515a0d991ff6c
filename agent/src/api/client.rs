//! A small blocking HTTP/1.1 client for the daemon's Unix socket: the CLI
//! sends one request per connection and reads the whole answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

/// The header that names the principal a request acts as (the lab's RBAC).
pub const PRINCIPAL_HEADER: &str = "x-ms-client-principal-name";

/// The daemon closed the connection before its answer was complete.
#[derive(Debug, thiserror::Error)]
#[error("the daemon closed the connection before it answered (it stopped or restarted)")]
pub struct ConnectionLost;

/// How long a client whose change lost its connection waits for the daemon
/// to answer again (a service manager restarts it) before giving up.
const RECOVERY_WAIT: Duration = Duration::from_secs(60);

/// Sends `method path` with an optional JSON body, acting as `principal`;
/// returns the status and the JSON answer.
///
/// A change whose connection is lost before the answer (the daemon died
/// mid-request) is not reported as a transport error: the client waits for
/// the daemon to be back and answers with the resource's real state, as
/// ARM's clients poll a long-running operation, in an error
/// `ConnectionLost` that carries it (`resource`, or `null` when the
/// resource does not exist).
pub fn request(
    socket: &Path,
    principal: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let (status, body) = match request_raw(socket, principal, method, path, body) {
        Err(e)
            if e.is::<ConnectionLost>()
                && method != "GET"
                && path.starts_with("/subscriptions/") =>
        {
            return recover(socket, principal, method, path);
        }
        other => other?,
    };
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
    // A daemon that dies (or restarts) before answering closes the
    // connection with nothing said: the request may or may not have been
    // committed, which `request` then finds out.
    if reader.read_line(&mut line).map_or(true, |n| n == 0) {
        return Err(ConnectionLost.into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line from daemon: {line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
            return Err(ConnectionLost.into());
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

/// After a lost connection: the resource's state once the daemon answers
/// again. A POST acts on its parent (`.../restart`, `.../validate`), which is
/// what is shown.
fn recover(socket: &Path, principal: &str, method: &str, path: &str) -> Result<(u16, Value)> {
    let path = path.split('?').next().unwrap_or(path);
    let target = if method == "POST" {
        path.rsplit_once('/').map_or(path, |(parent, _)| parent)
    } else {
        path
    };
    let deadline = Instant::now() + RECOVERY_WAIT;
    let (status, now) = loop {
        match request_raw(socket, principal, "GET", target, None) {
            Ok((status, body)) => break (status, serde_json::from_slice(&body).unwrap_or(Value::Null)),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => {
                return Err(e).context(format!(
                    "{ConnectionLost}, and did not answer again within {} s: whether the change was committed is unknown",
                    RECOVERY_WAIT.as_secs()
                ))
            }
        }
    };
    let (resource, state) = if (200..300).contains(&status) {
        let state = now
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            .unwrap_or("Succeeded")
            .to_string();
        (now, format!("exists, provisioningState {state}"))
    } else {
        (Value::Null, "does not exist".to_string())
    };
    let message = format!(
        "The daemon closed the connection before it answered {method} (it stopped or restarted); \
         it is answering again, and {target} now {state}. Show it, or send the request again \
         (a PUT or DELETE sent twice ends the same as sent once)."
    );
    Ok((
        503,
        serde_json::json!({ "error": { "code": "ConnectionLost", "message": message }, "resource": resource }),
    ))
}
