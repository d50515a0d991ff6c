//! Issue 3, end to end: every limit of the seed refused with Azure's error and
//! nothing changed; addresses moving on scale, upgrade and Windows containers,
//! seen by real traffic; disconnect and the orphaned-subnet recovery.

use serde_json::json;
use vnet_e2e::*;

use vnet_e2e::fixtures::*;

#[test]
fn every_refused_request_changes_nothing() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(2, "integration"));
    let web1 = subnet_id("vnet1", "integration");
    let cfg = json!({});

    // 1. Pricing tiers.
    for (sku, code) in [
        ("F1", TIER_CODE),
        ("D1", TIER_CODE),
        ("I1", ASE_CODE),
        ("I1v2", ASE_CODE),
    ] {
        lab.deploy_refused(
            RG,
            &template(vec![
                plan("p-tier", sku, 1, json!({})),
                site(
                    "s-tier",
                    "p-tier",
                    Some(&subnet_id("vnet1", "other")),
                    "westeurope",
                    cfg.clone(),
                ),
            ]),
            code,
        );
    }
    lab.deploy_refused(
        RG,
        &template(vec![
            plan(
                "p-legacy",
                "S1",
                1,
                json!({ "deploymentGeneration": "Legacy" }),
            ),
            site(
                "s-legacy",
                "p-legacy",
                Some(&subnet_id("vnet1", "other")),
                "westeurope",
                cfg.clone(),
            ),
        ]),
        LEGACY_CODE,
    );
    // 2. Same region.
    lab.deploy_refused(
        RG,
        &template(vec![site(
            "s-region",
            "plan1",
            Some(&web1),
            "northeurope",
            cfg.clone(),
        )]),
        "LocationMismatch",
    );
    // 3. The subnet: too small, used by another plan, endpoint policies, IPv6 space, classic.
    lab.deploy_refused(
        RG,
        &template(vec![
            vnet(
                "vnet-small",
                "westeurope",
                &["10.9.0.0/16"],
                json!([{ "name": "s29", "properties": { "addressPrefix": "10.9.0.0/29" } }]),
            ),
            site(
                "s-small",
                "plan1",
                Some(&format!(
                    "{}/subnets/s29",
                    id(RG, "Microsoft.Network/virtualNetworks", "vnet-small")
                )),
                "westeurope",
                cfg.clone(),
            ),
        ]),
        "SubnetTooSmall",
    );
    lab.deploy_refused(
        RG,
        &template(vec![
            plan("plan2", "P1v3", 1, json!({})),
            site(
                "s-other-plan",
                "plan2",
                Some(&web1),
                "westeurope",
                cfg.clone(),
            ),
        ]),
        "SubnetUsedByAnotherServerFarm",
    );
    lab.deploy_refused(
        RG,
        &template(vec![
            vnet("vnet-sep", "westeurope", &["10.8.0.0/16"], json!([{ "name": "s", "properties": { "addressPrefix": "10.8.0.0/24",
                "serviceEndpointPolicies": [{ "id": id(RG, "Microsoft.Network/serviceEndpointPolicies", "sep1") }] } }])),
            plan("plan3", "P1v3", 1, json!({})),
            site("s-sep", "plan3", Some(&format!("{}/subnets/s", id(RG, "Microsoft.Network/virtualNetworks", "vnet-sep"))), "westeurope", cfg.clone()),
        ]),
        SEP_CODE,
    );
    lab.deploy_refused(
        RG,
        &template(vec![
            vnet(
                "vnet-v6",
                "westeurope",
                &["10.7.0.0/16", "fd00:db8::/48"],
                json!([{ "name": "s", "properties": { "addressPrefix": "10.7.0.0/24" } }]),
            ),
            plan("plan4", "P1v3", 1, json!({})),
            site(
                "s-v6",
                "plan4",
                Some(&format!(
                    "{}/subnets/s",
                    id(RG, "Microsoft.Network/virtualNetworks", "vnet-v6")
                )),
                "westeurope",
                cfg.clone(),
            ),
        ]),
        IPV6_CODE,
    );
    // ... unused: a subnet holding a VM's NIC cannot be delegated to the plan.
    lab.deploy_refused(
        RG,
        &template(vec![
            plan("plan5", "P1v3", 1, json!({})),
            site(
                "s-nic",
                "plan5",
                Some(&subnet_id("vnet1", "vms")),
                "westeurope",
                cfg.clone(),
            ),
        ]),
        "SubnetDelegationsCannotChangeWhenSubnetUsedByResource",
    );
    // ... an Azure Resource Manager VNet, not a classic one.
    lab.deploy_refused(
        RG,
        &template(vec![
            json!({ "type": "Microsoft.ClassicNetwork/virtualNetworks", "name": "classic1", "location": "westeurope",
                    "properties": { "addressSpace": { "addressPrefixes": ["10.6.0.0/16"] },
                                    "subnets": [{ "name": "s", "properties": { "addressPrefix": "10.6.0.0/24" } }] } }),
            plan("plan6", "P1v3", 1, json!({})),
            site("s-classic", "plan6", Some(&format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ClassicNetwork/virtualNetworks/classic1/subnets/s")), "westeurope", cfg.clone()),
        ]),
        "ClassicVirtualNetworkNotSupported",
    );
    // 4. One integration per Linux plan (web1 already uses `integration`).
    lab.deploy_refused(
        RG,
        &template(vec![site(
            "web2",
            "plan1",
            Some(&subnet_id("vnet1", "other")),
            "westeurope",
            cfg.clone(),
        )]),
        "MaxVnetIntegrationsExceeded",
    );
    // ... two on a Windows plan, never three.
    let win_plan = json!({ "type": "Microsoft.Web/serverfarms", "name": "winplan", "location": "westeurope", "kind": "windows",
                           "sku": { "name": "P1v3", "capacity": 1 } });
    let win_site = |name: &str, subnet: &str| {
        json!({ "type": "Microsoft.Web/sites", "name": name, "location": "westeurope", "kind": "app",
                "properties": { "serverFarmId": id(RG, "Microsoft.Web/serverfarms", "winplan"),
                                "virtualNetworkSubnetId": format!("{}/subnets/{subnet}", id(RG, "Microsoft.Network/virtualNetworks", "vnetw")) } })
    };
    let vnetw = vnet(
        "vnetw",
        "westeurope",
        &["10.4.0.0/16"],
        json!([
        { "name": "a", "properties": { "addressPrefix": "10.4.1.0/24" } },
        { "name": "b", "properties": { "addressPrefix": "10.4.2.0/24" } }]),
    );
    lab.deploy(
        RG,
        &template(vec![
            vnetw,
            win_plan.clone(),
            win_site("w1", "a"),
            win_site("w2", "b"),
        ]),
    );
    lab.deploy_refused(
        RG,
        &template(vec![vnet("vnet3", "westeurope", &["10.5.0.0/16"], json!([{ "name": "s", "properties": { "addressPrefix": "10.5.0.0/24" } }])),
            json!({ "type": "Microsoft.Web/sites", "name": "w3", "location": "westeurope", "kind": "app",
                    "properties": { "serverFarmId": id(RG, "Microsoft.Web/serverfarms", "winplan"),
                                    "virtualNetworkSubnetId": format!("{}/subnets/s", id(RG, "Microsoft.Network/virtualNetworks", "vnet3")) } })]),
        "MaxVnetIntegrationsExceeded",
    );
    // ... and an app has one integration at a time.
    lab.deploy_refused(
        RG,
        &template(vec![json!({ "type": "Microsoft.Web/sites/networkConfig", "name": "web1/virtualNetwork",
                               "properties": { "subnetResourceId": subnet_id("vnet1", "other"), "swiftSupported": true } })]),
        "SiteAlreadyHasVnetIntegration",
    );
    // 5. A VNet or subnet in use cannot be deleted.
    lab.refused(
        &[
            "resource",
            "delete",
            "--ids",
            &id(RG, "Microsoft.Network/virtualNetworks", "vnet1"),
        ],
        VNET_IN_USE_CODE,
    );
    lab.refused(
        &["resource", "delete", "--ids", &web1],
        "InUseSubnetCannotBeDeleted",
    );
    // ... nor resized (seed, "Subnet requirements": "subnet size can't be
    // changed after assignment"): the integration subnet and the VMs' one
    // keep their prefixes; the empty `big` may shrink.
    let resized = |integration: &str, vms: &str, big: &str| {
        vnet(
            "vnet1",
            "westeurope",
            &["10.0.0.0/16"],
            json!([
                { "name": "integration", "properties": { "addressPrefix": integration } },
                { "name": "big", "properties": { "addressPrefix": big } },
                { "name": "vms", "properties": { "addressPrefix": vms } },
                { "name": "other", "properties": { "addressPrefix": "10.0.4.0/24" } }
            ]),
        )
    };
    let err = lab.deploy_refused(
        RG,
        &template(vec![resized("10.0.1.0/27", "10.0.3.0/24", "10.0.2.0/24")]),
        "InUsePrefixCannotBeDeleted",
    );
    assert!(
        err.contains("IpPrefix 10.0.1.0/28 on Subnet integration"),
        "{err}"
    );
    let err = lab.deploy_refused(
        RG,
        &template(vec![resized("10.0.1.0/28", "10.0.3.0/25", "10.0.2.0/24")]),
        "InUsePrefixCannotBeDeleted",
    );
    assert!(err.contains("network interface"), "{err}");
    lab.deploy(
        RG,
        &template(vec![resized("10.0.1.0/28", "10.0.3.0/24", "10.0.2.0/25")]),
    );
    // 6. No subscription move while integrated.
    lab.refused(
        &[
            "resource",
            "move",
            "--ids",
            &id(RG, "Microsoft.Web/sites", "web1"),
            "--destination-group",
            "rg2",
            "--destination-subscription-id",
            "11111111-1111-1111-1111-111111111111",
        ],
        MOVE_CODE,
    );
    // 7. Permissions: a principal without join/action on the subnet.
    lab.cli_ok(&["ad", "user", "create", "--display-name", "alice"]);
    lab.cli_ok(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "alice",
        "--role",
        "Website Contributor",
        "--scope",
        &format!("/subscriptions/{SUB}/resourceGroups/{RG}"),
    ]);
    lab.refused(
        &[
            "--principal",
            "alice",
            "webapp",
            "vnet-integration",
            "add",
            "-g",
            RG,
            "-n",
            "web1",
            "--vnet",
            "vnet1",
            "--subnet",
            "other",
        ],
        "LinkedAuthorizationFailed",
    );
    // 8. Docker Compose apps.
    lab.deploy_refused(
        RG,
        &template(vec![site(
            "s-compose",
            "plan1",
            Some(&web1),
            "westeurope",
            json!({ "linuxFxVersion": "COMPOSE|dmVyc2lvbjogJzMn" }),
        )]),
        COMPOSE_CODE,
    );
}

