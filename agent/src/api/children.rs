//! ARM child resources that live in an array of their parent's properties:
//! subnets of a VNet, security rules of an NSG, routes of a route table, DNS
//! zone groups of a private endpoint, peerings of an ExpressRoute circuit.
//! `PUT`/`PATCH`/`DELETE`/`GET` on the child's id edit the parent's array and
//! apply the parent, as ARM does (`az network vnet subnet update`,
//! `az network nsg rule create|update|delete`, `az network route-table route ...`,
//! `az network private-endpoint dns-zone-group ...`, `az network express-route
//! peering ...`).

use serde_json::{json, Value};

use super::daemon::{ApiError, Daemon};
use super::operations::merge_patch;
use crate::model::{AzureError, GenericResource, LabState, ResourceId};
use crate::plan;
use crate::validate;

/// `(parent type, child type)` -> the array under the parent's `properties`.
const ARRAY_CHILDREN: &[(&str, &str, &str)] = &[
    ("virtualNetworks", "subnets", "subnets"),
    (
        "virtualNetworks",
        "virtualNetworkPeerings",
        "virtualNetworkPeerings",
    ),
    ("networkSecurityGroups", "securityRules", "securityRules"),
    ("routeTables", "routes", "routes"),
    ("virtualMachines", "extensions", "extensions"),
    (
        "privateEndpoints",
        "privateDnsZoneGroups",
        "privateDnsZoneGroups",
    ),
    ("expressRouteCircuits", "peerings", "peerings"),
];

/// The parent's property array that holds this child, if it is such a child.
pub fn array_of(id: &ResourceId) -> Option<&'static str> {
    if id.segments.len() != 2 {
        return None;
    }
    let (parent, child) = (&id.segments[0].0, &id.segments[1].0);
    ARRAY_CHILDREN
        .iter()
        .find(|(p, c, _)| p.eq_ignore_ascii_case(parent) && c.eq_ignore_ascii_case(child))
        .map(|(_, _, array)| *array)
}

