//! Private endpoints: the NIC and its address, every rule, deletes, DNS zone
//! groups (records in views and answers), InterfaceEndpoint routes.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::fixtures::{
    assert_refused, code, deploy, fresh, id_str, nic, plan, rid, site, subnet, vm, vnet,
};
use super::{delete_resource, RequestContext};
use crate::dns::{resolve, RecordType};
use crate::model::{
    private_link_group, AzureError, GenericResource, Inventory, LabConfig, LabState,
    PrivateEndpoint,
};
use crate::plan::routes::{effective_routes, EndpointRoute, NextHopType, RouteInputs, RouteState};
use crate::plan::view::resource_view;
use crate::plan::RouteKind;

const SITES_ZONE: &str = "privatelink.azurewebsites.net";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(path: &str) -> String {
    id_str(&format!("Microsoft.Network/{path}"))
}

/// A private endpoint in `vnet/subnets/<subnet>` of `v` to `target` (a path
/// like `Microsoft.Web/sites/web1`) for `groups`.
fn pe(name: &str, subnet: &str, target: &str, groups: &[&str]) -> Value {
    json!({"type": "Microsoft.Network/privateEndpoints", "name": name, "properties": {
        "subnet": {"id": net(&format!("virtualNetworks/v/subnets/{subnet}"))},
        "privateLinkServiceConnections": [{"name": format!("{name}-conn"), "properties": {
            "privateLinkServiceId": id_str(target), "groupIds": groups}}]}})
}

fn with_props(mut v: Value, extra: Value) -> Value {
    for (k, x) in extra.as_object().into_iter().flatten() {
        v["properties"][k] = x.clone();
    }
    v
}

fn zone(name: &str) -> Value {
    json!({"type": "Microsoft.Network/privateDnsZones", "name": name, "location": "global"})
}

fn link(zone: &str) -> Value {
    json!({"type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
           "name": format!("{zone}/link-v"), "location": "global",
           "properties": {"virtualNetwork": {"id": net("virtualNetworks/v")}, "registrationEnabled": false}})
}

fn zone_group(pe: &str, name: &str, zones: &[&str]) -> Value {
    let configs: Vec<Value> = zones
        .iter()
        .map(|z| json!({"name": z.replace('.', "-"), "properties": {"privateDnsZoneId": net(&format!("privateDnsZones/{z}"))}}))
        .collect();
    json!({"type": "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
           "name": format!("{pe}/{name}"), "properties": {"privateDnsZoneConfigs": configs}})
}

/// VNet `v` 10.0.0.0/16: `pe` 10.0.1.0/24, `int` 10.0.2.0/24 (App Service
/// integration of `app`), `vms` 10.0.3.0/24 (VM `vm1` at 10.0.3.4); web app
/// `web1` (the target, not integrated); the sites privatelink zone linked to `v`.
fn base() -> Vec<Value> {
    vec![
        vnet(
            "v",
            json!(["10.0.0.0/16"]),
            json!([
                subnet("pe", "10.0.1.0/24"),
                subnet("int", "10.0.2.0/24"),
                subnet("vms", "10.0.3.0/24")
            ]),
        ),
        plan("p", "P1v3", 1),
        site("web1", "p", None),
        site("app", "p", Some("v/subnets/int")),
        nic("vm1-nic", "v/subnets/vms", Some("10.0.3.4")),
        vm("vm1", &["vm1-nic"]),
        zone(SITES_ZONE),
        link(SITES_ZONE),
    ]
}

fn lab(extra: Vec<Value>) -> Result<LabState, AzureError> {
    let mut all = base();
    all.extend(extra);
    fresh(Value::Array(all))
}

/// [`lab`] with another VNet `v`.
fn lab_with_vnet(v: Value, extra: Vec<Value>) -> Result<LabState, AzureError> {
    let mut all = base();
    all[0] = v;
    all.extend(extra);
    fresh(Value::Array(all))
}

fn web1_pe() -> Value {
    pe("pe1", "pe", "Microsoft.Web/sites/web1", &["sites"])
}