// Codes whose exact names the rules define (docs/errors.md).
const TIER_CODE: &str = "VnetIntegrationNotSupportedForSku";
const ASE_CODE: &str = "VnetIntegrationNotSupportedInAppServiceEnvironment";
const LEGACY_CODE: &str = "VnetIntegrationNotSupportedOnLegacyDeployment";
const SEP_CODE: &str = "SubnetHasServiceEndpointPolicies";
const IPV6_CODE: &str = "VirtualNetworkHasIPv6AddressSpace";
const VNET_IN_USE_CODE: &str = "InUseVirtualNetworkCannotBeDeleted";
const MOVE_CODE: &str = "CannotMoveResourceWithVnetIntegration";
const COMPOSE_CODE: &str = "VnetIntegrationNotSupportedForDockerCompose";

#[test]
fn permissions_and_provider_registration() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(1, "integration"));
    let rg_scope = format!("/subscriptions/{SUB}/resourceGroups/{RG}");
    lab.cli_ok(&["ad", "user", "create", "--display-name", "bob"]);
    lab.cli_ok(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "bob",
        "--role",
        "Website Contributor",
        "--scope",
        &rg_scope,
    ]);
    let add = [
        "--principal",
        "bob",
        "webapp",
        "vnet-integration",
        "remove",
        "-g",
        RG,
        "-n",
        "web1",
    ];
    // Disconnecting needs only the site; integrating needs the subnet's join/action.
    lab.cli_ok(&add);
    let join = [
        "--principal",
        "bob",
        "webapp",
        "vnet-integration",
        "add",
        "-g",
        RG,
        "-n",
        "web1",
        "--vnet",
        "vnet1",
        "--subnet",
        "integration",
    ];
    lab.refused(&join, "LinkedAuthorizationFailed");
    lab.cli_ok(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "bob",
        "--role",
        "Network Contributor",
        "--scope",
        &id(RG, "Microsoft.Network/virtualNetworks", "vnet1"),
    ]);
    lab.cli_ok(&join);
    let list = lab.cli_json(&["webapp", "vnet-integration", "list", "-g", RG, "-n", "web1"]);
    assert_eq!(list[0]["name"], "integration", "{list}");

    // A VNet in another subscription needs Microsoft.Web registered there.
    let sub2 = "22222222-2222-2222-2222-222222222222";
    let vnet2 = json!({
        "type": "Microsoft.Network/virtualNetworks", "name": "vnet2", "location": "westeurope",
        "properties": { "addressSpace": { "addressPrefixes": ["10.20.0.0/16"] },
                        "subnets": [{ "name": "int", "properties": { "addressPrefix": "10.20.1.0/24" } }] } });
    let path = lab.state_dir().parent().unwrap().join("vnet2.json");
    std::fs::write(&path, serde_json::to_vec(&template(vec![vnet2])).unwrap()).unwrap();
    lab.cli_ok(&[
        "deploy",
        "-g",
        "net",
        "--subscription",
        sub2,
        "-f",
        path.to_str().unwrap(),
    ]);
    let subnet2 = format!("/subscriptions/{sub2}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet2/subnets/int");
    lab.cli_ok(&[
        "webapp",
        "vnet-integration",
        "remove",
        "-g",
        RG,
        "-n",
        "web1",
    ]);
    let cross = [
        "webapp",
        "vnet-integration",
        "add",
        "-g",
        RG,
        "-n",
        "web1",
        "--vnet",
        "x",
        "--subnet",
        &subnet2,
    ];
    lab.refused(&cross, "MissingSubscriptionRegistration");
    lab.cli_ok(&[
        "provider",
        "register",
        "--namespace",
        "Microsoft.Web",
        "--subscription",
        sub2,
    ]);
    lab.cli_ok(&cross);
}

