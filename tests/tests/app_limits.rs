//! App cgroups, end to end (docs/datapath.md, "App cgroups"): each site
//! instance's process runs in a cgroup with its plan SKU's memory and a
//! process limit. A fork bomb stops at `pids.max`, a memory hog is
//! OOM-killed inside its own cgroup, the daemon keeps answering and the
//! other sites' processes are untouched; a scale-up re-applies the limits
//! without restarting anything; a deleted site's cgroups go with it, and
//! `down` leaves no cgroup behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vnet_e2e::fixtures::{plan, site, template, RG};
use vnet_e2e::*;

/// F1 (Free): 1 GB per instance, the smallest SKU Azure publishes, so the
/// memory hog needs no test override.
const SKU: &str = "F1";
const GIB: u64 = 1 << 30;

fn cmd(c: &str) -> Value {
    json!({ "appCommandLine": c })
}

/// The process status (with its `cgroup`) of `name`'s instance 0.
fn status_of(lab: &Lab, name: &str) -> Value {
    let view = lab.show(&id(RG, "Microsoft.Web/sites", name));
    view["emulator"]["processes"][0].clone()
}

fn counter(p: &Value, key: &str) -> u64 {
    p["cgroup"][key].as_u64().unwrap_or(0)
}

/// Polls `name`'s status until `done` holds (at most `secs`).
fn wait_for(lab: &Lab, name: &str, secs: u64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let p = status_of(lab, name);
        if done(&p) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what} within {secs} s; last status {p:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn dirs(p: &Value) -> Vec<PathBuf> {
    p["cgroup"]["dirs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(PathBuf::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn runaway_apps_meet_their_plan_limits_and_down_removes_their_cgroups() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(
        RG,
        &template(vec![
            plan("plan1", SKU, 1, json!({})),
            site(
                "forker",
                "plan1",
                None,
                "westeurope",
                cmd("while :; do sleep 600 & done"),
            ),
            site(
                "hog",
                "plan1",
                None,
                "westeurope",
                cmd("head -c 4G /dev/zero | tail; exec sleep 100000"),
            ),
            site(
                "calm",
                "plan1",
                None,
                "westeurope",
                cmd("exec sleep 100000"),
            ),
        ]),
    );

    let calm = wait_for(&lab, "calm", 30, "running", |p| p["running"] == true);
    if calm["cgroup"]["enforced"] != true {
        let note = calm["cgroup"]["note"].as_str().unwrap_or("").to_string();
        assert!(
            std::env::var("VNET_E2E_REQUIRED").as_deref() != Ok("1"),
            "app cgroups are required here: {calm:#}"
        );
        eprintln!("skipped: no writable cgroup hierarchy here ({note})");
        return;
    }
    let calm_pid = calm["pid"].as_u64().unwrap();
    assert_eq!(counter(&calm, "memoryLimitBytes"), GIB, "{calm:#}");
    assert_eq!(counter(&calm, "pidsMax"), 1024, "{calm:#}");
    let version = calm["cgroup"]["version"].as_str().unwrap().to_string();
    eprintln!("cgroup {version}: {:?}", dirs(&calm));

    // The fork loop stops at pids.max, and the kernel counted the refusals.
    let forker = wait_for(&lab, "forker", 60, "pids.max met", |p| {
        counter(p, "pidsLimitHits") > 0
    });
    let current = counter(&forker, "pidsCurrent");
    assert!(
        (900..=1024).contains(&current),
        "the fork loop's cgroup holds {current} processes: {forker:#}"
    );

    // The memory hog is OOM-killed inside its cgroup.
    let hog = wait_for(&lab, "hog", 120, "an OOM kill", |p| {
        counter(p, "oomKills") > 0
    });
    assert!(counter(&hog, "memoryLimitHits") > 0, "{hog:#}");
    assert!(counter(&hog, "memoryCurrentBytes") <= GIB, "{hog:#}");

    // The daemon keeps answering, quickly, and is in none of the app cgroups.
    let started = Instant::now();
    let status = lab.cli_json(&["lab", "status"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "lab status took {:?}",
        started.elapsed()
    );
    let keys: Vec<&str> = status["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    for s in ["forker", "hog", "calm"] {
        let suffix = format!("/sites/{s}/instances/0");
        assert!(keys.iter().any(|k| k.ends_with(&suffix)), "{s}: {keys:?}");
    }
    let daemon = lab.daemon_pid().expect("daemon");
    let own = std::fs::read_to_string(format!("/proc/{daemon}/cgroup")).unwrap();
    assert!(
        !own.contains("vnet-agent/"),
        "the daemon is in an app cgroup: {own}"
    );

    // The other site's process is untouched.
    let calm = status_of(&lab, "calm");
    assert_eq!(calm["pid"].as_u64(), Some(calm_pid), "{calm:#}");
    assert_eq!(calm["running"], true);
    assert_eq!(calm["restarts"], 0);
    assert_eq!(counter(&calm, "oomKills"), 0);
    assert_eq!(counter(&calm, "pidsLimitHits"), 0);

    // Scale up: the new SKU's memory is written to the running cgroups, no restart.
    lab.cli_ok(&[
        "appservice",
        "plan",
        "update",
        "-g",
        RG,
        "-n",
        "plan1",
        "--sku",
        "B1",
    ]);
    let calm = wait_for(&lab, "calm", 30, "B1's limit", |p| {
        counter(p, "memoryLimitBytes") == 1792 << 20
    });
    assert_eq!(
        calm["pid"].as_u64(),
        Some(calm_pid),
        "a scale-up restarted the app"
    );
    let file = if version == "v2" {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let written: Vec<String> = dirs(&calm)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join(file)).ok())
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(written, vec![(1792u64 << 20).to_string()], "{calm:#}");

    // A deleted site's cgroups go with its process; the others stay.
    let hog_dirs = dirs(&status_of(&lab, "hog"));
    let hog_sites: Vec<PathBuf> = hog_dirs
        .iter()
        .filter_map(|d| d.parent().map(PathBuf::from))
        .collect();
    assert!(hog_sites.iter().all(|d| d.exists()), "{hog_sites:?}");
    lab.cli_ok(&[
        "resource",
        "delete",
        "--ids",
        &id(RG, "Microsoft.Web/sites", "hog"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while hog_sites.iter().any(|d| d.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        hog_sites.iter().all(|d| !d.exists()),
        "the deleted site's cgroups are left: {hog_sites:?}"
    );
    assert_eq!(status_of(&lab, "calm")["pid"].as_u64(), Some(calm_pid));

    // down: no cgroup of the lab is left, in any hierarchy.
    let mut all: Vec<PathBuf> = ["forker", "calm"]
        .iter()
        .flat_map(|s| dirs(&status_of(&lab, s)))
        .collect();
    let lab_dirs: Vec<PathBuf> = all
        .iter()
        .filter_map(|d| d.parent()?.parent().map(PathBuf::from))
        .collect();
    all.extend(lab_dirs);
    assert!(all.iter().all(|d| d.exists()), "{all:?}");
    lab.cli_ok(&["down"]);
    let left: Vec<&PathBuf> = all.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left after down: {left:?}");
}
