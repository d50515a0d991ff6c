//! What a (validated) inventory needs: addresses per subnet, public addresses,
//! and the size of every plan.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::PlanSize;
use crate::model::{Inventory, IpAllocationMethod, ServerFarm, Site};

/// What one subnet must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetDemand {
    /// Lower-cased subnet id.
    pub key: String,
    /// For messages: the subnet's id as written.
    pub label: String,
    pub prefix: Ipv4Net,
    /// Plans integrated here.
    pub plans: Vec<PlanDemand>,
    pub nics: Vec<NicDemand>,
}

/// One plan integrated with a subnet: one address per instance, plus one per
/// Windows container app per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDemand {
    /// Lower-cased plan id.
    pub key: String,
    /// For messages, e.g. `App Service plan 'plan1'`.
    pub label: String,
    /// Instance count (`sku.capacity`).
    pub capacity: u32,
    /// Windows container apps of this plan integrated with this subnet, by key.
    pub containers: Vec<ContainerDemand>,
}

impl PlanDemand {
    /// Addresses this plan holds in the subnet: (1 + containers) x instances.
    pub fn addresses(&self) -> u64 {
        u64::from(self.capacity) * (1 + self.containers.len() as u64)
    }
}

/// A Windows container app: its sandbox gets its own address on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDemand {
    /// Lower-cased site id.
    pub site: String,
    pub label: String,
}

/// One NIC IP configuration in a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicDemand {
    /// `<nic id>/ipconfigurations/<name>`, lower-cased.
    pub key: String,
    pub label: String,
    pub static_address: Option<Ipv4Addr>,
}

/// Everything that needs an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    /// Every subnet of every VNet (also those nobody uses: addresses released
    /// there still cool down), sorted by key.
    pub subnets: Vec<SubnetDemand>,
    /// Plan keys that get outbound IPs.
    pub plans: Vec<String>,
    /// Plan key -> its size now.
    pub sizes: BTreeMap<String, PlanSize>,
    /// VNet keys that get a default outbound IP.
    pub vnets: Vec<String>,
    /// `(host key, host label, explicit address)`.
    pub hosts: Vec<(String, String, Option<Ipv4Addr>)>,
    /// `(public IP key, label)`: one address each from the pool.
    pub public_ips: Vec<(String, String)>,
    /// `(public IP prefix key, label, prefix length)`: an aligned block each.
    pub public_ip_prefixes: Vec<(String, String, u8)>,
    /// `(service key, label)`: one public address each (storage accounts,
    /// key vaults, registries).
    pub services: Vec<(String, String)>,
    /// `(location key, label)`: one inbound address per App Service stamp
    /// (region with a plan), what `NAME.azurewebsites.net` resolves to.
    pub stamps: Vec<(String, String)>,
    /// Plan key -> its sites' keys, in the planner's order: each gets a
    /// sandbox slot on the plan's workers.
    pub plan_sites: BTreeMap<String, Vec<String>>,
    /// Stamp (location) key -> its workers (`<plan key>/<instance>`), in the
    /// planner's order: each gets a slot on the stamp's public side.
    pub stamp_workers: BTreeMap<String, Vec<String>>,
}

/// A Windows container app: a site on a Windows plan that either runs a
/// container (`properties.siteConfig.windowsFxVersion` = `DOCKER|<image>`, what
/// ARM and `az webapp create --deployment-container-image-name` write) or
/// lives on a Hyper-V plan (`properties.hyperV`, formerly `isXenon`, which only
/// hosts Windows containers).
pub fn is_windows_container(site: &Site, plan: &ServerFarm) -> bool {
    let docker = site.windows_fx_version.as_deref().is_some_and(|v| {
        v.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("DOCKER|"))
    });
    !plan.is_linux && (plan.hyper_v || docker)
}

