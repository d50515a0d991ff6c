//! `cargo xtask bench`: deploy time of the agent against a shell script that
//! builds the same namespaces, links, addresses, routes, rules and nft tables
//! with `ip` and `nft`, for 1, 10 and 100 plan instances, run alternately in
//! one run; plus the daemon's peak memory.
//!
//! Then the template section (`template_bench.rs`): evaluating, validating
//! and planning a 500-resource template of copy loops against the same
//! resources written out.
//!
//! Then the datapath section (`datapath.rs`): throughput and latency from an
//! app to a VM against a direct veth pair.
//!
//! Then the DNS section (`dns_bench.rs`) and the BGP convergence section
//! (`bgp_bench.rs`).
//!
//! Everything runs inside `scripts/sandbox.sh` (fresh net and mount
//! namespaces): the machine's own network is never touched.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use vnet_agent::model::{LabConfig, LabState};
use vnet_agent::plan::NetworkPlan;
use vnet_agent::template::{DeploymentRequest, DEFAULT_SUBSCRIPTION};

use crate::baseline;
use crate::datapath;
use crate::run::{output, tail, timed_ok};
use crate::stats::median;

/// `PROC_NET_INIT_INO`: the machine's own network namespace on this kernel.
const INIT_NET_INODE: u64 = 4026531833;
/// (plan instances, rounds).
const FULL: &[(u32, usize)] = &[(1, 3), (10, 3), (100, 2)];
const QUICK: &[(u32, usize)] = &[(1, 1), (10, 1)];
const GOAL_INSTANCES: u32 = 100;
const GOAL_SPEEDUP: f64 = 5.0;
const RESOURCE_GROUP: &str = "bench";
/// Time limits: any one build (script or deploy), a teardown, the daemon's start.
pub(crate) const BUILD_LIMIT: Duration = Duration::from_secs(120);
pub(crate) const TEARDOWN_LIMIT: Duration = Duration::from_secs(60);
pub(crate) const START_LIMIT: Duration = Duration::from_secs(30);

pub struct Options {
    pub quick: bool,
    /// Only the datapath section.
    pub datapath_only: bool,
    /// The datapath section's lab without NSGs.
    pub no_nsg: bool,
    /// Only the DNS section (`dns_bench.rs`).
    pub dns_only: bool,
    /// Only the BGP convergence section (`bgp_bench.rs`); with `dns_only`,
    /// both.
    pub bgp_only: bool,
    /// Only issue 15's table at 100 and 1,000 instances (`scale.rs`).
    pub scale: bool,
    /// Only the template section (`template_bench.rs`): no kernel, no sandbox.
    pub template_only: bool,
    /// Set on the re-run inside the sandbox.
    pub in_sandbox: bool,
}

