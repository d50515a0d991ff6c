//! STUB (replaced by the plan branch).
use crate::model::{AzureError, GenericResource};
use std::collections::BTreeMap;
pub const DEFAULT_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";
pub struct DeploymentRequest {
    pub subscription: String,
    pub resource_group: String,
    pub template: serde_json::Value,
    pub parameters: BTreeMap<String, serde_json::Value>,
}
pub fn expand(_req: &DeploymentRequest) -> Result<Vec<GenericResource>, AzureError> {
    Ok(vec![])
}
