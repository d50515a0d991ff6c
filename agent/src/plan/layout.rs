//! Every name, index and address of a lab's namespaces, decided once from the
//! state, in sorted order. The namespace builders and the views read it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::effective_routes::lab_route_inputs;
use super::names;
use super::routes::{effective_routes, EffectiveRoute};
use crate::model::{AzureError, Inventory, LabConfig, LabState, ResourceId, Site, VirtualNetwork};

/// The internet's gateway address (on `lo` of `<lab>-inet`).
pub const INET_GW: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// A stamp's gateway address (on `lo`).
pub const STAMP_GW: Ipv4Addr = Ipv4Addr::new(169, 254, 2, 1);
/// A worker's gateway address for its sandboxes (on `lo`).
pub const WORKER_GW: Ipv4Addr = Ipv4Addr::new(169, 254, 3, 1);
/// Base of the workers' `pub0` addresses (+ worker index within the stamp).
pub const PUB0_BASE: Ipv4Addr = Ipv4Addr::new(169, 254, 16, 0);
/// Base of the sandboxes' `eth0` addresses (`.2 + k`).
pub const SANDBOX_BASE: Ipv4Addr = Ipv4Addr::new(169, 254, 129, 0);
/// First fabric mark (= routing table) in a stamp.
pub const FABRIC_MARK_BASE: u32 = 0x100;
/// Subnet table of a fabric = this + subnet index.
pub const SUBNET_TABLE_BASE: u32 = 1000;
/// Sandbox table of a worker = this + k.
pub const SANDBOX_TABLE_BASE: u32 = 2000;
/// Socket mark of the platform's configuration traffic (content share, image
/// pull, backup/restore, Key Vault references) that a worker sends through
/// its vNIC `i`: this + i (DESIGN.md, "Configuration routing"). Unmarked
/// platform traffic takes the worker's main table: the public route via `pub0`.
pub const PLATFORM_MARK_BASE: u32 = 0x200;
/// The worker table for platform traffic through vNIC `i` = this + i.
pub const PLATFORM_TABLE_BASE: u32 = 3000;
/// Priority of every `ip rule` the lab adds.
pub const RULE_PRIORITY: u32 = 100;

pub(crate) fn add(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + n)
}

