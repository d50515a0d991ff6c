//! `cargo xtask bench` section 4 (`--bgp-only`: this section alone): BGP
//! convergence. A hub VNet with a BGP VPN gateway, a spoke peered to it with
//! gateway transit and an app integrated in the spoke, and an on-premises
//! site whose BIRD speaker announces the LAN of host `db` (172.20.5.0/24)
//! as the static protocol `lan_172_20_5_0_24`. Each trial withdraws the LAN
//! (`birdc disable`), waits until the app can no longer connect, starts the
//! prober in the app's sandbox (`xtask connect-until`: a fresh TCP connect
//! every 10 ms), announces the LAN again (`birdc enable`, run with `ip netns
//! exec` in the site router's namespace, so `vnet-agent exec` start-up is
//! not measured) and takes the time from just before the announcement to
//! the prober's first established connection, both read from the realtime
//! clock. Goal: a median under a second. Results: target/bench/bgp.json.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use vnet_agent::template::DEFAULT_SUBSCRIPTION;

use crate::bench::target_dir;
use crate::datapath::template::RESOURCE_GROUP;
use crate::datapath::AgentLab;
use crate::run::{output, tail};
use crate::stats::median;

const LAB: &str = "bgpb";
const APP: &str = "web1";
const SITE: &str = "site1";
const HOST: &str = "db";
const HOST_IP: &str = "172.20.5.10";
const PORT: u16 = 9000;
/// The site speaker's static protocol that originates the host's LAN.
const ANNOUNCEMENT: &str = "lan_172_20_5_0_24";
const TRIALS: usize = 10;
const QUICK_TRIALS: usize = 3;
/// Goal: the median trial under this.
const GOAL_MS: f64 = 1000.0;

/// The prober: one new connection attempt this often, each on its own
/// socket, given this long to be established (attempts overlap, so a lost
/// SYN does not delay the next one).
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(50);
/// A trial's prober gives up after this.
const PROBE_GIVE_UP_MS: u64 = 10_000;
/// "Unreachable": a prober that found no way through in this long.
const UNREACHABLE_PROBE_MS: u64 = 200;
/// ... this many times in a row.
const UNREACHABLE_CHECKS: usize = 2;
/// Waits: the first BGP session and route, a withdrawal, a prober's start.
const BGP_UP_LIMIT: Duration = Duration::from_secs(60);
const WITHDRAW_LIMIT: Duration = Duration::from_secs(15);
const READY_LIMIT: Duration = Duration::from_secs(10);

fn id(ty: &str, name: &str) -> String {
    format!(
        "/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{ty}/{name}"
    )
}

fn net(ty: &str, name: &str) -> String {
    id(&format!("Microsoft.Network/{ty}"), name)
}

