//! `-o table`: rows of an answer as aligned columns, with `az`'s headers for
//! the shapes it knows (effective routes and security rules, a gateway's
//! learned and advertised routes), and the scalar fields of each row otherwise.

use serde_json::Value;

/// Known shapes: (a field that identifies the shape, the columns as (header, field)).
const SHAPES: &[(&str, &[(&str, &str)])] = &[
    // `network watcher packet-capture show-status|stop`.
    (
        "packetCaptureStatus",
        &[
            ("CaptureStartTime", "captureStartTime"),
            ("Name", "name"),
            ("PacketCaptureStatus", "packetCaptureStatus"),
            ("StopReason", "stopReason"),
        ],
    ),
    // `network watcher packet-capture show|list` (flattened as az shows them).
    (
        "bytesToCapturePerPacket",
        &[
            ("BytesToCapturePerPacket", "bytesToCapturePerPacket"),
            ("Name", "name"),
            ("ProvisioningState", "provisioningState"),
            ("ResourceGroup", "resourceGroup"),
            ("Target", "target"),
            ("TimeLimitInSeconds", "timeLimitInSeconds"),
            ("TotalBytesPerSession", "totalBytesPerSession"),
        ],
    ),
    // `network watcher test-connectivity`.
    (
        "connectionStatus",
        &[
            ("AvgLatencyInMs", "avgLatencyInMs"),
            ("ConnectionStatus", "connectionStatus"),
            ("MaxLatencyInMs", "maxLatencyInMs"),
            ("MinLatencyInMs", "minLatencyInMs"),
            ("ProbesFailed", "probesFailed"),
            ("ProbesSent", "probesSent"),
        ],
    ),
    // `network watcher test-ip-flow`.
    (
        "ruleName",
        &[("Access", "access"), ("RuleName", "ruleName")],
    ),
    // `network watcher show-next-hop` (before effective routes: both have nextHopType).
    (
        "routeTableId",
        &[
            ("NextHopIpAddress", "nextHopIpAddress"),
            ("NextHopType", "nextHopType"),
            ("RouteTableId", "routeTableId"),
        ],
    ),
    // `network watcher flow-log list|show`.
    (
        "targetResourceId",
        &[
            ("Enabled", "enabled"),
            ("Location", "location"),
            ("Name", "name"),
            ("ProvisioningState", "provisioningState"),
            ("ResourceGroup", "resourceGroup"),
            ("StorageId", "storageId"),
            ("TargetResourceId", "targetResourceId"),
        ],
    ),
    (
        "nextHopType",
        &[
            ("Source", "source"),
            ("State", "state"),
            ("Address Prefix", "addressPrefix"),
            ("Next Hop Type", "nextHopType"),
            ("Next Hop IP", "nextHopIpAddress"),
        ],
    ),
    (
        "direction",
        &[
            ("Name", "name"),
            ("Direction", "direction"),
            ("Priority", "priority"),
            ("Access", "access"),
            ("Protocol", "protocol"),
            ("Source", "sourceAddressPrefix"),
            ("Source Ports", "sourcePortRange"),
            ("Destination", "destinationAddressPrefix"),
            ("Destination Ports", "destinationPortRange"),
        ],
    ),
    (
        "sourcePeer",
        &[
            ("Network", "network"),
            ("NextHop", "nextHop"),
            ("Origin", "origin"),
            ("SourcePeer", "sourcePeer"),
            ("AsPath", "asPath"),
            ("Weight", "weight"),
        ],
    ),
];

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| cell(Some(x)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "{...}".into(),
        Some(other) => other.to_string(),
    }
}

/// The rows of an answer: `value[]`, each group's `effectiveSecurityRules[]`, an array, or the object itself.
fn rows(v: &Value) -> Vec<&Value> {
    let list = v.get("value").unwrap_or(v);
    match list {
        Value::Array(items) => {
            if items
                .iter()
                .any(|i| i.get("effectiveSecurityRules").is_some())
            {
                items
                    .iter()
                    .flat_map(|i| i["effectiveSecurityRules"].as_array().into_iter().flatten())
                    .collect()
            } else {
                items.iter().collect()
            }
        }
        other => vec![other],
    }
}

