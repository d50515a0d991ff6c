//! Typed views of the on-premises side of a VNet: virtual network gateways
//! (VPN and ExpressRoute), local network gateways, connections, ExpressRoute
//! circuits with their private peering, and the lab-only on-premises hosts.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use super::props::{self, invalid, label, Props};
use super::{AzureError, GenericResource, ResourceId};

/// Azure's VPN gateway ASN when `bgpSettings.asn` is left out.
pub const AZURE_GATEWAY_ASN: u32 = 65515;
/// The ASN of Microsoft's ExpressRoute edge routers (MSEE), which the
/// customer's router peers with over a circuit's private peering.
pub const MSEE_ASN: u32 = 12076;
/// ASNs Azure reserves: a local network gateway or a circuit's peer may not
/// use them (vpn-gateway-bgp-overview.md).
pub const RESERVED_ASNS: [u32; 9] = [8074, 8075, 12076, 65515, 65516, 65517, 65518, 65519, 65520];
/// The smallest GatewaySubnet of a VPN gateway: Azure accepts a /29 (and
/// recommends /27; the quickstart site-to-site-vpn-create uses a /29).
pub const MIN_VPN_GATEWAY_SUBNET_PREFIX: u8 = 29;
/// The smallest GatewaySubnet of an ExpressRoute gateway, and of a VNet with
/// both gateways (Azure's coexistence rule): /27.
pub const MIN_GATEWAY_SUBNET_PREFIX: u8 = 27;

/// `gatewayType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GatewayType {
    Vpn,
    ExpressRoute,
}

impl GatewayType {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayType::Vpn => "Vpn",
            GatewayType::ExpressRoute => "ExpressRoute",
        }
    }
}

/// `Microsoft.Network/virtualNetworkGateways`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualNetworkGateway {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    pub gateway_type: GatewayType,
    /// `sku.name` (VpnGw1, ErGw1AZ, Standard, ...).
    pub sku: String,
    /// `enableBgp` (ExpressRoute gateways always speak BGP).
    pub enable_bgp: bool,
    /// `bgpSettings.asn`, default 65515.
    pub asn: u32,
    /// `bgpSettings.bgpPeeringAddress` as written; the lab's default is the
    /// last usable address of GatewaySubnet (see `peering_address`).
    pub bgp_peering_address: Option<Ipv4Addr>,
    /// `ipConfigurations[0].properties.subnet.id`.
    pub subnet: ResourceId,
    /// `ipConfigurations[0].properties.publicIPAddress.id`.
    pub public_ip: Option<ResourceId>,
}

