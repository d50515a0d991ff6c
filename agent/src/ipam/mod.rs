//! Addresses: Azure's 5 reserved per subnet, one per plan instance from the
//! integration subnet (plus one per Windows container app per instance), static
//! or dynamic VM NICs, public IPs from the lab pool.
//!
//! Deterministic: the same state and the same `now` always yield the same
//! addresses. An address is kept for as long as its owner wants it, except
//! that a scale (a change of the plan's `sku.capacity` or SKU) or a platform
//! upgrade moves every instance of the plan to fresh addresses,
//! make-before-break, and the released addresses cool down before reuse.
//!
//! Seed, "Subnet requirements": "the Azure subnet consumes five IPs from the
//! start. One address is used from the integration subnet for each App Service
//! plan instance. [...] When you scale up/down in size or in/out in number of
//! instances, the required address space is doubled for a short period of
//! time. The scale operation adds the same number of new instances and then
//! deletes the existing instances. [...] Platform upgrades need free IP
//! addresses [...] after scale up, down, or in operations complete, there might
//! be a short period of time before IP addresses are released."

mod demand;
mod public;
mod subnet;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use demand::{
    is_windows_container, stamp_key, stamp_workers, worker_key, ContainerDemand, Demand, NicDemand,
    PlanDemand, SubnetDemand,
};

use crate::model::{AzureError, Inventory, LabConfig, LabState, ResourceId};

/// Every address handed out, persisted with the state so redeploys keep them.
/// Keys are lower-cased resource ids.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocations {
    /// Plan id -> integration subnet id -> instance -> address (WEBSITE_PRIVATE_IP).
    #[serde(default)]
    pub instances: BTreeMap<String, BTreeMap<String, BTreeMap<u32, Ipv4Addr>>>,
    /// Plan id -> integration subnet id -> instance -> site id -> the address of
    /// that Windows container app's sandbox on that instance (seed, "Subnet
    /// requirements": "Windows Containers uses an additional IP address per app
    /// for each App Service plan instance").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: ContainerMap,
    /// `<nic id>/ipconfigurations/<name>` -> private address.
    #[serde(default)]
    pub nic_addresses: BTreeMap<String, Ipv4Addr>,
    /// Plan id -> its outbound IPs (`outboundIpAddresses`), from the public pool.
    #[serde(default)]
    pub plan_outbound: BTreeMap<String, Vec<Ipv4Addr>>,
    /// VNet id -> its default outbound access address, from the public pool.
    #[serde(default)]
    pub vnet_outbound: BTreeMap<String, Ipv4Addr>,
    /// Internet host id -> its address (explicit or from the pool).
    #[serde(default)]
    pub host_addresses: BTreeMap<String, Ipv4Addr>,
    /// `Microsoft.Network/publicIPAddresses` id -> its address (`properties.ipAddress`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub public_ips: BTreeMap<String, Ipv4Addr>,
    /// `Microsoft.Network/publicIPPrefixes` id -> its block (`properties.ipPrefix`),
    /// aligned to its length inside the lab's pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub public_ip_prefixes: BTreeMap<String, Ipv4Net>,
    /// Emulated service (storage account, key vault, registry) id -> its
    /// public address, from the pool (what its public names resolve to).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_ips: BTreeMap<String, Ipv4Addr>,
    /// Location (lower-cased) -> the App Service stamp's inbound address
    /// (`inboundIpAddress` of its sites), from the pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stamp_inbound: BTreeMap<String, Ipv4Addr>,
    /// Plan id -> the size its instances were placed for; a different size
    /// next time is a scale.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plan_sizes: BTreeMap<String, PlanSize>,
    /// App Service addresses released by a scale, an upgrade or a disconnect,
    /// still cooling down (sorted by subnet, then address). Not handed out
    /// again before `released_at + LabConfig::address_cooldown_secs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releasing: Vec<ReleasedAddress>,
    /// Plan key -> site key -> the site's sandbox slot on the plan's
    /// workers (its link address, routing table and front-end port). Kept
    /// for the site's life: deleting or adding a site moves no other site's
    /// sandbox, so no other app's flows break.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sandbox_slots: BTreeMap<String, BTreeMap<String, u32>>,
    /// Stamp key -> worker key (`<plan key>/<instance>`) -> its slot on the
    /// stamp's public side: scaling or deleting one plan moves no other
    /// plan's workers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub worker_slots: BTreeMap<String, BTreeMap<String, u32>>,
}

