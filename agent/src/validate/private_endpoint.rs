//! Private endpoints (AZURE-FACTS §1, §2.5, §7; seed, "Private endpoints"):
//! the NIC Azure creates with each endpoint, kept in step with it, and the
//! rules on subnet, region, connection, target, static address, NIC name and
//! DNS zone groups.

use std::collections::BTreeMap;

use super::missing_subnet;
use crate::model::{
    groups_of, private_link_group, AzureError, GenericResource, Inventory, LabState,
    PrivateDnsZoneGroup, PrivateEndpoint, ResourceKind,
};

/// Azure's limit of DNS zone configurations in one zone group.
pub const MAX_ZONE_CONFIGS: usize = 5;

fn bad(code: &str, message: String) -> AzureError {
    AzureError::bad_request(code, message)
}

/// Is `res` a NIC created for a private endpoint?
fn endpoint_of(res: &GenericResource) -> Option<&str> {
    (ResourceKind::from_type(&res.type_) == Some(ResourceKind::NetworkInterface))
        .then(|| res.properties.pointer("/privateEndpoint/id")?.as_str())
        .flatten()
}

/// Give every private endpoint its NIC (created, or rewritten to match the
/// endpoint) and remove the NICs of endpoints that are gone: Azure creates
/// and deletes the NIC with the endpoint. A NIC of the user's with the name
/// an endpoint wants is refused rather than taken over.
pub(crate) fn sync_nics(next: &mut LabState, inv: &Inventory) -> Result<(), AzureError> {
    let mut wanted: BTreeMap<String, GenericResource> = BTreeMap::new();
    for pe in &inv.private_endpoints {
        let nic = pe.nic_resource(next);
        if let Some(existing) = next.get(&nic.id) {
            if endpoint_of(existing)
                .is_none_or(|owner| !owner.eq_ignore_ascii_case(&pe.id.to_string()))
            {
                return Err(bad(
                    "CustomNetworkInterfaceNameInUse",
                    format!(
                        "Private endpoint '{}' cannot create its network interface '{}': a network interface of \
                         that name already exists in resource group '{}' and does not belong to the endpoint. \
                         Choose another customNetworkInterfaceName.",
                        pe.name,
                        nic.name,
                        nic.id.resource_group
                    ),
                ));
            }
        }
        wanted.insert(nic.id.key(), nic);
    }
    next.resources
        .retain(|key, res| endpoint_of(res).is_none() || wanted.contains_key(key));
    next.resources.extend(wanted);
    Ok(())
}

/// A PUT of a private endpoint keeps its DNS zone groups: in Azure they are
/// child resources the endpoint's own body does not carry (the lab stores
/// them in `properties.privateDnsZoneGroups`, so a body without that key
/// keeps the stored ones; deleting a group writes the list without it).
pub(crate) fn keep_zone_groups(res: &mut GenericResource, stored: &LabState) {
    if ResourceKind::from_type(&res.type_) != Some(ResourceKind::PrivateEndpoint)
        || res.properties.get("privateDnsZoneGroups").is_some()
    {
        return;
    }
    let Some(groups) = stored
        .get(&res.id)
        .and_then(|old| old.properties.get("privateDnsZoneGroups"))
    else {
        return;
    };
    if let Some(p) = res.properties.as_object_mut() {
        p.insert("privateDnsZoneGroups".into(), groups.clone());
    }
}

/// Every private endpoint rule over the whole desired state. `old` decides
/// what changed: the target and the zones are checked when they are written
/// (an endpoint whose target was deleted later stays, Disconnected, as in
/// Azure).
pub(crate) fn check(state: &LabState, inv: &Inventory, old: &Inventory) -> Result<(), AzureError> {
    for pe in &inv.private_endpoints {
        let before = old.private_endpoint(&pe.id);
        subnet_rules(inv, old, pe)?;
        connection_rules(state, pe, before)?;
        ip_configuration_rules(pe)?;
        nic_name_rules(pe, before)?;
        zone_group_rules(inv, pe, before)?;
    }
    Ok(())
}

