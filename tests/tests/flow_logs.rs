//! Issue 13, VNet flow logs end to end: a flow log on a VNet records a real
//! TCP flow between two VMs in Azure's VNet flow log JSON, with the counts a
//! packet capture of the same flow finds, the NSG rule that allowed it at
//! each NIC, a `D` tuple naming the rule that denied another, in the storage account's `insights-logs-flowlogflowevent`
//! container under Azure's path, downloaded over HTTP from inside the lab.

use serde_json::{json, Value};
use vnet_e2e::fixtures::{net, storage_account, subnet_id, template, vm_in, vnet, RG};
use vnet_e2e::*;

const STORE: &str = "flowstore1";
const CONTAINER: &str = "insights-logs-flowlogflowevent";

fn lab_template() -> Value {
    let nsg_ref = json!({ "id": net("networkSecurityGroups", "nsg1") });
    let mut resources = vec![
        json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg1", "location": "westeurope",
                "properties": { "securityRules": [{ "name": "allow-7000", "properties": {
                    "priority": 200, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                    "sourceAddressPrefix": "VirtualNetwork", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "7000" } },
                  { "name": "deny-7001", "properties": {
                    "priority": 150, "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
                    "sourceAddressPrefix": "*", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "7001" } }] } }),
        vnet(
            "v1",
            "westeurope",
            &["10.1.0.0/16"],
            json!([
                { "name": "a", "properties": { "addressPrefix": "10.1.1.0/24", "networkSecurityGroup": nsg_ref } },
                { "name": "b", "properties": { "addressPrefix": "10.1.2.0/24", "networkSecurityGroup": nsg_ref } },
            ]),
        ),
        storage_account(STORE, "Enabled", None),
    ];
    resources.extend(vm_in(RG, "vm1", &subnet_id("v1", "a"), "10.1.1.4"));
    resources.extend(vm_in(RG, "vm2", &subnet_id("v1", "b"), "10.1.2.4"));
    template(resources)
}

/// `(src, dst, packets, bytes)` of each IPv4 packet `tcpdump -v` printed.
fn captured(text: &str) -> Vec<(String, String, u64)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(len) = l
            .rsplit_once("length ")
            .filter(|_| l.contains("proto TCP"))
            .and_then(|(_, r)| r.trim_end_matches(')').parse::<u64>().ok())
        else {
            continue;
        };
        let Some(next) = lines.get(i + 1) else {
            continue;
        };
        let mut parts = next.split_whitespace();
        let (Some(src), Some(">"), Some(dst)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let host = |s: &str| s.rsplit_once('.').map(|x| x.0).unwrap_or("").to_string();
        out.push((host(src), host(dst.trim_end_matches(':')), len));
    }
    out
}

/// curl in vm1 against the storage account's blob endpoint (plain HTTP).
fn blob(lab: &Lab, ip: &str, path: &str) -> String {
    let host = format!("{STORE}.blob.core.windows.net");
    let script = format!("curl -sS --max-time 5 --resolve {host}:80:{ip} 'http://{host}/{path}'");
    lab.exec_ok(&["--vm", "vm1"], &["sh", "-c", &script])
}