/// Slots that stay with their owner: the ones in `previous` are kept, new
/// owners (in `wanted`'s order) take the lowest free ones. A state from
/// before slots were kept gets the positions it had.
fn stable_slots(
    previous: Option<&BTreeMap<String, u32>>,
    wanted: &[String],
) -> BTreeMap<String, u32> {
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    if let Some(prev) = previous {
        for w in wanted {
            if let Some(&slot) = prev.get(w) {
                out.insert(w.clone(), slot);
            }
        }
    }
    let mut used: std::collections::BTreeSet<u32> = out.values().copied().collect();
    let mut next = 0;
    for w in wanted {
        if out.contains_key(w) {
            continue;
        }
        while used.contains(&next) {
            next += 1;
        }
        used.insert(next);
        out.insert(w.clone(), next);
    }
    out
}

fn slots_of(
    wanted: &BTreeMap<String, Vec<String>>,
    previous: &BTreeMap<String, BTreeMap<String, u32>>,
) -> BTreeMap<String, BTreeMap<String, u32>> {
    wanted
        .iter()
        .map(|(k, owners)| (k.clone(), stable_slots(previous.get(k), owners)))
        .collect()
}

/// Plan id -> subnet id -> instance -> site id -> address.
pub type ContainerMap =
    BTreeMap<String, BTreeMap<String, BTreeMap<u32, BTreeMap<String, Ipv4Addr>>>>;

impl Allocations {
    /// The inbound address of `site` (its plan's stamp), once allocated.
    pub fn site_inbound(&self, inv: &Inventory, site: &crate::model::Site) -> Option<Ipv4Addr> {
        let plan = inv.plan(&site.server_farm_id)?;
        self.stamp_inbound.get(&stamp_key(&plan.location)).copied()
    }

    /// The sandbox slots of `sites` (keys, in the planner's order) on
    /// `plan`'s workers: the kept ones, and free ones for sites the state
    /// holds no slot for (a state from before slots were kept, or edited by
    /// hand), never one already taken.
    pub fn sandbox_slots_of(&self, plan: &str, sites: &[String]) -> BTreeMap<String, u32> {
        stable_slots(self.sandbox_slots.get(plan), sites)
    }

    /// The public-side slots of a stamp's workers (`worker_key`s, in the
    /// planner's order), as [`Allocations::sandbox_slots_of`].
    pub fn worker_slots_of(&self, stamp: &str, workers: &[String]) -> BTreeMap<String, u32> {
        stable_slots(self.worker_slots.get(stamp), workers)
    }

    /// The address of instance `instance` of `plan` in `subnet` (keys lower-cased).
    pub fn instance_ip(&self, plan: &str, subnet: &str, instance: u32) -> Option<Ipv4Addr> {
        self.instances
            .get(plan)?
            .get(subnet)?
            .get(&instance)
            .copied()
    }

    /// The address of Windows container app `site` on instance `instance` of
    /// `plan` in `subnet` (keys lower-cased).
    pub fn container_ip(
        &self,
        plan: &str,
        subnet: &str,
        instance: u32,
        site: &str,
    ) -> Option<Ipv4Addr> {
        self.containers
            .get(plan)?
            .get(subnet)?
            .get(&instance)?
            .get(site)
            .copied()
    }

    /// Addresses of `plan` still cooling down.
    pub fn releasing_of<'a>(&'a self, plan: &'a str) -> impl Iterator<Item = &'a ReleasedAddress> {
        self.releasing.iter().filter(move |r| r.plan == plan)
    }
}

/// The size of a plan: a change of any of these is a scale (up/down for the
/// SKU, in/out for the capacity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSize {
    /// `sku.name`, e.g. `P1v3`.
    pub sku: String,
    /// `sku.tier`, e.g. `PremiumV3`.
    pub tier: String,
    /// `sku.capacity`.
    pub capacity: u32,
}

impl PlanSize {
    /// Same size (SKU names and tiers compare case-insensitively, as ARM does).
    pub fn same_as(&self, other: &PlanSize) -> bool {
        self.capacity == other.capacity
            && self.sku.eq_ignore_ascii_case(&other.sku)
            && self.tier.eq_ignore_ascii_case(&other.tier)
    }
}

/// An App Service address given back, waiting for its cooldown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedAddress {
    /// Lower-cased subnet id.
    pub subnet: String,
    pub address: Ipv4Addr,
    /// Lower-cased id of the plan that held it.
    pub plan: String,
    /// When it was released (the daemon's `now`, seconds).
    pub released_at: u64,
}

impl ReleasedAddress {
    /// First second at which the address may be handed out again.
    pub fn reusable_at(&self, cooldown_secs: u64) -> u64 {
        self.released_at.saturating_add(cooldown_secs)
    }
}

