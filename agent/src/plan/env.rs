//! The environment of a site's process on one instance (seed, "Manage virtual
//! network integration": "The private IP assigned to the instance is exposed
//! via the environment variable WEBSITE_PRIVATE_IP").

use std::collections::BTreeMap;

use super::layout::{Layout, SandboxL, WorkerL};
use super::names;

/// App settings first, then the platform's variables (which win, as in Azure).
pub(crate) fn site_env(l: &Layout, w: &WorkerL, sb: &SandboxL) -> BTreeMap<String, String> {
    let site = &sb.site;
    let mut env: BTreeMap<String, String> = site.app_settings.iter().cloned().collect();
    let linux = l.inv.plan(&site.server_farm_id).is_some_and(|p| p.is_linux);
    let owner = format!(
        "{}+{}-{}webspace{}",
        site.id.subscription,
        site.id.resource_group,
        site.location,
        if linux { "-Linux" } else { "" }
    );
    env.insert("WEBSITE_SITE_NAME".into(), site.name.clone());
    env.insert(
        "WEBSITE_INSTANCE_ID".into(),
        names::website_instance_id(&site.id.key(), w.instance),
    );
    env.insert(
        "WEBSITE_RESOURCE_GROUP".into(),
        site.id.resource_group.clone(),
    );
    env.insert("WEBSITE_OWNER_NAME".into(), owner);
    if let Some(v) = sb.vnic.map(|i| &w.vnics[i]) {
        env.insert("WEBSITE_PRIVATE_IP".into(), v.ip.to_string());
    }
    env
}
