//! Resource provider registration per subscription (seed, "Permissions": "If
//! the virtual network is in a different subscription than the app, you must
//! ensure that the subscription with the virtual network is registered for the
//! `Microsoft.Web` resource provider ... it's automatically registered when
//! creating the first web app in a subscription").

use crate::model::{AzureError, Inventory, LabState};

/// App Service's resource provider namespace.
pub const WEB_NAMESPACE: &str = "Microsoft.Web";

/// `az provider register --namespace NS --subscription SUB`.
pub fn register_provider(state: &LabState, subscription: &str, namespace: &str) -> LabState {
    let mut next = state.clone();
    add(&mut next, subscription, namespace);
    next
}

/// `namespace` is registered in `subscription`.
pub fn is_registered(state: &LabState, subscription: &str, namespace: &str) -> bool {
    state
        .registered_providers
        .get(&subscription.to_ascii_lowercase())
        .is_some_and(|set| set.iter().any(|n| n.eq_ignore_ascii_case(namespace)))
}

fn add(state: &mut LabState, subscription: &str, namespace: &str) {
    if is_registered(state, subscription, namespace) {
        return;
    }
    state
        .registered_providers
        .entry(subscription.to_ascii_lowercase())
        .or_default()
        .insert(namespace.to_string());
}

/// Every subscription with a site has `Microsoft.Web` registered; a site
/// integrated with a VNet of another subscription needs it registered there.
pub(crate) fn sync(inv: &Inventory, next: &mut LabState) -> Result<(), AzureError> {
    for site in &inv.sites {
        add(next, &site.id.subscription, WEB_NAMESPACE);
    }
    for site in &inv.sites {
        let Some(subnet) = &site.subnet_id else {
            continue;
        };
        let sub = &subnet.subscription;
        if !sub.eq_ignore_ascii_case(&site.id.subscription)
            && !is_registered(next, sub, WEB_NAMESPACE)
        {
            return Err(AzureError::conflict(
                "MissingSubscriptionRegistration",
                format!(
                    "The subscription '{sub}' is not registered to use namespace '{WEB_NAMESPACE}'. Site '{}' \
                     (subscription '{}') integrates with subnet '{subnet}' in that subscription, which needs the \
                     provider there. Register it with `vnet-agent provider register --namespace {WEB_NAMESPACE} \
                     --subscription {sub}` (creating a web app in that subscription also registers it).",
                    site.name, site.id.subscription
                ),
            ));
        }
    }
    Ok(())
}
