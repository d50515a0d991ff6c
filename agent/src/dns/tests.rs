//! Resolution from linked and unlinked VNets, NXDOMAIN inside a linked zone,
//! CNAME chains and loops, AAAA/TXT, public fallback; and the DNS rules.

use serde_json::{json, Value};

use super::*;
use crate::model::LabConfig;
use crate::validate::fixtures::{code, deploy, fresh, id_str, nic, rid, subnet, vm, vnet};

const BLOB: &str = "privatelink.blob.core.windows.net";

fn zone(name: &str) -> Value {
    json!({"type": "Microsoft.Network/privateDnsZones", "name": name, "location": "global"})
}

fn a(zone: &str, rel: &str, ips: &[&str]) -> Value {
    let recs: Vec<Value> = ips.iter().map(|i| json!({"ipv4Address": i})).collect();
    json!({"type": "Microsoft.Network/privateDnsZones/A", "name": format!("{zone}/{rel}"),
           "properties": {"ttl": 10, "aRecords": recs}})
}

fn cname(zone: &str, rel: &str, target: &str) -> Value {
    json!({"type": "Microsoft.Network/privateDnsZones/CNAME", "name": format!("{zone}/{rel}"),
           "properties": {"ttl": 60, "cnameRecord": {"cname": target}}})
}

fn link(zone: &str, name: &str, vnet: &str) -> Value {
    json!({"type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "name": format!("{zone}/{name}"),
           "location": "global",
           "properties": {"virtualNetwork": {"id": id_str(&format!("Microsoft.Network/virtualNetworks/{vnet}"))},
                          "registrationEnabled": false}})
}

fn host(name: &str, ip: &str, dns: Option<&str>) -> Value {
    let mut p = json!({"ipAddress": ip});
    if let Some(d) = dns {
        p["dnsName"] = json!(d);
    }
    json!({"type": "Lab.Emulator/internetHosts", "name": name, "properties": p})
}

fn vnets() -> Vec<Value> {
    vec![
        vnet(
            "v1",
            json!(["10.0.0.0/16"]),
            json!([subnet("pe", "10.0.1.0/24")]),
        ),
        vnet(
            "v2",
            json!(["10.1.0.0/16"]),
            json!([subnet("pe", "10.1.1.0/24")]),
        ),
    ]
}

fn with(extra: Vec<Value>) -> Result<LabState, crate::model::AzureError> {
    let mut all = vnets();
    all.extend(extra);
    fresh(Value::Array(all))
}

/// Two VNets; the blob privatelink zone with `st1` -> 10.0.1.5, linked to v1 only.
fn lab() -> LabState {
    with(vec![
        zone(BLOB),
        a(BLOB, "st1", &["10.0.1.5"]),
        link(BLOB, "l1", "v1"),
        host("echo", "198.18.0.50", None),
        host("api", "198.18.0.51", Some("api.example.com")),
    ])
    .unwrap()
}

fn v(name: &str) -> ResourceId {
    rid(&format!("Microsoft.Network/virtualNetworks/{name}"))
}

fn ask(state: &LabState, vnet: &str, name: &str, t: RecordType) -> Answer {
    resolve(state, &LabConfig::default(), &v(vnet), name, t)
}

fn ips(a: &Answer) -> Vec<String> {
    a.records
        .iter()
        .map(|r| match &r.data {
            RecordData::A(ip) => ip.to_string(),
            RecordData::Aaaa(ip) => ip.to_string(),
            RecordData::Cname(n) => format!("CNAME {n}"),
            RecordData::Txt(s) => format!("TXT {}", s.join("|")),
        })
        .collect()
}

#[test]
fn linked_vnet_resolves_the_private_record() {
    let s = lab();
    let ans = ask(
        &s,
        "v1",
        "ST1.privatelink.blob.core.windows.net.",
        RecordType::A,
    );
    assert_eq!(ans.rcode, Rcode::NoError);
    assert_eq!(ips(&ans), ["10.0.1.5"]);
    assert_eq!(ans.records[0].ttl, 10);
    assert_eq!(ans.records[0].name, "st1.privatelink.blob.core.windows.net");
}