/// A field of a row as az sees it: az's network objects are flattened
/// (`properties.x` is `x`), and `resourceGroup` comes from the id.
fn field<'a>(row: &'a Value, f: &str) -> Option<&'a Value> {
    row.get(f)
        .or_else(|| row.get("properties").and_then(|p| p.get(f)))
}

fn resource_group(row: &Value) -> Option<Value> {
    let id = row.get("id")?.as_str()?;
    let mut parts = id.split('/');
    parts
        .by_ref()
        .find(|p| p.eq_ignore_ascii_case("resourceGroups"))?;
    parts.next().map(|g| Value::String(g.to_string()))
}

/// Renders an answer as a table.
pub fn render(v: &Value) -> String {
    let rows = rows(v);
    let Some(first) = rows.first() else {
        return String::new();
    };
    let columns: Vec<(String, String)> =
        match SHAPES.iter().find(|(key, _)| field(first, key).is_some()) {
            Some((_, cols)) => cols
                .iter()
                .map(|(h, f)| (h.to_string(), f.to_string()))
                .collect(),
            None => first
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| !v.is_object() && !v.is_array())
                        .map(|(k, _)| (k.clone(), k.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|(_, f)| match field(r, f) {
                    None if f == "resourceGroup" => cell(resource_group(r).as_ref()),
                    v => cell(v),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            table
                .iter()
                .map(|r| r[i].len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![
        line(columns.iter().map(|(h, _)| h.as_str()).collect()),
        line(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect(),
        ),
    ];
    for r in &table {
        out.push(line(r.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flow_logs_in_azs_columns_flattened_from_properties() {
        let v = json!([{
            "id": "/subscriptions/s/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_westeurope/flowLogs/fl1",
            "name": "fl1", "location": "westeurope",
            "properties": {"enabled": true, "provisioningState": "Succeeded",
                           "storageId": "/x/st", "targetResourceId": "/x/v1"}
        }]);
        let t = render(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "Enabled",
                "Location",
                "Name",
                "ProvisioningState",
                "ResourceGroup",
                "StorageId",
                "TargetResourceId"
            ]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            [
                "true",
                "westeurope",
                "fl1",
                "Succeeded",
                "NetworkWatcherRG",
                "/x/st",
                "/x/v1"
            ]
        );
    }

    #[test]
    fn effective_routes_in_azures_columns() {
        let v = json!({"value": [
            {"source": "Default", "state": "Active", "addressPrefix": ["10.0.0.0/16"], "nextHopType": "VnetLocal", "nextHopIpAddress": []},
            {"source": "User", "state": "Active", "addressPrefix": ["0.0.0.0/0"], "nextHopType": "VirtualAppliance", "nextHopIpAddress": ["10.0.3.4"]}
        ]});
        let t = render(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("Source   State   Address Prefix  Next Hop Type     Next Hop IP"),
            "{t}"
        );
        assert!(lines[3].contains("VirtualAppliance  10.0.3.4"), "{t}");
    }

    #[test]
    fn gateway_routes_in_azures_columns() {
        let v = json!({"value": [
            {"localAddress": "10.0.255.30", "network": "10.0.0.0/16", "nextHop": "", "origin": "Network",
             "sourcePeer": "10.0.255.30", "asPath": "", "weight": 32768},
            {"localAddress": "10.0.255.30", "network": "192.168.1.0/24", "nextHop": "10.1.255.254", "origin": "EBgp",
             "sourcePeer": "10.1.255.254", "asPath": "65050", "weight": 32768}
        ]});
        let t = render(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "Network",
                "NextHop",
                "Origin",
                "SourcePeer",
                "AsPath",
                "Weight"
            ],
            "{t}"
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            [
                "192.168.1.0/24",
                "10.1.255.254",
                "EBgp",
                "10.1.255.254",
                "65050",
                "32768"
            ],
            "{t}"
        );
    }
}
