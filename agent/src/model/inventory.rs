//! The whole desired state as typed resources, sorted by id, with the lookups
//! validation, ipam, plan and views share.

use std::collections::BTreeMap;

use super::{
    ApplicationSecurityGroup, AzureError, GenericResource, InternetHost, NatGateway,
    NetworkInterface, NetworkSecurityGroup, PaasService, PrivateDnsZone, PrivateEndpoint,
    PublicIpAddress, PublicIpPrefix, ResourceId, ResourceKind, RouteTable, ServerFarm, Site,
    Subnet, VirtualMachine, VirtualNetwork, CLASSIC_VNET_TYPE,
};
use super::{
    Connection, ExpressRouteCircuit, LocalNetworkGateway, OnPremisesHost, VirtualNetworkGateway,
};

/// Every resource of a lab, typed. Each list is sorted by lower-cased id, so
/// everything derived from it is deterministic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub vnets: Vec<VirtualNetwork>,
    pub plans: Vec<ServerFarm>,
    pub sites: Vec<Site>,
    pub nics: Vec<NetworkInterface>,
    pub vms: Vec<VirtualMachine>,
    pub hosts: Vec<InternetHost>,
    /// `Microsoft.ClassicNetwork/virtualNetworks`: validated like VNets, never
    /// part of the fabric, never usable for integration.
    pub classic_vnets: Vec<VirtualNetwork>,
    /// `Microsoft.Network/networkSecurityGroups`.
    pub nsgs: Vec<NetworkSecurityGroup>,
    /// `Microsoft.Network/applicationSecurityGroups`.
    pub asgs: Vec<ApplicationSecurityGroup>,
    pub route_tables: Vec<RouteTable>,
    pub nat_gateways: Vec<NatGateway>,
    pub public_ips: Vec<PublicIpAddress>,
    pub public_ip_prefixes: Vec<PublicIpPrefix>,
    /// `Microsoft.Network/privateDnsZones`, with their record sets and links.
    pub dns_zones: Vec<PrivateDnsZone>,
    /// `Microsoft.Network/privateEndpoints`, with their DNS zone groups.
    pub private_endpoints: Vec<PrivateEndpoint>,
    /// The emulated services: storage accounts, key vaults, registries.
    pub services: Vec<PaasService>,
    /// `Microsoft.Network/virtualNetworkGateways`.
    pub gateways: Vec<VirtualNetworkGateway>,
    /// `Microsoft.Network/localNetworkGateways`.
    pub local_gateways: Vec<LocalNetworkGateway>,
    /// `Microsoft.Network/connections`.
    pub connections: Vec<Connection>,
    /// `Microsoft.Network/expressRouteCircuits`.
    pub circuits: Vec<ExpressRouteCircuit>,
    /// `Lab.Emulator/onPremisesHosts`.
    pub onprem_hosts: Vec<OnPremisesHost>,
    /// Resources of types the lab stores as ARM records without emulating
    /// them (Application Insights, databases, locks, ...): no traffic.
    pub records: Vec<ResourceId>,
}

impl Inventory {
    /// Type every resource; the first malformed one is an error.
    pub fn parse(resources: &BTreeMap<String, GenericResource>) -> Result<Self, AzureError> {
        let mut inv = Inventory::default();
        for res in resources.values() {
            inv.add(res)?;
        }
        inv.add_slots(resources, true)?;
        Ok(inv)
    }

    /// Type every resource, skipping malformed ones (a validated state has none).
    pub fn parse_lenient(resources: &BTreeMap<String, GenericResource>) -> Self {
        let mut inv = Inventory::default();
        for res in resources.values() {
            let _ = inv.add(res);
        }
        let _ = inv.add_slots(resources, false);
        inv
    }