fn endpoint(state: &LabState, name: &str) -> PrivateEndpoint {
    Inventory::parse(&state.resources)
        .unwrap()
        .private_endpoint(&rid(&format!("Microsoft.Network/privateEndpoints/{name}")))
        .cloned()
        .unwrap()
}

fn show(state: &LabState, path: &str) -> Value {
    resource_view(state, &LabConfig::default(), &rid(path)).unwrap()
}

/// The zone group `default` of `pe1` as its endpoint's view holds it (what
/// `GET .../privateDnsZoneGroups/default` returns, with its id and type).
fn group_view(state: &LabState) -> Value {
    show(state, "Microsoft.Network/privateEndpoints/pe1")["properties"]["privateDnsZoneGroups"][0]
        .clone()
}

fn answer(state: &LabState, name: &str) -> Vec<String> {
    let a = resolve(
        state,
        &LabConfig::default(),
        &rid("Microsoft.Network/virtualNetworks/v"),
        name,
        RecordType::A,
    );
    a.to_json()["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn delete(state: &LabState, path: &str) -> Result<LabState, AzureError> {
    delete_resource(
        state,
        &rid(path),
        &LabConfig::default(),
        &RequestContext::default(),
    )
}

#[test]
fn an_endpoint_gets_a_nic_and_an_address_kept_on_redeploy_and_released_on_delete() {
    let s = lab(vec![web1_pe()]).unwrap();
    let pe1 = endpoint(&s, "pe1");
    let nic_id = pe1.nic_id();
    assert!(nic_id.name().starts_with("pe1.nic."), "{nic_id}");
    assert_eq!(
        nic_id.name().len(),
        "pe1.nic.".len() + 36,
        "a GUID: {nic_id}"
    );
    let nic = s.get(&nic_id).expect("the NIC is a resource of the lab");
    assert_eq!(nic.type_, "Microsoft.Network/networkInterfaces");
    assert_eq!(nic.properties["privateEndpoint"]["id"], pe1.id.to_string());
    assert_eq!(pe1.address(&s.allocations), Some(ip("10.0.1.4")));

    // The NIC's view: its address, owned by the endpoint.
    let nv = resource_view(&s, &LabConfig::default(), &nic_id).unwrap();
    let cfg = &nv["properties"]["ipConfigurations"][0];
    assert_eq!(cfg["properties"]["privateIPAddress"], "10.0.1.4");
    assert!(cfg["name"]
        .as_str()
        .unwrap()
        .starts_with("privateEndpointIpConfig."));
    assert_eq!(
        cfg["properties"]["privateLinkConnectionProperties"]["fqdns"],
        json!(["web1.azurewebsites.net", "web1.scm.azurewebsites.net"])
    );

    // The endpoint's view, as Azure shows it.
    let v = show(&s, "Microsoft.Network/privateEndpoints/pe1");
    let p = &v["properties"];
    assert_eq!(p["provisioningState"], "Succeeded");
    assert_eq!(p["networkInterfaces"], json!([{"id": nic_id.to_string()}]));
    assert_eq!(
        p["customDnsConfigs"],
        json!([{"fqdn": "web1.azurewebsites.net", "ipAddresses": ["10.0.1.4"]},
               {"fqdn": "web1.scm.azurewebsites.net", "ipAddresses": ["10.0.1.4"]}])
    );
    // The subnet shows its endpoint and the NIC's configuration.
    let sv = show(&s, "Microsoft.Network/virtualNetworks/v/subnets/pe");
    assert_eq!(
        sv["properties"]["privateEndpoints"],
        json!([{"id": pe1.id.to_string()}])
    );
    assert_eq!(
        sv["properties"]["privateEndpointNetworkPolicies"],
        "Disabled"
    );
    assert_eq!(
        sv["properties"]["ipConfigurations"][0]["id"],
        nic_id
            .child("ipConfigurations", &pe1.nic_ip_configuration())
            .to_string()
    );
    let state =
        &p["privateLinkServiceConnections"][0]["properties"]["privateLinkServiceConnectionState"];
    assert_eq!(state["status"], "Approved");
    assert_eq!(state["description"], "Auto-Approved");
    assert_eq!(v["emulator"]["privateIpAddress"], "10.0.1.4");

    // A redeploy changes nothing; a second endpoint takes the next address.
    let again = deploy(&s, json!([web1_pe()])).unwrap();
    assert_eq!(again.resources, s.resources);
    assert_eq!(again.allocations, s.allocations);
    let two = deploy(
        &s,
        json!([with_props(
            pe("pe2", "pe", "Microsoft.Web/sites/web1", &["sites"]),
            json!({"customNetworkInterfaceName": "pe2-nic"})
        )]),
    )
    .unwrap();
    let pe2 = endpoint(&two, "pe2");
    assert_eq!(pe2.nic_id().name(), "pe2-nic");
    assert_eq!(pe2.address(&two.allocations), Some(ip("10.0.1.5")));
    assert_eq!(
        endpoint(&two, "pe1").address(&two.allocations),
        Some(ip("10.0.1.4"))
    );

    // Deleting the endpoint deletes its NIC and frees its address.
    let gone = delete(&two, "Microsoft.Network/privateEndpoints/pe1").unwrap();
    assert!(gone.get(&nic_id).is_none());
    assert!(!gone
        .allocations
        .nic_addresses
        .contains_key(&pe1.address_key()));
    let back = deploy(&gone, json!([web1_pe()])).unwrap();
    assert_eq!(
        endpoint(&back, "pe1").address(&back.allocations),
        Some(ip("10.0.1.4")),
        "the freed address is the lowest again"
    );
}

#[test]
fn a_static_address_must_be_in_the_subnet_usable_and_free() {
    let stat = |addr: &str| {
        with_props(
            web1_pe(),
            json!({"ipConfigurations": [{"name": "cfg1", "properties": {
                "groupId": "sites", "memberName": "sites", "privateIPAddress": addr}}]}),
        )
    };
    let s = lab(vec![stat("10.0.1.10")]).unwrap();
    let pe1 = endpoint(&s, "pe1");
    assert_eq!(pe1.nic_ip_configuration(), "cfg1");
    assert_eq!(pe1.address(&s.allocations), Some(ip("10.0.1.10")));
    assert_eq!(
        code(lab(vec![stat("10.0.3.10")])),
        "PrivateIPAddressNotInSubnet"
    );
    assert_eq!(
        code(lab(vec![stat("10.0.1.1")])),
        "PrivateIPAddressIsReserved"
    );
    let taken = lab(vec![
        stat("10.0.1.10"),
        nic("other", "v/subnets/pe", Some("10.0.1.10")),
    ])
    .unwrap_err();
    assert_refused(&taken, "PrivateIPAddressInUse", "private endpoint 'pe1'");
    let two = with_props(
        web1_pe(),
        json!({"ipConfigurations": [
            {"name": "a", "properties": {"groupId": "sites", "memberName": "sites", "privateIPAddress": "10.0.1.10"}},
            {"name": "b", "properties": {"groupId": "sites", "memberName": "sites", "privateIPAddress": "10.0.1.11"}}]}),
    );
    assert_eq!(code(lab(vec![two])), "PrivateEndpointBadRequest");
    let wrong_member = with_props(
        web1_pe(),
        json!({"ipConfigurations": [{"name": "a", "properties": {
            "groupId": "sites", "memberName": "blob", "privateIPAddress": "10.0.1.10"}}]}),
    );
    assert_eq!(code(lab(vec![wrong_member])), "PrivateEndpointBadRequest");
}

#[test]
fn subnet_region_connection_and_target_rules() {
    let web1 = "Microsoft.Web/sites/web1";
    assert_eq!(
        code(lab(vec![pe("x", "nothere", web1, &["sites"])])),
        "InvalidResourceReference"
    );
    // A subnet delegated to App Service (by an integration, already there)...
    let s = lab(vec![]).unwrap();
    let delegated = deploy(&s, json!([pe("x", "int", web1, &["sites"])])).unwrap_err();
    assert_refused(
        &delegated,
        "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated",
        "Microsoft.Web/serverFarms",
    );
    // ... or to any other service.
    let sql = vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([
            {"name": "pe", "properties": {"addressPrefix": "10.0.1.0/24", "delegations": [
                {"name": "d", "properties": {"serviceName": "Microsoft.Sql/managedInstances"}}]}},
            subnet("int", "10.0.2.0/24"),
            subnet("vms", "10.0.3.0/24")
        ]),
    );
    assert_eq!(
        code(lab_with_vnet(sql, vec![web1_pe()])),
        "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated"
    );
    let mut far = web1_pe();
    far["location"] = json!("eastus");
    assert_eq!(code(lab(vec![far])), "LocationMismatch");
    let none = with_props(web1_pe(), json!({"privateLinkServiceConnections": []}));
    assert_eq!(
        code(lab(vec![none])),
        "PrivateEndpointMustHaveOneConnection"
    );
    let mut both = web1_pe();
    both["properties"]["manualPrivateLinkServiceConnections"] =
        both["properties"]["privateLinkServiceConnections"].clone();
    assert_eq!(
        code(lab(vec![both])),
        "PrivateEndpointMustHaveOneConnection"
    );
    assert_eq!(
        code(lab(vec![pe("x", "pe", web1, &[])])),
        "MissingParameterOnPrivateLinkServiceConnection"
    );
    let bad_group = lab(vec![pe("x", "pe", web1, &["blob"])]).unwrap_err();
    assert_refused(
        &bad_group,
        "PrivateEndpointBadRequest",
        "Valid group ids: sites",
    );
    let unknown_type = lab(vec![pe(
        "x",
        "pe",
        "Microsoft.Sql/servers/db1",
        &["sqlServer"],
    )])
    .unwrap_err();
    assert_eq!(unknown_type.code, "PrivateEndpointBadRequest");
    assert!(
        unknown_type
            .message
            .contains("Microsoft.Storage/storageAccounts"),
        "{}",
        unknown_type.message
    );
    assert_eq!(
        code(lab(vec![pe(
            "x",
            "pe",
            "Microsoft.Web/sites/nosuchapp",
            &["sites"]
        )])),
        "InvalidResourceReference"
    );
    // A known private link type whose resource the lab does not hold.
    assert_eq!(
        code(lab(vec![pe(
            "x",
            "pe",
            "Microsoft.KeyVault/vaults/kv1",
            &["vault"]
        )])),
        "InvalidResourceReference"
    );
    // The group id compares case-insensitively, as ARM does.
    assert_eq!(code(lab(vec![pe("x", "pe", web1, &["Sites"])])), "Ok");
}

