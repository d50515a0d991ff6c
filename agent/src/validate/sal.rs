//! The service association link `AppServiceLink` (AZURE-FACTS §1): put on a
//! subnet when a plan's app integrates, removed when the last app of that plan
//! disconnects, and left behind when the app or plan is deleted without
//! disconnecting (seed, "Deleting the App Service plan or app before
//! disconnecting the network integration"). A link left behind blocks every
//! update and delete of the subnet until the integration is re-created with
//! the same plan and disconnected.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::model::{
    AzureError, GenericResource, Inventory, LabState, ResourceId, ServiceAssociationLink, Subnet,
    APP_SERVICE_LINK, SERVER_FARMS_DELEGATION,
};

/// `linkedResourceType` of App Service's link.
pub(crate) const LINKED_RESOURCE_TYPE: &str = "Microsoft.Web/serverfarms";

const SAL_KEY: &str = "serviceAssociationLinks";

/// The id of a subnet's App Service link.
pub(crate) fn link_id(subnet: &ResourceId) -> String {
    format!("{subnet}/serviceAssociationLinks/{APP_SERVICE_LINK}")
}

/// The seed's recovery procedure for a link left behind, naming the plan.
pub(crate) fn recovery(subnet: &ResourceId, link: &ServiceAssociationLink) -> String {
    format!(
        "The link {} points at App Service plan '{}', whose app was deleted (or whose plan was deleted) without \
         disconnecting the virtual network integration first. To free the subnet: re-create the App Service plan \
         '{}' and the app with the exact same names, integrate the app with subnet '{}', disconnect it \
         (`az webapp vnet-integration remove`), delete the app and plan, then update or delete the subnet.",
        link_id(subnet),
        link.link,
        link.link.name(),
        subnet.name()
    )
}

/// Bring every subnet's `AppServiceLink` in line with `inv` (the validated
/// next state) and refuse changes a link left behind forbids.
pub(crate) fn sync(
    old: &Inventory,
    inv: &Inventory,
    next: &mut LabState,
) -> Result<(), AzureError> {
    for vnet in &inv.vnets {
        let mut links: Vec<Option<ServiceAssociationLink>> = Vec::new();
        for subnet in &vnet.subnets {
            links.push(next_link(old, inv, subnet)?);
        }
        let res = next
            .resources
            .get_mut(&vnet.id.key())
            .expect("inventory parsed from this state");
        write_links(res, &vnet.subnets, &links);
    }
    // A subnet holding a link left behind cannot disappear with a redeploy.
    for vnet in &old.vnets {
        let Some(new_vnet) = inv.vnet(&vnet.id) else {
            continue; // Deleting the whole VNet is refused by delete.rs.
        };
        for subnet in &vnet.subnets {
            if let Some(link) = subnet.app_service_link() {
                if new_vnet.subnet(&subnet.name).is_none()
                    && !disconnected(old, inv, &subnet.id, &link.link)
                {
                    return Err(in_use_deleted(subnet, link));
                }
            }
        }
    }
    Ok(())
}

/// `InUseSubnetCannotBeDeleted` for a subnet holding a link left behind.
pub(crate) fn in_use_deleted(subnet: &Subnet, link: &ServiceAssociationLink) -> AzureError {
    AzureError::bad_request(
        "InUseSubnetCannotBeDeleted",
        format!(
            "Subnet '{}' is in use by {} and cannot be deleted. {}",
            subnet.name,
            link_id(&subnet.id),
            recovery(&subnet.id, link)
        ),
    )
}

/// The plans whose sites integrate with `subnet` in `inv`.
fn user_plans(inv: &Inventory, subnet: &ResourceId) -> BTreeSet<ResourceId> {
    inv.sites
        .iter()
        .filter(|s| s.subnet_id.as_ref() == Some(subnet))
        .map(|s| s.server_farm_id.clone())
        .collect()
}

