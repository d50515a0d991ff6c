//! End-to-end test harness: each test owns a lab (a unique name, its own
//! daemon, socket and state directory) inside the sandbox made by
//! `scripts/sandbox.sh`, and everything it started is ended and removed on
//! drop, even when the test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod fixtures;
mod shortcuts;
pub use shortcuts::private_endpoint_create_args;

/// The network namespace inode of the machine's own namespace on this kernel
/// (`PROC_NET_INIT_INO`): a lab is never built there.
const INIT_NET_INODE: u64 = 4026531833;

pub const SUB: &str = "00000000-0000-0000-0000-000000000000";

/// True when end-to-end tests may run here. Outside the sandbox they are
/// skipped, unless `VNET_E2E_REQUIRED=1` (CI), where that is a failure.
pub fn sandboxed() -> bool {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(INIT_NET_INODE);
    let ok =
        std::env::var("VNET_SANDBOX").as_deref() == Ok("1") && inode != INIT_NET_INODE && is_root();
    if !ok {
        if std::env::var("VNET_E2E_REQUIRED").as_deref() == Ok("1") {
            panic!(
                "end-to-end tests are required (VNET_E2E_REQUIRED=1) but this is not a root sandbox: \
                 run them with scripts/test.sh (which uses scripts/sandbox.sh) as root"
            );
        }
        eprintln!("skipped: end-to-end tests run as root under scripts/sandbox.sh");
    }
    ok
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// `target/debug` (or release) of this build: the test binary sits in its `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("deps dir");
    if dir.ends_with("deps") {
        dir.parent().expect("target dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The `vnet-agent` binary under test.
pub fn agent_bin() -> PathBuf {
    std::env::var_os("VNET_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("vnet-agent"))
}

/// The traffic tool.
pub fn probe_bin() -> String {
    bin_dir().join("vnet-probe").to_string_lossy().into_owned()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One lab with its own daemon.
pub struct Lab {
    pub name: String,
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    background: Vec<Child>,
}

impl Lab {
    /// Starts a daemon for a fresh lab; `None` when end-to-end tests are skipped here.
    pub fn start() -> Option<Lab> {
        if !sandboxed() {
            return None;
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("e{:04x}{n:02}", std::process::id() & 0xffff);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lab = Lab {
            name,
            dir,
            daemon: None,
            background: Vec::new(),
        };
        lab.start_daemon();
        Some(lab)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The CLI with this lab's environment (lab name, socket, state directory).
    pub fn command(&self) -> Command {
        let mut c = Command::new(agent_bin());
        c.env("VNET_AGENT_LAB", &self.name)
            .env("VNET_AGENT_SOCKET", self.socket())
            .env("VNET_AGENT_STATE_DIR", self.state_dir());
        c
    }

    /// Starts the daemon and waits until its socket answers.
    pub fn start_daemon(&mut self) {
        self.start_daemon_with(&[]);
    }

    /// Like [`Lab::start_daemon`], with extra environment (daemon options
    /// that have an environment variable, e.g. `VNET_AGENT_METRICS_PORT`).
    pub fn start_daemon_with(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("daemon log");
        let child = self
            .command()
            .args([
                "serve",
                "--resync-interval",
                "2",
                "--flow-log-interval",
                "1",
            ])
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vnet-agent serve");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // Reads are answered during the first reconcile; tests start
            // from a reconciled lab.
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                let out = self.cli(&["lab", "status"]);
                let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                if status["totals"]["ready"] == true {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.daemon.as_mut().map(|c| c.try_wait()) {
                panic!("daemon exited with {status}: {}", self.daemon_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "daemon did not open its socket in 30 s: {}",
            self.daemon_log()
        );
    }

    /// Stops the daemon with SIGTERM (as a service manager would) and waits for it.
    pub fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: a PID of our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("daemon did not stop on SIGTERM within 10 s");
        }
    }

    /// Kills the daemon with SIGKILL (a crash: no clean-up of its own runs)
    /// and reaps it.
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the daemon this harness started has exited (e.g. after `down`).
    pub fn daemon_exited(&mut self) -> bool {
        match self.daemon.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|c| c.id())
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Runs the CLI and returns its output, whatever the exit code.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run vnet-agent")
    }

    /// METHOD PATH on the API socket with curl, run through `runner` (e.g.
    /// `setpriv --reuid ...`, or nothing): (HTTP status, body).
    pub fn api_call(
        &self,
        runner: &[&str],
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> (u16, String) {
        let mut argv: Vec<String> = runner.iter().map(|s| s.to_string()).collect();
        argv.extend(["curl", "-sS", "-X", method, "--unix-socket"].map(String::from));
        argv.push(self.socket().to_string_lossy().into_owned());
        argv.extend(
            [
                "-H",
                "Content-Type: application/json",
                "-w",
                "\n%{http_code}",
            ]
            .map(String::from),
        );
        for h in headers {
            argv.extend(["-H".to_string(), h.to_string()]);
        }
        if let Some(b) = body {
            argv.extend(["-d".to_string(), b.to_string()]);
        }
        argv.push(format!("http://lab{path}"));
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Runs the CLI, fails the test with its stderr when it fails, returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "vnet-agent {args:?} failed: {}\n{}\n{}\n--- daemon log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            self.daemon_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli_ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Deploys `template` into resource group `rg`; returns the deployment.
    pub fn deploy(&self, rg: &str, template: &Value) -> Value {
        let path = self.dir.path().join(format!(
            "template-{}.json",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, serde_json::to_vec_pretty(template).unwrap()).unwrap();
        self.cli_json(&["deploy", "-g", rg, "-f", path.to_str().unwrap()])
    }

    /// Runs a shell script that calls `vnet-agent` by name (a tutorial with
    /// `az` renamed) against this lab; fails the test with its output when
    /// it fails. Returns stdout.
    pub fn run_script(&self, script: &std::path::Path, env: &[(&str, &str)]) -> String {
        let bin = agent_bin();
        let path = format!(
            "{}:{}",
            bin.parent().expect("bin dir").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg(script)
            .env("PATH", path)
            .env("VNET_AGENT_LAB", &self.name)
            .env("VNET_AGENT_SOCKET", self.socket())
            .env("VNET_AGENT_STATE_DIR", self.state_dir())
            .envs(env.iter().copied())
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- daemon log ---\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `value` as `name` in the lab's own directory; returns the path.
    pub fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path
    }

    /// `deployment group create` of a template file, as a user runs it.
    pub fn deploy_file(&self, rg: &str, file: &std::path::Path, params: &[&str]) -> Value {
        let mut args = vec![
            "deployment",
            "group",
            "create",
            "-g",
            rg,
            "-f",
            file.to_str().unwrap(),
        ];
        if !params.is_empty() {
            args.push("-p");
            args.extend_from_slice(params);
        }
        self.cli_json(&args)
    }

    pub fn show(&self, id: &str) -> Value {
        self.cli_json(&["resource", "show", "--ids", id])
    }

    /// What Azure-provided DNS answers for `name` (type A) inside VNet `vnet`
    /// of `rg` (`network vnet resolve`): `{status, answers[{name, type, ttl, data}]}`.
    pub fn resolve(&self, rg: &str, vnet: &str, name: &str) -> Value {
        self.cli_json(&[
            "network",
            "vnet",
            "resolve",
            "-g",
            rg,
            "--vnet-name",
            vnet,
            name,
        ])
    }

    /// Runs a program in a lab namespace (`exec --app/--vm/--host ...`) and waits for it.
    pub fn exec(&self, target: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["exec"];
        args.extend_from_slice(target);
        args.push("--");
        args.extend_from_slice(cmd);
        self.cli(&args)
    }

    /// Like `exec`, but the program must succeed; returns its stdout.
    pub fn exec_ok(&self, target: &[&str], cmd: &[&str]) -> String {
        let out = self.exec(target, cmd);
        assert!(
            out.status.success(),
            "exec {target:?} {cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a long-running program in a lab namespace and waits for its first
    /// line of output (servers print `listening ...`). Ended on drop, by PID.
    pub fn spawn(&mut self, target: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["exec"];
        args.extend_from_slice(target);
        args.push("--");
        args.extend_from_slice(cmd);
        let mut child = self
            .command()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn exec");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Report the first line, then keep draining: a server whose stdout
            // pipe closed would die on its next line.
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line.clone());
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                line.clear();
            }
        });
        self.background.push(child);
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        assert!(
            !line.is_empty(),
            "background {cmd:?} in {target:?} printed nothing (did it fail to start?)"
        );
        line
    }

    /// Starts a program in the background without waiting for output.
    pub fn spawn_quiet(&mut self, target: &[&str], cmd: &[&str]) -> &mut Child {
        let mut args = vec!["exec"];
        args.extend_from_slice(target);
        args.push("--");
        args.extend_from_slice(cmd);
        let child = self
            .command()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        self.background.push(child);
        self.background.last_mut().unwrap()
    }

    /// Namespaces of this lab under /run/netns.
    pub fn namespaces(&self) -> Vec<String> {
        lab_namespaces(&self.name)
    }

    /// Sum of the packet counts of every named nft counter in a namespace.
    pub fn counter_packets(&self, netns: &str) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                netns,
                "nft",
                "-j",
                "list",
                "counters",
                "table",
                "inet",
                "vnet_agent",
            ])
            .output()
            .expect("nft");
        assert!(
            out.status.success(),
            "nft list counters in {netns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("nft json");
        v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("counter"))
            .filter_map(|c| c["packets"].as_u64())
            .sum()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.background {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.daemon.is_some() {
            let _ = self.cli(&["down", "--purge"]);
            if let Some(mut d) = self.daemon.take() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && matches!(d.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = d.kill();
                let _ = d.wait();
            }
        }
        // Whatever a failed test left: the offline teardown by lab prefix.
        if !lab_namespaces(&self.name).is_empty() {
            let _ = self.cli(&["down", "--purge"]);
        }
        // A daemon stopped without `down` keeps its lab's (empty) cgroup, as
        // a service restart must; the test's lab is gone, so is that. rmdir
        // only removes empty cgroups: a process still in one keeps it.
        for root in [
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/memory",
        ] {
            let _ = std::fs::remove_dir(format!("{root}/vnet-agent/{}", self.name));
        }
    }
}

/// Namespaces under /run/netns whose name starts with `<lab>-`.
pub fn lab_namespaces(lab: &str) -> Vec<String> {
    let prefix = format!("{lab}-");
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.retain(|n| n.starts_with(&prefix));
    v.sort();
    v
}

/// Mount points under /run/netns that belong to a lab.
pub fn lab_mounts(lab: &str) -> Vec<String> {
    let needle = format!("/run/netns/{lab}-");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// Whether the running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Builds full ARM ids in the default subscription.
pub fn id(rg: &str, ty: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/{ty}/{name}")
}

/// The lab most tests use: VNet `vnet1` 10.0.0.0/16 with a delegated
/// `integration` subnet 10.0.1.0/24 and a `vms` subnet 10.0.2.0/24; a Linux
/// Premium v3 plan `plan1` with `capacity` instances; `web1` (route-all off)
/// and `web2` (route-all on) integrated; VM `vm1` at 10.0.2.4; internet host
/// `host1` at 198.18.100.10.
pub fn basic_template(rg: &str, capacity: u32) -> Value {
    let subnet = |s: &str| {
        format!(
            "{}/subnets/{s}",
            id(rg, "Microsoft.Network/virtualNetworks", "vnet1")
        )
    };
    let site = |name: &str, route_all: bool| {
        json!({
            "type": "Microsoft.Web/sites", "apiVersion": "2022-09-01", "name": name,
            "location": "westeurope", "kind": "app,linux",
            "properties": {
                "serverFarmId": id(rg, "Microsoft.Web/serverfarms", "plan1"),
                "virtualNetworkSubnetId": subnet("integration"),
                "siteConfig": { "vnetRouteAllEnabled": route_all, "appCommandLine": "sleep 100000" }
            }
        })
    };
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "vnet1",
                "location": "westeurope",
                "properties": {
                    "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                    "subnets": [
                        { "name": "integration", "properties": { "addressPrefix": "10.0.1.0/24",
                          "delegations": [{ "name": "delegation", "properties": { "serviceName": "Microsoft.Web/serverFarms" } }] } },
                        { "name": "vms", "properties": { "addressPrefix": "10.0.2.0/24" } }
                    ]
                }
            },
            {
                "type": "Microsoft.Web/serverfarms", "apiVersion": "2022-09-01", "name": "plan1",
                "location": "westeurope", "kind": "linux",
                "sku": { "name": "P1v3", "tier": "PremiumV3", "capacity": capacity },
                "properties": { "reserved": true }
            },
            site("web1", false),
            site("web2", true),
            {
                "type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-04-01", "name": "vm1-nic",
                "location": "westeurope",
                "properties": { "ipConfigurations": [{ "name": "ipconfig1", "properties": {
                    "subnet": { "id": subnet("vms") },
                    "privateIPAllocationMethod": "Static", "privateIPAddress": "10.0.2.4" } }] }
            },
            {
                "type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-03-01", "name": "vm1",
                "location": "westeurope",
                "properties": { "networkProfile": { "networkInterfaces": [
                    { "id": id(rg, "Microsoft.Network/networkInterfaces", "vm1-nic") } ] } }
            },
            {
                "type": "Lab.Emulator/internetHosts", "apiVersion": "2024-01-01", "name": "host1",
                "location": "westeurope", "properties": { "ipAddress": "198.18.100.10" }
            }
        ]
    })
}

/// The source address a probe server reported (`peer=IP:PORT`).
pub fn peer_ip(line: &str) -> String {
    line.lines()
        .find_map(|l| l.trim().strip_prefix("peer="))
        .and_then(|p| p.rsplit_once(':').map(|(ip, _)| ip.to_string()))
        .unwrap_or_else(|| panic!("no peer= line in {line:?}"))
}

/// `kernel_writes` of a reconcile report, whatever its casing.
pub fn kernel_writes(report: &Value) -> u64 {
    report
        .get("kernel_writes")
        .or_else(|| report.get("kernelWrites"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no kernel_writes in {report}"))
}

impl Lab {
    /// A background program started by `spawn_quiet`, by PID.
    pub fn background_child(&mut self, pid: u32) -> &mut Child {
        self.background
            .iter_mut()
            .find(|c| c.id() == pid)
            .expect("no such background program")
    }

    /// Waits (at most `secs`) for a background program to finish; returns its
    /// exit status and everything it printed. Fails the test on time-out.
    pub fn wait_background(&mut self, pid: u32, secs: u64) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Ok(Some(s)) = self.background_child(pid).try_wait() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "background program {pid} did not finish in {secs} s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        (status, self.background_output(pid))
    }

    /// Everything a finished background program printed (stdout and stderr).
    pub fn background_output(&mut self, pid: u32) -> String {
        use std::io::Read;
        let c = self.background_child(pid);
        let mut s = String::new();
        if let Some(mut o) = c.stdout.take() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

/// Everything the kernel holds for a lab, as text: links, addresses, routes of
/// every table, rules, sysctls that matter, and the nft table of each
/// namespace. Two equal snapshots mean nothing was changed.
pub fn kernel_snapshot(lab: &str) -> String {
    let mut out = String::new();
    for ns in lab_namespaces(lab) {
        out.push_str(&format!("### {ns}\n"));
        for args in [
            vec!["-n", &ns, "-o", "link"],
            vec!["-n", &ns, "-o", "addr"],
            vec!["-n", &ns, "route", "show", "table", "all"],
            vec!["-n", &ns, "rule"],
        ] {
            let o = Command::new("ip").args(&args).output().expect("ip");
            // Operational state (carrier, UNKNOWN -> UP) settles asynchronously
            // after a link is created; it is not configuration.
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                let words: Vec<&str> = line.split(' ').collect();
                let mut kept = Vec::with_capacity(words.len());
                let mut skip = false;
                for w in words {
                    if skip {
                        skip = false;
                        continue;
                    }
                    if w == "state" {
                        skip = true;
                        continue;
                    }
                    kept.push(w.replace("NO-CARRIER,", "").replace(",LOWER_UP", ""));
                }
                out.push_str(&kept.join(" "));
                out.push('\n');
            }
        }
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "nft",
                "list",
                "table",
                "inet",
                "vnet_agent",
            ])
            .output()
            .expect("nft");
        // Counters count traffic, not configuration.
        let nft = String::from_utf8_lossy(&o.stdout);
        for line in nft.lines() {
            let cleaned: String = match line.find("packets") {
                Some(i) => line[..i].to_string(),
                None => line.to_string(),
            };
            out.push_str(&cleaned);
            out.push('\n');
        }
    }
    out
}

/// The committed state file of a lab, byte for byte.
pub fn store_bytes(lab: &Lab) -> Vec<u8> {
    std::fs::read(lab.state_dir().join("state.json")).unwrap_or_default()
}

impl Lab {
    /// Runs a CLI command that Azure would refuse; checks that it failed with
    /// `code`, and that neither the kernel nor the store changed. Returns stderr.
    pub fn refused(&self, args: &[&str], code: &str) -> String {
        let store = store_bytes(self);
        let kernel = kernel_snapshot(&self.name);
        let out = self.cli(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "vnet-agent {args:?} was accepted; Azure refuses it with {code}"
        );
        assert!(
            err.contains(&format!("({code})")),
            "vnet-agent {args:?}: expected ({code}), got: {err}"
        );
        assert_eq!(
            store,
            store_bytes(self),
            "a refused {args:?} changed the store"
        );
        let after = kernel_snapshot(&self.name);
        assert!(
            kernel == after,
            "a refused {args:?} changed the kernel:\n{}",
            diff(&kernel, &after)
        );
        err
    }

    /// Deploys a template that must be refused with `code`, changing nothing.
    pub fn deploy_refused(&self, rg: &str, template: &Value, code: &str) -> String {
        let path = self.dir.path().join(format!(
            "refused-{}.json",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, serde_json::to_vec_pretty(template).unwrap()).unwrap();
        self.refused(&["deploy", "-g", rg, "-f", path.to_str().unwrap()], code)
    }

    /// PID of the supervised process of `site` (name) on `instance`.
    pub fn app_pid(&self, site: &str, instance: u32) -> u32 {
        let status = self.cli_json(&["lab", "status"]);
        let suffix = format!("/sites/{}/instances/{instance}", site.to_ascii_lowercase());
        status["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .find(|p| {
                p["key"]
                    .as_str()
                    .unwrap_or("")
                    .to_ascii_lowercase()
                    .ends_with(&suffix)
                    && p["running"] == true
            })
            .and_then(|p| p["pid"].as_u64())
            .unwrap_or_else(|| panic!("no running process for {site}/{instance}: {status}"))
            as u32
    }
}

/// The environment of a running process.
pub fn process_env(pid: u32) -> std::collections::BTreeMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut out = String::new();
    for l in &a {
        if !b.contains(l) {
            out.push_str(&format!("- {l}\n"));
        }
    }
    for l in &b {
        if !a.contains(l) {
            out.push_str(&format!("+ {l}\n"));
        }
    }
    out
}

/// xorshift64*: the random choices of a test, reproducible from a seed it
/// prints ([`seed_from_env`]).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// The seed in `var` (to replay a run), else one from the clock; printed
/// either way, so a failure can be replayed.
pub fn seed_from_env(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("{var}={seed}");
    seed
}
