//! Issue 4, end to end: network security groups, route tables, network
//! virtual appliances, NAT gateway, SNAT exhaustion and SMTP on real packets,
//! with the counter of the rule that decided each flow.

use serde_json::{json, Value};
use vnet_e2e::fixtures::{template, RG};
use vnet_e2e::*;

fn net(ty: &str, name: &str) -> String {
    id(RG, &format!("Microsoft.Network/{ty}"), name)
}

fn subnet(name: &str) -> String {
    format!("{}/subnets/{name}", net("virtualNetworks", "vnet1"))
}

fn rule(
    name: &str,
    priority: u32,
    direction: &str,
    access: &str,
    protocol: &str,
    dst: &str,
    dst_port: &str,
) -> Value {
    json!({ "name": name, "properties": {
        "priority": priority, "direction": direction, "access": access, "protocol": protocol,
        "sourceAddressPrefix": "*", "sourcePortRange": "*",
        "destinationAddressPrefix": dst, "destinationPortRange": dst_port } })
}

fn nsg(name: &str, rules: Vec<Value>) -> Value {
    json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": name, "location": "westeurope",
            "properties": { "securityRules": rules } })
}

fn public_ip(name: &str) -> Value {
    json!({ "type": "Microsoft.Network/publicIPAddresses", "name": name, "location": "westeurope",
            "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } })
}

fn vm(name: &str, subnet_name: &str, ip: &str, extra_nic: Value) -> Vec<Value> {
    let mut nic_props = json!({ "ipConfigurations": [{ "name": "ipconfig1", "properties": {
        "subnet": { "id": subnet(subnet_name) }, "privateIPAllocationMethod": "Static", "privateIPAddress": ip } }] });
    if let (Some(p), Some(e)) = (nic_props.as_object_mut(), extra_nic.as_object()) {
        for (k, v) in e {
            if k == "ipConfiguration" {
                if let Some(ipc) = p["ipConfigurations"][0]["properties"].as_object_mut() {
                    ipc.extend(v.as_object().cloned().unwrap_or_default());
                }
            } else {
                p.insert(k.clone(), v.clone());
            }
        }
    }
    vec![
        json!({ "type": "Microsoft.Network/networkInterfaces", "name": format!("{name}-nic"), "location": "westeurope", "properties": nic_props }),
        json!({ "type": "Microsoft.Compute/virtualMachines", "name": name, "location": "westeurope",
                "properties": { "networkProfile": { "networkInterfaces": [{ "id": net("networkInterfaces", &format!("{name}-nic")) }] } } }),
    ]
}

/// A partner API at its real address, outside the lab's public pool
/// (issue 10, item 1): every path of these tests reaches it.
const PARTNER: &str = "203.0.113.77";
/// Another one, in Azure-like public space.
const PARTNER2: &str = "20.50.1.1";

/// VNet `vnet1` 10.0.0.0/16: `integration` 10.0.1.0/24 (with `int_extra` merged
/// into its properties), `vms` 10.0.2.0/24, `fw` 10.0.3.0/24; plan `plan1` (1
/// instance); `web1` route-all off, `web2` route-all on; `vm1` 10.0.2.4;
/// internet host `host1` at [`PARTNER`] and `host2` at [`PARTNER2`], real
/// public addresses outside the lab's pool; plus `extra` resources.
fn lab4(int_extra: Value, vms_extra: Value, extra: Vec<Value>) -> Value {
    let mut int_props = json!({ "addressPrefix": "10.0.1.0/24" });
    int_props
        .as_object_mut()
        .unwrap()
        .extend(int_extra.as_object().cloned().unwrap_or_default());
    let mut vms_props = json!({ "addressPrefix": "10.0.2.0/24" });
    vms_props
        .as_object_mut()
        .unwrap()
        .extend(vms_extra.as_object().cloned().unwrap_or_default());
    let site = |name: &str, route_all: bool| {
        json!({ "type": "Microsoft.Web/sites", "name": name, "location": "westeurope", "kind": "app,linux",
                "properties": { "serverFarmId": id(RG, "Microsoft.Web/serverfarms", "plan1"),
                                "virtualNetworkSubnetId": subnet("integration"),
                                "siteConfig": { "vnetRouteAllEnabled": route_all } } })
    };
    let mut resources = vec![
        json!({ "type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "location": "westeurope",
                "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [
                    { "name": "integration", "properties": int_props },
                    { "name": "vms", "properties": vms_props },
                    { "name": "fw", "properties": { "addressPrefix": "10.0.3.0/24" } } ] } }),
        fixtures::plan("plan1", "P1v3", 1, json!({})),
        site("web1", false),
        site("web2", true),
        json!({ "type": "Lab.Emulator/internetHosts", "name": "host1", "location": "westeurope",
                "properties": { "ipAddress": PARTNER } }),
        json!({ "type": "Lab.Emulator/internetHosts", "name": "host2", "location": "westeurope",
                "properties": { "ipAddress": PARTNER2 } }),
    ];
    resources.extend(vm("vm1", "vms", "10.0.2.4", json!({})));
    resources.extend(extra);
    template(resources)
}

/// `lab4` with NSG `nsg-int` of `rules` on the integration subnet.
fn deploy_with_integration_nsg(lab: &Lab, rules: Vec<Value>) {
    lab.deploy(
        RG,
        &lab4(
            json!({ "networkSecurityGroup": { "id": net("networkSecurityGroups", "nsg-int") } }),
            json!({}),
            vec![nsg("nsg-int", rules)],
        ),
    );
}

