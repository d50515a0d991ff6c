//! Issue 13, Network Watcher packet captures end to end: real pcap files of
//! a VM's NIC and of a VNet fabric's internet link, with Azure's filters,
//! snap length and limits, that `tcpdump -r` opens and that hold the
//! probes' packets (and none of a filtered-out flow); one written to a
//! storage account and downloaded from inside the lab over HTTP.

use std::path::Path;

use serde_json::{json, Value};
use vnet_e2e::fixtures::{storage_account, subnet_id, template, vm_in, vnet, RG};
use vnet_e2e::*;

const STORE: &str = "capstore1";
const INET: &str = "203.0.113.80";

fn lab_template() -> Value {
    let mut resources = vec![
        vnet(
            "v1",
            "westeurope",
            &["10.4.0.0/16"],
            json!([
                { "name": "s1", "properties": { "addressPrefix": "10.4.1.0/24" } },
                { "name": "s2", "properties": { "addressPrefix": "10.4.2.0/24" } },
            ]),
        ),
        storage_account(STORE, "Enabled", None),
        json!({ "type": "Lab.Emulator/internetHosts", "name": "inet1", "location": "westeurope",
                "properties": { "ipAddress": INET } }),
    ];
    resources.extend(vm_in(RG, "vm1", &subnet_id("v1", "s1"), "10.4.1.4"));
    resources.extend(vm_in(RG, "vm2", &subnet_id("v1", "s2"), "10.4.2.4"));
    template(resources)
}

/// `tcpdump -r FILE -nn` (the file must open).
fn read_pcap(lab: &Lab, file: &Path) -> String {
    let out = std::process::Command::new("tcpdump")
        .args(["-r", file.to_str().unwrap(), "-nn"])
        .output()
        .expect("tcpdump -r");
    assert!(
        out.status.success(),
        "tcpdump -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = lab;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pcap's snap length and each record's (captured, original) length.
fn pcap_records(file: &Path) -> (u32, Vec<(u32, u32)>) {
    let d = std::fs::read(file).unwrap();
    let u = |i: usize| u32::from_le_bytes(d[i..i + 4].try_into().unwrap());
    assert_eq!(&d[0..4], &[0xd4, 0xc3, 0xb2, 0xa1], "a little-endian pcap");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= d.len() {
        let (incl, orig) = (u(at + 8), u(at + 12));
        out.push((incl, orig));
        at += 16 + incl as usize;
    }
    (u(16), out)
}

fn status(lab: &Lab, name: &str) -> Value {
    lab.cli_json(&[
        "network",
        "watcher",
        "packet-capture",
        "show-status",
        "-l",
        "westeurope",
        "-n",
        name,
    ])
}

#[test]
fn a_vm_capture_with_a_filter_holds_the_probes_packets_and_opens_in_tcpdump() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-udp", "6000"]);
    lab.spawn(&["--vm", "vm2"], &[&probe_bin(), "serve-tcp", "6001"]);
    let file = lab.state_dir().join("../cap1.cap");
    let file = file.to_str().unwrap().to_string();
    let created = lab.cli_json(&[
        "network",
        "watcher",
        "packet-capture",
        "create",
        "-g",
        RG,
        "-n",
        "cap1",
        "--vm",
        "vm1",
        "--file-path",
        &file,
        "--capture-size",
        "60",
        "--filters",
        r#"[{"protocol":"UDP","remotePort":"6000"}]"#,
    ]);
    assert_eq!(
        created["properties"]["provisioningState"], "Succeeded",
        "{created}"
    );
    assert_eq!(status(&lab, "cap1")["packetCaptureStatus"], "Running");
    for _ in 0..3 {
        let line = lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "udp", "10.4.2.4", "6000"]);
        assert_eq!(peer_ip(&line), "10.4.1.4");
    }
    let line = lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "tcp", "10.4.2.4", "6001"]);
    assert_eq!(peer_ip(&line), "10.4.1.4");
    let stopped = lab.cli_json(&[
        "network",
        "watcher",
        "packet-capture",
        "stop",
        "-l",
        "westeurope",
        "-n",
        "cap1",
    ]);
    assert_eq!(stopped["packetCaptureStatus"], "Stopped", "{stopped}");
    assert_eq!(stopped["stopReason"], "ManuallyStopped", "{stopped}");
    let text = read_pcap(&lab, Path::new(&file));
    let out = text
        .lines()
        .filter(|l| l.contains("10.4.1.4.") && l.contains("> 10.4.2.4.6000: UDP"))
        .count();
    let back = text
        .lines()
        .filter(|l| l.contains("10.4.2.4.6000 > 10.4.1.4."))
        .count();
    assert_eq!(
        (out, back),
        (3, 3),
        "the three probes and their answers:\n{text}\n{:?}",
        pcap_records(Path::new(&file))
    );
    assert!(
        !text.contains(".6001"),
        "the TCP flow is filtered out:\n{text}"
    );
    let (snaplen, records) = pcap_records(Path::new(&file));
    assert_eq!(snaplen, 60);
    assert_eq!(records.len(), 6);
    assert!(
        records
            .iter()
            .all(|&(incl, orig)| incl <= 60 && incl <= orig),
        "{records:?}"
    );
}

