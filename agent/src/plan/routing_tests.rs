//! The routing lab: a firewall NVA with IP forwarding and a public IP behind
//! a 0.0.0.0/0 UDR of an integration subnet (forced tunnelling), a NAT
//! gateway on another integration subnet, a VM subnet whose UDR points at an
//! address nobody holds; checked route by route, rule by rule and by the real nft.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::*;
use crate::model::{LabConfig, LabState, SubscriptionSettings};
use crate::validate::fixtures::{deploy, id_str, rid};

fn net_id(path: &str) -> Value {
    json!({"id": id_str(&format!("Microsoft.Network/{path}"))})
}

fn subnet(name: &str, prefix: &str, delegated: bool, extra: Value) -> Value {
    let mut s = json!({"name": name, "properties": {"addressPrefix": prefix}});
    if delegated {
        s["properties"]["delegations"] =
            json!([{"name": "d", "properties": {"serviceName": "Microsoft.Web/serverFarms"}}]);
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        s["properties"][k] = v.clone();
    }
    s
}

fn route(name: &str, prefix: &str, hop: &str, ip: Option<&str>) -> Value {
    let mut r = json!({"name": name, "properties": {"addressPrefix": prefix, "nextHopType": hop}});
    if let Some(ip) = ip {
        r["properties"]["nextHopIpAddress"] = json!(ip);
    }
    r
}

fn nic(name: &str, subnet: &str, addr: &str, forwarding: bool, pip: Option<&str>) -> Value {
    let mut cfg = json!({"name": "ipconfig1", "properties": {
        "subnet": net_id(&format!("virtualNetworks/hub/subnets/{subnet}")),
        "privateIPAllocationMethod": "Static", "privateIPAddress": addr}});
    if let Some(p) = pip {
        cfg["properties"]["publicIPAddress"] = net_id(&format!("publicIPAddresses/{p}"));
    }
    json!({"type": "Microsoft.Network/networkInterfaces", "name": name,
           "properties": {"enableIPForwarding": forwarding, "ipConfigurations": [cfg]}})
}

fn vm(name: &str, nic: &str) -> Value {
    json!({"type": "Microsoft.Compute/virtualMachines", "name": name,
           "properties": {"networkProfile": {"networkInterfaces": [net_id(&format!("networkInterfaces/{nic}"))]}}})
}

fn plan(name: &str, capacity: u32) -> Value {
    json!({"type": "Microsoft.Web/serverfarms", "name": name, "kind": "linux",
           "sku": {"name": "P1v3", "capacity": capacity}, "properties": {"reserved": true}})
}

fn site(name: &str, plan: &str, subnet: &str, route_all: bool) -> Value {
    json!({"type": "Microsoft.Web/sites", "name": name, "properties": {
        "serverFarmId": id_str(&format!("Microsoft.Web/serverfarms/{plan}")),
        "virtualNetworkSubnetId": id_str(&format!("Microsoft.Network/virtualNetworks/hub/subnets/{subnet}")),
        "vnetRouteAllEnabled": route_all}})
}

