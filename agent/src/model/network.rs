//! Typed views of `Microsoft.Network` resources: virtual networks with their
//! subnets and delegations, and network interfaces.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::Value;

use super::props::{self, invalid, label, Props};
use super::{AzureError, GenericResource, PrivateEndpointNetworkPolicies, ResourceId};

/// The delegation App Service needs on an integration subnet (seed,
/// "Subnet requirements"; AZURE-FACTS §1). Compared case-insensitively:
/// templates also write `Microsoft.Web/serverfarms`.
pub const SERVER_FARMS_DELEGATION: &str = "Microsoft.Web/serverFarms";

/// A classic (Azure Service Manager) virtual network, kept by the lab as a
/// resource with `addressSpace` and `subnets` so templates can name it; it is
/// never usable for integration (seed, "Limitations": the feature needs "an
/// Azure Resource Manager virtual network").
pub const CLASSIC_VNET_TYPE: &str = "Microsoft.ClassicNetwork/virtualNetworks";

/// The service association link App Service puts on an integration subnet
/// (AZURE-FACTS §1): `<subnet>/serviceAssociationLinks/AppServiceLink`.
pub const APP_SERVICE_LINK: &str = "AppServiceLink";

/// Most DNS servers of one VNet (AZURE-FACTS §0, VNet limits).
pub const MAX_VNET_DNS_SERVERS: usize = 20;

/// `Microsoft.Network/virtualNetworks`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualNetwork {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// The IPv4 entries of `properties.addressSpace.addressPrefixes`, as
    /// written (host bits are checked by validation).
    pub address_prefixes: Vec<Ipv4Net>,
    /// The IPv6 entries of the address space (a dual-stack VNet). Valid, but
    /// such a VNet cannot be used for App Service integration (seed,
    /// "Limitations").
    pub ipv6_prefixes: Vec<Ipv6Net>,
    /// In the order of `properties.subnets` (the fabric numbers subnet tables by it).
    pub subnets: Vec<Subnet>,
    /// `properties.dhcpOptions.dnsServers`: custom DNS servers that replace
    /// Azure-provided DNS (168.63.129.16) for the VNet's VMs and integrated
    /// apps (AZURE-FACTS §6; seed, "Azure DNS private zones"). Empty = Azure's.
    pub dns_servers: Vec<Ipv4Addr>,
    /// `properties.virtualNetworkPeerings` (also deployed as the child type
    /// `virtualNetworks/virtualNetworkPeerings`).
    pub peerings: Vec<Peering>,
}

/// One side of a VNet peering: this VNet's view of a remote one (the
/// other side is the remote VNet's own peering back).
#[derive(Debug, Clone, PartialEq)]
pub struct Peering {
    pub name: String,
    pub remote: ResourceId,
    /// `allowVirtualNetworkAccess` (default true): this VNet's space may
    /// reach the remote's, and the remote's this one.
    pub allow_virtual_network_access: bool,
    /// `allowForwardedTraffic` (default false): accept traffic from the
    /// remote side whose source is outside the remote VNet (an NVA forwarded it).
    pub allow_forwarded_traffic: bool,
    /// `allowGatewayTransit`: the remote may use this VNet's gateway.
    pub allow_gateway_transit: bool,
    /// `useRemoteGateways`: this VNet uses the remote's gateway.
    pub use_remote_gateways: bool,
    /// `remoteAddressSpace`: the remote's space as this peering last
    /// synced it (the lab records it when the peering is made or synced).
    /// A remote address-space change leaves it behind: RemoteNotInSync,
    /// and only the synced prefixes are routed, until `peering sync`.
    pub synced_remote_prefixes: Option<Vec<Ipv4Net>>,
}

