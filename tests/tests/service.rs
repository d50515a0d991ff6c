//! Issue 14, the daemon as a service: systemd's notify protocol (ready once
//! the API answers, reloading on SIGHUP, stopping on SIGTERM), the API
//! socket's group access, and the unit file as `systemd-analyze verify`
//! reads it.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use vnet_e2e::fixtures::*;
use vnet_e2e::*;

fn notifications(sock: &UnixDatagram, until: &str) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    while let Ok(n) = sock.recv(&mut buf) {
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = m.contains(until);
        got.push(m);
        if done {
            break;
        }
    }
    got
}

#[test]
fn the_daemon_speaks_sd_notify_and_reloads_on_sighup() {
    let Some(mut lab) = Lab::start() else { return };
    lab.stop_daemon();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    lab.start_daemon_with(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let ready = notifications(&sock, "READY=1");
    assert!(ready.iter().any(|m| m == "READY=1"), "{ready:?}");
    // Ready means the API answers.
    assert!(lab.cli_json(&["lab", "status"])["generation"].is_u64());
    let pid = lab.daemon_pid().unwrap();
    // SAFETY: SIGHUP to the daemon this test started, by PID.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    let reload = notifications(&sock, "READY=1");
    assert!(
        reload
            .iter()
            .any(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC=")),
        "{reload:?}"
    );
    assert!(reload.last().is_some_and(|m| m == "READY=1"), "{reload:?}");
    lab.stop_daemon();
    let stop = notifications(&sock, "STOPPING=1");
    assert!(stop.iter().any(|m| m == "STOPPING=1"), "{stop:?}");
    lab.start_daemon();
}

/// `curl` on the API socket as uid 4343 with group `gid` (setpriv: no user
/// or group is added to this machine).
fn status_as(lab: &Lab, gid: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            "4343",
            "--regid",
            gid,
            "--clear-groups",
            "curl",
            "-sS",
            "--fail",
            "--unix-socket",
        ])
        .arg(lab.socket())
        .arg("http://vnet-agent/lab/status")
        .output()
        .expect("setpriv")
}

#[test]
fn a_member_of_the_socket_group_uses_the_api_and_others_cannot() {
    let Some(mut lab) = Lab::start() else { return };
    lab.stop_daemon();
    // The test's own directory holds the socket: others may traverse it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        lab.socket().parent().unwrap(),
        std::fs::Permissions::from_mode(0o711),
    )
    .unwrap();
    lab.start_daemon_with(&[("VNET_AGENT_SOCKET_GROUP", "4242")]);
    let meta = std::fs::metadata(lab.socket()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, 4242, 0o660)
    );
    let member = status_as(&lab, "4242");
    assert!(
        member.status.success(),
        "a member reads: {}",
        String::from_utf8_lossy(&member.stderr)
    );
    assert!(String::from_utf8_lossy(&member.stdout).contains("\"generation\""));
    let other = status_as(&lab, "4343");
    assert!(!other.status.success(), "a user outside the group cannot");
    // curl's "Couldn't connect" (7): connect(2) on the socket was refused.
    assert_eq!(
        other.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    // Without a group the socket is root's alone.
    lab.stop_daemon();
    lab.start_daemon();
    let meta = std::fs::metadata(lab.socket()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(!status_as(&lab, "4242").status.success());
}

#[test]
fn the_unit_file_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/vnet-agent.service"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // systemd-analyze checks that ExecStart's binary exists: point it at the build.
    let path = dir.path().join("vnet-agent.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/vnet-agent", agent_bin().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let err = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("vnet-agent.service"))
        .collect();
    assert!(out.status.success() && problems.is_empty(), "{err}");
    assert!(
        unit.contains("Type=notify")
            && unit.contains("ExecReload=")
            && unit.contains("KillMode=process")
    );
}

#[test]
fn json_logs_carry_the_request_and_its_resource() {
    let Some(mut lab) = Lab::start() else { return };
    lab.stop_daemon();
    // The log file is appended to: only what the JSON daemon wrote counts.
    let start = lab.daemon_log().len();
    lab.start_daemon_with(&[("VNET_AGENT_LOG_FORMAT", "json")]);
    lab.deploy(
        "rg1",
        &serde_json::json!({ "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0", "resources": [
                { "type": "Microsoft.Network/virtualNetworks", "name": "logvnet", "location": "westeurope",
                  "properties": { "addressSpace": { "addressPrefixes": ["10.9.0.0/16"] } } } ] }),
    );
    let log = lab.daemon_log()[start..].to_string();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    assert!(!lines.is_empty());
    let in_request = lines.iter().find(|l| {
        l["spans"].as_array().is_some_and(|s| {
            s.iter().any(|sp| {
                sp["name"] == "request"
                    && sp["resource"]
                        .as_str()
                        .is_some_and(|r| r.contains("/resourceGroups/rg1/"))
            })
        })
    });
    assert!(
        in_request.is_some(),
        "no log line of the deployment's request names its resource:\n{log}"
    );
}

