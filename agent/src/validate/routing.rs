//! Route tables, NAT gateways and public IPs (AZURE-FACTS §2, §4), and the
//! subscription settings that decide outbound SMTP (§5.2).

use std::collections::BTreeMap;

use crate::model::{
    AzureError, Inventory, LabState, NextHopType, PublicSku, ResourceId, SubscriptionSettings,
    GATEWAY_SUBNET,
};

/// Shortest and longest prefix of a public IP prefix a NAT gateway takes.
pub(crate) const NAT_PREFIX_LENGTHS: std::ops::RangeInclusive<u8> = 28..=31;
/// Most public addresses one NAT gateway may hold (addresses of prefixes included).
pub(crate) const NAT_MAX_ADDRESSES: u64 = 16;
/// NAT gateway idle timeout bounds, minutes.
pub(crate) const NAT_IDLE_TIMEOUT: std::ops::RangeInclusive<u32> = 4..=120;
/// Public IP idle timeout bounds, minutes.
pub(crate) const PIP_IDLE_TIMEOUT: std::ops::RangeInclusive<u32> = 4..=30;

fn bad(code: &str, message: String) -> AzureError {
    AzureError::bad_request(code, message)
}

pub(crate) fn check(inv: &Inventory) -> Result<(), AzureError> {
    for rt in &inv.route_tables {
        let mut names: BTreeMap<String, &str> = BTreeMap::new();
        let mut prefixes: BTreeMap<ipnet::Ipv4Net, &str> = BTreeMap::new();
        for r in &rt.routes {
            let at = format!("route '{}' of route table '{}'", r.name, rt.name);
            if names.insert(r.name.to_ascii_lowercase(), &r.name).is_some() {
                return Err(bad(
                    "DuplicateResourceName",
                    format!(
                        "Route table '{}' has two routes named '{}'. Route names must be unique.",
                        rt.name, r.name
                    ),
                ));
            }
            let p = r.address_prefix;
            if p.trunc() != p {
                return Err(bad(
                    "InvalidRouteAddressPrefix",
                    format!(
                        "The address prefix {p} of {at} is not a network address: write {}.",
                        p.trunc()
                    ),
                ));
            }
            if let Some(other) = prefixes.insert(p, &r.name) {
                return Err(bad(
                    "RouteConflict",
                    format!(
                        "Routes '{other}' and '{}' of route table '{}' both have address prefix {p}. A route table \
                         holds one route per prefix.",
                        r.name, rt.name
                    ),
                ));
            }
            if !r.next_hop_type.allowed_in_udr() {
                return Err(bad(
                    "InvalidNextHopType",
                    format!(
                        "The next hop type {} of {at} cannot be used in a user-defined route: Azure creates \
                         {} routes itself. Use VirtualNetworkGateway, VnetLocal, Internet, VirtualAppliance or None.",
                        r.next_hop_type.as_str(),
                        r.next_hop_type.as_str()
                    ),
                ));
            }
            match (r.next_hop_type, r.next_hop_ip) {
                (NextHopType::VirtualAppliance, None) => {
                    return Err(bad(
                        "MissingNextHopIpAddress",
                        format!(
                            "NextHopIpAddress cannot be Null or Empty in route {} when NextHopType is \
                             VirtualAppliance (route table '{}'). Give the private IP of the appliance's NIC.",
                            r.name, rt.name
                        ),
                    ))
                }
                (t, Some(ip)) if t != NextHopType::VirtualAppliance => {
                    return Err(bad(
                        "NextHopIpAddressNotAllowed",
                        format!(
                            "{at} has next hop type {} and nextHopIpAddress {ip}: a next hop IP address is only \
                             allowed with VirtualAppliance. Remove it or change the type.",
                            t.as_str()
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    check_public_ips(inv)?;
    check_nat_gateways(inv)?;
    check_subnets(inv)?;
    Ok(())
}

fn check_public_ips(inv: &Inventory) -> Result<(), AzureError> {
    for pip in &inv.public_ips {
        if pip.sku == PublicSku::Standard && !pip.static_allocation {
            return Err(bad(
                "StandardSkuPublicIPAddressesMustBeStatic",
                format!(
                    "Public IP address '{}' has SKU Standard and allocation method Dynamic. Standard public IP \
                     addresses are Static: set publicIPAllocationMethod to Static.",
                    pip.name
                ),
            ));
        }
        if !PIP_IDLE_TIMEOUT.contains(&pip.idle_timeout_minutes) {
            return Err(bad(
                "PublicIPAddressIdleTimeoutOutOfRange",
                format!(
                    "Public IP address '{}' has idleTimeoutInMinutes {}; it must be between 4 and 30.",
                    pip.name, pip.idle_timeout_minutes
                ),
            ));
        }
        let (nics, nats) = inv.public_ip_users(&pip.id);
        let mut users: Vec<String> = nics
            .iter()
            .map(|(n, c)| format!("network interface '{}' (ipConfiguration '{c}')", n.name))
            .collect();
        users.extend(nats.iter().map(|g| format!("NAT gateway '{}'", g.name)));
        if users.len() > 1 {
            return Err(bad(
                "PublicIPAddressInUse",
                format!(
                    "Public IP address '{}' is used by {} and {}. A public IP address belongs to one resource.",
                    pip.name, users[0], users[1]
                ),
            ));
        }
    }
    for nic in &inv.nics {
        for cfg in &nic.ip_configurations {
            let Some(id) = &cfg.public_ip_id else {
                continue;
            };
            let pip = inv.public_ip(id).ok_or_else(|| {
                bad(
                    "InvalidResourceReference",
                    format!(
                        "Network interface '{}' (ipConfiguration '{}') refers to public IP address '{id}', which \
                         does not exist. Deploy the public IP first or fix the id.",
                        nic.name, cfg.name
                    ),
                )
            })?;
            if pip.location != nic.location {
                return Err(bad(
                    "LocationMismatch",
                    format!(
                        "Public IP address '{}' is in '{}' but network interface '{}' is in '{}'. They must be in \
                         the same region.",
                        pip.name, pip.location, nic.name, nic.location
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_nat_gateways(inv: &Inventory) -> Result<(), AzureError> {
    let mut prefix_owner: BTreeMap<&ResourceId, &str> = BTreeMap::new();
    for g in &inv.nat_gateways {
        if g.sku != PublicSku::Standard {
            return Err(bad(
                "NatGatewaySkuNotSupported",
                format!(
                    "NAT gateway '{}' has SKU {}; NAT gateways are Standard only.",
                    g.name,
                    g.sku.as_str()
                ),
            ));
        }
        if !NAT_IDLE_TIMEOUT.contains(&g.idle_timeout_minutes) {
            return Err(bad(
                "NatGatewayIdleTimeoutOutOfRange",
                format!(
                    "NAT gateway '{}' has idleTimeoutInMinutes {}; it must be between 4 and 120 (default 4).",
                    g.name, g.idle_timeout_minutes
                ),
            ));
        }
        let mut count = 0u64;
        for id in &g.public_ip_ids {
            let pip = inv.public_ip(id).ok_or_else(|| {
                bad(
                    "InvalidResourceReference",
                    format!("NAT gateway '{}' refers to public IP address '{id}', which does not exist.", g.name),
                )
            })?;
            if pip.sku != PublicSku::Standard {
                return Err(bad(
                    "NatGatewayCannotUseBasicSkuPublicIp",
                    format!(
                        "NAT gateway '{}' cannot use public IP address '{}': its SKU is Basic. A NAT gateway \
                         needs Standard public IP addresses.",
                        g.name, pip.name
                    ),
                ));
            }
            if pip.location != g.location {
                return Err(location(
                    &g.name,
                    &g.location,
                    "public IP address",
                    &pip.name,
                    &pip.location,
                ));
            }
            count += 1;
        }
        for id in &g.public_ip_prefix_ids {
            let prefix = inv.public_ip_prefix(id).ok_or_else(|| {
                bad(
                    "InvalidResourceReference",
                    format!(
                        "NAT gateway '{}' refers to public IP prefix '{id}', which does not exist.",
                        g.name
                    ),
                )
            })?;
            if !NAT_PREFIX_LENGTHS.contains(&prefix.prefix_length) {
                return Err(bad(
                    "InvalidPublicIpPrefixLengthForNatGateway",
                    format!(
                        "NAT gateway '{}' cannot use public IP prefix '{}' (/{}): a NAT gateway takes prefixes \
                         of length /28 to /31.",
                        g.name, prefix.name, prefix.prefix_length
                    ),
                ));
            }
            if prefix.location != g.location {
                return Err(location(
                    &g.name,
                    &g.location,
                    "public IP prefix",
                    &prefix.name,
                    &prefix.location,
                ));
            }
            if let Some(other) = prefix_owner.insert(id, &g.name) {
                return Err(bad(
                    "PublicIPPrefixInUse",
                    format!(
                        "Public IP prefix '{}' is used by NAT gateway '{other}' and NAT gateway '{}'. A prefix \
                         belongs to one NAT gateway.",
                        prefix.name, g.name
                    ),
                ));
            }
            count += prefix.size();
        }
        if count > NAT_MAX_ADDRESSES {
            return Err(bad(
                "NatGatewayPublicIpAddressLimitExceeded",
                format!(
                    "NAT gateway '{}' would hold {count} public IP addresses (its public IPs plus every address of \
                     its prefixes); the limit is 16.",
                    g.name
                ),
            ));
        }
        let vnets: Vec<&str> = {
            let mut v: Vec<&str> = inv
                .subnets_with_nat_gateway(&g.id)
                .map(|(vnet, _)| vnet.name.as_str())
                .collect();
            v.dedup();
            v
        };
        if vnets.len() > 1 {
            return Err(bad(
                "NatGatewayCannotSpanMultipleVirtualNetworks",
                format!(
                    "NAT gateway '{}' is associated with subnets of virtual networks '{}' and '{}'. A NAT gateway \
                     serves the subnets of one virtual network only.",
                    g.name, vnets[0], vnets[1]
                ),
            ));
        }
    }
    Ok(())
}

fn location(name: &str, loc: &str, what: &str, other: &str, other_loc: &str) -> AzureError {
    bad(
        "LocationMismatch",
        format!(
            "NAT gateway '{name}' is in '{loc}' but {what} '{other}' is in '{other_loc}'. They must be in the same region."
        ),
    )
}

fn check_subnets(inv: &Inventory) -> Result<(), AzureError> {
    for vnet in &inv.vnets {
        for s in &vnet.subnets {
            if let Some(id) = &s.route_table_id {
                let rt = inv.route_table(id).ok_or_else(|| {
                    bad(
                        "InvalidResourceReference",
                        format!(
                            "Subnet '{}' of virtual network '{}' refers to route table '{id}', which does not exist. \
                             Deploy the route table first or fix the id.",
                            s.name, vnet.name
                        ),
                    )
                })?;
                if rt.location != vnet.location {
                    return Err(bad(
                        "LocationMismatch",
                        format!(
                            "Route table '{}' is in '{}' but virtual network '{}' is in '{}'. A subnet's route \
                             table must be in the virtual network's region.",
                            rt.name, rt.location, vnet.name, vnet.location
                        ),
                    ));
                }
            }
            let Some(id) = &s.nat_gateway_id else {
                continue;
            };
            let g = inv.nat_gateway(id).ok_or_else(|| {
                bad(
                    "InvalidResourceReference",
                    format!(
                        "Subnet '{}' of virtual network '{}' refers to NAT gateway '{id}', which does not exist. \
                         Deploy the NAT gateway first or fix the id.",
                        s.name, vnet.name
                    ),
                )
            })?;
            if s.name.eq_ignore_ascii_case(GATEWAY_SUBNET) {
                return Err(bad(
                    "NatGatewayCannotBeAssociatedWithGatewaySubnet",
                    format!(
                        "NAT gateway '{}' cannot be associated with subnet 'GatewaySubnet' of virtual network '{}'.",
                        g.name, vnet.name
                    ),
                ));
            }
            if g.location != vnet.location {
                return Err(location(
                    &g.name,
                    &g.location,
                    "virtual network",
                    &vnet.name,
                    &vnet.location,
                ));
            }
            for nic in inv.nics_in_subnet(&s.id) {
                for cfg in &nic.ip_configurations {
                    let basic = cfg
                        .public_ip_id
                        .as_ref()
                        .and_then(|p| inv.public_ip(p))
                        .filter(|p| p.sku == PublicSku::Basic);
                    if let Some(pip) = basic {
                        return Err(bad(
                            "SubnetWithNatGatewayAndBasicSkuResourceNotAllowed",
                            format!(
                                "NAT Gateway cannot be deployed on subnet containing Basic SKU Public IP addresses: \
                                 subnet '{}' of virtual network '{}' holds network interface '{}' with Basic public \
                                 IP '{}'. Use a Standard public IP.",
                                s.name, vnet.name, nic.name, pip.name
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Deleting a route table, NAT gateway, public IP or prefix still in use.
pub(crate) fn in_use(inv: &Inventory, id: &ResourceId) -> Result<(), AzureError> {
    if let Some((vnet, s)) = inv.subnets_with_route_table(id).next() {
        return Err(bad(
            "InUseRouteTableCannotBeDeleted",
            format!(
                "Route table '{}' is in use by subnet '{}' of virtual network '{}' and cannot be deleted. \
                 Dissociate it from the subnet first.",
                id.name(),
                s.name,
                vnet.name
            ),
        ));
    }
    if let Some((vnet, s)) = inv.subnets_with_nat_gateway(id).next() {
        return Err(bad(
            "InUseNatGatewayCannotBeDeleted",
            format!(
                "NAT gateway '{}' is in use by subnet '{}' of virtual network '{}' and cannot be deleted. \
                 Dissociate it from the subnet first.",
                id.name(),
                s.name,
                vnet.name
            ),
        ));
    }
    let (nics, nats) = inv.public_ip_users(id);
    let user = nics
        .first()
        .map(|(n, c)| format!("network interface '{}' (ipConfiguration '{c}')", n.name))
        .or_else(|| nats.first().map(|g| format!("NAT gateway '{}'", g.name)));
    if let Some(user) = user {
        return Err(bad(
            "PublicIPAddressCannotBeDeleted",
            format!(
                "Public IP address '{}' can not be deleted since it is still allocated to {user}. Dissociate it first.",
                id.name()
            ),
        ));
    }
    if let Some(g) = inv
        .nat_gateways
        .iter()
        .find(|g| g.public_ip_prefix_ids.contains(id))
    {
        return Err(bad(
            "PublicIPPrefixCannotBeDeleted",
            format!(
                "Public IP prefix '{}' can not be deleted since it is still used by NAT gateway '{}'. Dissociate it first.",
                id.name(),
                g.name
            ),
        ));
    }
    Ok(())
}

/// Set a subscription's outbound settings (e.g. allow outbound SMTP, as an
/// Enterprise Agreement subscription has). Pure: returns the new state with
/// its generation bumped; the subscription key is lower-cased.
pub fn set_subscription_settings(
    state: &LabState,
    subscription: &str,
    settings: SubscriptionSettings,
) -> LabState {
    let mut next = state.clone();
    let key = subscription.to_ascii_lowercase();
    if settings == SubscriptionSettings::default() {
        next.subscription_settings.remove(&key);
    } else {
        next.subscription_settings.insert(key, settings);
    }
    next.generation = state.generation + 1;
    next
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::fixtures::{code, deploy, fresh, id_str, rid, vnet};
    use crate::model::{LabState, SubscriptionSettings};

    fn rt(routes: Value) -> Value {
        json!({"type": "Microsoft.Network/routeTables", "name": "rt1", "properties": {"routes": routes}})
    }

    fn route(name: &str, prefix: &str, hop: &str, ip: Option<&str>) -> Value {
        let mut r =
            json!({"name": name, "properties": {"addressPrefix": prefix, "nextHopType": hop}});
        if let Some(ip) = ip {
            r["properties"]["nextHopIpAddress"] = json!(ip);
        }
        r
    }

    fn pip(name: &str, sku: &str) -> Value {
        json!({"type": "Microsoft.Network/publicIPAddresses", "name": name, "sku": {"name": sku},
               "properties": {"publicIPAllocationMethod": "Static"}})
    }

    fn prefix(name: &str, len: u32) -> Value {
        json!({"type": "Microsoft.Network/publicIPPrefixes", "name": name, "sku": {"name": "Standard"},
               "properties": {"prefixLength": len}})
    }

    fn nat(name: &str, pips: &[&str], prefixes: &[&str], idle: u32) -> Value {
        let ips: Vec<Value> = pips
            .iter()
            .map(|p| json!({"id": id_str(&format!("Microsoft.Network/publicIPAddresses/{p}"))}))
            .collect();
        let pfx: Vec<Value> = prefixes
            .iter()
            .map(|p| json!({"id": id_str(&format!("Microsoft.Network/publicIPPrefixes/{p}"))}))
            .collect();
        json!({"type": "Microsoft.Network/natGateways", "name": name, "sku": {"name": "Standard"},
               "properties": {"publicIpAddresses": ips, "publicIpPrefixes": pfx, "idleTimeoutInMinutes": idle}})
    }

    fn subnet_with(name: &str, prefix: &str, rt: Option<&str>, nat: Option<&str>) -> Value {
        let mut s = json!({"name": name, "properties": {"addressPrefix": prefix}});
        if let Some(r) = rt {
            s["properties"]["routeTable"] =
                json!({"id": id_str(&format!("Microsoft.Network/routeTables/{r}"))});
        }
        if let Some(n) = nat {
            s["properties"]["natGateway"] =
                json!({"id": id_str(&format!("Microsoft.Network/natGateways/{n}"))});
        }
        s
    }

    #[test]
    fn route_table_rules() {
        let ok = route("a", "0.0.0.0/0", "VirtualAppliance", Some("10.0.2.4"));
        assert_eq!(code(fresh(json!([rt(json!([ok.clone()]))]))), "Ok");
        for (routes, want) in [
            (
                json!([route("a", "0.0.0.0/0", "VirtualAppliance", None)]),
                "MissingNextHopIpAddress",
            ),
            (
                json!([route("a", "10.0.0.0/16", "VNetPeering", None)]),
                "InvalidNextHopType",
            ),
            (
                json!([route(
                    "a",
                    "10.0.0.0/16",
                    "VirtualNetworkServiceEndpoint",
                    None
                )]),
                "InvalidNextHopType",
            ),
            (
                json!([route("a", "10.0.0.0/16", "Bogus", None)]),
                "InvalidNextHopType",
            ),
            (
                json!([route("a", "10.0.0.1/16", "None", None)]),
                "InvalidRouteAddressPrefix",
            ),
            (
                json!([route("a", "Storage", "Internet", None)]),
                "InvalidRouteAddressPrefix",
            ),
            (
                json!([route("a", "10.0.0.0/16", "Internet", Some("10.0.0.4"))]),
                "NextHopIpAddressNotAllowed",
            ),
            (
                json!([ok.clone(), route("A", "10.0.0.0/8", "None", None)]),
                "DuplicateResourceName",
            ),
            (
                json!([ok.clone(), route("b", "0.0.0.0/0", "None", None)]),
                "RouteConflict",
            ),
        ] {
            assert_eq!(code(fresh(json!([rt(routes.clone())]))), want, "{routes}");
        }
        // A subnet's route table must exist and be in the VNet's region.
        let v = vnet(
            "v",
            json!(["10.0.0.0/16"]),
            json!([subnet_with("s", "10.0.1.0/24", Some("rt1"), None)]),
        );
        assert_eq!(code(fresh(json!([v.clone()]))), "InvalidResourceReference");
        assert_eq!(
            code(fresh(json!([rt(json!([ok.clone()])), v.clone()]))),
            "Ok"
        );
        let mut far = rt(json!([ok]));
        far["location"] = json!("northeurope");
        assert_eq!(code(fresh(json!([far, v]))), "LocationMismatch");
        // In use: cannot be deleted.
        let s = fresh(json!([
            rt(json!([])),
            vnet(
                "v",
                json!(["10.0.0.0/16"]),
                json!([subnet_with("s", "10.0.1.0/24", Some("rt1"), None)])
            )
        ]))
        .unwrap();
        let e = super::super::delete_resource(
            &s,
            &rid("Microsoft.Network/routeTables/rt1"),
            &Default::default(),
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "InUseRouteTableCannotBeDeleted");
    }

    #[test]
    fn nat_gateway_rules() {
        let v = |nat: Option<&str>| {
            vnet(
                "v",
                json!(["10.0.0.0/16"]),
                json!([subnet_with("s", "10.0.1.0/24", None, nat)]),
            )
        };
        let good = json!([
            pip("ip1", "Standard"),
            prefix("pf", 30),
            nat("ng", &["ip1"], &["pf"], 10),
            v(Some("ng"))
        ]);
        let s = fresh(good).unwrap();
        assert_eq!(s.allocations.public_ips.len(), 1);
        let block = s.allocations.public_ip_prefixes.values().next().unwrap();
        assert_eq!(block.prefix_len(), 30);
        assert_eq!(u32::from(block.network()) % 4, 0);
        for (res, want) in [
            (
                json!([pip("ip1", "Basic"), nat("ng", &["ip1"], &[], 4)]),
                "NatGatewayCannotUseBasicSkuPublicIp",
            ),
            (
                json!([pip("ip1", "Standard"), nat("ng", &["ip1"], &[], 3)]),
                "NatGatewayIdleTimeoutOutOfRange",
            ),
            (
                json!([pip("ip1", "Standard"), nat("ng", &["ip1"], &[], 121)]),
                "NatGatewayIdleTimeoutOutOfRange",
            ),
            (
                json!([prefix("pf", 27), nat("ng", &[], &["pf"], 4)]),
                "InvalidPublicIpPrefixLengthForNatGateway",
            ),
            (
                json!([
                    prefix("pf", 28),
                    pip("ip1", "Standard"),
                    nat("ng", &["ip1"], &["pf"], 4)
                ]),
                "NatGatewayPublicIpAddressLimitExceeded",
            ),
            (
                json!([nat("ng", &["nope"], &[], 4)]),
                "InvalidResourceReference",
            ),
            (json!([v(Some("ng"))]), "InvalidResourceReference"),
            (
                json!([
                    pip("ip1", "Standard"),
                    nat("ng", &["ip1"], &[], 4),
                    nat("ng2", &["ip1"], &[], 4)
                ]),
                "PublicIPAddressInUse",
            ),
        ] {
            assert_eq!(code(fresh(res.clone())), want, "{res}");
        }
        let mut basic_ng = nat("ng", &[], &[], 4);
        basic_ng["sku"]["name"] = json!("Basic");
        assert_eq!(code(fresh(json!([basic_ng]))), "NatGatewaySkuNotSupported");
        // One VNet per NAT gateway; never on GatewaySubnet.
        let two = json!([
            nat("ng", &[], &[], 4),
            v(Some("ng")),
            vnet(
                "w",
                json!(["10.1.0.0/16"]),
                json!([subnet_with("s", "10.1.1.0/24", None, Some("ng"))])
            )
        ]);
        assert_eq!(
            code(fresh(two)),
            "NatGatewayCannotSpanMultipleVirtualNetworks"
        );
        let gw = json!([
            nat("ng", &[], &[], 4),
            vnet(
                "v",
                json!(["10.0.0.0/16"]),
                json!([subnet_with(
                    "GatewaySubnet",
                    "10.0.1.0/27",
                    None,
                    Some("ng")
                )])
            )
        ]);
        assert_eq!(
            code(fresh(gw)),
            "NatGatewayCannotBeAssociatedWithGatewaySubnet"
        );
        // A Standard public IP is Static; Basic ones on a NIC block a NAT gateway subnet.
        let mut dynamic = pip("ip1", "Standard");
        dynamic["properties"]["publicIPAllocationMethod"] = json!("Dynamic");
        assert_eq!(
            code(fresh(json!([dynamic]))),
            "StandardSkuPublicIPAddressesMustBeStatic"
        );
        let mut nic = super::super::fixtures::nic("n1", "v/subnets/s", None);
        nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] =
            json!({"id": id_str("Microsoft.Network/publicIPAddresses/ip1")});
        assert_eq!(
            code(fresh(json!([
                pip("ip1", "Basic"),
                nat("ng", &[], &[], 4),
                v(Some("ng")),
                nic.clone()
            ]))),
            "SubnetWithNatGatewayAndBasicSkuResourceNotAllowed"
        );
        let s = fresh(json!([
            pip("ip1", "Standard"),
            nat("ng", &[], &[], 4),
            v(Some("ng")),
            nic
        ]))
        .unwrap();
        let e = super::super::delete_resource(
            &s,
            &rid("Microsoft.Network/publicIPAddresses/ip1"),
            &Default::default(),
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "PublicIPAddressCannotBeDeleted");
        let e = super::super::delete_resource(
            &s,
            &rid("Microsoft.Network/natGateways/ng"),
            &Default::default(),
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "InUseNatGatewayCannotBeDeleted");
        // Addresses are kept by a redeploy.
        let again = deploy(&s, json!([pip("ip2", "Standard")])).unwrap();
        assert_eq!(
            again.allocations.public_ips[&rid("Microsoft.Network/publicIPAddresses/ip1").key()],
            s.allocations.public_ips[&rid("Microsoft.Network/publicIPAddresses/ip1").key()]
        );
    }

    #[test]
    fn subscription_settings_are_pure_and_default_off() {
        let s = LabState::default();
        assert!(!s.subscription("SUB").allow_outbound_smtp);
        let on = super::set_subscription_settings(
            &s,
            "SUB",
            SubscriptionSettings {
                allow_outbound_smtp: true,
            },
        );
        assert!(on.subscription("sub").allow_outbound_smtp);
        assert_eq!(on.generation, 1);
        assert!(s.subscription_settings.is_empty());
        let off = super::set_subscription_settings(&on, "sub", SubscriptionSettings::default());
        assert!(off.subscription_settings.is_empty());
    }
}
