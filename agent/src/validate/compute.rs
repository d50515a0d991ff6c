//! Network interface and virtual machine rules.

use std::collections::BTreeMap;

use super::missing_subnet;
use crate::model::{
    AzureError, Inventory, ResourceId, VirtualMachine, CUSTOM_SCRIPT_PUBLISHER, CUSTOM_SCRIPT_TYPE,
};

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
        check_extensions(vm)?;
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

/// VM extensions: the lab runs the Linux Custom Script extension only, and it
/// needs a command (Azure fails its provisioning without one).
fn check_extensions(vm: &VirtualMachine) -> Result<(), AzureError> {
    let mut names = std::collections::BTreeSet::new();
    for ext in &vm.extensions {
        if ext.name.is_empty() {
            return Err(bad(
                "InvalidRequestFormat",
                format!("An extension of virtual machine '{}' has no name.", vm.name),
            ));
        }
        if !names.insert(ext.name.to_ascii_lowercase()) {
            return Err(bad(
                "Conflict",
                format!(
                    "Virtual machine '{}' has two extensions named '{}'.",
                    vm.name, ext.name
                ),
            ));
        }
        if !ext.is_custom_script() {
            return Err(bad(
                "VMExtensionNotSupported",
                format!(
                    "Extension '{}' of virtual machine '{}' is publisher '{}' type '{}'; the lab runs only the \
                     Custom Script extension (publisher {CUSTOM_SCRIPT_PUBLISHER}, type {CUSTOM_SCRIPT_TYPE}).",
                    ext.name, vm.name, ext.publisher, ext.type_
                ),
            ));
        }
        if ext.command.is_none() {
            return Err(bad(
                "VMExtensionProvisioningError",
                format!(
                    "VM has reported a failure when processing extension '{}' of virtual machine '{}'. Error \
                     message: 'commandToExecute' is required in settings or protectedSettings.",
                    ext.name, vm.name
                ),
            ));
        }
    }
    Ok(())
}