#[test]
fn disconnect_restarts_the_app_and_keeps_the_vnet() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(1, "integration"));
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    lab.exec_ok(&["--app", "web1"], &[&probe, "tcp", "10.0.3.4", "9000"]);
    let vnet_before = lab.show(&id(RG, "Microsoft.Network/virtualNetworks", "vnet1"));
    let pid = lab.app_pid("web1", 0);

    lab.cli_ok(&[
        "webapp",
        "vnet-integration",
        "remove",
        "-g",
        RG,
        "-n",
        "web1",
    ]);
    assert_ne!(
        pid,
        lab.app_pid("web1", 0),
        "disconnecting restarts the app"
    );
    let list = lab.cli_json(&["webapp", "vnet-integration", "list", "-g", RG, "-n", "web1"]);
    assert_eq!(list, json!([]));
    let vnet_after = lab.show(&id(RG, "Microsoft.Network/virtualNetworks", "vnet1"));
    assert_eq!(
        vnet_before["properties"]["subnets"][0]["properties"]["addressPrefix"],
        vnet_after["properties"]["subnets"][0]["properties"]["addressPrefix"]
    );
    assert!(
        vnet_after["properties"]["subnets"][0]["properties"]["delegations"]
            .to_string()
            .contains("Microsoft.Web/serverFarms"),
        "the delegation stays"
    );
    // The app no longer reaches the VNet.
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe, "tcp", "10.0.3.4", "9000", "1000"],
    );
    assert!(!out.status.success(), "a disconnected app reached the VNet");
    // And the VNet can be deleted once nothing uses it.
    lab.cli_ok(&[
        "resource",
        "delete",
        "--ids",
        &id(RG, "Microsoft.Compute/virtualMachines", "vm1"),
    ]);
    lab.cli_ok(&[
        "resource",
        "delete",
        "--ids",
        &id(RG, "Microsoft.Network/networkInterfaces", "vm1-nic"),
    ]);
    lab.cli_ok(&[
        "resource",
        "delete",
        "--ids",
        &id(RG, "Microsoft.Network/virtualNetworks", "vnet1"),
    ]);
    assert!(
        lab.namespaces().iter().all(|n| !n.contains("-vnet-")),
        "the fabric went with the VNet: {:?}",
        lab.namespaces()
    );
}

