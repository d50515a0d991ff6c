//! VNet peering rules (issue 12; AZURE-FACTS §8): the remote VNet exists,
//! the two address spaces do not overlap, and this VNet does not overlap a
//! VNet the remote is already peered with. Refused with Azure's codes,
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
        for p in &v.peerings {
            let id = format!("{}/virtualNetworkPeerings/{}", v.id, p.name);
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