fn subnet_rules(inv: &Inventory, old: &Inventory, pe: &PrivateEndpoint) -> Result<(), AzureError> {
    let label = format!("private endpoint '{}'", pe.name);
    let (vnet, subnet, _) = inv
        .subnet(&pe.subnet_id)
        .ok_or_else(|| missing_subnet(old, &pe.subnet_id, &label, false))?;
    if let Some(d) = subnet.delegations.first() {
        return Err(bad(
            "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated",
            format!(
                "Private endpoint '{}' cannot be created in subnet '{}' of virtual network '{}' because the subnet \
                 is delegated to '{}'. Delegated subnets cannot host private endpoints: use a subnet without \
                 delegation.",
                pe.name, subnet.name, vnet.name, d.service_name
            ),
        ));
    }
    if pe.location != vnet.location {
        return Err(bad(
            "LocationMismatch",
            format!(
                "Private endpoint '{}' is in '{}' but virtual network '{}' is in '{}'. A private endpoint must be \
                 deployed in the same region as its virtual network (its target may be anywhere).",
                pe.name, pe.location, vnet.name, vnet.location
            ),
        ));
    }
    Ok(())
}

fn connection_rules(
    state: &LabState,
    pe: &PrivateEndpoint,
    before: Option<&PrivateEndpoint>,
) -> Result<(), AzureError> {
    let [c] = pe.connections.as_slice() else {
        return Err(bad(
            "PrivateEndpointMustHaveOneConnection",
            format!(
                "Private endpoint '{}' has {} private link service connections; it needs exactly one, in \
                 properties.privateLinkServiceConnections (or manualPrivateLinkServiceConnections). Create one \
                 private endpoint per target and group id.",
                pe.name,
                pe.connections.len()
            ),
        ));
    };
    let conn_id = pe.id.child("privateLinkServiceConnections", &c.name);
    let target = c.target.as_ref().ok_or_else(|| {
        bad(
            "InvalidRequestFormat",
            format!(
                "Private link service connection {conn_id} needs properties.privateLinkServiceId: the id of the \
                 resource to connect to."
            ),
        )
    })?;
    let group_id = match c.group_ids.as_slice() {
        [] => {
            return Err(bad(
                "MissingParameterOnPrivateLinkServiceConnection",
                format!("Private link service connection {conn_id} is missing required parameter 'group Id'."),
            ))
        }
        [g] => g,
        many => {
            return Err(bad(
                "OnlyOneGroupIdPermitted",
                format!(
                    "Private link service connection {conn_id} has the following group Ids: {}. Only one group Id \
                     is permitted when connecting to a first-party resource ({target}). Create one private \
                     endpoint per group id.",
                    many.join(", ")
                ),
            ))
        }
    };
    let type_ = target.full_type();
    let valid: Vec<&str> = groups_of(&type_).map(|g| g.group_id).collect();
    if valid.is_empty() {
        let types: Vec<&str> = crate::model::PRIVATE_LINK_GROUPS
            .iter()
            .map(|g| g.resource_type)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return Err(bad(
            "PrivateEndpointBadRequest",
            format!(
                "Private endpoint '{}' targets '{target}' of type '{type_}', which the lab emulates no private \
                 link for. Private link resources of the lab: {}.",
                pe.name,
                types.join(", ")
            ),
        ));
    }
    if private_link_group(&type_, group_id).is_none() {
        return Err(bad(
            "PrivateEndpointBadRequest",
            format!(
                "Call to {type_} failed. Error message: the group id '{group_id}' of private link service \
                 connection {conn_id} is not valid for this resource. Valid group ids: {}.",
                valid.join(", ")
            ),
        ));
    }
    let unchanged = before.is_some_and(|b| b.connections == pe.connections);
    if !unchanged && state.get(target).is_none() {
        return Err(bad(
            "InvalidResourceReference",
            format!(
                "Resource '{target}' referenced by private endpoint '{}' was not found in the lab. Deploy the \
                 target first (its type and name must match) or fix privateLinkServiceId.",
                pe.name
            ),
        ));
    }
    Ok(())
}

fn ip_configuration_rules(pe: &PrivateEndpoint) -> Result<(), AzureError> {
    if pe.ip_configurations.len() > 1 {
        return Err(bad(
            "PrivateEndpointBadRequest",
            format!(
                "Private endpoint '{}' has {} ipConfigurations; the group it connects to has one member, so it \
                 takes at most one static address.",
                pe.name,
                pe.ip_configurations.len()
            ),
        ));
    }
    let (Some(cfg), Some(group)) = (pe.ip_configurations.first(), pe.group()) else {
        return Ok(());
    };
    let group_ok = cfg
        .group_id
        .as_deref()
        .is_none_or(|g| g.eq_ignore_ascii_case(group.group_id));
    let member_ok = cfg
        .member_name
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case(group.member_name));
    if !group_ok || !member_ok {
        return Err(bad(
            "PrivateEndpointBadRequest",
            format!(
                "Static ipConfiguration '{}' of private endpoint '{}' names group '{}' and member '{}'; the \
                 endpoint connects to group '{}', whose member is '{}'.",
                cfg.name,
                pe.name,
                cfg.group_id.as_deref().unwrap_or(""),
                cfg.member_name.as_deref().unwrap_or(""),
                group.group_id,
                group.member_name
            ),
        ));
    }
    Ok(())
}

