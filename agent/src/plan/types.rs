//! The NetworkPlan: everything the kernel should hold for one lab, as plain
//! data. `plan/` builds it without any syscall; `dataplane/` makes the kernel
//! match it. This file is the contract between the two halves.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// Name of the one nftables table the agent owns in every namespace it makes.
pub const NFT_TABLE: &str = "vnet_agent";
/// Family of that table.
pub const NFT_FAMILY: &str = "inet";

/// What a namespace stands for in Azure's picture (DESIGN.md, "How Azure maps onto the kernel").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NamespaceRole {
    /// The lab's internet: routes every public address to its owner.
    Internet,
    /// A public test host (`Lab.Emulator/internetHosts`).
    InternetHost { resource_id: String },
    /// The App Service stamp of one region: owns the sites' outbound IPs.
    Stamp { location: String },
    /// The SDN host of one virtual network.
    Fabric { vnet_id: String },
    /// One App Service plan instance (worker role).
    Worker { plan_id: String, instance: u32 },
    /// One site's sandbox on one worker.
    AppSandbox { site_id: String, instance: u32 },
    /// A virtual machine holding its NICs.
    VirtualMachine { vm_id: String },
    /// An emulated service (storage account, key vault, registry) and its host process.
    Service { resource_id: String },
    /// A virtual network gateway (VPN or ExpressRoute) and its BGP speaker.
    Gateway { resource_id: String },
    /// The router of an on-premises site (a local network gateway's device,
    /// or the customer edge of an ExpressRoute circuit) and its BGP speaker.
    OnPremisesSite { resource_id: String },
    /// A host of an on-premises site (`Lab.Emulator/onPremisesHosts`).
    OnPremisesHost { resource_id: String },
}

/// One network namespace, named `<lab>-<kind>-<readable>-<hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacePlan {
    pub name: String,
    pub role: NamespaceRole,
    /// `/proc/sys/` relative paths to values, e.g. `net/ipv4/ip_forward` = `1`,
    /// `net/ipv4/conf/n-1a2b3c/proxy_arp` = `1`. Interface sysctls name links of
    /// this namespace; they are written after the links exist.
    pub sysctls: BTreeMap<String, String>,
    /// Addresses, `lo` included (gateway and owned public addresses live on `lo`).
    pub addresses: Vec<AddressPlan>,
    pub routes: Vec<RoutePlan>,
    pub rules: Vec<RulePlan>,
    /// The complete nft JSON batch (`{"nftables":[...]}`) that replaces table
    /// `inet vnet_agent` atomically (add table; delete table; add table; ...).
    /// `None`: the namespace has no table.
    pub nft: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddressPlan {
    pub ifname: String,
    pub address: Ipv4Net,
}

/// A route in table `table` (254 = main).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoutePlan {
    pub table: u32,
    pub destination: Ipv4Net,
    pub kind: RouteKind,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RouteKind {
    /// Directly out of a link (the peer answers ARP, e.g. a /32 to a NIC).
    Dev { ifname: String },
    /// Through a gateway on a link; `onlink` when the gateway is not in any
    /// prefix of the link (the 169.254 next hops of the lab).
    Via {
        gateway: Ipv4Addr,
        ifname: String,
        onlink: bool,
    },
    /// Next hop type None: dropped silently.
    Blackhole,
    /// Fall through to the next ip rule (VnetLocal in a subnet table).
    Throw,
    /// ICMP unreachable.
    Unreachable,
}

/// An `ip rule`. Exactly one of `fwmark` / `iif` is usually set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RulePlan {
    pub priority: u32,
    /// `(mark, mask)`.
    pub fwmark: Option<(u32, u32)>,
    pub iif: Option<String>,
    pub table: u32,
}

/// A veth pair. Both ends are born in their namespaces (no create-then-move).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VethPlan {
    pub a: VethEnd,
    pub b: VethEnd,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VethEnd {
    pub netns: String,
    /// At most 15 bytes.
    pub ifname: String,
}

