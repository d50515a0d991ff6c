//! `az network ...`: subnets, NSGs and their rules, route tables and routes,
//! and the effective routes and security rules of a NIC, a subnet or an app
//! (gateways, connections and circuits: `gateway.rs`).

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::Global;
use crate::api::client::request;
use crate::model::ResourceId;
use crate::template::DEFAULT_SUBSCRIPTION;

#[derive(Args, Debug, Clone)]
pub struct Rg {
    #[arg(short = 'g', long = "resource-group")]
    pub(super) resource_group: String,
    #[arg(long, default_value = DEFAULT_SUBSCRIPTION)]
    subscription: String,
}

impl Rg {
    pub(super) fn id(&self, namespace: &str, ty: &str, name: &str) -> ResourceId {
        ResourceId::new(
            &self.subscription,
            &self.resource_group,
            namespace,
            ty,
            name,
        )
    }
    /// The id of deployment `name` in this group.
    pub(super) fn deployment(&self, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Resources/deployments/{name}",
            self.subscription, self.resource_group
        )
    }
    /// A name in this group, or a full id as given.
    pub(super) fn resolve(&self, namespace: &str, ty: &str, name_or_id: &str) -> String {
        if name_or_id.starts_with("/subscriptions/") {
            name_or_id.to_string()
        } else {
            self.id(namespace, ty, name_or_id).to_string()
        }
    }
}

/// `az network ... list -g RG`: the group's resources of one type, as an array.
pub(super) fn list_of_type(g: &Global, rg: &Rg, type_: &str) -> Result<ExitCode> {
    let path = format!(
        "/resources?resourceGroup={}",
        crate::api::client::encode(&rg.resource_group)
    );
    match g.fetch(&path)? {
        Some(all) => g.print_value(&of_type(&all, rg, type_)),
        None => Ok(ExitCode::FAILURE),
    }
}

/// The resources of `listing` (`GET /resources`: `{"value": [...]}`) of
/// type `type_` in `rg`'s subscription.
fn of_type(listing: &Value, rg: &Rg, type_: &str) -> Value {
    let sub = format!("/subscriptions/{}/", rg.subscription).to_ascii_lowercase();
    let list: Vec<&Value> = listing["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(type_))
                && r["id"]
                    .as_str()
                    .is_some_and(|id| id.to_ascii_lowercase().starts_with(&sub))
        })
        .collect();
    json!(list)
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Network interfaces.
    #[command(subcommand)]
    Nic(NicCmd),
    /// Virtual networks and their subnets.
    #[command(subcommand)]
    Vnet(VnetCmd),
    /// Network security groups and their rules.
    #[command(subcommand)]
    Nsg(NsgCmd),
    /// Route tables and their routes.
    #[command(subcommand, name = "route-table")]
    RouteTable(RouteTableCmd),
    /// Private DNS zones, their record sets and virtual network links.
    #[command(subcommand, name = "private-dns")]
    PrivateDns(PrivateDnsCmd),
    /// Private endpoints and their DNS zone groups.
    #[command(subcommand, name = "private-endpoint")]
    PrivateEndpoint(super::private_endpoint::PrivateEndpointCmd),
    /// Public IP addresses.
    #[command(subcommand, name = "public-ip")]
    PublicIp(super::create::PublicIpCmd),
    /// NAT gateways.
    #[command(subcommand)]
    Nat(super::create::NatCmd),
    /// Virtual network gateways (VPN and ExpressRoute) and their BGP routes.
    #[command(subcommand, name = "vnet-gateway")]
    VnetGateway(super::gateway::VnetGatewayCmd),
    /// Local network gateways: on-premises VPN devices.
    #[command(subcommand, name = "local-gateway")]
    LocalGateway(super::gateway::LocalGatewayCmd),
    /// Connections of virtual network gateways (IPsec, Vnet2Vnet, ExpressRoute).
    #[command(subcommand, name = "vpn-connection")]
    VpnConnection(super::gateway::VpnConnectionCmd),
    /// ExpressRoute circuits and their peerings.
    #[command(subcommand, name = "express-route")]
    ExpressRoute(super::gateway::ExpressRouteCmd),
    /// Lab only: hosts of on-premises sites (`Lab.Emulator/onPremisesHosts`).
    #[command(subcommand, name = "onprem-host")]
    OnpremHost(super::gateway::OnpremHostCmd),
    /// Network Watcher: IP flow verify, next hop, connection troubleshoot,
    /// packet captures, flow logs, and the lab's explain of a drop.
    #[command(subcommand)]
    Watcher(super::watcher::WatcherCmd),
}

