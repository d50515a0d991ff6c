//! The ARM template of the datapath benchmark's lab: an integrated app and a
//! VM in one VNet, with network security groups of N rules on both subnets.
//! Pure: builds JSON, touches nothing.

use serde_json::{json, Value};
use vnet_agent::template::DEFAULT_SUBSCRIPTION;

pub const RESOURCE_GROUP: &str = "dpbench";
pub const SITE: &str = "web1";
pub const VM: &str = "vm1";
/// The VM's static address in the `vms` subnet: the servers listen here.
pub const VM_IP: &str = "10.0.2.4";
/// The delegated integration subnet: the app's traffic leaves its worker
/// with an address of this prefix (SNAT to the instance address).
pub const INTEGRATION_PREFIX: &str = "10.0.1.0/24";
pub const VMS_PREFIX: &str = "10.0.2.0/24";
/// The benchmark's servers: iperf3, then the request/response tester.
pub const IPERF_PORT: u16 = 5201;
pub const RR_PORT: u16 = 5202;
/// Priority of an NSG's first user rule; each next rule is one more. Azure
/// evaluates user rules by ascending priority (100..4096).
pub const FIRST_PRIORITY: u32 = 100;
/// Azure's limit of rules per network security group.
pub const MAX_RULES: usize = 1000;
/// The NSG names: outbound rules on the integration subnet (the app's
/// flows leave through it), inbound rules on the `vms` subnet.
pub const NSG_INTEGRATION: &str = "nsg-integration";
pub const NSG_VMS: &str = "nsg-vms";

fn id(ty: &str, name: &str) -> String {
    format!(
        "/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{ty}/{name}"
    )
}

fn nsg_id(name: &str) -> String {
    id("Microsoft.Network/networkSecurityGroups", name)
}

/// The lab: VNet `vnet1` 10.0.0.0/16 with the delegated `integration` subnet
/// and a `vms` subnet; a Linux P1v3 plan with one instance; `web1`
/// integrated with route-all on; VM `vm1` with a static NIC at 10.0.2.4.
/// With `Some(n)`: NSG `nsg-integration` (n outbound rules) on the
/// integration subnet and `nsg-vms` (n inbound rules) on `vms`, each letting
/// the benchmark's flows through with its LAST user rule, so every new flow
/// is checked against all n rules at both ends. `None`: no NSG at all (for
/// builds of the agent that do not know NSGs yet).
pub fn lab_template(nsg_rules: Option<usize>) -> Value {
    let vnet_id = id("Microsoft.Network/virtualNetworks", "vnet1");
    let mut integration = json!({
        "addressPrefix": INTEGRATION_PREFIX,
        "delegations": [{ "name": "delegation", "properties": { "serviceName": "Microsoft.Web/serverFarms" } }]
    });
    let mut vms = json!({ "addressPrefix": VMS_PREFIX });
    let mut resources = Vec::new();
    let mut vnet_depends = Vec::new();
    if let Some(n) = nsg_rules {
        for (name, direction, props) in [
            (NSG_INTEGRATION, "Outbound", &mut integration),
            (NSG_VMS, "Inbound", &mut vms),
        ] {
            resources.push(nsg(name, direction, n));
            props["networkSecurityGroup"] = json!({ "id": nsg_id(name) });
            vnet_depends.push(nsg_id(name));
        }
    }
    resources.extend([
        json!({
            "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "vnet1",
            "location": "westeurope", "dependsOn": vnet_depends,
            "properties": {
                "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                "subnets": [
                    { "name": "integration", "properties": integration },
                    { "name": "vms", "properties": vms }
                ]
            }
        }),
        json!({
            "type": "Microsoft.Web/serverfarms", "apiVersion": "2022-09-01", "name": "plan1",
            "location": "westeurope", "kind": "linux",
            "sku": { "name": "P1v3", "tier": "PremiumV3", "capacity": 1 },
            "properties": { "reserved": true }
        }),
        json!({
            "type": "Microsoft.Web/sites", "apiVersion": "2022-09-01", "name": SITE,
            "location": "westeurope", "kind": "app,linux",
            "properties": {
                "serverFarmId": id("Microsoft.Web/serverfarms", "plan1"),
                "virtualNetworkSubnetId": format!("{vnet_id}/subnets/integration"),
                "siteConfig": { "vnetRouteAllEnabled": true }
            }
        }),
        json!({
            "type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": "vm1-nic",
            "location": "westeurope",
            "properties": { "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                "subnet": { "id": format!("{vnet_id}/subnets/vms") },
                "privateIPAllocationMethod": "Static", "privateIPAddress": VM_IP } }] }
        }),
        json!({
            "type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-03-01", "name": VM,
            "location": "westeurope",
            "properties": { "networkProfile": { "networkInterfaces": [
                { "id": id("Microsoft.Network/networkInterfaces", "vm1-nic") } ] } }
        }),
    ]);
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": resources,
    })
}

