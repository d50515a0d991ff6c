//! `vnet-agent lab exercise list|start N|check|hint|solve|reset`: lab
//! exercises that check themselves with real traffic. An exercise is a
//! folder of `labs/` (no Rust): `README.md` (goal, Azure concept, the seed's
//! section), `start.json` (the starting template, maybe broken),
//! `check.json` (criteria), `hint.md`, `solution.json` (the fix, deployed
//! over the start). Every criterion is a real connection between two of the
//! lab's namespaces: `lab probe listen` in one, `lab probe connect` in the
//! other, both this binary entered into them with `exec`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::Value;

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

#[derive(Subcommand, Debug)]
pub enum ProbeCmd {
    /// Accept one TCP connection on PORT and print the peer's address.
    Listen { port: u16 },
    /// Connect to IP:PORT (1 s) and print what the listener saw of us.
    Connect { ip: Ipv4Addr, port: u16 },
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

/// `vnet-agent exec <target> -- vnet-agent lab probe ...` as a child.
/// Names are the exercise's own: given as full ids, so another exercise's
/// app of the same name is never the one entered.
fn probe_in(n: u32, target: &Value, args: &[String]) -> Result<Command> {
    let me = std::env::current_exe()?;
    let mut c = Command::new(&me);
    c.arg("exec");
    let id = |ns: &str, ty: &str, name: &str| {
        crate::model::ResourceId::new(
            crate::template::DEFAULT_SUBSCRIPTION,
            &group(n),
            ns,
            ty,
            name,
        )
        .to_string()
    };
    match (
        target["app"].as_str(),
        target["vm"].as_str(),
        target["host"].as_str(),
    ) {
        (Some(a), _, _) => c.args(["--app", &id("Microsoft.Web", "sites", a)]),
        (_, Some(v), _) => c.args(["--vm", &id("Microsoft.Compute", "virtualMachines", v)]),
        (_, _, Some(h)) => c.args(["--host", &id("Lab.Emulator", "internetHosts", h)]),
        _ => bail!("a criterion's endpoint names an app, a vm or a host: {target}"),
    };
    c.arg("--").arg(&me).args(["lab", "probe"]).args(args);
    Ok(c)
}

/// The source address a criterion wants: written out, or a public IP
/// resource's address (`{"publicIPAddress": NAME}`, in the exercise's group).
fn source(g: &Global, n: u32, v: &Value) -> Result<Option<String>> {
    if let Some(s) = v.as_str() {
        return Ok(Some(s.to_string()));
    }
    let Some(name) = v["publicIPAddress"].as_str() else {
        return Ok(None);
    };
    let path = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/publicIPAddresses/{name}",
        crate::template::DEFAULT_SUBSCRIPTION,
        group(n)
    );
    let (status, pip) = request(&g.socket(), &g.principal, "GET", &path, None)?;
    if status != 200 {
        bail!("public IP {name} of the exercise is missing");
    }
    Ok(pip["properties"]["ipAddress"].as_str().map(str::to_string))
}

/// One criterion: `{name, from, to: {vm|host, address}, port, expect:
/// connects|blocked, source?: address the listener must see}`.
fn run_check(g: &Global, n: u32, c: &Value) -> Result<(bool, String)> {
    // A change can restart the app (as a configuration change does in
    // Azure): a connection that must succeed gets a few seconds to.
    let tries = if c["expect"].as_str() == Some("blocked") {
        1
    } else {
        4
    };
    let mut last = (false, String::new());
    for i in 0..tries {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        last = check_once(g, n, c)?;
        if last.0 {
            break;
        }
    }
    Ok(last)
}

fn check_once(g: &Global, n: u32, c: &Value) -> Result<(bool, String)> {
    let port = c["port"].as_u64().context("a criterion needs a port")? as u16;
    let address = c["to"]["address"].as_str().context("to.address")?;
    let mut listener = probe_in(n, &c["to"], &["listen".into(), port.to_string()])?
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = BufReader::new(listener.stdout.take().context("listener output")?);
    let mut line = String::new();
    out.read_line(&mut line)?; // "listening"
    let client = probe_in(
        n,
        &c["from"],
        &["connect".into(), address.into(), port.to_string()],
    )?
    .output()?;
    let said = String::from_utf8_lossy(&client.stdout).trim().to_string();
    let connected = client.status.success();
    let _ = listener.kill();
    let _ = listener.wait();
    let want = c["expect"].as_str().unwrap_or("connects");
    Ok(match (want, connected) {
        ("connects", false) => (false, format!("no connection to {address}:{port}")),
        ("blocked", true) => (false, format!("{address}:{port} still answers ({said})")),
        ("blocked", false) => (true, format!("{address}:{port} is blocked")),
        _ => match source(g, n, &c["source"])? {
            Some(src) if !said.contains(&format!("peer={src}:")) => (
                false,
                format!("connected, but the other end saw {said}, not {src}"),
            ),
            _ => (true, format!("connected ({said})")),
        },
    })
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
            if !deploy(g, n, &dir.join("start.json"))? {
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
            let checks: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("check.json"))?)
                    .context("check.json")?;
            let mut failed = 0;
            for c in checks.as_array().into_iter().flatten() {
                let (ok, why) = run_check(g, n, c)?;
                println!(
                    "{} {}: {why}",
                    if ok { "PASS" } else { "FAIL" },
                    c["name"].as_str().unwrap_or("?")
                );
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
        ExerciseCmd::Solve => {
            let (n, dir) = current(g)?;
            Ok(if deploy(g, n, &dir.join("solution.json"))? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ExerciseCmd::Reset => {
            let (n, dir) = current(g)?;
            Ok(if deploy(g, n, &dir.join("start.json"))? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `lab probe listen|connect` (run inside a namespace by `check`).
pub fn probe(cmd: ProbeCmd) -> Result<ExitCode> {
    match cmd {
        ProbeCmd::Listen { port } => {
            let l = TcpListener::bind(("0.0.0.0", port))?;
            println!("listening");
            std::io::stdout().flush()?;
            let (mut s, peer) = l.accept()?;
            writeln!(s, "peer={peer}")?;
            Ok(ExitCode::SUCCESS)
        }
        ProbeCmd::Connect { ip, port } => {
            let s =
                TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line)?;
            print!("{line}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
