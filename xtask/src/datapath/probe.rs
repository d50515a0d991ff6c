//! Measuring one path: its servers (iperf3 and `xtask rr-server`) start
//! once on the far side and stay up for the whole run; each round runs the
//! clients once (iperf3 throughput, then request/response and connect
//! latency). Every step is time-limited; servers end by their PID.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use super::template::{IPERF_PORT, RR_PORT};
use crate::run::{output, tail, timed};

/// How long a server may take to listen.
const LISTEN_LIMIT: Duration = Duration::from_secs(10);
/// The latency client's whole run.
const RR_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub rounds: usize,
    pub iperf_seconds: u32,
    pub round_trips: u32,
    pub connects: u32,
}

impl Settings {
    /// Many short rounds rather than a few long ones: the rounds of the
    /// paths interleave, so a slow moment of the machine costs every path
    /// alike, and the medians drop the outliers.
    pub const FULL: Settings = Settings {
        rounds: 15,
        iperf_seconds: 2,
        round_trips: 5000,
        connects: 500,
    };
    pub const QUICK: Settings = Settings {
        rounds: 3,
        iperf_seconds: 1,
        round_trips: 2000,
        connects: 200,
    };

    /// A bound on the whole run of `paths` paths: the servers' lifetime,
    /// so none outlives the benchmark for long.
    pub fn lifetime_s(self, paths: usize) -> u32 {
        let per_round = self.iperf_seconds + 30;
        120 + (self.rounds * paths) as u32 * per_round
    }

    pub fn to_json(self) -> Value {
        json!({
            "rounds": self.rounds, "iperfSeconds": self.iperf_seconds,
            "roundTrips": self.round_trips, "connects": self.connects,
        })
    }
}

/// How to run a program on each side of a path.
pub struct Endpoints {
    /// argv prefixes: `ip netns exec NS` or `vnet-agent exec --vm vm1 --`.
    pub server: Vec<String>,
    pub client: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The server's namespace, where `ss` sees it listen.
    pub server_netns: String,
    pub server_ip: String,
}

impl Endpoints {
    fn command(&self, prefix: &[String], program: &[&str]) -> Command {
        let mut c = Command::new(&prefix[0]);
        c.args(&prefix[1..])
            .args(program)
            .envs(self.env.iter().cloned());
        c
    }
}

/// The CPUs of the request/response ends, on every path alike. Both ends
/// busy-poll; left to the scheduler they sometimes share a CPU or swap, and
/// the round trip times of one path split into two clusters (17 and 21 us
/// on the lab path, measured), enough to move a 5% comparison either way.
const RR_CLIENT_CPU: &str = "0";
const RR_SERVER_CPU: &str = "1";

/// `program` under `taskset -c cpu`, or as it is on a machine with one CPU.
fn pinned<'a>(cpu: &'a str, program: &[&'a str]) -> Vec<&'a str> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return program.to_vec();
    }
    let mut v = vec!["taskset", "-c", cpu];
    v.extend_from_slice(program);
    v
}

/// The numbers of one round of one path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub gbit_s: f64,
    pub retransmits: Option<u64>,
    pub sender_cpu_pct: Option<f64>,
    pub receiver_cpu_pct: Option<f64>,
    /// CPUs the whole machine kept busy during the throughput run (0 to the
    /// number of CPUs): sender, receiver and every hop's softirq between.
    pub busy_cpus: Option<f64>,
    pub rr_p50_us: f64,
    pub rr_p99_us: f64,
    pub connect_p50_us: f64,
    pub connect_p99_us: f64,
}

impl Sample {
    pub fn to_json(&self) -> Value {
        json!({
            "gbitS": self.gbit_s, "retransmits": self.retransmits,
            "senderCpuPct": self.sender_cpu_pct, "receiverCpuPct": self.receiver_cpu_pct,
            "busyCpus": self.busy_cpus,
            "rrP50Us": self.rr_p50_us, "rrP99Us": self.rr_p99_us,
            "connectP50Us": self.connect_p50_us, "connectP99Us": self.connect_p99_us,
        })
    }
}

