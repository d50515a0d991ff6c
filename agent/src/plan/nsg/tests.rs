//! NSG tests: validation codes, default rules, priority and Azure's
//! NIC/subnet order, tag and ASG expansion, effective-rule shape, the fabric
//! batch (1,000 rules) against the real nft, determinism.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::super::nft_check::{check_plan, nft_available, nft_check};
use super::*;
use crate::model::LabState;
use crate::plan::{build, NamespaceRole};
use crate::validate::fixtures::{code, deploy, fresh, id_str, rid};
use crate::validate::{delete_resource, RequestContext};

const NSG_T: &str = "Microsoft.Network/networkSecurityGroups";

#[allow(clippy::too_many_arguments)] // one argument per rule field keeps the tables readable
fn rule(
    name: &str,
    prio: u32,
    dir: &str,
    access: &str,
    proto: &str,
    src: &str,
    dst: &str,
    dport: &str,
) -> Value {
    json!({"name": name, "properties": {
        "priority": prio, "direction": dir, "access": access, "protocol": proto,
        "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
        "sourcePortRange": "*", "destinationPortRange": dport}})
}

fn nsg(name: &str, rules: Vec<Value>) -> Value {
    json!({"type": NSG_T, "name": name, "properties": {"securityRules": rules}})
}

fn nsg_ref(name: &str) -> Value {
    json!({"id": id_str(&format!("{NSG_T}/{name}"))})
}

/// vnet1 10.0.0.0/16: `integration` 10.0.1.0/24 (delegated, NSG nsg-int),
/// `vms` 10.0.2.0/24 (NSG nsg-vms); vm1 (nic1 10.0.2.4, NSG nsg-nic, ASG
/// web-asg), vm2 (nic2 10.0.2.5); plan1 (1 instance) with web1 integrated,
/// Route All on.
fn lab_resources(int_rules: Vec<Value>, vms_rules: Vec<Value>, nic_rules: Vec<Value>) -> Value {
    let subnet_id = |s: &str| {
        id_str(&format!(
            "Microsoft.Network/virtualNetworks/vnet1/subnets/{s}"
        ))
    };
    let nic = |name: &str, ip: &str, nsg: Option<&str>, asg: bool| {
        let mut cfg = json!({"name": "ipconfig1", "properties": {
            "subnet": {"id": subnet_id("vms")},
            "privateIPAllocationMethod": "Static", "privateIPAddress": ip}});
        if asg {
            cfg["properties"]["applicationSecurityGroups"] =
                json!([{"id": id_str("Microsoft.Network/applicationSecurityGroups/web-asg")}]);
        }
        let mut n = json!({"type": "Microsoft.Network/networkInterfaces", "name": name,
                           "properties": {"ipConfigurations": [cfg]}});
        if let Some(g) = nsg {
            n["properties"]["networkSecurityGroup"] = nsg_ref(g);
        }
        n
    };
    json!([
        nsg("nsg-int", int_rules),
        nsg("nsg-vms", vms_rules),
        nsg("nsg-nic", nic_rules),
        {"type": "Microsoft.Network/applicationSecurityGroups", "name": "web-asg"},
        {"type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [
                {"name": "integration", "properties": {"addressPrefix": "10.0.1.0/24",
                    "networkSecurityGroup": nsg_ref("nsg-int"),
                    "delegations": [{"name": "d", "properties": {"serviceName": "Microsoft.Web/serverFarms"}}]}},
                {"name": "vms", "properties": {"addressPrefix": "10.0.2.0/24", "networkSecurityGroup": nsg_ref("nsg-vms")}}
            ]}},
        nic("nic1", "10.0.2.4", Some("nsg-nic"), true),
        nic("nic2", "10.0.2.5", None, false),
        {"type": "Microsoft.Compute/virtualMachines", "name": "vm1", "properties": {"networkProfile": {"networkInterfaces": [{"id": id_str("Microsoft.Network/networkInterfaces/nic1")}]}}},
        {"type": "Microsoft.Compute/virtualMachines", "name": "vm2", "properties": {"networkProfile": {"networkInterfaces": [{"id": id_str("Microsoft.Network/networkInterfaces/nic2")}]}}},
        {"type": "Microsoft.Web/serverfarms", "name": "plan1", "kind": "linux", "sku": {"name": "P1v3", "capacity": 1}},
        {"type": "Microsoft.Web/sites", "name": "web1", "properties": {
            "serverFarmId": id_str("Microsoft.Web/serverfarms/plan1"),
            "virtualNetworkSubnetId": subnet_id("integration"),
            "vnetRouteAllEnabled": true}}
    ])
}

