//! Gateways and on-premises sites with real packets and real BGP (issue 12):
//! an app integrated in a spoke reaches on-premises hosts through the hub's
//! VPN and ExpressRoute gateways; routes come from real BIRD speakers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vnet_e2e::fixtures::*;
use vnet_e2e::*;

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
    let routes_of = |lab: &Lab| lab.subnet_effective_routes(RG, "spoke1", "integration");
    assert!(
        eventually(30, || route_to(&routes_of(&lab), "172.20.5.0/24").is_some()),
        "the on-premises LAN never arrived over BGP: {:#}\n{}",
        routes_of(&lab),
        lab.daemon_log()
    );
    let r = routes_of(&lab);
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

    // What the gateway's speaker really learned and sends, as az prints it.
    let learned = lab.cli_json(&[
        "network",
        "vnet-gateway",
        "list-learned-routes",
        "-g",
        RG,
        "-n",
        "vgw",
    ]);
    let lan = learned["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["network"] == "172.20.5.0/24")
        .unwrap_or_else(|| panic!("{learned:#}"));
    assert_eq!(
        (
            lan["origin"].as_str(),
            lan["asPath"].as_str(),
            lan["nextHop"].as_str()
        ),
        (Some("EBgp"), Some("65050"), Some("192.168.255.1")),
        "{lan:#}"
    );
    let sent = lab.cli_json(&[
        "network",
        "vnet-gateway",
        "list-advertised-routes",
        "-g",
        RG,
        "-n",
        "vgw",
        "--peer",
        "192.168.255.1",
    ]);
    let nets: Vec<&str> = sent["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["network"].as_str())
        .collect();
    assert!(
        nets.contains(&"10.1.0.0/16") && nets.contains(&"10.2.0.0/16"),
        "the hub and the transit spoke are advertised: {sent:#}"
    );

    // A daemon restart adopts the speakers and keeps their routes: it
    // writes nothing to the kernel, and the host stays reachable.
    lab.stop_daemon();
    lab.start_daemon();
    let restarted = lab.cli_json(&["lab", "status"]);
    assert_eq!(
        restarted["totals"]["kernelWrites"]
            .as_u64()
            .or(restarted["totals"]["kernel_writes"].as_u64()),
        Some(0),
        "the restarted daemon wrote to the kernel: {restarted}"
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
        eventually(10, || route_to(&routes_of(&lab), "172.20.5.0/24").is_none()),
        "the withdrawn prefix stayed: {:#}",
        routes_of(&lab)
    );
    assert!(
        app_reaches(&lab, "172.20.5.10").is_none(),
        "a withdrawn prefix is unreachable"
    );
    let learned = lab.cli_json(&[
        "network",
        "vnet-gateway",
        "list-learned-routes",
        "-g",
        RG,
        "-n",
        "vgw",
    ]);
    assert!(
        !learned.to_string().contains("172.20.5.0/24"),
        "{learned:#}"
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

fn er_gateway(name: &str, vnet: &str) -> Value {
    json!({
        "type": "Microsoft.Network/virtualNetworkGateways", "name": name, "location": "westeurope",
        "properties": {
            "gatewayType": "ExpressRoute", "sku": { "name": "Standard", "tier": "Standard" },
            "ipConfigurations": [{ "name": "default", "properties": {
                "subnet": { "id": subnet_id(vnet, "GatewaySubnet") } } }]
        }
    })
}

fn circuit(name: &str, peer_asn: u32, primary: &str) -> Value {
    json!({
        "type": "Microsoft.Network/expressRouteCircuits", "name": name, "location": "westeurope",
        "sku": { "name": "Standard_MeteredData", "tier": "Standard", "family": "MeteredData" },
        "properties": {
            "serviceProviderProperties": { "serviceProviderName": "Equinix", "peeringLocation": "Amsterdam", "bandwidthInMbps": 50 },
            "peerings": [{ "name": "AzurePrivatePeering", "properties": {
                "peeringType": "AzurePrivatePeering", "peerASN": peer_asn, "primaryPeerAddressPrefix": primary,
                "secondaryPeerAddressPrefix": "172.31.0.4/30", "vlanId": 100 } }]
        }
    })
}

/// Two on-premises sites at once: site1 over the hub's VPN gateway (BGP),
/// dc2 behind an ExpressRoute circuit over the hub's ExpressRoute gateway.
/// The spoke app reaches a host in each, over TCP and UDP, with its
/// instance's private address; each prefix comes from its own gateway.
#[test]
fn vpn_and_expressroute_reach_two_sites_over_tcp_and_udp() {
    let Some(mut lab) = Lab::start() else { return };
    let mut t = hub_spoke_vpn(false);
    let r = t["resources"].as_array_mut().unwrap();
    r.push(er_gateway("ergw", "hub"));
    r.push(circuit("er1", 65020, "172.31.0.0/30"));
    r.push(connection(
        "hub-to-er1",
        "ergw",
        json!({ "peer": { "id": net("expressRouteCircuits", "er1") } }),
        "ExpressRoute",
        false,
    ));
    r.push(onprem_host(
        "dc2db",
        &net("expressRouteCircuits", "er1"),
        "10.200.1.10",
    ));
    lab.deploy(RG, &t);
    let probe = probe_bin();
    lab.spawn(&["--onprem-host", "db"], &[&probe, "serve-tcp", "9000"]);
    lab.spawn(&["--onprem-host", "dc2db"], &[&probe, "serve-tcp", "9000"]);
    lab.spawn(&["--onprem-host", "db"], &[&probe, "serve-udp", "9001"]);
    lab.spawn(&["--onprem-host", "dc2db"], &[&probe, "serve-udp", "9001"]);
    let routes = || lab.subnet_effective_routes(RG, "spoke1", "integration");
    assert!(
        eventually(30, || {
            let r = routes();
            route_to(&r, "172.20.5.0/24").is_some() && route_to(&r, "10.200.1.0/24").is_some()
        }),
        "both sites' LANs should arrive: {:#}",
        routes()
    );
    let r = routes();
    assert_eq!(
        route_to(&r, "10.200.1.0/24").unwrap()["nextHopIpAddress"],
        json!(["10.1.255.4"])
    );
    assert_eq!(
        route_to(&r, "172.20.5.0/24").unwrap()["nextHopIpAddress"],
        json!(["10.1.255.30"])
    );
    let ip = instance_ips(&lab, "web1")[0].clone();
    for host in ["172.20.5.10", "10.200.1.10"] {
        assert!(
            eventually(10, || app_reaches(&lab, host).is_some()),
            "the app never reached {host} over TCP"
        );
        assert_eq!(
            app_reaches(&lab, host).as_deref(),
            Some(ip.as_str()),
            "{host}"
        );
        let out = lab.exec_ok(&["--app", "web1"], &[&probe, "udp", host, "9001", "1000"]);
        assert_eq!(peer_ip(&out), ip, "UDP to {host}: {out}");
    }
    // The ExpressRoute gateway learned dc2's LAN from the customer's router
    // (ASN 65020) over the circuit's private peering.
    let gw = lab.show(&net("virtualNetworkGateways", "ergw"));
    assert_eq!(
        gw["properties"]["bgpSettings"]["bgpPeeringAddress"], "10.1.255.4",
        "{gw:#}"
    );
    let conn = lab.show(&net("connections", "hub-to-er1"));
    assert_eq!(
        conn["properties"]["connectionStatus"], "Connected",
        "{conn:#}"
    );
    assert!(conn["properties"].get("sharedKey").is_none(), "{conn:#}");
}

/// A counter of the kernel's `/proc/net/netstat` or `/proc/net/snmp`
/// (`IpExt InNoRoutes`, ...) inside the namespace `target` names.
fn kernel_counter(lab: &Lab, target: &[&str], file: &str, group: &str, name: &str) -> u64 {
    let text = lab.exec_ok(target, &["cat", file]);
    let mut lines = text.lines().filter(|l| l.starts_with(&format!("{group}:")));
    let (Some(head), Some(vals)) = (lines.next(), lines.next()) else {
        panic!("no {group} in {file}: {text}");
    };
    let i = head
        .split_whitespace()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no {name} in {head}"));
    vals.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// A site on a static VPN (no BGP): its device knows the hub's space it was
/// configured with, not the spoke behind the hub's gateway. The hub's VM
/// reaches its host; the spoke app's SYN arrives (the host answers) but the
/// reply dies at the site's router with no route back (its `InNoRoutes`
/// moves) until the connection runs BGP, which teaches the router the
/// spoke's space.
#[test]
fn a_static_site_without_a_return_route_loses_replies_until_bgp() {
    let Some(mut lab) = Lab::start() else { return };
    let mut t = hub_spoke_vpn(false);
    let r = t["resources"].as_array_mut().unwrap();
    r.push(local_gateway(
        "branch",
        "203.0.113.20",
        &["172.30.0.0/16"],
        None,
    ));
    r.push(connection(
        "hub-to-branch",
        "vgw",
        json!({ "localNetworkGateway2": { "id": net("localNetworkGateways", "branch") } }),
        "IPsec",
        false,
    ));
    r.push(onprem_host(
        "bh",
        &net("localNetworkGateways", "branch"),
        "172.30.1.10",
    ));
    lab.deploy(RG, &t);
    let probe = probe_bin();
    lab.spawn(&["--onprem-host", "bh"], &[&probe, "serve-tcp", "9000"]);
    // A static route, source Default, in the spoke too (gateway transit).
    let routes = lab.subnet_effective_routes(RG, "spoke1", "integration");
    let st = route_to(&routes, "172.30.0.0/16").expect("the branch's prefix");
    assert_eq!(
        (st["source"].as_str(), st["nextHopType"].as_str()),
        (Some("Default"), Some("VirtualNetworkGateway")),
        "{st:#}"
    );
    let out = lab.exec_ok(
        &["--vm", "hubvm"],
        &[&probe, "tcp", "172.30.1.10", "9000", "2000"],
    );
    assert_eq!(peer_ip(&out), "10.1.1.4");
    let before = kernel_counter(
        &lab,
        &["--site", "branch"],
        "/proc/net/netstat",
        "IpExt",
        "InNoRoutes",
    );
    assert!(
        app_reaches(&lab, "172.30.1.10").is_none(),
        "no return route: the reply is lost"
    );
    let after = kernel_counter(
        &lab,
        &["--site", "branch"],
        "/proc/net/netstat",
        "IpExt",
        "InNoRoutes",
    );
    assert!(
        after > before,
        "the site's router dropped the replies: InNoRoutes {before} -> {after}"
    );

    // BGP on the connection: the router learns the spoke from the gateway.
    let r = t["resources"].as_array_mut().unwrap();
    for x in r.iter_mut() {
        if x["name"] == "branch" {
            *x = local_gateway(
                "branch",
                "203.0.113.20",
                &["192.168.254.1/32"],
                Some((65060, "192.168.254.1")),
            );
        }
        if x["name"] == "hub-to-branch" {
            x["properties"]["enableBgp"] = json!(true);
        }
    }
    lab.deploy(RG, &t);
    assert!(
        eventually(30, || app_reaches(&lab, "172.30.1.10").is_some()),
        "with BGP the router learns the spoke and the replies come back"
    );
    let ip = instance_ips(&lab, "web1")[0].clone();
    assert_eq!(
        app_reaches(&lab, "172.30.1.10").as_deref(),
        Some(ip.as_str())
    );
}

/// `disableBgpRoutePropagation` on the spoke's route table removes the
/// gateway's routes from that subnet only (the hub's VMs still reach the
/// site); a UDR with next hop VirtualNetworkGateway sends the traffic to the
/// hub's gateway anyway.
#[test]
fn disable_bgp_route_propagation_and_a_udr_to_the_gateway() {
    let Some(mut lab) = Lab::start() else { return };
    let mut t = hub_spoke_vpn(false);
    let rt = |routes: Value| {
        json!({ "type": "Microsoft.Network/routeTables", "name": "rt-spoke", "location": "westeurope",
                "properties": { "disableBgpRoutePropagation": true, "routes": routes } })
    };
    let r = t["resources"].as_array_mut().unwrap();
    r.push(rt(json!([])));
    for x in r.iter_mut() {
        if x["name"] == "spoke1" {
            x["properties"]["subnets"][0]["properties"]["routeTable"] =
                json!({ "id": net("routeTables", "rt-spoke") });
        }
    }
    lab.deploy(RG, &t);
    let probe = probe_bin();
    lab.spawn(&["--onprem-host", "db"], &[&probe, "serve-tcp", "9000"]);
    let hub_routes = || lab.subnet_effective_routes(RG, "hub", "vms");
    assert!(
        eventually(30, || route_to(&hub_routes(), "172.20.5.0/24").is_some()),
        "the hub's subnets take the BGP route: {:#}",
        hub_routes()
    );
    let out = lab.exec_ok(
        &["--vm", "hubvm"],
        &[&probe, "tcp", "172.20.5.10", "9000", "2000"],
    );
    assert_eq!(peer_ip(&out), "10.1.1.4");
    let spoke = lab.subnet_effective_routes(RG, "spoke1", "integration");
    assert!(
        !spoke["value"].to_string().contains("VirtualNetworkGateway"),
        "no gateway route with propagation off: {spoke:#}"
    );
    assert!(
        app_reaches(&lab, "172.20.5.10").is_none(),
        "172.16/12 is None here"
    );

    let r = t["resources"].as_array_mut().unwrap();
    for x in r.iter_mut() {
        if x["name"] == "rt-spoke" {
            *x = rt(json!([{ "name": "to-onprem", "properties": {
                "addressPrefix": "172.20.0.0/16", "nextHopType": "VirtualNetworkGateway" } }]));
        }
    }
    lab.deploy(RG, &t);
    let spoke = lab.subnet_effective_routes(RG, "spoke1", "integration");
    let udr = route_to(&spoke, "172.20.0.0/16").expect("the UDR");
    assert_eq!(
        (udr["source"].as_str(), udr["nextHopType"].as_str()),
        (Some("User"), Some("VirtualNetworkGateway")),
        "{udr:#}"
    );
    let ip = instance_ips(&lab, "web1")[0].clone();
    assert!(
        eventually(10, || app_reaches(&lab, "172.20.5.10").as_deref()
            == Some(ip.as_str())),
        "the UDR sends the app's traffic to the hub's gateway"
    );
}

/// An on-premises LAN in public space (198.51.100.0/24, announced over BGP)
/// while a partner on the internet has the same address: with Route All off
/// only RFC1918 enters the VNet, so the app reaches the internet host with
/// its outbound IP; with Route All on it follows the BGP route to the
/// on-premises host with its private address.
#[test]
fn a_public_onprem_prefix_is_reached_through_the_gateway_only_with_route_all() {
    let Some(mut lab) = Lab::start() else { return };
    let build = |route_all: bool| {
        let mut t = hub_spoke_vpn(route_all);
        let r = t["resources"].as_array_mut().unwrap();
        r.push(onprem_host(
            "pubsvc",
            &net("localNetworkGateways", "site1"),
            "198.51.100.10",
        ));
        r.push(json!({ "type": "Lab.Emulator/internetHosts", "name": "partner", "location": "westeurope",
                       "properties": { "ipAddress": "198.51.100.10" } }));
        t
    };
    lab.deploy(RG, &build(false));
    let probe = probe_bin();
    lab.spawn(&["--onprem-host", "pubsvc"], &[&probe, "serve-tcp", "9000"]);
    lab.spawn(&["--host", "partner"], &[&probe, "serve-tcp", "9000"]);
    let routes = || lab.subnet_effective_routes(RG, "spoke1", "integration");
    assert!(
        eventually(30, || route_to(&routes(), "198.51.100.0/24").is_some()),
        "the public on-premises LAN arrives over BGP: {:#}",
        routes()
    );
    let private = instance_ips(&lab, "web1")[0].clone();
    let seen = app_reaches(&lab, "198.51.100.10").expect("the internet host answers");
    assert_ne!(
        seen, private,
        "Route All off: public destinations leave directly"
    );
    let outbound = lab.show(&id(RG, "Microsoft.Web/sites", "web1"))["properties"]
        ["outboundIpAddresses"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        outbound.split(',').any(|o| o == seen),
        "{seen} is one of {outbound}"
    );

    lab.deploy(RG, &build(true));
    assert!(
        eventually(10, || app_reaches(&lab, "198.51.100.10").as_deref()
            == Some(private.as_str())),
        "Route All on: the BGP route takes it to the on-premises host"
    );
}

/// Every refusal of gateways and gateway transit, with Azure's code, leaves
/// the store and the kernel as they were (`Lab::refused` compares both).
#[test]
fn gateway_refusals_change_nothing() {
    let Some(lab) = Lab::start() else { return };
    let base = hub_spoke_vpn(false);
    lab.deploy(RG, &base);
    // BGP settles first: what it learns changes the kernel by itself.
    assert!(eventually(30, || route_to(
        &lab.subnet_effective_routes(RG, "spoke1", "integration"),
        "172.20.5.0/24"
    )
    .is_some()));
    let with = |f: &dyn Fn(&mut Vec<Value>)| {
        let mut t = base.clone();
        f(t["resources"].as_array_mut().unwrap());
        t
    };
    // A GatewaySubnet too small for an ExpressRoute gateway (it needs a
    // /27; a VPN gateway alone takes any subnet from /29, as in Azure).
    let small = |prefix: &str, gw: Value| {
        template(vec![
            vnet(
                "small",
                "westeurope",
                &["10.9.0.0/16"],
                json!([{ "name": "GatewaySubnet", "properties": { "addressPrefix": prefix } }]),
            ),
            gw,
        ])
    };
    lab.deploy_refused(
        RG,
        &small("10.9.255.0/28", er_gateway("smallergw", "small")),
        "GatewaySubnetIsTooSmall",
    );
    // A gateway outside GatewaySubnet.
    lab.deploy_refused(
        RG,
        &with(&|r| {
            let mut g = vpn_gateway("wrong", "hub", "vgw-pip", false);
            g["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] =
                json!(subnet_id("hub", "vms"));
            r.push(g);
        }),
        "GatewaySubnetNameInvalid",
    );
    // useRemoteGateways towards a hub whose peering does not allow transit.
    lab.deploy_refused(
        RG,
        &with(&|r| {
            r[0]["properties"]["virtualNetworkPeerings"][0]["properties"]["allowGatewayTransit"] =
                json!(false);
        }),
        "RemotePeeringDoesNotAllowGatewayTransit",
    );
    // useRemoteGateways towards a VNet without a gateway.
    lab.deploy_refused(
        RG,
        &template(vec![
            vnet_with(
                "a",
                "10.50.0.0/16",
                json!([]),
                vec![peer("a-to-b", "b", json!({ "useRemoteGateways": true }))],
            ),
            vnet_with(
                "b",
                "10.51.0.0/16",
                json!([]),
                vec![peer("b-to-a", "a", json!({ "allowGatewayTransit": true }))],
            ),
        ]),
        "RemoteVnetHasNoGateways",
    );
    // Peering with a classic VNet.
    lab.deploy_refused(
        RG,
        &template(vec![
            json!({ "type": "Microsoft.ClassicNetwork/virtualNetworks", "name": "classic1", "location": "westeurope",
                    "properties": { "addressSpace": { "addressPrefixes": ["10.60.0.0/16"] }, "subnets": [] } }),
            vnet_with("c", "10.61.0.0/16", json!([]), vec![json!({ "name": "c-to-classic", "properties": {
                "remoteVirtualNetwork": { "id": id(RG, "Microsoft.ClassicNetwork/virtualNetworks", "classic1") } } })]),
        ]),
        "PeeringWithClassicVnetNotSupported",
    );
    // BGP on a connection whose local network gateway has no bgpSettings.
    lab.deploy_refused(
        RG,
        &with(&|r| {
            r.push(local_gateway(
                "nobgp",
                "203.0.113.30",
                &["172.31.0.0/16"],
                None,
            ));
            r.push(connection(
                "to-nobgp",
                "vgw",
                json!({ "localNetworkGateway2": { "id": net("localNetworkGateways", "nobgp") } }),
                "IPsec",
                true,
            ));
        }),
        "BgpNotEnabledOnGatewayOrLocalNetworkGateway",
    );
    // A reserved ASN on-premises.
    lab.deploy_refused(
        RG,
        &with(&|r| {
            r.push(local_gateway(
                "res",
                "203.0.113.31",
                &[],
                Some((65515, "192.168.250.1")),
            ))
        }),
        "InvalidBgpAsn",
    );
    // Deleting the hub's gateway while a connection and a spoke use it.
    lab.refused(
        &[
            "resource",
            "delete",
            "--ids",
            &net("virtualNetworkGateways", "vgw"),
        ],
        "InUseVirtualNetworkGatewayCannotBeDeleted",
    );
}

/// Azure's quickstart `site-to-site-vpn-create` (tests/templates, one
/// property changed: its public IP is Static, see SOURCES.md): a VPN gateway
/// in a /29 GatewaySubnet and a static connection to a local network gateway
/// for 192.168.0.0/16 and 172.16.0.0/12. A VM in Subnet1 and a host on the
/// site's LAN reach each other both ways, each seeing the other's address.
#[test]
fn the_site_to_site_vpn_quickstart_carries_traffic_both_ways() {
    let Some(mut lab) = Lab::start() else { return };
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("templates/site-to-site-vpn-create/azuredeploy.json");
    let mut t: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for r in t["resources"].as_array_mut().unwrap() {
        if r["type"] == "Microsoft.Network/publicIPAddresses" {
            r["properties"]["publicIPAllocationMethod"] = json!("Static");
        }
    }
    let path = lab.write_json("s2s.json", &t);
    lab.cli_ok(&["group", "create", "-n", "s2s", "-l", "westeurope"]);
    lab.deploy_file("s2s", &path, &["sharedKey=Abc123Abc123"]);
    let lng = id(
        "s2s",
        "Microsoft.Network/localNetworkGateways",
        "localGateway",
    );
    let mut extra = vec![onprem_host("branchpc", &lng, "192.168.1.10")];
    extra.extend(vm_in(
        "s2s",
        "vm1",
        &format!(
            "{}/subnets/Subnet1",
            id("s2s", "Microsoft.Network/virtualNetworks", "azureVnet")
        ),
        "10.3.1.4",
    ));
    lab.deploy("s2s", &template(extra));
    let probe = probe_bin();
    lab.spawn(
        &["--onprem-host", "branchpc"],
        &[&probe, "serve-tcp", "9000"],
    );
    lab.spawn(&["--vm", "vm1"], &[&probe, "serve-tcp", "9000"]);
    let out = lab.exec_ok(
        &["--vm", "vm1"],
        &[&probe, "tcp", "192.168.1.10", "9000", "2000"],
    );
    assert_eq!(peer_ip(&out), "10.3.1.4");
    let out = lab.exec_ok(
        &["--onprem-host", "branchpc"],
        &[&probe, "tcp", "10.3.1.4", "9000", "2000"],
    );
    assert_eq!(peer_ip(&out), "192.168.1.10");
    let gw = lab.show(&id(
        "s2s",
        "Microsoft.Network/virtualNetworkGateways",
        "azureGateway",
    ));
    assert_eq!(
        gw["properties"]["bgpSettings"]["bgpPeeringAddress"], "10.3.200.6",
        "{gw:#}"
    );
}

/// examples/hub-and-spoke.json, deployed as its description says: the
/// spoke's app reaches the on-premises host over the hub's BGP VPN, and the
/// template's output is the gateway's BGP address.
#[test]
fn the_hub_and_spoke_example_works() {
    let Some(mut lab) = Lab::start() else { return };
    let path = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hub-and-spoke.json"
    ));
    lab.cli_ok(&["group", "create", "-n", "lab", "-l", "westeurope"]);
    let d = lab.deploy_file("lab", &path, &[]);
    assert_eq!(
        d["properties"]["outputs"]["gatewayBgpAddress"]["value"], "10.10.255.30",
        "{d:#}"
    );
    let probe = probe_bin();
    lab.spawn(
        &["--onprem-host", "onprem-db"],
        &[&probe, "serve-tcp", "9000"],
    );
    let ip = lab.show(&id("lab", "Microsoft.Web/sites", "spoke-web"))["emulator"]["instances"][0]
        ["privateIpAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reach = || {
        let out = lab.exec(
            &["--app", "spoke-web"],
            &[&probe, "tcp", "172.20.5.10", "9000", "800"],
        );
        out.status
            .success()
            .then(|| peer_ip(&String::from_utf8_lossy(&out.stdout)))
    };
    assert!(
        eventually(30, || reach().is_some()),
        "the spoke app never reached on-premises"
    );
    assert_eq!(
        reach().as_deref(),
        Some(ip.as_str()),
        "the host sees the instance's private address"
    );
}

/// VNet to VNet over VPN gateways (a `Vnet2Vnet` connection each way), two
/// regions: an app integrated in one VNet reaches a VM in the other with
/// its private address; first with static routes (source Default, the other
/// VNet's space), then with BGP (source VirtualNetworkGateway).
#[test]
fn vnet_to_vnet_connections_carry_traffic_static_then_bgp() {
    let Some(mut lab) = Lab::start() else { return };
    let build = |bgp: bool| {
        let gw = |name: &str, vnet: &str, pip: &str, asn: u32| {
            let mut g = vpn_gateway(name, vnet, pip, true);
            g["properties"]["bgpSettings"]["asn"] = json!(asn);
            g
        };
        let v2v = |name: &str, from: &str, to: &str| {
            connection(
                name,
                from,
                json!({ "virtualNetworkGateway2": { "id": net("virtualNetworkGateways", to) } }),
                "Vnet2Vnet",
                bgp,
            )
        };
        let mut a = vnet(
            "vneta",
            "northeurope",
            &["10.1.0.0/16"],
            json!([
                { "name": "GatewaySubnet", "properties": { "addressPrefix": "10.1.255.0/27" } },
                { "name": "vms", "properties": { "addressPrefix": "10.1.1.0/24" } }
            ]),
        );
        a["location"] = json!("northeurope");
        let mut r = vec![
            a,
            vnet(
                "vnetb",
                "westeurope",
                &["10.5.0.0/16"],
                json!([
                    { "name": "GatewaySubnet", "properties": { "addressPrefix": "10.5.255.0/27" } },
                    { "name": "integration", "properties": { "addressPrefix": "10.5.1.0/26" } }
                ]),
            ),
            public_ip("pipa"),
            public_ip("pipb"),
            gw("gwa", "vneta", "pipa", 65010),
            gw("gwb", "vnetb", "pipb", 65020),
            v2v("a-to-b", "gwa", "gwb"),
            v2v("b-to-a", "gwb", "gwa"),
            plan("plan1", "P1v3", 1, json!({})),
            site(
                "web1",
                "plan1",
                Some(&subnet_id("vnetb", "integration")),
                "westeurope",
                json!({ "appCommandLine": "sleep 100000" }),
            ),
        ];
        let mut vm = vm_in(RG, "vma", &subnet_id("vneta", "vms"), "10.1.1.4");
        for x in &mut vm {
            x["location"] = json!("northeurope");
        }
        r.extend(vm);
        template(r)
    };
    lab.deploy(RG, &build(false));
    let probe = probe_bin();
    lab.spawn(&["--vm", "vma"], &[&probe, "serve-tcp", "9000"]);
    let ip = instance_ips(&lab, "web1")[0].clone();
    let routes = lab.subnet_effective_routes(RG, "vnetb", "integration");
    let r = route_to(&routes, "10.1.0.0/16").expect("the other VNet's space");
    assert_eq!(
        (r["source"].as_str(), r["nextHopType"].as_str()),
        (Some("Default"), Some("VirtualNetworkGateway")),
        "{r:#}"
    );
    assert!(
        eventually(10, || app_reaches(&lab, "10.1.1.4").as_deref()
            == Some(ip.as_str())),
        "static VNet-to-VNet"
    );
    let conn = lab.show(&net("connections", "b-to-a"));
    assert_eq!(
        conn["properties"]["connectionStatus"], "Connected",
        "{conn:#}"
    );

    lab.deploy(RG, &build(true));
    let routes_of = |lab: &Lab| lab.subnet_effective_routes(RG, "vnetb", "integration");
    assert!(
        eventually(30, || route_to(&routes_of(&lab), "10.1.0.0/16")
            .is_some_and(|r| r["source"] == "VirtualNetworkGateway")),
        "learned over BGP: {:#}",
        routes_of(&lab)
    );
    assert!(
        eventually(10, || app_reaches(&lab, "10.1.1.4").as_deref()
            == Some(ip.as_str())),
        "VNet-to-VNet over BGP"
    );
}
