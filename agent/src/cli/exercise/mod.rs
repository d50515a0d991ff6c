//! `vnet-agent lab exercise list|start N|check|hint|solve|reset`: lab
//! exercises that check themselves with real traffic. An exercise is a
//! folder of `labs/` (no Rust): `README.md` (goal, Azure concept, the seed's
//! section), a start (`start.json`, the starting template, maybe broken,
//! and/or `start.sh`, az-like commands run after it), `check.json` (the
//! criteria, see `criteria.rs`), `hint.md`, and a solution (`solution.json`
//! deployed over the start and/or `solution.sh`).

mod criteria;
mod probe;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::Subcommand;

pub use probe::{run as probe, ProbeCmd};

use super::Global;
use crate::api::client::request;

/// The resource group of exercise `n` (`ex01`, ...): each exercise has its
/// own, so starting one never has to delete another (deleting an integrated
/// app together with its VNet is the very trap of an exercise).
fn group(n: u32) -> String {
    format!("ex{n:02}")
}

#[derive(Subcommand, Debug)]
pub enum ExerciseCmd {
    /// The exercises, numbered.
    List,
    /// Deploy exercise N's starting lab into its resource group `exNN`.
    Start { number: u32 },
    /// Check the current exercise with real traffic; exit 1 while a criterion fails.
    Check,
    /// A hint for the current exercise.
    Hint,
    /// Deploy the current exercise's solution.
    Solve,
    /// Back to the current exercise's start (its template again).
    Reset,
}

/// Where the exercises are: `$VNET_AGENT_LABS`, the package's copy, or `labs/` here.
fn labs_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VNET_AGENT_LABS") {
        return d.into();
    }
    let packaged = PathBuf::from("/usr/share/vnet-agent/labs");
    if packaged.is_dir() {
        return packaged;
    }
    PathBuf::from("labs")
}

/// `(number, folder)` of every exercise, by number.
fn exercises() -> Result<Vec<(u32, PathBuf)>> {
    let dir = labs_dir();
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {} (set VNET_AGENT_LABS)", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .split('-')
                .next()?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn title(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("README.md"))
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.trim_start_matches('#').trim().to_string())
        })
        .unwrap_or_default()
}

fn current_file(g: &Global) -> PathBuf {
    g.state_dir().join("exercise")
}

fn current(g: &Global) -> Result<(u32, PathBuf)> {
    let n: u32 = std::fs::read_to_string(current_file(g))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .context("no exercise started: `vnet-agent lab exercise start N`")?;
    exercises()?
        .into_iter()
        .find(|(k, _)| *k == n)
        .with_context(|| format!("exercise {n} is gone from {}", labs_dir().display()))
}

fn deploy(g: &Global, n: u32, file: &Path) -> Result<bool> {
    let args = super::deployment::CreateArgs {
        resource_group: group(n),
        subscription: crate::template::DEFAULT_SUBSCRIPTION.into(),
        template_file: file.to_path_buf(),
        parameters: Vec::new(),
        name: Some("exercise".into()),
        mode: "Incremental".into(),
    };
    let (path, body) = super::deployment::body(&args)?;
    let (status, v) = request(&g.socket(), &g.principal, "PUT", &path, Some(&body))?;
    if !(200..300).contains(&status) {
        super::print_error(&v);
        return Ok(false);
    }
    Ok(true)
}

/// `STAGE.sh`: az-like commands, run by `sh -eu` with this `vnet-agent`
/// first on PATH, talking to the same daemon, and `$G` the exercise's
/// resource group.
fn script(g: &Global, n: u32, file: &Path) -> Result<bool> {
    let me = std::env::current_exe()?;
    let bin = me.parent().context("the binary's directory")?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let status = Command::new("sh")
        .arg("-eu")
        .arg(file)
        .env("PATH", std::env::join_paths(dirs)?)
        .env("G", group(n))
        .env("VNET_AGENT_LAB", &g.lab)
        .env("VNET_AGENT_SOCKET", g.socket())
        .env("VNET_AGENT_STATE_DIR", g.state_dir())
        .env("VNET_AGENT_PRINCIPAL", &g.principal)
        .status()
        .with_context(|| format!("running {}", file.display()))?;
    if !status.success() {
        eprintln!("{} failed ({status})", file.display());
    }
    Ok(status.success())
}

/// A stage of the exercise (`start` or `solution`): its template deployed,
/// then its script run; at least one of them exists.
fn stage(g: &Global, n: u32, dir: &Path, name: &str) -> Result<bool> {
    let template = dir.join(format!("{name}.json"));
    let commands = dir.join(format!("{name}.sh"));
    if !template.exists() && !commands.exists() {
        bail!("{} has neither {name}.json nor {name}.sh", dir.display());
    }
    if template.exists() && !deploy(g, n, &template)? {
        return Ok(false);
    }
    if commands.exists() && !script(g, n, &commands)? {
        return Ok(false);
    }
    Ok(true)
}

pub fn run(g: &Global, cmd: ExerciseCmd) -> Result<ExitCode> {
    match cmd {
        ExerciseCmd::List => {
            for (n, dir) in exercises()? {
                println!("{n:>2}  {}", title(&dir));
            }
            Ok(ExitCode::SUCCESS)
        }
        ExerciseCmd::Start { number } => {
            let (n, dir) = exercises()?
                .into_iter()
                .find(|(k, _)| *k == number)
                .with_context(|| format!("there is no exercise {number} (`lab exercise list`)"))?;
            if !stage(g, n, &dir, "start")? {
                return Ok(ExitCode::FAILURE);
            }
            std::fs::write(current_file(g), n.to_string())?;
            println!(
                "Exercise {n}: {} (resource group {})\n",
                title(&dir),
                group(n)
            );
            print!(
                "{}",
                std::fs::read_to_string(dir.join("README.md")).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        ExerciseCmd::Check => {
            let (n, dir) = current(g)?;
            let file = dir.join("check.json");
            let checks: Vec<criteria::Criterion> =
                serde_json::from_str(&std::fs::read_to_string(&file)?)
                    .with_context(|| format!("{}", file.display()))?;
            let mut failed = 0;
            for c in &checks {
                let (ok, why) = criteria::prove(g, n, c)?;
                println!("{} {}: {why}", if ok { "PASS" } else { "FAIL" }, c.name);
                failed += usize::from(!ok);
            }
            if failed > 0 {
                println!("{failed} criterion(s) still fail: `vnet-agent lab exercise hint`");
                return Ok(ExitCode::FAILURE);
            }
            println!("All criteria pass.");
            Ok(ExitCode::SUCCESS)
        }
        ExerciseCmd::Hint => {
            let (_, dir) = current(g)?;
            print!("{}", std::fs::read_to_string(dir.join("hint.md"))?);
            Ok(ExitCode::SUCCESS)
        }
        ExerciseCmd::Solve | ExerciseCmd::Reset => {
            let (n, dir) = current(g)?;
            let name = if matches!(cmd, ExerciseCmd::Solve) {
                "solution"
            } else {
                "start"
            };
            Ok(if stage(g, n, &dir, name)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
