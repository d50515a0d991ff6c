//! The on-premises side of a VNet with az's nouns and flags: `network
//! vnet-gateway ...` (with `list-learned-routes` and
//! `list-advertised-routes`), `network local-gateway ...`, `network
//! vpn-connection ...` and `network express-route ...` (with `peering ...`);
//! and the lab's `network onprem-host ...`. Each create builds the ARM body
//! az would send and PUTs it.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::create::Location;
use super::network::{list_of_type, Rg};
use super::Global;
use crate::api::client::request;
use crate::model::ResourceId;

const NETWORK: &str = "Microsoft.Network";

// `-g RG -n NAME` (no doc comment: it would be each verb's help).
#[derive(Args, Debug)]
pub struct NameRef {
    #[command(flatten)]
    rg: Rg,
    #[arg(short = 'n', long)]
    name: String,
}

impl NameRef {
    fn id(&self, ty: &str) -> ResourceId {
        self.rg.id(NETWORK, ty, &self.name)
    }
}

/// `--no-wait`: az sends the request and prints nothing.
fn put(g: &Global, id: &ResourceId, body: &Value, no_wait: bool) -> Result<ExitCode> {
    if !no_wait {
        return g.call("PUT", &id.to_string(), Some(body));
    }
    let (status, answer) = request(
        &g.socket(),
        &g.principal,
        "PUT",
        &id.to_string(),
        Some(body),
    )?;
    if (200..300).contains(&status) {
        Ok(ExitCode::SUCCESS)
    } else {
        super::print_error(&answer);
        Ok(ExitCode::FAILURE)
    }
}