#[test]
fn manual_connections_wait_and_a_deleted_target_disconnects() {
    let mut manual = web1_pe();
    let conn = manual["properties"]["privateLinkServiceConnections"].clone();
    manual["properties"]["privateLinkServiceConnections"] = json!([]);
    manual["properties"]["manualPrivateLinkServiceConnections"] = conn;
    manual["properties"]["manualPrivateLinkServiceConnections"][0]["properties"]
        ["requestMessage"] = json!("please");
    let s = lab(vec![manual]).unwrap();
    let v = show(&s, "Microsoft.Network/privateEndpoints/pe1");
    let st = &v["properties"]["manualPrivateLinkServiceConnections"][0]["properties"]
        ["privateLinkServiceConnectionState"];
    assert_eq!(st["status"], "Pending");
    assert_eq!(st["description"], "please");

    // Azure lets the target go; the endpoint stays, Disconnected, and can
    // be redeployed unchanged (but not pointed at a missing target).
    let s = lab(vec![web1_pe()]).unwrap();
    let s = delete(&s, "Microsoft.Web/sites/web1").unwrap();
    let v = show(&s, "Microsoft.Network/privateEndpoints/pe1");
    assert_eq!(v["emulator"]["connectionStatus"], "Disconnected");
    assert!(deploy(&s, json!([web1_pe()])).is_ok());
    let mut renamed = web1_pe();
    renamed["properties"]["privateLinkServiceConnections"][0]["name"] = json!("renamed");
    assert_eq!(
        code(deploy(&s, json!([renamed]))),
        "InvalidResourceReference"
    );
}