/// Every public address of a NAT gateway: its public IPs, then every address
/// of its prefixes, in the order written (AZURE-FACTS §4: "all its addresses count").
pub fn nat_gateway_addresses(a: &Allocations, g: &crate::model::NatGateway) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = g
        .public_ip_ids
        .iter()
        .filter_map(|id| a.public_ips.get(&id.key()).copied())
        .collect();
    for id in &g.public_ip_prefix_ids {
        if let Some(block) = a.public_ip_prefixes.get(&id.key()) {
            out.extend(block.hosts_all());
        }
    }
    out
}

/// All addresses of a block, network and broadcast included (a public IP
/// prefix hands out every address).
trait HostsAll {
    fn hosts_all(&self) -> Vec<Ipv4Addr>;
}

impl HostsAll for Ipv4Net {
    fn hosts_all(&self) -> Vec<Ipv4Addr> {
        (u32::from(self.network())..=u32::from(self.broadcast()))
            .map(Ipv4Addr::from)
            .collect()
    }
}

/// Number of addresses Azure keeps in every subnet (network, .1, .2, .3, broadcast).
pub const RESERVED_PER_SUBNET: u64 = 5;

/// The first and last usable address of a subnet: `.4` up to broadcast - 1.
/// `None` when nothing is usable (smaller than /29).
pub fn usable_range(prefix: Ipv4Net) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let net = u32::from(prefix.network());
    let bcast = u32::from(prefix.broadcast());
    (prefix.prefix_len() <= 29).then(|| (Ipv4Addr::from(net + 4), Ipv4Addr::from(bcast - 1)))
}

/// Usable addresses of a subnet: 2^(32-n) - 5 (a /28 has 11).
pub fn usable_count(prefix: Ipv4Net) -> u64 {
    let size = 1u64 << (32 - u32::from(prefix.prefix_len()));
    size.saturating_sub(RESERVED_PER_SUBNET)
}

/// Why an address of a subnet is not usable, if it is not.
pub fn reserved_reason(prefix: Ipv4Net, addr: Ipv4Addr) -> Option<&'static str> {
    let a = u32::from(addr);
    let net = u32::from(prefix.network());
    match a.wrapping_sub(net) {
        0 => Some("the network address"),
        1 => Some("the default gateway (.1)"),
        2 | 3 => Some("mapped to Azure DNS (.2 and .3)"),
        _ if addr == prefix.broadcast() => Some("the broadcast address"),
        _ => None,
    }
}

/// How the addresses of one subnet are used right now (for views).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubnetUsage {
    /// 2^(32-n) - 5.
    pub usable: u64,
    /// Held by plan instances, Windows containers and NICs.
    pub used: u64,
    /// Released, not reusable before their cooldown ends (at `now`).
    pub cooling_down: u64,
    /// `usable - used - cooling_down`.
    pub free: u64,
}

/// Usage of subnet `subnet` (lower-cased id, prefix `prefix`) at `now`;
/// `now = None` counts every listed released address as cooling down.
pub fn subnet_usage(
    a: &Allocations,
    subnet: &str,
    prefix: Ipv4Net,
    cooldown_secs: u64,
    now: Option<u64>,
) -> SubnetUsage {
    let instances = a
        .instances
        .values()
        .filter_map(|m| m.get(subnet))
        .map(|m| m.len() as u64)
        .sum::<u64>();
    let containers = a
        .containers
        .values()
        .filter_map(|m| m.get(subnet))
        .flat_map(|m| m.values())
        .map(|m| m.len() as u64)
        .sum::<u64>();
    let nics = a
        .nic_addresses
        .values()
        .filter(|ip| prefix.contains(*ip))
        .count() as u64;
    let cooling_down = a
        .releasing
        .iter()
        .filter(|r| r.subnet == subnet)
        .filter(|r| now.is_none_or(|t| t < r.reusable_at(cooldown_secs)))
        .count() as u64;
    let usable = usable_count(prefix);
    let used = instances + containers + nics;
    SubnetUsage {
        usable,
        used,
        cooling_down,
        free: usable.saturating_sub(used + cooling_down),
    }
}

/// Addresses in use within one range, with who holds each (for messages).
struct Holders {
    held: BTreeMap<Ipv4Addr, (String, String)>,
}