pub fn run(opts: &Options) -> Result<ExitCode> {
    let root = workspace_root();
    if opts.template_only {
        crate::template_bench::measure(if opts.quick { 3 } else { 9 })?;
        return Ok(ExitCode::SUCCESS);
    }
    let sandboxed = std::env::var("VNET_SANDBOX").as_deref() == Ok("1");
    let only = opts.dns_only || opts.bgp_only || opts.scale;
    if !opts.in_sandbox {
        if !only {
            datapath::preflight()?;
        }
        if opts.bgp_only || !(only || opts.datapath_only) {
            crate::bgp_bench::preflight()?;
        }
        build_release(&root, sandboxed)?;
        if !sandboxed {
            return rerun_in_sandbox(&root, opts);
        }
    }
    ensure_sandbox()?;
    if opts.scale {
        crate::scale::run(&root)?;
        return Ok(ExitCode::SUCCESS);
    }
    if only {
        if opts.dns_only {
            crate::dns_bench::run(&root, opts.quick)?;
        }
        if opts.bgp_only {
            crate::bgp_bench::run(&root, opts.quick)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !opts.datapath_only {
        measure(&root, opts.quick)?;
    }
    datapath::run(
        &root,
        &datapath::Options {
            quick: opts.quick,
            no_nsg: opts.no_nsg,
        },
    )?;
    if !opts.datapath_only {
        crate::dns_bench::run(&root, opts.quick)?;
        crate::bgp_bench::run(&root, opts.quick)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn build_release(root: &Path, offline: bool) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // xtask too: the datapath section runs its latency tester in the lab.
    cmd.args(["build", "--release", "-p", "vnet-agent", "-p", "xtask"])
        .current_dir(root);
    if offline {
        // A sandbox has no network.
        cmd.arg("--offline");
    }
    eprintln!("bench: cargo build --release -p vnet-agent -p xtask");
    let status = cmd.status().context("running cargo")?;
    ensure!(status.success(), "cargo build --release failed ({status})");
    Ok(())
}

fn rerun_in_sandbox(root: &Path, opts: &Options) -> Result<ExitCode> {
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let mut cmd = Command::new(root.join("scripts/sandbox.sh"));
    cmd.arg(me).args(["bench", "--in-sandbox"]);
    for (set, flag) in [
        (opts.quick, "--quick"),
        (opts.datapath_only, "--datapath-only"),
        (opts.no_nsg, "--no-nsg"),
        (opts.dns_only, "--dns-only"),
        (opts.bgp_only, "--bgp-only"),
        (opts.scale, "--scale"),
    ] {
        if set {
            cmd.arg(flag);
        }
    }
    let status = cmd.status().context("running scripts/sandbox.sh")?;
    match status.code() {
        Some(0) => Ok(ExitCode::SUCCESS),
        Some(77) => bail!("the benchmark needs root (network namespaces): run it as root"),
        // The run inside has said what failed.
        _ => Ok(ExitCode::FAILURE),
    }
}

/// Refuses to build anything in the machine's own network namespace.
fn ensure_sandbox() -> Result<()> {
    let inode = std::fs::metadata("/proc/self/ns/net")
        .context("reading /proc/self/ns/net")?
        .ino();
    ensure!(
        std::env::var("VNET_SANDBOX").as_deref() == Ok("1") && inode != INIT_NET_INODE,
        "refusing to measure outside a sandbox (VNET_SANDBOX=1 and a network namespace \
         of its own): run `cargo xtask bench`, which uses scripts/sandbox.sh"
    );
    Ok(())
}

/// Most instances one App Service plan may have (Premium v3; the agent's
/// validation refuses more, as Azure does).
const MAX_PLAN_CAPACITY: u32 = 30;

/// Plan capacities that add up to `instances`: one plan when it fits, else
/// the fewest plans of (nearly) equal size.
fn plan_capacities(instances: u32) -> Vec<u32> {
    let plans = instances.div_ceil(MAX_PLAN_CAPACITY).max(1);
    (0..plans)
        .map(|k| instances / plans + u32::from(k < instances % plans))
        .collect()
}

/// The measured template for `instances` plan instances: VNet 10.0.0.0/16
/// with a `vms` subnet and, per Linux P1v3 plan, a delegated integration
/// subnet 10.0.k.0/24 (one plan per subnet, as Azure requires) and one
/// integrated site with route-all on and no process; one internet host.
/// Up to 30 instances this is one plan and one site.
pub fn template(instances: u32) -> Value {
    let rg = RESOURCE_GROUP;
    let id = |ty: &str, name: &str| {
        format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{rg}/providers/{ty}/{name}")
    };
    let vnet_id = id("Microsoft.Network/virtualNetworks", "vnet1");
    let capacities = plan_capacities(instances);
    let mut subnets: Vec<Value> = (0..capacities.len())
        .map(|k| {
            json!({ "name": format!("integration{}", k + 1), "properties": {
                "addressPrefix": format!("10.0.{k}.0/24"),
                "delegations": [{ "name": "delegation", "properties": { "serviceName": "Microsoft.Web/serverFarms" } }] } })
        })
        .collect();
    subnets.push(json!({ "name": "vms", "properties": { "addressPrefix": "10.0.200.0/24" } }));
    let mut resources = vec![json!({
        "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-04-01", "name": "vnet1",
        "location": "westeurope",
        "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": subnets }
    })];
    for (k, capacity) in capacities.iter().enumerate() {
        let plan = format!("plan{}", k + 1);
        resources.push(json!({
            "type": "Microsoft.Web/serverfarms", "apiVersion": "2022-09-01", "name": plan,
            "location": "westeurope", "kind": "linux",
            "sku": { "name": "P1v3", "tier": "PremiumV3", "capacity": capacity },
            "properties": { "reserved": true }
        }));
        resources.push(json!({
            "type": "Microsoft.Web/sites", "apiVersion": "2022-09-01", "name": format!("web{}", k + 1),
            "location": "westeurope", "kind": "app,linux",
            "properties": {
                "serverFarmId": id("Microsoft.Web/serverfarms", &plan),
                "virtualNetworkSubnetId": format!("{vnet_id}/subnets/integration{}", k + 1),
                "siteConfig": { "vnetRouteAllEnabled": true }
            }
        }));
    }
    resources.push(json!({
        "type": "Lab.Emulator/internetHosts", "apiVersion": "2024-01-01", "name": "host1",
        "location": "westeurope", "properties": { "ipAddress": "198.18.100.10" }
    }));
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": resources,
    })
}

