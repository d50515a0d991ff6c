//! `Microsoft.Network/networkWatchers`: the watchers of the lab's regions
//! (`diag::watcher`) and their actions. Each action is one arm of
//! [`Daemon::network_watcher`], named by ARM's lower-cased last path word.

use axum::http::Method;
use serde_json::{json, Value};

use super::daemon::{ApiError, Daemon};
use crate::diag::{connectivity, flow_log, flow_verify, packet_capture, watcher};
use crate::model::{AzureError, ResourceId};

impl Daemon {
    /// `GET /subscriptions/S/providers/Microsoft.Network/networkWatchers`, or
    /// of one resource group (only `NetworkWatcherRG` holds any).
    pub async fn network_watcher_list(&self, subscription: &str, group: Option<&str>) -> Value {
        let state = self.state.lock().await;
        let value = match group {
            Some(g) if !g.eq_ignore_ascii_case(watcher::WATCHER_GROUP) => Vec::new(),
            _ => watcher::list(&state, Some(subscription)),
        };
        json!({ "value": value })
    }

    /// A watcher (`rest` empty) or one of its actions and children: `rest` is
    /// the path after the watcher's name, as written.
    pub async fn network_watcher(
        &self,
        method: &Method,
        id: &ResourceId,
        rest: &[&str],
        body: &Value,
    ) -> Result<Value, ApiError> {
        let location = {
            let state = self.state.lock().await;
            watcher::resolve(&state, id)?
        };
        let action = rest.first().map(|a| a.to_ascii_lowercase());
        match (action.as_deref(), method) {
            (None, &Method::GET) => Ok(watcher::view(&id.subscription, &location)),
            (Some("ipflowverify"), &Method::POST) => {
                let state = self.state.lock().await;
                Ok(flow_verify::ip_flow_verify(
                    &state,
                    &self.config.lab,
                    &location,
                    body,
                )?)
            }
            (Some("nexthop"), &Method::POST) => {
                let state = self.state.lock().await;
                Ok(flow_verify::next_hop(
                    &state,
                    &self.config.lab,
                    &location,
                    body,
                )?)
            }
            (Some("connectivitycheck"), &Method::POST) => {
                let (check, netns) = {
                    let state = self.state.lock().await;
                    let check = connectivity::plan(&state, &self.config.lab, &location, body)?;
                    let netns =
                        crate::plan::exec_target(&state, &self.config.lab, &check.from)?.netns;
                    (check, netns)
                };
                let (dst, port, http) = (check.dst, check.port, check.http);
                let probes = tokio::task::spawn_blocking(move || {
                    let _span =
                        tracing::info_span!("connectivity_check", netns, %dst, port).entered();
                    crate::dataplane::probe::tcp_probes(
                        &netns,
                        dst,
                        port,
                        connectivity::PROBES,
                        std::time::Duration::from_millis(500),
                        http,
                    )
                })
                .await
                .map_err(|e| anyhow::anyhow!("probes: {e}"))??;
                Ok(connectivity::result(&check, &probes))
            }
            (Some("packetcaptures"), _) => {
                self.packet_capture(method, id, &location, &rest[1..], body)
                    .await
            }
            (Some("flowlogs"), _) => self.flow_log(method, id, &location, &rest[1..], body).await,
            _ => Err(AzureError::bad_request(
                "InvalidRequest",
                format!(
                    "{method} {}/{} is not an operation of a network watcher",
                    id,
                    rest.join("/")
                ),
            )
            .into()),
        }
    }
}

impl Daemon {
    /// `.../networkWatchers/NW/flowLogs[/NAME]`: VNet flow logs, kept as ARM
    /// records (`diag::flow_log` checks them) and run by `api::flow_logs`.
    async fn flow_log(
        &self,
        method: &Method,
        watcher: &ResourceId,
        location: &str,
        rest: &[&str],
        body: &Value,
    ) -> Result<Value, ApiError> {
        match (rest, method) {
            ([], &Method::GET) => {
                let state = self.state.lock().await;
                let value: Vec<Value> = flow_log::all(&state)
                    .iter()
                    .filter(|f| f.id.parent().as_ref() == Some(watcher))
                    .filter_map(|f| {
                        crate::plan::view::resource_view(&state, &self.config.lab, &f.id).ok()
                    })
                    .collect();
                Ok(json!({ "value": value }))
            }
            ([name], &Method::PUT) => {
                let mut body = body.clone();
                if let Some(o) = body.as_object_mut() {
                    o.entry("location").or_insert_with(|| json!(location));
                }
                self.put_resource(watcher.child("flowLogs", name), body)
                    .await
            }
            ([name], &Method::GET) => self.show(&watcher.child("flowLogs", name)).await,
            ([name], &Method::DELETE) => self.delete(watcher.child("flowLogs", name)).await,
            _ => Err(AzureError::bad_request(
                "InvalidRequest",
                format!(
                    "{method} {watcher}/flowLogs/{} is not an operation of flow logs",
                    rest.join("/")
                ),
            )
            .into()),
        }
    }
}

