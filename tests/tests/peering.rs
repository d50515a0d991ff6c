//! VNet peering with real packets (issue 12, first part): a peering is a
//! link between two fabrics; routes, the VirtualNetwork tag and the flags
//! follow Azure.

use serde_json::{json, Value};
use vnet_e2e::fixtures::*;
use vnet_e2e::*;

/// hub 10.1/16 (VM hubvm 10.1.1.4), spoke1 10.2/16 (web1 integrated in
/// `integration`), spoke2 10.3/16 (VM spokevm 10.3.1.4); hub peered with
/// both spokes (`spoke_peerings`: whether the spokes peer back).
fn hub_and_spokes(spoke_peerings: bool) -> Value {
    let back = |spoke: &str| {
        if spoke_peerings {
            vec![peer(&format!("{spoke}-to-hub"), "hub", json!({}))]
        } else {
            vec![]
        }
    };
    let mut resources = vec![
        vnet_with(
            "hub",
            "10.1.0.0/16",
            json!([{ "name": "vms", "properties": { "addressPrefix": "10.1.1.0/24" } }]),
            vec![
                peer("hub-to-spoke1", "spoke1", json!({})),
                peer("hub-to-spoke2", "spoke2", json!({})),
            ],
        ),
        vnet_with(
            "spoke1",
            "10.2.0.0/16",
            json!([{ "name": "integration", "properties": { "addressPrefix": "10.2.1.0/26" } }]),
            back("spoke1"),
        ),
        vnet_with(
            "spoke2",
            "10.3.0.0/16",
            json!([{ "name": "vms", "properties": { "addressPrefix": "10.3.1.0/24" } }]),
            back("spoke2"),
        ),
        plan("plan1", "P1v3", 1, json!({})),
        site(
            "web1",
            "plan1",
            Some(&subnet_id("spoke1", "integration")),
            "westeurope",
            json!({ "appCommandLine": "sleep 100000" }),
        ),
    ];
    resources.extend(vm_in(RG, "hubvm", &subnet_id("hub", "vms"), "10.1.1.4"));
    resources.extend(vm_in(
        RG,
        "spokevm",
        &subnet_id("spoke2", "vms"),
        "10.3.1.4",
    ));
    template(resources)
}

/// An app integrated in a spoke reaches a VM in the hub with its instance's
/// private address; the other spoke stays out of reach (peering is not
/// transitive); the spoke's subnet has the hub's space as a VNetPeering
/// route; a one-sided peering is Initiated and carries nothing.
#[test]
fn spoke_app_reaches_the_hub_but_not_the_other_spoke() {
    let Some(mut lab) = Lab::start() else { return };
    // One side only: Initiated, no route, no traffic.
    lab.deploy(RG, &hub_and_spokes(false));
    let hub = lab.show(&net("virtualNetworks", "hub"));
    assert_eq!(
        hub["properties"]["virtualNetworkPeerings"][0]["properties"]["peeringState"], "Initiated",
        "{hub:#}"
    );
    let probe = probe_bin();
    lab.spawn(&["--vm", "hubvm"], &[&probe, "serve-tcp", "9000"]);
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.1.1.4", "9000", "1000"],
    );
    assert!(
        !out.status.success(),
        "an Initiated peering carries no traffic"
    );

    lab.deploy(RG, &hub_and_spokes(true));
    let hub = lab.show(&net("virtualNetworks", "hub"));
    assert_eq!(
        hub["properties"]["virtualNetworkPeerings"][0]["properties"]["peeringState"], "Connected",
        "{hub:#}"
    );
    assert_eq!(
        hub["properties"]["virtualNetworkPeerings"][0]["properties"]["remoteAddressSpace"]
            ["addressPrefixes"],
        json!(["10.2.0.0/16"])
    );
    let routes = lab.cli_json(&[
        "network",
        "vnet",
        "subnet",
        "show-effective-route-table",
        "-g",
        RG,
        "--vnet-name",
        "spoke1",
        "-n",
        "integration",
    ]);
    let peering_routes: Vec<&Value> = routes["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["nextHopType"] == "VNetPeering")
        .collect();
    assert_eq!(peering_routes.len(), 1, "{routes:#}");
    assert_eq!(
        peering_routes[0]["addressPrefix"],
        json!(["10.1.0.0/16"]),
        "{routes:#}"
    );

    let me = lab.show(&id(RG, "Microsoft.Web/sites", "web1"))["emulator"]["instances"][0]
        ["privateIp"]
        .as_str()
        .map(str::to_string);
    let line = lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.1.1.4", "9000"]);
    let seen = peer_ip(&line);
    assert!(
        seen.starts_with("10.2.1."),
        "the instance's private address, got {seen}"
    );
    if let Some(me) = me {
        assert_eq!(seen, me);
    }
    // spoke1 -> spoke2: no route (not transitive), nothing arrives.
    lab.spawn(&["--vm", "spokevm"], &[&probe, "serve-tcp", "9001"]);
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.3.1.4", "9001", "1000"],
    );
    assert!(!out.status.success(), "peering is not transitive");
    // The hub's VM reaches the other spoke directly.
    let line = lab.exec_ok(&["--vm", "hubvm"], &[&probe, "tcp", "10.3.1.4", "9001"]);
    assert_eq!(peer_ip(&line), "10.1.1.4");
}

