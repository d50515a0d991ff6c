use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::fixtures::{
    assert_refused, code, deploy, example_state, fresh, id_str, nic, plan, rid, site, subnet, vm,
    vnet,
};
use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn example_lab_deploys_with_expected_addresses() {
    let s = example_state();
    let a = &s.allocations;
    let plan = rid("Microsoft.Web/serverfarms/plan1").key();
    let subnet = rid("Microsoft.Network/virtualNetworks/vnet1/subnets/integration").key();
    assert_eq!(a.instance_ip(&plan, &subnet, 0), Some(ip("10.0.1.4")));
    assert_eq!(a.instance_ip(&plan, &subnet, 1), Some(ip("10.0.1.5")));
    let cfg = rid("Microsoft.Network/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1").key();
    assert_eq!(a.nic_addresses[&cfg], ip("10.0.2.4"));
    assert_eq!(
        a.host_addresses[&rid("Lab.Emulator/internetHosts/host1").key()],
        ip("198.18.100.10")
    );
    assert_eq!(
        a.plan_outbound[&plan],
        vec![ip("198.18.0.4"), ip("198.18.0.5")]
    );
    assert_eq!(s.resources.len(), 7);
    assert_eq!(s.generation, 1);
}

#[test]
fn redeploying_the_example_changes_nothing() {
    let s = example_state();
    let again = super::fixtures::deploy_template(
        &s,
        serde_json::from_str(super::fixtures::EXAMPLE).unwrap(),
    )
    .unwrap();
    assert_eq!(again.allocations, s.allocations);
    assert_eq!(again.resources, s.resources);
}

#[test]
fn integration_adds_the_delegation() {
    let s = fresh(json!([
        vnet(
            "v",
            json!(["10.1.0.0/16"]),
            json!([subnet("int", "10.1.1.0/26")])
        ),
        plan("p", "S1", 1),
        site("w1", "p", Some("v/subnets/int")),
    ]))
    .unwrap();
    let v = &s.resources[&rid("Microsoft.Network/virtualNetworks/v").key()];
    assert_eq!(
        v.properties["subnets"][0]["properties"]["delegations"][0]["properties"]["serviceName"],
        "Microsoft.Web/serverFarms"
    );
    // Types and locations are stored in canonical form.
    assert_eq!(v.type_, "Microsoft.Network/virtualNetworks");
    assert_eq!(v.location.as_deref(), Some("westeurope"));
}

#[test]
fn vnet_address_space_errors() {
    for (prefixes, want) in [
        (json!(["224.1.0.0/16"]), "InvalidAddressPrefix"),
        (json!(["169.254.0.0/24"]), "InvalidAddressPrefix"),
        (json!(["168.63.0.0/16"]), "InvalidAddressPrefix"),
        (json!(["127.0.0.0/8"]), "InvalidAddressPrefix"),
        (json!(["fd00::/64"]), "InvalidRequestFormat"),
        (json!(["10.0.0.0/16", "fd00:db8::/48"]), "Ok"),
        (
            json!(["10.0.0.0/16", "fd00:db8::1/48"]),
            "InvalidCIDRNotation",
        ),
        (
            json!(["10.0.0.0/16", "10.0.128.0/17"]),
            "VnetAddressSpacesOverlap",
        ),
        (json!(["10.0.0.1/16"]), "InvalidCIDRNotation"),
        (json!(["10.0.0.0/33"]), "InvalidAddressPrefixFormat"),
        (json!([]), "InvalidRequestFormat"),
    ] {
        assert_eq!(
            code(fresh(json!([vnet("v", prefixes.clone(), json!([]))]))),
            want,
            "{prefixes}"
        );
    }
}