/// Hit counts of an NSG's rules, by rule name, from `network nsg show`.
fn hits(lab: &Lab, nsg_name: &str) -> std::collections::BTreeMap<String, u64> {
    let v = lab.cli_json(&["network", "nsg", "show", "-g", RG, "-n", nsg_name]);
    let mut out = std::collections::BTreeMap::new();
    for group in ["securityRules", "defaultSecurityRules"] {
        for r in v["properties"][group].as_array().into_iter().flatten() {
            let n = r["name"].as_str().unwrap_or_default().to_string();
            let h = r["emulator"]["hits"]["packets"].as_u64().unwrap_or(0);
            out.insert(n, h);
        }
    }
    out
}

fn private_ip(lab: &Lab, site: &str) -> String {
    lab.exec_ok(&["--app", site], &["printenv", "WEBSITE_PRIVATE_IP"])
        .trim()
        .to_string()
}

#[test]
fn subnet_nsg_outbound_rules_decide_app_traffic_into_the_vnet() {
    let Some(mut lab) = Lab::start() else { return };
    let rules = vec![
        rule(
            "deny-9000",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "10.0.2.4",
            "9000",
        ),
        rule(
            "allow-9001",
            110,
            "Outbound",
            "Allow",
            "Tcp",
            "10.0.2.4",
            "9001",
        ),
        rule(
            "deny-icmp",
            120,
            "Outbound",
            "Deny",
            "Icmp",
            "10.0.2.4",
            "*",
        ),
        rule(
            "deny-udp-9003",
            130,
            "Outbound",
            "Deny",
            "Udp",
            "10.0.2.4",
            "9003",
        ),
        rule(
            "deny-internet",
            140,
            "Outbound",
            "Deny",
            "*",
            "Internet",
            "*",
        ),
        // Inbound rules never matter for the app: it has no inbound path.
        rule("deny-all-in", 150, "Inbound", "Deny", "*", "*", "*"),
    ];
    deploy_with_integration_nsg(&lab, rules);
    let probe = probe_bin();
    for (mode, port) in [
        ("serve-tcp", "9000"),
        ("serve-tcp", "9001"),
        ("serve-udp", "9002"),
        ("serve-udp", "9003"),
    ] {
        lab.spawn(&["--vm", "vm1"], &[&probe, mode, port]);
    }
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
    let me = private_ip(&lab, "web1");
    let before = hits(&lab, "nsg-int");

    let denied = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.0.2.4", "9000", "1000"],
    );
    assert!(!denied.status.success(), "deny-9000 must drop the TCP flow");
    assert_eq!(
        peer_ip(&lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.0.2.4", "9001"])),
        me
    );
    assert_eq!(
        peer_ip(&lab.exec_ok(&["--app", "web1"], &[&probe, "udp", "10.0.2.4", "9002"])),
        me,
        "UDP allowed by AllowVnetOutBound"
    );
    let udp_denied = lab.exec(
        &["--app", "web1"],
        &[&probe, "udp", "10.0.2.4", "9003", "1000"],
    );
    assert!(
        !udp_denied.status.success(),
        "deny-udp-9003 must drop the UDP flow"
    );
    let ping = lab.exec(
        &["--app", "web1"],
        &["ping", "-c", "1", "-W", "1", "10.0.2.4"],
    );
    assert!(!ping.status.success(), "deny-icmp must drop ICMP");
    // Route-all off: internet traffic never enters the VNet, so the NSG does not see it.
    lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", PARTNER, "8080"]);
    // Route-all on: it does, and deny-internet decides.
    let out = lab.exec(
        &["--app", "web2"],
        &[&probe, "tcp", PARTNER, "8080", "1000"],
    );
    assert!(
        !out.status.success(),
        "with route-all on, the subnet NSG's deny-internet applies"
    );

    let after = hits(&lab, "nsg-int");
    for r in [
        "deny-9000",
        "allow-9001",
        "deny-icmp",
        "deny-udp-9003",
        "deny-internet",
        "AllowVnetOutBound",
    ] {
        assert!(
            after[r] > before[r],
            "the counter of {r} must move: {before:?} -> {after:?}"
        );
    }
    assert_eq!(
        after["deny-all-in"], before["deny-all-in"],
        "inbound rules never see app traffic"
    );
}

#[test]
fn nic_nsg_asg_and_statefulness() {
    let Some(mut lab) = Lab::start() else { return };
    let asg = json!({ "type": "Microsoft.Network/applicationSecurityGroups", "name": "asg-db", "location": "westeurope", "properties": {} });
    let nic_rules = vec![
        json!({ "name": "allow-app-to-db", "properties": { "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "10.0.1.0/24", "sourcePortRange": "*",
            "destinationApplicationSecurityGroups": [{ "id": net("applicationSecurityGroups", "asg-db") }], "destinationPortRange": "5432" } }),
        rule("deny-rest-in", 200, "Inbound", "Deny", "*", "*", "*"),
    ];
    let mut t = lab4(json!({}), json!({}), vec![asg, nsg("nsg-vm", nic_rules)]);
    // vm1's NIC gets the NSG and the ASG.
    for r in t["resources"].as_array_mut().unwrap() {
        if r["name"] == "vm1-nic" {
            r["properties"]["networkSecurityGroup"] =
                json!({ "id": net("networkSecurityGroups", "nsg-vm") });
            r["properties"]["ipConfigurations"][0]["properties"]["applicationSecurityGroups"] =
                json!([{ "id": net("applicationSecurityGroups", "asg-db") }]);
        }
    }
    lab.deploy(RG, &t);
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "5432"]);
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
    let before = hits(&lab, "nsg-vm");
    lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.0.2.4", "5432"]);
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.0.2.4", "9000", "1000"],
    );
    assert!(
        !out.status.success(),
        "the NIC NSG denies everything else inbound"
    );
    // Stateful: vm1's own outbound flow gets its replies although all other inbound is denied.
    lab.exec_ok(&["--vm", "vm1"], &[&probe, "tcp", PARTNER, "8080"]);
    let after = hits(&lab, "nsg-vm");
    assert!(
        after["allow-app-to-db"] > before["allow-app-to-db"],
        "{before:?} -> {after:?}"
    );
    assert!(
        after["deny-rest-in"] > before["deny-rest-in"],
        "{before:?} -> {after:?}"
    );

    let eff = lab.cli_json(&[
        "network",
        "nic",
        "list-effective-nsg",
        "-g",
        RG,
        "-n",
        "vm1-nic",
    ]);
    let text = eff.to_string();
    assert!(
        text.contains("allow-app-to-db")
            && text.contains("DenyAllInBound")
            && text.contains("10.0.2.4"),
        "{eff}"
    );
}