/// The plan the agent would build for `template` in a fresh lab named `lab`,
/// computed with the agent's own library.
pub fn plan_for(template: &Value, lab: &str) -> Result<NetworkPlan> {
    let config = LabConfig {
        name: lab.to_string(),
        ..LabConfig::default()
    };
    let req = DeploymentRequest {
        subscription: DEFAULT_SUBSCRIPTION.to_string(),
        resource_group: RESOURCE_GROUP.to_string(),
        template: template.clone(),
        parameters: BTreeMap::new(),
        ..Default::default()
    };
    let resources = vnet_agent::template::expand(&req)?;
    let state = vnet_agent::validate::apply_resources(
        &LabState::default(),
        resources,
        &config,
        &vnet_agent::validate::RequestContext::default(),
    )?;
    let plan = vnet_agent::plan::build(&state, &config);
    ensure!(
        !plan.namespaces.is_empty(),
        "the agent's plan of the benchmark template is empty: does this build have the \
         template, validate and plan modules (not their stubs)?"
    );
    Ok(plan)
}

/// Kernel objects of one lab, counted with `ip` and `nft`: the check that the
/// script and the agent built the same thing.
#[derive(Debug, Default, Clone, PartialEq)]
struct Census {
    namespaces: usize,
    links: usize,
    addresses: usize,
    routes: usize,
    rules: usize,
    nft_rules: usize,
}

impl Census {
    fn take(lab: &str) -> Result<Census> {
        let json = |cmd: &mut Command| -> Result<Vec<Value>> {
            let v: Value = serde_json::from_str(&output(cmd)?).context("ip -j output")?;
            Ok(v.as_array().cloned().unwrap_or_default())
        };
        let mut c = Census::default();
        for ns in lab_namespaces(lab) {
            let ip = |args: &[&str]| {
                let mut cmd = Command::new("ip");
                cmd.args(["-n", &ns, "-j"]).args(args);
                cmd
            };
            c.namespaces += 1;
            c.links += json(&mut ip(&["link", "show"]))?.len();
            c.addresses += json(&mut ip(&["-4", "addr", "show"]))?
                .iter()
                .map(|i| i["addr_info"].as_array().map_or(0, Vec::len))
                .sum::<usize>();
            c.routes += json(&mut ip(&["-4", "route", "show", "table", "all"]))?.len();
            c.rules += json(&mut ip(&["-4", "rule", "show"]))?.len();
            let ruleset: Value = serde_json::from_str(&output(
                Command::new("ip").args(["netns", "exec", &ns, "nft", "-j", "list", "ruleset"]),
            )?)?;
            c.nft_rules += ruleset["nftables"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|o| o.get("rule").is_some()).count());
        }
        Ok(c)
    }

    fn to_json(&self) -> Value {
        json!({
            "namespaces": self.namespaces, "links": self.links, "addresses": self.addresses,
            "routes": self.routes, "rules": self.rules, "nftRules": self.nft_rules,
        })
    }
}