#[test]
fn unlinked_vnet_does_not_see_the_zone() {
    let s = lab();
    let ans = ask(
        &s,
        "v2",
        "st1.privatelink.blob.core.windows.net",
        RecordType::A,
    );
    assert_eq!(ans.rcode, Rcode::NxDomain);
    assert!(ans.records.is_empty());
}

#[test]
fn a_missing_name_inside_a_linked_zone_is_nxdomain_without_public_fallback() {
    // A public host whose name falls inside the linked zone: Azure answers
    // from the zone only.
    let s = with(vec![
        zone("example.com"),
        a("example.com", "www", &["10.0.1.9"]),
        link("example.com", "l1", "v1"),
        host("api", "198.18.0.51", Some("api.example.com")),
    ])
    .unwrap();
    assert_eq!(
        ask(&s, "v1", "api.example.com", RecordType::A).rcode,
        Rcode::NxDomain
    );
    // From v2 (unlinked) and from the internet the public record answers.
    assert_eq!(
        ips(&ask(&s, "v2", "api.example.com", RecordType::A)),
        ["198.18.0.51"]
    );
    let public = public_resolve(&s, &LabConfig::default(), "api.example.com", RecordType::A);
    assert_eq!(ips(&public), ["198.18.0.51"]);
    // An existing name without the asked type: NOERROR, no data.
    let nodata = ask(&s, "v1", "www.example.com", RecordType::Aaaa);
    assert_eq!((nodata.rcode, nodata.records.len()), (Rcode::NoError, 0));
}

#[test]
fn longest_linked_zone_wins() {
    let s = with(vec![
        zone("core.windows.net"),
        a("core.windows.net", "st1.blob", &["10.9.9.9"]),
        link("core.windows.net", "l1", "v1"),
        zone("blob.core.windows.net"),
        a("blob.core.windows.net", "st1", &["10.0.1.7"]),
        link("blob.core.windows.net", "l1", "v1"),
    ])
    .unwrap();
    assert_eq!(
        ips(&ask(&s, "v1", "st1.blob.core.windows.net", RecordType::A)),
        ["10.0.1.7"]
    );
}

#[test]
fn cname_chain_across_zones_to_a_private_endpoint_ip() {
    // The public-service step (NAME.blob.core.windows.net CNAME
    // NAME.privatelink...) emulated by a public-looking zone linked to v1 and
    // v2; the privatelink step answered by the linked private zone.
    let s = with(vec![
        zone("blob.core.windows.net"),
        cname(
            "blob.core.windows.net",
            "st1",
            "st1.privatelink.blob.core.windows.net.",
        ),
        link("blob.core.windows.net", "l1", "v1"),
        link("blob.core.windows.net", "l2", "v2"),
        zone(BLOB),
        a(BLOB, "st1", &["10.0.1.5"]),
        link(BLOB, "l1", "v1"),
    ])
    .unwrap();
    let ans = ask(&s, "v1", "st1.blob.core.windows.net", RecordType::A);
    assert_eq!(ans.rcode, Rcode::NoError);
    assert_eq!(
        ips(&ans),
        ["CNAME st1.privatelink.blob.core.windows.net", "10.0.1.5"]
    );
    // v2 follows the CNAME to a name nobody answers.
    let ans = ask(&s, "v2", "st1.blob.core.windows.net", RecordType::A);
    assert_eq!(ans.rcode, Rcode::NxDomain);
    assert_eq!(ips(&ans), ["CNAME st1.privatelink.blob.core.windows.net"]);
    // Asking for the CNAME itself does not follow it.
    let ans = ask(&s, "v1", "st1.blob.core.windows.net", RecordType::Cname);
    assert_eq!(ips(&ans), ["CNAME st1.privatelink.blob.core.windows.net"]);
}

#[test]
fn cname_to_a_public_host_falls_through_to_public_dns() {
    let s = with(vec![
        zone("corp.internal"),
        cname("corp.internal", "echo", "echo.internet.lab"),
        link("corp.internal", "l1", "v1"),
        host("echo", "198.18.0.50", None),
    ])
    .unwrap();
    assert_eq!(
        ips(&ask(&s, "v1", "echo.corp.internal", RecordType::A)),
        ["CNAME echo.internet.lab", "198.18.0.50"]
    );
}

