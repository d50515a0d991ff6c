//! `cargo xtask bench` section 3 (`--dns-only`: this section alone): the
//! agent's Azure-provided DNS (168.63.129.16 in the VNet's fabric) against
//! dnsmasq serving the same records from the same place (the fabric
//! namespace, on the integration subnet's gateway address, which the fabric
//! holds on `lo`), both asked from an integrated app's sandbox through its
//! vNIC, alternately in one run. The load generator (`xtask dns-load`, run
//! in the sandbox with `vnet-agent exec`) keeps N queries outstanding over
//! UDP and checks every answer. Goal: the agent's rate at least dnsmasq's,
//! with no errors. Results: target/bench/dns.json.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::bench::target_dir;
use crate::datapath::template::RESOURCE_GROUP;
use crate::datapath::AgentLab;
use crate::run::tail;
use crate::stats::{median, percentile};

const LAB: &str = "dnsb";
const ZONE: &str = "bench.internal";
/// Records in the zone; queries go round-robin over them.
const NAMES: u32 = 200;
/// dnsmasq listens here: the integration subnet's gateway, on the fabric's `lo`.
const DNSMASQ_ADDR: &str = "10.0.1.1";
const AZURE_DNS: &str = "168.63.129.16";

struct Settings {
    rounds: usize,
    seconds: u64,
    outstanding: usize,
    threads: usize,
}

const FULL: Settings = Settings {
    rounds: 3,
    seconds: 5,
    outstanding: 64,
    threads: 2,
};
const QUICK: Settings = Settings {
    rounds: 1,
    seconds: 2,
    outstanding: 64,
    threads: 2,
};

/// The address of record `i`: 10.1.x.y.
fn record_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn record_name(i: u32) -> String {
    format!("h{i}.{ZONE}")
}

fn template() -> Value {
    let vnet_id = format!(
        "/subscriptions/{}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/virtualNetworks/vnet1",
        vnet_agent::template::DEFAULT_SUBSCRIPTION
    );
    let sets: Vec<Value> = (0..NAMES)
        .map(|i| {
            json!({ "name": format!("h{i}"), "type": "A", "properties": { "ttl": 300,
            "aRecords": [{ "ipv4Address": record_ip(i).to_string() }] } })
        })
        .collect();
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            { "type": "Microsoft.Network/virtualNetworks", "name": "vnet1", "location": "westeurope",
              "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
                "subnets": [{ "name": "integration", "properties": { "addressPrefix": "10.0.1.0/24" } }] } },
            { "type": "Microsoft.Web/serverfarms", "name": "plan1", "location": "westeurope", "kind": "linux",
              "sku": { "name": "P1v3", "capacity": 1 }, "properties": { "reserved": true } },
            { "type": "Microsoft.Web/sites", "name": "web1", "location": "westeurope", "kind": "app,linux",
              "properties": { "serverFarmId": format!(
                    "/subscriptions/{}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Web/serverfarms/plan1",
                    vnet_agent::template::DEFAULT_SUBSCRIPTION),
                "virtualNetworkSubnetId": format!("{vnet_id}/subnets/integration") } },
            { "type": "Microsoft.Network/privateDnsZones", "name": ZONE, "location": "global",
              "properties": { "recordSets": sets, "virtualNetworkLinks": [
                { "name": "link1", "properties": { "registrationEnabled": false, "virtualNetwork": { "id": vnet_id } } }] } }
        ]
    })
}

/// One measured round of one server.
#[derive(Debug, Clone)]
struct Sample {
    qps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    lost: u64,
}

impl Sample {
    fn from_json(v: &Value) -> Result<Sample> {
        let f = |k: &str| v[k].as_f64().with_context(|| format!("no {k} in {v}"));
        Ok(Sample {
            qps: f("qps")?,
            p50_us: f("p50_us")?,
            p99_us: f("p99_us")?,
            errors: f("errors")? as u64,
            lost: f("lost")? as u64,
        })
    }
}