#[test]
fn subnet_errors() {
    for (subnets, want) in [
        (
            json!([subnet("a", "10.1.0.0/24")]),
            "NetcfgSubnetRangeOutsideVnet",
        ),
        (
            json!([subnet("a", "10.0.1.0/24"), subnet("b", "10.0.1.128/25")]),
            "NetcfgSubnetRangesOverlap",
        ),
        (
            json!([subnet("a", "10.0.1.0/30")]),
            "InvalidSubnetPrefixLength",
        ),
        (json!([subnet("a", "10.0.1.1/24")]), "InvalidCIDRNotation"),
        (
            json!([subnet("a", "10.0.1.0/24"), subnet("A", "10.0.2.0/24")]),
            "DuplicateResourceName",
        ),
        (json!([subnet("a", "10.0.1.0/29")]), "Ok"),
    ] {
        assert_eq!(
            code(fresh(json!([vnet(
                "v",
                json!(["10.0.0.0/16"]),
                subnets.clone()
            )]))),
            want,
            "{subnets}"
        );
    }
    let e = fresh(json!([vnet(
        "v",
        json!(["10.0.0.0/16"]),
        json!([subnet("a", "10.1.0.0/24")])
    )]))
    .unwrap_err();
    assert!(
        e.message.contains("'a'") && e.message.contains("'v'"),
        "{}",
        e.message
    );
}

#[test]
fn types_the_lab_does_not_emulate_are_kept_as_records() {
    let state = fresh(json!([
        {"type": "Microsoft.Sql/servers", "name": "db", "location": "westeurope", "properties": {"administratorLogin": "a"}},
        {"type": "Microsoft.Insights/components", "name": "ai", "kind": "web", "properties": {"Application_Type": "web"}}
    ]))
    .unwrap();
    assert_eq!(state.resources.len(), 2);
    let inv = crate::model::Inventory::parse(&state.resources).unwrap();
    assert_eq!(inv.records.len(), 2);
    assert!(emulated("Microsoft.Web/sites") && !emulated("Microsoft.Sql/servers"));
    // A child record needs its parent, as ARM says.
    let e =
        fresh(json!([{"type": "Microsoft.Sql/servers/databases", "name": "nodb/d1"}])).unwrap_err();
    assert_eq!(e.code, "ParentResourceNotFound");
    // Deleting the parent deletes its child records.
    let with_child = deploy(
        &state,
        json!([{"type": "Microsoft.Sql/servers/databases", "name": "db/d1"}]),
    )
    .unwrap();
    assert_eq!(with_child.resources.len(), 3);
    let db = with_child
        .resources
        .values()
        .find(|r| r.name == "db")
        .unwrap()
        .id
        .clone();
    let after = delete::remove(&with_child, &db).unwrap();
    assert_eq!(after.resources.len(), 1);
}

fn base() -> Value {
    json!([
        vnet(
            "v",
            json!(["10.0.0.0/16"]),
            json!([
                subnet("int", "10.0.1.0/24"), subnet("int2", "10.0.3.0/24"), subnet("vms", "10.0.2.0/24"),
                subnet("tiny", "10.0.4.0/29"),
                {"name": "sql", "properties": {"addressPrefix": "10.0.5.0/24",
                  "delegations": [{"name": "d", "properties": {"serviceName": "Microsoft.Sql/managedInstances"}}]}}
            ])
        ),
        plan("p", "P1v3", 2),
        plan("q", "P1v3", 1),
        plan("free", "F1", 1),
    ])
}

fn with(extra: Value) -> Result<LabState, AzureError> {
    let mut all = base().as_array().unwrap().clone();
    all.extend(extra.as_array().unwrap().iter().cloned());
    fresh(Value::Array(all))
}

