//! Operations on one resource beyond PUT/GET/DELETE: ARM's PATCH, a site's
//! `networkConfig/virtualNetwork` (integration), `virtualNetworkConnections`
//! and `restart`.

use serde_json::{json, Value};

use super::daemon::{ApiError, Daemon};
use crate::model::{AzureError, GenericResource, LabState, ResourceId};
use crate::plan;
use crate::plan::view::not_found;
use crate::validate;

/// RFC 7396 JSON merge patch: objects merge, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("made an object above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The stored resource with `patch` merged into its ARM body.
pub(crate) fn patched(
    state: &LabState,
    id: &ResourceId,
    patch: &Value,
) -> Result<GenericResource, AzureError> {
    let stored = state.get(id).ok_or_else(|| not_found(id))?;
    let mut body = json!({
        "location": stored.location, "kind": stored.kind, "sku": stored.sku,
        "properties": stored.properties, "tags": stored.tags,
        "identity": stored.identity,
    });
    merge_patch(&mut body, patch);
    let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Ok(GenericResource {
        id: stored.id.clone(),
        type_: stored.type_.clone(),
        name: stored.name.clone(),
        location: text("location"),
        kind: text("kind"),
        sku: body.get("sku").filter(|v| !v.is_null()).cloned(),
        properties: body.get("properties").cloned().unwrap_or_else(|| json!({})),
        tags: body.get("tags").filter(|v| !v.is_null()).cloned(),
        identity: body.get("identity").filter(|v| !v.is_null()).cloned(),
    })
}

impl Daemon {
    /// `PATCH` of a resource (as `az webapp config set`, `az appservice plan update`).
    pub async fn patch(&self, id: ResourceId, patch: Value) -> Result<Value, ApiError> {
        let lab = self.config.lab.clone();
        let ctx = self.context();
        let (state, _) = self
            .commit_and_apply(|s| {
                let res = patched(s, &id, &patch)?;
                validate::apply_resources(s, vec![res], &lab, &ctx)
            })
            .await?;
        Ok(plan::view::resource_view(&state, &self.config.lab, &id)?)
    }

    /// `PUT .../sites/NAME/networkConfig/virtualNetwork`: integrate the app.
    pub async fn connect(&self, site: ResourceId, body: Value) -> Result<Value, ApiError> {
        let subnet = body
            .pointer("/properties/subnetResourceId")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                AzureError::bad_request(
                    "InvalidRequestContent",
                    "properties.subnetResourceId is required",
                )
            })?
            .to_string();
        subnet.parse::<ResourceId>()?;
        self.patch(
            site.clone(),
            json!({"properties": {"virtualNetworkSubnetId": subnet}}),
        )
        .await?;
        self.network_config(&site).await
    }

    /// `DELETE .../sites/NAME/networkConfig/virtualNetwork`: disconnect. The
    /// app restarts (seed: "Your app is restarted when you disconnect"); the
    /// VNet and subnet stay as they are.
    pub async fn disconnect(&self, site: ResourceId) -> Result<Value, ApiError> {
        let before = self.site_pids(&site);
        self.patch(
            site.clone(),
            json!({"properties": {"virtualNetworkSubnetId": null}}),
        )
        .await?;
        // The new plan already restarted every process whose environment
        // changed (WEBSITE_PRIVATE_IP is gone); restart only the others.
        let after = self.site_pids(&site);
        for (key, pid) in &before {
            if after.get(key) == Some(pid) {
                self.supervisor.restart(key)?;
            }
        }
        Ok(
            json!({ "id": format!("{site}/networkConfig/virtualNetwork"), "properties": { "subnetResourceId": null } }),
        )
    }

    /// The `networkConfig/virtualNetwork` child of a site.
    pub async fn network_config(&self, site: &ResourceId) -> Result<Value, ApiError> {
        let view = self.show(site).await?;
        let subnet = view
            .pointer("/properties/virtualNetworkSubnetId")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(json!({
            "id": format!("{site}/networkConfig/virtualNetwork"),
            "name": "virtualNetwork",
            "type": "Microsoft.Web/sites/networkConfig",
            "properties": { "subnetResourceId": subnet, "swiftSupported": true },
        }))
    }

    /// `GET .../sites/NAME/virtualNetworkConnections` or the same on a plan:
    /// what `az webapp vnet-integration list` prints.
    pub async fn connections(&self, owner: &ResourceId) -> Result<Value, ApiError> {
        let state = self.snapshot();
        state.get(owner).ok_or_else(|| not_found(owner))?;
        let is_plan = owner
            .full_type()
            .eq_ignore_ascii_case("Microsoft.Web/serverfarms");
        let mut out = Vec::new();
        for res in state.resources.values() {
            if !res.type_.eq_ignore_ascii_case("Microsoft.Web/sites") {
                continue;
            }
            let belongs = if is_plan {
                res.properties
                    .get("serverFarmId")
                    .and_then(|v| v.as_str())
                    .is_some_and(|p| p.eq_ignore_ascii_case(&owner.to_string()))
            } else {
                res.id == *owner
            };
            let Some(subnet) = res
                .properties
                .get("virtualNetworkSubnetId")
                .and_then(|v| v.as_str())
            else {
                continue;
            };
            if !belongs {
                continue;
            }
            let Ok(subnet_id) = subnet.parse::<ResourceId>() else {
                continue;
            };
            let vnet = subnet_id
                .parent()
                .map(|v| v.to_string())
                .unwrap_or_default();
            let vnet_name = subnet_id
                .parent()
                .map(|v| v.name().to_string())
                .unwrap_or_default();
            out.push(json!({
                "id": format!("{}/virtualNetworkConnections/{vnet_name}", res.id),
                "name": subnet_id.name(),
                "type": "Microsoft.Web/sites/virtualNetworkConnections",
                "location": res.location,
                "properties": {
                    "vnetResourceId": subnet_id.to_string(),
                    "isSwift": true,
                    "resyncRequired": false,
                    "certThumbprint": null,
                    "routes": [],
                    "dnsServers": null,
                },
                "emulator": { "site": res.id.to_string(), "virtualNetwork": vnet },
            }));
        }
        Ok(Value::Array(out))
    }

    /// The supervised processes of a site, by key, with their PIDs.
    fn site_pids(&self, site: &ResourceId) -> std::collections::BTreeMap<String, i32> {
        let prefix = format!("{}/", site.key());
        self.supervisor
            .status()
            .into_iter()
            .filter(|p| p.key.to_ascii_lowercase().starts_with(&prefix))
            .map(|p| (p.key, p.pid))
            .collect()
    }

    /// Restarts every instance of a site's app process.
    pub async fn restart(&self, site: &ResourceId) -> Result<Value, ApiError> {
        // A restart runs the platform's startup work again (content share,
        // image pull, Key Vault references), as Azure does at every start.
        let restarted_by_startup = self.forget_startups(site);
        self.resync().await?;
        let keys: Vec<String> = self.site_pids(site).into_keys().collect();
        for key in keys.iter().filter(|k| !restarted_by_startup.contains(k)) {
            self.supervisor.restart(key)?;
        }
        Ok(json!({ "id": site.to_string(), "restarted": keys }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7396() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(
            &mut t,
            &json!({"a": null, "b": {"c": 5}, "e": [2], "f": "x"}),
        );
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "e": [2], "f": "x"}));
    }
}