#[derive(Debug, Clone)]
pub(crate) struct HostL {
    pub id: ResourceId,
    pub netns: String,
    pub ip: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub(crate) struct StampL {
    pub location: String,
    pub netns: String,
    /// Every outbound IP of every plan in this region (the stamp owns them).
    pub outbound: Vec<Ipv4Addr>,
    /// The stamp's inbound address: its front end, what every site's
    /// `NAME.azurewebsites.net` resolves to.
    pub inbound: Option<Ipv4Addr>,
    /// Fabrics linked to this stamp: (index into `fabrics`, mark = table).
    pub fabrics: Vec<(usize, u32)>,
}

#[derive(Debug, Clone)]
pub(crate) struct SubnetL {
    pub id: ResourceId,
    pub prefix: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub table: u32,
    pub delegated_to_web: bool,
    /// Every candidate route with its State (Active ones make the table).
    pub routes: Vec<EffectiveRoute>,
    /// `disableBgpRoutePropagation` of its route table.
    pub disable_bgp: bool,
    /// Index into `Layout::nats` of its NAT gateway.
    pub nat: Option<usize>,
}

/// A NAT gateway attached to subnets of one fabric.
#[derive(Debug, Clone)]
pub(crate) struct NatL {
    pub id: ResourceId,
    pub fabric: usize,
    /// Its public IPs, then every address of its prefixes.
    pub addresses: Vec<Ipv4Addr>,
    pub idle_timeout_minutes: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct FabricL {
    pub vnet: VirtualNetwork,
    pub netns: String,
    pub default_outbound: Option<Ipv4Addr>,
    pub subnets: Vec<SubnetL>,
    /// The stamp this fabric hands App Service internet traffic to.
    pub stamp: Option<usize>,
    /// The VNet's subscription allows outbound SMTP (TCP 25).
    pub allow_smtp: bool,
    /// Connected peerings: a veth to each peered VNet's fabric.
    pub peers: Vec<PeerL>,
    /// Where a `VirtualNetworkGateway` next hop without an address (a UDR)
    /// goes: the VNet's gateway, or the hub's it uses.
    pub gateway_hop: Option<Ipv4Addr>,
    /// The gateway routes of its subnets (before `disableBgpRoutePropagation`).
    pub gateway_routes: Vec<super::routes::GatewayRoute>,
}

/// One Connected peering of a fabric (docs/datapath.md, "Peering").
#[derive(Debug, Clone)]
pub(crate) struct PeerL {
    /// The remote VNet's fabric index.
    pub remote: usize,
    /// This side's end of the veth to the remote fabric.
    pub ifname: String,
    pub remote_prefixes: Vec<Ipv4Net>,
    /// This side's `allowVirtualNetworkAccess`.
    pub allow_access: bool,
    /// This side's `allowForwardedTraffic`.
    pub allow_forwarded: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct VnicL {
    /// `vnet0`, `vnet1`.
    pub ifname: String,
    pub subnet: ResourceId,
    pub fabric: usize,
    pub subnet_table: u32,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub(crate) struct SandboxL {
    pub site: Site,
    pub k: u32,
    pub netns: String,
    pub ip: Ipv4Addr,
    /// Index into the worker's `vnics` when the site is integrated.
    pub vnic: Option<usize>,
    /// A Windows container app's own address in the integration subnet (held
    /// by the worker on that vNIC; the sandbox's VNet traffic leaves with it).
    pub container_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone)]
pub(crate) struct WorkerL {
    pub plan: ResourceId,
    pub instance: u32,
    pub netns: String,
    pub stamp: usize,
    pub pub0: Ipv4Addr,
    /// Outbound IP `instance % n` of the plan.
    pub outbound: Option<Ipv4Addr>,
    pub vnics: Vec<VnicL>,
    pub sandboxes: Vec<SandboxL>,
}

#[derive(Debug, Clone)]
pub(crate) struct VmNicL {
    pub ifname: String,
    pub nic: ResourceId,
    pub fabric: usize,
    pub subnet_table: u32,
    pub addresses: Vec<Ipv4Addr>,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub primary: bool,
    /// `enableIPForwarding`: no spoofing checks on this NIC.
    pub forwarding: bool,
    /// `(private, public)` of each configuration with an instance-level public IP.
    pub public: Vec<(Ipv4Addr, Ipv4Addr)>,
}

#[derive(Debug, Clone)]
pub(crate) struct VmL {
    pub id: ResourceId,
    pub netns: String,
    pub nics: Vec<VmNicL>,
}

/// The lab's shape.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub inv: Inventory,
    pub inet: String,
    pub hosts: Vec<HostL>,
    pub stamps: Vec<StampL>,
    pub fabrics: Vec<FabricL>,
    pub workers: Vec<WorkerL>,
    pub vms: Vec<VmL>,
    /// NAT gateways attached to at least one subnet.
    pub nats: Vec<NatL>,
    /// Emulated services' namespaces, and every service's public address.
    pub services: Vec<super::services::ServiceL>,
    pub service_addrs: Vec<super::services::ServiceAddr>,
    /// Approved private endpoints to apps (`site_endpoint`).
    pub site_endpoints: Vec<super::site_endpoint::SiteEndpointL>,
    /// Virtual network gateways, on-premises sites and their connections.
    pub gateways: super::gateway::GatewaysL,
    /// `LabConfig::snat_ports_per_instance`.
    pub snat_ports: u32,
    /// `LabConfig::address_cooldown_secs`, for views of released addresses.
    pub cooldown_secs: u64,
}

impl Layout {
    pub fn new(state: &LabState, lab: &LabConfig) -> Layout {
        let inv = Inventory::parse_lenient(&state.resources);
        let alloc = &state.allocations;
        let l = lab.name.as_str();

        let hosts = inv
            .hosts
            .iter()
            .filter_map(|h| {
                let ip = alloc
                    .host_addresses
                    .get(&h.id.key())
                    .copied()
                    .or(h.ip_address)?;
                Some(HostL {
                    id: h.id.clone(),
                    netns: names::netns(l, "host", &h.name, &h.id.key()),
                    ip,
                })
            })
            .collect();

        let mut locations: Vec<String> = inv.plans.iter().map(|p| p.location.clone()).collect();
        locations.sort();
        locations.dedup();
        let mut stamps: Vec<StampL> = locations
            .iter()
            .map(|loc| {
                let mut outbound: Vec<Ipv4Addr> = inv
                    .plans
                    .iter()
                    .filter(|p| &p.location == loc)
                    .flat_map(|p| {
                        alloc
                            .plan_outbound
                            .get(&p.id.key())
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect();
                outbound.sort();
                StampL {
                    location: loc.clone(),
                    netns: names::stamp(l, loc),
                    outbound,
                    inbound: alloc
                        .stamp_inbound
                        .get(&crate::ipam::stamp_key(loc))
                        .copied(),
                    fabrics: Vec::new(),
                }
            })
            .collect();

        let service_addrs = super::services::service_addrs(&inv, alloc);
        let mut nats: Vec<NatL> = Vec::new();
        let mut fabrics: Vec<FabricL> = Vec::new();
        for (fi, v) in inv.vnets.iter().enumerate() {
            let endpoints = super::private_endpoint::endpoint_routes(&inv, alloc, v);
            let gateway_routes = super::gateway::vnet_gateway_routes(&inv, state, v);
            let subnets = v
                .subnets
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut inputs = lab_route_inputs(&inv, v, s, &endpoints, &service_addrs);
                    inputs.peerings = inv
                        .connected_peerings(v)
                        .flat_map(|(p, remote)| p.remote_prefixes(remote))
                        .collect();
                    inputs.gateway = gateway_routes.clone();
                    // A `Microsoft.Web` service endpoint reaches the front
                    // ends of App Service in the VNet's region.
                    inputs.service_endpoints.extend(
                        web_endpoint_stamp(s, v, &stamps)
                            .and_then(|si| stamps[si].inbound)
                            .map(|ip| Ipv4Net::new(ip, 32).expect("/32")),
                    );
                    inputs.service_endpoints.sort();
                    inputs.service_endpoints.dedup();
                    let nat = s.nat_gateway_id.as_ref().and_then(|id| {
                        if let Some(n) = nats.iter().position(|n| &n.id == id) {
                            return Some(n);
                        }
                        let g = inv.nat_gateway(id)?;
                        nats.push(NatL {
                            id: g.id.clone(),
                            fabric: fi,
                            addresses: crate::ipam::nat_gateway_addresses(alloc, g),
                            idle_timeout_minutes: g.idle_timeout_minutes,
                        });
                        Some(nats.len() - 1)
                    });
                    SubnetL {
                        id: s.id.clone(),
                        prefix: s.address_prefix,
                        gateway: s.gateway(),
                        table: SUBNET_TABLE_BASE + i as u32,
                        delegated_to_web: s.is_delegated_to_server_farms(),
                        routes: effective_routes(&inputs),
                        disable_bgp: inputs.disable_bgp_route_propagation,
                        nat,
                    }
                })
                .collect();
            let peers = inv
                .connected_peerings(v)
                .filter_map(|(p, remote)| {
                    let ri = inv.vnets.iter().position(|x| x.id == remote.id)?;
                    let remote_ns = names::netns(l, "vnet", &remote.name, &remote.id.key());
                    Some(PeerL {
                        remote: ri,
                        ifname: names::link('p', &remote_ns, "peer"),
                        remote_prefixes: p.remote_prefixes(remote),
                        allow_access: p.allow_virtual_network_access,
                        allow_forwarded: p.allow_forwarded_traffic,
                    })
                })
                .collect();
            fabrics.push(FabricL {
                vnet: v.clone(),
                netns: names::netns(l, "vnet", &v.name, &v.id.key()),
                default_outbound: alloc.vnet_outbound.get(&v.id.key()).copied(),
                subnets,
                stamp: None,
                allow_smtp: state.subscription(&v.id.subscription).allow_outbound_smtp,
                peers,
                gateway_hop: super::gateway::gateway_hop(&inv, v),
                gateway_routes,
            });
        }
        let fabric_of = |vnet: &ResourceId| fabrics.iter().position(|f| &f.vnet.id == vnet);
        let fabric_index: BTreeMap<String, usize> = inv
            .vnets
            .iter()
            .filter_map(|v| Some((v.id.key(), fabric_of(&v.id)?)))
            .collect();

        // Workers, numbered within their stamp by (plan id, instance).
        let mut workers = Vec::new();
        // Each worker's slot on its stamp's public side, kept for its life.
        let worker_slots: BTreeMap<String, BTreeMap<String, u32>> =
            crate::ipam::stamp_workers(&inv)
                .iter()
                .map(|(stamp, w)| (stamp.clone(), alloc.worker_slots_of(stamp, w)))
                .collect();
        for plan in &inv.plans {
            let Some(stamp) = stamps.iter().position(|s| s.location == plan.location) else {
                continue;
            };
            let outbound = alloc
                .plan_outbound
                .get(&plan.id.key())
                .cloned()
                .unwrap_or_default();
            let integrations = inv.plan_integrations(&plan.id);
            let sites: Vec<&Site> = inv.sites_of_plan(&plan.id).collect();
            let site_keys: Vec<String> = sites.iter().map(|s| s.id.key()).collect();
            let sandbox_slots = alloc.sandbox_slots_of(&plan.id.key(), &site_keys);
            for instance in 0..plan.capacity {
                let slot = worker_slots
                    .get(&crate::ipam::stamp_key(&plan.location))
                    .and_then(|m| m.get(&crate::ipam::worker_key(&plan.id.key(), instance)))
                    .copied()
                    .unwrap_or(0);
                let pub0 = add(PUB0_BASE, slot);
                let netns = names::instance_netns(l, "wk", &plan.name, &plan.id.key(), instance);
                let vnics: Vec<VnicL> = integrations
                    .iter()
                    .enumerate()
                    .filter_map(|(n, subnet_id)| {
                        let (vnet, subnet, si) = inv.subnet(subnet_id)?;
                        let ip = alloc.instance_ip(&plan.id.key(), &subnet_id.key(), instance)?;
                        Some(VnicL {
                            ifname: format!("vnet{n}"),
                            subnet: subnet_id.clone(),
                            fabric: *fabric_index.get(&vnet.id.key())?,
                            subnet_table: SUBNET_TABLE_BASE + si as u32,
                            ip,
                            prefix_len: subnet.address_prefix.prefix_len(),
                            gateway: subnet.gateway(),
                        })
                    })
                    .collect();
                let sandboxes = sites
                    .iter()
                    .enumerate()
                    .map(|(k, site)| {
                        let k = sandbox_slots
                            .get(&site.id.key())
                            .copied()
                            .unwrap_or(k as u32);
                        let vnic = site
                            .subnet_id
                            .as_ref()
                            .and_then(|s| vnics.iter().position(|v| &v.subnet == s));
                        let container_ip = vnic.and_then(|v| {
                            alloc.container_ip(
                                &plan.id.key(),
                                &vnics[v].subnet.key(),
                                instance,
                                &site.id.key(),
                            )
                        });
                        SandboxL {
                            site: (*site).clone(),
                            k,
                            netns: names::instance_netns(
                                l,
                                "app",
                                &site.name,
                                &site.id.key(),
                                instance,
                            ),
                            ip: add(SANDBOX_BASE, 2 + k),
                            vnic,
                            container_ip,
                        }
                    })
                    .collect();
                workers.push(WorkerL {
                    plan: plan.id.clone(),
                    instance,
                    netns,
                    stamp,
                    pub0,
                    outbound: (!outbound.is_empty())
                        .then(|| outbound[instance as usize % outbound.len()]),
                    vnics,
                    sandboxes,
                });
            }
        }
        // Fabrics with an integration used by a stamp's plans get a stamp
        // link, and so do those with a subnet whose `Microsoft.Web` service
        // endpoint reaches the stamp's front end.
        for w in &workers {
            for v in &w.vnics {
                fabrics[v.fabric].stamp.get_or_insert(w.stamp);
            }
        }
        for (fi, v) in inv.vnets.iter().enumerate() {
            if let Some(si) = v
                .subnets
                .iter()
                .find_map(|s| web_endpoint_stamp(s, v, &stamps))
            {
                fabrics[fi].stamp.get_or_insert(si);
            }
        }
        for (fi, f) in fabrics.iter().enumerate() {
            if let Some(si) = f.stamp {
                let mark = FABRIC_MARK_BASE + stamps[si].fabrics.len() as u32;
                stamps[si].fabrics.push((fi, mark));
            }
        }

        let vms = inv
            .vms
            .iter()
            .map(|vm| VmL {
                id: vm.id.clone(),
                netns: names::netns(l, "vm", &vm.name, &vm.id.key()),
                nics: vm
                    .nic_ids
                    .iter()
                    .enumerate()
                    .filter_map(|(n, nic_id)| {
                        let nic = inv.nic(nic_id)?;
                        let (vnet, subnet, si) = inv.subnet(nic.subnet_id())?;
                        let addresses = nic
                            .ip_configurations
                            .iter()
                            .filter_map(|c| alloc.nic_addresses.get(&c.key(&nic.id)).copied())
                            .collect();
                        let public = nic
                            .ip_configurations
                            .iter()
                            .filter_map(|c| {
                                let private = alloc.nic_addresses.get(&c.key(&nic.id))?;
                                let public =
                                    alloc.public_ips.get(&c.public_ip_id.as_ref()?.key())?;
                                Some((*private, *public))
                            })
                            .collect();
                        Some(VmNicL {
                            ifname: format!("eth{n}"),
                            nic: nic.id.clone(),
                            fabric: *fabric_index.get(&vnet.id.key())?,
                            subnet_table: SUBNET_TABLE_BASE + si as u32,
                            addresses,
                            prefix_len: subnet.address_prefix.prefix_len(),
                            gateway: subnet.gateway(),
                            primary: n == vm.primary_nic,
                            forwarding: nic.enable_ip_forwarding,
                            public,
                        })
                    })
                    .collect(),
            })
            .collect();

        let services = super::services::layout(&inv, state, l, &inv.vnets);
        let site_endpoints =
            super::site_endpoint::layout(&inv, state, &inv.vnets, &workers, &stamps);
        let gateways = super::gateway::layout(&inv, l, &inv.vnets);
        Layout {
            gateways,
            services,
            site_endpoints,
            service_addrs,
            inet: names::internet(l),
            hosts,
            stamps,
            fabrics,
            workers,
            vms,
            nats,
            inv,
            snat_ports: lab.snat_ports_per_instance,
            cooldown_secs: lab.address_cooldown_secs,
        }
    }