#[test]
fn changing_one_rule_of_1000_reprograms_one_table_and_keeps_flows() {
    let Some(mut lab) = Lab::start() else { return };
    let mut rules: Vec<Value> = (0..999)
        .map(|i| {
            rule(
                &format!("deny-{i}"),
                100 + i,
                "Outbound",
                "Deny",
                "Tcp",
                &format!("172.16.{}.{}", i / 250, i % 250 + 1),
                "*",
            )
        })
        .collect();
    rules.push(rule(
        "allow-vms",
        1200,
        "Outbound",
        "Allow",
        "*",
        "10.0.2.0/24",
        "*",
    ));
    lab.deploy(
        RG,
        &lab4(
            json!({ "networkSecurityGroup": { "id": net("networkSecurityGroups", "nsg-big") } }),
            json!({}),
            vec![nsg("nsg-big", rules)],
        ),
    );
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    let hold = lab.spawn_quiet(
        &["--app", "web1"],
        &[&probe, "hold", "10.0.2.4", "9000", "40", "100"],
    );
    let hold_pid = hold.id();
    std::thread::sleep(std::time::Duration::from_millis(1000));

    let before = lab.cli_json(&["lab", "status"]);
    lab.cli_ok(&[
        "network",
        "nsg",
        "rule",
        "update",
        "-g",
        RG,
        "--nsg-name",
        "nsg-big",
        "-n",
        "deny-5",
        "--destination-port-ranges",
        "22",
    ]);
    let after = lab.cli_json(&["lab", "status"]);
    let writes = after["totals"]["kernelWrites"].as_u64().unwrap()
        - before["totals"]["kernelWrites"].as_u64().unwrap();
    assert_eq!(
        writes, 1,
        "one rule change is one nft batch and nothing else: {}",
        after["totals"]
    );
    let shown = lab.cli_json(&[
        "network",
        "nsg",
        "rule",
        "show",
        "-g",
        RG,
        "--nsg-name",
        "nsg-big",
        "-n",
        "deny-5",
    ]);
    assert_eq!(shown["properties"]["destinationPortRange"], "22", "{shown}");

    let (status, out) = lab.wait_background(hold_pid, 30);
    assert!(
        status.success() && out.contains("held 40"),
        "the established flow broke across the change: {out}"
    );
}

/// The lab's links carry IPv4 packets of up to 192 KiB (BIG TCP, kernel >=
/// 6.3; `dataplane::links`): a bulk transfer from an app to a VM crosses the
/// worker's SNAT and the fabric's NSG and conntrack in such packets, and
/// arrives whole, in order, from the instance address.
#[test]
fn bulk_tcp_crosses_worker_and_fabric_in_big_packets_intact() {
    let Some(mut lab) = Lab::start() else { return };
    let rules = vec![rule(
        "allow-vms",
        100,
        "Outbound",
        "Allow",
        "Tcp",
        "10.0.2.0/24",
        "9100",
    )];
    deploy_with_integration_nsg(&lab, rules);
    // The test's own table in the VM: what arrives for port 9100, and how
    // much of it in packets larger than the legacy 64 KiB GSO limit.
    let vm = ["--vm", "vm1"];
    lab.exec_ok(&vm, &["nft", "add", "table", "ip", "bigtcp"]);
    lab.exec_ok(
        &vm,
        &[
            "nft",
            "add chain ip bigtcp in { type filter hook input priority 0; }",
        ],
    );
    lab.exec_ok(
        &vm,
        &["nft", "add rule ip bigtcp in tcp dport 9100 counter"],
    );
    lab.exec_ok(
        &vm,
        &[
            "nft",
            "add rule ip bigtcp in tcp dport 9100 meta length > 65535 counter",
        ],
    );
    let probe = probe_bin();
    lab.spawn(&vm, &[&probe, "sink", "9100"]);
    let bytes: u64 = 64 << 20;
    let out = lab.exec_ok(
        &["--app", "web1"],
        &[&probe, "send", "10.0.2.4", "9100", &bytes.to_string()],
    );
    let ip = private_ip(&lab, "web1");
    assert!(
        out.starts_with(&format!("received={bytes} intact=true peer={ip}:")),
        "the sink must get every byte, in order, from the instance address {ip}: {out}"
    );
    assert!(
        hits(&lab, "nsg-int")["allow-vms"] >= 1,
        "the NSG rule decided the flow"
    );

    let listing = lab.exec_ok(&vm, &["nft", "list", "table", "ip", "bigtcp"]);
    let packets: Vec<u64> = listing
        .lines()
        .filter_map(|l| l.split("packets ").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    let [all, big] = packets[..] else {
        panic!("two counters expected: {listing}")
    };
    assert!(all > 0, "{listing}");
    if kernel_at_least(6, 3) {
        // 64 MiB in 64 KiB packets would be at least 1,024 of them; most
        // of the transfer came in larger ones.
        assert!(
            big > all / 2 && all < 1024,
            "BIG TCP packets should carry the transfer ({all} packets, {big} over 64 KiB): {listing}"
        );
    } else {
        assert_eq!(big, 0, "no IPv4 BIG TCP before 6.3: {listing}");
    }
}

#[test]
fn route_tables_none_and_effective_routes() {
    let Some(mut lab) = Lab::start() else { return };
    let rt = json!({ "type": "Microsoft.Network/routeTables", "name": "rt-int", "location": "westeurope",
                     "properties": { "routes": [{ "name": "drop-vms", "properties": { "addressPrefix": "10.0.2.0/24", "nextHopType": "None" } }] } });
    lab.deploy(
        RG,
        &lab4(
            json!({ "routeTable": { "id": net("routeTables", "rt-int") } }),
            json!({}),
            vec![rt],
        ),
    );
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.0.2.4", "9000", "1000"],
    );
    assert!(!out.status.success(), "a None route drops the traffic");
    let table = lab.subnet_effective_routes_table(RG, "vnet1", "integration");
    assert!(
        table.lines().next().unwrap().starts_with("Source"),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("User")
            && l.contains("Active")
            && l.contains("10.0.2.0/24")
            && l.contains("None")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Default") && l.contains("0.0.0.0/0") && l.contains("Internet")),
        "{table}"
    );
    // Deleting the route restores the path.
    lab.cli_ok(&[
        "network",
        "route-table",
        "route",
        "delete",
        "-g",
        RG,
        "--route-table-name",
        "rt-int",
        "-n",
        "drop-vms",
    ]);
    lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.0.2.4", "9000"]);
    let nic = lab.nic_effective_routes(RG, "vm1-nic");
    assert!(nic.to_string().contains("VnetLocal"), "{nic}");
}