/// Runs the section and writes `target/bench/dns.json`. Inside the sandbox only.
pub fn run(root: &Path, quick: bool) -> Result<()> {
    let s = if quick { QUICK } else { FULL };
    let release = target_dir(root).join("release");
    let agent_bin = release.join("vnet-agent");
    let xtask_bin = release.join("xtask");
    for bin in [&agent_bin, &xtask_bin] {
        ensure!(bin.exists(), "{} is missing", bin.display());
    }
    let dnsmasq = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("dnsmasq is missing: scripts/install-deps.sh installs it (dnsmasq-base)")?;
    let dir = tempfile::tempdir()?;
    let template_path = dir.path().join("dns-bench.json");
    std::fs::write(&template_path, serde_json::to_vec(&template())?)?;
    let lab = AgentLab::deploy(&agent_bin, LAB, dir.path(), &template_path)?;
    let fabric = crate::bench::lab_namespaces(LAB)
        .into_iter()
        .find(|n| n.starts_with(&format!("{LAB}-vnet-")))
        .context("no fabric namespace")?;
    let hosts = dir.path().join("bench.hosts");
    std::fs::write(
        &hosts,
        (0..NAMES)
            .map(|i| format!("{} {}\n", record_ip(i), record_name(i)))
            .collect::<String>(),
    )?;
    let mut server = DnsmasqInNetns::start(dnsmasq, &fabric, &hosts, dir.path())?;
    let mut rows: Vec<(&str, &str, Vec<Sample>)> = vec![
        ("agent (168.63.129.16)", AZURE_DNS, Vec::new()),
        ("dnsmasq (10.0.1.1)", DNSMASQ_ADDR, Vec::new()),
    ];
    // A first short run of each warms caches and proves both answer.
    for (_, addr, _) in &rows {
        lab.load(&xtask_bin, addr, 1, s.outstanding, s.threads)?;
    }
    for round in 0..s.rounds {
        for (label, addr, samples) in rows.iter_mut() {
            let v = lab.load(&xtask_bin, addr, s.seconds, s.outstanding, s.threads)?;
            let sample = Sample::from_json(&v)?;
            eprintln!(
                "bench: dns {label:<22} round {}: {:.0} queries/s, p50 {:.0} us, p99 {:.0} us, {} errors, {} lost",
                round + 1,
                sample.qps,
                sample.p50_us,
                sample.p99_us,
                sample.errors,
                sample.lost
            );
            samples.push(sample);
        }
    }
    server.stop();
    let left = lab.down()?;
    ensure!(left.is_empty(), "namespaces left after down: {left:?}");

    let summary: Vec<Value> = rows
        .iter()
        .map(|(label, addr, samples)| {
            let qps: Vec<f64> = samples.iter().map(|s| s.qps).collect();
            let p99: Vec<f64> = samples.iter().map(|s| s.p99_us).collect();
            let p50: Vec<f64> = samples.iter().map(|s| s.p50_us).collect();
            json!({
                "server": label, "address": addr,
                "queriesPerSecond": median(&qps).round(),
                "p50Us": median(&p50).round(), "p99Us": median(&p99).round(),
                "errors": samples.iter().map(|s| s.errors).sum::<u64>(),
                "lost": samples.iter().map(|s| s.lost).sum::<u64>(),
                "rounds": samples.iter().map(|s| json!({"qps": s.qps.round(), "p50Us": s.p50_us.round(), "p99Us": s.p99_us.round(), "errors": s.errors, "lost": s.lost})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let agent_qps = summary[0]["queriesPerSecond"].as_f64().unwrap_or(0.0);
    let dnsmasq_qps = summary[1]["queriesPerSecond"].as_f64().unwrap_or(0.0);
    let agent_errors =
        summary[0]["errors"].as_u64().unwrap_or(1) + summary[0]["lost"].as_u64().unwrap_or(1);
    let met = agent_qps >= dnsmasq_qps && agent_errors == 0;
    println!();
    println!("DNS from an app sandbox ({} names, {} outstanding queries over {} sockets, {} s x {} rounds, medians)",
        NAMES, s.outstanding, s.threads, s.seconds, s.rounds);
    println!(
        "{:<24} {:>12} {:>10} {:>10} {:>8} {:>6}",
        "server", "queries/s", "p50 us", "p99 us", "errors", "lost"
    );
    for v in &summary {
        let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
        println!(
            "{:<24} {:>12.0} {:>10.0} {:>10.0} {:>8} {:>6}",
            v["server"].as_str().unwrap_or_default(),
            f("queriesPerSecond"),
            f("p50Us"),
            f("p99Us"),
            v["errors"],
            v["lost"]
        );
    }
    println!(
        "goal: the agent answers at least dnsmasq's rate ({:.0} >= {:.0}) with no errors: {}",
        agent_qps,
        dnsmasq_qps,
        if met { "MET" } else { "NOT MET" }
    );
    let path = target_dir(root).join("bench/dns.json");
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({
            "quick": quick, "names": NAMES, "outstanding": s.outstanding, "sockets": s.threads,
            "seconds": s.seconds, "rounds": s.rounds, "servers": summary, "goalMet": met,
        }))?,
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

impl AgentLab {
    /// `xtask dns-load` in web1's sandbox against `server`; its JSON.
    fn load(
        &self,
        xtask: &Path,
        server: &str,
        seconds: u64,
        outstanding: usize,
        threads: usize,
    ) -> Result<Value> {
        let out = self
            .cli(&[
                "exec",
                "--app",
                "web1",
                "--",
                xtask.to_str().expect("UTF-8"),
                "dns-load",
                server,
                &NAMES.to_string(),
                &seconds.to_string(),
                &outstanding.to_string(),
                &threads.to_string(),
            ])
            .output()
            .with_context(|| format!("dns-load against {server}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "dns-load against {server} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(text.trim()).with_context(|| format!("dns-load said {text:?}"))
    }
}

/// dnsmasq in a namespace, answering the zone's records from a hosts file.
struct DnsmasqInNetns {
    child: Option<Child>,
}

impl DnsmasqInNetns {
    fn start(bin: &str, netns: &str, hosts: &Path, dir: &Path) -> Result<DnsmasqInNetns> {
        let log = std::fs::File::create(dir.join("dnsmasq.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns, bin])
            .args([
                "--no-daemon",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--user=root",
                "--bind-interfaces",
                &format!("--listen-address={DNSMASQ_ADDR}"),
                &format!("--addn-hosts={}", hosts.display()),
                "--cache-size=1000",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting dnsmasq")?;
        let mut d = DnsmasqInNetns { child: Some(child) };
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = d.child.as_mut().expect("started").try_wait()? {
            bail!(
                "dnsmasq exited ({status}): {}",
                tail(
                    &std::fs::read_to_string(dir.join("dnsmasq.log")).unwrap_or_default(),
                    10
                )
            );
        }
        Ok(d)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for DnsmasqInNetns {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `xtask dns-load SERVER NAMES SECONDS OUTSTANDING THREADS`: the load
/// generator. Each thread keeps OUTSTANDING/THREADS A queries for
/// `h<i>.bench.internal` in flight on its own UDP socket for SECONDS and
/// checks each answer (NOERROR, the record's address); an answer not back
/// within a second counts as lost. Prints one JSON line.
pub fn load(args: &[&str]) -> Result<()> {
    let [server, names, seconds, outstanding, threads] = args else {
        bail!("usage: xtask dns-load SERVER NAMES SECONDS OUTSTANDING THREADS");
    };
    let server: Ipv4Addr = server.parse()?;
    let names: u32 = names.parse()?;
    let seconds: u64 = seconds.parse()?;
    let outstanding: usize = outstanding.parse()?;
    let threads: usize = threads.parse::<usize>()?.max(1);
    let duration = Duration::from_secs(seconds);
    let per = (outstanding / threads).max(1);
    let handles: Vec<_> = (0..threads)
        .map(|t| std::thread::spawn(move || load_thread(server, names, duration, per, t as u32)))
        .collect();
    let mut total = LoadResult::default();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))??;
        total.answered += r.answered;
        total.errors += r.errors;
        total.lost += r.lost;
        total.latencies_us.extend(r.latencies_us);
    }
    let lat: Vec<f64> = total.latencies_us.iter().map(|&u| f64::from(u)).collect();
    println!(
        "{}",
        json!({
            "qps": total.answered as f64 / duration.as_secs_f64(),
            "answered": total.answered, "errors": total.errors, "lost": total.lost,
            "p50_us": percentile(&lat, 50.0), "p99_us": percentile(&lat, 99.0),
        })
    );
    Ok(())
}

#[derive(Default)]
struct LoadResult {
    answered: u64,
    errors: u64,
    lost: u64,
    latencies_us: Vec<u32>,
}

/// A standard query for `name`, type A, RD set, id 0 (patched per send).
fn query_bytes(name: &str) -> Vec<u8> {
    let mut q = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// An answer is right when it is a NOERROR response with one answer whose
/// address (the last four bytes: no EDNS, no other records) is the record's.
fn answer_ok(resp: &[u8], query_len: usize, expected: Ipv4Addr) -> bool {
    resp.len() >= query_len + 16
        && resp[2] & 0x80 != 0
        && resp[3] & 0x0f == 0
        && u16::from_be_bytes([resp[6], resp[7]]) == 1
        && resp[resp.len() - 4..] == expected.octets()
}

fn load_thread(
    server: Ipv4Addr,
    names: u32,
    duration: Duration,
    outstanding: usize,
    seed: u32,
) -> Result<LoadResult> {
    let sock = UdpSocket::bind(("0.0.0.0", 0))?;
    sock.connect(SocketAddr::from((server, 53)))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut queries: Vec<Vec<u8>> = (0..names).map(|i| query_bytes(&record_name(i))).collect();
    // In flight, by query id: (sent at, record index).
    let mut flight: Vec<Option<(Instant, u32)>> = vec![None; 65536];
    let mut in_flight = 0usize;
    let mut next_id: u16 = (seed as u16).wrapping_mul(16411);
    let mut next_name = seed * 7919 % names.max(1);
    let mut r = LoadResult::default();
    let mut buf = [0u8; 1500];
    let start = Instant::now();
    let end = start + duration;
    let mut last_sweep = start;
    loop {
        let now = Instant::now();
        let sending = now < end;
        while sending && in_flight < outstanding {
            // Skip ids still in flight (only after 65,536 sends without an answer).
            while flight[usize::from(next_id)].is_some() {
                next_id = next_id.wrapping_add(1);
            }
            let q = &mut queries[next_name as usize];
            q[..2].copy_from_slice(&next_id.to_be_bytes());
            sock.send(q)?;
            flight[usize::from(next_id)] = Some((Instant::now(), next_name));
            in_flight += 1;
            next_id = next_id.wrapping_add(1);
            next_name = (next_name + 1) % names;
        }
        if !sending && in_flight == 0 {
            break;
        }
        match sock.recv(&mut buf) {
            Ok(n) if n >= 12 => {
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                if let Some((sent, idx)) = flight[usize::from(id)].take() {
                    in_flight -= 1;
                    let q_len = queries[idx as usize].len();
                    if answer_ok(&buf[..n], q_len, record_ip(idx)) {
                        // Only answers to queries sent in the window count.
                        if sent < end {
                            r.answered += 1;
                            r.latencies_us
                                .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        }
                    } else {
                        r.errors += 1;
                    }
                }
            }
            Ok(_) => r.errors += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => r.errors += 1,
            Err(e) => return Err(e.into()),
        }
        // Queries not answered within a second are lost.
        let now = Instant::now();
        if now.duration_since(last_sweep) > Duration::from_millis(200) {
            last_sweep = now;
            for slot in flight.iter_mut() {
                if slot.is_some_and(|(sent, _)| now.duration_since(sent) > Duration::from_secs(1)) {
                    *slot = None;
                    in_flight -= 1;
                    r.lost += 1;
                }
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_answers_on_the_wire() {
        let q = query_bytes("h1.bench.internal");
        assert_eq!(q.len(), 12 + 1 + 2 + 1 + 5 + 1 + 8 + 1 + 4);
        // A hand-made answer: header (response, NOERROR, 1 answer), question, A record.
        let mut a = q.clone();
        a[2] |= 0x80;
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        a.extend_from_slice(&record_ip(1).octets());
        assert!(answer_ok(&a, q.len(), record_ip(1)));
        assert!(!answer_ok(&a, q.len(), record_ip(2)));
        a[3] = 3; // NXDOMAIN
        assert!(!answer_ok(&a, q.len(), record_ip(1)));
    }
}
