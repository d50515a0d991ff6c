//! STUB (replaced by the dataplane branch).
use crate::plan::NetworkPlan;
use std::path::{Path, PathBuf};
pub struct Dataplane;
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReconcileReport {
    pub kernel_writes: u64,
}
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TeardownReport {
    pub namespaces_deleted: u64,
    pub errors: Vec<String>,
}
impl Dataplane {
    pub fn new(_lab: &str, _cache_dir: &Path) -> Self {
        Dataplane
    }
    pub async fn reconcile(&self, _plan: &NetworkPlan) -> anyhow::Result<ReconcileReport> {
        Ok(ReconcileReport::default())
    }
    pub async fn teardown(&self) -> anyhow::Result<TeardownReport> {
        Ok(TeardownReport::default())
    }
}
pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}
