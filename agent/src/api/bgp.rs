//! The daemon's side of BGP: it follows what each gateway's speaker learned
//! (a route watch per gateway namespace, `dataplane::route_watch`), feeds it
//! to the plan as observed state and reconciles, so an on-premises
//! announcement reaches the subnets with no request; and it answers
//! `list-learned-routes` / `list-advertised-routes` from the speaker itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::daemon::{ApiError, Daemon};
use crate::bgp::control;
use crate::dataplane::route_watch;
use crate::model::{AzureError, LearnedRoute, ResourceId};
use crate::plan::{NamespaceRole, NetworkPlan};

/// What a watch reports: a gateway (lower-cased id) and its learned routes.
pub(crate) type Learned = (String, Vec<LearnedRoute>);

/// The running watches, by gateway namespace.
#[derive(Default)]
pub(crate) struct BgpWatches {
    running: std::sync::Mutex<BTreeMap<String, (String, tokio::task::JoinHandle<()>)>>,
}

impl BgpWatches {
    /// One watch per gateway namespace that runs a speaker; the watches of
    /// gone gateways end and their routes are forgotten.
    pub(crate) fn sync(&self, plan: &NetworkPlan, tx: &UnboundedSender<Learned>) {
        let wanted = speaker_gateways(plan);
        let mut running = self.running.lock().unwrap();
        running.retain(|netns, (gw, task)| {
            if wanted.get(netns) == Some(gw) {
                return true;
            }
            task.abort();
            let _ = tx.send((gw.clone(), Vec::new()));
            false
        });
        for (netns, gw) in wanted {
            if running.contains_key(&netns) {
                continue;
            }
            let task = tokio::spawn(watch(netns.clone(), gw.clone(), tx.clone()));
            running.insert(netns, (gw, task));
        }
    }
}

/// The gateways (lower-cased ids) whose speaker runs in a namespace, from a plan.
fn speaker_gateways(plan: &NetworkPlan) -> BTreeMap<String, String> {
    plan.services
        .iter()
        .filter(|s| s.command == "bgp-speaker")
        .filter_map(|s| match &plan.namespaces.get(&s.netns)?.role {
            NamespaceRole::Gateway { resource_id } => Some((
                s.netns.clone(),
                resource_id.parse::<ResourceId>().ok()?.key(),
            )),
            _ => None,
        })
        .collect()
}

/// What the speakers already running hold (a daemon restart adopts them):
/// read once, before the first reconcile.
pub(crate) async fn observe_learned(
    state: &crate::model::LabState,
    lab: &crate::model::LabConfig,
) -> BTreeMap<String, Vec<LearnedRoute>> {
    let plan = crate::plan::build(state, lab);
    let mut out = BTreeMap::new();
    for (netns, gw) in speaker_gateways(&plan) {
        if !crate::dataplane::netns_path(&netns).exists() {
            continue;
        }
        if let Ok(w) = route_watch::open(&netns).await {
            if let Ok(routes) = route_watch::bird_routes(&w.handle).await {
                if !routes.is_empty() {
                    out.insert(gw, routes);
                }
            }
        }
    }
    out
}

