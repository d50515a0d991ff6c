//! The Network Watchers of a lab: one per subscription and region that has a
//! virtual network, named as Azure's automatic enablement names them
//! (`NetworkWatcherRG/NetworkWatcher_<region>`). They are not stored: they
//! exist exactly while their region has a VNet, as in Azure, where deleting
//! the last VNet leaves a watcher nobody can use.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::model::{AzureError, LabState, ResourceId};

/// The resource group Azure creates for automatically enabled watchers.
pub const WATCHER_GROUP: &str = "NetworkWatcherRG";

/// `NetworkWatcher_<region>`.
pub fn watcher_name(location: &str) -> String {
    format!("NetworkWatcher_{}", location.to_ascii_lowercase())
}

/// The watcher of `location` in `subscription`.
pub fn watcher_id(subscription: &str, location: &str) -> ResourceId {
    ResourceId::new(
        subscription,
        WATCHER_GROUP,
        "Microsoft.Network",
        "networkWatchers",
        &watcher_name(location),
    )
}

/// (subscription, region) of every virtual network, lower-cased region.
fn regions(state: &LabState) -> BTreeSet<(String, String)> {
    let inv = crate::model::Inventory::parse_lenient(&state.resources);
    inv.vnets
        .iter()
        .map(|v| (v.id.subscription.clone(), v.location.to_ascii_lowercase()))
        .collect()
}

/// The watcher of the region a resource is in (az picks it the same way:
/// `network watcher test-ip-flow --vm X` uses the watcher of X's region).
pub fn for_location(
    state: &LabState,
    subscription: &str,
    location: &str,
) -> Result<ResourceId, AzureError> {
    let loc = location.to_ascii_lowercase();
    if regions(state)
        .iter()
        .any(|(s, l)| s.eq_ignore_ascii_case(subscription) && *l == loc)
    {
        Ok(watcher_id(subscription, &loc))
    } else {
        Err(AzureError::not_found(
            "NetworkWatcherNotFound",
            format!(
                "Network Watcher is not enabled in region '{loc}' of subscription '{subscription}': no virtual network exists there"
            ),
        ))
    }
}

/// The region of watcher `id`, or Azure's `ResourceNotFound`.
pub fn resolve(state: &LabState, id: &ResourceId) -> Result<String, AzureError> {
    let not_found = || {
        AzureError::not_found(
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.Network/networkWatchers/{}' under resource group '{}' was not found.",
                id.name(),
                id.resource_group
            ),
        )
    };
    // A watcher a template deployed (kept as a record) is as good as the
    // one Azure enables by itself.
    if let Some(r) = state.get(id) {
        return Ok(r.location.clone().unwrap_or_default().to_ascii_lowercase());
    }
    if !id.resource_group.eq_ignore_ascii_case(WATCHER_GROUP) {
        return Err(not_found());
    }
    regions(state)
        .into_iter()
        .find(|(s, l)| {
            s.eq_ignore_ascii_case(&id.subscription)
                && id.name().eq_ignore_ascii_case(&watcher_name(l))
        })
        .map(|(_, l)| l)
        .ok_or_else(not_found)
}

/// Azure's view of a watcher.
pub fn view(subscription: &str, location: &str) -> Value {
    let id = watcher_id(subscription, location);
    json!({
        "id": id.to_string(),
        "name": id.name(),
        "type": "Microsoft.Network/networkWatchers",
        "location": location,
        "resourceGroup": WATCHER_GROUP,
        "properties": {"provisioningState": "Succeeded"},
    })
}

/// Every watcher of the lab (`az network watcher list`), optionally of one subscription.
pub fn list(state: &LabState, subscription: Option<&str>) -> Vec<Value> {
    regions(state)
        .into_iter()
        .filter(|(s, _)| subscription.is_none_or(|x| x.eq_ignore_ascii_case(s)))
        .map(|(s, l)| view(&s, &l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_azures_automatic_enablement() {
        assert_eq!(watcher_name("WestEurope"), "NetworkWatcher_westeurope");
        let id = watcher_id("sub", "eastus");
        assert_eq!(id.resource_group, "NetworkWatcherRG");
        assert_eq!(id.name(), "NetworkWatcher_eastus");
    }

    #[test]
    fn an_empty_lab_has_no_watcher() {
        let s = LabState::default();
        assert!(list(&s, None).is_empty());
        let e = resolve(&s, &watcher_id("sub", "eastus")).unwrap_err();
        assert_eq!(e.code, "ResourceNotFound");
    }
}