/// Namespaces under /run/netns whose name starts with `<lab>-`.
pub(crate) fn lab_namespaces(lab: &str) -> Vec<String> {
    let prefix = format!("{lab}-");
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Everything measured for one size.
#[derive(Default)]
struct SizeResult {
    instances: u32,
    namespaces: usize,
    veths: usize,
    script_commands: usize,
    script_ms: Vec<f64>,
    agent_ms: Vec<f64>,
    agent_peak_rss_kib: Vec<u64>,
    kernel_writes: Option<u64>,
    /// Phases of the agent's reconcile in its last round (name, ms).
    phases: Vec<(String, f64)>,
    census_script: Option<Census>,
    census_agent: Option<Census>,
}

impl SizeResult {
    fn speedup(&self) -> f64 {
        median(&self.script_ms) / median(&self.agent_ms)
    }
    fn peak_rss_mib(&self) -> f64 {
        self.agent_peak_rss_kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0
    }
}

/// One benchmark run; the working files live in a temporary directory.
struct Bench {
    agent_bin: PathBuf,
    dir: tempfile::TempDir,
    /// Makes every lab name unique, so no run meets the previous one's
    /// still-dying namespaces.
    labs: u32,
    warnings: Vec<String>,
}

fn measure(root: &Path, quick: bool) -> Result<()> {
    let agent_bin = target_dir(root).join("release/vnet-agent");
    ensure!(
        agent_bin.exists(),
        "{} is missing (cargo build --release -p vnet-agent)",
        agent_bin.display()
    );
    let mut bench = Bench {
        agent_bin,
        dir: tempfile::tempdir()?,
        labs: 0,
        warnings: Vec::new(),
    };
    let started = Instant::now();
    let mut results = Vec::new();
    for &(instances, rounds) in if quick { QUICK } else { FULL } {
        results.push(bench.size(instances, rounds)?);
    }
    print_report(&results);
    // Next to the deploy figures: evaluating and planning a 500-resource
    // template written with copy loops, against the same resources flat.
    let template = crate::template_bench::measure(if quick { 3 } else { 9 })?;
    std::fs::write(
        target_dir(root).join("bench/template.json"),
        serde_json::to_vec_pretty(&template)?,
    )
    .or_else(|_| {
        std::fs::create_dir_all(target_dir(root).join("bench"))?;
        std::fs::write(
            target_dir(root).join("bench/template.json"),
            serde_json::to_vec_pretty(&template)?,
        )
    })?;
    for w in &bench.warnings {
        println!("warning: {w}");
    }
    let path = target_dir(root).join("bench/deploy.json");
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report_json(&results, quick, &bench.warnings))?,
    )?;
    println!(
        "wrote {} ({:.0} s in all)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl Bench {
    fn next_lab(&mut self, prefix: char) -> String {
        self.labs += 1;
        format!("{prefix}{:03}", self.labs)
    }

    /// Baseline and agent alternately, `rounds` times each.
    fn size(&mut self, instances: u32, rounds: usize) -> Result<SizeResult> {
        let template = template(instances);
        let template_path = self.dir.path().join(format!("template-{instances}.json"));
        std::fs::write(&template_path, serde_json::to_vec_pretty(&template)?)?;
        let mut r = SizeResult {
            instances,
            ..Default::default()
        };
        for round in 0..rounds {
            let first = round == 0;
            let lab = self.next_lab('b');
            let plan = plan_for(&template, &lab)?;
            r.namespaces = plan.namespaces.len();
            r.veths = plan.veths.len();
            let (script, commands, census) = self
                .baseline(&plan, first)
                .with_context(|| format!("baseline script, {instances} instances"))?;
            r.script_commands = commands;
            r.script_ms.push(ms(script));
            if census.is_some() {
                r.census_script = census;
            }
            self.settle(r.namespaces);

            let lab = self.next_lab('a');
            let expected = plan_for(&template, &lab)?.namespaces.len();
            let run = self
                .agent(&lab, &template_path, expected, first)
                .with_context(|| format!("agent, {instances} instances"))?;
            r.agent_ms.push(ms(run.elapsed));
            r.agent_peak_rss_kib.push(run.peak_rss_kib);
            r.kernel_writes = run.kernel_writes.or(r.kernel_writes);
            r.phases = run.phases;
            if run.census.is_some() {
                r.census_agent = run.census;
            }
            self.settle(r.namespaces);
            eprintln!(
                "bench: {instances:>3} instances, round {}: script {:.0} ms, agent {:.0} ms, agent peak RSS {:.1} MiB",
                round + 1,
                ms(script),
                ms(run.elapsed),
                run.peak_rss_kib as f64 / 1024.0
            );
        }
        if let (Some(s), Some(a)) = (&r.census_script, &r.census_agent) {
            if s != a {
                self.warnings.push(format!(
                    "{instances} instances: the script and the agent built different things: \
                     script {s:?}, agent {a:?}"
                ));
            }
        }
        Ok(r)
    }

    /// Namespace teardown finishes in the kernel after `ip netns del`
    /// returns; give it a moment so it does not slow the next run.
    fn settle(&self, namespaces: usize) {
        std::thread::sleep(Duration::from_millis(100 + namespaces as u64));
    }

    /// Renders, runs (timed) and tears down the baseline script.
    fn baseline(
        &mut self,
        plan: &NetworkPlan,
        census: bool,
    ) -> Result<(Duration, usize, Option<Census>)> {
        let dir = self.dir.path().join(&plan.lab);
        std::fs::create_dir_all(dir.join("nft"))?;
        let rendered = baseline::render_build(plan);
        for (file, content) in &rendered.files {
            std::fs::write(dir.join(file), content)?;
        }
        std::fs::write(dir.join("build.sh"), &rendered.script)?;
        std::fs::write(dir.join("teardown.sh"), baseline::render_teardown(plan))?;

        let elapsed = timed_ok(
            Command::new("bash").arg("build.sh").current_dir(&dir),
            BUILD_LIMIT,
            &dir,
            "build",
        )?;
        let made = lab_namespaces(&plan.lab).len();
        ensure!(
            made == plan.namespaces.len(),
            "the script made {made} of {} namespaces",
            plan.namespaces.len()
        );
        let census = if census {
            Some(Census::take(&plan.lab)?)
        } else {
            None
        };
        timed_ok(
            Command::new("bash").arg("teardown.sh").current_dir(&dir),
            TEARDOWN_LIMIT,
            &dir,
            "teardown",
        )?;
        Ok((elapsed, baseline::command_count(&rendered.script), census))
    }

    /// Starts a daemon for `lab`, times `vnet-agent deploy`, reads the daemon's
    /// peak RSS, then `down --purge`.
    fn agent(
        &mut self,
        lab: &str,
        template: &Path,
        expected_namespaces: usize,
        census: bool,
    ) -> Result<AgentRun> {
        let dir = self.dir.path().join(lab);
        std::fs::create_dir_all(&dir)?;
        let cli = |args: &[&str]| {
            let mut c = Command::new(&self.agent_bin);
            c.env("VNET_AGENT_LAB", lab)
                .env("VNET_AGENT_SOCKET", dir.join("agent.sock"))
                .env("VNET_AGENT_STATE_DIR", dir.join("state"))
                // The dataplane's phase timings (a few debug events per reconcile).
                .env("RUST_LOG", "info,vnet_agent::dataplane=debug")
                .args(args);
            c
        };
        let daemon = Daemon::start(
            cli(&["serve", "--resync-interval", "3600"]),
            &dir.join("agent.sock"),
            &dir.join("daemon.log"),
        )?;
        let template = template.to_str().context("template path is not UTF-8")?;
        let elapsed = timed_ok(
            &mut cli(&["deploy", "-g", RESOURCE_GROUP, "-f", template]),
            BUILD_LIMIT,
            &dir,
            "deploy",
        )
        .map_err(|e| e.context(format!("daemon log:\n{}", daemon.log_tail())))?;
        let peak_rss_kib = daemon.peak_rss_kib()?;
        let deployment: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("deploy.out"))?)
                .context("deploy printed no JSON")?;
        let reconcile = &deployment["properties"]["reconcile"];
        let kernel_writes = reconcile
            .get("kernel_writes")
            .or_else(|| reconcile.get("kernelWrites"))
            .and_then(Value::as_u64);
        let made = lab_namespaces(lab).len();
        ensure!(
            made == expected_namespaces,
            "the agent made {made} of {expected_namespaces} namespaces \
             (does this build have the dataplane, not its stub?)"
        );
        let census = if census {
            Some(Census::take(lab)?)
        } else {
            None
        };
        timed_ok(&mut cli(&["down", "--purge"]), TEARDOWN_LIMIT, &dir, "down")?;
        daemon.wait_exit(Duration::from_secs(15))?;
        let left = lab_namespaces(lab);
        if !left.is_empty() {
            self.warnings.push(format!(
                "`vnet-agent down --purge` left {} namespaces of lab {lab}, e.g. {}",
                left.len(),
                left[0]
            ));
            for ns in left {
                let _ = output(Command::new("ip").args(["netns", "del", &ns]));
            }
        }
        Ok(AgentRun {
            elapsed,
            peak_rss_kib,
            kernel_writes,
            phases: phases(&std::fs::read_to_string(dir.join("daemon.log"))?),
            census,
        })
    }
}

