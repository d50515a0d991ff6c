//! The emulated services' plan: namespaces, service-endpoint routes (fabric
//! and worker), service tags, public DNS names, host configuration; and
//! Azure's validation rules for services. Pure, except the real-nft check.

use serde_json::{json, Value};

use super::services::SERVICE_MARK_BASE;
use super::*;
use crate::dns::Record;
use crate::model::{LabConfig, LabState, RecordData, RecordType, ServiceKind, ServiceTag};
use crate::validate::fixtures::{deploy, deploy_as, rid};

fn subnet_id(name: &str) -> String {
    format!(
        "{}/subnets/{name}",
        rid("Microsoft.Network/virtualNetworks/vnet1")
    )
}

/// `vnet1` with `int` (10.0.1.0/24, a Storage endpoint) and `b`
/// (10.0.2.0/24, none); `web1` (Route All off) on `int`; a storage
/// account `acct1` and a vault `kv1` with a secret.
fn resources(storage_props: Value) -> Value {
    json!([
        { "type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "location": "westeurope",
          "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [
            { "name": "int", "properties": { "addressPrefix": "10.0.1.0/24",
                "serviceEndpoints": [{ "service": "Microsoft.Storage", "locations": ["westeurope"] }] } },
            { "name": "b", "properties": { "addressPrefix": "10.0.2.0/24" } } ] } },
        { "type": "Microsoft.Web/serverfarms", "name": "plan1", "location": "westeurope", "kind": "linux",
          "sku": { "name": "P1v3", "capacity": 1 }, "properties": { "reserved": true } },
        { "type": "Microsoft.Web/sites", "name": "web1", "location": "westeurope",
          "properties": { "serverFarmId": rid("Microsoft.Web/serverfarms/plan1").to_string(),
                          "virtualNetworkSubnetId": subnet_id("int") } },
        { "type": "Microsoft.Storage/storageAccounts", "name": "acct1", "location": "westeurope",
          "properties": storage_props },
        { "type": "Microsoft.KeyVault/vaults", "name": "kv1", "location": "westeurope", "properties": {} },
        { "type": "Microsoft.KeyVault/vaults/secrets", "name": "kv1/pw", "properties": { "value": "x" } }
    ])
}

fn state() -> LabState {
    deploy(&LabState::default(), resources(json!({}))).unwrap()
}

fn svc_ip(s: &LabState, path: &str) -> std::net::Ipv4Addr {
    s.allocations.service_ips[&rid(path).key()]
}

#[test]
fn service_namespace_links_and_endpoint_routes() {
    let s = state();
    let p = build(&s, &LabConfig::default());
    let ip = svc_ip(&s, "Microsoft.Storage/storageAccounts/acct1");
    let kv = svc_ip(&s, "Microsoft.KeyVault/vaults/kv1");
    let svc = p
        .namespaces
        .values()
        .find(|n| n.name.starts_with("vl-svc-acct1-"))
        .expect("service namespace");
    assert!(svc
        .addresses
        .iter()
        .any(|a| a.ifname == "lo" && a.address.addr() == ip));
    assert_eq!(svc.sysctls["net/ipv4/tcp_fwmark_accept"], "1");
    assert!(svc
        .rules
        .iter()
        .any(|r| r.fwmark == Some((SERVICE_MARK_BASE, u32::MAX))));
    // The internet routes the public IP to the service.
    let inet = &p.namespaces["vl-inet"];
    assert!(inet
        .routes
        .iter()
        .any(|r| r.destination.addr() == ip && matches!(r.kind, RouteKind::Dev { .. })));
    // The fabric: subnet `int` (table 1000) sends the storage IP to the
    // service link; subnet `b` (1001) has no such route; the vault (no
    // endpoint) has none anywhere.
    let fab = fabric(&p);
    let to = |table: u32, dst: std::net::Ipv4Addr| {
        fab.routes
            .iter()
            .find(|r| {
                r.table == table && r.destination.addr() == dst && r.destination.prefix_len() == 32
            })
            .map(|r| r.kind.clone())
    };
    assert!(matches!(to(1000, ip), Some(RouteKind::Dev { ifname }) if ifname.starts_with("p-")));
    assert_eq!(to(1001, ip), None);
    assert_eq!(to(1000, kv), None);
    // Route All off: the worker still sends the storage IP into the vNIC.
    let wk = p
        .namespaces
        .values()
        .find(|n| n.name.starts_with("vl-wk-plan1-0-"))
        .unwrap();
    assert!(wk.routes.iter().any(|r| r.table == 2000
        && r.destination.addr() == ip
        && matches!(&r.kind, RouteKind::Via { ifname, .. } if ifname == "vnet0")));
    assert!(!wk.routes.iter().any(|r| r.destination.addr() == kv));
    // The host's configuration names the VNet's ingress.
    let host = p.services.iter().find(|h| h.netns == svc.name).unwrap();
    assert_eq!(host.config["ingress"][0]["mark"], json!(SERVICE_MARK_BASE));
    assert_eq!(host.config["ingress"][0]["path"], "serviceEndpoint");
    assert_eq!(host.config["publicIp"], json!(ip.to_string()));
    let kv_host = p.services.iter().find(|h| h.key.contains("kv1")).unwrap();
    assert_eq!(kv_host.config["secrets"][0]["value"], "x");
    assert_eq!(kv_host.config["ingress"], json!([]));
    if super::nft_check::nft_available() {
        assert!(super::nft_check::check_plan(&p) > 0);
    }
}