/// A site of `plan` that used `subnet` before still exists and no longer uses
/// it: the Disconnect that removes the link.
fn disconnected(old: &Inventory, inv: &Inventory, subnet: &ResourceId, plan: &ResourceId) -> bool {
    user_plans(inv, subnet).is_empty()
        && old.sites.iter().any(|was| {
            was.subnet_id.as_ref() == Some(subnet)
                && &was.server_farm_id == plan
                && inv
                    .site(&was.id)
                    .is_some_and(|now| now.subnet_id.as_ref() != Some(subnet))
        })
}

fn next_link(
    old: &Inventory,
    inv: &Inventory,
    subnet: &Subnet,
) -> Result<Option<ServiceAssociationLink>, AzureError> {
    // The platform owns the link: what the stored subnet had, whatever the template says.
    let stored = old
        .subnet(&subnet.id)
        .and_then(|(_, s, _)| s.app_service_link().cloned())
        .filter(|l| !disconnected(old, inv, &subnet.id, &l.link));
    let users = user_plans(inv, &subnet.id);
    if let Some(plan) = users.iter().next() {
        if let Some(link) = stored.as_ref().filter(|l| !users.contains(&l.link)) {
            return Err(AzureError::bad_request(
                "SubnetUsedByAnotherServerFarm",
                format!(
                    "Subnet '{}' already has a service association link to another App Service plan, so plan \
                     '{}' cannot integrate with it: an integration subnet serves one plan only. {}",
                    subnet.name,
                    plan.name(),
                    recovery(&subnet.id, link)
                ),
            ));
        }
        return Ok(Some(ServiceAssociationLink {
            name: APP_SERVICE_LINK.to_string(),
            linked_resource_type: LINKED_RESOURCE_TYPE.to_string(),
            link: plan.clone(),
        }));
    }
    let Some(link) = stored else {
        return Ok(None);
    };
    // Left behind: the subnet is frozen.
    let before = old
        .subnet(&subnet.id)
        .expect("stored link comes from the old subnet")
        .1;
    if !subnet.is_delegated_to_server_farms() {
        return Err(AzureError::bad_request(
            "SubnetMissingRequiredDelegation",
            format!(
                "Subnet '{}' requires any of the following delegation(s) [{SERVER_FARMS_DELEGATION}] to reference \
                 service association link {}. {}",
                subnet.id,
                link_id(&subnet.id),
                recovery(&subnet.id, &link)
            ),
        ));
    }
    if !same_user_properties(before, subnet) {
        return Err(AzureError::bad_request(
            "InUseSubnetCannotBeUpdated",
            format!(
                "Subnet '{}' cannot be updated: it is in use by {}. {}",
                subnet.name,
                link_id(&subnet.id),
                recovery(&subnet.id, &link)
            ),
        ));
    }
    Ok(Some(link))
}

/// The subnet as the user wrote it is unchanged (the link itself aside).
fn same_user_properties(a: &Subnet, b: &Subnet) -> bool {
    let strip = |s: &Subnet| {
        let mut s = s.clone();
        s.service_association_links.clear();
        s
    };
    strip(a) == strip(b)
}

fn write_links(
    vnet: &mut GenericResource,
    subnets: &[Subnet],
    links: &[Option<ServiceAssociationLink>],
) {
    let Some(Value::Array(list)) = vnet.properties.get_mut("subnets") else {
        return;
    };
    for ((entry, subnet), link) in list.iter_mut().zip(subnets).zip(links) {
        let Some(obj) = entry.as_object_mut() else {
            continue;
        };
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        let Some(props) = props.as_object_mut() else {
            continue;
        };
        match link {
            Some(l) => {
                props.insert(
                    SAL_KEY.into(),
                    json!([{
                        "name": l.name,
                        "id": link_id(&subnet.id),
                        "type": "Microsoft.Network/virtualNetworks/subnets/serviceAssociationLinks",
                        "properties": {"linkedResourceType": l.linked_resource_type, "link": l.link.to_string()},
                    }]),
                );
            }
            None => {
                props.remove(SAL_KEY);
            }
        }
    }
}
