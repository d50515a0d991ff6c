//! Issue 5, private endpoints (the part without the services' datapath): a
//! private endpoint to a web app in a VM's VNet gets its NIC and address,
//! its DNS zone group makes `SITE.privatelink.azurewebsites.net` resolve to it
//! inside the linked VNet, every subnet routes its /32 as InterfaceEndpoint
//! (in the kernel: like VnetLocal), Azure's refusals change nothing, and
//! deleting it takes NIC, address and record away.

use serde_json::Value;
use vnet_e2e::*;

const RG: &str = "rg1";
const ZONE: &str = "privatelink.azurewebsites.net";

fn resolve(lab: &Lab, name: &str) -> Value {
    lab.resolve(RG, "vnet1", name)
}

/// `network private-endpoint create` to web app `web1` in `subnet` of vnet1.
fn create_args<'a>(name: &'a str, subnet: &'a str, group: &'a str, site: &'a str) -> Vec<&'a str> {
    vec![
        "network",
        "private-endpoint",
        "create",
        "-g",
        RG,
        "-n",
        name,
        "--vnet-name",
        "vnet1",
        "--subnet",
        subnet,
        "--private-connection-resource-id",
        site,
        "--group-id",
        group,
        "--connection-name",
        "conn1",
    ]
}

/// The kernel routes of `table` in namespace `ns`.
fn table(ns: &str, table: u32) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "route", "show", "table", &table.to_string()])
        .output()
        .expect("ip route");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_private_endpoint_to_a_web_app_resolves_to_its_nic_in_the_linked_vnet() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    let site = id(RG, "Microsoft.Web/sites", "web1");
    for args in [
        vec![
            "network",
            "private-dns",
            "zone",
            "create",
            "-g",
            RG,
            "-n",
            ZONE,
        ],
        vec![
            "network",
            "private-dns",
            "link",
            "vnet",
            "create",
            "-g",
            RG,
            "-z",
            ZONE,
            "-n",
            "link1",
            "-v",
            "vnet1",
        ],
    ] {
        lab.cli_ok(&args);
    }

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
    lab.cli_ok(&[
        "network",
        "private-endpoint",
        "dns-zone-group",
        "create",
        "-g",
        RG,
        "--endpoint-name",
        "pe1",
        "-n",
        "default",
        "--private-dns-zone",
        ZONE,
        "--zone-name",
        "sites",
    ]);
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

    // Every subnet routes the /32 as InterfaceEndpoint; the kernel throws it
    // to the fabric's main table like VnetLocal.
    let routes = lab.cli_json(&[
        "network",
        "nic",
        "show-effective-route-table",
        "-g",
        RG,
        "-n",
        "vm1-nic",
    ]);
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
            kernel.contains(&format!("throw {address}")),
            "table {t}: {kernel}"
        );
    }
    let again = lab.cli_json(&["lab", "reconcile"]);
    assert_eq!(kernel_writes(&again["reconcile"]), 0, "{again}");

    // In use: the subnet and the endpoint's NIC cannot be deleted.
    let subnet = format!(
        "{}/subnets/vms",
        id(RG, "Microsoft.Network/virtualNetworks", "vnet1")
    );
    lab.refused(
        &["resource", "delete", "--ids", &subnet],
        "InUseSubnetCannotBeDeleted",
    );
    lab.refused(&["resource", "delete", "--ids", &nic_id], "NicInUse");

    // Deleting the endpoint takes its NIC, route and record away.
    lab.cli_ok(&[
        "network",
        "private-endpoint",
        "delete",
        "-g",
        RG,
        "-n",
        "pe1",
    ]);
    assert!(
        !lab.cli(&["resource", "show", "--ids", &nic_id])
            .status
            .success(),
        "the NIC went with the endpoint"
    );
    assert_eq!(resolve(&lab, fqdn)["status"], "NXDOMAIN");
    assert!(!table(&fabric, 1001).contains(&format!("throw {address}")));
}
