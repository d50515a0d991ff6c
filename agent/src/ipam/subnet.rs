//! The addresses of one subnet: plan instances, Windows container sandboxes,
//! NICs; make-before-break moves and the cooldown of released addresses.

use std::net::Ipv4Addr;

use super::{
    lowest_free, reserved_reason, usable_count, usable_range, Allocations, Ctx, Holders, Move,
    PlanDemand, ReleasedAddress, SubnetDemand,
};
use crate::model::AzureError;

/// One App Service address slot: an instance, or a container app's sandbox on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Instance { plan: String, i: u32 },
    Container { plan: String, i: u32, site: String },
}

impl Slot {
    fn plan(&self) -> &str {
        match self {
            Slot::Instance { plan, .. } | Slot::Container { plan, .. } => plan,
        }
    }
    fn key(&self) -> String {
        match self {
            Slot::Instance { plan, i } => format!("{plan}/instances/{i}"),
            Slot::Container { plan, i, site } => format!("{plan}/instances/{i}/containers/{site}"),
        }
    }
    fn insert(&self, subnet: &str, a: Ipv4Addr, out: &mut Allocations) {
        match self {
            Slot::Instance { plan, i } => {
                out.instances
                    .entry(plan.clone())
                    .or_default()
                    .entry(subnet.to_string())
                    .or_default()
                    .insert(*i, a);
            }
            Slot::Container { plan, i, site } => {
                out.containers
                    .entry(plan.clone())
                    .or_default()
                    .entry(subnet.to_string())
                    .or_default()
                    .entry(*i)
                    .or_default()
                    .insert(site.clone(), a);
            }
        }
    }
    fn is_in(&self, subnet: &str, out: &Allocations) -> bool {
        match self {
            Slot::Instance { plan, i } => out.instance_ip(plan, subnet, *i).is_some(),
            Slot::Container { plan, i, site } => out.container_ip(plan, subnet, *i, site).is_some(),
        }
    }
}

/// The App Service addresses `previous` holds in subnet `subnet`.
fn previous_slots(previous: &Allocations, subnet: &str) -> Vec<(Slot, Ipv4Addr)> {
    let mut v = Vec::new();
    for (plan, by_subnet) in &previous.instances {
        for (i, a) in by_subnet.get(subnet).into_iter().flatten() {
            let plan = plan.clone();
            v.push((Slot::Instance { plan, i: *i }, *a));
        }
    }
    for (plan, by_subnet) in &previous.containers {
        for (i, sites) in by_subnet.get(subnet).into_iter().flatten() {
            for (site, a) in sites {
                let (plan, site) = (plan.clone(), site.clone());
                v.push((Slot::Container { plan, i: *i, site }, *a));
            }
        }
    }
    v
}

/// Every slot a plan wants in this subnet, in hand-out order: instances
/// first, then each instance's container sandboxes.
fn wanted_slots(p: &PlanDemand) -> Vec<Slot> {
    let plan = || p.key.clone();
    (0..p.capacity)
        .map(|i| Slot::Instance { plan: plan(), i })
        .chain((0..p.capacity).flat_map(|i| {
            p.containers.iter().map(move |c| Slot::Container {
                plan: p.key.clone(),
                i,
                site: c.site.clone(),
            })
        }))
        .collect()
}

/// Does demand `p` keep `slot` (same plan, not moving, still wanted)?
fn kept(slot: &Slot, s: &SubnetDemand, ctx: &Ctx) -> Option<String> {
    if ctx.moves.contains_key(slot.plan()) {
        return None;
    }
    let p = s.plans.iter().find(|p| p.key == slot.plan())?;
    let wanted = match slot {
        Slot::Instance { i, .. } => *i < p.capacity,
        Slot::Container { i, site, .. } => {
            *i < p.capacity && p.containers.iter().any(|c| &c.site == site)
        }
    };
    wanted.then(|| p.label.clone())
}