impl Holders {
    fn new() -> Self {
        Holders {
            held: BTreeMap::new(),
        }
    }
    /// Take `addr` for `key`; Err(holder's label) when someone else holds it.
    fn take(&mut self, addr: Ipv4Addr, key: &str, label: &str) -> Result<(), String> {
        match self.held.get(&addr) {
            Some((k, _)) if k == key => Ok(()),
            Some((_, l)) => Err(l.clone()),
            None => {
                self.held.insert(addr, (key.to_string(), label.to_string()));
                Ok(())
            }
        }
    }
    fn is_free(&self, addr: Ipv4Addr) -> bool {
        !self.held.contains_key(&addr)
    }
    fn len(&self) -> u64 {
        self.held.len() as u64
    }
}

/// Lowest free address in `[first, last]`, starting the search at `*cursor`.
fn lowest_free(holders: &Holders, cursor: &mut u32, last: Ipv4Addr) -> Option<Ipv4Addr> {
    while *cursor <= u32::from(last) {
        let a = Ipv4Addr::from(*cursor);
        *cursor += 1;
        if holders.is_free(a) {
            return Some(a);
        }
    }
    None
}

/// Why a plan's instances all move to fresh addresses in this change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Move {
    /// Its size changed (seed: "adds the same number of new instances and then
    /// deletes the existing instances").
    Scale { from: PlanSize, to: PlanSize },
    /// A platform upgrade of the same size.
    Upgrade,
}

/// The time and the plans on the move, shared by every subnet.
pub(crate) struct Ctx {
    pub now: u64,
    pub cooldown: u64,
    /// Plan key -> why it moves.
    pub moves: BTreeMap<String, Move>,
}

/// Hand out every address `demand` needs at time `now` (seconds), keeping each
/// still-valid address of `previous`. New addresses are the lowest free ones
/// (never one still cooling down), handed out in sorted order of their owners,
/// so the result depends only on the inputs.
///
/// A plan whose size differs from the one recorded in `previous` is scaled:
/// all its instances get new addresses while the old ones are still held
/// (the subnet must fit both at once), then the old ones start cooling down.
pub fn allocate(
    demand: &Demand,
    previous: &Allocations,
    lab: &LabConfig,
    now: u64,
) -> Result<Allocations, AzureError> {
    allocate_with(demand, previous, lab, now, None)
}

fn allocate_with(
    demand: &Demand,
    previous: &Allocations,
    lab: &LabConfig,
    now: u64,
    upgrade: Option<&str>,
) -> Result<Allocations, AzureError> {
    let mut moves = BTreeMap::new();
    for (plan, size) in &demand.sizes {
        if upgrade == Some(plan.as_str()) {
            moves.insert(plan.clone(), Move::Upgrade);
        } else if let Some(old) = previous.plan_sizes.get(plan) {
            if !old.same_as(size) {
                let (from, to) = (old.clone(), size.clone());
                moves.insert(plan.clone(), Move::Scale { from, to });
            }
        }
    }
    let ctx = Ctx {
        now,
        cooldown: lab.address_cooldown_secs,
        moves,
    };
    let mut out = Allocations {
        plan_sizes: demand.sizes.clone(),
        sandbox_slots: slots_of(&demand.plan_sites, &previous.sandbox_slots),
        worker_slots: slots_of(&demand.stamp_workers, &previous.worker_slots),
        ..Default::default()
    };
    for subnet in &demand.subnets {
        subnet::allocate(subnet, previous, &ctx, &mut out)?;
    }
    out.releasing.sort();
    public::allocate(demand, previous, lab, &mut out)?;
    Ok(out)
}

/// A platform upgrade of App Service plan `plan_id` at `now`: like a scale to
/// the same size, every instance (and Windows container sandbox) moves to a
/// new address of its integration subnet while the old ones are still held,
/// then the old ones cool down (seed, "Subnet requirements": "Platform
/// upgrades need free IP addresses to ensure upgrades can happen without
/// interruptions to outbound traffic"). Fails with `SubnetIsFull` when the
/// subnet cannot hold old and new at once.
pub fn platform_upgrade(
    state: &LabState,
    plan_id: &ResourceId,
    lab: &LabConfig,
    now: u64,
) -> Result<LabState, AzureError> {
    let inv = Inventory::parse(&state.resources)?;
    let plan = inv.plan(plan_id).ok_or_else(|| {
        AzureError::not_found(
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.Web/serverfarms/{}' under resource group '{}' was not found.",
                plan_id.name(),
                plan_id.resource_group
            ),
        )
    })?;
    let mut next = state.clone();
    next.allocations = allocate_with(
        &Demand::of(&inv),
        &state.allocations,
        lab,
        now,
        Some(&plan.id.key()),
    )?;
    next.generation = state.generation + 1;
    Ok(next)
}
