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
    /// IP flow verify: would the target's NSGs allow this flow, and which rule decides.
    #[command(name = "test-ip-flow")]
    TestIpFlow(super::flow_verify::TestIpFlowArgs),
    /// Next hop: where the target's routes send a packet to an address.
    #[command(name = "show-next-hop")]
    ShowNextHop(super::flow_verify::ShowNextHopArgs),
    /// Connection troubleshoot: real probes from a VM (or an app instance), with the hops and their issues.
    #[command(name = "test-connectivity")]
    TestConnectivity(super::connectivity::TestConnectivityArgs),
    /// Lab only: one marked probe traced by nftables in every namespace it crosses, told in Azure's words.
    Explain(super::explain::ExplainArgs),
    /// Packet captures: real pcap files of a VM NIC, an app instance's vNIC or a fabric link.
    #[command(name = "packet-capture", subcommand)]
    PacketCapture(super::packet_capture::PacketCaptureCmd),
    /// VNet flow logs: records of the flows of a VNet, subnet or NIC in a storage account.
    #[command(name = "flow-log", subcommand)]
    FlowLog(super::flow_log::FlowLogCmd),
}

pub fn run(g: &Global, cmd: WatcherCmd) -> Result<ExitCode> {
    match cmd {
        WatcherCmd::FlowLog(cmd) => super::flow_log::run(g, cmd),
        WatcherCmd::Explain(a) => super::explain::run(g, a),
        WatcherCmd::TestConnectivity(a) => super::connectivity::run(g, a),
        WatcherCmd::PacketCapture(cmd) => super::packet_capture::run(g, cmd),
        WatcherCmd::TestIpFlow(a) => super::flow_verify::test_ip_flow(g, a),
        WatcherCmd::ShowNextHop(a) => super::flow_verify::show_next_hop(g, a),
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
