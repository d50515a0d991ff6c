//! Virtual network rules: address space and subnets (AZURE-FACTS §0, §1).

use ipnet::{Ipv4Net, Ipv6Net};

use crate::model::{AzureError, Inventory, VirtualNetwork};

/// Ranges Azure refuses in a VNet address space (virtual-networks-faq).
pub(crate) const BANNED_RANGES: [&str; 5] = [
    "224.0.0.0/4",
    "255.255.255.255/32",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "168.63.129.16/32",
];

/// Smallest subnet Azure allows (/29: 8 addresses, 3 usable).
pub(crate) const MAX_SUBNET_PREFIX_LEN: u8 = 29;

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn overlaps6(a: Ipv6Net, b: Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The only IPv6 subnet size Azure allows (AZURE-FACTS §0).
pub(crate) const IPV6_SUBNET_PREFIX_LEN: u8 = 64;

fn bad(code: &str, message: String) -> AzureError {
    AzureError::bad_request(code, message)
}

pub(crate) fn check(inv: &Inventory) -> Result<(), AzureError> {
    inv.vnets
        .iter()
        .chain(&inv.classic_vnets)
        .try_for_each(|v| check_vnet(v).and_then(|_| check_ipv6(v)))
}

/// IPv6 address spaces are valid (a dual-stack VNet); each subnet's IPv6
/// prefix is a /64 inside them, and they do not overlap.
fn check_ipv6(vnet: &VirtualNetwork) -> Result<(), AzureError> {
    let name = &vnet.name;
    for (i, p) in vnet.ipv6_prefixes.iter().enumerate() {
        if p.trunc() != *p {
            return Err(bad(
                "InvalidCIDRNotation",
                format!("The address prefix {p} of virtual network '{name}' is not a network address: write {}.", p.trunc()),
            ));
        }
        if let Some(q) = vnet.ipv6_prefixes[..i].iter().find(|q| overlaps6(**q, *p)) {
            return Err(bad(
                "VnetAddressSpacesOverlap",
                format!("The address prefixes {q} and {p} of virtual network '{name}' overlap. Remove or change one of them."),
            ));
        }
    }
    let mut seen: Vec<(Ipv6Net, &str)> = Vec::new();
    for s in &vnet.subnets {
        for p in &s.ipv6_prefixes {
            if p.prefix_len() != IPV6_SUBNET_PREFIX_LEN || p.trunc() != *p {
                return Err(bad(
                    "InvalidSubnetPrefixLength",
                    format!(
                        "The IPv6 prefix {p} of subnet '{}' in virtual network '{name}' must be a /64 network address \
                         (Azure's only IPv6 subnet size), e.g. {}.",
                        s.name,
                        Ipv6Net::new(p.network(), 64).map(|n| n.trunc()).unwrap_or(*p)
                    ),
                ));
            }
            if !vnet.ipv6_prefixes.iter().any(|v| v.contains(p)) {
                return Err(bad(
                    "NetcfgSubnetRangeOutsideVnet",
                    format!(
                        "The IPv6 prefix {p} of subnet '{}' is not within an IPv6 address space of virtual network \
                         '{name}'. Add an IPv6 range to the address space or pick a prefix inside it.",
                        s.name
                    ),
                ));
            }
            if let Some((q, other)) = seen.iter().find(|(q, _)| overlaps6(*q, *p)) {
                return Err(bad(
                    "NetcfgSubnetRangesOverlap",
                    format!(
                        "Subnet '{}' ({p}) overlaps subnet '{other}' ({q}) in virtual network '{name}'.",
                        s.name
                    ),
                ));
            }
            seen.push((*p, &s.name));
        }
    }
    Ok(())
}

fn check_vnet(vnet: &VirtualNetwork) -> Result<(), AzureError> {
    let name = &vnet.name;
    if vnet.address_prefixes.is_empty() {
        return Err(bad(
            "InvalidRequestFormat",
            format!("Virtual network '{name}' has no IPv4 address space. Add an IPv4 range to properties.addressSpace.addressPrefixes, e.g. [\"10.0.0.0/16\"] (IPv6 ranges may be added next to it)."),
        ));
    }
    for (i, p) in vnet.address_prefixes.iter().enumerate() {
        if p.trunc() != *p {
            return Err(bad(
                "InvalidCIDRNotation",
                format!(
                    "The address prefix {p} of virtual network '{name}' is not a network address: write {}.",
                    p.trunc()
                ),
            ));
        }
        for banned in BANNED_RANGES
            .iter()
            .map(|b| b.parse::<Ipv4Net>().expect("constant"))
        {
            if overlaps(*p, banned) {
                return Err(bad(
                    "InvalidAddressPrefix",
                    format!(
                        "The address prefix {p} of virtual network '{name}' overlaps {banned}, which Azure reserves \
                         (224.0.0.0/4, 255.255.255.255/32, 127.0.0.0/8, 169.254.0.0/16, 168.63.129.16/32 are not allowed). \
                         Use a private range such as 10.0.0.0/16."
                    ),
                ));
            }
        }
        if let Some(q) = vnet.address_prefixes[..i]
            .iter()
            .find(|q| overlaps(**q, *p))
        {
            return Err(bad(
                "VnetAddressSpacesOverlap",
                format!("The address prefixes {q} and {p} of virtual network '{name}' overlap. Remove or change one of them."),
            ));
        }
    }
    for (i, s) in vnet.subnets.iter().enumerate() {
        let sp = s.address_prefix;
        if let Some(dup) = vnet.subnets[..i]
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(&s.name))
        {
            return Err(bad(
                "DuplicateResourceName",
                format!("Virtual network '{name}' has two subnets named '{}'. Subnet names must be unique.", dup.name),
            ));
        }
        if sp.trunc() != sp {
            return Err(bad(
                "InvalidCIDRNotation",
                format!("The address prefix {sp} of subnet '{}' in virtual network '{name}' is not a network address: write {}.", s.name, sp.trunc()),
            ));
        }
        if sp.prefix_len() > MAX_SUBNET_PREFIX_LEN {
            return Err(bad(
                "InvalidSubnetPrefixLength",
                format!(
                    "Subnet '{}' ({sp}) in virtual network '{name}' is too small: the smallest subnet is a /29 \
                     (Azure reserves 5 addresses of every subnet).",
                    s.name
                ),
            ));
        }
        if !vnet.address_prefixes.iter().any(|p| p.contains(&sp)) {
            let space: Vec<String> = vnet
                .address_prefixes
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(bad(
                "NetcfgSubnetRangeOutsideVnet",
                format!(
                    "Subnet '{}' ({sp}) is not within the address space of virtual network '{name}' ({}). \
                     Pick a prefix inside it or extend the address space.",
                    s.name,
                    space.join(", ")
                ),
            ));
        }
        if let Some(o) = vnet.subnets[..i]
            .iter()
            .find(|o| overlaps(o.address_prefix, sp))
        {
            return Err(bad(
                "NetcfgSubnetRangesOverlap",
                format!(
                    "Subnet '{}' ({sp}) overlaps subnet '{}' ({}) in virtual network '{name}'. Subnets of a virtual network must not overlap.",
                    s.name, o.name, o.address_prefix
                ),
            ));
        }
    }
    Ok(())
}

