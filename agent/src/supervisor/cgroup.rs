//! App cgroups: each site instance's process runs in a cgroup of its own
//! with its plan's memory and process limits (docs/datapath.md, "App
//! cgroups"), so a runaway app meets its plan's limits and the OOM killer
//! of its cgroup, not the machine's (and not the daemon).
//!
//! Works on the unified hierarchy (cgroup v2: `memory.max`, `pids.max`,
//! controllers enabled through each parent's `cgroup.subtree_control`) and on
//! v1 controller hierarchies (`memory.limit_in_bytes`, `pids.max`), whichever
//! holds the memory and pids controllers. Without a writable one, apps run
//! without limits: a warning once, and each process's status says why.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::plan::names::{lab_cgroup, CGROUP_DIR};
use crate::plan::{CgroupLimits, CgroupPlan};

/// Where the kernel lists its mounts.
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The controllers the lab uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
}

/// cgroup v1 or v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// One mounted hierarchy the lab writes to, with the controllers it holds.
#[derive(Debug, Clone)]
struct Hierarchy {
    root: PathBuf,
    version: Version,
    memory: bool,
    pids: bool,
}

impl Hierarchy {
    fn has(&self, c: Controller) -> bool {
        match c {
            Controller::Memory => self.memory,
            Controller::Pids => self.pids,
        }
    }
}

/// The cgroups of one lab's apps.
#[derive(Debug, Clone)]
pub struct Cgroups {
    lab: String,
    /// Empty: no writable hierarchy (`unavailable` says why).
    hierarchies: Vec<Hierarchy>,
    unavailable: Option<String>,
}

/// What a process's cgroup shows: its limits and how often they were met.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CgroupStatus {
    /// `vnet-agent/<lab>/<site>-<hash8>/<instance>`.
    pub path: String,
    /// `v1` or `v2`; absent when not enforced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    /// The cgroup's directory in each hierarchy (v1: one per controller).
    pub dirs: Vec<PathBuf>,
    /// The limits are in force (false: the app runs without, see `note`).
    pub enforced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The plan's limits (the SKU's memory per instance, processes).
    pub memory_limit_bytes: u64,
    pub pids_max: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_current_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_current: Option<u64>,
    /// Times usage met the memory limit (v2 `memory.events` max, v1
    /// `memory.failcnt` plus `memory.memsw.failcnt`).
    pub memory_limit_hits: u64,
    /// Processes the OOM killer ended in this cgroup (`oom_kill` of v2
    /// `memory.events`, v1 `memory.oom_control`).
    pub oom_kills: u64,
    /// Forks refused at `pids.max` (`pids.events` max).
    pub pids_limit_hits: u64,
}

/// Open `cgroup.procs` files of one cgroup: the child writes "0" (itself)
/// to each between fork and exec, so it runs there from its first
/// instruction and the daemon never does.
pub struct Placement {
    procs: Vec<OwnedFd>,
}

