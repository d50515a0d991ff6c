//! Private endpoints in the lab's plan and views: the /32 `InterfaceEndpoint`
//! route each adds to every subnet of its VNet, the state of its connection,
//! and what `show` returns (Azure's computed properties: `networkInterfaces`,
//! `customDnsConfigs`, each connection's `privateLinkServiceConnectionState`,
//! the record sets of its DNS zone groups).

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::routes::EndpointRoute;
use crate::dns::zone_groups::{endpoint_records, ZONE_GROUP_TTL};
use crate::ipam::Allocations;
pub use crate::model::{connection_status, ConnectionStatus};
use crate::model::{
    GenericResource, Inventory, LabState, PrivateEndpoint, ResourceId, VirtualNetwork,
};

/// The /32 of every private endpoint of `vnet` with an address (AZURE-FACTS §2.5).
pub(crate) fn endpoint_routes(
    inv: &Inventory,
    alloc: &Allocations,
    vnet: &VirtualNetwork,
) -> Vec<EndpointRoute> {
    let mut routes: Vec<EndpointRoute> = inv
        .private_endpoints_in_vnet(&vnet.id)
        .filter_map(|pe| {
            let (_, subnet, _) = inv.subnet(&pe.subnet_id)?;
            Some(EndpointRoute {
                address: pe.address(alloc)?,
                route_tables_apply: subnet.private_endpoint_network_policies.route_tables(),
            })
        })
        .collect();
    routes.sort_by_key(|r| r.address);
    routes
}

/// An Approved private endpoint placed in the lab: what both kinds of
/// target (services, apps) build their links from.
pub(crate) struct ApprovedEndpoint<'a> {
    pub pe: &'a PrivateEndpoint,
    pub target: &'a ResourceId,
    /// The endpoint's VNet (index into `vnets`: its fabric).
    pub fabric: usize,
    pub address: Ipv4Addr,
}

/// The Approved private endpoints with a target, an address and a VNet
/// among `vnets`, in inventory order. Any other passes nothing (its /32
/// stays unreachable).
pub(crate) fn approved_endpoints<'a>(
    inv: &'a Inventory,
    state: &'a LabState,
    vnets: &'a [VirtualNetwork],
) -> impl Iterator<Item = ApprovedEndpoint<'a>> + 'a {
    inv.private_endpoints.iter().filter_map(move |pe| {
        let target = pe.connection()?.target.as_ref()?;
        if connection_status(state, pe) != ConnectionStatus::Approved {
            return None;
        }
        let vnet = pe.subnet_id.parent()?;
        Some(ApprovedEndpoint {
            pe,
            target,
            fabric: vnets.iter().position(|v| v.id == vnet)?,
            address: pe.address(&state.allocations)?,
        })
    })
}

/// A private endpoint's `show`: `base` (stored properties) plus Azure's
/// computed properties and an `emulator` object (address, NIC, status).
pub fn endpoint_view(
    inv: &Inventory,
    state: &LabState,
    res: &GenericResource,
    mut v: Value,
) -> Value {
    let Some(pe) = inv.private_endpoint(&res.id) else {
        return v;
    };
    let address = pe.address(&state.allocations);
    let status = connection_status(state, pe);
    let nic = pe.nic_id();
    let Some(p) = v["properties"].as_object_mut() else {
        return v;
    };
    p.insert("resourceGuid".into(), json!(pe.resource_guid()));
    p.insert(
        "networkInterfaces".into(),
        json!([{ "id": nic.to_string() }]),
    );
    p.entry("customNetworkInterfaceName").or_insert(json!(""));
    p.entry("ipConfigurations").or_insert(json!([]));
    for list in [
        "privateLinkServiceConnections",
        "manualPrivateLinkServiceConnections",
    ] {
        let entries = p.entry(list).or_insert(json!([]));
        for c in entries.as_array_mut().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            let message = c["properties"]["requestMessage"]
                .as_str()
                .unwrap_or("")
                .to_string();
            c["id"] = json!(res.id.child(list, &name).to_string());
            c["type"] = json!(format!("Microsoft.Network/privateEndpoints/{list}"));
            c["properties"]["provisioningState"] = json!("Succeeded");
            let description = match status {
                ConnectionStatus::Approved => "Auto-Approved".to_string(),
                ConnectionStatus::Pending => message,
                ConnectionStatus::Disconnected => {
                    "The private link resource was deleted.".to_string()
                }
            };
            c["properties"]["privateLinkServiceConnectionState"] = json!({
                "status": status.as_str(),
                "description": description,
                "actionsRequired": "None",
            });
        }
    }
    let fqdns: Vec<String> = pe.names(state).into_iter().map(|(f, _)| f).collect();
    p.insert(
        "customDnsConfigs".into(),
        json!(address
            .map(|a| fqdns
                .iter()
                .map(|f| json!({ "fqdn": f, "ipAddresses": [a.to_string()] }))
                .collect::<Vec<_>>())
            .unwrap_or_default()),
    );
    if let Some(groups) = p
        .get_mut("privateDnsZoneGroups")
        .and_then(Value::as_array_mut)
    {
        let records = endpoint_records(state, pe);
        for g in groups.iter_mut() {
            g["properties"]["provisioningState"] = json!("Succeeded");
            for c in g["properties"]["privateDnsZoneConfigs"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                let name = c["name"].as_str().unwrap_or_default().to_string();
                let zone = records
                    .iter()
                    .find(|(n, _, _)| n.eq_ignore_ascii_case(&name))
                    .and_then(|(_, z, names)| Some((inv.dns_zone(z.as_ref()?)?, names)));
                let sets: Vec<Value> = match (zone, address) {
                    (Some((zone, names)), Some(a)) => names
                        .iter()
                        .map(|n| {
                            json!({
                                "recordType": "A",
                                "recordSetName": n,
                                "fqdn": format!("{}.", zone.absolute(n)),
                                "ttl": ZONE_GROUP_TTL,
                                "ipAddresses": [a.to_string()],
                                "provisioningState": "Succeeded",
                            })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                c["properties"]["recordSets"] = json!(sets);
            }
        }
    }
    v["emulator"] = json!({
        "privateIpAddress": address.map(|a| a.to_string()),
        "networkInterface": nic.to_string(),
        "connectionStatus": status.as_str(),
        "target": pe.connection().and_then(|c| c.target.as_ref()).map(ToString::to_string),
    });
    v
}
