//! Azure's rules, applied to the whole desired state after every change, so a
//! deployment either yields a valid state with every address allocated or an
//! Azure-style error and no change at all.

mod compute;
mod delete;
mod dns;
mod gateway;
mod integration;
mod moves;
mod names;
mod network;
mod normalize;
mod nsg;
mod peering;
mod private_endpoint;
mod providers;
mod record;
mod routing;
mod sal;
mod services;
mod tier;
mod unsupported;
mod web;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod gateway_tests;
#[cfg(test)]
mod private_endpoint_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;

use crate::authz;
use crate::ipam::{self, Demand};
use crate::model::{
    AzureError, GenericResource, Inventory, LabConfig, LabState, ResourceId, ResourceKind,
    CLASSIC_VNET_TYPE,
};
pub use moves::move_resources;
use normalize::ChildKind;
pub use providers::{is_registered, register_provider, WEB_NAMESPACE};
pub use record::emulated;
pub use routing::set_subscription_settings;

/// Who asks, and when: every entry point takes one. `principal` is checked
/// against the lab's role assignments (seed, "Permissions"); `now` (seconds) is
/// the only clock validation sees, so it stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The calling principal's name; the lab owner is [`crate::model::LAB_OWNER`].
    pub principal: String,
    /// Request time in seconds since the epoch, given by the caller.
    pub now: u64,
}

impl Default for RequestContext {
    /// The lab owner (Owner at `/`), at time 0.
    fn default() -> Self {
        RequestContext {
            principal: crate::model::LAB_OWNER.to_string(),
            now: 0,
        }
    }
}

/// Incremental deploy: upsert these resources into a copy of `state`, validate
/// the WHOLE result, allocate addresses; Err leaves the caller's state untouched.
///
/// Top-level resources replace stored ones with the same id (ARM's PUT);
/// child resources (`virtualNetworks/subnets`, `sites/config`,
/// `sites/networkConfig`, `privateEndpoints/privateDnsZoneGroups` ...) are
/// merged into their parent, which may be in this batch or already stored.
pub fn apply_resources(
    state: &LabState,
    resources: Vec<GenericResource>,
    lab: &LabConfig,
    ctx: &RequestContext,
) -> Result<LabState, AzureError> {
    // Names first: a name that breaks Azure's rules must never be committed
    // (it could not be applied, and would fail every later apply).
    for res in &resources {
        names::check_resource(res)?;
    }
    for res in &resources {
        authz::require(
            state,
            &ctx.principal,
            &format!("{}/write", res.id.full_type()),
            &res.id.to_string(),
        )?;
    }
    let mut next = state.clone();
    let mut children = Vec::new();
    // Types the lab does not emulate are kept as ARM records (Azure would
    // deploy them; they carry no traffic here).
    let mut records = Vec::new();
    for res in resources {
        if let Some(canonical) = top_level_type(&res.type_).filter(|_| res.id.segments.len() == 1) {
            let mut res = normalize::top_level(res, canonical)?;
            private_endpoint::keep_zone_groups(&mut res, state);
            services::keep_secrets(state, &mut res);
            next.resources.insert(res.id.key(), res);
        } else if let Some(kind) =
            ChildKind::from_type(&res.type_).filter(|_| res.id.segments.len() == 2)
        {
            children.push((res, kind));
        } else {
            if let Some(e) = unsupported::certificate(state, &res) {
                return Err(e);
            }
            records.push(res);
        }
    }
    for (child, kind) in children {
        // Logs to a private storage account: judged against every resource
        // of the request (the account may come in the same template).
        if kind == ChildKind::SiteConfig && child.id.name().eq_ignore_ascii_case("logs") {
            let site = child.id.parent().expect("child ids have a parent");
            if let Some(e) = unsupported::logs_config(&next, site.name(), &child.properties) {
                return Err(e);
            }
        }
        if kind == ChildKind::SiteConfig && !normalize::merged_site_config(child.id.name()) {
            records.push(child);
            continue;
        }
        normalize::merge_child(&mut next, &child, kind)?;
    }
    for res in records {
        record::check_parent(&next, &res)?;
        if res
            .type_
            .eq_ignore_ascii_case(crate::diag::flow_log::FLOW_LOG_TYPE)
        {
            crate::diag::flow_log::check(&next, &res)?;
        }
        next.resources.insert(res.id.key(), res);
    }
    finish(state, next, lab, ctx)
}

