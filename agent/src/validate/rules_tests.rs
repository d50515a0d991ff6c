//! One test per integration rule of issue 3 (see docs/errors.md).

use serde_json::{json, Value};

use super::fixtures::{code, deploy, fresh, plan, rid, site, subnet, vnet};
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
        site("w", "p", Some("v/subnets/int"))
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
            e.message.contains("'w'") && e.message.contains("'p'"),
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
            site("w", "p", Some("v/subnets/int"))
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
        let mut w = site("w", "p", Some("v/subnets/int"));
        w["kind"] = json!(kind);
        assert_eq!(code(with(json!([plan("p", "S1", 1), w]))), "Ok", "{kind}");
    }
}

#[test]
fn docker_compose_refused() {
    let mut w = site("w", "p", Some("v/subnets/int"));
    w["properties"]["siteConfig"] = json!({"linuxFxVersion": "compose|dmVyc2lvbjogJzMn"});
    let e = with(json!([plan("p", "P1v3", 1), w.clone()])).unwrap_err();
    assert_eq!(e.code, "VnetIntegrationNotSupportedForDockerCompose");
    assert!(
        e.message.contains("'w'") && e.message.contains("Docker Compose"),
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
    let mut w = site("w", "p", Some("v/subnets/int"));
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
                site("w", "p", Some(&format!("v6/subnets/{subnet_name}")))
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
        site("w", "p", Some("v/subnets/int"))
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
    let mut w = site("w", "p", None);
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
