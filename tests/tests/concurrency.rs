//! Many clients at once against one daemon, as a team sharing a lab would
//! be: sixteen clients for 60 s (`VNET_CONCURRENCY_SECONDS`) doing
//! conflicting writes (deploys, plan scale, site config, NSG rules) and
//! reads. Every request gets an answer (success, or Azure's error), none is
//! lost, and the final state is what some serial order of the successful
//! writes leaves: for every property, the value of a successful write that
//! no other successful write to it followed in real time. A long deploy
//! does not hold reads back.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use vnet_e2e::{basic_template, id, Lab, Rng};

const RG: &str = "conc";
const CLIENTS: usize = 16;
const RULES: usize = 4;

/// One property the clients fight over, and the value a write gave it
/// (`None`: a rule deleted).
type Key = String;

#[derive(Debug, Clone)]
struct Write {
    client: usize,
    start: Instant,
    end: Instant,
    values: Vec<(Key, Option<String>)>,
    what: String,
}

#[derive(Default)]
struct Journal {
    writes: Vec<Write>,
    /// Requests answered with an Azure error (a rule deleted twice, say), by code.
    refused: BTreeMap<String, usize>,
    reads: usize,
    read_latency_ms: Vec<u128>,
}

fn cli(lab_env: &[(String, String)], args: &[String]) -> Output {
    Command::new(vnet_e2e::agent_bin())
        .envs(lab_env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vnet-agent")
}

fn lab_env(lab: &Lab) -> Vec<(String, String)> {
    let c = lab.command();
    c.get_envs()
        .filter_map(|(k, v)| {
            Some((
                k.to_string_lossy().into_owned(),
                v?.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// One client's next request: the CLI arguments, and what it writes.
fn next_request(
    client: usize,
    rng: &mut Rng,
    template: &str,
) -> (Vec<String>, Vec<(Key, Option<String>)>) {
    match rng.below(10) {
        // A deploy of the whole lab: capacity, both sites' Route All.
        0 => {
            let c = 1 + rng.below(3);
            let path = format!("{template}-{c}.json");
            (
                words(&format!("deploy -g {RG} -f {path}")),
                vec![
                    ("capacity".into(), Some(c.to_string())),
                    ("web1.routeAll".into(), Some("false".into())),
                    ("web2.routeAll".into(), Some("true".into())),
                ],
            )
        }
        1 | 2 => {
            let c = 1 + rng.below(3);
            (
                words(&format!(
                    "appservice plan update -g {RG} -n plan1 --number-of-workers {c}"
                )),
                vec![("capacity".into(), Some(c.to_string()))],
            )
        }
        3 | 4 => {
            let site = if rng.below(2) == 0 { "web1" } else { "web2" };
            let on = rng.below(2) == 0;
            (
                words(&format!(
                    "webapp config set -g {RG} -n {site} --vnet-route-all-enabled {on}"
                )),
                vec![(format!("{site}.routeAll"), Some(on.to_string()))],
            )
        }
        5..=7 => {
            let r = rng.below(RULES as u64);
            // Each client its own priorities: two rules never share one.
            let priority = 100 + client as u64 * 10 + r;
            (
                words(&format!(
                    "network nsg rule create -g {RG} --nsg-name nsg1 -n rule{r} \
                     --priority {priority} --direction Inbound --access Deny --protocol Tcp \
                     --source-address-prefixes * --source-port-ranges * \
                     --destination-address-prefixes * --destination-port-ranges {}",
                    1000 + client
                )),
                vec![(format!("rule{r}"), Some(priority.to_string()))],
            )
        }
        _ => {
            let r = rng.below(RULES as u64);
            (
                words(&format!(
                    "network nsg rule delete -g {RG} --nsg-name nsg1 -n rule{r}"
                )),
                vec![(format!("rule{r}"), None)],
            )
        }
    }
}

/// An answer is Azure's: a JSON body on success, or an error naming its code.
fn answered(out: &Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    out.status.code().is_some()
        && !err.contains("bad status line")
        && !err.contains("closed the connection")
        && !err.contains("connecting to")
        && (out.status.success() || err.starts_with("ERROR: ("))
}

/// The lab's state as the keys see it.
fn observed(lab: &Lab) -> BTreeMap<Key, Option<String>> {
    let mut m = BTreeMap::new();
    let plan = lab.show(&id(RG, "Microsoft.Web/serverfarms", "plan1"));
    m.insert(
        "capacity".into(),
        plan["sku"]["capacity"].as_u64().map(|c| c.to_string()),
    );
    for site in ["web1", "web2"] {
        let s = lab.show(&id(RG, "Microsoft.Web/sites", site));
        let v = s["properties"]["siteConfig"]["vnetRouteAllEnabled"]
            .as_bool()
            .or(s["properties"]["vnetRouteAllEnabled"].as_bool());
        m.insert(format!("{site}.routeAll"), v.map(|b| b.to_string()));
    }
    let nsg = lab.show(&id(RG, "Microsoft.Network/networkSecurityGroups", "nsg1"));
    for r in 0..RULES {
        let p = nsg["properties"]["securityRules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == format!("rule{r}"))
            .and_then(|x| x["properties"]["priority"].as_u64())
            .map(|p| p.to_string());
        m.insert(format!("rule{r}"), p);
    }
    m
}

#[test]
fn sixteen_clients_lose_nothing_and_end_in_a_serial_order() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    lab.cli_ok(&["network", "nsg", "create", "-g", RG, "-n", "nsg1"]);
    let initial = observed(&lab);
    let template = lab.state_dir().with_file_name("conc");
    for c in 1..=3 {
        let path = format!("{}-{c}.json", template.display());
        std::fs::write(&path, basic_template(RG, c).to_string()).unwrap();
    }
    let template = template.display().to_string();
    let seconds: u64 = std::env::var("VNET_CONCURRENCY_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let env = Arc::new(lab_env(&lab));
    let journal = Arc::new(Mutex::new(Journal::default()));
    let stop = Instant::now() + Duration::from_secs(seconds);
    let mut threads = Vec::new();
    for client in 0..CLIENTS {
        let (env, journal, template) = (env.clone(), journal.clone(), template.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((client as u64 + 1) * 0x1000_0001));
            while Instant::now() < stop {
                // A quarter of the clients only read.
                if client % 4 == 3 {
                    let target = match rng.below(3) {
                        0 => id(RG, "Microsoft.Web/serverfarms", "plan1"),
                        1 => id(RG, "Microsoft.Web/sites", "web1"),
                        _ => id(RG, "Microsoft.Network/networkSecurityGroups", "nsg1"),
                    };
                    let t = Instant::now();
                    let out = cli(&env, &words(&format!("resource show --ids {target}")));
                    let ms = t.elapsed().as_millis();
                    assert!(
                        out.status.success(),
                        "client {client}: a read failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let mut j = journal.lock().unwrap();
                    j.reads += 1;
                    j.read_latency_ms.push(ms);
                    continue;
                }
                let (args, values) = next_request(client, &mut rng, &template);
                let start = Instant::now();
                let out = cli(&env, &args);
                let end = Instant::now();
                assert!(
                    answered(&out),
                    "client {client}: {args:?} got no answer: {out:?}"
                );
                let mut j = journal.lock().unwrap();
                if out.status.success() {
                    j.writes.push(Write {
                        client,
                        start,
                        end,
                        values,
                        what: args.join(" "),
                    });
                } else {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let code = err
                        .trim_start_matches("ERROR: (")
                        .split(')')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    *j.refused.entry(code).or_default() += 1;
                }
            }
        }));
    }
    for t in threads {
        t.join().expect("a client failed");
    }
    let journal = journal.lock().unwrap();
    let last = observed(&lab);
    eprintln!(
        "concurrency: {} successful writes, refused {:?}, {} reads (median {} ms, max {} ms)",
        journal.writes.len(),
        journal.refused,
        journal.reads,
        median(&journal.read_latency_ms),
        journal.read_latency_ms.iter().max().copied().unwrap_or(0),
    );
    assert!(
        journal.writes.len() > CLIENTS,
        "too few writes to mean anything"
    );

    // Some serial order: per key, the final value is one a successful write
    // gave it, from a write no other successful write to that key started
    // after the end of.
    for (key, value) in &last {
        let writes: Vec<&Write> = journal
            .writes
            .iter()
            .filter(|w| w.values.iter().any(|(k, _)| k == key))
            .collect();
        if writes.is_empty() {
            assert_eq!(Some(value), initial.get(key), "{key} changed with no write");
            continue;
        }
        let latest_start = writes.iter().map(|w| w.start).max().unwrap();
        let candidates: Vec<&&Write> = writes
            .iter()
            .filter(|w| w.end >= latest_start)
            .filter(|w| w.values.iter().any(|(k, v)| k == key && v == value))
            .collect();
        assert!(
            !candidates.is_empty(),
            "{key} ends as {value:?}, which no last write to it gave; the last ones: {:#?}",
            writes
                .iter()
                .filter(|w| w.end >= latest_start)
                .map(|w| (w.client, &w.what))
                .collect::<Vec<_>>()
        );
    }

    // The kernel agrees with the committed state, and nothing is pending.
    lab.assert_reconcile_writes_nothing();
}

fn median(v: &[u128]) -> u128 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// A read during a long deploy is answered from the last committed state,
/// before the deploy ends.
#[test]
fn reads_are_answered_during_a_long_deploy() {
    let Some(lab) = Lab::start() else { return };
    lab.deploy(RG, &basic_template(RG, 1));
    // 30 instances of two sites: about 60 namespaces to build.
    let big = lab.write_json("big.json", &basic_template(RG, 30));
    let mut deploy = lab
        .command()
        .args(["deploy", "-g", RG, "-f", big.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("deploy");
    // Wait until the daemon is applying it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = lab.api_call(&[], "GET", "/lab/progress", &[], None);
        if body.contains("\"active\":true") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deploy never started applying"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut answered_during = 0;
    for _ in 0..5 {
        let out = lab.cli(&[
            "resource",
            "show",
            "--ids",
            &id(RG, "Microsoft.Web/serverfarms", "plan1"),
        ]);
        assert!(out.status.success(), "{out:?}");
        if matches!(deploy.try_wait(), Ok(None)) {
            answered_during += 1;
        }
    }
    let status = deploy.wait().unwrap();
    assert!(status.success(), "the long deploy failed");
    assert!(
        answered_during >= 1,
        "no read was answered while the deploy ran: reads wait behind writes"
    );
    let plan: Value = lab.show(&id(RG, "Microsoft.Web/serverfarms", "plan1"));
    assert_eq!(plan["sku"]["capacity"], 30);
}
