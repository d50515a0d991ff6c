//! The on-premises side of a VNet with az's nouns and flags: `network
//! vnet-gateway ...` (with `list-learned-routes` and
//! `list-advertised-routes`). Each create builds the ARM body az would send
//! and PUTs it.

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
}