pub(crate) enum Edit<'a> {
    Put(&'a Value),
    Patch(&'a Value),
    Delete,
}

fn not_found(id: &ResourceId) -> AzureError {
    AzureError::not_found(
        "NotFound",
        format!(
            "Resource '{}' of type {} was not found.",
            id.name(),
            id.full_type()
        ),
    )
}

/// The parent with the child edited in its array.
pub(crate) fn edited(
    state: &LabState,
    id: &ResourceId,
    edit: Edit,
) -> Result<GenericResource, AzureError> {
    let array = array_of(id).expect("callers check array_of");
    let parent_id = id.parent().expect("two segments");
    let mut parent = state
        .get(&parent_id)
        .cloned()
        .ok_or_else(|| not_found(&parent_id))?;
    if !parent.properties.is_object() {
        parent.properties = json!({});
    }
    let items = parent
        .properties
        .as_object_mut()
        .expect("object")
        .entry(array)
        .or_insert_with(|| json!([]));
    if !items.is_array() {
        *items = json!([]);
    }
    let items = items.as_array_mut().expect("array");
    let pos = items.iter().position(|c| {
        c.get("name")
            .and_then(|n| n.as_str())
            .is_some_and(|n| n.eq_ignore_ascii_case(id.name()))
    });
    match (edit, pos) {
        (Edit::Put(body), pos) => {
            let child = json!({ "name": id.name(), "properties": body.get("properties").cloned().unwrap_or_else(|| json!({})) });
            match pos {
                Some(i) => items[i] = child,
                None => items.push(child),
            }
        }
        (Edit::Patch(body), Some(i)) => merge_patch(
            &mut items[i],
            &json!({ "properties": body.get("properties").cloned().unwrap_or_else(|| json!({})) }),
        ),
        (Edit::Delete, Some(i)) => {
            items.remove(i);
        }
        (_, None) => return Err(not_found(id)),
    }
    Ok(parent)
}

impl Daemon {
    /// Applies an edit of an array child through its parent; answers the child's view.
    async fn edit_child(&self, id: ResourceId, edit: Edit<'_>) -> Result<Value, ApiError> {
        let lab = self.config.lab.clone();
        let ctx = self.context();
        let deleting = matches!(edit, Edit::Delete);
        let (state, _) = self
            .commit_and_apply(|s| {
                let parent = edited(s, &id, edit)?;
                validate::apply_resources(s, vec![parent], &lab, &ctx)
            })
            .await?;
        if deleting {
            return Ok(json!({ "id": id.to_string(), "deleted": true }));
        }
        let mut v = child_view(&state, &self.config.lab, &id)?;
        crate::plan::view::with_etag(&state, &id, &mut v);
        Ok(v)
    }

    pub async fn put_child(&self, id: ResourceId, body: Value) -> Result<Value, ApiError> {
        self.edit_child(id, Edit::Put(&body)).await
    }

    pub async fn patch_child(&self, id: ResourceId, body: Value) -> Result<Value, ApiError> {
        self.edit_child(id, Edit::Patch(&body)).await
    }

    pub async fn delete_child(&self, id: ResourceId) -> Result<Value, ApiError> {
        self.edit_child(id, Edit::Delete).await
    }

    pub async fn show_child(&self, id: &ResourceId) -> Result<Value, ApiError> {
        let state = self.snapshot();
        let mut v = child_view(&state, &self.config.lab, id)?;
        crate::plan::view::with_etag(&state, id, &mut v);
        Ok(v)
    }
}

/// The child as its parent's view shows it, with its own id and type.
pub(crate) fn child_view(
    state: &LabState,
    lab: &crate::model::LabConfig,
    id: &ResourceId,
) -> Result<Value, ApiError> {
    let array = array_of(id).expect("callers check array_of");
    let parent_id = id.parent().expect("two segments");
    let parent = plan::view::resource_view(state, lab, &parent_id)?;
    let item = parent
        .pointer(&format!("/properties/{array}"))
        .and_then(|a| a.as_array())
        .and_then(|a| {
            a.iter().find(|c| {
                c.get("name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| n.eq_ignore_ascii_case(id.name()))
            })
        })
        .cloned()
        .ok_or_else(|| not_found(id))?;
    let mut item = item;
    if let Some(o) = item.as_object_mut() {
        o.insert("id".into(), json!(id.to_string()));
        o.insert("type".into(), json!(id.full_type()));
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_its_array_children() {
        let sub: ResourceId =
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/a".parse().unwrap();
        assert_eq!(array_of(&sub), Some("subnets"));
        let rule: ResourceId =
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/x"
                .parse()
                .unwrap();
        assert_eq!(array_of(&rule), Some("securityRules"));
        let group: ResourceId =
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/privateEndpoints/pe/privateDnsZoneGroups/default"
                .parse()
                .unwrap();
        assert_eq!(array_of(&group), Some("privateDnsZoneGroups"));
        let peering: ResourceId =
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/expressRouteCircuits/c/peerings/AzurePrivatePeering"
                .parse()
                .unwrap();
        assert_eq!(array_of(&peering), Some("peerings"));
        assert_eq!(array_of(&sub.parent().unwrap()), None);
    }

    /// `az network express-route peering create|delete`: the child's PUT and
    /// DELETE edit the circuit's `peerings`, and GET shows it with its id.
    #[test]
    fn circuit_peerings_are_array_children() {
        use crate::validate::fixtures::{fresh, rid};
        let state = fresh(json!([{
            "type": "Microsoft.Network/expressRouteCircuits", "name": "er1",
            "properties": {"serviceProviderProperties": {
                "serviceProviderName": "Equinix", "peeringLocation": "Amsterdam", "bandwidthInMbps": 50}}
        }]))
        .unwrap();
        let id = rid("Microsoft.Network/expressRouteCircuits/er1/peerings/AzurePrivatePeering");
        let body = json!({"properties": {"peeringType": "AzurePrivatePeering", "peerASN": 65020,
            "primaryPeerAddressPrefix": "192.168.15.16/30", "vlanId": 100}});
        let parent = edited(&state, &id, Edit::Put(&body)).unwrap();
        assert_eq!(
            parent.properties["peerings"],
            json!([{"name": "AzurePrivatePeering", "properties": body["properties"]}])
        );
        let circuit = crate::model::ExpressRouteCircuit::from_resource(&parent).unwrap();
        assert_eq!(circuit.private_peering.unwrap().vlan_id, 100);

        let mut with = state.clone();
        with.resources.insert(parent.id.key(), parent);
        let shown = child_view(&with, &crate::model::LabConfig::default(), &id).unwrap();
        assert_eq!(shown["id"], id.to_string());
        assert_eq!(
            shown["type"],
            "Microsoft.Network/expressRouteCircuits/peerings"
        );
        assert_eq!(shown["properties"]["peerASN"], 65020);
        assert_eq!(shown["properties"]["provisioningState"], "Succeeded");

        let gone = edited(&with, &id, Edit::Delete).unwrap();
        assert_eq!(gone.properties["peerings"], json!([]));
        let missing =
            rid("Microsoft.Network/expressRouteCircuits/nope/peerings/AzurePrivatePeering");
        assert_eq!(
            edited(&state, &missing, Edit::Put(&body)).unwrap_err().code,
            "NotFound"
        );
    }
}
