//! VNet peering rules (issue 12; AZURE-FACTS §8): one peering per remote
//! VNet, `useRemoteGateways` only towards a VNet with a gateway, the remote
//! VNet exists, the two address spaces do not overlap, and this VNet does
//! not overlap a VNet the remote is already peered with. Refused with Azure's codes,
//! naming the peering and the overlapping prefixes.

use ipnet::Ipv4Net;

use crate::model::{AzureError, Inventory, VirtualNetwork};

fn overlaps(a: &[Ipv4Net], b: &[Ipv4Net]) -> Vec<String> {
    let mut out: Vec<String> = a
        .iter()
        .flat_map(|x| {
            b.iter()
                .filter(move |y| x.contains(*y) || y.contains(x))
                .map(move |y| {
                    if x.prefix_len() >= y.prefix_len() {
                        x.to_string()
                    } else {
                        y.to_string()
                    }
                })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

pub(crate) fn check(inv: &Inventory) -> Result<(), AzureError> {
    for v in &inv.vnets {
        for (i, p) in v.peerings.iter().enumerate() {
            let id = format!("{}/virtualNetworkPeerings/{}", v.id, p.name);
            if let Some(first) = v.peerings[..i].iter().find(|q| q.remote == p.remote) {
                return Err(AzureError::bad_request(
                    "AnotherPeeringAlreadyReferencesRemoteVnet",
                    format!(
                        "Peering {}/virtualNetworkPeerings/{} already references remote virtual network Id: {}. \
                         A virtual network has at most one peering to another one; change that peering instead \
                         of adding '{}'.",
                        v.id, first.name, p.remote, p.name
                    ),
                ));
            }
            if p.remote
                .full_type()
                .eq_ignore_ascii_case(crate::model::CLASSIC_VNET_TYPE)
                || inv.classic_vnets.iter().any(|c| c.id == p.remote)
            {
                return Err(AzureError::bad_request(
                    "PeeringWithClassicVnetNotSupported",
                    format!(
                        "Peering {id} refers to the classic virtual network {}. Resources across classic \
                         virtual networks cannot be reached over peering; migrate it to Resource Manager first.",
                        p.remote
                    ),
                ));
            }
            if p.use_remote_gateways {
                if !inv.gateways.iter().any(|g| g.vnet() == p.remote) {
                    return Err(AzureError::bad_request(
                        "RemoteVnetHasNoGateways",
                        format!(
                            "Peering {id} cannot have UseRemoteGateway flag set to true because remote virtual \
                             network {} referenced by the peering does not have any gateways.",
                            p.remote
                        ),
                    ));
                }
                let transit = inv.vnet(&p.remote).is_some_and(|r| {
                    r.peerings
                        .iter()
                        .any(|b| b.remote == v.id && b.allow_gateway_transit)
                });
                if !transit {
                    return Err(AzureError::bad_request(
                        "RemotePeeringDoesNotAllowGatewayTransit",
                        format!(
                            "Peering {id} cannot have UseRemoteGateway flag set to true because the remote virtual \
                             network {} has no peering back to {} with AllowGatewayTransit set to true.",
                            p.remote, v.id
                        ),
                    ));
                }
            }
            let Some(remote) = inv.vnet(&p.remote) else {
                return Err(AzureError::bad_request(
                    "InvalidResourceReference",
                    format!(
                        "Peering {id} refers to the virtual network {}, which was not found. Create the remote \
                         virtual network first (peerings are made from both sides).",
                        p.remote
                    ),
                ));
            };
            let both = overlaps(&v.address_prefixes, &remote.address_prefixes);
            if !both.is_empty() {
                return Err(AzureError::bad_request(
                    "VnetAddressSpacesOverlap",
                    format!(
                        "Cannot create or update peering {id}. Virtual networks {} and {} cannot be peered because \
                         their address spaces overlap. Overlapping address prefixes: {}.",
                        v.id,
                        remote.id,
                        both.join(", ")
                    ),
                ));
            }
            if let Some((third, prefixes)) = peered_overlap(inv, v, remote) {
                return Err(AzureError::bad_request(
                    "VnetAddressSpaceOverlapsWithAlreadyPeeredVnet",
                    format!(
                        "Cannot create or update peering {id}. Virtual networks {} and {} cannot be peered because \
                         address space of the first virtual network overlaps with address space of virtual network \
                         {} already peered with the second virtual network. Overlapping address prefixes: {}. For \
                         more information please refer to https://aka.ms/VnetPeeringInfo",
                        v.id,
                        remote.id,
                        third.id,
                        prefixes.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A VNet (other than `v`) that `remote` peers with whose space overlaps `v`'s.
fn peered_overlap<'a>(
    inv: &'a Inventory,
    v: &VirtualNetwork,
    remote: &VirtualNetwork,
) -> Option<(&'a VirtualNetwork, Vec<String>)> {
    remote
        .peerings
        .iter()
        .filter(|q| q.remote != v.id)
        .find_map(|q| {
            let third = inv.vnet(&q.remote)?;
            let o = overlaps(&v.address_prefixes, &third.address_prefixes);
            (!o.is_empty()).then_some((third, o))
        })
}

/// Records each peering's view of the remote address space when it has
/// none yet (a new peering, or one re-put by `peering sync` or a redeploy):
/// what `peeringSyncLevel` compares with and what is routed.
pub(crate) fn record_synced_spaces(next: &mut crate::model::LabState, inv: &Inventory) {
    for v in &inv.vnets {
        let Some(res) = next.resources.get_mut(&v.id.key()) else {
            continue;
        };
        let Some(list) = res
            .properties
            .get_mut("virtualNetworkPeerings")
            .and_then(serde_json::Value::as_array_mut)
        else {
            continue;
        };
        for (entry, p) in list.iter_mut().zip(&v.peerings) {
            if p.synced_remote_prefixes.is_some() {
                continue;
            }
            let Some(remote) = inv.vnet(&p.remote) else {
                continue;
            };
            let prefixes: Vec<String> = remote
                .address_prefixes
                .iter()
                .map(ToString::to_string)
                .collect();
            if let Some(props) = entry
                .get_mut("properties")
                .and_then(serde_json::Value::as_object_mut)
            {
                props.insert(
                    "remoteAddressSpace".into(),
                    serde_json::json!({ "addressPrefixes": prefixes }),
                );
            }
        }
    }
}