fn lab_state(int_rules: Vec<Value>, vms_rules: Vec<Value>, nic_rules: Vec<Value>) -> LabState {
    fresh(lab_resources(int_rules, vms_rules, nic_rules)).unwrap()
}

fn with_rules(rules: Vec<Value>) -> String {
    code(fresh(lab_resources(rules, vec![], vec![])))
}

fn tcp(origin: FlowOrigin, src: &str, dst: &str, dport: u16) -> Flow {
    Flow {
        origin,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        protocol: FlowProtocol::Tcp,
        src_port: 40000,
        dst_port: dport,
    }
}

fn nic_id(n: &str) -> ResourceId {
    rid(&format!("Microsoft.Network/networkInterfaces/{n}"))
}

fn nsg_id(n: &str) -> ResourceId {
    rid(&format!("{NSG_T}/{n}"))
}

fn lab() -> LabConfig {
    LabConfig::default()
}

#[test]
fn rule_validation_errors() {
    let ok = |r: Value| with_rules(vec![r]);
    assert_eq!(
        ok(rule(
            "a",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "*",
            "10.0.2.0/24",
            "22"
        )),
        "Ok"
    );
    assert_eq!(
        ok(rule("a", 99, "Outbound", "Deny", "Tcp", "*", "*", "22")),
        "SecurityRuleInvalidPriority"
    );
    assert_eq!(
        ok(rule("a", 4097, "Outbound", "Deny", "Tcp", "*", "*", "22")),
        "SecurityRuleInvalidPriority"
    );
    assert_eq!(
        ok(rule(
            &"x".repeat(81),
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "*",
            "*",
            "22"
        )),
        "InvalidResourceName"
    );
    assert_eq!(
        ok(rule(
            &"x".repeat(80),
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "*",
            "*",
            "22"
        )),
        "Ok"
    );
    assert_eq!(
        ok(rule("a", 100, "Sideways", "Deny", "Tcp", "*", "*", "22")),
        "SecurityRuleParameterContainsUnsupportedValue"
    );
    assert_eq!(
        ok(rule("a", 100, "Outbound", "Maybe", "Tcp", "*", "*", "22")),
        "SecurityRuleParameterContainsUnsupportedValue"
    );
    assert_eq!(
        ok(rule("a", 100, "Outbound", "Deny", "Gre", "*", "*", "22")),
        "SecurityRuleParameterContainsUnsupportedValue"
    );
    assert_eq!(
        ok(rule("a", 100, "Outbound", "Deny", "Esp", "*", "*", "*")),
        "SecurityRuleParameterContainsUnsupportedValue"
    );
    assert_eq!(
        ok(rule(
            "a",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "10.0.0.300",
            "*",
            "22"
        )),
        "SecurityRuleInvalidAddressPrefix"
    );
    assert_eq!(
        ok(rule(
            "a",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "10.0.0.5/24",
            "*",
            "22"
        )),
        "SecurityRuleInvalidAddressPrefix"
    );
    assert_eq!(
        ok(rule(
            "a",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "NoSuchTag",
            "*",
            "22"
        )),
        "SecurityRuleInvalidAddressPrefix"
    );
    assert_eq!(
        ok(rule(
            "a",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "*",
            "Storage.WestEurope",
            "443"
        )),
        "Ok"
    );
    assert_eq!(
        ok(rule(
            "a",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "*",
            "AzureKeyVault",
            "443"
        )),
        "Ok"
    );
    assert_eq!(
        ok(rule("a", 100, "Outbound", "Deny", "Tcp", "*", "*", "70000")),
        "SecurityRuleInvalidPortRange"
    );
    assert_eq!(
        ok(rule(
            "a", 100, "Outbound", "Deny", "Tcp", "*", "*", "200-100"
        )),
        "SecurityRuleInvalidPortRange"
    );
    // Several IPs and ports in one rule: fine; several tags: refused.
    let mut r = rule("a", 100, "Outbound", "Deny", "Tcp", "*", "*", "22");
    r["properties"]
        .as_object_mut()
        .unwrap()
        .remove("destinationAddressPrefix");
    r["properties"]
        .as_object_mut()
        .unwrap()
        .remove("destinationPortRange");
    r["properties"]["destinationAddressPrefixes"] = json!(["10.0.2.4", "10.0.3.0/24"]);
    r["properties"]["destinationPortRanges"] = json!(["80", "8000-8080"]);
    assert_eq!(ok(r.clone()), "Ok");
    r["properties"]["destinationAddressPrefixes"] = json!(["Internet", "VirtualNetwork"]);
    assert_eq!(ok(r.clone()), "SecurityRuleInvalidAddressPrefix");
    r["properties"]["destinationAddressPrefixes"] = json!(["Internet", "10.0.0.0/8"]);
    assert_eq!(ok(r.clone()), "SecurityRuleInvalidAddressPrefix");
    // ASGs: one per side, not together with prefixes, must exist.
    let asg = |n: &str| json!({"id": id_str(&format!("Microsoft.Network/applicationSecurityGroups/{n}"))});
    let mut r = rule("a", 100, "Outbound", "Deny", "Tcp", "*", "*", "22");
    r["properties"]
        .as_object_mut()
        .unwrap()
        .remove("destinationAddressPrefix");
    r["properties"]["destinationApplicationSecurityGroups"] = json!([asg("web-asg")]);
    assert_eq!(ok(r.clone()), "Ok");
    r["properties"]["destinationApplicationSecurityGroups"] =
        json!([asg("web-asg"), asg("web-asg")]);
    assert_eq!(
        ok(r.clone()),
        "SecurityRuleParameterContainsUnsupportedValue"
    );
    r["properties"]["destinationApplicationSecurityGroups"] = json!([asg("nope")]);
    assert_eq!(ok(r.clone()), "InvalidResourceReference");
    r["properties"]["destinationApplicationSecurityGroups"] = json!([asg("web-asg")]);
    r["properties"]["destinationAddressPrefix"] = json!("*");
    assert_eq!(ok(r), "SecurityRuleParameterContainsUnsupportedValue");
    // Priorities unique per direction; names unique.
    assert_eq!(
        with_rules(vec![
            rule("a", 100, "Outbound", "Deny", "Tcp", "*", "*", "22"),
            rule("b", 100, "Outbound", "Allow", "Udp", "*", "*", "53")
        ]),
        "SecurityRuleConflict"
    );
    assert_eq!(
        with_rules(vec![
            rule("a", 100, "Outbound", "Deny", "Tcp", "*", "*", "22"),
            rule("b", 100, "Inbound", "Allow", "Udp", "*", "*", "53")
        ]),
        "Ok"
    );
    assert_eq!(
        with_rules(vec![
            rule("a", 100, "Outbound", "Deny", "Tcp", "*", "*", "22"),
            rule("A", 200, "Outbound", "Deny", "Tcp", "*", "*", "22")
        ]),
        "DuplicateResourceName"
    );
}