    /// Deployment slots (`Microsoft.Web/sites/slots`) are apps of their
    /// site's plan, named `<site>-<slot>` (their host name), sharing the
    /// site's integration unless they name their own subnet.
    fn add_slots(
        &mut self,
        resources: &BTreeMap<String, GenericResource>,
        strict: bool,
    ) -> Result<(), AzureError> {
        for res in resources.values() {
            let is_slot = res.type_.eq_ignore_ascii_case("Microsoft.Web/sites/slots")
                && res.id.segments.len() == 2;
            let Some(parent) = is_slot.then(|| res.id.parent()).flatten() else {
                continue;
            };
            let Some(site) = self.site(&parent).cloned() else {
                continue;
            };
            let mut slot = res.clone();
            slot.name = format!("{}-{}", site.name, res.id.name());
            if let Some(p) = slot.properties.as_object_mut() {
                p.entry("serverFarmId")
                    .or_insert_with(|| serde_json::json!(site.server_farm_id.to_string()));
                if let Some(subnet) = &site.subnet_id {
                    p.entry("virtualNetworkSubnetId")
                        .or_insert_with(|| serde_json::json!(subnet.to_string()));
                }
            }
            match Site::from_resource(&slot) {
                Ok(s) => {
                    self.records.retain(|r| r != &res.id);
                    self.sites.push(s);
                }
                Err(e) if strict => return Err(e),
                Err(_) => {}
            }
        }
        Ok(())
    }

    fn add(&mut self, res: &GenericResource) -> Result<(), AzureError> {
        if res.type_.eq_ignore_ascii_case(CLASSIC_VNET_TYPE) {
            self.classic_vnets.push(VirtualNetwork::from_resource(res)?);
            return Ok(());
        }
        let Some(kind) = ResourceKind::from_type(&res.type_) else {
            self.records.push(res.id.clone());
            return Ok(());
        };
        match kind {
            ResourceKind::VirtualNetwork => self.vnets.push(VirtualNetwork::from_resource(res)?),
            ResourceKind::ServerFarm => self.plans.push(ServerFarm::from_resource(res)?),
            ResourceKind::Site => self.sites.push(Site::from_resource(res)?),
            ResourceKind::NetworkInterface => self.nics.push(NetworkInterface::from_resource(res)?),
            ResourceKind::VirtualMachine => self.vms.push(VirtualMachine::from_resource(res)?),
            ResourceKind::InternetHost => self.hosts.push(InternetHost::from_resource(res)?),
            ResourceKind::NetworkSecurityGroup => {
                self.nsgs.push(NetworkSecurityGroup::from_resource(res)?)
            }
            ResourceKind::ApplicationSecurityGroup => self
                .asgs
                .push(ApplicationSecurityGroup::from_resource(res)?),
            ResourceKind::RouteTable => self.route_tables.push(RouteTable::from_resource(res)?),
            ResourceKind::NatGateway => self.nat_gateways.push(NatGateway::from_resource(res)?),
            ResourceKind::PublicIpAddress => {
                self.public_ips.push(PublicIpAddress::from_resource(res)?)
            }
            ResourceKind::PublicIpPrefix => self
                .public_ip_prefixes
                .push(PublicIpPrefix::from_resource(res)?),
            ResourceKind::PrivateDnsZone => {
                self.dns_zones.push(PrivateDnsZone::from_resource(res)?)
            }
            ResourceKind::PrivateEndpoint => self
                .private_endpoints
                .push(PrivateEndpoint::from_resource(res)?),
            ResourceKind::StorageAccount
            | ResourceKind::KeyVault
            | ResourceKind::ContainerRegistry => {
                self.services.push(PaasService::from_resource(res)?)
            }
            ResourceKind::VirtualNetworkGateway => self
                .gateways
                .push(VirtualNetworkGateway::from_resource(res)?),
            ResourceKind::LocalNetworkGateway => self
                .local_gateways
                .push(LocalNetworkGateway::from_resource(res)?),
            ResourceKind::Connection => self.connections.push(Connection::from_resource(res)?),
            ResourceKind::ExpressRouteCircuit => {
                self.circuits.push(ExpressRouteCircuit::from_resource(res)?)
            }
            ResourceKind::OnPremisesHost => {
                self.onprem_hosts.push(OnPremisesHost::from_resource(res)?)
            }
        }
        Ok(())
    }

