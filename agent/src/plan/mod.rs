//! PURE: model -> NetworkPlan. No syscalls, no clock, no randomness: the same
//! state and lab always give the same plan (docs/datapath.md describes it).

mod builder;
pub mod dns;
mod effective_routes;
mod env;
mod fabric;
mod frontend;
mod gateway;
mod internet;
mod layout;
pub mod limits;
pub mod names;
mod nft;
pub mod nsg;
pub mod private_endpoint;
pub mod routes;
pub(crate) mod services;
pub(crate) mod site_endpoint;
mod stamp;
pub mod startup;
mod types;
pub mod view;
mod vm;
pub mod what_if;
mod worker;

#[cfg(test)]
mod address_tests;
#[cfg(test)]
mod nft_check;
#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod services_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use effective_routes::{
    effective_routes_for_app, effective_routes_for_nic, effective_routes_for_subnet,
    APP_SERVICE_DIRECT, VNET_INTEGRATION,
};
pub use gateway::speaker_key;
pub use types::*;

/// A resource the lab does not have (`what` names its kind in the message).
pub(crate) fn not_found(what: &str, id: &ResourceId) -> AzureError {
    AzureError::not_found(
        "ResourceNotFound",
        format!("The {what} '{id}' was not found."),
    )
}

use crate::model::{AzureError, LabConfig, LabState, ResourceId};
use layout::Layout;

/// A VM NIC where the kernel sees it: for VNet flow logs, which record
/// the flows of VM NICs as the VNet's fabric tracks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicInFabric {
    pub nic: ResourceId,
    pub subnet: ResourceId,
    pub addresses: Vec<std::net::Ipv4Addr>,
    /// The fabric namespace of its VNet.
    pub fabric: String,
}

/// The address an app instance's VNet traffic leaves with (its vNIC's, or a
/// Windows container's own), `None` when the app is not integrated.
pub fn app_vnet_address(
    state: &LabState,
    lab: &LabConfig,
    site: &ResourceId,
    instance: u32,
) -> Result<Option<std::net::Ipv4Addr>, AzureError> {
    let l = Layout::new(state, lab);
    let s = l.inv.site(site).ok_or_else(|| not_found("site", site))?;
    let w = l.site_worker(s, instance)?;
    Ok(w.sandboxes
        .iter()
        .find(|sb| &sb.site.id == site)
        .and_then(|sb| {
            let v = w.vnics.get(sb.vnic?)?;
            Some(sb.container_ip.unwrap_or(v.ip))
        }))
}

/// Where a NIC of a VM is in the kernel: `(the VM's namespace, its
/// interface)`; the primary NIC when `nic` is `None`.
pub fn vm_interface(
    state: &LabState,
    lab: &LabConfig,
    vm: &ResourceId,
    nic: Option<&ResourceId>,
) -> Result<(String, String), AzureError> {
    let l = Layout::new(state, lab);
    let v = l
        .vms
        .iter()
        .find(|v| &v.id == vm)
        .ok_or_else(|| not_found("virtual machine", vm))?;
    let n = v
        .nics
        .iter()
        .find(|n| nic.map_or(n.primary, |x| &n.nic == x))
        .ok_or_else(|| not_found("network interface", nic.unwrap_or(vm)))?;
    Ok((v.netns.clone(), n.ifname.clone()))
}

/// How many instances an app runs on (its plan's workers).
pub fn app_instance_count(
    state: &LabState,
    lab: &LabConfig,
    site: &ResourceId,
) -> Result<u32, AzureError> {
    let l = Layout::new(state, lab);
    let s = l.inv.site(site).ok_or_else(|| not_found("site", site))?;
    Ok(l.workers_of(&s.server_farm_id).count() as u32)
}

/// Where an app instance's vNIC is: `(its worker's namespace, the vNIC)`.
pub fn app_interface(
    state: &LabState,
    lab: &LabConfig,
    site: &ResourceId,
    instance: u32,
) -> Result<(String, String), AzureError> {
    let l = Layout::new(state, lab);
    let s = l.inv.site(site).ok_or_else(|| not_found("site", site))?;
    let w = l.site_worker(s, instance)?;
    let v = w
        .sandboxes
        .iter()
        .find(|sb| &sb.site.id == site)
        .and_then(|sb| w.vnics.get(sb.vnic?))
        .ok_or_else(|| {
            AzureError::bad_request(
                "AppNotIntegrated",
                format!(
                    "App '{}' is not integrated with a virtual network: it has no vNIC.",
                    s.name
                ),
            )
        })?;
    Ok((w.netns.clone(), v.ifname.clone()))
}

