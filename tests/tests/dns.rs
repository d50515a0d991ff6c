//! Issue 5, DNS: Azure-provided DNS at 168.63.129.16 inside every VNet and
//! the lab's public DNS, proven with real queries (dig, and glibc's getent
//! inside the app's sandbox through its resolv.conf): linked private zones
//! answer, unlinked ones do not, overlapping VNets keep their own answers,
//! NXDOMAIN, public names, custom DNS servers (a VM running dnsmasq that
//! forwards to 168.63.129.16), WEBSITE_DNS_SERVER, `webapp nameresolver`,
//! changes answered right after an apply, restarts and `down`.

use serde_json::{json, Value};
use vnet_e2e::fixtures::{
    dnsmasq_extension, instance_ips, private_dns_zone, private_endpoint, storage_account,
    subnet_id, template, vm_in, zone_group,
};
use vnet_e2e::*;

const RG: &str = "rg1";
const RG2: &str = "rg2";
/// The lab's public DNS (docs/datapath.md, "DNS").
const PUBLIC_DNS: &str = "192.0.2.53";

/// A second VNet `vnet2` in rg2 with the SAME address space as vnet1, and
/// VM `vm2` at the same address as vm1 (10.0.2.4).
fn overlapping_vnet2() -> Value {
    let subnet = format!(
        "{}/subnets/vms",
        id(RG2, "Microsoft.Network/virtualNetworks", "vnet2")
    );
    let mut r = vec![
        json!({ "type": "Microsoft.Network/virtualNetworks", "name": "vnet2", "location": "westeurope",
                "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                    "subnets": [{ "name": "vms", "properties": { "addressPrefix": "10.0.2.0/24" } }] } }),
        private_dns_zone("corp.internal", &[(RG2, "vnet2")], &[("db", "10.0.2.20")]),
    ];
    r.extend(vm_in(RG2, "vm2", &subnet, "10.0.2.4"));
    template(r)
}

/// Asserts that `name` resolves in `target` (glibc's getent) to `want`
/// (None: does not resolve).
#[track_caller]
fn assert_getent(lab: &Lab, target: &[&str], name: &str, want: Option<&str>) {
    assert_eq!(
        lab.getent(target, name).as_deref(),
        want,
        "{name} in {target:?}"
    );
}

#[test]
fn azure_dns_answers_linked_zones_per_vnet_and_public_names() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    lab.deploy(
        RG,
        &template(vec![
            private_dns_zone("corp.internal", &[(RG, "vnet1")], &[("db", "10.0.2.10")]),
            private_dns_zone("unlinked.internal", &[], &[("db", "10.0.2.11")]),
        ]),
    );
    lab.deploy(RG2, &overlapping_vnet2());
    let (vm1, vm2, web1, web2, host1) = (
        ["--vm", "vm1"],
        ["--vm", "vm2"],
        ["--app", "web1"],
        ["--app", "web2"],
        ["--host", "host1"],
    );

    // Each VNet's 168.63.129.16 answers from its own linked zone, though the
    // two address spaces (and the two VMs' addresses) are the same.
    assert_eq!(lab.dig_short(&vm1, &["db.corp.internal"]), ["10.0.2.10"]);
    assert_eq!(lab.dig_short(&vm2, &["db.corp.internal"]), ["10.0.2.20"]);
    // Apps reach their VNet's 168.63.129.16 through the vNIC, Route All off and on;
    // glibc in the sandbox reads the resolv.conf the agent mounted.
    for app in [&web1, &web2] {
        assert_eq!(
            lab.dig_short(app, &["@168.63.129.16", "db.corp.internal"]),
            ["10.0.2.10"]
        );
        assert_getent(&lab, app, "db.corp.internal", Some("10.0.2.10"));
    }
    let resolv = lab.exec_ok(&web1, &["cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 168.63.129.16"), "{resolv}");
    // Over TCP too.
    assert_eq!(
        lab.dig_short(&vm1, &["+tcp", "db.corp.internal"]),
        ["10.0.2.10"]
    );
    // Unlinked zones are invisible; missing names are NXDOMAIN, inside a
    // linked zone too (no public fallback), and unknown public names.
    assert_eq!(lab.dig_status(&vm1, &["db.unlinked.internal"]), "NXDOMAIN");
    assert_eq!(lab.dig_status(&vm1, &["nothere.corp.internal"]), "NXDOMAIN");
    assert_eq!(lab.dig_status(&web1, &["www.example.com"]), "NXDOMAIN");
    assert_getent(&lab, &web1, "nothere.corp.internal", None);
    // Public names, from a VNet and from the internet (its public DNS).
    assert_eq!(
        lab.dig_short(&vm1, &["host1.internet.lab"]),
        ["198.18.100.10"]
    );
    assert_eq!(
        lab.dig_short(&host1, &["host1.internet.lab"]),
        ["198.18.100.10"]
    );
    let host_resolv = lab.exec_ok(&host1, &["cat", "/etc/resolv.conf"]);
    assert!(
        host_resolv.contains(&format!("nameserver {PUBLIC_DNS}")),
        "{host_resolv}"
    );
    assert_eq!(
        lab.dig_status(&host1, &["db.corp.internal"]),
        "NXDOMAIN",
        "private zones are not public"
    );

    // A change is answered right after its apply: no restart.
    let daemon = lab.daemon_pid();
    lab.add_a_record(RG, "corp.internal", "api", "10.0.2.30");
    assert_eq!(lab.dig_short(&vm1, &["api.corp.internal"]), ["10.0.2.30"]);
    assert_eq!(
        lab.dig_status(&vm2, &["api.corp.internal"]),
        "NXDOMAIN",
        "vnet2's zone is another zone"
    );
    lab.link_private_dns_zone(RG, "unlinked.internal", "now-linked", "vnet1");
    assert_eq!(
        lab.dig_short(&web1, &["db.unlinked.internal"]),
        ["10.0.2.11"]
    );
    assert_eq!(lab.daemon_pid(), daemon);
    // The servers run in the fabrics: one per VNet and the public one.
    let status = lab.cli_json(&["lab", "status"]);
    assert_eq!(
        status["dnsServers"].as_array().map(Vec::len),
        Some(3),
        "{status}"
    );
}

#[test]
fn custom_dns_vm_with_dnsmasq_website_dns_server_and_nameresolver() {
    let Some(mut lab) = Lab::start() else { return };
    assert!(
        std::path::Path::new("/usr/sbin/dnsmasq").exists(),
        "dnsmasq is missing: run scripts/install-deps.sh"
    );
    let mut t = basic_template(RG, 1);
    let res = t["resources"].as_array_mut().unwrap();
    // vnet1's custom DNS server is vm1, a dnsmasq that forwards to Azure DNS
    // and answers one name of its own.
    res[0]["properties"]["dhcpOptions"] = json!({ "dnsServers": ["10.0.2.4"] });
    res.push(dnsmasq_extension(
        "vm1",
        "10.0.2.4",
        "only.dnsmasq.lab",
        "10.9.9.9",
    ));
    // web2 overrides both with the lab's public DNS.
    res[3]["properties"]["siteConfig"]["appSettings"] =
        json!([{ "name": "WEBSITE_DNS_SERVER", "value": PUBLIC_DNS }]);
    lab.deploy(RG, &t);
    lab.deploy(
        RG,
        &template(vec![private_dns_zone(
            "corp.internal",
            &[(RG, "vnet1")],
            &[("db", "10.0.2.10")],
        )]),
    );
    let (web1, web2, vm1) = (["--app", "web1"], ["--app", "web2"], ["--vm", "vm1"]);
    let vm_resolv = lab.exec_ok(&vm1, &["cat", "/etc/resolv.conf"]);
    assert!(vm_resolv.contains("nameserver 10.0.2.4"), "{vm_resolv}");

    // web1 asks vm1's dnsmasq (its own name), which forwards the rest to
    // 168.63.129.16 of vnet1 (the private zone).
    lab.wait_for_name(&web1, "only.dnsmasq.lab");
    assert_getent(&lab, &web1, "only.dnsmasq.lab", Some("10.9.9.9"));
    assert_getent(&lab, &web1, "db.corp.internal", Some("10.0.2.10"));
    assert_eq!(
        lab.dig_short(&web1, &["host1.internet.lab"]),
        ["198.18.100.10"]
    );
    // web2: WEBSITE_DNS_SERVER wins over the VNet's server: public names
    // only, the private zone and dnsmasq's name are unknown there.
    let resolv = lab.exec_ok(&web2, &["cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains(&format!("nameserver {PUBLIC_DNS}")) && !resolv.contains("10.0.2.4"),
        "{resolv}"
    );
    assert_getent(&lab, &web2, "host1.internet.lab", Some("198.18.100.10"));
    assert_getent(&lab, &web2, "db.corp.internal", None);
    assert_getent(&lab, &web2, "only.dnsmasq.lab", None);
    // The supervised app process resolves through the same mounted file.
    let pid = lab.app_pid("web1", 0);
    let in_app = std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf")).unwrap();
    assert!(in_app.contains("nameserver 10.0.2.4"), "{in_app}");

    // nameresolver: the server used and the answer, from inside the sandbox.
    let nr = lab.cli_json(&[
        "webapp",
        "nameresolver",
        "--app",
        "web1",
        "db.corp.internal",
    ]);
    assert_eq!(nr["server"], "10.0.2.4", "{nr}");
    assert_eq!(nr["status"], "NOERROR", "{nr}");
    assert_eq!(nr["addresses"], json!(["10.0.2.10"]), "{nr}");
    let text = lab.cli_ok(&[
        "-o",
        "table",
        "webapp",
        "nameresolver",
        "--app",
        "web2",
        "host1.internet.lab",
    ]);
    assert!(
        text.starts_with(&format!("Server: {PUBLIC_DNS}"))
            && text.contains("Addresses: \n\t198.18.100.10"),
        "{text}"
    );
    let missing = lab.cli(&[
        "webapp",
        "nameresolver",
        "--app",
        "web2",
        "db.corp.internal",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains("NXDOMAIN"));

    // A restart of the agent keeps dnsmasq (adopted) and makes the DNS
    // servers again.
    let dnsmasq = ext_pid(&lab);
    lab.stop_daemon();
    lab.start_daemon();
    assert_eq!(
        ext_pid(&lab),
        dnsmasq,
        "the extension's process was adopted"
    );
    assert_getent(&lab, &web1, "db.corp.internal", Some("10.0.2.10"));

    // down leaves no process and no mount behind.
    let app = lab.app_pid("web1", 0);
    lab.cli_ok(&["down"]);
    assert!(!pid_alive(dnsmasq), "dnsmasq left behind");
    assert!(!pid_alive(app), "app process left behind");
    assert!(
        lab_mounts(&lab.name).is_empty(),
        "{:?}",
        lab_mounts(&lab.name)
    );
    assert!(lab_namespaces(&lab.name).is_empty());
    let _ = &mut lab;
}

/// PID of vm1's Custom Script extension process.
fn ext_pid(lab: &Lab) -> u32 {
    let status = lab.cli_json(&["lab", "status"]);
    status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["key"]
                .as_str()
                .unwrap_or("")
                .ends_with("/virtualmachines/vm1/extensions/dns")
                && p["running"] == true
        })
        .and_then(|p| p["pid"].as_u64())
        .unwrap_or_else(|| panic!("no extension process: {status}")) as u32
}

#[test]
fn dns_settings_are_validated() {
    let Some(lab) = Lab::start() else { return };
    let mut t = basic_template(RG, 1);
    t["resources"][2]["properties"]["siteConfig"]["appSettings"] =
        json!([{ "name": "WEBSITE_DNS_SERVER", "value": "10.0.2.4, 10.0.2.5" }]);
    lab.deploy_refused(RG, &t, "InvalidDnsServerAddress");
    let mut t = basic_template(RG, 1);
    t["resources"][0]["properties"]["dhcpOptions"] = json!({ "dnsServers": ["dns.example.com"] });
    lab.deploy_refused(RG, &t, "InvalidRequestFormat");
    let mut t = basic_template(RG, 1);
    t["resources"].as_array_mut().unwrap().push(json!({
        "type": "Microsoft.Compute/virtualMachines/extensions", "name": "vm1/x", "location": "westeurope",
        "properties": { "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "settings": {} } }));
    lab.deploy_refused(RG, &t, "VMExtensionProvisioningError");
}

/// examples/custom-dns.json, deployed as the README says, answers as it says.
#[test]
fn the_custom_dns_example_works() {
    let Some(lab) = Lab::start() else { return };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/custom-dns.json");
    let example: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    lab.deploy("lab", &example);
    let web1 = ["--app", "web1"];
    lab.wait_for_name(&web1, "intranet.contoso.lab");
    assert_getent(&lab, &web1, "intranet.contoso.lab", Some("10.0.2.50"));
    assert_getent(&lab, &web1, "db.contoso.internal", Some("10.0.2.10"));
    assert_getent(&lab, &web1, "host1.internet.lab", Some("198.18.100.10"));
    let web2 = ["--app", "web2"];
    assert_getent(&lab, &web2, "host1.internet.lab", Some("198.18.100.10"));
    assert_getent(&lab, &web2, "db.contoso.internal", None);
    let nr = lab.cli_json(&[
        "webapp",
        "nameresolver",
        "--app",
        "web1",
        "db.contoso.internal",
    ]);
    assert_eq!(nr["server"], "10.0.2.4", "{nr}");
}

/// Seed, "Private endpoints": with a private zone linked to the VNet (and no
/// custom DNS), the service's public name resolves to the private endpoint
/// inside the VNet (CNAME to privatelink, A from the zone group), while the
/// internet still gets the public address. The privatelink alias exists only
/// while the account has an Approved endpoint (AZURE-FACTS §11): before the
/// endpoint and after it is deleted, the public name is a plain A record,
/// inside the VNet too, whatever zone it links.
#[test]
fn a_storage_private_endpoint_resolves_privately_only_inside_the_vnet() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    lab.deploy(
        RG,
        &template(vec![storage_account("store1", "Enabled", None)]),
    );
    let public = "store1.blob.core.windows.net";
    let (vm1, web1, host1) = (["--vm", "vm1"], ["--app", "web1"], ["--host", "host1"]);
    let plain = lab.dig_short(&host1, &[public]);
    assert_eq!(
        plain.len(),
        1,
        "no endpoint, no privatelink alias: {plain:?}"
    );
    assert_eq!(lab.dig_short(&vm1, &[public]), plain, "no private zone yet");

    let zone = "privatelink.blob.core.windows.net";
    let storage = id(RG, "Microsoft.Storage/storageAccounts", "store1");
    lab.create_private_dns_zone(RG, zone);
    lab.link_private_dns_zone(RG, zone, "link1", "vnet1");
    assert_eq!(
        lab.dig_short(&vm1, &[public]),
        plain,
        "a linked privatelink zone does not shadow an account without an endpoint"
    );
    lab.cli_ok(&private_endpoint_create_args(
        RG, "pe1", "vnet1", "vms", &storage, "blob",
    ));
    lab.create_zone_group(RG, "pe1", zone, "blob");
    let aliased = lab.dig_short(&host1, &[public]);
    assert_eq!(
        aliased,
        [
            "store1.privatelink.blob.core.windows.net.",
            plain[0].as_str()
        ],
        "the endpoint adds the public CNAME"
    );
    let private = lab.dig_short(&vm1, &[public]);
    assert_eq!(
        private,
        ["store1.privatelink.blob.core.windows.net.", "10.0.2.5"],
        "the endpoint's NIC (vm1 holds 10.0.2.4)"
    );
    assert_getent(&lab, &web1, public, Some("10.0.2.5"));
    assert_eq!(lab.dig_short(&host1, &[public]), aliased);
    // The last endpoint goes: so does the alias, with no restart.
    lab.cli_ok(&[
        "network",
        "private-endpoint",
        "delete",
        "-g",
        RG,
        "-n",
        "pe1",
    ]);
    assert_eq!(lab.dig_short(&host1, &[public]), plain);
    assert_eq!(lab.dig_short(&vm1, &[public]), plain);
}

/// AZURE-FACTS §11, the everyday setup: one account behind a private
/// endpoint and another reached by the integration subnet's service
/// endpoint, in a VNet that links `privatelink.blob.core.windows.net`. The
/// second resolves to its public address (not NXDOMAIN) and is reached over
/// the service endpoint with the instance's private source, which its
/// subnet-only firewall admits; the first goes over its endpoint.
#[test]
fn an_account_without_an_endpoint_resolves_publicly_in_a_vnet_linking_privatelink() {
    let Some(lab) = Lab::start() else { return };
    let mut t = basic_template(RG, 1);
    let res = t["resources"].as_array_mut().unwrap();
    res[0]["properties"]["subnets"][0]["properties"]["serviceEndpoints"] =
        json!([{ "service": "Microsoft.Storage" }]);
    let zone = "privatelink.blob.core.windows.net";
    let subnet_only = json!({ "defaultAction": "Deny", "virtualNetworkRules": [
        { "id": subnet_id("vnet1", "integration"), "action": "Allow" }] });
    res.push(storage_account("store1", "Disabled", None));
    res.push(storage_account("store2", "Enabled", Some(subnet_only)));
    res.push(private_endpoint(
        "pe1",
        &subnet_id("vnet1", "vms"),
        &id(RG, "Microsoft.Storage/storageAccounts", "store1"),
        "blob",
    ));
    res.push(private_dns_zone(zone, &[(RG, "vnet1")], &[]));
    res.push(zone_group("pe1", "blob", zone));
    lab.deploy(RG, &t);
    let (web1, host1) = (["--app", "web1"], ["--host", "host1"]);
    let store2 = "store2.blob.core.windows.net";
    let public2 = lab.dig_short(&host1, &[store2]);
    assert_eq!(public2.len(), 1, "store2 has no endpoint: {public2:?}");
    assert_eq!(
        lab.dig_short(&web1, &[store2]),
        public2,
        "not NXDOMAIN inside the VNet"
    );
    assert_eq!(
        lab.dig_short(&web1, &["store1.blob.core.windows.net"]),
        ["store1.privatelink.blob.core.windows.net.", "10.0.2.5"]
    );
    let web1_ip = instance_ips(&lab, "web1")[0].clone();
    let https = |name: &str| -> Value {
        let out = lab.exec_ok(
            &web1,
            &["sh", "-c", &format!(
                "curl -sS --max-time 5 --cacert \"$VNET_LAB_CA_FILE\" https://{name}.blob.core.windows.net/")],
        );
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{name}: {e}: {out}"))
    };
    let v = https("store2");
    assert_eq!(
        (v["path"].as_str(), v["sourceAddress"].as_str()),
        (Some("serviceEndpoint"), Some(web1_ip.as_str())),
        "{v:#}"
    );
    let v = https("store1");
    assert_eq!(
        (v["path"].as_str(), v["sourceAddress"].as_str()),
        (Some("privateEndpoint"), Some(web1_ip.as_str())),
        "{v:#}"
    );
}

/// The seed's three ways to resolve a private endpoint ("Private endpoints",
/// DNS): (1) Azure DNS with the privatelink zone linked to the VNet; (2) an
/// A record on your own DNS server; (3) your DNS server forwarding to Azure
/// DNS (168.63.129.16), which answers from the linked zone. Each answer is
/// then used for a real HTTPS request that arrives over the endpoint.
#[test]
fn the_seeds_three_ways_to_resolve_a_private_endpoint() {
    let Some(lab) = Lab::start() else { return };
    let mut t = basic_template(RG, 1);
    let res = t["resources"].as_array_mut().unwrap();
    // web2 asks vm1's dnsmasq; web1 keeps Azure DNS.
    res[3]["properties"]["siteConfig"]["appSettings"] =
        json!([{ "name": "WEBSITE_DNS_SERVER", "value": "10.0.2.4" }]);
    let vms = subnet_id("vnet1", "vms");
    let zone_name = "privatelink.blob.core.windows.net";
    for (store, pe) in [("store1", "pe1"), ("store2", "pe2")] {
        res.push(storage_account(store, "Disabled", None));
        res.push(private_endpoint(
            pe,
            &vms,
            &id(RG, "Microsoft.Storage/storageAccounts", store),
            "blob",
        ));
    }
    res.push(private_dns_zone(zone_name, &[(RG, "vnet1")], &[]));
    // Only pe2 registers in the linked zone (a zone group); pe1 does not.
    res.push(zone_group("pe2", "blob", zone_name));
    lab.deploy(RG, &t);
    let pe_ip = |pe: &str| -> String {
        let v = lab.cli_json(&["network", "private-endpoint", "show", "-g", RG, "-n", pe]);
        v["properties"]["customDnsConfigs"][0]["ipAddresses"][0]
            .as_str()
            .unwrap_or_else(|| panic!("address of {pe}: {v:#}"))
            .to_string()
    };
    let (ip1, ip2) = (pe_ip("pe1"), pe_ip("pe2"));
    // vm1 runs dnsmasq: its own A record for store1 (way 2), everything else
    // forwarded to Azure DNS (way 3).
    lab.deploy(
        RG,
        &template(vec![dnsmasq_extension(
            "vm1",
            "10.0.2.4",
            "store1.blob.core.windows.net",
            &ip1,
        )]),
    );
    let (web1, web2, host1) = (["--app", "web1"], ["--app", "web2"], ["--host", "host1"]);
    lab.wait_for_name(&web2, "store1.blob.core.windows.net");
    let https = |target: &[&str], name: &str| -> Value {
        let out = lab.exec_ok(
            target,
            &["sh", "-c", &format!(
                "curl -sS --max-time 5 --cacert \"$VNET_LAB_CA_FILE\" https://{name}.blob.core.windows.net/")],
        );
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{name}: {e}: {out}"))
    };

    // (1) Azure DNS, linked zone with the zone group's record.
    assert_getent(
        &lab,
        &web1,
        "store2.blob.core.windows.net",
        Some(ip2.as_str()),
    );
    let v = https(&web1, "store2");
    assert_eq!(
        (v["path"].as_str(), v["sourceAddress"].as_str()),
        (Some("privateEndpoint"), Some("10.0.1.4")),
        "{v:#}"
    );
    // (2) Your own DNS server's A record (the linked zone has none for store1).
    assert_getent(
        &lab,
        &web2,
        "store1.blob.core.windows.net",
        Some(ip1.as_str()),
    );
    let v = https(&web2, "store1");
    assert_eq!(v["path"], "privateEndpoint", "{v:#}");
    // (3) Your DNS server forwarding to Azure DNS, which answers from the linked zone.
    assert_getent(
        &lab,
        &web2,
        "store2.blob.core.windows.net",
        Some(ip2.as_str()),
    );
    // As in Azure: a linked privatelink zone without the name's record
    // answers NXDOMAIN, no fallback to the public address.
    assert_getent(&lab, &web1, "store1.blob.core.windows.net", None);
    // The internet still resolves the public chain.
    let public = lab.dig_short(&host1, &["store1.blob.core.windows.net"]);
    assert_eq!(public[0], "store1.privatelink.blob.core.windows.net.");
    assert_ne!(public[1], ip1);
}