#[test]
fn site_errors() {
    assert_eq!(
        code(with(json!([site("w1", "p", Some("v/subnets/int"))]))),
        "Ok"
    );
    assert_eq!(
        code(with(json!([site("w1", "nope", None)]))),
        "InvalidResourceReference"
    );
    let e = with(json!([site("w1", "p", Some("v/subnets/nope"))])).unwrap_err();
    assert_refused(&e, "InvalidResourceReference", "site 'w1'");
    assert_eq!(
        code(with(json!([site("w1", "p", Some("v/subnets/sql"))]))),
        "SubnetDelegationInvalid"
    );
    assert_eq!(
        code(with(json!([site("w1", "p", Some("v/subnets/tiny"))]))),
        "SubnetTooSmall"
    );
    assert_eq!(
        code(with(json!([site("w1", "free", Some("v/subnets/int"))]))),
        "VnetIntegrationNotSupportedForSku"
    );
    assert_eq!(
        code(with(json!([
            site("w1", "p", Some("v/subnets/int")),
            site("x1", "q", Some("v/subnets/int"))
        ]))),
        "SubnetUsedByAnotherServerFarm"
    );
    assert_eq!(
        code(with(json!([
            site("w1", "p", Some("v/subnets/int")),
            site("x1", "p", Some("v/subnets/int2"))
        ]))),
        "MaxVnetIntegrationsExceeded"
    );
    let mut far = site("w1", "p", Some("v/subnets/int"));
    far["location"] = json!("eastus");
    assert_eq!(code(with(json!([far]))), "LocationMismatch");
    assert_eq!(
        code(with(json!([
            nic("n", "v/subnets/int", None),
            site("w1", "p", Some("v/subnets/int"))
        ]))),
        "SubnetDelegationsCannotChangeWhenSubnetUsedByResource"
    );
    assert_eq!(
        code(with(json!([plan("big", "P1v3", 31)]))),
        "InvalidSkuCapacity"
    );
}

#[test]
fn nic_and_vm_errors() {
    assert_eq!(
        code(with(json!([
            nic("n", "v/subnets/vms", Some("10.0.2.4")),
            vm("m", &["n"])
        ]))),
        "Ok"
    );
    assert_eq!(
        code(with(json!([nic("n", "v/subnets/sql", None)]))),
        "SubnetDelegatedCannotHostNetworkInterface"
    );
    assert_eq!(
        code(with(json!([
            nic("n", "v/subnets/vms", Some("10.0.2.4")),
            nic("o", "v/subnets/vms", Some("10.0.2.4"))
        ]))),
        "PrivateIPAddressInUse"
    );
    assert_eq!(
        code(with(json!([nic("n", "v/subnets/vms", Some("10.0.3.4"))]))),
        "PrivateIPAddressNotInSubnet"
    );
    assert_eq!(
        code(with(json!([nic("n", "v/subnets/vms", Some("10.0.2.2"))]))),
        "PrivateIPAddressIsReserved"
    );
    assert_eq!(
        code(with(json!([vm("m", &["nope"])]))),
        "InvalidResourceReference"
    );
    assert_eq!(
        code(with(json!([
            nic("n", "v/subnets/vms", None),
            vm("m", &["n"]),
            vm("m2", &["n"])
        ]))),
        "NicInUse"
    );
    // A NIC in a subnet that integration would delegate: refused on the site side.
    let s = with(json!([site("w1", "p", Some("v/subnets/int"))])).unwrap();
    assert_eq!(
        code(deploy(&s, json!([nic("n", "v/subnets/int", None)]))),
        "SubnetDelegatedCannotHostNetworkInterface"
    );
}

#[test]
fn hosts_and_pool() {
    let h = |addr: &str| json!([{"type": "Lab.Emulator/internetHosts", "name": "h", "properties": {"ipAddress": addr}}]);
    assert_eq!(code(fresh(h("8.8.8.8"))), "Ok");
    assert_eq!(code(fresh(h("10.9.9.9"))), "InvalidInternetHostAddress");
    assert_eq!(code(fresh(h("198.18.7.7"))), "Ok");
    assert_eq!(code(fresh(h("not-an-ip"))), "InvalidRequestFormat");
}