#[test]
fn effective_routes_show_one_service_endpoint_route_per_service_ip() {
    let s = state();
    let ip = svc_ip(&s, "Microsoft.Storage/storageAccounts/acct1");
    let v = effective_routes_for_subnet(
        &s,
        &LabConfig::default(),
        &subnet_id("int").parse().unwrap(),
    )
    .unwrap();
    let rows: Vec<&Value> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["nextHopType"] == "VirtualNetworkServiceEndpoint")
        .collect();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["addressPrefix"], json!([format!("{ip}/32")]));
    assert_eq!(
        (rows[0]["source"].as_str(), rows[0]["state"].as_str()),
        (Some("Default"), Some("Active"))
    );
    let b =
        effective_routes_for_subnet(&s, &LabConfig::default(), &subnet_id("b").parse().unwrap())
            .unwrap();
    assert!(!b.to_string().contains("VirtualNetworkServiceEndpoint"));
}

#[test]
fn service_tags_hold_the_service_ips_by_kind_and_region() {
    let tag = |t: &str| ServiceTag::parse(t).unwrap();
    assert!(tag("Storage").covers(ServiceKind::Storage, "westeurope"));
    assert!(tag("storage.WestEurope").covers(ServiceKind::Storage, "westeurope"));
    assert!(!tag("Storage.NorthEurope").covers(ServiceKind::Storage, "westeurope"));
    assert!(!tag("Storage").covers(ServiceKind::KeyVault, "westeurope"));
    assert!(tag("AzureKeyVault").covers(ServiceKind::KeyVault, "westeurope"));
    assert!(tag("AzureContainerRegistry").covers(ServiceKind::ContainerRegistry, "x"));
    assert!(!tag("Sql").covers(ServiceKind::Storage, "westeurope"));
}

/// AZURE-FACTS §11: the public name aliases into `privatelink.*` only for a
/// resource with an Approved private endpoint, and only for the endpoint's
/// group (blob, not file); every other name is a plain public A record, which
/// a VNet that links the privatelink zone still resolves.
#[test]
fn public_names_cname_to_privatelink_only_with_an_approved_endpoint() {
    let lab = LabConfig::default();
    let resolve =
        |s: &LabState, name: &str| crate::dns::public_resolve(s, &lab, name, RecordType::A);
    let s = state();
    let ip = svc_ip(&s, "Microsoft.Storage/storageAccounts/acct1");
    for name in ["acct1.blob.core.windows.net", "ACCT1.file.core.windows.net"] {
        let a = resolve(&s, name);
        assert_eq!(a.records.len(), 1, "{a:?}");
        assert_eq!(a.records[0].data, RecordData::A(ip));
    }
    let kv = resolve(&s, "kv1.vault.azure.net");
    assert!(
        matches!(
            kv.records[..],
            [Record {
                data: RecordData::A(_),
                ..
            }]
        ),
        "{kv:?}"
    );
    assert_eq!(
        resolve(&s, "acct1.privatelink.blob.core.windows.net")
            .records
            .len(),
        0
    );

    // An Approved blob endpoint: blob aliases, file does not.
    let s = with_endpoint(false);
    let ip = svc_ip(&s, "Microsoft.Storage/storageAccounts/acct1");
    let blob = resolve(&s, "acct1.blob.core.windows.net");
    assert!(
        matches!(&blob.records[0].data, RecordData::Cname(c) if c == "acct1.privatelink.blob.core.windows.net"),
        "{blob:?}"
    );
    assert_eq!(blob.records[1].data, RecordData::A(ip));
    assert_eq!(
        resolve(&s, "acct1.file.core.windows.net").records[0].data,
        RecordData::A(ip)
    );
    // A Pending (manual) one does not alias yet.
    let s = with_endpoint(true);
    let blob = resolve(&s, "acct1.blob.core.windows.net");
    assert!(
        matches!(
            blob.records[..],
            [Record {
                data: RecordData::A(_),
                ..
            }]
        ),
        "{blob:?}"
    );
}