#[test]
fn references_and_deletes() {
    let mut res = lab_resources(vec![], vec![], vec![]);
    res[4]["properties"]["subnets"][1]["properties"]["networkSecurityGroup"] = nsg_ref("ghost");
    assert_eq!(code(fresh(res)), "InvalidResourceReference");
    let s = lab_state(vec![], vec![], vec![]);
    let ctx = RequestContext::default();
    let e = delete_resource(&s, &nsg_id("nsg-vms"), &lab(), &ctx).unwrap_err();
    assert_eq!(e.code, "InUseNetworkSecurityGroupCannotBeDeleted");
    let e = delete_resource(
        &s,
        &rid("Microsoft.Network/applicationSecurityGroups/web-asg"),
        &lab(),
        &ctx,
    )
    .unwrap_err();
    assert_eq!(e.code, "InUseApplicationSecurityGroupCannotBeDeleted");
    let s2 = deploy(&s, json!([nsg("spare", vec![])])).unwrap();
    assert!(delete_resource(&s2, &nsg_id("spare"), &lab(), &ctx).is_ok());
    let mut other = nsg("far", vec![]);
    other["location"] = json!("eastus");
    let mut res = lab_resources(vec![], vec![], vec![]);
    res.as_array_mut().unwrap().push(other);
    res[4]["properties"]["subnets"][1]["properties"]["networkSecurityGroup"] = nsg_ref("far");
    assert_eq!(code(fresh(res)), "LocationMismatch");
}