#[test]
fn deletes_refused_while_in_use() {
    let s = example_state();
    let vnet1 = rid("Microsoft.Network/virtualNetworks/vnet1");
    let lab = LabConfig::default();
    let ctx = RequestContext::default();
    let e = delete_resource(&s, &vnet1, &lab, &ctx).unwrap_err();
    assert_refused(
        &e,
        "InUseVirtualNetworkCannotBeDeleted",
        "serviceAssociationLinks/AppServiceLink",
    );
    assert_eq!(
        delete_resource(
            &s,
            &rid("Microsoft.Network/virtualNetworks/vnet1/subnets/vms"),
            &lab,
            &ctx
        )
        .unwrap_err()
        .code,
        "InUseSubnetCannotBeDeleted"
    );
    assert_eq!(
        delete_resource(&s, &rid("Microsoft.Web/serverfarms/plan1"), &lab, &ctx)
            .unwrap_err()
            .code,
        "ServerFarmInUse"
    );
    assert_eq!(
        delete_resource(
            &s,
            &rid("Microsoft.Network/networkInterfaces/vm1-nic"),
            &lab,
            &ctx
        )
        .unwrap_err()
        .code,
        "NicInUse"
    );
    let e = delete_resource(&s, &rid("Microsoft.Web/sites/nope"), &lab, &ctx).unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("ResourceNotFound", 404));
    // Removing a used subnet by redeploying the VNet without it.
    let e = deploy(
        &s,
        json!([vnet(
            "vnet1",
            json!(["10.0.0.0/16"]),
            json!([subnet("vms", "10.0.2.0/24")])
        )]),
    )
    .unwrap_err();
    assert_eq!(e.code, "InUseSubnetCannotBeDeleted");
}

