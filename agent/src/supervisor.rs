//! Supervised app processes: each site's `appCommandLine` runs in each of its
//! sandboxes, as the App Service worker runs the site's container.
//!
//! Processes start in their own session (so a daemon restart, or its exit,
//! does not end them: a restart must not disturb the app or its flows) and are
//! recorded by PID and kernel start time in `processes.json`. A restarted
//! daemon adopts the ones still alive; `down` ends exactly those, by PID.
//! One killed between a start and its record finds, by the lab's mark in
//! their environment, the processes it never recorded, and ends them.
//!
//! A site instance's process runs in a cgroup of its own with its plan's
//! memory and process limits (`cgroup.rs`); the cgroups of sites that go
//! are removed once their processes are stopped.

mod cgroup;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::dataplane::netns_path;
use crate::plan::ProcessPlan;
use crate::store::write_atomic;

pub use cgroup::{CgroupStatus, Cgroups};

const RECORD_FILE: &str = "processes.json";
/// Set in every app process's environment to the state directory of the lab
/// that started it: a daemon killed between starting a process and
/// recording it leaves a process no record names, and its successor finds
/// it by this mark (and only this lab's: the directory is the lab's own).
const MARK_ENV: &str = "VNET_AGENT_SUPERVISOR";
/// The PATH a supervised process starts with (App Service sets its own too).
const APP_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What is known of one supervised process; persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub plan: ProcessPlan,
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22): a PID
    /// is only ours while this matches, so a recycled PID is never signalled.
    pub start_time: u64,
    pub restarts: u32,
    pub log: PathBuf,
}

/// The status of one process as `show` reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStatus {
    pub key: String,
    pub netns: String,
    pub pid: i32,
    pub running: bool,
    pub restarts: u32,
    pub log: PathBuf,
    /// The app instance's cgroup: its limits and how often they were met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupStatus>,
}

#[derive(Default)]
struct Inner {
    records: BTreeMap<String, ProcessRecord>,
    /// Children this daemon spawned (adopted ones are not our children).
    children: BTreeMap<i32, Child>,
    /// Processes that could not be started, by key, with why: each fails
    /// alone, and the others (and the rest of the reconcile) go on.
    failed: BTreeMap<String, String>,
    /// `stop_all` ran (`down`): no sync starts anything again, whatever
    /// desired list it was handed before (the once-a-second check clones
    /// its list outside this lock).
    closed: bool,
    /// Processes that run outside their cgroup, by key, with why (they
    /// started anyway: limits are never a reason not to run an app).
    unplaced: BTreeMap<String, String>,
    /// The instance cgroups wanted at the last sync; a change removes the
    /// cgroups no longer wanted.
    cgroup_paths: Option<BTreeSet<String>>,
}

/// Starts, restarts and stops the processes of a plan.
pub struct Supervisor {
    dir: PathBuf,
    cgroups: Cgroups,
    inner: Mutex<Inner>,
}

impl Supervisor {
    /// Loads the records of a previous daemon and adopts the processes that still run.
    /// `lab` names its cgroups (`vnet-agent/<lab>/...`).
    pub fn open(state_dir: &Path, lab: &str) -> Result<Supervisor> {
        let dir = state_dir.to_path_buf();
        fs::create_dir_all(dir.join("logs"))?;
        let mut records: BTreeMap<String, ProcessRecord> = match fs::read(dir.join(RECORD_FILE)) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        records.retain(|_, r| is_alive(r.pid, r.start_time));
        let recorded: Vec<i32> = records.values().map(|r| r.pid).collect();
        end_unrecorded(&dir, &recorded);
        let sup = Supervisor {
            dir,
            cgroups: Cgroups::detect(lab),
            inner: Mutex::new(Inner {
                records,
                ..Default::default()
            }),
        };
        sup.persist(&sup.inner.lock().unwrap())?;
        Ok(sup)
    }

