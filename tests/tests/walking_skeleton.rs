//! The walking skeleton, end to end: the real daemon, real namespaces, real
//! TCP and UDP from an integrated app (issue 2).

use std::time::Duration;

use serde_json::Value;
use vnet_e2e::*;

const RG: &str = "rg1";

fn site(lab: &Lab, name: &str) -> Value {
    lab.show(&id(RG, "Microsoft.Web/sites", name))
}

fn outbound_ips(site: &Value) -> Vec<String> {
    site["properties"]["outboundIpAddresses"]
        .as_str()
        .expect("outboundIpAddresses")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

fn fabric(lab: &Lab) -> String {
    let vnet = lab.show(&id(RG, "Microsoft.Network/virtualNetworks", "vnet1"));
    vnet["emulator"]["fabricNamespace"]
        .as_str()
        .expect("fabricNamespace")
        .to_string()
}

#[test]
fn app_to_vm_uses_the_instance_private_ip() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-udp", "9001"]);

    let env = lab.exec_ok(&["--app", "web1"], &["printenv", "WEBSITE_PRIVATE_IP"]);
    let private_ip = env.trim();
    assert!(
        private_ip.starts_with("10.0.1."),
        "WEBSITE_PRIVATE_IP {private_ip:?} is not in the integration subnet"
    );

    let tcp = lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.0.2.4", "9000"]);
    assert_eq!(
        peer_ip(&tcp),
        private_ip,
        "the VM must see the instance's private IP over TCP"
    );
    let udp = lab.exec_ok(&["--app", "web1"], &[&probe, "udp", "10.0.2.4", "9001"]);
    assert_eq!(
        peer_ip(&udp),
        private_ip,
        "the VM must see the instance's private IP over UDP"
    );
}

/// Sends TCP and UDP from `site` to host1; returns the sources host1 saw,
/// the site's outbound IPs, and the fabric's packet counters before and after.
fn to_the_internet(site_name: &str) -> Option<(Vec<String>, Vec<String>, u64, u64)> {
    let mut lab = Lab::start()?;
    lab.deploy(RG, &basic_template(RG, 1));
    let probe = probe_bin();
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
    lab.spawn(&["--host", "host1"], &[&probe, "serve-udp", "8081"]);
    let outbound = outbound_ips(&site(&lab, site_name));
    let fabric = fabric(&lab);
    let before = lab.counter_packets(&fabric);
    let tcp = lab.exec_ok(
        &["--app", site_name],
        &[&probe, "tcp", "198.18.100.10", "8080"],
    );
    let udp = lab.exec_ok(
        &["--app", site_name],
        &[&probe, "udp", "198.18.100.10", "8081"],
    );
    let after = lab.counter_packets(&fabric);
    Some((vec![peer_ip(&tcp), peer_ip(&udp)], outbound, before, after))
}

#[test]
fn route_all_off_goes_straight_out_with_an_outbound_ip() {
    let Some((sources, outbound, before, after)) = to_the_internet("web1") else {
        return;
    };
    for src in &sources {
        assert!(
            outbound.contains(src),
            "source {src} not in outboundIpAddresses {outbound:?}"
        );
    }
    assert_eq!(
        before, after,
        "with route-all off, internet traffic must not cross the VNet fabric"
    );
}

#[test]
fn route_all_on_crosses_the_fabric_and_keeps_the_outbound_ip() {
    let Some((sources, outbound, before, after)) = to_the_internet("web2") else {
        return;
    };
    for src in &sources {
        assert!(
            outbound.contains(src),
            "source {src} not in outboundIpAddresses {outbound:?}"
        );
    }
    assert!(
        after > before,
        "with route-all on, the flow must cross the fabric (counters {before} -> {after})"
    );
}

#[test]
fn new_connections_from_the_vnet_to_the_app_are_dropped() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    let probe = probe_bin();
    lab.spawn(&["--app", "web1"], &[&probe, "serve-tcp", "8080"]);
    let private_ip = lab
        .exec_ok(&["--app", "web1"], &["printenv", "WEBSITE_PRIVATE_IP"])
        .trim()
        .to_string();

    // The listener is there: the app reaches it on its own loopback.
    lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "127.0.0.1", "8080"]);
    // The VM reaches the VNet (control), but not the app: integration is outbound only.
    let out = lab.exec(
        &["--vm", "vm1"],
        &[&probe, "tcp", &private_ip, "8080", "1500"],
    );
    assert!(
        !out.status.success(),
        "a new TCP connection from the VM to {private_ip} must fail"
    );
}

