//! Network security group rules (AZURE-FACTS §3): every rule well formed,
//! priorities unique per direction, names unique, references to NSGs and
//! application security groups resolvable and in the same region. A
//! reference that only the request removed is an in-use conflict.

use std::collections::BTreeMap;

use crate::model::{AddressMatch, AzureError, Direction, Inventory, ResourceId};

fn missing(old: &Inventory, id: &ResourceId, by: &str, asg: bool) -> AzureError {
    let (kind, in_use) = if asg {
        (
            "application security group",
            "InUseApplicationSecurityGroupCannotBeDeleted",
        )
    } else {
        (
            "network security group",
            "InUseNetworkSecurityGroupCannotBeDeleted",
        )
    };
    let existed = if asg {
        old.asg(id).is_some()
    } else {
        old.nsg(id).is_some()
    };
    if existed {
        AzureError::bad_request(
            in_use,
            format!("The {kind} '{id}' is in use by {by} and cannot be deleted. Remove the reference first."),
        )
    } else {
        AzureError::bad_request(
            "InvalidResourceReference",
            format!("The {kind} '{id}' referenced by {by} was not found. Check its name and resource group."),
        )
    }
}

fn same_region(
    kind: &str,
    id: &ResourceId,
    loc: &str,
    by: &str,
    by_loc: &str,
) -> Result<(), AzureError> {
    if loc.eq_ignore_ascii_case(by_loc) {
        return Ok(());
    }
    Err(AzureError::bad_request(
        "LocationMismatch",
        format!(
            "The {kind} '{id}' is in region '{loc}' but {by} is in region '{by_loc}'; they must be in the same region."
        ),
    ))
}

/// Azure's NSG rules over the whole state; `old` tells a deleted reference
/// (`InUse…CannotBeDeleted`) from a wrong one (`InvalidResourceReference`).
pub(crate) fn check(inv: &Inventory, old: &Inventory) -> Result<(), AzureError> {
    for nsg in &inv.nsgs {
        let mut names: BTreeMap<String, &str> = BTreeMap::new();
        let mut prios: BTreeMap<(Direction, u32), String> = BTreeMap::new();
        for r in &nsg.rules {
            if let Some(first) = names.insert(r.name.to_ascii_lowercase(), &r.name) {
                return Err(AzureError::bad_request(
                    "DuplicateResourceName",
                    format!(
                        "Network security group '{}' has two security rules named '{first}'; rule names must be unique.",
                        nsg.name
                    ),
                ));
            }
            let t = r.typed(&nsg.name)?;
            if let Some(other) = prios.insert((t.direction, t.priority), t.name.clone()) {
                return Err(AzureError::bad_request(
                    "SecurityRuleConflict",
                    format!(
                        "Security rules '{other}' and '{}' of network security group '{}' have the same priority {} \
                         and direction {}. Rules with the same priority and direction are not allowed; give one \
                         another priority.",
                        t.name,
                        nsg.name,
                        t.priority,
                        t.direction.as_str()
                    ),
                ));
            }
            for side in [&t.source, &t.destination] {
                if let AddressMatch::Asg(a) = side {
                    let by = format!(
                        "security rule '{}' of network security group '{}'",
                        t.name, nsg.name
                    );
                    let asg = inv.asg(a).ok_or_else(|| missing(old, a, &by, true))?;
                    same_region(
                        "application security group",
                        a,
                        &asg.location,
                        &by,
                        &nsg.location,
                    )?;
                }
            }
        }
    }
    for vnet in &inv.vnets {
        for s in &vnet.subnets {
            if let Some(id) = &s.network_security_group {
                let by = format!("subnet '{}' of virtual network '{}'", s.name, vnet.name);
                let nsg = inv.nsg(id).ok_or_else(|| missing(old, id, &by, false))?;
                same_region(
                    "network security group",
                    id,
                    &nsg.location,
                    &by,
                    &vnet.location,
                )?;
            }
        }
    }
    for nic in &inv.nics {
        let by = format!("network interface '{}'", nic.name);
        if let Some(id) = &nic.network_security_group {
            let nsg = inv.nsg(id).ok_or_else(|| missing(old, id, &by, false))?;
            same_region(
                "network security group",
                id,
                &nsg.location,
                &by,
                &nic.location,
            )?;
        }
        for c in &nic.ip_configurations {
            for a in &c.application_security_groups {
                let asg = inv.asg(a).ok_or_else(|| missing(old, a, &by, true))?;
                same_region(
                    "application security group",
                    a,
                    &asg.location,
                    &by,
                    &nic.location,
                )?;
            }
        }
    }
    Ok(())
}
