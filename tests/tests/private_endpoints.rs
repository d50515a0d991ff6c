//! Issue 5, private endpoints: a private endpoint to a web app in a VM's
//! VNet gets its NIC and address, its DNS zone group makes
//! `SITE.privatelink.azurewebsites.net` resolve to it inside the linked VNet,
//! every subnet routes its /32 as InterfaceEndpoint (in the kernel: into the
//! endpoint's own link to the target), Azure's refusals change nothing, and
//! deleting it takes NIC, address, route and record away. `to_a_service`:
//! the traffic, to a storage account and to another app.

use serde_json::Value;
use vnet_e2e::*;

const RG: &str = "rg1";
const ZONE: &str = "privatelink.azurewebsites.net";

fn resolve(lab: &Lab, name: &str) -> Value {
    lab.resolve(RG, "vnet1", name)
}

/// `network private-endpoint create` to web app `site` in `subnet` of vnet1.
fn create_args<'a>(name: &'a str, subnet: &'a str, group: &'a str, site: &'a str) -> Vec<&'a str> {
    private_endpoint_create_args(RG, name, "vnet1", subnet, site, group)
}

/// The kernel routes of `table` in namespace `ns`.
fn table(ns: &str, table: u32) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "route", "show", "table", &table.to_string()])
        .output()
        .expect("ip route");
    // A failed `ip` (no such namespace) prints nothing: the check that a
    // route is gone must not pass for that reason. A table the kernel no
    // longer has is empty.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("FIB table does not exist"),
        "ip -n {ns} route show table {table}: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_private_endpoint_to_a_web_app_resolves_to_its_nic_in_the_linked_vnet() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    let site = id(RG, "Microsoft.Web/sites", "web1");
    lab.create_private_dns_zone(RG, ZONE);
    lab.link_private_dns_zone(RG, ZONE, "link1", "vnet1");

    // Azure's refusals change neither the store nor the kernel.
    lab.refused(
        &create_args("pe-bad", "integration", "sites", &site),
        "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated",
    );
    lab.refused(
        &create_args("pe-bad", "vms", "blob", &site),
        "PrivateEndpointBadRequest",
    );
    let nosuch = id(RG, "Microsoft.Web/sites", "nosuchapp");
    lab.refused(
        &create_args("pe-bad", "vms", "sites", &nosuch),
        "InvalidResourceReference",
    );

    // The endpoint, its NIC and address (the VM holds 10.0.2.4).
    let pe = lab.cli_json(&create_args("pe1", "vms", "sites", &site));
    let props = &pe["properties"];
    assert_eq!(
        props["privateLinkServiceConnections"][0]["properties"]
            ["privateLinkServiceConnectionState"]["status"],
        "Approved",
        "{pe}"
    );
    let address = pe["emulator"]["privateIpAddress"]
        .as_str()
        .expect("an address")
        .to_string();
    assert_eq!(address, "10.0.2.5", "{pe}");
    assert_eq!(
        props["customDnsConfigs"][0]["fqdn"], "web1.azurewebsites.net",
        "{pe}"
    );
    let nic_id = props["networkInterfaces"][0]["id"]
        .as_str()
        .expect("networkInterfaces")
        .to_string();
    assert!(nic_id.contains("/networkInterfaces/pe1.nic."), "{nic_id}");
    let nic = lab.show(&nic_id);
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        address.as_str(),
        "{nic}"
    );
    let listed = lab.cli_json(&["resource", "list", "-g", RG]);
    assert!(
        listed.to_string().contains(&nic_id),
        "the NIC is a resource of the group"
    );

    // Without a zone group the privatelink name does not exist in the linked zone.
    let fqdn = "web1.privatelink.azurewebsites.net";
    assert_eq!(resolve(&lab, fqdn)["status"], "NXDOMAIN");
    lab.create_zone_group(RG, "pe1", ZONE, "sites");
    let answer = resolve(&lab, fqdn);
    assert_eq!(answer["status"], "NOERROR", "{answer}");
    assert_eq!(answer["answers"][0]["data"], address.as_str(), "{answer}");
    assert_eq!(answer["answers"][0]["ttl"], 10, "{answer}");
    let scm = resolve(&lab, "web1.scm.privatelink.azurewebsites.net");
    assert_eq!(scm["answers"][0]["data"], address.as_str(), "{scm}");
    let sets = lab.cli_json(&[
        "network",
        "private-dns",
        "record-set",
        "list",
        "-g",
        RG,
        "-z",
        ZONE,
    ]);
    let names: Vec<&str> = sets
        .as_array()
        .expect("record sets")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["web1", "web1.scm"], "{sets}");
    let group = lab.cli_json(&[
        "network",
        "private-endpoint",
        "dns-zone-group",
        "show",
        "-g",
        RG,
        "--endpoint-name",
        "pe1",
        "-n",
        "default",
    ]);
    assert_eq!(
        group["properties"]["privateDnsZoneConfigs"][0]["properties"]["recordSets"][0]
            ["ipAddresses"][0],
        address.as_str(),
        "{group}"
    );

    // Every subnet routes the /32 as InterfaceEndpoint; the kernel sends it
    // into the endpoint's own link to web1's worker (site_endpoint.rs).
    let routes = lab.nic_effective_routes(RG, "vm1-nic");
    let row = routes["value"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["nextHopType"] == "InterfaceEndpoint")
        .unwrap_or_else(|| panic!("no InterfaceEndpoint route: {routes}"))
        .clone();
    assert_eq!(row["addressPrefix"][0], format!("{address}/32"));
    assert_eq!(row["state"], "Active");
    let fabric = routes["emulator"]["fabricNamespace"]
        .as_str()
        .expect("fabric")
        .to_string();
    for t in [1000, 1001] {
        let kernel = table(&fabric, t);
        assert!(
            kernel.contains(&format!("{address} via 169.254.65.1 dev p-")),
            "table {t}: {kernel}"
        );
    }
    lab.assert_reconcile_writes_nothing();

    // In use: the subnet and the endpoint's NIC cannot be deleted.
    let subnet = vnet_e2e::fixtures::subnet_id("vnet1", "vms");
    lab.refused(
        &["resource", "delete", "--ids", &subnet],
        "InUseSubnetCannotBeDeleted",
    );
    lab.refused(&["resource", "delete", "--ids", &nic_id], "NicInUse");

    // Deleting the endpoint takes its NIC, route and record away.
    lab.delete_private_endpoint(RG, "pe1");
    assert!(
        !lab.cli(&["resource", "show", "--ids", &nic_id])
            .status
            .success(),
        "the NIC went with the endpoint"
    );
    assert_eq!(resolve(&lab, fqdn)["status"], "NXDOMAIN");
    assert!(!table(&fabric, 1001).contains(&address));
}

