//! EFFECTFUL: the lab's DNS servers on the wire, and the resolv.conf files
//! of the namespaces where programs run (docs/datapath.md, "DNS").
//!
//! One server per [`DnsServerPlan`]: Azure-provided DNS at 168.63.129.16
//! inside every VNet's fabric, the lab's public DNS in the internet. Each has
//! a UDP and a TCP socket on port 53 made inside its namespace (a socket
//! belongs to the namespace it was created in, so VNets with overlapping
//! address spaces stay apart), driven by the daemon's runtime. Answers come
//! from [`crate::dns::Resolver`], rebuilt from the state on every reconcile,
//! so a change is answered right after its apply without a restart.
//!
//! Level-triggered like the rest of the dataplane: [`DnsServers::sync`]
//! starts the servers the plan has and are missing (after an agent restart:
//! all of them), restarts one whose namespace was replaced, and ends the ones
//! that left the plan. An ended server's sockets are closed, so nothing keeps
//! a deleted namespace alive.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

use crate::dataplane::{in_netns, netns_path};
use crate::dns::wire::{respond, Transport};

/// Queries the lab's DNS servers answered, by response code (the low four
/// bits of the answer's RCODE): `GET /metrics` reports them.
pub static ANSWERS_BY_RCODE: [std::sync::atomic::AtomicU64; 16] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 16];

