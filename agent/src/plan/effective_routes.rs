//! "Effective routes" as `az network nic show-effective-route-table` shows
//! them, for a subnet, a NIC or an app instance: `{"value": [{source, state,
//! addressPrefix[], nextHopType, nextHopIpAddress[], name, ...}]}` plus an
//! `emulator` object saying where the lab realises them. Pure.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::layout::{Layout, SubnetL};
use super::not_found;
use super::routes::{EffectiveRoute, EndpointRoute, RouteInputs, RFC1918};
use super::worker::AZURE_PLATFORM_IP;
use crate::model::{
    AzureError, Inventory, LabConfig, LabState, ResourceId, Subnet, VirtualNetwork,
};

/// What the lab knows of a subnet's routes: its VNet's ranges, its route
/// table, the VNet's private endpoints (`private_endpoints::endpoint_routes`,
/// the same for every subnet of the VNet: computed once per VNet by the
/// caller) and its service endpoints (one prefix per public IP of a service
/// they reach). The lab has no peering or gateways yet, so those inputs stay
/// empty.
pub(crate) fn lab_route_inputs(
    inv: &Inventory,
    vnet: &VirtualNetwork,
    subnet: &Subnet,
    private_endpoints: &[EndpointRoute],
    services: &[super::services::ServiceAddr],
) -> RouteInputs {
    let table = subnet
        .route_table_id
        .as_ref()
        .and_then(|id| inv.route_table(id));
    RouteInputs {
        vnet_prefixes: vnet.address_prefixes.clone(),
        udrs: table.map(|t| t.routes.clone()).unwrap_or_default(),
        disable_bgp_route_propagation: table.is_some_and(|t| t.disable_bgp_route_propagation),
        private_endpoints: private_endpoints.to_vec(),
        service_endpoints: super::services::endpoint_prefixes(subnet, services),
        ..Default::default()
    }
}

/// `(fabric index, subnet)` of a subnet id.
fn find_subnet<'a>(l: &'a Layout, id: &ResourceId) -> Option<(usize, &'a SubnetL)> {
    l.fabrics
        .iter()
        .enumerate()
        .find_map(|(fi, f)| f.subnets.iter().find(|s| &s.id == id).map(|s| (fi, s)))
}

fn rows(routes: &[EffectiveRoute], disable_bgp: bool) -> Vec<Value> {
    routes.iter().map(|r| r.to_json(disable_bgp)).collect()
}

fn subnet_json(l: &Layout, fi: usize, s: &SubnetL) -> Value {
    json!({
        "value": rows(&s.routes, s.disable_bgp),
        "emulator": {
            "subnetId": s.id.to_string(),
            "fabricNamespace": l.fabrics[fi].netns,
            "routeTable": s.table,
        },
    })
}

/// Effective routes of a subnet (every NIC of it has the same).
pub fn effective_routes_for_subnet(
    state: &LabState,
    lab: &LabConfig,
    subnet_id: &ResourceId,
) -> Result<Value, AzureError> {
    let l = Layout::new(state, lab);
    let (fi, s) = find_subnet(&l, subnet_id).ok_or_else(|| not_found("subnet", subnet_id))?;
    Ok(subnet_json(&l, fi, s))
}

/// Effective routes of a NIC: those of its subnet.
pub fn effective_routes_for_nic(
    state: &LabState,
    lab: &LabConfig,
    nic_id: &ResourceId,
) -> Result<Value, AzureError> {
    let l = Layout::new(state, lab);
    let nic = l
        .inv
        .nic(nic_id)
        .ok_or_else(|| not_found("network interface", nic_id))?;
    let (fi, s) =
        find_subnet(&l, nic.subnet_id()).ok_or_else(|| not_found("subnet", nic.subnet_id()))?;
    Ok(subnet_json(&l, fi, s))
}

/// Pseudo next hop of an app's traffic that never enters the VNet: it leaves
/// straight from the App Service stamp with the app's outbound IP.
pub const APP_SERVICE_DIRECT: &str = "AppServiceDirect";
/// Pseudo next hop of an app's traffic that enters the VNet through its vNIC.
pub const VNET_INTEGRATION: &str = "VnetIntegration";