impl VirtualNetworkGateway {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let gateway_type = match p.opt_str("properties.gatewayType")?.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("Vpn") => GatewayType::Vpn,
            Some(t) if t.eq_ignore_ascii_case("ExpressRoute") => GatewayType::ExpressRoute,
            Some(t) => {
                return Err(invalid(
                    res,
                    "properties.gatewayType",
                    &format!("is '{t}'; it must be Vpn or ExpressRoute"),
                ))
            }
            None => {
                return Err(invalid(
                    res,
                    "properties.gatewayType",
                    "is required (Vpn or ExpressRoute)",
                ))
            }
        };
        let configs = p.array("properties.ipConfigurations")?;
        let first = configs.first().ok_or_else(|| {
            invalid(
                res,
                "properties.ipConfigurations",
                "needs one IP configuration whose subnet is the VNet's GatewaySubnet",
            )
        })?;
        let subnet_path = "properties.ipConfigurations[0].properties.subnet.id";
        let subnet = props::id_in(res, props::at(first, "properties.subnet.id"), subnet_path)?
            .ok_or_else(|| invalid(res, subnet_path, "is required (the VNet's GatewaySubnet)"))?;
        let public_ip = props::id_in(
            res,
            props::at(first, "properties.publicIPAddress.id"),
            "properties.ipConfigurations[0].properties.publicIPAddress.id",
        )?;
        let sku = p
            .opt_str("properties.sku.name")?
            .or(p.opt_str("sku.name")?)
            .unwrap_or_else(|| match gateway_type {
                GatewayType::Vpn => "VpnGw1".into(),
                GatewayType::ExpressRoute => "Standard".into(),
            });
        Ok(VirtualNetworkGateway {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            gateway_type,
            sku,
            enable_bgp: gateway_type == GatewayType::ExpressRoute
                || p.opt_bool("properties.enableBgp")?.unwrap_or(false),
            asn: p
                .opt_u32("properties.bgpSettings.asn")?
                .unwrap_or(AZURE_GATEWAY_ASN),
            bgp_peering_address: opt_ip(res, &p, "properties.bgpSettings.bgpPeeringAddress")?,
            subnet,
            public_ip,
        })
    }

    /// The VNet the gateway is in.
    pub fn vnet(&self) -> ResourceId {
        self.subnet.parent().unwrap_or_else(|| self.subnet.clone())
    }

    /// The gateway's address in GatewaySubnet: `bgpPeeringAddress` if
    /// written, else for a VPN gateway the subnet's last usable address
    /// (what Azure gives an active-standby gateway, e.g. 10.0.255.30 in
    /// 10.0.255.0/27) and for an ExpressRoute gateway the first usable one
    /// (.4), so the two can share the subnet as Azure's coexistence does.
    pub fn peering_address(&self, gateway_subnet: Ipv4Net) -> Ipv4Addr {
        self.bgp_peering_address
            .unwrap_or_else(|| match self.gateway_type {
                GatewayType::Vpn => {
                    Ipv4Addr::from(u32::from(gateway_subnet.broadcast()).saturating_sub(1))
                }
                GatewayType::ExpressRoute => {
                    Ipv4Addr::from(u32::from(gateway_subnet.network()).saturating_add(4))
                }
            })
    }
}

/// `bgpSettings` of a local network gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BgpPeer {
    pub asn: u32,
    pub peering_address: Ipv4Addr,
}

/// `Microsoft.Network/localNetworkGateways`: the on-premises VPN device.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalNetworkGateway {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `gatewayIpAddress`: the device's public address (an `fqdn` instead is
    /// kept as written and not resolved).
    pub gateway_ip: Option<Ipv4Addr>,
    /// `localNetworkAddressSpace.addressPrefixes`: routed to the gateway as
    /// static routes (source Default) in every subnet.
    pub address_prefixes: Vec<Ipv4Net>,
    /// `bgpSettings`, when the device speaks BGP.
    pub bgp: Option<BgpPeer>,
}

impl LocalNetworkGateway {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let mut address_prefixes = Vec::new();
        let path = "properties.localNetworkAddressSpace.addressPrefixes";
        for (i, v) in p.array(path)?.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let s = props::str_in(res, Some(v), &at)?.unwrap_or_default();
            address_prefixes.push(prefix(res, &at, &s)?);
        }
        let bgp = match opt_ip(res, &p, "properties.bgpSettings.bgpPeeringAddress")? {
            Some(peering_address) => Some(BgpPeer {
                asn: p.opt_u32("properties.bgpSettings.asn")?.ok_or_else(|| {
                    invalid(
                        res,
                        "properties.bgpSettings.asn",
                        "is required with a bgpPeeringAddress",
                    )
                })?,
                peering_address,
            }),
            None => None,
        };
        Ok(LocalNetworkGateway {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            gateway_ip: opt_ip(res, &p, "properties.gatewayIpAddress")?,
            address_prefixes,
            bgp,
        })
    }
}

/// `connectionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnectionType {
    IPsec,
    Vnet2Vnet,
    ExpressRoute,
}

impl ConnectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::IPsec => "IPsec",
            ConnectionType::Vnet2Vnet => "Vnet2Vnet",
            ConnectionType::ExpressRoute => "ExpressRoute",
        }
    }
}

/// What the far end of a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionPeer {
    /// `localNetworkGateway2` (IPsec).
    Local(ResourceId),
    /// `virtualNetworkGateway2` (Vnet2Vnet).
    Gateway(ResourceId),
    /// `peer`: an ExpressRoute circuit (ExpressRoute).
    Circuit(ResourceId),
}

/// `Microsoft.Network/connections`.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    pub connection_type: ConnectionType,
    /// `virtualNetworkGateway1`.
    pub gateway: ResourceId,
    pub peer: ConnectionPeer,
    /// `enableBgp` (ExpressRoute connections always run BGP).
    pub enable_bgp: bool,
}