/// The servers of one path, up until dropped.
pub struct Servers {
    _iperf: Server,
    _rr: Server,
}

impl Servers {
    /// Starts iperf3 and the request/response server on the far side of
    /// `ends` and waits until both listen; each ends by itself after
    /// `lifetime_s` if nothing ended it before.
    pub fn start(
        ends: &Endpoints,
        xtask_bin: &Path,
        dir: &Path,
        lifetime_s: u32,
    ) -> Result<Servers> {
        let lifetime = lifetime_s.to_string();
        let port = IPERF_PORT.to_string();
        let iperf = Server::start(
            ends.command(
                &ends.server,
                &["timeout", &lifetime, "iperf3", "-s", "-p", &port],
            ),
            dir,
            "iperf3-server",
        )?;
        iperf.wait_listening(&ends.server_netns, IPERF_PORT)?;
        let xtask = xtask_bin.to_string_lossy().into_owned();
        let rr_port = RR_PORT.to_string();
        let rr = Server::start(
            ends.command(
                &ends.server,
                &pinned(RR_SERVER_CPU, &[&xtask, "rr-server", &rr_port, &lifetime]),
            ),
            dir,
            "rr-server",
        )?;
        rr.wait_listening(&ends.server_netns, RR_PORT)?;
        Ok(Servers {
            _iperf: iperf,
            _rr: rr,
        })
    }
}

/// One round of one path (its `Servers` up): iperf3 for `iperf_seconds`,
/// then `round_trips` 1-byte round trips and `connects` new connections.
pub fn measure(ends: &Endpoints, xtask_bin: &Path, s: &Settings, dir: &Path) -> Result<Sample> {
    let port = IPERF_PORT.to_string();
    let secs = s.iperf_seconds.to_string();
    let mut client = ends.command(
        &ends.client,
        &[
            "iperf3",
            "-c",
            &ends.server_ip,
            "-p",
            &port,
            "-t",
            &secs,
            "-J",
            "--connect-timeout",
            "5000",
        ],
    );
    let limit = Duration::from_secs(u64::from(s.iperf_seconds) + 30);
    let (out, err) = (dir.join("iperf3.out"), dir.join("iperf3.err"));
    let before = CpuTimes::read();
    let (status, _) = timed(&mut client, limit, &out, &err)?;
    let busy_cpus = CpuTimes::read().and_then(|after| after.busy_cpus_since(&before?));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let iperf = parse_iperf(&text).with_context(|| {
        format!(
            "iperf3 client ({status}): {}",
            tail(&std::fs::read_to_string(&err).unwrap_or_default(), 10)
        )
    })?;
    ensure!(status.success(), "iperf3 client failed ({status})");

    let xtask = xtask_bin.to_string_lossy().into_owned();
    let rr_port = RR_PORT.to_string();
    let (trips, connects) = (s.round_trips.to_string(), s.connects.to_string());
    let mut client = ends.command(
        &ends.client,
        &pinned(
            RR_CLIENT_CPU,
            &[
                &xtask,
                "rr-client",
                &ends.server_ip,
                &rr_port,
                &trips,
                &connects,
            ],
        ),
    );
    let (out, err) = (dir.join("rr.out"), dir.join("rr.err"));
    let (status, _) = timed(&mut client, RR_LIMIT, &out, &err)?;
    ensure!(
        status.success(),
        "rr-client failed ({status}): {}",
        tail(&std::fs::read_to_string(&err).unwrap_or_default(), 10)
    );
    let rr = parse_rr(&std::fs::read_to_string(&out)?)?;
    Ok(Sample {
        gbit_s: iperf.gbit_s,
        retransmits: iperf.retransmits,
        sender_cpu_pct: iperf.sender_cpu_pct,
        receiver_cpu_pct: iperf.receiver_cpu_pct,
        busy_cpus,
        rr_p50_us: rr.rr_p50_us,
        rr_p99_us: rr.rr_p99_us,
        connect_p50_us: rr.connect_p50_us,
        connect_p99_us: rr.connect_p99_us,
    })
}

