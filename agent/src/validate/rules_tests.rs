//! One test per integration rule of issue 3 (see docs/errors.md).

use serde_json::{json, Value};

use super::fixtures::{assert_refused, code, deploy, fresh, plan, rid, site, subnet, vnet};
use crate::model::{AzureError, LabState};

/// A VNet with an empty /26 integration subnet and a /24 for VMs.
fn net() -> Value {
    vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([
            subnet("int", "10.0.1.0/26"),
            subnet("int2", "10.0.2.0/26"),
            subnet("vms", "10.0.3.0/24")
        ]),
    )
}

/// A plan with this SKU and deployment generation (None: not written).
fn plan_gen(name: &str, sku: &str, generation: Option<&str>) -> Value {
    let mut p = plan(name, sku, 1);
    if let Some(g) = generation {
        p["properties"] = json!({ "deploymentGeneration": g });
    }
    p
}

/// The VNet, then `extra`.
fn with(extra: Value) -> Result<LabState, AzureError> {
    let mut all = vec![net()];
    all.extend(extra.as_array().unwrap().iter().cloned());
    fresh(Value::Array(all))
}

fn integrated(plan_sku: &str, generation: Option<&str>) -> Result<LabState, AzureError> {
    with(json!([
        plan_gen("p", plan_sku, generation),
        site("w1", "p", Some("v/subnets/int"))
    ]))
}

