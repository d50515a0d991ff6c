//! Public addresses from the lab's pool: plans' outbound IPs, VNets' default
//! outbound IPs, internet hosts, public IP addresses, public IP prefixes and
//! the emulated services' addresses.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{lowest_free, Allocations, Demand, Holders};
use crate::model::{internet_host_address_problem, AzureError, LabConfig};

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
    for (pip, label) in &demand.public_ips {
        if let Some(a) = previous.public_ips.get(pip) {
            if in_range(*a) && holders.take(*a, pip, label).is_ok() {
                out.public_ips.insert(pip.clone(), *a);
            }
        }
    }
    for (svc, label) in &demand.services {
        if let Some(a) = previous.service_ips.get(svc) {
            if in_range(*a) && holders.take(*a, svc, label).is_ok() {
                out.service_ips.insert(svc.clone(), *a);
            }
        }
    }
    for (loc, label) in &demand.stamps {
        if let Some(a) = previous.stamp_inbound.get(loc) {
            if in_range(*a) && holders.take(*a, loc, label).is_ok() {
                out.stamp_inbound.insert(loc.clone(), *a);
            }
        }
    }
    for (prefix, label, len) in &demand.public_ip_prefixes {
        if let Some(block) = previous.public_ip_prefixes.get(prefix) {
            let fits = block.prefix_len() == *len
                && in_range(block.network())
                && in_range(block.broadcast())
                && block_free(&holders, *block);
            if fits {
                take_block(&mut holders, *block, prefix, label);
                out.public_ip_prefixes.insert(prefix.clone(), *block);
            }
        }
    }
    // 2. Explicit host addresses.
    for (host, label, explicit) in &demand.hosts {
        let Some(a) = *explicit else { continue };
        // Any public unicast address (a partner API at its real address);
        // inside the pool, not its network or broadcast address.
        let problem = internet_host_address_problem(a).or_else(|| {
            (a == pool.network() || a == pool.broadcast())
                .then_some("the network or broadcast address of the lab's public pool")
        });
        if let Some(problem) = problem {
            return Err(AzureError::bad_request(
                "InvalidInternetHostAddress",
                format!(
                    "The ipAddress {a} of {label} is {problem}. An internet host needs a public unicast IPv4 \
                     address (e.g. 203.0.113.77), or leave ipAddress out to get one from the lab's public pool {pool}."
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
    for (pip, label) in &demand.public_ips {
        if !out.public_ips.contains_key(pip) {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(exhausted)?;
            holders.take(a, pip, label).expect("free address");
            out.public_ips.insert(pip.clone(), a);
        }
    }
    for (svc, label) in &demand.services {
        if !out.service_ips.contains_key(svc) {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(exhausted)?;
            holders.take(a, svc, label).expect("free address");
            out.service_ips.insert(svc.clone(), a);
        }
    }
    for (prefix, label, len) in &demand.public_ip_prefixes {
        if out.public_ip_prefixes.contains_key(prefix) {
            continue;
        }
        let size = 1u64 << (32 - u32::from(*len));
        let mut start = u64::from(first).div_ceil(size) * size;
        let block = loop {
            if start + size - 1 > u64::from(u32::from(last)) {
                return Err(exhausted());
            }
            let block = Ipv4Net::new(Ipv4Addr::from(start as u32), *len).expect("length <= 32");
            if block_free(&holders, block) {
                break block;
            }
            start += size;
        };
        take_block(&mut holders, block, prefix, label);
        out.public_ip_prefixes.insert(prefix.clone(), block);
    }
    // Last, so that adding front ends moved no address handed out before.
    for (loc, label) in &demand.stamps {
        if !out.stamp_inbound.contains_key(loc) {
            let a = lowest_free(&holders, &mut cursor, last).ok_or_else(exhausted)?;
            holders.take(a, loc, label).expect("free address");
            out.stamp_inbound.insert(loc.clone(), a);
        }
    }
    Ok(())
}

fn block_free(holders: &Holders, block: Ipv4Net) -> bool {
    (u32::from(block.network())..=u32::from(block.broadcast()))
        .all(|a| holders.is_free(Ipv4Addr::from(a)))
}

fn take_block(holders: &mut Holders, block: Ipv4Net, key: &str, label: &str) {
    for a in u32::from(block.network())..=u32::from(block.broadcast()) {
        holders
            .take(Ipv4Addr::from(a), key, label)
            .expect("checked free");
    }
}