/// Overlapping address spaces are refused with Azure's code, and nothing
/// changes; so is a VNet overlapping one the remote already peers with.
#[test]
fn overlapping_spaces_are_refused() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &hub_and_spokes(true));
    let mut t = hub_and_spokes(true);
    t["resources"].as_array_mut().unwrap().push(vnet_with(
        "clash",
        "10.2.128.0/17",
        json!([]),
        vec![peer("clash-to-hub", "hub", json!({}))],
    ));
    t["resources"][0]["properties"]["virtualNetworkPeerings"]
        .as_array_mut()
        .unwrap()
        .push(peer("hub-to-clash", "clash", json!({})));
    let err = lab.deploy_refused(RG, &t, "DeploymentFailed");
    assert!(
        err.contains("VnetAddressSpaceOverlapsWithAlreadyPeeredVnet"),
        "{err}"
    );
    let mut t = hub_and_spokes(true);
    t["resources"][0]["properties"]["virtualNetworkPeerings"]
        .as_array_mut()
        .unwrap()
        .push(peer("hub-to-self-like", "twin", json!({})));
    t["resources"].as_array_mut().unwrap().push(vnet_with(
        "twin",
        "10.1.0.0/20",
        json!([]),
        vec![],
    ));
    let err = lab.deploy_refused(RG, &t, "DeploymentFailed");
    assert!(err.contains("VnetAddressSpacesOverlap"), "{err}");
    // A second peering to the same VNet; useRemoteGateways without a gateway.
    let mut t = hub_and_spokes(true);
    t["resources"][0]["properties"]["virtualNetworkPeerings"]
        .as_array_mut()
        .unwrap()
        .push(peer("hub-to-spoke1-again", "spoke1", json!({})));
    let err = lab.deploy_refused(RG, &t, "DeploymentFailed");
    assert!(
        err.contains("AnotherPeeringAlreadyReferencesRemoteVnet"),
        "{err}"
    );
    let mut t = hub_and_spokes(true);
    t["resources"][1]["properties"]["virtualNetworkPeerings"][0]["properties"]
        ["useRemoteGateways"] = json!(true);
    let err = lab.deploy_refused(RG, &t, "DeploymentFailed");
    assert!(err.contains("RemoteVnetHasNoGateways"), "{err}");
}

