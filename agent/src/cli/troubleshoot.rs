//! `vnet-agent webapp troubleshoot-network -g RG -n APP [--endpoint
//! HOST:PORT]`: the app network troubleshooter. The daemon answers what the
//! configuration says (`diag::troubleshoot`); this process, inside the
//! app's sandbox, adds what only the sandbox can tell: the DNS servers in
//! force, what the endpoint's name resolves to, and a real connection.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::output::OutputFormat;
use super::Global;
use crate::api::client::{encode, request};

#[derive(Args, Debug)]
pub struct TroubleshootArgs {
    #[command(flatten)]
    site: super::az::SiteArgs,
    /// The instance whose sandbox is checked.
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// HOST:PORT the app must reach.
    #[arg(long)]
    endpoint: Option<String>,
}

fn check(name: &str, status: &str, message: String) -> Value {
    json!({ "name": name, "status": status, "message": message })
}

pub fn run(g: &Global, a: TroubleshootArgs) -> Result<ExitCode> {
    let site = a.site.id();
    let query = format!("app={}&instance={}", encode(&site.to_string()), a.instance);
    let Some(spec) = super::exec::enter(&g.socket(), &g.principal, &query)? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut own = Vec::new();
    let resolv = spec["resolvConf"]
        .as_str()
        .unwrap_or("/etc/resolv.conf")
        .to_string();
    let servers =
        super::nameresolver::nameservers(&std::fs::read_to_string(&resolv).unwrap_or_default());
    let azure_dns: Ipv4Addr = crate::model::AZURE_PLATFORM_IP;
    own.push(check(
        "DnsSettings",
        "Info",
        format!(
            "The sandbox resolves with {} ({}).",
            servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if servers == [azure_dns] {
                "Azure-provided DNS".to_string()
            } else {
                "custom DNS servers: WEBSITE_DNS_SERVER or the virtual network's dnsServers"
                    .to_string()
            }
        ),
    ));
    let mut endpoint = Value::Null;
    if let Some(e) = &a.endpoint {
        let (host, port) = e
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .context("--endpoint takes HOST:PORT")?;
        match super::tcpping::resolve(&resolv, &host)? {
            None => own.push(check(
                "NameResolution",
                "Failed",
                format!("'{host}' does not resolve in the sandbox."),
            )),
            Some(ip) => {
                if host.parse::<Ipv4Addr>().is_err() {
                    own.push(check(
                        "NameResolution",
                        "Passed",
                        format!("'{host}' resolves to {ip}."),
                    ));
                }
                endpoint = json!({ "address": ip.to_string(), "port": port });
                let c = TcpStream::connect_timeout(
                    &SocketAddr::from((ip, port)),
                    Duration::from_secs(2),
                );
                own.push(match c {
                    Ok(_) => check(
                        "Connectivity",
                        "Passed",
                        format!(
                            "Connected to {host}:{port} ({ip}) from instance {}.",
                            a.instance
                        ),
                    ),
                    Err(e) => check(
                        "Connectivity",
                        "Failed",
                        format!("Connecting to {host}:{port} ({ip}) failed: {e}."),
                    ),
                });
            }
        }
    }
    let (status, answer) = request(
        &g.socket(),
        &g.principal,
        "POST",
        &format!("{site}/troubleshootNetwork"),
        Some(&json!({ "instance": a.instance, "endpoint": endpoint })),
    )?;
    if status != 200 {
        super::print_error(&answer);
        return Ok(ExitCode::FAILURE);
    }
    let mut checks: Vec<Value> = answer["checks"].as_array().cloned().unwrap_or_default();
    checks.extend(own);
    let failed = checks.iter().any(|c| c["status"] == "Failed");
    match g.output {
        Some(OutputFormat::Table) => g.print(&Value::Array(checks))?,
        _ => {
            g.print(&json!({ "app": site.to_string(), "instance": a.instance, "checks": checks }))?
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
