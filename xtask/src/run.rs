//! Running programs with a time limit and a stopwatch.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `cmd` to completion, stdout and stderr into files, and returns its exit
/// status with the wall-clock time from spawn to exit. Past `limit` its whole
/// process group is killed and this fails.
pub fn timed(
    cmd: &mut Command,
    limit: Duration,
    stdout: &Path,
    stderr: &Path,
) -> Result<(ExitStatus, Duration)> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(File::create(stdout)?)
        .stderr(File::create(stderr)?)
        // Its own process group, so a timeout also ends what it started.
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, Instant::now()));
    });
    match rx.recv_timeout(limit) {
        Ok((status, end)) => Ok((status.context("waiting")?, end - start)),
        Err(_) => {
            // The child is not reaped until the waiting thread returns, so the
            // group id is still ours.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = rx.recv_timeout(Duration::from_secs(5));
            bail!("{what} did not finish within {} s", limit.as_secs())
        }
    }
}

/// Like `timed`, but a non-zero exit is an error that quotes the end of stderr.
pub fn timed_ok(cmd: &mut Command, limit: Duration, dir: &Path, name: &str) -> Result<Duration> {
    let out = dir.join(format!("{name}.out"));
    let err = dir.join(format!("{name}.err"));
    let (status, elapsed) = timed(cmd, limit, &out, &err)?;
    if !status.success() {
        bail!(
            "{cmd:?} failed ({status}):\n{}",
            tail(&std::fs::read_to_string(&err).unwrap_or_default(), 20)
        );
    }
    Ok(elapsed)
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a short query (`ip -j ...`) within 10 s and returns its stdout; fails
/// on a non-zero exit.
pub fn output(cmd: &mut Command) -> Result<String> {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(10)) else {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        bail!("{what} did not finish within 10 s");
    };
    let out = out.with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
