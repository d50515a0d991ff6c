//! `cargo xtask bench --scale`: issue 15's table, measured as a user meets
//! it, at 100 and 1,000 app instances: a lab of N plans × 25 instances (one
//! plan per /26 subnet, half of them Route All, every instance running its
//! app), driven through the release CLI against one daemon. Beside each
//! deploy, the ip/nft script's time to build the same namespaces, links,
//! addresses, routes, rules and nft tables, in the same run. Not part of
//! `.ci/run`: the 1,000-instance lab takes minutes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::bench::{lab_namespaces, plan_for, target_dir, Daemon, BUILD_LIMIT, TEARDOWN_LIMIT};
use crate::run::timed_ok;

const INSTANCES_PER_PLAN: u32 = 25;
const RESOURCE_GROUP: &str = "scale";
/// Seconds the idle daemon's CPU is sampled over.
const IDLE_SECONDS: u64 = 30;

/// The goals at 1,000 instances (issue 15).
const GOALS: [(&str, f64); 6] = [
    ("deploy_s", 10.0),
    ("redeploy_s", 1.0),
    ("config_set_s", 0.1),
    ("idle_cpu_pct", 1.0),
    ("peak_rss_mib", 100.0),
    ("down_s", 10.0),
];

/// N plans × 25 instances, plan k in subnet s<k> (a /26 of 10.0.0.0/8),
/// Route All on the even ones, each site running `sleep infinity`.
pub fn template(plans: u32) -> Value {
    let subnets: Vec<Value> = (0..plans)
        .map(|k| {
            let (third, fourth) = ((k * 64) / 256, (k * 64) % 256);
            json!({ "name": format!("s{k}"), "properties": {
                "addressPrefix": format!("10.{}.{}.{fourth}/26", 1 + third / 256, third % 256),
                "delegations": [{ "name": "d", "properties": { "serviceName": "Microsoft.Web/serverFarms" } }] } })
        })
        .collect();
    let mut resources = vec![json!({
        "type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "location": "westeurope",
        "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/8"] }, "subnets": subnets }
    })];
    for k in 0..plans {
        resources.push(json!({
            "type": "Microsoft.Web/serverfarms", "name": format!("plan{k}"), "location": "westeurope",
            "kind": "linux", "sku": { "name": "P1v3", "capacity": INSTANCES_PER_PLAN },
            "properties": { "reserved": true }
        }));
        resources.push(json!({
            "type": "Microsoft.Web/sites", "name": format!("web{k}"), "location": "westeurope",
            "kind": "app,linux", "dependsOn": [format!("plan{k}"), "vnet1"],
            "properties": {
                "serverFarmId": format!("[resourceId('Microsoft.Web/serverfarms', 'plan{k}')]"),
                "virtualNetworkSubnetId": format!("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet1', 's{k}')]"),
                "vnetRouteAllEnabled": k % 2 == 0,
                "siteConfig": { "appCommandLine": "exec sleep infinity" }
            }
        }));
    }
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": resources,
    })
}