fn stored_generation(s: &LabState, plan: &str) -> String {
    s.resources[&rid(&format!("Microsoft.Web/serverfarms/{plan}")).key()].properties
        ["deploymentGeneration"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn tier_free_and_shared_refused() {
    for sku in ["F1", "D1", "Y1"] {
        let e = integrated(sku, None).unwrap_err();
        assert_eq!(e.code, "VnetIntegrationNotSupportedForSku", "{sku}");
        assert!(
            e.message.contains("'w1'") && e.message.contains("'p'"),
            "{}",
            e.message
        );
    }
}

#[test]
fn tier_isolated_refused_app_service_environment() {
    for sku in ["I1", "I1v2"] {
        let e = integrated(sku, None).unwrap_err();
        assert_eq!(
            e.code, "VnetIntegrationNotSupportedInAppServiceEnvironment",
            "{sku}"
        );
        assert!(
            e.message.contains("App Service Environment"),
            "{}",
            e.message
        );
    }
}

#[test]
fn tier_basic_standard_only_on_current_deployment() {
    for sku in ["B1", "S1", "P1"] {
        assert_eq!(code(integrated(sku, None)), "Ok", "{sku} default");
        assert_eq!(
            code(integrated(sku, Some("Current"))),
            "Ok",
            "{sku} current"
        );
        let e = integrated(sku, Some("Legacy")).unwrap_err();
        assert_eq!(
            e.code, "VnetIntegrationNotSupportedOnLegacyDeployment",
            "{sku}"
        );
        assert!(
            e.message.contains("Premium v2") && e.message.contains("Premium v3"),
            "{}",
            e.message
        );
    }
    // The generation is written back so `show` tells it.
    assert_eq!(
        stored_generation(&integrated("S1", None).unwrap(), "p"),
        "Current"
    );
    assert_eq!(
        code(integrated("S1", Some("Sometime"))),
        "InvalidRequestFormat"
    );
}

#[test]
fn tier_premium_v2_v3_elastic_accepted_everywhere() {
    for sku in ["P1v2", "P1v3", "P1mv3", "EP1"] {
        assert_eq!(code(integrated(sku, Some("Legacy"))), "Ok", "{sku}");
    }
}

#[test]
fn tier_premium_v3_lands_on_current_and_keeps_it_scaled_down() {
    let s = with(json!([plan_gen("p", "P1v3", Some("Legacy"))])).unwrap();
    assert_eq!(stored_generation(&s, "p"), "Current");
    // Scaled down to Standard (the template still says Legacy): keeps Current.
    let s = deploy(
        &s,
        json!([
            plan_gen("p", "S1", Some("Legacy")),
            site("w1", "p", Some("v/subnets/int"))
        ]),
    )
    .unwrap();
    assert_eq!(stored_generation(&s, "p"), "Current");
    // A plan created on Legacy stays there and cannot scale up to Premium v3.
    let s = with(json!([plan_gen("q", "S1", Some("Legacy"))])).unwrap();
    assert_eq!(stored_generation(&s, "q"), "Legacy");
    assert_eq!(
        code(deploy(&s, json!([plan_gen("q", "P1v3", None)]))),
        "SkuNotAvailableOnLegacyDeployment"
    );
    assert_eq!(code(deploy(&s, json!([plan_gen("q", "P1v2", None)]))), "Ok");
}

#[test]
fn site_kinds_all_supported() {
    for kind in [
        "app",
        "app,linux",
        "functionapp",
        "functionapp,linux",
        "functionapp,workflowapp",
        "app,linux,container",
    ] {
        let mut w = site("w1", "p", Some("v/subnets/int"));
        w["kind"] = json!(kind);
        assert_eq!(code(with(json!([plan("p", "S1", 1), w]))), "Ok", "{kind}");
    }
}

#[test]
fn docker_compose_refused() {
    let mut w = site("w1", "p", Some("v/subnets/int"));
    w["properties"]["siteConfig"] = json!({"linuxFxVersion": "compose|dmVyc2lvbjogJzMn"});
    let e = with(json!([plan("p", "P1v3", 1), w.clone()])).unwrap_err();
    assert_eq!(e.code, "VnetIntegrationNotSupportedForDockerCompose");
    assert!(
        e.message.contains("'w1'") && e.message.contains("Docker Compose"),
        "{}",
        e.message
    );
    // Without integration a Compose app is fine.
    w["properties"]
        .as_object_mut()
        .unwrap()
        .remove("virtualNetworkSubnetId");
    assert_eq!(code(with(json!([plan("p", "P1v3", 1), w]))), "Ok");
}

#[test]
fn region_must_match_naming_both_regions() {
    let mut w = site("w1", "p", Some("v/subnets/int"));
    w["location"] = json!("northeurope");
    let mut p = plan("p", "S1", 1);
    p["location"] = json!("North Europe");
    let e = with(json!([p, w])).unwrap_err();
    assert_eq!(e.code, "LocationMismatch");
    assert!(
        e.message.contains("northeurope")
            && e.message.contains("westeurope")
            && e.message.contains("'v'"),
        "{}",
        e.message
    );
}

#[test]
fn ipv6_vnets_valid_but_not_for_integration() {
    let dual = vnet(
        "v6",
        json!(["10.6.0.0/16", "fd00:db8:6::/48"]),
        json!([{"name": "int", "properties": {"addressPrefixes": ["10.6.1.0/26", "fd00:db8:6:1::/64"]}},
               subnet("v4only", "10.6.2.0/26")]),
    );
    let s = fresh(json!([dual.clone()])).unwrap();
    let inv = crate::model::Inventory::parse(&s.resources).unwrap();
    assert_eq!(inv.vnets[0].ipv6_prefixes.len(), 1);
    assert_eq!(inv.vnets[0].subnets[0].ipv6_prefixes.len(), 1);
    for subnet_name in ["int", "v4only"] {
        let e = deploy(
            &s,
            json!([
                plan("p", "S1", 1),
                site("w1", "p", Some(&format!("v6/subnets/{subnet_name}")))
            ]),
        )
        .unwrap_err();
        assert_eq!(e.code, "VirtualNetworkHasIPv6AddressSpace");
        assert!(
            e.message.contains("'v6'") && e.message.contains("fd00:db8:6::/48"),
            "{}",
            e.message
        );
    }
    // IPv6 subnets are /64 inside the VNet's IPv6 space.
    let bad_len = vnet(
        "v6",
        json!(["10.6.0.0/16", "fd00:db8:6::/48"]),
        json!([{"name": "int", "properties": {"addressPrefixes": ["10.6.1.0/26", "fd00:db8:6:1::/80"]}}]),
    );
    assert_eq!(code(fresh(json!([bad_len]))), "InvalidSubnetPrefixLength");
    let outside = vnet(
        "v6",
        json!(["10.6.0.0/16", "fd00:db8:6::/48"]),
        json!([{"name": "int", "properties": {"addressPrefixes": ["10.6.1.0/26", "fd00:db8:7:1::/64"]}}]),
    );
    assert_eq!(
        code(fresh(json!([outside]))),
        "NetcfgSubnetRangeOutsideVnet"
    );
}

#[test]
fn integration_subnet_without_service_endpoint_policies() {
    let policy =
        crate::validate::fixtures::id_str("Microsoft.Network/serviceEndpointPolicies/storage-only");
    let v = vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([{"name": "int", "properties": {"addressPrefix": "10.0.1.0/26",
                 "serviceEndpointPolicies": [{"id": policy}]}}]),
    );
    let e = fresh(json!([
        v,
        plan("p", "S1", 1),
        site("w1", "p", Some("v/subnets/int"))
    ]))
    .unwrap_err();
    assert_eq!(e.code, "SubnetHasServiceEndpointPolicies");
    assert!(
        e.message.contains("'int'") && e.message.contains("storage-only"),
        "{}",
        e.message
    );
}

#[test]
fn classic_vnets_stored_but_never_integrated() {
    let classic = json!({"type": "Microsoft.ClassicNetwork/virtualNetworks", "name": "old",
        "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}, "subnets": [subnet("int", "10.9.1.0/26")]}});
    let s = fresh(json!([classic])).unwrap();
    let stored = &s.resources[&rid("Microsoft.ClassicNetwork/virtualNetworks/old").key()];
    assert_eq!(stored.type_, "Microsoft.ClassicNetwork/virtualNetworks");
    let mut w = site("w1", "p", None);
    w["properties"]["virtualNetworkSubnetId"] = json!(crate::validate::fixtures::id_str(
        "Microsoft.ClassicNetwork/virtualNetworks/old/subnets/int"
    ));
    let e = deploy(&s, json!([plan("p", "P1v3", 1), w])).unwrap_err();
    assert_eq!(e.code, "ClassicVirtualNetworkNotSupported");
    assert!(
        e.message.contains("'old'") && e.message.contains("Resource Manager"),
        "{}",
        e.message
    );
    // A classic VNet is validated like any VNet.
    let bad = json!({"type": "Microsoft.ClassicNetwork/virtualNetworks", "name": "old",
        "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}, "subnets": [subnet("int", "10.8.1.0/26")]}});
    assert_eq!(code(fresh(json!([bad]))), "NetcfgSubnetRangeOutsideVnet");
}

fn lab() -> crate::model::LabConfig {
    crate::model::LabConfig::default()
}

fn ctx() -> super::RequestContext {
    super::RequestContext::default()
}

fn subnet_json(s: &LabState, vnet_name: &str, index: usize) -> Value {
    s.resources[&rid(&format!("Microsoft.Network/virtualNetworks/{vnet_name}")).key()].properties
        ["subnets"][index]["properties"]
        .clone()
}

/// Plan `p` (S1) with site `w` integrated with `v/int`.
fn integrated_lab() -> LabState {
    with(json!([
        plan("p", "S1", 1),
        site("w1", "p", Some("v/subnets/int"))
    ]))
    .unwrap()
}

#[test]
fn integration_adds_delegation_and_service_association_link() {
    let s = integrated_lab();
    let int = subnet_json(&s, "v", 0);
    assert_eq!(
        int["delegations"][0]["properties"]["serviceName"],
        "Microsoft.Web/serverFarms"
    );
    let link = &int["serviceAssociationLinks"][0];
    assert_eq!(link["name"], "AppServiceLink");
    assert_eq!(
        link["properties"]["linkedResourceType"],
        "Microsoft.Web/serverfarms"
    );
    assert_eq!(
        link["properties"]["link"],
        crate::validate::fixtures::id_str("Microsoft.Web/serverfarms/p")
    );
    assert!(link["id"]
        .as_str()
        .unwrap()
        .ends_with("/subnets/int/serviceAssociationLinks/AppServiceLink"));
    // The subnet's view shows both.
    let view = crate::plan::view::resource_view(
        &s,
        &lab(),
        &rid("Microsoft.Network/virtualNetworks/v/subnets/int"),
    )
    .unwrap();
    assert_eq!(
        view["properties"]["serviceAssociationLinks"][0]["name"],
        "AppServiceLink"
    );
    assert_eq!(
        view["properties"]["delegations"][0]["properties"]["serviceName"],
        "Microsoft.Web/serverFarms"
    );
    // set_integration does the same as a deploy.
    let bare = with(json!([plan("p", "S1", 1), site("w1", "p", None)])).unwrap();
    let via_cli = super::set_integration(
        &bare,
        &rid("Microsoft.Web/sites/w1"),
        Some(&rid("Microsoft.Network/virtualNetworks/v/subnets/int")),
        &lab(),
        &ctx(),
    )
    .unwrap();
    assert_eq!(subnet_json(&via_cli, "v", 0), int);
}

#[test]
fn in_use_vnet_and_subnet_cannot_be_deleted_until_disconnected() {
    let s = integrated_lab();
    let v = rid("Microsoft.Network/virtualNetworks/v");
    let int = v.child("subnets", "int");
    let e = super::delete_resource(&s, &v, &lab(), &ctx()).unwrap_err();
    assert_eq!(e.code, "InUseVirtualNetworkCannotBeDeleted");
    assert!(
        e.message.contains("'v'") && e.message.contains("Site 'w1'"),
        "{}",
        e.message
    );
    let e = super::delete_resource(&s, &int, &lab(), &ctx()).unwrap_err();
    assert_eq!(e.code, "InUseSubnetCannotBeDeleted");
    // Disconnect: the link goes, the delegation stays, the subnet and VNet can go.
    let s =
        super::set_integration(&s, &rid("Microsoft.Web/sites/w1"), None, &lab(), &ctx()).unwrap();
    let props = subnet_json(&s, "v", 0);
    assert!(props.get("serviceAssociationLinks").is_none(), "{props}");
    assert_eq!(
        props["delegations"][0]["properties"]["serviceName"],
        "Microsoft.Web/serverFarms"
    );
    let s = super::delete_resource(&s, &int, &lab(), &ctx()).unwrap();
    super::delete_resource(&s, &v, &lab(), &ctx()).unwrap();
}

#[test]
fn disconnect_keeps_link_while_another_app_of_the_plan_uses_it() {
    let s = with(json!([
        plan("p", "S1", 1),
        site("w1", "p", Some("v/subnets/int")),
        site("x1", "p", Some("v/subnets/int"))
    ]))
    .unwrap();
    let s =
        super::set_integration(&s, &rid("Microsoft.Web/sites/w1"), None, &lab(), &ctx()).unwrap();
    assert_eq!(
        subnet_json(&s, "v", 0)["serviceAssociationLinks"][0]["name"],
        "AppServiceLink"
    );
}

/// The app and plan deleted without disconnecting: the link is left behind.
fn orphaned_lab() -> LabState {
    let s = integrated_lab();
    let s = super::delete_resource(&s, &rid("Microsoft.Web/sites/w1"), &lab(), &ctx()).unwrap();
    super::delete_resource(&s, &rid("Microsoft.Web/serverfarms/p"), &lab(), &ctx()).unwrap()
}

#[test]
fn orphaned_link_blocks_subnet_update_and_delete() {
    let s = orphaned_lab();
    let props = subnet_json(&s, "v", 0);
    assert_eq!(
        props["serviceAssociationLinks"][0]["properties"]["link"],
        crate::validate::fixtures::id_str("Microsoft.Web/serverfarms/p")
    );
    // Redeploying the original VNet template drops the (auto-added) delegation.
    let e = deploy(&s, json!([net()])).unwrap_err();
    assert_refused(&e, "SubnetMissingRequiredDelegation", "requires any of the following delegation(s) [Microsoft.Web/serverFarms] to reference service association link");
    assert!(e.message.contains("exact same names"), "{}", e.message);
    // Any other change to the subnet.
    let delegated = json!({"name": "int", "properties": {"addressPrefix": "10.0.1.0/25",
        "delegations": [{"name": "delegation", "properties": {"serviceName": "Microsoft.Web/serverFarms"}}]}});
    let changed = vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([
            delegated,
            subnet("int2", "10.0.2.0/26"),
            subnet("vms", "10.0.3.0/24")
        ]),
    );
    assert_eq!(
        code(deploy(&s, json!([changed]))),
        "InUseSubnetCannotBeUpdated"
    );
    // The same subnet unchanged, another subnet changed: fine.
    let mut same = subnet_json(&s, "v", 0);
    same.as_object_mut()
        .unwrap()
        .remove("serviceAssociationLinks");
    let ok = vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([{"name": "int", "properties": same}, subnet("int2", "10.0.2.0/27"), subnet("vms", "10.0.3.0/24")]),
    );
    assert_eq!(code(deploy(&s, json!([ok]))), "Ok");
    // Deleting the subnet, removing it by redeploy, deleting the VNet.
    let v = rid("Microsoft.Network/virtualNetworks/v");
    let e = super::delete_resource(&s, &v.child("subnets", "int"), &lab(), &ctx()).unwrap_err();
    assert_refused(
        &e,
        "InUseSubnetCannotBeDeleted",
        "serviceAssociationLinks/AppServiceLink",
    );
    let without = vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([subnet("int2", "10.0.2.0/26"), subnet("vms", "10.0.3.0/24")]),
    );
    assert_eq!(
        code(deploy(&s, json!([without]))),
        "InUseSubnetCannotBeDeleted"
    );
    assert_eq!(
        code(super::delete_resource(&s, &v, &lab(), &ctx())),
        "InUseVirtualNetworkCannotBeDeleted"
    );
    // Another plan cannot take the subnet.
    let e = deploy(
        &s,
        json!([plan("q", "S1", 1), site("w1", "q", Some("v/subnets/int"))]),
    )
    .unwrap_err();
    assert_eq!(e.code, "SubnetUsedByAnotherServerFarm");
}

#[test]
fn orphaned_link_recovery_procedure() {
    let s = orphaned_lab();
    let lab = lab();
    let ctx = ctx();
    // 1. Re-create the plan and app with the exact same names.
    let s = deploy(&s, json!([plan("p", "S1", 1), site("w1", "p", None)])).unwrap();
    // 2. Integrate: the link is re-adopted.
    let int = rid("Microsoft.Network/virtualNetworks/v/subnets/int");
    let w = rid("Microsoft.Web/sites/w1");
    let s = super::set_integration(&s, &w, Some(&int), &lab, &ctx).unwrap();
    assert_eq!(
        subnet_json(&s, "v", 0)["serviceAssociationLinks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // 3. Disconnect: the link is removed, the delegation stays.
    let s = super::set_integration(&s, &w, None, &lab, &ctx).unwrap();
    assert!(subnet_json(&s, "v", 0)
        .get("serviceAssociationLinks")
        .is_none());
    // 4. Delete the app and plan.
    let s = super::delete_resource(&s, &w, &lab, &ctx).unwrap();
    let s = super::delete_resource(&s, &rid("Microsoft.Web/serverfarms/p"), &lab, &ctx).unwrap();
    // 5. Update, then delete, the subnet; then the VNet.
    let s = deploy(&s, json!([net()])).unwrap();
    let s = super::delete_resource(&s, &int, &lab, &ctx).unwrap();
    super::delete_resource(&s, &rid("Microsoft.Network/virtualNetworks/v"), &lab, &ctx).unwrap();
}

#[test]
fn integrations_per_plan_windows_two_linux_one() {
    let windows = |name: &str| json!({"type": "Microsoft.Web/serverfarms", "name": name, "sku": {"name": "S1"}});
    assert_eq!(
        code(with(json!([
            windows("win"),
            site("aa", "win", Some("v/subnets/int")),
            site("bb", "win", Some("v/subnets/int2")),
            site("cc", "win", Some("v/subnets/int2"))
        ]))),
        "Ok"
    );
    let e = with(json!([
        windows("win"),
        site("aa", "win", Some("v/subnets/int")),
        site("bb", "win", Some("v/subnets/int2")),
        site("cc", "win", Some("v/subnets/vms"))
    ]))
    .unwrap_err();
    assert_eq!(e.code, "MaxVnetIntegrationsExceeded");
    assert!(
        e.message.contains("Windows") && e.message.contains("'win'"),
        "{}",
        e.message
    );
    let e = with(json!([
        plan("lin", "S1", 1),
        site("aa", "lin", Some("v/subnets/int")),
        site("bb", "lin", Some("v/subnets/int2"))
    ]))
    .unwrap_err();
    assert_refused(&e, "MaxVnetIntegrationsExceeded", "Linux");
}

#[test]
fn app_has_one_integration_network_config_cannot_add_a_second() {
    let s = integrated_lab();
    let config = |subnet_name: &str| {
        json!([{"type": "Microsoft.Web/sites/networkConfig", "name": "w1/virtualNetwork",
            "properties": {"subnetResourceId": crate::validate::fixtures::id_str(&format!("Microsoft.Network/virtualNetworks/v/subnets/{subnet_name}")),
                           "swiftSupported": true}}])
    };
    let e = deploy(&s, config("int2")).unwrap_err();
    assert_eq!(e.code, "SiteAlreadyHasVnetIntegration");
    assert!(
        e.message.contains("'w1'") && e.message.contains("single virtual network integration"),
        "{}",
        e.message
    );
    // The same subnet again is fine; so is a networkConfig after disconnecting.
    assert_eq!(code(deploy(&s, config("int"))), "Ok");
    let s =
        super::set_integration(&s, &rid("Microsoft.Web/sites/w1"), None, &lab(), &ctx()).unwrap();
    assert_eq!(code(deploy(&s, config("int2"))), "Ok");
}

fn as_alice() -> super::RequestContext {
    super::RequestContext {
        principal: "alice".into(),
        now: 0,
    }
}

/// The VNet (owner's), and alice with `role` at `scope` (None: no role).
fn alice_lab(assignments: &[(&str, String)]) -> LabState {
    let mut s =
        crate::authz::add_principal(&with(json!([plan("p", "S1", 1)])).unwrap(), "alice").unwrap();
    for (i, (role, scope)) in assignments.iter().enumerate() {
        let a = crate::model::RoleAssignment {
            name: format!("a{i}"),
            principal_id: "alice".into(),
            role_definition_id: role.to_string(),
            scope: scope.clone(),
        };
        s = crate::authz::assign_role(&s, a, crate::model::LAB_OWNER).unwrap();
    }
    s
}

#[test]
fn integration_needs_subnet_join_permission() {
    use crate::template::DEFAULT_SUBSCRIPTION;
    use crate::validate::fixtures::{deploy_as, id_str};
    let rg = format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/lab");
    let subnet_id = id_str("Microsoft.Network/virtualNetworks/v/subnets/int");
    let web = id_str("Microsoft.Web/sites/w1");
    // Website Contributor on the RG: may write the site, not join the subnet.
    let s = alice_lab(&[("Website Contributor", rg.clone())]);
    let e = deploy_as(
        &s,
        DEFAULT_SUBSCRIPTION,
        json!([site("w1", "p", Some("v/subnets/int"))]),
        &as_alice(),
    )
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.status),
        ("LinkedAuthorizationFailed", 403)
    );
    assert!(
        e.message.contains("The client 'alice'")
            && e.message
                .contains("Microsoft.Network/virtualNetworks/subnets/join/action")
            && e.message
                .contains(&format!("linked scope(s) '{subnet_id}'")),
        "{}",
        e.message
    );
    // Without integration the same principal may deploy the site.
    assert_eq!(
        code(deploy_as(
            &s,
            DEFAULT_SUBSCRIPTION,
            json!([site("w1", "p", None)]),
            &as_alice()
        )),
        "Ok"
    );
    // Plus Network Contributor on the subnet (or the VNet, RG, subscription): allowed.
    for scope in [
        subnet_id.clone(),
        id_str("Microsoft.Network/virtualNetworks/v"),
        rg.clone(),
    ] {
        let s = alice_lab(&[
            ("Website Contributor", rg.clone()),
            ("Network Contributor", scope.clone()),
        ]);
        let r = deploy_as(
            &s,
            DEFAULT_SUBSCRIPTION,
            json!([site("w1", "p", Some("v/subnets/int"))]),
            &as_alice(),
        );
        assert_eq!(code(r), "Ok", "{scope}");
    }
    // Network Contributor on another subnet does not cover this one.
    let other = id_str("Microsoft.Network/virtualNetworks/v/subnets/int2");
    let s = alice_lab(&[
        ("Website Contributor", rg.clone()),
        ("Network Contributor", other),
    ]);
    let r = deploy_as(
        &s,
        DEFAULT_SUBSCRIPTION,
        json!([site("w1", "p", Some("v/subnets/int"))]),
        &as_alice(),
    );
    assert_eq!(code(r), "LinkedAuthorizationFailed");
    // set_integration is checked the same way; writing the site needs sites/write.
    let s = alice_lab(&[("Website Contributor", rg.clone())]);
    let s = deploy_as(
        &s,
        DEFAULT_SUBSCRIPTION,
        json!([site("w1", "p", None)]),
        &as_alice(),
    )
    .unwrap();
    let e = super::set_integration(
        &s,
        &web.parse().unwrap(),
        Some(&subnet_id.parse().unwrap()),
        &lab(),
        &as_alice(),
    )
    .unwrap_err();
    assert_eq!(e.code, "LinkedAuthorizationFailed");
    let s = alice_lab(&[("Reader", rg.clone())]);
    let e = deploy_as(
        &s,
        DEFAULT_SUBSCRIPTION,
        json!([site("w1", "p", None)]),
        &as_alice(),
    )
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("AuthorizationFailed", 403));
    assert!(
        e.message.contains("Microsoft.Web/sites/write"),
        "{}",
        e.message
    );
}

#[test]
fn cross_subscription_vnet_needs_microsoft_web_registered() {
    use crate::template::DEFAULT_SUBSCRIPTION;
    use crate::validate::fixtures::deploy_as;
    let owner = ctx();
    let s = deploy_as(&LabState::default(), "netsub", json!([net()]), &owner).unwrap();
    let s = deploy_as(
        &s,
        DEFAULT_SUBSCRIPTION,
        json!([plan("p", "S1", 1)]),
        &owner,
    )
    .unwrap();
    let mut w = site("w1", "p", None);
    w["properties"]["virtualNetworkSubnetId"] =
        json!("/subscriptions/netsub/resourceGroups/lab/providers/Microsoft.Network/virtualNetworks/v/subnets/int");
    let e = deploy_as(&s, DEFAULT_SUBSCRIPTION, json!([w.clone()]), &owner).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.status),
        ("MissingSubscriptionRegistration", 409)
    );
    assert!(
        e.message.contains(
            "The subscription 'netsub' is not registered to use namespace 'Microsoft.Web'"
        ) && e.message.contains(
            "vnet-agent provider register --namespace Microsoft.Web --subscription netsub"
        ),
        "{}",
        e.message
    );
    // Registered explicitly: fine.
    let registered = super::register_provider(&s, "netsub", "Microsoft.Web");
    assert_eq!(
        code(deploy_as(
            &registered,
            DEFAULT_SUBSCRIPTION,
            json!([w.clone()]),
            &owner
        )),
        "Ok"
    );
    // Or by creating the first web app in that subscription.
    let with_app = deploy_as(
        &s,
        "netsub",
        json!([plan("q", "S1", 1), site("first", "q", None)]),
        &owner,
    )
    .unwrap();
    assert!(super::is_registered(&with_app, "NETSUB", "microsoft.web"));
    assert_eq!(
        code(deploy_as(
            &with_app,
            DEFAULT_SUBSCRIPTION,
            json!([w]),
            &owner
        )),
        "Ok"
    );
}