/// az's `--asn ASN [--bgp-peering-address IP --peer-weight WEIGHT]`: the
/// `bgpSettings` they make, `None` without `--asn`.
fn bgp_settings(
    asn: Option<u32>,
    peering_address: &Option<String>,
    peer_weight: Option<u32>,
) -> Result<Option<Value>> {
    let Some(asn) = asn else {
        if peering_address.is_some() || peer_weight.is_some() {
            bail!("incorrect usage: --asn ASN [--peer-weight WEIGHT --bgp-peering-address IP]");
        }
        return Ok(None);
    };
    let mut s = json!({ "asn": asn });
    if let Some(a) = peering_address {
        s["bgpPeeringAddress"] = json!(a);
    }
    if let Some(w) = peer_weight {
        s["peerWeight"] = json!(w);
    }
    Ok(Some(s))
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayType {
    #[value(name = "Vpn")]
    Vpn,
    #[value(name = "ExpressRoute")]
    ExpressRoute,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VpnType {
    #[value(name = "RouteBased")]
    RouteBased,
    #[value(name = "PolicyBased")]
    PolicyBased,
}

#[derive(Subcommand, Debug)]
pub enum VnetGatewayCmd {
    /// Create a virtual network gateway in the VNet's GatewaySubnet.
    Create(Box<VnetGatewayCreate>),
    /// Show a virtual network gateway (with the lab's namespace and BGP speaker).
    Show(NameRef),
    /// The virtual network gateways of a resource group.
    List {
        #[command(flatten)]
        rg: Rg,
    },
    /// Delete a virtual network gateway (refused while connections use it).
    Delete(NameRef),
    /// The routes the gateway's BGP speaker holds (its own and those learned).
    ListLearnedRoutes(NameRef),
    /// The routes the gateway advertises to one BGP peer.
    ListAdvertisedRoutes {
        #[command(flatten)]
        gateway: NameRef,
        /// The peer's BGP address.
        #[arg(long)]
        peer: String,
    },
}

#[derive(Args, Debug)]
pub struct VnetGatewayCreate {
    #[command(flatten)]
    gateway: NameRef,
    /// The VNet (a name in the group, or an id); the gateway goes in its GatewaySubnet.
    #[arg(long)]
    vnet: String,
    /// The gateway's public IP (a name in the group, or an id).
    #[arg(long)]
    public_ip_addresses: Option<String>,
    #[arg(long, value_enum, ignore_case = true, default_value = "Vpn")]
    gateway_type: GatewayType,
    /// VpnGw1, VpnGw2, ... or Standard, HighPerformance, ErGw1AZ, ...
    /// [default: VpnGw1, or Standard for an ExpressRoute gateway].
    #[arg(long)]
    sku: Option<String>,
    #[arg(long, value_enum, ignore_case = true, default_value = "RouteBased")]
    vpn_type: VpnType,
    /// The gateway's BGP ASN (turns BGP on).
    #[arg(long)]
    asn: Option<u32>,
    #[arg(long)]
    bgp_peering_address: Option<String>,
    #[arg(long)]
    peer_weight: Option<u32>,
    #[command(flatten)]
    location: Location,
    #[arg(long)]
    no_wait: bool,
}

impl VnetGatewayCreate {
    fn body(&self) -> Result<Value> {
        let rg = &self.gateway.rg;
        let subnet = format!(
            "{}/subnets/GatewaySubnet",
            rg.resolve(NETWORK, "virtualNetworks", &self.vnet)
        );
        let mut ip_config = json!({
            "subnet": { "id": subnet },
            "privateIPAllocationMethod": "Dynamic",
        });
        if let Some(p) = &self.public_ip_addresses {
            ip_config["publicIPAddress"] =
                json!({ "id": rg.resolve(NETWORK, "publicIPAddresses", p) });
        }
        let (gateway_type, default_sku) = match self.gateway_type {
            GatewayType::Vpn => ("Vpn", "VpnGw1"),
            GatewayType::ExpressRoute => ("ExpressRoute", "Standard"),
        };
        let sku = self.sku.clone().unwrap_or_else(|| default_sku.into());
        let bgp = bgp_settings(self.asn, &self.bgp_peering_address, self.peer_weight)?;
        let mut props = json!({
            "gatewayType": gateway_type,
            "vpnType": match self.vpn_type {
                VpnType::RouteBased => "RouteBased",
                VpnType::PolicyBased => "PolicyBased",
            },
            "sku": { "name": sku, "tier": sku },
            "enableBgp": bgp.is_some(),
            "activeActive": false,
            "ipConfigurations": [{ "name": "vnetGatewayConfig0", "properties": ip_config }],
        });
        if let Some(b) = bgp {
            props["bgpSettings"] = b;
        }
        Ok(json!({ "location": self.location.get(), "properties": props }))
    }
}

/// `az network vnet-gateway ...`.
pub fn vnet_gateway(g: &Global, cmd: VnetGatewayCmd) -> Result<ExitCode> {
    const TYPE: &str = "virtualNetworkGateways";
    match cmd {
        VnetGatewayCmd::Create(a) => put(g, &a.gateway.id(TYPE), &a.body()?, a.no_wait),
        VnetGatewayCmd::Show(r) => g.call("GET", &r.id(TYPE).to_string(), None),
        VnetGatewayCmd::List { rg } => {
            list_of_type(g, &rg, "Microsoft.Network/virtualNetworkGateways")
        }
        VnetGatewayCmd::Delete(r) => g.call("DELETE", &r.id(TYPE).to_string(), None),
        VnetGatewayCmd::ListLearnedRoutes(r) => g.call(
            "POST",
            &format!("{}/getLearnedRoutes", r.id(TYPE)),
            Some(&json!({})),
        ),
        VnetGatewayCmd::ListAdvertisedRoutes { gateway, peer } => g.call(
            "POST",
            &format!("{}/getAdvertisedRoutes", gateway.id(TYPE)),
            Some(&json!({ "peer": peer })),
        ),
    }
}

#[derive(Subcommand, Debug)]
pub enum LocalGatewayCmd {
    /// Create a local network gateway: the on-premises VPN device and its prefixes.
    Create(Box<LocalGatewayCreate>),
    /// Show a local network gateway (with the lab's site router).
    Show(NameRef),
    /// The local network gateways of a resource group.
    List {
        #[command(flatten)]
        rg: Rg,
    },
    /// Delete a local network gateway.
    Delete(NameRef),
}

#[derive(Args, Debug)]
pub struct LocalGatewayCreate {
    #[command(flatten)]
    gateway: NameRef,
    /// The device's public address.
    #[arg(long)]
    gateway_ip_address: String,
    /// The on-premises prefixes, routed to the VPN gateway.
    #[arg(long, num_args = 1..)]
    local_address_prefixes: Vec<String>,
    /// The device's BGP ASN.
    #[arg(long)]
    asn: Option<u32>,
    /// The device's BGP address.
    #[arg(long)]
    bgp_peering_address: Option<String>,
    #[arg(long)]
    peer_weight: Option<u32>,
    #[command(flatten)]
    location: Location,
}

impl LocalGatewayCreate {
    fn body(&self) -> Result<Value> {
        let mut props = json!({
            "gatewayIpAddress": self.gateway_ip_address,
            "localNetworkAddressSpace": { "addressPrefixes": self.local_address_prefixes },
        });
        if let Some(b) = bgp_settings(self.asn, &self.bgp_peering_address, self.peer_weight)? {
            props["bgpSettings"] = b;
        }
        Ok(json!({ "location": self.location.get(), "properties": props }))
    }
}

/// `az network local-gateway ...`.
pub fn local_gateway(g: &Global, cmd: LocalGatewayCmd) -> Result<ExitCode> {
    const TYPE: &str = "localNetworkGateways";
    match cmd {
        LocalGatewayCmd::Create(a) => put(g, &a.gateway.id(TYPE), &a.body()?, false),
        LocalGatewayCmd::Show(r) => g.call("GET", &r.id(TYPE).to_string(), None),
        LocalGatewayCmd::List { rg } => {
            list_of_type(g, &rg, "Microsoft.Network/localNetworkGateways")
        }
        LocalGatewayCmd::Delete(r) => g.call("DELETE", &r.id(TYPE).to_string(), None),
    }
}

#[derive(Subcommand, Debug)]
pub enum VpnConnectionCmd {
    /// Create a connection from a virtual network gateway to a local network
    /// gateway (IPsec), another VNet's gateway (Vnet2Vnet) or an ExpressRoute
    /// circuit (ExpressRoute).
    Create(Box<VpnConnectionCreate>),
    /// Show a connection (with the lab's links and BGP session).
    Show(NameRef),
    /// The connections of a resource group.
    List {
        #[command(flatten)]
        rg: Rg,
    },
    /// Delete a connection.
    Delete(NameRef),
}

#[derive(Args, Debug)]
pub struct VpnConnectionCreate {
    #[command(flatten)]
    connection: NameRef,
    /// The virtual network gateway (a name in the group, or an id).
    #[arg(long)]
    vnet_gateway1: String,
    /// Destination: a local network gateway (IPsec).
    #[arg(long)]
    local_gateway2: Option<String>,
    /// Destination: a VPN gateway (Vnet2Vnet).
    #[arg(long)]
    vnet_gateway2: Option<String>,
    /// Destination: an ExpressRoute circuit (ExpressRoute).
    #[arg(long)]
    express_route_circuit2: Option<String>,
    #[arg(long)]
    shared_key: Option<String>,
    /// Run BGP over the connection.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = super::create::az_bool)]
    enable_bgp: Option<bool>,
    #[arg(long, default_value_t = 10)]
    routing_weight: u32,
    #[command(flatten)]
    location: Location,
}

impl VpnConnectionCreate {
    fn body(&self) -> Result<Value> {
        let rg = &self.connection.rg;
        let (connection_type, key, ty, target) = match (
            &self.local_gateway2,
            &self.vnet_gateway2,
            &self.express_route_circuit2,
        ) {
            (Some(l), None, None) => ("IPsec", "localNetworkGateway2", "localNetworkGateways", l),
            (None, Some(v), None) => (
                "Vnet2Vnet",
                "virtualNetworkGateway2",
                "virtualNetworkGateways",
                v,
            ),
            (None, None, Some(c)) => ("ExpressRoute", "peer", "expressRouteCircuits", c),
            _ => bail!(
                "usage error: --vnet-gateway2 NAME_OR_ID | --local-gateway2 NAME_OR_ID | \
                 --express-route-circuit2 NAME_OR_ID"
            ),
        };
        let mut props = json!({
            "connectionType": connection_type,
            "virtualNetworkGateway1": {
                "id": rg.resolve(NETWORK, "virtualNetworkGateways", &self.vnet_gateway1)
            },
            "enableBgp": self.enable_bgp.unwrap_or(false),
            "routingWeight": self.routing_weight,
        });
        props[key] = json!({ "id": rg.resolve(NETWORK, ty, target) });
        if let Some(k) = &self.shared_key {
            props["sharedKey"] = json!(k);
        }
        Ok(json!({ "location": self.location.get(), "properties": props }))
    }
}

/// `az network vpn-connection ...`.
pub fn vpn_connection(g: &Global, cmd: VpnConnectionCmd) -> Result<ExitCode> {
    const TYPE: &str = "connections";
    match cmd {
        VpnConnectionCmd::Create(a) => put(g, &a.connection.id(TYPE), &a.body()?, false),
        VpnConnectionCmd::Show(r) => g.call("GET", &r.id(TYPE).to_string(), None),
        VpnConnectionCmd::List { rg } => list_of_type(g, &rg, "Microsoft.Network/connections"),
        VpnConnectionCmd::Delete(r) => g.call("DELETE", &r.id(TYPE).to_string(), None),
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkuTier {
    #[value(name = "Basic")]
    Basic,
    #[value(name = "Local")]
    Local,
    #[value(name = "Standard")]
    Standard,
    #[value(name = "Premium")]
    Premium,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkuFamily {
    #[value(name = "MeteredData")]
    MeteredData,
    #[value(name = "UnlimitedData")]
    UnlimitedData,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeeringType {
    #[value(name = "AzurePrivatePeering")]
    AzurePrivate,
    #[value(name = "AzurePublicPeering")]
    AzurePublic,
    #[value(name = "MicrosoftPeering")]
    Microsoft,
}

impl PeeringType {
    fn as_str(self) -> &'static str {
        match self {
            PeeringType::AzurePrivate => "AzurePrivatePeering",
            PeeringType::AzurePublic => "AzurePublicPeering",
            PeeringType::Microsoft => "MicrosoftPeering",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ExpressRouteCmd {
    /// Create an ExpressRoute circuit (the lab provisions it at once).
    Create(Box<ExpressRouteCreate>),
    /// Show a circuit (with its peerings and the lab's site router).
    Show(NameRef),
    /// The circuits of a resource group.
    List {
        #[command(flatten)]
        rg: Rg,
    },
    /// Delete a circuit.
    Delete(NameRef),
    /// A circuit's peerings (the lab routes AzurePrivatePeering).
    #[command(subcommand)]
    Peering(ExpressRoutePeeringCmd),
}

#[derive(Args, Debug)]
pub struct ExpressRouteCreate {
    #[command(flatten)]
    circuit: NameRef,
    /// `INT {Mbps,Gbps}`, Mbps when no unit is given.
    #[arg(long, num_args = 1..=2, required = true)]
    bandwidth: Vec<String>,
    #[arg(long)]
    peering_location: String,
    /// The connectivity provider's name.
    #[arg(long)]
    provider: String,
    #[arg(long, value_enum, ignore_case = true, default_value = "Standard")]
    sku_tier: SkuTier,
    #[arg(long, value_enum, ignore_case = true, default_value = "MeteredData")]
    sku_family: SkuFamily,
    #[command(flatten)]
    location: Location,
    #[arg(long)]
    no_wait: bool,
}

/// az's `--bandwidth INT {Mbps,Gbps}` in Mbps.
fn bandwidth_mbps(words: &[String]) -> Result<u32> {
    let words: Vec<&str> = words.iter().flat_map(|w| w.split_whitespace()).collect();
    let usage = || anyhow::anyhow!("usage error: --bandwidth INT {{Mbps,Gbps}}");
    let (n, unit) = match words.as_slice() {
        [n] => (*n, "mbps"),
        [n, unit] => (*n, *unit),
        _ => return Err(usage()),
    };
    let n: f64 = n.parse().map_err(|_| usage())?;
    let mbps = match unit.to_ascii_lowercase().as_str() {
        "mbps" => n,
        "gbps" => n * 1000.0,
        _ => return Err(usage()),
    };
    if !(mbps >= 1.0 && mbps <= f64::from(u32::MAX) && mbps.fract() == 0.0) {
        return Err(usage());
    }
    Ok(mbps as u32)
}

impl ExpressRouteCreate {
    fn body(&self) -> Result<Value> {
        let tier = match self.sku_tier {
            SkuTier::Basic => "Basic",
            SkuTier::Local => "Local",
            SkuTier::Standard => "Standard",
            SkuTier::Premium => "Premium",
        };
        let family = match self.sku_family {
            SkuFamily::MeteredData => "MeteredData",
            SkuFamily::UnlimitedData => "UnlimitedData",
        };
        Ok(json!({
            "location": self.location.get(),
            "sku": { "name": format!("{tier}_{family}"), "tier": tier, "family": family },
            "properties": {
                "serviceProviderProperties": {
                    "serviceProviderName": self.provider,
                    "peeringLocation": self.peering_location,
                    "bandwidthInMbps": bandwidth_mbps(&self.bandwidth)?,
                },
                "allowClassicOperations": false,
            }
        }))
    }
}

#[derive(Subcommand, Debug)]
pub enum ExpressRoutePeeringCmd {
    /// Create (or replace) a peering of a circuit.
    Create(Box<PeeringCreate>),
    /// Show a peering of a circuit.
    Show(PeeringRef),
    /// The peerings of a circuit.
    List {
        #[command(flatten)]
        rg: Rg,
        #[arg(long)]
        circuit_name: String,
    },
    /// Delete a peering of a circuit.
    Delete(PeeringRef),
}

// `-g RG --circuit-name C -n PEERING`.
#[derive(Args, Debug)]
pub struct PeeringRef {
    #[command(flatten)]
    rg: Rg,
    #[arg(long)]
    circuit_name: String,
    /// The peering's name (its type, e.g. AzurePrivatePeering).
    #[arg(short = 'n', long)]
    name: String,
}

fn peering_id(rg: &Rg, circuit: &str, name: &str) -> ResourceId {
    rg.id(NETWORK, "expressRouteCircuits", circuit)
        .child("peerings", name)
}

#[derive(Args, Debug)]
pub struct PeeringCreate {
    #[command(flatten)]
    rg: Rg,
    #[arg(long)]
    circuit_name: String,
    #[arg(long, value_enum, ignore_case = true)]
    peering_type: PeeringType,
    /// The customer router's ASN.
    #[arg(long)]
    peer_asn: u32,
    /// A /30: the customer router takes its first address, Microsoft's edge the second.
    #[arg(long)]
    primary_peer_subnet: String,
    #[arg(long)]
    secondary_peer_subnet: Option<String>,
    #[arg(long)]
    vlan_id: u32,
    #[arg(long)]
    shared_key: Option<String>,
}

impl PeeringCreate {
    /// The peering's id (named by its type, as az names it) and body.
    fn request(&self) -> (ResourceId, Value) {
        let mut props = json!({
            "peeringType": self.peering_type.as_str(),
            "peerASN": self.peer_asn,
            "primaryPeerAddressPrefix": self.primary_peer_subnet,
            "vlanId": self.vlan_id,
        });
        if let Some(s) = &self.secondary_peer_subnet {
            props["secondaryPeerAddressPrefix"] = json!(s);
        }
        if let Some(k) = &self.shared_key {
            props["sharedKey"] = json!(k);
        }
        let id = peering_id(&self.rg, &self.circuit_name, self.peering_type.as_str());
        (id, json!({ "properties": props }))
    }
}

/// `az network express-route ...`.
pub fn express_route(g: &Global, cmd: ExpressRouteCmd) -> Result<ExitCode> {
    const TYPE: &str = "expressRouteCircuits";
    match cmd {
        ExpressRouteCmd::Create(a) => put(g, &a.circuit.id(TYPE), &a.body()?, a.no_wait),
        ExpressRouteCmd::Show(r) => g.call("GET", &r.id(TYPE).to_string(), None),
        ExpressRouteCmd::List { rg } => {
            list_of_type(g, &rg, "Microsoft.Network/expressRouteCircuits")
        }
        ExpressRouteCmd::Delete(r) => g.call("DELETE", &r.id(TYPE).to_string(), None),
        ExpressRouteCmd::Peering(ExpressRoutePeeringCmd::Create(a)) => {
            let (id, body) = a.request();
            g.call("PUT", &id.to_string(), Some(&body))
        }
        ExpressRouteCmd::Peering(ExpressRoutePeeringCmd::Show(r)) => g.call(
            "GET",
            &peering_id(&r.rg, &r.circuit_name, &r.name).to_string(),
            None,
        ),
        ExpressRouteCmd::Peering(ExpressRoutePeeringCmd::Delete(r)) => g.call(
            "DELETE",
            &peering_id(&r.rg, &r.circuit_name, &r.name).to_string(),
            None,
        ),
        ExpressRouteCmd::Peering(ExpressRoutePeeringCmd::List { rg, circuit_name }) => {
            let id = rg.id(NETWORK, TYPE, &circuit_name);
            match g.fetch(&id.to_string())? {
                Some(v) => g.print_value(&v["properties"]["peerings"]),
                None => Ok(ExitCode::FAILURE),
            }
        }
    }
}

const LAB: &str = "Lab.Emulator";

#[derive(Subcommand, Debug)]
pub enum OnpremHostCmd {
    /// Lab only: create a host on the LAN of an on-premises site (a local
    /// network gateway's or an ExpressRoute circuit's), behind its router.
    Create(Box<OnpremHostCreate>),
    /// Show an on-premises host (with its namespace).
    Show(NameRef),
    /// The on-premises hosts of a resource group.
    List {
        #[command(flatten)]
        rg: Rg,
    },
    /// Delete an on-premises host.
    Delete(NameRef),
}

#[derive(Args, Debug)]
pub struct OnpremHostCreate {
    #[command(flatten)]
    host: NameRef,
    /// The site: a local network gateway or an ExpressRoute circuit (a name
    /// in the group, local network gateways first, or an id).
    #[arg(long)]
    site: String,
    #[arg(long)]
    ip_address: String,
    /// The host's LAN, which the site's router announces [default: the /24 of --ip-address].
    #[arg(long)]
    address_prefix: Option<String>,
}

impl OnpremHostCreate {
    fn id(&self) -> ResourceId {
        self.host.rg.id(LAB, "onPremisesHosts", &self.host.name)
    }

    /// The site's id: an id as given; a name is the group's local network
    /// gateway of that name if `exists` finds one, else its circuit.
    fn site_id(&self, mut exists: impl FnMut(&str) -> Result<bool>) -> Result<String> {
        if self.site.starts_with("/subscriptions/") {
            return Ok(self.site.clone());
        }
        for ty in ["localNetworkGateways", "expressRouteCircuits"] {
            let id = self.host.rg.id(NETWORK, ty, &self.site).to_string();
            if exists(&id)? {
                return Ok(id);
            }
        }
        bail!(
            "(ResourceNotFound) Resource group '{}' has no local network gateway or ExpressRoute circuit \
             named '{}'.",
            self.host.rg.resource_group,
            self.site
        )
    }

    fn body(&self, site: &str) -> Value {
        let mut props = json!({ "site": { "id": site }, "ipAddress": self.ip_address });
        if let Some(p) = &self.address_prefix {
            props["addressPrefix"] = json!(p);
        }
        json!({ "properties": props })
    }
}

/// `vnet-agent network onprem-host ...` (lab only: `Lab.Emulator/onPremisesHosts`).
pub fn onprem_host(g: &Global, cmd: OnpremHostCmd) -> Result<ExitCode> {
    const TYPE: &str = "onPremisesHosts";
    match cmd {
        OnpremHostCmd::Create(a) => {
            let site = a.site_id(|id| {
                let (status, _) = request(&g.socket(), &g.principal, "GET", id, None)?;
                Ok(status == 200)
            })?;
            g.call("PUT", &a.id().to_string(), Some(&a.body(&site)))
        }
        OnpremHostCmd::Show(r) => g.call("GET", &r.rg.id(LAB, TYPE, &r.name).to_string(), None),
        OnpremHostCmd::List { rg } => list_of_type(g, &rg, "Lab.Emulator/onPremisesHosts"),
        OnpremHostCmd::Delete(r) => {
            g.call("DELETE", &r.rg.id(LAB, TYPE, &r.name).to_string(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::network::NetworkCmd;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: NetworkCmd,
    }

    fn parse(args: &[&str]) -> NetworkCmd {
        Cli::try_parse_from(std::iter::once("network").chain(args.iter().copied()))
            .unwrap()
            .cmd
    }

    const RG: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Network";

    #[test]
    fn vnet_gateway_create_flags_become_the_arm_body() {
        let NetworkCmd::VnetGateway(VnetGatewayCmd::Create(a)) = parse(&[
            "vnet-gateway",
            "create",
            "-g",
            "rg1",
            "-n",
            "gw1",
            "--vnet",
            "hub",
            "--public-ip-addresses",
            "gw1-pip",
            "--sku",
            "VpnGw2",
            "--asn",
            "65010",
            "--bgp-peering-address",
            "10.0.255.30",
            "-l",
            "westeurope",
        ]) else {
            panic!("not vnet-gateway create")
        };
        assert_eq!(
            a.body().unwrap(),
            json!({
                "location": "westeurope",
                "properties": {
                    "gatewayType": "Vpn",
                    "vpnType": "RouteBased",
                    "sku": {"name": "VpnGw2", "tier": "VpnGw2"},
                    "enableBgp": true,
                    "activeActive": false,
                    "bgpSettings": {"asn": 65010, "bgpPeeringAddress": "10.0.255.30"},
                    "ipConfigurations": [{"name": "vnetGatewayConfig0", "properties": {
                        "subnet": {"id": format!("{RG}/virtualNetworks/hub/subnets/GatewaySubnet")},
                        "publicIPAddress": {"id": format!("{RG}/publicIPAddresses/gw1-pip")},
                        "privateIPAllocationMethod": "Dynamic",
                    }}],
                }
            })
        );
        assert!(a
            .gateway
            .id("virtualNetworkGateways")
            .to_string()
            .ends_with("/virtualNetworkGateways/gw1"));

        // ExpressRoute: sku Standard, no BGP flags, no public IP; ids as given.
        let vnet =
            "/subscriptions/s2/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub";
        let NetworkCmd::VnetGateway(VnetGatewayCmd::Create(er)) = parse(&[
            "vnet-gateway",
            "create",
            "-g",
            "rg1",
            "-n",
            "ergw",
            "--vnet",
            vnet,
            "--gateway-type",
            "expressroute",
            "--no-wait",
        ]) else {
            panic!("not vnet-gateway create")
        };
        assert!(er.no_wait);
        let b = er.body().unwrap();
        let p = &b["properties"];
        assert_eq!(p["gatewayType"], "ExpressRoute");
        assert_eq!(p["sku"], json!({"name": "Standard", "tier": "Standard"}));
        assert_eq!(p["enableBgp"], false);
        assert!(p.get("bgpSettings").is_none());
        let ipc = &p["ipConfigurations"][0]["properties"];
        assert_eq!(ipc["subnet"]["id"], format!("{vnet}/subnets/GatewaySubnet"));
        assert!(ipc.get("publicIPAddress").is_none());

        // az refuses BGP details without --asn.
        let NetworkCmd::VnetGateway(VnetGatewayCmd::Create(bad)) = parse(&[
            "vnet-gateway",
            "create",
            "-g",
            "rg1",
            "-n",
            "gw1",
            "--vnet",
            "hub",
            "--bgp-peering-address",
            "10.0.255.30",
        ]) else {
            panic!("not vnet-gateway create")
        };
        assert!(bad.body().is_err());
    }

    #[test]
    fn vnet_gateway_route_verbs_name_the_gateway() {
        let NetworkCmd::VnetGateway(VnetGatewayCmd::ListAdvertisedRoutes { gateway, peer }) =
            parse(&[
                "vnet-gateway",
                "list-advertised-routes",
                "-g",
                "rg1",
                "-n",
                "gw1",
                "--peer",
                "10.1.255.254",
            ])
        else {
            panic!("not list-advertised-routes")
        };
        assert_eq!(peer, "10.1.255.254");
        assert_eq!(
            gateway.id("virtualNetworkGateways").to_string(),
            format!("{RG}/virtualNetworkGateways/gw1")
        );
        assert!(matches!(
            parse(&[
                "vnet-gateway",
                "list-learned-routes",
                "-g",
                "rg1",
                "-n",
                "gw1"
            ]),
            NetworkCmd::VnetGateway(VnetGatewayCmd::ListLearnedRoutes(_))
        ));
    }

    #[test]
    fn local_gateway_create_flags_become_the_arm_body() {
        let NetworkCmd::LocalGateway(LocalGatewayCmd::Create(a)) = parse(&[
            "local-gateway",
            "create",
            "-g",
            "rg1",
            "-n",
            "site1",
            "--gateway-ip-address",
            "198.18.50.1",
            "--local-address-prefixes",
            "192.168.1.0/24",
            "192.168.2.0/24",
            "--asn",
            "65050",
            "--bgp-peering-address",
            "192.168.0.1",
            "--peer-weight",
            "5",
        ]) else {
            panic!("not local-gateway create")
        };
        assert_eq!(
            a.body().unwrap(),
            json!({
                "location": crate::model::DEFAULT_LOCATION,
                "properties": {
                    "gatewayIpAddress": "198.18.50.1",
                    "localNetworkAddressSpace": {"addressPrefixes": ["192.168.1.0/24", "192.168.2.0/24"]},
                    "bgpSettings": {"asn": 65050, "bgpPeeringAddress": "192.168.0.1", "peerWeight": 5},
                }
            })
        );
        let NetworkCmd::LocalGateway(LocalGatewayCmd::Create(plain)) = parse(&[
            "local-gateway",
            "create",
            "-g",
            "rg1",
            "-n",
            "site1",
            "--gateway-ip-address",
            "198.18.50.1",
        ]) else {
            panic!("not local-gateway create")
        };
        let b = plain.body().unwrap();
        assert_eq!(
            b["properties"]["localNetworkAddressSpace"]["addressPrefixes"],
            json!([])
        );
        assert!(b["properties"].get("bgpSettings").is_none());
    }

    fn connection(peer: &[&str]) -> Result<Value> {
        let mut args = vec![
            "vpn-connection",
            "create",
            "-g",
            "rg1",
            "-n",
            "c1",
            "--vnet-gateway1",
            "gw1",
        ];
        args.extend(peer);
        let NetworkCmd::VpnConnection(VpnConnectionCmd::Create(a)) = parse(&args) else {
            panic!("not vpn-connection create")
        };
        a.body()
    }

    #[test]
    fn vpn_connection_type_follows_the_destination_flag() {
        let b = connection(&[
            "--local-gateway2",
            "site1",
            "--shared-key",
            "abc123",
            "--enable-bgp",
        ])
        .unwrap();
        assert_eq!(
            b["properties"],
            json!({
                "connectionType": "IPsec",
                "virtualNetworkGateway1": {"id": format!("{RG}/virtualNetworkGateways/gw1")},
                "localNetworkGateway2": {"id": format!("{RG}/localNetworkGateways/site1")},
                "sharedKey": "abc123",
                "enableBgp": true,
                "routingWeight": 10,
            })
        );
        let other = "/subscriptions/s2/resourceGroups/spoke/providers/Microsoft.Network/virtualNetworkGateways/gw2";
        let b = connection(&["--vnet-gateway2", other, "--enable-bgp", "false"]).unwrap();
        assert_eq!(b["properties"]["connectionType"], "Vnet2Vnet");
        assert_eq!(b["properties"]["virtualNetworkGateway2"]["id"], other);
        assert_eq!(b["properties"]["enableBgp"], false);
        assert!(b["properties"].get("sharedKey").is_none());
        let b = connection(&["--express-route-circuit2", "er1"]).unwrap();
        assert_eq!(b["properties"]["connectionType"], "ExpressRoute");
        assert_eq!(
            b["properties"]["peer"]["id"],
            format!("{RG}/expressRouteCircuits/er1")
        );
        assert!(connection(&[]).is_err(), "a destination is required");
        assert!(
            connection(&["--local-gateway2", "site1", "--vnet-gateway2", "gw2"]).is_err(),
            "only one destination"
        );
    }

    #[test]
    fn express_route_create_flags_become_the_arm_body() {
        let NetworkCmd::ExpressRoute(ExpressRouteCmd::Create(a)) = parse(&[
            "express-route",
            "create",
            "-g",
            "rg1",
            "-n",
            "er1",
            "--bandwidth",
            "200",
            "--peering-location",
            "Silicon Valley",
            "--provider",
            "Equinix",
            "--sku-tier",
            "premium",
            "--sku-family",
            "UnlimitedData",
            "-l",
            "westus",
        ]) else {
            panic!("not express-route create")
        };
        assert_eq!(
            a.body().unwrap(),
            json!({
                "location": "westus",
                "sku": {"name": "Premium_UnlimitedData", "tier": "Premium", "family": "UnlimitedData"},
                "properties": {
                    "serviceProviderProperties": {
                        "serviceProviderName": "Equinix",
                        "peeringLocation": "Silicon Valley",
                        "bandwidthInMbps": 200,
                    },
                    "allowClassicOperations": false,
                }
            })
        );
        let NetworkCmd::ExpressRoute(ExpressRouteCmd::Create(d)) = parse(&[
            "express-route",
            "create",
            "-g",
            "rg1",
            "-n",
            "er1",
            "--bandwidth",
            "1",
            "Gbps",
            "--peering-location",
            "Amsterdam",
            "--provider",
            "Equinix",
        ]) else {
            panic!("not express-route create")
        };
        let b = d.body().unwrap();
        assert_eq!(b["sku"]["name"], "Standard_MeteredData");
        assert_eq!(
            b["properties"]["serviceProviderProperties"]["bandwidthInMbps"],
            1000
        );
        let mbps =
            |w: &[&str]| bandwidth_mbps(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(mbps(&["50 Mbps"]).unwrap(), 50);
        assert_eq!(mbps(&["10", "gbps"]).unwrap(), 10000);
        assert!(mbps(&["fast"]).is_err());
        assert!(mbps(&["50", "Tbps"]).is_err());
        assert!(mbps(&["0"]).is_err());
    }

    #[test]
    fn express_route_peering_create_puts_the_child_named_by_its_type() {
        let NetworkCmd::ExpressRoute(ExpressRouteCmd::Peering(ExpressRoutePeeringCmd::Create(a))) =
            parse(&[
                "express-route",
                "peering",
                "create",
                "-g",
                "rg1",
                "--circuit-name",
                "er1",
                "--peering-type",
                "AzurePrivatePeering",
                "--peer-asn",
                "65020",
                "--primary-peer-subnet",
                "192.168.15.16/30",
                "--secondary-peer-subnet",
                "192.168.15.20/30",
                "--vlan-id",
                "100",
            ])
        else {
            panic!("not express-route peering create")
        };
        let (id, body) = a.request();
        assert_eq!(
            id.to_string(),
            format!("{RG}/expressRouteCircuits/er1/peerings/AzurePrivatePeering")
        );
        assert_eq!(
            body,
            json!({"properties": {
                "peeringType": "AzurePrivatePeering",
                "peerASN": 65020,
                "primaryPeerAddressPrefix": "192.168.15.16/30",
                "secondaryPeerAddressPrefix": "192.168.15.20/30",
                "vlanId": 100,
            }})
        );
        // What the daemon stores from this body is what the model reads.
        let circuit: crate::model::GenericResource = serde_json::from_value(json!({
            "id": id.parent().unwrap(),
            "type": "Microsoft.Network/expressRouteCircuits",
            "name": "er1",
            "properties": {"peerings": [{"name": "AzurePrivatePeering", "properties": body["properties"]}]},
        }))
        .unwrap();
        let pp = crate::model::ExpressRouteCircuit::from_resource(&circuit)
            .unwrap()
            .private_peering
            .unwrap();
        assert_eq!((pp.peer_asn, pp.vlan_id), (65020, 100));
    }

    #[test]
    fn onprem_host_create_resolves_its_site() {
        let NetworkCmd::OnpremHost(OnpremHostCmd::Create(a)) = parse(&[
            "onprem-host",
            "create",
            "-g",
            "rg1",
            "-n",
            "srv1",
            "--site",
            "branch",
            "--ip-address",
            "192.168.1.10",
            "--address-prefix",
            "192.168.1.0/24",
        ]) else {
            panic!("not onprem-host create")
        };
        assert_eq!(
            a.id().to_string(),
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Lab.Emulator/onPremisesHosts/srv1"
        );
        // A local network gateway of that name first, then a circuit.
        let mut asked = Vec::new();
        let site = a
            .site_id(|id| {
                asked.push(id.to_string());
                Ok(id.contains("/expressRouteCircuits/"))
            })
            .unwrap();
        assert_eq!(site, format!("{RG}/expressRouteCircuits/branch"));
        assert_eq!(
            asked,
            [
                format!("{RG}/localNetworkGateways/branch"),
                format!("{RG}/expressRouteCircuits/branch")
            ]
        );
        let lgw = a.site_id(|_| Ok(true)).unwrap();
        assert_eq!(lgw, format!("{RG}/localNetworkGateways/branch"));
        assert!(a.site_id(|_| Ok(false)).is_err());
        assert_eq!(
            a.body(&lgw),
            json!({"properties": {
                "site": {"id": lgw},
                "ipAddress": "192.168.1.10",
                "addressPrefix": "192.168.1.0/24",
            }})
        );

        // An id is taken as given, without a look-up.
        let id = "/subscriptions/s2/resourceGroups/onprem/providers/Microsoft.Network/localNetworkGateways/hq";
        let NetworkCmd::OnpremHost(OnpremHostCmd::Create(b)) = parse(&[
            "onprem-host",
            "create",
            "-g",
            "rg1",
            "-n",
            "srv2",
            "--site",
            id,
            "--ip-address",
            "172.16.0.5",
        ]) else {
            panic!("not onprem-host create")
        };
        let site = b.site_id(|_| panic!("no look-up for an id")).unwrap();
        assert_eq!(site, id);
        assert!(b.body(&site)["properties"].get("addressPrefix").is_none());
    }
}
