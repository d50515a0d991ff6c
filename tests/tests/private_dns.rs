//! Issue 5: private DNS zones through the CLI and the daemon, and what
//! Azure-provided DNS answers inside a VNet (`network vnet resolve`, the
//! lab's diagnostic over the same resolver the DNS server uses, checked
//! against real queries to 168.63.129.16).

use vnet_e2e::*;

const RG: &str = "rg1";

#[test]
fn a_private_zone_answers_only_in_linked_vnets() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    let resolve = |name: &str| lab.resolve(RG, "vnet1", name);

    let host = resolve("host1.internet.lab");
    assert_eq!(host["status"], "NOERROR", "{host}");
    assert_eq!(host["answers"][0]["data"], "198.18.100.10", "{host}");

    let zone = "privatelink.blob.core.windows.net";
    lab.create_private_dns_zone(RG, zone);
    lab.add_a_record(RG, zone, "store1", "10.0.2.10");
    let before = resolve("store1.privatelink.blob.core.windows.net");
    assert_eq!(
        before["status"], "NXDOMAIN",
        "an unlinked zone is invisible: {before}"
    );

    lab.link_private_dns_zone(RG, zone, "link1", "vnet1");
    let after = resolve("store1.privatelink.blob.core.windows.net");
    assert_eq!(after["status"], "NOERROR", "{after}");
    assert_eq!(after["answers"][0]["data"], "10.0.2.10", "{after}");
    // The server at 168.63.129.16 answers the same on the wire, from a VM
    // and from an integrated app.
    for target in [["--vm", "vm1"], ["--app", "web1"]] {
        let dig = lab.dig_short(
            &target,
            &["@168.63.129.16", "store1.privatelink.blob.core.windows.net"],
        );
        assert_eq!(dig, ["10.0.2.10"], "{target:?}");
    }
    let missing = resolve("nothere.privatelink.blob.core.windows.net");
    assert_eq!(
        missing["status"], "NXDOMAIN",
        "a linked zone answers NXDOMAIN for its missing names: {missing}"
    );
    let vnet = lab.show(&id(RG, "Microsoft.Network/virtualNetworks", "vnet1"));
    assert!(
        vnet["emulator"]["privateDnsZones"]
            .to_string()
            .contains(zone),
        "{vnet}"
    );
}