impl Daemon {
    /// `.../networkWatchers/NW/packetCaptures[/NAME[/stop|/queryStatus]]`.
    async fn packet_capture(
        &self,
        method: &Method,
        watcher: &ResourceId,
        location: &str,
        rest: &[&str],
        body: &Value,
    ) -> Result<Value, ApiError> {
        let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        match (lower.as_slice(), method) {
            ([], &Method::GET) => {
                let state = self.state.lock().await;
                let value: Vec<Value> = state
                    .resources
                    .values()
                    .filter(|r| {
                        r.type_
                            .eq_ignore_ascii_case(packet_capture::PACKET_CAPTURE_TYPE)
                    })
                    .filter(|r| r.id.parent().as_ref() == Some(watcher))
                    .filter_map(|r| {
                        crate::plan::view::resource_view(&state, &self.config.lab, &r.id).ok()
                    })
                    .collect();
                Ok(json!({ "value": value }))
            }
            ([_], &Method::PUT) => {
                let id = watcher.child("packetCaptures", rest[0]);
                let (state, spec) = {
                    let state = self.state.lock().await;
                    let res = crate::model::GenericResource {
                        type_: packet_capture::PACKET_CAPTURE_TYPE.into(),
                        name: id.name().to_string(),
                        location: Some(location.to_string()),
                        kind: None,
                        sku: None,
                        properties: body.get("properties").cloned().unwrap_or_else(|| json!({})),
                        tags: None,
                        identity: None,
                        id: id.clone(),
                    };
                    let spec = packet_capture::parse(&state, &res)?;
                    (state.clone(), spec)
                };
                let (captures, lab, dir) = (
                    self.packet_captures.clone(),
                    self.config.lab.clone(),
                    self.config.state_dir.clone(),
                );
                let computed =
                    tokio::task::spawn_blocking(move || captures.start(&state, &lab, &dir, spec))
                        .await
                        .map_err(|e| anyhow::anyhow!("capture start: {e}"))??;
                let record = crate::api::packet_captures::record_body(body, &computed, location);
                match self.put_resource(id.clone(), record).await {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        self.packet_captures.forget(&id);
                        Err(e)
                    }
                }
            }
            ([_], &Method::GET) => self.show(&watcher.child("packetCaptures", rest[0])).await,
            ([_], &Method::DELETE) => {
                let id = watcher.child("packetCaptures", rest[0]);
                self.packet_captures.forget(&id);
                self.delete(id).await
            }
            ([_, "stop"], &Method::POST) => {
                let id = watcher.child("packetCaptures", rest[0]);
                self.show(&id).await?;
                let captures = self.packet_captures.clone();
                let sid = id.clone();
                tokio::task::spawn_blocking(move || captures.stop(&sid))
                    .await
                    .map_err(|e| anyhow::anyhow!("capture stop: {e}"))?;
                Ok(self.packet_captures.status(&id))
            }
            ([_, "querystatus"], &Method::POST) => {
                let id = watcher.child("packetCaptures", rest[0]);
                self.show(&id).await?;
                Ok(self.packet_captures.status(&id))
            }
            _ => Err(AzureError::bad_request(
                "InvalidRequest",
                format!(
                    "{method} {watcher}/packetCaptures/{} is not an operation of packet captures",
                    rest.join("/")
                ),
            )
            .into()),
        }
    }
}

impl Daemon {
    /// `POST {site}/troubleshootNetwork` (lab): the app network
    /// troubleshooter's checks the desired state answers; `{instance,
    /// endpoint: {address, port}}`.
    pub async fn troubleshoot_network(
        &self,
        site: &ResourceId,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let instance = body.get("instance").and_then(Value::as_u64).unwrap_or(0) as u32;
        let endpoint = match body.get("endpoint") {
            Some(e) if !e.is_null() => {
                let address = e
                    .get("address")
                    .and_then(Value::as_str)
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| {
                        AzureError::bad_request(
                            "InvalidEndpoint",
                            "endpoint.address must be an IPv4 address",
                        )
                    })?;
                let port = e
                    .get("port")
                    .and_then(Value::as_u64)
                    .filter(|p| (1..=65535).contains(p))
                    .ok_or_else(|| {
                        AzureError::bad_request("InvalidEndpoint", "endpoint.port must be 1-65535")
                    })?;
                Some((address, port as u16))
            }
            _ => None,
        };
        let state = self.state.lock().await;
        let checks =
            crate::diag::troubleshoot::checks(&state, &self.config.lab, site, instance, endpoint)?;
        Ok(json!({ "checks": checks }))
    }
}