impl Placement {
    /// In the child after fork: a write(2) per hierarchy, nothing else.
    pub fn enter(&self) -> std::io::Result<()> {
        for fd in &self.procs {
            // SAFETY: write(2) of a static buffer to a descriptor opened
            // before the fork; async-signal-safe.
            if unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

impl Cgroups {
    /// Finds the hierarchies that hold the memory and pids controllers and
    /// makes `vnet-agent/<lab>` in each; when none can be used, says why
    /// once in the log.
    pub fn detect(lab: &str) -> Cgroups {
        let mut cg = Cgroups {
            lab: lab.to_string(),
            hierarchies: Vec::new(),
            unavailable: None,
        };
        let found = fs::read_to_string(MOUNTINFO)
            .map(|m| find_hierarchies(&m))
            .unwrap_or_default();
        let mut why = Vec::new();
        for h in found {
            match fs::create_dir_all(h.root.join(lab_cgroup(lab))) {
                Ok(()) => cg.hierarchies.push(h),
                Err(e) => why.push(format!("{}: {e}", h.root.display())),
            }
        }
        if cg.hierarchies.is_empty() {
            let reason = if why.is_empty() {
                "no cgroup hierarchy with the memory or pids controller is mounted".to_string()
            } else {
                format!("cannot create app cgroups ({})", why.join("; "))
            };
            tracing::warn!("apps run without memory and process limits: {reason}");
            cg.unavailable = Some(reason);
        } else {
            let roots: Vec<String> = cg
                .hierarchies
                .iter()
                .map(|h| format!("{} ({})", h.root.display(), h.version.as_str()))
                .collect();
            tracing::info!(hierarchies = %roots.join(", "), "app cgroups");
        }
        cg
    }

    /// Why apps run without limits, if they do.
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// Makes the cgroup of `plan` (and its parents), writes its limits and
    /// opens its `cgroup.procs` files for [`Placement::enter`].
    pub fn prepare(&self, plan: &CgroupPlan) -> Result<Option<Placement>> {
        if self.hierarchies.is_empty() {
            return Ok(None);
        }
        self.check_path(&plan.path)?;
        let mut procs = Vec::new();
        for h in &self.hierarchies {
            let dir = h.root.join(&plan.path);
            if h.version == Version::V2 {
                enable_controllers(h, &plan.path)?;
            }
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let f = fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .with_context(|| format!("opening {}/cgroup.procs", dir.display()))?;
            procs.push(OwnedFd::from(f));
        }
        self.apply(plan)?;
        Ok(Some(Placement { procs }))
    }

    /// Moves a running process (recorded before it had a cgroup) into the
    /// cgroup of `plan`, made and limited as for a new one; what it forks
    /// from now on stays there.
    pub fn adopt(&self, plan: &CgroupPlan, pid: i32) -> Result<()> {
        if self.prepare(plan)?.is_some() {
            for h in &self.hierarchies {
                write(
                    &h.root.join(&plan.path).join("cgroup.procs"),
                    &pid.to_string(),
                )?;
            }
        }
        Ok(())
    }

    /// Writes the limits of `plan` to its cgroup (also to a running one: a
    /// plan scaled up or down takes effect without restarting the app).
    pub fn apply(&self, plan: &CgroupPlan) -> Result<()> {
        self.check_path(&plan.path)?;
        let CgroupLimits {
            memory_bytes,
            pids_max,
        } = plan.limits;
        for h in &self.hierarchies {
            let dir = h.root.join(&plan.path);
            if h.has(Controller::Pids) {
                write(&dir.join("pids.max"), &pids_max.to_string())?;
            }
            if h.has(Controller::Memory) {
                match h.version {
                    Version::V2 => {
                        write(&dir.join("memory.max"), &memory_bytes.to_string())?;
                        // The limit is the instance's memory: no swap beyond it.
                        let swap = dir.join("memory.swap.max");
                        if swap.exists() {
                            write(&swap, "0")?;
                        }
                    }
                    Version::V1 => set_v1_memory(&dir, memory_bytes)?,
                }
            }
        }
        Ok(())
    }

    /// The status of the cgroup of `plan`: a few small files per hierarchy.
    pub fn status(&self, plan: &CgroupPlan) -> CgroupStatus {
        let mut s = CgroupStatus {
            path: plan.path.clone(),
            memory_limit_bytes: plan.limits.memory_bytes,
            pids_max: plan.limits.pids_max,
            ..Default::default()
        };
        if let Some(why) = &self.unavailable {
            s.note = Some(format!("running without limits: {why}"));
            return s;
        }
        let mut missing = false;
        for h in &self.hierarchies {
            let dir = h.root.join(&plan.path);
            s.version = Some(h.version.as_str());
            if !dir.is_dir() {
                missing = true;
                continue;
            }
            s.dirs.push(dir.clone());
            if h.has(Controller::Pids) {
                s.pids_current = read_u64(&dir.join("pids.current"));
                s.pids_limit_hits = keyed(&dir.join("pids.events"), "max").unwrap_or(0);
            }
            if h.has(Controller::Memory) {
                match h.version {
                    Version::V2 => {
                        s.memory_current_bytes = read_u64(&dir.join("memory.current"));
                        let events = dir.join("memory.events");
                        s.memory_limit_hits = keyed(&events, "max").unwrap_or(0);
                        s.oom_kills = keyed(&events, "oom_kill").unwrap_or(0);
                    }
                    Version::V1 => {
                        s.memory_current_bytes = read_u64(&dir.join("memory.usage_in_bytes"));
                        // A charge that fails is counted by the limit it met:
                        // memory plus swap (checked first) or memory alone.
                        s.memory_limit_hits = ["memory.failcnt", "memory.memsw.failcnt"]
                            .iter()
                            .filter_map(|f| read_u64(&dir.join(f)))
                            .sum();
                        s.oom_kills =
                            keyed(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0);
                    }
                }
            }
        }
        s.enforced = !missing;
        if missing {
            s.note =
                Some("the cgroup does not exist (the process could not be placed in it)".into());
        }
        s
    }

    /// Removes the app cgroups of this lab that `keep` (paths of instance
    /// cgroups) does not name, and sites left with no instance. Run after
    /// the processes of what goes are stopped.
    pub fn remove_except(&self, keep: &BTreeSet<String>) -> Vec<String> {
        let mut errors = Vec::new();
        let lab_dir = lab_cgroup(&self.lab);
        for h in &self.hierarchies {
            let lab_path = h.root.join(&lab_dir);
            for site in subdirs(&lab_path) {
                let site_rel = format!("{lab_dir}/{site}");
                let mut left = 0;
                for inst in subdirs(&lab_path.join(&site)) {
                    let rel = format!("{site_rel}/{inst}");
                    if keep.contains(&rel) {
                        left += 1;
                    } else if let Err(e) = remove_leaf(&h.root.join(&rel)) {
                        errors.push(format!("{rel}: {e:#}"));
                    }
                }
                if left == 0 && !keep.iter().any(|k| k.starts_with(&format!("{site_rel}/"))) {
                    if let Err(e) = remove_leaf(&h.root.join(&site_rel)) {
                        errors.push(format!("{site_rel}: {e:#}"));
                    }
                }
            }
        }
        for e in &errors {
            tracing::warn!("removing app cgroup {e}");
        }
        errors
    }

    /// Removes every app cgroup of this lab, then `vnet-agent/<lab>` (and
    /// `vnet-agent` when no other lab has cgroups there): `down`.
    pub fn remove_all(&self) -> Vec<String> {
        let mut errors = self.remove_except(&BTreeSet::new());
        for h in &self.hierarchies {
            let lab_path = h.root.join(lab_cgroup(&self.lab));
            if let Err(e) = remove_leaf(&lab_path) {
                errors.push(format!("{}: {e:#}", lab_path.display()));
            }
            // Another lab's daemon may hold it: only ever an empty directory.
            let _ = fs::remove_dir(h.root.join(CGROUP_DIR));
        }
        errors
    }

    /// A plan's path must lie inside this lab's directory.
    fn check_path(&self, path: &str) -> Result<()> {
        let prefix = format!("{}/", lab_cgroup(&self.lab));
        anyhow::ensure!(
            path.starts_with(&prefix) && !path.split('/').any(|c| c == ".." || c.is_empty()),
            "cgroup path {path:?} is not under {prefix}"
        );
        Ok(())
    }
}

/// The hierarchies to use, from `/proc/self/mountinfo`: the unified one when
/// it offers both controllers (cgroup.controllers), else the v1 hierarchies
/// that hold memory and pids (a hybrid system's unified mount holds none).
fn find_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut v2 = Vec::new();
    let mut v1 = Vec::new();
    for line in mountinfo.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount), Some(fstype)) = (fields.get(3), fields.get(4), right.first())
        else {
            continue;
        };
        // A bind mount of a sub-cgroup (a container's view) is not a root.
        if *root != "/" {
            continue;
        }
        let mount = PathBuf::from(unescape(mount));
        match *fstype {
            "cgroup2" => {
                let controllers =
                    fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
                let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
                v2.push(Hierarchy {
                    memory: has("memory"),
                    pids: has("pids"),
                    root: mount,
                    version: Version::V2,
                });
            }
            "cgroup" => {
                let opts = right.get(2).copied().unwrap_or("");
                let has = |c: &str| opts.split(',').any(|x| x == c);
                let h = Hierarchy {
                    memory: has("memory"),
                    pids: has("pids"),
                    root: mount,
                    version: Version::V1,
                };
                if h.memory || h.pids {
                    v1.push(h);
                }
            }
            _ => {}
        }
    }
    if let Some(h) = v2.into_iter().find(|h| h.memory && h.pids) {
        return vec![h];
    }
    // One hierarchy per controller (a controller is in one v1 hierarchy at most).
    let mut out: Vec<Hierarchy> = Vec::new();
    for h in v1 {
        if !out.iter().any(|o| o.root == h.root) {
            out.push(h);
        }
    }
    out
}