mod to_a_service {
    //! Issue 5, the datapath: a private endpoint to a storage account whose
    //! public network access is Disabled carries a VM's and an integrated
    //! app's traffic (path `privateEndpoint`, their private source) while the
    //! public path is refused; a VNet with the same addresses and its own
    //! endpoint with the same IP stays apart; deleting it stops the traffic.

    use serde_json::{json, Value};
    use vnet_e2e::fixtures::{
        net, plan, plan1_and_integrated_web1, private_endpoint, site, storage_account,
        subnet_id as subnet_of, template, vm_in, zone_group, RG,
    };
    use vnet_e2e::*;

    const STORE: &str = "pestore1";
    const BLOB_ZONE: &str = "privatelink.blob.core.windows.net";

    /// VNet `vnet` 10.0.0.0/16 (`integration` 10.0.1.0/24, `vms`
    /// 10.0.2.0/24 with a VM at 10.0.2.4, `pes` 10.0.3.0/24 with endpoint
    /// `<vnet>-pe` to the storage account's blob).
    fn vnet(name: &str) -> Vec<Value> {
        let sub = |n: &str, p: &str| json!({ "name": n, "properties": { "addressPrefix": p } });
        let mut r = vec![
            json!({ "type": "Microsoft.Network/virtualNetworks", "name": name, "location": "westeurope",
                    "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [
                        sub("integration", "10.0.1.0/24"), sub("vms", "10.0.2.0/24"), sub("pes", "10.0.3.0/24") ] } }),
        ];
        r.extend(vm_in(
            RG,
            &format!("{name}-vm"),
            &subnet_of(name, "vms"),
            "10.0.2.4",
        ));
        r.push(private_endpoint(
            &format!("{name}-pe"),
            &subnet_of(name, "pes"),
            &id(RG, "Microsoft.Storage/storageAccounts", STORE),
            "blob",
        ));
        r
    }

    /// vnet1 and vnet2 (same addresses), `web1` integrated into vnet1
    /// (Route All off), the storage account with public access Disabled,
    /// the blob privatelink zone linked to vnet1 with vnet1-pe's zone group.
    fn lab_template() -> Value {
        let mut r = vnet("vnet1");
        r.extend(vnet("vnet2"));
        r.extend(plan1_and_integrated_web1(
            json!({ "vnetRouteAllEnabled": false }),
        ));
        r.extend([
            storage_account(STORE, "Disabled", None),
            json!({ "type": "Microsoft.Network/privateDnsZones", "name": BLOB_ZONE, "location": "global" }),
            json!({ "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
                    "name": format!("{BLOB_ZONE}/link1"), "location": "global",
                    "properties": { "virtualNetwork": { "id": net("virtualNetworks", "vnet1") },
                                    "registrationEnabled": false } }),
            zone_group("vnet1-pe", "blob", BLOB_ZONE),
        ]);
        template(r)
    }

    fn host() -> String {
        format!("{STORE}.blob.core.windows.net")
    }

    /// `curl https://STORE.blob.core.windows.net/` from `target` with the
    /// name pinned to `ip`: (HTTP status, answer); status 0 = no connection.
    fn blob(lab: &Lab, target: &[&str], ip: &str) -> (u16, Value) {
        let script = format!(
            "curl -sS --max-time 3 --cacert \"$VNET_LAB_CA_FILE\" --resolve {h}:443:{ip} \
             -o /dev/stdout -w '\\n%{{http_code}}' https://{h}/",
            h = host()
        );
        let out = lab.exec(target, &["sh", "-c", &script]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        let code = code.trim().parse().unwrap_or(0);
        let v = serde_json::from_str(body)
            .unwrap_or_else(|_| json!({ "stderr": String::from_utf8_lossy(&out.stderr) }));
        (code, v)
    }

    /// `blob` until a connection is answered (the host may still be
    /// starting after the deploy), for 5 s at most.
    fn answered(lab: &Lab, target: &[&str], ip: &str) -> (u16, Value) {
        let mut last = (0, Value::Null);
        for _ in 0..25 {
            last = blob(lab, target, ip);
            if last.0 != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        last
    }

    fn pe_ip(lab: &Lab, vnet: &str) -> String {
        let pe = lab.show(&net("privateEndpoints", &format!("{vnet}-pe")));
        pe["emulator"]["privateIpAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("no address: {pe}"))
            .to_string()
    }

    #[test]
    fn vm_and_app_reach_a_closed_storage_account_over_its_private_endpoint() {
        let Some(lab) = Lab::start() else { return };
        lab.deploy(RG, &lab_template());
        let (ip1, ip2) = (pe_ip(&lab, "vnet1"), pe_ip(&lab, "vnet2"));
        assert_eq!(
            ip1, ip2,
            "the overlapping VNets' endpoints share the address"
        );
        let public = lab.show(&id(RG, "Microsoft.Storage/storageAccounts", STORE))["emulator"]
            ["publicIpAddress"]
            .as_str()
            .expect("public IP")
            .to_string();
        let (vm1, vm2, app) = (
            ["--vm", "vnet1-vm"],
            ["--vm", "vnet2-vm"],
            ["--app", "web1"],
        );
        let vnet1 = net("virtualNetworks", "vnet1");
        let vnet2 = net("virtualNetworks", "vnet2");

        // The zone group: the blob name resolves to the endpoint in vnet1.
        let answer = lab.resolve(RG, "vnet1", &host());
        assert!(
            answer.to_string().contains(&format!("\"{ip1}\"")),
            "{answer}"
        );
        // From the app through the VNet's DNS (168.63.129.16), the
        // CNAME chain ends at the endpoint's address.
        let dig = lab.dig_short(&app, &[&host()]);
        assert!(dig.iter().any(|l| l.trim() == ip1), "{dig:?}");
        // And the app reaches the account by name alone (no --resolve).
        let script = format!(
            "curl -sS --max-time 3 --cacert \"$VNET_LAB_CA_FILE\" https://{}/",
            host()
        );
        let by_name = lab.exec_ok(&["--app", "web1"], &["sh", "-c", &script]);
        assert!(by_name.contains("privateEndpoint"), "{by_name}");

        // The VM: path privateEndpoint with its private source.
        let (code, v) = answered(&lab, &vm1, &ip1);
        assert_eq!(code, 200, "{v}");
        assert_eq!(
            (v["path"].as_str(), v["sourceAddress"].as_str()),
            (Some("privateEndpoint"), Some("10.0.2.4")),
            "{v}"
        );
        assert!(v["virtualNetwork"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&vnet1));
        // The integrated app (Route All off: 10/8 enters the VNet).
        let (code, v) = blob(&lab, &app, &ip1);
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["path"], "privateEndpoint", "{v}");
        assert!(
            v["sourceAddress"].as_str().unwrap().starts_with("10.0.1."),
            "{v}"
        );
        // The same address in vnet2 is vnet2's own endpoint.
        let (code, v) = blob(&lab, &vm2, &ip2);
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["sourceAddress"], "10.0.2.4", "{v}");
        assert!(v["virtualNetwork"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&vnet2));
        // The public path is refused at the same time.
        for target in [&vm1[..], &app[..]] {
            let (code, v) = blob(&lab, target, &public);
            assert_eq!(code, 403, "{v}");
            assert_eq!(v["error"]["code"], "AuthorizationFailure", "{v}");
        }
        // A blob endpoint passes blob's ports only: HTTP 80 answers, the
        // account's SMB 445 (the `file` group) is dropped.
        let script = format!("curl -sS --max-time 3 http://{ip1}/");
        let http = lab.exec_ok(&vm1, &["sh", "-c", &script]);
        assert!(http.contains("privateEndpoint"), "{http}");
        let smb = lab.exec(&vm1, &[&probe_bin(), "tcp", &ip1, "445", "1000"]);
        assert!(
            !smb.status.success(),
            "{}",
            String::from_utf8_lossy(&smb.stdout)
        );

        lab.assert_reconcile_writes_nothing();

        // Deleting vnet1's endpoint stops its traffic; vnet2's still flows.
        lab.delete_private_endpoint(RG, "vnet1-pe");
        assert_eq!(blob(&lab, &vm1, &ip1).0, 0);
        assert_eq!(blob(&lab, &app, &ip1).0, 0);
        assert_eq!(blob(&lab, &vm2, &ip2).0, 200);
    }

    /// vnet1 (its VM and `web1` integrated, Route All off, on plan1) and a
    /// second app `web2` on plan2 (two instances), not integrated, serving
    /// HTTP with vnet-probe on WEBSITES_PORT 8080, closed to the public by
    /// an access restriction (only 192.0.2.99 may come in); `site-pe` in
    /// vnet1's `pes` to web2.
    fn apps_template() -> Value {
        let mut r: Vec<Value> = vnet("vnet1")
            .into_iter()
            .filter(|v| v["type"] != "Microsoft.Network/privateEndpoints")
            .collect();
        let serve = format!("exec {} serve-http 8080", probe_bin());
        r.extend(plan1_and_integrated_web1(
            json!({ "vnetRouteAllEnabled": false, "appCommandLine": "sleep 100000" }),
        ));
        r.extend([
            plan("plan2", "P1v3", 2, json!({})),
            site(
                "web2",
                "plan2",
                None,
                "westeurope",
                json!({ "appCommandLine": serve,
                        "appSettings": [{ "name": "WEBSITES_PORT", "value": "8080" }],
                        "ipSecurityRestrictions": [{ "name": "only-one", "ipAddress": "192.0.2.99/32",
                                                     "action": "Allow", "priority": 100 }] }),
            ),
            private_endpoint(
                "site-pe",
                &subnet_of("vnet1", "pes"),
                &id(RG, "Microsoft.Web/sites", "web2"),
                "sites",
            ),
        ]);
        template(r)
    }

    /// `curl` of web2 from `target`, `--resolve`d to `ip` (the endpoint, or
    /// the public inbound address), until the front end answers (the apps
    /// may still be starting), for 5 s at most: (status, body).
    fn get_until(lab: &Lab, target: &[&str], scheme: &str, ip: &str) -> (u16, String) {
        let port = if scheme == "https" { 443 } else { 80 };
        let cmd = format!(
            "curl -sS --max-time 2 --cacert \"$VNET_LAB_CA_FILE\" --resolve web2.azurewebsites.net:{port}:{ip} \
             -w '\\n%{{http_code}}' {scheme}://web2.azurewebsites.net/"
        );
        let mut last = String::new();
        for _ in 0..25 {
            let out = lab.exec(target, &["sh", "-c", &cmd]);
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if let Some((body, code)) = last.trim_end().rsplit_once('\n') {
                let code: u16 = code.parse().unwrap_or(0);
                if code != 0 && code != 502 {
                    return (code, body.to_string());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("no answer from {ip} ({scheme}): {last}");
    }

    /// Through the endpoint, the app's front end: every instance on 80 and
    /// 443 (lab CA), the client's private address in `X-Forwarded-For`, and
    /// no access restriction (seed: "Access restrictions does not apply to
    /// traffic coming through a private endpoint"), while the public path
    /// answers the same caller 403. Other ports go nowhere.
    #[test]
    fn an_app_and_a_vm_reach_another_app_over_its_private_endpoint() {
        let Some(lab) = Lab::start() else { return };
        lab.deploy(RG, &apps_template());
        let pe = lab.show(&net("privateEndpoints", "site-pe"));
        let ip = pe["emulator"]["privateIpAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("{pe}"))
            .to_string();
        let (vm, app) = (["--vm", "vnet1-vm"], ["--app", "web1"]);
        let inbound = lab.show(&id(RG, "Microsoft.Web/sites", "web2"))["properties"]
            ["inboundIpAddress"]
            .as_str()
            .unwrap()
            .to_string();

        let mut instances = std::collections::BTreeSet::new();
        for scheme in ["http", "https"] {
            for _ in 0..3 {
                let (code, body) = get_until(&lab, &vm, scheme, &ip);
                assert_eq!(code, 200, "{scheme}: {body}");
                let v: Value =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
                assert_eq!(
                    v["forwardedFor"], "10.0.2.4",
                    "the VM's private address: {v}"
                );
                instances.insert(v["instance"].as_str().unwrap_or_default().to_string());
            }
        }
        assert_eq!(
            instances.len(),
            2,
            "both instances through the endpoint: {instances:?}"
        );
        let (code, body) = get_until(&lab, &app, "http", &ip);
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains("\"forwardedFor\":\"10.0.1."),
            "the app's instance address: {body}"
        );
        // The same VM on the public path: the access restriction denies it.
        let (code, body) = get_until(&lab, &vm, "http", &inbound);
        assert_eq!(code, 403, "{body}");
        // Other ports go nowhere.
        let other = lab.exec(&vm, &[&probe_bin(), "tcp", &ip, "8080", "1000"]);
        assert!(!other.status.success());

        lab.assert_reconcile_writes_nothing();

        lab.delete_private_endpoint(RG, "site-pe");
        let gone = lab.exec(
            &vm,
            &["curl", "-s", "--max-time", "2", &format!("http://{ip}/")],
        );
        assert!(!gone.status.success());
    }
}