#[test]
fn deleting_the_app_before_disconnecting_orphans_the_subnet_until_the_recovery() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(1, "integration"));
    let web1 = id(RG, "Microsoft.Web/sites", "web1");
    let plan1 = id(RG, "Microsoft.Web/serverfarms", "plan1");
    let subnet = subnet_id("vnet1", "integration");
    lab.cli_ok(&["resource", "delete", "--ids", &web1]);
    lab.cli_ok(&["resource", "delete", "--ids", &plan1]);
    // The delegation and the service association link stay behind.
    let vnet = lab
        .show(&id(RG, "Microsoft.Network/virtualNetworks", "vnet1"))
        .to_string();
    assert!(vnet.contains("AppServiceLink"), "{vnet}");
    lab.refused(&["resource", "delete", "--ids", &subnet], ORPHAN_CODE);
    // The seed's recovery: same names, integrate, disconnect, delete.
    let t = small_lab(1, "integration");
    lab.deploy(RG, &t);
    lab.cli_ok(&[
        "webapp",
        "vnet-integration",
        "remove",
        "-g",
        RG,
        "-n",
        "web1",
    ]);
    lab.cli_ok(&["resource", "delete", "--ids", &web1]);
    lab.cli_ok(&["resource", "delete", "--ids", &plan1]);
    lab.cli_ok(&["resource", "delete", "--ids", &subnet]);
    let vnet = lab
        .show(&id(RG, "Microsoft.Network/virtualNetworks", "vnet1"))
        .to_string();
    assert!(!vnet.contains("10.0.1.0/28"), "{vnet}");
}

const ORPHAN_CODE: &str = "InUseSubnetCannotBeDeleted";

/// A Windows plan holds two integrations (two vNICs per worker): each app
/// reaches its own VNet from an address of its own integration subnet.
#[test]
fn a_windows_plan_integrates_two_subnets_with_two_vnics() {
    let Some(mut lab) = Lab::start() else { return };
    let vnet_id = |v: &str| id(RG, "Microsoft.Network/virtualNetworks", v);
    let mut resources = Vec::new();
    for (v, prefix) in [("va", "10.1"), ("vb", "10.2")] {
        resources.push(vnet(
            v,
            "westeurope",
            &[&format!("{prefix}.0.0/16")],
            json!([
                { "name": "int", "properties": { "addressPrefix": format!("{prefix}.1.0/24") } },
                { "name": "vms", "properties": { "addressPrefix": format!("{prefix}.2.0/24") } }
            ]),
        ));
        resources.push(json!({ "type": "Microsoft.Network/networkInterfaces", "name": format!("{v}-nic"), "location": "westeurope",
            "properties": { "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                "subnet": { "id": format!("{}/subnets/vms", vnet_id(v)) },
                "privateIPAllocationMethod": "Static", "privateIPAddress": format!("{prefix}.2.4") } }] } }));
        resources.push(json!({ "type": "Microsoft.Compute/virtualMachines", "name": format!("{v}-vm"), "location": "westeurope",
            "properties": { "networkProfile": { "networkInterfaces": [{ "id": id(RG, "Microsoft.Network/networkInterfaces", &format!("{v}-nic")) }] } } }));
    }
    resources.push(json!({ "type": "Microsoft.Web/serverfarms", "name": "winplan", "location": "westeurope", "kind": "windows",
                           "sku": { "name": "P1v3", "capacity": 1 } }));
    for (site, v) in [("wa", "va"), ("wb", "vb")] {
        resources.push(json!({ "type": "Microsoft.Web/sites", "name": site, "location": "westeurope", "kind": "app",
            "properties": { "serverFarmId": id(RG, "Microsoft.Web/serverfarms", "winplan"),
                            "virtualNetworkSubnetId": format!("{}/subnets/int", vnet_id(v)) } }));
    }
    lab.deploy(RG, &template(resources));
    let probe = probe_bin();
    lab.spawn(&["--vm", "va-vm"], &[&probe, "serve-tcp", "9000"]);
    lab.spawn(&["--vm", "vb-vm"], &[&probe, "serve-tcp", "9000"]);
    let a = peer_ip(&lab.exec_ok(&["--app", "wa"], &[&probe, "tcp", "10.1.2.4", "9000"]));
    let b = peer_ip(&lab.exec_ok(&["--app", "wb"], &[&probe, "tcp", "10.2.2.4", "9000"]));
    assert!(
        a.starts_with("10.1.1."),
        "wa reaches va from its integration subnet: {a}"
    );
    assert!(
        b.starts_with("10.2.1."),
        "wb reaches vb from its integration subnet: {b}"
    );
    assert_eq!(
        lab.exec_ok(&["--app", "wa"], &["printenv", "WEBSITE_PRIVATE_IP"])
            .trim(),
        a
    );
    assert_eq!(
        lab.exec_ok(&["--app", "wb"], &["printenv", "WEBSITE_PRIVATE_IP"])
            .trim(),
        b
    );
    // Each app's integration is its own: wa does not reach vb's VNet.
    let out = lab.exec(
        &["--app", "wa"],
        &[&probe, "tcp", "10.2.2.4", "9000", "1000"],
    );
    assert!(
        !out.status.success(),
        "wa must not reach the other integration's VNet"
    );
}