impl Connection {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let connection_type = match p.opt_str("properties.connectionType")?.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("IPsec") => ConnectionType::IPsec,
            Some(t) if t.eq_ignore_ascii_case("Vnet2Vnet") => ConnectionType::Vnet2Vnet,
            Some(t) if t.eq_ignore_ascii_case("ExpressRoute") => ConnectionType::ExpressRoute,
            other => {
                return Err(invalid(
                    res,
                    "properties.connectionType",
                    &format!(
                        "is {}; it must be IPsec, Vnet2Vnet or ExpressRoute",
                        other.map_or("missing".to_string(), |t| format!("'{t}'"))
                    ),
                ))
            }
        };
        let gateway = p
            .opt_id("properties.virtualNetworkGateway1.id")?
            .ok_or_else(|| invalid(res, "properties.virtualNetworkGateway1.id", "is required"))?;
        let (path, make): (&str, fn(ResourceId) -> ConnectionPeer) = match connection_type {
            ConnectionType::IPsec => ("properties.localNetworkGateway2.id", ConnectionPeer::Local),
            ConnectionType::Vnet2Vnet => (
                "properties.virtualNetworkGateway2.id",
                ConnectionPeer::Gateway,
            ),
            ConnectionType::ExpressRoute => ("properties.peer.id", ConnectionPeer::Circuit),
        };
        let peer = p.opt_id(path)?.map(make).ok_or_else(|| {
            invalid(
                res,
                path,
                &format!("is required for a {} connection", connection_type.as_str()),
            )
        })?;
        Ok(Connection {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            connection_type,
            gateway,
            peer,
            enable_bgp: connection_type == ConnectionType::ExpressRoute
                || p.opt_bool("properties.enableBgp")?.unwrap_or(false),
        })
    }
}

/// A circuit's `AzurePrivatePeering`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivatePeering {
    /// `peerASN`: the customer's router.
    pub peer_asn: u32,
    /// `primaryPeerAddressPrefix`, a /30: the customer's router holds the
    /// first usable address, Microsoft's edge the second.
    pub primary_prefix: Ipv4Net,
    pub vlan_id: u32,
}

impl PrivatePeering {
    /// (customer router, Microsoft edge) addresses of the primary link.
    pub fn addresses(&self) -> (Ipv4Addr, Ipv4Addr) {
        let base = u32::from(self.primary_prefix.network());
        (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
    }
}

/// `Microsoft.Network/expressRouteCircuits`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressRouteCircuit {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    pub sku: String,
    pub service_provider: String,
    pub peering_location: String,
    pub bandwidth_mbps: u32,
    /// `properties.peerings[]` named AzurePrivatePeering (also deployed as the
    /// child type `expressRouteCircuits/peerings`).
    pub private_peering: Option<PrivatePeering>,
}

impl ExpressRouteCircuit {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let mut private_peering = None;
        for (i, v) in p.array("properties.peerings")?.iter().enumerate() {
            let base = format!("properties.peerings[{i}]");
            let kind = props::at(v, "properties.peeringType")
                .or_else(|| props::at(v, "name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !kind.eq_ignore_ascii_case("AzurePrivatePeering") {
                continue;
            }
            let num = |k: &str| -> Result<Option<u32>, AzureError> {
                match props::at(v, &format!("properties.{k}")) {
                    None => Ok(None),
                    Some(Value::Number(n)) => Ok(n.as_u64().and_then(|n| u32::try_from(n).ok())),
                    Some(Value::String(s)) => Ok(s.parse().ok()),
                    Some(_) => Err(invalid(
                        res,
                        &format!("{base}.properties.{k}"),
                        "must be a number",
                    )),
                }
            };
            let prefix_path = format!("{base}.properties.primaryPeerAddressPrefix");
            let text = props::str_in(
                res,
                props::at(v, "properties.primaryPeerAddressPrefix"),
                &prefix_path,
            )?
            .ok_or_else(|| invalid(res, &prefix_path, "is required (a /30)"))?;
            let primary_prefix = prefix(res, &prefix_path, &text)?;
            if primary_prefix.prefix_len() != 30 {
                return Err(AzureError::bad_request(
                    "InvalidPeerAddressPrefix",
                    format!(
                        "{}: primaryPeerAddressPrefix {primary_prefix} must be a /30 subnet.",
                        label(res)
                    ),
                )
                .with_target(prefix_path));
            }
            private_peering = Some(PrivatePeering {
                peer_asn: num("peerASN")?.ok_or_else(|| {
                    invalid(res, &format!("{base}.properties.peerASN"), "is required")
                })?,
                primary_prefix,
                vlan_id: num("vlanId")?.unwrap_or(0),
            });
        }
        Ok(ExpressRouteCircuit {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            sku: p
                .opt_str("sku.name")?
                .unwrap_or_else(|| "Standard_MeteredData".into()),
            service_provider: p
                .opt_str("properties.serviceProviderProperties.serviceProviderName")?
                .unwrap_or_default(),
            peering_location: p
                .opt_str("properties.serviceProviderProperties.peeringLocation")?
                .unwrap_or_default(),
            bandwidth_mbps: p
                .opt_u32("properties.serviceProviderProperties.bandwidthInMbps")?
                .unwrap_or(50),
            private_peering,
        })
    }
}

