//! The App Service front end of a stamp (docs/datapath.md "Front end"):
//! the process behind every site's `NAME.azurewebsites.net`. It runs in the
//! stamp's namespace, listens on the stamp's inbound address (HTTP 80, HTTPS
//! 443 with a certificate from the lab CA), picks the site from the Host
//! header, applies its access restrictions (`model::access_restriction`;
//! a denied caller gets Azure's 403), and forwards the connection to one of
//! the site's instances, round robin, adding `X-Forwarded-For`.
//!
//! Supervised like the service hosts: its configuration is re-read when the
//! file changes, so a rule change needs no restart.

pub mod config;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::model::access_restriction::{Caller, FORBIDDEN_BODY, FORBIDDEN_STATUS};
use config::FrontEndConfig;

const RELOAD_EVERY: Duration = Duration::from_millis(300);
const WHAT: &str = "front-end configuration";
/// The longest request head the front end reads before it answers 431.
const MAX_HEAD: usize = 64 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client or back-end connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Current {
    config: Arc<FrontEndConfig>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

struct Shared {
    path: PathBuf,
    current: RwLock<Current>,
    /// Next back end per site (round robin).
    next: Mutex<BTreeMap<String, Arc<AtomicUsize>>>,
}

/// A TLS acceptor for every host name the configuration serves.
fn acceptor(config: &FrontEndConfig) -> Result<Option<tokio_rustls::TlsAcceptor>> {
    let (Some((_, key)), false) = (&config.ca, config.sites.is_empty()) else {
        return Ok(None);
    };
    let tls = crate::services::ca::server_config(key, &config.host_names())?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(tls)))
}

/// Runs the front end until it is signalled.
pub fn run(config_path: &Path) -> Result<()> {
    let (config, modified) = crate::services::watch::load::<FrontEndConfig>(config_path, WHAT)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let inbound = config.inbound;
        eprintln!(
            "front end of the stamp in {} on {inbound}: {} site(s)",
            config.location,
            config.sites.len()
        );
        let shared = Arc::new(Shared {
            path: config_path.to_path_buf(),
            current: RwLock::new(Current {
                tls: acceptor(&config)?,
                config: Arc::new(config),
            }),
            next: Mutex::new(BTreeMap::new()),
        });
        for (port, tls) in [(80u16, false), (443, true)] {
            let listener = tokio::net::TcpListener::bind((inbound, port))
                .await
                .with_context(|| format!("listening on {inbound}:{port}"))?;
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        continue;
                    };
                    let SocketAddr::V4(peer) = peer else { continue };
                    tokio::spawn(serve(stream, *peer.ip(), tls, shared.clone()));
                }
            });
        }
        reload_loop(shared, modified).await;
        Ok(())
    })
}

async fn reload_loop(shared: Arc<Shared>, seen: Option<SystemTime>) {
    let path = shared.path.clone();
    crate::services::watch::watch(path, WHAT, RELOAD_EVERY, seen, |config: FrontEndConfig| {
        let tls = acceptor(&config)?;
        eprintln!("configuration reloaded: {} site(s)", config.sites.len());
        *shared.current.write().expect("config lock") = Current {
            config: Arc::new(config),
            tls,
        };
        Ok(())
    })
    .await
}

async fn serve(stream: TcpStream, peer: Ipv4Addr, tls: bool, shared: Arc<Shared>) {
    let mark = crate::services::host::socket_mark(&stream);
    let (config, acceptor) = {
        let c = shared.current.read().expect("config lock");
        (c.config.clone(), c.tls.clone())
    };
    let client: Box<dyn Io> = if tls {
        let Some(acceptor) = acceptor else { return };
        match acceptor.accept(stream).await {
            Ok(s) => Box::new(s),
            Err(_) => return,
        }
    } else {
        Box::new(stream)
    };
    // A private endpoint's link marks its flows; everyone else is the internet.
    let caller = if config.private_endpoint_marks.contains(&mark) {
        Caller::PrivateEndpoint
    } else if let Some((_, vnet)) = config
        .service_endpoint_marks
        .iter()
        .find(|(m, _)| *m == mark)
    {
        Caller::ServiceEndpoint {
            source: peer,
            vnet_id: vnet.clone(),
        }
    } else {
        Caller::Internet { source: peer }
    };
    if let Err(e) = proxy(client, peer, caller, tls, &config, &shared).await {
        eprintln!("{peer}: {e:#}");
    }
}

