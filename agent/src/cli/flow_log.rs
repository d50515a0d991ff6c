//! `az network watcher flow-log create|show|list|delete`: VNet flow logs,
//! under the watcher of `--location` (`NetworkWatcherRG/NetworkWatcher_<region>`),
//! as az places them. `-g` is the group of the target and storage account.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;

use super::Global;
use crate::diag::watcher::watcher_id;
use crate::model::ResourceId;
use crate::template::DEFAULT_SUBSCRIPTION;

#[derive(Subcommand, Debug)]
pub enum FlowLogCmd {
    /// Create (or update) a VNet flow log on a virtual network, subnet or NIC.
    Create {
        #[arg(short = 'l', long)]
        location: String,
        #[arg(short = 'n', long)]
        name: String,
        /// The group of the target and storage account (names given without ids).
        #[arg(short = 'g', long = "resource-group")]
        resource_group: Option<String>,
        /// Name or id of the virtual network to log.
        #[arg(long)]
        vnet: Option<String>,
        /// Name (with --vnet) or id of the subnet to log.
        #[arg(long)]
        subnet: Option<String>,
        /// Name or id of the network interface to log.
        #[arg(long)]
        nic: Option<String>,
        /// Name or id of the storage account the records go to.
        #[arg(long = "storage-account")]
        storage_account: String,
        #[arg(long, default_value = "true")]
        enabled: String,
        /// Days to keep records (0: forever).
        #[arg(long, default_value_t = 0)]
        retention: u32,
        #[arg(long = "log-version", default_value_t = 2)]
        log_version: u32,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
    /// Show a flow log.
    Show {
        #[arg(short = 'l', long)]
        location: String,
        #[arg(short = 'n', long)]
        name: String,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
    /// The flow logs of a region's watcher.
    List {
        #[arg(short = 'l', long)]
        location: String,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
    /// Delete a flow log (its records stay in the storage account, as in Azure).
    Delete {
        #[arg(short = 'l', long)]
        location: String,
        #[arg(short = 'n', long)]
        name: String,
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
}

fn flow_log_id(subscription: &str, location: &str, name: &str) -> ResourceId {
    watcher_id(subscription, location).child("flowLogs", name)
}

/// A name given as an id stays; a bare name is looked up in `-g`.
fn resolve(
    value: &str,
    rg: Option<&str>,
    subscription: &str,
    ty: &str,
    flag: &str,
) -> Result<String> {
    if value.starts_with('/') {
        return Ok(value.to_string());
    }
    let Some(rg) = rg else {
        bail!("--{flag} '{value}' is a name: give --resource-group, or the full id");
    };
    let (ns, ty) = ty.split_once('/').expect("namespace/type");
    Ok(ResourceId::new(subscription, rg, ns, ty, value).to_string())
}

pub fn run(g: &Global, cmd: FlowLogCmd) -> Result<ExitCode> {
    match cmd {
        FlowLogCmd::Create {
            location,
            name,
            resource_group,
            vnet,
            subnet,
            nic,
            storage_account,
            enabled,
            retention,
            log_version,
            subscription,
        } => {
            let rg = resource_group.as_deref();
            let net = |v: &str, ty: &str, flag: &str| {
                resolve(
                    v,
                    rg,
                    &subscription,
                    &format!("Microsoft.Network/{ty}"),
                    flag,
                )
            };
            let target = match (&vnet, &subnet, &nic) {
                (Some(v), None, None) => net(v, "virtualNetworks", "vnet")?,
                (vnet, Some(s), None) if s.starts_with('/') || vnet.is_some() => {
                    if s.starts_with('/') {
                        s.clone()
                    } else {
                        format!(
                            "{}/subnets/{s}",
                            net(vnet.as_deref().expect("checked"), "virtualNetworks", "vnet")?
                        )
                    }
                }
                (None, None, Some(n)) => net(n, "networkInterfaces", "nic")?,
                _ => bail!(
                    "usage error: give exactly one target: --vnet, --subnet (an id, or a name with --vnet) or --nic"
                ),
            };
            let storage = resolve(
                &storage_account,
                rg,
                &subscription,
                "Microsoft.Storage/storageAccounts",
                "storage-account",
            )?;
            let enabled = match enabled.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                other => bail!("--enabled: expected true or false, got '{other}'"),
            };
            let body = json!({
                "location": location.to_ascii_lowercase(),
                "properties": {
                    "targetResourceId": target,
                    "storageId": storage,
                    "enabled": enabled,
                    "retentionPolicy": {"days": retention, "enabled": retention > 0},
                    "format": {"type": "JSON", "version": log_version},
                },
            });
            let id = flow_log_id(&subscription, &location, &name);
            g.call("PUT", &id.to_string(), Some(&body))
        }
        FlowLogCmd::Show {
            location,
            name,
            subscription,
        } => g.call(
            "GET",
            &flow_log_id(&subscription, &location, &name).to_string(),
            None,
        ),
        FlowLogCmd::List {
            location,
            subscription,
        } => {
            let path = format!("{}/flowLogs", watcher_id(&subscription, &location));
            match g.fetch(&path)? {
                Some(v) => g.print_value(&v["value"]),
                None => Ok(ExitCode::FAILURE),
            }
        }
        FlowLogCmd::Delete {
            location,
            name,
            subscription,
        } => g.call(
            "DELETE",
            &flow_log_id(&subscription, &location, &name).to_string(),
            None,
        ),
    }
}
