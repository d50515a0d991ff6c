//! STUB (replaced by the plan branch).
mod types;
pub mod view;
use crate::model::{AzureError, LabConfig, LabState};
use std::collections::BTreeMap;
pub use types::*;
pub fn build(_state: &LabState, lab: &LabConfig) -> NetworkPlan {
    NetworkPlan {
        lab: lab.name.clone(),
        ..Default::default()
    }
}
pub enum ExecTarget {
    App { site: String, instance: u32 },
    Vm { name: String },
    Host { name: String },
}
pub struct ExecSpec {
    pub netns: String,
    pub env: BTreeMap<String, String>,
}
pub fn exec_target(_s: &LabState, _l: &LabConfig, _t: &ExecTarget) -> Result<ExecSpec, AzureError> {
    Err(AzureError::not_found("ResourceNotFound", "stub"))
}