struct AgentRun {
    elapsed: Duration,
    peak_rss_kib: u64,
    kernel_writes: Option<u64>,
    phases: Vec<(String, f64)>,
    census: Option<Census>,
}

/// The phases of the daemon's last reconcile, from its debug events
/// `phase done phase="veths" elapsed=274.18ms` (time since the reconcile
/// began): each phase's own duration in ms. Empty when the log has none.
fn phases(log: &str) -> Vec<(String, f64)> {
    let mut last: Vec<(String, f64)> = Vec::new();
    for line in log.lines().filter(|l| l.contains("phase done")) {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|v| v.trim_matches('"').to_string())
        };
        let (Some(name), Some(elapsed)) = (field("phase="), field("elapsed=")) else {
            continue;
        };
        let Some(at) = duration_ms(&elapsed) else {
            continue;
        };
        let again = last.iter().any(|(n, _)| *n == name);
        if again || last.last().is_some_and(|(_, prev)| at < *prev) {
            last.clear(); // a new reconcile
        }
        last.push((name, at));
    }
    let mut prev = 0.0;
    last.into_iter()
        .map(|(name, at)| {
            let own = at - prev;
            prev = at;
            (name, own)
        })
        .collect()
}

/// Rust's `Debug` of a `Duration` (`1.2s`, `3.4ms`, `5.6µs`, `7ns`) in ms.
fn duration_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(split);
    let scale = match unit {
        "s" => 1e3,
        "ms" => 1.0,
        "µs" | "us" => 1e-3,
        "ns" => 1e-6,
        _ => return None,
    };
    Some(n.parse::<f64>().ok()? * scale)
}