impl Demand {
    /// What a (validated) inventory needs.
    pub fn of(inv: &Inventory) -> Demand {
        let mut subnets: BTreeMap<String, SubnetDemand> = BTreeMap::new();
        for vnet in &inv.vnets {
            for subnet in &vnet.subnets {
                subnets
                    .entry(subnet.id.key())
                    .or_insert_with(|| SubnetDemand {
                        key: subnet.id.key(),
                        label: subnet.id.to_string(),
                        prefix: subnet.address_prefix,
                        plans: Vec::new(),
                        nics: Vec::new(),
                    });
            }
        }
        for plan in &inv.plans {
            for subnet_id in inv.plan_integrations(&plan.id) {
                let Some(s) = subnets.get_mut(&subnet_id.key()) else {
                    continue;
                };
                let mut containers: Vec<ContainerDemand> = inv
                    .sites_of_plan(&plan.id)
                    .filter(|site| site.subnet_id.as_ref() == Some(&subnet_id))
                    .filter(|site| is_windows_container(site, plan))
                    .map(|site| ContainerDemand {
                        site: site.id.key(),
                        label: format!("Windows container app '{}'", site.name),
                    })
                    .collect();
                containers.sort_by(|a, b| a.site.cmp(&b.site));
                s.plans.push(PlanDemand {
                    key: plan.id.key(),
                    label: format!("App Service plan '{}'", plan.name),
                    capacity: plan.capacity,
                    containers,
                });
            }
        }
        for nic in &inv.nics {
            for cfg in &nic.ip_configurations {
                let Some(s) = subnets.get_mut(&cfg.subnet_id.key()) else {
                    continue;
                };
                let static_address = (cfg.method == IpAllocationMethod::Static)
                    .then_some(cfg.static_address)
                    .flatten();
                let label = match &nic.private_endpoint {
                    Some(pe) => format!(
                        "private endpoint '{}' (network interface '{}')",
                        pe.name(),
                        nic.name
                    ),
                    None => format!(
                        "network interface '{}' (ipConfiguration '{}')",
                        nic.name, cfg.name
                    ),
                };
                s.nics.push(NicDemand {
                    key: cfg.key(&nic.id),
                    label,
                    static_address,
                });
            }
        }
        Demand {
            subnets: subnets.into_values().collect(),
            plans: inv.plans.iter().map(|p| p.id.key()).collect(),
            sizes: inv
                .plans
                .iter()
                .map(|p| {
                    let size = PlanSize {
                        sku: p.sku_name.clone(),
                        tier: p.tier.clone(),
                        capacity: p.capacity,
                    };
                    (p.id.key(), size)
                })
                .collect(),
            vnets: inv.vnets.iter().map(|v| v.id.key()).collect(),
            hosts: inv
                .hosts
                .iter()
                .map(|h| {
                    (
                        h.id.key(),
                        format!("internet host '{}'", h.name),
                        h.ip_address,
                    )
                })
                .collect(),
            public_ips: inv
                .public_ips
                .iter()
                .map(|p| (p.id.key(), format!("public IP address '{}'", p.name)))
                .collect(),
            public_ip_prefixes: inv
                .public_ip_prefixes
                .iter()
                .map(|p| {
                    (
                        p.id.key(),
                        format!("public IP prefix '{}'", p.name),
                        p.prefix_length,
                    )
                })
                .collect(),
            services: inv
                .services
                .iter()
                .map(|s| {
                    (
                        s.id.key(),
                        format!("{} '{}'", s.kind.resource_type(), s.name),
                    )
                })
                .collect(),
            stamps: {
                let mut locs: Vec<(String, String)> = inv
                    .plans
                    .iter()
                    .map(|p| {
                        (
                            stamp_key(&p.location),
                            format!(
                                "the inbound address of the App Service stamp in {}",
                                p.location
                            ),
                        )
                    })
                    .collect();
                locs.sort();
                locs.dedup_by(|a, b| a.0 == b.0);
                locs
            },
            plan_sites: inv
                .plans
                .iter()
                .map(|p| {
                    let sites = inv.sites_of_plan(&p.id).map(|s| s.id.key()).collect();
                    (p.id.key(), sites)
                })
                .collect(),
            stamp_workers: stamp_workers(inv),
        }
    }
}

/// The allocation key of a region's stamp (its location, lower-cased).
/// Stamp (location) key -> its workers' keys, in the planner's order (plans
/// as the inventory lists them, instances in order): what the stamp's
/// public-side slots are kept for.
pub fn stamp_workers(inv: &Inventory) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &inv.plans {
        let workers = m.entry(stamp_key(&p.location)).or_default();
        workers.extend((0..p.capacity).map(|i| worker_key(&p.id.key(), i)));
    }
    m
}

/// The key of instance `instance` of plan `plan` (a plan key) among its
/// stamp's workers.
pub fn worker_key(plan: &str, instance: u32) -> String {
    format!("{plan}/{instance}")
}

pub fn stamp_key(location: &str) -> String {
    location.to_ascii_lowercase()
}
