//! Azure DNS private zones (AZURE-FACTS §6; seed, "Azure DNS private zones"):
//! zone and record set names, CNAME exclusivity, virtual network links, and
//! the lab's public names of internet hosts.

use std::collections::BTreeMap;

use crate::model::{valid_dns_name, AzureError, Inventory, PrivateDnsZone, RecordType, ResourceId};

/// Every DNS rule over the whole desired state.
pub(crate) fn check(inv: &Inventory) -> Result<(), AzureError> {
    for zone in &inv.dns_zones {
        zone_rules(zone)?;
        link_rules(inv, zone)?;
    }
    vnet_rules(inv)?;
    host_rules(inv)
}

fn zone_rules(zone: &PrivateDnsZone) -> Result<(), AzureError> {
    if !valid_dns_name(&zone.zone, 2) || zone.zone.contains('_') {
        return Err(AzureError::bad_request(
            "InvalidPrivateDnsZoneName",
            format!(
                "The private DNS zone name '{}' is invalid: it needs at least two labels (e.g. \
                 privatelink.blob.core.windows.net), each 1-63 letters, digits or hyphens, not starting or ending \
                 with a hyphen, 253 characters at most.",
                zone.zone
            ),
        ));
    }
    let mut seen: BTreeMap<(&str, RecordType), ()> = BTreeMap::new();
    for rs in &zone.record_sets {
        let labels_ok = rs.name == "@"
            || rs
                .name
                .split('.')
                .enumerate()
                .all(|(i, l)| (i == 0 && l == "*") || crate::model::valid_label(l));
        if !labels_ok || zone.absolute(&rs.name).len() > 253 {
            return Err(AzureError::bad_request(
                "InvalidRecordSetName",
                format!(
                    "The record set name '{}' in zone '{}' is invalid: use '@' for the zone apex, or labels of \
                     1-63 letters, digits, hyphens or underscores separated by dots (relative to the zone, \
                     without the zone name).",
                    rs.name, zone.zone
                ),
            ));
        }
        if seen.insert((rs.name.as_str(), rs.rtype), ()).is_some() {
            return Err(AzureError::conflict(
                "Conflict",
                format!(
                    "Zone '{}' has two {} record sets named '{}'. A name holds one record set per type.",
                    zone.zone,
                    rs.rtype.as_str(),
                    rs.name
                ),
            ));
        }
        if rs.rtype == RecordType::Cname && rs.name == "@" {
            return Err(AzureError::bad_request(
                "BadRequest",
                format!(
                    "A CNAME record set cannot be created at the apex of zone '{}': the apex holds the zone's \
                     SOA record. Use an A record set at '@' instead.",
                    zone.zone
                ),
            ));
        }
    }
    for rs in zone
        .record_sets
        .iter()
        .filter(|r| r.rtype == RecordType::Cname)
    {
        if let Some(other) = zone
            .record_sets
            .iter()
            .find(|o| o.name == rs.name && o.rtype != RecordType::Cname)
        {
            return Err(AzureError::conflict(
                "Conflict",
                format!(
                    "The CNAME record set '{}' in zone '{}' conflicts with the {} record set of the same name: \
                     a CNAME record set cannot coexist with other record sets at the same name. Delete one of them.",
                    rs.name,
                    zone.zone,
                    other.rtype.as_str()
                ),
            ));
        }
    }
    Ok(())
}

fn link_rules(inv: &Inventory, zone: &PrivateDnsZone) -> Result<(), AzureError> {
    let mut linked: Vec<&ResourceId> = Vec::new();
    for link in &zone.links {
        let valid_name = !link.name.is_empty()
            && link.name.len() <= 80
            && link
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && link.name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_name {
            return Err(AzureError::bad_request(
                "InvalidVirtualNetworkLinkName",
                format!(
                    "The virtual network link name '{}' of zone '{}' is invalid: 1-80 letters, digits, hyphens, \
                     underscores or periods, starting with a letter or digit.",
                    link.name, zone.zone
                ),
            ));
        }
        let vnet = link.vnet_id.as_ref().ok_or_else(|| {
            AzureError::bad_request(
                "BadRequest",
                format!(
                    "Virtual network link '{}' of zone '{}' names no virtual network: set \
                     properties.virtualNetwork.id.",
                    link.name, zone.zone
                ),
            )
        })?;
        if inv.vnet(vnet).is_none() {
            return Err(AzureError::bad_request(
                "InvalidResourceReference",
                format!(
                    "The virtual network '{vnet}' referenced by virtual network link '{}' of private DNS zone \
                     '{}' was not found. Deploy the virtual network first or fix the id (classic virtual \
                     networks cannot be linked).",
                    link.name, zone.zone
                ),
            ));
        }
        if linked.contains(&vnet) {
            return Err(AzureError::conflict(
                "Conflict",
                format!(
                    "Virtual network '{vnet}' is already linked to private DNS zone '{}'. A virtual network can \
                     be linked to a zone only once; link '{}' is a duplicate.",
                    zone.zone, link.name
                ),
            ));
        }
        linked.push(vnet);
    }
    Ok(())
}

/// Per VNet: one linked zone per zone name; at most one registration zone.
fn vnet_rules(inv: &Inventory) -> Result<(), AzureError> {
    for vnet in &inv.vnets {
        let zones: Vec<&PrivateDnsZone> = inv.zones_linked_to(&vnet.id).collect();
        for (i, a) in zones.iter().enumerate() {
            if let Some(b) = zones[i + 1..].iter().find(|b| b.zone == a.zone) {
                return Err(AzureError::conflict(
                    "Conflict",
                    format!(
                        "Virtual network '{}' cannot be linked to private DNS zone '{}' ({}) because it is \
                         already linked to another zone with the same name ({}). Remove one of the links.",
                        vnet.id, a.zone, b.id, a.id
                    ),
                ));
            }
        }
        let registration: Vec<&PrivateDnsZone> = zones
            .iter()
            .copied()
            .filter(|z| {
                z.links
                    .iter()
                    .any(|l| l.registration_enabled && l.vnet_id.as_ref() == Some(&vnet.id))
            })
            .collect();
        if registration.len() > 1 {
            return Err(AzureError::conflict(
                "Conflict",
                format!(
                    "Virtual network '{}' has auto-registration enabled on links to zones '{}' and '{}': a \
                     virtual network can be a registration network of only one private DNS zone.",
                    vnet.id, registration[0].zone, registration[1].zone
                ),
            ));
        }
    }
    Ok(())
}

/// Internet hosts' `dnsName`s are valid and unique in the lab's public DNS.
fn host_rules(inv: &Inventory) -> Result<(), AzureError> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for h in &inv.hosts {
        let name = h.dns_name();
        if !valid_dns_name(&name, 2) {
            return Err(AzureError::bad_request(
                "InvalidRequestFormat",
                format!(
                    "Lab.Emulator/internetHosts '{}': property 'properties.dnsName' ('{name}') is not a valid \
                     host name with at least two labels.",
                    h.name
                ),
            )
            .with_target("properties.dnsName"));
        }
        if let Some(other) = seen.insert(name.clone(), &h.name) {
            return Err(AzureError::conflict(
                "Conflict",
                format!(
                    "Internet hosts '{other}' and '{}' have the same DNS name '{name}' in the lab's public DNS. \
                     Give one of them another properties.dnsName.",
                    h.name
                ),
            ));
        }
    }
    Ok(())
}