/// A `Microsoft.Network/networkSecurityGroups` resource in Azure's ARM shape
/// with `n` user rules of one `direction`.
pub fn nsg(name: &str, direction: &str, n: usize) -> Value {
    json!({
        "type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01",
        "name": name, "location": "westeurope",
        "properties": { "securityRules": security_rules(direction, n) }
    })
}

/// `n` (1..=1000) rules with unique priorities 100, 101, ...: the first n-1
/// Deny or Allow traffic the benchmark never sends (other source prefixes,
/// other destination ports, UDP), all different; the last one allows TCP
/// from the integration subnet to the VM's benchmark ports.
pub fn security_rules(direction: &str, n: usize) -> Vec<Value> {
    assert!(
        (1..=MAX_RULES).contains(&n),
        "an NSG holds 1 to {MAX_RULES} rules"
    );
    let rule = |i: usize, access: &str, protocol: &str, src: String, dst: String, ports: String| {
        json!({
            "name": format!("rule-{i:04}"),
            "properties": {
                "priority": FIRST_PRIORITY + i as u32,
                "direction": direction,
                "access": access,
                "protocol": protocol,
                "sourceAddressPrefix": src,
                "sourcePortRange": "*",
                "destinationAddressPrefix": dst,
                "destinationPortRange": ports,
            }
        })
    };
    // 192.168.a.b / 172.16.a.b for i = 256a + b (i < 1000): not in the VNet.
    let host = |base: &str, i: usize| format!("{base}.{}.{}/32", i / 256, i % 256);
    let vm = || format!("{VM_IP}/32");
    let mut rules: Vec<Value> = (0..n - 1)
        .map(|i| match i % 4 {
            0 => rule(i, "Deny", "Tcp", "*".into(), vm(), (10000 + i).to_string()),
            1 => rule(
                i,
                "Allow",
                "Tcp",
                host("192.168", i),
                "*".into(),
                "*".into(),
            ),
            2 => rule(i, "Deny", "Udp", "*".into(), vm(), (20000 + i).to_string()),
            _ => rule(i, "Deny", "*", host("172.16", i), "*".into(), "*".into()),
        })
        .collect();
    rules.push(rule(
        n - 1,
        "Allow",
        "Tcp",
        INTEGRATION_PREFIX.into(),
        vm(),
        format!("{IPERF_PORT}-{RR_PORT}"),
    ));
    rules
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;

    use super::*;

    /// Does `rule` match a TCP flow from `src` to VM_IP:`port` (any source port)?
    fn matches(rule: &Value, src: Ipv4Addr, port: u16) -> bool {
        let p = &rule["properties"];
        let prefix = |field: &str, ip: Ipv4Addr| match p[field].as_str().unwrap() {
            "*" => true,
            s => {
                let (net, len) = s.split_once('/').unwrap_or((s, "32"));
                let len: u32 = len.parse().unwrap();
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(net.parse::<Ipv4Addr>().unwrap()) & mask == u32::from(ip) & mask
            }
        };
        let ports = match p["destinationPortRange"].as_str().unwrap() {
            "*" => true,
            r => {
                let (lo, hi) = r.split_once('-').unwrap_or((r, r));
                (lo.parse::<u16>().unwrap()..=hi.parse().unwrap()).contains(&port)
            }
        };
        matches!(p["protocol"].as_str().unwrap(), "Tcp" | "*")
            && p["sourcePortRange"] == "*"
            && prefix("sourceAddressPrefix", src)
            && prefix("destinationAddressPrefix", VM_IP.parse().unwrap())
            && ports
    }

    #[test]
    fn n_rules_unique_priorities_and_only_the_last_allows_the_flow() {
        for n in [1, 2, 10, 1000] {
            for direction in ["Inbound", "Outbound"] {
                let rules = security_rules(direction, n);
                assert_eq!(rules.len(), n);
                let priorities: Vec<u64> = rules
                    .iter()
                    .map(|r| r["properties"]["priority"].as_u64().unwrap())
                    .collect();
                let expected: Vec<u64> = (100..100 + n as u64).collect();
                assert_eq!(priorities, expected, "unique, ascending from 100");
                assert!(priorities.iter().all(|p| (100..=4096).contains(p)));
                let names: BTreeSet<&str> =
                    rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
                assert_eq!(names.len(), n, "unique names");
                let bodies: BTreeSet<String> = rules
                    .iter()
                    .map(|r| {
                        let mut p = r["properties"].clone();
                        p["priority"] = json!(0);
                        p.to_string()
                    })
                    .collect();
                assert_eq!(bodies.len(), n, "no two rules alike");
                for r in &rules {
                    let p = &r["properties"];
                    assert_eq!(p["direction"], direction);
                    assert!(["Allow", "Deny"].contains(&p["access"].as_str().unwrap()));
                    for key in [
                        "protocol",
                        "sourceAddressPrefix",
                        "destinationAddressPrefix",
                        "sourcePortRange",
                        "destinationPortRange",
                    ] {
                        assert!(p[key].is_string(), "{key} in {r}");
                    }
                }
                // The benchmark's flows (from the app's instance address,
                // to both servers) match the last rule and no other.
                let app: Ipv4Addr = "10.0.1.4".parse().unwrap();
                for port in [IPERF_PORT, RR_PORT] {
                    let hits: Vec<usize> =
                        (0..n).filter(|&i| matches(&rules[i], app, port)).collect();
                    assert_eq!(hits, [n - 1], "port {port}, {n} rules");
                }
                let last = &rules[n - 1]["properties"];
                assert_eq!(last["access"], "Allow");
                // Other traffic does meet the other rules.
                if n > 2 {
                    assert!(matches(&rules[0], app, 10000));
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "1 to 1000 rules")]
    fn more_rules_than_azure_allows_is_a_bug() {
        security_rules("Inbound", 1001);
    }

    fn of_type(t: &Value, ty: &str) -> Vec<Value> {
        t["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == ty)
            .cloned()
            .collect()
    }

    #[test]
    fn the_lab_associates_an_nsg_with_each_subnet() {
        let t = lab_template(Some(1000));
        let nsgs = of_type(&t, "Microsoft.Network/networkSecurityGroups");
        assert_eq!(nsgs.len(), 2);
        let by_name = |name: &str| nsgs.iter().find(|n| n["name"] == name).unwrap().clone();
        let out = by_name(NSG_INTEGRATION)["properties"]["securityRules"].clone();
        let inb = by_name(NSG_VMS)["properties"]["securityRules"].clone();
        assert_eq!(out.as_array().unwrap().len(), 1000);
        assert_eq!(out[0]["properties"]["direction"], "Outbound");
        assert_eq!(inb[999]["properties"]["direction"], "Inbound");

        let vnet = &of_type(&t, "Microsoft.Network/virtualNetworks")[0];
        let subnets = vnet["properties"]["subnets"].as_array().unwrap();
        let nsg_of = |subnet: &str| {
            subnets.iter().find(|s| s["name"] == subnet).unwrap()["properties"]
                ["networkSecurityGroup"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(nsg_of("integration").ends_with("/networkSecurityGroups/nsg-integration"));
        assert!(nsg_of("vms").ends_with("/networkSecurityGroups/nsg-vms"));
        assert_eq!(vnet["dependsOn"].as_array().unwrap().len(), 2);
        assert_eq!(
            subnets[0]["properties"]["delegations"][0]["properties"]["serviceName"],
            "Microsoft.Web/serverFarms"
        );

        let site = &of_type(&t, "Microsoft.Web/sites")[0];
        assert_eq!(
            site["properties"]["siteConfig"]["vnetRouteAllEnabled"],
            true
        );
        let plan = &of_type(&t, "Microsoft.Web/serverfarms")[0];
        assert_eq!(plan["sku"]["name"], "P1v3");
        assert_eq!(plan["sku"]["capacity"], 1);
        let nic = &of_type(&t, "Microsoft.Network/networkInterfaces")[0];
        let ipc = &nic["properties"]["ipConfigurations"][0]["properties"];
        assert_eq!(ipc["privateIPAddress"], VM_IP);
        assert_eq!(ipc["privateIPAllocationMethod"], "Static");
    }

    #[test]
    fn without_nsg_nothing_refers_to_one() {
        let t = lab_template(None);
        assert!(of_type(&t, "Microsoft.Network/networkSecurityGroups").is_empty());
        assert!(!t.to_string().contains("networkSecurityGroup"));
    }
}