/// The lab: hub 10.1.0.0/16 (GatewaySubnet, vms) with a BGP VPN gateway
/// (ASN 65515), spoke1 10.2.0.0/16 peered to it with gateway transit and
/// `web1` integrated in it; site1 (ASN 65050, BGP address 192.168.255.1)
/// connected to the gateway over IPsec with BGP, and its host `db`.
fn template() -> Value {
    let peering = |name: &str, remote: &str, transit: (&str, bool)| {
        let mut p = json!({
            "remoteVirtualNetwork": { "id": net("virtualNetworks", remote) },
            "allowVirtualNetworkAccess": true,
        });
        p[transit.0] = json!(transit.1);
        json!({ "name": name, "properties": p })
    };
    let vnet = |name: &str, prefix: &str, subnets: Value, peering: Value| {
        json!({
            "type": "Microsoft.Network/virtualNetworks", "name": name, "location": "westeurope",
            "properties": {
                "addressSpace": { "addressPrefixes": [prefix] },
                "subnets": subnets,
                "virtualNetworkPeerings": [peering],
            }
        })
    };
    let site_id = net("localNetworkGateways", SITE);
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            vnet("hub", "10.1.0.0/16",
                json!([
                    { "name": "GatewaySubnet", "properties": { "addressPrefix": "10.1.255.0/27" } },
                    { "name": "vms", "properties": { "addressPrefix": "10.1.1.0/24" } }
                ]),
                peering("hub-to-spoke1", "spoke1", ("allowGatewayTransit", true))),
            vnet("spoke1", "10.2.0.0/16",
                json!([{ "name": "integration", "properties": { "addressPrefix": "10.2.1.0/26" } }]),
                peering("spoke1-to-hub", "hub", ("useRemoteGateways", true))),
            { "type": "Microsoft.Network/publicIPAddresses", "name": "vgw-pip", "location": "westeurope",
              "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } },
            { "type": "Microsoft.Network/virtualNetworkGateways", "name": "vgw", "location": "westeurope",
              "properties": {
                "gatewayType": "Vpn", "vpnType": "RouteBased", "enableBgp": true,
                "sku": { "name": "VpnGw1", "tier": "VpnGw1" },
                "bgpSettings": { "asn": 65515 },
                "ipConfigurations": [{ "name": "default", "properties": {
                    "subnet": { "id": format!("{}/subnets/GatewaySubnet", net("virtualNetworks", "hub")) },
                    "publicIPAddress": { "id": net("publicIPAddresses", "vgw-pip") } } }]
              } },
            { "type": "Microsoft.Network/localNetworkGateways", "name": SITE, "location": "westeurope",
              "properties": {
                "gatewayIpAddress": "203.0.113.10",
                "localNetworkAddressSpace": { "addressPrefixes": ["192.168.255.1/32"] },
                "bgpSettings": { "asn": 65050, "bgpPeeringAddress": "192.168.255.1" }
              } },
            { "type": "Microsoft.Network/connections", "name": "hub-to-site1", "location": "westeurope",
              "properties": {
                "connectionType": "IPsec", "enableBgp": true, "sharedKey": "abc123",
                "virtualNetworkGateway1": { "id": net("virtualNetworkGateways", "vgw") },
                "localNetworkGateway2": { "id": site_id }
              } },
            { "type": "Lab.Emulator/onPremisesHosts", "name": HOST, "location": "westeurope",
              "properties": { "site": { "id": site_id }, "ipAddress": HOST_IP } },
            { "type": "Microsoft.Web/serverfarms", "name": "plan1", "location": "westeurope", "kind": "linux",
              "sku": { "name": "P1v3", "capacity": 1 }, "properties": { "reserved": true } },
            { "type": "Microsoft.Web/sites", "name": APP, "location": "westeurope", "kind": "app,linux",
              "properties": {
                "serverFarmId": id("Microsoft.Web/serverfarms", "plan1"),
                "virtualNetworkSubnetId": format!("{}/subnets/integration", net("virtualNetworks", "spoke1")),
                "siteConfig": { "appCommandLine": "sleep infinity" }
              } }
        ]
    })
}

/// Fails clearly, before anything is built, when BIRD is missing.
pub fn preflight() -> Result<()> {
    for tool in ["bird", "birdc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ensure!(
            found,
            "`{tool}` is missing: the BGP benchmark needs BIRD 2 (scripts/install-deps.sh installs bird2)"
        );
    }
    Ok(())
}

/// One trial.
#[derive(Debug, Clone, PartialEq)]
struct Trial {
    /// Realtime clock just before the announcing command started, unix us.
    announced_us: u64,
    /// The prober's first established connection, unix us.
    connected_us: u64,
    /// How long the announcing command (`ip netns exec ... birdc enable`)
    /// ran, start to exit.
    announce_command_ms: f64,
    /// The prober's connection attempts, in all.
    attempts: u64,
}

impl Trial {
    fn convergence_ms(&self) -> f64 {
        (self.connected_us as f64 - self.announced_us as f64) / 1000.0
    }

    fn to_json(&self) -> Value {
        json!({
            "convergenceMs": self.convergence_ms(),
            "announcedUnixUs": self.announced_us,
            "connectedUnixUs": self.connected_us,
            "announceCommandMs": self.announce_command_ms,
            "proberAttempts": self.attempts,
        })
    }
}