/// Reads up to the end of the request head (`\r\n\r\n`).
async fn read_head(client: &mut Box<dyn Io>) -> Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let _ = end;
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            anyhow::bail!("the client closed before its request head ended");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn answer(client: &mut Box<dyn Io>, status: u16, reason: &str, body: &str) -> Result<()> {
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(text.as_bytes()).await?;
    client.shutdown().await.ok();
    Ok(())
}

async fn proxy(
    mut client: Box<dyn Io>,
    peer: Ipv4Addr,
    caller: Caller,
    tls: bool,
    config: &FrontEndConfig,
    shared: &Shared,
) -> Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => {
            return answer(&mut client, 431, "Request Header Fields Too Large", "").await
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let Some((site, scm)) = header(&text, "host").and_then(|h| config.site_for_host(h)) else {
        return answer(
            &mut client,
            404,
            "Not Found",
            "<h1>404 Web Site not found.</h1>\n",
        )
        .await;
    };
    let decision = site.access.decide(scm, &caller);
    if !decision.allowed {
        eprintln!(
            "{peer} -> {}{}: denied ({})",
            site.name,
            if scm { ".scm" } else { "" },
            decision.rule.as_deref().unwrap_or("")
        );
        return answer(&mut client, FORBIDDEN_STATUS, "Forbidden", FORBIDDEN_BODY).await;
    }
    if site.backends.is_empty() {
        return answer(&mut client, 503, "Service Unavailable", "").await;
    }
    let counter = shared
        .next
        .lock()
        .expect("round robin lock")
        .entry(site.name.clone())
        .or_default()
        .clone();
    let backend = &site.backends[counter.fetch_add(1, Ordering::Relaxed) % site.backends.len()];
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(config.source, 0)))?;
    let to = SocketAddr::V4(SocketAddrV4::new(backend.address, backend.port));
    let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(to)).await {
        Ok(Ok(s)) => s,
        _ => return answer(&mut client, 502, "Bad Gateway", "").await,
    };
    // The request line, the front end's headers, then the rest as it came.
    let line_end = find(&head, b"\r\n").unwrap_or(0) + 2;
    let added = format!(
        "X-Forwarded-For: {peer}\r\nX-Client-IP: {peer}\r\nX-Forwarded-Proto: {}\r\nX-ARR-SSL: {}\r\n",
        if tls { "https" } else { "http" },
        if tls { "true" } else { "false" }
    );
    upstream.write_all(&head[..line_end]).await?;
    upstream.write_all(added.as_bytes()).await?;
    upstream.write_all(&head[line_end..]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::config::{Backend, FrontEndSite};
    use super::*;
    use crate::model::access_restriction::AccessPolicy;

    #[test]
    fn hosts_pick_the_site_and_the_scm_site() {
        let site = |name: &str| FrontEndSite {
            name: name.into(),
            backends: vec![Backend {
                instance: 0,
                address: Ipv4Addr::new(169, 254, 16, 1),
                port: 10000,
            }],
            access: AccessPolicy {
                public_network_access: true,
                main: Default::default(),
                scm: Default::default(),
            },
        };
        let c = FrontEndConfig {
            location: "westeurope".into(),
            inbound: Ipv4Addr::new(198, 18, 0, 9),
            source: Ipv4Addr::new(169, 254, 2, 1),
            sites: vec![site("web1"), site("api")],
            private_endpoint_marks: Vec::new(),
            service_endpoint_marks: Vec::new(),
            ca: None,
        };
        assert_eq!(
            c.site_for_host("WEB1.azurewebsites.net:80")
                .map(|(s, scm)| (s.name.as_str(), scm)),
            Some(("web1", false))
        );
        assert_eq!(
            c.site_for_host("api.scm.azurewebsites.net")
                .map(|(s, scm)| (s.name.as_str(), scm)),
            Some(("api", true))
        );
        assert!(c.site_for_host("other.azurewebsites.net").is_none());
        assert!(c.site_for_host("web1.example.com").is_none());
        assert_eq!(
            header("GET / HTTP/1.1\r\nhOsT: a.b\r\n\r\n", "Host"),
            Some("a.b")
        );
        assert_eq!(c.host_names().len(), 4);
    }
}
