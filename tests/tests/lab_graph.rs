//! Issue 13, `lab graph` end to end: the topology as dot (which Graphviz
//! renders), Mermaid and one self-contained HTML page, served on loopback
//! with live counters that a real headless Chromium shows moving after real
//! traffic.

use std::process::{Command, Stdio};

use serde_json::{json, Value};
use vnet_e2e::fixtures::{
    net, plan, private_endpoint, site, storage_account, subnet_id, template, vm_in, vnet, RG,
};
use vnet_e2e::*;

fn lab_template() -> Value {
    let id_of = |ty: &str, name: &str| json!({ "id": net(ty, name) });
    let mut resources = vec![
        json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg2", "location": "westeurope",
                "properties": { "securityRules": [{ "name": "allow-7001", "properties": {
                    "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                    "sourceAddressPrefix": "*", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "7001" } }] } }),
        json!({ "type": "Microsoft.Network/routeTables", "name": "rt1", "location": "westeurope",
                "properties": { "routes": [] } }),
        json!({ "type": "Microsoft.Network/publicIPAddresses", "name": "nat-pip", "location": "westeurope",
                "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } }),
        json!({ "type": "Microsoft.Network/natGateways", "name": "nat1", "location": "westeurope", "sku": { "name": "Standard" },
                "properties": { "publicIpAddresses": [{ "id": net("publicIPAddresses", "nat-pip") }] } }),
        vnet(
            "v1",
            "westeurope",
            &["10.7.0.0/16"],
            json!([
                { "name": "s1", "properties": { "addressPrefix": "10.7.1.0/24", "routeTable": id_of("routeTables", "rt1"),
                    "natGateway": id_of("natGateways", "nat1") } },
                { "name": "s2", "properties": { "addressPrefix": "10.7.2.0/24",
                    "networkSecurityGroup": id_of("networkSecurityGroups", "nsg2") } },
                { "name": "integration", "properties": { "addressPrefix": "10.7.3.0/28" } },
                { "name": "pe", "properties": { "addressPrefix": "10.7.4.0/24" } },
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
        json!({ "type": "Lab.Emulator/internetHosts", "name": "inet1", "location": "westeurope",
                "properties": { "ipAddress": "203.0.113.95" } }),
        storage_account("graphstore1", "Enabled", None),
        private_endpoint(
            "pe1",
            &subnet_id("v1", "pe"),
            &id(RG, "Microsoft.Storage/storageAccounts", "graphstore1"),
            "blob",
        ),
    ];
    resources.extend(vm_in(RG, "vm1", &subnet_id("v1", "s1"), "10.7.1.4"));
    resources.extend(vm_in(RG, "vm2", &subnet_id("v1", "s2"), "10.7.2.4"));
    template(resources)
}

const NAMES: [&str; 9] = [
    "VM vm1",
    "VM vm2",
    "app web1 (instance 1)",
    "NSG nsg2",
    "route table rt1",
    "NAT gateway nat1",
    "internet host inet1",
    "private endpoint pe1",
    "service graphstore1",
];

fn chromium_dom(url: &str, profile: &std::path::Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=4000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("chromium (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packets received by the link of the first edge whose counter key ends with `link`.
fn rx_packets(counters: &Value, key: &str) -> u64 {
    counters["links"][key][0]
        .as_u64()
        .unwrap_or_else(|| panic!("no counters for {key}: {counters}"))
}

#[test]
fn the_graph_renders_in_graphviz_and_a_real_browser_shows_live_counters() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());

    let dot = lab.cli_ok(&["lab", "graph", "-o", "dot"]);
    for n in NAMES {
        assert!(
            dot.contains(&format!("label=\"{n}\"")),
            "{n} is not drawn:\n{dot}"
        );
    }
    assert!(dot.contains("10.7.1.4/24"), "links carry their addresses");
    let mut gv = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graphviz (scripts/install-deps.sh installs it)");
    use std::io::Write;
    gv.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
    let svg = gv.wait_with_output().unwrap();
    assert!(
        svg.status.success() && String::from_utf8_lossy(&svg.stdout).contains("<svg"),
        "{}",
        String::from_utf8_lossy(&svg.stderr)
    );
    let mermaid = lab.cli_ok(&["lab", "graph", "-o", "mermaid"]);
    assert!(
        mermaid.starts_with("flowchart LR\n") && mermaid.contains("\"VM vm1\""),
        "{mermaid}"
    );
    let html = lab.cli_ok(&["lab", "graph", "-o", "html"]);
    assert!(
        !html.contains("<script src") && !html.contains("<link ") && !html.contains("https://"),
        "self-contained"
    );
    lab.refused(
        &["lab", "graph", "-g", "nothing-here", "-o", "dot"],
        "ResourceGroupNotFound",
    );

    // Served on loopback with live counters.
    let port = 18000 + (std::process::id() % 1000) as u16;
    let mut server = Command::new(agent_bin())
        .env("VNET_AGENT_LAB", &lab.name)
        .env("VNET_AGENT_SOCKET", lab.socket())
        .env("VNET_AGENT_STATE_DIR", lab.state_dir())
        .args(["lab", "graph", "--serve", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("lab graph --serve");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(
        first.contains(&format!("http://127.0.0.1:{port}/")),
        "{first}"
    );
    let curl = |host: &str, path: &str| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-H",
                &format!("Host: {host}"),
                "-w",
                "\n%{http_code}",
                &format!("http://127.0.0.1:{port}{path}"),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    assert_eq!(
        curl("evil.example", "/").0,
        "421",
        "another origin is refused"
    );
    let graph: Value = serde_json::from_str(&lab.cli_ok(&["lab", "graph", "-o", "json"])).unwrap();
    let vm2_ns = lab
        .namespaces()
        .into_iter()
        .find(|n| n.contains("-vm-vm2-"))
        .expect("vm2's namespace");
    let key = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "link" && (e["a"] == vm2_ns.as_str() || e["b"] == vm2_ns.as_str()))
        .find_map(|e| e["counter"].as_str())
        .expect("vm2's link")
        .to_string();
    let before: Value =
        serde_json::from_str(&curl(&format!("127.0.0.1:{port}"), "/counters").1).unwrap();
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "7001"]);
    for _ in 0..5 {
        lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "tcp", "10.7.2.4", "7001"]);
    }
    let after: Value =
        serde_json::from_str(&curl(&format!("127.0.0.1:{port}"), "/counters").1).unwrap();
    assert!(
        rx_packets(&after, &key) > rx_packets(&before, &key),
        "the link's counter moved: {key}"
    );
    let hits = after["rules"]
        .as_object()
        .unwrap()
        .values()
        .find_map(|r| r["securityRules/allow-7001"].as_u64());
    assert!(
        hits.unwrap_or(0) >= 5,
        "the rule that allowed the five connections counted them: {after}"
    );

    let profile = tempfile::tempdir().unwrap();
    let dom = chromium_dom(&format!("http://127.0.0.1:{port}/"), profile.path());
    for n in NAMES {
        assert!(dom.contains(n), "the browser does not show {n}");
    }
    assert!(
        dom.contains("live counters, updated"),
        "the page polled the counters"
    );
    let shown: u64 = dom
        .split("rx ")
        .skip(1)
        .filter_map(|s| s.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(shown > 0, "the page shows moving link counters");
    assert!(
        dom.contains("securityRules/allow-7001"),
        "NSG rules are listed with their hits"
    );
    let _ = server.kill();
    let _ = server.wait();
}