/// The machine's CPU time so far (`/proc/stat`, first line, in ticks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    cpus: u32,
    total: u64,
    /// idle + iowait.
    idle: u64,
}

impl CpuTimes {
    fn read() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let mut lines = stat.lines();
        let first: Vec<u64> = lines
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let cpus = lines.filter(|l| l.starts_with("cpu")).count() as u32;
        (first.len() >= 5 && cpus > 0).then(|| CpuTimes {
            cpus,
            total: first.iter().sum(),
            idle: first[3] + first[4],
        })
    }

    /// How many CPUs were busy on average between `before` and `self`.
    pub fn busy_cpus_since(&self, before: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(before.total)?;
        let idle = self.idle.checked_sub(before.idle)?;
        (total > 0).then(|| (total - idle.min(total)) as f64 / total as f64 * f64::from(self.cpus))
    }
}

/// What `iperf3 -c ... -J` reports.
#[derive(Debug, PartialEq)]
pub struct Iperf {
    pub gbit_s: f64,
    pub retransmits: Option<u64>,
    pub sender_cpu_pct: Option<f64>,
    pub receiver_cpu_pct: Option<f64>,
}

/// Parses `iperf3 -J` output: `end.sum_received.bits_per_second` (what
/// reached the server), with retransmits and CPU use when present; iperf3's
/// own `error` when it failed.
pub fn parse_iperf(text: &str) -> Result<Iperf> {
    let v: Value = serde_json::from_str(text).context("iperf3 -J printed no JSON")?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        bail!("iperf3: {e}");
    }
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 JSON has no end.sum_received.bits_per_second")?;
    ensure!(bps > 0.0, "iperf3 received nothing");
    let cpu = &v["end"]["cpu_utilization_percent"];
    Ok(Iperf {
        gbit_s: bps / 1e9,
        retransmits: v["end"]["sum_sent"]["retransmits"].as_u64(),
        sender_cpu_pct: cpu["host_total"].as_f64(),
        receiver_cpu_pct: cpu["remote_total"].as_f64(),
    })
}

/// What `xtask rr-client` prints.
#[derive(Debug, PartialEq)]
pub struct Rr {
    pub rr_p50_us: f64,
    pub rr_p99_us: f64,
    pub connect_p50_us: f64,
    pub connect_p99_us: f64,
}

pub fn parse_rr(text: &str) -> Result<Rr> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("rr-client printed no JSON")?;
    let v: Value = serde_json::from_str(line).context("rr-client output")?;
    let f = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("rr-client output has no {k}: {line}"))
    };
    Ok(Rr {
        rr_p50_us: f("rrP50Us")?,
        rr_p99_us: f("rrP99Us")?,
        connect_p50_us: f("connectP50Us")?,
        connect_p99_us: f("connectP99Us")?,
    })
}

/// A server on the far side, in a process group of its own; ended (the whole
/// group, by its id) on drop if it has not exited.
struct Server {
    child: Option<Child>,
    name: String,
    log: std::path::PathBuf,
}