/// Seed, "Subnet requirements": "subnet size can't be changed after
/// assignment". A subnet that holds addresses (an integration's
/// `AppServiceLink`, a private endpoint, a NIC) keeps its prefixes; Azure
/// refuses the change with `InUsePrefixCannotBeDeleted` ("IpPrefix
/// 10.2.0.0/24 on Subnet default has active allocations and cannot be
/// deleted", quoted in hashicorp/terraform-provider-azurerm#11211). An empty
/// subnet may be resized.
pub(crate) fn check_prefix_changes(old: &Inventory, new: &Inventory) -> Result<(), AzureError> {
    for vnet in &new.vnets {
        for s in &vnet.subnets {
            let Some((_, before, _)) = old.subnet(&s.id) else {
                continue;
            };
            let removed = (before.address_prefix != s.address_prefix)
                .then(|| before.address_prefix.to_string())
                .or_else(|| {
                    before
                        .ipv6_prefixes
                        .iter()
                        .find(|p| !s.ipv6_prefixes.contains(p))
                        .map(|p| p.to_string())
                });
            let Some(prefix) = removed else { continue };
            // A link left behind by a deleted app blocks every change with
            // its own recovery message (`sal.rs`), not this one.
            if let Some(by) = super::delete::subnet_user(old, &s.id) {
                return Err(bad(
                    "InUsePrefixCannotBeDeleted",
                    format!(
                        "IpPrefix {prefix} on Subnet {} has active allocations and cannot be deleted. The subnet of \
                         virtual network '{}' is in use by {by}; a subnet's size can't be changed after assignment \
                         (seed, \"Subnet requirements\"). Use a new subnet of the size you need, move the users to \
                         it, then change or delete this one.",
                        s.name, vnet.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