/// A running `vnet-agent serve`; killed on drop if it is still running.
pub(crate) struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn start(mut cmd: Command, socket: &Path, log: &Path) -> Result<Daemon> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("starting vnet-agent serve")?;
        let mut d = Daemon {
            child: Some(child),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Ok(d);
            }
            if let Some(status) = d.child.as_mut().expect("running").try_wait()? {
                bail!("vnet-agent serve exited ({status}):\n{}", d.log_tail());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!(
            "vnet-agent serve did not open its socket within {} s:\n{}",
            START_LIMIT.as_secs(),
            d.log_tail()
        )
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `VmHWM`: the daemon's peak resident set size so far, in KiB.
    pub(crate) fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")
    }

    pub(crate) fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 30)
    }

    /// Waits for the daemon to exit by itself (after `down`).
    pub(crate) fn wait_exit(mut self, limit: Duration) -> Result<()> {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "the daemon did not exit within {} s of `down`",
            limit.as_secs()
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_report(results: &[SizeResult]) {
    println!();
    println!("instances  namespaces  script_ms  agent_ms  speedup  agent_peak_rss_mib");
    for r in results {
        println!(
            "{:>9}  {:>10}  {:>9.0}  {:>8.0}  {:>7.2}  {:>18.1}",
            r.instances,
            r.namespaces,
            median(&r.script_ms),
            median(&r.agent_ms),
            r.speedup(),
            r.peak_rss_mib()
        );
    }
    println!("{}", goal_line(results));
    if let Some(r) = results.last().filter(|r| !r.phases.is_empty()) {
        let list: Vec<String> = r
            .phases
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.0} ms"))
            .collect();
        println!(
            "agent reconcile at {} instances, last round, by phase: {}",
            r.instances,
            list.join(", ")
        );
    }
}

fn goal(results: &[SizeResult]) -> Option<bool> {
    results
        .iter()
        .find(|r| r.instances == GOAL_INSTANCES)
        .map(|r| r.speedup() >= GOAL_SPEEDUP)
}

fn goal_line(results: &[SizeResult]) -> String {
    let verdict = match goal(results) {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured (--quick)",
    };
    format!("goal: agent >= {GOAL_SPEEDUP}x faster than the script at {GOAL_INSTANCES} instances: {verdict}")
}

