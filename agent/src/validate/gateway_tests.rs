//! Gateway, connection, circuit and on-premises host rules (issue 12),
//! without a kernel: each refusal with Azure's code (or the lab's, marked in
//! docs/errors.md), and a valid hub and spoke accepted.

use serde_json::{json, Value};

use super::fixtures::{assert_refused, fresh, id_str, rid, subnet, vnet};
use crate::model::{LabConfig, LabState};

fn hub(gateway_prefix: &str) -> Value {
    let mut v = vnet(
        "hub",
        json!(["10.1.0.0/16"]),
        json!([
            subnet("GatewaySubnet", gateway_prefix),
            subnet("vms", "10.1.1.0/24")
        ]),
    );
    v["properties"]["virtualNetworkPeerings"] = json!([{ "name": "to-spoke", "properties": {
        "remoteVirtualNetwork": { "id": id_str("Microsoft.Network/virtualNetworks/spoke") },
        "allowGatewayTransit": true } }]);
    v
}

fn spoke(use_remote: bool) -> Value {
    let mut v = vnet(
        "spoke",
        json!(["10.2.0.0/16"]),
        json!([subnet("apps", "10.2.1.0/24")]),
    );
    v["properties"]["virtualNetworkPeerings"] = json!([{ "name": "to-hub", "properties": {
        "remoteVirtualNetwork": { "id": id_str("Microsoft.Network/virtualNetworks/hub") },
        "useRemoteGateways": use_remote } }]);
    v
}

