//! ARM template builders shared by the end-to-end tests of limits, scaling
//! and lifecycle.

use serde_json::{json, Value};

use crate::{id, Lab};

pub const RG: &str = "rg1";

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
    template(vec![
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
        json!({ "type": "Microsoft.Network/networkInterfaces", "name": "vm1-nic", "location": "westeurope",
                "properties": { "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                    "subnet": { "id": subnet_id("vnet1", "vms") },
                    "privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.3.4" } }] } }),
        json!({ "type": "Microsoft.Compute/virtualMachines", "name": "vm1", "location": "westeurope",
                "properties": { "networkProfile": { "networkInterfaces": [
                    { "id": id(RG, "Microsoft.Network/networkInterfaces", "vm1-nic") }] } } }),
    ])
}