/// The firewall VM `fw` (10.0.3.4, IP forwarding as given, a public IP) and a
/// route table on the integration subnet sending `prefix` to it.
fn firewall_lab(forwarding: bool, prefix: &str) -> Value {
    let rt = json!({ "type": "Microsoft.Network/routeTables", "name": "rt-int", "location": "westeurope",
                     "properties": { "routes": [{ "name": "via-fw", "properties": {
                         "addressPrefix": prefix, "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.3.4" } }] } });
    let mut extra = vec![rt, public_ip("fw-pip")];
    extra.extend(vm(
        "fw",
        "fw",
        "10.0.3.4",
        json!({
        "enableIPForwarding": forwarding,
        "ipConfiguration": { "publicIPAddress": { "id": net("publicIPAddresses", "fw-pip") } } }),
    ));
    lab4(
        json!({ "routeTable": { "id": net("routeTables", "rt-int") } }),
        json!({}),
        extra,
    )
}

/// Inside the firewall VM: forward, and SNAT what it forwards out of eth0 (as a user configures an NVA).
fn configure_firewall(lab: &Lab) {
    lab.exec_ok(&["--vm", "fw"], &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.exec_ok(&["--vm", "fw"], &["nft", "add table ip fw; add chain ip fw post { type nat hook postrouting priority 100; }; add rule ip fw post oifname eth0 ip saddr != 10.0.3.4 masquerade"]);
}

#[test]
fn a_virtual_appliance_forwards_only_with_ip_forwarding() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &firewall_lab(false, "10.0.2.0/24"));
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    lab.exec_ok(&["--vm", "fw"], &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.0.2.4", "9000", "1000"],
    );
    assert!(
        !out.status.success(),
        "without enableIPForwarding the fabric drops what the NIC forwards"
    );

    lab.deploy(RG, &firewall_lab(true, "10.0.2.0/24"));
    configure_firewall(&lab);
    let seen = peer_ip(&lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.0.2.4", "9000"]));
    assert_eq!(
        seen, "10.0.3.4",
        "the firewall SNATed the flow it forwarded"
    );
}

#[test]
fn forced_tunnelling_leaves_with_the_firewalls_public_ip() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &firewall_lab(true, "0.0.0.0/0"));
    configure_firewall(&lab);
    let probe = probe_bin();
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
    let pip = lab.show(&net("publicIPAddresses", "fw-pip"));
    let fw_ip = pip["properties"]["ipAddress"]
        .as_str()
        .expect("ipAddress")
        .to_string();
    let seen = peer_ip(&lab.exec_ok(&["--app", "web2"], &[&probe, "tcp", PARTNER, "8080"]));
    assert_eq!(
        seen, fw_ip,
        "route-all + 0/0 to the firewall: the internet sees the firewall's public IP"
    );
    // Route-all off: internet traffic does not enter the VNet, so it keeps the app's outbound IP.
    let seen = peer_ip(&lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", PARTNER, "8080"]));
    assert_ne!(seen, fw_ip);
}

fn nat_lab() -> Value {
    let nat = json!({ "type": "Microsoft.Network/natGateways", "name": "nat1", "location": "westeurope", "sku": { "name": "Standard" },
                      "properties": { "idleTimeoutInMinutes": 10, "publicIpAddresses": [{ "id": net("publicIPAddresses", "nat-pip") }] } });
    lab4(
        json!({ "natGateway": { "id": net("natGateways", "nat1") } }),
        json!({}),
        vec![public_ip("nat-pip"), nat],
    )
}

