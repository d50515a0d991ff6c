//! Public addresses from the lab's pool: plans' outbound IPs, VNets' default
//! outbound IPs, internet hosts.

use std::net::Ipv4Addr;

use super::{lowest_free, Allocations, Demand, Holders};
use crate::model::{AzureError, LabConfig};

pub(super) fn allocate(
    demand: &Demand,
    previous: &Allocations,
    lab: &LabConfig,
    out: &mut Allocations,
) -> Result<(), AzureError> {
    let pool = lab.public_pool;
    let per_plan = lab.outbound_ips_per_plan as usize;
    let first = u32::from(pool.network()).saturating_add(4);
    let last = Ipv4Addr::from(u32::from(pool.broadcast()).saturating_sub(1));
    let in_range = |a: Ipv4Addr| u32::from(a) >= first && a <= last;
    let mut holders = Holders::new();
    // 1. Keep what was handed out before.
    for plan in &demand.plans {
        let prev = previous
            .plan_outbound
            .get(plan)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let label = format!("the outbound addresses of plan {plan}");
        let kept: Vec<Ipv4Addr> = prev
            .iter()
            .copied()
            .filter(|a| in_range(*a) && holders.take(*a, plan, &label).is_ok())
            .take(per_plan)
            .collect();
        out.plan_outbound.insert(plan.clone(), kept);
    }
    for vnet in &demand.vnets {
        if let Some(a) = previous.vnet_outbound.get(vnet) {
            if in_range(*a)
                && holders
                    .take(*a, vnet, &format!("the default outbound address of {vnet}"))
                    .is_ok()
            {
                out.vnet_outbound.insert(vnet.clone(), *a);
            }
        }
    }
    for (host, label, explicit) in &demand.hosts {
        if explicit.is_none() {
            if let Some(a) = previous.host_addresses.get(host) {
                if in_range(*a) && holders.take(*a, host, label).is_ok() {
                    out.host_addresses.insert(host.clone(), *a);
                }
            }
        }
    }
    // 2. Explicit host addresses.
    for (host, label, explicit) in &demand.hosts {
        let Some(a) = *explicit else { continue };
        if !pool.contains(&a) || a == pool.network() || a == pool.broadcast() {
            return Err(AzureError::bad_request(
                "PublicIPAddressNotInPool",
                format!(
                    "The ipAddress {a} of {label} is not a host address of the lab's public pool {pool}. \
                     Pick an address inside the pool, or leave ipAddress out to get one."
                ),
            ));
        }
        holders.take(a, host, label).map_err(|holder| {
            AzureError::bad_request(
                "PublicIPAddressInUse",
                format!("The ipAddress {a} of {label} is already used by {holder}. Pick another address."),
            )
        })?;
        out.host_addresses.insert(host.clone(), a);
    }
    // 3. New addresses, lowest free first.
    let exhausted = || {
        AzureError::bad_request(
            "PublicIPCountLimitReached",
            format!(
                "The lab's public pool {pool} has no free address left. Configure a larger pool."
            ),
        )
    };
    let mut cursor = first;
    for plan in &demand.plans {
        let label = format!("the outbound addresses of plan {plan}");
        while out.plan_outbound[plan].len() < per_plan {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(exhausted)?;
            holders.take(a, plan, &label).expect("free address");
            out.plan_outbound
                .get_mut(plan)
                .expect("inserted above")
                .push(a);
        }
    }
    for vnet in &demand.vnets {
        if !out.vnet_outbound.contains_key(vnet) {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(exhausted)?;
            holders.take(a, vnet, vnet).expect("free address");
            out.vnet_outbound.insert(vnet.clone(), a);
        }
    }
    for (host, label, _) in &demand.hosts {
        if !out.host_addresses.contains_key(host) {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(exhausted)?;
            holders.take(a, host, label).expect("free address");
            out.host_addresses.insert(host.clone(), a);
        }
    }
    Ok(())
}