fn count(answer: &[u8]) {
    if let Some(b) = answer.get(3) {
        ANSWERS_BY_RCODE[usize::from(b & 0x0f)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
use crate::dns::{Resolver, Tables};
use crate::model::{Inventory, LabState, ResourceId};
use crate::plan::{DnsServerPlan, DnsView, NetworkPlan};

/// The DNS port.
pub const DNS_PORT: u16 = 53;
/// UDP receive tasks per server: one per runtime worker thread.
const UDP_TASKS: usize = 2;
/// A TCP client idle this long is disconnected (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Directory (under the state directory) of the resolv.conf files.
const RESOLV_DIR: &str = "resolv";

/// The resolv.conf the agent writes for namespace `netns`: bind-mounted on
/// `/etc/resolv.conf` of every program it runs there (app processes, VM
/// extensions, `exec`).
pub fn resolv_conf_path(state_dir: &Path, netns: &str) -> PathBuf {
    state_dir.join(RESOLV_DIR).join(format!("{netns}.conf"))
}

/// The answers of one server, replaced whole on every reconcile.
#[derive(Clone, Default)]
struct View(Arc<RwLock<Arc<Resolver>>>);

impl View {
    fn current(&self) -> Arc<Resolver> {
        self.0.read().expect("view lock").clone()
    }
    fn replace(&self, r: Resolver) {
        *self.0.write().expect("view lock") = Arc::new(r);
    }
}

struct Running {
    plan: DnsServerPlan,
    /// `(device, inode)` of the namespace the sockets were made in.
    namespace: (u64, u64),
    view: View,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Aborting drops each task's future, closing its sockets (and those
        // of its TCP connections, held in the accept task's JoinSet).
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The running DNS servers of one lab, keyed by namespace.
pub struct DnsServers {
    state_dir: PathBuf,
    running: Mutex<BTreeMap<String, Running>>,
}

/// The namespace's identity: a namespace deleted and made again under the
/// same name is another one, and the sockets must be made again.
fn namespace_id(netns: &str) -> Option<(u64, u64)> {
    std::fs::metadata(netns_path(netns))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn resolver_for(view: &DnsView, tables: &Tables, state: &LabState, inv: &Inventory) -> Resolver {
    match view {
        DnsView::Public => tables.public(),
        DnsView::VirtualNetwork { vnet_id } => match vnet_id.parse::<ResourceId>() {
            Ok(id) => tables.for_vnet(state, inv, &id),
            Err(_) => tables.public(),
        },
    }
}

impl DnsServers {
    pub fn new(state_dir: &Path) -> DnsServers {
        DnsServers {
            state_dir: state_dir.to_path_buf(),
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Ends the servers the plan no longer has, or whose namespace is gone
    /// or replaced. Called before the dataplane deletes namespaces, so no
    /// socket of ours keeps a deleted namespace (and its links) alive.
    pub fn stop_gone(&self, plan: &NetworkPlan) {
        let mut running = self.running.lock().expect("dns lock");
        running.retain(|netns, r| {
            let keep =
                plan.dns_servers.contains(&r.plan) && namespace_id(netns) == Some(r.namespace);
            if !keep {
                tracing::info!(netns = %netns, address = %r.plan.address, "stopping DNS server");
            }
            keep
        });
    }

    /// Makes the running servers match the plan and gives each the answers
    /// of `state`.
    #[tracing::instrument(skip_all, fields(servers = plan.dns_servers.len()))]
    pub async fn sync(&self, plan: &NetworkPlan, state: &LabState) -> Result<()> {
        self.stop_gone(plan);
        let inv = Inventory::parse_lenient(&state.resources);
        let tables = Tables::new(state, &inv);
        let mut errors = Vec::new();
        for p in &plan.dns_servers {
            let resolver = resolver_for(&p.view, &tables, state, &inv);
            if let Some(r) = self.running.lock().expect("dns lock").get(&p.netns) {
                r.view.replace(resolver);
                continue;
            }
            let view = View::default();
            view.replace(resolver);
            match start(p, view.clone()).await {
                Ok((namespace, tasks)) => {
                    tracing::info!(netns = %p.netns, address = %p.address, "started DNS server");
                    self.running.lock().expect("dns lock").insert(
                        p.netns.clone(),
                        Running {
                            plan: p.clone(),
                            namespace,
                            view,
                            tasks,
                        },
                    );
                }
                Err(e) => errors.push(format!("{}: {e:#}", p.netns)),
            }
        }
        if !errors.is_empty() {
            anyhow::bail!("could not start DNS servers: {}", errors.join("; "));
        }
        Ok(())
    }

    /// Ends every server (`down`).
    pub fn stop_all(&self) {
        self.running.lock().expect("dns lock").clear();
    }

    /// Addresses and namespaces of the running servers.
    pub fn status(&self) -> Vec<serde_json::Value> {
        self.running
            .lock()
            .expect("dns lock")
            .values()
            .map(|r| serde_json::json!({ "netns": r.plan.netns, "address": r.plan.address, "view": r.plan.view }))
            .collect()
    }

    /// Writes the resolv.conf of every namespace of the plan that has a
    /// resolver, in place (the same inode: a bind mount of it in a running
    /// program's mount namespace sees the new servers), only when its text
    /// changed; removes the files of namespaces that left the plan.
    pub fn write_resolv_confs(&self, plan: &NetworkPlan) -> Result<()> {
        let dir = self.state_dir.join(RESOLV_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (netns, r) in &plan.resolvers {
            let path = resolv_conf_path(&self.state_dir, netns);
            let text = r.resolv_conf();
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                // Bind-mounted as the program's /etc/resolv.conf, which a
                // program that drops privileges (dnsmasq as nobody) still
                // reads: world-readable, as /etc/resolv.conf is. It holds no
                // secret; the state directory around it stays 0700.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
            }
        }
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = name
                .strip_suffix(".conf")
                .is_some_and(|n| plan.resolvers.contains_key(n));
            if !keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Removes every resolv.conf file (`down`).
    pub fn remove_resolv_confs(&self) {
        let _ = std::fs::remove_dir_all(self.state_dir.join(RESOLV_DIR));
    }
}

/// Makes the server's sockets inside its namespace and starts its tasks.
async fn start(p: &DnsServerPlan, view: View) -> Result<((u64, u64), Vec<JoinHandle<()>>)> {
    let netns = p.netns.clone();
    let addr = SocketAddr::from((p.address, DNS_PORT));
    let (udp, tcp, namespace) = tokio::task::spawn_blocking(move || {
        in_netns(&netns, move || {
            let udp =
                std::net::UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?;
            udp.set_nonblocking(true)?;
            let tcp =
                std::net::TcpListener::bind(addr).with_context(|| format!("binding TCP {addr}"))?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })
        .map(|(u, t)| (u, t, namespace_id(&netns)))
    })
    .await??;
    let namespace = namespace.context("the namespace vanished")?;
    let udp = Arc::new(UdpSocket::from_std(udp)?);
    let tcp = TcpListener::from_std(tcp)?;
    let mut tasks: Vec<JoinHandle<()>> = (0..UDP_TASKS)
        .map(|_| tokio::spawn(serve_udp(udp.clone(), view.clone())))
        .collect();
    tasks.push(tokio::spawn(serve_tcp(tcp, view)));
    Ok((namespace, tasks))
}

async fn serve_udp(sock: Arc<UdpSocket>, view: View) {
    let mut buf = vec![0u8; 4096];
    loop {
        if let Err(e) = sock.readable().await {
            tracing::debug!("DNS UDP readiness: {e}");
            continue;
        }
        // Drain what is queued with one wake-up; the answers go out at once
        // (a full send buffer falls back to waiting for it).
        let resolver = view.current();
        loop {
            let (n, peer) = match sock.try_recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("DNS UDP receive: {e}");
                    break;
                }
            };
            let Some(answer) = respond(&buf[..n], &resolver, Transport::Udp).inspect(|a| count(a))
            else {
                continue;
            };
            match sock.try_send_to(&answer, peer) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Err(e) = sock.send_to(&answer, peer).await {
                        tracing::debug!(%peer, "DNS UDP send: {e}");
                    }
                }
                Err(e) => tracing::debug!(%peer, "DNS UDP send: {e}"),
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, view: View) {
    // Dropped with this task: every connection task ends with it.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_tcp_conn(stream, view.clone()));
                }
                Err(e) => {
                    tracing::debug!("DNS TCP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// RFC 1035 §4.2.2: each message is prefixed by its two-byte length.
async fn serve_tcp_conn(mut stream: TcpStream, view: View) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(answer) = respond(&buf, &view.current(), Transport::Tcp).inspect(|a| count(a))
        else {
            continue;
        };
        let Ok(n) = u16::try_from(answer.len()) else {
            return;
        };
        let mut out = Vec::with_capacity(answer.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&answer);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}