fn report_json(results: &[SizeResult], quick: bool, warnings: &[String]) -> Value {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "benchmark": "deploy",
        "quick": quick,
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "kernel": kernel.trim(),
        },
        "goal": {
            "instances": GOAL_INSTANCES,
            "speedup": GOAL_SPEEDUP,
            "met": goal(results),
        },
        "results": results.iter().map(|r| json!({
            "instances": r.instances,
            "namespaces": r.namespaces,
            "veths": r.veths,
            "scriptCommands": r.script_commands,
            "scriptMs": r.script_ms,
            "agentMs": r.agent_ms,
            "scriptMsMedian": median(&r.script_ms),
            "agentMsMedian": median(&r.agent_ms),
            "speedup": r.speedup(),
            "agentPeakRssMib": r.peak_rss_mib(),
            "agentKernelWrites": r.kernel_writes,
            "agentPhasesMs": r.phases.iter().map(|(n, ms)| json!({"phase": n, "ms": ms})).collect::<Vec<_>>(),
            "censusScript": r.census_script.as_ref().map(Census::to_json),
            "censusAgent": r.census_agent.as_ref().map(Census::to_json),
        })).collect::<Vec<_>>(),
        "warnings": warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_phases_from_the_daemon_log() {
        let log = "\
x DEBUG reconcile{generation=0}: vnet_agent::dataplane: phase done phase=\"deleted\" elapsed=27.5µs
x DEBUG reconcile{generation=0}: vnet_agent::dataplane: phase done phase=\"created\" elapsed=1.2ms
x INFO vnet_agent::dataplane: reconciled
x DEBUG reconcile{generation=1}: vnet_agent::dataplane: phase done phase=\"deleted\" elapsed=2ms
x DEBUG reconcile{generation=1}: vnet_agent::dataplane: phase done phase=\"created\" elapsed=114.1ms
x DEBUG reconcile{generation=1}: vnet_agent::dataplane: phase done phase=\"per-namespace\" elapsed=1.0141s
";
        let p = phases(log);
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["deleted", "created", "per-namespace"]);
        assert!((p[0].1 - 2.0).abs() < 1e-9);
        assert!((p[1].1 - 112.1).abs() < 1e-9);
        assert!((p[2].1 - 900.0).abs() < 1e-6);
        assert!(phases("no phases here").is_empty());
        assert_eq!(duration_ms("7ns"), Some(7e-6));
        assert_eq!(duration_ms("2s"), Some(2000.0));
        assert_eq!(duration_ms("fast"), None);
    }

    #[test]
    fn plans_of_at_most_30_instances() {
        assert_eq!(plan_capacities(1), [1]);
        assert_eq!(plan_capacities(10), [10]);
        assert_eq!(plan_capacities(30), [30]);
        assert_eq!(plan_capacities(31), [16, 15]);
        assert_eq!(plan_capacities(100), [25, 25, 25, 25]);
    }

    #[test]
    fn template_scales_the_plans_and_nothing_runs_in_them() {
        let t = template(100);
        let of_type = |ty: &str| -> Vec<Value> {
            t["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["type"] == ty)
                .cloned()
                .collect()
        };
        let plans = of_type("Microsoft.Web/serverfarms");
        let total: u64 = plans
            .iter()
            .map(|p| p["sku"]["capacity"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 100);
        let sites = of_type("Microsoft.Web/sites");
        assert_eq!(sites.len(), plans.len());
        for site in &sites {
            let config = &site["properties"]["siteConfig"];
            assert_eq!(config["vnetRouteAllEnabled"], true);
            assert!(config.get("appCommandLine").is_none());
        }
        let subnets =
            of_type("Microsoft.Network/virtualNetworks")[0]["properties"]["subnets"].clone();
        assert_eq!(subnets.as_array().unwrap().len(), plans.len() + 1);
        assert_eq!(template(10)["resources"][1]["sku"]["capacity"], 10);
    }

    /// Without root: the agent's own validation accepts every size, and the
    /// plan has one worker per instance. (Skipped while plan/ is a stub.)
    #[test]
    fn the_agent_accepts_every_benchmark_template() {
        for n in [1, 10, 100] {
            let plan = match plan_for(&template(n), "t") {
                Ok(plan) => plan,
                Err(e) if e.to_string().contains("stubs") => return,
                Err(e) => panic!("{n} instances: {e:#}"),
            };
            let workers = plan
                .namespaces
                .values()
                .filter(|ns| matches!(ns.role, vnet_agent::plan::NamespaceRole::Worker { .. }))
                .count();
            assert_eq!(workers, n as usize);
        }
    }

    #[test]
    fn goal_verdicts() {
        let size = |instances, script: f64, agent: f64| SizeResult {
            instances,
            script_ms: vec![script],
            agent_ms: vec![agent],
            ..Default::default()
        };
        assert_eq!(goal(&[size(1, 10.0, 10.0)]), None);
        assert_eq!(goal(&[size(100, 1000.0, 100.0)]), Some(true));
        assert_eq!(goal(&[size(100, 1000.0, 400.0)]), Some(false));
        assert!(goal_line(&[size(100, 1000.0, 400.0)]).ends_with("NOT met"));
    }
}
