//! `cargo xtask`: the project's own tasks.

mod baseline;
mod bench;
mod bgp_bench;
mod chaos;
mod datapath;
mod deb;
mod dns_bench;
mod fuzz;
mod rr;
mod run;
mod scale;
mod stats;
mod template_bench;
mod vm_test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  deb               the Debian package (cargo-deb): binary, systemd unit,
                    examples, docs; checks what it holds and prints its path
  bench [--quick] [--datapath-only] [--no-nsg] [--dns-only] [--bgp-only]
        [--template-only] [--scale]
                    (root; runs inside scripts/sandbox.sh)
                    --scale: only issue 15's table at 100 and 1,000 app
                    instances (25 per plan, half Route All, apps running):
                    deploy, redeploy, one site's config set, idle CPU, peak
                    RSS, down, beside the ip/nft script's deploy (minutes)
                    1. deploy time of the agent against an ip/nft shell script
                    for 1, 10 and 100 plan instances, and the daemon's peak
                    memory. Results: target/bench/deploy.json
                    Next to it: evaluate, validate and plan of a 500-resource
                    template of copy loops against the same resources written
                    out (9 alternating rounds, medians; --quick: 3). Results:
                    target/bench/template.json. --template-only: only this
                    (no root, no kernel).
                    2. datapath: iperf3 throughput, TCP request/response and
                    connect latency from an app to a VM (through worker and
                    fabric) with 10 and 1,000 NSG rules, against a direct veth
                    pair: every path built once, 15 interleaved rounds (order
                    rotating), ratios as medians of same-round ratios.
                    Results: target/bench/datapath.json
                    --quick: 1 and 10 instances, one round of each, shorter
                    runs (datapath: 3 rounds). --datapath-only: only 2.
                    --no-nsg: the lab of 2 without NSGs (automatic when the
                    agent does not know them)
                    3. DNS: queries per second and p99 latency of the agent's
                    168.63.129.16 against dnsmasq serving the same zone from
                    the same fabric, asked from an app sandbox. Results:
                    target/bench/dns.json. --dns-only: only 3.
                    4. BGP convergence: from the on-premises BIRD speaker
                    announcing a prefix (birdc enable) to an integrated spoke
                    app's first TCP connection to a host in it, through a
                    hub's VPN gateway; median of 10 trials (--quick: 3), goal
                    under 1 s. Needs bird2. Results: target/bench/bgp.json.
                    --bgp-only: only 4 (with --dns-only: 3 and 4).
  datapath-template [RULES]
                    prints the datapath lab's ARM template (NSGs of RULES rules
                    on both subnets; none without RULES)
  dns-load SERVER NAMES SECONDS OUTSTANDING THREADS
                    the DNS load generator (UDP, OUTSTANDING queries in
                    flight); prints qps, p50/p99 in microseconds as JSON
  rr-server PORT [LIFETIME_S]
                    echo server for the latency measurement
  connect-until IP PORT [GIVE_UP_MS]
                    prints `ready`, then a new TCP connect every 10 ms (50 ms
                    timeout each) until one is established or GIVE_UP_MS
                    (default 10000) pass; prints the realtime clock of the
                    first connection (unix microseconds) as JSON, exits 1
                    when none was
  rr-client IP PORT COUNT [CONNECTS]
                    COUNT 1-byte round trips (both ends busy-poll), then
                    CONNECTS new connections; prints p50/p99 in microseconds
                    as JSON
  chaos [--trials N] [--seed S]
                    crash consistency (root; inside scripts/sandbox.sh): N
                    trials (default 100), each SIGKILLing the daemon at a
                    random point of a deploy, scale, NSG change, delete or
                    `down`, restarting it and checking the committed state is
                    all or nothing, the kernel equals its plan (an audit
                    writes nothing), apps run once each, established flows
                    live, and `down` leaves nothing. The test `chaos` in
                    tests/ is the short form .ci/run runs (10 trials).
                    Transcript: target/chaos.log
  fuzz [--short | --runs N] [--merge] [TARGET...]
                    the coverage-guided fuzzers of fuzz/ (docs/fuzzing.md)
                    on the stable toolchain: template, expression,
                    request_body, resource_id (default: all), over their
                    kept corpora (fuzz/corpus/T) and seeds from the repo's
                    templates; -timeout=10, -rss_limit_mb=2048,
                    -malloc_limit_mb=512. --short: 30 s per target, side
                    by side (CI); otherwise -runs=N (default 1000000).
                    --merge: minimize what was found into fuzz/corpus/T.
                    Prints executions, exec/s and coverage per target;
                    fails on a crash, a hang or an allocation over the
                    limit (the input is left in fuzz/artifacts/T/)
  vm-test           the dev VM for real: the Debian package, a Debian box
                    built with debootstrap, `vagrant up` with libvirt inside
                    the sandbox, the quickstart's checks in the VM, destroy
                    (root, /dev/kvm; minutes; not in .ci/run)
  help              this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["bench", flags @ ..] => match bench_options(flags) {
            Some(opts) => bench::run(&opts),
            None => return usage(),
        },
        ["datapath-template", rest @ ..] => {
            datapath::print_template(rest).map(|()| ExitCode::SUCCESS)
        }
        ["deb"] => deb::run(),
        ["chaos", flags @ ..] => chaos::run(flags),
        ["fuzz", flags @ ..] => match fuzz::options(flags) {
            Some(opts) => fuzz::run(&opts),
            None => return usage(),
        },
        ["vm-test"] => vm_test::run(),
        ["dns-load", rest @ ..] => dns_bench::load(rest).map(|()| ExitCode::SUCCESS),
        ["connect-until", rest @ ..] => bgp_bench::connect_until(rest),
        ["rr-server", rest @ ..] => rr::server(rest).map(|()| ExitCode::SUCCESS),
        ["rr-client", rest @ ..] => rr::client(rest).map(|()| ExitCode::SUCCESS),
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => return usage(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench_options(flags: &[&str]) -> Option<bench::Options> {
    let mut opts = bench::Options {
        quick: false,
        datapath_only: false,
        no_nsg: false,
        dns_only: false,
        bgp_only: false,
        template_only: false,
        scale: false,
        in_sandbox: false,
    };
    for f in flags {
        match *f {
            "--quick" => opts.quick = true,
            "--datapath-only" => opts.datapath_only = true,
            "--no-nsg" => opts.no_nsg = true,
            "--dns-only" => opts.dns_only = true,
            "--bgp-only" => opts.bgp_only = true,
            "--template-only" => opts.template_only = true,
            "--scale" => opts.scale = true,
            // Internal: the re-run inside scripts/sandbox.sh.
            "--in-sandbox" => opts.in_sandbox = true,
            _ => return None,
        }
    }
    Some(opts)
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
