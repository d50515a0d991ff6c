//! The service host process (`vnet-agent service-host --config FILE`), run by
//! the supervisor inside the service's namespace. It listens on the
//! service's ports, tells every client the source address and path it saw
//! (notes/service-api.md, "Wire answers"), refuses what the network rules
//! refuse with Azure's 403 bodies, and re-reads its configuration when the
//! agent rewrites the file (polled by modification time), so rule changes
//! need no restart and open connections survive agent restarts.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::acl::{admits, Origin};
use super::config::{AccessPath, HostConfig};
use crate::model::ServiceKind;

/// Largest blob body the host keeps (in memory).
const MAX_BLOB: usize = 16 << 20;
/// How often the configuration file's modification time is checked.
const RELOAD_EVERY: Duration = Duration::from_millis(300);
const WHAT: &str = "service host configuration";

struct Shared {
    path: PathBuf,
    /// Swapped whole on reload; a request holds the one it started with.
    config: RwLock<Arc<HostConfig>>,
    /// `container/blob` -> bytes (PUT stores, GET returns).
    blobs: Mutex<BTreeMap<String, Bytes>>,
    /// Blobs the platform writes for the account (VNet flow logs, packet
    /// captures): `<dir>/<container>/<blob>`, beside the configuration
    /// ([`blob_dir`]), served like uploaded ones.
    blob_dir: PathBuf,
}

/// Where the platform deposits the blobs of the storage account whose host
/// reads `config_path`.
pub fn blob_dir(config_path: &Path) -> PathBuf {
    config_path.with_extension("blobs")
}

/// A platform-written blob, if there is one (`..` never leaves the directory).
fn disk_blob(shared: &Shared, container: &str, blob: &[&str]) -> Option<Bytes> {
    if std::iter::once(&container)
        .chain(blob)
        .any(|s| *s == ".." || *s == ".")
    {
        return None;
    }
    std::fs::read(shared.blob_dir.join(container).join(blob.join("/")))
        .ok()
        .map(Bytes::from)
}

/// Names of the platform-written blobs of a container, relative to it.
fn disk_blob_names(dir: &Path, base: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            disk_blob_names(&p, base, out);
        } else if let Ok(rel) = p.strip_prefix(base) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

/// Blob storage's List Blobs answer (`?restype=container&comp=list`).
fn list_blobs(shared: &Shared, container: &str, prefix: &str) -> String {
    let mut names: Vec<String> = shared
        .blobs
        .lock()
        .expect("blobs")
        .keys()
        .filter_map(|k| k.strip_prefix(&format!("{container}/")).map(str::to_string))
        .collect();
    if container != ".." && container != "." {
        let base = shared.blob_dir.join(container);
        disk_blob_names(&base, &base, &mut names);
    }
    names.retain(|n| n.starts_with(prefix));
    names.sort();
    names.dedup();
    let blobs: String = names
        .iter()
        .map(|n| format!("<Blob><Name>{}</Name></Blob>", xml_escape(n)))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ContainerName=\"{}\"><Prefix>{}</Prefix><Blobs>{blobs}</Blobs><NextMarker /></EnumerationResults>",
        xml_escape(container),
        xml_escape(prefix)
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Shared {
    /// The configuration in force (a pointer copy, not a copy of its
    /// secrets, images and ingress lists per request).
    fn current(&self) -> Arc<HostConfig> {
        self.config.read().expect("config lock").clone()
    }
}

/// One accepted connection: who, and which way it came.
#[derive(Clone, Copy)]
struct Conn {
    peer: Ipv4Addr,
    peer_port: u16,
    mark: u32,
    port: u16,
}

/// Runs the host until it is signalled.
pub fn run(config_path: &Path) -> Result<()> {
    let (config, modified) = super::watch::load::<HostConfig>(config_path, WHAT)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let tls = match &config.ca {
            Some((_, key)) => Some(tokio_rustls::TlsAcceptor::from(super::ca::server_config(
                key,
                &config.host_names,
            )?)),
            None => None,
        };
        let ports = config.ports();
        eprintln!(
            "service host for {} {} on {}: ports {ports:?}",
            config.service, config.name, config.public_ip
        );
        let shared = Arc::new(Shared {
            path: config_path.to_path_buf(),
            config: RwLock::new(Arc::new(config)),
            blobs: Mutex::new(BTreeMap::new()),
            blob_dir: blob_dir(config_path),
        });
        for port in ports {
            let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
                .await
                .with_context(|| format!("listening on port {port}"))?;
            let (shared, tls) = (shared.clone(), tls.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        continue;
                    };
                    let conn = Conn {
                        peer: match peer {
                            SocketAddr::V4(a) => *a.ip(),
                            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                        },
                        peer_port: peer.port(),
                        mark: socket_mark(&stream),
                        port,
                    };
                    tokio::spawn(serve(stream, conn, shared.clone(), tls.clone()));
                }
            });
        }
        reload_loop(shared, modified).await;
        Ok(())
    })
}