#[test]
fn cname_loop_and_overlong_chain_are_servfail() {
    let s = with(vec![
        zone("loop.internal"),
        cname("loop.internal", "a", "b.loop.internal"),
        cname("loop.internal", "b", "a.loop.internal"),
        link("loop.internal", "l1", "v1"),
    ])
    .unwrap();
    let ans = ask(&s, "v1", "a.loop.internal", RecordType::A);
    assert_eq!((ans.rcode, ans.records.len()), (Rcode::ServFail, 0));

    let mut chain = vec![zone("chain.internal"), link("chain.internal", "l1", "v1")];
    for i in 0..10 {
        chain.push(cname(
            "chain.internal",
            &format!("n{i}"),
            &format!("n{}.chain.internal", i + 1),
        ));
    }
    chain.push(a("chain.internal", "n10", &["10.0.1.1"]));
    let s = with(chain).unwrap();
    // 8 CNAMEs are followed ...
    assert_eq!(
        ask(&s, "v1", "n2.chain.internal", RecordType::A).rcode,
        Rcode::NoError
    );
    // ... 9 are not.
    assert_eq!(
        ask(&s, "v1", "n1.chain.internal", RecordType::A).rcode,
        Rcode::ServFail
    );
}

#[test]
fn aaaa_and_txt_records() {
    let s = with(vec![
        zone("corp.internal"),
        json!({"type": "Microsoft.Network/privateDnsZones/AAAA", "name": "corp.internal/db",
               "properties": {"ttl": 30, "aaaaRecords": [{"ipv6Address": "fd00::5"}]}}),
        json!({"type": "Microsoft.Network/privateDnsZones/TXT", "name": "corp.internal/@",
               "properties": {"txtRecords": [{"value": ["v=spf1", "-all"]}]}}),
        link("corp.internal", "l1", "v1"),
    ])
    .unwrap();
    assert_eq!(
        ips(&ask(&s, "v1", "db.corp.internal", RecordType::Aaaa)),
        ["fd00::5"]
    );
    let txt = ask(&s, "v1", "corp.internal", RecordType::Txt);
    assert_eq!(ips(&txt), ["TXT v=spf1|-all"]);
    assert_eq!(txt.records[0].ttl, crate::model::DEFAULT_RECORD_TTL);
}

#[test]
fn public_fallback_and_unknown_names() {
    let s = lab();
    assert_eq!(
        ips(&ask(&s, "v1", "echo.internet.lab", RecordType::A)),
        ["198.18.0.50"]
    );
    assert_eq!(
        ips(&ask(&s, "v2", "API.example.com", RecordType::A)),
        ["198.18.0.51"]
    );
    assert_eq!(
        ask(&s, "v1", "nothing.example.org", RecordType::A).rcode,
        Rcode::NxDomain
    );
    // The internet never sees private zones.
    let p = public_resolve(
        &s,
        &LabConfig::default(),
        "st1.privatelink.blob.core.windows.net",
        RecordType::A,
    );
    assert_eq!(p.rcode, Rcode::NxDomain);
}

#[test]
fn wildcard_and_empty_non_terminal() {
    let s = with(vec![
        zone("corp.internal"),
        a("corp.internal", "*.apps", &["10.0.1.8"]),
        a("corp.internal", "x.y", &["10.0.1.9"]),
        link("corp.internal", "l1", "v1"),
    ])
    .unwrap();
    let ans = ask(&s, "v1", "foo.apps.corp.internal", RecordType::A);
    assert_eq!(
        (ips(&ans), ans.records[0].name.as_str()),
        (vec!["10.0.1.8".to_string()], "foo.apps.corp.internal")
    );
    let ent = ask(&s, "v1", "y.corp.internal", RecordType::A);
    assert_eq!((ent.rcode, ent.records.len()), (Rcode::NoError, 0));
}

