//! Which DNS servers each namespace uses (plan), and the rules on DNS
//! settings and VM extensions (validation).

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::model::LabConfig;
use crate::plan::dns::{AZURE_DNS, PUBLIC_DNS};
use crate::plan::{self, DnsView, NamespaceRole, NetworkPlan};
use crate::validate::fixtures::{code, fresh, nic, plan as plan_res, site, subnet, vm, vnet};

fn vnet_with_dns(servers: Value) -> Value {
    let mut v = vnet(
        "v1",
        json!(["10.0.0.0/16"]),
        json!([subnet("apps", "10.0.1.0/24"), subnet("vms", "10.0.2.0/24")]),
    );
    v["properties"]["dhcpOptions"] = json!({ "dnsServers": servers });
    v
}

fn with_settings(mut s: Value, settings: &[(&str, &str)]) -> Value {
    s["properties"]["siteConfig"] = json!({ "appSettings": settings.iter()
        .map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>() });
    s
}

fn lab(dns: Value, web2_settings: &[(&str, &str)]) -> Vec<Value> {
    vec![
        vnet_with_dns(dns),
        plan_res("p1", "P1v3", 1),
        site("web1", "p1", Some("v1/subnets/apps")),
        with_settings(site("web2", "p1", Some("v1/subnets/apps")), web2_settings),
        site("solo", "p1", None),
        nic("n1", "v1/subnets/vms", Some("10.0.2.4")),
        vm("vm1", &["n1"]),
        json!({"type": "Lab.Emulator/internetHosts", "name": "h1", "properties": {"ipAddress": "198.18.0.50"}}),
    ]
}

fn build(resources: Vec<Value>) -> NetworkPlan {
    let state = fresh(Value::Array(resources)).expect("valid");
    plan::build(&state, &LabConfig::default())
}

/// The servers of the resolv.conf of the namespace whose role `pick` matches.
fn servers_of(p: &NetworkPlan, pick: impl Fn(&NamespaceRole) -> bool) -> Vec<Ipv4Addr> {
    let ns = p
        .namespaces
        .values()
        .find(|n| pick(&n.role))
        .expect("namespace");
    p.resolvers[&ns.name].servers.clone()
}

fn app(name: &'static str) -> impl Fn(&NamespaceRole) -> bool {
    move |r| matches!(r, NamespaceRole::AppSandbox { site_id, .. } if site_id.ends_with(&format!("/{name}")))
}

#[test]
fn azure_dns_in_every_fabric_and_public_dns_in_the_internet() {
    let p = build(lab(json!([]), &[]));
    let fabric = p
        .namespaces
        .values()
        .find(|n| matches!(n.role, NamespaceRole::Fabric { .. }))
        .unwrap();
    let inet = p
        .namespaces
        .values()
        .find(|n| n.role == NamespaceRole::Internet)
        .unwrap();
    let on_lo = |ns: &crate::plan::NamespacePlan, ip: Ipv4Addr| {
        ns.addresses
            .iter()
            .any(|a| a.ifname == "lo" && a.address.addr() == ip && a.address.prefix_len() == 32)
    };
    assert!(on_lo(fabric, AZURE_DNS) && on_lo(inet, PUBLIC_DNS));
    assert_eq!(p.dns_servers.len(), 2);
    assert!(p.dns_servers.iter().any(|d| d.netns == fabric.name
        && d.address == AZURE_DNS
        && matches!(&d.view, DnsView::VirtualNetwork { vnet_id } if vnet_id.ends_with("/v1"))));
    assert!(p
        .dns_servers
        .iter()
        .any(|d| d.netns == inet.name && d.view == DnsView::Public));
}

#[test]
fn resolvers_app_settings_then_vnet_servers_then_azure_dns() {
    // No custom servers: integrated apps and VMs use 168.63.129.16; an app
    // without integration and internet hosts the public DNS.
    let p = build(lab(json!([]), &[]));
    assert_eq!(servers_of(&p, app("web1")), [AZURE_DNS]);
    assert_eq!(servers_of(&p, app("solo")), [PUBLIC_DNS]);
    assert_eq!(
        servers_of(&p, |r| matches!(r, NamespaceRole::VirtualMachine { .. })),
        [AZURE_DNS]
    );
    assert_eq!(
        servers_of(&p, |r| matches!(r, NamespaceRole::InternetHost { .. })),
        [PUBLIC_DNS]
    );
    // The VNet's custom servers replace Azure's; the app's settings win over both.
    let p = build(lab(
        json!(["10.0.2.4", "10.0.2.5"]),
        &[
            ("WEBSITE_DNS_SERVER", "10.0.2.9,192.0.2.53"),
            ("WEBSITE_DNS_ALT_SERVER", "168.63.129.16"),
        ],
    ));
    let custom: Vec<Ipv4Addr> = vec!["10.0.2.4".parse().unwrap(), "10.0.2.5".parse().unwrap()];
    assert_eq!(servers_of(&p, app("web1")), custom);
    assert_eq!(
        servers_of(&p, |r| matches!(r, NamespaceRole::VirtualMachine { .. })),
        custom
    );
    assert_eq!(
        servers_of(&p, app("web2")),
        [
            "10.0.2.9".parse::<Ipv4Addr>().unwrap(),
            PUBLIC_DNS,
            AZURE_DNS
        ]
    );
    let text = p
        .resolvers
        .values()
        .find(|r| r.servers == custom)
        .unwrap()
        .resolv_conf();
    assert!(
        text.contains("nameserver 10.0.2.4\nnameserver 10.0.2.5\n"),
        "{text}"
    );
    assert!(text.contains("options timeout:1 attempts:5"), "{text}");
}

