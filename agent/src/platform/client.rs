//! The platform's own connections, made from a worker namespace: TCP with
//! an optional socket mark (which picks the route, see
//! `plan::startup::Integration`), a small HTTP/1.1 exchange over plain TCP
//! or TLS, and the SMB greeting of an emulated file endpoint. Blocking: it
//! runs on the thread that entered the worker namespace
//! (`dataplane::in_netns_async`).

use std::io::{self, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::time::Duration;

/// How long a connection attempt may take: long enough for the lab, short
/// enough that a dropping NSG does not hold a reconcile for long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole exchange may take once connected.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP connection from the current namespace, marked with `mark` before
/// `connect` so policy routing sees the mark (Linux applies `SO_SNDTIMEO` to
/// a blocking `connect`, which gives the timeout).
pub fn connect(to: SocketAddrV4, mark: Option<u32>) -> io::Result<TcpStream> {
    // A service host the supervisor has just started may not listen yet:
    // a refused connection is retried for a moment before it counts.
    let deadline = std::time::Instant::now() + REFUSED_GRACE;
    loop {
        match connect_once(to, mark) {
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionRefused
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// How long a refused connection is retried (a just-started service host).
const REFUSED_GRACE: Duration = Duration::from_secs(3);

fn connect_once(to: SocketAddrV4, mark: Option<u32>) -> io::Result<TcpStream> {
    // SAFETY: plain socket(2); the fd is owned by the TcpStream below or closed on error.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    if let Some(mark) = mark {
        set_mark(fd, mark)?;
    }
    let tv = libc::timeval {
        tv_sec: CONNECT_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &tv)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*to.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: addr is a valid sockaddr_in of the given length.
    let rc = unsafe {
        libc::connect(
            fd,
            &addr as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINPROGRESS) | Some(libc::EAGAIN) => {
                io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
            }
            _ => e,
        });
    }
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// `SO_MARK` on a socket: policy routing picks the route by it.
pub(crate) fn set_mark(fd: i32, mark: u32) -> io::Result<()> {
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_MARK, &mark)
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: value points to a T of the given size for the call's duration.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// `x-lab-source-address`: what the emulated service saw.
    pub source_address: Option<String>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole answer.
pub fn http<S: Read + Write>(
    mut s: S,
    method: &str,
    host: &str,
    path: &str,
    body: &[u8],
) -> io::Result<Response> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vnet-agent-platform\r\n\
         Accept: application/json, application/vnd.oci.image.manifest.v1+json, \
         application/vnd.docker.distribution.manifest.v2+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify: keep what arrived.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Parses a whole HTTP/1.1 response (Content-Length, chunked, or to EOF).
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut chunked = false;
    let mut length = None;
    let mut source_address = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "x-lab-source-address" {
                source_address = Some(v.to_string());
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) => rest.get(..n).ok_or_else(|| bad("short body"))?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok(Response {
        status,
        source_address,
        body,
    })
}

/// [`http`] over TLS, trusting only the lab CA (`ca_pem`): the emulated
/// services' certificates are signed by it for their public and privatelink
/// names, so a name that does not match fails as it would in Azure.
pub fn https(
    tcp: TcpStream,
    ca_pem: Option<&[u8]>,
    host: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> io::Result<Response> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let tls_err = |e: &dyn std::fmt::Display| io::Error::other(format!("TLS: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.unwrap_or_default()) {
        roots
            .add(cert.map_err(|e| tls_err(&e))?)
            .map_err(|e| tls_err(&e))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_err(&e))?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| tls_err(&e))?;
    http(
        rustls::StreamOwned::new(conn, tcp),
        method,
        host,
        path,
        body,
    )
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("bad chunk"))?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| bad("bad chunk"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or_else(|| bad("short chunk"))?);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

/// The one JSON line an emulated SMB endpoint writes on connect.
pub fn smb_greeting(s: &mut TcpStream) -> io::Result<serde_json::Value> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while raw.len() < 64 * 1024 {
        match s.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => raw.push(byte[0]),
        }
    }
    serde_json::from_slice(&raw).map_err(|_| bad("the SMB endpoint sent no JSON greeting"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse() {
        let r = parse_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}xx").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (403, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.json(), serde_json::json!({"a": 1}));
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nhello").unwrap();
        assert_eq!(r.body, b"hello");
        assert!(parse_response(b"garbage").is_err());
    }
}