/// Count of addresses held during this change, by kind (for messages).
#[derive(Default)]
struct Census {
    /// Old addresses of plans moving now (held until the new ones are up).
    moving_old: u64,
    /// Released before and still cooling down.
    cooling: u64,
}

pub(super) fn allocate(
    s: &SubnetDemand,
    previous: &Allocations,
    ctx: &Ctx,
    out: &mut Allocations,
) -> Result<(), AzureError> {
    let usable = usable_count(s.prefix);
    let in_usable = |a: Ipv4Addr| s.prefix.contains(&a) && reserved_reason(s.prefix, a).is_none();
    let mut holders = Holders::new();
    let mut census = Census::default();
    let prev = previous_slots(previous, &s.key);
    // 1. Keep what was handed out before and is still wanted.
    for (slot, a) in &prev {
        if let Some(label) = kept(slot, s, ctx) {
            if in_usable(*a) && holders.take(*a, &slot.key(), &label).is_ok() {
                slot.insert(&s.key, *a, out);
            }
        }
    }
    for nic in s.nics.iter().filter(|n| n.static_address.is_none()) {
        if let Some(a) = previous.nic_addresses.get(&nic.key) {
            if in_usable(*a) && holders.take(*a, &nic.key, &nic.label).is_ok() {
                out.nic_addresses.insert(nic.key.clone(), *a);
            }
        }
    }
    // 2. What is released now is still held during this change
    //    (make-before-break), then cools down.
    let mut released = Vec::new();
    for (slot, a) in &prev {
        if kept(slot, s, ctx).is_some() || !in_usable(*a) {
            continue;
        }
        let label = format!("App Service plan {} (being released)", slot.plan());
        if holders.take(*a, &slot.key(), &label).is_ok() {
            if ctx.moves.contains_key(slot.plan()) {
                census.moving_old += 1;
            }
            released.push(ReleasedAddress {
                subnet: s.key.clone(),
                address: *a,
                plan: slot.plan().to_string(),
                released_at: ctx.now,
            });
        }
    }
    // 3. Released before and still cooling down: not free.
    for r in previous.releasing.iter().filter(|r| r.subnet == s.key) {
        let until = r.reusable_at(ctx.cooldown);
        if ctx.now >= until || !in_usable(r.address) {
            continue;
        }
        let label = format!(
            "an address cooling down until {until} (released by {})",
            r.plan
        );
        if holders
            .take(r.address, &format!("releasing/{}", r.address), &label)
            .is_ok()
        {
            census.cooling += 1;
            out.releasing.push(r.clone());
        }
    }
    // 4. Static NIC addresses.
    let range = usable_range(s.prefix);
    for nic in &s.nics {
        let Some(a) = nic.static_address else {
            continue;
        };
        let (first, last) = range.unwrap_or((s.prefix.network(), s.prefix.broadcast()));
        if !s.prefix.contains(&a) {
            return Err(AzureError::bad_request(
                "PrivateIPAddressNotInSubnet",
                format!(
                    "The static address {a} of {} is not in its subnet {} ({}). Pick an address from {first} to {last}.",
                    nic.label, s.label, s.prefix
                ),
            ));
        }
        if let Some(why) = reserved_reason(s.prefix, a) {
            return Err(AzureError::bad_request(
                "PrivateIPAddressIsReserved",
                format!(
                    "The static address {a} of {} is {why} of subnet {} and reserved by Azure. The first usable address is {first}.",
                    nic.label, s.label
                ),
            ));
        }
        holders.take(a, &nic.key, &nic.label).map_err(|holder| {
            AzureError::bad_request(
                "PrivateIPAddressInUse",
                format!(
                    "The static address {a} of {} is already used by {holder} in subnet {}. Pick another address.",
                    nic.label, s.label
                ),
            )
        })?;
        out.nic_addresses.insert(nic.key.clone(), a);
    }
    // 5. New addresses, lowest free first: plan instances and containers, then
    //    dynamic NICs. First check that they all fit.
    let new_slots: Vec<(Slot, String)> = s
        .plans
        .iter()
        .flat_map(|p| {
            wanted_slots(p)
                .into_iter()
                .map(|slot| (slot, p.label.clone()))
        })
        .filter(|(slot, _)| !slot.is_in(&s.key, out))
        .collect();
    let new_nics: Vec<_> = s
        .nics
        .iter()
        .filter(|n| !out.nic_addresses.contains_key(&n.key))
        .collect();
    let needed = (new_slots.len() + new_nics.len()) as u64;
    let free = usable.saturating_sub(holders.len());
    let too_small = || too_small(s, ctx, &census, needed, free, usable);
    if needed > free {
        return Err(too_small());
    }
    if needed > 0 {
        let (first, last) = range.ok_or_else(too_small)?;
        let mut cursor = u32::from(first);
        for (slot, label) in &new_slots {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(too_small)?;
            holders.take(a, &slot.key(), label).expect("a free address");
            slot.insert(&s.key, a, out);
        }
        for nic in new_nics {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(too_small)?;
            holders
                .take(a, &nic.key, &nic.label)
                .expect("a free address");
            out.nic_addresses.insert(nic.key.clone(), a);
        }
    }
    if ctx.cooldown > 0 {
        out.releasing.extend(released);
    }
    Ok(())
}