    /// Makes the running set match `desired`: starts what is missing or dead,
    /// restarts what changed (command, environment or namespace), ends what is gone.
    /// A process that cannot be started fails alone: it is kept in
    /// [`Supervisor::failures`] (and retried on the next sync), and the
    /// others start; only a failure to record what runs is an error.
    pub fn sync(&self, desired: &[ProcessPlan]) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        if inner.closed {
            return Ok(());
        }
        // Called every second by the daemon: write the records only when they change.
        let before = inner.records.clone();
        let want: BTreeMap<&str, &ProcessPlan> =
            desired.iter().map(|p| (p.key.as_str(), p)).collect();
        let gone: Vec<String> = inner
            .records
            .keys()
            .filter(|k| !want.contains_key(k.as_str()))
            .cloned()
            .collect();
        let gone: Vec<ProcessRecord> = gone
            .iter()
            .filter_map(|key| inner.records.remove(key))
            .collect();
        stop_many(&mut inner, &gone);
        inner.failed.retain(|k, _| want.contains_key(k.as_str()));
        // Our own children that exited are reaped first; a child still in
        // the map is running (waitpid said so), which spares a read of
        // /proc/PID/stat per process per second. Processes adopted from an
        // earlier daemon have no handle and are checked in /proc.
        reap(&mut inner);
        for plan in desired {
            let (restarts, needs_start) = match inner.records.get(&plan.key) {
                Some(rec)
                    if rec.plan.same_process(plan)
                        && (inner.children.contains_key(&rec.pid)
                            || is_alive(rec.pid, rec.start_time)) =>
                {
                    if rec.plan.cgroup != plan.cgroup {
                        // The plan's SKU changed: new limits for the
                        // running cgroup, no restart.
                        self.apply_limits(&mut inner, plan);
                    }
                    continue;
                }
                Some(rec) if rec.plan.same_process(plan) => (rec.restarts + 1, true),
                Some(rec) => {
                    let rec = rec.clone();
                    stop(&mut inner, &rec);
                    (0, true)
                }
                None => (0, true),
            };
            if needs_start {
                match self.spawn(&mut inner, plan) {
                    Ok((child, log)) => {
                        let pid = child.id() as i32;
                        let start_time = proc_start_time(pid).unwrap_or(0);
                        tracing::info!(key = %plan.key, pid, netns = %plan.netns, "started app process");
                        inner.failed.remove(&plan.key);
                        inner.children.insert(pid, child);
                        inner.records.insert(
                            plan.key.clone(),
                            ProcessRecord {
                                plan: plan.clone(),
                                pid,
                                start_time,
                                restarts,
                                log,
                            },
                        );
                    }
                    Err(e) => {
                        let why = format!("{e:#}");
                        if inner.failed.get(&plan.key) != Some(&why) {
                            tracing::warn!(key = %plan.key, "could not start app process: {why}");
                        }
                        inner.failed.insert(plan.key.clone(), why);
                    }
                }
            }
        }
        reap(&mut inner);
        self.remove_gone_cgroups(&mut inner, desired);
        if inner.records != before {
            self.persist(&inner)?;
        }
        Ok(())
    }

    /// Writes a changed plan's limits to its running process's cgroup and
    /// records them.
    fn apply_limits(&self, inner: &mut Inner, plan: &ProcessPlan) {
        let Some(rec) = inner.records.get(&plan.key) else {
            return;
        };
        if let (None, Some(cg)) = (&rec.plan.cgroup, &plan.cgroup) {
            // Recorded by a daemon before cgroups: moved in, not restarted.
            match self.cgroups.adopt(cg, rec.pid) {
                Ok(()) => {
                    inner.unplaced.remove(&plan.key);
                }
                Err(e) => {
                    tracing::warn!(key = %plan.key, "app runs without its cgroup: {e:#}");
                    inner.unplaced.insert(plan.key.clone(), format!("{e:#}"));
                }
            }
        } else if let Some(cg) = &plan.cgroup {
            if let Err(e) = self.cgroups.apply(cg) {
                tracing::warn!(key = %plan.key, "new limits for the app's cgroup: {e:#}");
            } else {
                tracing::info!(key = %plan.key, memory_bytes = cg.limits.memory_bytes, pids_max = cg.limits.pids_max, "app cgroup limits changed");
            }
        }
        if let Some(rec) = inner.records.get_mut(&plan.key) {
            rec.plan = plan.clone();
        }
    }

    /// Removes the cgroups of instances no longer wanted (their processes
    /// were stopped above); only when the wanted set changed.
    fn remove_gone_cgroups(&self, inner: &mut Inner, desired: &[ProcessPlan]) {
        let want: BTreeSet<String> = desired
            .iter()
            .filter_map(|p| p.cgroup.as_ref().map(|c| c.path.clone()))
            .collect();
        if inner.cgroup_paths.as_ref() == Some(&want) {
            return;
        }
        self.cgroups.remove_except(&want);
        inner
            .unplaced
            .retain(|k, _| desired.iter().any(|p| &p.key == k));
        inner.cgroup_paths = Some(want);
    }

    /// The processes that could not be started at the last sync, by key,
    /// with why.
    pub fn failures(&self) -> BTreeMap<String, String> {
        self.inner.lock().unwrap().failed.clone()
    }

    /// Restarts one process (e.g. the app restart that a disconnect causes).
    pub fn restart(&self, key: &str) -> Result<()> {
        let plan = {
            let mut inner = self.inner.lock().unwrap();
            let Some(rec) = inner.records.get(key).cloned() else {
                return Ok(());
            };
            stop(&mut inner, &rec);
            inner.records.remove(key);
            rec.plan
        };
        self.sync_one(plan)
    }

    fn sync_one(&self, plan: ProcessPlan) -> Result<()> {
        let mut all: Vec<ProcessPlan> = self
            .inner
            .lock()
            .unwrap()
            .records
            .values()
            .map(|r| r.plan.clone())
            .collect();
        all.push(plan);
        self.sync(&all)
    }

    /// Ends every supervised process, by PID (and its process group), then
    /// removes the lab's app cgroups.
    pub fn stop_all(&self) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        inner.closed = true;
        let recs: Vec<ProcessRecord> = inner.records.values().cloned().collect();
        stop_many(&mut inner, &recs);
        inner.records.clear();
        let errors = self.cgroups.remove_all();
        inner.cgroup_paths = None;
        inner.unplaced.clear();
        for e in errors {
            tracing::warn!("removing the lab's cgroups: {e}");
        }
        self.persist(&inner)
    }

    pub fn status(&self) -> Vec<ProcessStatus> {
        self.status_where(|_| true)
    }

    /// The status of the processes whose key `keep` accepts (their cgroup
    /// files are read only for those).
    pub fn status_where(&self, keep: impl Fn(&str) -> bool) -> Vec<ProcessStatus> {
        let mut inner = self.inner.lock().unwrap();
        reap(&mut inner);
        inner
            .records
            .values()
            .filter(|r| keep(&r.plan.key))
            .map(|r| ProcessStatus {
                key: r.plan.key.clone(),
                netns: r.plan.netns.clone(),
                pid: r.pid,
                running: is_alive(r.pid, r.start_time),
                restarts: r.restarts,
                log: r.log.clone(),
                cgroup: r.plan.cgroup.as_ref().map(|cg| {
                    let mut s = self.cgroups.status(cg);
                    if let Some(why) = inner.unplaced.get(&r.plan.key) {
                        s.enforced = false;
                        s.note = Some(format!("running outside its cgroup: {why}"));
                    }
                    s
                }),
            })
            .collect()
    }

    fn persist(&self, inner: &Inner) -> Result<()> {
        write_atomic(
            &self.dir.join(RECORD_FILE),
            &serde_json::to_vec_pretty(&inner.records)?,
        )
    }

    fn spawn(&self, inner: &mut Inner, plan: &ProcessPlan) -> Result<(Child, PathBuf)> {
        let (program, args) = plan.argv.split_first().context("empty command line")?;
        // The cgroup first: its cgroup.procs files are opened here, written
        // by the child. A cgroup that cannot be made does not stop the app.
        let placement = match plan.cgroup.as_ref().map(|cg| self.cgroups.prepare(cg)) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(p))) => {
                inner.unplaced.remove(&plan.key);
                Some(p)
            }
            Some(Err(e)) => {
                let why = format!("{e:#}");
                if inner.unplaced.get(&plan.key) != Some(&why) {
                    tracing::warn!(key = %plan.key, "app runs without its cgroup: {why}");
                }
                inner.unplaced.insert(plan.key.clone(), why);
                None
            }
        };
        let ns = File::open(netns_path(&plan.netns))
            .with_context(|| format!("opening network namespace {}", plan.netns))?;
        let log = self
            .dir
            .join("logs")
            .join(format!("{}.log", sanitize(&plan.key)));
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", APP_PATH)
            .env("HOME", "/root")
            .envs(&plan.env)
            .env(MARK_ENV, &self.dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let fd = ns.as_raw_fd();
        let resolv = crate::dnsd::resolv_conf_path(&self.dir, &plan.netns);
        let resolv = resolv
            .exists()
            .then(|| ResolvMount::new(&resolv))
            .transpose()?;
        // SAFETY: only async-signal-safe calls (write, setns, unshare, mount,
        // setsid, umask) between fork and exec, on memory and descriptors
        // prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // Into the instance's cgroup before anything else runs.
                if let Some(p) = &placement {
                    p.enter()?;
                }
                // The daemon's umask keeps its own files private; an app
                // creates files as a program normally does.
                libc::umask(0o022);
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(m) = &resolv {
                    m.enter()?;
                }
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {program} in {}", plan.netns))?;
        Ok((child, log))
    }
}

