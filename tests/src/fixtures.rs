//! ARM template builders shared by the end-to-end tests: the lab's VNets,
//! VMs, storage accounts, private endpoints and private DNS zones.

use serde_json::{json, Value};

use crate::{id, Lab};

pub const RG: &str = "rg1";

/// The id of `Microsoft.Network/TY` resource `name` in rg1.
pub fn net(ty: &str, name: &str) -> String {
    id(RG, &format!("Microsoft.Network/{ty}"), name)
}

pub fn subnet_id(vnet: &str, subnet: &str) -> String {
    format!(
        "{}/subnets/{subnet}",
        id(RG, "Microsoft.Network/virtualNetworks", vnet)
    )
}

pub fn vnet(name: &str, location: &str, prefixes: &[&str], subnets: Value) -> Value {
    json!({
        "type": "Microsoft.Network/virtualNetworks", "name": name, "location": location,
        "properties": { "addressSpace": { "addressPrefixes": prefixes }, "subnets": subnets }
    })
}

pub fn plan(name: &str, sku: &str, capacity: u32, extra: Value) -> Value {
    let mut props = json!({ "reserved": true });
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({
        "type": "Microsoft.Web/serverfarms", "name": name, "location": "westeurope", "kind": "linux",
        "sku": { "name": sku, "capacity": capacity }, "properties": props
    })
}

pub fn site(
    name: &str,
    plan: &str,
    subnet: Option<&str>,
    location: &str,
    site_config: Value,
) -> Value {
    let mut props = json!({ "serverFarmId": id(RG, "Microsoft.Web/serverfarms", plan), "siteConfig": site_config });
    if let Some(s) = subnet {
        props["virtualNetworkSubnetId"] = json!(s);
    }
    json!({ "type": "Microsoft.Web/sites", "name": name, "location": location, "kind": "app,linux", "properties": props })
}

pub fn template(resources: Vec<Value>) -> Value {
    json!({ "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0", "resources": resources })
}

pub fn instance_ips(lab: &Lab, site: &str) -> Vec<String> {
    let v = lab.show(&id(RG, "Microsoft.Web/sites", site));
    v["emulator"]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| {
            i["privateIpAddress"]
                .as_str()
                .expect("privateIpAddress")
                .to_string()
        })
        .collect()
}

/// The lab of these tests: VNet `vnet1` (westeurope) with `integration`
/// 10.0.1.0/28 (11 usable), `big` 10.0.2.0/24, `vms` 10.0.3.0/24; VM `vm1` at
/// 10.0.3.4; a Linux P1v3 plan `plan1` with `capacity` instances and `web1` on it.
pub fn small_lab(capacity: u32, web1_subnet: &str) -> Value {
    template(
        vec![
            vnet(
                "vnet1",
                "westeurope",
                &["10.0.0.0/16"],
                json!([
                    { "name": "integration", "properties": { "addressPrefix": "10.0.1.0/28" } },
                    { "name": "big", "properties": { "addressPrefix": "10.0.2.0/24" } },
                    { "name": "vms", "properties": { "addressPrefix": "10.0.3.0/24" } },
                    { "name": "other", "properties": { "addressPrefix": "10.0.4.0/24" } }
                ]),
            ),
            plan("plan1", "P1v3", capacity, json!({})),
            site(
                "web1",
                "plan1",
                Some(&subnet_id("vnet1", web1_subnet)),
                "westeurope",
                json!({ "appCommandLine": "sleep 100000" }),
            ),
        ]
        .into_iter()
        .chain(vm_in(RG, "vm1", &subnet_id("vnet1", "vms"), "10.0.3.4"))
        .collect(),
    )
}

/// Plan `plan1` (Linux P1v3, one instance) and app `web1` on it,
/// integrated into vnet1's `integration` subnet, with this `siteConfig`.
pub fn plan1_and_integrated_web1(site_config: Value) -> [Value; 2] {
    [
        plan("plan1", "P1v3", 1, json!({})),
        site(
            "web1",
            "plan1",
            Some(&subnet_id("vnet1", "integration")),
            "westeurope",
            site_config,
        ),
    ]
}

