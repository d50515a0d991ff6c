//! Typed views of the `Microsoft.Network` resources that steer and translate
//! outbound traffic: route tables (UDRs), NAT gateways, public IP addresses
//! and public IP prefixes (AZURE-FACTS §2, §4).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use super::props::{self, invalid, Props};
use super::{AzureError, GenericResource, ResourceId};

/// Azure's next hop types, with the API names (AZURE-FACTS §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NextHopType {
    /// Inside the virtual network: delivered to the NIC that holds the address.
    VnetLocal,
    /// Out to the internet (from App Service integration subnets without a
    /// NAT gateway: back to the stamp).
    Internet,
    /// Dropped.
    None,
    /// A network virtual appliance (`nextHopIpAddress`).
    VirtualAppliance,
    /// A VPN / ExpressRoute gateway.
    VirtualNetworkGateway,
    /// A peered virtual network (system routes only).
    VNetPeering,
    /// A service endpoint (system routes only).
    VirtualNetworkServiceEndpoint,
    /// A private endpoint's /32 (system routes only, AZURE-FACTS §2.5).
    InterfaceEndpoint,
}

impl NextHopType {
    /// Every type, in the order messages list them.
    pub const ALL: [NextHopType; 8] = [
        NextHopType::VirtualNetworkGateway,
        NextHopType::VnetLocal,
        NextHopType::Internet,
        NextHopType::VirtualAppliance,
        NextHopType::None,
        NextHopType::VNetPeering,
        NextHopType::VirtualNetworkServiceEndpoint,
        NextHopType::InterfaceEndpoint,
    ];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NextHopType::VnetLocal => "VnetLocal",
            NextHopType::Internet => "Internet",
            NextHopType::None => "None",
            NextHopType::VirtualAppliance => "VirtualAppliance",
            NextHopType::VirtualNetworkGateway => "VirtualNetworkGateway",
            NextHopType::VNetPeering => "VNetPeering",
            NextHopType::VirtualNetworkServiceEndpoint => "VirtualNetworkServiceEndpoint",
            NextHopType::InterfaceEndpoint => "InterfaceEndpoint",
        }
    }

    /// Case-insensitive parse of the API spelling (also the classic
    /// `VPNGateway` and `Null`, and `VirtualNetworkPeering`).
    pub fn parse(s: &str) -> Option<Self> {
        let l = s.to_ascii_lowercase();
        match l.as_str() {
            "vpngateway" => return Some(NextHopType::VirtualNetworkGateway),
            "null" => return Some(NextHopType::None),
            "virtualnetworkpeering" => return Some(NextHopType::VNetPeering),
            _ => {}
        }
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// May a user-defined route use it? (Not peering, service or private endpoints.)
    pub fn allowed_in_udr(self) -> bool {
        !matches!(
            self,
            NextHopType::VNetPeering
                | NextHopType::VirtualNetworkServiceEndpoint
                | NextHopType::InterfaceEndpoint
        )
    }
}

/// One entry of `properties.routes[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    /// `properties.addressPrefix` as written (a CIDR; host bits are checked by
    /// validation).
    pub address_prefix: Ipv4Net,
    pub next_hop_type: NextHopType,
    /// `properties.nextHopIpAddress`.
    pub next_hop_ip: Option<Ipv4Addr>,
}

/// `Microsoft.Network/routeTables`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    pub routes: Vec<Route>,
    /// `properties.disableBgpRoutePropagation`: removes gateway (BGP and
    /// static gateway) routes from the associated subnets.
    pub disable_bgp_route_propagation: bool,
}

fn parse_ipv4(res: &GenericResource, path: &str, s: &str) -> Result<Ipv4Addr, AzureError> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| invalid(res, path, &format!("'{s}' is not an IPv4 address")))
}

impl RouteTable {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let mut routes = Vec::new();
        for (i, v) in p.array("properties.routes")?.iter().enumerate() {
            let base = format!("properties.routes[{i}]");
            let name = props::str_in(res, props::at(v, "name"), &format!("{base}.name"))?
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid(res, &format!("{base}.name"), "is required"))?;
            let prefix_path = format!("{base}.properties.addressPrefix");
            let prefix_text =
                props::str_in(res, props::at(v, "properties.addressPrefix"), &prefix_path)?
                    .ok_or_else(|| invalid(res, &prefix_path, "is required (e.g. 0.0.0.0/0)"))?;
            let address_prefix = prefix_text.parse::<Ipv4Net>().map_err(|_| {
                AzureError::bad_request(
                    "InvalidRouteAddressPrefix",
                    format!(
                        "Route '{name}' of route table '{}' has address prefix '{prefix_text}', which is not an \
                         IPv4 prefix in CIDR notation (e.g. 10.1.0.0/16 or 0.0.0.0/0). The lab does not \
                         support service tags as route prefixes.",
                        res.name
                    ),
                )
                .with_target(prefix_path.clone())
            })?;
            let type_path = format!("{base}.properties.nextHopType");
            let type_text = props::str_in(res, props::at(v, "properties.nextHopType"), &type_path)?
                .ok_or_else(|| {
                    invalid(
                        res,
                        &type_path,
                        "is required (VirtualAppliance, VirtualNetworkGateway, VnetLocal, Internet or None)",
                    )
                })?;
            let next_hop_type = NextHopType::parse(&type_text).ok_or_else(|| {
                AzureError::bad_request(
                    "InvalidNextHopType",
                    format!(
                        "Route '{name}' of route table '{}' has next hop type '{type_text}'. Use one of \
                         VirtualNetworkGateway, VnetLocal, Internet, VirtualAppliance, None.",
                        res.name
                    ),
                )
                .with_target(type_path.clone())
            })?;
            let ip_path = format!("{base}.properties.nextHopIpAddress");
            let next_hop_ip =
                props::str_in(res, props::at(v, "properties.nextHopIpAddress"), &ip_path)?
                    .filter(|s| !s.is_empty())
                    .map(|s| parse_ipv4(res, &ip_path, &s))
                    .transpose()?;
            routes.push(Route {
                name,
                address_prefix,
                next_hop_type,
                next_hop_ip,
            });
        }
        Ok(RouteTable {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            routes,
            disable_bgp_route_propagation: p
                .opt_bool("properties.disableBgpRoutePropagation")?
                .unwrap_or(false),
        })
    }
}