impl Peering {
    /// The remote prefixes this side routes: the synced ones, or (before the
    /// first sync) the remote's own.
    pub fn remote_prefixes(&self, remote: &VirtualNetwork) -> Vec<Ipv4Net> {
        self.synced_remote_prefixes
            .clone()
            .unwrap_or_else(|| remote.address_prefixes.clone())
    }
}
#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    pub id: ResourceId,
    pub name: String,
    pub address_prefix: Ipv4Net,
    /// IPv6 entries of `properties.addressPrefixes` (each a /64).
    pub ipv6_prefixes: Vec<Ipv6Net>,
    pub delegations: Vec<Delegation>,
    /// `properties.serviceEndpointPolicies[].id`: not allowed on an
    /// integration subnet (seed, "Limitations").
    pub service_endpoint_policies: Vec<String>,
    /// `properties.serviceAssociationLinks[]`, kept by the platform: App
    /// Service's `AppServiceLink` while (or after) a plan integrates here.
    pub service_association_links: Vec<ServiceAssociationLink>,
    /// `properties.networkSecurityGroup.id` (AZURE-FACTS §3).
    pub network_security_group: Option<ResourceId>,
    /// `properties.routeTable.id`: the subnet's route table (UDRs), if any.
    pub route_table_id: Option<ResourceId>,
    /// `properties.natGateway.id`: the subnet's NAT gateway, if any.
    pub nat_gateway_id: Option<ResourceId>,
    /// `properties.privateEndpointNetworkPolicies` (AZURE-FACTS §2.5).
    pub private_endpoint_network_policies: PrivateEndpointNetworkPolicies,
    /// `properties.serviceEndpoints[]` (AZURE-FACTS §7).
    pub service_endpoints: Vec<super::ServiceEndpoint>,
}

/// The name Azure reserves for the subnet of VPN / ExpressRoute gateways.
pub const GATEWAY_SUBNET: &str = "GatewaySubnet";

/// `subnets[].properties.serviceAssociationLinks[]` (AZURE-FACTS §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAssociationLink {
    pub name: String,
    /// `properties.linkedResourceType`, e.g. `Microsoft.Web/serverfarms`.
    pub linked_resource_type: String,
    /// `properties.link`: the id of the App Service plan that owns the link.
    pub link: ResourceId,
}

/// `subnets[].properties.delegations[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub name: String,
    pub service_name: String,
}

impl Subnet {
    /// Delegated to `Microsoft.Web/serverFarms` (an App Service integration subnet).
    pub fn is_delegated_to_server_farms(&self) -> bool {
        self.delegations
            .iter()
            .any(|d| d.service_name.eq_ignore_ascii_case(SERVER_FARMS_DELEGATION))
    }

    /// The App Service link of this subnet, if any.
    pub fn app_service_link(&self) -> Option<&ServiceAssociationLink> {
        self.service_association_links
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(APP_SERVICE_LINK))
    }

    /// The subnet's gateway, `.1` of the prefix (Azure reserves it).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address_prefix.network()).wrapping_add(1))
    }
}

/// Parse an IPv4 or IPv6 prefix written in a template.
fn parse_prefix(res: &GenericResource, path: &str, s: &str) -> Result<IpNet, AzureError> {
    s.parse::<IpNet>().map_err(|_| {
        AzureError::bad_request(
            "InvalidAddressPrefixFormat",
            format!(
                "{}: '{s}' at '{path}' is not a valid address prefix in CIDR notation, e.g. 10.0.1.0/24 \
                 (or fd00:db8:1::/64 for IPv6).",
                label(res)
            ),
        )
        .with_target(path.to_string())
    })
}

impl VirtualNetwork {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let path = "properties.addressSpace.addressPrefixes";
        let mut address_prefixes = Vec::new();
        let mut ipv6_prefixes = Vec::new();
        for (i, v) in p.array(path)?.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let s = props::str_in(res, Some(v), &at)?.unwrap_or_default();
            match parse_prefix(res, &at, &s)? {
                IpNet::V4(n) => address_prefixes.push(n),
                IpNet::V6(n) => ipv6_prefixes.push(n),
            }
        }
        let mut subnets = Vec::new();
        for (i, v) in p.array("properties.subnets")?.iter().enumerate() {
            subnets.push(parse_subnet(res, i, v)?);
        }
        let dns_path = "properties.dhcpOptions.dnsServers";
        let mut dns_servers = Vec::new();
        for (i, v) in p.array(dns_path)?.iter().enumerate() {
            let at = format!("{dns_path}[{i}]");
            let text = props::str_in(res, Some(v), &at)?.unwrap_or_default();
            let ip = text.trim().parse::<Ipv4Addr>().map_err(|_| {
                invalid(
                    res,
                    &at,
                    &format!("is '{text}', which is not an IPv4 address (one address per entry, e.g. 10.0.3.4)"),
                )
            })?;
            dns_servers.push(ip);
        }
        if dns_servers.len() > MAX_VNET_DNS_SERVERS {
            return Err(AzureError::bad_request(
                "DnsServersLimitExceeded",
                format!(
                    "{}: {} DNS servers in '{dns_path}'; a virtual network can have at most {MAX_VNET_DNS_SERVERS}.",
                    label(res),
                    dns_servers.len()
                ),
            )
            .with_target(dns_path.to_string()));
        }
        let mut peerings = Vec::new();
        for (i, v) in p
            .array("properties.virtualNetworkPeerings")?
            .iter()
            .enumerate()
        {
            peerings.push(parse_peering(res, i, v)?);
        }
        Ok(VirtualNetwork {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            address_prefixes,
            ipv6_prefixes,
            subnets,
            dns_servers,
            peerings,
        })
    }

    /// The subnet with this name (case-insensitive).
    pub fn subnet(&self, name: &str) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

