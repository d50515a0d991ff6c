//! `az network watcher packet-capture create|show|show-status|stop|list|delete`,
//! with the lab's targets besides a VM: `--app SITE [--instance N]` (the
//! instance's vNIC) and `--vnet VNET --link IF` (an interface of the VNet's
//! fabric). The watcher is the one of the target's region.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::Global;
use crate::diag::watcher::watcher_id;
use crate::model::ResourceId;
use crate::template::DEFAULT_SUBSCRIPTION;

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    #[arg(short = 'n', long)]
    name: String,
    #[arg(long)]
    vm: Option<String>,
    #[arg(long)]
    nic: Option<String>,
    /// Lab only: an app instance's vNIC.
    #[arg(long)]
    app: Option<String>,
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// Lab only: an interface of a VNet's fabric (with --link).
    #[arg(long)]
    vnet: Option<String>,
    #[arg(long)]
    link: Option<String>,
    /// Name or id of the storage account the capture goes to.
    #[arg(long = "storage-account")]
    storage_account: Option<String>,
    /// A local .cap file the capture is written to.
    #[arg(long = "file-path")]
    file_path: Option<String>,
    /// Bytes kept of each packet (0: all).
    #[arg(long = "capture-size", default_value_t = 0)]
    capture_size: u64,
    /// Bytes of the whole capture.
    #[arg(long = "capture-limit", default_value_t = crate::diag::packet_capture::DEFAULT_TOTAL_BYTES)]
    capture_limit: u64,
    /// Seconds the capture runs.
    #[arg(long = "time-limit", default_value_t = crate::diag::packet_capture::DEFAULT_TIME_LIMIT_SECS)]
    time_limit: u64,
    /// Azure's filters, as JSON: `[{"protocol":"TCP","localIPAddress":"10.0.0.4","remotePort":"80"}]`.
    #[arg(long)]
    filters: Option<String>,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

#[derive(Subcommand, Debug)]
pub enum PacketCaptureCmd {
    /// Start a capture (a real pcap file).
    Create(Box<CreateArgs>),
    /// Show a capture.
    Show(ByName),
    /// A capture's status: Running or Stopped, and why.
    #[command(name = "show-status")]
    ShowStatus(ByName),
    /// Stop a running capture.
    Stop(ByName),
    /// Delete a capture (its file stays).
    Delete(ByName),
    /// The captures of a region's watcher.
    List {
        #[arg(short = 'l', long)]
        location: String,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
}

#[derive(Args, Debug)]
pub struct ByName {
    #[arg(short = 'l', long)]
    location: String,
    #[arg(short = 'n', long)]
    name: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

impl ByName {
    fn path(&self) -> String {
        format!(
            "{}/packetCaptures/{}",
            watcher_id(&self.subscription, &self.location),
            self.name
        )
    }
}

fn id_of(a: &CreateArgs, value: &str, ns: &str, ty: &str) -> String {
    if value.starts_with('/') {
        value.to_string()
    } else {
        ResourceId::new(&a.subscription, &a.resource_group, ns, ty, value).to_string()
    }
}

fn create(g: &Global, a: &CreateArgs) -> Result<ExitCode> {
    let mut props = json!({
        "bytesToCapturePerPacket": a.capture_size,
        "totalBytesPerSession": a.capture_limit,
        "timeLimitInSeconds": a.time_limit,
        "storageLocation": {},
    });
    let target = match (&a.vm, &a.app, &a.vnet) {
        (Some(vm), None, None) => {
            if let Some(nic) = &a.nic {
                props["targetNicResourceId"] =
                    json!(id_of(a, nic, "Microsoft.Network", "networkInterfaces"));
            }
            id_of(a, vm, "Microsoft.Compute", "virtualMachines")
        }
        (None, Some(app), None) => {
            props["instance"] = json!(a.instance);
            id_of(a, app, "Microsoft.Web", "sites")
        }
        (None, None, Some(vnet)) => {
            props["link"] = json!(a.link.as_deref().context("--vnet needs --link IF")?);
            id_of(a, vnet, "Microsoft.Network", "virtualNetworks")
        }
        _ => bail!("usage error: give one target: --vm VM, --app SITE or --vnet VNET --link IF"),
    };
    props["target"] = json!(target);
    if let Some(sa) = &a.storage_account {
        props["storageLocation"]["storageId"] =
            json!(id_of(a, sa, "Microsoft.Storage", "storageAccounts"));
    }
    if let Some(f) = &a.file_path {
        props["storageLocation"]["filePath"] = json!(f);
    }
    if let Some(f) = &a.filters {
        let v: Value = serde_json::from_str(f).context("--filters is not JSON")?;
        props["filters"] = v;
    }
    let Some(resource) = g.fetch(&target)? else {
        return Ok(ExitCode::FAILURE);
    };
    let location = resource["location"]
        .as_str()
        .context("the target has no location")?;
    let path = format!(
        "{}/packetCaptures/{}",
        watcher_id(&a.subscription, location),
        a.name
    );
    g.call("PUT", &path, Some(&json!({ "properties": props })))
}

pub fn run(g: &Global, cmd: PacketCaptureCmd) -> Result<ExitCode> {
    match cmd {
        PacketCaptureCmd::Create(a) => create(g, &a),
        PacketCaptureCmd::Show(n) => g.call("GET", &n.path(), None),
        PacketCaptureCmd::ShowStatus(n) => g.call(
            "POST",
            &format!("{}/queryStatus", n.path()),
            Some(&json!({})),
        ),
        PacketCaptureCmd::Stop(n) => {
            g.call("POST", &format!("{}/stop", n.path()), Some(&json!({})))
        }
        PacketCaptureCmd::Delete(n) => g.call("DELETE", &n.path(), None),
        PacketCaptureCmd::List {
            location,
            subscription,
        } => {
            match g.fetch(&format!(
                "{}/packetCaptures",
                watcher_id(&subscription, &location)
            ))? {
                Some(v) => g.print_value(&v["value"]),
                None => Ok(ExitCode::FAILURE),
            }
        }
    }
}
