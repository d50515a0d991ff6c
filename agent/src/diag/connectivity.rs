//! Network Watcher's connection troubleshoot (`connectivityCheck`), the pure
//! half: the path a connection takes (hops from the source's effective
//! routes) and the issues Azure reports on each hop (the NSG rule or the
//! user route that stops it), from IP flow verify and next hop. The real
//! half (probes from the source's namespace) is `dataplane::probe`; the
//! caller puts the two together in [`result`].

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{json, Value};

use super::flow_verify::{self, Target};
use crate::model::{AzureError, Inventory, LabConfig, LabState, ResourceId};
use crate::plan::ExecTarget;

/// Probes a connectivity check sends.
pub const PROBES: u32 = 10;

/// What to probe, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Where the probes start (`plan::exec_target`).
    pub from: ExecTarget,
    pub dst: Ipv4Addr,
    pub port: u16,
    /// `Tcp` or `Http` (a GET after the connect).
    pub http: bool,
    /// The hops, with the issues the desired state predicts.
    pub hops: Vec<Value>,
}

fn bad(code: &str, msg: String) -> AzureError {
    AzureError::bad_request(code, msg)
}

fn hop_id(seed: &str) -> String {
    let id: ResourceId = "/subscriptions/s/resourceGroups/g/providers/Lab.Emulator/hops/h"
        .parse()
        .expect("constant");
    crate::model::record::stable_guid(&id, seed)
}

fn issue(origin: &str, kind: &str, context: Vec<(&str, String)>) -> Value {
    json!({
        "origin": origin,
        "severity": "Error",
        "type": kind,
        "context": context.into_iter().map(|(k, v)| json!({ k: v })).collect::<Vec<_>>(),
    })
}