#[test]
fn the_nic_name_is_valid_fixed_and_never_steals_a_users_nic() {
    let named = |n: &str| with_props(web1_pe(), json!({"customNetworkInterfaceName": n}));
    assert_eq!(code(lab(vec![named("-bad")])), "InvalidResourceName");
    assert_eq!(
        code(lab(vec![named("vm1-nic")])),
        "CustomNetworkInterfaceNameInUse"
    );
    let s = lab(vec![named("pe1-nic")]).unwrap();
    assert_eq!(
        code(deploy(&s, json!([named("pe1-nic2")]))),
        "CustomNetworkInterfaceNameCannotBeChanged"
    );
    // The endpoint's NIC cannot be deleted on its own.
    assert_eq!(
        code(delete(&s, "Microsoft.Network/networkInterfaces/pe1-nic")),
        "NicInUse"
    );
}

#[test]
fn a_subnet_with_an_endpoint_is_in_use() {
    let s = lab(vec![web1_pe()]).unwrap();
    let e = delete(&s, "Microsoft.Network/virtualNetworks/v/subnets/pe").unwrap_err();
    assert_refused(&e, "InUseSubnetCannotBeDeleted", "private endpoint 'pe1'");
    // Dropping the subnet from a redeployed VNet.
    let fewer = vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([subnet("int", "10.0.2.0/24"), subnet("vms", "10.0.3.0/24")]),
    );
    assert_eq!(
        code(deploy(&s, json!([fewer]))),
        "InUseSubnetCannotBeDeleted"
    );
    // Integrating an app with the endpoint's subnet would delegate it.
    assert_eq!(
        code(deploy(&s, json!([site("w3", "p", Some("v/subnets/pe"))]))),
        "SubnetDelegationsCannotChangeWhenSubnetUsedByResource"
    );
}

