//! Gateways, local network gateways, connections, ExpressRoute circuits and
//! on-premises hosts (issue 12): a gateway lives in its VNet's GatewaySubnet
//! (/29 or larger for a VPN gateway, /27 with an ExpressRoute gateway, as
//! Azure), a VPN gateway has a public IP, one gateway of each type
//! per VNet, BGP addresses inside the right ranges, Azure's reserved ASNs
//! refused, and a connection joins things of the right types. Refused with
//! Azure's codes where the lab knows them (docs/errors.md, "Gateways").

use crate::model::{
    AzureError, ConnectionPeer, ConnectionType, GatewayType, Inventory, ResourceId, GATEWAY_SUBNET,
    MIN_GATEWAY_SUBNET_PREFIX, MIN_VPN_GATEWAY_SUBNET_PREFIX, RESERVED_ASNS,
};

fn bad(code: &str, message: String) -> AzureError {
    AzureError::bad_request(code, message)
}

fn reserved_asn(what: &str, id: &ResourceId, asn: u32) -> Result<(), AzureError> {
    if asn == 0 || RESERVED_ASNS.contains(&asn) {
        return Err(bad(
            "InvalidBgpAsn",
            format!(
                "{what} {id} uses ASN {asn}, which Azure reserves ({}) or is not valid. Use a private ASN \
                 such as 65050 for an on-premises device.",
                RESERVED_ASNS.map(|a| a.to_string()).join(", ")
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check(inv: &Inventory) -> Result<(), AzureError> {
    for g in &inv.gateways {
        let Some((vnet, subnet, _)) = inv.subnet(&g.subnet) else {
            return Err(bad(
                "InvalidResourceReference",
                format!(
                    "Virtual network gateway {} refers to the subnet {}, which was not found. Add a subnet \
                     named GatewaySubnet to the virtual network first.",
                    g.id, g.subnet
                ),
            ));
        };
        if !subnet.name.eq_ignore_ascii_case(GATEWAY_SUBNET) {
            return Err(bad(
                "GatewaySubnetNameInvalid",
                format!(
                    "Virtual network gateway {} must be in the subnet named 'GatewaySubnet' of its virtual \
                     network; '{}' is not it.",
                    g.id, subnet.name
                ),
            ));
        }
        // An ExpressRoute gateway, or a VPN gateway beside one, needs a /27;
        // a VPN gateway alone gets by with a /29.
        let coexist = inv
            .gateways
            .iter()
            .any(|o| o.vnet() == g.vnet() && o.gateway_type == GatewayType::ExpressRoute);
        let min = if coexist {
            MIN_GATEWAY_SUBNET_PREFIX
        } else {
            MIN_VPN_GATEWAY_SUBNET_PREFIX
        };
        if subnet.address_prefix.prefix_len() > min {
            return Err(bad(
                "GatewaySubnetIsTooSmall",
                format!(
                    "The GatewaySubnet {} of virtual network {} is a /{}: {} needs a GatewaySubnet of /{min} or \
                     larger (/27 recommended, e.g. {}/27).",
                    subnet.address_prefix,
                    vnet.name,
                    subnet.address_prefix.prefix_len(),
                    if coexist {
                        "an ExpressRoute gateway (alone or beside a VPN gateway)"
                    } else {
                        "a VPN gateway"
                    },
                    subnet.address_prefix.network()
                ),
            ));
        }
        if let Some(a) = g.bgp_peering_address {
            if !subnet.address_prefix.contains(&a) {
                return Err(bad(
                    "InvalidBgpPeeringAddress",
                    format!(
                        "The BGP peering address {a} of virtual network gateway {} is not in its GatewaySubnet {}.",
                        g.id, subnet.address_prefix
                    ),
                ));
            }
        }
        if g.gateway_type == GatewayType::Vpn {
            match &g.public_ip {
                None => {
                    return Err(bad(
                        "VirtualNetworkGatewayIpConfigurationMustHavePublicIp",
                        format!(
                            "VPN gateway {} needs a public IP address in its IP configuration \
                             (ipConfigurations[0].properties.publicIPAddress.id).",
                            g.id
                        ),
                    ))
                }
                Some(ip) if inv.public_ip(ip).is_none() => {
                    return Err(bad(
                        "InvalidResourceReference",
                        format!("Virtual network gateway {} refers to the public IP {ip}, which was not found.", g.id),
                    ))
                }
                _ => {}
            }
        }
    }
    // After every gateway's own checks: a gateway outside GatewaySubnet is
    // refused for that, not for being the VNet's second gateway.
    for g in &inv.gateways {
        let vnet = inv.vnet(&g.vnet()).expect("checked above");
        if let Some(other) = inv
            .gateways
            .iter()
            .find(|o| o.id != g.id && o.vnet() == g.vnet() && o.gateway_type == g.gateway_type)
        {
            return Err(bad(
                "VnetAlreadyHasGatewayOfThisType",
                format!(
                    "Virtual network {} already has the {} gateway {}; it can have one VPN gateway and one \
                     ExpressRoute gateway.",
                    vnet.id,
                    g.gateway_type.as_str(),
                    other.id
                ),
            ));
        }
    }
    for l in &inv.local_gateways {
        if let Some(b) = l.bgp {
            reserved_asn("Local network gateway", &l.id, b.asn)?;
        }
    }
    for c in &inv.circuits {
        if let Some(pp) = c.private_peering {
            reserved_asn(
                "The private peering of ExpressRoute circuit",
                &c.id,
                pp.peer_asn,
            )?;
        }
    }
    for c in &inv.connections {
        let Some(g) = inv.gateways.iter().find(|g| g.id == c.gateway) else {
            return Err(bad(
                "InvalidResourceReference",
                format!(
                    "Connection {} refers to the virtual network gateway {}, which was not found.",
                    c.id, c.gateway
                ),
            ));
        };
        let want = match c.connection_type {
            ConnectionType::ExpressRoute => GatewayType::ExpressRoute,
            _ => GatewayType::Vpn,
        };
        if g.gateway_type != want {
            return Err(bad(
                "InvalidGatewayTypeForConnection",
                format!(
                    "Connection {} of type {} needs a {} gateway; {} is a {} gateway.",
                    c.id,
                    c.connection_type.as_str(),
                    want.as_str(),
                    g.id,
                    g.gateway_type.as_str()
                ),
            ));
        }
        match &c.peer {
            ConnectionPeer::Local(id) => {
                let Some(l) = inv.local_gateways.iter().find(|l| &l.id == id) else {
                    return Err(bad(
                        "InvalidResourceReference",
                        format!("Connection {} refers to the local network gateway {id}, which was not found.", c.id),
                    ));
                };
                if c.enable_bgp && (!g.enable_bgp || l.bgp.is_none()) {
                    return Err(bad(
                        "BgpNotEnabledOnGatewayOrLocalNetworkGateway",
                        format!(
                            "Connection {} has enableBgp, but {}. Turn on BGP on the gateway (enableBgp) and give \
                             the local network gateway bgpSettings (asn, bgpPeeringAddress), or create the \
                             connection without BGP.",
                            c.id,
                            if g.enable_bgp {
                                format!("local network gateway {} has no bgpSettings", l.id)
                            } else {
                                format!("virtual network gateway {} does not have BGP enabled", g.id)
                            }
                        ),
                    ));
                }
            }
            ConnectionPeer::Gateway(id) => {
                let Some(other) = inv
                    .gateways
                    .iter()
                    .find(|o| &o.id == id && o.gateway_type == GatewayType::Vpn)
                else {
                    return Err(bad(
                        "InvalidResourceReference",
                        format!(
                            "Connection {} refers to the VPN gateway {id}, which was not found.",
                            c.id
                        ),
                    ));
                };
                if c.enable_bgp && (!g.enable_bgp || !other.enable_bgp) {
                    return Err(bad(
                        "BgpNotEnabledOnGatewayOrLocalNetworkGateway",
                        format!(
                            "Connection {} has enableBgp, but gateway {} does not have BGP enabled.",
                            c.id,
                            if g.enable_bgp { &other.id } else { &g.id }
                        ),
                    ));
                }
                if c.enable_bgp && g.asn == other.asn {
                    return Err(bad(
                        "InvalidBgpAsn",
                        format!(
                            "The two gateways of VNet-to-VNet connection {} both use ASN {}: BGP between them \
                             needs different ASNs (set bgpSettings.asn on one).",
                            c.id, g.asn
                        ),
                    ));
                }
            }
            ConnectionPeer::Circuit(id) => {
                let Some(circuit) = inv.circuits.iter().find(|x| &x.id == id) else {
                    return Err(bad(
                        "InvalidResourceReference",
                        format!("Connection {} refers to the ExpressRoute circuit {id}, which was not found.", c.id),
                    ));
                };
                if circuit.private_peering.is_none() {
                    return Err(bad(
                        "CircuitHasNoPrivatePeering",
                        format!(
                            "ExpressRoute circuit {id} has no AzurePrivatePeering: configure the private peering \
                             (peerASN, primaryPeerAddressPrefix, vlanId) before connecting a gateway."
                        ),
                    ));
                }
            }
        }
    }
    for h in &inv.onprem_hosts {
        let known = inv.local_gateways.iter().any(|l| l.id == h.site)
            || inv.circuits.iter().any(|c| c.id == h.site);
        if !known {
            return Err(bad(
                "InvalidResourceReference",
                format!(
                    "On-premises host {} is in the site {}, which is not a local network gateway or an \
                     ExpressRoute circuit of the lab.",
                    h.id, h.site
                ),
            ));
        }
        if let Some(v) = inv
            .vnets
            .iter()
            .find(|v| v.address_prefixes.iter().any(|p| p.contains(&h.ip_address)))
        {
            return Err(bad(
                "OnPremisesAddressOverlapsVirtualNetwork",
                format!(
                    "On-premises host {} has the address {}, inside the address space of virtual network {}: \
                     on-premises and Azure address spaces must not overlap.",
                    h.id, h.ip_address, v.id
                ),
            ));
        }
    }
    Ok(())
}

/// Deleting a gateway that connections or gateway-transit spokes depend on.
pub(crate) fn check_delete(inv: &Inventory, id: &ResourceId) -> Result<(), AzureError> {
    let Some(g) = inv.gateways.iter().find(|g| &g.id == id) else {
        return Ok(());
    };
    if let Some(c) = inv
        .connections
        .iter()
        .find(|c| &c.gateway == id || c.peer == ConnectionPeer::Gateway(id.clone()))
    {
        return Err(bad(
            "InUseVirtualNetworkGatewayCannotBeDeleted",
            format!(
                "Virtual network gateway {id} cannot be deleted because connection {} uses it. Delete the \
                 connection first.",
                c.id
            ),
        ));
    }
    let hub = g.vnet();
    for v in &inv.vnets {
        if let Some(p) = v
            .peerings
            .iter()
            .find(|p| p.remote == hub && p.use_remote_gateways)
        {
            return Err(bad(
                "InUseVirtualNetworkGatewayCannotBeDeleted",
                format!(
                    "Virtual network gateway {id} cannot be deleted because peering {}/virtualNetworkPeerings/{} \
                     uses it (useRemoteGateways). Turn off useRemoteGateways on that peering first.",
                    v.id, p.name
                ),
            ));
        }
    }
    Ok(())
}
