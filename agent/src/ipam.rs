//! Addresses: Azure's 5 reserved per subnet, one per plan instance from the
//! integration subnet, static or dynamic VM NICs, public IPs from the lab pool.
//! Deterministic: the same state always yields the same addresses, and an
//! address once handed out is kept for as long as its owner wants it.
//!
//! Seed, "Subnet requirements": "the Azure subnet consumes five IPs from the
//! start. One address is used from the integration subnet for each App Service
//! plan instance."

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{AzureError, Inventory, IpAllocationMethod, LabConfig};

/// Every address handed out, persisted with the state so redeploys keep them.
/// Keys are lower-cased resource ids.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocations {
    /// Plan id -> integration subnet id -> instance -> address (WEBSITE_PRIVATE_IP).
    #[serde(default)]
    pub instances: BTreeMap<String, BTreeMap<String, BTreeMap<u32, Ipv4Addr>>>,
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
}

impl Allocations {
    /// The address of instance `instance` of `plan` in `subnet` (keys lower-cased).
    pub fn instance_ip(&self, plan: &str, subnet: &str, instance: u32) -> Option<Ipv4Addr> {
        self.instances
            .get(plan)?
            .get(subnet)?
            .get(&instance)
            .copied()
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

/// What one subnet must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetDemand {
    /// Lower-cased subnet id.
    pub key: String,
    /// For messages: the subnet's id as written.
    pub label: String,
    pub prefix: Ipv4Net,
    /// `(plan key, plan label, instance count)` integrated here.
    pub plans: Vec<(String, String, u32)>,
    pub nics: Vec<NicDemand>,
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
    pub subnets: Vec<SubnetDemand>,
    /// Plan keys that get outbound IPs.
    pub plans: Vec<String>,
    /// VNet keys that get a default outbound IP.
    pub vnets: Vec<String>,
    /// `(host key, host label, explicit address)`.
    pub hosts: Vec<(String, String, Option<Ipv4Addr>)>,
}

impl Demand {
    /// What a (validated) inventory needs.
    pub fn of(inv: &Inventory) -> Demand {
        let mut subnets: BTreeMap<String, SubnetDemand> = BTreeMap::new();
        let mut entry = |key: String, label: String, prefix: Ipv4Net| -> String {
            subnets.entry(key.clone()).or_insert_with(|| SubnetDemand {
                key: key.clone(),
                label,
                prefix,
                plans: Vec::new(),
                nics: Vec::new(),
            });
            key
        };
        let mut plan_needs = Vec::new();
        for plan in &inv.plans {
            for subnet_id in inv.plan_integrations(&plan.id) {
                if let Some((_, subnet, _)) = inv.subnet(&subnet_id) {
                    let k = entry(
                        subnet.id.key(),
                        subnet.id.to_string(),
                        subnet.address_prefix,
                    );
                    plan_needs.push((
                        k,
                        plan.id.key(),
                        format!("App Service plan '{}'", plan.name),
                        plan.capacity,
                    ));
                }
            }
        }
        let mut nic_needs = Vec::new();
        for nic in &inv.nics {
            for cfg in &nic.ip_configurations {
                if let Some((_, subnet, _)) = inv.subnet(&cfg.subnet_id) {
                    let k = entry(
                        subnet.id.key(),
                        subnet.id.to_string(),
                        subnet.address_prefix,
                    );
                    let static_address = (cfg.method == IpAllocationMethod::Static)
                        .then_some(cfg.static_address)
                        .flatten();
                    nic_needs.push((
                        k,
                        NicDemand {
                            key: cfg.key(&nic.id),
                            label: format!(
                                "network interface '{}' (ipConfiguration '{}')",
                                nic.name, cfg.name
                            ),
                            static_address,
                        },
                    ));
                }
            }
        }
        for (k, plan, label, cap) in plan_needs {
            subnets
                .get_mut(&k)
                .expect("entry made above")
                .plans
                .push((plan, label, cap));
        }
        for (k, nic) in nic_needs {
            subnets
                .get_mut(&k)
                .expect("entry made above")
                .nics
                .push(nic);
        }
        Demand {
            subnets: subnets.into_values().collect(),
            plans: inv.plans.iter().map(|p| p.id.key()).collect(),
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
        }
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
    /// Take `addr` for `key`; false when someone else holds it.
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

/// Hand out every address `demand` needs, keeping each still-valid address of
/// `previous`. New addresses are the lowest free ones, handed out in sorted
/// order of their owners, so the result depends only on the inputs.
pub fn allocate(
    demand: &Demand,
    previous: &Allocations,
    lab: &LabConfig,
) -> Result<Allocations, AzureError> {
    let mut out = Allocations::default();
    for subnet in &demand.subnets {
        allocate_subnet(subnet, previous, &mut out)?;
    }
    allocate_public(demand, previous, lab, &mut out)?;
    Ok(out)
}

fn allocate_subnet(
    s: &SubnetDemand,
    previous: &Allocations,
    out: &mut Allocations,
) -> Result<(), AzureError> {
    let usable = usable_count(s.prefix);
    let Some((first, last)) = usable_range(s.prefix) else {
        return Err(full(s, usable, "no usable addresses"));
    };
    let in_usable = |a: Ipv4Addr| s.prefix.contains(&a) && reserved_reason(s.prefix, a).is_none();
    let mut holders = Holders::new();
    // 1. Keep what was handed out before and is still wanted.
    for (plan, label, cap) in &s.plans {
        let prev = previous.instances.get(plan).and_then(|m| m.get(&s.key));
        for (i, a) in prev.into_iter().flatten() {
            let key = format!("{plan}/instances/{i}");
            if *i < *cap && in_usable(*a) && holders.take(*a, &key, label).is_ok() {
                out.instances
                    .entry(plan.clone())
                    .or_default()
                    .entry(s.key.clone())
                    .or_default()
                    .insert(*i, *a);
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
    // 2. Static NIC addresses.
    for nic in &s.nics {
        let Some(a) = nic.static_address else {
            continue;
        };
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
    // 3. New addresses, lowest free first: plan instances, then dynamic NICs.
    let needed: u64 = s.plans.iter().map(|p| u64::from(p.2)).sum::<u64>() + s.nics.len() as u64;
    let mut cursor = u32::from(first);
    for (plan, label, cap) in &s.plans {
        for i in 0..*cap {
            let map = out
                .instances
                .entry(plan.clone())
                .or_default()
                .entry(s.key.clone())
                .or_default();
            if map.contains_key(&i) {
                continue;
            }
            let a = lowest_free(&holders, &mut cursor, last)
                .ok_or_else(|| full(s, usable, &format!("{needed} are needed")))?;
            holders
                .take(a, &format!("{plan}/instances/{i}"), label)
                .expect("free address");
            map.insert(i, a);
        }
    }
    for nic in &s.nics {
        if out.nic_addresses.contains_key(&nic.key) {
            continue;
        }
        let a = lowest_free(&holders, &mut cursor, last)
            .ok_or_else(|| full(s, usable, &format!("{needed} are needed")))?;
        holders.take(a, &nic.key, &nic.label).expect("free address");
        out.nic_addresses.insert(nic.key.clone(), a);
    }
    Ok(())
}

fn full(s: &SubnetDemand, usable: u64, detail: &str) -> AzureError {
    let users: Vec<String> = s
        .plans
        .iter()
        .map(|(_, l, c)| format!("{l} with {c} instance(s)"))
        .chain(s.nics.iter().map(|n| n.label.clone()))
        .collect();
    AzureError::bad_request(
        "SubnetIsFull",
        format!(
            "Subnet {} ({}) has {usable} usable addresses (Azure reserves 5), but {detail}: {}. \
             Use a larger subnet (a /26 is recommended for App Service integration) or fewer instances.",
            s.label,
            s.prefix,
            users.join(", ")
        ),
    )
}

fn allocate_public(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn subnet(prefix: &str, plans: &[(&str, u32)], nics: &[(&str, Option<&str>)]) -> SubnetDemand {
        SubnetDemand {
            key: "s".into(),
            label: "s".into(),
            prefix: prefix.parse().unwrap(),
            plans: plans
                .iter()
                .map(|(p, c)| (p.to_string(), format!("plan {p}"), *c))
                .collect(),
            nics: nics
                .iter()
                .map(|(k, a)| NicDemand {
                    key: k.to_string(),
                    label: format!("nic {k}"),
                    static_address: a.map(ip),
                })
                .collect(),
        }
    }

    fn demand(subnets: Vec<SubnetDemand>) -> Demand {
        Demand {
            subnets,
            ..Default::default()
        }
    }

    #[test]
    fn two_instances_get_dot4_and_dot5() {
        let d = demand(vec![subnet("10.0.1.0/24", &[("p", 2)], &[])]);
        let a = allocate(&d, &Allocations::default(), &LabConfig::default()).unwrap();
        assert_eq!(a.instance_ip("p", "s", 0), Some(ip("10.0.1.4")));
        assert_eq!(a.instance_ip("p", "s", 1), Some(ip("10.0.1.5")));
    }

    #[test]
    fn a_slash_28_has_11_usable() {
        let p: Ipv4Net = "10.0.1.0/28".parse().unwrap();
        assert_eq!(usable_count(p), 11);
        assert_eq!(usable_range(p), Some((ip("10.0.1.4"), ip("10.0.1.14"))));
        let d = demand(vec![subnet("10.0.1.0/28", &[("p", 11)], &[])]);
        assert!(allocate(&d, &Allocations::default(), &LabConfig::default()).is_ok());
        let d = demand(vec![subnet("10.0.1.0/28", &[("p", 12)], &[])]);
        let e = allocate(&d, &Allocations::default(), &LabConfig::default()).unwrap_err();
        assert_eq!(e.code, "SubnetIsFull");
        assert!(e.message.contains("11 usable"), "{}", e.message);
    }

    #[test]
    fn redeploy_keeps_everything_and_scale_in_frees_the_highest() {
        let lab = LabConfig::default();
        let d = Demand {
            subnets: vec![subnet(
                "10.0.1.0/24",
                &[("p", 3)],
                &[("n1", None), ("n2", Some("10.0.1.100"))],
            )],
            plans: vec!["p".into()],
            vnets: vec!["v".into()],
            hosts: vec![
                ("h1".into(), "h1".into(), None),
                ("h2".into(), "h2".into(), Some(ip("198.18.100.10"))),
            ],
        };
        let a = allocate(&d, &Allocations::default(), &lab).unwrap();
        assert_eq!(allocate(&d, &a, &lab).unwrap(), a);
        assert_eq!(a.nic_addresses["n1"], ip("10.0.1.7"));
        assert_eq!(
            a.plan_outbound["p"],
            vec![ip("198.18.0.4"), ip("198.18.0.5")]
        );
        assert_eq!(a.vnet_outbound["v"], ip("198.18.0.6"));
        assert_eq!(a.host_addresses["h1"], ip("198.18.0.7"));
        // Scale in to 1: instance 0 keeps .4; the NIC keeps .7.
        let mut d2 = d.clone();
        d2.subnets[0].plans[0].2 = 1;
        let b = allocate(&d2, &a, &lab).unwrap();
        assert_eq!(b.instances["p"]["s"].len(), 1);
        assert_eq!(b.instance_ip("p", "s", 0), Some(ip("10.0.1.4")));
        assert_eq!(b.nic_addresses["n1"], ip("10.0.1.7"));
        // A new dynamic NIC takes the lowest address freed.
        d2.subnets[0].nics.push(NicDemand {
            key: "n3".into(),
            label: "n3".into(),
            static_address: None,
        });
        let c = allocate(&d2, &b, &lab).unwrap();
        assert_eq!(c.nic_addresses["n3"], ip("10.0.1.5"));
    }

    #[test]
    fn static_addresses_are_checked() {
        let lab = LabConfig::default();
        for (addr, code) in [
            ("10.0.2.4", "PrivateIPAddressNotInSubnet"),
            ("10.0.1.1", "PrivateIPAddressIsReserved"),
            ("10.0.1.3", "PrivateIPAddressIsReserved"),
            ("10.0.1.255", "PrivateIPAddressIsReserved"),
        ] {
            let d = demand(vec![subnet("10.0.1.0/24", &[], &[("n", Some(addr))])]);
            assert_eq!(
                allocate(&d, &Allocations::default(), &lab)
                    .unwrap_err()
                    .code,
                code,
                "{addr}"
            );
        }
        let d = demand(vec![subnet(
            "10.0.1.0/24",
            &[],
            &[("a", Some("10.0.1.9")), ("b", Some("10.0.1.9"))],
        )]);
        let e = allocate(&d, &Allocations::default(), &lab).unwrap_err();
        assert_eq!(e.code, "PrivateIPAddressInUse");
        assert!(e.message.contains("nic a"), "{}", e.message);
    }

    #[test]
    fn host_outside_the_pool_is_refused() {
        let d = Demand {
            hosts: vec![("h".into(), "host h".into(), Some(ip("8.8.8.8")))],
            ..Default::default()
        };
        let e = allocate(&d, &Allocations::default(), &LabConfig::default()).unwrap_err();
        assert_eq!(e.code, "PublicIPAddressNotInPool");
    }

    #[test]
    fn explicit_host_addresses_are_skipped_by_the_pool() {
        let d = Demand {
            plans: vec!["p".into()],
            hosts: vec![("h".into(), "host h".into(), Some(ip("198.18.0.4")))],
            ..Default::default()
        };
        let a = allocate(&d, &Allocations::default(), &LabConfig::default()).unwrap();
        assert_eq!(
            a.plan_outbound["p"],
            vec![ip("198.18.0.5"), ip("198.18.0.6")]
        );
    }

    #[test]
    fn allocations_round_trip_through_json() {
        let d = demand(vec![subnet("10.0.1.0/24", &[("p", 2)], &[("n", None)])]);
        let a = allocate(&d, &Allocations::default(), &LabConfig::default()).unwrap();
        let back: Allocations = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(a, back);
    }
}
