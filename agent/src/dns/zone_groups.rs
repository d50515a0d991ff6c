//! The A records private DNS zone groups write (AZURE-FACTS §6: "a PE
//! `privateDnsZoneGroups` writes the A record"). A zone group of a private
//! endpoint owns, in each zone it names, one A record set per public name of
//! the endpoint's target (`NAME` in `privatelink.blob.core.windows.net`,
//! `SITE` and `SITE.scm` in `privatelink.azurewebsites.net`) holding the
//! endpoint's address, TTL 10 and `metadata.creator` as Azure writes them.
//! The records are computed, never stored: they appear with the group and go
//! with the group or its endpoint. A group's record set replaces a
//! hand-written A record set of the same name (Azure's zone group takes the
//! record set over); two endpoints writing one name share the record set.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::{Record, RecordData, RecordType};
use crate::model::{
    GenericResource, Inventory, LabState, PrivateDnsZone, PrivateEndpoint, ResourceId,
};

/// TTL of the records a zone group writes (Azure writes 10 seconds).
pub const ZONE_GROUP_TTL: u32 = 10;

/// One A record set written by zone groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecordSet {
    /// The zone's id.
    pub zone: ResourceId,
    /// Relative name, lower-cased (`st1`, `web1.scm`).
    pub name: String,
    /// Sorted, without duplicates.
    pub addresses: Vec<Ipv4Addr>,
    /// `metadata.creator` (the first endpoint, by id, that writes it).
    pub creator: String,
}

/// `(zone config name, zone id, relative record names)` of every config of
/// `pe`'s zone groups: the names its target's public names take in the
/// privatelink zone (empty when the connection names no known group).
pub fn endpoint_records(
    state: &LabState,
    pe: &PrivateEndpoint,
) -> Vec<(String, Option<ResourceId>, Vec<String>)> {
    let names: Vec<String> = pe.names(state).into_iter().map(|(_, r)| r).collect();
    pe.zone_groups
        .iter()
        .flat_map(|g| &g.configs)
        .map(|c| (c.name.clone(), c.zone_id.clone(), names.clone()))
        .collect()
}

/// Every A record set the lab's zone groups write into existing zones, sorted
/// by zone and name.
pub fn group_record_sets(inv: &Inventory, state: &LabState) -> Vec<GroupRecordSet> {
    let mut sets: BTreeMap<(String, String), GroupRecordSet> = BTreeMap::new();
    for pe in &inv.private_endpoints {
        let Some(address) = pe.address(&state.allocations) else {
            continue;
        };
        for (_, zone, names) in endpoint_records(state, pe) {
            let Some(zone) = zone.filter(|z| inv.dns_zone(z).is_some()) else {
                continue;
            };
            for name in names {
                let set =
                    sets.entry((zone.key(), name.clone()))
                        .or_insert_with(|| GroupRecordSet {
                            zone: zone.clone(),
                            name,
                            addresses: Vec::new(),
                            creator: format!(
                                "created by private endpoint {} with resource guid {}",
                                pe.name,
                                pe.resource_guid()
                            ),
                        });
                if !set.addresses.contains(&address) {
                    set.addresses.push(address);
                    set.addresses.sort();
                }
            }
        }
    }
    sets.into_values().collect()
}

/// The zone groups' record sets in `zone`.
fn in_zone<'a>(
    inv: &Inventory,
    state: &LabState,
    zone: &'a ResourceId,
) -> impl Iterator<Item = GroupRecordSet> + 'a {
    group_record_sets(inv, state)
        .into_iter()
        .filter(move |s| &s.zone == zone)
}

/// Put the zone groups' records (`sets`, from [`group_record_sets`]) into
/// `records` (a zone's records with absolute names, as `dns::Tables`
/// gathers them): each replaces the A records of its name.
pub fn overlay_records(records: &mut Vec<Record>, sets: &[GroupRecordSet], zone: &PrivateDnsZone) {
    for set in sets.iter().filter(|s| s.zone == zone.id) {
        let name = zone.absolute(&set.name);
        records.retain(|r| !(r.rtype == RecordType::A && r.name == name));
        records.extend(set.addresses.iter().map(|a| Record {
            name: name.clone(),
            rtype: RecordType::A,
            ttl: ZONE_GROUP_TTL,
            data: RecordData::A(*a),
        }));
    }
}

/// A zone's view (`base` of the stored zone) with the zone groups' record
/// sets in `properties.recordSets`, each replacing a hand-written A record
/// set of its name, before `dns::view::zone_view` completes them.
pub fn overlay_view(
    mut v: Value,
    inv: &Inventory,
    state: &LabState,
    zone: &GenericResource,
) -> Value {
    let sets: Vec<GroupRecordSet> = in_zone(inv, state, &zone.id).collect();
    if sets.is_empty() {
        return v;
    }
    let Some(p) = v["properties"].as_object_mut() else {
        return v;
    };
    let list = p.entry("recordSets").or_insert_with(|| json!([]));
    let Some(list) = list.as_array_mut() else {
        return v;
    };
    for set in sets {
        list.retain(|rs| {
            !(rs["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("A"))
                && rs["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&set.name)))
        });
        list.push(json!({
            "name": set.name,
            "type": "A",
            "properties": {
                "ttl": ZONE_GROUP_TTL,
                "aRecords": set.addresses.iter().map(|a| json!({"ipv4Address": a.to_string()})).collect::<Vec<_>>(),
                "metadata": { "creator": set.creator },
            },
        }));
    }
    v
}
