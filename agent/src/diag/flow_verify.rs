//! Network Watcher's IP flow verify and next hop (AZURE-FACTS, "Network
//! Watcher outputs"), from the desired state alone: the same evaluator the
//! fabric's NSG chains are checked against (`plan::nsg::evaluate`) and the
//! same effective routes `show-effective-route-table` prints. Pure.
//!
//! The target is a VM (one of its NICs: `targetNicResourceId`, else the one
//! holding the local address, else the primary) or, as a lab extension, an
//! app (`Microsoft.Web/sites`, with `instance`): its VNet traffic as it
//! enters through the integration subnet, outbound only.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::model::{Access, AzureError, Direction, Inventory, LabConfig, LabState, ResourceId};
use crate::plan::nsg::{self, Flow, FlowOrigin, FlowProtocol};

fn bad(code: &str, msg: String) -> AzureError {
    AzureError::bad_request(code, msg)
}

fn field<'a>(body: &'a Value, key: &str) -> Result<&'a str, AzureError> {
    body.get(key).and_then(Value::as_str).ok_or_else(|| {
        bad(
            "InvalidRequestFormat",
            format!("The request needs '{key}'."),
        )
    })
}

fn ip(body: &Value, key: &str) -> Result<Ipv4Addr, AzureError> {
    let s = field(body, key)?;
    s.parse().map_err(|_| {
        bad(
            "InvalidIPAddressFormat",
            format!("'{s}' in '{key}' is not an IPv4 address."),
        )
    })
}

fn port(body: &Value, key: &str) -> Result<u16, AzureError> {
    let v = body.get(key).ok_or_else(|| {
        bad(
            "InvalidRequestFormat",
            format!("The request needs '{key}'."),
        )
    })?;
    let text = v
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    text.parse().map_err(|_| {
        bad(
            "InvalidPortFormat",
            format!("'{text}' in '{key}' is not a single port (0-65535): IP flow verify takes one port, not a range or '*'."),
        )
    })
}

/// What a request targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A VM's NIC, with the NIC's addresses and its region.
    Nic {
        nic: ResourceId,
        addresses: Vec<Ipv4Addr>,
        location: String,
    },
    /// An integrated app's instance and the address its VNet traffic has.
    App {
        site: ResourceId,
        instance: u32,
        address: Ipv4Addr,
        location: String,
    },
}

impl Target {
    pub fn location(&self) -> &str {
        match self {
            Target::Nic { location, .. } | Target::App { location, .. } => location,
        }
    }

    /// A watcher answers for resources of its own region only.
    fn check_region(&self, watcher_location: &str) -> Result<(), AzureError> {
        if self.location().eq_ignore_ascii_case(watcher_location) {
            return Ok(());
        }
        Err(bad(
            "InvalidTargetResourceLocation",
            format!(
                "The target is in '{}' but Network Watcher '{}' is in '{watcher_location}': use the watcher of the target's region.",
                self.location(),
                super::watcher::watcher_name(watcher_location)
            ),
        ))
    }
}