#[test]
fn move_refused_while_integrated_allowed_after_disconnect() {
    let s = integrated_lab();
    let (w, p, v) = (
        rid("Microsoft.Web/sites/w1"),
        rid("Microsoft.Web/serverfarms/p"),
        rid("Microsoft.Network/virtualNetworks/v"),
    );
    for ids in [
        vec![w.clone()],
        vec![p.clone()],
        vec![v.clone()],
        vec![p.clone(), w.clone()],
    ] {
        let e = super::move_resources(&s, &ids, "other", "lab2", &lab(), &ctx()).unwrap_err();
        assert_eq!(e.code, "CannotMoveResourceWithVnetIntegration", "{ids:?}");
        assert!(e.message.contains("disconnect"), "{}", e.message);
    }
    // Disconnected: plan and app move together; the app's serverFarmId follows.
    let s = super::set_integration(&s, &w, None, &lab(), &ctx()).unwrap();
    let moved = super::move_resources(&s, &[p.clone(), w.clone()], "other", "lab2", &lab(), &ctx())
        .unwrap();
    assert!(moved.get(&w).is_none() && moved.get(&p).is_none());
    let new_w: crate::model::ResourceId =
        "/subscriptions/other/resourceGroups/lab2/providers/Microsoft.Web/sites/w1"
            .parse()
            .unwrap();
    let site = &moved.get(&new_w).unwrap().properties;
    assert_eq!(
        site["serverFarmId"],
        "/subscriptions/other/resourceGroups/lab2/providers/Microsoft.Web/serverfarms/p"
    );
    // The VNet is free again too (the link went with the disconnect).
    assert_eq!(
        code(super::move_resources(
            &s,
            &[v],
            "other",
            "lab2",
            &lab(),
            &ctx()
        )),
        "Ok"
    );
    assert_eq!(
        code(super::move_resources(
            &s,
            &[rid("Microsoft.Web/sites/nope")],
            "other",
            "lab2",
            &lab(),
            &ctx()
        )),
        "ResourceNotFound"
    );
}