/// Reports the namespace's BGP routes now and after every change (changes
/// that come together are read once). A namespace that is not there yet, or
/// a watch that fails, is retried every second.
async fn watch(netns: String, gw: String, tx: UnboundedSender<Learned>) {
    loop {
        if let Ok(mut w) = route_watch::open(&netns).await {
            let mut last: Option<Vec<LearnedRoute>> = None;
            loop {
                let Ok(routes) = route_watch::bird_routes(&w.handle).await else {
                    break;
                };
                if last.as_ref() != Some(&routes) {
                    if tx.send((gw.clone(), routes.clone())).is_err() {
                        return;
                    }
                    last = Some(routes);
                }
                if w.events.next().await.is_none() {
                    break;
                }
                // A BGP update installs its prefixes one message each.
                tokio::time::sleep(Duration::from_millis(10)).await;
                while w.events.try_recv().is_ok() {}
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Daemon {
    /// Applies what the watches report: the learned routes are part of the
    /// plan's input, so a change reconciles (only what changed is written).
    pub async fn bgp_loop(self: Arc<Self>, mut rx: UnboundedReceiver<Learned>) {
        while let Some((gw, routes)) = rx.recv().await {
            let mut batch = BTreeMap::from([(gw, routes)]);
            while let Ok((gw, routes)) = rx.try_recv() {
                batch.insert(gw, routes);
            }
            let mut state = self.state.lock().await;
            let mut changed = false;
            for (gw, routes) in batch {
                let old = state.learned_routes.get(&gw).cloned().unwrap_or_default();
                if old != routes {
                    changed = true;
                    if routes.is_empty() {
                        state.learned_routes.remove(&gw);
                    } else {
                        state.learned_routes.insert(gw, routes);
                    }
                }
            }
            if changed {
                self.publish(&state);
                use tracing::Instrument;
                let span = tracing::info_span!("bgp_routes_changed");
                if let Err(e) = self
                    .reconcile(&state, crate::dataplane::Scope::Changed)
                    .instrument(span)
                    .await
                {
                    tracing::warn!("applying learned BGP routes: {e:#}");
                }
            }
        }
    }

    /// The control socket of the speaker of gateway `id`.
    pub(super) fn speaker_socket(&self, id: &ResourceId) -> std::path::PathBuf {
        let key = crate::plan::speaker_key(id);
        let config = self.config.state_dir.join("services").join(format!(
            "{}.json",
            &crate::plan::names::sha256_hex(&key)[..16]
        ));
        crate::bgp::speaker::control_socket(&config)
    }

    async fn gateway_view(&self, id: &ResourceId) -> Result<Value, ApiError> {
        let v = self.show(id).await?;
        if !v["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Network/virtualNetworkGateways"))
        {
            return Err(AzureError::bad_request(
                "InvalidResourceType",
                format!("{id} is not a virtual network gateway."),
            )
            .into());
        }
        Ok(v)
    }

    /// `az network vnet-gateway list-learned-routes`: what the gateway's BGP
    /// speaker holds, as Azure prints it (its own prefixes with origin
    /// Network, learned ones EBgp with the AS path they came with).
    pub async fn learned_routes(&self, id: &ResourceId) -> Result<Value, ApiError> {
        let v = self.gateway_view(id).await?;
        let local = v["properties"]["bgpSettings"]["bgpPeeringAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut out = Vec::new();
        if v["properties"]["enableBgp"].as_bool() == Some(true) {
            let socket = self.speaker_socket(id);
            let lines =
                tokio::task::spawn_blocking(move || control::query(&socket, "show route all"))
                    .await
                    .map_err(anyhow::Error::from)?
                    .map_err(|e| {
                        AzureError::bad_request(
                            "GatewayBgpSpeakerNotRunning",
                            format!("The BGP speaker of {id} does not answer: {e:#}"),
                        )
                    })?;
            for r in control::parse_routes(&lines) {
                let bgp = r.protocol.starts_with("conn_");
                if !bgp && r.protocol != "vnet" {
                    continue;
                }
                out.push(json!({
                    "localAddress": local,
                    "network": r.network.to_string(),
                    "nextHop": if bgp { r.next_hop.map(|a| a.to_string()).unwrap_or_default() } else { String::new() },
                    "sourcePeer": if bgp { r.from.or(r.next_hop).map(|a| a.to_string()).unwrap_or_default() } else { local.clone() },
                    "origin": if bgp { "EBgp" } else { "Network" },
                    "asPath": r.as_path.iter().map(ToString::to_string).collect::<Vec<_>>().join("-"),
                    "weight": 32768,
                }));
            }
        }
        Ok(json!({ "value": out }))
    }

    /// `az network vnet-gateway list-advertised-routes --peer IP`: what the
    /// speaker sends that peer.
    pub async fn advertised_routes(
        &self,
        id: &ResourceId,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let v = self.gateway_view(id).await?;
        let peer = body["peer"].as_str().unwrap_or_default().to_string();
        let conns = self.show_connections_of(id).await;
        let Some((session, _)) = conns.iter().find(|(_, addr)| addr == &peer) else {
            return Err(AzureError::bad_request(
                "InvalidBgpPeer",
                format!(
                    "{peer:?} is not a BGP peer of {id}. Its peers: {}.",
                    conns
                        .iter()
                        .map(|(_, a)| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .into());
        };
        let local = v["properties"]["bgpSettings"]["bgpPeeringAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let asn = v["properties"]["bgpSettings"]["asn"]
            .as_u64()
            .unwrap_or_default();
        let socket = self.speaker_socket(id);
        let cmd = format!("show route all export {session}");
        let lines = tokio::task::spawn_blocking(move || control::query(&socket, &cmd))
            .await
            .map_err(anyhow::Error::from)??;
        let out: Vec<Value> = control::parse_routes(&lines)
            .into_iter()
            .map(|r| {
                let mut path = vec![asn.to_string()];
                path.extend(r.as_path.iter().map(ToString::to_string));
                json!({
                    "localAddress": local,
                    "network": r.network.to_string(),
                    "nextHop": local,
                    "sourcePeer": peer,
                    "origin": "Igp",
                    "asPath": path.join("-"),
                    "weight": 0,
                })
            })
            .collect();
        Ok(json!({ "value": out }))
    }

    /// (BGP session name, peer address) of each BGP connection of gateway `id`.
    async fn show_connections_of(&self, id: &ResourceId) -> Vec<(String, String)> {
        bgp_sessions_of(&self.list(None).await, id)
    }
}

/// (BGP session name, peer address) of each BGP connection of gateway `id`
/// in `listing` (the answer of `GET /resources`: `{"value": [...]}`).
fn bgp_sessions_of(listing: &Value, id: &ResourceId) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in listing["value"].as_array().into_iter().flatten() {
        let e = &c["emulator"];
        let gw = c["properties"]["virtualNetworkGateway1"]["id"]
            .as_str()
            .unwrap_or_default();
        if e["bgp"].as_bool() == Some(true) && gw.eq_ignore_ascii_case(&id.to_string()) {
            out.push((
                e["bgpSession"].as_str().unwrap_or_default().to_string(),
                e["siteAddress"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgp_sessions_come_from_the_listings_value() {
        let gw: ResourceId =
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworkGateways/gw1"
                .parse()
                .unwrap();
        let conn = |gateway: &str, bgp: bool, addr: &str| {
            json!({
                "type": "Microsoft.Network/connections",
                "properties": {"virtualNetworkGateway1": {"id": gateway}},
                "emulator": {"bgp": bgp, "bgpSession": format!("conn_{addr}"), "siteAddress": addr},
            })
        };
        let listing = json!({"value": [
            conn(&gw.to_string().to_ascii_lowercase(), true, "10.1.255.254"),
            conn(&gw.to_string(), false, "10.2.255.254"),
            conn("/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworkGateways/gw2", true, "10.3.255.254"),
        ]});
        assert_eq!(
            bgp_sessions_of(&listing, &gw),
            vec![("conn_10.1.255.254".to_string(), "10.1.255.254".to_string())]
        );
    }
}