/// The fabric namespace of a VNet.
pub fn fabric_namespace(
    state: &LabState,
    lab: &LabConfig,
    vnet: &ResourceId,
) -> Result<String, AzureError> {
    let l = Layout::new(state, lab);
    l.fabrics
        .iter()
        .find(|f| &f.vnet.id == vnet)
        .map(|f| f.netns.clone())
        .ok_or_else(|| not_found("virtual network", vnet))
}

/// Every plan instance (worker) as its stamp sees it: `(plan, instance,
/// stamp namespace, the worker's address on the stamp link)`. The stamp
/// SNATs each instance's internet flows to an outbound IP from a port range
/// of its own, so its conntrack entries from that address are the SNAT
/// ports the instance holds.
pub fn worker_uplinks(
    state: &LabState,
    lab: &LabConfig,
) -> Vec<(ResourceId, u32, String, std::net::Ipv4Addr)> {
    let l = Layout::new(state, lab);
    l.workers
        .iter()
        .map(|w| {
            (
                w.plan.clone(),
                w.instance,
                l.stamps[w.stamp].netns.clone(),
                w.pub0,
            )
        })
        .collect()
}

/// Every VM NIC of the lab, with its fabric.
pub fn vm_nics(state: &LabState, lab: &LabConfig) -> Vec<NicInFabric> {
    let l = Layout::new(state, lab);
    l.vms
        .iter()
        .flat_map(|vm| vm.nics.iter())
        .filter_map(|n| {
            Some(NicInFabric {
                nic: n.nic.clone(),
                subnet: l.inv.nic(&n.nic)?.subnet_id().clone(),
                addresses: n.addresses.clone(),
                fabric: l.fabrics[n.fabric].netns.clone(),
            })
        })
        .collect()
}

/// The whole kernel picture of a lab: internet, hosts, one stamp per region
/// with plans, one fabric per VNet, one worker per plan instance, one sandbox
/// per site per instance, one namespace per VM.
pub fn build(state: &LabState, lab: &LabConfig) -> NetworkPlan {
    let l = Layout::new(state, lab);
    let mut b = builder::Builder::new(&lab.name);
    internet::build(&l, lab, &mut b);
    stamp::build(&l, &mut b);
    fabric::build(&l, &mut b);
    fabric::build_peerings(&l, &mut b);
    gateway::build(&l, &mut b);
    worker::build(&l, &mut b);
    vm::build(&l, &mut b);
    dns::build(&l, &mut b);
    services::build(&l, &mut b);
    site_endpoint::build(&l, &mut b);
    frontend::build(&l, state, &mut b);
    let mut plan = b.finish();
    plan.startups = startup::specs(&l);
    plan
}

/// What `vnet-agent exec` runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecTarget {
    /// An app's sandbox on one instance; `site` is a name or a full id.
    App {
        site: String,
        instance: u32,
    },
    Vm {
        name: String,
    },
    Host {
        name: String,
    },
    /// An on-premises host (`Lab.Emulator/onPremisesHosts`).
    OnPremisesHost {
        name: String,
    },
    /// The router of an on-premises site: a local network gateway or an
    /// ExpressRoute circuit, by name.
    Site {
        name: String,
    },
    /// A virtual network gateway's namespace.
    Gateway {
        name: String,
    },
}

/// A namespace and the environment of a program run there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub netns: String,
    pub env: BTreeMap<String, String>,
    /// An app instance's process key (its startup results attach there).
    pub process_key: Option<String>,
    /// The resource `exec` enters (site, VM or internet host): what the
    /// caller must be authorized on.
    pub resource: ResourceId,
    /// The resource whose BGP speaker runs there (a gateway or a site).
    pub speaker: Option<ResourceId>,
}

