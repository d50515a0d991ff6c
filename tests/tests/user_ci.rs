//! Issue 14, the users' CI recipe (docs/ci.md) run as `.ci/run` runs it:
//! `scripts/user-ci.sh` deploys the example lab, runs the user's test inside
//! an app's sandbox with real traffic, keeps a packet capture and the lab's
//! status when the test fails, and always tears down.

use std::path::PathBuf;
use std::process::Command;

use vnet_e2e::*;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// One run of the recipe in a lab of its own; (exit status, artifacts dir, stderr).
fn run(name: &str, test: &[&str]) -> (i32, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let out = Command::new(repo("scripts/user-ci.sh"))
        .arg(repo("examples/lab.json"))
        .args(["lab", "web1", "--"])
        .args(test)
        .env("VNET_AGENT", agent_bin())
        .env("VNET_AGENT_LAB", name)
        .env("VNET_AGENT_STATE_DIR", dir.path().join("state"))
        .env("VNET_AGENT_SOCKET", dir.path().join("agent.sock"))
        .env("ARTIFACTS", artifacts.path())
        .output()
        .expect("scripts/user-ci.sh");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        lab_namespaces(name).is_empty(),
        "the recipe left namespaces behind: {err}"
    );
    (out.status.code().unwrap_or(-1), artifacts, err)
}

#[test]
fn the_recipe_passes_a_passing_test_and_keeps_evidence_of_a_failing_one() {
    if !sandboxed() {
        return;
    }
    let tag = format!("{:04x}", std::process::id() & 0xffff);
    // The user's test resolves a name with the sandbox's DNS: real queries.
    let (rc, artifacts, err) = run(
        &format!("u{tag}a"),
        &["getent", "hosts", "web2.azurewebsites.net"],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(
        !artifacts.path().join("app.cap").exists(),
        "a passing run keeps no capture"
    );
    // A test that cannot connect: its status, and the evidence.
    let (rc, artifacts, err) = run(
        &format!("u{tag}b"),
        &[&probe_bin(), "tcp", "10.0.2.4", "9", "500"],
    );
    assert_ne!(rc, 0, "{err}");
    let cap = artifacts.path().join("app.cap");
    let out = Command::new("tcpdump")
        .args(["-r", cap.to_str().unwrap(), "-nn"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("> 10.0.2.4.9: Flags [S]"),
        "the capture holds the failed connection: {text}"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.path().join("status.json")).unwrap())
            .unwrap();
    assert!(status["generation"].is_u64(), "{status}");
    assert!(artifacts.path().join("effective-routes.json").exists());
}