/// Reads a `connectivityCheck` body and works out the path.
pub fn plan(
    state: &LabState,
    lab: &LabConfig,
    watcher_location: &str,
    body: &Value,
) -> Result<Check, AzureError> {
    let source = body.get("source").cloned().unwrap_or(Value::Null);
    let dest = body.get("destination").cloned().unwrap_or(Value::Null);
    let protocol = body
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("Tcp")
        .to_ascii_lowercase();
    let http = match protocol.as_str() {
        "tcp" => false,
        "http" => true,
        other => {
            return Err(bad(
                "ProtocolNotSupported",
                format!(
                    "Protocol '{other}' is not probed by the lab (Tcp and Http are: ICMP echo and TLS are not emulated)."
                ),
            ))
        }
    };
    let port = dest
        .get("port")
        .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
        .filter(|p| (1..=65535).contains(p))
        .ok_or_else(|| {
            bad(
                "InvalidDestinationPort",
                "destination.port must be 1-65535.".into(),
            )
        })? as u16;
    let inv = Inventory::parse_lenient(&state.resources);
    let nics = crate::plan::vm_nics(state, lab);
    let dst: Ipv4Addr = match (dest.get("address").and_then(Value::as_str), dest.get("resourceId").and_then(Value::as_str)) {
        (Some(a), _) => a.parse().map_err(|_| {
            bad(
                "InvalidDestinationAddress",
                format!("'{a}' is not an IPv4 address (the lab does not resolve names for connection troubleshoot)."),
            )
        })?,
        (None, Some(r)) => {
            let id: ResourceId = r.parse().map_err(|_| bad("InvalidResourceId", format!("'{r}' is not a resource id.")))?;
            let vm = inv.vm(&id).ok_or_else(|| {
                AzureError::not_found("ResourceNotFound", format!("The destination '{id}' was not found."))
            })?;
            let primary = vm.nic_ids.get(vm.primary_nic);
            *nics
                .iter()
                .find(|n| Some(&n.nic) == primary)
                .and_then(|n| n.addresses.first())
                .ok_or_else(|| bad("InvalidDestination", format!("'{id}' has no address.")))?
        }
        (None, None) => return Err(bad("InvalidDestination", "destination needs an address or a resourceId.".into())),
    };
    let mut target_body =
        json!({ "targetResourceId": source.get("resourceId").cloned().unwrap_or(Value::Null) });
    if let Some(i) = source.get("instance") {
        target_body["instance"] = i.clone();
    }
    let target = flow_verify::target(state, lab, &target_body, None)?;
    if !target.location().eq_ignore_ascii_case(watcher_location) {
        return Err(bad(
            "InvalidTargetResourceLocation",
            format!(
                "The source is in '{}', not in the watcher's region '{watcher_location}'.",
                target.location()
            ),
        ));
    }
    let (src_ip, from, src_id) = match &target {
        Target::Nic { addresses, .. } => {
            let id = target_body["targetResourceId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (addresses[0], ExecTarget::Vm { name: id.clone() }, id)
        }
        Target::App {
            site,
            instance,
            address,
            ..
        } => (
            *address,
            ExecTarget::App {
                site: site.to_string(),
                instance: *instance,
            },
            site.to_string(),
        ),
    };
    let mut verify = target_body.clone();
    let o = verify.as_object_mut().expect("object");
    o.insert("direction".into(), json!("Outbound"));
    o.insert("protocol".into(), json!("TCP"));
    o.insert("localIPAddress".into(), json!(src_ip.to_string()));
    o.insert("localPort".into(), json!("40000"));
    o.insert("remoteIPAddress".into(), json!(dst.to_string()));
    o.insert("remotePort".into(), json!(port.to_string()));
    let out = flow_verify::ip_flow_verify(state, lab, watcher_location, &verify)?;
    let mut hop_body = target_body.clone();
    hop_body["sourceIPAddress"] = json!(src_ip.to_string());
    hop_body["destinationIPAddress"] = json!(dst.to_string());
    let next = flow_verify::next_hop(state, lab, watcher_location, &hop_body)?;

    let mut source_issues = Vec::new();
    if out["access"] == "Deny" {
        source_issues.push(issue(
            "Outbound",
            "NetworkSecurityRule",
            vec![(
                "RuleName",
                out["ruleName"].as_str().unwrap_or_default().to_string(),
            )],
        ));
    }
    let hop_type = next["nextHopType"].as_str().unwrap_or("None").to_string();
    if hop_type == "None" {
        source_issues.push(issue(
            "Outbound",
            "UserDefinedRoute",
            vec![(
                "RouteTable",
                next["routeTableId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )],
        ));
    }
    let dst_vm = nics.iter().find(|n| n.addresses.contains(&dst));
    let mut chain: Vec<(String, String, String, Vec<Value>)> =
        vec![("Source".into(), src_ip.to_string(), src_id, source_issues)];
    let stopped = out["access"] == "Deny" || hop_type == "None";
    if !stopped {
        match hop_type.as_str() {
            "VirtualAppliance" | "VirtualNetworkGateway" => {
                let ip = next["nextHopIpAddress"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let rid = nics
                    .iter()
                    .find(|n| n.addresses.iter().any(|a| a.to_string() == ip))
                    .map(|n| n.nic.to_string())
                    .unwrap_or_default();
                chain.push((hop_type.clone(), ip, rid, Vec::new()));
            }
            _ => {}
        }
        let mut dest_issues = Vec::new();
        if let Some(n) = dst_vm {
            let vm_id = inv
                .vms
                .iter()
                .find(|v| v.nic_ids.contains(&n.nic))
                .map(|v| v.id.to_string())
                .unwrap_or_default();
            let inbound = json!({
                "targetResourceId": vm_id, "targetNicResourceId": n.nic.to_string(),
                "direction": "Inbound", "protocol": "TCP",
                "localIPAddress": dst.to_string(), "localPort": port.to_string(),
                "remoteIPAddress": src_ip.to_string(), "remotePort": "40000",
            });
            let inb = flow_verify::ip_flow_verify(state, lab, watcher_location, &inbound)?;
            if inb["access"] == "Deny" {
                dest_issues.push(issue(
                    "Inbound",
                    "NetworkSecurityRule",
                    vec![(
                        "RuleName",
                        inb["ruleName"].as_str().unwrap_or_default().to_string(),
                    )],
                ));
            }
            chain.push(("VirtualMachine".into(), dst.to_string(), vm_id, dest_issues));
        } else {
            let kind = if hop_type == "Internet" {
                "Internet"
            } else {
                "Destination"
            };
            chain.push((kind.into(), dst.to_string(), String::new(), dest_issues));
        }
    }
    let ids: Vec<String> = chain
        .iter()
        .map(|(t, a, _, _)| hop_id(&format!("{t}/{a}")))
        .collect();
    let hops = chain
        .into_iter()
        .enumerate()
        .map(|(i, (t, address, rid, issues))| {
            json!({
                "type": t,
                "id": ids[i],
                "address": address,
                "resourceId": rid,
                "nextHopIds": ids.get(i + 1).map(|n| vec![n.clone()]).unwrap_or_default(),
                "issues": issues,
            })
        })
        .collect();
    Ok(Check {
        from,
        dst,
        port,
        http,
        hops,
    })
}

/// Azure's answer from the path and the probes' latencies (`None`: failed).
pub fn result(check: &Check, probes: &[Option<Duration>]) -> Value {
    let ok: Vec<u64> = probes
        .iter()
        .flatten()
        .map(|d| d.as_millis() as u64)
        .collect();
    let failed = probes.len() - ok.len();
    let status = match (ok.len(), failed) {
        (0, _) => "Unreachable",
        (_, 0) => "Reachable",
        _ => "Degraded",
    };
    let mut hops = check.hops.clone();
    // Nothing in the desired state explains a failure the probes saw: say
    // so on the destination, as Azure's agent reports a silent endpoint.
    let explained = hops
        .iter()
        .any(|h| h["issues"].as_array().is_some_and(|i| !i.is_empty()));
    if failed > 0 && !explained {
        if let Some(last) = hops.last_mut() {
            last["issues"] = json!([issue("Local", "Platform", vec![("Reason", "No answer from the destination port (nothing listens, or a firewall inside the guest drops it)".into())])]);
        }
    }
    let avg = if ok.is_empty() {
        0
    } else {
        ok.iter().sum::<u64>() / ok.len() as u64
    };
    json!({
        "hops": hops,
        "connectionStatus": status,
        "avgLatencyInMs": avg,
        "minLatencyInMs": ok.iter().min().copied().unwrap_or(0),
        "maxLatencyInMs": ok.iter().max().copied().unwrap_or(0),
        "probesSent": probes.len(),
        "probesFailed": failed,
    })
}