/// Issue 10, item 0: a name that breaks Azure's rules is refused before it
/// is committed; a resource that still fails to apply (committed by an
/// older version, before names were checked) fails alone: it shows
/// `provisioningState: Failed` and `lab status` names it, while unrelated
/// changes go on with real traffic, and it can be deleted.
#[test]
fn poison_names_are_refused_and_a_failing_resource_fails_alone() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(1, "integration"));
    let long = "a".repeat(300);
    for bad in [long.as_str(), "web\u{0}one"] {
        lab.deploy_refused(
            RG,
            &template(vec![site(bad, "plan1", None, "westeurope", json!({}))]),
            "InvalidResourceName",
        );
    }
    // An older version committed the 300-character site.
    lab.stop_daemon();
    let path = lab.state_dir().join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let bad_id = id(RG, "Microsoft.Web/sites", &long);
    let mut bad = site(
        &long,
        "plan1",
        None,
        "westeurope",
        json!({ "appCommandLine": "sleep 100000" }),
    );
    bad["id"] = json!(bad_id);
    bad["properties"]["serverFarmId"] = json!(id(RG, "Microsoft.Web/serverfarms", "plan1"));
    state["resources"][bad_id.to_ascii_lowercase()] = bad;
    // ... and one with a NUL in its name.
    let nul_id = id(RG, "Microsoft.Web/sites", "web\u{0}one");
    let mut nul = site(
        "web\u{0}one",
        "plan1",
        None,
        "westeurope",
        json!({ "appCommandLine": "sleep 100000" }),
    );
    nul["id"] = json!(nul_id);
    nul["properties"]["serverFarmId"] = json!(id(RG, "Microsoft.Web/serverfarms", "plan1"));
    state["resources"][nul_id.to_ascii_lowercase()] = nul;
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    // The daemon starts: the rest of the lab is applied, the bad site fails alone.
    lab.start_daemon();
    let status = lab.cli_json(&["lab", "status"]);
    let failed = status["failedResources"]
        .as_array()
        .expect("failedResources");
    assert_eq!(failed.len(), 2, "the long name and the NUL: {status:#}");
    let long_failed = failed
        .iter()
        .find(|f| f["id"] == bad_id.to_ascii_lowercase())
        .unwrap_or_else(|| panic!("{status:#}"));
    assert!(
        long_failed["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("File name too long"),
        "{status:#}"
    );
    assert!(status["totals"]["lastError"].is_string(), "{status:#}");
    assert_eq!(
        lab.show(&bad_id)["properties"]["provisioningState"],
        "Failed"
    );
    assert_eq!(
        lab.show(&id(RG, "Microsoft.Web/sites", "web1"))["properties"]["provisioningState"],
        "Succeeded"
    );
    // An unrelated deploy is committed and applied: a new VM answers.
    let mut more = small_lab(1, "integration");
    more["resources"].as_array_mut().unwrap().extend(vm_in(
        RG,
        "vm2",
        &subnet_id("vnet1", "vms"),
        "10.0.3.5",
    ));
    lab.deploy(RG, &more);
    let probe = probe_bin();
    lab.spawn(&["--vm", "vm2"], &[&probe, "serve-tcp", "9000"]);
    let seen = peer_ip(&lab.exec_ok(&["--vm", "vm1"], &[&probe, "tcp", "10.0.3.5", "9000"]));
    assert_eq!(seen, "10.0.3.4");
    // The bad sites can be deleted (a NUL written %00, as in a URL), and
    // then nothing has failed.
    lab.cli_ok(&["resource", "delete", "--ids", &bad_id]);
    lab.cli_ok(&[
        "resource",
        "delete",
        "--ids",
        &nul_id.replace('\u{0}', "%00"),
    ]);
    let status = lab.cli_json(&["lab", "status"]);
    assert_eq!(status["failedResources"], json!([]), "{status:#}");
    assert!(status["totals"]["lastError"].is_null(), "{status:#}");
}

