//! Crash consistency: the daemon is SIGKILLed at a random point of a deploy,
//! a scale, an NSG change, a delete or `down`, then restarted. After each
//! kill:
//! - the committed state is all or nothing of the change;
//! - the kernel equals the plan of the committed state: an audit (every
//!   namespace read back and compared) writes nothing more, and the lab's
//!   namespaces are exactly the ones the audit examined;
//! - app processes run once each (counted in the kernel, not in the
//!   daemon's own list), every one the daemon reports alive;
//! - established TCP flows through the lab (from a VM, and from a Route
//!   All app the operation keeps, to an internet host) lived through the
//!   kill and the restart;
//! - `down` then leaves no namespace, link, mount or process behind.
//!
//! `VNET_CHAOS_TRIALS` (default 10: the short form `.ci/run` runs) and
//! `VNET_CHAOS_SEED` (printed, to replay a run); `cargo xtask chaos` runs 100.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vnet_e2e::{basic_template, id, lab_mounts, lab_namespaces, probe_bin, Lab, Rng};

const RG: &str = "chaos";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Deploy,
    Scale,
    NsgChange,
    Delete,
    Down,
}

const OPERATIONS: [Operation; 5] = [
    Operation::Deploy,
    Operation::Scale,
    Operation::NsgChange,
    Operation::Delete,
    Operation::Down,
];

/// How long each operation took the last time it ran to the end, so kills
/// land inside it rather than after it.
struct Durations([u64; 5]);

impl Durations {
    fn of(&self, op: Operation) -> u64 {
        self.0[op as usize]
    }

    fn saw(&mut self, op: Operation, ms: u64) {
        self.0[op as usize] = ms;
    }
}