/// Octal escapes of mountinfo (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// v2: a controller is usable in a cgroup only when every ancestor enables
/// it for its children: `+memory +pids` in the `cgroup.subtree_control` of
/// the root, `vnet-agent`, `vnet-agent/<lab>` and the site's cgroup. None of
/// them holds a process (v2's "no internal processes" rule).
fn enable_controllers(h: &Hierarchy, path: &str) -> Result<()> {
    let mut dir = h.root.clone();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let control = dir.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&control).unwrap_or_default();
        let missing: Vec<&str> = ["memory", "pids"]
            .into_iter()
            .filter(|c| !enabled.split_whitespace().any(|x| x == *c))
            .collect();
        if !missing.is_empty() {
            let line: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
            write(&control, &line.join(" "))?;
        }
        if i + 1 == parts.len() {
            break;
        }
        dir = dir.join(part);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// v1 memory: `memory.limit_in_bytes`; when the machine has swap and
/// accounts it, the same for memory plus swap (`memory.memsw.limit_in_bytes`),
/// so the limit is the instance's memory, not memory plus the machine's swap.
/// (Without swap memsw is left alone: a charge refused by memsw is counted
/// in no `failcnt`.) memsw may never be below the memory limit: the order of
/// the two writes depends on the direction of the change.
fn set_v1_memory(dir: &Path, bytes: u64) -> Result<()> {
    let mem = dir.join("memory.limit_in_bytes");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let v = bytes.to_string();
    if !memsw.exists() || !swap_in_use() {
        return write(&mem, &v);
    }
    let current = read_u64(&mem).unwrap_or(u64::MAX);
    if bytes >= current {
        write(&memsw, &v)?;
        write(&mem, &v)
    } else {
        write(&mem, &v)?;
        write(&memsw, &v)
    }
}

