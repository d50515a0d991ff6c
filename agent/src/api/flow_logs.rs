//! The running VNet flow logs: one reader thread per fabric namespace that
//! has a logged NIC. It follows the fabric's conntrack (events as they come,
//! a dump with counters every interval), turns flows into Azure's tuples
//! (`diag::flow_log`) with the NSG rule that decided each (`plan::nsg`), and
//! appends one record per NIC to the hourly blob of the flow log's storage
//! account, which the account's host serves (`services::host::blob_dir`).
//!
//! Proportional: a reconcile that changes no flow log touches nothing; a
//! change restarts nothing, the threads pick up the new scope.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tracing::{info_span, warn};

use crate::dataplane::conntrack::{self, Conntrack, DeniedLog, DeniedPacket};
use crate::diag::flow_log::{
    self, Acl, CtEvent, CtFlow, FlowState, LoggedNic, Tracker, TupleEvent,
};
use crate::model::{Access, Direction, LabConfig, LabState, ResourceId};
use crate::plan::nsg::{Flow, FlowOrigin, FlowProtocol};

/// What one fabric's reader needs; swapped whole when the lab changes.
struct FabricConfig {
    nics: Vec<LoggedNic>,
    /// Logged NIC index by address.
    by_ip: HashMap<Ipv4Addr, usize>,
    /// Every VM NIC of the lab by address (the origin of inbound flows).
    all_nics: HashMap<Ipv4Addr, ResourceId>,
    state: Arc<LabState>,
    lab: LabConfig,
    /// Blob directory of each storage account.
    blob_dirs: HashMap<ResourceId, PathBuf>,
}

struct Reader {
    config: Arc<RwLock<Arc<FabricConfig>>>,
    stop: Arc<AtomicBool>,
}

/// The flow log readers of the daemon.
#[derive(Default)]
pub struct FlowLogs {
    generation: Mutex<Option<u64>>,
    readers: Mutex<BTreeMap<String, Reader>>,
}