/// Re-reads the configuration whenever the file changes.
async fn reload_loop(shared: Arc<Shared>, seen: Option<SystemTime>) {
    let path = shared.path.clone();
    super::watch::watch(path, WHAT, RELOAD_EVERY, seen, |config: HostConfig| {
        eprintln!("configuration reloaded: access {:?}", config.access);
        *shared.config.write().expect("config lock") = Arc::new(config);
        Ok(())
    })
    .await
}

/// The mark the connection's packets carried into the namespace (the
/// ingress link), which an accepted socket inherits (`tcp_fwmark_accept`).
pub(crate) fn socket_mark(stream: &TcpStream) -> u32 {
    let mut mark: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: a valid socket fd and an out-buffer of the size given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mut mark as *mut u32).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        mark
    } else {
        0
    }
}

async fn serve(
    stream: TcpStream,
    conn: Conn,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    if conn.port == 445 {
        smb(stream, conn, &shared).await;
        return;
    }
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(respond(req, conn, &shared).await) }
    });
    let http = hyper::server::conn::http1::Builder::new();
    if conn.port == 443 {
        let Some(tls) = tls else { return };
        if let Ok(s) = tls.accept(stream).await {
            let _ = http.serve_connection(TokioIo::new(s), svc).await;
        }
    } else {
        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
    }
}

/// What a connection is, as every answer says it.
fn identity(cfg: &HostConfig, origin: &Origin, conn: Conn, endpoint: &str) -> Value {
    json!({
        "sourcePort": conn.peer_port,
        "service": cfg.service,
        "name": cfg.name,
        "endpoint": endpoint,
        "sourceAddress": origin.source.to_string(),
        "path": origin.path,
        "virtualNetwork": origin.virtual_network,
    })
}

/// Azure's 403 body for a connection the network rules refuse.
fn denied_body(kind: Option<ServiceKind>, source: Ipv4Addr) -> Value {
    match kind {
        Some(ServiceKind::KeyVault) => json!({"error": {
            "code": "Forbidden",
            "message": format!("Client address is not authorized and caller is not a trusted service.\r\nClient address: {source}"),
            "innererror": {"code": "ForbiddenByFirewall"}}}),
        Some(ServiceKind::ContainerRegistry) => json!({"errors": [{
            "code": "DENIED",
            "message": format!("client with IP '{source}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.")}]}),
        _ => json!({"error": {
            "code": "AuthorizationFailure",
            "message": "This request is not authorized to perform this operation."}}),
    }
}

fn origin_of(cfg: &HostConfig, conn: Conn) -> Origin {
    Origin::of(conn.peer, cfg.ingress_of(conn.mark))
}