/// `SwapTotal` of /proc/meminfo is not zero.
fn swap_in_use() -> bool {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("SwapTotal:"))
                .map(|v| v.trim().trim_end_matches("kB").trim() != "0")
        })
        .unwrap_or(false)
}

fn write(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("writing {value:?} to {}", path.display()))
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`max 3\noom_kill 1\n`).
fn keyed(path: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn subdirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Removes a cgroup whose processes should be gone. Processes still listed
/// in it (a daemonized child that left its process group) were started by
/// this lab's apps, which are the only ones placed there: each gets SIGKILL
/// by PID after a check that it is still in this cgroup (not a recycled PID),
/// and never the daemon itself. Then rmdir, retried while the kernel
/// finishes the exits; a cgroup already gone is not an error.
fn remove_leaf(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for child in subdirs(dir) {
        remove_leaf(&dir.join(child))?;
    }
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sleep = Duration::from_millis(1);
    loop {
        let pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .filter(|p| *p != me && *p > 0)
            .collect();
        for pid in &pids {
            if in_cgroup(*pid, dir) {
                // SAFETY: a signal to a process listed in this lab's own
                // app cgroup, checked just above; never the daemon.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
        }
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e).with_context(|| format!("rmdir {}", dir.display()))
            }
            Err(_) => {}
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(50));
    }
}

/// `/proc/PID/cgroup` names the cgroup `dir` ends with (any hierarchy).
fn in_cgroup(pid: i32, dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let dir = dir.to_string_lossy();
    text.lines().any(|l| {
        l.splitn(3, ':')
            .nth(2)
            .is_some_and(|p| p.len() > 1 && dir.ends_with(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
37 30 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,cpu,cpuacct
38 30 0:34 /docker/abc /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
";

    #[test]
    fn a_hybrid_system_uses_the_v1_memory_and_pids_hierarchies() {
        // The unified mount of this text does not exist here: no controllers.
        let text = HYBRID.replace("/sys/fs/cgroup/unified", "/nonexistent/unified");
        let h = find_hierarchies(&text);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h[0].root, PathBuf::from("/sys/fs/cgroup/memory"));
        assert!(h[0].memory && !h[0].pids && h[0].version == Version::V1);
        assert_eq!(h[1].root, PathBuf::from("/sys/fs/cgroup/pids"));
        assert!(h[1].pids && !h[1].memory);
    }

    #[test]
    fn a_unified_hierarchy_with_both_controllers_is_used_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let text = format!(
            "31 30 0:27 / {} rw - cgroup2 cgroup2 rw\n35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
            dir.path().display()
        );
        let h = find_hierarchies(&text);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].version, Version::V2);
        assert!(h[0].memory && h[0].pids);
    }

    #[test]
    fn keyed_files_and_escapes_parse() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.events");
        fs::write(&f, "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n").unwrap();
        assert_eq!(keyed(&f, "max"), Some(12));
        assert_eq!(keyed(&f, "oom_kill"), Some(2));
        assert_eq!(keyed(&f, "nope"), None);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }

    #[test]
    fn paths_outside_the_lab_are_refused() {
        let cg = Cgroups {
            lab: "lab1".into(),
            hierarchies: Vec::new(),
            unavailable: None,
        };
        assert!(cg.check_path("vnet-agent/lab1/web-0123abcd/0").is_ok());
        assert!(cg.check_path("vnet-agent/lab2/web-0123abcd/0").is_err());
        assert!(cg.check_path("vnet-agent/lab1/../lab2/x/0").is_err());
        assert!(cg.check_path("vnet-agent/lab1x/web/0").is_err());
    }
}