/// Issue 10, item 0: the lab's own commands go through the same
/// authorization as resource requests. A Reader reads the lab's status but
/// can't take it down, reconcile it, `exec` into an app or create users,
/// and each refusal changes neither the store nor the kernel; the owner can.
#[test]
fn a_reader_cannot_take_the_lab_down() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(1, "integration"));
    lab.cli_ok(&["ad", "user", "create", "--display-name", "rita"]);
    lab.cli_ok(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "rita",
        "--role",
        "Reader",
        "--scope",
        "/",
    ]);
    let as_rita = |args: &[&str]| -> Vec<String> {
        ["--principal", "rita"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    };
    let status = lab.cli_json(
        &as_rita(&["lab", "status"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(status["generation"].as_u64().unwrap() > 0, "{status}");
    for args in [
        vec!["down", "--purge"],
        vec!["down"],
        vec!["lab", "reconcile"],
        vec!["exec", "--app", "web1", "--", "true"],
        vec!["exec", "--vm", "vm1", "--", "true"],
        vec!["ad", "user", "create", "--display-name", "mallory"],
    ] {
        let args = as_rita(&args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.refused(&args, "AuthorizationFailed");
    }
    assert!(!lab.namespaces().is_empty(), "the lab is still there");
    // Someone without any role can't even read it.
    lab.refused(
        &["--principal", "nobody", "lab", "status"],
        "AuthorizationFailed",
    );
    // The owner can.
    lab.cli_ok(&["down"]);
    assert!(lab.namespaces().is_empty(), "{:?}", lab.namespaces());
}

/// Issue 10, item 0: the state holds app settings and secrets, so it is
/// root's alone: the state directory 0700, its files 0600. Another user
/// can't read an app setting, through the directory or from the file.
#[test]
fn state_files_are_unreadable_by_another_user() {
    use std::os::unix::fs::PermissionsExt;
    let Some(lab) = Lab::start() else { return };
    let mut t = small_lab(1, "integration");
    t["resources"][2]["properties"]["siteConfig"]["appSettings"] =
        json!([{ "name": "DB_PASSWORD", "value": "s3cret-value" }]);
    lab.deploy(RG, &t);
    let dir = lab.state_dir();
    let state = dir.join("state.json");
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .contains("s3cret-value"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "state directory");
    assert_eq!(mode(&state), 0o600, "state.json");
    for sub in ["logs", "ca"] {
        let p = dir.join(sub);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{} is open to others", p.display());
        }
    }
    // As nobody: neither the file nor a copy of its directory listing.
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(args)
            .output()
            .expect("setpriv")
    };
    let out = as_nobody(&["cat", state.to_str().unwrap()]);
    assert!(!out.status.success(), "nobody read the state");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret-value"));
    // Even a state file an older version left 0644 is closed at the next start.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut lab = lab;
    lab.stop_daemon();
    lab.start_daemon();
    assert_eq!((mode(&dir), mode(&state)), (0o700, 0o600));
    // The app still starts and reads its resolv.conf.
    lab.exec_ok(&["--app", "web1"], &["cat", "/etc/resolv.conf"]);
}

/// Issue 15, hostile and broken input: ARM's template limits, the request
/// size, and a damaged state file, each refused with a plain error that
/// names the limit or the file, and nothing changed.
#[test]
fn oversized_input_and_a_damaged_state_are_refused_by_name() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(1, "integration"));

    // More than 800 resources once the copies are counted.
    let nsgs = |name: &str| {
        json!({ "type": "Microsoft.Network/networkSecurityGroups", "name": format!("[concat('{name}', copyIndex())]"),
                "location": "westeurope", "copy": { "name": name, "count": 500 }, "properties": {} })
    };
    let err = lab.deploy_refused(RG, &template(vec![nsgs("a"), nsgs("b")]), "InvalidTemplate");
    assert!(
        err.contains("1000 resources") && err.contains("800"),
        "{err}"
    );

    // A template over 4 MB: refused by the CLI before it is sent.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    let mut t = small_lab(1, "integration");
    t["variables"] = json!({ "padding": "x".repeat(5 * 1024 * 1024) });
    std::fs::write(&big, t.to_string()).unwrap();
    let err = lab.refused(
        &["deploy", "-g", RG, "-f", big.to_str().unwrap()],
        "DeploymentJobSizeExceeded",
    );
    assert!(err.contains("4 MB"), "{err}");

    // A 20 MB request body straight to the API: ARM's JSON error naming the
    // limit, answered without reading it all, and the daemon still serves.
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        format!("{{\"x\": \"{}\"}}", "y".repeat(20 * 1024 * 1024)),
    )
    .unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-X", "PUT", "--unix-socket"])
        .arg(lab.socket())
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .args(["-w", "\n%{http_code}"])
        .arg(format!(
            "http://lab/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/huge"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim_end().ends_with("413"), "{text}");
    assert!(
        text.contains("RequestContentTooLarge") && text.contains("12 MB"),
        "{text}"
    );
    assert!(lab.cli_json(&["lab", "status"])["generation"].is_u64());

    // A state file damaged outside the daemon: the daemon refuses to start
    // on it, naming the file and the state kept beside it (the one before
    // the last change).
    lab.cli_ok(&[
        "network", "nsg", "create", "-g", RG, "-n", "nsg-last", "-o", "none",
    ]);
    lab.stop_daemon();
    let state = lab.state_dir().join("state.json");
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, &good[..good.len() / 3]).unwrap();
    let mut serve = lab.command();
    serve.arg("serve");
    let out = serve.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a daemon started on a damaged state");
    assert!(
        err.contains(state.to_str().unwrap()) && err.contains("state.prev.json"),
        "{err}"
    );
    // The way out it names works: the previous good state (without the last NSG).
    std::fs::rename(lab.state_dir().join("state.prev.json"), &state).unwrap();
    lab.start_daemon();
    let nsg = lab.cli(&["network", "nsg", "show", "-g", RG, "-n", "nsg-last"]);
    assert!(!nsg.status.success(), "the previous state has no nsg-last");
    assert!(lab.cli_json(&["lab", "status"])["generation"].is_u64());
}