impl Server {
    fn start(mut cmd: Command, dir: &Path, name: &str) -> Result<Server> {
        let log = dir.join(format!("{name}.log"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(dir.join(format!("{name}.err")))?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        Ok(Server {
            child: Some(child),
            name: name.into(),
            log,
        })
    }

    /// Waits until something listens on TCP `port` in `netns`.
    fn wait_listening(&self, netns: &str, port: u16) -> Result<()> {
        let deadline = Instant::now() + LISTEN_LIMIT;
        let filter = format!("sport = :{port}");
        while Instant::now() < deadline {
            let listening =
                output(Command::new("ip").args(["netns", "exec", netns, "ss", "-Hltn", &filter]))?;
            if !listening.trim().is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let err = std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default();
        bail!(
            "{} did not listen on :{port} in {netns} within {} s: {}",
            self.name,
            LISTEN_LIMIT.as_secs(),
            tail(&err, 10)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                // Its own process group (process_group(0)): the group id is its PID.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
            }
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_cpus_from_proc_stat() {
        // user nice system idle iowait irq softirq steal
        let before = CpuTimes::parse(
            "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\ncpu1 50 0 50 350 50 0 0 0 0 0\nintr 1\n",
        )
        .unwrap();
        // 200 more ticks over 2 CPUs: 150 busy (user, system, softirq), 50 idle.
        let after = CpuTimes::parse(
            "cpu  160 0 180 740 110 0 10 0 0 0\ncpu0 1 0 1 1 1 0 0 0 0 0\ncpu1 1 0 1 1 1 0 0 0 0 0\n",
        )
        .unwrap();
        let busy = after.busy_cpus_since(&before).unwrap();
        assert!((busy - 1.5).abs() < 1e-9, "{busy}");
        assert_eq!(before.busy_cpus_since(&after), None, "time never runs back");
        assert_eq!(CpuTimes::parse("intr 1\n"), None);
    }

    /// The parts of a real `iperf3 -c ... -J` (3.12) that are read.
    const IPERF_OK: &str = r#"{
        "start": { "connected": [{ "socket": 5, "local_host": "10.0.1.4", "remote_host": "10.0.2.4", "remote_port": 5201 }],
                   "test_start": { "protocol": "TCP", "num_streams": 1, "duration": 5 } },
        "intervals": [],
        "end": {
            "streams": [],
            "sum_sent": { "start": 0, "end": 5.0001, "seconds": 5.0001, "bytes": 12500000000,
                          "bits_per_second": 19999600007.9, "retransmits": 17, "sender": true },
            "sum_received": { "start": 0, "end": 5.0004, "seconds": 5.0004, "bytes": 12499000000,
                              "bits_per_second": 19996000000.0, "sender": true },
            "cpu_utilization_percent": { "host_total": 97.5, "host_user": 1.2, "host_system": 96.3,
                                         "remote_total": 61.0, "remote_user": 0.9, "remote_system": 60.1 },
            "sender_tcp_congestion": "cubic", "receiver_tcp_congestion": "cubic"
        }
    }"#;

    #[test]
    fn iperf3_json() {
        let r = parse_iperf(IPERF_OK).unwrap();
        assert!((r.gbit_s - 19.996).abs() < 1e-9);
        assert_eq!(r.retransmits, Some(17));
        assert_eq!(r.sender_cpu_pct, Some(97.5));
        assert_eq!(r.receiver_cpu_pct, Some(61.0));

        let failed = r#"{ "start": {}, "intervals": [], "end": {},
                          "error": "unable to connect to server: Connection refused" }"#;
        let e = parse_iperf(failed).unwrap_err().to_string();
        assert!(e.contains("Connection refused"), "{e}");
        assert!(parse_iperf("").is_err());
        assert!(parse_iperf(r#"{"end": {"sum_received": {}}}"#).is_err());
        let zero = r#"{"end": {"sum_received": {"bits_per_second": 0}}}"#;
        assert!(parse_iperf(zero).is_err());
        let minimal = r#"{"end": {"sum_received": {"bits_per_second": 1e9}}}"#;
        let r = parse_iperf(minimal).unwrap();
        assert_eq!((r.gbit_s, r.retransmits), (1.0, None));
    }

    #[test]
    fn rr_client_output() {
        let line = r#"{"connectP50Us":61.2,"connectP99Us":140.0,"connects":500,"roundTrips":5000,"rrP50Us":24.5,"rrP99Us":51.0}"#;
        let r = parse_rr(&format!("some noise\n{line}\n")).unwrap();
        assert_eq!(r.rr_p50_us, 24.5);
        assert_eq!(r.connect_p99_us, 140.0);
        assert!(parse_rr("nothing").is_err());
        // No connects measured: percentiles are null, which is an error here.
        assert!(
            parse_rr(r#"{"rrP50Us":1,"rrP99Us":2,"connectP50Us":null,"connectP99Us":null}"#)
                .is_err()
        );
    }
}