    /// The peerings of `vnet` that are Connected (the remote VNet exists and
    /// peers back), with the remote VNet. Only these carry traffic.
    pub fn connected_peerings<'a>(
        &'a self,
        vnet: &'a VirtualNetwork,
    ) -> impl Iterator<Item = (&'a super::Peering, &'a VirtualNetwork)> + 'a {
        vnet.peerings.iter().filter_map(move |p| {
            let remote = self.vnet(&p.remote)?;
            remote
                .peerings
                .iter()
                .any(|back| back.remote == vnet.id)
                .then_some((p, remote))
        })
    }

    pub fn vnet(&self, id: &ResourceId) -> Option<&VirtualNetwork> {
        self.vnets.iter().find(|v| &v.id == id)
    }

    /// The subnet with this id, its VNet, and its index in the VNet.
    pub fn subnet(&self, id: &ResourceId) -> Option<(&VirtualNetwork, &Subnet, usize)> {
        if id.segments.len() != 2 || !id.segments[1].0.eq_ignore_ascii_case("subnets") {
            return None;
        }
        let vnet = self.vnet(&id.parent()?)?;
        let index = vnet.subnets.iter().position(|s| &s.id == id)?;
        Some((vnet, &vnet.subnets[index], index))
    }

    /// The classic VNet a subnet id points into (by its parent id), if any.
    pub fn classic_vnet_of(&self, subnet: &ResourceId) -> Option<&VirtualNetwork> {
        let parent = subnet.parent()?;
        self.classic_vnets.iter().find(|v| v.id == parent)
    }

    pub fn plan(&self, id: &ResourceId) -> Option<&ServerFarm> {
        self.plans.iter().find(|p| &p.id == id)
    }

    pub fn site(&self, id: &ResourceId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.id == id)
    }

    pub fn nic(&self, id: &ResourceId) -> Option<&NetworkInterface> {
        self.nics.iter().find(|n| &n.id == id)
    }

    pub fn vm(&self, id: &ResourceId) -> Option<&VirtualMachine> {
        self.vms.iter().find(|v| &v.id == id)
    }

    pub fn nsg(&self, id: &ResourceId) -> Option<&NetworkSecurityGroup> {
        self.nsgs.iter().find(|n| &n.id == id)
    }

    pub fn asg(&self, id: &ResourceId) -> Option<&ApplicationSecurityGroup> {
        self.asgs.iter().find(|a| &a.id == id)
    }

    pub fn host(&self, id: &ResourceId) -> Option<&InternetHost> {
        self.hosts.iter().find(|h| &h.id == id)
    }

    pub fn route_table(&self, id: &ResourceId) -> Option<&RouteTable> {
        self.route_tables.iter().find(|t| &t.id == id)
    }

    pub fn nat_gateway(&self, id: &ResourceId) -> Option<&NatGateway> {
        self.nat_gateways.iter().find(|n| &n.id == id)
    }

    pub fn public_ip(&self, id: &ResourceId) -> Option<&PublicIpAddress> {
        self.public_ips.iter().find(|p| &p.id == id)
    }

    pub fn public_ip_prefix(&self, id: &ResourceId) -> Option<&PublicIpPrefix> {
        self.public_ip_prefixes.iter().find(|p| &p.id == id)
    }

    pub fn service(&self, id: &ResourceId) -> Option<&PaasService> {
        self.services.iter().find(|s| &s.id == id)
    }

    pub fn dns_zone(&self, id: &ResourceId) -> Option<&PrivateDnsZone> {
        self.dns_zones.iter().find(|z| &z.id == id)
    }

    pub fn private_endpoint(&self, id: &ResourceId) -> Option<&PrivateEndpoint> {
        self.private_endpoints.iter().find(|p| &p.id == id)
    }

    /// Private endpoints in this VNet (in any of its subnets).
    pub fn private_endpoints_in_vnet<'a>(
        &'a self,
        vnet: &'a ResourceId,
    ) -> impl Iterator<Item = &'a PrivateEndpoint> + 'a {
        self.private_endpoints
            .iter()
            .filter(move |p| p.subnet_id.parent().as_ref() == Some(vnet))
    }

    /// Private DNS zones linked to this VNet (AZURE-FACTS §6: only linked
    /// VNets resolve a zone).
    pub fn zones_linked_to<'a>(
        &'a self,
        vnet: &'a ResourceId,
    ) -> impl Iterator<Item = &'a PrivateDnsZone> + 'a {
        self.dns_zones.iter().filter(move |z| z.linked_to(vnet))
    }

    /// Subnets (with their VNet) associated with this route table.
    pub fn subnets_with_route_table<'a>(
        &'a self,
        table: &'a ResourceId,
    ) -> impl Iterator<Item = (&'a VirtualNetwork, &'a Subnet)> + 'a {
        self.vnets.iter().flat_map(move |v| {
            v.subnets
                .iter()
                .filter(move |s| s.route_table_id.as_ref() == Some(table))
                .map(move |s| (v, s))
        })
    }

    /// Subnets (with their VNet) served by this NAT gateway.
    pub fn subnets_with_nat_gateway<'a>(
        &'a self,
        nat: &'a ResourceId,
    ) -> impl Iterator<Item = (&'a VirtualNetwork, &'a Subnet)> + 'a {
        self.vnets.iter().flat_map(move |v| {
            v.subnets
                .iter()
                .filter(move |s| s.nat_gateway_id.as_ref() == Some(nat))
                .map(move |s| (v, s))
        })
    }

    /// Who uses a public IP: `(NIC, ipConfiguration name)` pairs and NAT gateways.
    pub fn public_ip_users<'a>(
        &'a self,
        pip: &'a ResourceId,
    ) -> (Vec<(&'a NetworkInterface, &'a str)>, Vec<&'a NatGateway>) {
        let nics = self
            .nics
            .iter()
            .flat_map(|n| {
                n.ip_configurations
                    .iter()
                    .filter(|c| c.public_ip_id.as_ref() == Some(pip))
                    .map(move |c| (n, c.name.as_str()))
            })
            .collect();
        let nats = self
            .nat_gateways
            .iter()
            .filter(|g| g.public_ip_ids.contains(pip))
            .collect();
        (nics, nats)
    }

    /// Sites hosted on this plan, sorted by id (the `k` of their sandboxes).
    pub fn sites_of_plan<'a>(
        &'a self,
        plan: &'a ResourceId,
    ) -> impl Iterator<Item = &'a Site> + 'a {
        self.sites.iter().filter(move |s| &s.server_farm_id == plan)
    }

    /// The distinct subnets the plan's sites integrate with, sorted by id: the
    /// plan's integrations (`vnet0`, `vnet1` on each worker).
    pub fn plan_integrations(&self, plan: &ResourceId) -> Vec<ResourceId> {
        let mut subnets: Vec<ResourceId> = self
            .sites_of_plan(plan)
            .filter_map(|s| s.subnet_id.clone())
            .collect();
        subnets.sort();
        subnets.dedup();
        subnets
    }

    /// The VM a NIC is attached to.
    pub fn vm_of_nic(&self, nic: &ResourceId) -> Option<&VirtualMachine> {
        self.vms.iter().find(|vm| vm.nic_ids.contains(nic))
    }

    /// NICs with a configuration in this subnet.
    pub fn nics_in_subnet<'a>(
        &'a self,
        subnet: &'a ResourceId,
    ) -> impl Iterator<Item = &'a NetworkInterface> + 'a {
        self.nics
            .iter()
            .filter(move |n| n.ip_configurations.iter().any(|c| &c.subnet_id == subnet))
    }
}
