//! `az network watcher test-ip-flow` and `show-next-hop`, plus the lab's app
//! form (`--app SITE [--instance N]`). As az does, the watcher is the one of
//! the target's region: the target is read first for its location.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::Global;
use crate::diag::watcher::watcher_id;
use crate::model::ResourceId;
use crate::template::DEFAULT_SUBSCRIPTION;

// The target: a VM (and one of its NICs) or an app instance.
#[derive(Args, Debug)]
pub struct WatcherTarget {
    #[arg(short = 'g', long = "resource-group")]
    resource_group: String,
    /// Name or id of the virtual machine.
    #[arg(long, conflicts_with = "app")]
    vm: Option<String>,
    /// Name or id of the VM's NIC to use (default: the one holding the address, else the primary).
    #[arg(long)]
    nic: Option<String>,
    /// Lab only: an integrated app (its VNet traffic through the integration subnet).
    #[arg(long)]
    app: Option<String>,
    /// The app's instance (with --app).
    #[arg(long, default_value_t = 0)]
    instance: u32,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

impl WatcherTarget {
    fn id(&self, value: &str, ns: &str, ty: &str) -> String {
        if value.starts_with('/') {
            value.to_string()
        } else {
            ResourceId::new(&self.subscription, &self.resource_group, ns, ty, value).to_string()
        }
    }

    /// `(target body fields, the watcher's path)`.
    fn resolve(&self, g: &Global) -> Result<Option<(Value, String)>> {
        let (target, body) = match (&self.vm, &self.app) {
            (Some(vm), None) => {
                let id = self.id(vm, "Microsoft.Compute", "virtualMachines");
                let mut b = json!({ "targetResourceId": id });
                if let Some(nic) = &self.nic {
                    b["targetNicResourceId"] =
                        json!(self.id(nic, "Microsoft.Network", "networkInterfaces"));
                }
                (id, b)
            }
            (None, Some(app)) => {
                let id = self.id(app, "Microsoft.Web", "sites");
                (
                    id.clone(),
                    json!({ "targetResourceId": id, "instance": self.instance }),
                )
            }
            _ => bail!("usage error: give --vm VM or --app SITE"),
        };
        let Some(resource) = g.fetch(&target)? else {
            return Ok(None);
        };
        let location = resource["location"]
            .as_str()
            .context("the target has no location")?;
        let watcher = watcher_id(&self.subscription, location).to_string();
        Ok(Some((body, watcher)))
    }
}

/// `IP:PORT` as az's `--local`/`--remote` take it.
fn endpoint(s: &str, flag: &str) -> Result<(String, String)> {
    let (ip, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--{flag} takes IP:PORT, got '{s}'"))?;
    Ok((ip.to_string(), port.to_string()))
}

#[derive(Args, Debug)]
pub struct TestIpFlowArgs {
    #[command(flatten)]
    target: WatcherTarget,
    #[arg(long, value_parser = ["Inbound", "Outbound"], ignore_case = true)]
    direction: String,
    #[arg(long, value_parser = ["TCP", "UDP"], ignore_case = true)]
    protocol: String,
    /// The target's side: IP:PORT.
    #[arg(long)]
    local: String,
    /// The other side: IP:PORT.
    #[arg(long)]
    remote: String,
}

#[derive(Args, Debug)]
pub struct ShowNextHopArgs {
    #[command(flatten)]
    target: WatcherTarget,
    #[arg(long = "source-ip")]
    source_ip: String,
    #[arg(long = "dest-ip")]
    dest_ip: String,
}

pub fn test_ip_flow(g: &Global, a: TestIpFlowArgs) -> Result<ExitCode> {
    let (local_ip, local_port) = endpoint(&a.local, "local")?;
    let (remote_ip, remote_port) = endpoint(&a.remote, "remote")?;
    let Some((mut body, watcher)) = a.target.resolve(g)? else {
        return Ok(ExitCode::FAILURE);
    };
    let o = body.as_object_mut().expect("an object");
    o.insert("direction".into(), json!(a.direction));
    o.insert("protocol".into(), json!(a.protocol.to_ascii_uppercase()));
    o.insert("localIPAddress".into(), json!(local_ip));
    o.insert("localPort".into(), json!(local_port));
    o.insert("remoteIPAddress".into(), json!(remote_ip));
    o.insert("remotePort".into(), json!(remote_port));
    g.call("POST", &format!("{watcher}/ipFlowVerify"), Some(&body))
}

pub fn show_next_hop(g: &Global, a: ShowNextHopArgs) -> Result<ExitCode> {
    let Some((mut body, watcher)) = a.target.resolve(g)? else {
        return Ok(ExitCode::FAILURE);
    };
    body["sourceIPAddress"] = json!(a.source_ip);
    body["destinationIPAddress"] = json!(a.dest_ip);
    g.call("POST", &format!("{watcher}/nextHop"), Some(&body))
}
