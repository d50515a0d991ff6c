//! Azure's rules, applied to the whole desired state after every change, so a
//! deployment either yields a valid state with every address allocated or an
//! Azure-style error and no change at all.

mod compute;
mod delete;
mod network;
mod normalize;
mod web;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

use crate::ipam::{self, Demand};
use crate::model::{
    AzureError, GenericResource, Inventory, LabConfig, LabState, ResourceId, ResourceKind,
};
use normalize::ChildKind;

/// Incremental deploy: upsert these resources into a copy of `state`, validate
/// the WHOLE result, allocate addresses; Err leaves the caller's state untouched.
///
/// Top-level resources replace stored ones with the same id (ARM's PUT);
/// child resources (`virtualNetworks/subnets`, `sites/config`,
/// `sites/networkConfig`) are merged into their parent, which may be in this
/// batch or already stored.
pub fn apply_resources(
    state: &LabState,
    resources: Vec<GenericResource>,
    lab: &LabConfig,
) -> Result<LabState, AzureError> {
    apply_resources_at(state, resources, lab, 0)
}

/// [`apply_resources`] at time `now` (seconds): a plan whose size changed is
/// scaled make-before-break, and released addresses cool down from `now`
/// (see `ipam::allocate`).
pub fn apply_resources_at(
    state: &LabState,
    resources: Vec<GenericResource>,
    lab: &LabConfig,
    now: u64,
) -> Result<LabState, AzureError> {
    let mut next = state.clone();
    let mut children = Vec::new();
    for res in resources {
        if let Some(kind) =
            ResourceKind::from_type(&res.type_).filter(|_| res.id.segments.len() == 1)
        {
            let res = normalize::top_level(res, kind)?;
            next.resources.insert(res.id.key(), res);
        } else if let Some(kind) =
            ChildKind::from_type(&res.type_).filter(|_| res.id.segments.len() == 2)
        {
            children.push((res, kind));
        } else {
            return Err(crate::model::kind_unsupported(&res.type_, &res.name));
        }
    }
    for (child, kind) in &children {
        normalize::merge_child(&mut next, child, *kind)?;
    }
    finish(state, next, lab, now)
}

/// Delete one resource (or one subnet, by its child id). Refused while
/// something still uses it, so no reference is ever left dangling.
pub fn delete_resource(
    state: &LabState,
    id: &ResourceId,
    lab: &LabConfig,
) -> Result<LabState, AzureError> {
    delete_resource_at(state, id, lab, 0)
}

/// [`delete_resource`] at time `now`: addresses it frees cool down from `now`.
pub fn delete_resource_at(
    state: &LabState,
    id: &ResourceId,
    lab: &LabConfig,
    now: u64,
) -> Result<LabState, AzureError> {
    let next = delete::remove(state, id)?;
    finish(state, next, lab, now)
}

/// Validate `next` as a whole and allocate its addresses, keeping `old`'s.
fn finish(
    old: &LabState,
    mut next: LabState,
    lab: &LabConfig,
    now: u64,
) -> Result<LabState, AzureError> {
    let inv = Inventory::parse(&next.resources)?;
    web::add_delegations(&mut next, &inv);
    let inv = Inventory::parse(&next.resources)?;
    let old_inv = Inventory::parse_lenient(&old.resources);
    network::check(&inv)?;
    web::check(&inv, &old_inv)?;
    compute::check(&inv, &old_inv)?;
    next.allocations = ipam::allocate(&Demand::of(&inv), &old.allocations, lab, now)?;
    next.generation = old.generation + 1;
    Ok(next)
}

/// A reference to a subnet that is not there: either the user removed a
/// subnet that is in use (`InUseSubnetCannotBeDeleted`), or it never existed.
fn missing_subnet(
    old: &Inventory,
    subnet: &ResourceId,
    user: &str,
    integration: bool,
) -> AzureError {
    if old.subnet(subnet).is_some() {
        let by = if integration {
            format!("{subnet}/serviceAssociationLinks/AppServiceLink ({user})")
        } else {
            user.to_string()
        };
        AzureError::bad_request(
            "InUseSubnetCannotBeDeleted",
            format!(
                "Subnet '{subnet}' is in use by {by} and cannot be deleted. Remove the integration or the resource \
                 from the subnet first."
            ),
        )
    } else {
        AzureError::bad_request(
            "InvalidResourceReference",
            format!(
                "The subnet '{subnet}' referenced by {user} was not found. Check the virtual network and subnet names \
                 (the id must be /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>)."
            ),
        )
    }
}