#[test]
fn views_show_the_endpoints() {
    let s = state();
    let lab = LabConfig::default();
    let st =
        view::resource_view(&s, &lab, &rid("Microsoft.Storage/storageAccounts/acct1")).unwrap();
    assert_eq!(
        st["properties"]["primaryEndpoints"]["blob"],
        "https://acct1.blob.core.windows.net/"
    );
    assert_eq!(
        st["properties"]["primaryEndpoints"]["file"],
        "https://acct1.file.core.windows.net/"
    );
    assert!(st["emulator"]["namespace"]
        .as_str()
        .unwrap()
        .starts_with("vl-svc-acct1-"));
    let kv = view::resource_view(&s, &lab, &rid("Microsoft.KeyVault/vaults/kv1")).unwrap();
    assert_eq!(kv["properties"]["vaultUri"], "https://kv1.vault.azure.net/");
    assert!(
        kv["properties"].get("secrets").is_none(),
        "secrets are not shown"
    );
}

#[test]
fn validation_follows_azure() {
    let s = state();
    let code = |r: Result<LabState, crate::model::AzureError>| r.unwrap_err().code;
    // Global names: the same name in another subscription is taken.
    let ctx = crate::validate::RequestContext::default();
    let again = |ty: &str, name: &str| {
        deploy_as(
            &s,
            "11111111-1111-1111-1111-111111111111",
            json!([{ "type": ty, "name": name, "location": "westeurope", "properties": {} }]),
            &ctx,
        )
    };
    assert_eq!(
        code(again("Microsoft.Storage/storageAccounts", "acct1")),
        "StorageAccountAlreadyTaken"
    );
    assert_eq!(
        code(again("Microsoft.KeyVault/vaults", "KV1")),
        "VaultAlreadyExists"
    );
    let s2 = deploy(
        &s,
        json!([{ "type": "Microsoft.ContainerRegistry/registries", "name": "reg12",
        "location": "westeurope", "properties": {} }]),
    )
    .unwrap();
    let again2 = deploy_as(
        &s2,
        "11111111-1111-1111-1111-111111111111",
        json!([{ "type": "Microsoft.ContainerRegistry/registries", "name": "Reg12", "location": "westeurope", "properties": {} }]),
        &ctx,
    );
    assert_eq!(code(again2), "AlreadyInUse");
    // A redeploy of the same resource is fine.
    deploy(&s, resources(json!({}))).unwrap();
    // Network rules.
    let acl = |props: Value| deploy(&s, resources(props));
    assert_eq!(
        code(acl(
            json!({ "networkAcls": { "defaultAction": "Deny", "ipRules": [{ "value": "10.1.0.0/16" }] } })
        )),
        "NetworkAclsValidationFailure"
    );
    let e = acl(json!({ "networkAcls": { "defaultAction": "Deny", "virtualNetworkRules": [{ "id": subnet_id("b") }] } }))
        .unwrap_err();
    assert!(
        e.code == "NetworkAclsValidationFailure"
            && e.message
                .contains("SubnetsHaveNoServiceEndpointsConfigured"),
        "{e:?}"
    );
    acl(json!({ "networkAcls": { "defaultAction": "Deny", "virtualNetworkRules": [
        { "id": subnet_id("b"), "ignoreMissingVnetServiceEndpoint": true }, { "id": subnet_id("int") }] } }))
    .unwrap();
    assert_eq!(
        code(acl(json!({ "publicNetworkAccess": "Sometimes" }))),
        "InvalidRequestFormat"
    );
    // Service endpoint names.
    let mut r = resources(json!({}));
    r[0]["properties"]["subnets"][1]["properties"]["serviceEndpoints"] =
        json!([{ "service": "Microsoft.Nothing" }]);
    assert_eq!(
        code(deploy(&s, r)),
        "SubnetHasServiceEndpointWithInvalidServiceName"
    );
    // A vault update keeps its secrets (child resources).
    let s3 = deploy(
        &s,
        json!([{ "type": "Microsoft.KeyVault/vaults", "name": "kv1", "location": "westeurope",
        "properties": { "networkAcls": { "defaultAction": "Deny" } } }]),
    )
    .unwrap();
    let inv = crate::model::Inventory::parse(&s3.resources).unwrap();
    let kv = inv.service(&rid("Microsoft.KeyVault/vaults/kv1")).unwrap();
    assert_eq!(kv.secrets.len(), 1);
}