/// `Lab.Emulator/onPremisesHosts`: a machine in an on-premises site (no
/// Azure twin), on a LAN behind the site's router.
#[derive(Debug, Clone, PartialEq)]
pub struct OnPremisesHost {
    pub id: ResourceId,
    pub name: String,
    /// `properties.site.id`: the local network gateway or ExpressRoute
    /// circuit whose site the host is in.
    pub site: ResourceId,
    pub ip_address: Ipv4Addr,
    /// `properties.addressPrefix`: the host's LAN, which the site's router
    /// announces over BGP (default: the /24 holding the address).
    pub lan: Ipv4Net,
}

impl OnPremisesHost {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let site = p.opt_id("properties.site.id")?.ok_or_else(|| {
            invalid(
                res,
                "properties.site.id",
                "is required (the local network gateway or ExpressRoute circuit of the host's site)",
            )
        })?;
        let ip_address = opt_ip(res, &p, "properties.ipAddress")?
            .ok_or_else(|| invalid(res, "properties.ipAddress", "is required"))?;
        let lan = match p.opt_str("properties.addressPrefix")? {
            Some(s) => prefix(res, "properties.addressPrefix", &s)?,
            None => Ipv4Net::new(ip_address, 24)
                .expect("24 is a valid length")
                .trunc(),
        };
        if !lan.contains(&ip_address) {
            return Err(invalid(
                res,
                "properties.addressPrefix",
                &format!("is {lan}, which does not hold the host's address {ip_address}"),
            ));
        }
        Ok(OnPremisesHost {
            id: res.id.clone(),
            name: res.name.clone(),
            site,
            ip_address,
            lan,
        })
    }
}

fn opt_ip(res: &GenericResource, p: &Props, path: &str) -> Result<Option<Ipv4Addr>, AzureError> {
    p.opt_str(path)?
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim().parse::<Ipv4Addr>().map_err(|_| {
                invalid(
                    res,
                    path,
                    &format!("is '{s}', which is not an IPv4 address"),
                )
            })
        })
        .transpose()
}

fn prefix(res: &GenericResource, path: &str, s: &str) -> Result<Ipv4Net, AzureError> {
    let net = s.trim().parse::<Ipv4Net>().map_err(|_| {
        invalid(
            res,
            path,
            &format!("is '{s}', which is not an IPv4 CIDR prefix"),
        )
    })?;
    if net.trunc() != net {
        return Err(invalid(
            res,
            path,
            &format!("is '{s}', which has host bits set (write {})", net.trunc()),
        ));
    }
    Ok(net)
}

/// A prefix a gateway's BGP speaker holds in its kernel table: observed from
/// the running daemon (never stored), it becomes a `VirtualNetworkGateway`
/// route of the subnets that take the gateway's routes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LearnedRoute {
    pub prefix: Ipv4Net,
    /// The BGP peer it was learned from (the next hop in the gateway).
    pub next_hop: Ipv4Addr,
}