#[test]
fn storage_needs_one_endpoint_per_group_and_the_target_is_found_in_the_store() {
    // Storage accounts come with the emulated services; validation finds a
    // target by its id in the store, whatever its kind, so a storage account
    // written there is found (the strict inventory skips unknown kinds).
    let s = lab(vec![]).unwrap();
    let mut state = s.clone();
    let st = rid("Microsoft.Storage/storageAccounts/st1");
    state.resources.insert(
        st.key(),
        GenericResource {
            id: st.clone(),
            type_: "Microsoft.Storage/storageAccounts".into(),
            name: "st1".into(),
            location: Some("westeurope".into()),
            kind: None,
            sku: None,
            properties: json!({}),
            tags: None,
            identity: None,
        },
    );
    let target = "Microsoft.Storage/storageAccounts/st1";
    let check = |pes: Vec<Value>| {
        let req = crate::template::DeploymentRequest {
            subscription: crate::template::DEFAULT_SUBSCRIPTION.into(),
            resource_group: "lab".into(),
            template: json!({ "resources": pes }),
            parameters: Default::default(),
            ..Default::default()
        };
        let mut with = state.clone();
        for r in crate::template::expand(&req).unwrap() {
            let r = super::normalize::top_level(r, "Microsoft.Network/privateEndpoints").unwrap();
            with.resources.insert(r.id.key(), r);
        }
        let inv = Inventory::parse_lenient(&with.resources);
        super::private_endpoint::check(&with, &inv, &Inventory::default())
    };
    let both = check(vec![pe("pe-st", "pe", target, &["blob", "file"])]).unwrap_err();
    assert_refused(&both, "OnlyOneGroupIdPermitted", "blob, file");
    assert!(check(vec![
        pe("pe-blob", "pe", target, &["blob"]),
        pe("pe-file", "pe", target, &["file"]),
    ])
    .is_ok());
    assert_eq!(
        check(vec![pe("pe-q", "pe", target, &["queue"])])
            .unwrap_err()
            .code,
        "PrivateEndpointBadRequest"
    );
    assert_eq!(
        check(vec![pe(
            "pe-x",
            "pe",
            "Microsoft.Storage/storageAccounts/st2",
            &["blob"]
        )])
        .unwrap_err()
        .code,
        "InvalidResourceReference"
    );
    // The names each group serves in its privatelink zone.
    let blob = private_link_group("microsoft.storage/storageaccounts", "BLOB").unwrap();
    assert_eq!(blob.zone, "privatelink.blob.core.windows.net");
    assert_eq!(
        blob.names_for("St1", "westeurope"),
        vec![("st1.blob.core.windows.net".to_string(), "st1".to_string())]
    );
    let acr = private_link_group("Microsoft.ContainerRegistry/registries", "registry").unwrap();
    assert_eq!(
        acr.names_for("reg1", "westeurope")[1],
        (
            "reg1.westeurope.data.azurecr.io".to_string(),
            "reg1.westeurope.data".to_string()
        )
    );
    let kv = private_link_group("Microsoft.KeyVault/vaults", "vault").unwrap();
    assert_eq!(kv.zone, "privatelink.vaultcore.azure.net");
    assert_eq!(kv.names_for("kv1", "x")[0].0, "kv1.vault.azure.net");
}

