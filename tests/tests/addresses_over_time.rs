//! Issue 3, "Addresses over time", end to end: scaling is make-before-break
//! and the VNet sees the new source addresses; released addresses cool down;
//! platform upgrades need free addresses; Windows container apps each have an
//! address of their own.

use serde_json::json;
use vnet_e2e::fixtures::*;
use vnet_e2e::*;

const SCALE_CODE: &str = "SubnetIsFull";

#[test]
fn a_scale_that_cannot_fit_is_refused_and_recommends_a_26() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(5, "integration"));
    // Make-before-break: 5 held + 7 new = 12 > 11 usable in the /28.
    let err = lab.refused(
        &[
            "appservice",
            "plan",
            "update",
            "-g",
            RG,
            "-n",
            "plan1",
            "--number-of-workers",
            "7",
        ],
        SCALE_CODE,
    );
    assert!(err.contains("/26"), "the error recommends a /26: {err}");
    assert!(
        err.contains("free") && err.contains("need"),
        "the error says what is needed and free: {err}"
    );
}

#[test]
fn scaling_moves_addresses_make_before_break() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(2, "integration"));
    assert_eq!(instance_ips(&lab, "web1"), ["10.0.1.4", "10.0.1.5"]);
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    let pid_before = lab.app_pid("web1", 0);

    lab.cli_ok(&[
        "appservice",
        "plan",
        "update",
        "-g",
        RG,
        "-n",
        "plan1",
        "--number-of-workers",
        "5",
    ]);
    // The new instances got new addresses while the old ones still held theirs.
    let after = instance_ips(&lab, "web1");
    assert_eq!(after.len(), 5);
    for ip in &after {
        assert!(
            ip.starts_with("10.0.1.") && ip != "10.0.1.4" && ip != "10.0.1.5",
            "scale reused a held address: {after:?}"
        );
    }
    let plan = lab.show(&id(RG, "Microsoft.Web/serverfarms", "plan1"));
    let releasing = plan["emulator"]["releasingAddresses"].to_string();
    assert!(
        releasing.contains("10.0.1.4") && releasing.contains("10.0.1.5"),
        "old addresses cool down: {plan}"
    );

    // The VM sees the new source; the app's environment shows it after its restart.
    let tcp = lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.0.3.4", "9000"]);
    assert_eq!(peer_ip(&tcp), after[0]);
    let pid_after = lab.app_pid("web1", 0);
    assert_ne!(pid_before, pid_after, "the app restarted");
    assert_eq!(
        process_env(pid_after).get("WEBSITE_PRIVATE_IP"),
        Some(&after[0])
    );

    // A platform upgrade needs a free address per instance: 5 held + 2 cooling + 5 new = 12 > 11.
    let err = lab.refused(
        &[
            "appservice",
            "plan",
            "platform-upgrade",
            "-g",
            RG,
            "-n",
            "plan1",
        ],
        SCALE_CODE,
    );
    assert!(err.contains("upgrade"), "{err}");
}

#[test]
fn platform_upgrade_moves_every_instance() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(2, "big"));
    let before = instance_ips(&lab, "web1");
    lab.cli_ok(&[
        "appservice",
        "plan",
        "platform-upgrade",
        "-g",
        RG,
        "-n",
        "plan1",
    ]);
    let after = instance_ips(&lab, "web1");
    assert_eq!(after.len(), 2);
    assert!(
        after
            .iter()
            .all(|ip| !before.contains(ip) && ip.starts_with("10.0.2.")),
        "{before:?} -> {after:?}"
    );
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    let tcp = lab.exec_ok(
        &["--app", "web1", "--instance", "1"],
        &[&probe, "tcp", "10.0.3.4", "9000"],
    );
    assert_eq!(peer_ip(&tcp), after[1]);
}

#[test]
fn windows_containers_get_an_address_per_app() {
    let Some(mut lab) = Lab::start() else { return };
    let mut t = small_lab(1, "big");
    let res = t["resources"].as_array_mut().unwrap();
    res.push(json!({
        "type": "Microsoft.Web/serverfarms", "name": "winplan", "location": "westeurope", "kind": "windows",
        "sku": { "name": "P1v3", "capacity": 1 }, "properties": { "hyperV": true } }));
    for name in ["wc1", "wc2"] {
        res.push(json!({
            "type": "Microsoft.Web/sites", "name": name, "location": "westeurope", "kind": "app,container,windows",
            "properties": { "serverFarmId": id(RG, "Microsoft.Web/serverfarms", "winplan"),
                            "virtualNetworkSubnetId": subnet_id("vnet1", "other"),
                            "siteConfig": { "windowsFxVersion": "DOCKER|mcr.microsoft.com/dotnet/samples:aspnetapp" } } }));
    }
    lab.deploy(RG, &t);
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    let a = peer_ip(&lab.exec_ok(&["--app", "wc1"], &[&probe, "tcp", "10.0.3.4", "9000"]));
    let b = peer_ip(&lab.exec_ok(&["--app", "wc2"], &[&probe, "tcp", "10.0.3.4", "9000"]));
    let instance = instance_ips(&lab, "wc1")[0].clone();
    assert!(
        a.starts_with("10.0.4.") && b.starts_with("10.0.4."),
        "{a} {b}"
    );
    assert_ne!(a, b, "each container app has its own subnet address");
    assert_ne!(a, instance);
    assert_ne!(b, instance);
}