/// Hub and spoke with a firewall NVA in the hub: UDRs in both spokes send
/// the other spoke's space to the NVA (IP forwarding on its NIC and in its
/// OS), and `allowForwardedTraffic` on the spokes' peerings lets what it
/// forwards in; without it the spoke drops it at the peering (its counter
/// moves).
#[test]
fn spoke_to_spoke_through_a_hub_nva_needs_allow_forwarded_traffic() {
    let Some(mut lab) = Lab::start() else { return };
    let build = |forwarded: bool| {
        let mut t = hub_and_spokes(true);
        let res = t["resources"].as_array_mut().unwrap();
        for (i, other) in [(1, "10.3.0.0/16"), (2, "10.2.0.0/16")] {
            res[i]["properties"]["virtualNetworkPeerings"][0]["properties"]
                ["allowForwardedTraffic"] = json!(forwarded);
            let rt = format!("rt{i}");
            res[i]["properties"]["subnets"][0]["properties"]["routeTable"] =
                json!({ "id": net("routeTables", &rt) });
            res.push(json!({ "type": "Microsoft.Network/routeTables", "name": rt, "location": "westeurope",
                "properties": { "routes": [{ "name": "to-other-spoke", "properties": {
                    "addressPrefix": other, "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.1.1.10" } }] } }));
        }
        let mut fw = vm_in(RG, "fw", &subnet_id("hub", "vms"), "10.1.1.10");
        fw[0]["properties"]["enableIPForwarding"] = json!(true);
        res.extend(fw);
        t
    };
    lab.deploy(RG, &build(true));
    lab.exec_ok(&["--vm", "fw"], &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let probe = probe_bin();
    lab.spawn(&["--vm", "spokevm"], &[&probe, "serve-tcp", "9002"]);
    let line = lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.3.1.4", "9002"]);
    assert!(
        peer_ip(&line).starts_with("10.2.1."),
        "through the NVA with the app's private address: {line}"
    );
    // Without allowForwardedTraffic the spoke drops what the NVA forwards.
    lab.deploy(RG, &build(false));
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.3.1.4", "9002", "1000"],
    );
    assert!(
        !out.status.success(),
        "forwarded traffic must be dropped at the peering"
    );
}

/// `network vnet peering show ... --query properties.peeringState` of va's peering.
fn a_to_b_state(lab: &Lab) -> Value {
    lab.cli_json(&[
        "network",
        "vnet",
        "peering",
        "show",
        "-g",
        RG,
        "-n",
        "a-to-b",
        "--vnet-name",
        "va",
        "--query",
        "properties.peeringState",
    ])
}

/// `network vnet peering create|show|list|delete` with az's flags: the
/// first side is Initiated, the second makes both Connected, a delete
/// takes the other side back to Initiated.
#[test]
fn peering_verbs_as_az_has_them() {
    let Some(lab) = Lab::start() else { return };
    for (name, prefix) in [("va", "10.10.0.0/16"), ("vb", "10.20.0.0/16")] {
        lab.cli_ok(&[
            "network",
            "vnet",
            "create",
            "-g",
            RG,
            "-n",
            name,
            "--address-prefixes",
            prefix,
            "--subnet-name",
            "default",
            "--subnet-prefixes",
            &prefix.replace("0.0/16", "1.0/24"),
        ]);
    }
    let a = lab.cli_json(&[
        "network",
        "vnet",
        "peering",
        "create",
        "-g",
        RG,
        "-n",
        "a-to-b",
        "--vnet-name",
        "va",
        "--remote-vnet",
        "vb",
        "--allow-vnet-access",
    ]);
    assert_eq!(a["properties"]["peeringState"], "Initiated", "{a:#}");
    lab.cli_ok(&[
        "network",
        "vnet",
        "peering",
        "create",
        "-g",
        RG,
        "-n",
        "b-to-a",
        "--vnet-name",
        "vb",
        "--remote-vnet",
        "va",
        "--allow-forwarded-traffic",
        "true",
    ]);
    let state = a_to_b_state(&lab);
    assert_eq!(state, json!("Connected"));
    let list = lab.cli_json(&[
        "network",
        "vnet",
        "peering",
        "list",
        "-g",
        RG,
        "--vnet-name",
        "vb",
        "--query",
        "[].name",
    ]);
    assert_eq!(list, json!(["b-to-a"]));
    lab.cli_ok(&[
        "network",
        "vnet",
        "peering",
        "delete",
        "-g",
        RG,
        "-n",
        "b-to-a",
        "--vnet-name",
        "vb",
    ]);
    let state = a_to_b_state(&lab);
    assert_eq!(state, json!("Initiated"));
}