#[test]
fn subnet_full_type_mismatch_and_move_collision() {
    // More instances than a /28 holds (11 usable addresses).
    let e = with(json!([{"type": "Microsoft.Network/virtualNetworks", "name": "tiny",
        "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [subnet("int", "10.1.0.0/28")]}},
        plan("p", "P1v3", 12), site("w1", "p", Some("tiny/subnets/int"))]))
    .unwrap_err();
    assert_eq!(e.code, "SubnetIsFull");
    // A resource whose id names another type.
    let mut res: crate::model::GenericResource = serde_json::from_value(json!({
        "id": crate::validate::fixtures::id_str("Microsoft.Web/sites/w1"),
        "type": "Microsoft.Web/serverfarms", "name": "w", "properties": {}}))
    .unwrap();
    res.location = None;
    let e = super::apply_resources(&LabState::default(), vec![res], &lab(), &ctx()).unwrap_err();
    assert_eq!(e.code, "InvalidResourceType");
    // Moving onto an id that exists.
    let s = with(json!([plan("p", "S1", 1)])).unwrap();
    let s = crate::validate::fixtures::deploy_as(&s, "other", json!([plan("p", "S1", 1)]), &ctx())
        .unwrap();
    let e = super::move_resources(
        &s,
        &[rid("Microsoft.Web/serverfarms/p")],
        "other",
        "lab",
        &lab(),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("ResourceAlreadyExists", 409));
}

/// Seed, "Subnet requirements": "subnet size can't be changed after
/// assignment". An integrated subnet, a subnet with a VM NIC and one with a
/// private endpoint keep their prefixes (`InUsePrefixCannotBeDeleted`, the
/// state unchanged); an empty subnet may grow or shrink.
#[test]
fn in_use_subnet_keeps_its_prefix_an_empty_one_may_change() {
    use super::fixtures::{nic, vm};
    let s = with(json!([
        plan("p", "S1", 1),
        site("w1", "p", Some("v/subnets/int")),
        nic("n1", "v/subnets/vms", None),
        vm("vm1", &["n1"])
    ]))
    .unwrap();
    let resized = |int: &str, vms: &str, int2: &str| {
        let mut int_props = subnet_json(&s, "v", 0);
        int_props["addressPrefix"] = json!(int);
        vnet(
            "v",
            json!(["10.0.0.0/16"]),
            json!([{"name": "int", "properties": int_props}, subnet("int2", int2), subnet("vms", vms)]),
        )
    };
    // The integration subnet: /26 -> /25 (even growing) is refused.
    let e = deploy(
        &s,
        json!([resized("10.0.1.0/25", "10.0.3.0/24", "10.0.2.0/26")]),
    )
    .unwrap_err();
    assert_refused(
        &e,
        "InUsePrefixCannotBeDeleted",
        "IpPrefix 10.0.1.0/26 on Subnet int",
    );
    assert!(e.message.contains("AppServiceLink"), "{}", e.message);
    // The VMs' subnet.
    let e = deploy(
        &s,
        json!([resized("10.0.1.0/26", "10.0.3.0/25", "10.0.2.0/26")]),
    )
    .unwrap_err();
    assert_refused(&e, "InUsePrefixCannotBeDeleted", "network interface 'n1'");
    // The empty one may change, and the rest stays as it was.
    let next = deploy(
        &s,
        json!([resized("10.0.1.0/26", "10.0.3.0/24", "10.0.2.0/27")]),
    )
    .unwrap();
    assert_eq!(subnet_json(&next, "v", 1)["addressPrefix"], "10.0.2.0/27");
}