#[test]
fn a_zone_group_writes_the_records_in_views_and_answers_and_takes_them_away() {
    let before = lab(vec![
        web1_pe(),
        json!({"type": "Microsoft.Network/privateDnsZones/A", "name": format!("{SITES_ZONE}/web1"),
               "properties": {"ttl": 3600, "aRecords": [{"ipv4Address": "10.9.9.9"}]}}),
    ])
    .unwrap();
    assert_eq!(
        answer(&before, "web1.privatelink.azurewebsites.net"),
        vec!["10.9.9.9"]
    );
    let s = deploy(
        &before,
        json!([zone_group("pe1", "default", &[SITES_ZONE])]),
    )
    .unwrap();
    // Resolution inside the linked VNet: the group's record replaces the hand-written one.
    assert_eq!(
        answer(&s, "web1.privatelink.azurewebsites.net"),
        vec!["10.0.1.4"]
    );
    assert_eq!(
        answer(&s, "web1.scm.privatelink.azurewebsites.net"),
        vec!["10.0.1.4"]
    );
    // The zone's record sets as `record-set list` / `a show` see them.
    let rs = show(
        &s,
        &format!("Microsoft.Network/privateDnsZones/{SITES_ZONE}/A/web1"),
    );
    assert_eq!(rs["properties"]["ttl"], 10);
    assert_eq!(
        rs["properties"]["aRecords"],
        json!([{"ipv4Address": "10.0.1.4"}])
    );
    assert_eq!(
        rs["properties"]["fqdn"],
        "web1.privatelink.azurewebsites.net."
    );
    assert!(rs["properties"]["metadata"]["creator"]
        .as_str()
        .unwrap()
        .starts_with("created by private endpoint pe1 with resource guid "));
    let zv = show(
        &s,
        &format!("Microsoft.Network/privateDnsZones/{SITES_ZONE}"),
    );
    assert_eq!(
        zv["properties"]["recordSets"].as_array().unwrap().len(),
        2,
        "{zv}"
    );
    // The group's view lists its record sets.
    let g = group_view(&s);
    let sets = &g["properties"]["privateDnsZoneConfigs"][0]["properties"]["recordSets"];
    assert_eq!(sets[0]["fqdn"], "web1.privatelink.azurewebsites.net.");
    assert_eq!(sets[0]["ipAddresses"], json!(["10.0.1.4"]));
    assert_eq!(sets[1]["recordSetName"], "web1.scm");
    // Nothing is written into the stored zone: the group's records are computed.
    let stored = s
        .get(&rid(&format!(
            "Microsoft.Network/privateDnsZones/{SITES_ZONE}"
        )))
        .unwrap();
    assert_eq!(stored.properties["recordSets"].as_array().unwrap().len(), 1);
    // Redeploying the endpoint alone keeps its group (a child resource in Azure).
    let again = deploy(&s, json!([web1_pe()])).unwrap();
    assert_eq!(again.resources, s.resources);
    // Deleting the group, or the endpoint, takes its records away (the
    // hand-written record set, never touched, answers again).
    let mut no_group = web1_pe();
    no_group["properties"]["privateDnsZoneGroups"] = json!([]);
    let ungrouped = deploy(&s, json!([no_group])).unwrap();
    assert!(answer(&ungrouped, "web1.scm.privatelink.azurewebsites.net").is_empty());
    let gone = delete(&s, "Microsoft.Network/privateEndpoints/pe1").unwrap();
    assert!(answer(&gone, "web1.scm.privatelink.azurewebsites.net").is_empty());
    assert_eq!(
        answer(&gone, "web1.privatelink.azurewebsites.net"),
        vec!["10.9.9.9"]
    );
    // A zone can go while a group names it; the group keeps the config, with no records.
    let no_zone = delete(
        &s,
        &format!("Microsoft.Network/privateDnsZones/{SITES_ZONE}/virtualNetworkLinks/link-v"),
    )
    .and_then(|s| {
        delete(
            &s,
            &format!("Microsoft.Network/privateDnsZones/{SITES_ZONE}"),
        )
    })
    .unwrap();
    let g = group_view(&no_zone);
    assert_eq!(
        g["properties"]["privateDnsZoneConfigs"][0]["properties"]["recordSets"],
        json!([])
    );
}