/// Effective routes of one app instance. Integrated with Route All on: the
/// subnet's routes. Route All off: RFC1918 and 168.63.129.16 enter the VNet
/// (a `VnetIntegration` row) and follow the subnet's routes (rows that cannot
/// apply are Invalid, broader rows say which part applies in `appliesTo`);
/// everything else has the lab's pseudo next hop `AppServiceDirect` (the
/// stamp, with the app's outbound IP). Not integrated: only `AppServiceDirect`.
pub fn effective_routes_for_app(
    state: &LabState,
    lab: &LabConfig,
    site_id: &ResourceId,
    instance: u32,
) -> Result<Value, AzureError> {
    let l = Layout::new(state, lab);
    let site = l
        .inv
        .site(site_id)
        .ok_or_else(|| not_found("site", site_id))?;
    let w = l.site_worker(site, instance)?;
    let outbound: Vec<String> = w.outbound.iter().map(ToString::to_string).collect();
    let direct = |prefix: &str, note: &str| {
        json!({
            "name": null, "source": "Default", "state": "Active",
            "addressPrefix": [prefix], "nextHopType": APP_SERVICE_DIRECT,
            "nextHopIpAddress": outbound, "note": note,
        })
    };
    let Some((fi, s)) = site.subnet_id.as_ref().and_then(|id| find_subnet(&l, id)) else {
        return Ok(json!({
            "value": [direct("0.0.0.0/0", "The app is not integrated: all its traffic leaves straight from the App Service stamp with its outbound IP.")],
            "emulator": {"routeAll": site.route_all, "subnetId": null},
        }));
    };
    let mut out = subnet_json(&l, fi, s);
    out["emulator"]["routeAll"] = json!(site.route_all);
    out["emulator"]["instance"] = json!(instance);
    if site.route_all {
        return Ok(out);
    }
    // Seed, "Service endpoints": the integration subnet's service endpoint
    // prefixes enter the VNet too.
    let endpoints = super::services::active_endpoint_prefixes(s);
    let bound: Vec<Ipv4Net> = RFC1918
        .iter()
        .chain([&AZURE_PLATFORM_IP])
        .map(|p| p.parse().expect("constant"))
        .chain(endpoints)
        .collect();
    let mut value = vec![
        json!({
            "name": null, "source": "Default", "state": "Active",
            "addressPrefix": bound.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "nextHopType": VNET_INTEGRATION,
            "nextHopIpAddress": [s.gateway.to_string()],
            "note": "Route All is off: only RFC1918, 168.63.129.16 and the subnet's service endpoint prefixes enter the virtual network, where the subnet's routes below decide.",
        }),
        direct(
            "0.0.0.0/0",
            "Route All is off: everything else leaves straight from the App Service stamp with the app's outbound IP; the subnet's routes do not apply to it.",
        ),
    ];
    for r in &s.routes {
        let mut row = r.to_json(s.disable_bgp);
        let inside = bound.iter().any(|b| b.contains(&r.prefix));
        let covered: Vec<String> = bound
            .iter()
            .filter(|b| r.prefix.contains(*b) && r.prefix != **b)
            .map(ToString::to_string)
            .collect();
        if !inside && covered.is_empty() {
            row["state"] = json!("Invalid");
            row["note"] =
                json!("Not used by this app: Route All is off and the prefix is outside RFC1918.");
        } else if !inside {
            row["appliesTo"] = json!(covered);
        }
        value.push(row);
    }
    out["value"] = Value::Array(value);
    Ok(out)
}

/// The address a VirtualAppliance next hop resolves to: `(fabric link of the
/// NIC holding it)`, if a VM NIC of this fabric has that address.
pub(crate) fn appliance_link(l: &Layout, fi: usize, ip: Ipv4Addr) -> Option<String> {
    l.vms.iter().find_map(|vm| {
        vm.nics
            .iter()
            .find(|n| n.fabric == fi && n.addresses.contains(&ip))
            .map(|n| super::names::link('n', &vm.netns, &n.ifname))
    })
}