/// `SubnetIsFull` (the Network RP's code when a subnet cannot take more
/// addresses), saying how many are needed and free, and why.
fn too_small(
    s: &SubnetDemand,
    ctx: &Ctx,
    census: &Census,
    needed: u64,
    free: u64,
    usable: u64,
) -> AzureError {
    let moving = s
        .plans
        .iter()
        .find_map(|p| Some((p, ctx.moves.get(&p.key)?)));
    let why = match moving {
        Some((p, mv)) => {
            let per_instance = if p.containers.is_empty() {
                String::new()
            } else {
                format!(
                    " (1 per instance + 1 per Windows container app per instance: {} app(s))",
                    p.containers.len()
                )
            };
            let what = match mv {
                Move::Scale { from, to } if from.sku.eq_ignore_ascii_case(&to.sku) => format!(
                    "scaling {} from {} to {} instance(s)",
                    p.label, from.capacity, to.capacity
                ),
                Move::Scale { from, to } => format!(
                    "scaling {} from {} ({} instance(s)) to {} ({} instance(s))",
                    p.label, from.sku, from.capacity, to.sku, to.capacity
                ),
                Move::Upgrade => format!(
                    "a platform upgrade of {} ({} instance(s))",
                    p.label, p.capacity
                ),
            };
            format!(
                "{what} is make-before-break: the new instances need {} new address(es){per_instance} while the \
                 existing ones still hold their {} ({} at once)",
                p.addresses(),
                census.moving_old,
                p.addresses() + census.moving_old
            )
        }
        None => {
            let users: Vec<String> = s
                .plans
                .iter()
                .map(|p| {
                    if p.containers.is_empty() {
                        format!("{} with {} instance(s)", p.label, p.capacity)
                    } else {
                        format!(
                            "{} with {} instance(s) and {} Windows container app(s) ({} addresses)",
                            p.label,
                            p.capacity,
                            p.containers.len(),
                            p.addresses()
                        )
                    }
                })
                .chain(s.nics.iter().map(|n| n.label.clone()))
                .collect();
            format!("it is used by {}", users.join(", "))
        }
    };
    let in_use = usable.saturating_sub(free + census.cooling);
    AzureError::bad_request(
        "SubnetIsFull",
        format!(
            "Subnet '{}' with address prefix {} does not have enough capacity for {needed} IP address(es): {why}. \
             It has {usable} usable addresses (Azure reserves 5): {in_use} in use, {} cooling down after a recent \
             release, {free} free; {needed} are needed. To avoid any issues with subnet capacity, use a /26 with 64 \
             addresses (or larger), and leave room for scaling and platform upgrades.",
            s.label, s.prefix, census.cooling
        ),
    )
}
