//! The computed parts of `show` for private DNS zones and their children
//! (record sets, virtual network links), and the zones a VNet resolves.

use serde_json::{json, Value};

use crate::model::{GenericResource, Inventory, ResourceId, GLOBAL_LOCATION};

/// Azure's limits shown on every zone (private DNS zone limits).
const MAX_RECORD_SETS: u32 = 25_000;
const MAX_LINKS: u32 = 1_000;
const MAX_REGISTRATION_LINKS: u32 = 100;

/// Complete a zone's `base` view (what ARM stored plus `provisioningState`):
/// record sets and links get their ids, types, `fqdn`, and each link its
/// `virtualNetworkLinkState` (`Completed`: the lab applies links at once) and
/// `provisioningState`; the zone gets Azure's counters and limits
/// (`numberOfRecordSets` counts the apex SOA record set, as Azure does).
pub fn zone_view(mut v: Value, res: &GenericResource) -> Value {
    let zone_name = res.name.trim_end_matches('.').to_ascii_lowercase();
    let Some(p) = v["properties"].as_object_mut() else {
        return v;
    };
    let mut record_sets = 1; // SOA
    if let Some(list) = p.get_mut("recordSets").and_then(Value::as_array_mut) {
        for rs in list.iter_mut() {
            let name = rs["name"].as_str().unwrap_or_default().to_string();
            let type_ = rs["type"].as_str().unwrap_or_default().to_string();
            let fqdn = if name == "@" {
                format!("{zone_name}.")
            } else {
                format!("{name}.{zone_name}.")
            };
            let id = res.id.child(&type_, &name).to_string();
            if let Some(o) = rs.as_object_mut() {
                o.insert("id".into(), json!(id));
                o.insert(
                    "type".into(),
                    json!(format!("Microsoft.Network/privateDnsZones/{type_}")),
                );
                let props = o.entry("properties").or_insert_with(|| json!({}));
                if let Some(props) = props.as_object_mut() {
                    props.insert("fqdn".into(), json!(fqdn));
                    props
                        .entry("ttl")
                        .or_insert(json!(crate::model::DEFAULT_RECORD_TTL));
                    props.insert("isAutoRegistered".into(), json!(false));
                }
            }
            record_sets += 1;
        }
    }
    let (mut links, mut registration) = (0, 0);
    if let Some(list) = p
        .get_mut("virtualNetworkLinks")
        .and_then(Value::as_array_mut)
    {
        for l in list.iter_mut() {
            let name = l["name"].as_str().unwrap_or_default().to_string();
            if let Some(o) = l.as_object_mut() {
                o.insert(
                    "id".into(),
                    json!(res.id.child("virtualNetworkLinks", &name).to_string()),
                );
                o.insert(
                    "type".into(),
                    json!("Microsoft.Network/privateDnsZones/virtualNetworkLinks"),
                );
                o.insert("location".into(), json!(GLOBAL_LOCATION));
                let props = o.entry("properties").or_insert_with(|| json!({}));
                if let Some(props) = props.as_object_mut() {
                    let reg = props
                        .get("registrationEnabled")
                        .is_some_and(|r| r == &json!(true) || r == &json!("true"));
                    props.insert("registrationEnabled".into(), json!(reg));
                    props.insert("virtualNetworkLinkState".into(), json!("Completed"));
                    props.insert("provisioningState".into(), json!("Succeeded"));
                    registration += u32::from(reg);
                }
            }
            links += 1;
        }
    }
    p.insert("numberOfRecordSets".into(), json!(record_sets));
    p.insert("maxNumberOfRecordSets".into(), json!(MAX_RECORD_SETS));
    p.insert("numberOfVirtualNetworkLinks".into(), json!(links));
    p.insert("maxNumberOfVirtualNetworkLinks".into(), json!(MAX_LINKS));
    p.insert(
        "numberOfVirtualNetworkLinksWithRegistration".into(),
        json!(registration),
    );
    p.insert(
        "maxNumberOfVirtualNetworkLinksWithRegistration".into(),
        json!(MAX_REGISTRATION_LINKS),
    );
    v
}

/// One record set or link of a zone view, by its child id.
pub fn child_view(zone_view: &Value, id: &ResourceId) -> Option<Value> {
    let (type_, name) = id.segments.get(1)?;
    let key = if type_.eq_ignore_ascii_case("virtualNetworkLinks") {
        "virtualNetworkLinks"
    } else {
        "recordSets"
    };
    zone_view["properties"][key]
        .as_array()?
        .iter()
        .find(|e| {
            e["id"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(&id.to_string()))
                || (key == "virtualNetworkLinks"
                    && e["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name)))
        })
        .cloned()
}

/// The names of the private DNS zones linked to `vnet`, sorted: a VNet
/// view's `emulator.privateDnsZones`.
pub fn linked_zone_names(inv: &Inventory, vnet: &ResourceId) -> Vec<String> {
    let mut names: Vec<String> = inv.zones_linked_to(vnet).map(|z| z.zone.clone()).collect();
    names.sort();
    names.dedup();
    names
}
