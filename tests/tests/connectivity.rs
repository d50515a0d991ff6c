//! Issue 13, connection troubleshoot and Kudu's tcpping end to end: real
//! probes from a VM's and an app instance's namespace; the hops and the
//! issue that names the NSG rule or the user route that stops a connection.

use serde_json::{json, Value};
use vnet_e2e::fixtures::{net, plan, site, subnet_id, template, vm_in, vnet, RG};
use vnet_e2e::*;

fn lab_template() -> Value {
    lab_with(false)
}

/// With `blocking`, the integration subnet's NSG denies TCP 7001 outbound.
fn lab_with(blocking: bool) -> Value {
    let id_of = |ty: &str, name: &str| json!({ "id": net(ty, name) });
    let integration =
        json!({ "name": "integration", "properties": { "addressPrefix": "10.5.3.0/28" } });
    let mut resources = vec![
        json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg2", "location": "westeurope",
                "properties": { "securityRules": [{ "name": "deny-7002", "properties": {
                    "priority": 100, "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
                    "sourceAddressPrefix": "*", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "7002" } }] } }),
        json!({ "type": "Microsoft.Network/routeTables", "name": "rt1", "location": "westeurope",
                "properties": { "routes": [{ "name": "blackhole", "properties": {
                    "addressPrefix": "10.5.9.0/24", "nextHopType": "None" } }] } }),
        vnet(
            "v1",
            "westeurope",
            &["10.5.0.0/16"],
            json!([
                { "name": "s1", "properties": { "addressPrefix": "10.5.1.0/24",
                    "routeTable": id_of("routeTables", "rt1") } },
                { "name": "s2", "properties": { "addressPrefix": "10.5.2.0/24",
                    "networkSecurityGroup": id_of("networkSecurityGroups", "nsg2") } },
                { "name": "s9", "properties": { "addressPrefix": "10.5.9.0/24" } },
                integration,
            ]),
        ),
        plan("plan1", "P1v3", 2, json!({})),
        site(
            "web1",
            "plan1",
            Some(&subnet_id("v1", "integration")),
            "westeurope",
            json!({ "appCommandLine": "sleep 100000" }),
        ),
    ];
    if blocking {
        resources.push(json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg-int", "location": "westeurope",
                "properties": { "securityRules": [{ "name": "no-7001-out", "properties": {
                    "priority": 100, "direction": "Outbound", "access": "Deny", "protocol": "Tcp",
                    "sourceAddressPrefix": "*", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "7001" } }] } }));
        if let Some(v) = resources
            .iter_mut()
            .find(|r| r["type"] == "Microsoft.Network/virtualNetworks")
        {
            v["properties"]["subnets"][3]["properties"]["networkSecurityGroup"] =
                id_of("networkSecurityGroups", "nsg-int");
        }
    }
    resources.extend(vm_in(RG, "vm1", &subnet_id("v1", "s1"), "10.5.1.4"));
    resources.extend(vm_in(RG, "vm2", &subnet_id("v1", "s2"), "10.5.2.4"));
    resources.extend(vm_in(RG, "vm9", &subnet_id("v1", "s9"), "10.5.9.4"));
    template(resources)
}

fn check(lab: &Lab, source: &[&str], dest: &str, port: &str) -> Value {
    let mut args = vec!["network", "watcher", "test-connectivity", "-g", RG];
    args.extend_from_slice(source);
    args.extend_from_slice(&["--dest-address", dest, "--dest-port", port]);
    lab.cli_json(&args)
}