/// The blob directory of a storage account's service host (the host reads
/// `services/<hash>.json`; its blobs live in `services/<hash>.blobs`).
pub fn storage_blob_dir(state_dir: &Path, storage: &ResourceId) -> PathBuf {
    let key = format!("{}/host", storage.key());
    let config = state_dir.join("services").join(format!(
        "{}.json",
        &crate::plan::names::sha256_hex(&key)[..16]
    ));
    crate::services::host::blob_dir(&config)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl FlowLogs {
    /// Brings the readers in line with the lab's flow logs (cheap when the
    /// state did not change since the last call).
    pub fn sync(&self, state: &LabState, lab: &LabConfig, state_dir: &Path, interval: Duration) {
        {
            let mut g = self.generation.lock().unwrap();
            if *g == Some(state.generation) {
                return;
            }
            *g = Some(state.generation);
        }
        let specs = flow_log::all(state);
        let mut readers = self.readers.lock().unwrap();
        if specs.is_empty() && readers.is_empty() {
            return;
        }
        let _span = info_span!("flow_logs_sync", flow_logs = specs.len()).entered();
        let nics = crate::plan::vm_nics(state, lab);
        let triples: Vec<_> = nics
            .iter()
            .map(|n| (n.nic.clone(), n.subnet.clone(), n.addresses.clone()))
            .collect();
        let logged = flow_log::logged_nics(&specs, &triples);
        let fabric_of: HashMap<&ResourceId, &str> =
            nics.iter().map(|n| (&n.nic, n.fabric.as_str())).collect();
        let all_nics: HashMap<Ipv4Addr, ResourceId> = nics
            .iter()
            .flat_map(|n| n.addresses.iter().map(move |a| (*a, n.nic.clone())))
            .collect();
        let mut by_fabric: BTreeMap<String, Vec<LoggedNic>> = BTreeMap::new();
        for l in logged {
            if let Some(f) = fabric_of.get(&l.nic) {
                by_fabric.entry(f.to_string()).or_default().push(l);
            }
        }
        let shared_state = Arc::new(state.clone());
        readers.retain(|netns, r| {
            let keep = by_fabric.contains_key(netns);
            if !keep {
                r.stop.store(true, Ordering::SeqCst);
            }
            keep
        });
        for (netns, nics) in by_fabric {
            let by_ip = nics
                .iter()
                .enumerate()
                .flat_map(|(i, n)| n.addresses.iter().map(move |a| (*a, i)))
                .collect();
            let blob_dirs = nics
                .iter()
                .map(|n| (n.storage.clone(), storage_blob_dir(state_dir, &n.storage)))
                .collect();
            let config = Arc::new(FabricConfig {
                nics,
                by_ip,
                all_nics: all_nics.clone(),
                state: shared_state.clone(),
                lab: lab.clone(),
                blob_dirs,
            });
            match readers.get(&netns) {
                Some(r) => *r.config.write().unwrap() = config,
                None => {
                    let reader = Reader {
                        config: Arc::new(RwLock::new(config)),
                        stop: Arc::new(AtomicBool::new(false)),
                    };
                    let (c, s, ns) = (reader.config.clone(), reader.stop.clone(), netns.clone());
                    let spawned =
                        std::thread::Builder::new()
                            .name("flow-log".into())
                            .spawn(move || {
                                if let Err(e) = run(&ns, &c, &s, interval) {
                                    warn!(netns = %ns, "flow log reader stopped: {e:#}");
                                }
                            });
                    match spawned {
                        Ok(_) => {
                            readers.insert(netns, reader);
                        }
                        Err(e) => warn!("starting a flow log reader: {e}"),
                    }
                }
            }
        }
    }

    /// Stops every reader (the lab goes down); each writes what it holds.
    pub fn stop_all(&self) {
        for r in self.readers.lock().unwrap().values() {
            r.stop.store(true, Ordering::SeqCst);
        }
    }
}

fn relevant(c: &FabricConfig, f: &CtFlow) -> bool {
    c.by_ip.contains_key(&f.src)
        || c.by_ip.contains_key(&f.dst)
        || c.by_ip.contains_key(&f.reply_src)
}

/// One fabric's reader: until stopped, events as they come and a dump per
/// interval; what it learned goes to the blobs at every interval.
fn run(
    netns: &str,
    config: &RwLock<Arc<FabricConfig>>,
    stop: &AtomicBool,
    interval: Duration,
) -> Result<()> {
    conntrack::enable_accounting(netns)?;
    let mut events = Conntrack::events(netns, Duration::from_millis(200))?;
    // `D` tuples: what the NSGs' deny chain logs. Without it the flow log
    // still records every allowed flow.
    let mut denied_log = DeniedLog::open(netns, crate::plan::nsg::DENIED_LOG_GROUP)
        .map_err(|e| warn!(netns, "no D tuples: {e:#}"))
        .ok();
    let mut denied: std::collections::HashSet<DeniedPacket> = Default::default();
    let mut tracker = Tracker::default();
    let mut pending: Vec<TupleEvent> = Vec::new();
    let mut next_tick = std::time::Instant::now() + interval;
    let mut acls: HashMap<(Ipv4Addr, Ipv4Addr, u8, u16, char), Acl> = HashMap::new();
    let mut generation = None;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let c = config.read().unwrap().clone();
        if generation != Some(c.state.generation) {
            // The rules may have changed: decide flows anew.
            acls.clear();
            generation = Some(c.state.generation);
        }
        match events.read_batch() {
            Ok(batch) => {
                let now = now_ms();
                for f in batch {
                    pending.extend(tracker.event(&f, now, relevant(&c, &f)));
                }
            }
            // Dropped events (a burst): the next dump catches up.
            Err(e) => warn!(netns, "conntrack events: {e:#}"),
        }
        if let Some(log) = denied_log.as_mut() {
            denied.extend(log.drain());
        }
        if stopping || std::time::Instant::now() >= next_tick {
            next_tick = std::time::Instant::now() + interval;
            let _span = info_span!("flow_log_flush", netns).entered();
            match conntrack::dump(netns) {
                Ok(dump) => pending.extend(tracker.tick(&dump, now_ms(), |f| relevant(&c, f))),
                Err(e) if stopping => tracing::debug!("last dump: {e:#}"),
                Err(e) => warn!(netns, "conntrack dump: {e:#}"),
            }
            let now = now_ms();
            pending.extend(std::mem::take(&mut denied).into_iter().map(|p| TupleEvent {
                time_ms: now,
                flow: CtFlow {
                    event: CtEvent::Dumped,
                    id: 0,
                    src: p.src,
                    dst: p.dst,
                    reply_src: Ipv4Addr::UNSPECIFIED,
                    protocol: p.protocol,
                    src_port: p.src_port,
                    dst_port: p.dst_port,
                    orig: (0, 0),
                    reply: (0, 0),
                    tcp_state: None,
                },
                state: FlowState::Denied,
            }));
            if !pending.is_empty() {
                if let Err(e) = flush(&c, &mut acls, std::mem::take(&mut pending)) {
                    warn!(netns, "writing flow logs: {e:#}");
                }
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

fn protocol(p: u8) -> Option<FlowProtocol> {
    match p {
        6 => Some(FlowProtocol::Tcp),
        17 => Some(FlowProtocol::Udp),
        1 => Some(FlowProtocol::Icmp),
        _ => None,
    }
}

/// `aclID` and rule of a flow no NSG judged.
fn no_acl() -> Acl {
    (
        "00000000-0000-0000-0000-000000000000".to_string(),
        String::new(),
    )
}

fn acl(s: &crate::plan::nsg::Step) -> Acl {
    (
        crate::model::record::stable_guid(&s.nsg, "resourceGuid"),
        flow_log::rule_name(&s.rule),
    )
}

/// Where a denied packet is logged: at the NIC whose NSG (or whose
/// subnet's) dropped it, `O` when it was leaving, `I` when arriving.
fn denied_at(c: &FabricConfig, f: &CtFlow) -> Option<(usize, char, Acl)> {
    let protocol = protocol(f.protocol)?;
    let origin = match c.all_nics.get(&f.src) {
        Some(src) => FlowOrigin::Nic(src.clone()),
        None => FlowOrigin::Internet {
            vnet: c.nics[*c.by_ip.get(&f.dst)?].vnet.clone(),
        },
    };
    let flow = Flow {
        origin,
        src: f.src,
        dst: f.dst,
        protocol,
        src_port: f.src_port,
        dst_port: f.dst_port,
    };
    let v = crate::plan::nsg::evaluate(&c.state, &c.lab, &flow).ok()?;
    let step = v.steps.iter().find(|s| s.access == Access::Deny)?;
    let (ip, dir) = match step.direction {
        Direction::Outbound => (f.src, 'O'),
        Direction::Inbound => (f.dst, 'I'),
    };
    Some((*c.by_ip.get(&ip)?, dir, acl(step)))
}

/// The NSG and rule that decided `f` at a NIC, the way `direction` meets it.
fn acl_of(c: &FabricConfig, nic: &LoggedNic, f: &CtFlow, direction: char) -> Acl {
    let none = no_acl;
    let Some(protocol) = protocol(f.protocol) else {
        return none();
    };
    let origin = if direction == 'O' {
        FlowOrigin::Nic(nic.nic.clone())
    } else {
        match c.all_nics.get(&f.src) {
            Some(src) => FlowOrigin::Nic(src.clone()),
            None => FlowOrigin::Internet {
                vnet: nic.vnet.clone(),
            },
        }
    };
    let flow = Flow {
        origin,
        src: f.src,
        dst: if direction == 'I' && f.reply_src != Ipv4Addr::UNSPECIFIED {
            f.reply_src
        } else {
            f.dst
        },
        protocol,
        src_port: f.src_port,
        dst_port: f.dst_port,
    };
    let want = if direction == 'O' {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    match crate::plan::nsg::evaluate(&c.state, &c.lab, &flow) {
        Ok(v) => v
            .steps
            .iter()
            .filter(|s| s.direction == want)
            .find(|s| s.access == Access::Deny)
            .or_else(|| v.steps.iter().rev().find(|s| s.direction == want))
            .map(acl)
            .unwrap_or_else(none),
        Err(_) => none(),
    }
}

/// Appends this interval's tuples to each NIC's hourly blob.
fn flush(
    c: &FabricConfig,
    acls: &mut HashMap<(Ipv4Addr, Ipv4Addr, u8, u16, char), Acl>,
    events: Vec<TupleEvent>,
) -> Result<()> {
    let mut per_nic: BTreeMap<usize, Vec<(Acl, String)>> = BTreeMap::new();
    for e in &events {
        let f = &e.flow;
        if e.state == FlowState::Denied {
            if let Some((i, dir, acl)) = denied_at(c, f) {
                per_nic.entry(i).or_default().push((acl, e.text(dir)));
            }
            continue;
        }
        let sides = [
            (c.by_ip.get(&f.src), 'O'),
            (
                c.by_ip.get(&f.dst).or_else(|| c.by_ip.get(&f.reply_src)),
                'I',
            ),
        ];
        for (nic, dir) in sides {
            let Some(&i) = nic else { continue };
            let key = (f.src, f.dst, f.protocol, f.dst_port, dir);
            let acl = acls
                .entry(key)
                .or_insert_with(|| acl_of(c, &c.nics[i], f, dir))
                .clone();
            per_nic.entry(i).or_default().push((acl, e.text(dir)));
        }
    }
    let time_s = (now_ms() / 1000) as i64;
    for (i, tuples) in per_nic {
        let nic = &c.nics[i];
        let Some(dir) = c.blob_dirs.get(&nic.storage) else {
            continue;
        };
        let path = dir.join(flow_log::CONTAINER).join(flow_log::blob_path(
            &nic.flow_log,
            &nic.mac,
            time_s,
        ));
        append_record(&path, flow_log::record(nic, time_s, &tuples))?;
    }
    Ok(())
}

/// `PT1H.json` holds `{"records": [...]}`; each flush adds one record.
fn append_record(path: &Path, record: Value) -> Result<()> {
    let mut doc: Value = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({"records": []}));
    if let Some(records) = doc.get_mut("records").and_then(Value::as_array_mut) {
        records.push(record);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    crate::store::write_atomic(path, &serde_json::to_vec(&doc)?)
        .with_context(|| format!("writing {}", path.display()))
}