/// A private mount namespace whose `/etc/resolv.conf` is a bind mount of the
/// namespace's resolv.conf file (the agent writes it; `/etc/hosts` stays):
/// the program resolves with its app's, VM's or host's DNS servers, as an App
/// Service sandbox does. The mounts end with the program's last process.
pub struct ResolvMount {
    source: std::ffi::CString,
    target: std::ffi::CString,
    root: std::ffi::CString,
}

/// Where the resolver reads its servers.
const ETC_RESOLV_CONF: &str = "/etc/resolv.conf";

impl ResolvMount {
    pub fn new(source: &Path) -> Result<ResolvMount> {
        use std::os::unix::ffi::OsStrExt;
        Ok(ResolvMount {
            source: std::ffi::CString::new(source.as_os_str().as_bytes())?,
            target: std::ffi::CString::new(ETC_RESOLV_CONF)?,
            root: std::ffi::CString::new("/")?,
        })
    }

    /// In the calling process (single-threaded: a child between fork and
    /// exec, or the `exec` command): a new mount namespace, made private so
    /// nothing propagates back to the machine's, then the bind mount.
    pub fn enter(&self) -> std::io::Result<()> {
        // SAFETY: plain syscalls on NUL-terminated strings owned by self.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                std::ptr::null(),
                self.root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                self.source.as_ptr(),
                self.target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Reaps children that exited, so they do not linger as zombies.
fn reap(inner: &mut Inner) {
    inner
        .children
        .retain(|_, c| matches!(c.try_wait(), Ok(None)));
}

/// Ends a process and its session's process group: SIGTERM, then SIGKILL after 2 s.
fn stop(inner: &mut Inner, rec: &ProcessRecord) {
    stop_many(inner, std::slice::from_ref(rec));
}

/// Stops processes together: SIGTERM to every one, then one shared grace
/// period (2 s) before SIGKILL to those still running. `down` of a big lab
/// or a scale-in waits about as long as the slowest process, not the sum.
fn stop_many(inner: &mut Inner, recs: &[ProcessRecord]) {
    let mut running: Vec<&ProcessRecord> = Vec::new();
    for rec in recs {
        if is_alive(rec.pid, rec.start_time) {
            // setsid made the process the leader of its own group: -pid is that group.
            // SAFETY: a signal to a process group this supervisor started (pid and
            // start time checked just above).
            unsafe { libc::kill(-rec.pid, libc::SIGTERM) };
            running.push(rec);
        } else {
            inner.children.remove(&rec.pid);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut sleep = Duration::from_millis(1);
    while !running.is_empty() {
        running.retain(|rec| {
            let exited = match inner.children.get_mut(&rec.pid) {
                Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                None => !is_alive(rec.pid, rec.start_time),
            };
            if exited {
                inner.children.remove(&rec.pid);
                tracing::info!(key = %rec.plan.key, pid = rec.pid, "stopped app process");
            }
            !exited
        });
        if running.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for rec in running.drain(..) {
                // SAFETY: as above; the group outlived its grace period.
                unsafe { libc::kill(-rec.pid, libc::SIGKILL) };
                if let Some(mut c) = inner.children.remove(&rec.pid) {
                    let _ = c.wait();
                }
                tracing::info!(key = %rec.plan.key, pid = rec.pid, "killed app process after its grace period");
            }
            break;
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    }
}

/// Ends the process groups this lab's supervisor started that no record
/// names (a crash between a start and its record): session leaders whose
/// environment carries the lab's mark. The next sync starts what the plan
/// wants, once.
fn end_unrecorded(dir: &Path, recorded: &[i32]) {
    let mark = {
        let mut m = format!("{MARK_ENV}=").into_bytes();
        m.extend_from_slice(dir.as_os_str().as_encoded_bytes());
        m
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let mut ended = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let Some(stat) = proc_stat(pid).filter(|s| s.session == pid) else {
            continue;
        };
        if recorded.contains(&pid) {
            continue;
        }
        let marked = fs::read(format!("/proc/{pid}/environ"))
            .map(|env| env.split(|b| *b == 0).any(|kv| kv == mark.as_slice()))
            .unwrap_or(false);
        if marked {
            tracing::warn!(
                pid,
                "ending an app process an earlier daemon started but never recorded"
            );
            // SAFETY: the leader of a session this lab's supervisor started
            // (its mark names this lab's state directory).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            ended.push((pid, stat.start_time));
        }
    }
    // Gone before the first sync counts what runs.
    let deadline = Instant::now() + Duration::from_secs(2);
    while ended.iter().any(|(p, t)| is_alive(*p, *t)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the supervisor reads of `/proc/PID/stat`.
struct ProcStat {
    /// Field 6: the session id.
    session: i32,
    /// Field 22: start time in clock ticks since boot.
    start_time: u64,
    zombie: bool,
}

fn proc_stat(pid: i32) -> Option<ProcStat> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow ") ".
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): session is index 3, start time index 19.
    Some(ProcStat {
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
        zombie: fields.first() == Some(&"Z"),
    })
}

/// Start time in clock ticks since boot; a zombie counts as gone.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).filter(|s| !s.zombie).map(|s| s.start_time)
}

/// A process is ours while its PID exists with the start time we recorded.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    pid > 0 && proc_start_time(pid) == Some(start_time)
}

fn sanitize(key: &str) -> String {
    key.trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable() {
        let me = std::process::id() as i32;
        let t = proc_start_time(me).unwrap();
        assert!(is_alive(me, t));
        assert!(!is_alive(me, t + 1));
        assert!(!is_alive(-1, 0));
    }

    #[test]
    fn an_unrecorded_process_of_this_lab_is_ended_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let start = |mark: &Path| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30").env(MARK_ENV, mark);
            // SAFETY: setsid only, between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
            cmd.spawn().unwrap()
        };
        let mut ours = start(dir.path());
        let mut recorded = start(dir.path());
        let mut theirs = start(other.path());
        // Let each exec (the mark is read from the new image's environment).
        std::thread::sleep(Duration::from_millis(100));
        end_unrecorded(dir.path(), &[recorded.id() as i32]);
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            if let Some(st) = ours.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "the unrecorded process still runs"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            recorded.try_wait().unwrap().is_none(),
            "a recorded process was ended"
        );
        assert!(
            theirs.try_wait().unwrap().is_none(),
            "another lab's process was ended"
        );
        for c in [&mut recorded, &mut theirs] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    #[test]
    fn log_names_are_safe() {
        assert_eq!(
            sanitize("/subscriptions/x/sites/web 1/instances/0"),
            "subscriptions_x_sites_web_1_instances_0"
        );
    }
}