#[test]
fn deleting_in_order_frees_everything() {
    let lab = LabConfig::default();
    let ctx = RequestContext::default();
    let mut s = example_state();
    // Disconnect first, or the subnet keeps the AppServiceLink (seed, "Troubleshooting").
    for app in ["web1", "web2"] {
        let id = rid(&format!("Microsoft.Web/sites/{app}"));
        s = set_integration(&s, &id, None, &lab, &ctx).unwrap();
    }
    for path in [
        "Microsoft.Web/sites/web1",
        "Microsoft.Web/sites/web2",
        "Microsoft.Web/serverfarms/plan1",
        "Microsoft.Compute/virtualMachines/vm1",
        "Microsoft.Network/networkInterfaces/vm1-nic",
        "Microsoft.Network/virtualNetworks/vnet1/subnets/vms",
        "Microsoft.Network/virtualNetworks/vnet1",
        "Lab.Emulator/internetHosts/host1",
    ] {
        s = delete_resource(&s, &rid(path), &lab, &ctx).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    assert!(s.resources.is_empty());
    assert_eq!(s.allocations, crate::ipam::Allocations::default());
}

#[test]
fn child_resources_merge_into_stored_parents() {
    let s = fresh(json!([
        vnet(
            "v",
            json!(["10.0.0.0/16"]),
            json!([subnet("a", "10.0.1.0/24")])
        ),
        plan("p", "S1", 1)
    ]))
    .unwrap();
    let s = deploy(&s, json!([
        {"type": "Microsoft.Network/virtualNetworks/subnets", "name": "v/b", "properties": {"addressPrefix": "10.0.2.0/24"}},
        site("w1", "p", None),
        {"type": "Microsoft.Web/sites/networkConfig", "name": "w1/virtualNetwork",
         "properties": {"subnetResourceId": id_str("Microsoft.Network/virtualNetworks/v/subnets/b"), "swiftSupported": true}},
        {"type": "Microsoft.Web/sites/config", "name": "w1/appsettings", "properties": {"K": "V"}}
    ]))
    .unwrap();
    let inv = Inventory::parse(&s.resources).unwrap();
    assert_eq!(inv.vnets[0].subnets.len(), 2);
    let w = &inv.sites[0];
    assert_eq!(w.subnet_id.as_ref().unwrap().name(), "b");
    assert_eq!(w.app_settings, vec![("K".to_string(), "V".to_string())]);
    let e = deploy(
        &s,
        json!([{"type": "Microsoft.Network/virtualNetworks/subnets", "name": "nope/b",
        "properties": {"addressPrefix": "10.0.2.0/24"}}]),
    )
    .unwrap_err();
    assert_eq!(e.code, "ParentResourceNotFound");
}

#[test]
fn circuit_peerings_merge_into_the_circuit() {
    let s = fresh(json!([{
        "type": "Microsoft.Network/expressRouteCircuits", "name": "er1",
        "sku": {"name": "Standard_MeteredData", "tier": "Standard", "family": "MeteredData"},
        "properties": {"serviceProviderProperties": {
            "serviceProviderName": "Equinix", "peeringLocation": "Amsterdam", "bandwidthInMbps": 50}}
    }]))
    .unwrap();
    let inv = Inventory::parse(&s.resources).unwrap();
    assert_eq!(inv.circuits[0].private_peering, None);
    let s = deploy(&s, json!([{
        "type": "Microsoft.Network/expressRouteCircuits/peerings", "name": "er1/AzurePrivatePeering",
        "properties": {"peeringType": "AzurePrivatePeering", "peerASN": 65020,
            "primaryPeerAddressPrefix": "192.168.15.16/30", "vlanId": 100}
    }]))
    .unwrap();
    let inv = Inventory::parse(&s.resources).unwrap();
    let pp = inv.circuits[0]
        .private_peering
        .expect("the child is the private peering");
    assert_eq!((pp.peer_asn, pp.vlan_id), (65020, 100));
    assert_eq!(pp.addresses(), (ip("192.168.15.17"), ip("192.168.15.18")));
}

#[test]
fn failure_leaves_state_untouched() {
    let s = example_state();
    let before = s.clone();
    assert!(deploy(&s, json!([plan("plan1", "P1v3", 500)])).is_err());
    assert_eq!(s, before);
}

/// `azureStorageAccounts` entries: AzureFiles or AzureBlob, with an account
/// and a share; also set by the `sites/config` resource `azurestorageaccounts`.
#[test]
fn storage_mounts_are_checked_and_merged_from_their_config_resource() {
    let s = example_state();
    let mount = |ty: &str, account: &str| {
        json!({"type": "Microsoft.Web/sites/config", "name": "web1/azurestorageaccounts",
               "properties": {"m1": {"type": ty, "accountName": account, "shareName": "data", "mountPath": "/data"}}})
    };
    assert_eq!(
        code(deploy(&s, json!([mount("Nfs", "acct1")]))),
        "InvalidRequestFormat"
    );
    assert_eq!(
        code(deploy(&s, json!([mount("AzureFiles", "")]))),
        "InvalidRequestFormat"
    );
    let next = deploy(&s, json!([mount("AzureFiles", "Acct1")])).unwrap();
    let inv = crate::model::Inventory::parse(&next.resources).unwrap();
    let site = inv.sites.iter().find(|x| x.name == "web1").unwrap();
    assert_eq!(site.storage_mounts.len(), 1);
    assert_eq!(site.storage_mounts[0].account_name, "acct1");
    assert_eq!(
        site.storage_mounts[0].kind,
        crate::model::StorageMountKind::AzureFiles
    );
}

/// Access restrictions are checked before commit: a bad CIDR, and a
/// `vnetSubnetResourceId` rule whose subnet lacks the Microsoft.Web service
/// endpoint, are refused (`InvalidAccessRestriction`).
#[test]
fn access_restrictions_are_checked_before_commit() {
    let s = example_state();
    let with_rules = |rules: Value| {
        let mut site = s
            .resources
            .values()
            .find(|r| r.name == "web1")
            .unwrap()
            .clone();
        site.properties["siteConfig"]["ipSecurityRestrictions"] = rules;
        json!([{"type": site.type_, "name": site.name, "location": site.location,
                "properties": site.properties}])
    };
    assert_eq!(
        code(deploy(
            &s,
            with_rules(json!([{"ipAddress": "1.2.3.400/32", "priority": 100}]))
        )),
        "InvalidAccessRestriction"
    );
    let subnet = id_str("Microsoft.Network/virtualNetworks/vnet1/subnets/integration");
    let e = deploy(
        &s,
        with_rules(json!([{"vnetSubnetResourceId": subnet, "priority": 100}])),
    )
    .unwrap_err();
    assert_refused(
        &e,
        "InvalidAccessRestriction",
        "Microsoft.Web service endpoint",
    );
    assert_eq!(
        code(deploy(
            &s,
            with_rules(
                json!([{"ipAddress": "203.0.113.0/24", "action": "Allow", "priority": 100}])
            )
        )),
        "Ok"
    );
}