/// Global peering: a VNet in another region, peered like a regional one;
/// the spoke's app reaches a VM there with its private address.
#[test]
fn global_peering_works_like_regional_peering() {
    let Some(mut lab) = Lab::start() else { return };
    let mut t = hub_and_spokes(true);
    let res = t["resources"].as_array_mut().unwrap();
    let mut far = vnet_with(
        "far",
        "10.4.0.0/16",
        json!([{ "name": "vms", "properties": { "addressPrefix": "10.4.1.0/24" } }]),
        vec![peer("far-to-spoke1", "spoke1", json!({}))],
    );
    far["location"] = json!("eastus");
    res.push(far);
    res[1]["properties"]["virtualNetworkPeerings"]
        .as_array_mut()
        .unwrap()
        .push(peer("spoke1-to-far", "far", json!({})));
    let mut vm = vm_in(RG, "farvm", &subnet_id("far", "vms"), "10.4.1.4");
    for r in &mut vm {
        r["location"] = json!("eastus");
    }
    res.extend(vm);
    lab.deploy(RG, &t);
    let probe = probe_bin();
    lab.spawn(&["--vm", "farvm"], &[&probe, "serve-tcp", "9003"]);
    let line = lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.4.1.4", "9003"]);
    assert!(peer_ip(&line).starts_with("10.2.1."), "{line}");
}

/// A private endpoint in the hub, its zone linked to the spoke: the spoke's
/// app reaches the storage account by name at the endpoint's address, and
/// the account sees the instance's private address on its private path.
#[test]
fn a_private_endpoint_in_the_hub_serves_the_spoke() {
    let Some(lab) = Lab::start() else { return };
    const ZONE: &str = "privatelink.blob.core.windows.net";
    let mut t = hub_and_spokes(true);
    let res = t["resources"].as_array_mut().unwrap();
    res[0]["properties"]["subnets"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "pes", "properties": { "addressPrefix": "10.1.3.0/24" } }));
    res.extend([
        storage_account("hubstore1", "Disabled", None),
        private_endpoint("hub-pe", &subnet_id("hub", "pes"), &id(RG, "Microsoft.Storage/storageAccounts", "hubstore1"), "blob"),
        json!({ "type": "Microsoft.Network/privateDnsZones", "name": ZONE, "location": "global" }),
        json!({ "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "name": format!("{ZONE}/spoke1"),
            "location": "global", "properties": { "virtualNetwork": { "id": net("virtualNetworks", "spoke1") },
            "registrationEnabled": false } }),
        zone_group("hub-pe", "blob", ZONE),
    ]);
    lab.deploy(RG, &t);
    let script = "for i in $(seq 1 25); do out=$(curl -sS --max-time 3 --cacert \"$VNET_LAB_CA_FILE\" \
        -w '\\n%{remote_ip} %{http_code}' https://hubstore1.blob.core.windows.net/ 2>&1) && break; sleep 0.2; done; echo \"$out\"";
    let out = lab.exec_ok(&["--app", "web1"], &["sh", "-c", script]);
    let (body, tail) = out.trim_end().rsplit_once('\n').unwrap_or(("", ""));
    assert!(
        tail.starts_with("10.1.3."),
        "the hub's private endpoint, got {tail}: {body}"
    );
    assert!(tail.ends_with(" 200"), "{out}");
    let seen: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(seen["path"], "privateEndpoint", "{seen}");
    assert!(
        seen["sourceAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.2.1."),
        "{seen}"
    );
}

/// `allowVirtualNetworkAccess: false` on one side drops everything across
/// that peering (which stays Connected); the hub's other peering is not
/// affected.
#[test]
fn no_virtual_network_access_drops_it_all() {
    let Some(mut lab) = Lab::start() else { return };
    let mut t = hub_and_spokes(true);
    t["resources"][0]["properties"]["virtualNetworkPeerings"][0]["properties"]
        ["allowVirtualNetworkAccess"] = json!(false);
    lab.deploy(RG, &t);
    let hub = lab.show(&net("virtualNetworks", "hub"));
    assert_eq!(
        hub["properties"]["virtualNetworkPeerings"][0]["properties"]["peeringState"],
        "Connected"
    );
    let probe = probe_bin();
    lab.spawn(&["--vm", "hubvm"], &[&probe, "serve-tcp", "9004"]);
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.1.1.4", "9004", "1000"],
    );
    assert!(
        !out.status.success(),
        "allowVirtualNetworkAccess false must drop the flow"
    );
    // The hub's other spoke is unaffected.
    lab.spawn(&["--vm", "spokevm"], &[&probe, "serve-tcp", "9005"]);
    let line = lab.exec_ok(&["--vm", "hubvm"], &[&probe, "tcp", "10.3.1.4", "9005"]);
    assert_eq!(peer_ip(&line), "10.1.1.4");
}

