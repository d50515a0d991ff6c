//! Issue 13, `network watcher explain` end to end: one marked probe traced by
//! the kernel (nftables trace) in every namespace it crosses. A drop names
//! the NSG rule or the user route that this test set up; a success lists
//! every hop with its NAT; other traffic never shows; no trace table or
//! rule is left behind.

use serde_json::{json, Value};
use vnet_e2e::fixtures::{net, plan, site, subnet_id, template, vm_in, vnet, RG};
use vnet_e2e::*;

const INET: &str = "203.0.113.90";

fn lab_template() -> Value {
    let id_of = |ty: &str, name: &str| json!({ "id": net(ty, name) });
    let mut resources = vec![
        json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": "nsg2", "location": "westeurope",
                "properties": { "securityRules": [{ "name": "deny-7002", "properties": {
                    "priority": 100, "direction": "Inbound", "access": "Deny", "protocol": "Tcp",
                    "sourceAddressPrefix": "*", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "7002" } }] } }),
        json!({ "type": "Microsoft.Network/routeTables", "name": "rt1", "location": "westeurope",
                "properties": { "routes": [{ "name": "blackhole", "properties": {
                    "addressPrefix": "10.6.9.0/24", "nextHopType": "None" } }] } }),
        vnet(
            "v1",
            "westeurope",
            &["10.6.0.0/16"],
            json!([
                { "name": "s1", "properties": { "addressPrefix": "10.6.1.0/24", "routeTable": id_of("routeTables", "rt1") } },
                { "name": "s2", "properties": { "addressPrefix": "10.6.2.0/24",
                    "networkSecurityGroup": id_of("networkSecurityGroups", "nsg2") } },
                { "name": "s9", "properties": { "addressPrefix": "10.6.9.0/24" } },
                { "name": "integration", "properties": { "addressPrefix": "10.6.3.0/28" } },
            ]),
        ),
        plan("plan1", "P1v3", 1, json!({})),
        site(
            "web1",
            "plan1",
            Some(&subnet_id("v1", "integration")),
            "westeurope",
            json!({ "appCommandLine": "sleep 100000", "vnetRouteAllEnabled": true }),
        ),
        json!({ "type": "Lab.Emulator/internetHosts", "name": "inet1", "location": "westeurope",
                "properties": { "ipAddress": INET } }),
    ];
    resources.extend(vm_in(RG, "vm1", &subnet_id("v1", "s1"), "10.6.1.4"));
    resources.extend(vm_in(RG, "vm2", &subnet_id("v1", "s2"), "10.6.2.4"));
    resources.extend(vm_in(RG, "vm9", &subnet_id("v1", "s9"), "10.6.9.4"));
    template(resources)
}

fn explain(lab: &Lab, source: &[&str], dest: &str) -> Value {
    let mut args = vec!["network", "watcher", "explain", "-g", RG];
    args.extend_from_slice(source);
    args.extend_from_slice(&["--dest", dest, "--protocol", "tcp"]);
    let v = lab.cli_json(&args);
    assert_no_trace_left(lab);
    v
}

/// Tracing is on only for the probe: no namespace keeps the trace table or
/// any rule that sets nftrace.
fn assert_no_trace_left(lab: &Lab) {
    for ns in lab.namespaces() {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "list", "ruleset"])
            .output()
            .expect("nft list ruleset");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("vnet_explain") && !text.contains("nftrace"),
            "{ns} keeps trace rules:\n{text}"
        );
    }
}

fn roles(v: &Value) -> Vec<String> {
    v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["role"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn explain_names_the_nsg_rule_that_drops_and_ignores_other_traffic() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "7001"]);
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "7002"]);
    // Unrelated traffic all along: allowed connections to vm2:7001.
    lab.spawn_quiet(
        &["--vm", "vm1"],
        &[
            "sh",
            "-c",
            &format!(
                "for i in $(seq 60); do {} tcp 10.6.2.4 7001 200 >/dev/null 2>&1; sleep 0.05; done",
                probe_bin()
            ),
        ],
    );
    let v = explain(&lab, &["--vm", "vm1"], "10.6.2.4:7002");
    assert_eq!(v["result"], "Dropped", "{v:#}");
    let why = v["why"].as_str().unwrap();
    assert!(
        why.contains("NSG nsg2 (inbound rules)") && why.contains("securityRules/deny-7002"),
        "{why}"
    );
    assert!(
        v["prediction"]["says"]
            .as_str()
            .unwrap()
            .contains("securityRules/deny-7002"),
        "{v:#}"
    );
    assert_eq!(roles(&v), ["VM vm1", "the fabric of VNet v1"], "{v:#}");
    for h in v["hops"].as_array().unwrap() {
        assert!(
            h["packet"].as_str().unwrap().ends_with(":7002"),
            "only the probe's packets: {h}"
        );
    }
    let fabric = &v["hops"][1]["steps"];
    let steps: Vec<String> = fabric
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["chain"].as_str().unwrap(),
                s["verdict"].as_str().unwrap()
            )
        })
        .collect();
    assert!(steps.contains(&"nsg-deny drop".to_string()), "{steps:#?}");
}

#[test]
fn explain_names_the_user_route_that_drops() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    let v = explain(&lab, &["--vm", "vm1"], "10.6.9.4:7001");
    assert_eq!(v["result"], "Dropped", "{v:#}");
    let why = v["why"].as_str().unwrap();
    assert!(
        why.contains("'blackhole'") && why.contains("next hop None"),
        "{why}"
    );
    assert_eq!(
        roles(&v).last().unwrap(),
        "the fabric of VNet v1",
        "last seen in the fabric: {v:#}"
    );
}

#[test]
fn explain_of_a_success_lists_every_hop_with_its_nat() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "7001"]);
    lab.spawn(&["--host", "inet1"], &[&probe_bin(), "serve-tcp", "7100"]);
    // App instance to a VM: sandbox, worker, fabric, VM.
    let v = explain(&lab, &["--app", "web1"], "10.6.2.4:7001");
    assert_eq!(v["result"], "Delivered", "{v:#}");
    assert!(
        v["why"]
            .as_str()
            .unwrap()
            .contains("VM vm2, which answered"),
        "{v:#}"
    );
    let r = roles(&v);
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(
        r[0].starts_with("app web1")
            && r[1].starts_with("App Service worker")
            && r[2] == "the fabric of VNet v1"
            && r[3] == "VM vm2",
        "{r:?}"
    );
    // A VM to the internet: the fabric's SNAT shows as NAT.
    let v = explain(&lab, &["--vm", "vm2"], &format!("{INET}:7100"));
    assert_eq!(v["result"], "Delivered", "{v:#}");
    let hops = v["hops"].as_array().unwrap();
    assert!(
        roles(&v).contains(&"internet host inet1".to_string()),
        "{v:#}"
    );
    let nat = hops
        .iter()
        .find_map(|h| h["nat"].as_str())
        .unwrap_or_else(|| panic!("no NAT hop: {v:#}"));
    assert!(nat.starts_with("10.6.2.4:"), "{nat}");
}
