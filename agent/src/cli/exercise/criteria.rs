//! The criteria of an exercise's `check.json`, and how each is proved. A
//! connection is real traffic between two of the lab's namespaces (`lab
//! probe listen` in one, `lab probe connect` in the other, both this binary
//! entered with `exec`); a name is resolved inside the app's sandbox with its
//! own DNS; a resource's state is read from the API.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use super::group;
use crate::api::client::request;
use crate::cli::Global;
use crate::template::DEFAULT_SUBSCRIPTION;

/// One line of `check.json`: its `name` and what it proves.
#[derive(Deserialize, Debug)]
pub struct Criterion {
    pub name: String,
    #[serde(flatten)]
    pub test: Test,
}

/// Told apart by their fields: `to` (a connection), `resolve` (a DNS
/// name), `resource` (a resource's state).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Test {
    Connection(Connection),
    Resolution(Resolution),
    Request(Request),
    Resource(ResourceState),
}

/// A namespace of the exercise's lab: `{"app": NAME}`, `{"vm": NAME}` or
/// `{"host": NAME}` (an internet host).
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    App(String),
    Vm(String),
    Host(String),
    /// `Lab.Emulator/onPremisesHosts`: a host at an on-premises site.
    #[serde(rename = "onPremisesHost")]
    OnPremisesHost(String),
}

#[derive(Deserialize, Debug)]
pub struct Target {
    #[serde(flatten)]
    pub who: Who,
    pub address: Ipv4Addr,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Connects,
    Blocked,
}

/// The source address the listener must see: written out, or a public IP
/// resource of the exercise's group.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Source {
    Address(Ipv4Addr),
    PublicIp {
        #[serde(rename = "publicIPAddress")]
        public_ip: String,
    },
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub from: Who,
    pub to: Target,
    pub port: u16,
    pub expect: Expect,
    #[serde(default)]
    pub source: Option<Source>,
    /// Connections held at once (an app's pool): all must connect.
    #[serde(default = "one")]
    pub connections: u32,
    /// Seconds a connection that must succeed may take to start succeeding
    /// (a restarted app, BGP routes converging).
    #[serde(default = "two")]
    pub within: u64,
}

fn one() -> u32 {
    1
}

fn two() -> u64 {
    2
}

#[derive(Deserialize, Debug)]
pub struct Resolution {
    pub from: Who,
    pub resolve: String,
    /// The A record the name must resolve to there.
    pub answer: Ipv4Addr,
}

/// An HTTP(S) GET of `url` from a namespace (curl, trusting the lab's CA,
/// the name resolved by the namespace's own DNS), answered with `status`.
#[derive(Deserialize, Debug)]
pub struct Request {
    pub from: Who,
    pub url: String,
    pub status: u16,
    /// Seconds the answer may take to become `status` (a service re-reads
    /// its firewall within a poll interval of the change).
    #[serde(default = "five")]
    pub within: u64,
}

fn five() -> u64 {
    5
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Present,
    Absent,
}

/// `resource` is `PROVIDER/TYPE/NAME[/CHILD/NAME]` in the exercise's group;
/// when present, `property` (dotted) may have to equal `equals`.
#[derive(Deserialize, Debug)]
pub struct ResourceState {
    pub resource: String,
    pub expect: Presence,
    #[serde(default)]
    pub property: Option<String>,
    #[serde(default)]
    pub equals: Option<Value>,
}