/// METHOD PATH on the API socket as root: (status, JSON body).
fn api(
    lab: &Lab,
    method: &str,
    path: &str,
    headers: &[&str],
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let (code, body) = lab.api_call(&[], method, path, headers, body);
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Issue 15, concurrency: ARM's etags. Every resource has one (a subnet
/// shares its VNet's); a write with a stale If-Match, or If-None-Match: *
/// on something that exists, is refused with 412 and changes nothing.
#[test]
fn etags_make_conflicting_writes_fail_instead_of_losing_an_update() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(1, "integration"));
    let nsg = format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/n1");
    let body = r#"{"location": "westeurope", "properties": {}}"#;
    // Create only if absent: the first succeeds, the second is refused.
    let (code, v) = api(&lab, "PUT", &nsg, &["If-None-Match: *"], Some(body));
    assert_eq!(code, 200, "{v}");
    let first = v["etag"].as_str().expect("etag").to_string();
    let (code, v) = api(&lab, "PUT", &nsg, &["If-None-Match: *"], Some(body));
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (412, Some("PreconditionFailed")),
        "{v}"
    );
    // GET shows the same etag; a subnet shares its VNet's.
    assert_eq!(api(&lab, "GET", &nsg, &[], None).1["etag"], first.as_str());
    let vnet = lab.show(&net("virtualNetworks", "vnet1"));
    let subnet = lab.show(&subnet_id("vnet1", "integration"));
    assert!(
        vnet["etag"].as_str().is_some() && vnet["etag"] == subnet["etag"],
        "{vnet} {subnet}"
    );

    // Two writers read the same etag; the second write loses, visibly.
    let rule = |port: u16| {
        format!(
            r#"{{"location": "westeurope", "properties": {{"securityRules": [{{"name": "r{port}", "properties": {{
            "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*",
            "destinationPortRange": "{port}"}}}}]}}}}"#
        )
    };
    let if_match = format!("If-Match: {first}");
    let (code, v) = api(&lab, "PUT", &nsg, &[&if_match], Some(&rule(80)));
    assert_eq!(code, 200, "{v}");
    let second = v["etag"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let (code, v) = api(&lab, "PUT", &nsg, &[&if_match], Some(&rule(443)));
    assert_eq!(code, 412, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&second),
        "{v}"
    );
    let now = api(&lab, "GET", &nsg, &[], None).1;
    assert_eq!(
        now["properties"]["securityRules"][0]["name"], "r80",
        "{now}"
    );
    // A DELETE with the stale etag is refused too; with the current one it goes.
    assert_eq!(api(&lab, "DELETE", &nsg, &[&if_match], None).0, 412);
    assert_eq!(
        api(
            &lab,
            "DELETE",
            &nsg,
            &[&format!("If-Match: {second}")],
            None
        )
        .0,
        200
    );
    assert_eq!(api(&lab, "GET", &nsg, &[], None).0, 404);
}

/// Issue 15: a namespace deleted from outside is noticed without polling
/// the kernel's contents (one directory read a second) and rebuilt, with
/// its links, by a proportional apply; an audit afterwards finds nothing.
#[test]
fn a_namespace_deleted_by_hand_is_back_within_a_second_or_two() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &small_lab(2, "integration"));
    let list = || {
        let out = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let victim = list()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .find(|n| n.starts_with(&format!("{}-wk-", lab.name)))
        .expect("a worker namespace")
        .to_string();
    assert!(std::process::Command::new("ip")
        .args(["netns", "del", &victim])
        .status()
        .unwrap()
        .success());
    let started = std::time::Instant::now();
    while !list()
        .lines()
        .any(|l| l.split_whitespace().next() == Some(victim.as_str()))
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{victim} was not rebuilt"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("{victim} back after {:?}", started.elapsed());
    lab.assert_reconcile_writes_nothing();
}

/// Removes namespaces a test made by hand, even when it fails.
struct ForeignNamespaces(Vec<String>);

impl Drop for ForeignNamespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", n])
                .status();
        }
    }
}

