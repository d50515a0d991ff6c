//! Root tests against the real kernel. They run only inside
//! `scripts/sandbox.sh` (fresh net + mount namespaces, private /run/netns):
//!
//! ```sh
//! cargo test -p vnet-agent --no-run
//! scripts/sandbox.sh cargo test --offline -p vnet-agent dataplane -- --test-threads=4
//! ```
//!
//! Every test owns a unique lab name, so they run in parallel.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::*;
use crate::plan::{
    AddressPlan, NamespacePlan, NamespaceRole, RouteKind, RoutePlan, RulePlan, VethEnd, VethPlan,
};

/// Whether this test may touch the kernel; panics when it must but cannot.
fn sandboxed() -> bool {
    if std::env::var("VNET_SANDBOX").as_deref() == Ok("1") {
        return true;
    }
    if std::env::var("VNET_E2E_REQUIRED").as_deref() == Ok("1") {
        panic!("VNET_E2E_REQUIRED=1 but not in the sandbox: run under scripts/sandbox.sh");
    }
    println!("skipped: run under scripts/sandbox.sh");
    false
}

/// Runs a command, asserts success, returns stdout.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens a TCP connection from namespace `from` to `ip` served in namespace
/// `to` (real packets through the lab); returns the source address the
/// server saw, or `None` when the connection failed within a second.
fn tcp(from: &str, to: &str, ip: &str) -> Option<Ipv4Addr> {
    let ip: Ipv4Addr = ip.parse().unwrap();
    let listener = in_netns(to, move || Ok(std::net::TcpListener::bind((ip, 0))?)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = std::net::SocketAddr::from((ip, port));
    let connected = in_netns(from, move || {
        Ok(std::net::TcpStream::connect_timeout(
            &target,
            Duration::from_secs(1),
        )?)
    });
    let _stream = connected.ok()?;
    match listener.accept().ok()?.1.ip() {
        std::net::IpAddr::V4(src) => Some(src),
        std::net::IpAddr::V6(_) => None,
    }
}

/// A TCP connection from `from` reaches `ip` in `to` within 3 s. Tried up
/// to three times: a veth the reconcile just made can drop a first SYN until
/// the kernel's link watcher has activated its queue (a deferred work item),
/// and TCP would resend only after the 1 s connect timeout.
fn reaches(from: &str, to: &str, ip: &str) -> bool {
    (0..3).any(|_| tcp(from, to, ip).is_some())
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ns_plan(name: &str, role: NamespaceRole) -> NamespacePlan {
    NamespacePlan {
        name: name.into(),
        role,
        sysctls: BTreeMap::new(),
        addresses: vec![],
        routes: vec![],
        rules: vec![],
        nft: None,
    }
}

fn addr(ifname: &str, a: &str) -> AddressPlan {
    AddressPlan {
        ifname: ifname.into(),
        address: net(a),
    }
}

fn route(table: u32, dst: &str, kind: RouteKind) -> RoutePlan {
    RoutePlan {
        table,
        destination: net(dst),
        kind,
    }
}

fn dev(ifname: &str) -> RouteKind {
    RouteKind::Dev {
        ifname: ifname.into(),
    }
}

fn veth(a_ns: &str, a_if: &str, b_ns: &str, b_if: &str) -> VethPlan {
    VethPlan {
        a: VethEnd {
            netns: a_ns.into(),
            ifname: a_if.into(),
        },
        b: VethEnd {
            netns: b_ns.into(),
            ifname: b_if.into(),
        },
    }
}

fn nft_batch(body: Vec<Value>) -> Value {
    let table = json!({"family": "inet", "name": "vnet_agent"});
    let mut items = vec![
        json!({"add": {"table": table}}),
        json!({"delete": {"table": table}}),
        json!({"add": {"table": table}}),
    ];
    items.extend(body);
    json!({ "nftables": items })
}

/// The internet, one public host behind it, and a "VM" on a private subnet
/// that the internet SNATs to a public address, as docs/datapath.md wires them.
fn lab_plan(lab: &str) -> NetworkPlan {
    let inet = format!("{lab}-inet");
    let host = format!("{lab}-host");
    let vm = format!("{lab}-vm");
    let t = |x: Value| -> Value {
        let mut x = x;
        x["family"] = json!("inet");
        x["table"] = json!("vnet_agent");
        x
    };

    let mut i = ns_plan(&inet, NamespaceRole::Internet);
    i.sysctls.insert("net/ipv4/ip_forward".into(), "1".into());
    i.sysctls
        .insert("net/ipv4/conf/all/rp_filter".into(), "0".into());
    i.sysctls
        .insert("net/ipv4/conf/h-host/proxy_arp".into(), "1".into());
    i.addresses = vec![addr("lo", "169.254.1.1/32"), addr("v-vm", "10.1.0.1/24")];
    i.routes = vec![
        route(254, "198.18.0.10/32", dev("h-host")),
        route(254, "198.18.0.0/15", RouteKind::Unreachable),
    ];
    i.nft = Some(nft_batch(vec![
        json!({"add": {"counter": t(json!({"name": "fwd-host"}))}}),
        json!({"add": {"chain": t(json!({"name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}))}}),
        json!({"add": {"rule": t(json!({"chain": "forward", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "h-host"}},
            {"counter": "fwd-host"}
        ]}))}}),
        json!({"add": {"chain": t(json!({"name": "postrouting", "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}))}}),
        json!({"add": {"rule": t(json!({"chain": "postrouting", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "h-host"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.1.0.0", "len": 24}}}},
            {"snat": {"family": "ip", "addr": "198.18.1.1"}}
        ]}))}}),
    ]));

    let mut h = ns_plan(
        &host,
        NamespaceRole::InternetHost {
            resource_id: "/h".into(),
        },
    );
    h.addresses = vec![addr("eth0", "198.18.0.10/32")];
    h.routes = vec![
        route(
            254,
            "0.0.0.0/0",
            RouteKind::Via {
                gateway: Ipv4Addr::new(169, 254, 1, 1),
                ifname: "eth0".into(),
                onlink: true,
            },
        ),
        route(1000, "10.0.0.0/8", RouteKind::Blackhole),
        route(1000, "192.168.0.0/16", RouteKind::Throw),
        route(1000, "172.16.0.0/12", RouteKind::Unreachable),
    ];
    h.rules = vec![
        RulePlan {
            priority: 100,
            fwmark: Some((0x100, 0xffff_ffff)),
            iif: None,
            table: 1000,
        },
        RulePlan {
            priority: 110,
            fwmark: None,
            iif: Some("eth0".into()),
            table: 1000,
        },
    ];

    let mut v = ns_plan(
        &vm,
        NamespaceRole::VirtualMachine {
            vm_id: "/vm".into(),
        },
    );
    v.sysctls
        .insert("net/ipv4/conf/eth0/rp_filter".into(), "0".into());
    v.addresses = vec![addr("eth0", "10.1.0.4/24")];
    v.routes = vec![route(
        254,
        "0.0.0.0/0",
        RouteKind::Via {
            gateway: Ipv4Addr::new(10, 1, 0, 1),
            ifname: "eth0".into(),
            onlink: false,
        },
    )];

    NetworkPlan {
        lab: lab.into(),
        namespaces: [(inet.clone(), i), (host.clone(), h), (vm.clone(), v)]
            .into_iter()
            .collect(),
        veths: vec![
            veth(&inet, "h-host", &host, "eth0"),
            veth(&inet, "v-vm", &vm, "eth0"),
        ],
        ..Default::default()
    }
}

fn lab_entries(lab: &str) -> Vec<String> {
    netns::list_with_prefix(&format!("{lab}-")).unwrap()
}

fn nft_list(ns: &str) -> String {
    sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "nft",
        "list",
        "table",
        "inet",
        "vnet_agent",
    ])
}

fn assert_noop(r: &ReconcileReport) {
    assert_eq!(
        &ReconcileReport {
            namespaces_examined: 0,
            ..r.clone()
        },
        &ReconcileReport::default(),
        "a reconcile of an unchanged kernel must write nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_a_lab_that_carries_traffic_and_then_writes_nothing() {
    if !sandboxed() {
        return;
    }
    let lab = "dpbuild";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    let plan = lab_plan(lab);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!(r.namespaces_created, 3);
    assert_eq!(r.links_created, 2);
    assert_eq!(r.nft_batches, 1);
    assert!(r.kernel_writes > 10, "{r:?}");

    let (inet, host, vm) = (
        format!("{lab}-inet"),
        format!("{lab}-host"),
        format!("{lab}-vm"),
    );
    assert!(
        reaches(&host, &inet, "169.254.1.1"),
        "host -> internet gateway"
    );
    assert_eq!(
        tcp(&vm, &host, "198.18.0.10"),
        Some(Ipv4Addr::new(198, 18, 1, 1)),
        "vm -> host, SNATed by the internet"
    );
    let table = nft_list(&inet);
    assert!(table.contains("snat ip to 198.18.1.1"), "{table}");
    assert!(
        !table.contains("counter fwd-host {\n\t\tpackets 0"),
        "the forward counter saw the traffic: {table}"
    );

    let routes = sh(&["ip", "-n", &host, "route", "show", "table", "all"]);
    for want in [
        "default via 169.254.1.1 dev eth0 proto static onlink",
        "blackhole 10.0.0.0/8 table 1000",
        "throw 192.168.0.0/16 table 1000",
        "unreachable 172.16.0.0/12 table 1000",
    ] {
        assert!(routes.contains(want), "missing {want:?} in\n{routes}");
    }
    let vm_routes = sh(&["ip", "-n", &vm, "route", "show"]);
    assert!(
        vm_routes.contains("default via 10.1.0.1 dev eth0"),
        "{vm_routes}"
    );
    let rules = sh(&["ip", "-n", &host, "rule"]);
    assert!(
        rules.contains("100:\tfrom all fwmark 0x100 lookup 1000"),
        "{rules}"
    );
    assert!(
        rules.contains("110:\tfrom all iif eth0 lookup 1000"),
        "{rules}"
    );
    let addrs = sh(&["ip", "-n", &inet, "-4", "addr", "show", "dev", "lo"]);
    assert!(
        addrs.contains("169.254.1.1/32") && addrs.contains("127.0.0.1/8"),
        "{addrs}"
    );
    let fwd = in_netns(&inet, || {
        Ok(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?)
    })
    .unwrap();
    assert_eq!(fwd.trim(), "1");
    let proxy = in_netns(&inet, || {
        Ok(std::fs::read_to_string(
            "/proc/sys/net/ipv4/conf/h-host/proxy_arp",
        )?)
    });
    assert_eq!(proxy.unwrap().trim(), "1");

    // Both ends of both veths carry BIG TCP packets where the kernel can
    // (IPv4 BIG TCP came with 6.3); older kernels keep 64 KiB, untouched.
    let big_tcp = kernel_at_least(6, 3);
    for (ns, ifname) in [(&inet, "h-host"), (&host, "eth0"), (&vm, "eth0")] {
        let size = super::links::offload_size(ns, ifname, false).await.unwrap();
        let want = big_tcp.then_some(crate::dataplane::BIG_TCP_MAX_SIZE);
        assert_eq!(size, want, "{ns}/{ifname}");
    }
    // Born with it: no second write per link.
    assert_eq!(r.links_tuned, 0, "{r:?}");

    assert_noop(&dp.reconcile(&plan, Scope::Audit).await.unwrap());
    dp.teardown().await.unwrap();
}

/// Whether the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_what_was_deleted_by_hand() {
    if !sandboxed() {
        return;
    }
    let lab = "dprepair";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    let plan = lab_plan(lab);
    dp.reconcile(&plan, Scope::Audit).await.unwrap();
    let (inet, host, vm) = (
        format!("{lab}-inet"),
        format!("{lab}-host"),
        format!("{lab}-vm"),
    );

    // A route.
    sh(&["ip", "-n", &host, "route", "del", "default"]);
    assert!(!reaches(&host, &inet, "169.254.1.1"));
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!((r.routes_added, r.kernel_writes), (1, 1), "{r:?}");
    assert!(reaches(&host, &inet, "169.254.1.1"));

    // An address (its connected route goes with it, and comes back with it).
    sh(&[
        "ip",
        "-n",
        &inet,
        "addr",
        "del",
        "169.254.1.1/32",
        "dev",
        "lo",
    ]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!((r.addresses_added, r.kernel_writes), (1, 1), "{r:?}");
    assert!(reaches(&host, &inet, "169.254.1.1"));

    // An extra address and an extra route are removed.
    sh(&[
        "ip",
        "-n",
        &host,
        "addr",
        "add",
        "192.0.2.7/32",
        "dev",
        "eth0",
    ]);
    sh(&[
        "ip",
        "-n",
        &host,
        "route",
        "add",
        "192.0.2.0/24",
        "dev",
        "eth0",
        "table",
        "1000",
    ]);
    sh(&[
        "ip",
        "-n",
        &host,
        "rule",
        "add",
        "pref",
        "200",
        "to",
        "192.0.2.0/24",
        "lookup",
        "main",
    ]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!(
        (r.addresses_deleted, r.routes_deleted, r.rules_changed),
        (1, 1, 1),
        "{r:?}"
    );
    assert!(!sh(&["ip", "-n", &host, "addr"]).contains("192.0.2.7"));
    assert!(!sh(&["ip", "-n", &host, "route", "show", "table", "all"]).contains("192.0.2.0/24"));

    // A rule.
    sh(&["ip", "-n", &host, "rule", "del", "pref", "100"]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!((r.rules_changed, r.kernel_writes), (1, 1), "{r:?}");

    // A sysctl.
    in_netns(&inet, || {
        Ok(std::fs::write("/proc/sys/net/ipv4/ip_forward", "0")?)
    })
    .unwrap();
    assert!(!reaches(&vm, &host, "198.18.0.10"));
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!((r.sysctls_written, r.kernel_writes), (1, 1), "{r:?}");
    assert!(reaches(&vm, &host, "198.18.0.10"));

    // The nft table.
    sh(&[
        "ip",
        "netns",
        "exec",
        &inet,
        "nft",
        "delete",
        "table",
        "inet",
        "vnet_agent",
    ]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!((r.nft_batches, r.kernel_writes), (1, 1), "{r:?}");
    assert!(nft_list(&inet).contains("snat ip to 198.18.1.1"));

    // A rule inside the table, changed by hand.
    sh(&[
        "ip",
        "netns",
        "exec",
        &inet,
        "nft",
        "flush",
        "chain",
        "inet",
        "vnet_agent",
        "postrouting",
    ]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!(r.nft_batches, 1, "{r:?}");
    assert!(nft_list(&inet).contains("snat ip to 198.18.1.1"));

    // A whole veth: both ends, their addresses, routes and sysctls come back.
    sh(&["ip", "-n", &vm, "link", "del", "eth0"]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!(r.links_created, 1, "{r:?}");
    assert!(r.addresses_added >= 2 && r.routes_added >= 1, "{r:?}");
    assert!(reaches(&vm, &host, "198.18.0.10"));

    // One end replaced by an impostor with the planned name.
    sh(&["ip", "-n", &host, "link", "del", "eth0"]);
    sh(&[
        "ip", "-n", &host, "link", "add", "eth0", "type", "veth", "peer", "name", "stray0",
    ]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!(r.links_created, 1, "{r:?}");
    assert!(reaches(&host, &inet, "169.254.1.1"));
    assert!(!sh(&["ip", "-n", &host, "link"]).contains("stray0"));

    // A link set down.
    sh(&["ip", "-n", &host, "link", "set", "eth0", "down"]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert!(r.links_set_up >= 1, "{r:?}");
    assert!(reaches(&host, &inet, "169.254.1.1"));

    // A link's GSO size lowered by hand (a generic size below 64 KiB sets
    // the IPv4 one too; iproute2 6.1 knows only the generic one).
    if kernel_at_least(6, 3) {
        sh(&[
            "ip",
            "-n",
            &host,
            "link",
            "set",
            "eth0",
            "gso_max_size",
            "32768",
        ]);
        let size = super::links::offload_size(&host, "eth0", false)
            .await
            .unwrap();
        assert_eq!(size, Some(32_768));
        let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
        assert_eq!(r.links_tuned, 1, "{r:?}");
        let size = super::links::offload_size(&host, "eth0", false)
            .await
            .unwrap();
        assert_eq!(size, Some(crate::dataplane::BIG_TCP_MAX_SIZE));
    }

    assert_noop(&dp.reconcile(&plan, Scope::Audit).await.unwrap());
    dp.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_plan_removes_exactly_what_left_it() {
    if !sandboxed() {
        return;
    }
    let lab = "dpchange";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    let mut plan = lab_plan(lab);
    dp.reconcile(&plan, Scope::Audit).await.unwrap();
    let (inet, host, vm) = (
        format!("{lab}-inet"),
        format!("{lab}-host"),
        format!("{lab}-vm"),
    );

    // One route out of the subnet table.
    plan.namespaces
        .get_mut(&host)
        .unwrap()
        .routes
        .retain(|r| r.kind != RouteKind::Unreachable);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!((r.routes_deleted, r.kernel_writes), (1, 1), "{r:?}");
    let routes = sh(&["ip", "-n", &host, "route", "show", "table", "all"]);
    assert!(!routes.contains("172.16.0.0/12"), "{routes}");
    assert!(
        routes.contains("blackhole 10.0.0.0/8 table 1000"),
        "{routes}"
    );

    // The VM namespace with its veth, the inet address on that veth, and the nft table.
    plan.namespaces.remove(&vm);
    plan.veths.retain(|v| v.b.netns != vm);
    let i = plan.namespaces.get_mut(&inet).unwrap();
    i.addresses.retain(|a| a.ifname != "v-vm");
    i.nft = None;
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!(r.namespaces_deleted, 1, "{r:?}");
    assert_eq!(r.nft_batches, 1, "{r:?}");
    assert_eq!(
        (
            r.namespaces_created,
            r.links_created,
            r.routes_added,
            r.addresses_added
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(lab_entries(lab), vec![host.clone(), inet.clone()]);
    assert!(!sh(&["ip", "netns", "exec", &inet, "nft", "list", "tables"]).contains("vnet_agent"));
    // The peer end dies with its namespace, asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sh(&["ip", "-n", &inet, "link"]).contains("v-vm") {
        assert!(Instant::now() < deadline, "v-vm survived its namespace");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reaches(&host, &inet, "169.254.1.1"),
        "what stayed still works"
    );

    assert_noop(&dp.reconcile(&plan, Scope::Audit).await.unwrap());
    dp.teardown().await.unwrap();
}

/// The per-namespace step reuses the veth step's link dump where that step
/// wrote nothing: a stray pair across two lab namespaces is deleted (both
/// ends, from one delete), and the planned links, addresses and routes of
/// both namespaces are left exactly as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_pair_across_two_namespaces_goes_and_nothing_else_moves() {
    if !sandboxed() {
        return;
    }
    let lab = "dpstray";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    let plan = lab_plan(lab);
    dp.reconcile(&plan, Scope::Audit).await.unwrap();
    let (inet, host) = (format!("{lab}-inet"), format!("{lab}-host"));

    sh(&[
        "ip", "-n", &host, "link", "add", "stray1", "type", "veth", "peer", "name", "stray2",
        "netns", &inet,
    ]);
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!((r.links_deleted, r.kernel_writes), (1, 1), "{r:?}");
    assert!(!sh(&["ip", "-n", &host, "link"]).contains("stray1"));
    assert!(!sh(&["ip", "-n", &inet, "link"]).contains("stray2"));
    assert!(reaches(&host, &inet, "169.254.1.1"));
    assert_noop(&dp.reconcile(&plan, Scope::Audit).await.unwrap());
    dp.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_dataplane_with_the_same_cache_writes_nothing() {
    if !sandboxed() {
        return;
    }
    let lab = "dprestart";
    let cache = tempfile::tempdir().unwrap();
    let plan = lab_plan(lab);
    Dataplane::new(lab, cache.path())
        .reconcile(&plan, Scope::Audit)
        .await
        .unwrap();

    let restarted = Dataplane::new(lab, cache.path());
    assert_noop(&restarted.reconcile(&plan, Scope::Audit).await.unwrap());

    // A lost cache costs exactly one nft batch per table, once.
    std::fs::write(nft::NftCache::path(cache.path(), lab), b"garbage").unwrap();
    let r = Dataplane::new(lab, cache.path())
        .reconcile(&plan, Scope::Audit)
        .await
        .unwrap();
    assert_eq!((r.nft_batches, r.kernel_writes), (1, 1), "{r:?}");
    assert_noop(
        &Dataplane::new(lab, cache.path())
            .reconcile(&plan, Scope::Audit)
            .await
            .unwrap(),
    );

    // A changed nft plan is applied even though the table is there.
    let mut changed = plan.clone();
    let inet = format!("{lab}-inet");
    let batch = changed
        .namespaces
        .get_mut(&inet)
        .unwrap()
        .nft
        .as_mut()
        .unwrap();
    batch["nftables"]
        .as_array_mut()
        .unwrap()
        .push(json!({"add": {"counter": {
        "family": "inet", "table": "vnet_agent", "name": "extra"}}}));
    let r = restarted.reconcile(&changed, Scope::Audit).await.unwrap();
    assert_eq!(r.nft_batches, 1, "{r:?}");
    assert!(nft_list(&inet).contains("counter extra"));
    assert_noop(&restarted.reconcile(&changed, Scope::Audit).await.unwrap());
    restarted.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_removes_the_lab_and_nothing_else() {
    if !sandboxed() {
        return;
    }
    let lab = "dpdown";
    let other = "dpdownother";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    dp.reconcile(&lab_plan(lab), Scope::Audit).await.unwrap();
    let bystander = Dataplane::new(other, cache.path());
    let mut small = NetworkPlan {
        lab: other.into(),
        ..Default::default()
    };
    let name = format!("{other}-inet");
    small
        .namespaces
        .insert(name.clone(), ns_plan(&name, NamespaceRole::Internet));
    bystander.reconcile(&small, Scope::Audit).await.unwrap();

    let r = dp.teardown().await.unwrap();
    assert_eq!(r.namespaces_deleted, 3, "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    assert!(lab_entries(lab).is_empty());
    assert_eq!(lab_entries(other), vec![name.clone()]);
    // Nothing ever landed in the namespace the agent runs in.
    let here = sh(&["ip", "-o", "link"]);
    assert_eq!(here.lines().count(), 1, "only lo: {here}");
    // Again: nothing left, nothing to complain about.
    assert_eq!(dp.teardown().await.unwrap(), TeardownReport::default());
    assert_noop(&bystander.reconcile(&small, Scope::Audit).await.unwrap());
    bystander.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_plans_outside_the_lab() {
    if !sandboxed() {
        return;
    }
    let lab = "dprefuse";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    let mut plan = NetworkPlan {
        lab: lab.into(),
        ..Default::default()
    };
    plan.namespaces.insert(
        "elsewhere".into(),
        ns_plan("elsewhere", NamespaceRole::Internet),
    );
    let e = dp.reconcile(&plan, Scope::Audit).await.unwrap_err();
    assert!(format!("{e:#}").contains("lab prefix"), "{e:#}");
    assert!(!netns_path("elsewhere").exists());

    let wrong_lab = NetworkPlan {
        lab: "another".into(),
        ..Default::default()
    };
    assert!(dp.reconcile(&wrong_lab, Scope::Audit).await.is_err());

    // A netlink error is reported in words with the names involved.
    let mut bad = lab_plan(lab);
    let host = format!("{lab}-host");
    bad.namespaces.get_mut(&host).unwrap().routes.push(route(
        254,
        "203.0.113.0/24",
        RouteKind::Via {
            gateway: Ipv4Addr::new(192, 0, 2, 1),
            ifname: "eth0".into(),
            onlink: false,
        },
    ));
    let e = format!("{:#}", dp.reconcile(&bad, Scope::Audit).await.unwrap_err());
    assert!(e.contains(&host) && e.contains("ENETUNREACH"), "{e}");
    dp.teardown().await.unwrap();
}

/// Not a benchmark, a guard: a 100-instance lab comes up and settles fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_workers_reconcile_quickly() {
    if !sandboxed() {
        return;
    }
    let lab = "dpscale";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    let stamp = format!("{lab}-stamp");
    let mut plan = NetworkPlan {
        lab: lab.into(),
        ..Default::default()
    };
    let mut s = ns_plan(
        &stamp,
        NamespaceRole::Stamp {
            location: "x".into(),
        },
    );
    s.addresses.push(addr("lo", "169.254.2.1/32"));
    s.sysctls.insert("net/ipv4/ip_forward".into(), "1".into());
    for i in 0..100u32 {
        let wk = format!("{lab}-wk-{i}");
        let ifname = format!("w-{i:06x}");
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(169, 254, 16, 0)) + i);
        let mut w = ns_plan(
            &wk,
            NamespaceRole::Worker {
                plan_id: "/p".into(),
                instance: i,
            },
        );
        w.addresses.push(addr("pub0", &format!("{ip}/32")));
        w.routes.push(route(
            254,
            "0.0.0.0/0",
            RouteKind::Via {
                gateway: Ipv4Addr::new(169, 254, 2, 1),
                ifname: "pub0".into(),
                onlink: true,
            },
        ));
        w.sysctls
            .insert("net/ipv4/conf/all/rp_filter".into(), "0".into());
        w.nft = Some(nft_batch(vec![
            json!({"add": {"chain": {"family": "inet", "table": "vnet_agent",
            "name": "postrouting", "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}}),
        ]));
        s.routes.push(route(254, &format!("{ip}/32"), dev(&ifname)));
        plan.namespaces.insert(wk.clone(), w);
        plan.veths.push(veth(&wk, "pub0", &stamp, &ifname));
    }
    plan.namespaces.insert(stamp.clone(), s);

    let t = Instant::now();
    let r = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    let first = t.elapsed();
    assert_eq!(
        (r.namespaces_created, r.links_created, r.nft_batches),
        (101, 100, 100),
        "{r:?}"
    );
    let t = Instant::now();
    assert_noop(&dp.reconcile(&plan, Scope::Audit).await.unwrap());
    let again = t.elapsed();
    assert!(reaches(&format!("{lab}-wk-99"), &stamp, "169.254.2.1"));
    let t = Instant::now();
    let down = dp.teardown().await.unwrap();
    let teardown = t.elapsed();
    assert_eq!(down.namespaces_deleted, 101);
    eprintln!("timing: 100 workers + stamp: first apply {first:?}, no-op apply {again:?}, teardown {teardown:?}");
    assert!(first < Duration::from_secs(20) && again < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proportional_apply_opens_only_what_changed() {
    if !sandboxed() {
        return;
    }
    let lab = "dpprop";
    let cache = tempfile::tempdir().unwrap();
    let dp = Dataplane::new(lab, cache.path());
    let plan = lab_plan(lab);
    let first = dp.reconcile(&plan, Scope::Audit).await.unwrap();
    assert_eq!(first.namespaces_examined, plan.namespaces.len() as u64);
    // Nothing changed: nothing is opened, read or written.
    let r = dp.reconcile(&plan, Scope::Changed).await.unwrap();
    assert_eq!((r.namespaces_examined, r.kernel_writes), (0, 0), "{r:?}");
    // One sysctl of one namespace: that namespace only, one write.
    let mut changed = plan.clone();
    let vm = format!("{lab}-vm");
    changed
        .namespaces
        .get_mut(&vm)
        .unwrap()
        .sysctls
        .insert("net/ipv4/ip_forward".into(), "1".into());
    let r = dp.reconcile(&changed, Scope::Changed).await.unwrap();
    assert_eq!(
        (r.namespaces_examined, r.sysctls_written, r.kernel_writes),
        (1, 1, 1),
        "{r:?}"
    );
    // A namespace deleted by hand is noticed without an audit: it and the
    // other ends of its links are rebuilt.
    sh(&["ip", "netns", "del", &vm]);
    let r = dp.reconcile(&changed, Scope::Changed).await.unwrap();
    assert_eq!(r.namespaces_created, 1, "{r:?}");
    assert!(r.links_created >= 1, "{r:?}");
    assert_noop(&dp.reconcile(&changed, Scope::Audit).await.unwrap());
    dp.teardown().await.unwrap();
}
