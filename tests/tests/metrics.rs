//! Issue 14, the daemon's Prometheus metrics: scraped on the API socket and
//! on the opt-in loopback port, before and after real traffic; the counters
//! that traffic drives move (NSG rule hits, DNS answers, SNAT ports held).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vnet_e2e::fixtures::{net, plan, site, subnet_id, template, vm_in, vnet, RG};
use vnet_e2e::*;

const INET: &str = "203.0.113.99";

fn lab_template() -> Value {
    let mut resources = vec![
        json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg2", "location": "westeurope",
                "properties": { "securityRules": [{ "name": "allow-7001", "properties": {
                    "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                    "sourceAddressPrefix": "*", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "7001" } }] } }),
        vnet(
            "v1",
            "westeurope",
            &["10.8.0.0/16"],
            json!([
                { "name": "s1", "properties": { "addressPrefix": "10.8.1.0/24" } },
                { "name": "s2", "properties": { "addressPrefix": "10.8.2.0/24",
                    "networkSecurityGroup": { "id": net("networkSecurityGroups", "nsg2") } } },
                { "name": "integration", "properties": { "addressPrefix": "10.8.3.0/28" } },
            ]),
        ),
        plan("plan1", "P1v3", 1, json!({})),
        site(
            "web1",
            "plan1",
            Some(&subnet_id("v1", "integration")),
            "westeurope",
            json!({ "appCommandLine": "sleep 100000" }),
        ),
        json!({ "type": "Lab.Emulator/internetHosts", "name": "inet1", "location": "westeurope",
                "properties": { "ipAddress": INET } }),
    ];
    resources.extend(vm_in(RG, "vm1", &subnet_id("v1", "s1"), "10.8.1.4"));
    resources.extend(vm_in(RG, "vm2", &subnet_id("v1", "s2"), "10.8.2.4"));
    template(resources)
}

/// `name{labels}` -> value of a Prometheus text page.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn scrape_socket(lab: &Lab) -> BTreeMap<String, f64> {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--unix-socket",
            lab.socket().to_str().unwrap(),
            "http://vnet-agent/metrics",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn metrics_move_with_real_traffic_on_the_socket_and_the_loopback_port() {
    let Some(mut lab) = Lab::start() else { return };
    lab.stop_daemon();
    let port = (19000 + std::process::id() % 1000).to_string();
    lab.start_daemon_with(&[("VNET_AGENT_METRICS_PORT", &port)]);
    lab.deploy(RG, &lab_template());
    let before = scrape_socket(&lab);
    assert!(before["vnet_agent_reconciles_total"] >= 1.0, "{before:?}");
    assert_eq!(before["vnet_agent_namespaces{kind=\"vm\"}"], 2.0);
    let hit = "vnet_agent_nsg_rule_hits_total{nsg=\"nsg2\",rule=\"securityRules/allow-7001\"}";
    let noerror = "vnet_agent_dns_answers_total{rcode=\"NOERROR\"}";
    let snat = "vnet_agent_snat_ports_in_use{plan=\"plan1\",instance=\"0\"}";
    assert_eq!(before[snat], 0.0, "{before:?}");

    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "7001"]);
    for _ in 0..5 {
        lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "tcp", "10.8.2.4", "7001"]);
    }
    for _ in 0..3 {
        lab.exec_ok(
            &["--vm", "vm1"],
            &["dig", "+short", "@168.63.129.16", "web1.azurewebsites.net"],
        );
    }
    // Ten connections the app holds open to the internet, through the stamp.
    lab.spawn(&["--host", "inet1"], &[&probe_bin(), "serve-tcp", "7100"]);
    let held = lab
        .spawn_quiet(
            &["--app", "web1"],
            &[&probe_bin(), "hold", INET, "7100", "30", "200"],
        )
        .id();
    let many = lab.spawn(
        &["--app", "web1"],
        &[&probe_bin(), "many", INET, "7100", "10", "6000"],
    );
    assert!(many.contains("connected=10"), "{many}");
    let after = scrape_socket(&lab);
    assert!(
        after[hit] >= before[hit] + 5.0,
        "{} -> {}",
        before[hit],
        after[hit]
    );
    assert!(
        after[noerror] >= before[noerror] + 3.0,
        "{} -> {}",
        before[noerror],
        after[noerror]
    );
    assert!(
        after[snat] >= 10.0,
        "the held connections hold SNAT ports: {}",
        after[snat]
    );
    assert_eq!(after["vnet_agent_snat_ports_limit"], 128.0);
    assert!(after["vnet_agent_kernel_writes_total"] > 0.0);
    let _ = held;

    // The same page on the opt-in loopback port.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tcp = parse(&String::from_utf8_lossy(&out.stdout));
    assert!(tcp[hit] >= after[hit], "{tcp:?}");
}