#[test]
fn a_fabric_link_capture_stops_at_its_time_limit_and_downloads_from_the_storage_account() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    lab.spawn(&["--host", "inet1"], &[&probe_bin(), "serve-tcp", "7100"]);
    let created = lab.cli_json(&[
        "network",
        "watcher",
        "packet-capture",
        "create",
        "-g",
        RG,
        "-n",
        "uplink",
        "--vnet",
        "v1",
        "--link",
        "inet0",
        "--storage-account",
        STORE,
        "--time-limit",
        "3",
        "--filters",
        r#"[{"protocol":"TCP","remotePort":"7100"}]"#,
    ]);
    let url = created["properties"]["storageLocation"]["storagePath"]
        .as_str()
        .unwrap_or_else(|| panic!("storagePath: {created}"))
        .to_string();
    assert!(
        url.starts_with(&format!(
            "https://{STORE}.blob.core.windows.net/network-watcher-logs/"
        )),
        "{url}"
    );
    let line = lab.exec_ok(&["--vm", "vm1"], &[&probe_bin(), "tcp", INET, "7100"]);
    let public = peer_ip(&line);
    let mut s = Value::Null;
    for _ in 0..60 {
        s = status(&lab, "uplink");
        if s["packetCaptureStatus"] == "Stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(s["stopReason"], "TimeExceeded", "{s}");
    // Downloaded as a user in the lab would: over HTTP from the account.
    let ip = lab.show(&id(RG, "Microsoft.Storage/storageAccounts", STORE))["emulator"]
        ["publicIpAddress"]
        .as_str()
        .expect("publicIpAddress")
        .to_string();
    let path = url.split_once(".net/").unwrap().1;
    let host = format!("{STORE}.blob.core.windows.net");
    let local = lab.state_dir().join("../uplink.cap");
    lab.exec_ok(
        &["--vm", "vm2"],
        &[
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "--resolve",
            &format!("{host}:80:{ip}"),
            "-o",
            local.to_str().unwrap(),
            &format!("http://{host}/{path}"),
        ],
    );
    let text = read_pcap(&lab, &local);
    // On the fabric's internet link the flow already has its public source.
    assert!(
        text.contains(&format!("{public}.")) && text.contains(&format!("> {INET}.7100: Flags [S]")),
        "{text}"
    );
    assert!(
        !text.contains("10.4.1.4"),
        "SNAT happened before inet0:\n{text}"
    );
}

#[test]
fn bad_captures_are_refused_with_azures_errors() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &lab_template());
    let base = [
        "network",
        "watcher",
        "packet-capture",
        "create",
        "-g",
        RG,
        "-n",
        "bad",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>, code: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.refused(&a, code);
    };
    run(with(&["--vm", "vm1"]), "InvalidStorageLocation");
    run(
        with(&["--vm", "vm1", "--storage-account", "nostore"]),
        "StorageAccountNotFound",
    );
    run(
        with(&[
            "--vm",
            "vm1",
            "--file-path",
            "/tmp/x.cap",
            "--filters",
            r#"[{"protocol":"ICMP"}]"#,
        ]),
        "InvalidPacketCaptureFilter",
    );
    run(
        with(&[
            "--vm",
            "vm1",
            "--file-path",
            "/tmp/x.cap",
            "--time-limit",
            "99999",
        ]),
        "InvalidPacketCaptureParameter",
    );
    run(
        with(&[
            "--vnet",
            "v1",
            "--link",
            "nope0",
            "--file-path",
            "/tmp/x.cap",
        ]),
        "InvalidPacketCaptureTarget",
    );
    let listed = lab.cli_json(&[
        "network",
        "watcher",
        "packet-capture",
        "list",
        "-l",
        "westeurope",
    ]);
    assert_eq!(listed, json!([]));
}

/// An app instance's vNIC (lab only): the instance's VNet traffic, with the
/// address it has in the integration subnet; and a byte limit that stops
/// the capture with the file trimmed to whole packets within it.
#[test]
fn an_app_instance_capture_sees_its_vnet_traffic_and_stops_at_its_byte_limit() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &vnet_e2e::fixtures::small_lab(1, "integration"));
    lab.spawn(&["--vm", "vm1"], &[&probe_bin(), "serve-udp", "6000"]);
    let file = lab.state_dir().join("../app.cap");
    let file = file.to_str().unwrap().to_string();
    lab.cli_json(&[
        "network",
        "watcher",
        "packet-capture",
        "create",
        "-g",
        RG,
        "-n",
        "app",
        "--app",
        "web1",
        "--instance",
        "0",
        "--file-path",
        &file,
        "--capture-limit",
        "1000",
    ]);
    let line = lab.exec_ok(
        &["--app", "web1"],
        &[&probe_bin(), "udp", "10.0.3.4", "6000"],
    );
    let source = peer_ip(&line);
    assert!(source.starts_with("10.0.1."), "{line}");
    let mut s = Value::Null;
    for _ in 0..20 {
        let _ = lab.exec(
            &["--app", "web1"],
            &[&probe_bin(), "udp", "10.0.3.4", "6000"],
        );
        s = status(&lab, "app");
        if s["packetCaptureStatus"] == "Stopped" {
            break;
        }
    }
    assert_eq!(s["stopReason"], "AvailableCaptureBytesExceeded", "{s}");
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size <= 1000, "{size} bytes");
    let text = read_pcap(&lab, Path::new(&file));
    assert!(
        text.contains(&format!("{source}.")) && text.contains("> 10.0.3.4.6000: UDP"),
        "{text}"
    );
}