/// The target of a request body (`targetResourceId`, `targetNicResourceId`,
/// the lab's `instance`); `local` picks the NIC that holds it.
pub fn target(
    state: &LabState,
    lab: &LabConfig,
    body: &Value,
    local: Option<Ipv4Addr>,
) -> Result<Target, AzureError> {
    let id: ResourceId = field(body, "targetResourceId")?.parse().map_err(|_| {
        bad(
            "InvalidResourceId",
            format!(
                "'{}' is not a resource id.",
                field(body, "targetResourceId").unwrap_or("")
            ),
        )
    })?;
    let inv = Inventory::parse_lenient(&state.resources);
    let ty = id.full_type().to_ascii_lowercase();
    let missing = || {
        AzureError::not_found(
            "ResourceNotFound",
            format!("The target resource '{id}' was not found."),
        )
    };
    if ty == "microsoft.web/sites" {
        let site = inv.site(&id).ok_or_else(missing)?;
        let instance = body.get("instance").and_then(Value::as_u64).unwrap_or(0) as u32;
        let address = crate::plan::app_vnet_address(state, lab, &id, instance)?.ok_or_else(|| {
            bad(
                "AppNotIntegrated",
                format!(
                    "App '{}' is not integrated with a virtual network: its traffic never meets an NSG or a route table of a VNet.",
                    site.name
                ),
            )
        })?;
        return Ok(Target::App {
            site: id.clone(),
            instance,
            address,
            location: site.location.to_ascii_lowercase(),
        });
    }
    if ty != "microsoft.compute/virtualmachines" {
        return Err(bad(
            "InvalidTargetResourceType",
            format!(
                "The target must be a virtual machine (or, in the lab, an app), not '{}'.",
                id.full_type()
            ),
        ));
    }
    let vm = inv.vm(&id).ok_or_else(missing)?;
    let nics = crate::plan::vm_nics(state, lab);
    let of_vm: Vec<_> = nics
        .iter()
        .filter(|n| vm.nic_ids.contains(&n.nic))
        .collect();
    let chosen = match body.get("targetNicResourceId").and_then(Value::as_str) {
        Some(n) => {
            let n: ResourceId = n
                .parse()
                .map_err(|_| bad("InvalidResourceId", format!("'{n}' is not a resource id.")))?;
            of_vm.iter().find(|x| x.nic == n).ok_or_else(|| {
                bad(
                    "NicNotAttachedToVm",
                    format!(
                        "Network interface '{n}' is not attached to virtual machine '{}'.",
                        vm.name
                    ),
                )
            })?
        }
        None => match local.and_then(|ip| of_vm.iter().find(|x| x.addresses.contains(&ip))) {
            Some(x) => x,
            None => of_vm
                .iter()
                .find(|x| vm.nic_ids.get(vm.primary_nic) == Some(&x.nic))
                .ok_or_else(missing)?,
        },
    };
    Ok(Target::Nic {
        nic: chosen.nic.clone(),
        addresses: chosen.addresses.clone(),
        location: vm.location.to_ascii_lowercase(),
    })
}

fn protocol(body: &Value) -> Result<FlowProtocol, AzureError> {
    match field(body, "protocol")?.to_ascii_uppercase().as_str() {
        "TCP" => Ok(FlowProtocol::Tcp),
        "UDP" => Ok(FlowProtocol::Udp),
        other => Err(bad(
            "InvalidProtocol",
            format!("Protocol '{other}' is not supported by IP flow verify; use TCP or UDP."),
        )),
    }
}