/// A private endpoint `pe1` to `acct1` (blob) in subnet `b`, manual or not.
/// The fabric of `vnet1` in a plan of these tests.
fn fabric(p: &NetworkPlan) -> &NamespacePlan {
    p.namespaces
        .values()
        .find(|n| n.name.starts_with("vl-vnet-vnet1-"))
        .expect("the plan has vnet1's fabric")
}

/// `with_endpoint(manual)`, its plan and the endpoint's private address.
fn endpoint_plan(manual: bool) -> (LabState, NetworkPlan, std::net::Ipv4Addr) {
    let s = with_endpoint(manual);
    let inv = crate::model::Inventory::parse_lenient(&s.resources);
    let pe_ip = inv.private_endpoints[0].address(&s.allocations).unwrap();
    let p = build(&s, &LabConfig::default());
    (s, p, pe_ip)
}

fn with_endpoint(manual: bool) -> LabState {
    let list = if manual {
        "manualPrivateLinkServiceConnections"
    } else {
        "privateLinkServiceConnections"
    };
    let mut r = resources(json!({ "publicNetworkAccess": "Disabled" }));
    r.as_array_mut().unwrap().push(json!({
        "type": "Microsoft.Network/privateEndpoints", "name": "pe1", "location": "westeurope",
        "properties": { "subnet": { "id": subnet_id("b") }, list: [{ "name": "c1", "properties": {
            "privateLinkServiceId": rid("Microsoft.Storage/storageAccounts/acct1").to_string(),
            "groupIds": ["blob"] } }] } }));
    deploy(&LabState::default(), r).unwrap()
}

#[test]
fn an_approved_private_endpoint_has_its_own_link_mark_and_dnat_into_the_service() {
    let (s, p, pe_ip) = endpoint_plan(false);
    let fab = fabric(&p);
    // Every subnet (the app's `int` too) routes the endpoint's /32 into a
    // `p-` link of its own, not the service-endpoint link.
    let se_link = fab
        .routes
        .iter()
        .find(|r| {
            r.table == 1000
                && r.destination.addr() == svc_ip(&s, "Microsoft.Storage/storageAccounts/acct1")
        })
        .map(|r| r.kind.clone())
        .unwrap();
    for table in [1000, 1001] {
        let kind = fab
            .routes
            .iter()
            .find(|r| r.table == table && r.destination.addr() == pe_ip)
            .map(|r| r.kind.clone())
            .unwrap();
        assert!(
            matches!(&kind, RouteKind::Via { ifname, gateway, onlink: true }
                if ifname.starts_with("p-") && gateway.octets()[..3] == [169, 254, 64]),
            "{kind:?}"
        );
        assert_ne!(kind, se_link);
    }
    let host = p.services.iter().find(|h| h.key.contains("acct1")).unwrap();
    assert_eq!(
        host.config["ingress"][1]["mark"],
        json!(SERVICE_MARK_BASE + 1)
    );
    assert_eq!(host.config["ingress"][1]["path"], "privateEndpoint");
    let svc = &p.namespaces[&host.netns];
    let nft = svc.nft.as_ref().unwrap().to_string();
    assert!(nft.contains(&pe_ip.to_string()), "{nft}");
    // Only blob's ports pass the endpoint's link.
    assert!(nft.contains(r#""right":{"set":[80,443]}"#), "{nft}");
    if super::nft_check::nft_available() {
        assert!(super::nft_check::check_plan(&p) > 0);
    }
}

#[test]
fn a_pending_private_endpoint_passes_nothing() {
    let (_, p, pe_ip) = endpoint_plan(true);
    let fab = fabric(&p);
    assert!(fab
        .routes
        .iter()
        .filter(|r| r.destination.addr() == pe_ip)
        .all(|r| r.kind == RouteKind::Throw));
    let host = p.services.iter().find(|h| h.key.contains("acct1")).unwrap();
    assert_eq!(host.config["ingress"].as_array().unwrap().len(), 1);
}
