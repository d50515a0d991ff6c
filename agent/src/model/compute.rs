//! Typed view of `Microsoft.Compute/virtualMachines`: a lab endpoint with NICs.

use super::props::{self, invalid, Props};
use super::{AzureError, GenericResource, ResourceId};

/// `Microsoft.Compute/virtualMachines`. Only the network profile matters to the lab.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualMachine {
    pub id: ResourceId,
    pub name: String,
    pub location: String,
    /// `properties.networkProfile.networkInterfaces[].id`, in order: the
    /// `n`-th NIC is `eth<n>` in the VM's namespace.
    pub nic_ids: Vec<ResourceId>,
    /// Index into `nic_ids` of the primary NIC (holds the default route).
    pub primary_nic: usize,
}

impl VirtualMachine {
    pub fn from_resource(res: &GenericResource) -> Result<Self, AzureError> {
        let p = Props::new(res);
        let path = "properties.networkProfile.networkInterfaces";
        let mut nic_ids = Vec::new();
        let mut primary_nic = None;
        for (i, v) in p.array(path)?.iter().enumerate() {
            let id_path = format!("{path}[{i}].id");
            let id = props::id_in(res, props::at(v, "id"), &id_path)?.ok_or_else(|| {
                invalid(res, &id_path, "is required (the id of a network interface)")
            })?;
            if props::bool_in(
                res,
                props::at(v, "properties.primary"),
                &format!("{path}[{i}].properties.primary"),
            )? == Some(true)
                && primary_nic.is_none()
            {
                primary_nic = Some(i);
            }
            nic_ids.push(id);
        }
        if nic_ids.is_empty() {
            return Err(invalid(res, path, "needs at least one network interface"));
        }
        Ok(VirtualMachine {
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            nic_ids,
            primary_nic: primary_nic.unwrap_or(0),
        })
    }
}
