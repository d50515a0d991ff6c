//! Resources of types the lab does not emulate, kept as ARM records: a
//! template that also deploys Application Insights, a database or a lock
//! deploys whole, and `reference()`/`show` see what Azure would compute.

use crate::model::{AzureError, GenericResource, LabState, ResourceId};

/// A child record needs its parent, as ARM's `ParentResourceNotFound` says
/// (an extension resource's parent is the resource it applies to).
pub(crate) fn check_parent(next: &LabState, res: &GenericResource) -> Result<(), AzureError> {
    let Some(parent) = parent_of(&res.id) else {
        return Ok(());
    };
    if next.get(&parent).is_some() {
        return Ok(());
    }
    // The Network Watcher Azure enables by itself in every region with a
    // VNet is never stored (diag::watcher), yet holds flow logs.
    if parent
        .full_type()
        .eq_ignore_ascii_case("Microsoft.Network/networkWatchers")
        && crate::diag::watcher::resolve(next, &parent).is_ok()
    {
        return Ok(());
    }
    Err(AzureError::not_found(
        "ParentResourceNotFound",
        format!(
            "Can not perform requested operation on nested resource. Parent resource '{}' not found.",
            parent.segments.iter().map(|s| s.1.as_str()).collect::<Vec<_>>().join("/")
        ),
    ))
}

/// The resource a child or extension resource hangs under.
fn parent_of(id: &ResourceId) -> Option<ResourceId> {
    let mut p = id.parent()?;
    // `.../sites/w/providers/Microsoft.Authorization/locks/l`: the segment
    // before the extension is the parent.
    if id.segments.last()?.0.starts_with("providers/") {
        return Some(p);
    }
    while p.segments.last()?.0.starts_with("providers/") {
        p = p.parent()?;
    }
    Some(p)
}

/// Whether the lab emulates `type_` (anything else is stored as a record).
pub fn emulated(type_: &str) -> bool {
    super::top_level_type(type_).is_some()
        || super::normalize::ChildKind::from_type(type_).is_some()
}