fn parse_peering(res: &GenericResource, i: usize, v: &Value) -> Result<Peering, AzureError> {
    let base = format!("properties.virtualNetworkPeerings[{i}]");
    let name = props::str_in(res, props::at(v, "name"), &format!("{base}.name"))?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(res, &format!("{base}.name"), "is required"))?;
    let p = props::at(v, "properties");
    let field = |k: &str| p.and_then(|p| props::at(p, k));
    let remote_path = format!("{base}.properties.remoteVirtualNetwork.id");
    let remote = props::id_in(
        res,
        field("remoteVirtualNetwork").and_then(|r| props::at(r, "id")),
        &remote_path,
    )?
    .ok_or_else(|| {
        invalid(
            res,
            &remote_path,
            "is required (the id of the VNet to peer with)",
        )
    })?;
    let flag = |k: &str, default: bool| -> Result<bool, AzureError> {
        Ok(props::bool_in(res, field(k), &format!("{base}.properties.{k}"))?.unwrap_or(default))
    };
    Ok(Peering {
        name,
        remote,
        allow_virtual_network_access: flag("allowVirtualNetworkAccess", true)?,
        allow_forwarded_traffic: flag("allowForwardedTraffic", false)?,
        allow_gateway_transit: flag("allowGatewayTransit", false)?,
        use_remote_gateways: flag("useRemoteGateways", false)?,
        synced_remote_prefixes: field("remoteAddressSpace")
            .and_then(|r| props::at(r, "addressPrefixes"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect()),
    })
}

