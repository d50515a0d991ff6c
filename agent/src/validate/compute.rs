//! Network interface and virtual machine rules.

use std::collections::BTreeMap;

use super::missing_subnet;
use crate::model::{AzureError, Inventory, ResourceId};

fn bad(code: &str, message: String) -> AzureError {
    AzureError::bad_request(code, message)
}

pub(crate) fn check(inv: &Inventory, old: &Inventory) -> Result<(), AzureError> {
    for nic in &inv.nics {
        let label = format!("network interface '{}'", nic.name);
        let first = nic.subnet_id();
        for cfg in &nic.ip_configurations {
            let (vnet, subnet, _) = inv
                .subnet(&cfg.subnet_id)
                .ok_or_else(|| missing_subnet(old, &cfg.subnet_id, &label, false))?;
            if &cfg.subnet_id != first {
                return Err(bad(
                    "InvalidRequestFormat",
                    format!("All IP configurations of network interface '{}' must be in the same subnet in the lab.", nic.name),
                ));
            }
            if let Some(d) = subnet.delegations.first() {
                return Err(bad(
                    "SubnetDelegatedCannotHostNetworkInterface",
                    format!(
                        "Network interface '{}' cannot be placed in subnet '{}' of virtual network '{}': the subnet is \
                         delegated to '{}'. Put the NIC in a subnet without delegation.",
                        nic.name, subnet.name, vnet.name, d.service_name
                    ),
                ));
            }
            if vnet.location != nic.location {
                return Err(bad(
                    "LocationMismatch",
                    format!(
                        "Network interface '{}' is in '{}' but virtual network '{}' is in '{}'. They must be in the same region.",
                        nic.name, nic.location, vnet.name, vnet.location
                    ),
                ));
            }
        }
    }
    let mut owner: BTreeMap<&ResourceId, &str> = BTreeMap::new();
    for vm in &inv.vms {
        for nic_id in &vm.nic_ids {
            let nic = inv.nic(nic_id).ok_or_else(|| {
                bad(
                    "InvalidResourceReference",
                    format!(
                        "Virtual machine '{}' refers to network interface '{nic_id}', which does not exist. Deploy the NIC first or fix the id.",
                        vm.name
                    ),
                )
            })?;
            if let Some(other) = owner.insert(nic_id, &vm.name) {
                return Err(bad(
                    "NicInUse",
                    format!(
                        "Network interface '{}' is used by virtual machine '{other}', so virtual machine '{}' cannot use it too.",
                        nic.name, vm.name
                    ),
                ));
            }
            if nic.location != vm.location {
                return Err(bad(
                    "LocationMismatch",
                    format!(
                        "Virtual machine '{}' is in '{}' but its network interface '{}' is in '{}'. They must be in the same region.",
                        vm.name, vm.location, nic.name, nic.location
                    ),
                ));
            }
        }
    }
    Ok(())
}