#[test]
fn registration_enabled_links_register_vms() {
    let mut reg = link("corp.internal", "l1", "v1");
    reg["properties"]["registrationEnabled"] = json!(true);
    let s = with(vec![
        zone("corp.internal"),
        reg,
        link("corp.internal", "l2", "v2"),
        nic("n1", "v1/subnets/pe", Some("10.0.1.20")),
        vm("VM1", &["n1"]),
        nic("n2", "v2/subnets/pe", Some("10.1.1.20")),
        vm("vm2", &["n2"]),
    ])
    .unwrap();
    let ans = ask(&s, "v2", "vm1.corp.internal", RecordType::A);
    assert_eq!(ips(&ans), ["10.0.1.20"]);
    assert_eq!(ans.records[0].ttl, AUTO_REGISTERED_TTL);
    // vm2's VNet is linked without registration: no record.
    assert_eq!(
        ask(&s, "v1", "vm2.corp.internal", RecordType::A).rcode,
        Rcode::NxDomain
    );
}

// ---- validation ----

#[test]
fn zone_location_is_global() {
    let mut z = zone(BLOB);
    z["location"] = json!("westeurope");
    assert_eq!(code(with(vec![z])), "LocationNotAvailableForResourceType");
    let mut z = zone(BLOB);
    z.as_object_mut().unwrap().remove("location");
    let s = with(vec![z]).unwrap();
    assert_eq!(
        s.get(&rid(&format!("Microsoft.Network/privateDnsZones/{BLOB}")))
            .unwrap()
            .location
            .as_deref(),
        Some("global")
    );
}

#[test]
fn bad_names_are_refused() {
    assert_eq!(
        code(with(vec![zone("localhost")])),
        "InvalidPrivateDnsZoneName"
    );
    assert_eq!(
        code(with(vec![zone("-bad.example.com")])),
        "InvalidPrivateDnsZoneName"
    );
    assert_eq!(
        code(with(vec![
            zone("corp.internal"),
            a("corp.internal", "a..b", &["10.0.0.1"])
        ])),
        "InvalidRecordSetName"
    );
    assert_eq!(
        code(with(vec![
            zone("corp.internal"),
            a("corp.internal", "x", &["300.0.0.1"])
        ])),
        "InvalidRequestFormat"
    );
    let mut l = link("corp.internal", "l1", "v1");
    l["name"] = json!("corp.internal/bad name!");
    assert_eq!(
        code(with(vec![zone("corp.internal"), l])),
        "InvalidVirtualNetworkLinkName"
    );
}

#[test]
fn cname_cannot_share_a_name_or_sit_at_the_apex() {
    let z = "corp.internal";
    assert_eq!(
        code(with(vec![
            zone(z),
            a(z, "www", &["10.0.0.1"]),
            cname(z, "www", "x.corp.internal")
        ])),
        "Conflict"
    );
    assert_eq!(
        code(with(vec![zone(z), cname(z, "@", "x.corp.internal")])),
        "BadRequest"
    );
    assert_eq!(
        code(with(vec![zone(z), cname(z, "www", "x.corp.internal")])),
        "Ok"
    );
}

#[test]
fn links_need_an_existing_vnet_once_per_zone_and_unique_zone_names() {
    let z = "corp.internal";
    assert_eq!(
        code(with(vec![zone(z), link(z, "l1", "nope")])),
        "InvalidResourceReference"
    );
    assert_eq!(
        code(with(vec![
            zone(z),
            link(z, "l1", "v1"),
            link(z, "l2", "v1")
        ])),
        "Conflict"
    );
    // Two zones with the same name (other resource group) linked to one VNet.
    let s = with(vec![zone(z), link(z, "l1", "v1")]).unwrap();
    // Same-name zones live in different resource groups: copy the stored one.
    let mut twin = s
        .get(&rid(&format!("Microsoft.Network/privateDnsZones/{z}")))
        .unwrap()
        .clone();
    twin.id.resource_group = "other".into();
    let mut s2 = s.clone();
    s2.resources.insert(twin.id.key(), twin);
    let r =
        crate::validate::apply_resources(&s2, vec![], &LabConfig::default(), &Default::default());
    assert_eq!(code(r), "Conflict");
}

#[test]
fn one_registration_zone_per_vnet() {
    let mut l1 = link("a.internal", "l1", "v1");
    l1["properties"]["registrationEnabled"] = json!(true);
    let mut l2 = link("b.internal", "l1", "v1");
    l2["properties"]["registrationEnabled"] = json!(true);
    assert_eq!(
        code(with(vec![
            zone("a.internal"),
            l1.clone(),
            zone("b.internal"),
            l2
        ])),
        "Conflict"
    );
    assert_eq!(code(with(vec![zone("a.internal"), l1])), "Ok");
}

