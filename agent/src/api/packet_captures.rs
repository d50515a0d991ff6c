//! Running packet captures: one tcpdump per capture (`dataplane::capture`)
//! on the target's interface, watched by a thread that stops it at the
//! capture's byte or time limit, trims the file to the bytes allowed, and
//! puts it where `storageLocation` says (a local file, and/or a blob of the
//! storage account that its host serves).
//!
//! The capture resource is an ARM record (its view and list are the generic
//! ones); its session lives here. A daemon restart ends the sessions (their
//! tcpdumps are ended with the daemon's children): a capture without a
//! session reports `Stopped` with `AgentStopped`, Azure's error for that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::{json, Value};
use tracing::{info_span, warn};

use crate::dataplane::capture::{start_tcpdump, stop_tcpdump};
use crate::diag::packet_capture::{self, CaptureSpec, CaptureTarget};
use crate::model::{AzureError, LabConfig, LabState, ResourceId};

/// How often a running capture's limits are checked.
const POLL: Duration = Duration::from_millis(100);

struct Session {
    name: String,
    child: Option<Child>,
    started: Instant,
    start_time: String,
    /// Where tcpdump writes.
    file: PathBuf,
    spec: CaptureSpec,
    /// Where the finished file goes besides `file`: the blob's path on disk.
    blob: Option<PathBuf>,
    status: &'static str,
    stop_reason: String,
    errors: Vec<&'static str>,
}

