//! Desired state: ARM-shaped resources, ids, and the lab's configuration.

mod error;
mod id;

pub use error::AzureError;
pub use id::ResourceId;

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::ipam::Allocations;

/// One resource as ARM stores it: `type`, `name`, `location`, `kind`, `sku`,
/// `properties` (kept as JSON so `show` returns what the user wrote plus what
/// the platform computed). Typed views over `properties` live in `model::*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenericResource {
    pub id: ResourceId,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<serde_json::Value>,
    #[serde(default)]
    pub properties: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<serde_json::Value>,
}

/// Everything the lab holds: resources by lower-cased id, plus the addresses
/// handed out for them. This is what the store persists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LabState {
    pub resources: BTreeMap<String, GenericResource>,
    pub allocations: Allocations,
    /// Bumped on every committed change.
    pub generation: u64,
}

/// Settings of one lab (one daemon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabConfig {
    /// Prefix of every namespace name (`<lab>-<kind>-...`). Short: namespace and
    /// link names are derived from it.
    pub name: String,
    /// The lab's public address space: outbound IPs, default outbound IPs and
    /// internet hosts come from here.
    pub public_pool: Ipv4Net,
    /// Outbound IPs given to each App Service plan (shown in `outboundIpAddresses`).
    pub outbound_ips_per_plan: u32,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            name: "vl".into(),
            public_pool: "198.18.0.0/15".parse().expect("valid constant"),
            outbound_ips_per_plan: 2,
        }
    }
}