/// The canonical spelling of a top-level type the lab stores: a
/// [`ResourceKind`], or a classic VNet.
fn top_level_type(type_: &str) -> Option<&'static str> {
    ResourceKind::from_type(type_)
        .map(ResourceKind::canonical)
        .or_else(|| {
            type_
                .eq_ignore_ascii_case(CLASSIC_VNET_TYPE)
                .then_some(CLASSIC_VNET_TYPE)
        })
}

/// Delete one resource (or one subnet, by its child id). Refused while
/// something still uses it, so no reference is ever left dangling.
pub fn delete_resource(
    state: &LabState,
    id: &ResourceId,
    lab: &LabConfig,
    ctx: &RequestContext,
) -> Result<LabState, AzureError> {
    authz::require(
        state,
        &ctx.principal,
        &format!("{}/delete", id.full_type()),
        &id.to_string(),
    )?;
    let next = delete::remove(state, id)?;
    finish(state, next, lab, ctx)
}

/// `az webapp vnet-integration add` (`subnet` Some) or `remove` (None): set or
/// clear the site's `virtualNetworkSubnetId`, then validate like a deploy
/// (adding the `Microsoft.Web/serverFarms` delegation and the
/// `AppServiceLink` as Azure does; removing the link when the plan's last app
/// disconnects; seed, "Manage virtual network integration").
pub fn set_integration(
    state: &LabState,
    site_id: &ResourceId,
    subnet: Option<&ResourceId>,
    lab: &LabConfig,
    ctx: &RequestContext,
) -> Result<LabState, AzureError> {
    authz::require(
        state,
        &ctx.principal,
        "Microsoft.Web/sites/write",
        &site_id.to_string(),
    )?;
    let mut next = state.clone();
    let site = next
        .resources
        .get_mut(&site_id.key())
        .filter(|r| ResourceKind::from_type(&r.type_) == Some(ResourceKind::Site))
        .ok_or_else(|| {
            AzureError::not_found(
                "ResourceNotFound",
                format!(
                    "The site '{site_id}' was not found. Check the resource group and app name."
                ),
            )
        })?;
    let props = site
        .properties
        .as_object_mut()
        .expect("stored properties are objects");
    match subnet {
        Some(id) => {
            props.insert(
                "virtualNetworkSubnetId".into(),
                serde_json::json!(id.to_string()),
            );
        }
        None => {
            props.remove("virtualNetworkSubnetId");
        }
    }
    finish(state, next, lab, ctx)
}

/// Validate `next` as a whole and allocate its addresses, keeping `old`'s.
fn finish(
    old: &LabState,
    mut next: LabState,
    lab: &LabConfig,
    ctx: &RequestContext,
) -> Result<LabState, AzureError> {
    let old_inv = Inventory::parse_lenient(&old.resources);
    tier::settle_generations(&old_inv, &mut next)?;
    let inv = Inventory::parse(&next.resources)?;
    web::add_delegations(&mut next, &inv);
    private_endpoint::sync_nics(&mut next, &inv)?;
    let inv = Inventory::parse(&next.resources)?;
    network::check(&inv)?;
    network::check_prefix_changes(&old_inv, &inv)?;
    peering::check(&inv)?;
    gateway::check(&inv)?;
    services::check(&inv, &old_inv)?;
    routing::check(&inv)?;
    dns::check(&inv)?;
    web::check(&inv, &old_inv)?;
    web::check_access_restrictions(&next, &inv)?;
    // Before the NIC rules: an endpoint's NIC breaks them only because the
    // endpoint does, and the endpoint's error says why.
    private_endpoint::check(&next, &inv, &old_inv)?;
    compute::check(&inv, &old_inv)?;
    nsg::check(&inv, &old_inv)?;
    sal::sync(&old_inv, &inv, &mut next)?;
    peering::record_synced_spaces(&mut next, &inv);
    integration::check_permissions(old, &old_inv, &inv, ctx)?;
    providers::sync(&inv, &mut next)?;
    next.allocations = ipam::allocate(&Demand::of(&inv), &old.allocations, lab, ctx.now)?;
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