#[test]
fn exec_reaches_only_namespaces_the_lab_made() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    // One namespace that is not the lab's, one that borrows its prefix
    // without being in its plan.
    let foreign = format!("foreign-{}", lab.name);
    let rogue = format!("{}-rogue", lab.name);
    let _cleanup = ForeignNamespaces(vec![foreign.clone(), rogue.clone()]);
    for n in [&foreign, &rogue] {
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", n])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let marker = lab.state_dir().with_file_name("exec-marker");
    let marker_s = marker.to_str().unwrap();
    // The positive control: a real target runs.
    lab.exec_ok(&["--vm", "vm1"], &["true"]);

    let long = "a".repeat(5000);
    let web1 = id(RG, "Microsoft.Web/sites", "web1");
    let traversal_id = format!("{web1}/../../../../../../../run/netns/{foreign}");
    let foreign_path = format!("/run/netns/{foreign}");
    let attempts: Vec<(&str, &str)> = vec![
        ("--app", "../../x"),
        ("--app", "web1/../web2"),
        ("--app", &traversal_id),
        ("--vm", &foreign_path),
        ("--vm", &foreign),
        ("--host", &rogue),
        ("--gateway", &rogue),
        ("--vm", "."),
        ("--vm", ".."),
        ("--vm", "/"),
        ("--vm", "vm1\n"),
        ("--host", &long),
        ("--site", "../../../proc/1/ns/net"),
    ];
    for (flag, name) in &attempts {
        let out = lab.exec(&[flag, name], &["touch", marker_s]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "exec {flag} {name:?} ran: {err}");
        assert!(!marker.exists(), "exec {flag} {name:?} ran its program");
        assert!(
            err.starts_with("ERROR: ("),
            "exec {flag} {name:?}: not Azure's error: {err}"
        );
    }
    // NUL and encoded slashes reach the API only through the query string.
    for q in [
        "vm=vm1%00x",
        "host=..%2F..%2Fproc%2F1%2Fns%2Fnet",
        "app=%2Frun%2Fnetns%2Fforeign",
        "vm=vm1&host=host1",
        "app=web1&instance=99",
        "app=web1&instance=-1",
    ] {
        let (status, body) = lab.api_call(&[], "GET", &format!("/lab/exec?{q}"), &[], None);
        assert!(
            (400..500).contains(&status),
            "/lab/exec?{q} answered {status}: {body}"
        );
        assert!(body.contains("\"code\""), "/lab/exec?{q}: {body}");
    }
}

/// Unmounts what a test mounted (in the sandbox's own mount namespace),
/// even when it fails.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn sh(cmd: &str) {
    let ok = std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .unwrap();
    assert!(ok.success(), "{cmd}");
}

/// A write the store can't commit fails with a plain error, and nothing of
/// it reaches the kernel; once the directory is fixed the same request works.
fn refused_until_fixed(lab: &Lab, name: &str, why: &str, fix: impl FnOnce()) {
    let kernel = kernel_snapshot(&lab.name);
    let store = store_bytes(lab);
    let out = lab.cli(&["network", "nsg", "create", "-g", RG, "-n", name]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{name}: the write succeeded: {err} {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains("StateNotCommitted") && err.contains(why),
        "not a plain error naming {why:?}: {err}"
    );
    assert_eq!(store_bytes(lab), store, "the store changed");
    assert_eq!(kernel_snapshot(&lab.name), kernel, "the kernel changed");
    let show = lab.cli(&[
        "resource",
        "show",
        "--ids",
        &id(RG, "Microsoft.Network/networkSecurityGroups", name),
    ]);
    assert!(!show.status.success(), "the refused NSG exists");
    fix();
    lab.cli_ok(&["network", "nsg", "create", "-g", RG, "-n", name]);
    lab.assert_reconcile_writes_nothing();
}

#[test]
fn a_full_or_read_only_state_directory_fails_the_request_and_applies_nothing() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    let state = lab.state_dir();
    let s = state.display().to_string();

    // Read-only: the directory bound on itself, read-only.
    sh(&format!(
        "mount --bind {s} {s} && mount -o remount,ro,bind {s}"
    ));
    let ro = Mounted(state.clone());
    refused_until_fixed(&lab, "nsg-ro", "Read-only file system", || drop(ro));

    // Full: the directory on a small tmpfs of its own, then filled up.
    lab.stop_daemon();
    let copy = state.with_file_name("state-copy");
    sh(&format!("cp -a {s} {}", copy.display()));
    let used_kib: u64 = String::from_utf8(
        std::process::Command::new("du")
            .args(["-sk", &s])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .split_whitespace()
    .next()
    .unwrap()
    .parse()
    .unwrap();
    sh(&format!(
        "mount -t tmpfs -o size={}k,mode=0700 vnet-e2e-full {s} && cp -a {}/. {s}/",
        used_kib * 3 + 512,
        copy.display()
    ));
    let _full = Mounted(state.clone());
    lab.start_daemon();
    lab.cli_ok(&["lab", "status"]);
    // A commit first replaces state.prev.json, whose pages it would reuse:
    // a second link keeps them taken, so the disk is full for the new state.
    std::fs::hard_link(state.join("state.prev.json"), state.join("prev-held")).unwrap();
    // dd stops at ENOSPC, which is the point.
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", &format!("of={s}/filler"), "bs=4k"])
        .stderr(std::process::Stdio::null())
        .status();
    let filler = state.join("filler");
    refused_until_fixed(&lab, "nsg-full", "No space left on device", || {
        std::fs::remove_file(&filler).unwrap();
        std::fs::remove_file(state.join("prev-held")).unwrap();
    });
    // The daemon goes before its directory is unmounted.
    lab.stop_daemon();
}