#[derive(Subcommand, Debug)]
pub enum PrivateDnsCmd {
    #[command(subcommand)]
    Zone(ZoneCmd),
    #[command(subcommand, name = "record-set")]
    RecordSet(RecordSetCmd),
    #[command(subcommand)]
    Link(LinkCmd),
}

#[derive(Subcommand, Debug)]
pub enum ZoneCmd {
    /// Create a private DNS zone (location global).
    Create {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
    Show {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RecordSetCmd {
    #[command(subcommand)]
    A(ARecordCmd),
    /// Every record set of a zone (with those its private endpoints' DNS zone groups write).
    List {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'z', long)]
        zone_name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ARecordCmd {
    Show {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'z', long)]
        zone_name: String,
        #[arg(short = 'n', long)]
        name: String,
    },
    /// Add an IPv4 address to an A record set (creating the set).
    AddRecord {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'z', long)]
        zone_name: String,
        /// The record set's name relative to the zone (`@` for the apex).
        #[arg(short = 'n', long)]
        record_set_name: String,
        #[arg(short = 'a', long)]
        ipv4_address: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum LinkCmd {
    #[command(subcommand)]
    Vnet(LinkVnetCmd),
}

#[derive(Subcommand, Debug)]
pub enum LinkVnetCmd {
    /// The zone's virtual network links.
    List {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'z', long)]
        zone_name: String,
    },
    /// Link the zone to a virtual network (its VMs and apps resolve the zone).
    Create {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'z', long)]
        zone_name: String,
        #[arg(short = 'n', long)]
        name: String,
        /// VNet name (in the group) or id.
        #[arg(short = 'v', long)]
        virtual_network: String,
        #[arg(short = 'e', long, action = clap::ArgAction::Set, default_value_t = false, value_parser = super::create::az_bool)]
        registration_enabled: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum NicCmd {
    /// Show a network interface.
    Show {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
    /// Update a network interface: IP forwarding (what a virtual appliance needs).
    Update {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
        /// Let the NIC send and receive packets of other addresses.
        #[arg(long, action = clap::ArgAction::Set, value_parser = super::create::az_bool)]
        ip_forwarding: Option<bool>,
    },
    /// The NIC's effective routes (Source, State, Address Prefix, Next Hop Type, Next Hop IP).
    ShowEffectiveRouteTable {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
    /// The NIC's effective security rules (its NSG and its subnet's).
    ListEffectiveNsg {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum VnetCmd {
    /// Create a virtual network (with a first subnet).
    Create(super::create::VnetCreate),
    /// Delete a virtual network.
    Delete {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
    #[command(subcommand)]
    Subnet(SubnetCmd),
    /// Peerings of a VNet (this side; the remote VNet peers back).
    #[command(subcommand)]
    Peering(super::create::PeeringCmd),
    /// Lab only: what Azure-provided DNS (168.63.129.16) answers inside this VNet.
    Resolve {
        #[command(flatten)]
        rg: Rg,
        /// The VNet.
        #[arg(short = 'n', long = "vnet-name")]
        vnet_name: String,
        /// The name to look up.
        name: String,
        /// A, AAAA, CNAME or TXT.
        #[arg(long = "type", default_value = "A")]
        record_type: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubnetCmd {
    Show(SubnetArgs),
    /// Create a subnet.
    Create(super::create::SubnetCreate),
    /// Delete a subnet (refused while something uses it).
    Delete(SubnetArgs),
    /// Change a subnet: delegations, service endpoints, prefixes, and (with
    /// "" to dissociate) its NSG, route table or NAT gateway.
    Update {
        #[command(flatten)]
        subnet: SubnetArgs,
        #[command(flatten)]
        flags: super::create::SubnetFlags,
    },
    /// Lab only: the subnet's effective routes.
    ShowEffectiveRouteTable(SubnetArgs),
    /// Lab only: the subnet's effective security rules.
    ListEffectiveNsg(SubnetArgs),
}

#[derive(Args, Debug)]
pub struct SubnetArgs {
    #[command(flatten)]
    rg: Rg,
    #[arg(long)]
    vnet_name: String,
    #[arg(short = 'n', long)]
    name: String,
}

impl SubnetArgs {
    pub(super) fn rg(&self) -> &Rg {
        &self.rg
    }
    pub(super) fn id(&self) -> ResourceId {
        self.rg
            .id("Microsoft.Network", "virtualNetworks", &self.vnet_name)
            .child("subnets", &self.name)
    }
}

#[derive(Subcommand, Debug)]
pub enum NsgCmd {
    /// Create an NSG (Azure's default rules only).
    Create(super::create::Named),
    /// Delete an NSG (refused while a subnet or NIC uses it).
    Delete {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
    /// An NSG, with each rule's hit counts from the kernel.
    Show {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
    #[command(subcommand)]
    Rule(NsgRuleCmd),
}

#[derive(Subcommand, Debug)]
pub enum NsgRuleCmd {
    /// Create or replace a rule.
    Create(Box<RuleArgs>),
    /// Change fields of a rule.
    Update(Box<RuleArgs>),
    Delete(RuleRef),
    Show(RuleRef),
}

/// Which rule: `-g RG --nsg-name NSG -n RULE`.
#[derive(Args, Debug)]
pub struct RuleRef {
    #[command(flatten)]
    rg: Rg,
    #[arg(long)]
    nsg_name: String,
    #[arg(short = 'n', long)]
    name: String,
}

impl RuleRef {
    fn id(&self) -> ResourceId {
        self.rg
            .id("Microsoft.Network", "networkSecurityGroups", &self.nsg_name)
            .child("securityRules", &self.name)
    }
}

#[derive(Args, Debug)]
pub struct RuleArgs {
    #[command(flatten)]
    rule: RuleRef,
    #[arg(long)]
    priority: Option<u32>,
    /// Inbound or Outbound.
    #[arg(long)]
    direction: Option<String>,
    /// Allow or Deny.
    #[arg(long)]
    access: Option<String>,
    /// Tcp, Udp, Icmp or *.
    #[arg(long)]
    protocol: Option<String>,
    #[arg(long, num_args = 1..)]
    source_address_prefixes: Vec<String>,
    #[arg(long, num_args = 1..)]
    destination_address_prefixes: Vec<String>,
    #[arg(long, num_args = 1..)]
    source_port_ranges: Vec<String>,
    #[arg(long, num_args = 1..)]
    destination_port_ranges: Vec<String>,
}

impl RuleArgs {
    fn properties(&self, create: bool) -> Value {
        let mut p = Map::new();
        let mut put = |k: &str, v: Value| {
            p.insert(k.to_string(), v);
        };
        if let Some(v) = self.priority {
            put("priority", json!(v));
        }
        let text = |v: &Option<String>, default: &str| {
            v.clone().or_else(|| create.then(|| default.to_string()))
        };
        if let Some(v) = text(&self.direction, "Inbound") {
            put("direction", json!(v));
        }
        if let Some(v) = text(&self.access, "Allow") {
            put("access", json!(v));
        }
        if let Some(v) = text(&self.protocol, "*") {
            put("protocol", json!(v));
        }
        // az's list flags: one value becomes the singular property, as az writes it.
        for (flag, one, many, default) in [
            (
                &self.source_address_prefixes,
                "sourceAddressPrefix",
                "sourceAddressPrefixes",
                "*",
            ),
            (
                &self.destination_address_prefixes,
                "destinationAddressPrefix",
                "destinationAddressPrefixes",
                "*",
            ),
            (
                &self.source_port_ranges,
                "sourcePortRange",
                "sourcePortRanges",
                "*",
            ),
            (
                &self.destination_port_ranges,
                "destinationPortRange",
                "destinationPortRanges",
                "*",
            ),
        ] {
            match flag.len() {
                0 if create => {
                    put(one, json!(default));
                }
                0 => {}
                1 => {
                    put(one, json!(flag[0]));
                    put(many, json!([]));
                }
                _ => {
                    put(one, Value::Null);
                    put(many, json!(flag));
                }
            }
        }
        Value::Object(p)
    }

    fn id(&self) -> ResourceId {
        self.rule.id()
    }
}

#[derive(Subcommand, Debug)]
pub enum RouteTableCmd {
    /// Create a route table.
    Create(super::create::RouteTableCreate),
    Show {
        #[command(flatten)]
        rg: Rg,
        #[arg(short = 'n', long)]
        name: String,
    },
    #[command(subcommand)]
    Route(RouteCmd),
}

#[derive(Subcommand, Debug)]
pub enum RouteCmd {
    /// Create or replace a user-defined route.
    Create {
        #[command(flatten)]
        rg: Rg,
        #[arg(long)]
        route_table_name: String,
        #[arg(short = 'n', long)]
        name: String,
        #[arg(long)]
        address_prefix: String,
        /// VirtualAppliance, VirtualNetworkGateway, VnetLocal, Internet or None.
        #[arg(long)]
        next_hop_type: String,
        #[arg(long)]
        next_hop_ip_address: Option<String>,
    },
    Delete {
        #[command(flatten)]
        rg: Rg,
        #[arg(long)]
        route_table_name: String,
        #[arg(short = 'n', long)]
        name: String,
    },
}

pub fn run(g: &Global, cmd: NetworkCmd) -> Result<ExitCode> {
    match cmd {
        NetworkCmd::Vnet(VnetCmd::Resolve {
            rg,
            vnet_name,
            name,
            record_type,
        }) => {
            let id = rg.id("Microsoft.Network", "virtualNetworks", &vnet_name);
            g.call(
                "POST",
                &format!("{id}/resolve"),
                Some(&json!({ "name": name, "type": record_type })),
            )
        }
        NetworkCmd::PrivateDns(cmd) => private_dns(g, cmd),
        NetworkCmd::PrivateEndpoint(cmd) => super::private_endpoint::run(g, cmd),
        NetworkCmd::Nic(NicCmd::Show { rg, name }) => g.call(
            "GET",
            &rg.id("Microsoft.Network", "networkInterfaces", &name)
                .to_string(),
            None,
        ),
        NetworkCmd::Nic(NicCmd::Update {
            rg,
            name,
            ip_forwarding,
        }) => g.update(
            &rg.id("Microsoft.Network", "networkInterfaces", &name)
                .to_string(),
            |nic| {
                if let Some(f) = ip_forwarding {
                    nic["properties"]["enableIPForwarding"] = json!(f);
                }
                Ok(())
            },
        ),
        NetworkCmd::Nic(NicCmd::ShowEffectiveRouteTable { rg, name }) => {
            let id = rg.id("Microsoft.Network", "networkInterfaces", &name);
            g.call("POST", &format!("{id}/effectiveRouteTable"), None)
        }
        NetworkCmd::Nic(NicCmd::ListEffectiveNsg { rg, name }) => {
            let id = rg.id("Microsoft.Network", "networkInterfaces", &name);
            g.call(
                "POST",
                &format!("{id}/effectiveNetworkSecurityGroups"),
                None,
            )
        }
        NetworkCmd::Vnet(VnetCmd::Subnet(SubnetCmd::Show(s))) => {
            g.call("GET", &s.id().to_string(), None)
        }
        NetworkCmd::Vnet(VnetCmd::Subnet(SubnetCmd::ShowEffectiveRouteTable(s))) => {
            g.call("POST", &format!("{}/effectiveRouteTable", s.id()), None)
        }
        NetworkCmd::Vnet(VnetCmd::Subnet(SubnetCmd::ListEffectiveNsg(s))) => g.call(
            "POST",
            &format!("{}/effectiveNetworkSecurityGroups", s.id()),
            None,
        ),
        NetworkCmd::Vnet(VnetCmd::Subnet(SubnetCmd::Update { subnet, flags })) => {
            let mut p = Map::new();
            flags.apply(&subnet.rg, &mut p);
            if p.is_empty() {
                bail!("nothing to update: name --nsg, --route-table, --nat-gateway, --delegations, --service-endpoints or --address-prefixes");
            }
            g.call(
                "PATCH",
                &subnet.id().to_string(),
                Some(&json!({ "properties": p })),
            )
        }
        NetworkCmd::Vnet(VnetCmd::Subnet(SubnetCmd::Create(a))) => {
            super::create::subnet_create(g, a)
        }
        NetworkCmd::Vnet(VnetCmd::Subnet(SubnetCmd::Delete(s))) => {
            g.call("DELETE", &s.id().to_string(), None)
        }
        NetworkCmd::Vnet(VnetCmd::Create(a)) => super::create::vnet_create(g, a),
        NetworkCmd::Vnet(VnetCmd::Peering(cmd)) => super::create::peering(g, cmd),
        NetworkCmd::Vnet(VnetCmd::Delete { rg, name }) => g.call(
            "DELETE",
            &rg.id("Microsoft.Network", "virtualNetworks", &name)
                .to_string(),
            None,
        ),
        NetworkCmd::Nsg(NsgCmd::Create(a)) => super::create::nsg_create(g, a),
        NetworkCmd::Nsg(NsgCmd::Delete { rg, name }) => g.call(
            "DELETE",
            &rg.id("Microsoft.Network", "networkSecurityGroups", &name)
                .to_string(),
            None,
        ),
        NetworkCmd::RouteTable(RouteTableCmd::Create(a)) => super::create::route_table_create(g, a),
        NetworkCmd::PublicIp(cmd) => super::create::public_ip(g, cmd),
        NetworkCmd::Nat(cmd) => super::create::nat(g, cmd),
        NetworkCmd::VnetGateway(cmd) => super::gateway::vnet_gateway(g, cmd),
        NetworkCmd::LocalGateway(cmd) => super::gateway::local_gateway(g, cmd),
        NetworkCmd::VpnConnection(cmd) => super::gateway::vpn_connection(g, cmd),
        NetworkCmd::ExpressRoute(cmd) => super::gateway::express_route(g, cmd),
        NetworkCmd::OnpremHost(cmd) => super::gateway::onprem_host(g, cmd),
        NetworkCmd::Watcher(cmd) => super::watcher::run(g, cmd),
        NetworkCmd::Nsg(NsgCmd::Show { rg, name }) => g.call(
            "GET",
            &rg.id("Microsoft.Network", "networkSecurityGroups", &name)
                .to_string(),
            None,
        ),
        NetworkCmd::Nsg(NsgCmd::Rule(NsgRuleCmd::Create(r))) => {
            if r.priority.is_none() {
                bail!("--priority is required (100-4096)");
            }
            g.call(
                "PUT",
                &r.id().to_string(),
                Some(&json!({ "properties": r.properties(true) })),
            )
        }
        NetworkCmd::Nsg(NsgCmd::Rule(NsgRuleCmd::Update(r))) => g.call(
            "PATCH",
            &r.id().to_string(),
            Some(&json!({ "properties": r.properties(false) })),
        ),
        NetworkCmd::Nsg(NsgCmd::Rule(NsgRuleCmd::Delete(r))) => {
            g.call("DELETE", &r.id().to_string(), None)
        }
        NetworkCmd::Nsg(NsgCmd::Rule(NsgRuleCmd::Show(r))) => {
            g.call("GET", &r.id().to_string(), None)
        }
        NetworkCmd::RouteTable(RouteTableCmd::Show { rg, name }) => g.call(
            "GET",
            &rg.id("Microsoft.Network", "routeTables", &name).to_string(),
            None,
        ),
        NetworkCmd::RouteTable(RouteTableCmd::Route(RouteCmd::Create {
            rg,
            route_table_name,
            name,
            address_prefix,
            next_hop_type,
            next_hop_ip_address,
        })) => {
            let id = rg
                .id("Microsoft.Network", "routeTables", &route_table_name)
                .child("routes", &name);
            let mut p = json!({ "addressPrefix": address_prefix, "nextHopType": next_hop_type });
            if let Some(ip) = next_hop_ip_address {
                p["nextHopIpAddress"] = json!(ip);
            }
            g.call("PUT", &id.to_string(), Some(&json!({ "properties": p })))
        }
        NetworkCmd::RouteTable(RouteTableCmd::Route(RouteCmd::Delete {
            rg,
            route_table_name,
            name,
        })) => {
            let id = rg
                .id("Microsoft.Network", "routeTables", &route_table_name)
                .child("routes", &name);
            g.call("DELETE", &id.to_string(), None)
        }
    }
}

fn private_dns(g: &Global, cmd: PrivateDnsCmd) -> Result<ExitCode> {
    let zone = |rg: &Rg, name: &str| rg.id("Microsoft.Network", "privateDnsZones", name);
    match cmd {
        PrivateDnsCmd::Zone(ZoneCmd::Create { rg, name }) => g.call(
            "PUT",
            &zone(&rg, &name).to_string(),
            Some(&json!({ "location": "global", "properties": {} })),
        ),
        PrivateDnsCmd::Zone(ZoneCmd::Show { rg, name }) => {
            g.call("GET", &zone(&rg, &name).to_string(), None)
        }
        PrivateDnsCmd::RecordSet(RecordSetCmd::A(ARecordCmd::Show {
            rg,
            zone_name,
            name,
        })) => g.call(
            "GET",
            &zone(&rg, &zone_name).child("A", &name).to_string(),
            None,
        ),
        PrivateDnsCmd::RecordSet(RecordSetCmd::List { rg, zone_name }) => {
            match g.fetch(&zone(&rg, &zone_name).to_string())? {
                Some(z) => g.print(&z["properties"]["recordSets"])?,
                None => return Ok(ExitCode::FAILURE),
            }
            Ok(ExitCode::SUCCESS)
        }
        PrivateDnsCmd::RecordSet(RecordSetCmd::A(ARecordCmd::AddRecord {
            rg,
            zone_name,
            record_set_name,
            ipv4_address,
        })) => {
            let id = zone(&rg, &zone_name).child("A", &record_set_name);
            // az reads the set, appends the address and writes it back.
            let (status, current) =
                request(&g.socket(), &g.principal, "GET", &id.to_string(), None)?;
            let mut records: Vec<Value> = if status == 200 {
                current
                    .pointer("/properties/aRecords")
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if !records
                .iter()
                .any(|r| r["ipv4Address"] == ipv4_address.as_str())
            {
                records.push(json!({ "ipv4Address": ipv4_address }));
            }
            let ttl = current
                .pointer("/properties/ttl")
                .and_then(|v| v.as_u64())
                .unwrap_or(3600);
            g.call(
                "PUT",
                &id.to_string(),
                Some(&json!({ "properties": { "ttl": ttl, "aRecords": records } })),
            )
        }
        PrivateDnsCmd::Link(LinkCmd::Vnet(LinkVnetCmd::List { rg, zone_name })) => {
            // The zone holds its links (as a peering is held by its VNet).
            match g.fetch(&zone(&rg, &zone_name).to_string())? {
                Some(v) => g.print_value(&v["properties"]["virtualNetworkLinks"]),
                None => Ok(ExitCode::FAILURE),
            }
        }
        PrivateDnsCmd::Link(LinkCmd::Vnet(LinkVnetCmd::Create {
            rg,
            zone_name,
            name,
            virtual_network,
            registration_enabled,
        })) => {
            let id = zone(&rg, &zone_name).child("virtualNetworkLinks", &name);
            let vnet = rg.resolve("Microsoft.Network", "virtualNetworks", &virtual_network);
            let body = json!({ "location": "global", "properties": {
                "virtualNetwork": { "id": vnet }, "registrationEnabled": registration_enabled } });
            g.call("PUT", &id.to_string(), Some(&body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(create: bool, dst_ports: &[&str]) -> Value {
        RuleArgs {
            rule: RuleRef {
                rg: Rg {
                    resource_group: "rg".into(),
                    subscription: "s".into(),
                },
                nsg_name: "n".into(),
                name: "r".into(),
            },
            priority: Some(100),
            direction: Some("Outbound".into()),
            access: Some("Deny".into()),
            protocol: Some("Tcp".into()),
            source_address_prefixes: vec![],
            destination_address_prefixes: vec!["10.0.2.4".into()],
            source_port_ranges: vec![],
            destination_port_ranges: dst_ports.iter().map(|s| s.to_string()).collect(),
        }
        .properties(create)
    }

    #[test]
    fn list_keeps_one_type_of_the_groups_subscription() {
        let rg = Rg {
            resource_group: "rg".into(),
            subscription: "s".into(),
        };
        let r = |sub: &str, ty: &str, name: &str| json!({"id": format!("/subscriptions/{sub}/resourceGroups/rg/providers/{ty}/{name}"), "type": ty, "name": name});
        let listing = json!({"value": [
            r("s", "Microsoft.Network/virtualNetworkGateways", "gw1"),
            r("s", "Microsoft.Network/virtualNetworks", "vnet1"),
            r("other", "Microsoft.Network/virtualNetworkGateways", "gw2"),
            r("S", "microsoft.network/virtualnetworkgateways", "gw3"),
        ]});
        let names: Vec<Value> = of_type(&listing, &rg, "Microsoft.Network/virtualNetworkGateways")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("gw1"), json!("gw3")]);
    }

    #[test]
    fn rule_flags_become_azure_properties() {
        let p = rule(true, &["80", "443"]);
        assert_eq!(p["sourceAddressPrefix"], "*");
        assert_eq!(p["destinationAddressPrefix"], "10.0.2.4");
        assert_eq!(p["destinationPortRanges"], json!(["80", "443"]));
        assert_eq!(p["destinationPortRange"], Value::Null);
        let u = rule(false, &[]);
        assert!(
            u.get("sourceAddressPrefix").is_none(),
            "an update leaves unnamed fields alone: {u}"
        );
    }
}
