//! Deleting: refused while the resource is in use (seed, "Limitations": "You
//! can't delete a virtual network with an integrated app").

use serde_json::Value;

use super::sal;
use crate::model::{
    AzureError, Inventory, LabState, ResourceId, ResourceKind, Subnet, VirtualNetwork,
};

fn not_found(id: &ResourceId) -> AzureError {
    AzureError::not_found(
        "ResourceNotFound",
        format!("The resource '{id}' was not found."),
    )
}

/// The state without `id`, or why it cannot go.
pub(crate) fn remove(state: &LabState, id: &ResourceId) -> Result<LabState, AzureError> {
    let inv = Inventory::parse_lenient(&state.resources);
    let mut next = state.clone();
    if id.segments.len() == 2 && id.segments[1].0.eq_ignore_ascii_case("subnets") {
        let (vnet, subnet, index) = inv.subnet(id).ok_or_else(|| not_found(id))?;
        subnet_in_use(&inv, vnet, &subnet.id)?;
        let res = next
            .resources
            .get_mut(&vnet.id.key())
            .expect("parsed from this state");
        if let Some(Value::Array(list)) = res.properties.get_mut("subnets") {
            list.remove(index);
        }
        return Ok(next);
    }
    if id.segments.len() == 2
        && id.segments[0].0.eq_ignore_ascii_case("privateDnsZones")
        && id.namespace.eq_ignore_ascii_case("Microsoft.Network")
    {
        return remove_zone_child(state, id);
    }
    let res = state.get(id).ok_or_else(|| not_found(id))?;
    match ResourceKind::from_type(&res.type_) {
        Some(ResourceKind::VirtualNetworkGateway) => super::gateway::check_delete(&inv, id)?,
        Some(ResourceKind::VirtualNetwork) => {
            if let Some(z) = inv.zones_linked_to(id).next() {
                return Err(AzureError::bad_request(
                    "InUseVirtualNetworkCannotBeDeleted",
                    format!(
                        "Virtual network '{}' is linked to private DNS zone '{}'. Delete the virtual network link \
                         first.",
                        res.name, z.zone
                    ),
                ));
            }
            if let Some(vnet) = inv.vnet(id) {
                for s in &vnet.subnets {
                    integration_in_vnet(&inv, vnet, s)?;
                    subnet_in_use(&inv, vnet, &s.id)?;
                }
            }
        }
        Some(ResourceKind::ServerFarm) => {
            let sites: Vec<&str> = inv.sites_of_plan(id).map(|s| s.name.as_str()).collect();
            if !sites.is_empty() {
                return Err(AzureError::conflict(
                    "ServerFarmInUse",
                    format!(
                        "App Service plan '{}' cannot be deleted because it has site(s) {} assigned to it. Delete or move the sites first.",
                        res.name,
                        sites.join(", ")
                    ),
                ));
            }
        }
        Some(ResourceKind::NetworkInterface) => {
            if let Some(pe) = inv
                .nic(id)
                .and_then(|n| inv.private_endpoint(n.private_endpoint.as_ref()?))
            {
                return Err(AzureError::bad_request(
                    "NicInUse",
                    format!(
                        "Network interface '{}' belongs to private endpoint '{}' and is deleted with it. Delete                          the private endpoint instead.",
                        res.name, pe.name
                    ),
                ));
            }
            if let Some(vm) = inv.vm_of_nic(id) {
                return Err(AzureError::bad_request(
                    "NicInUse",
                    format!(
                        "Network interface '{}' is used by virtual machine '{}'. Delete the VM or detach the NIC first.",
                        res.name, vm.name
                    ),
                ));
            }
        }
        Some(
            ResourceKind::RouteTable
            | ResourceKind::NatGateway
            | ResourceKind::PublicIpAddress
            | ResourceKind::PublicIpPrefix,
        ) => super::routing::in_use(&inv, id)?,
        _ => {}
    }
    // Children kept as records (host name bindings, locks, ...) go with it.
    let prefix = format!("{}/", id.key());
    next.resources
        .retain(|k, _| k != &id.key() && !k.starts_with(&prefix));
    Ok(next)
}