/// Runs the section and writes `target/bench/bgp.json`. Inside the sandbox only.
pub fn run(root: &Path, quick: bool) -> Result<()> {
    preflight()?;
    let trials = if quick { QUICK_TRIALS } else { TRIALS };
    let release = target_dir(root).join("release");
    let agent_bin = release.join("vnet-agent");
    let xtask_bin = release.join("xtask");
    for bin in [&agent_bin, &xtask_bin] {
        ensure!(
            bin.exists(),
            "{} is missing (cargo build --release -p vnet-agent -p xtask)",
            bin.display()
        );
    }
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let template_path = dir.path().join("bgp-bench.json");
    std::fs::write(&template_path, serde_json::to_vec(&template())?)?;
    let lab = AgentLab::deploy(&agent_bin, LAB, dir.path(), &template_path)?;
    let bench = BgpBench {
        lab: &lab,
        xtask: xtask_bin.to_str().context("xtask path is not UTF-8")?,
        dir: dir.path(),
    };
    let measured = bench
        .trials(trials)
        .map_err(|e| e.context(format!("daemon log:\n{}", lab.daemon_log_tail())));
    let left = lab.down()?;
    let (announce, results) = measured?;
    ensure!(left.is_empty(), "namespaces left after down: {left:?}");

    let conv: Vec<f64> = results.iter().map(Trial::convergence_ms).collect();
    let med = median(&conv);
    let min = conv.iter().copied().fold(f64::INFINITY, f64::min);
    let max = conv.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let met = med < GOAL_MS;
    println!();
    print!("{}", report_table(&results, &announce));
    println!(
        "goal: median convergence under {GOAL_MS:.0} ms ({med:.0} ms): {}",
        if met { "met" } else { "NOT met" }
    );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let path = target_dir(root).join("bench/bgp.json");
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({
            "benchmark": "bgp",
            "quick": quick,
            "machine": {
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "kernel": kernel.trim(),
            },
            "measured": "realtime clock just before the on-premises speaker's announcement \
                         to the integrated app's first established TCP connection to a host \
                         in the announced prefix",
            "prefix": "172.20.5.0/24",
            "target": format!("{HOST_IP}:{PORT}"),
            "announce": announce,
            "prober": {
                "intervalMs": PROBE_INTERVAL.as_millis() as u64,
                "connectTimeoutMs": PROBE_CONNECT_TIMEOUT.as_millis() as u64,
                "giveUpMs": PROBE_GIVE_UP_MS,
            },
            "trials": trials,
            "convergenceMs": { "median": med, "min": min, "max": max },
            "goal": { "medianUnderMs": GOAL_MS, "met": met },
            "results": results.iter().map(Trial::to_json).collect::<Vec<_>>(),
        }))?,
    )?;
    println!(
        "wrote {} ({:.0} s in all)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn report_table(results: &[Trial], announce: &str) -> String {
    use std::fmt::Write as _;
    let conv: Vec<f64> = results.iter().map(Trial::convergence_ms).collect();
    let cmd: Vec<f64> = results.iter().map(|t| t.announce_command_ms).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "BGP convergence: on-premises announcement of 172.20.5.0/24 to the spoke app's first TCP \
         connection to {HOST_IP}:{PORT} ({} trials; announced with `{announce}`; a new connect \
         every {} ms, {} ms timeout)",
        results.len(),
        PROBE_INTERVAL.as_millis(),
        PROBE_CONNECT_TIMEOUT.as_millis()
    );
    let _ = writeln!(
        s,
        "{:<8} {:>15} {:>11} {:>9}",
        "trial", "convergence_ms", "announce_ms", "attempts"
    );
    for (k, t) in results.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:<8} {:>15.1} {:>11.1} {:>9}",
            k + 1,
            t.convergence_ms(),
            t.announce_command_ms,
            t.attempts
        );
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64| conv.iter().copied().fold(init, f);
    let _ = writeln!(
        s,
        "{:<8} {:>15.1} {:>11.1}",
        "median",
        median(&conv),
        median(&cmd)
    );
    let _ = writeln!(
        s,
        "{:<8} {:>15.1}\n{:<8} {:>15.1}",
        "min",
        fold(f64::min, f64::INFINITY),
        "max",
        fold(f64::max, f64::NEG_INFINITY)
    );
    let _ = writeln!(
        s,
        "announce_ms: how long the announcing command ran (its process start-up is part of convergence_ms)"
    );
    s
}

