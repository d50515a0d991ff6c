//! PURE: model -> NetworkPlan. No syscalls, no clock, no randomness.

mod types;

pub use types::*;

use crate::model::{LabConfig, LabState};

/// The whole kernel picture of a lab.
pub fn build(_state: &LabState, lab: &LabConfig) -> NetworkPlan {
    NetworkPlan { lab: lab.name.clone(), ..Default::default() }
}