/// Proves one criterion: whether it holds, and in plain words why.
pub fn prove(g: &Global, n: u32, c: &Criterion) -> Result<(bool, String)> {
    match &c.test {
        Test::Connection(t) => {
            // A change can restart the app (as a configuration change does
            // in Azure): a connection that must succeed gets `within`
            // seconds; one that must be blocked is tried once.
            let within = if t.expect == Expect::Blocked {
                0
            } else {
                t.within
            };
            until_proved(within, || connect_once(g, n, t))
        }
        Test::Resolution(t) => {
            let out = probe_in(n, &t.from, &["resolve".into(), t.resolve.clone()])?.output()?;
            let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok(if said == t.answer.to_string() {
                (true, format!("{} resolves to {said}", t.resolve))
            } else if said.is_empty() {
                (
                    false,
                    format!(
                        "{} could not be resolved there: {}",
                        t.resolve,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                )
            } else {
                (
                    false,
                    format!("{} resolves to {said}, not {}", t.resolve, t.answer),
                )
            })
        }
        Test::Request(t) => until_proved(t.within, || request_once(n, t)),
        Test::Resource(t) => resource_state(g, n, t),
    }
}

fn request_once(n: u32, t: &Request) -> Result<(bool, String)> {
    // The body's first line names Azure's error code when it is one.
    let script = "curl -sS --max-time 5 ${VNET_LAB_CA_FILE:+--cacert \"$VNET_LAB_CA_FILE\"} \
                  -w '\n%{http_code}' \"$0\"";
    let out = exec_in(n, &t.from)?
        .args(["sh", "-c", script, &t.url])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", text.trim()));
    let code: u16 = code.trim().parse().unwrap_or(0);
    let said = serde_json::from_str::<Value>(body.lines().next().unwrap_or(""))
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    Ok(if code == t.status {
        (true, format!("GET {} answers {code}", t.url))
    } else if code == 0 {
        (
            false,
            format!(
                "GET {} got no answer: {}",
                t.url,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
    } else {
        (
            false,
            format!("GET {} answers {code} {said}, not {}", t.url, t.status),
        )
    })
}

/// Tries `once` until it proves its criterion or `within` seconds pass
/// (at least once).
fn until_proved(
    within: u64,
    mut once: impl FnMut() -> Result<(bool, String)>,
) -> Result<(bool, String)> {
    let deadline = Instant::now() + Duration::from_secs(within);
    loop {
        let last = once()?;
        if last.0 || Instant::now() >= deadline {
            return Ok(last);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn resource_path(n: u32, resource: &str) -> Result<String> {
    let mut parts = resource.splitn(2, '/');
    let (Some(ns), Some(rest)) = (parts.next(), parts.next()) else {
        bail!("a criterion's resource is PROVIDER/TYPE/NAME: {resource}");
    };
    Ok(format!(
        "/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{}/providers/{ns}/{rest}",
        group(n)
    ))
}

fn resource_state(g: &Global, n: u32, t: &ResourceState) -> Result<(bool, String)> {
    let (status, v) = request(
        &g.socket(),
        &g.principal,
        "GET",
        &resource_path(n, &t.resource)?,
        None,
    )?;
    let exists = status == 200;
    Ok(match (t.expect, exists) {
        (Presence::Absent, true) => (false, format!("{} still exists", t.resource)),
        (Presence::Absent, false) => (true, format!("{} is gone", t.resource)),
        (Presence::Present, false) => (false, format!("{} does not exist", t.resource)),
        (Presence::Present, true) => match (&t.property, &t.equals) {
            (Some(p), Some(want)) => {
                let got = p.split('.').fold(&v, |v, k| match k.parse::<usize>() {
                    Ok(i) if v.is_array() => &v[i],
                    _ => &v[k],
                });
                if got == want {
                    (true, format!("{} has {p} = {got}", t.resource))
                } else {
                    (false, format!("{} has {p} = {got}, not {want}", t.resource))
                }
            }
            _ => (true, format!("{} exists", t.resource)),
        },
    })
}

/// `vnet-agent exec <who> -- vnet-agent lab probe ...` as a child.
fn probe_in(n: u32, who: &Who, args: &[String]) -> Result<Command> {
    let me = std::env::current_exe()?;
    let mut c = exec_in(n, who)?;
    c.arg(&me).args(["lab", "probe"]).args(args);
    Ok(c)
}

/// `vnet-agent exec <who> --`, the program still to add. Names are the
/// exercise's own, given as full ids, so another exercise's app of the same
/// name is never the one entered.
fn exec_in(n: u32, who: &Who) -> Result<Command> {
    let me = std::env::current_exe()?;
    let id = |ns: &str, ty: &str, name: &str| {
        crate::model::ResourceId::new(DEFAULT_SUBSCRIPTION, &group(n), ns, ty, name).to_string()
    };
    let mut c = Command::new(&me);
    c.arg("exec");
    match who {
        Who::App(a) => c.args(["--app", &id("Microsoft.Web", "sites", a)]),
        Who::Vm(v) => c.args(["--vm", &id("Microsoft.Compute", "virtualMachines", v)]),
        Who::Host(h) => c.args(["--host", &id("Lab.Emulator", "internetHosts", h)]),
        Who::OnPremisesHost(h) => {
            c.args(["--onprem-host", &id("Lab.Emulator", "onPremisesHosts", h)])
        }
    };
    c.arg("--");
    Ok(c)
}

/// The address a criterion's source must be, or why there is none yet (a
/// public IP the user still has to create is a failed criterion, not an
/// error of the check).
fn source(g: &Global, n: u32, s: &Source) -> Result<std::result::Result<Ipv4Addr, String>> {
    let name = match s {
        Source::Address(a) => return Ok(Ok(*a)),
        Source::PublicIp { public_ip } => public_ip,
    };
    let path = resource_path(n, &format!("Microsoft.Network/publicIPAddresses/{name}"))?;
    let (status, pip) = request(&g.socket(), &g.principal, "GET", &path, None)?;
    if status != 200 {
        return Ok(Err(format!("public IP {name} does not exist")));
    }
    Ok(pip["properties"]["ipAddress"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("public IP {name} has no address yet")))
}

fn connect_once(g: &Global, n: u32, t: &Connection) -> Result<(bool, String)> {
    let (address, port) = (t.to.address, t.port);
    let count = t.connections.max(1).to_string();
    let mut listener = probe_in(
        n,
        &t.to.who,
        &[
            "listen".into(),
            port.to_string(),
            "--count".into(),
            count.clone(),
        ],
    )?
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()?;
    let mut out = BufReader::new(listener.stdout.take().context("listener output")?);
    let mut line = String::new();
    out.read_line(&mut line)?; // "listening"
    let client = probe_in(
        n,
        &t.from,
        &[
            "connect".into(),
            address.to_string(),
            port.to_string(),
            "--count".into(),
            count,
        ],
    )?
    .output()?;
    let said = String::from_utf8_lossy(&client.stdout).trim().to_string();
    let connected = client.status.success();
    let _ = listener.kill();
    let _ = listener.wait();
    Ok(match (t.expect, connected) {
        (Expect::Connects, false) if t.connections > 1 => (
            false,
            format!(
                "not all {} connections to {address}:{port} at once ({said})",
                t.connections
            ),
        ),
        (Expect::Connects, false) => (false, format!("no connection to {address}:{port}")),
        (Expect::Blocked, true) => (false, format!("{address}:{port} still answers ({said})")),
        (Expect::Blocked, false) => (true, format!("{address}:{port} is blocked")),
        (Expect::Connects, true) => match &t.source {
            Some(s) => match source(g, n, s)? {
                Ok(src) if said.contains(&format!("peer={src}:")) => {
                    (true, format!("connected ({said})"))
                }
                Ok(src) => (
                    false,
                    format!("connected, but the other end saw {said}, not {src}"),
                ),
                Err(why) => (false, format!("connected ({said}), but {why}")),
            },
            None => (true, format!("connected ({said})")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Criterion {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn criteria_are_told_apart_by_their_fields() {
        let c = parse(serde_json::json!({"name": "c", "from": {"app": "web1"},
            "to": {"vm": "db", "address": "10.0.2.4"}, "port": 5432, "expect": "connects",
            "source": {"publicIPAddress": "pip"}, "connections": 200}));
        let Test::Connection(t) = c.test else {
            panic!("{c:?}")
        };
        assert!(matches!(t.to.who, Who::Vm(ref v) if v == "db"));
        assert_eq!(t.connections, 200);
        assert!(matches!(t.source, Some(Source::PublicIp { .. })));
        let c = parse(serde_json::json!({"name": "r", "from": {"app": "web1"},
            "resolve": "a.blob.core.windows.net", "answer": "10.0.3.4"}));
        assert!(matches!(c.test, Test::Resolution(_)));
        let c = parse(serde_json::json!({"name": "s",
            "resource": "Microsoft.Network/virtualNetworks/vnet1", "expect": "absent"}));
        assert!(matches!(c.test, Test::Resource(ref r) if r.expect == Presence::Absent));
    }

    #[test]
    fn a_criterion_that_is_none_of_them_is_refused() {
        for bad in [
            serde_json::json!({"name": "x", "from": {"app": "a"}, "to": {"vm": "b", "address": "10.0.0.1"},
                               "port": 1, "expect": "maybe"}),
            serde_json::json!({"name": "x", "from": {"pod": "a"}, "resolve": "n", "answer": "10.0.0.1"}),
            serde_json::json!({"name": "x", "resource": "vnet1", "expect": "gone"}),
        ] {
            assert!(
                serde_json::from_value::<Criterion>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn resources_are_paths_in_the_exercises_group() {
        assert_eq!(
            resource_path(7, "Microsoft.Network/virtualNetworks/vnet1/subnets/a").unwrap(),
            format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/ex07/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/a")
        );
        assert!(resource_path(7, "vnet1").is_err());
    }
}
