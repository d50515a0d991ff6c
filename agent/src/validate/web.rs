//! App Service rules: plans, sites, and regional virtual network integration
//! (seed, "Subnet requirements" and "Limitations").

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::model::{
    AzureError, GenericResource, Inventory, LabState, ResourceId, SERVER_FARMS_DELEGATION,
};

/// Most instances a plan may have in the lab (Premium v3's limit).
pub(crate) const MAX_CAPACITY: u32 = 30;

fn bad(code: &str, message: String) -> AzureError {
    AzureError::bad_request(code, message)
}

/// As Azure does when integrating (portal, CLI, `virtualNetworkSubnetId`):
/// add the `Microsoft.Web/serverFarms` delegation to a subnet that has no
/// delegation yet. A subnet delegated to another service is left alone and
/// refused by [`check`].
pub(crate) fn add_delegations(state: &mut LabState, inv: &Inventory) {
    let wanted: Vec<ResourceId> = inv
        .sites
        .iter()
        .filter_map(|s| s.subnet_id.clone())
        .collect();
    for subnet_id in wanted {
        let Some((vnet, subnet, index)) = inv.subnet(&subnet_id) else {
            continue;
        };
        if !subnet.delegations.is_empty() {
            continue;
        }
        let Some(res) = state.resources.get_mut(&vnet.id.key()) else {
            continue;
        };
        add_delegation(res, index);
    }
}

fn add_delegation(vnet: &mut GenericResource, index: usize) {
    let Some(entry) = vnet
        .properties
        .get_mut("subnets")
        .and_then(|s| s.get_mut(index))
    else {
        return;
    };
    let Some(obj) = entry.as_object_mut() else {
        return;
    };
    let props = obj.entry("properties").or_insert_with(|| json!({}));
    let Some(props) = props.as_object_mut() else {
        return;
    };
    let list = props.entry("delegations").or_insert_with(|| json!([]));
    if let Value::Array(list) = list {
        list.push(
            json!({"name": "delegation", "properties": {"serviceName": SERVER_FARMS_DELEGATION}}),
        );
    }
}

pub(crate) fn check(inv: &Inventory, old: &Inventory) -> Result<(), AzureError> {
    for plan in &inv.plans {
        if plan.capacity == 0 || plan.capacity > MAX_CAPACITY {
            return Err(bad(
                "InvalidSkuCapacity",
                format!(
                    "App Service plan '{}' asks for {} instances (sku.capacity); the lab supports 1 to {MAX_CAPACITY}.",
                    plan.name, plan.capacity
                ),
            ));
        }
    }
    // Which plan uses which integration subnet.
    let mut subnet_plan: BTreeMap<ResourceId, (ResourceId, String)> = BTreeMap::new();
    for site in &inv.sites {
        let plan = inv.plan(&site.server_farm_id).ok_or_else(|| {
            bad(
                "InvalidResourceReference",
                format!(
                    "Site '{}' refers to the App Service plan '{}' (properties.serverFarmId), which does not exist. \
                     Deploy the plan first or fix the id.",
                    site.name, site.server_farm_id
                ),
            )
        })?;
        if plan.location != site.location {
            return Err(bad(
                "LocationMismatch",
                format!(
                    "Site '{}' is in '{}' but its App Service plan '{}' is in '{}'. A site must be in its plan's region.",
                    site.name, site.location, plan.name, plan.location
                ),
            ));
        }
        let Some(subnet_id) = &site.subnet_id else {
            continue;
        };
        super::integration::check_subnet(inv, old, site, subnet_id)?;
        super::tier::check(plan, site)?;
        if site.is_docker_compose() {
            return Err(bad(
                "VnetIntegrationNotSupportedForDockerCompose",
                format!(
                    "Site '{}' is a Docker Compose app (siteConfig.linuxFxVersion starts with COMPOSE|) and cannot \
                     use virtual network integration: it isn't supported for Docker Compose scenarios in App \
                     Service. Remove virtualNetworkSubnetId, or run the app as a single container (DOCKER|...).",
                    site.name
                ),
            ));
        }
        if let Some((other_plan, other_site)) = subnet_plan.get(subnet_id) {
            if other_plan != &plan.id {
                return Err(bad(
                    "SubnetUsedByAnotherServerFarm",
                    format!(
                        "Subnet '{subnet_id}' is already used for integration by App Service plan '{}' (site '{other_site}'), \
                         so site '{}' of plan '{}' cannot use it: an integration subnet serves one plan only. \
                         Pick another subnet.",
                        other_plan.name(),
                        site.name,
                        plan.name
                    ),
                ));
            }
        }
        subnet_plan.insert(subnet_id.clone(), (plan.id.clone(), site.name.clone()));
    }
    for plan in &inv.plans {
        let integrations = inv.plan_integrations(&plan.id);
        if integrations.len() > plan.max_integrations() {
            let os = if plan.is_linux { "Linux" } else { "Windows" };
            return Err(bad(
                "MaxVnetIntegrationsExceeded",
                format!(
                    "The sites of {os} App Service plan '{}' use {} integration subnets ({}); a {os} plan supports {}. \
                     Integrate the plan's sites with the same subnet.",
                    plan.name,
                    integrations.len(),
                    integrations.iter().map(ResourceId::to_string).collect::<Vec<_>>().join(", "),
                    plan.max_integrations()
                ),
            ));
        }
    }
    Ok(())
}

/// Every site's access restrictions (`model::access_restriction`), checked
/// before commit: rules Azure would refuse, and a `vnetSubnetResourceId`
/// rule whose subnet lacks the `Microsoft.Web` service endpoint (the traffic
/// could never arrive from it: `az webapp config access-restriction add`
/// adds the endpoint for you).
pub(crate) fn check_access_restrictions(
    state: &crate::model::LabState,
    inv: &Inventory,
) -> Result<(), AzureError> {
    use crate::model::access_restriction::policy;
    for site in &inv.sites {
        let Some(res) = state.get(&site.id) else {
            continue;
        };
        let subnet_prefix = |id: &ResourceId| {
            let (_, s, _) = inv.subnet(id)?;
            s.service_endpoints
                .iter()
                .any(|e| e.service.eq_ignore_ascii_case("Microsoft.Web"))
                .then_some(s.address_prefix)
        };
        let Err(e) = policy(res, &subnet_prefix, &|_| Vec::new()) else {
            continue;
        };
        // Tell a subnet without the endpoint from one that is not there.
        let endpointless = ["ipSecurityRestrictions", "scmIpSecurityRestrictions"]
            .iter()
            .filter_map(|k| res.properties.pointer(&format!("/siteConfig/{k}")))
            .filter_map(serde_json::Value::as_array)
            .flatten()
            .filter_map(|r| {
                r.get("vnetSubnetResourceId")?
                    .as_str()?
                    .parse::<ResourceId>()
                    .ok()
            })
            .find(|id| inv.subnet(id).is_some() && subnet_prefix(id).is_none());
        return Err(match endpointless {
            Some(id) => bad(
                "InvalidAccessRestriction",
                format!(
                    "Site '{}': the access restriction for subnet '{id}' needs the Microsoft.Web service endpoint on \
                     that subnet (traffic reaches the app from the subnet only over it). Add \
                     serviceEndpoints [{{\"service\": \"Microsoft.Web\"}}] to the subnet.",
                    site.name
                ),
            ),
            None => e,
        });
    }
    Ok(())
}
