//! Addresses over time in the plan and the views: Windows container sandboxes
//! with their own subnet address, scales and platform upgrades moving
//! WEBSITE_PRIVATE_IP, released addresses shown while they cool down.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::*;
use crate::model::{LabConfig, LabState};
use crate::validate::fixtures::{id_str, rid};

fn lab() -> LabConfig {
    LabConfig::default()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A Windows plan with `capacity` instances in a /27, app `code` (no
/// container) and Windows container app `cont`, both integrated.
fn resources(capacity: u32) -> Value {
    let subnet = id_str("Microsoft.Network/virtualNetworks/v/subnets/int");
    let farm = id_str("Microsoft.Web/serverfarms/p");
    json!([
        {"type": "Microsoft.Network/virtualNetworks", "name": "v", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "int", "properties": {"addressPrefix": "10.0.1.0/27"}}]}},
        {"type": "Microsoft.Web/serverfarms", "name": "p", "kind": "windows",
         "sku": {"name": "P1v3", "capacity": capacity}},
        {"type": "Microsoft.Web/sites", "name": "code", "properties": {
            "serverFarmId": farm, "virtualNetworkSubnetId": subnet,
            "siteConfig": {"appCommandLine": "exec sleep infinity"}}},
        {"type": "Microsoft.Web/sites", "name": "cont", "properties": {
            "serverFarmId": farm, "virtualNetworkSubnetId": subnet,
            "siteConfig": {"windowsFxVersion": "DOCKER|mcr.microsoft.com/windows/servercore/iis",
                           "appCommandLine": "exec sleep infinity"}}}
    ])
}

fn deploy_at(state: &LabState, resources: Value, now: u64) -> LabState {
    let req = crate::template::DeploymentRequest {
        subscription: crate::template::DEFAULT_SUBSCRIPTION.into(),
        resource_group: "lab".into(),
        template: json!({ "resources": resources }),
        parameters: Default::default(),
        ..Default::default()
    };
    crate::validate::apply_resources(
        state,
        crate::template::expand(&req).unwrap(),
        &lab(),
        &crate::validate::RequestContext {
            now,
            ..Default::default()
        },
    )
    .unwrap()
}

fn container_state() -> LabState {
    deploy_at(&LabState::default(), resources(2), 0)
}

fn ns<'a>(p: &'a NetworkPlan, prefix: &str) -> &'a NamespacePlan {
    let v: Vec<_> = p
        .namespaces
        .values()
        .filter(|n| n.name.starts_with(prefix))
        .collect();
    assert_eq!(v.len(), 1, "{prefix}");
    v[0]
}

fn env_of<'a>(
    p: &'a NetworkPlan,
    site: &str,
    instance: u32,
) -> &'a std::collections::BTreeMap<String, String> {
    let key = names::instance_key(&rid(&format!("Microsoft.Web/sites/{site}")).key(), instance);
    &p.processes.iter().find(|pr| pr.key == key).unwrap().env
}