fn issues(v: &Value) -> Vec<Value> {
    v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["issues"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn connection_troubleshoot_probes_for_real_and_names_what_stops_a_connection() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    for port in ["7001", "7002"] {
        lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", port]);
    }
    lab.spawn(&["--vm", "vm9"], &[&probe_bin(), "serve-tcp", "7001"]);

    let ok = check(&lab, &["--source-resource", "vm1"], "10.5.2.4", "7001");
    assert_eq!(ok["connectionStatus"], "Reachable", "{ok}");
    assert_eq!(
        (ok["probesSent"].as_u64(), ok["probesFailed"].as_u64()),
        (Some(10), Some(0)),
        "{ok}"
    );
    assert!(ok["minLatencyInMs"].as_u64() <= ok["avgLatencyInMs"].as_u64());
    assert!(ok["avgLatencyInMs"].as_u64() <= ok["maxLatencyInMs"].as_u64());
    let hops = ok["hops"].as_array().unwrap();
    assert_eq!(
        hops.iter()
            .map(|h| h["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Source", "VirtualMachine"]
    );
    assert_eq!(hops[0]["address"], "10.5.1.4");
    assert_eq!(hops[0]["nextHopIds"], json!([hops[1]["id"]]));
    assert!(issues(&ok).is_empty(), "{ok}");

    // The destination's NSG: the issue names its rule.
    let denied = check(&lab, &["--source-resource", "vm1"], "10.5.2.4", "7002");
    assert_eq!(denied["connectionStatus"], "Unreachable", "{denied}");
    assert_eq!(denied["probesFailed"], 10);
    assert_eq!(
        issues(&denied),
        vec![
            json!({ "origin": "Inbound", "severity": "Error", "type": "NetworkSecurityRule",
                     "context": [{ "RuleName": "securityRules/deny-7002" }] })
        ],
        "{denied}"
    );

    // A user route to None: the source's hop says so, with the route table.
    let dropped = check(&lab, &["--source-resource", "vm1"], "10.5.9.4", "7001");
    assert_eq!(dropped["connectionStatus"], "Unreachable", "{dropped}");
    let i = issues(&dropped);
    assert_eq!(i.len(), 1, "{dropped}");
    assert_eq!(i[0]["type"], "UserDefinedRoute");
    assert!(
        i[0]["context"][0]["RouteTable"]
            .as_str()
            .unwrap()
            .ends_with("/routeTables/rt1"),
        "{dropped}"
    );
    // From vm2 (no route table) the same listener answers.
    let direct = check(&lab, &["--source-resource", "vm2"], "10.5.9.4", "7001");
    assert_eq!(direct["connectionStatus"], "Reachable", "{direct}");

    // Nothing listens: unreachable, and nothing in the configuration explains it.
    let silent = check(&lab, &["--source-resource", "vm1"], "10.5.2.4", "7003");
    assert_eq!(silent["connectionStatus"], "Unreachable", "{silent}");
    assert_eq!(issues(&silent)[0]["type"], "Platform", "{silent}");

    // From an app instance (lab only): its integration-subnet address.
    let app = check(&lab, &["--app", "web1"], "10.5.2.4", "7001");
    assert_eq!(app["connectionStatus"], "Reachable", "{app}");
    assert!(
        app["hops"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.5.3."),
        "{app}"
    );

    // az's table.
    let table = lab.cli_ok(&[
        "network",
        "watcher",
        "test-connectivity",
        "-g",
        RG,
        "--source-resource",
        "vm1",
        "--dest-address",
        "10.5.2.4",
        "--dest-port",
        "7001",
        "-o",
        "table",
    ]);
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "AvgLatencyInMs",
            "ConnectionStatus",
            "MaxLatencyInMs",
            "MinLatencyInMs",
            "ProbesFailed",
            "ProbesSent"
        ],
        "{table}"
    );
    lab.refused(
        &[
            "network",
            "watcher",
            "test-connectivity",
            "-g",
            RG,
            "--source-resource",
            "vm1",
            "--dest-address",
            "10.5.2.4",
            "--dest-port",
            "7001",
            "--protocol",
            "Icmp",
        ],
        "ProtocolNotSupported",
    );
}

#[test]
fn tcpping_from_an_apps_sandbox_prints_kudus_lines() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "7001"]);
    let out = lab.cli(&["webapp", "tcpping", "--app", "web1", "10.5.2.4:7001"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[..4].iter().all(
            |l| l.starts_with("Connected to 10.5.2.4:7001, time taken: ") && l.ends_with("ms")
        ),
        "{text}"
    );
    assert!(
        lines[4].starts_with("Complete: 4/4 successful attempts (100%). Average success time: "),
        "{text}"
    );
    // The NSG of vm2's subnet drops 7002: every attempt fails.
    let out = lab.cli(&["webapp", "tcpping", "--app", "web1", "10.5.2.4:7002"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("Complete: 0/4 successful attempts (0%)"),
        "{text}"
    );
    assert_eq!(
        text.matches("Connection attempt failed").count(),
        4,
        "{text}"
    );
}

fn troubleshoot(
    lab: &Lab,
    endpoint: &str,
) -> (bool, std::collections::BTreeMap<String, (String, String)>) {
    let out = lab.cli(&[
        "webapp",
        "troubleshoot-network",
        "-g",
        RG,
        "-n",
        "web1",
        "--endpoint",
        endpoint,
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let checks = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["message"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    (out.status.success(), checks)
}

#[test]
fn the_app_network_troubleshooter_checks_the_integration_and_names_a_blocking_rule() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "7001"]);
    let (ok, c) = troubleshoot(&lab, "10.5.2.4:7001");
    assert!(ok, "{c:?}");
    for name in [
        "VnetIntegration",
        "InstancePrivateIp",
        "SubnetDelegation",
        "OnePlanPerSubnet",
        "Route",
        "NetworkSecurityRule",
        "Connectivity",
    ] {
        assert_eq!(c[name].0, "Passed", "{name}: {c:?}");
    }
    // Two instances, each with its address in 10.5.3.0/28.
    assert_eq!(
        c["InstancePrivateIp"].1.matches("10.5.3.").count(),
        2,
        "{c:?}"
    );
    assert_eq!(
        c["SubnetSize"].0, "Warning",
        "a /28 leaves little room: {c:?}"
    );
    assert!(c["DnsSettings"].1.contains("168.63.129.16"), "{c:?}");
    assert!(
        c["ServiceAssociationLinks"].1.contains("AppServiceLink"),
        "{c:?}"
    );
    assert!(c["Route"].1.contains("VnetLocal"), "{c:?}");

    lab.deploy(RG, &lab_with(true));
    let (ok, c) = troubleshoot(&lab, "10.5.2.4:7001");
    assert!(!ok, "{c:?}");
    assert_eq!(c["NetworkSecurityRule"].0, "Failed", "{c:?}");
    assert!(
        c["NetworkSecurityRule"]
            .1
            .contains("securityRules/no-7001-out"),
        "{c:?}"
    );
    assert_eq!(
        c["Connectivity"].0, "Failed",
        "the real connection fails too: {c:?}"
    );
}