    /// Workers of one plan, by instance.
    pub fn workers_of<'a>(
        &'a self,
        plan: &'a ResourceId,
    ) -> impl Iterator<Item = &'a WorkerL> + 'a {
        self.workers.iter().filter(move |w| &w.plan == plan)
    }

    /// The worker of instance `instance` of `site`'s plan, or Azure-style
    /// `InstanceOutOfRange` naming how many instances there are.
    pub fn site_worker<'a>(
        &'a self,
        site: &Site,
        instance: u32,
    ) -> Result<&'a WorkerL, AzureError> {
        let mut of_plan = self
            .workers
            .iter()
            .filter(|w| w.plan == site.server_farm_id);
        let count = of_plan.clone().count();
        of_plan.find(|w| w.instance == instance).ok_or_else(|| {
            AzureError::bad_request(
                "InstanceOutOfRange",
                format!(
                    "Site '{}' has {count} instance(s) (0 to {}); there is no instance {instance}.",
                    site.name,
                    count.saturating_sub(1)
                ),
            )
        })
    }
}

/// The stamp whose front end a subnet's `Microsoft.Web` service endpoint
/// reaches: the one in the VNet's region, when it has an inbound address.
fn web_endpoint_stamp(
    s: &crate::model::Subnet,
    v: &crate::model::VirtualNetwork,
    stamps: &[StampL],
) -> Option<usize> {
    let web = s.service_endpoints.iter().any(|e| {
        e.service.eq_ignore_ascii_case("Microsoft.Web")
            && (e.locations.is_empty()
                || e.locations
                    .iter()
                    .any(|l| l == "*" || l.eq_ignore_ascii_case(&v.location)))
    });
    if !web {
        return None;
    }
    stamps
        .iter()
        .position(|st| st.location.eq_ignore_ascii_case(&v.location) && st.inbound.is_some())
}