#[test]
fn nat_gateway_gives_route_all_traffic_its_ip_and_idle_timeout() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &nat_lab());
    let again = lab.cli_json(&["lab", "reconcile"]);
    assert_eq!(
        kernel_writes(&again["reconcile"]),
        0,
        "a NAT gateway lab must be stable: {again}"
    );
    let probe = probe_bin();
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
    let nat_ip = lab.show(&net("publicIPAddresses", "nat-pip"))["properties"]["ipAddress"]
        .as_str()
        .expect("ipAddress")
        .to_string();
    let outbound: Vec<String> = lab.show(&id(RG, "Microsoft.Web/sites", "web1"))["properties"]
        ["outboundIpAddresses"]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(
        peer_ip(&lab.exec_ok(&["--app", "web2"], &[&probe, "tcp", PARTNER, "8080"])),
        nat_ip
    );
    let off = peer_ip(&lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", PARTNER, "8080"]));
    assert!(
        outbound.contains(&off),
        "route-all off still leaves with an outbound IP: {off}"
    );

    // The idle timeout (10 minutes) is the conntrack timeout of the NATed
    // flow, sampled while it is idle (with unacknowledged data in flight
    // conntrack caps any TCP timeout at 300 s).
    lab.spawn_quiet(
        &["--app", "web2"],
        &[&probe, "hold", PARTNER, "8080", "2", "4000"],
    );
    std::thread::sleep(std::time::Duration::from_millis(800));
    let vnet = lab.show(&net("virtualNetworks", "vnet1"));
    let fabric = vnet["emulator"]["fabricNamespace"]
        .as_str()
        .unwrap()
        .to_string();
    let ct = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &fabric,
            "conntrack",
            "-L",
            "-p",
            "tcp",
            "--dport",
            "8080",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&ct.stdout);
    let line = listing
        .lines()
        .find(|l| l.contains("ESTABLISHED"))
        .unwrap_or_else(|| panic!("no established flow in the fabric: {listing}"));
    let timeout: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|t| t.parse().ok())
        .expect("timeout column");
    if !(timeout <= 600 && timeout > 500) {
        let rules = std::process::Command::new("ip")
            .args(["netns", "exec", &fabric, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        panic!(
            "conntrack timeout {timeout} is not the 10-minute idle timeout: {line}\n{}",
            String::from_utf8_lossy(&rules.stdout)
        );
    }
}

#[test]
fn snat_ports_run_out_on_the_stamp_path_but_not_through_a_nat_gateway() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &nat_lab());
    let probe = probe_bin();
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
    let count = |out: &str, key: &str| -> u32 {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"))
    };
    // 128 SNAT ports per instance (the lab's default): 200 at once to one host:port cannot all connect.
    let direct = lab.exec_ok(
        &["--app", "web1"],
        &[&probe, "many", PARTNER, "8080", "200", "1500"],
    );
    assert!(
        count(&direct, "connected=") <= 128 && count(&direct, "failed=") >= 72,
        "stamp path: {direct}"
    );
    // Through the NAT gateway (64,512 ports per IP) they all do.
    let nat = lab.exec_ok(
        &["--app", "web2"],
        &[&probe, "many", PARTNER, "8080", "200", "1500"],
    );
    assert_eq!(count(&nat, "connected="), 200, "NAT gateway path: {nat}");
}

#[test]
fn smtp_is_blocked_directly_and_allowed_through_the_integration_when_the_subscription_allows() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab4(json!({}), json!({}), vec![]));
    let probe = probe_bin();
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "25"]);
    let smtp = |site: &str| {
        lab.exec(&["--app", site], &[&probe, "tcp", PARTNER, "25", "1000"])
            .status
            .success()
    };
    assert!(!smtp("web1"), "TCP 25 on the direct path is blocked");
    assert!(
        !smtp("web2"),
        "through the integration, TCP 25 needs the subscription's permission"
    );
    lab.cli_ok(&[
        "account",
        "update",
        "--subscription",
        SUB,
        "--allow-outbound-smtp",
        "true",
    ]);
    assert!(
        smtp("web2"),
        "allowed through the integration once the subscription allows it"
    );
    assert!(!smtp("web1"), "still blocked on the direct path");
}

/// Packets counted by the named counter `name` of vnet1's fabric.
fn fabric_counter(lab: &Lab, name: &str) -> u64 {
    let fabric = lab
        .namespaces()
        .into_iter()
        .find(|n| n.contains("-vnet-vnet1-"))
        .expect("the fabric of vnet1");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &fabric, "nft", "-j", "list", "counter"])
        .args(["inet", "vnet_agent", name])
        .output()
        .expect("nft");
    let v: Value = serde_json::from_slice(&out.stdout).expect("nft json");
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["counter"]["packets"].as_u64())
        .unwrap_or_else(|| panic!("no counter {name} in {fabric}"))
}