#[test]
fn zone_group_rules() {
    let s = lab(vec![
        web1_pe(),
        zone("other.example"),
        zone("z3.example"),
        zone("z4.example"),
        zone("z5.example"),
        zone("z6.example"),
    ])
    .unwrap();
    assert_eq!(
        code(deploy(
            &s,
            json!([zone_group("pe1", "default", &["nosuch.example"])])
        )),
        "InvalidResourceReference"
    );
    let one = deploy(&s, json!([zone_group("pe1", "default", &[SITES_ZONE])])).unwrap();
    assert_eq!(
        code(deploy(
            &one,
            json!([zone_group("pe1", "second", &["other.example"])])
        )),
        "OnlyOnePrivateDnsZoneGroupPermitted"
    );
    assert_eq!(
        code(deploy(
            &s,
            json!([zone_group(
                "pe1",
                "default",
                &[
                    SITES_ZONE,
                    "other.example",
                    "z3.example",
                    "z4.example",
                    "z5.example",
                    "z6.example"
                ]
            )])
        )),
        "MaxPrivateDnsZoneConfigsExceeded"
    );
    let mut twice = zone_group("pe1", "default", &[SITES_ZONE]);
    let c = twice["properties"]["privateDnsZoneConfigs"][0].clone();
    let mut c2 = c.clone();
    c2["name"] = json!("again");
    twice["properties"]["privateDnsZoneConfigs"] = json!([c, c2]);
    assert_eq!(code(deploy(&s, json!([twice]))), "DuplicateResourceName");
    // A group whose endpoint is not there.
    assert_eq!(
        code(deploy(
            &s,
            json!([zone_group("nope", "default", &[SITES_ZONE])])
        )),
        "ParentResourceNotFound"
    );
}

