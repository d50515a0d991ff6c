//! ARM resource ids: `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}...]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AzureError;

/// A parsed ARM resource id. Comparison is case-insensitive, as in ARM.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: String,
    /// Provider namespace, e.g. `Microsoft.Network`.
    pub namespace: String,
    /// `(type, name)` pairs, outermost first: `[("virtualNetworks","v1"),("subnets","s1")]`.
    pub segments: Vec<(String, String)>,
}

impl ResourceId {
    pub fn new(sub: &str, rg: &str, namespace: &str, type_: &str, name: &str) -> Self {
        ResourceId {
            subscription: sub.to_string(),
            resource_group: rg.to_string(),
            namespace: namespace.to_string(),
            segments: vec![(type_.to_string(), name.to_string())],
        }
    }
    /// A child id, e.g. a subnet of a VNet.
    pub fn child(&self, type_: &str, name: &str) -> Self {
        let mut c = self.clone();
        c.segments.push((type_.to_string(), name.to_string()));
        c
    }
    /// The parent (for a child resource), e.g. the VNet of a subnet.
    pub fn parent(&self) -> Option<Self> {
        (self.segments.len() > 1).then(|| {
            let mut p = self.clone();
            p.segments.pop();
            p
        })
    }
    /// Full type, e.g. `Microsoft.Network/virtualNetworks/subnets`.
    pub fn full_type(&self) -> String {
        let mut t = self.namespace.clone();
        for (ty, _) in &self.segments {
            t.push('/');
            t.push_str(ty);
        }
        t
    }
    /// The last name segment.
    pub fn name(&self) -> &str {
        &self.segments.last().expect("ids have at least one segment").1
    }
    /// Lower-cased canonical form, the key of the store.
    pub fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for ResourceId {}
impl std::hash::Hash for ResourceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}
impl PartialOrd for ResourceId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ResourceId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/{}",
            self.subscription, self.resource_group, self.namespace
        )?;
        for (t, n) in &self.segments {
            write!(f, "/{t}/{n}")?;
        }
        Ok(())
    }
}

impl From<ResourceId> for String {
    fn from(id: ResourceId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for ResourceId {
    type Error = AzureError;
    fn try_from(s: String) -> Result<Self, AzureError> {
        s.parse()
    }
}

impl FromStr for ResourceId {
    type Err = AzureError;
    fn from_str(s: &str) -> Result<Self, AzureError> {
        let bad = || {
            AzureError::bad_request(
                "LinkedInvalidPropertyId",
                format!(
                    "Property id '{s}' is invalid. Expected format: \
                     /subscriptions/{{subscriptionId}}/resourceGroups/{{resourceGroupName}}/providers/{{resourceProviderNamespace}}/{{resourceType}}/{{resourceName}}."
                ),
            )
        };
        let parts: Vec<&str> = s.trim_matches('/').split('/').collect();
        if parts.len() < 8 || !parts.len().is_multiple_of(2) {
            return Err(bad());
        }
        if !parts[0].eq_ignore_ascii_case("subscriptions")
            || !parts[2].eq_ignore_ascii_case("resourceGroups")
            || !parts[4].eq_ignore_ascii_case("providers")
            || parts.iter().any(|p| p.is_empty())
        {
            return Err(bad());
        }
        let segments = parts[6..]
            .chunks(2)
            .map(|c| (c[0].to_string(), c[1].to_string()))
            .collect();
        Ok(ResourceId {
            subscription: parts[1].to_string(),
            resource_group: parts[3].to_string(),
            namespace: parts[5].to_string(),
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case_insensitive() {
        let s = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1";
        let id: ResourceId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(id.full_type(), "Microsoft.Network/virtualNetworks/subnets");
        assert_eq!(id.name(), "s1");
        assert_eq!(id.parent().unwrap().name(), "v1");
        let upper: ResourceId = s.to_uppercase().parse().unwrap();
        assert_eq!(id, upper);
    }

    #[test]
    fn rejects_malformed() {
        let e = "/subscriptions/x/resourceGroups/rg".parse::<ResourceId>().unwrap_err();
        assert_eq!(e.code, "LinkedInvalidPropertyId");
        assert!("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites"
            .parse::<ResourceId>()
            .is_err());
    }
}