/// `sku.name` of public IPs and NAT gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PublicSku {
    Basic,
    Standard,
}

impl PublicSku {
    pub fn as_str(self) -> &'static str {
        match self {
            PublicSku::Basic => "Basic",
            PublicSku::Standard => "Standard",
        }
    }
}

fn sku_of(res: &GenericResource, p: &Props) -> Result<Option<PublicSku>, AzureError> {
    match p.opt_str("sku.name")? {
        None => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("standard") => Ok(Some(PublicSku::Standard)),
        Some(s) if s.eq_ignore_ascii_case("basic") => Ok(Some(PublicSku::Basic)),
        Some(s) => Err(AzureError::bad_request(
            "InvalidSku",
            format!(
                "{} '{}' has sku.name '{s}'. Use Standard (or Basic where allowed).",
                res.type_, res.name
            ),
        )
        .with_target("sku.name")),
    }
}

/// Default idle timeout of NAT gateways and public IPs, minutes (AZURE-FACTS §0).
pub const DEFAULT_IDLE_TIMEOUT_MINUTES: u32 = 4;

/// `Microsoft.Network/publicIPAddresses`.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicIpAddress {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `sku.name`; Standard when absent (what `az network public-ip create` makes today).
    pub sku: PublicSku,
    /// `properties.publicIPAllocationMethod`: `Static` unless `Dynamic` is written.
    pub static_allocation: bool,
    /// `properties.idleTimeoutInMinutes` (default 4).
    pub idle_timeout_minutes: u32,
}

impl PublicIpAddress {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let path = "properties.publicIPAllocationMethod";
        let static_allocation = match p.opt_str(path)? {
            None => true,
            Some(m) if m.eq_ignore_ascii_case("static") => true,
            Some(m) if m.eq_ignore_ascii_case("dynamic") => false,
            Some(m) => {
                return Err(invalid(
                    res,
                    path,
                    &format!("is '{m}'; use Static or Dynamic"),
                ))
            }
        };
        Ok(PublicIpAddress {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            sku: sku_of(res, &p)?.unwrap_or(PublicSku::Standard),
            static_allocation,
            idle_timeout_minutes: p
                .opt_u32("properties.idleTimeoutInMinutes")?
                .unwrap_or(DEFAULT_IDLE_TIMEOUT_MINUTES),
        })
    }
}

/// `Microsoft.Network/publicIPPrefixes`: a contiguous block of public addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicIpPrefix {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    pub sku: PublicSku,
    /// `properties.prefixLength` (28 to 31 for a NAT gateway).
    pub prefix_length: u8,
}

impl PublicIpPrefix {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let path = "properties.prefixLength";
        let prefix_length = p
            .opt_u32(path)?
            .ok_or_else(|| invalid(res, path, "is required (28 to 31)"))?;
        let prefix_length = u8::try_from(prefix_length)
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| invalid(res, path, "must be between 0 and 32"))?;
        Ok(PublicIpPrefix {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            sku: sku_of(res, &p)?.unwrap_or(PublicSku::Standard),
            prefix_length,
        })
    }

    /// How many addresses it holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_length))
    }
}

/// `Microsoft.Network/natGateways`.
#[derive(Debug, Clone, PartialEq)]
pub struct NatGateway {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `sku.name`; Standard when absent.
    pub sku: PublicSku,
    /// `properties.idleTimeoutInMinutes` (default 4).
    pub idle_timeout_minutes: u32,
    /// `properties.publicIpAddresses[].id`.
    pub public_ip_ids: Vec<ResourceId>,
    /// `properties.publicIpPrefixes[].id`.
    pub public_ip_prefix_ids: Vec<ResourceId>,
}

fn ids_at(p: &Props, path: &str) -> Result<Vec<ResourceId>, AzureError> {
    let mut out = Vec::new();
    for (i, v) in p.array(path)?.iter().enumerate() {
        let at = format!("{path}[{i}].id");
        let id = props::id_in(p.res, props::at(v, "id"), &at)?
            .ok_or_else(|| invalid(p.res, &at, "is required"))?;
        out.push(id);
    }
    Ok(out)
}

impl NatGateway {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        Ok(NatGateway {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            sku: sku_of(res, &p)?.unwrap_or(PublicSku::Standard),
            idle_timeout_minutes: p
                .opt_u32("properties.idleTimeoutInMinutes")?
                .unwrap_or(DEFAULT_IDLE_TIMEOUT_MINUTES),
            public_ip_ids: ids_at(&p, "properties.publicIpAddresses")?,
            public_ip_prefix_ids: ids_at(&p, "properties.publicIpPrefixes")?,
        })
    }
}

/// Outbound settings of one subscription (`LabState::subscription_settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSettings {
    /// Outbound TCP 25 may leave the virtual networks of this subscription
    /// (Enterprise Agreement behaviour). Default false: pay-as-you-go, MSDN,
    /// free and CSP subscriptions have it blocked (AZURE-FACTS §5.2).
    #[serde(default)]
    pub allow_outbound_smtp: bool,
}