fn pip() -> Value {
    json!({ "type": "Microsoft.Network/publicIPAddresses", "name": "pip", "location": "westeurope",
            "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } })
}

fn gateway(name: &str, kind: &str, subnet: &str, extra: Value) -> Value {
    let mut ipc = json!({ "subnet": { "id": id_str(&format!("Microsoft.Network/virtualNetworks/hub/subnets/{subnet}")) } });
    if kind == "Vpn" {
        ipc["publicIPAddress"] = json!({ "id": id_str("Microsoft.Network/publicIPAddresses/pip") });
    }
    let mut p = json!({ "gatewayType": kind, "enableBgp": true, "ipConfigurations": [{ "name": "c", "properties": ipc }] });
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({ "type": "Microsoft.Network/virtualNetworkGateways", "name": name, "location": "westeurope", "properties": p })
}

fn lng(name: &str, bgp: Option<(u32, &str)>) -> Value {
    let mut p = json!({ "gatewayIpAddress": "203.0.113.10", "localNetworkAddressSpace": { "addressPrefixes": ["172.20.0.0/16"] } });
    if let Some((asn, a)) = bgp {
        p["bgpSettings"] = json!({ "asn": asn, "bgpPeeringAddress": a });
    }
    json!({ "type": "Microsoft.Network/localNetworkGateways", "name": name, "location": "westeurope", "properties": p })
}

fn conn(name: &str, gw: &str, kind: &str, peer: Value, bgp: bool) -> Value {
    let mut p = json!({ "connectionType": kind, "enableBgp": bgp,
        "virtualNetworkGateway1": { "id": id_str(&format!("Microsoft.Network/virtualNetworkGateways/{gw}")) } });
    if let (Some(p), Some(e)) = (p.as_object_mut(), peer.as_object()) {
        p.extend(e.clone());
    }
    json!({ "type": "Microsoft.Network/connections", "name": name, "location": "westeurope", "properties": p })
}

fn to_lng(name: &str) -> Value {
    json!({ "localNetworkGateway2": { "id": id_str(&format!("Microsoft.Network/localNetworkGateways/{name}")) } })
}

fn circuit(prefix: &str, peering: bool) -> Value {
    let peerings = if peering {
        json!([{ "name": "AzurePrivatePeering", "properties": { "peeringType": "AzurePrivatePeering",
                 "peerASN": 65020, "primaryPeerAddressPrefix": prefix, "vlanId": 100 } }])
    } else {
        json!([])
    };
    json!({ "type": "Microsoft.Network/expressRouteCircuits", "name": "er1", "location": "westeurope",
            "properties": { "peerings": peerings } })
}

/// The valid base: hub with a BGP VPN gateway and a connection to site1; the
/// spoke uses the hub's gateway.
fn base() -> Vec<Value> {
    vec![
        hub("10.1.255.0/27"),
        spoke(true),
        pip(),
        gateway("vgw", "Vpn", "GatewaySubnet", json!({})),
        lng("site1", Some((65050, "192.168.255.1"))),
        conn("c1", "vgw", "IPsec", to_lng("site1"), true),
    ]
}

fn with(f: impl FnOnce(&mut Vec<Value>)) -> Result<LabState, crate::model::AzureError> {
    let mut r = base();
    f(&mut r);
    fresh(Value::Array(r))
}

#[test]
fn a_hub_and_spoke_with_gateways_is_accepted() {
    let s = with(|r| {
        r.push(gateway("ergw", "ExpressRoute", "GatewaySubnet", json!({})));
        r.push(circuit("172.31.0.0/30", true));
        r.push(conn(
            "c2",
            "ergw",
            "ExpressRoute",
            json!({ "peer": { "id": id_str("Microsoft.Network/expressRouteCircuits/er1") } }),
            false,
        ));
        r.push(json!({ "type": "Lab.Emulator/onPremisesHosts", "name": "db", "properties": {
            "site": { "id": id_str("Microsoft.Network/localNetworkGateways/site1") }, "ipAddress": "172.20.5.10" } }));
    });
    assert!(s.is_ok(), "{:?}", s.err());
}

#[test]
fn gateway_rules() {
    let e = with(|r| r[3] = gateway("vgw", "Vpn", "nope", json!({}))).unwrap_err();
    assert_refused(&e, "InvalidResourceReference", "GatewaySubnet");
    let e = with(|r| r[3] = gateway("vgw", "Vpn", "vms", json!({}))).unwrap_err();
    assert_refused(&e, "GatewaySubnetNameInvalid", "'vms'");
    let e = with(|r| {
        r[0] = hub("10.1.255.0/28");
        r.push(gateway("ergw", "ExpressRoute", "GatewaySubnet", json!({})));
    })
    .unwrap_err();
    assert_refused(&e, "GatewaySubnetIsTooSmall", "/28");
    // A VPN gateway alone is fine in a /29, as in Azure.
    assert!(with(|r| r[0] = hub("10.1.255.0/29")).is_ok());
    let e = with(|r| {
        r[3] = gateway(
            "vgw",
            "Vpn",
            "GatewaySubnet",
            json!({ "bgpSettings": { "bgpPeeringAddress": "10.1.1.9" } }),
        )
    })
    .unwrap_err();
    assert_refused(&e, "InvalidBgpPeeringAddress", "10.1.1.9");
    let e = with(|r| {
        r[3]["properties"]["ipConfigurations"][0]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("publicIPAddress");
    })
    .unwrap_err();
    assert_refused(
        &e,
        "VirtualNetworkGatewayIpConfigurationMustHavePublicIp",
        "vgw",
    );
    let e = with(|r| r.push(gateway("vgw2", "Vpn", "GatewaySubnet", json!({})))).unwrap_err();
    assert_refused(&e, "VnetAlreadyHasGatewayOfThisType", "Vpn");
}

#[test]
fn connection_circuit_and_host_rules() {
    let e = with(|r| r[4] = lng("site1", Some((12076, "192.168.255.1")))).unwrap_err();
    assert_refused(&e, "InvalidBgpAsn", "12076");
    let e = with(|r| r[4] = lng("site1", None)).unwrap_err();
    assert_refused(
        &e,
        "BgpNotEnabledOnGatewayOrLocalNetworkGateway",
        "bgpSettings",
    );
    let e = with(|r| {
        r.push(circuit("172.31.0.0/30", true));
        r.push(conn(
            "c2",
            "vgw",
            "ExpressRoute",
            json!({ "peer": { "id": id_str("Microsoft.Network/expressRouteCircuits/er1") } }),
            false,
        ));
    })
    .unwrap_err();
    assert_refused(&e, "InvalidGatewayTypeForConnection", "ExpressRoute");
    let e = with(|r| {
        r.push(gateway("ergw", "ExpressRoute", "GatewaySubnet", json!({})));
        r.push(circuit("172.31.0.0/30", false));
        r.push(conn(
            "c2",
            "ergw",
            "ExpressRoute",
            json!({ "peer": { "id": id_str("Microsoft.Network/expressRouteCircuits/er1") } }),
            false,
        ));
    })
    .unwrap_err();
    assert_refused(&e, "CircuitHasNoPrivatePeering", "er1");
    let e = with(|r| r.push(circuit("172.31.0.0/29", true))).unwrap_err();
    assert_refused(&e, "InvalidPeerAddressPrefix", "/30");
    let e = with(|r| {
        r.push(json!({ "type": "Lab.Emulator/onPremisesHosts", "name": "db", "properties": {
            "site": { "id": id_str("Microsoft.Network/localNetworkGateways/site1") }, "ipAddress": "10.2.1.50" } }))
    })
    .unwrap_err();
    assert_refused(&e, "OnPremisesAddressOverlapsVirtualNetwork", "10.2.1.50");
}

#[test]
fn transit_dependents_block_deletes() {
    let s = with(|_| {}).unwrap();
    let ctx = crate::validate::RequestContext::default();
    let lab = LabConfig::default();
    let e = crate::validate::delete_resource(
        &s,
        &rid("Microsoft.Network/virtualNetworkGateways/vgw"),
        &lab,
        &ctx,
    )
    .unwrap_err();
    assert_refused(&e, "InUseVirtualNetworkGatewayCannotBeDeleted", "c1");
    let s =
        crate::validate::delete_resource(&s, &rid("Microsoft.Network/connections/c1"), &lab, &ctx)
            .unwrap();
    let e = crate::validate::delete_resource(
        &s,
        &rid("Microsoft.Network/virtualNetworkGateways/vgw"),
        &lab,
        &ctx,
    )
    .unwrap_err();
    assert_refused(
        &e,
        "InUseVirtualNetworkGatewayCannotBeDeleted",
        "useRemoteGateways",
    );
    // The hub turning gateway transit off breaks the spoke.
    let e = with(|r| {
        r[0]["properties"]["virtualNetworkPeerings"][0]["properties"]["allowGatewayTransit"] =
            json!(false)
    })
    .unwrap_err();
    assert_refused(
        &e,
        "RemotePeeringDoesNotAllowGatewayTransit",
        "AllowGatewayTransit",
    );
}
