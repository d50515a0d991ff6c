//! Gateways and on-premises sites with real packets and real BGP (issue 12):
//! an app integrated in a spoke reaches on-premises hosts through the hub's
//! VPN and ExpressRoute gateways; routes come from real BIRD speakers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vnet_e2e::fixtures::*;
use vnet_e2e::*;

fn peer(name: &str, remote: &str, extra: Value) -> Value {
    let mut p = json!({ "allowVirtualNetworkAccess": true, "remoteVirtualNetwork": { "id": net("virtualNetworks", remote) } });
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({ "name": name, "properties": p })
}

fn vnet_with(name: &str, prefix: &str, subnets: Value, peerings: Vec<Value>) -> Value {
    let mut v = vnet(name, "westeurope", &[prefix], subnets);
    v["properties"]["virtualNetworkPeerings"] = json!(peerings);
    v
}

fn public_ip(name: &str) -> Value {
    json!({ "type": "Microsoft.Network/publicIPAddresses", "name": name, "location": "westeurope",
            "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } })
}

fn vpn_gateway(name: &str, vnet: &str, pip: &str, bgp: bool) -> Value {
    json!({
        "type": "Microsoft.Network/virtualNetworkGateways", "name": name, "location": "westeurope",
        "properties": {
            "gatewayType": "Vpn", "vpnType": "RouteBased", "enableBgp": bgp,
            "sku": { "name": "VpnGw1", "tier": "VpnGw1" },
            "bgpSettings": { "asn": 65515 },
            "ipConfigurations": [{ "name": "default", "properties": {
                "subnet": { "id": subnet_id(vnet, "GatewaySubnet") },
                "publicIPAddress": { "id": net("publicIPAddresses", pip) } } }]
        }
    })
}

fn local_gateway(name: &str, ip: &str, prefixes: &[&str], bgp: Option<(u32, &str)>) -> Value {
    let mut p = json!({ "gatewayIpAddress": ip, "localNetworkAddressSpace": { "addressPrefixes": prefixes } });
    if let Some((asn, addr)) = bgp {
        p["bgpSettings"] = json!({ "asn": asn, "bgpPeeringAddress": addr });
    }
    json!({ "type": "Microsoft.Network/localNetworkGateways", "name": name, "location": "westeurope", "properties": p })
}

fn connection(name: &str, gateway: &str, peer: Value, kind: &str, bgp: bool) -> Value {
    let mut p = json!({ "connectionType": kind, "enableBgp": bgp, "sharedKey": "abc123",
                        "virtualNetworkGateway1": { "id": net("virtualNetworkGateways", gateway) } });
    if let (Some(p), Some(e)) = (p.as_object_mut(), peer.as_object()) {
        p.extend(e.clone());
    }
    json!({ "type": "Microsoft.Network/connections", "name": name, "location": "westeurope", "properties": p })
}

fn onprem_host(name: &str, site: &str, ip: &str) -> Value {
    json!({ "type": "Lab.Emulator/onPremisesHosts", "name": name, "location": "westeurope",
            "properties": { "site": { "id": site }, "ipAddress": ip } })
}

/// hub 10.1/16 (GatewaySubnet, a VM), spoke1 10.2/16 (web1 integrated),
/// peered with gateway transit; a BGP VPN gateway in the hub connected to
/// site1 (ASN 65050, BGP address 192.168.255.1) with host db 172.20.5.10.
fn hub_spoke_vpn(route_all: bool) -> Value {
    let mut resources = vec![
        vnet_with(
            "hub",
            "10.1.0.0/16",
            json!([
                { "name": "GatewaySubnet", "properties": { "addressPrefix": "10.1.255.0/27" } },
                { "name": "vms", "properties": { "addressPrefix": "10.1.1.0/24" } }
            ]),
            vec![peer(
                "hub-to-spoke1",
                "spoke1",
                json!({ "allowGatewayTransit": true }),
            )],
        ),
        vnet_with(
            "spoke1",
            "10.2.0.0/16",
            json!([{ "name": "integration", "properties": { "addressPrefix": "10.2.1.0/26" } }]),
            vec![peer(
                "spoke1-to-hub",
                "hub",
                json!({ "useRemoteGateways": true }),
            )],
        ),
        public_ip("vgw-pip"),
        vpn_gateway("vgw", "hub", "vgw-pip", true),
        local_gateway(
            "site1",
            "203.0.113.10",
            &["192.168.255.1/32"],
            Some((65050, "192.168.255.1")),
        ),
        connection(
            "hub-to-site1",
            "vgw",
            json!({ "localNetworkGateway2": { "id": net("localNetworkGateways", "site1") } }),
            "IPsec",
            true,
        ),
        onprem_host("db", &net("localNetworkGateways", "site1"), "172.20.5.10"),
        plan("plan1", "P1v3", 1, json!({})),
        site(
            "web1",
            "plan1",
            Some(&subnet_id("spoke1", "integration")),
            "westeurope",
            json!({ "appCommandLine": "sleep 100000", "vnetRouteAllEnabled": route_all }),
        ),
    ];
    resources.extend(vm_in(RG, "hubvm", &subnet_id("hub", "vms"), "10.1.1.4"));
    template(resources)
}

/// Polls `f` every 100 ms until it holds or `secs` pass.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn route_to<'a>(routes: &'a Value, prefix: &str) -> Option<&'a Value> {
    routes["value"]
        .as_array()?
        .iter()
        .find(|r| r["addressPrefix"][0] == prefix && r["state"] == "Active")
}

/// The app connects to the on-premises host; the peer address the host saw.
fn app_reaches(lab: &Lab, ip: &str) -> Option<String> {
    let out = lab.exec(
        &["--app", "web1"],
        &[&probe_bin(), "tcp", ip, "9000", "800"],
    );
    out.status
        .success()
        .then(|| peer_ip(&String::from_utf8_lossy(&out.stdout)))
}

/// Hub and spoke with a BGP VPN to an on-premises site: the on-premises LAN
/// arrives in the spoke's effective routes from the hub's gateway (source
/// VirtualNetworkGateway), the app reaches the host with its instance's
/// private address; withdrawn by the on-premises speaker (no request to the
/// agent) it is unreachable, announced again it is back.
#[test]
fn bgp_over_vpn_announce_and_withdraw_reach_a_spoke_app() {
    let Some(mut lab) = Lab::start() else { return };
    lab.deploy(RG, &hub_spoke_vpn(false));
    let probe = probe_bin();
    lab.spawn(&["--onprem-host", "db"], &[&probe, "serve-tcp", "9000"]);
    let routes = || lab.subnet_effective_routes(RG, "spoke1", "integration");
    assert!(
        eventually(30, || route_to(&routes(), "172.20.5.0/24").is_some()),
        "the on-premises LAN never arrived over BGP: {:#}\n{}",
        routes(),
        lab.daemon_log()
    );
    let r = routes();
    let bgp = route_to(&r, "172.20.5.0/24").unwrap();
    assert_eq!(bgp["source"], "VirtualNetworkGateway", "{bgp:#}");
    assert_eq!(bgp["nextHopType"], "VirtualNetworkGateway", "{bgp:#}");
    assert_eq!(bgp["nextHopIpAddress"], json!(["10.1.255.30"]), "{bgp:#}");
    // The local network gateway's own prefix is a static gateway route.
    let st = route_to(&r, "192.168.255.1/32").expect("LNG prefix");
    assert_eq!(st["source"], "Default", "{st:#}");

    let ips = instance_ips(&lab, "web1");
    assert!(
        eventually(10, || app_reaches(&lab, "172.20.5.10").is_some()),
        "the app never reached the on-premises host"
    );
    assert_eq!(
        app_reaches(&lab, "172.20.5.10").as_deref(),
        Some(ips[0].as_str())
    );

    // The on-premises speaker withdraws its LAN: gone without a request.
    lab.exec_ok(
        &["--site", "site1"],
        &[
            "sh",
            "-c",
            "birdc -s \"$VNET_BIRD_SOCKET\" disable lan_172_20_5_0_24",
        ],
    );
    assert!(
        eventually(10, || route_to(&routes(), "172.20.5.0/24").is_none()),
        "the withdrawn prefix stayed: {:#}",
        routes()
    );
    assert!(
        app_reaches(&lab, "172.20.5.10").is_none(),
        "a withdrawn prefix is unreachable"
    );
    lab.exec_ok(
        &["--site", "site1"],
        &[
            "sh",
            "-c",
            "birdc -s \"$VNET_BIRD_SOCKET\" enable lan_172_20_5_0_24",
        ],
    );
    assert!(
        eventually(10, || app_reaches(&lab, "172.20.5.10").is_some()),
        "the announced prefix never became reachable again"
    );
}
