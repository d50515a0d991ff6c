//! `cargo xtask`: the project's own tasks.

mod baseline;
mod bench;
mod run;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  bench [--quick]   deploy time of the agent against an ip/nft shell script for
                    1, 10 and 100 plan instances, and the daemon's peak memory
                    (root; runs inside scripts/sandbox.sh). --quick: 1 and 10
                    instances, one round. Results: target/bench/deploy.json
  help              this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["bench", flags @ ..] => match bench_options(flags) {
            Some(opts) => bench::run(&opts),
            None => return usage(),
        },
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
        in_sandbox: false,
    };
    for f in flags {
        match *f {
            "--quick" => opts.quick = true,
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