#[test]
fn default_rules_and_effective_shape() {
    let s = lab_state(
        vec![],
        vec![rule(
            "ssh",
            300,
            "Inbound",
            "Allow",
            "Tcp",
            "VirtualNetwork",
            "*",
            "22",
        )],
        vec![],
    );
    let v = effective_security_rules_for_nic(&s, &lab(), &nic_id("nic1")).unwrap();
    let value = v["value"].as_array().unwrap();
    assert_eq!(value.len(), 2, "NIC NSG then subnet NSG");
    assert_eq!(
        value[0]["networkSecurityGroup"]["id"],
        json!(nsg_id("nsg-nic").to_string())
    );
    assert_eq!(
        value[0]["association"]["networkInterface"]["id"],
        json!(nic_id("nic1").to_string())
    );
    assert!(value[1]["association"]["subnet"]["id"]
        .as_str()
        .unwrap()
        .ends_with("/subnets/vms"));
    let rules = value[1]["effectiveSecurityRules"].as_array().unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "securityRules/ssh",
            "defaultSecurityRules/AllowVnetInBound",
            "defaultSecurityRules/AllowAzureLoadBalancerInBound",
            "defaultSecurityRules/DenyAllInBound",
            "defaultSecurityRules/AllowVnetOutBound",
            "defaultSecurityRules/AllowInternetOutBound",
            "defaultSecurityRules/DenyAllOutBound",
        ]
    );
    let ssh = &rules[0];
    for key in [
        "name",
        "protocol",
        "sourcePortRange",
        "destinationPortRange",
        "sourcePortRanges",
        "destinationPortRanges",
        "sourceAddressPrefix",
        "destinationAddressPrefix",
        "sourceAddressPrefixes",
        "destinationAddressPrefixes",
        "expandedSourceAddressPrefix",
        "expandedDestinationAddressPrefix",
        "access",
        "priority",
        "direction",
    ] {
        assert!(ssh.get(key).is_some(), "{key} missing");
    }
    assert_eq!(ssh["protocol"], "Tcp");
    assert_eq!(ssh["destinationPortRange"], "22-22");
    assert_eq!(ssh["sourceAddressPrefix"], "VirtualNetwork");
    assert_eq!(
        ssh["expandedSourceAddressPrefix"],
        json!(["10.0.0.0/16", "168.63.129.16/32"])
    );
    assert_eq!(ssh["destinationAddressPrefix"], "0.0.0.0/0");
    assert_eq!(rules[3]["protocol"], "All");
    assert_eq!(rules[3]["priority"], 65500);
    assert_eq!(rules[3]["access"], "Deny");
    // Subnet and app views.
    let sub = rid("Microsoft.Network/virtualNetworks/vnet1/subnets/vms");
    assert_eq!(
        effective_security_rules_for_subnet(&s, &lab(), &sub).unwrap()["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let app =
        effective_security_rules_for_app(&s, &lab(), &rid("Microsoft.Web/sites/web1"), 0).unwrap();
    let app_rules = app["value"][0]["effectiveSecurityRules"]
        .as_array()
        .unwrap();
    assert!(
        app_rules.iter().all(|r| r["direction"] == "Outbound"),
        "inbound rules never apply to the app"
    );
    assert_eq!(app_rules.len(), 3);
    assert_eq!(
        effective_security_rules_for_app(&s, &lab(), &rid("Microsoft.Web/sites/web1"), 5)
            .unwrap_err()
            .code,
        "InstanceOutOfRange"
    );
    // The NSG view.
    let view = crate::plan::view::resource_view(&s, &lab(), &nsg_id("nsg-vms")).unwrap();
    assert_eq!(
        view["properties"]["defaultSecurityRules"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        view["properties"]["defaultSecurityRules"][0]["name"],
        "AllowVnetInBound"
    );
    assert!(view["properties"]["subnets"][0]["id"]
        .as_str()
        .unwrap()
        .ends_with("/subnets/vms"));
    assert!(view["properties"]["securityRules"][0]["id"]
        .as_str()
        .unwrap()
        .ends_with("/securityRules/ssh"));
    let nic_view = crate::plan::view::resource_view(&s, &lab(), &nsg_id("nsg-nic")).unwrap();
    assert_eq!(
        nic_view["properties"]["networkInterfaces"][0]["id"],
        json!(nic_id("nic1").to_string())
    );
}

#[test]
fn tags_and_asgs_expand() {
    let mut r = rule(
        "to-web", 100, "Inbound", "Allow", "Tcp", "Internet", "*", "80",
    );
    r["properties"]
        .as_object_mut()
        .unwrap()
        .remove("destinationAddressPrefix");
    r["properties"]["destinationApplicationSecurityGroups"] =
        json!([{"id": id_str("Microsoft.Network/applicationSecurityGroups/web-asg")}]);
    let s = lab_state(vec![], vec![r], vec![]);
    let v = effective_security_rules_for_subnet(
        &s,
        &lab(),
        &rid("Microsoft.Network/virtualNetworks/vnet1/subnets/vms"),
    )
    .unwrap();
    let rule = &v["value"][0]["effectiveSecurityRules"][0];
    assert_eq!(
        rule["expandedDestinationAddressPrefix"],
        json!(["10.0.2.4/32"])
    );
    let internet: Vec<String> =
        serde_json::from_value(rule["expandedSourceAddressPrefix"].clone()).unwrap();
    assert!(internet.contains(&"0.0.0.0/5".to_string()));
    assert!(!internet.iter().any(|p| p
        .parse::<Ipv4Net>()
        .unwrap()
        .contains(&"10.0.2.4".parse::<Ipv4Addr>().unwrap())));
    assert!(!internet
        .iter()
        .any(|p| p.parse::<Ipv4Net>().unwrap().contains(&AZURE_PLATFORM_IP)));
    // The kernel's view: named sets in the fabric batch.
    let plan = build(&s, &lab());
    let fabric = plan
        .namespaces
        .values()
        .find(|n| matches!(n.role, NamespaceRole::Fabric { .. }))
        .unwrap();
    let text = fabric.nft.as_ref().unwrap().to_string();
    assert!(
        text.contains("\"tag-internet\"")
            && text.contains("\"tag-virtualnetwork\"")
            && text.contains("\"asg-")
    );
}

#[test]
fn lowest_priority_number_wins() {
    let s = lab_state(
        vec![],
        vec![
            rule("allow-80", 200, "Inbound", "Allow", "Tcp", "*", "*", "80"),
            rule("deny-80", 300, "Inbound", "Deny", "Tcp", "*", "*", "80"),
            rule("deny-81", 100, "Inbound", "Deny", "Tcp", "*", "*", "81"),
        ],
        vec![],
    );
    let from2 = |port| {
        evaluate(
            &s,
            &lab(),
            &tcp(
                FlowOrigin::Nic(nic_id("nic2")),
                "10.0.2.5",
                "10.0.2.4",
                port,
            ),
        )
        .unwrap()
    };
    let v = from2(80);
    assert_eq!(v.access, Access::Allow);
    assert!(v.steps.iter().any(|s| s.rule == "securityRules/allow-80"));
    let v = from2(81);
    assert_eq!(v.access, Access::Deny);
    assert_eq!(v.deciding().unwrap().rule, "securityRules/deny-81");
    assert_eq!(v.deciding().unwrap().priority, 100);
    // Port 22 falls to the default AllowVnetInBound.
    assert_eq!(from2(22).access, Access::Allow);
}

#[test]
fn azure_order_nic_then_subnet_out_subnet_then_nic_in() {
    let s = lab_state(vec![], vec![], vec![]);
    // vm1 (NIC NSG + subnet NSG) -> vm2 (subnet NSG only).
    let v = evaluate(
        &s,
        &lab(),
        &tcp(FlowOrigin::Nic(nic_id("nic1")), "10.0.2.4", "10.0.2.5", 22),
    )
    .unwrap();
    let order: Vec<(String, Direction)> = v
        .steps
        .iter()
        .map(|s| (s.association.0.clone(), s.direction))
        .collect();
    assert_eq!(
        order,
        [
            ("networkInterface".to_string(), Direction::Outbound),
            ("subnet".to_string(), Direction::Outbound),
            ("subnet".to_string(), Direction::Inbound),
        ]
    );
    // vm2 -> vm1: subnet NSG, then NIC NSG on the way in.
    let v = evaluate(
        &s,
        &lab(),
        &tcp(FlowOrigin::Nic(nic_id("nic2")), "10.0.2.5", "10.0.2.4", 22),
    )
    .unwrap();
    let order: Vec<(&str, Direction, &str)> = v
        .steps
        .iter()
        .map(|s| (s.association.0.as_str(), s.direction, s.nsg.name()))
        .collect();
    assert_eq!(
        order,
        [
            ("subnet", Direction::Outbound, "nsg-vms"),
            ("subnet", Direction::Inbound, "nsg-vms"),
            ("networkInterface", Direction::Inbound, "nsg-nic"),
        ]
    );
    // A deny in the NIC NSG stops before the subnet NSG is asked.
    let s = lab_state(
        vec![],
        vec![],
        vec![rule("no-out", 100, "Outbound", "Deny", "*", "*", "*", "*")],
    );
    let v = evaluate(
        &s,
        &lab(),
        &tcp(FlowOrigin::Nic(nic_id("nic1")), "10.0.2.4", "10.0.2.5", 22),
    )
    .unwrap();
    assert_eq!(v.access, Access::Deny);
    assert_eq!(v.steps.len(), 1);
    // The internet reaches a NIC only through the inbound rules: default deny.
    let v = evaluate(
        &s,
        &lab(),
        &tcp(
            FlowOrigin::Internet {
                vnet: rid("Microsoft.Network/virtualNetworks/vnet1"),
            },
            "198.18.100.10",
            "10.0.2.5",
            22,
        ),
    )
    .unwrap();
    assert_eq!(v.access, Access::Deny);
    assert_eq!(
        v.deciding().unwrap().rule,
        "defaultSecurityRules/DenyAllInBound"
    );
    // 168.63.129.16 is never filtered.
    let v = evaluate(
        &s,
        &lab(),
        &tcp(
            FlowOrigin::Nic(nic_id("nic1")),
            "10.0.2.4",
            "168.63.129.16",
            53,
        ),
    )
    .unwrap();
    assert_eq!((v.access, v.steps.len()), (Access::Allow, 0));
}

#[test]
fn app_traffic_gets_only_the_integration_subnet_outbound_rules() {
    let s = lab_state(
        vec![
            rule(
                "no-ssh",
                100,
                "Outbound",
                "Deny",
                "Tcp",
                "*",
                "10.0.2.0/24",
                "22",
            ),
            rule("in-ignored", 100, "Inbound", "Deny", "*", "*", "*", "*"),
        ],
        vec![],
        vec![],
    );
    let app = || FlowOrigin::App {
        site: rid("Microsoft.Web/sites/web1"),
        instance: 0,
    };
    let v = evaluate(&s, &lab(), &tcp(app(), "10.0.1.4", "10.0.2.5", 22)).unwrap();
    assert_eq!(v.access, Access::Deny);
    assert_eq!(v.deciding().unwrap().nsg.name(), "nsg-int");
    let v = evaluate(&s, &lab(), &tcp(app(), "10.0.1.4", "10.0.2.5", 80)).unwrap();
    assert_eq!(v.access, Access::Allow);
    assert_eq!(v.steps.len(), 2, "subnet out, then vms subnet in");
    // Nothing is ever dispatched to the inbound chain of the integration subnet.
    let plan = build(&s, &lab());
    let fabric = plan
        .namespaces
        .values()
        .find(|n| matches!(n.role, NamespaceRole::Fabric { .. }))
        .unwrap();
    let text = fabric.nft.as_ref().unwrap().to_string();
    let int_in = compile::chain_name(&nsg_id("nsg-int"), Direction::Inbound);
    let jumps_in = text
        .matches(&format!("{{\"jump\":{{\"target\":\"{int_in}\"}}}}"))
        .count();
    assert_eq!(jumps_in, 0);
}

fn fabric_batch(s: &LabState) -> Value {
    let plan = build(s, &lab());
    plan.namespaces
        .values()
        .find(|n| matches!(n.role, NamespaceRole::Fabric { .. }))
        .unwrap()
        .nft
        .clone()
        .unwrap()
}

fn rules_of_chain(batch: &Value, chain: &str) -> usize {
    batch["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["add"]["rule"]["chain"] == chain)
        .count()
}

/// (counter map entries, verdict map entries) of a direction's chain.
fn map_entries(batch: &Value, chain: &str) -> (usize, usize) {
    let rules: Vec<&Value> = batch["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["add"]["rule"]["chain"] == chain)
        .collect();
    let len = |v: &Value| v["set"].as_array().map_or(0, Vec::len);
    let expr = |r: &Value| r["add"]["rule"]["expr"][0].clone();
    let counters = rules
        .iter()
        .map(|r| len(&expr(r)["counter"]["map"]["data"]))
        .sum();
    let verdicts = rules
        .iter()
        .filter(|r| expr(r)["vmap"]["key"]["meta"]["key"] == "mark")
        .map(|r| len(&expr(r)["vmap"]["data"]))
        .sum();
    (counters, verdicts)
}

#[test]
fn thousand_rules_one_chain_deterministic_and_accepted_by_nft() {
    let mut rules: Vec<Value> = (0..1000u32)
        .map(|i| {
            let dir = if i % 2 == 0 { "Inbound" } else { "Outbound" };
            let mut r = rule(
                &format!("r{i}"),
                100 + i / 2,
                dir,
                if i % 3 == 0 { "Deny" } else { "Allow" },
                ["Tcp", "Udp", "Icmp", "*"][i as usize % 4],
                "*",
                "*",
                "*",
            );
            let p = r["properties"].as_object_mut().unwrap();
            p.remove("destinationAddressPrefix");
            p.remove("destinationPortRange");
            p.insert(
                "destinationAddressPrefixes".into(),
                json!([format!("10.{}.{}.0/24", i / 256, i % 256), "192.168.0.1"]),
            );
            p.insert(
                "destinationPortRanges".into(),
                json!([format!("{}", 1000 + i), "2000-2100"]),
            );
            r
        })
        .collect();
    rules.push(rule(
        "to-storage",
        1000,
        "Outbound",
        "Allow",
        "Tcp",
        "VirtualNetwork",
        "Storage.WestEurope",
        "443",
    ));
    let s = lab_state(vec![], rules.clone(), vec![]);
    let batch = fabric_batch(&s);
    let id = nsg_id("nsg-vms");
    let (out, inn) = (
        compile::chain_name(&id, Direction::Outbound),
        compile::chain_name(&id, Direction::Inbound),
    );
    // Each direction: reset the rank, walk the tree, count, decide; the
    // counter map and the verdict map name every rule once.
    assert_eq!(rules_of_chain(&batch, &inn), 4);
    assert_eq!(rules_of_chain(&batch, &out), 4);
    assert_eq!(map_entries(&batch, &inn), (500 + 3, 500 + 3));
    // `to-storage` names a service tag that is empty until issue 5: it can
    // match nothing, so no map names it (its counter exists, at 0).
    assert_eq!(map_entries(&batch, &out), (500 + 3, 500 + 3));
    // Deterministic: same state, same batch; rule order in the template does not matter.
    assert_eq!(batch, fabric_batch(&s));
    rules.reverse();
    assert_eq!(batch, fabric_batch(&lab_state(vec![], rules, vec![])));
    // Counters: one per rule, as nsg_counter_names says.
    let names = nsg_counter_names(&s, &lab(), &id);
    assert_eq!(names.len(), 1001 + 6);
    let items = batch["nftables"].as_array().unwrap();
    let objects: BTreeSet<&str> = items
        .iter()
        .filter_map(|i| i["add"]["counter"]["name"].as_str())
        .collect();
    let mapped: BTreeSet<&str> = items
        .iter()
        .filter_map(|i| i["add"]["rule"]["expr"][0]["counter"]["map"]["data"]["set"].as_array())
        .flatten()
        .filter_map(|e| e[1].as_str())
        .collect();
    assert!(names.iter().all(|(_, _, c)| objects.contains(c.as_str())));
    let in_a_map = names
        .iter()
        .filter(|(_, _, c)| mapped.contains(c.as_str()))
        .count();
    assert_eq!(in_a_map, names.len() - 1, "all but to-storage");
    assert!(names
        .iter()
        .any(|(r, _, _)| r == "defaultSecurityRules/DenyAllInBound"));
    if !nft_available() {
        return;
    }
    if let Err(e) = nft_check(&batch) {
        panic!("nft rejected the 1,000-rule batch:\n{e}");
    }
}

#[test]
fn every_batch_of_an_nsg_lab_passes_nft_check() {
    let mut r = rule("asg", 110, "Inbound", "Allow", "Tcp", "Internet", "*", "80");
    r["properties"]
        .as_object_mut()
        .unwrap()
        .remove("destinationAddressPrefix");
    r["properties"]["destinationApplicationSecurityGroups"] =
        json!([{"id": id_str("Microsoft.Network/applicationSecurityGroups/web-asg")}]);
    let s = lab_state(
        vec![rule(
            "no-ssh",
            100,
            "Outbound",
            "Deny",
            "Tcp",
            "*",
            "10.0.2.0/24",
            "22",
        )],
        vec![
            r,
            rule(
                "icmp",
                120,
                "Inbound",
                "Allow",
                "Icmp",
                "VirtualNetwork",
                "10.0.2.5",
                "*",
            ),
        ],
        vec![rule(
            "kv",
            100,
            "Outbound",
            "Allow",
            "*",
            "*",
            "AzureKeyVault",
            "443",
        )],
    );
    if !nft_available() {
        return;
    }
    assert!(check_plan(&build(&s, &lab())) > 0);
}
