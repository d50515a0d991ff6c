//! `cargo xtask chaos [--trials N] [--seed S]`: crash consistency at length.
//! The trials are the end-to-end test `tests/tests/chaos.rs` (the short form
//! `.ci/run` runs, 10 trials); this runs 100 of them, or N, inside
//! `scripts/sandbox.sh`, and keeps the transcript in target/chaos.log.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

pub fn run(flags: &[&str]) -> Result<ExitCode> {
    let mut trials = "100".to_string();
    let mut seed = None;
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match *f {
            "--trials" => trials = it.next().context("--trials N")?.to_string(),
            "--seed" => seed = Some(it.next().context("--seed S")?.to_string()),
            other => bail!("unknown flag {other}: cargo xtask chaos [--trials N] [--seed S]"),
        }
    }
    trials.parse::<u32>().context("--trials takes a number")?;
    let root = crate::bench::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args([
            "build",
            "-p",
            "vnet-agent",
            "-p",
            "vnet-e2e",
            "--tests",
            "--bins",
        ])
        .current_dir(&root)
        .status()
        .context("building the agent and the chaos test")?;
    if !built.success() {
        bail!("the build failed");
    }
    let mut cmd = Command::new(root.join("scripts/sandbox.sh"));
    cmd.args([
        &cargo,
        "test",
        "--offline",
        "-p",
        "vnet-e2e",
        "--test",
        "chaos",
    ])
    .args(["--", "--nocapture"])
    .env("VNET_E2E_REQUIRED", "1")
    .env("VNET_CHAOS_TRIALS", &trials)
    .current_dir(&root)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(s) = &seed {
        cmd.env("VNET_CHAOS_SEED", s);
    }
    let mut child = cmd.spawn().context("starting scripts/sandbox.sh")?;
    let log_path = crate::bench::target_dir(&root).join("chaos.log");
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    // The test's transcript (one line per trial) on the terminal, every line
    // of both streams in the log.
    let stdout = child.stdout.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    for line in BufReader::new(child.stderr.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        if line.starts_with("chaos:") || line.contains("panicked") {
            eprintln!("{line}");
        }
        writeln!(log, "{line}")?;
    }
    for line in out_thread.join().unwrap_or_default() {
        if line.starts_with("test result") {
            eprintln!("{line}");
        }
        writeln!(log, "{line}")?;
    }
    let status = child.wait()?;
    eprintln!("transcript: {}", log_path.display());
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