/// `script` gives the CLI a terminal (a pty); its output is what a user sees.
fn on_a_terminal(lab: &Lab, args: &str) -> String {
    let c = lab.command();
    let mut script = Command::new("script");
    script
        .args([
            "-qfec",
            &format!("{} {args}", agent_bin().display()),
            "/dev/null",
        ])
        .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let out = script.output().expect("script (util-linux)");
    assert!(out.status.success(), "{args}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn long_work_shows_progress_on_a_terminal_and_stays_plain_when_piped() {
    let Some(mut lab) = Lab::start() else { return };
    // 30 instances: about 70 namespaces, long enough for the line to draw.
    let t = small_lab(30, "big");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    std::fs::write(&file, t.to_string()).unwrap();
    let seen = on_a_terminal(
        &lab,
        &format!("deploy -g {RG} -f {} -o none", file.display()),
    );
    let steps = [
        "validating",
        "planning",
        "namespaces",
        "links",
        "processes",
        "platform startup",
    ];
    assert!(
        seen.contains("\r\x1b[Kapplying: ") && steps.iter().any(|s| seen.contains(s)),
        "no progress line naming the daemon's step on the terminal: {seen:?}"
    );
    // The line is cleared before anything else is written.
    assert!(seen.ends_with("\r\x1b[K"), "{seen:?}");

    // Piped: byte for byte the plain answer.
    let out = lab.cli(&[
        "deploy",
        "-g",
        RG,
        "-f",
        file.to_str().unwrap(),
        "-o",
        "none",
    ]);
    assert!(out.status.success());
    let both = [out.stdout, out.stderr].concat();
    assert!(
        !both.contains(&0x1b),
        "escape codes in piped output: {:?}",
        String::from_utf8_lossy(&both)
    );

    // `down` of this lab takes well under a second: a line, if any, is
    // cleared before the answer.
    let seen = on_a_terminal(&lab, "down");
    if seen.contains("\x1b[K") {
        assert!(seen.contains("\r\x1b[Kdown: "), "{seen:?}");
    }
    assert!(seen.contains("namespacesDeleted"), "{seen:?}");
    lab.start_daemon();
}

/// The dev VM's Vagrantfile, as `vagrant validate` reads it (nothing boots;
/// `cargo xtask vm-test` brings the VM up for real).
#[test]
fn the_vagrantfile_validates() {
    // A copy, in a throwaway directory with its own Vagrant state: a
    // `.vagrant` left by a real `vagrant up` would make validate ask libvirt
    // about that machine.
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("vagrant");
    std::fs::create_dir(&project).unwrap();
    for f in ["Vagrantfile", "provision.sh"] {
        std::fs::copy(
            format!("{}/../vagrant/{f}", env!("CARGO_MANIFEST_DIR")),
            project.join(f),
        )
        .unwrap();
    }
    let out = Command::new("vagrant")
        .arg("validate")
        .current_dir(&project)
        .env("VAGRANT_HOME", dir.path().join("home"))
        .output()
        .expect("vagrant (Debian's package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("validated successfully"),
        "{said}"
    );
}

/// METHOD PATH on the API socket as `uid`/`gid` (setpriv), with a
/// principal header when given: (HTTP status, body).
fn call_as(
    lab: &Lab,
    uid: &str,
    gid: &str,
    method: &str,
    path: &str,
    principal: Option<&str>,
) -> (u16, String) {
    let claim = principal.map(|p| format!("x-ms-client-principal-name: {p}"));
    let headers: Vec<&str> = claim.iter().map(String::as_str).collect();
    let body = (method == "PUT").then_some(r#"{"location": "westeurope", "properties": {}}"#);
    let runner = ["setpriv", "--reuid", uid, "--regid", gid, "--clear-groups"];
    lab.api_call(&runner, method, path, &headers, body)
}

#[test]
fn callers_are_who_the_kernel_says_not_who_they_claim() {
    let Some(mut lab) = Lab::start() else { return };
    let sub = "/subscriptions/00000000-0000-0000-0000-000000000000";
    lab.cli_ok(&[
        "ad",
        "user",
        "create",
        "--display-name",
        "reader1",
        "-o",
        "none",
    ]);
    lab.cli_ok(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        "reader1",
        "--role",
        "Reader",
        // At the root scope: it may read the lab (its status included).
        "--scope",
        "/",
        "-o",
        "none",
    ]);
    lab.stop_daemon();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        lab.socket().parent().unwrap(),
        std::fs::Permissions::from_mode(0o711),
    )
    .unwrap();
    // uid 4343 acts as reader1; uid 4344 (also in the socket's group) has no entry.
    let map = lab.state_dir().parent().unwrap().join("principals.json");
    std::fs::write(&map, r#"{"uid:4343": ["reader1"]}"#).unwrap();
    lab.start_daemon_with(&[
        ("VNET_AGENT_SOCKET_GROUP", "4242"),
        ("VNET_AGENT_PRINCIPAL_MAP", map.to_str().unwrap()),
    ]);
    let nsg =
        format!("{sub}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/n1");

    // Mapped: reads, but writes as reader1 (not the owner it did not claim).
    let (code, body) = call_as(&lab, "4343", "4242", "GET", "/lab/status", None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = call_as(&lab, "4343", "4242", "PUT", &nsg, None);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("AuthorizationFailed") && body.contains("reader1"),
        "{body}"
    );
    // Claiming the owner is refused: the map does not allow it.
    let (code, body) = call_as(&lab, "4343", "4242", "PUT", &nsg, Some("owner"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("may act as reader1 only"), "{body}");
    // Not in the map: refused, named by uid.
    let (code, body) = call_as(&lab, "4344", "4242", "GET", "/lab/status", None);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("uid 4344"), "{body}");
    // Root may act as anyone: as reader1 the write is refused, as itself it goes.
    let (code, body) = call_as(&lab, "0", "0", "PUT", &nsg, Some("reader1"));
    assert_eq!(code, 403, "{body}");
    let (code, body) = call_as(&lab, "0", "0", "PUT", &nsg, None);
    assert_eq!(code, 200, "{body}");
}