#[test]
fn dns_server_settings_are_validated() {
    let ok = fresh(Value::Array(lab(
        json!(["10.0.2.4"]),
        &[("WEBSITE_DNS_SERVER", "10.0.2.4,10.0.2.5")],
    )));
    assert_eq!(code(ok), "Ok");
    assert_eq!(
        code(fresh(Value::Array(lab(json!(["dns.example.com"]), &[])))),
        "InvalidRequestFormat"
    );
    let many: Vec<String> = (0..21).map(|i| format!("10.0.2.{}", i + 4)).collect();
    assert_eq!(
        code(fresh(Value::Array(lab(json!(many), &[])))),
        "DnsServersLimitExceeded"
    );
    for bad in [
        vec![("WEBSITE_DNS_SERVER", "10.0.2.4, 10.0.2.5")],
        vec![("WEBSITE_DNS_SERVER", "10.0.2.4;10.0.2.5")],
        vec![("WEBSITE_DNS_SERVER", "dns.example.com")],
        vec![("WEBSITE_DNS_ALT_SERVER", "10.0.2.4,10.0.2.5")],
        vec![
            (
                "WEBSITE_DNS_SERVER",
                "10.0.2.4,10.0.2.5,10.0.2.6,10.0.2.7,10.0.2.8",
            ),
            ("WEBSITE_DNS_ALT_SERVER", "10.0.2.9"),
        ],
    ] {
        let r = fresh(Value::Array(lab(json!([]), &bad)));
        assert_eq!(code(r), "InvalidDnsServerAddress", "{bad:?}");
    }
}

fn extension(name: &str, publisher: &str, type_: &str, settings: Value) -> Value {
    json!({"type": "Microsoft.Compute/virtualMachines/extensions", "name": format!("vm1/{name}"),
           "properties": {"publisher": publisher, "type": type_, "typeHandlerVersion": "2.1", "settings": settings}})
}

#[test]
fn custom_script_extensions_run_supervised_in_the_vm() {
    let mut res = lab(json!([]), &[]);
    res.push(extension(
        "dns",
        "Microsoft.Azure.Extensions",
        "CustomScript",
        json!({"commandToExecute": "exec dnsmasq --no-daemon"}),
    ));
    let p = build(res);
    let proc_ = p
        .processes
        .iter()
        .find(|p| p.key.ends_with("/virtualmachines/vm1/extensions/dns"))
        .expect("extension process");
    assert_eq!(proc_.argv, ["/bin/sh", "-c", "exec dnsmasq --no-daemon"]);
    assert!(matches!(
        p.namespaces[&proc_.netns].role,
        NamespaceRole::VirtualMachine { .. }
    ));
    // protectedSettings works too, and wins.
    let mut res = lab(json!([]), &[]);
    let mut e = extension(
        "x",
        "microsoft.azure.extensions",
        "customscript",
        json!({"commandToExecute": "a"}),
    );
    e["properties"]["protectedSettings"] = json!({"commandToExecute": "b"});
    res.push(e);
    let p = build(res);
    assert!(p.processes.iter().any(|p| p.argv[2] == "b"));
}

#[test]
fn vm_extensions_are_validated() {
    let with = |e: Vec<Value>| {
        let mut res = lab(json!([]), &[]);
        res.extend(e);
        code(fresh(Value::Array(res)))
    };
    assert_eq!(
        with(vec![extension(
            "x",
            "Microsoft.Azure.Monitor",
            "AzureMonitorLinuxAgent",
            json!({})
        )]),
        "VMExtensionNotSupported"
    );
    assert_eq!(
        with(vec![extension(
            "x",
            "Microsoft.Azure.Extensions",
            "CustomScript",
            json!({})
        )]),
        "VMExtensionProvisioningError"
    );
    let e = extension(
        "x",
        "Microsoft.Azure.Extensions",
        "CustomScript",
        json!({"commandToExecute": "true"}),
    );
    let mut vm_with_two = vm("vm1", &["n1"]);
    vm_with_two["properties"]["extensions"] = json!([
        {"name": "x", "properties": e["properties"].clone()},
        {"name": "X", "properties": e["properties"].clone()}
    ]);
    let mut res = lab(json!([]), &[]);
    res.retain(|r| r["name"] != "vm1");
    res.push(vm_with_two);
    assert_eq!(code(fresh(Value::Array(res))), "Conflict");
}