/// `POST .../ipFlowVerify`: `{access, ruleName}`.
pub fn ip_flow_verify(
    state: &LabState,
    lab: &LabConfig,
    watcher_location: &str,
    body: &Value,
) -> Result<Value, AzureError> {
    let direction = match field(body, "direction")?.to_ascii_lowercase().as_str() {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        other => {
            return Err(bad(
                "InvalidDirection",
                format!("Direction '{other}' is not Inbound or Outbound."),
            ))
        }
    };
    let protocol = protocol(body)?;
    let local = ip(body, "localIPAddress")?;
    let remote = ip(body, "remoteIPAddress")?;
    let (local_port, remote_port) = (port(body, "localPort")?, port(body, "remotePort")?);
    let target = target(state, lab, body, Some(local))?;
    target.check_region(watcher_location)?;
    let (origin, assoc): (FlowOrigin, Vec<ResourceId>) = match &target {
        Target::App {
            site,
            instance,
            address,
            ..
        } => {
            if direction == Direction::Inbound {
                return Err(bad(
                    "InvalidDirection",
                    "An app's inbound traffic never crosses its integration subnet (it arrives through the App Service front end): only Outbound can be verified.".into(),
                ));
            }
            if *address != local {
                return Err(bad(
                    "InvalidLocalIPAddress",
                    format!("The app's VNet traffic leaves with {address}, not {local}."),
                ));
            }
            (
                FlowOrigin::App {
                    site: site.clone(),
                    instance: *instance,
                },
                Vec::new(),
            )
        }
        Target::Nic { nic, addresses, .. } => {
            if !addresses.contains(&local) {
                return Err(bad(
                    "InvalidLocalIPAddress",
                    format!(
                        "Local IP address {local} is not an address of network interface '{}' ({}).",
                        nic.name(),
                        addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let inv = Inventory::parse_lenient(&state.resources);
            let subnet = inv.nic(nic).map(|n| n.subnet_id().clone());
            let origin = match direction {
                Direction::Outbound => FlowOrigin::Nic(nic.clone()),
                Direction::Inbound => origin_of(state, lab, remote, nic),
            };
            (
                origin,
                [Some(nic.clone()), subnet].into_iter().flatten().collect(),
            )
        }
    };
    let (src, dst, src_port, dst_port) = match direction {
        Direction::Outbound => (local, remote, local_port, remote_port),
        Direction::Inbound => (remote, local, remote_port, local_port),
    };
    let verdict = nsg::evaluate(
        state,
        lab,
        &Flow {
            origin,
            src,
            dst,
            protocol,
            src_port,
            dst_port,
        },
    )?;
    // Only the target's own NSGs (its NIC's and its subnet's) in the asked
    // direction: what Azure's IP flow verify evaluates.
    let steps: Vec<_> = verdict
        .steps
        .iter()
        .filter(|s| s.direction == direction)
        .filter(|s| assoc.is_empty() || assoc.contains(&s.association.1))
        .collect();
    let deciding = steps
        .iter()
        .find(|s| s.access == Access::Deny)
        .or_else(|| steps.last());
    Ok(match deciding {
        Some(s) => json!({ "access": s.access.as_str(), "ruleName": s.rule }),
        None => json!({ "access": "Allow", "ruleName": "" }),
    })
}

/// Where a flow from `remote` to the NIC starts: another VM NIC of the lab,
/// or the internet.
fn origin_of(state: &LabState, lab: &LabConfig, remote: Ipv4Addr, nic: &ResourceId) -> FlowOrigin {
    let nics = crate::plan::vm_nics(state, lab);
    if let Some(n) = nics.iter().find(|n| n.addresses.contains(&remote)) {
        return FlowOrigin::Nic(n.nic.clone());
    }
    let vnet = nics
        .iter()
        .find(|n| &n.nic == nic)
        .and_then(|n| n.subnet.parent())
        .expect("the target NIC is in a subnet");
    FlowOrigin::Internet { vnet }
}

/// The effective route a packet to `dst` takes (the longest Active prefix),
/// from `show-effective-route-table`'s rows.
pub fn route_to(rows: &Value, dst: Ipv4Addr) -> Option<&Value> {
    rows["value"]
        .as_array()?
        .iter()
        .filter(|r| r["state"] == "Active")
        .filter_map(|r| {
            let best = r["addressPrefix"]
                .as_array()?
                .iter()
                .filter_map(|p| p.as_str()?.parse::<ipnet::Ipv4Net>().ok())
                .filter(|p| p.contains(&dst))
                .map(|p| p.prefix_len())
                .max()?;
            Some((best, r))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, r)| r)
}

/// `POST .../nextHop`: `{nextHopType, nextHopIpAddress, routeTableId}`.
pub fn next_hop(
    state: &LabState,
    lab: &LabConfig,
    watcher_location: &str,
    body: &Value,
) -> Result<Value, AzureError> {
    let source = ip(body, "sourceIPAddress")?;
    let dst = ip(body, "destinationIPAddress")?;
    let target = target(state, lab, body, Some(source))?;
    target.check_region(watcher_location)?;
    let (rows, table) = match &target {
        Target::Nic { nic, addresses, .. } => {
            if !addresses.contains(&source) {
                return Err(bad(
                    "InvalidSourceIPAddress",
                    format!(
                        "Source IP address {source} is not an address of network interface '{}'.",
                        nic.name()
                    ),
                ));
            }
            let inv = Inventory::parse_lenient(&state.resources);
            let table = inv
                .nic(nic)
                .and_then(|n| inv.subnet(n.subnet_id()))
                .and_then(|(_, s, _)| s.route_table_id.clone());
            (
                crate::plan::effective_routes_for_nic(state, lab, nic)?,
                table,
            )
        }
        Target::App { site, instance, .. } => {
            let inv = Inventory::parse_lenient(&state.resources);
            let table = inv
                .site(site)
                .and_then(|s| s.subnet_id.as_ref())
                .and_then(|id| inv.subnet(id))
                .and_then(|(_, s, _)| s.route_table_id.clone());
            (
                crate::plan::effective_routes_for_app(state, lab, site, *instance)?,
                table,
            )
        }
    };
    Ok(match route_to(&rows, dst) {
        Some(r) => {
            let user = r["source"] == "User";
            json!({
                "nextHopType": r["nextHopType"],
                "nextHopIpAddress": r["nextHopIpAddress"].as_array().and_then(|a| a.first()).cloned().unwrap_or(json!("")),
                "routeTableId": match (&table, user) {
                    (Some(t), true) => json!(t.to_string()),
                    _ => json!("System Route"),
                },
            })
        }
        None => {
            json!({ "nextHopType": "None", "nextHopIpAddress": "", "routeTableId": "System Route" })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fixtures::{fresh, id_str};

    fn rule(name: &str, prio: u32, dir: &str, access: &str, dport: &str) -> Value {
        json!({"name": name, "properties": {
            "priority": prio, "direction": dir, "access": access, "protocol": "Tcp",
            "sourceAddressPrefix": "*", "destinationAddressPrefix": "*",
            "sourcePortRange": "*", "destinationPortRange": dport}})
    }

    /// vnet1 10.0.0.0/16: `a` 10.0.1.0/24 (NSG nsg-a, route table rt-a),
    /// `b` 10.0.2.0/24; vm1 10.0.1.4 in a, vm2 10.0.2.4 and nva 10.0.2.10 in b.
    fn state() -> LabState {
        let sub = |s: &str| {
            id_str(&format!(
                "Microsoft.Network/virtualNetworks/vnet1/subnets/{s}"
            ))
        };
        let nic = |name: &str, subnet: &str, ip: &str| {
            json!({"type": "Microsoft.Network/networkInterfaces", "name": name, "properties": {
                "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": sub(subnet)},
                "privateIPAllocationMethod": "Static", "privateIPAddress": ip}}]}})
        };
        let vm = |name: &str, nic: &str| {
            json!({"type": "Microsoft.Compute/virtualMachines", "name": name, "properties": {
                "networkProfile": {"networkInterfaces": [{"id": id_str(&format!("Microsoft.Network/networkInterfaces/{nic}"))}]}}})
        };
        fresh(json!([
            {"type": "Microsoft.Network/networkSecurityGroups", "name": "nsg-a", "properties": {"securityRules": [
                rule("deny-ssh-out", 100, "Outbound", "Deny", "22"),
                rule("allow-web-in", 110, "Inbound", "Allow", "80")]}},
            {"type": "Microsoft.Network/routeTables", "name": "rt-a", "properties": {"routes": [
                {"name": "to-b-via-nva", "properties": {"addressPrefix": "10.0.2.128/25",
                    "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.2.10"}},
                {"name": "blackhole", "properties": {"addressPrefix": "192.0.2.0/24", "nextHopType": "None"}}]}},
            {"type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [
                    {"name": "a", "properties": {"addressPrefix": "10.0.1.0/24",
                        "networkSecurityGroup": {"id": id_str("Microsoft.Network/networkSecurityGroups/nsg-a")},
                        "routeTable": {"id": id_str("Microsoft.Network/routeTables/rt-a")}}},
                    {"name": "b", "properties": {"addressPrefix": "10.0.2.0/24"}}]}},
            nic("nic1", "a", "10.0.1.4"), nic("nic2", "b", "10.0.2.4"), nic("nicnva", "b", "10.0.2.10"),
            vm("vm1", "nic1"), vm("vm2", "nic2"), vm("nva", "nicnva"),
        ]))
        .unwrap()
    }

    fn verify(body: Value) -> Result<Value, AzureError> {
        ip_flow_verify(&state(), &LabConfig::default(), "westeurope", &body)
    }

    fn body(dir: &str, local: &str, lport: &str, remote: &str, rport: &str) -> Value {
        json!({"targetResourceId": id_str("Microsoft.Compute/virtualMachines/vm1"),
               "direction": dir, "protocol": "TCP", "localIPAddress": local, "localPort": lport,
               "remoteIPAddress": remote, "remotePort": rport})
    }

    #[test]
    fn ip_flow_verify_names_the_deciding_rule_as_azure() {
        let v = verify(body("Outbound", "10.0.1.4", "40000", "10.0.2.4", "22")).unwrap();
        assert_eq!(
            v,
            json!({"access": "Deny", "ruleName": "securityRules/deny-ssh-out"})
        );
        let v = verify(body("Outbound", "10.0.1.4", "40000", "10.0.2.4", "443")).unwrap();
        assert_eq!(
            v,
            json!({"access": "Allow", "ruleName": "defaultSecurityRules/AllowVnetOutBound"})
        );
        let v = verify(body("Inbound", "10.0.1.4", "80", "10.0.2.4", "40000")).unwrap();
        assert_eq!(
            v,
            json!({"access": "Allow", "ruleName": "securityRules/allow-web-in"})
        );
        let v = verify(body("Inbound", "10.0.1.4", "81", "203.0.113.9", "40000")).unwrap();
        assert_eq!(
            v,
            json!({"access": "Deny", "ruleName": "defaultSecurityRules/DenyAllInBound"})
        );
    }

    #[test]
    fn ip_flow_verify_refuses_what_azure_refuses() {
        let code = |b: Value| verify(b).unwrap_err().code;
        assert_eq!(
            code(body("Outbound", "10.0.1.9", "1", "10.0.2.4", "22")),
            "InvalidLocalIPAddress"
        );
        assert_eq!(
            code(body("Outbound", "10.0.1.4", "1-5", "10.0.2.4", "22")),
            "InvalidPortFormat"
        );
        assert_eq!(
            code(body("Sideways", "10.0.1.4", "1", "10.0.2.4", "22")),
            "InvalidDirection"
        );
        assert_eq!(
            code(body("Outbound", "10.0.1.4", "1", "not-an-ip", "22")),
            "InvalidIPAddressFormat"
        );
        let mut b = body("Outbound", "10.0.1.4", "1", "10.0.2.4", "22");
        b["targetResourceId"] = json!(id_str("Microsoft.Compute/virtualMachines/nope"));
        assert_eq!(code(b.clone()), "ResourceNotFound");
        b["targetResourceId"] = json!(id_str("Microsoft.Compute/virtualMachines/vm1"));
        let e = ip_flow_verify(&state(), &LabConfig::default(), "eastus", &b).unwrap_err();
        assert_eq!(e.code, "InvalidTargetResourceLocation");
    }

    #[test]
    fn next_hop_follows_the_effective_routes() {
        let hop = |dst: &str| {
            next_hop(
                &state(),
                &LabConfig::default(),
                "westeurope",
                &json!({"targetResourceId": id_str("Microsoft.Compute/virtualMachines/vm1"),
                        "sourceIPAddress": "10.0.1.4", "destinationIPAddress": dst}),
            )
            .unwrap()
        };
        let rt = id_str("Microsoft.Network/routeTables/rt-a");
        assert_eq!(
            hop("10.0.2.4"),
            json!({"nextHopType": "VnetLocal", "nextHopIpAddress": "", "routeTableId": "System Route"})
        );
        assert_eq!(
            hop("10.0.2.200"),
            json!({"nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.2.10", "routeTableId": rt})
        );
        assert_eq!(hop("192.0.2.1")["nextHopType"], "None");
        assert_eq!(hop("192.0.2.1")["routeTableId"], json!(rt));
        assert_eq!(
            hop("203.0.113.5"),
            json!({"nextHopType": "Internet", "nextHopIpAddress": "", "routeTableId": "System Route"})
        );
    }
}
