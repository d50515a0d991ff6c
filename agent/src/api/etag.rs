//! ARM's optimistic concurrency: every resource has an `etag`, and PUT,
//! PATCH and DELETE honour `If-Match` / `If-None-Match`, answered with 412
//! `PreconditionFailed`. The etag is a digest of the stored resource; a
//! child (a subnet, a peering, a rule) shares its parent's, as Azure's
//! network resources do. The precondition travels with the request as a
//! task-local and is checked under the state lock, just before the change,
//! so no other write can slip between the check and the commit.

use crate::model::{AzureError, LabState, ResourceId};

/// The etag of `id`, or `None` when it does not exist (`plan::view::etag`).
pub fn of(state: &LabState, id: &ResourceId) -> Option<String> {
    crate::plan::view::etag(state, id)
}

/// `W/"x"`, `"x"` and `x` name the same tag.
fn bare(tag: &str) -> &str {
    tag.trim().trim_start_matches("W/").trim_matches('"')
}

/// The conditions of one write.
#[derive(Debug, Clone, Default)]
pub struct Precondition {
    pub id: Option<ResourceId>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

tokio::task_local! {
    pub static PRECONDITION: Precondition;
}

impl Precondition {
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// Checks against the committed state (called with its lock held).
    pub fn check(&self, state: &LabState) -> Result<(), AzureError> {
        let Some(id) = &self.id else { return Ok(()) };
        let current = of(state, id);
        let failed = |what: String| {
            AzureError::new(
                412,
                "PreconditionFailed",
                format!(
                    "The condition specified using HTTP conditional header(s) is not met: {what} (the resource's etag is {}).",
                    current.as_deref().unwrap_or("none: it does not exist")
                ),
            )
        };
        if let Some(m) = &self.if_match {
            let ok = match current.as_deref() {
                None => false,
                Some(_) if m.trim() == "*" => true,
                Some(c) => m.split(',').any(|t| bare(t) == bare(c)),
            };
            if !ok {
                return Err(failed(format!("If-Match {m}")));
            }
        }
        if let Some(m) = &self.if_none_match {
            let clash = match current.as_deref() {
                None => false,
                Some(_) if m.trim() == "*" => true,
                Some(c) => m.split(',').any(|t| bare(t) == bare(c)),
            };
            if clash {
                return Err(failed(format!("If-None-Match {m}")));
            }
        }
        Ok(())
    }
}

/// The precondition of the running request, if it has one.
pub fn current() -> Option<Precondition> {
    PRECONDITION
        .try_with(|p| p.clone())
        .ok()
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GenericResource;
    use serde_json::json;

    fn state_with_nsg(rules: usize) -> (LabState, ResourceId) {
        let id: ResourceId =
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/n"
                .parse()
                .unwrap();
        let mut s = LabState::default();
        s.resources.insert(
            id.key(),
            GenericResource {
                id: id.clone(),
                type_: id.full_type(),
                name: "n".into(),
                location: Some("westeurope".into()),
                kind: None,
                sku: None,
                properties: json!({ "securityRules": vec![json!({}); rules] }),
                tags: None,
                identity: None,
            },
        );
        (s, id)
    }

    #[test]
    fn etags_change_with_the_resource_and_children_share_their_parents() {
        let (a, id) = state_with_nsg(1);
        let (b, _) = state_with_nsg(2);
        let ta = of(&a, &id).unwrap();
        assert!(ta.starts_with("W/\"") && ta.len() == 40, "{ta}");
        assert_ne!(Some(ta.clone()), of(&b, &id));
        let child = id.child("securityRules", "r1");
        assert_eq!(of(&a, &child), Some(ta));
        assert_eq!(of(&LabState::default(), &id), None);
    }

    #[test]
    fn if_match_and_if_none_match() {
        let (s, id) = state_with_nsg(1);
        let tag = of(&s, &id).unwrap();
        let pc = |m: Option<&str>, n: Option<&str>| Precondition {
            id: Some(id.clone()),
            if_match: m.map(str::to_string),
            if_none_match: n.map(str::to_string),
        };
        assert!(pc(Some(&tag), None).check(&s).is_ok());
        assert!(pc(Some(bare(&tag)), None).check(&s).is_ok());
        assert!(pc(Some("*"), None).check(&s).is_ok());
        let e = pc(Some("W/\"stale\""), None).check(&s).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (412, "PreconditionFailed"));
        assert!(pc(None, Some("*")).check(&s).is_err());
        assert!(pc(None, Some("*")).check(&LabState::default()).is_ok());
        assert!(pc(Some("*"), None).check(&LabState::default()).is_err());
        assert!(pc(None, Some(&tag)).check(&s).is_err());
    }
}
