//! Every namespace's nft batch of the example lab, and of the routing lab
//! (route tables with a firewall NVA, a NAT gateway with a prefix, public
//! IPs, spoofing sets, SNAT port ranges, SMTP drops, with SMTP blocked and
//! allowed), is accepted by the real
//! `nft`, inside a throwaway network namespace (`unshare -n`), so nothing on
//! the host is touched: first in check mode (`-c`), then applied for real
//! twice in that namespace, because some kernel checks (a `snat` in a filter
//! chain, for one) only run at commit, and the second run proves the batch
//! replaces its own table. Needs root and nft; without them the test says so
//! and passes (and fails under `VNET_E2E_REQUIRED=1`).

use std::io::Write;
use std::process::{Command, Stdio};

use super::build;
use crate::model::LabConfig;
use crate::validate::fixtures::example_state;

/// Whether the real `nft` can be used in a throwaway namespace here. When it
/// cannot, the test says so and passes, except under `VNET_E2E_REQUIRED=1`
/// (CI), where a check that silently did nothing would be a lie.
pub(super) fn nft_available() -> bool {
    if unshare_works() {
        return true;
    }
    if std::env::var("VNET_E2E_REQUIRED").as_deref() == Ok("1") {
        panic!("`unshare -n nft` does not work here, but VNET_E2E_REQUIRED=1: run as root with nftables");
    }
    eprintln!("skipped: `unshare -n nft` does not work here (needs root and nftables)");
    false
}

/// Applies every namespace's batch of `plan` with the real nft; the number checked.
pub(super) fn check_plan(plan: &crate::plan::NetworkPlan) -> usize {
    let mut checked = 0;
    for ns in plan.namespaces.values() {
        if let Some(batch) = &ns.nft {
            if let Err(e) = nft_check(batch) {
                panic!(
                    "nft rejected the batch of {}:\n{e}\n{}",
                    ns.name,
                    serde_json::to_string_pretty(batch).unwrap()
                );
            }
            checked += 1;
        }
    }
    checked
}

fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["-n", "nft", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(super) fn nft_check(batch: &serde_json::Value) -> Result<(), String> {
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    file.write_all(batch.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let script = r#"nft -c -j -f "$0" && nft -j -f "$0" && nft -j -f "$0" && nft list table inet vnet_agent >/dev/null"#;
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", script])
        .arg(file.path())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_batch_of_the_example_passes_nft_check() {
    if !nft_available() {
        return;
    }
    let checked = check_plan(&build(&example_state(), &LabConfig::default()));
    // inet, stamp, fabric and two workers.
    assert_eq!(checked, 5);
}

#[test]
fn every_batch_of_the_routing_lab_passes_nft_check() {
    use crate::model::SubscriptionSettings;
    use crate::validate::fixtures::rid;
    if !nft_available() {
        return;
    }
    let s = super::routing_tests::routing_state();
    let allowed = crate::validate::set_subscription_settings(
        &s,
        &rid("Microsoft.Network/virtualNetworks/hub").subscription,
        SubscriptionSettings {
            allow_outbound_smtp: true,
        },
    );
    let small_ranges = LabConfig {
        snat_ports_per_instance: 16,
        ..LabConfig::default()
    };
    for (state, lab) in [
        (&s, LabConfig::default()),
        (&allowed, LabConfig::default()),
        (&s, small_ranges),
    ] {
        let checked = check_plan(&build(state, &lab));
        // inet, stamp, fabric and four workers.
        assert_eq!(checked, 7);
    }
}