/// Where `exec` runs: an app's sandbox with the app's environment
/// (WEBSITE_PRIVATE_IP, ...), or a VM's / host's namespace with an empty one.
pub fn exec_target(
    state: &LabState,
    lab: &LabConfig,
    target: &ExecTarget,
) -> Result<ExecSpec, AzureError> {
    let l = Layout::new(state, lab);
    match target {
        ExecTarget::App { site, instance } => {
            let sites: Vec<(&ResourceId, &str)> = l
                .inv
                .sites
                .iter()
                .map(|s| (&s.id, s.name.as_str()))
                .collect();
            let id = resolve(&sites, site, "Microsoft.Web/sites")?;
            let w = l.site_worker(l.inv.site(&id).expect("resolved"), *instance)?;
            let sb = w
                .sandboxes
                .iter()
                .find(|sb| sb.site.id == id)
                .expect("every site has a sandbox per worker");
            Ok(ExecSpec {
                netns: sb.netns.clone(),
                env: env::site_env(&l, w, sb),
                process_key: Some(names::instance_key(&id.key(), w.instance)),
                resource: id,
                speaker: None,
            })
        }
        ExecTarget::Vm { name } => {
            let vms: Vec<(&ResourceId, &str)> =
                l.vms.iter().map(|v| (&v.id, v.id.name())).collect();
            let id = resolve(&vms, name, "Microsoft.Compute/virtualMachines")?;
            let vm = l.vms.iter().find(|v| v.id == id).expect("resolved");
            Ok(ExecSpec {
                netns: vm.netns.clone(),
                env: BTreeMap::new(),
                process_key: None,
                resource: id,
                speaker: None,
            })
        }
        ExecTarget::Host { name } => {
            let hosts: Vec<(&ResourceId, &str)> =
                l.hosts.iter().map(|h| (&h.id, h.id.name())).collect();
            let id = resolve(&hosts, name, "Lab.Emulator/internetHosts")?;
            let h = l.hosts.iter().find(|h| h.id == id).expect("resolved");
            Ok(ExecSpec {
                netns: h.netns.clone(),
                env: BTreeMap::new(),
                process_key: None,
                resource: id,
                speaker: None,
            })
        }
        ExecTarget::OnPremisesHost { name } => {
            let hosts: Vec<(&ResourceId, &str, &str)> = l
                .gateways
                .sites
                .iter()
                .flat_map(|s| {
                    s.hosts
                        .iter()
                        .map(|h| (&h.id, h.id.name(), h.netns.as_str()))
                })
                .collect();
            let pairs: Vec<(&ResourceId, &str)> = hosts.iter().map(|(i, n, _)| (*i, *n)).collect();
            let id = resolve(&pairs, name, "Lab.Emulator/onPremisesHosts")?;
            let netns = hosts
                .iter()
                .find(|(i, _, _)| **i == id)
                .expect("resolved")
                .2;
            Ok(ExecSpec {
                netns: netns.to_string(),
                env: BTreeMap::new(),
                process_key: None,
                resource: id,
                speaker: None,
            })
        }
        ExecTarget::Site { name } => {
            let sites: Vec<(&ResourceId, &str)> = l
                .gateways
                .sites
                .iter()
                .map(|s| (&s.id, s.id.name()))
                .collect();
            let id = resolve(&sites, name, "Microsoft.Network/localNetworkGateways")?;
            let s = l
                .gateways
                .sites
                .iter()
                .find(|s| s.id == id)
                .expect("resolved");
            Ok(ExecSpec {
                netns: s.netns.clone(),
                env: BTreeMap::new(),
                process_key: None,
                speaker: s.bgp_address.map(|_| id.clone()),
                resource: id,
            })
        }
        ExecTarget::Gateway { name } => {
            let gws: Vec<(&ResourceId, &str)> = l
                .gateways
                .gateways
                .iter()
                .map(|g| (&g.gw.id, g.gw.name.as_str()))
                .collect();
            let id = resolve(&gws, name, "Microsoft.Network/virtualNetworkGateways")?;
            let g = l
                .gateways
                .gateways
                .iter()
                .find(|g| g.gw.id == id)
                .expect("resolved");
            Ok(ExecSpec {
                netns: g.netns.clone(),
                env: BTreeMap::new(),
                process_key: None,
                speaker: g.gw.enable_bgp.then(|| id.clone()),
                resource: id,
            })
        }
    }
}

/// A resource by full id or by (case-insensitive, unique) name.
fn resolve(
    items: &[(&ResourceId, &str)],
    wanted: &str,
    type_: &str,
) -> Result<ResourceId, AzureError> {
    let not_found = || {
        AzureError::not_found(
            "ResourceNotFound",
            format!("The resource '{wanted}' of type {type_} was not found."),
        )
    };
    if wanted.starts_with('/') {
        let id: ResourceId = wanted.parse()?;
        return items
            .iter()
            .find(|(i, _)| **i == id)
            .map(|(i, _)| (*i).clone())
            .ok_or_else(not_found);
    }
    let matches: Vec<&ResourceId> = items
        .iter()
        .filter(|(_, n)| n.eq_ignore_ascii_case(wanted))
        .map(|(i, _)| *i)
        .collect();
    match matches.as_slice() {
        [] => Err(not_found()),
        [one] => Ok((*one).clone()),
        many => Err(AzureError::bad_request(
            "AmbiguousResourceName",
            format!(
                "More than one {type_} is named '{wanted}': {}. Give the full id.",
                many.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
