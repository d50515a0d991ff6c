//! Moving resources to another resource group or subscription (`az resource
//! move`). Seed, "Limitations": "You can't change the subscription of an app
//! or a plan while there's an app that's using virtual network integration."

use std::collections::BTreeMap;

use serde_json::Value;

use super::{finish, sal, RequestContext};
use crate::authz;
use crate::model::{AzureError, Inventory, LabConfig, LabState, ResourceId, ResourceKind};

/// The action ARM checks on the source resource group.
pub const MOVE_ACTION: &str =
    "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action";
/// The action ARM checks on the target resource group.
pub const TARGET_WRITE_ACTION: &str = "Microsoft.Resources/subscriptions/resourceGroups/write";

fn rg_scope(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

/// `az resource move --ids ... --destination-group RG [--destination-subscription-id SUB]`:
/// the listed top-level resources get ids in the target resource group, and
/// every reference to them in other resources is rewritten. Refused while a
/// listed site is integrated, a listed plan has an integrated site, or a listed
/// VNet carries an App Service link.
pub fn move_resources(
    state: &LabState,
    ids: &[ResourceId],
    target_subscription: &str,
    target_resource_group: &str,
    lab: &LabConfig,
    ctx: &RequestContext,
) -> Result<LabState, AzureError> {
    super::names::check_resource_group(target_resource_group)?;
    let inv = Inventory::parse_lenient(&state.resources);
    let mut moved: BTreeMap<String, ResourceId> = BTreeMap::new();
    for id in ids {
        let res = state.get(id).ok_or_else(|| {
            AzureError::not_found(
                "ResourceNotFound",
                format!("The resource '{id}' was not found."),
            )
        })?;
        authz::require(
            state,
            &ctx.principal,
            MOVE_ACTION,
            &rg_scope(&id.subscription, &id.resource_group),
        )?;
        refuse_integrated(&inv, res.id.clone(), &res.type_)?;
        let mut to = res.id.clone();
        to.subscription = target_subscription.to_string();
        to.resource_group = target_resource_group.to_string();
        moved.insert(res.id.to_string().to_ascii_lowercase(), to);
    }
    authz::require(
        state,
        &ctx.principal,
        TARGET_WRITE_ACTION,
        &rg_scope(target_subscription, target_resource_group),
    )?;
    let mut next = state.clone();
    next.resources.clear();
    for res in state.resources.values() {
        let mut res = res.clone();
        if let Some(to) = moved.get(&res.id.key()) {
            res.id = to.clone();
        }
        rewrite(&mut res.properties, &moved);
        let key = res.id.key();
        if next.resources.contains_key(&key) {
            return Err(AzureError::conflict(
                "ResourceAlreadyExists",
                format!(
                    "Cannot move to '{}': a resource with that id already exists in the target resource group. \
                     Rename or delete it first.",
                    res.id
                ),
            ));
        }
        next.resources.insert(key, res);
    }
    finish(state, next, lab, ctx)
}

fn refuse_integrated(inv: &Inventory, id: ResourceId, type_: &str) -> Result<(), AzureError> {
    let refuse = |what: String| {
        Err(AzureError::bad_request(
            "CannotMoveResourceWithVnetIntegration",
            format!(
                "{what} You can't change the subscription (or resource group) of an app or a plan while there's an \
                 app that's using virtual network integration: disconnect the integration first \
                 (`az webapp vnet-integration remove`), move, then integrate again."
            ),
        ))
    };
    match ResourceKind::from_type(type_) {
        Some(ResourceKind::Site) => {
            if let Some(subnet) = inv.site(&id).and_then(|s| s.subnet_id.as_ref()) {
                return refuse(format!(
                    "Site '{}' is integrated with subnet '{subnet}'.",
                    id.name()
                ));
            }
        }
        Some(ResourceKind::ServerFarm) => {
            if let Some(site) = inv.sites_of_plan(&id).find(|s| s.subnet_id.is_some()) {
                return refuse(format!(
                    "App Service plan '{}' has site '{}', which uses virtual network integration.",
                    id.name(),
                    site.name
                ));
            }
        }
        Some(ResourceKind::VirtualNetwork) => {
            let linked = inv.vnet(&id).and_then(|v| {
                v.subnets.iter().find(|s| {
                    s.app_service_link().is_some()
                        || inv
                            .sites
                            .iter()
                            .any(|w| w.subnet_id.as_ref() == Some(&s.id))
                })
            });
            if let Some(subnet) = linked {
                return refuse(format!(
                    "Virtual network '{}' has subnet '{}' in use by {}.",
                    id.name(),
                    subnet.name,
                    sal::link_id(&subnet.id)
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replace every string that is a moved id, or an id below one, with its new form.
fn rewrite(v: &mut Value, moved: &BTreeMap<String, ResourceId>) {
    match v {
        Value::String(s) => {
            let lower = s.to_ascii_lowercase();
            for (from, to) in moved {
                if lower == *from || lower.starts_with(&format!("{from}/")) {
                    *s = format!("{to}{}", &s[from.len()..]);
                    break;
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, moved)),
        Value::Object(o) => o.values_mut().for_each(|x| rewrite(x, moved)),
        _ => {}
    }
}