#[test]
fn every_subnet_of_the_vnet_routes_the_endpoint_as_interface_endpoint() {
    let s = lab(vec![web1_pe()]).unwrap();
    let lab_cfg = LabConfig::default();
    for sub in ["pe", "int", "vms"] {
        let r = crate::plan::effective_routes_for_subnet(
            &s,
            &lab_cfg,
            &rid(&format!(
                "Microsoft.Network/virtualNetworks/v/subnets/{sub}"
            )),
        )
        .unwrap();
        let row = r["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["addressPrefix"] == json!(["10.0.1.4/32"]))
            .unwrap_or_else(|| panic!("{sub}: {r}"))
            .clone();
        assert_eq!(row["nextHopType"], "InterfaceEndpoint");
        assert_eq!(row["source"], "Default");
        assert_eq!(row["state"], "Active");
    }
    // The kernel sends it into the endpoint's own link to web1's worker
    // (plan/site_endpoint.rs) in every subnet table.
    let p = crate::plan::build(&s, &lab_cfg);
    let fab = p
        .namespaces
        .values()
        .find(|n| n.name.starts_with("vl-vnet-v-"))
        .unwrap();
    for table in [1000, 1001, 1002] {
        assert!(
            fab.routes.iter().any(|r| r.table == table
                && r.destination.to_string() == "10.0.1.4/32"
                && matches!(&r.kind, RouteKind::Via { gateway, ifname, onlink: true }
                    if gateway.to_string() == "169.254.65.1" && ifname.starts_with("p-"))),
            "table {table}"
        );
    }
    // A UDR cannot use the type.
    let rt = json!({"type": "Microsoft.Network/routeTables", "name": "rt", "properties": {"routes": [
        {"name": "r", "properties": {"addressPrefix": "10.0.1.4/32", "nextHopType": "InterfaceEndpoint"}}]}});
    assert_eq!(code(deploy(&s, json!([rt]))), "InvalidNextHopType");
}

#[test]
fn a_udr_invalidates_the_endpoint_route_only_with_network_policies_and_a_long_enough_prefix() {
    let n = |p: &str| p.parse().unwrap();
    let udr = |prefix: &str| crate::model::Route {
        name: format!("to-{prefix}"),
        address_prefix: n(prefix),
        next_hop_type: NextHopType::VirtualAppliance,
        next_hop_ip: Some(ip("10.0.3.10")),
    };
    let state_of = |policies: bool, udrs: &[&str]| {
        let r = effective_routes(&RouteInputs {
            vnet_prefixes: vec![n("10.0.0.0/16")],
            udrs: udrs.iter().map(|p| udr(p)).collect(),
            private_endpoints: vec![EndpointRoute {
                address: ip("10.0.1.4"),
                route_tables_apply: policies,
            }],
            ..Default::default()
        });
        let pe = r
            .iter()
            .find(|x| x.next_hop_type == NextHopType::InterfaceEndpoint)
            .unwrap()
            .state;
        let winner = crate::plan::routes::lookup(&r, ip("10.0.1.4"))
            .unwrap()
            .next_hop_type;
        (pe, winner)
    };
    use NextHopType::{InterfaceEndpoint as Pe, VirtualAppliance as Nva};
    use RouteState::{Active, Invalid};
    // Network policies off (Azure's default): nothing overrides the /32, not even a /32 UDR.
    assert_eq!(state_of(false, &["10.0.0.0/16"]), (Active, Pe));
    assert_eq!(state_of(false, &["10.0.1.4/32"]), (Active, Pe));
    // RouteTableEnabled/Enabled: a UDR at least as long as the VNet range invalidates it.
    assert_eq!(state_of(true, &["10.0.0.0/16"]), (Invalid, Nva));
    assert_eq!(state_of(true, &["10.0.1.0/24"]), (Invalid, Nva));
    assert_eq!(state_of(true, &["10.0.1.4/32"]), (Invalid, Nva));
    // ... but a shorter one, or 0.0.0.0/0, does not.
    assert_eq!(state_of(true, &["10.0.0.0/8"]), (Active, Pe));
    assert_eq!(state_of(true, &["0.0.0.0/0"]), (Active, Pe));

    // Through the model: the subnet's policy decides.
    let rt = json!({"type": "Microsoft.Network/routeTables", "name": "rt", "properties": {"routes": [
        {"name": "via-fw", "properties": {"addressPrefix": "10.0.0.0/16", "nextHopType": "VirtualAppliance",
                                          "nextHopIpAddress": "10.0.3.4"}}]}});
    let vnet_with = |policy: &str| {
        vnet(
            "v",
            json!(["10.0.0.0/16"]),
            json!([
                {"name": "pe", "properties": {"addressPrefix": "10.0.1.0/24", "privateEndpointNetworkPolicies": policy}},
                subnet("int", "10.0.2.0/24"),
                {"name": "vms", "properties": {"addressPrefix": "10.0.3.0/24", "routeTable": {"id": net("routeTables/rt")}}}
            ]),
        )
    };
    let pe_state = |policy: &str| {
        let s = lab_with_vnet(vnet_with(policy), vec![rt.clone(), web1_pe()]).unwrap();
        let r = crate::plan::effective_routes_for_subnet(
            &s,
            &LabConfig::default(),
            &rid("Microsoft.Network/virtualNetworks/v/subnets/vms"),
        )
        .unwrap();
        r["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["nextHopType"] == "InterfaceEndpoint")
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(pe_state("Disabled"), "Active");
    assert_eq!(pe_state("NetworkSecurityGroupEnabled"), "Active");
    assert_eq!(pe_state("RouteTableEnabled"), "Invalid");
    assert_eq!(pe_state("Enabled"), "Invalid");
    assert_eq!(
        code(lab_with_vnet(vnet_with("Sometimes"), vec![rt.clone()])),
        "InvalidRequestFormat"
    );
}
