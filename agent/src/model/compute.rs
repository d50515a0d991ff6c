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
    /// Child `Microsoft.Compute/virtualMachines/extensions`, stored in
    /// `properties.extensions[] {name, properties}` (the lab's place for them).
    pub extensions: Vec<VmExtension>,
}

/// Publisher of the Linux Custom Script extension.
pub const CUSTOM_SCRIPT_PUBLISHER: &str = "Microsoft.Azure.Extensions";
/// Type of the Linux Custom Script extension.
pub const CUSTOM_SCRIPT_TYPE: &str = "CustomScript";

/// One `Microsoft.Compute/virtualMachines/extensions`: Azure's way of running
/// a command on a VM. The lab runs the Custom Script extension's
/// `commandToExecute` (from `settings` or `protectedSettings`) supervised in
/// the VM's namespace, as it runs an app's `appCommandLine`.
#[derive(Debug, Clone, PartialEq)]
pub struct VmExtension {
    pub name: String,
    /// `properties.publisher`, e.g. `Microsoft.Azure.Extensions`.
    pub publisher: String,
    /// `properties.type`, e.g. `CustomScript`.
    pub type_: String,
    /// `commandToExecute` of `properties.protectedSettings` or `properties.settings`.
    pub command: Option<String>,
}

impl VmExtension {
    /// The Linux Custom Script extension (publisher and type compared as ARM does, ignoring case).
    pub fn is_custom_script(&self) -> bool {
        self.publisher.eq_ignore_ascii_case(CUSTOM_SCRIPT_PUBLISHER)
            && self.type_.eq_ignore_ascii_case(CUSTOM_SCRIPT_TYPE)
    }
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
        let mut extensions = Vec::new();
        let ext_path = "properties.extensions";
        for (i, v) in p.array(ext_path)?.iter().enumerate() {
            let base = format!("{ext_path}[{i}]");
            let text = |rel: &str| props::str_in(res, props::at(v, rel), &format!("{base}.{rel}"));
            let command = match text("properties.protectedSettings.commandToExecute")? {
                Some(c) => Some(c),
                None => text("properties.settings.commandToExecute")?,
            };
            extensions.push(VmExtension {
                name: text("name")?.unwrap_or_default(),
                publisher: text("properties.publisher")?.unwrap_or_default(),
                type_: text("properties.type")?.unwrap_or_default(),
                command: command.filter(|c| !c.trim().is_empty()),
            });
        }
        Ok(VirtualMachine {
            extensions,
            id: res.id.clone(),
            name: res.name.clone(),
            location: res.location.clone().unwrap_or_default(),
            nic_ids,
            primary_nic: primary_nic.unwrap_or(0),
        })
    }
}
