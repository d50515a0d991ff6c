//! Whether a subnet can be a site's integration subnet (seed, "Subnet
//! requirements" and "Limitations": an unused IPv4 /28 or larger subnet of an
//! Azure Resource Manager VNet in the app's region, without IPv6 address space
//! or service endpoint policies, delegated to Microsoft.Web/serverFarms).

use super::{missing_subnet, RequestContext};
use crate::authz;
use crate::model::{AzureError, Inventory, LabState, ResourceId, Site, SERVER_FARMS_DELEGATION};

/// Seed, "Permissions": setting or changing a site's integration subnet needs
/// read and join on the subnet or above; checked against `old`'s assignments.
pub(crate) fn check_permissions(
    old_state: &LabState,
    old: &Inventory,
    inv: &Inventory,
    ctx: &RequestContext,
) -> Result<(), AzureError> {
    for site in &inv.sites {
        let Some(subnet) = &site.subnet_id else {
            continue;
        };
        let before = old.site(&site.id).and_then(|s| s.subnet_id.as_ref());
        if before == Some(subnet) {
            continue;
        }
        authz::require_linked(
            old_state,
            &ctx.principal,
            "Microsoft.Web/sites/write",
            &site.id.to_string(),
            &authz::INTEGRATION_ACTIONS,
            &subnet.to_string(),
        )?;
    }
    Ok(())
}

/// Smallest integration subnet (seed, "Limitations": "an IPv4 /28 block or larger").
pub(crate) const MAX_INTEGRATION_PREFIX_LEN: u8 = 28;

fn bad(code: &str, message: String) -> AzureError {
    AzureError::bad_request(code, message)
}

/// The subnet `subnet_id` may carry `site`'s integration.
pub(crate) fn check_subnet(
    inv: &Inventory,
    old: &Inventory,
    site: &Site,
    subnet_id: &ResourceId,
) -> Result<(), AzureError> {
    let classic = inv.classic_vnet_of(subnet_id).is_some()
        || subnet_id
            .namespace
            .eq_ignore_ascii_case("Microsoft.ClassicNetwork");
    if let (true, Some(parent)) = (classic, subnet_id.parent()) {
        let classic = parent.name();
        return Err(bad(
            "ClassicVirtualNetworkNotSupported",
            format!(
                "Site '{}' cannot integrate with subnet '{}' of virtual network '{classic}': it is a classic \
                 virtual network (Microsoft.ClassicNetwork). Virtual network integration requires an Azure \
                 Resource Manager virtual network (Microsoft.Network/virtualNetworks); create one (or migrate the \
                 classic network) and integrate with its subnet.",
                site.name,
                subnet_id.name()
            ),
        ));
    }
    let label = format!("site '{}'", site.name);
    let (vnet, subnet, _) = inv
        .subnet(subnet_id)
        .ok_or_else(|| missing_subnet(old, subnet_id, &label, true))?;
    if vnet.location != site.location {
        return Err(bad(
            "LocationMismatch",
            format!(
                "Site '{}' is in '{}' but virtual network '{}' is in '{}'. The app and the virtual network must be \
                 in the same region (seed, \"Limitations\").",
                site.name, site.location, vnet.name, vnet.location
            ),
        ));
    }
    if !vnet.ipv6_prefixes.is_empty() {
        let v6: Vec<String> = vnet.ipv6_prefixes.iter().map(ToString::to_string).collect();
        return Err(bad(
            "VirtualNetworkHasIPv6AddressSpace",
            format!(
                "Site '{}' cannot integrate with virtual network '{}': its address space has IPv6 ranges ({}). \
                 The integration virtual network can't have IPv6 address spaces defined; use an IPv4-only \
                 virtual network.",
                site.name,
                vnet.name,
                v6.join(", ")
            ),
        ));
    }
    if let Some(d) = subnet
        .delegations
        .iter()
        .find(|d| !d.service_name.eq_ignore_ascii_case(SERVER_FARMS_DELEGATION))
    {
        return Err(bad(
            "SubnetDelegationInvalid",
            format!(
                "Subnet '{}' of virtual network '{}' is delegated to '{}', so site '{}' cannot integrate with it. \
                 App Service needs a subnet delegated to Microsoft.Web/serverFarms (or not delegated yet).",
                subnet.name, vnet.name, d.service_name, site.name
            ),
        ));
    }
    if subnet.address_prefix.prefix_len() > MAX_INTEGRATION_PREFIX_LEN {
        return Err(bad(
            "SubnetTooSmall",
            format!(
                "Subnet '{}' ({}) is too small for App Service integration of site '{}': it needs a /28 or larger \
                 (a /26 is recommended).",
                subnet.name, subnet.address_prefix, site.name
            ),
        ));
    }
    if !subnet.service_endpoint_policies.is_empty() {
        return Err(bad(
            "SubnetHasServiceEndpointPolicies",
            format!(
                "Subnet '{}' of virtual network '{}' has service endpoint policies ({}), so site '{}' cannot \
                 integrate with it: the integration subnet can't have service endpoint policies enabled. Remove \
                 the policies from the subnet or pick another subnet.",
                subnet.name,
                vnet.name,
                subnet.service_endpoint_policies.join(", "),
                site.name
            ),
        ));
    }
    // Delegating a subnet that holds NICs is refused; a NIC added to an
    // already delegated subnet is refused by the NIC rules instead.
    let was_delegated = old
        .subnet(subnet_id)
        .is_some_and(|(_, s, _)| s.is_delegated_to_server_farms());
    if let Some(nic) = inv
        .nics_in_subnet(subnet_id)
        .next()
        .filter(|_| !was_delegated)
    {
        return Err(bad(
            "SubnetDelegationsCannotChangeWhenSubnetUsedByResource",
            format!(
                "Subnet '{}' of virtual network '{}' cannot be used for integration by site '{}': it holds network \
                 interface '{}'. App Service integration needs an empty subnet; pick another subnet or move the NIC.",
                subnet.name, vnet.name, site.name, nic.name
            ),
        ));
    }
    Ok(())
}
