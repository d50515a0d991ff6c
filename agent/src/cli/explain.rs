//! `vnet-agent network watcher explain` (lab only): one marked probe from a
//! VM or an app instance, traced by nftables in every namespace it crosses,
//! reported hop by hop in Azure's words (`-o table`: as text).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::output::OutputFormat;
use super::Global;
use crate::diag::watcher::watcher_id;
use crate::model::ResourceId;
use crate::template::DEFAULT_SUBSCRIPTION;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    #[arg(long)]
    vm: Option<String>,
    #[arg(long)]
    app: Option<String>,
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// IP:PORT the probe goes to.
    #[arg(long)]
    dest: String,
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"], ignore_case = true)]
    protocol: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

/// The report as text: one block per hop, then why.
fn text(v: &Value) -> String {
    let mut out = String::new();
    for h in v["hops"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{} [{}] {}{}\n",
            h["role"].as_str().unwrap_or("?"),
            h["namespace"].as_str().unwrap_or("?"),
            h["packet"].as_str().unwrap_or(""),
            h["nat"]
                .as_str()
                .map(|n| format!("  (NAT: {n})"))
                .unwrap_or_default()
        ));
        for s in h["steps"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    {} {}: {}{}\n",
                s["table"].as_str().unwrap_or(""),
                s["chain"].as_str().unwrap_or(""),
                s["verdict"].as_str().unwrap_or(""),
                s["azure"]
                    .as_str()
                    .map(|a| format!("  — {a}"))
                    .unwrap_or_default()
            ));
        }
    }
    out.push_str(&format!(
        "{}: {}\nPrediction: {}\n",
        v["result"].as_str().unwrap_or("?"),
        v["why"].as_str().unwrap_or(""),
        v["prediction"]["says"].as_str().unwrap_or("")
    ));
    out
}

pub fn run(g: &Global, a: ExplainArgs) -> Result<ExitCode> {
    let id = |v: &str, ns: &str, ty: &str| {
        if v.starts_with('/') {
            v.to_string()
        } else {
            ResourceId::new(&a.subscription, &a.resource_group, ns, ty, v).to_string()
        }
    };
    let source = match (&a.vm, &a.app) {
        (Some(vm), None) => json!({ "resourceId": id(vm, "Microsoft.Compute", "virtualMachines") }),
        (None, Some(app)) => {
            json!({ "resourceId": id(app, "Microsoft.Web", "sites"), "instance": a.instance })
        }
        _ => bail!("usage error: give --vm VM or --app SITE"),
    };
    let (ip, port) = a.dest.rsplit_once(':').context("--dest takes IP:PORT")?;
    let port: u16 = port.parse().context("--dest: the port is not a number")?;
    let Some(resource) = g.fetch(source["resourceId"].as_str().expect("set"))? else {
        return Ok(ExitCode::FAILURE);
    };
    let location = resource["location"]
        .as_str()
        .context("the source has no location")?;
    let body = json!({
        "source": source,
        "destination": { "address": ip, "port": port },
        "protocol": a.protocol.to_ascii_lowercase(),
    });
    let path = format!("{}/explain", watcher_id(&a.subscription, location));
    let Some(v) = g.post(&path, &body)? else {
        return Ok(ExitCode::FAILURE);
    };
    match g.output {
        Some(OutputFormat::Table) => print!("{}", text(&v)),
        _ => g.print(&v)?,
    }
    Ok(ExitCode::SUCCESS)
}