fn parse_subnet(res: &GenericResource, i: usize, v: &Value) -> Result<Subnet, AzureError> {
    let base = format!("properties.subnets[{i}]");
    let name = props::str_in(res, props::at(v, "name"), &format!("{base}.name"))?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(res, &format!("{base}.name"), "is required"))?;
    let prefix_path = format!("{base}.properties.addressPrefix");
    let mut written: Vec<(String, String)> = Vec::new();
    if let Some(p) = props::at(v, "properties.addressPrefix") {
        written.push((
            prefix_path.clone(),
            props::str_in(res, Some(p), &prefix_path)?.unwrap_or_default(),
        ));
    }
    let list_path = format!("{base}.properties.addressPrefixes");
    for (j, p) in props::array_in(res, props::at(v, "properties.addressPrefixes"), &list_path)?
        .iter()
        .enumerate()
    {
        let at = format!("{list_path}[{j}]");
        written.push((
            at.clone(),
            props::str_in(res, Some(p), &at)?.unwrap_or_default(),
        ));
    }
    let mut v4: Vec<Ipv4Net> = Vec::new();
    let mut ipv6_prefixes = Vec::new();
    for (at, text) in &written {
        match parse_prefix(res, at, text)? {
            IpNet::V4(n) if !v4.contains(&n) => v4.push(n),
            IpNet::V4(_) => {}
            IpNet::V6(n) if !ipv6_prefixes.contains(&n) => ipv6_prefixes.push(n),
            IpNet::V6(_) => {}
        }
    }
    if v4.len() > 1 {
        return Err(invalid(
            res,
            &list_path,
            &format!(
                "gives subnet '{name}' {} IPv4 prefixes; the lab supports one IPv4 prefix per subnet \
                 (plus IPv6 /64 prefixes)",
                v4.len()
            ),
        ));
    }
    let address_prefix = v4.pop().ok_or_else(|| {
        AzureError::bad_request(
            "InvalidRequestFormat",
            format!(
                "{}: subnet '{name}' needs an IPv4 'properties.addressPrefix', e.g. 10.0.1.0/24 \
                 (Azure has no IPv6-only subnets).",
                label(res)
            ),
        )
        .with_target(prefix_path.clone())
    })?;
    let mut delegations = Vec::new();
    let dpath = format!("{base}.properties.delegations");
    for (j, d) in props::array_in(res, props::at(v, "properties.delegations"), &dpath)?
        .iter()
        .enumerate()
    {
        let service_path = format!("{dpath}[{j}].properties.serviceName");
        let service_name =
            props::str_in(res, props::at(d, "properties.serviceName"), &service_path)?.ok_or_else(
                || {
                    invalid(
                        res,
                        &service_path,
                        "is required (e.g. Microsoft.Web/serverFarms)",
                    )
                },
            )?;
        let name = props::str_in(res, props::at(d, "name"), &format!("{dpath}[{j}].name"))?
            .unwrap_or_else(|| "delegation".to_string());
        delegations.push(Delegation { name, service_name });
    }
    let policies_path = format!("{base}.properties.serviceEndpointPolicies");
    let service_endpoint_policies = props::array_in(
        res,
        props::at(v, "properties.serviceEndpointPolicies"),
        &policies_path,
    )?
    .iter()
    .map(|p| {
        p.get("id")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed policy)")
            .to_string()
    })
    .collect();
    let sal_path = format!("{base}.properties.serviceAssociationLinks");
    let mut service_association_links = Vec::new();
    for (j, l) in props::array_in(
        res,
        props::at(v, "properties.serviceAssociationLinks"),
        &sal_path,
    )?
    .iter()
    .enumerate()
    {
        let at = format!("{sal_path}[{j}]");
        let link_path = format!("{at}.properties.link");
        let Some(link) = props::id_in(res, props::at(l, "properties.link"), &link_path)? else {
            return Err(invalid(
                res,
                &link_path,
                "is required (the id of the linked resource)",
            ));
        };
        service_association_links.push(ServiceAssociationLink {
            name: props::str_in(res, props::at(l, "name"), &format!("{at}.name"))?
                .unwrap_or_else(|| APP_SERVICE_LINK.to_string()),
            linked_resource_type: props::str_in(
                res,
                props::at(l, "properties.linkedResourceType"),
                &format!("{at}.properties.linkedResourceType"),
            )?
            .unwrap_or_default(),
            link,
        });
    }
    let network_security_group = props::id_in(
        res,
        props::at(v, "properties.networkSecurityGroup.id"),
        &format!("{base}.properties.networkSecurityGroup.id"),
    )?;
    let route_table_id = props::id_in(
        res,
        props::at(v, "properties.routeTable.id"),
        &format!("{base}.properties.routeTable.id"),
    )?;
    let nat_gateway_id = props::id_in(
        res,
        props::at(v, "properties.natGateway.id"),
        &format!("{base}.properties.natGateway.id"),
    )?;
    let private_endpoint_network_policies = PrivateEndpointNetworkPolicies::read(
        res,
        props::at(v, "properties.privateEndpointNetworkPolicies"),
        &format!("{base}.properties.privateEndpointNetworkPolicies"),
    )?;
    let service_endpoints = super::services::parse_service_endpoints(res, v, &base)?;
    Ok(Subnet {
        private_endpoint_network_policies,
        service_endpoints,
        route_table_id,
        nat_gateway_id,
        id: res.id.child("subnets", &name),
        network_security_group,
        name,
        address_prefix,
        ipv6_prefixes,
        delegations,
        service_endpoint_policies,
        service_association_links,
    })
}

/// How a NIC's private address is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpAllocationMethod {
    /// The lowest free usable address of the subnet.
    Dynamic,
    /// The address in `privateIPAddress`.
    Static,
}

/// `Microsoft.Network/networkInterfaces`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkInterface {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    pub ip_configurations: Vec<IpConfiguration>,
    /// `properties.networkSecurityGroup.id` (AZURE-FACTS §3).
    pub network_security_group: Option<ResourceId>,
    /// `properties.enableIPForwarding` (default false): without it the fabric
    /// drops packets from this NIC whose source is not one of its addresses,
    /// and packets to it whose destination is not one of its addresses.
    pub enable_ip_forwarding: bool,
    /// `properties.privateEndpoint.id`: the private endpoint that owns this
    /// NIC (Azure creates and deletes it with the endpoint).
    pub private_endpoint: Option<ResourceId>,
}

