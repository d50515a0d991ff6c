//! `vnet-agent webapp tcpping`: Kudu's `tcpping HOST[:PORT]` from inside an
//! app's sandbox (its network namespace, its resolv.conf): four timed TCP
//! connects and Kudu's summary line. Exits non-zero when none connected.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::json;

use super::output::OutputFormat;
use super::Global;
use crate::api::client::encode;

#[derive(Args, Debug)]
pub struct TcppingArgs {
    /// The site (web app) name or id.
    #[arg(long)]
    app: String,
    /// The plan instance (0-based) whose sandbox connects.
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// Connection attempts (Kudu makes 4).
    #[arg(long, default_value_t = 4)]
    count: u32,
    /// HOST[:PORT] (port 80 when none is given, as Kudu).
    target: String,
}

/// `host` as the sandbox resolves it: an address as is, a name through the
/// servers of its resolv.conf.
pub(super) fn resolve(resolv: &str, host: &str) -> Result<Option<Ipv4Addr>> {
    if let Ok(ip) = host.parse() {
        return Ok(Some(ip));
    }
    let text = std::fs::read_to_string(resolv).with_context(|| format!("reading {resolv}"))?;
    let name = Name::from_ascii(format!("{}.", host.trim_end_matches('.')))
        .with_context(|| format!("{host:?} is not a DNS name"))?;
    for server in super::nameresolver::nameservers(&text) {
        if let Some(answer) = crate::dns::client::ask(server, &name, RecordType::A, None)? {
            return Ok(answer.answers.iter().find_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            }));
        }
    }
    Ok(None)
}

pub fn run(g: &Global, args: TcppingArgs) -> Result<ExitCode> {
    let (host, port) = match args.target.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse::<u16>().context("the port is not a number")?,
        ),
        None => (args.target.clone(), 80),
    };
    let query = format!("app={}&instance={}", encode(&args.app), args.instance);
    let Some(spec) = super::exec::enter(&g.socket(), &g.principal, &query)? else {
        return Ok(ExitCode::FAILURE);
    };
    let resolv = spec["resolvConf"]
        .as_str()
        .unwrap_or("/etc/resolv.conf")
        .to_string();
    let mut lines = Vec::new();
    let mut times = Vec::new();
    let ip = resolve(&resolv, &host)?;
    for _ in 0..args.count.max(1) {
        let Some(ip) = ip else {
            lines.push(format!(
                "Connection attempt failed: No such host is known ({host})"
            ));
            continue;
        };
        let start = Instant::now();
        match TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(2)) {
            Ok(_) => {
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                times.push(ms);
                lines.push(format!(
                    "Connected to {host}:{port}, time taken: {}ms",
                    ms.round() as u64
                ));
            }
            Err(e) => lines.push(format!("Connection attempt failed: {e}")),
        }
    }
    let n = args.count.max(1) as usize;
    let avg = if times.is_empty() {
        0.0
    } else {
        times.iter().sum::<f64>() / times.len() as f64
    };
    let summary = format!(
        "Complete: {}/{n} successful attempts ({}%). Average success time: {:.2}ms",
        times.len(),
        times.len() * 100 / n,
        avg
    );
    match g.output {
        Some(OutputFormat::Json) | Some(OutputFormat::Jsonc) | Some(OutputFormat::Yaml) => g
            .print(&json!({
                "host": host, "port": port, "address": ip.map(|i| i.to_string()),
                "attempts": n, "successful": times.len(),
                "timesMs": times.iter().map(|t| (t * 100.0).round() / 100.0).collect::<Vec<_>>(),
                "output": lines.iter().chain([&summary]).cloned().collect::<Vec<_>>(),
            }))?,
        _ => {
            for l in &lines {
                println!("{l}");
            }
            println!("{summary}");
        }
    }
    Ok(if times.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