/// A supervised process: a site's `appCommandLine` in one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessPlan {
    /// Stable key, e.g. `<site id>/instances/<n>`.
    pub key: String,
    pub netns: String,
    /// Program and arguments (`/bin/sh -c <appCommandLine>`).
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The cgroup an app instance's process runs in, with the limits of its
    /// plan's SKU (docs/datapath.md, "App cgroups"). `None`: not an app
    /// instance (a VM's extension, a service host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupPlan>,
}

impl ProcessPlan {
    /// The same program in the same place: only the cgroup's limits may
    /// differ, and those are re-applied to the running cgroup (a scale-up
    /// of the plan does not restart the app), or a process recorded without
    /// a cgroup (by a daemon before cgroups) is moved into its new one.
    /// Anything else restarts it.
    pub fn same_process(&self, other: &ProcessPlan) -> bool {
        self.key == other.key
            && self.netns == other.netns
            && self.argv == other.argv
            && self.env == other.env
            && match (&self.cgroup, &other.cgroup) {
                (Some(a), Some(b)) => a.path == b.path,
                (None, _) => true,
                (Some(_), None) => false,
            }
    }
}

/// One app instance's cgroup: where it is and what it may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// Relative to each controller's hierarchy root:
    /// `vnet-agent/<lab>/<site>-<hash8>/<instance>` (`names::app_cgroup`).
    pub path: String,
    pub limits: CgroupLimits,
}

/// The resources of one App Service plan instance (`plan/limits.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CgroupLimits {
    /// The SKU's memory per instance (`memory.max` / `memory.limit_in_bytes`).
    pub memory_bytes: u64,
    /// Processes and threads at most (`pids.max`).
    pub pids_max: u64,
}

/// Which names a DNS server of the agent answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum DnsView {
    /// Azure-provided DNS inside one VNet: its linked private zones, then public names.
    VirtualNetwork { vnet_id: String },
    /// The lab's public DNS: internet hosts and emulated services' public names.
    Public,
}

/// A DNS server the agent runs: UDP and TCP port 53 on `address`, sockets
/// made inside `netns` (docs/datapath.md, "DNS").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsServerPlan {
    pub netns: String,
    pub address: Ipv4Addr,
    pub view: DnsView,
}

/// The DNS a namespace's programs use: the `nameserver` lines of the
/// resolv.conf that the agent writes for it and bind-mounts on
/// `/etc/resolv.conf` of every program it runs there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolverConfig {
    pub servers: Vec<Ipv4Addr>,
    /// Where the servers come from, in words (a comment in the file).
    pub source: String,
}

/// An emulated service's host process (`vnet-agent service-host`): the
/// daemon writes `config` to a file the host re-reads, and supervises the
/// process like an app's (a changed configuration does not restart it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHostPlan {
    /// `<service id>/host`, lower-cased.
    pub key: String,
    pub netns: String,
    /// The `vnet-agent` subcommand that runs it: `service-host` (an
    /// emulated service) or `front-end` (a stamp's front end).
    pub command: String,
    /// A `services::config::HostConfig` (or `frontend::config::FrontEndConfig`) as JSON.
    pub config: serde_json::Value,
}

/// Everything of one lab.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkPlan {
    pub lab: String,
    /// Keyed by namespace name.
    pub namespaces: BTreeMap<String, NamespacePlan>,
    pub veths: Vec<VethPlan>,
    pub processes: Vec<ProcessPlan>,
    /// The DNS servers the agent answers on (one per VNet, the public one).
    #[serde(default)]
    pub dns_servers: Vec<DnsServerPlan>,
    /// The resolver of every namespace where programs run (app sandboxes,
    /// VMs, internet hosts), keyed by namespace name.
    #[serde(default)]
    pub resolvers: BTreeMap<String, ResolverConfig>,
    /// Emulated services' hosts.
    #[serde(default)]
    pub services: Vec<ServiceHostPlan>,
    /// What the platform does when each app instance starts (configuration
    /// routing); carried out by the daemon, never written to the kernel.
    #[serde(skip)]
    pub startups: Vec<super::startup::StartupSpec>,
}