/// `fw` (10.0.3.4) also uses 10.0.3.99, which Azure never gave it: it sends
/// from it to vm1, and vm1 reaches it through a route to 10.0.3.99 via `fw`.
fn spoofing_lab(forwarding: bool) -> Value {
    let rt = json!({ "type": "Microsoft.Network/routeTables", "name": "rt-vms", "location": "westeurope",
                     "properties": { "routes": [{ "name": "to-99", "properties": {
                         "addressPrefix": "10.0.3.99/32", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.3.4" } }] } });
    let mut extra = vec![rt];
    extra.extend(vm(
        "fw",
        "fw",
        "10.0.3.4",
        json!({ "enableIPForwarding": forwarding }),
    ));
    lab4(
        json!({}),
        json!({ "routeTable": { "id": net("routeTables", "rt-vms") } }),
        extra,
    )
}

#[test]
fn without_ip_forwarding_a_nic_sends_and_receives_only_its_own_addresses() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &spoofing_lab(false));
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    lab.spawn(&["--vm", "fw"], &[&probe, "serve-tcp", "9001"]);
    let use_99 = |lab: &Lab| {
        lab.exec_ok(
            &["--vm", "fw"],
            &["ip", "addr", "replace", "10.0.3.99/32", "dev", "eth0"],
        );
        lab.exec_ok(
            &["--vm", "fw"],
            &[
                "ip",
                "route",
                "replace",
                "10.0.2.4/32",
                "via",
                "10.0.3.1",
                "dev",
                "eth0",
                "src",
                "10.0.3.99",
            ],
        );
    };
    use_99(&lab);
    let (src0, dst0) = (
        fabric_counter(&lab, "spoofed-source"),
        fabric_counter(&lab, "spoofed-destination"),
    );
    let out = lab.exec(
        &["--vm", "fw"],
        &[&probe, "tcp", "10.0.2.4", "9000", "1000"],
    );
    assert!(!out.status.success(), "sent from 10.0.3.99: dropped");
    assert!(fabric_counter(&lab, "spoofed-source") > src0);
    let out = lab.exec(
        &["--vm", "vm1"],
        &[&probe, "tcp", "10.0.3.99", "9001", "1000"],
    );
    assert!(
        !out.status.success(),
        "sent to 10.0.3.99 through fw: dropped"
    );
    assert!(fabric_counter(&lab, "spoofed-destination") > dst0);
    // Its own address still works both ways.
    let seen = peer_ip(&lab.exec_ok(&["--vm", "vm1"], &[&probe, "tcp", "10.0.3.4", "9001"]));
    assert_eq!(seen, "10.0.2.4");

    lab.deploy(RG, &spoofing_lab(true));
    use_99(&lab);
    let seen = peer_ip(&lab.exec_ok(&["--vm", "fw"], &[&probe, "tcp", "10.0.2.4", "9000"]));
    assert_eq!(
        seen, "10.0.3.99",
        "with IP forwarding the NIC may send from any address"
    );
    let seen = peer_ip(&lab.exec_ok(&["--vm", "vm1"], &[&probe, "tcp", "10.0.3.99", "9001"]));
    assert_eq!(seen, "10.0.2.4", "and receive for any address routed to it");
}

/// Issue 10, item 1: internet hosts at the addresses users name. Both
/// partners are reached directly (the app's outbound IP) and through the
/// VNet with route-all (the stamp's outbound IP, via the fabric); an outbound
/// NSG rule naming one's prefix drops it (its counter moves) while the other
/// passes; a UDR naming the other's /32 with next hop None blackholes it.
/// A host at a private address is refused, changing nothing.
#[test]
fn internet_hosts_at_real_addresses_meet_nsg_rules_and_udrs_that_name_them() {
    let Some(mut lab) = Lab::start() else { return };
    let rt = json!({ "type": "Microsoft.Network/routeTables", "name": "rt-int", "location": "westeurope",
                     "properties": { "routes": [{ "name": "drop-partner2", "properties": {
                         "addressPrefix": format!("{PARTNER2}/32"), "nextHopType": "None" } }] } });
    let deny = rule(
        "deny-partner-net",
        100,
        "Outbound",
        "Deny",
        "Tcp",
        "203.0.113.0/24",
        "*",
    );
    let t = lab4(
        json!({ "networkSecurityGroup": { "id": net("networkSecurityGroups", "nsg-int") },
                "routeTable": { "id": net("routeTables", "rt-int") } }),
        json!({}),
        vec![nsg("nsg-int", vec![deny]), rt],
    );
    lab.deploy(RG, &t);
    let probe = probe_bin();
    for h in ["host1", "host2"] {
        lab.spawn(&["--host", h], &[&probe, "serve-tcp", "8080"]);
    }
    let outbound: Vec<String> = lab.show(&id(RG, "Microsoft.Web/sites", "web1"))["properties"]
        ["outboundIpAddresses"]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    // Route-all off: straight out of the stamp with an outbound IP; the
    // subnet's NSG and UDRs do not see it.
    for partner in [PARTNER, PARTNER2] {
        let seen = peer_ip(&lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", partner, "8080"]));
        assert!(
            outbound.contains(&seen),
            "{partner} saw {seen}, not one of {outbound:?}"
        );
    }
    // Route-all on: the NSG rule for 203.0.113.0/24 drops PARTNER...
    let before = hits(&lab, "nsg-int");
    let out = lab.exec(
        &["--app", "web2"],
        &[&probe, "tcp", PARTNER, "8080", "1000"],
    );
    assert!(
        !out.status.success(),
        "deny-partner-net must drop the flow to {PARTNER}"
    );
    let after = hits(&lab, "nsg-int");
    assert!(
        after["deny-partner-net"] > before["deny-partner-net"],
        "the rule's counter must move: {before:?} -> {after:?}"
    );
    // ... and the UDR blackholes PARTNER2, whose flow the NSG allows.
    let out = lab.exec(
        &["--app", "web2"],
        &[&probe, "tcp", PARTNER2, "8080", "1000"],
    );
    assert!(
        !out.status.success(),
        "the None route for {PARTNER2}/32 must drop the flow"
    );
    let routes = lab.subnet_effective_routes(RG, "vnet1", "integration");
    assert!(
        routes.to_string().contains(&format!("{PARTNER2}/32")),
        "{routes}"
    );
    // Without the UDR, the route-all path reaches it with the outbound IP.
    let t = lab4(
        json!({ "networkSecurityGroup": { "id": net("networkSecurityGroups", "nsg-int") } }),
        json!({}),
        vec![nsg(
            "nsg-int",
            vec![rule(
                "deny-partner-net",
                100,
                "Outbound",
                "Deny",
                "Tcp",
                "203.0.113.0/24",
                "*",
            )],
        )],
    );
    lab.deploy(RG, &t);
    let seen = peer_ip(&lab.exec_ok(&["--app", "web2"], &[&probe, "tcp", PARTNER2, "8080"]));
    assert!(
        outbound.contains(&seen),
        "{PARTNER2} saw {seen} through the VNet"
    );
    // A private address is no internet host: refused, nothing changed.
    lab.deploy_refused(
        RG,
        &template(vec![
            json!({ "type": "Lab.Emulator/internetHosts", "name": "host3", "location": "westeurope",
                                "properties": { "ipAddress": "10.20.30.40" } }),
        ]),
        "InvalidInternetHostAddress",
    );
}

/// Issue 10, item 4 (seed: integration "doesn't support ... NetBIOS"): UDP
/// 137 and 138 and TCP 139 from an app never cross the integration. Nothing
/// arrives at the VM, the worker's `netbios-blocked` counter moves by what
/// was dropped; a control port on the same VM arrives from the instance IP.
#[test]
fn netbios_from_an_app_never_crosses_the_integration() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab4(json!({}), json!({}), vec![]));
    let probe = probe_bin();
    for (mode, port) in [
        ("serve-udp", "137"),
        ("serve-udp", "138"),
        ("serve-tcp", "139"),
        ("serve-udp", "1370"),
        ("serve-tcp", "1390"),
    ] {
        lab.spawn(&["--vm", "vm1"], &[&probe, mode, port]);
    }
    let worker = lab
        .namespaces()
        .into_iter()
        .find(|n| n.contains("-wk-plan1-"))
        .expect("the worker of plan1");
    let blocked = || -> u64 {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &worker, "nft", "-j", "list", "counter"])
            .args(["inet", "vnet_agent", "netbios-blocked"])
            .output()
            .expect("nft");
        let v: Value = serde_json::from_slice(&out.stdout).expect("nft json");
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|o| o["counter"]["packets"].as_u64())
            .expect("the netbios-blocked counter")
    };
    let me = private_ip(&lab, "web2");
    let before = blocked();
    for site in ["web1", "web2"] {
        for (proto, port) in [("udp", "137"), ("udp", "138"), ("tcp", "139")] {
            let out = lab.exec(&["--app", site], &[&probe, proto, "10.0.2.4", port, "700"]);
            assert!(
                !out.status.success(),
                "{site}: NetBIOS {proto}/{port} crossed the integration"
            );
        }
    }
    let after = blocked();
    // Two sites x (two datagrams + at least one SYN).
    assert!(
        after >= before + 6,
        "netbios-blocked moved {before} -> {after}"
    );
    let seen = peer_ip(&lab.exec_ok(&["--app", "web2"], &[&probe, "udp", "10.0.2.4", "1370"]));
    assert_eq!(seen, me, "a control UDP port crosses, from the instance IP");
    let seen = peer_ip(&lab.exec_ok(&["--app", "web2"], &[&probe, "tcp", "10.0.2.4", "1390"]));
    assert_eq!(seen, me);
}

