//! STUB (replaced by the plan branch).
use crate::model::{AzureError, LabConfig, LabState, ResourceId};
pub fn resource_view(
    _s: &LabState,
    _l: &LabConfig,
    _id: &ResourceId,
) -> Result<serde_json::Value, AzureError> {
    Err(AzureError::not_found("ResourceNotFound", "stub"))
}
pub fn list(_s: &LabState, _l: &LabConfig, _rg: Option<&str>) -> Vec<serde_json::Value> {
    vec![]
}
pub fn webapp_show(
    _s: &LabState,
    _l: &LabConfig,
    _sub: &str,
    _rg: &str,
    _n: &str,
) -> Result<serde_json::Value, AzureError> {
    Err(AzureError::not_found("ResourceNotFound", "stub"))
}