#[test]
fn the_daemon_survives_sigkill_at_any_point() {
    if !vnet_e2e::sandboxed() {
        return;
    }
    let trials: usize = std::env::var("VNET_CHAOS_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    eprintln!("chaos: {trials} trial(s)");
    let seed = vnet_e2e::seed_from_env("VNET_CHAOS_SEED");
    let mut rng = Rng(seed);
    let mut durations = Durations([800, 200, 150, 200, 400]);
    let links_before = root_links();
    let mut mid_operation = 0;
    // To replay one kind at one point: VNET_CHAOS_ONLY=Scale VNET_CHAOS_DELAY_MS=109.
    let only = std::env::var("VNET_CHAOS_ONLY").ok();
    let fixed_delay: Option<u64> = std::env::var("VNET_CHAOS_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    let operations: Vec<Operation> = OPERATIONS
        .into_iter()
        .filter(|op| {
            only.as_deref()
                .is_none_or(|o| format!("{op:?}").eq_ignore_ascii_case(o))
        })
        .collect();
    assert!(!operations.is_empty(), "VNET_CHAOS_ONLY names no operation");
    for t in 0..trials {
        let op = operations[t % operations.len()];
        let delay = rng.below(durations.of(op) + 1);
        let delay = fixed_delay.unwrap_or(delay);
        let outcome = trial(op, t, delay, &mut durations);
        if !outcome.finished {
            mid_operation += 1;
        }
        eprintln!(
            "chaos: trial {:>3} {:<10} killed at {:>5} ms ({}): ok",
            t + 1,
            format!("{op:?}"),
            delay,
            if outcome.finished {
                "after it answered"
            } else {
                "while it ran"
            },
        );
        assert_eq!(
            root_links(),
            links_before,
            "trial {} left links in the sandbox's own namespace",
            t + 1
        );
    }
    eprintln!(
        "chaos: {trials} of {trials} trials passed; {mid_operation} killed while the operation ran"
    );
}

struct Outcome {
    /// The operation answered before the kill.
    finished: bool,
}

fn trial(op: Operation, t: usize, delay_ms: u64, durations: &mut Durations) -> Outcome {
    let mut lab = Lab::start().expect("sandboxed");
    let ctx = format!("trial {} ({op:?}, kill at {delay_ms} ms)", t + 1);
    if op != Operation::Deploy {
        lab.deploy(RG, &basic_template(RG, 2));
        nsg_on_vms_subnet(&lab);
    }
    // Established flows through the lab, held across the kill (not for a
    // deploy from nothing, nor `down`, which removes their path): from the
    // VM, and from web2 (Route All) where the operation keeps its instance
    // (a scale replaces every instance, as Azure's does, so it ends web2's).
    let mut flows = Vec::new();
    if matches!(
        op,
        Operation::Scale | Operation::NsgChange | Operation::Delete
    ) {
        let probe = probe_bin();
        lab.spawn(&["--host", "host1"], &[&probe, "serve-tcp", "8080"]);
        let mut from: Vec<[&str; 2]> = vec![["--vm", "vm1"]];
        if op != Operation::Scale {
            from.push(["--app", "web2"]);
        }
        for f in from {
            let hold = lab.spawn_quiet(&f, &[&probe, "hold", "198.18.100.10", "8080", "40", "100"]);
            flows.push((f[1], hold.id()));
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let before = Before::read(&lab, op);
    // web2's apps, which an NSG change or web1's delete leaves alone: the
    // restarted daemon adopts them, it does not start them again.
    let kept_apps = if matches!(op, Operation::NsgChange | Operation::Delete) {
        web2_pids(&lab)
    } else {
        Vec::new()
    };
    let mut inodes = namespace_inodes(&lab.name);

    // The operation, and the kill at `delay_ms` into it.
    let template = lab.write_json("chaos.json", &basic_template(RG, 2));
    let args: Vec<String> = match op {
        Operation::Deploy => vec![
            "deploy".into(),
            "-g".into(),
            RG.into(),
            "-f".into(),
            template.display().to_string(),
        ],
        Operation::Scale => "appservice plan update -g chaos -n plan1 --number-of-workers 4"
            .split(' ')
            .map(String::from)
            .collect(),
        Operation::NsgChange => {
            "network nsg rule create -g chaos --nsg-name nsg1 -n deny-ssh --priority 200 \
             --direction Inbound --access Deny --protocol Tcp --source-address-prefixes * \
             --source-port-ranges * --destination-address-prefixes * --destination-port-ranges 22"
                .split_whitespace()
                .map(String::from)
                .collect()
        }
        Operation::Delete => vec![
            "resource".into(),
            "delete".into(),
            "--ids".into(),
            id(RG, "Microsoft.Web/sites", "web1"),
        ],
        Operation::Down => vec!["down".into()],
    };
    let started = Instant::now();
    let mut client: Child = lab
        .command()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the operation");
    // Wait for the kill point, noting when the operation answers if it
    // does first: the next kill of this kind lands within that time.
    let kill_at = started + Duration::from_millis(delay_ms);
    let mut finished = false;
    while Instant::now() < kill_at {
        if !finished && matches!(client.try_wait(), Ok(Some(_))) {
            finished = true;
            durations.saw(op, started.elapsed().as_millis() as u64);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    lab.kill_daemon();

    // A `down` that ended stopped the daemon and took the kernel side away:
    // nothing of the lab may be left. Either way the daemon starts again
    // from the committed state, as systemd would start it.
    if op == Operation::Down && finished {
        assert_nothing_left(&lab, &ctx, &inodes);
    }
    std::thread::sleep(Duration::from_millis(200));
    lab.start_daemon();

    // The client learns what happened: its answer, or, when the kill took
    // its connection, the resource's real state once the daemon is back;
    // never a bare transport error.
    let answer = client.wait_with_output().expect("the operation's client");
    let err = String::from_utf8_lossy(&answer.stderr);
    assert!(
        answer.status.success()
            || err.contains("(ConnectionLost)")
            // Killed before the client connected: nothing was sent.
            || err.contains("cannot reach the vnet-agent daemon")
            || (op == Operation::Down && !finished),
        "{ctx}: the client was left without an answer: {err}"
    );

    // All or nothing of the change.
    before.check_committed(&lab, op, &ctx);

    // The kernel equals the plan of the committed state.
    let audit = lab.cli_json(&["lab", "reconcile"]);
    let report = &audit["reconcile"];
    assert_eq!(
        vnet_e2e::kernel_writes(report),
        0,
        "{ctx}: the restarted daemon's audit still had to write: {audit}\n{}",
        lab.daemon_log()
    );
    let examined = report["namespaces_examined"]
        .as_u64()
        .or(report["namespacesExamined"].as_u64())
        .expect("namespaces examined");
    let namespaces = lab_namespaces(&lab.name);
    assert_eq!(
        examined as usize,
        namespaces.len(),
        "{ctx}: the lab has namespaces the plan doesn't: {namespaces:?}"
    );

    // App processes once each.
    inodes.extend(namespace_inodes(&lab.name));
    let status = lab.cli_json(&["lab", "status"]);
    let reported: Vec<&Value> = status["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["key"].as_str().unwrap_or("").contains("/sites/"))
        .collect();
    for p in &reported {
        assert_eq!(p["running"], true, "{ctx}: an app is not running: {p}");
        let pid = p["pid"].as_u64().expect("pid") as u32;
        assert!(vnet_e2e::pid_alive(pid), "{ctx}: app {p} is not alive");
    }
    let apps = app_processes(&inodes);
    assert_eq!(
        apps.len(),
        expected_apps(&lab),
        "{ctx}: app processes in the kernel {apps:?}, the daemon reports {reported:?}"
    );
    assert_eq!(apps.len(), reported.len(), "{ctx}: {reported:?}");

    if !kept_apps.is_empty() {
        assert_eq!(
            web2_pids(&lab),
            kept_apps,
            "{ctx}: web2's apps were started again by the restart"
        );
    }

    // The established flows lived through it.
    for (from, pid) in flows {
        let (status, out) = lab.wait_background(pid, 30);
        assert!(
            status.success() && out.contains("held 40"),
            "{ctx}: the established flow from {from} broke across the kill and restart: {out}"
        );
    }

    // `down` leaves nothing.
    let down = lab.cli(&["down"]);
    assert!(down.status.success(), "{ctx}: down failed: {down:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab.daemon_exited() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lab.daemon_exited(), "{ctx}: down did not stop the daemon");
    assert_nothing_left(&lab, &ctx, &inodes);
    // Drop forgets the state (down --purge with no daemon: offline).
    Outcome { finished }
}

/// PIDs of web2's instances, as the daemon reports them.
fn web2_pids(lab: &Lab) -> Vec<u64> {
    let status = lab.cli_json(&["lab", "status"]);
    status["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["key"].as_str().unwrap_or("").contains("/sites/web2/"))
        .filter_map(|p| p["pid"].as_u64())
        .collect()
}

/// NSG `nsg1` on the `vms` subnet, for the NSG trial's rule.
fn nsg_on_vms_subnet(lab: &Lab) {
    lab.cli_ok(&["network", "nsg", "create", "-g", RG, "-n", "nsg1"]);
    lab.cli_ok(&[
        "network",
        "vnet",
        "subnet",
        "update",
        "-g",
        RG,
        "--vnet-name",
        "vnet1",
        "-n",
        "vms",
        "--network-security-group",
        "nsg1",
    ]);
}

/// What the committed state held before the operation.
struct Before {
    rules: usize,
}

impl Before {
    fn read(lab: &Lab, op: Operation) -> Before {
        let rules = if op == Operation::NsgChange {
            nsg_rules(lab)
        } else {
            0
        };
        Before { rules }
    }

    fn check_committed(&self, lab: &Lab, op: Operation, ctx: &str) {
        match op {
            Operation::Deploy => {
                // Either nothing (the deployment never committed) or all of it.
                let list = lab.cli_json(&["resource", "list", "-g", RG]);
                let n = list.as_array().map_or(0, Vec::len);
                assert!(
                    n == 0 || n >= 7,
                    "{ctx}: a deployment committed in part ({n} resources): {list}"
                );
                if n == 0 {
                    // What a user does next: deploy again.
                    lab.deploy(RG, &basic_template(RG, 2));
                }
            }
            Operation::Scale => {
                let c = capacity(lab);
                assert!(c == 2 || c == 4, "{ctx}: capacity {c}");
            }
            Operation::NsgChange => {
                let n = nsg_rules(lab);
                assert!(
                    n == self.rules || n == self.rules + 1,
                    "{ctx}: {n} rules, {} before",
                    self.rules
                );
            }
            Operation::Delete | Operation::Down => {}
        }
    }
}

fn capacity(lab: &Lab) -> u64 {
    let plan = lab.show(&id(RG, "Microsoft.Web/serverfarms", "plan1"));
    plan["sku"]["capacity"].as_u64().expect("capacity")
}

fn nsg_rules(lab: &Lab) -> usize {
    let nsg = lab.show(&id(RG, "Microsoft.Network/networkSecurityGroups", "nsg1"));
    nsg["properties"]["securityRules"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Instances × sites the committed state asks for.
fn expected_apps(lab: &Lab) -> usize {
    let list = lab.cli_json(&["resource", "list", "-g", RG]);
    let sites = list.as_array().map_or(0, |a| {
        a.iter()
            .filter(|r| {
                r["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Web/sites"))
            })
            .count()
    });
    if sites == 0 {
        return 0;
    }
    capacity(lab) as usize * sites
}

/// Network namespace inodes of the lab's namespaces.
fn namespace_inodes(lab: &str) -> BTreeSet<u64> {
    lab_namespaces(lab)
        .iter()
        .filter_map(|n| std::fs::metadata(format!("/run/netns/{n}")).ok())
        .map(|m| m.ino())
        .collect()
}

/// Processes whose network namespace is one of `inodes`.
fn processes_in(inodes: &BTreeSet<u64>) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(ns) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if inodes.contains(&ns.ino()) && vnet_e2e::pid_alive(pid) {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            out.push((pid, cmd));
        }
    }
    out
}

/// The lab's app processes (`sleep 100000`, `basic_template`'s app).
fn app_processes(inodes: &BTreeSet<u64>) -> Vec<(u32, String)> {
    processes_in(inodes)
        .into_iter()
        .filter(|(_, cmd)| cmd.trim() == "sleep 100000")
        .collect()
}

fn assert_nothing_left(lab: &Lab, ctx: &str, inodes: &BTreeSet<u64>) {
    assert_eq!(
        lab_namespaces(&lab.name),
        Vec::<String>::new(),
        "{ctx}: namespaces left after down"
    );
    assert_eq!(
        lab_mounts(&lab.name),
        Vec::<String>::new(),
        "{ctx}: mounts left after down"
    );
    // Processes still inside one of the lab's namespaces keep it alive
    // without its name: the test's own flow programs were ended with
    // their namespace's path, so anything here is the lab's.
    let left: Vec<(u32, String)> = processes_in(inodes)
        .into_iter()
        .filter(|(pid, _)| !is_test_program(*pid))
        .collect();
    assert!(
        left.is_empty(),
        "{ctx}: processes left after down: {left:?}"
    );
}

/// The test's own programs (`vnet-agent exec ... vnet-probe`), ended on drop.
fn is_test_program(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("vnet-probe"))
        .unwrap_or(false)
}

/// Links of the sandbox's own namespace, by name.
fn root_links() -> Vec<String> {
    let o = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip");
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect();
    v.sort();
    v
}