/// The daemon's capture sessions, by lower-cased capture id.
#[derive(Default, Clone)]
pub struct PacketCaptures {
    sessions: Arc<Mutex<BTreeMap<String, Session>>>,
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Keeps the pcap's whole records that fit in `limit` bytes (the global
/// header counts), dropping the packet that crossed the limit.
fn trim_pcap(path: &Path, limit: u64) -> Result<()> {
    let data = std::fs::read(path)?;
    if (data.len() as u64) <= limit || data.len() < 24 {
        return Ok(());
    }
    let le = data[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || data[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let mut end = 24usize;
    while end + 16 <= data.len() {
        let b: [u8; 4] = data[end + 8..end + 12].try_into().expect("4 bytes");
        let incl = if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as usize;
        let next = end + 16 + incl;
        if next as u64 > limit || next > data.len() {
            break;
        }
        end = next;
    }
    std::fs::write(path, &data[..end])?;
    Ok(())
}

impl Session {
    /// Ends the capture (if it runs) and delivers its file.
    fn finish(&mut self, reason: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _span = info_span!("packet_capture_stop", capture = %self.name, reason).entered();
        stop_tcpdump(&mut child);
        self.deliver(reason);
    }

    /// The capture is over: trim the file to the byte limit and copy it to
    /// its blob.
    fn deliver(&mut self, reason: &str) {
        self.status = "Stopped";
        self.stop_reason = reason.to_string();
        if let Err(e) = trim_pcap(&self.file, self.spec.total_bytes.max(24)) {
            warn!("trimming {}: {e:#}", self.file.display());
            self.errors.push("LocalFileFailed");
        }
        if let Some(blob) = &self.blob {
            let copied = blob
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| std::fs::copy(&self.file, blob));
            if let Err(e) = copied {
                warn!("writing {}: {e}", blob.display());
                self.errors.push("StorageFailed");
            }
        }
    }

    fn status(&self, id: &str) -> Value {
        json!({
            "name": self.name,
            "id": id,
            "captureStartTime": self.start_time,
            "packetCaptureStatus": self.status,
            "stopReason": self.stop_reason,
            "packetCaptureError": self.errors,
        })
    }
}

/// `(namespace, interface)` a capture listens on.
fn capture_point(
    state: &LabState,
    lab: &LabConfig,
    spec: &CaptureSpec,
) -> Result<(String, String), AzureError> {
    match &spec.target {
        CaptureTarget::Vm { vm, nic } => crate::plan::vm_interface(state, lab, vm, nic.as_ref()),
        CaptureTarget::App { site, instance } => {
            crate::plan::app_interface(state, lab, site, *instance)
        }
        CaptureTarget::FabricLink { vnet, link } => {
            let ns = crate::plan::fabric_namespace(state, lab, vnet)?;
            let plan = crate::plan::build(state, lab);
            let exists = plan
                .veths
                .iter()
                .flat_map(|v| [&v.a, &v.b])
                .any(|e| e.netns == ns && &e.ifname == link);
            if !exists {
                return Err(AzureError::bad_request(
                    "InvalidPacketCaptureTarget",
                    format!(
                        "The fabric of '{}' has no link '{link}' (docs/datapath.md names them).",
                        vnet.name()
                    ),
                ));
            }
            Ok((ns, link.clone()))
        }
    }
}

impl PacketCaptures {
    /// Starts a capture; returns the properties Azure computes for it
    /// (`storageLocation.storagePath`). Refuses a name that is running.
    pub fn start(
        &self,
        state: &LabState,
        lab: &LabConfig,
        state_dir: &Path,
        spec: CaptureSpec,
    ) -> Result<Value, AzureError> {
        let key = spec.id.key();
        if self
            .sessions
            .lock()
            .unwrap()
            .get(&key)
            .is_some_and(|s| s.child.is_some())
        {
            return Err(AzureError::conflict(
                "PacketCaptureAlreadyRunning",
                format!(
                    "Packet capture '{}' is running; stop or delete it first.",
                    spec.id.name()
                ),
            ));
        }
        let (netns, ifname) = capture_point(state, lab, &spec)?;
        let _span =
            info_span!("packet_capture_start", capture = %spec.id.name(), netns, ifname).entered();
        let dir = state_dir.join("captures");
        let internal = |e: anyhow::Error| {
            AzureError::bad_request(
                "PacketCaptureFailed",
                format!("The capture could not start: {e:#}"),
            )
        };
        std::fs::create_dir_all(&dir).map_err(|e| internal(e.into()))?;
        let hash = &crate::plan::names::sha256_hex(&key)[..16];
        let file = match &spec.file_path {
            Some(p) => {
                let p = PathBuf::from(p);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| internal(e.into()))?;
                }
                p
            }
            None => dir.join(format!("{hash}.cap")),
        };
        let log = dir.join(format!("{hash}.log"));
        let _ = std::fs::remove_file(&log);
        let started_s = now_s();
        let (blob, storage_path) = match &spec.storage {
            Some(account) => {
                let rel = packet_capture::blob_path(&spec, started_s);
                (
                    Some(
                        super::flow_logs::storage_blob_dir(state_dir, account)
                            .join(packet_capture::CONTAINER)
                            .join(&rel),
                    ),
                    Some(format!(
                        "https://{}.blob.core.windows.net/{}/{rel}",
                        account.name().to_ascii_lowercase(),
                        packet_capture::CONTAINER
                    )),
                )
            }
            None => (None, None),
        };
        let child = start_tcpdump(
            &netns,
            &ifname,
            spec.bytes_per_packet,
            spec.time_limit_secs,
            &spec.filter,
            &file,
            &log,
        )
        .map_err(internal)?;
        // Running means listening: tcpdump says so once its socket is bound.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("listening on"))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let session = Session {
            name: spec.id.name().to_string(),
            child: Some(child),
            started: Instant::now(),
            start_time: crate::template::format_time(started_s, "yyyy-MM-ddTHH:mm:ss.0000000Z"),
            file: file.clone(),
            blob,
            status: "Running",
            stop_reason: String::new(),
            errors: Vec::new(),
            spec,
        };
        self.sessions.lock().unwrap().insert(key.clone(), session);
        let me = self.clone();
        std::thread::Builder::new()
            .name("packet-capture".into())
            .spawn(move || me.watch(&key))
            .map_err(|e| internal(e.into()))?;
        Ok(json!({
            "storagePath": storage_path,
            "filePath": file.to_string_lossy(),
        }))
    }

    /// Stops the capture at its limits, or when its tcpdump ends by itself.
    fn watch(&self, key: &str) {
        loop {
            std::thread::sleep(POLL);
            let mut sessions = self.sessions.lock().unwrap();
            let Some(s) = sessions.get_mut(key) else {
                return;
            };
            let Some(child) = s.child.as_mut() else {
                return;
            };
            let limit = s.spec.time_limit_secs;
            if let Ok(Some(_)) = child.try_wait() {
                s.child = None;
                // tcpdump ends itself at the time limit (`-G`); anything
                // earlier is a failure.
                if limit > 0
                    && s.started.elapsed() + Duration::from_secs(1) >= Duration::from_secs(limit)
                {
                    s.deliver("TimeExceeded");
                } else {
                    s.status = "Error";
                    s.errors.push("CaptureFailed");
                }
                return;
            }
            let size = std::fs::metadata(&s.file).map(|m| m.len()).unwrap_or(0);
            if s.spec.total_bytes > 0 && size >= s.spec.total_bytes {
                s.finish("AvailableCaptureBytesExceeded");
                return;
            }
            if limit > 0 && s.started.elapsed() >= Duration::from_secs(limit) {
                s.finish("TimeExceeded");
                return;
            }
        }
    }

    /// `POST .../stop`.
    pub fn stop(&self, id: &ResourceId) {
        if let Some(s) = self.sessions.lock().unwrap().get_mut(&id.key()) {
            s.finish("ManuallyStopped");
        }
    }

    /// `POST .../queryStatus` (a capture the daemon has no session of was
    /// ended by a restart).
    pub fn status(&self, id: &ResourceId) -> Value {
        match self.sessions.lock().unwrap().get(&id.key()) {
            Some(s) => s.status(&id.to_string()),
            None => json!({
                "name": id.name(), "id": id.to_string(), "packetCaptureStatus": "Stopped",
                "stopReason": "AgentStopped", "packetCaptureError": ["AgentStopped"],
            }),
        }
    }

    /// A deleted capture stops; its file stays where it was written.
    pub fn forget(&self, id: &ResourceId) {
        let mut sessions = self.sessions.lock().unwrap();
        if let Some(s) = sessions.get_mut(&id.key()) {
            s.finish("ManuallyStopped");
        }
        sessions.remove(&id.key());
    }

    /// Ends every capture (the lab goes down).
    pub fn stop_all(&self) {
        for s in self.sessions.lock().unwrap().values_mut() {
            s.finish("AgentStopped");
        }
    }
}

/// A capture's record with what the lab computed (`storagePath`, the file).
pub fn record_body(body: &Value, computed: &Value, location: &str) -> Value {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        o.entry("location").or_insert_with(|| json!(location));
    }
    if let Some(sl) = b
        .pointer_mut("/properties/storageLocation")
        .and_then(Value::as_object_mut)
    {
        if let Some(p) = computed["storagePath"].as_str() {
            sl.insert("storagePath".into(), json!(p));
        }
        sl.entry("filePath").or_insert(computed["filePath"].clone());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pcap_is_trimmed_to_whole_packets_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cap");
        let mut data = vec![0xd4, 0xc3, 0xb2, 0xa1];
        data.extend_from_slice(&[0; 20]);
        for len in [100u32, 100, 100] {
            data.extend_from_slice(&[0; 8]);
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(&len.to_le_bytes());
            data.extend(std::iter::repeat_n(7u8, len as usize));
        }
        std::fs::write(&path, &data).unwrap();
        trim_pcap(&path, 24 + 2 * 116 + 50).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24 + 2 * 116);
        trim_pcap(&path, 10_000).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24 + 2 * 116);
    }
}
