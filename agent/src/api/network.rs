//! Network diagnostics of the daemon: effective security rules (and, with
//! route tables, effective routes) of a NIC, a subnet or an app instance, and
//! the kernel's hit counts of every NSG rule in the NSG's view.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::daemon::{ApiError, Daemon};
use crate::dataplane;
use crate::model::{AzureError, ResourceId};
use crate::plan::nsg;

/// What an effective-rules request names.
enum Target {
    Nic(ResourceId),
    Subnet(ResourceId),
    App(ResourceId, u32),
}

fn target(id: &ResourceId, body: &Value) -> Result<Target, AzureError> {
    let ty = id.full_type().to_ascii_lowercase();
    match ty.as_str() {
        "microsoft.network/networkinterfaces" => Ok(Target::Nic(id.clone())),
        "microsoft.network/virtualnetworks/subnets" => Ok(Target::Subnet(id.clone())),
        "microsoft.web/sites" => {
            let instance = body.get("instance").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
            Ok(Target::App(id.clone(), instance))
        }
        _ => Err(AzureError::bad_request(
            "InvalidResourceType",
            format!(
                "effective routes and security rules are shown for NICs, subnets and apps, not {}",
                id.full_type()
            ),
        )),
    }
}

impl Daemon {
    /// `POST .../effectiveNetworkSecurityGroups` (`az network nic list-effective-nsg`).
    pub async fn effective_nsgs(&self, id: &ResourceId, body: &Value) -> Result<Value, ApiError> {
        let t = target(id, body)?;
        let state = self.snapshot();
        let lab = &self.config.lab;
        Ok(match t {
            Target::Nic(id) => nsg::effective_security_rules_for_nic(&state, lab, &id)?,
            Target::Subnet(id) => nsg::effective_security_rules_for_subnet(&state, lab, &id)?,
            Target::App(id, n) => nsg::effective_security_rules_for_app(&state, lab, &id, n)?,
        })
    }

    /// Adds each rule's hit counts (`emulator.hits {packets, bytes}`) to an
    /// NSG's view, summed over the fabrics it is applied in.
    pub(super) async fn annotate_nsg_hits(&self, id: &ResourceId, view: &mut Value) {
        let names = {
            let state = self.snapshot();
            nsg::nsg_counter_names(&state, &self.config.lab, id)
        };
        let mut by_ns: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
        let mut hits: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (rule, netns, counter) in names {
            if !by_ns.contains_key(&netns) {
                let counters = dataplane::read_counters(&netns).await.unwrap_or_default();
                by_ns.insert(netns.clone(), counters);
            }
            let (p, b) = by_ns[&netns].get(&counter).copied().unwrap_or((0, 0));
            let e = hits.entry(rule.to_ascii_lowercase()).or_default();
            e.0 += p;
            e.1 += b;
        }
        for (group, array) in [
            ("securityRules", "securityRules"),
            ("defaultSecurityRules", "defaultSecurityRules"),
        ] {
            let Some(rules) = view
                .pointer_mut(&format!("/properties/{array}"))
                .and_then(|v| v.as_array_mut())
            else {
                continue;
            };
            for r in rules {
                let name = r.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                let (p, b) = hits
                    .get(&format!("{group}/{name}").to_ascii_lowercase())
                    .copied()
                    .unwrap_or((0, 0));
                if let Some(o) = r.as_object_mut() {
                    let em = o.entry("emulator").or_insert_with(|| json!({}));
                    em["hits"] = json!({ "packets": p, "bytes": b });
                }
            }
        }
    }
}

impl Daemon {
    /// `POST .../effectiveRouteTable` (`az network nic show-effective-route-table`).
    pub async fn effective_routes(&self, id: &ResourceId, body: &Value) -> Result<Value, ApiError> {
        let t = target(id, body)?;
        let state = self.snapshot();
        let lab = &self.config.lab;
        Ok(match t {
            Target::Nic(id) => crate::plan::effective_routes_for_nic(&state, lab, &id)?,
            Target::Subnet(id) => crate::plan::effective_routes_for_subnet(&state, lab, &id)?,
            Target::App(id, n) => crate::plan::effective_routes_for_app(&state, lab, &id, n)?,
        })
    }

    /// `PUT /lab/subscriptions/S`: a subscription's settings (outbound SMTP).
    pub async fn put_subscription_settings(
        &self,
        subscription: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let settings = crate::model::SubscriptionSettings {
            allow_outbound_smtp: body
                .get("allowOutboundSmtp")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        };
        self.commit_and_apply(|s| {
            Ok(crate::validate::set_subscription_settings(
                s,
                subscription,
                settings,
            ))
        })
        .await?;
        self.subscription_settings(subscription).await
    }

    pub async fn subscription_settings(&self, subscription: &str) -> Result<Value, ApiError> {
        let state = self.snapshot();
        let s = state
            .subscription_settings
            .get(&subscription.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        Ok(json!({ "subscriptionId": subscription, "allowOutboundSmtp": s.allow_outbound_smtp }))
    }
}

impl Daemon {
    /// Lab only: `POST {vnet}/resolve {name, type}` — what Azure-provided DNS
    /// (168.63.129.16) answers inside that VNet: linked private zones first,
    /// then the lab's public names.
    pub async fn resolve(&self, vnet: &ResourceId, body: &Value) -> Result<Value, ApiError> {
        if !vnet
            .full_type()
            .eq_ignore_ascii_case("Microsoft.Network/virtualNetworks")
        {
            return Err(AzureError::bad_request(
                "InvalidResourceType",
                "resolve is an action of a virtual network",
            )
            .into());
        }
        let name = body
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let ty = body.get("type").and_then(|v| v.as_str()).unwrap_or("A");
        let rtype = crate::model::RecordType::parse(ty).ok_or_else(|| {
            AzureError::bad_request(
                "InvalidRecordType",
                format!("record type '{ty}' is not one of A, AAAA, CNAME, TXT"),
            )
        })?;
        let state = self.snapshot();
        if state.get(vnet).is_none() {
            return Err(AzureError::not_found(
                "ResourceNotFound",
                format!("The virtual network '{vnet}' was not found."),
            )
            .into());
        }
        let answer = crate::dns::resolve(&state, &self.config.lab, vnet, name, rtype);
        let mut v = answer.to_json();
        v["question"] = json!({ "name": name, "type": rtype.as_str(), "server": "168.63.129.16" });
        Ok(v)
    }
}
