//! Issue 13, Network Watcher's pure answers against real packets: IP flow
//! verify and next hop come from the planner alone; here every answer is
//! checked against where a real probe's first packet arrives (tcpdump in
//! every namespace it could reach) and with which source address, over
//! 200+ generated flows in a lab with NSGs (user and default rules, both
//! directions), UDRs (a virtual appliance, None), a NAT gateway and a
//! service endpoint. Any disagreement is a lab bug.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vnet_e2e::fixtures::{net, storage_account, subnet_id, template, vnet, RG};
use vnet_e2e::*;

const STORE: &str = "nwstore1";
const INET: &str = "203.0.113.70";
const INET2: &str = "203.0.113.71";
/// Destination ports of generated flows: one per flow, so a capture line names its flow.
const PORTS: std::ops::Range<u16> = 20000..20400;

fn rule(name: &str, prio: u32, dir: &str, access: &str, proto: &str, ports: &str) -> Value {
    json!({ "name": name, "properties": { "priority": prio, "direction": dir, "access": access,
        "protocol": proto, "sourceAddressPrefix": "*", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": ports } })
}

fn nic(name: &str, subnet: &str, ip: &str, forwarding: bool) -> Value {
    json!({ "type": "Microsoft.Network/networkInterfaces", "name": name, "location": "westeurope",
            "properties": { "enableIPForwarding": forwarding, "ipConfigurations": [{ "name": "ipconfig1",
                "properties": { "subnet": { "id": subnet_id("v1", subnet) },
                    "privateIPAllocationMethod": "Static", "privateIPAddress": ip } }] } })
}

fn vm(name: &str) -> Value {
    json!({ "type": "Microsoft.Compute/virtualMachines", "name": name, "location": "westeurope",
            "properties": { "networkProfile": { "networkInterfaces": [
                { "id": net("networkInterfaces", &format!("{name}-nic")) }] } } })
}

/// v1 10.3.0.0/16: `s1` 10.3.1.0/24 (NSG nsg1, route table rt1, NAT
/// gateway, Microsoft.Storage service endpoint), `s2` 10.3.2.0/24 (NSG
/// nsg2), `s3` 10.3.3.0/24 (nothing), `nva` 10.3.4.0/24; vm1 10.3.1.4, vm2
/// 10.3.2.4, vm3 10.3.3.4, nva 10.3.4.10 (IP forwarding on, but the VM does
/// not forward: what it gets stays there); internet hosts; a storage account.
fn lab_template() -> Value {
    let nsg = |name: &str, rules: Vec<Value>| {
        json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": name, "location": "westeurope",
                "properties": { "securityRules": rules } })
    };
    let id_of = |ty: &str, name: &str| json!({ "id": net(ty, name) });
    template(vec![
        nsg(
            "nsg1",
            vec![
                rule(
                    "deny-tcp-out",
                    100,
                    "Outbound",
                    "Deny",
                    "Tcp",
                    "20000-20099",
                ),
                rule("deny-udp-in", 100, "Inbound", "Deny", "Udp", "20200-20299"),
            ],
        ),
        nsg(
            "nsg2",
            vec![
                rule("deny-tcp-in", 100, "Inbound", "Deny", "Tcp", "20100-20199"),
                rule("deny-any-out", 200, "Outbound", "Deny", "*", "20300-20349"),
                rule(
                    "allow-udp-out",
                    210,
                    "Outbound",
                    "Allow",
                    "Udp",
                    "20000-20399",
                ),
            ],
        ),
        json!({ "type": "Microsoft.Network/routeTables", "name": "rt1", "location": "westeurope",
                "properties": { "routes": [
                    { "name": "s3-via-nva", "properties": { "addressPrefix": "10.3.3.0/24",
                        "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.3.4.10" } },
                    { "name": "blackhole", "properties": { "addressPrefix": format!("{INET2}/32"),
                        "nextHopType": "None" } } ] } }),
        json!({ "type": "Microsoft.Network/publicIPAddresses", "name": "nat-pip", "location": "westeurope",
                "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } }),
        json!({ "type": "Microsoft.Network/natGateways", "name": "nat1", "location": "westeurope",
                "sku": { "name": "Standard" },
                "properties": { "publicIpAddresses": [{ "id": net("publicIPAddresses", "nat-pip") }] } }),
        vnet(
            "v1",
            "westeurope",
            &["10.3.0.0/16"],
            json!([
                { "name": "s1", "properties": { "addressPrefix": "10.3.1.0/24",
                    "networkSecurityGroup": id_of("networkSecurityGroups", "nsg1"),
                    "routeTable": id_of("routeTables", "rt1"),
                    "natGateway": id_of("natGateways", "nat1"),
                    "serviceEndpoints": [{ "service": "Microsoft.Storage" }] } },
                { "name": "s2", "properties": { "addressPrefix": "10.3.2.0/24",
                    "networkSecurityGroup": id_of("networkSecurityGroups", "nsg2") } },
                { "name": "s3", "properties": { "addressPrefix": "10.3.3.0/24" } },
                { "name": "nva", "properties": { "addressPrefix": "10.3.4.0/24" } },
            ]),
        ),
        nic("vm1-nic", "s1", "10.3.1.4", false),
        nic("vm2-nic", "s2", "10.3.2.4", false),
        nic("vm3-nic", "s3", "10.3.3.4", false),
        nic("nva-nic", "nva", "10.3.4.10", true),
        vm("vm1"),
        vm("vm2"),
        vm("vm3"),
        vm("nva"),
        json!({ "type": "Lab.Emulator/internetHosts", "name": "inet1", "location": "westeurope",
                "properties": { "ipAddress": INET } }),
        json!({ "type": "Lab.Emulator/internetHosts", "name": "inet2", "location": "westeurope",
                "properties": { "ipAddress": INET2 } }),
        storage_account(STORE, "Enabled", None),
    ])
}

/// A small deterministic generator (xorshift64*): the seed is printed, so a
/// failing run can be replayed with `VNET_FLOW_SEED`.
#[derive(Debug, Clone)]
struct GenFlow {
    src_vm: &'static str,
    src_ip: &'static str,
    dst: String,
    proto: &'static str,
    port: u16,
}

const VMS: [(&str, &str); 3] = [
    ("vm1", "10.3.1.4"),
    ("vm2", "10.3.2.4"),
    ("vm3", "10.3.3.4"),
];
/// Namespaces that capture: every place a first packet can arrive.
const WATCHED: [(&str, &str); 6] = [
    ("--vm", "vm1"),
    ("--vm", "vm2"),
    ("--vm", "vm3"),
    ("--vm", "nva"),
    ("--host", "inet1"),
    ("--host", "inet2"),
];

/// Where a flow's first packet should arrive (a watched namespace) and
/// with which source, or `None` for nowhere; from the pure answers.
fn predict(
    lab: &Lab,
    f: &GenFlow,
    vm_of: &BTreeMap<String, &'static str>,
    nat_ip: &str,
) -> (Option<String>, Option<String>, Value) {
    let out = lab.cli_json(&[
        "network",
        "watcher",
        "test-ip-flow",
        "-g",
        RG,
        "--vm",
        f.src_vm,
        "--direction",
        "Outbound",
        "--protocol",
        f.proto,
        "--local",
        &format!("{}:40000", f.src_ip),
        "--remote",
        &format!("{}:{}", f.dst, f.port),
    ]);
    let hop = lab.cli_json(&[
        "network",
        "watcher",
        "show-next-hop",
        "-g",
        RG,
        "--vm",
        f.src_vm,
        "--source-ip",
        f.src_ip,
        "--dest-ip",
        &f.dst,
    ]);
    let why = json!({ "outbound": out, "nextHop": hop });
    if out["access"] != "Allow" {
        return (None, None, why);
    }
    let arrive = |at: &str, src: &str| (Some(at.to_string()), Some(src.to_string()), why.clone());
    match hop["nextHopType"].as_str().unwrap_or("") {
        "VirtualAppliance" => {
            let at = vm_of
                .get(hop["nextHopIpAddress"].as_str().unwrap())
                .expect("an NVA of the lab");
            arrive(at, f.src_ip)
        }
        "VnetLocal" => {
            let Some(at) = vm_of.get(&f.dst) else {
                return (None, None, why);
            };
            let inb = lab.cli_json(&[
                "network",
                "watcher",
                "test-ip-flow",
                "-g",
                RG,
                "--vm",
                at,
                "--direction",
                "Inbound",
                "--protocol",
                f.proto,
                "--local",
                &format!("{}:{}", f.dst, f.port),
                "--remote",
                &format!("{}:40000", f.src_ip),
            ]);
            let allowed = inb["access"] == "Allow";
            let why =
                json!({ "outbound": why["outbound"], "nextHop": why["nextHop"], "inbound": inb });
            if allowed {
                (Some(at.to_string()), Some(f.src_ip.to_string()), why)
            } else {
                (None, None, why)
            }
        }
        "Internet" => {
            let host = if f.dst == INET { "inet1" } else { "inet2" };
            // The subnet with the NAT gateway leaves with its address; the
            // others with an address of the lab's public pool (checked below).
            let src = if f.src_vm == "vm1" {
                nat_ip.to_string()
            } else {
                "public".to_string()
            };
            arrive(host, &src)
        }
        _ => (None, None, why),
    }
}

#[test]
fn pure_ip_flow_verify_and_next_hop_agree_with_real_probes_on_200_flows() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    let seed = seed_from_env("VNET_FLOW_SEED");
    let mut rng = Rng(seed);
    let nat_ip = lab.show(&net("publicIPAddresses", "nat-pip"))["properties"]["ipAddress"]
        .as_str()
        .expect("the NAT gateway's address")
        .to_string();
    let vm_of: BTreeMap<String, &'static str> = [
        ("10.3.1.4", "vm1"),
        ("10.3.2.4", "vm2"),
        ("10.3.3.4", "vm3"),
        ("10.3.4.10", "nva"),
    ]
    .into_iter()
    .map(|(ip, vm)| (ip.to_string(), vm))
    .collect();
    let dsts = ["10.3.1.4", "10.3.2.4", "10.3.3.4", "10.3.4.10", INET, INET2];
    let mut ports: Vec<u16> = PORTS.collect();
    // Fisher-Yates: each flow gets its own port.
    for i in (1..ports.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        ports.swap(i, j);
    }
    let mut flows = Vec::new();
    for port in ports.iter().take(220) {
        let (src_vm, src_ip) = *rng.pick(&VMS);
        let dst = loop {
            let d = *rng.pick(&dsts);
            if d != src_ip {
                break d.to_string();
            }
        };
        flows.push(GenFlow {
            src_vm,
            src_ip,
            dst,
            proto: if rng.next_u64().is_multiple_of(2) {
                "TCP"
            } else {
                "UDP"
            },
            port: *port,
        });
    }

    // Captures first, in every namespace a first packet can reach.
    let mut captures = Vec::new();
    for (kind, name) in WATCHED {
        let pid = lab
            .spawn_quiet(
                &[kind, name],
                &[
                    "timeout",
                    "25",
                    "tcpdump",
                    "-i",
                    "any",
                    "-nn",
                    "-l",
                    "-Q",
                    "in",
                    "(tcp[tcpflags] & tcp-syn != 0 or udp) and dst portrange 20000-20399",
                ],
            )
            .id();
        captures.push((name, pid));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    // One shell per source VM sends all its probes at once.
    for (vm, _) in VMS {
        let script: String = flows
            .iter()
            .filter(|f| f.src_vm == vm)
            .map(|f| {
                format!(
                    "{} {} {} {} 300 >/dev/null 2>&1 &\n",
                    probe_bin(),
                    f.proto.to_ascii_lowercase(),
                    f.dst,
                    f.port
                )
            })
            .chain(["wait\n".to_string()])
            .collect();
        lab.exec(&["--vm", vm], &["sh", "-c", &script]);
    }
    // port -> [(namespace, source address)]
    let mut seen: BTreeMap<u16, Vec<(String, String)>> = BTreeMap::new();
    for (name, pid) in captures {
        let (_, text) = lab.wait_background(pid, 40);
        for line in text.lines() {
            // "... IP 10.3.1.4.41234 > 10.3.2.4.20005: ..."
            let Some(rest) = line.split(" IP ").nth(1) else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let (Some(src), Some(">"), Some(dst)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let host = |s: &str| {
                s.rsplit_once('.')
                    .map(|x| x.0.to_string())
                    .unwrap_or_default()
            };
            let Some(port) = dst
                .trim_end_matches(':')
                .rsplit_once('.')
                .and_then(|x| x.1.parse::<u16>().ok())
            else {
                continue;
            };
            seen.entry(port)
                .or_default()
                .push((name.to_string(), host(src)));
        }
    }

    let mut disagreements = Vec::new();
    for f in &flows {
        let (at, src, why) = predict(&lab, f, &vm_of, &nat_ip);
        let got = seen.get(&f.port).cloned().unwrap_or_default();
        let ok = match (&at, got.as_slice()) {
            (None, []) => true,
            (Some(at), [(ns, s)]) => {
                ns == at
                    && match src.as_deref() {
                        Some("public") => s.starts_with("203.0.113.") || !s.starts_with("10."),
                        Some(want) => s == want,
                        None => true,
                    }
            }
            _ => false,
        };
        if !ok {
            disagreements.push(format!(
                "{} {} -> {}:{}: predicted {:?} from {:?}, saw {:?}; pure answers {}",
                f.proto, f.src_ip, f.dst, f.port, at, src, got, why
            ));
        }
    }
    // Generated flows to the storage account (it listens on 80 only): the
    // account reports the path and source it saw.
    let store_ip = lab.show(&id(RG, "Microsoft.Storage/storageAccounts", STORE))["emulator"]
        ["publicIpAddress"]
        .as_str()
        .expect("publicIpAddress")
        .to_string();
    let host = format!("{STORE}.blob.core.windows.net");
    let mut to_storage = 0;
    for _ in 0..20 {
        let (vm, src) = *rng.pick(&VMS);
        let hop = lab.cli_json(&[
            "network",
            "watcher",
            "show-next-hop",
            "-g",
            RG,
            "--vm",
            vm,
            "--source-ip",
            src,
            "--dest-ip",
            &store_ip,
        ]);
        let out = lab.cli_json(&[
            "network",
            "watcher",
            "test-ip-flow",
            "-g",
            RG,
            "--vm",
            vm,
            "--direction",
            "Outbound",
            "--protocol",
            "TCP",
            "--local",
            &format!("{src}:40000"),
            "--remote",
            &format!("{store_ip}:80"),
        ]);
        let want = match (out["access"].as_str(), hop["nextHopType"].as_str()) {
            (Some("Allow"), Some("VirtualNetworkServiceEndpoint")) => Some("serviceEndpoint"),
            (Some("Allow"), Some("Internet")) => Some("public"),
            _ => None,
        };
        let body = lab
            .exec(
                &["--vm", vm],
                &[
                    "sh",
                    "-c",
                    &format!("curl -sS --max-time 3 --resolve {host}:80:{store_ip} http://{host}/"),
                ],
            )
            .stdout;
        let seen: Option<Value> = serde_json::from_slice(&body).ok();
        let got = seen.as_ref().and_then(|v| v["path"].as_str());
        let source_ok = match (got, seen.as_ref()) {
            (Some("serviceEndpoint"), Some(v)) => v["sourceAddress"] == src,
            (Some(_), Some(v)) => v["sourceAddress"] != src,
            _ => true,
        };
        if got != want || !source_ok {
            disagreements.push(format!("TCP {src} -> storage {store_ip}:80: predicted {want:?}, saw {seen:?}; next hop {hop}, outbound {out}"));
        }
        to_storage += 1;
    }
    let arrived = flows.iter().filter(|f| seen.contains_key(&f.port)).count();
    println!(
        "{} flows and {to_storage} to the storage account, {arrived} arrived somewhere, {} disagreements",
        flows.len(),
        disagreements.len()
    );
    // The generated mix must exercise both outcomes, or the comparison proves little.
    assert!(
        arrived >= 15 && flows.len() - arrived >= 15,
        "a degenerate mix: {arrived} of {} arrived",
        flows.len()
    );
    assert!(
        disagreements.is_empty(),
        "seed {seed}: {} of {} flows disagree:\n{}",
        disagreements.len(),
        flows.len(),
        disagreements.join("\n")
    );
}

/// The service endpoint: next hop `VirtualNetworkServiceEndpoint` from the
/// subnet that has one (the account sees the private source), `Internet`
/// from one that does not (the account sees a public source).
#[test]
fn next_hop_to_a_storage_account_matches_the_path_the_account_sees() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    let ip = lab.show(&id(RG, "Microsoft.Storage/storageAccounts", STORE))["emulator"]
        ["publicIpAddress"]
        .as_str()
        .expect("publicIpAddress")
        .to_string();
    for (vm, src, hop_type, path) in [
        (
            "vm1",
            "10.3.1.4",
            "VirtualNetworkServiceEndpoint",
            "serviceEndpoint",
        ),
        ("vm2", "10.3.2.4", "Internet", "public"),
    ] {
        let hop = lab.cli_json(&[
            "network",
            "watcher",
            "show-next-hop",
            "-g",
            RG,
            "--vm",
            vm,
            "--source-ip",
            src,
            "--dest-ip",
            &ip,
        ]);
        assert_eq!(hop["nextHopType"], hop_type, "{vm}: {hop}");
        let host = format!("{STORE}.blob.core.windows.net");
        let body = lab.exec_ok(
            &["--vm", vm],
            &[
                "sh",
                "-c",
                &format!("curl -sS --max-time 5 --resolve {host}:80:{ip} http://{host}/"),
            ],
        );
        let seen: Value = serde_json::from_str(body.lines().next().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(seen["path"], path, "{vm}: {seen}");
        assert_eq!(
            seen["sourceAddress"] == src,
            path == "serviceEndpoint",
            "{vm}: {seen}"
        );
    }
}

/// az's `-o table` columns, and Azure's refusals.
#[test]
fn test_ip_flow_and_show_next_hop_print_azs_columns_and_refuse_bad_input() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    let table = lab.cli_ok(&[
        "network",
        "watcher",
        "test-ip-flow",
        "-g",
        RG,
        "--vm",
        "vm1",
        "--direction",
        "Outbound",
        "--protocol",
        "TCP",
        "--local",
        "10.3.1.4:40000",
        "--remote",
        "10.3.2.4:20001",
        "-o",
        "table",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Access", "RuleName"],
        "{table}"
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["Deny", "securityRules/deny-tcp-out"],
        "{table}"
    );
    let table = lab.cli_ok(&[
        "network",
        "watcher",
        "show-next-hop",
        "-g",
        RG,
        "--vm",
        "vm1",
        "--source-ip",
        "10.3.1.4",
        "--dest-ip",
        "10.3.3.4",
        "-o",
        "table",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NextHopIpAddress", "NextHopType", "RouteTableId"],
        "{table}"
    );
    assert!(
        lines[2].starts_with("10.3.4.10")
            && lines[2].contains("VirtualAppliance")
            && lines[2].contains("/routeTables/rt1"),
        "{table}"
    );
    lab.refused(
        &[
            "network",
            "watcher",
            "test-ip-flow",
            "-g",
            RG,
            "--vm",
            "vm1",
            "--direction",
            "Outbound",
            "--protocol",
            "TCP",
            "--local",
            "10.3.9.9:1",
            "--remote",
            "10.3.2.4:80",
        ],
        "InvalidLocalIPAddress",
    );
    lab.refused(
        &[
            "network",
            "watcher",
            "show-next-hop",
            "-g",
            RG,
            "--vm",
            "nope",
            "--source-ip",
            "10.3.1.4",
            "--dest-ip",
            "10.3.2.4",
        ],
        "ResourceNotFound",
    );
}