#[test]
fn a_windows_container_sandbox_leaves_with_its_own_subnet_address() {
    let s = container_state();
    let p = build(&s, &lab());
    // Instances .4 .5; the container app `cont` on instance 0 has .6.
    let w0 = ns(&p, "vl-wk-p-0-");
    let on_vnet0: Vec<String> = w0
        .addresses
        .iter()
        .filter(|a| a.ifname == "vnet0")
        .map(|a| a.address.to_string())
        .collect();
    assert_eq!(on_vnet0, vec!["10.0.1.4/27", "10.0.1.6/32"]);
    // The worker SNATs the container sandbox's VNet traffic to .6, before the
    // instance's own rule, and everything else to .4.
    let nft = serde_json::to_string(w0.nft.as_ref().unwrap()).unwrap();
    let sb = ns(&p, "vl-app-cont-0-");
    let sb_ip = sb.addresses[0].address.addr().to_string();
    let container_rule = format!(
        r#"{{"match":{{"left":{{"payload":{{"field":"saddr","protocol":"ip"}}}},"op":"==","right":"{sb_ip}"}}}},{{"snat":{{"addr":"10.0.1.6","family":"ip"}}}}"#
    );
    let at = nft.find(&container_rule).expect("container SNAT rule");
    let instance_rule = r#"{"snat":{"addr":"10.0.1.4","family":"ip"}}"#;
    assert!(at < nft.find(instance_rule).unwrap());
    // The code app's sandbox has no such rule.
    let code_ip = ns(&p, "vl-app-code-0-").addresses[0]
        .address
        .addr()
        .to_string();
    assert!(!nft.contains(&format!(r#""right":"{code_ip}""#)));
    // The fabric routes .6/32 to the worker's NIC, like .4/32.
    let fab = ns(&p, "vl-vnet-v-");
    let dev_of = |dst: &str| {
        fab.routes
            .iter()
            .find(|r| r.table == 254 && r.destination.to_string() == dst)
            .map(|r| r.kind.clone())
    };
    assert!(dev_of("10.0.1.6/32").is_some());
    assert_eq!(dev_of("10.0.1.6/32"), dev_of("10.0.1.4/32"));
    assert_eq!(dev_of("10.0.1.7/32"), dev_of("10.0.1.5/32")); // instance 1's container
                                                              // The stamp SNATs route-all traffic from the container address too.
    let stamp = serde_json::to_string(ns(&p, "vl-stamp-").nft.as_ref().unwrap()).unwrap();
    assert!(stamp.contains("10.0.1.6"), "{stamp}");
    // WEBSITE_PRIVATE_IP stays the instance's address (what Azure documents).
    assert_eq!(env_of(&p, "cont", 0)["WEBSITE_PRIVATE_IP"], "10.0.1.4");
    assert_eq!(env_of(&p, "code", 1)["WEBSITE_PRIVATE_IP"], "10.0.1.5");
}

#[test]
fn views_show_container_addresses_releasing_addresses_and_usage() {
    let s0 = container_state();
    let s = deploy_at(&s0, resources(3), 1000); // scale 2 -> 3 at t=1000
    let l = lab();
    let site = view::resource_view(&s, &l, &rid("Microsoft.Web/sites/cont")).unwrap();
    let inst = &site["emulator"]["instances"];
    // New instances .8 .9 .10 (old .4-.7 still held during the scale), containers .11-.13.
    assert_eq!(inst[0]["privateIpAddress"], "10.0.1.8");
    assert_eq!(
        inst[0]["containers"],
        json!([{"site": "cont", "privateIpAddress": "10.0.1.11"}])
    );
    let code = view::resource_view(&s, &l, &rid("Microsoft.Web/sites/code")).unwrap();
    assert_eq!(code["emulator"]["instances"][2]["containers"], json!([]));
    let plan = view::resource_view(&s, &l, &rid("Microsoft.Web/serverfarms/p")).unwrap();
    let e = &plan["emulator"];
    assert_eq!(
        e["workers"][1]["containers"],
        json!([{"site": "cont", "privateIpAddress": "10.0.1.12"}])
    );
    let subnet = id_str("Microsoft.Network/virtualNetworks/v/subnets/int");
    let releasing: Vec<Value> = ["10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.1.7"]
        .iter()
        .map(|a| json!({"address": a, "subnet": subnet, "releasedAt": 1000, "reusableAt": 1300}))
        .collect();
    assert_eq!(e["releasingAddresses"], Value::Array(releasing));
    assert_eq!(
        e["subnetUsage"],
        json!([{"subnetId": subnet, "addressPrefix": "10.0.1.0/27",
                "usable": 27, "used": 6, "coolingDown": 4, "free": 17}])
    );
    let v = view::resource_view(&s, &l, &rid("Microsoft.Network/virtualNetworks/v")).unwrap();
    let sub = &v["emulator"]["subnets"][0];
    assert_eq!(
        (
            &sub["usedAddresses"],
            &sub["coolingDownAddresses"],
            &sub["freeAddresses"]
        ),
        (&json!(6), &json!(4), &json!(17))
    );
}

#[test]
fn website_private_ip_moves_on_scale_and_upgrade_but_stays_in_the_subnet() {
    let prefix: ipnet::Ipv4Net = "10.0.1.0/27".parse().unwrap();
    let s0 = container_state();
    let p0 = build(&s0, &lab());
    let s1 = deploy_at(&s0, resources(3), 1000);
    let p1 = build(&s1, &lab());
    let s2 = crate::ipam::platform_upgrade(&s1, &rid("Microsoft.Web/serverfarms/p"), &lab(), 1200)
        .unwrap();
    let p2 = build(&s2, &lab());
    let mut seen = Vec::new();
    for p in [&p0, &p1, &p2] {
        let a: Ipv4Addr = env_of(p, "code", 0)["WEBSITE_PRIVATE_IP"].parse().unwrap();
        assert!(prefix.contains(&a));
        seen.push(a);
    }
    assert_eq!(seen, vec![ip("10.0.1.4"), ip("10.0.1.8"), ip("10.0.1.14")]);
    // The process plan changed, so the supervisor restarts it with the new env.
    assert_ne!(env_of(&p0, "code", 0), env_of(&p1, "code", 0));
    assert_ne!(env_of(&p1, "code", 0), env_of(&p2, "code", 0));
    // Only the addresses changed, not the namespaces.
    assert_eq!(
        p1.namespaces.keys().collect::<Vec<_>>(),
        p2.namespaces.keys().collect::<Vec<_>>()
    );
    // Deterministic.
    assert_eq!(build(&s2, &lab()), p2);
}

#[test]
fn the_container_lab_passes_nft_check() {
    if !super::nft_check::nft_available() {
        return;
    }
    assert!(super::nft_check::check_plan(&build(&container_state(), &lab())) > 0);
}