#[test]
fn two_instances_get_the_first_two_usable_addresses() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 2));
    let web1 = site(&lab, "web1");
    let ips: Vec<&str> = web1["emulator"]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["privateIpAddress"].as_str().expect("privateIpAddress"))
        .collect();
    assert_eq!(ips, ["10.0.1.4", "10.0.1.5"]);

    // And the packets agree: each instance reaches the VM from its own address.
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    for (n, want) in ["10.0.1.4", "10.0.1.5"].iter().enumerate() {
        let n = n.to_string();
        let env = lab.exec_ok(
            &["--app", "web1", "--instance", &n],
            &["printenv", "WEBSITE_PRIVATE_IP"],
        );
        assert_eq!(env.trim(), *want);
        let tcp = lab.exec_ok(
            &["--app", "web1", "--instance", &n],
            &[&probe, "tcp", "10.0.2.4", "9000"],
        );
        assert_eq!(peer_ip(&tcp), *want);
    }
}

#[test]
fn deploying_the_same_template_twice_writes_nothing_the_second_time() {
    let Some(lab) = Lab::start() else { return };
    let t = basic_template(RG, 2);
    let first = lab.deploy(RG, &t);
    assert!(
        kernel_writes(&first["properties"]["reconcile"]) > 0,
        "the first deployment builds the lab"
    );
    let second = lab.deploy(RG, &t);
    assert_eq!(
        kernel_writes(&second["properties"]["reconcile"]),
        0,
        "second reconcile: {}",
        second["properties"]["reconcile"]
    );
    let forced = lab.cli_json(&["lab", "reconcile"]);
    assert_eq!(
        kernel_writes(&forced["reconcile"]),
        0,
        "a forced reconcile: {forced}"
    );
}

#[test]
fn down_leaves_nothing_behind() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 2));
    assert!(
        lab.namespaces().len() >= 8,
        "the lab has namespaces: {:?}",
        lab.namespaces()
    );
    let status = lab.cli_json(&["lab", "status"]);
    let processes = status["processes"].as_array().expect("processes");
    let apps = processes
        .iter()
        .filter(|p| p["key"].as_str().unwrap_or("").contains("/sites/"))
        .count();
    assert_eq!(
        apps, 4,
        "2 sites x 2 instances run their appCommandLine: {status}"
    );
    assert!(
        processes
            .iter()
            .any(|p| p["key"].as_str().unwrap_or("").ends_with("/front-end")),
        "the stamp's front end runs: {status}"
    );
    // Every supervised process (apps and the front end) must end with `down`.
    let app_pids: Vec<u32> = processes
        .iter()
        .map(|p| p["pid"].as_u64().unwrap() as u32)
        .collect();
    assert!(app_pids.iter().all(|p| pid_alive(*p)));
    let daemon = lab.daemon_pid().unwrap();

    lab.cli_ok(&["down"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lab.namespaces(),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    assert_eq!(
        lab_mounts(&lab.name),
        Vec::<String>::new(),
        "mounts left behind"
    );
    for p in &app_pids {
        assert!(!pid_alive(*p), "app process {p} left behind");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pid_alive(daemon) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The daemon is our child: it is a zombie until reaped, which pid_alive counts as gone.
    assert!(!pid_alive(daemon), "the daemon keeps running after down");
    // Links live only inside lab namespaces: the sandbox's own namespace still has only lo.
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(
        links.lines().count(),
        1,
        "links left in the test's own namespace: {links}"
    );
}

#[test]
fn a_daemon_restart_leaves_an_established_flow_untouched() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    let probe = probe_bin();
    lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
    let status = lab.cli_json(&["lab", "status"]);
    let app_pids: Vec<u64> = status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();

    // 60 round trips, one every 100 ms, over one connection, through web2 (route-all: worker, fabric, stamp).
    let hold = lab.spawn_quiet(
        &["--app", "web2"],
        &[&probe, "hold", "198.18.100.10", "8080", "60", "100"],
    );
    let hold_pid = hold.id();
    std::thread::sleep(Duration::from_millis(1500));
    lab.stop_daemon();
    std::thread::sleep(Duration::from_millis(500));
    lab.start_daemon();

    let restarted = lab.cli_json(&["lab", "status"]);
    assert_eq!(
        restarted["totals"]["kernel_writes"]
            .as_u64()
            .or(restarted["totals"]["kernelWrites"].as_u64()),
        Some(0),
        "the restarted daemon wrote to the kernel: {restarted}"
    );
    let after: Vec<u64> = restarted["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(
        app_pids, after,
        "app processes were restarted by a daemon restart"
    );

    // Wait for the flow to finish on its own and check it never broke.
    let (status, out) = lab.wait_background(hold_pid, 30);
    assert!(
        status.success(),
        "the established flow broke across the restart: {out}"
    );
    assert!(out.contains("held 60"), "{out}");
}