struct Row {
    instances: u32,
    namespaces: usize,
    script_s: f64,
    figures: Vec<(&'static str, f64)>,
}

pub fn run(root: &Path) -> Result<()> {
    let bin = target_dir(root).join("release/vnet-agent");
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for instances in [100u32, 1000] {
        rows.push(measure(&bin, dir.path(), instances)?);
    }
    println!();
    println!("figure            100 instances   1,000 instances   goal at 1,000");
    let at = |r: &Row, k: &str| {
        r.figures
            .iter()
            .find(|(n, _)| *n == k)
            .map_or(f64::NAN, |f| f.1)
    };
    for (name, goal) in GOALS {
        let (a, b) = (at(&rows[0], name), at(&rows[1], name));
        let met = if b <= goal { "met" } else { "MISSED" };
        println!("{name:<16}  {a:>13.3}   {b:>15.3}   <= {goal} ({met})");
    }
    println!(
        "{:<16}  {:>13.3}   {:>15.3}   (the ip/nft script, same run)",
        "script_deploy_s", rows[0].script_s, rows[1].script_s
    );
    println!(
        "namespaces        {:>13}   {:>15}",
        rows[0].namespaces, rows[1].namespaces
    );
    Ok(())
}

fn measure(bin: &Path, dir: &Path, instances: u32) -> Result<Row> {
    let plans = instances / INSTANCES_PER_PLAN;
    let t = template(plans);
    let file = dir.join(format!("scale-{instances}.json"));
    std::fs::write(&file, serde_json::to_vec(&t)?)?;

    // The ip/nft script first, torn down before the agent's run.
    let script_lab = format!("sb{instances}");
    let plan = plan_for(&t, &script_lab)?;
    let sdir = dir.join(&script_lab);
    std::fs::create_dir_all(sdir.join("nft"))?;
    let rendered = crate::baseline::render_build(&plan);
    for (f, content) in &rendered.files {
        std::fs::write(sdir.join(f), content)?;
    }
    std::fs::write(sdir.join("build.sh"), &rendered.script)?;
    std::fs::write(
        sdir.join("teardown.sh"),
        crate::baseline::render_teardown(&plan),
    )?;
    let script = timed_ok(
        Command::new("bash").arg("build.sh").current_dir(&sdir),
        BUILD_LIMIT * 5,
        &sdir,
        "build",
    )?;
    timed_ok(
        Command::new("bash").arg("teardown.sh").current_dir(&sdir),
        TEARDOWN_LIMIT * 5,
        &sdir,
        "teardown",
    )?;
    std::thread::sleep(Duration::from_secs(2));

    let lab = format!("sa{instances}");
    let adir = dir.join(&lab);
    std::fs::create_dir_all(&adir)?;
    let cli = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.env("VNET_AGENT_LAB", &lab)
            .env("VNET_AGENT_SOCKET", adir.join("agent.sock"))
            .env("VNET_AGENT_STATE_DIR", adir.join("state"))
            .env("VNET_AGENT_PROGRESS", "never")
            .args(args);
        c
    };
    let timed = |args: &[&str]| -> Result<f64> {
        let started = Instant::now();
        let out = cli(args).output()?;
        ensure!(
            out.status.success(),
            "vnet-agent {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(started.elapsed().as_secs_f64())
    };
    let daemon = Daemon::start(
        cli(&["serve"]),
        &adir.join("agent.sock"),
        &adir.join("daemon.log"),
    )?;
    let f = file.to_str().context("path")?;
    let deploy = timed(&["deploy", "-g", RESOURCE_GROUP, "-f", f, "-o", "none"])?;
    let namespaces = lab_namespaces(&lab).len();
    let redeploy = timed(&["deploy", "-g", RESOURCE_GROUP, "-f", f, "-o", "none"])?;
    // web1 is Route All off: the flip changes one site's sandboxes.
    let config_set = timed(&[
        "webapp",
        "config",
        "set",
        "-g",
        RESOURCE_GROUP,
        "-n",
        "web1",
        "--vnet-route-all-enabled",
        "true",
        "-o",
        "none",
    ])?;
    let pid = daemon.pid();
    let cpu = || -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("stat")?
            .1
            .split_whitespace()
            .collect();
        Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
    };
    std::thread::sleep(Duration::from_secs(5));
    let c0 = cpu()?;
    std::thread::sleep(Duration::from_secs(IDLE_SECONDS));
    let ticks = cpu()? - c0;
    let hz = clk_tck();
    let idle_pct = ticks as f64 * 100.0 / hz / IDLE_SECONDS as f64;
    let peak_rss_mib = daemon.peak_rss_kib()? as f64 / 1024.0;
    let down = timed(&["down"])?;
    daemon.wait_exit(Duration::from_secs(60))?;
    let left = lab_namespaces(&lab).len();
    ensure!(left == 0, "{left} namespaces left after down");
    let row = Row {
        instances,
        namespaces,
        script_s: script.as_secs_f64(),
        figures: vec![
            ("deploy_s", deploy),
            ("redeploy_s", redeploy),
            ("config_set_s", config_set),
            ("idle_cpu_pct", idle_pct),
            ("peak_rss_mib", peak_rss_mib),
            ("down_s", down),
        ],
    };
    eprintln!(
        "scale: {} instances ({} namespaces): script {:.1} s; {}",
        row.instances,
        row.namespaces,
        row.script_s,
        row.figures
            .iter()
            .map(|(n, v)| format!("{n} {v:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::thread::sleep(Duration::from_secs(3));
    Ok(row)
}

/// Clock ticks per second (`getconf CLK_TCK`), without a libc dependency.
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
