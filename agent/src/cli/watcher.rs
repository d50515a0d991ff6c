//! `az network watcher ...`: the watchers of the lab's regions and their
//! tools. Each tool is one variant of [`WatcherCmd`], run by its own module.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::Global;
use crate::template::DEFAULT_SUBSCRIPTION;

#[derive(Subcommand, Debug)]
pub enum WatcherCmd {
    /// The Network Watchers of the lab: one per region with a virtual network.
    List {
        #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
        subscription: String,
    },
    /// VNet flow logs: records of the flows of a VNet, subnet or NIC in a storage account.
    #[command(name = "flow-log", subcommand)]
    FlowLog(super::flow_log::FlowLogCmd),
}

pub fn run(g: &Global, cmd: WatcherCmd) -> Result<ExitCode> {
    match cmd {
        WatcherCmd::FlowLog(cmd) => super::flow_log::run(g, cmd),
        WatcherCmd::List { subscription } => {
            let path = format!(
                "/subscriptions/{subscription}/providers/Microsoft.Network/networkWatchers"
            );
            match g.fetch(&path)? {
                Some(v) => g.print_value(&v["value"]),
                None => Ok(ExitCode::FAILURE),
            }
        }
    }
}