pub(super) fn routing_resources() -> Value {
    json!([
        {"type": "Microsoft.Network/routeTables", "name": "rt-fw", "properties": {"routes": [
            route("default-to-fw", "0.0.0.0/0", "VirtualAppliance", Some("10.0.2.4"))]}},
        {"type": "Microsoft.Network/routeTables", "name": "rt-vms", "properties": {
            "disableBgpRoutePropagation": true, "routes": [
            route("to-nowhere", "0.0.0.0/0", "VirtualAppliance", Some("10.0.9.9")),
            route("drop-onprem", "192.168.0.0/16", "None", None),
            route("gw", "172.16.0.0/12", "VirtualNetworkGateway", None)]}},
        {"type": "Microsoft.Network/publicIPAddresses", "name": "pip-fw", "sku": {"name": "Standard"},
         "properties": {"publicIPAllocationMethod": "Static"}},
        {"type": "Microsoft.Network/publicIPAddresses", "name": "pip-ng", "sku": {"name": "Standard"},
         "properties": {"publicIPAllocationMethod": "Static"}},
        {"type": "Microsoft.Network/publicIPPrefixes", "name": "pfx-ng", "sku": {"name": "Standard"},
         "properties": {"prefixLength": 31}},
        {"type": "Microsoft.Network/natGateways", "name": "ng", "sku": {"name": "Standard"},
         "properties": {"idleTimeoutInMinutes": 10,
            "publicIpAddresses": [net_id("publicIPAddresses/pip-ng")],
            "publicIpPrefixes": [net_id("publicIPPrefixes/pfx-ng")]}},
        {"type": "Microsoft.Network/virtualNetworks", "name": "hub", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [
                subnet("integ-fw", "10.0.1.0/24", true, json!({"routeTable": net_id("routeTables/rt-fw")})),
                subnet("fw", "10.0.2.0/24", false, json!({})),
                subnet("integ-nat", "10.0.3.0/24", true, json!({"natGateway": net_id("natGateways/ng")})),
                subnet("vms", "10.0.4.0/24", false, json!({"routeTable": net_id("routeTables/rt-vms")})),
            ]}},
        nic("fw-nic", "fw", "10.0.2.4", true, Some("pip-fw")),
        vm("fw1", "fw-nic"),
        nic("vm2-nic", "vms", "10.0.4.4", false, None),
        vm("vm2", "vm2-nic"),
        plan("plan-fw", 1),
        site("app-fw", "plan-fw", "integ-fw", true),
        plan("plan-nat", 3),
        site("app-nat", "plan-nat", "integ-nat", true),
        site("app-nat-direct", "plan-nat", "integ-nat", false),
        {"type": "Lab.Emulator/internetHosts", "name": "host1", "properties": {"ipAddress": "198.18.100.10"}},
    ])
}

pub(super) fn routing_state() -> LabState {
    deploy(&LabState::default(), routing_resources()).unwrap()
}

fn one<'a>(p: &'a NetworkPlan, prefix: &str) -> &'a NamespacePlan {
    let v: Vec<_> = p
        .namespaces
        .values()
        .filter(|n| n.name.starts_with(prefix))
        .collect();
    assert_eq!(v.len(), 1, "{prefix}");
    v[0]
}