/// Seed, "Limitations": "You can't delete a virtual network with an
/// integrated app. Remove the integration before you delete the virtual
/// network." A link left behind by a deleted app blocks it too.
fn integration_in_vnet(
    inv: &Inventory,
    vnet: &VirtualNetwork,
    subnet: &Subnet,
) -> Result<(), AzureError> {
    let refuse = |why: String| {
        Err(AzureError::bad_request(
            "InUseVirtualNetworkCannotBeDeleted",
            format!(
                "Virtual network '{}' cannot be deleted: its subnet '{}' is in use by {}. {why}",
                vnet.name,
                subnet.name,
                sal::link_id(&subnet.id)
            ),
        ))
    };
    if let Some(site) = inv
        .sites
        .iter()
        .find(|s| s.subnet_id.as_ref() == Some(&subnet.id))
    {
        return refuse(format!(
            "Site '{}' is integrated with it: disconnect the site's virtual network integration first \
             (`az webapp vnet-integration remove`), then delete the virtual network.",
            site.name
        ));
    }
    if let Some(link) = subnet.app_service_link() {
        return refuse(sal::recovery(&subnet.id, link));
    }
    Ok(())
}

fn subnet_in_use(
    inv: &Inventory,
    vnet: &VirtualNetwork,
    subnet: &ResourceId,
) -> Result<(), AzureError> {
    if let Some(by) = subnet_user(inv, subnet) {
        return Err(AzureError::bad_request(
            "InUseSubnetCannotBeDeleted",
            format!(
                "Subnet '{}' of virtual network '{}' is in use by {by} and cannot be deleted. Remove that first.",
                subnet.name(),
                vnet.name
            ),
        ));
    }
    if let Some((_, s, _)) = inv.subnet(subnet) {
        if let Some(link) = s.app_service_link() {
            return Err(sal::in_use_deleted(s, link));
        }
    }
    Ok(())
}

/// What holds addresses in `subnet` (an integrated site, a private endpoint,
/// a NIC), said for an error message; `None` when nothing does. A service
/// association link left behind by a deleted app is not a user here: callers
/// that care ask the subnet for it.
pub(super) fn subnet_user(inv: &Inventory, subnet: &ResourceId) -> Option<String> {
    if let Some(site) = inv
        .sites
        .iter()
        .find(|s| s.subnet_id.as_ref() == Some(subnet))
    {
        return Some(format!(
            "{subnet}/serviceAssociationLinks/AppServiceLink (site '{}'); disconnect the site's virtual network integration",
            site.name
        ));
    }
    if let Some(pe) = inv
        .private_endpoints
        .iter()
        .find(|p| &p.subnet_id == subnet)
    {
        return Some(format!(
            "private endpoint '{}' (network interface '{}')",
            pe.name,
            pe.nic_id().name()
        ));
    }
    inv.nics_in_subnet(subnet)
        .next()
        .map(|nic| format!("network interface '{}'", nic.name))
}

/// A record set (`privateDnsZones/A/www`) or a virtual network link
/// (`privateDnsZones/virtualNetworkLinks/l1`), removed from its zone.
fn remove_zone_child(state: &LabState, id: &ResourceId) -> Result<LabState, AzureError> {
    let mut next = state.clone();
    let zone = next
        .resources
        .get_mut(&id.parent().expect("two segments").key())
        .ok_or_else(|| not_found(id))?;
    let (type_, name) = &id.segments[1];
    let is_link = type_.eq_ignore_ascii_case("virtualNetworkLinks");
    let key = if is_link {
        "virtualNetworkLinks"
    } else {
        "recordSets"
    };
    let same = |e: &Value| {
        let field = |f: &str, want: &str| {
            e.get(f)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(want))
        };
        field("name", name) && (is_link || field("type", type_))
    };
    let list = zone
        .properties
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .ok_or_else(|| not_found(id))?;
    let index = list.iter().position(same).ok_or_else(|| not_found(id))?;
    list.remove(index);
    Ok(next)
}