/// Issue 10, item 5: the app's inbound side. Each site is reachable from
/// the lab's internet at `NAME.azurewebsites.net` (the stamp's inbound
/// address in the lab's public DNS): the front end forwards HTTP (80) and
/// HTTPS (443, the lab CA) to the app's port on every instance in turn,
/// with `X-Forwarded-For`. "Routes don't apply to replies from inbound app
/// requests": with Route All and a 0.0.0.0/0 UDR to a firewall VM, the
/// replies never cross the firewall (its forward counter stays), while the
/// app's own outbound traffic does. Access restrictions and
/// `publicNetworkAccess: Disabled` answer Azure's 403.
#[test]
fn the_front_end_serves_every_instance_and_replies_skip_the_firewall() {
    let Some(lab) = Lab::start() else { return };
    let probe = probe_bin();
    let app = |t: &mut Value, restrictions: Value, public: &str| {
        t["resources"][1]["sku"]["capacity"] = json!(2);
        let web2 = &mut t["resources"][3]["properties"];
        web2["publicNetworkAccess"] = json!(public);
        let sc = &mut web2["siteConfig"];
        sc["appCommandLine"] = json!(format!("{probe} serve-http 8080"));
        sc["appSettings"] = json!([{ "name": "PORT", "value": "8080" }]);
        sc["ipSecurityRestrictions"] = restrictions;
    };
    let mut t = firewall_lab(true, "0.0.0.0/0");
    app(&mut t, json!([]), "Enabled");
    lab.deploy(RG, &t);
    configure_firewall(&lab);
    lab.exec_ok(
        &["--vm", "fw"],
        &["nft", "add chain ip fw through { type filter hook forward priority 0; }; add rule ip fw through counter"],
    );
    let fw_forwarded = || -> u64 {
        let out = lab.exec_ok(
            &["--vm", "fw"],
            &["nft", "-j", "list", "chain", "ip", "fw", "through"],
        );
        let v: Value = serde_json::from_str(&out).expect("nft json");
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|o| o["rule"]["expr"][0]["counter"]["packets"].as_u64())
            .expect("the fw counter")
    };
    let site = lab.show(&id(RG, "Microsoft.Web/sites", "web2"));
    let inbound = site["properties"]["inboundIpAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let (host1, host2) = (["--host", "host1"], ["--host", "host2"]);
    assert_eq!(
        lab.dig_short(&host1, &["web2.azurewebsites.net"]),
        std::slice::from_ref(&inbound)
    );
    let get = |from: &[&str], url: &str| -> (u16, String) {
        let out = lab.exec_ok(
            from,
            &["sh", "-c", &format!(
                "curl -sS --max-time 5 --cacert \"$VNET_LAB_CA_FILE\" -w '\\n%{{http_code}}' {url}")],
        );
        let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
        (code.parse().unwrap_or(0), body.to_string())
    };
    // Both instances answer, over HTTP and HTTPS, with the caller's address
    // in X-Forwarded-For; the firewall sees none of it.
    let before = fw_forwarded();
    let mut instances = std::collections::BTreeSet::new();
    for url in [
        "http://web2.azurewebsites.net/",
        "https://web2.azurewebsites.net/",
    ] {
        for _ in 0..4 {
            let (code, body) = get(&host1, url);
            assert_eq!(code, 200, "{url}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            assert_eq!(v["forwardedFor"], PARTNER, "{v}");
            assert_eq!(v["host"], "web2.azurewebsites.net", "{v}");
            instances.insert(v["instance"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(
        instances.len(),
        2,
        "spread across both instances: {instances:?}"
    );
    assert_eq!(
        fw_forwarded(),
        before,
        "inbound replies crossed the firewall VM"
    );
    // The app's own outbound traffic does cross it (Route All + the UDR).
    lab.dig_short(&["--app", "web2"], &["@192.0.2.53", "host1.internet.lab"]);
    assert!(
        fw_forwarded() > before,
        "the outbound flow should cross the firewall"
    );
    // An unknown host name: the front end's 404.
    let (code, _) = get(
        &host1,
        &format!("-H 'Host: nosuch.azurewebsites.net' http://{inbound}/"),
    );
    assert_eq!(code, 404);

    // Access restrictions: PARTNER's /24 allowed, everyone else denied by
    // the implicit "Deny all"; the scm site has no rules of its own.
    let mut t = firewall_lab(true, "0.0.0.0/0");
    app(
        &mut t,
        json!([{ "name": "partners", "ipAddress": "203.0.113.0/24", "action": "Allow", "priority": 100 }]),
        "Enabled",
    );
    lab.deploy(RG, &t);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(get(&host1, "http://web2.azurewebsites.net/").0, 200);
    let (code, body) = get(&host2, "http://web2.azurewebsites.net/");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("blocked your access"), "{body}");
    // publicNetworkAccess Disabled closes the public path for everyone.
    let mut t = firewall_lab(true, "0.0.0.0/0");
    app(&mut t, json!([]), "Disabled");
    lab.deploy(RG, &t);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(get(&host1, "https://web2.azurewebsites.net/").0, 403);
    lab.assert_reconcile_writes_nothing();
}

/// `az webapp config access-restriction add|remove|show|set`, as az has
/// them: rules by address, service tag and subnet (az adds the subnet's
/// Microsoft.Web service endpoint), removal by name, the default action;
/// each change seen by real HTTP from two internet hosts; a bad rule is
/// refused and changes nothing.
#[test]
fn access_restriction_commands_change_who_gets_in() {
    let Some(lab) = Lab::start() else { return };
    let probe = probe_bin();
    let mut t = lab4(json!({}), json!({}), vec![]);
    let sc = &mut t["resources"][3]["properties"]["siteConfig"];
    sc["appCommandLine"] = json!(format!("{probe} serve-http 8080"));
    sc["appSettings"] = json!([{ "name": "WEBSITES_PORT", "value": "8080" }]);
    lab.deploy(RG, &t);
    let code = |from: &str| -> String {
        lab.exec_ok(
            &["--host", from],
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "5",
                "-w",
                "%{http_code}",
                "http://web2.azurewebsites.net/",
            ],
        )
    };
    let ar = |args: &[&str]| -> Value {
        let mut all = vec!["webapp", "config", "access-restriction"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-g", RG, "-n", "web2"]);
        lab.cli_json(&all)
    };
    assert_eq!((code("host1"), code("host2")), ("200".into(), "200".into()));
    let rules = ar(&[
        "add",
        "--rule-name",
        "partners",
        "--action",
        "Allow",
        "--priority",
        "100",
        "--ip-address",
        "203.0.113.0/24",
    ]);
    assert_eq!(rules[0]["name"], "partners", "{rules}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!((code("host1"), code("host2")), ("200".into(), "403".into()));
    // A subnet rule: az adds the Microsoft.Web service endpoint to it.
    ar(&[
        "add",
        "--rule-name",
        "vms",
        "--action",
        "Allow",
        "--priority",
        "200",
        "--vnet-name",
        "vnet1",
        "--subnet",
        "vms",
    ]);
    let subnet = lab.show(&format!(
        "{}/subnets/vms",
        id(RG, "Microsoft.Network/virtualNetworks", "vnet1")
    ));
    assert!(subnet.to_string().contains("Microsoft.Web"), "{subnet}");
    let shown = ar(&["show"]);
    assert_eq!(
        shown["ipSecurityRestrictions"].as_array().unwrap().len(),
        2,
        "{shown}"
    );
    assert_eq!(shown["scmIpSecurityRestrictions"], json!([]));
    // Removing the partners' rule leaves the implicit "Deny all" for both.
    ar(&["remove", "--rule-name", "partners"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!((code("host1"), code("host2")), ("403".into(), "403".into()));
    // vm1's subnet `vms` now has the Microsoft.Web service endpoint: its
    // traffic reaches the front end with its private address, and the
    // subnet rule lets it in.
    let routes = lab.subnet_effective_routes(RG, "vnet1", "vms");
    let inbound = lab.show(&id(RG, "Microsoft.Web/sites", "web2"))["properties"]
        ["inboundIpAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        routes["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["nextHopType"] == "VirtualNetworkServiceEndpoint"
                && r["addressPrefix"] == json!([format!("{inbound}/32")])),
        "{routes}"
    );
    let out = lab.exec_ok(
        &["--vm", "vm1"],
        &[
            "curl",
            "-s",
            "--max-time",
            "5",
            "http://web2.azurewebsites.net/",
        ],
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["forwardedFor"], "10.0.2.4", "{v}");
    // The default action Allow opens it again.
    let set = ar(&["set", "--default-action", "Allow"]);
    assert_eq!(set["ipSecurityRestrictionsDefaultAction"], "Allow", "{set}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(code("host2"), "200");
    // A bad rule: refused, nothing changed.
    lab.refused(
        &[
            "webapp",
            "config",
            "access-restriction",
            "add",
            "-g",
            RG,
            "-n",
            "web2",
            "--rule-name",
            "bad",
            "--action",
            "Allow",
            "--priority",
            "300",
            "--ip-address",
            "1.2.3.400/32",
        ],
        "InvalidAccessRestriction",
    );
}