/// `properties.ipConfigurations[]` of a NIC.
#[derive(Debug, Clone, PartialEq)]
pub struct IpConfiguration {
    pub name: String,
    pub subnet_id: ResourceId,
    pub method: IpAllocationMethod,
    /// Set for `Static` (a `Dynamic` configuration ignores a written address).
    pub static_address: Option<Ipv4Addr>,
    pub primary: bool,
    /// `properties.applicationSecurityGroups[].id`.
    pub application_security_groups: Vec<ResourceId>,
    /// `properties.publicIPAddress.id`: an instance-level public IP (1:1 NAT).
    pub public_ip_id: Option<ResourceId>,
}

impl IpConfiguration {
    /// The ipam key of this configuration: `<nic id>/ipConfigurations/<name>`, lower-cased.
    pub fn key(&self, nic: &ResourceId) -> String {
        nic.child("ipConfigurations", &self.name).key()
    }
}

impl NetworkInterface {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let mut ip_configurations = Vec::new();
        let configs = p.array("properties.ipConfigurations")?;
        for (i, v) in configs.iter().enumerate() {
            let base = format!("properties.ipConfigurations[{i}]");
            let name = props::str_in(res, props::at(v, "name"), &format!("{base}.name"))?
                .unwrap_or_else(|| format!("ipconfig{}", i + 1));
            let subnet_path = format!("{base}.properties.subnet.id");
            let subnet_id = props::id_in(res, props::at(v, "properties.subnet.id"), &subnet_path)?
                .ok_or_else(|| {
                    invalid(
                        res,
                        &subnet_path,
                        "is required (the id of the NIC's subnet)",
                    )
                })?;
            let addr_path = format!("{base}.properties.privateIPAddress");
            let address =
                props::str_in(res, props::at(v, "properties.privateIPAddress"), &addr_path)?
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<Ipv4Addr>().map_err(|_| {
                            invalid(res, &addr_path, &format!("'{s}' is not an IPv4 address"))
                        })
                    })
                    .transpose()?;
            let method_path = format!("{base}.properties.privateIPAllocationMethod");
            let method = match props::str_in(
                res,
                props::at(v, "properties.privateIPAllocationMethod"),
                &method_path,
            )? {
                Some(m) if m.eq_ignore_ascii_case("static") => IpAllocationMethod::Static,
                Some(m) if m.eq_ignore_ascii_case("dynamic") => IpAllocationMethod::Dynamic,
                Some(m) => {
                    return Err(invalid(
                        res,
                        &method_path,
                        &format!("is '{m}'; use Static or Dynamic"),
                    ))
                }
                // An address without a method: the user meant it (the lab's reading).
                None if address.is_some() => IpAllocationMethod::Static,
                None => IpAllocationMethod::Dynamic,
            };
            if method == IpAllocationMethod::Static && address.is_none() {
                return Err(invalid(
                    res,
                    &addr_path,
                    "is required when privateIPAllocationMethod is Static",
                ));
            }
            let primary = props::bool_in(
                res,
                props::at(v, "properties.primary"),
                &format!("{base}.properties.primary"),
            )?
            .unwrap_or(configs.len() == 1 || i == 0);
            let application_security_groups = super::nsg::ids_in(
                res,
                props::at(v, "properties.applicationSecurityGroups"),
                &format!("{base}.properties.applicationSecurityGroups"),
            )?;
            let public_ip_id = props::id_in(
                res,
                props::at(v, "properties.publicIPAddress.id"),
                &format!("{base}.properties.publicIPAddress.id"),
            )?;
            ip_configurations.push(IpConfiguration {
                application_security_groups,
                public_ip_id,
                name,
                subnet_id,
                method,
                static_address: if method == IpAllocationMethod::Static {
                    address
                } else {
                    None
                },
                primary,
            });
        }
        if ip_configurations.is_empty() {
            return Err(invalid(
                res,
                "properties.ipConfigurations",
                "needs at least one IP configuration",
            ));
        }
        Ok(NetworkInterface {
            network_security_group: p.opt_id("properties.networkSecurityGroup.id")?,
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            ip_configurations,
            enable_ip_forwarding: p
                .opt_bool("properties.enableIPForwarding")?
                .unwrap_or(false),
            private_endpoint: p.opt_id("properties.privateEndpoint.id")?,
        })
    }

    /// The subnet of the NIC (the lab keeps all configurations of a NIC in one subnet).
    pub fn subnet_id(&self) -> &ResourceId {
        &self.ip_configurations[0].subnet_id
    }
}