/// VM `name` in resource group `rg` and its NIC `NAME-nic` with the static
/// address `ip` in subnet `subnet` (an id).
pub fn vm_in(rg: &str, name: &str, subnet: &str, ip: &str) -> Vec<Value> {
    let nic = format!("{name}-nic");
    vec![
        json!({ "type": "Microsoft.Network/networkInterfaces", "name": nic, "location": "westeurope",
                "properties": { "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                    "subnet": { "id": subnet }, "privateIPAllocationMethod": "Static",
                    "privateIPAddress": ip } }] } }),
        json!({ "type": "Microsoft.Compute/virtualMachines", "name": name, "location": "westeurope",
                "properties": { "networkProfile": { "networkInterfaces": [
                    { "id": id(rg, "Microsoft.Network/networkInterfaces", &nic) }] } } }),
    ]
}

/// Storage account `name` (StorageV2) with this `publicNetworkAccess` and,
/// when given, these `networkAcls`.
pub fn storage_account(name: &str, public_access: &str, acls: Option<Value>) -> Value {
    let mut v = json!({ "type": "Microsoft.Storage/storageAccounts", "name": name, "location": "westeurope",
                        "kind": "StorageV2", "sku": { "name": "Standard_LRS" },
                        "properties": { "publicNetworkAccess": public_access } });
    if let Some(acls) = acls {
        v["properties"]["networkAcls"] = acls;
    }
    v
}

/// Private endpoint `name` in `subnet` (an id) to `group` of resource `target` (an id).
pub fn private_endpoint(name: &str, subnet: &str, target: &str, group: &str) -> Value {
    json!({ "type": "Microsoft.Network/privateEndpoints", "name": name, "location": "westeurope",
            "properties": { "subnet": { "id": subnet },
                "privateLinkServiceConnections": [{ "name": "c1", "properties": {
                    "privateLinkServiceId": target, "groupIds": [group] } }] } })
}

/// Private DNS zone `zone` linked to `linked_vnets` ((resource group, VNet)
/// pairs) with these A records (name, address).
pub fn private_dns_zone(
    zone: &str,
    linked_vnets: &[(&str, &str)],
    records: &[(&str, &str)],
) -> Value {
    let links: Vec<Value> = linked_vnets
        .iter()
        .map(|(vrg, v)| {
            json!({ "name": format!("link-{v}"), "properties": {
                "registrationEnabled": false,
                "virtualNetwork": { "id": id(vrg, "Microsoft.Network/virtualNetworks", v) } } })
        })
        .collect();
    let sets: Vec<Value> = records
        .iter()
        .map(|(n, ip)| json!({ "name": n, "type": "A", "properties": { "ttl": 60, "aRecords": [{ "ipv4Address": ip }] } }))
        .collect();
    json!({ "type": "Microsoft.Network/privateDnsZones", "name": zone, "location": "global",
            "properties": { "recordSets": sets, "virtualNetworkLinks": links } })
}

/// Zone group `PE/default` registering endpoint `pe` in private zone `zone`
/// (config name `config`).
pub fn zone_group(pe: &str, config: &str, zone: &str) -> Value {
    json!({ "type": "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
            "name": format!("{pe}/default"), "properties": { "privateDnsZoneConfigs": [{ "name": config,
                "properties": { "privateDnsZoneId": net("privateDnsZones", zone) } }] } })
}

/// A custom DNS server on VM `vm`: dnsmasq listening on `listen`, answering
/// `name` with `ip` itself and forwarding everything else to Azure DNS
/// (168.63.129.16).
pub fn dnsmasq_extension(vm: &str, listen: &str, name: &str, ip: &str) -> Value {
    json!({
        "type": "Microsoft.Compute/virtualMachines/extensions", "name": format!("{vm}/dns"),
        "location": "westeurope",
        "properties": { "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
            "typeHandlerVersion": "2.1",
            "settings": { "commandToExecute": format!(
                "exec dnsmasq --no-daemon --no-resolv --no-hosts --conf-file=/dev/null --pid-file= \
                 --listen-address={listen} --bind-interfaces --server=168.63.129.16 \
                 --address=/{name}/{ip}") } }
    })
}

/// Peering `name` to VNet `remote` in rg1, VNet access on, with `extra` properties.
pub fn peer(name: &str, remote: &str, extra: Value) -> Value {
    let mut p = json!({ "allowVirtualNetworkAccess": true, "remoteVirtualNetwork": { "id": net("virtualNetworks", remote) } });
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({ "name": name, "properties": p })
}

/// VNet `name` (westeurope) with one prefix, `subnets` and inline `peerings`.
pub fn vnet_with(name: &str, prefix: &str, subnets: Value, peerings: Vec<Value>) -> Value {
    let mut v = vnet(name, "westeurope", &[prefix], subnets);
    v["properties"]["virtualNetworkPeerings"] = json!(peerings);
    v
}