/// SMB 445: one JSON line (the identity, or the refusal), then close.
async fn smb(mut stream: TcpStream, conn: Conn, shared: &Shared) {
    let cfg = shared.current();
    let origin = origin_of(&cfg, conn);
    let admitted = admits(&cfg.access, &origin);
    let mut line = if admitted {
        identity(&cfg, &origin, conn, "file")
    } else {
        let mut v = denied_body(cfg.kind(), conn.peer);
        merge(&mut v, identity(&cfg, &origin, conn, "file"));
        v
    };
    line["status"] = json!(if admitted { 200 } else { 403 });
    let _ = stream.write_all(format!("{line}\n").as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Adds `extra`'s fields to `v` (both objects).
fn merge(v: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        for (k, x) in e {
            o.entry(k).or_insert(x);
        }
    }
}

fn reply(status: StatusCode, source: Ipv4Addr, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-lab-source-address", source.to_string())
        .body(Full::new(Bytes::from(format!("{body}\n"))))
        .expect("valid response")
}

async fn respond(req: Request<Incoming>, conn: Conn, shared: &Shared) -> Response<Full<Bytes>> {
    let cfg = shared.current();
    let origin = origin_of(&cfg, conn);
    let kind = cfg.kind();
    let endpoint = match kind {
        Some(ServiceKind::Storage) => "blob",
        Some(ServiceKind::KeyVault) => "vault",
        _ => "registry",
    };
    let id = identity(&cfg, &origin, conn, endpoint);
    if !admits(&cfg.access, &origin) {
        let mut body = denied_body(kind, conn.peer);
        merge(&mut body, id);
        return reply(StatusCode::FORBIDDEN, conn.peer, body);
    }
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let with = |mut v: Value| {
        merge(&mut v, id.clone());
        v
    };
    match (kind, req.method().clone(), segments.as_slice()) {
        (_, Method::GET, []) => reply(StatusCode::OK, conn.peer, id.clone()),
        (Some(ServiceKind::Storage), Method::PUT, [container, blob @ ..]) if !blob.is_empty() => {
            let key = format!("{container}/{}", blob.join("/"));
            let Ok(body) = Limited::new(req.into_body(), MAX_BLOB).collect().await else {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    conn.peer,
                    with(
                        json!({"error": {"code": "RequestBodyTooLarge", "message": "The request body is too large."}}),
                    ),
                );
            };
            let bytes = body.to_bytes();
            let size = bytes.len();
            shared
                .blobs
                .lock()
                .expect("blobs")
                .insert(key.clone(), bytes);
            reply(
                StatusCode::CREATED,
                conn.peer,
                with(json!({"blob": key, "size": size})),
            )
        }
        (Some(ServiceKind::Storage), Method::GET, [container, blob @ ..]) if !blob.is_empty() => {
            let key = format!("{container}/{}", blob.join("/"));
            let stored = shared.blobs.lock().expect("blobs").get(&key).cloned();
            match stored.or_else(|| disk_blob(shared, container, blob)) {
                Some(bytes) => Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/octet-stream")
                    .header("x-lab-source-address", conn.peer.to_string())
                    .header("x-lab-path", path_name(origin.path))
                    .body(Full::new(bytes))
                    .expect("valid response"),
                None => reply(
                    StatusCode::NOT_FOUND,
                    conn.peer,
                    with(
                        json!({"error": {"code": "BlobNotFound", "message": "The specified blob does not exist."}}),
                    ),
                ),
            }
        }
        (Some(ServiceKind::Storage), Method::GET, [container])
            if req.uri().query().is_some_and(|q| q.contains("comp=list")) =>
        {
            let prefix = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .unwrap_or("")
                .replace("%2F", "/")
                .replace("%3D", "=");
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/xml")
                .header("x-lab-source-address", conn.peer.to_string())
                .body(Full::new(Bytes::from(list_blobs(
                    shared, container, &prefix,
                ))))
                .expect("valid response")
        }
        (Some(ServiceKind::KeyVault), Method::GET, ["secrets", name, rest @ ..])
            if rest.len() <= 1 =>
        {
            let found = cfg.secrets.iter().find(|s| {
                s.name.eq_ignore_ascii_case(name) && rest.first().is_none_or(|v| *v == s.version)
            });
            match found {
                Some(s) => reply(
                    StatusCode::OK,
                    conn.peer,
                    with(json!({
                        "value": s.value,
                        "id": format!("https://{}.vault.azure.net/secrets/{}/{}", cfg.name.to_ascii_lowercase(), s.name, s.version),
                        "attributes": {"enabled": true},
                    })),
                ),
                None => reply(
                    StatusCode::NOT_FOUND,
                    conn.peer,
                    with(
                        json!({"error": {"code": "SecretNotFound", "message": format!(
                        "A secret with (name/id) {} was not found in this key vault. If you recently deleted this \
                         secret you may be able to recover it using the correct recovery command.",
                        rest.first().map(|v| format!("{name}/{v}")).unwrap_or_else(|| name.to_string()))}}),
                    ),
                ),
            }
        }
        (Some(ServiceKind::ContainerRegistry), Method::GET | Method::HEAD, ["v2"]) => {
            reply(StatusCode::OK, conn.peer, id.clone())
        }
        (
            Some(ServiceKind::ContainerRegistry),
            Method::GET | Method::HEAD,
            ["v2", repo @ .., "manifests", tag],
        ) if !repo.is_empty() => {
            let repository = repo.join("/");
            match cfg
                .images
                .iter()
                .find(|i| i.repository == repository && i.tag == *tag)
            {
                Some(_) => {
                    let mut v = with(manifest(&cfg.name, &repository, tag));
                    v["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
                    let mut r = reply(StatusCode::OK, conn.peer, v);
                    r.headers_mut().insert(
                        "content-type",
                        "application/vnd.oci.image.manifest.v1+json"
                            .parse()
                            .expect("valid"),
                    );
                    r
                }
                None => reply(
                    StatusCode::NOT_FOUND,
                    conn.peer,
                    with(json!({"errors": [{"code": "MANIFEST_UNKNOWN",
                        "message": format!("manifest tagged by \"{tag}\" is not found"),
                        "detail": {"Name": repository, "Revision": tag}}]})),
                ),
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            conn.peer,
            with(
                json!({"error": {"code": "NotFound", "message": format!("{} {path} is not emulated.", req.method())}}),
            ),
        ),
    }
}

/// A stable OCI image manifest for `registry/repository:tag` (digests derived
/// from the names: the lab has no layers).
fn manifest(registry: &str, repository: &str, tag: &str) -> Value {
    let digest = |what: &str| {
        format!(
            "sha256:{}",
            crate::plan::names::sha256_hex(&format!("{registry}/{repository}:{tag}/{what}"))
        )
    };
    json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest("config"), "size": 1024},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest("layer0"), "size": 4096}],
        "annotations": {"org.opencontainers.image.ref.name": format!("{repository}:{tag}")},
    })
}

/// The `path` of an answer, as a header of raw blob downloads.
fn path_name(p: AccessPath) -> &'static str {
    match p {
        AccessPath::Public => "public",
        AccessPath::ServiceEndpoint => "serviceEndpoint",
        AccessPath::PrivateEndpoint => "privateEndpoint",
    }
}