#[test]
fn internet_host_dns_names_are_valid_and_unique() {
    assert_eq!(
        code(with(vec![host("h1", "198.18.0.60", Some("bad..name"))])),
        "InvalidRequestFormat"
    );
    assert_eq!(
        code(with(vec![
            host("h1", "198.18.0.60", Some("x.lab")),
            host("h2", "198.18.0.61", Some("X.lab."))
        ])),
        "Conflict"
    );
}

#[test]
fn record_sets_merge_and_delete_and_linked_vnets_stay() {
    let s = lab();
    // Redeploying the child replaces it.
    let s = deploy(&s, json!([a(BLOB, "st1", &["10.0.1.6"])])).unwrap();
    assert_eq!(
        ips(&ask(
            &s,
            "v1",
            "st1.privatelink.blob.core.windows.net",
            RecordType::A
        )),
        ["10.0.1.6"]
    );
    let ctx = Default::default();
    let lab_cfg = LabConfig::default();
    // A linked VNet cannot be deleted; the link can, then the VNet.
    let r = crate::validate::delete_resource(&s, &v("v1"), &lab_cfg, &ctx);
    assert_eq!(code(r), "InUseVirtualNetworkCannotBeDeleted");
    let link_id = rid(&format!(
        "Microsoft.Network/privateDnsZones/{BLOB}/virtualNetworkLinks/l1"
    ));
    let s = crate::validate::delete_resource(&s, &link_id, &lab_cfg, &ctx).unwrap();
    assert_eq!(
        ask(
            &s,
            "v1",
            "st1.privatelink.blob.core.windows.net",
            RecordType::A
        )
        .rcode,
        Rcode::NxDomain
    );
    assert!(crate::validate::delete_resource(&s, &v("v1"), &lab_cfg, &ctx).is_ok());
    let rs = rid(&format!("Microsoft.Network/privateDnsZones/{BLOB}/A/st1"));
    let s = crate::validate::delete_resource(&s, &rs, &lab_cfg, &ctx).unwrap();
    let z = s
        .get(&rid(&format!("Microsoft.Network/privateDnsZones/{BLOB}")))
        .unwrap();
    assert_eq!(z.properties["recordSets"], json!([]));
}

// ---- views ----

#[test]
fn zone_and_vnet_views() {
    let s = lab();
    let lab_cfg = LabConfig::default();
    let zid = rid(&format!("Microsoft.Network/privateDnsZones/{BLOB}"));
    let zv = crate::plan::view::resource_view(&s, &lab_cfg, &zid).unwrap();
    let p = &zv["properties"];
    assert_eq!(p["numberOfRecordSets"], 2);
    assert_eq!(p["numberOfVirtualNetworkLinks"], 1);
    assert_eq!(
        p["recordSets"][0]["properties"]["fqdn"],
        format!("st1.{BLOB}.")
    );
    assert_eq!(
        p["recordSets"][0]["type"],
        "Microsoft.Network/privateDnsZones/A"
    );
    let l = &p["virtualNetworkLinks"][0];
    assert_eq!(l["properties"]["virtualNetworkLinkState"], "Completed");
    assert_eq!(l["properties"]["provisioningState"], "Succeeded");
    let lv =
        crate::plan::view::resource_view(&s, &lab_cfg, &zid.child("virtualNetworkLinks", "L1"))
            .unwrap();
    assert_eq!(lv["name"], "l1");
    let rv = crate::plan::view::resource_view(&s, &lab_cfg, &zid.child("A", "st1")).unwrap();
    assert_eq!(rv["properties"]["aRecords"][0]["ipv4Address"], "10.0.1.5");
    let v1 = crate::plan::view::resource_view(&s, &lab_cfg, &v("v1")).unwrap();
    assert_eq!(v1["emulator"]["privateDnsZones"], json!([BLOB]));
    let v2 = crate::plan::view::resource_view(&s, &lab_cfg, &v("v2")).unwrap();
    assert_eq!(v2["emulator"]["privateDnsZones"], json!([]));
}