/// After the remote VNet adds an address range the peering is
/// RemoteNotInSync and the new range is not routed; `peering sync` brings
/// it in and the range becomes reachable.
#[test]
fn a_remote_address_space_change_waits_for_a_sync() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &hub_and_spokes(true));
    // The hub grows 10.5.0.0/16 with a VM in it (deployed alone: the spokes' peerings stay as they were).
    let mut t = hub_and_spokes(true);
    let res = t["resources"].as_array_mut().unwrap();
    res[0]["properties"]["addressSpace"]["addressPrefixes"] = json!(["10.1.0.0/16", "10.5.0.0/16"]);
    res[0]["properties"]["subnets"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "more", "properties": { "addressPrefix": "10.5.1.0/24" } }));
    let hub_only = vec![res[0].clone()];
    let mut vm = vm_in(RG, "morevm", &subnet_id("hub", "more"), "10.5.1.4");
    let mut resources = hub_only;
    resources.append(&mut vm);
    lab.deploy(RG, &template(resources));
    let spoke = lab.show(&net("virtualNetworks", "spoke1"));
    let p = &spoke["properties"]["virtualNetworkPeerings"][0]["properties"];
    assert_eq!(p["peeringSyncLevel"], "RemoteNotInSync", "{p:#}");
    let probe = probe_bin();
    lab.spawn(&["--vm", "morevm"], &[&probe, "serve-tcp", "9006"]);
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.5.1.4", "9006", "1000"],
    );
    assert!(
        !out.status.success(),
        "the new range is not routed before a sync"
    );
    lab.cli_ok(&[
        "network",
        "vnet",
        "peering",
        "sync",
        "-g",
        RG,
        "--vnet-name",
        "spoke1",
        "-n",
        "spoke1-to-hub",
    ]);
    let spoke = lab.show(&net("virtualNetworks", "spoke1"));
    assert_eq!(
        spoke["properties"]["virtualNetworkPeerings"][0]["properties"]["peeringSyncLevel"],
        "FullyInSync"
    );
    let line = lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.5.1.4", "9006"]);
    assert!(peer_ip(&line).starts_with("10.2.1."), "{line}");
}

/// The spoke app of a hub and spoke reaches a storage account secured to its
/// subnet (service endpoint, `defaultAction: Deny`, a `virtualNetworkRules`
/// entry for the spoke's integration subnet) over HTTPS, and the account sees
/// the instance's private address on the service-endpoint path.
#[test]
fn a_spoke_app_reaches_a_service_endpoint_secured_account() {
    let Some(lab) = Lab::start() else { return };
    let mut t = hub_and_spokes(true);
    let r = t["resources"].as_array_mut().unwrap();
    r[1]["properties"]["subnets"][0]["properties"]["serviceEndpoints"] =
        json!([{ "service": "Microsoft.Storage" }]);
    r.push(storage_account(
        "spokestore1",
        "Enabled",
        Some(json!({ "defaultAction": "Deny",
                     "virtualNetworkRules": [{ "id": subnet_id("spoke1", "integration"), "action": "Allow" }] })),
    ));
    lab.deploy(RG, &t);
    let ip = lab.show(&id(RG, "Microsoft.Storage/storageAccounts", "spokestore1"))["emulator"]
        ["publicIpAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let host = "spokestore1.blob.core.windows.net";
    let script = format!(
        "curl -sS --max-time 5 --cacert \"$VNET_LAB_CA_FILE\" --resolve {host}:443:{ip} -w '\\n%{{http_code}}' https://{host}/"
    );
    let private = instance_ips(&lab, "web1")[0].clone();
    let mut last = String::new();
    for _ in 0..50 {
        last = lab.exec_ok(&["--app", "web1"], &["sh", "-c", &script]);
        if last.contains("serviceEndpoint") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let v: Value = serde_json::from_str(last.lines().next().unwrap_or("")).unwrap_or_default();
    assert_eq!(
        (
            v["sourceAddress"].as_str(),
            v["path"].as_str(),
            last.lines().last()
        ),
        (Some(private.as_str()), Some("serviceEndpoint"), Some("200")),
        "{last}"
    );
}
