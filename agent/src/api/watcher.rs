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
        let state = self.snapshot();
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
            let state = self.snapshot();
            watcher::resolve(&state, id)?
        };
        let action = rest.first().map(|a| a.to_ascii_lowercase());
        match (action.as_deref(), method) {
            (None, &Method::GET) => Ok(watcher::view(&id.subscription, &location)),
            (Some("ipflowverify"), &Method::POST) => {
                let state = self.snapshot();
                Ok(flow_verify::ip_flow_verify(
                    &state,
                    &self.config.lab,
                    &location,
                    body,
                )?)
            }
            (Some("nexthop"), &Method::POST) => {
                let state = self.snapshot();
                Ok(flow_verify::next_hop(
                    &state,
                    &self.config.lab,
                    &location,
                    body,
                )?)
            }
            (Some("connectivitycheck"), &Method::POST) => {
                let (check, netns) = {
                    let state = self.snapshot();
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
            (Some("explain"), &Method::POST) => self.explain(&location, body).await,
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
            ([], &Method::GET) => Ok(self.children_of(watcher, flow_log::FLOW_LOG_TYPE).await),
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
            ([], &Method::GET) => Ok(self
                .children_of(watcher, packet_capture::PACKET_CAPTURE_TYPE)
                .await),
            ([_], &Method::PUT) => {
                let id = watcher.child("packetCaptures", rest[0]);
                let (state, spec) = {
                    let state = self.snapshot();
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
        let state = self.snapshot();
        let checks =
            crate::diag::troubleshoot::checks(&state, &self.config.lab, site, instance, endpoint)?;
        Ok(json!({ "checks": checks }))
    }
}

/// A rule of an `nft -j list ruleset` listing, short.
fn rule_texts(listing: &Value) -> std::collections::BTreeMap<u64, String> {
    listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("rule"))
        .filter_map(|r| {
            let mut text = r["comment"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| r["expr"].to_string());
            if text.len() > 240 {
                text.truncate(240);
                text.push('…');
            }
            Some((r["handle"].as_u64()?, text))
        })
        .collect()
}

impl Daemon {
    /// `POST .../explain` (lab only): one traced probe, reported hop by hop.
    async fn explain(&self, location: &str, body: &Value) -> Result<Value, ApiError> {
        use crate::diag::explain::{self, Place};
        use crate::plan::NamespaceRole as R;
        let bad = |m: &str| AzureError::bad_request("InvalidExplainRequest", m.to_string());
        let protocol = body["protocol"]
            .as_str()
            .unwrap_or("tcp")
            .to_ascii_lowercase();
        if protocol != "tcp" && protocol != "udp" {
            return Err(bad("protocol must be tcp or udp").into());
        }
        let dst: std::net::Ipv4Addr = body["destination"]["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| bad("destination.address must be an IPv4 address"))?;
        let port = body["destination"]["port"]
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| bad("destination.port must be 1-65535"))? as u16;
        let (places, source_ns, nsgs, prediction) = {
            let state = self.snapshot();
            let lab = &self.config.lab;
            let mut tb = json!({ "targetResourceId": body["source"]["resourceId"] });
            if let Some(i) = body["source"].get("instance") {
                tb["instance"] = i.clone();
            }
            let target = flow_verify::target(&state, lab, &tb, None)?;
            let (src_ip, exec, rows) = match &target {
                flow_verify::Target::Nic { nic, addresses, .. } => (
                    addresses[0],
                    crate::plan::ExecTarget::Vm {
                        name: tb["targetResourceId"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    },
                    crate::plan::effective_routes_for_nic(&state, lab, nic)?,
                ),
                flow_verify::Target::App {
                    site,
                    instance,
                    address,
                    ..
                } => (
                    *address,
                    crate::plan::ExecTarget::App {
                        site: site.to_string(),
                        instance: *instance,
                    },
                    crate::plan::effective_routes_for_app(&state, lab, site, *instance)?,
                ),
            };
            let mut verify = tb.clone();
            for (k, v) in [
                ("direction", "Outbound".to_string()),
                ("protocol", protocol.to_ascii_uppercase()),
                ("localIPAddress", src_ip.to_string()),
                ("localPort", "40000".into()),
                ("remoteIPAddress", dst.to_string()),
                ("remotePort", port.to_string()),
            ] {
                verify[k] = json!(v);
            }
            let outbound = flow_verify::ip_flow_verify(&state, lab, location, &verify)?;
            let mut hb = tb.clone();
            hb["sourceIPAddress"] = json!(src_ip.to_string());
            hb["destinationIPAddress"] = json!(dst.to_string());
            let next = flow_verify::next_hop(&state, lab, location, &hb)?;
            let route = flow_verify::route_to(&rows, dst)
                .cloned()
                .unwrap_or(Value::Null);
            let nics = crate::plan::vm_nics(&state, lab);
            let inv = crate::model::Inventory::parse_lenient(&state.resources);
            let inbound = match nics.iter().find(|n| n.addresses.contains(&dst)) {
                Some(n) => {
                    let vm = inv.vms.iter().find(|v| v.nic_ids.contains(&n.nic));
                    match vm {
                        Some(vm) => flow_verify::ip_flow_verify(&state, lab, location, &json!({
                            "targetResourceId": vm.id.to_string(), "targetNicResourceId": n.nic.to_string(),
                            "direction": "Inbound", "protocol": protocol.to_ascii_uppercase(),
                            "localIPAddress": dst.to_string(), "localPort": port.to_string(),
                            "remoteIPAddress": src_ip.to_string(), "remotePort": "40000",
                        }))
                        .unwrap_or(Value::Null),
                        None => Value::Null,
                    }
                }
                None => Value::Null,
            };
            let source_ns = crate::plan::exec_target(&state, lab, &exec)?.netns;
            let plan = crate::plan::build(&state, lab);
            let hop_ip: Option<std::net::Ipv4Addr> = next["nextHopIpAddress"]
                .as_str()
                .and_then(|s| s.parse().ok());
            let holds = |ns: &crate::plan::NamespacePlan, ip: std::net::Ipv4Addr| {
                ns.addresses
                    .iter()
                    .any(|a| a.address.addr() == ip && a.ifname != "lo")
                    || ns
                        .addresses
                        .iter()
                        .any(|a| a.address.addr() == ip && a.address.prefix_len() == 32)
            };
            let source_worker = match &target {
                flow_verify::Target::App { .. } => plan
                    .namespaces
                    .values()
                    .find(|ns| {
                        matches!(ns.role, R::Worker { .. })
                            && plan.veths.iter().any(|v| {
                                (v.a.netns == source_ns && v.b.netns == ns.name)
                                    || (v.b.netns == source_ns && v.a.netns == ns.name)
                            })
                    })
                    .map(|ns| ns.name.clone()),
                _ => None,
            };
            let mut ranked: Vec<(u8, Place)> = Vec::new();
            for ns in plan.namespaces.values() {
                let is_dst = matches!(
                    ns.role,
                    R::VirtualMachine { .. }
                        | R::InternetHost { .. }
                        | R::Service { .. }
                        | R::OnPremisesHost { .. }
                ) && holds(ns, dst)
                    && ns.name != source_ns;
                let rank = if ns.name == source_ns {
                    Some(0)
                } else if Some(&ns.name) == source_worker.as_ref() {
                    Some(1)
                } else if is_dst {
                    Some(9)
                } else {
                    match &ns.role {
                        R::Fabric { .. } => Some(2),
                        R::VirtualMachine { .. } if hop_ip.is_some_and(|ip| holds(ns, ip)) => {
                            Some(3)
                        }
                        R::Gateway { .. } => Some(4),
                        R::Stamp { .. } => Some(5),
                        R::Internet => Some(6),
                        R::OnPremisesSite { .. } => Some(7),
                        _ => None,
                    }
                };
                if let Some(r) = rank {
                    ranked.push((
                        r,
                        Place {
                            netns: ns.name.clone(),
                            role: crate::diag::graph::role_words(&ns.role),
                            destination: is_dst,
                        },
                    ));
                }
            }
            ranked.sort_by(|a, b| (a.0, &a.1.netns).cmp(&(b.0, &b.1.netns)));
            let nsgs: std::collections::BTreeMap<String, ResourceId> = inv
                .nsgs
                .iter()
                .map(|n| {
                    (
                        crate::plan::names::sha256_hex(&n.id.key())[..8].to_string(),
                        n.id.clone(),
                    )
                })
                .collect();
            let prediction = json!({ "outbound": outbound, "inbound": inbound, "nextHop": next, "route": route });
            (
                ranked.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
                source_ns,
                nsgs,
                prediction,
            )
        };
        let names: Vec<String> = places.iter().map(|p| p.netns.clone()).collect();
        let span = tracing::info_span!("explain", namespaces = names.len(), %dst, port);
        let (events, answered) = tracing::Instrument::instrument(
            self.traced_probe(names, source_ns, protocol.clone(), dst, port),
            span,
        )
        .await?;
        let mut rules = std::collections::BTreeMap::new();
        for ns in events
            .iter()
            .map(|(ns, _)| ns.clone())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if let Ok(listing) = crate::dataplane::nft_list_ruleset(&ns).await {
                rules.insert(ns, rule_texts(&listing));
            }
        }
        let ctx = explain::Context {
            places: &places,
            nsgs: &nsgs,
            rules: &rules,
            prediction: &prediction,
            trace_table: crate::dataplane::trace::TRACE_TABLE,
        };
        let mut report = explain::report(&ctx, &events, answered);
        report["source"] = body["source"].clone();
        report["destination"] = json!(format!("{dst}:{port}"));
        report["protocol"] = json!(protocol);
        Ok(report)
    }

    /// Tracing on in `names`, one probe from `source_ns`, the events, tracing
    /// off (also when the probe failed).
    async fn traced_probe(
        &self,
        names: Vec<String>,
        source_ns: String,
        protocol: String,
        dst: std::net::Ipv4Addr,
        port: u16,
    ) -> Result<(Vec<(String, crate::diag::explain::TraceEvent)>, bool), ApiError> {
        let tracing_on = crate::dataplane::trace::Tracing::start(&names, &protocol, port).await?;
        let answered = tokio::task::spawn_blocking(move || {
            crate::dataplane::trace::probe(
                &source_ns,
                &protocol,
                dst,
                port,
                std::time::Duration::from_millis(1000),
            )
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let events = tracing_on.collect().await;
        tracing_on.stop().await;
        let answered = answered.map_err(|e| anyhow::anyhow!("probe: {e}"))??;
        Ok((events, answered))
    }
}

/// `GET /lab/graph` query.
#[derive(serde::Deserialize)]
pub struct GraphQuery {
    pub format: Option<String>,
    #[serde(rename = "resourceGroup")]
    pub resource_group: Option<String>,
}

impl Daemon {
    /// The lab's graph: `(content type, body)`.
    pub async fn lab_graph(&self, q: &GraphQuery) -> Result<(&'static str, String), ApiError> {
        let format = q.format.as_deref().unwrap_or("json").to_ascii_lowercase();
        if !matches!(format.as_str(), "json" | "dot" | "mermaid" | "html") {
            return Err(AzureError::bad_request(
                "InvalidGraphFormat",
                format!("'{format}' is not a graph format: use dot, mermaid, html or json."),
            )
            .into());
        }
        let graph = {
            let state = self.snapshot();
            let plan = crate::plan::build(&state, &self.config.lab);
            crate::diag::graph::build(&state, &self.config.lab, &plan, q.resource_group.as_deref())?
        };
        Ok(match format.as_str() {
            "dot" => ("text/vnd.graphviz", crate::diag::graph::dot(&graph)),
            "mermaid" => ("text/plain", crate::diag::graph::mermaid(&graph)),
            "html" => {
                let counters = self.graph_counters(&graph).await;
                (
                    "text/html; charset=utf-8",
                    crate::diag::graph::html(&graph, &counters),
                )
            }
            _ => (
                "application/json",
                serde_json::to_string_pretty(&graph).unwrap_or_default(),
            ),
        })
    }

    /// Live counters of the graph: per link end (the kernel's link
    /// statistics) and per NSG rule (its nft counter).
    pub async fn graph_counters(&self, graph: &crate::diag::graph::Graph) -> Value {
        let mut links = serde_json::Map::new();
        let mut by_ns: std::collections::BTreeMap<&str, Vec<(&str, &str)>> =
            std::collections::BTreeMap::new();
        for e in &graph.edges {
            if let Some(c) = &e.counter {
                if let Some((ns, ifname)) = c.split_once('/') {
                    by_ns.entry(ns).or_default().push((ifname, c.as_str()));
                }
            }
        }
        for (ns, ifs) in by_ns {
            let Ok(stats) = crate::dataplane::link_stats::read(ns).await else {
                continue;
            };
            for (ifname, key) in ifs {
                if let Some((rp, rb, tp, tb)) = stats.get(ifname) {
                    links.insert(key.to_string(), json!([rp, rb, tp, tb]));
                }
            }
        }
        let mut rules = serde_json::Map::new();
        for nsg in graph.nsgs.keys() {
            let Ok(id) = nsg.parse::<ResourceId>() else {
                continue;
            };
            let mut view = json!({ "properties": {
                "securityRules": graph.nsgs[nsg].iter().filter_map(|r| r.strip_prefix("securityRules/")).map(|n| json!({"name": n})).collect::<Vec<_>>(),
                "defaultSecurityRules": graph.nsgs[nsg].iter().filter_map(|r| r.strip_prefix("defaultSecurityRules/")).map(|n| json!({"name": n})).collect::<Vec<_>>(),
            }});
            self.annotate_nsg_hits(&id, &mut view).await;
            let mut hits = serde_json::Map::new();
            for group in ["securityRules", "defaultSecurityRules"] {
                for r in view["properties"][group].as_array().into_iter().flatten() {
                    hits.insert(
                        format!("{group}/{}", r["name"].as_str().unwrap_or_default()),
                        r["emulator"]["hits"]["packets"].clone(),
                    );
                }
            }
            rules.insert(nsg.clone(), Value::Object(hits));
        }
        json!({ "links": links, "rules": rules })
    }
}

impl Daemon {
    /// `{"value": [...]}`: the watcher's stored children of type `type_`
    /// (flow logs, packet captures), as their views show them.
    async fn children_of(&self, watcher: &ResourceId, type_: &str) -> Value {
        let state = self.snapshot();
        let value: Vec<Value> = state
            .resources
            .values()
            .filter(|r| r.type_.eq_ignore_ascii_case(type_))
            .filter(|r| r.id.parent().as_ref() == Some(watcher))
            .filter_map(|r| crate::plan::view::resource_view(&state, &self.config.lab, &r.id).ok())
            .collect();
        json!({ "value": value })
    }
}
