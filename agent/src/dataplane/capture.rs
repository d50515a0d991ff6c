//! A packet capture's tcpdump, started inside a lab namespace (a child of
//! the daemon, ended by PID): writes a pcap file that tcpdump and Wireshark
//! open. The daemon enforces the capture's byte and time limits.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

use super::netns_path;

/// `tcpdump -i IF -s SNAPLEN -U -w FILE [FILTER]` in namespace `netns`
/// (`snaplen` 0: whole packets). `-U` writes each packet as it comes, so the
/// file's size is what was captured so far.
/// `time_limit` (seconds, 0: none) is also given to tcpdump itself (`-G N
/// -W 1`: it exits after one period), so a capture ends on time even if
/// the daemon that watches it is gone.
pub fn start_tcpdump(
    netns: &str,
    ifname: &str,
    snaplen: u64,
    time_limit: u64,
    filter: &str,
    file: &Path,
    log: &Path,
) -> Result<Child> {
    let ns = File::open(netns_path(netns)).with_context(|| format!("opening namespace {netns}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new("tcpdump");
    // `--immediate-mode`: each packet reaches tcpdump (and the file) as it
    // comes, not when a ring block fills, so a stop right after the
    // traffic keeps it.
    cmd.args(["-i", ifname, "-n", "-U", "--immediate-mode", "-s"])
        .arg(if snaplen == 0 {
            "262144".to_string()
        } else {
            snaplen.to_string()
        })
        .arg("-w")
        .arg(file);
    if time_limit > 0 {
        cmd.args(["-G", &time_limit.to_string(), "-W", "1"]);
    }
    if !filter.is_empty() {
        cmd.arg(filter);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let fd = ns.as_raw_fd();
    // SAFETY: only setns (async-signal-safe) between fork and exec, on an fd
    // opened before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("starting tcpdump on {ifname} in {netns}"))
}

/// Ends a capture's tcpdump (SIGTERM: it flushes and closes the file) and reaps it.
pub fn stop_tcpdump(child: &mut Child) {
    // SAFETY: kill(2) of our own child, by PID.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
}