fn table(n: &NamespacePlan, t: u32) -> BTreeMap<String, RouteKind> {
    n.routes
        .iter()
        .filter(|r| r.table == t)
        .map(|r| (r.destination.to_string(), r.kind.clone()))
        .collect()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn link_of(p: &NetworkPlan, ns_prefix: &str, ifname: &str) -> String {
    names::link('n', &one(p, ns_prefix).name, ifname)
}

fn public(state: &LabState, name: &str) -> Ipv4Addr {
    state.allocations.public_ips[&rid(&format!("Microsoft.Network/publicIPAddresses/{name}")).key()]
}

#[test]
fn subnet_tables_follow_the_effective_routes() {
    let s = routing_state();
    let p = build(&s, &LabConfig::default());
    let fab = one(&p, "vl-vnet-hub-");
    let fw_link = link_of(&p, "vl-vm-fw1-", "eth0");
    // integ-fw (table 1000): 0/0 to the firewall's NIC; no None routes (a 0/0 UDR).
    let t = table(fab, 1000);
    assert_eq!(
        t["0.0.0.0/0"],
        RouteKind::Via {
            gateway: ip("10.0.2.4"),
            ifname: fw_link,
            onlink: true
        }
    );
    assert_eq!(t["10.0.0.0/16"], RouteKind::Throw);
    assert_eq!(t.len(), 2, "{t:?}");
    // fw (1001): plain system routes, internet via inet0.
    let t = table(fab, 1001);
    assert_eq!(
        t["0.0.0.0/0"],
        RouteKind::Via {
            gateway: ip("169.254.1.1"),
            ifname: "inet0".into(),
            onlink: true
        }
    );
    assert_eq!(t["10.0.0.0/8"], RouteKind::Blackhole);
    // integ-nat (1002): a NAT gateway sends App Service internet traffic out
    // of the fabric, not back to the stamp.
    assert_eq!(
        table(fab, 1002)["0.0.0.0/0"],
        RouteKind::Via {
            gateway: ip("169.254.1.1"),
            ifname: "inet0".into(),
            onlink: true
        }
    );
    // vms (1003): an appliance nobody holds, None and a gateway (none in the lab) drop.
    let t = table(fab, 1003);
    assert_eq!(t["0.0.0.0/0"], RouteKind::Blackhole);
    assert_eq!(t["192.168.0.0/16"], RouteKind::Blackhole);
    assert_eq!(t["172.16.0.0/12"], RouteKind::Blackhole);
    assert_eq!(t["10.0.0.0/16"], RouteKind::Throw);
}

#[test]
fn fabric_owns_nat_and_public_ips_and_translates_them() {
    let s = routing_state();
    let p = build(&s, &LabConfig::default());
    let fab = one(&p, "vl-vnet-hub-");
    let inet = one(&p, "vl-inet");
    let prefix = s
        .allocations
        .public_ip_prefixes
        .values()
        .next()
        .copied()
        .unwrap();
    let nat_ips = [public(&s, "pip-ng"), prefix.network(), prefix.broadcast()];
    let fw_pip = public(&s, "pip-fw");
    let uplink = names::link('f', &fab.name, "inet0");
    for a in nat_ips.iter().chain([&fw_pip]) {
        assert!(
            fab.addresses
                .iter()
                .any(|x| x.ifname == "lo" && x.address.addr() == *a),
            "{a}"
        );
        assert!(
            inet.routes.iter().any(|r| r.destination.addr() == *a
                && r.kind
                    == RouteKind::Dev {
                        ifname: uplink.clone()
                    }),
            "{a}"
        );
    }
    let text = fab.nft.as_ref().unwrap().to_string();
    // NAT gateway: TCP/UDP spread over its 3 addresses, idle timeout 10 min.
    for a in nat_ips {
        assert!(
            text.contains(&format!(
                r#""addr":"{a}","family":"ip","port":{{"range":[1024,65535]}}"#
            )),
            "{a}"
        );
    }
    assert_eq!(
        fab.sysctls
            .get("net/netfilter/nf_conntrack_tcp_timeout_established")
            .map(String::as_str),
        Some("600"),
        "the NAT gateway's idle timeout is the fabric's established TCP timeout"
    );
    assert!(text.contains(r#"{"numgen":{"mod":3,"mode":"inc","offset":0}}"#));
    assert!(text.contains(r#"[1002,{"jump":{"target":"natgw-0"}}]"#));
    // 1:1 NAT of the firewall's public IP.
    assert!(text.contains(&format!(r#"["{fw_pip}","10.0.2.4"]"#)));
    let fw_link = link_of(&p, "vl-vm-fw1-", "eth0");
    assert!(text.contains(&format!(
        r#"[{{"concat":["{fw_link}","10.0.2.4"]}},"{fw_pip}"]"#
    )));
    // Spoofing: vm2 (no forwarding) and the workers are guarded, the firewall is not.
    let vm2_link = link_of(&p, "vl-vm-vm2-", "eth0");
    let rules: Vec<&Value> = fab.nft.as_ref().unwrap()["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["add"].get("rule"))
        .collect();
    let guarded: Vec<String> = rules
        .iter()
        .filter(|r| r.to_string().contains("spoofed-source"))
        .map(|r| r["chain"].as_str().unwrap().to_string())
        .collect();
    assert!(guarded.contains(&format!("from-{vm2_link}")));
    assert!(!guarded.contains(&format!("from-{fw_link}")));
    assert_eq!(
        guarded.len(),
        1 + 1 + 3,
        "vm2, the plan-fw worker, three plan-nat workers"
    );
    let vm2_spoof = rules
        .iter()
        .find(|r| r["chain"] == format!("to-{vm2_link}"))
        .unwrap()
        .to_string();
    assert!(vm2_spoof.contains(r#""op":"!=""#) && vm2_spoof.contains(r#""right":"10.0.4.4""#));
    // SMTP: blocked by default, allowed once the subscription allows it.
    assert!(text.contains(r#""smtp-blocked""#));
    let sub = rid("Microsoft.Network/virtualNetworks/hub").subscription;
    let allowed = crate::validate::set_subscription_settings(
        &s,
        &sub,
        SubscriptionSettings {
            allow_outbound_smtp: true,
        },
    );
    let p2 = build(&allowed, &LabConfig::default());
    assert!(!one(&p2, "vl-vnet-hub-")
        .nft
        .as_ref()
        .unwrap()
        .to_string()
        .contains("smtp-blocked"));
    let f_link = names::link('f', &fab.name, "stamp0");
    let smtp_links = |p: &NetworkPlan| -> Vec<String> {
        one(p, "vl-stamp-").nft.as_ref().unwrap()["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .filter(|r| r["chain"] == "forward")
            .flat_map(|r| {
                r["expr"][2]["match"]["right"]["set"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert!(smtp_links(&p).contains(&f_link));
    assert!(!smtp_links(&p2).contains(&f_link));
}

#[test]
fn stamp_gives_each_instance_its_own_port_range_and_drops_smtp() {
    let s = routing_state();
    let p = build(&s, &LabConfig::default());
    let st = one(&p, "vl-stamp-");
    let text = st.nft.as_ref().unwrap().to_string();
    let plan_nat = rid("Microsoft.Web/serverfarms/plan-nat").key();
    let ips = &s.allocations.plan_outbound[&plan_nat];
    // Instances 0 and 2 share the first outbound IP: distinct ranges of 128.
    assert!(text.contains(&format!(
        r#""addr":"{}","family":"ip","port":{{"range":[1024,1151]}}"#,
        ips[0]
    )));
    assert!(text.contains(&format!(
        r#""addr":"{}","family":"ip","port":{{"range":[1152,1279]}}"#,
        ips[0]
    )));
    assert!(text.contains(&format!(
        r#""addr":"{}","family":"ip","port":{{"range":[1024,1151]}}"#,
        ips[1]
    )));
    // Smaller ranges when configured.
    let lab = LabConfig {
        snat_ports_per_instance: 16,
        ..LabConfig::default()
    };
    let t16 = one(&build(&s, &lab), "vl-stamp-")
        .nft
        .as_ref()
        .unwrap()
        .to_string();
    assert!(t16.contains(&format!(
        r#""addr":"{}","family":"ip","port":{{"range":[1040,1055]}}"#,
        ips[0]
    )));
    // TCP 25 from every worker link is dropped.
    assert!(
        text.contains(r#"{"payload":{"field":"dport","protocol":"tcp"}},"op":"==","right":25}"#)
    );
    for w in p
        .namespaces
        .values()
        .filter(|n| n.name.starts_with("vl-wk-"))
    {
        assert!(text.contains(&names::link('w', &w.name, "pub0")));
    }
}

#[test]
fn effective_routes_for_subnets_nics_and_apps() {
    let s = routing_state();
    let lab = LabConfig::default();
    let sub = |n: &str| {
        rid(&format!(
            "Microsoft.Network/virtualNetworks/hub/subnets/{n}"
        ))
    };
    let v = effective_routes_for_subnet(&s, &lab, &sub("integ-fw")).unwrap();
    let rows = v["value"].as_array().unwrap();
    let user = rows.iter().find(|r| r["source"] == "User").unwrap();
    assert_eq!(user["nextHopType"], "VirtualAppliance");
    assert_eq!(user["nextHopIpAddress"], json!(["10.0.2.4"]));
    assert_eq!(user["name"], "default-to-fw");
    let sys = rows
        .iter()
        .find(|r| r["source"] == "Default" && r["addressPrefix"] == json!(["0.0.0.0/0"]))
        .unwrap();
    assert_eq!(sys["state"], "Invalid");
    let vms = effective_routes_for_nic(
        &s,
        &lab,
        &rid("Microsoft.Network/networkInterfaces/vm2-nic"),
    )
    .unwrap();
    assert!(vms["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["disableBgpRoutePropagation"] == true));
    assert_eq!(
        effective_routes_for_subnet(&s, &lab, &sub("nope"))
            .unwrap_err()
            .code,
        "ResourceNotFound"
    );
    // Route All on: the subnet's routes.
    let app = effective_routes_for_app(&s, &lab, &rid("Microsoft.Web/sites/app-fw"), 0).unwrap();
    assert_eq!(app["value"], v["value"]);
    // Route All off: RFC1918 into the VNet, the rest straight out of the stamp.
    let app =
        effective_routes_for_app(&s, &lab, &rid("Microsoft.Web/sites/app-nat-direct"), 1).unwrap();
    let rows = app["value"].as_array().unwrap();
    assert_eq!(rows[0]["nextHopType"], VNET_INTEGRATION);
    assert_eq!(rows[1]["nextHopType"], APP_SERVICE_DIRECT);
    let internet = rows
        .iter()
        .find(|r| r["nextHopType"] == "Internet")
        .unwrap();
    assert_eq!(
        internet["appliesTo"],
        json!([
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "168.63.129.16/32"
        ])
    );
    let cgnat = rows
        .iter()
        .find(|r| r["addressPrefix"] == json!(["100.64.0.0/10"]))
        .unwrap();
    assert_eq!(cgnat["state"], "Invalid");
    assert_eq!(
        effective_routes_for_app(&s, &lab, &rid("Microsoft.Web/sites/app-nat"), 3)
            .unwrap_err()
            .code,
        "InstanceOutOfRange"
    );
}

#[test]
fn views_show_associations_and_addresses() {
    let s = routing_state();
    let lab = LabConfig::default();
    let show = |path: &str| view::resource_view(&s, &lab, &rid(path)).unwrap();
    let rt = show("Microsoft.Network/routeTables/rt-fw");
    assert_eq!(
        rt["properties"]["subnets"],
        json!([{"id": id_str("Microsoft.Network/virtualNetworks/hub/subnets/integ-fw")}])
    );
    let ng = show("Microsoft.Network/natGateways/ng");
    assert_eq!(
        ng["properties"]["subnets"][0]["id"],
        id_str("Microsoft.Network/virtualNetworks/hub/subnets/integ-nat")
    );
    assert_eq!(ng["emulator"]["ipAddresses"].as_array().unwrap().len(), 3);
    let pip = show("Microsoft.Network/publicIPAddresses/pip-fw");
    assert_eq!(
        pip["properties"]["ipAddress"],
        public(&s, "pip-fw").to_string()
    );
    assert_eq!(
        pip["properties"]["ipConfiguration"]["id"],
        id_str("Microsoft.Network/networkInterfaces/fw-nic/ipConfigurations/ipconfig1")
    );
    let pfx = show("Microsoft.Network/publicIPPrefixes/pfx-ng");
    assert!(pfx["properties"]["ipPrefix"]
        .as_str()
        .unwrap()
        .ends_with("/31"));
    let subnet = show("Microsoft.Network/virtualNetworks/hub/subnets/integ-nat");
    assert_eq!(
        subnet["properties"]["natGateway"]["id"],
        id_str("Microsoft.Network/natGateways/ng")
    );
    let subnet = show("Microsoft.Network/virtualNetworks/hub/subnets/integ-fw");
    assert_eq!(
        subnet["properties"]["routeTable"]["id"],
        id_str("Microsoft.Network/routeTables/rt-fw")
    );
    let site = show("Microsoft.Web/sites/app-nat");
    assert_eq!(
        site["emulator"]["natGatewayIpAddresses"],
        ng["emulator"]["ipAddresses"]
    );
    assert!(show("Microsoft.Web/sites/app-fw")["emulator"]
        .get("natGatewayIpAddresses")
        .is_none());
    let plan_nat = rid("Microsoft.Web/serverfarms/plan-nat").key();
    let outbound: Vec<String> = s.allocations.plan_outbound[&plan_nat]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        site["properties"]["outboundIpAddresses"],
        outbound.join(",")
    );
}