#[test]
fn a_vnet_flow_log_records_a_tcp_flow_with_the_counts_a_capture_sees() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    let created = lab.cli_json(&[
        "network",
        "watcher",
        "flow-log",
        "create",
        "-l",
        "westeurope",
        "-n",
        "fl1",
        "-g",
        RG,
        "--vnet",
        "v1",
        "--storage-account",
        STORE,
    ]);
    assert!(
        created["id"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .ends_with("/resourcegroups/networkwatcherrg/providers/microsoft.network/networkwatchers/networkwatcher_westeurope/flowlogs/fl1"),
        "{created}"
    );
    let guid = created["properties"]["resourceGuid"]
        .as_str()
        .expect("resourceGuid")
        .to_string();
    let listed = lab.cli_json(&["network", "watcher", "flow-log", "list", "-l", "westeurope"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // The flow, captured at vm1 while it runs.
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "sink", "7000"]);
    let dump = lab
        .spawn_quiet(
            &["--vm", "vm1"],
            &[
                "timeout",
                "6",
                "tcpdump",
                "-i",
                "any",
                "-nn",
                "-v",
                "-l",
                "tcp port 7000",
            ],
        )
        .id();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = lab.exec_ok(
        &["--vm", "vm1"],
        // Under 64 KiB: no packet of the flow is a BIG TCP one, whose IPv4
        // length field is 0 (tcpdump prints `bad-len 0` for those).
        &[&probe_bin(), "send", "10.1.2.4", "7000", "60000"],
    );
    assert!(sent.contains("received=60000"), "{sent}");
    // A connection the destination's NSG refuses: a `D` tuple at vm2.
    let refused = lab.exec(
        &["--vm", "vm1"],
        &[&probe_bin(), "tcp", "10.1.2.4", "7001", "500"],
    );
    assert!(!refused.status.success(), "port 7001 must be denied");
    let (_, text) = lab.wait_background(dump, 15);
    assert!(
        !text.contains("bad-len"),
        "a packet the capture cannot measure: {text}"
    );
    let packets = captured(&text);
    let count = |from: &str| {
        let p: Vec<_> = packets.iter().filter(|(s, _, _)| s == from).collect();
        (p.len() as u64, p.iter().map(|(_, _, l)| l).sum::<u64>())
    };
    let (out_p, out_b) = count("10.1.1.4");
    let (back_p, back_b) = count("10.1.2.4");
    assert!(out_p > 2 && back_p > 2, "capture saw too little: {text}");

    // The records, read over HTTP as a user's script would.
    let ip = lab.show(&id(RG, "Microsoft.Storage/storageAccounts", STORE))["emulator"]
        ["publicIpAddress"]
        .as_str()
        .expect("publicIpAddress")
        .to_string();
    let mut end: Option<(String, String, String)> = None;
    let mut listing = String::new();
    for _ in 0..40 {
        listing = blob(
            &lab,
            &ip,
            &format!("{CONTAINER}?restype=container&comp=list"),
        );
        let names: Vec<String> = listing
            .split("<Name>")
            .skip(1)
            .filter_map(|s| s.split("</Name>").next())
            .map(str::to_string)
            .collect();
        let mut tuples = Vec::new();
        for name in &names {
            let doc: Value = serde_json::from_str(&blob(&lab, &ip, &format!("{CONTAINER}/{name}")))
                .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            for r in doc["records"].as_array().expect("records") {
                assert_eq!(r["category"], "FlowLogFlowEvent");
                assert_eq!(r["operationName"], "FlowLogFlowEvent");
                assert_eq!(r["flowLogGUID"], guid.as_str());
                assert_eq!(r["macAddress"].as_str().map(str::len), Some(12));
                assert!(
                    name.starts_with("flowLogResourceID=/SUBSCRIPTIONS/"),
                    "{name}"
                );
                assert!(name.contains("/NETWORKWATCHERRG/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/NETWORKWATCHER_WESTEUROPE/FLOWLOGS/FL1/y="), "{name}");
                assert!(
                    name.ends_with(&format!(
                        "macAddress={}/PT1H.json",
                        r["macAddress"].as_str().unwrap()
                    )),
                    "{name}"
                );
                for flow in r["flowRecords"]["flows"].as_array().expect("flows") {
                    for group in flow["flowGroups"].as_array().expect("flowGroups") {
                        for t in group["flowTuples"].as_array().expect("flowTuples") {
                            tuples.push((
                                group["rule"].as_str().unwrap().to_string(),
                                t.as_str().unwrap().to_string(),
                            ));
                        }
                    }
                }
            }
        }
        let ours = |dir: &str, state: &str| {
            tuples.iter().find(|(_, t)| {
                let f: Vec<&str> = t.split(',').collect();
                f[1] == "10.1.1.4"
                    && f[2] == "10.1.2.4"
                    && f[4] == "7000"
                    && f[5] == "6"
                    && f[6] == dir
                    && f[7] == state
            })
        };
        if let (Some(_), Some(_), Some(o), Some(i)) = (
            ours("O", "B"),
            ours("I", "B"),
            ours("O", "E"),
            ours("I", "E"),
        ) {
            end = Some((o.0.clone(), i.0.clone(), o.1.clone()));
            assert_eq!(
                o.1.split(',').skip(8).collect::<Vec<_>>(),
                i.1.split(',').skip(8).collect::<Vec<_>>()
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (rule_out, rule_in, tuple) = end.unwrap_or_else(|| {
        panic!("no B and E tuples of the flow at both NICs and D of the denied one; listing: {listing}")
    });
    assert_eq!(rule_out, "DefaultRule_AllowVnetOutBound");
    assert_eq!(rule_in, "UserRule_allow-7000");
    let f: Vec<&str> = tuple.split(',').collect();
    assert_eq!(f[8], "NX", "{tuple}");
    let counts: Vec<u64> = f[9..].iter().map(|x| x.parse().unwrap()).collect();
    assert_eq!(
        counts,
        vec![out_p, out_b, back_p, back_b],
        "flow log counts (packets/bytes each way) against the capture at vm1: {tuple}\n{text}"
    );
}

#[test]
fn flow_logs_are_refused_with_azures_errors_and_change_nothing() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    fn create(extra: &[&'static str]) -> Vec<&'static str> {
        let mut args = vec![
            "network",
            "watcher",
            "flow-log",
            "create",
            "-l",
            "westeurope",
            "-n",
            "bad",
            "-g",
            RG,
        ];
        args.extend_from_slice(extra);
        args
    }
    lab.refused(
        &create(&["--vnet", "nope", "--storage-account", STORE]),
        "ResourceNotFound",
    );
    lab.refused(
        &create(&["--vnet", "v1", "--storage-account", "nostore"]),
        "StorageAccountNotFound",
    );
    lab.refused(
        &[
            "network",
            "watcher",
            "flow-log",
            "create",
            "-l",
            "eastus",
            "-n",
            "bad",
            "-g",
            RG,
            "--vnet",
            "v1",
            "--storage-account",
            STORE,
        ],
        "ResourceNotFound",
    );
    lab.cli_ok(&create(&[
        "--subnet",
        "a",
        "--vnet",
        "v1",
        "--storage-account",
        STORE,
    ]));
    lab.refused(
        &[
            "network",
            "watcher",
            "flow-log",
            "create",
            "-l",
            "westeurope",
            "-n",
            "second",
            "-g",
            RG,
            "--subnet",
            "a",
            "--vnet",
            "v1",
            "--storage-account",
            STORE,
        ],
        "FlowLogAlreadyExistsForTarget",
    );
    let listed = lab.cli_json(&["network", "watcher", "flow-log", "list", "-l", "westeurope"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    lab.cli_ok(&[
        "network",
        "watcher",
        "flow-log",
        "delete",
        "-l",
        "westeurope",
        "-n",
        "bad",
    ]);
    let listed = lab.cli_json(&["network", "watcher", "flow-log", "list", "-l", "westeurope"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
}

/// The gallery's "Create NSG flow logs" quickstart, unchanged: Azure stopped
/// creating NSG flow logs on 30 June 2025, so aimed at its NSG it is refused
/// and changes nothing; aimed at the VNet (its `existingNSG` parameter takes
/// any target id) it deploys its own watcher and a VNet flow log, whose
/// records reach the template's storage account.
#[test]
fn the_gallerys_flow_log_template_is_refused_on_an_nsg_and_logs_a_vnet() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("templates/networkwatcher-flowLogs-create/azuredeploy.json");
    let file = file.to_str().unwrap();
    let nsg = format!("existingNSG={}", net("networkSecurityGroups", "nsg1"));
    let err = lab.refused(
        &[
            "deployment",
            "group",
            "create",
            "-g",
            RG,
            "-f",
            file,
            "-p",
            &nsg,
        ],
        "InvalidTargetResourceType",
    );
    assert!(err.contains("retired"), "{err}");
    let vnet_id = format!("existingNSG={}", net("virtualNetworks", "v1"));
    let d = lab.deploy_file(RG, std::path::Path::new(file), &[&vnet_id]);
    assert_eq!(d["properties"]["provisioningState"], "Succeeded", "{d}");
    let store = lab.cli_json(&[
        "resource",
        "list",
        "-g",
        RG,
        "--query",
        "[?type=='Microsoft.Storage/storageAccounts' && starts_with(name, 'flowlogs')].name | [0]",
    ]);
    let store = store
        .as_str()
        .expect("the template's storage account")
        .to_string();
    let ip = lab.show(&id(RG, "Microsoft.Storage/storageAccounts", &store))["emulator"]
        ["publicIpAddress"]
        .as_str()
        .expect("publicIpAddress")
        .to_string();
    let host = format!("{store}.blob.core.windows.net");
    let list = format!(
        "curl -sS --max-time 5 --resolve {host}:80:{ip} 'http://{host}/{CONTAINER}?restype=container&comp=list'"
    );
    let mut listing = String::new();
    for _ in 0..40 {
        // Any flow of a VM: vm1 asks vm2 for a port nobody listens on.
        let _ = lab.exec(
            &["--vm", "vm1"],
            &[&probe_bin(), "tcp", "10.1.2.4", "7000", "300"],
        );
        listing = lab.exec_ok(&["--vm", "vm1"], &["sh", "-c", &list]);
        if listing.contains("/RESOURCEGROUPS/RG1/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/NETWORKWATCHER_WESTEUROPE/FLOWLOGS/FLOWLOG1/") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("no record of the template's flow log: {listing}");
}