struct BgpBench<'a> {
    lab: &'a AgentLab,
    xtask: &'a str,
    dir: &'a Path,
}

impl BgpBench<'_> {
    /// Starts the server, waits for BGP, runs `n` trials. Returns the
    /// announcing command (in words) and the trials.
    fn trials(&self, n: usize) -> Result<(String, Vec<Trial>)> {
        let site_ns = self.site_namespace()?;
        let socket = self
            .site_shell("printf %s \"$VNET_BIRD_SOCKET\"")
            .context("asking for the site speaker's control socket")?;
        ensure!(
            !socket.is_empty(),
            "`vnet-agent exec --site {SITE}` set no VNET_BIRD_SOCKET"
        );
        let lifetime = (BGP_UP_LIMIT.as_secs() + 30 * n as u64).to_string();
        let server = Spawned::start(
            self.lab.cli(&[
                "exec",
                "--onprem-host",
                HOST,
                "--",
                self.xtask,
                "rr-server",
                &PORT.to_string(),
                &lifetime,
            ]),
            &self.dir.join("server.err"),
        )?;
        server
            .line(READY_LIMIT)
            .filter(|l| l.starts_with("listening on"))
            .with_context(|| {
                format!(
                    "the server on {HOST} did not start: {}",
                    server.stderr_tail()
                )
            })?;
        // The first session and route: the app reaches the host.
        let first = self.probe(BGP_UP_LIMIT.as_millis() as u64)?;
        ensure!(
            first.is_some(),
            "the app never reached {HOST_IP}:{PORT} within {} s of the deployment \
             (no BGP session, or no route to the site's LAN)",
            BGP_UP_LIMIT.as_secs()
        );
        let announce = format!("ip netns exec {site_ns} birdc -s {socket} enable {ANNOUNCEMENT}");
        let mut results = Vec::new();
        for k in 0..n {
            let trial = self
                .trial(&site_ns, &socket)
                .with_context(|| format!("trial {}", k + 1))?;
            eprintln!(
                "bench: bgp trial {}: {:.1} ms (announce command {:.1} ms, {} connect attempts)",
                k + 1,
                trial.convergence_ms(),
                trial.announce_command_ms,
                trial.attempts
            );
            results.push(trial);
        }
        drop(server);
        Ok((announce, results))
    }

    fn trial(&self, site_ns: &str, socket: &str) -> Result<Trial> {
        // Withdraw, then wait until the app cannot connect.
        let said = self.site_shell(&format!(
            "birdc -s \"$VNET_BIRD_SOCKET\" disable {ANNOUNCEMENT}"
        ))?;
        ensure!(
            said.contains(&format!("{ANNOUNCEMENT}: disabled")),
            "birdc disable said: {said}"
        );
        let deadline = Instant::now() + WITHDRAW_LIMIT;
        let mut failed = 0;
        while failed < UNREACHABLE_CHECKS {
            ensure!(
                Instant::now() < deadline,
                "the app still reached {HOST_IP} {} s after the withdrawal",
                WITHDRAW_LIMIT.as_secs()
            );
            failed = match self.probe(UNREACHABLE_PROBE_MS)? {
                Some(_) => 0,
                None => failed + 1,
            };
        }
        // The prober runs before the announcement.
        let prober = Spawned::start(
            self.connect_until(PROBE_GIVE_UP_MS),
            &self.dir.join("prober.err"),
        )?;
        prober
            .line(READY_LIMIT)
            .filter(|l| l == "ready")
            .with_context(|| format!("the prober did not start: {}", prober.stderr_tail()))?;
        let announced_us = unix_us(SystemTime::now());
        let t = Instant::now();
        let out = output(Command::new("ip").args([
            "netns",
            "exec",
            site_ns,
            "birdc",
            "-s",
            socket,
            "enable",
            ANNOUNCEMENT,
        ]))?;
        let announce_command_ms = t.elapsed().as_secs_f64() * 1000.0;
        ensure!(
            out.contains(&format!("{ANNOUNCEMENT}: enabled")),
            "birdc enable said: {out}"
        );
        let limit = Duration::from_millis(PROBE_GIVE_UP_MS) + READY_LIMIT;
        let line = prober.line(limit).with_context(|| {
            format!(
                "the prober said nothing within {} s: {}",
                limit.as_secs(),
                prober.stderr_tail()
            )
        })?;
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("the prober said {line:?}"))?;
        let connected_us = v["connectedUnixUs"].as_u64().with_context(|| {
            format!(
                "the app did not reach {HOST_IP}:{PORT} within {} s of the announcement: {v}",
                PROBE_GIVE_UP_MS / 1000
            )
        })?;
        ensure!(
            connected_us >= announced_us,
            "the app reached {HOST_IP} before the announcement (the withdrawal had not taken)"
        );
        Ok(Trial {
            announced_us,
            connected_us,
            announce_command_ms,
            attempts: v["attempts"].as_u64().unwrap_or(0),
        })
    }

    fn connect_until(&self, give_up_ms: u64) -> Command {
        self.lab.cli(&[
            "exec",
            "--app",
            APP,
            "--",
            self.xtask,
            "connect-until",
            HOST_IP,
            &PORT.to_string(),
            &give_up_ms.to_string(),
        ])
    }

    /// A prober to its end: the time of its connection, `None` when it gave up.
    fn probe(&self, give_up_ms: u64) -> Result<Option<u64>> {
        let out = self
            .connect_until(give_up_ms)
            .stdin(Stdio::null())
            .output()
            .context("running the prober")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .with_context(|| {
                format!(
                    "the prober failed ({}): {text}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        Ok(v["connectedUnixUs"].as_u64())
    }

    /// `sh -c SCRIPT` in the site router's namespace, through `vnet-agent exec`.
    fn site_shell(&self, script: &str) -> Result<String> {
        output(
            &mut self
                .lab
                .cli(&["exec", "--site", SITE, "--", "sh", "-c", script]),
        )
    }

    /// The site router's namespace, from the local network gateway's view.
    fn site_namespace(&self) -> Result<String> {
        let text = output(&mut self.lab.cli(&[
            "resource",
            "show",
            "--ids",
            &net("localNetworkGateways", SITE),
        ]))?;
        let v: Value = serde_json::from_str(&text).context("resource show printed no JSON")?;
        v["emulator"]["routerNamespace"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no emulator.routerNamespace in {v}"))
    }
}

/// A child whose stdout lines arrive on a channel; killed on drop.
struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::path::PathBuf,
}

impl Spawned {
    fn start(mut cmd: Command, stderr: &Path) -> Result<Spawned> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr)?)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Spawned {
            child,
            lines,
            stderr: stderr.to_path_buf(),
        })
    }

    /// Its next line within `limit`.
    fn line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    fn stderr_tail(&self) -> String {
        tail(
            &std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            10,
        )
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `xtask connect-until IP PORT [GIVE_UP_MS]`: prints `ready`, then starts a
/// TCP connection to IP:PORT every 10 ms, each on a new socket with 50 ms to
/// be established (on a thread of its own, so attempts overlap), until one
/// is established or GIVE_UP_MS (default 10,000) have passed. Prints one JSON
/// line: `connectedUnixUs` (the realtime clock, unix microseconds, when the
/// first connection was established; null when none was) and `attempts`.
/// Exits 0 when it connected, 1 when it gave up.
pub fn connect_until(args: &[&str]) -> Result<ExitCode> {
    let (ip, port, give_up_ms) = match args {
        [ip, port] => (*ip, *port, PROBE_GIVE_UP_MS),
        [ip, port, ms] => (*ip, *port, ms.parse().context("GIVE_UP_MS")?),
        _ => bail!("usage: xtask connect-until IP PORT [GIVE_UP_MS]"),
    };
    let ip: IpAddr = ip.parse().context("IP")?;
    let addr = SocketAddr::new(ip, port.parse().context("PORT")?);
    let give_up = Duration::from_millis(give_up_ms);
    println!("ready");
    std::io::stdout().flush()?;
    let (tx, rx) = mpsc::channel::<u64>();
    let start = Instant::now();
    let mut attempts: u32 = 0;
    let connected = loop {
        if start.elapsed() >= give_up {
            // The attempts still in flight may yet succeed.
            break rx.recv_timeout(PROBE_CONNECT_TIMEOUT * 2).ok();
        }
        attempts += 1;
        let tx = tx.clone();
        std::thread::spawn(move || {
            if let Ok(s) = TcpStream::connect_timeout(&addr, PROBE_CONNECT_TIMEOUT) {
                let at = unix_us(SystemTime::now());
                drop(s);
                let _ = tx.send(at);
            }
        });
        let next = start + PROBE_INTERVAL * attempts;
        if let Ok(at) = rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            break Some(at);
        }
    };
    // Attempts established together: the earliest.
    let connected = connected.map(|first| rx.try_iter().fold(first, u64::min));
    println!(
        "{}",
        json!({ "connectedUnixUs": connected, "attempts": attempts })
    );
    Ok(if connected.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's own expansion, validation and plan accept the lab (in the
    /// resource group the bench deploys to), and it runs BGP speakers.
    #[test]
    fn the_agent_accepts_the_bgp_lab() {
        use vnet_agent::model::{LabConfig, LabState};
        let config = LabConfig::default();
        let req = vnet_agent::template::DeploymentRequest {
            subscription: DEFAULT_SUBSCRIPTION.to_string(),
            resource_group: RESOURCE_GROUP.to_string(),
            template: template(),
            parameters: Default::default(),
            ..Default::default()
        };
        let resources = vnet_agent::template::expand(&req).expect("expands");
        let state = vnet_agent::validate::apply_resources(
            &LabState::default(),
            resources,
            &config,
            &vnet_agent::validate::RequestContext::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let plan = vnet_agent::plan::build(&state, &config);
        let speakers = plan
            .services
            .iter()
            .filter(|s| s.command == "bgp-speaker")
            .count();
        assert_eq!(speakers, 2, "the gateway's and the site's");
    }

    #[test]
    fn convergence_and_table() {
        let t = |ms: u64| Trial {
            announced_us: 1_000_000,
            connected_us: 1_000_000 + ms * 1000,
            announce_command_ms: 2.0,
            attempts: 5,
        };
        let results = [t(300), t(100), t(200)];
        assert_eq!(results[0].convergence_ms(), 300.0);
        let table = report_table(&results, "birdc enable x");
        assert!(table.contains("3 trials"), "{table}");
        let line = |name: &str| {
            table
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string()
        };
        assert_eq!(line("median"), "200.0");
        assert_eq!(line("min"), "100.0");
        assert_eq!(line("max"), "300.0");
    }

    #[test]
    fn prober_finds_a_listener_and_gives_up_without_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let before = unix_us(SystemTime::now());
        assert_eq!(
            connect_until(&["127.0.0.1", &port, "2000"]).unwrap(),
            ExitCode::SUCCESS
        );
        assert!(unix_us(SystemTime::now()) >= before);
        drop(listener);
        // Nothing listens any more: refused every time, until it gives up.
        assert_eq!(
            connect_until(&["127.0.0.1", &port, "50"]).unwrap(),
            ExitCode::FAILURE
        );
        assert!(connect_until(&["127.0.0.1"]).is_err());
    }
}