/// A NIC name as Azure takes it: 1-80 letters, digits, `_.-`, starting with
/// a letter or digit, ending with a letter, digit or `_`.
fn valid_nic_name(n: &str) -> bool {
    (1..=80).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
}

fn nic_name_rules(
    pe: &PrivateEndpoint,
    before: Option<&PrivateEndpoint>,
) -> Result<(), AzureError> {
    if let Some(n) = pe.custom_nic_name.as_deref().filter(|n| !valid_nic_name(n)) {
        return Err(bad(
            "InvalidResourceName",
            format!(
                "customNetworkInterfaceName '{n}' of private endpoint '{}' is not a valid network interface name: \
                 1-80 letters, digits, underscores, periods or hyphens, starting with a letter or digit and \
                 ending with a letter, digit or underscore.",
                pe.name
            ),
        ));
    }
    if let Some(b) = before.filter(|b| b.custom_nic_name != pe.custom_nic_name) {
        return Err(bad(
            "CustomNetworkInterfaceNameCannotBeChanged",
            format!(
                "The network interface of private endpoint '{}' is '{}'; customNetworkInterfaceName can only be \
                 set when the endpoint is created. Delete and re-create the endpoint to rename it.",
                pe.name,
                b.nic_id().name()
            ),
        ));
    }
    Ok(())
}

fn zone_group_rules(
    inv: &Inventory,
    pe: &PrivateEndpoint,
    before: Option<&PrivateEndpoint>,
) -> Result<(), AzureError> {
    if pe.zone_groups.len() > 1 {
        let names: Vec<&str> = pe.zone_groups.iter().map(|g| g.name.as_str()).collect();
        return Err(bad(
            "OnlyOnePrivateDnsZoneGroupPermitted",
            format!(
                "Private endpoint '{}' has DNS zone groups {}; a private endpoint has at most one. Put every zone \
                 into one group (up to {MAX_ZONE_CONFIGS} zones).",
                pe.name,
                names.join(", ")
            ),
        ));
    }
    let Some(g) = pe.zone_groups.first() else {
        return Ok(());
    };
    if g.configs.len() > MAX_ZONE_CONFIGS {
        return Err(bad(
            "MaxPrivateDnsZoneConfigsExceeded",
            format!(
                "DNS zone group '{}' of private endpoint '{}' names {} zones; a zone group holds at most \
                 {MAX_ZONE_CONFIGS}.",
                g.name,
                pe.name,
                g.configs.len()
            ),
        ));
    }
    let written = |g: &PrivateDnsZoneGroup| {
        before
            .and_then(|b| b.zone_groups.iter().find(|o| o.id == g.id))
            .is_none_or(|o| o.configs != g.configs)
    };
    let mut seen: Vec<(&str, String)> = Vec::new();
    for c in &g.configs {
        let zone = c.zone_id.as_ref().ok_or_else(|| {
            bad(
                "InvalidRequestFormat",
                format!(
                    "Zone configuration '{}' of DNS zone group '{}' (private endpoint '{}') needs \
                     properties.privateDnsZoneId.",
                    c.name, g.name, pe.name
                ),
            )
        })?;
        if let Some((other, _)) = seen
            .iter()
            .find(|(n, z)| n.eq_ignore_ascii_case(&c.name) || *z == zone.key())
        {
            return Err(bad(
                "DuplicateResourceName",
                format!(
                    "DNS zone group '{}' of private endpoint '{}' names zone configuration '{}' twice (or zone \
                     '{}' in two configurations, with '{other}'). Each zone appears once, under a unique name.",
                    g.name,
                    pe.name,
                    c.name,
                    zone.name()
                ),
            ));
        }
        seen.push((&c.name, zone.key()));
        if written(g) && inv.dns_zone(zone).is_none() {
            return Err(bad(
                "InvalidResourceReference",
                format!(
                    "Private DNS zone '{zone}' referenced by DNS zone group '{}' of private endpoint '{}' was not \
                     found. Create the zone (e.g. privatelink.blob.core.windows.net) first or fix \
                     privateDnsZoneId.",
                    g.name, pe.name
                ),
            ));
        }
    }
    Ok(())
}
