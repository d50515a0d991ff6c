//! STUB (replaced by the plan branch).
use crate::model::{AzureError, GenericResource, LabConfig, LabState, ResourceId};
pub fn apply_resources(
    state: &LabState,
    _r: Vec<GenericResource>,
    _lab: &LabConfig,
) -> Result<LabState, AzureError> {
    Ok(state.clone())
}
pub fn delete_resource(
    state: &LabState,
    _id: &ResourceId,
    _lab: &LabConfig,
) -> Result<LabState, AzureError> {
    Ok(state.clone())
}
