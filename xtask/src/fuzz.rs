//! `cargo xtask fuzz [--short | --runs N] [--merge] [TARGET...]`: the
//! coverage-guided fuzzers of `fuzz/` (docs/fuzzing.md), built and run on
//! the stable toolchain. libFuzzer comes from the `libfuzzer-sys` crate;
//! coverage is LLVM's SanitizerCoverage, asked for with `-Cpasses` and
//! `-Cllvm-args` (what `cargo fuzz` passes, minus the nightly-only
//! AddressSanitizer), and the build keeps overflow checks and debug
//! assertions. Each target runs over its kept corpus (`fuzz/corpus/T/`)
//! and seeds drawn from the repository's templates, with a hang limit
//! (`-timeout`), a memory limit (`-rss_limit_mb`) and a limit on one
//! allocation (`-malloc_limit_mb`, enforced by the targets' allocator).
//! A crash fails the task and leaves the input in `fuzz/artifacts/T/`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The targets, in `fuzz/fuzz_targets/`.
pub const TARGETS: [&str; 4] = ["template", "expression", "request_body", "resource_id"];

/// Seconds per target of `--short` (the targets run side by side).
const SHORT_SECONDS: u64 = 30;
/// One input taking longer than this is a hang.
const TIMEOUT_SECONDS: u64 = 10;
const RSS_LIMIT_MB: u64 = 2048;
const MALLOC_LIMIT_MB: u64 = 512;
/// The largest input the fuzzers make (whole templates are seeds).
const MAX_LEN: usize = 65_536;
/// The largest input kept by `--merge` (it keeps the corpora small: the
/// big templates come back as seeds on every run).
const MERGE_MAX_LEN: usize = 4_096;

/// SanitizerCoverage as `cargo fuzz` asks for it, on stable rustc.
const RUSTFLAGS: &str = "--cfg fuzzing \
    -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cdebug-assertions \
    -Coverflow-checks";

pub struct Options {
    /// `--short`: `SHORT_SECONDS` per target; otherwise `runs` executions.
    pub short: bool,
    pub runs: u64,
    /// `--merge`: fold what the run found into `fuzz/corpus/T/`, minimized.
    pub merge: bool,
    pub targets: Vec<String>,
}

/// Parses `[--short|--runs N] [--merge] [TARGET...]`.
pub fn options(flags: &[&str]) -> Option<Options> {
    let mut opts = Options {
        short: false,
        runs: 1_000_000,
        merge: false,
        targets: Vec::new(),
    };
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match *f {
            "--short" => opts.short = true,
            "--runs" => opts.runs = it.next()?.replace('_', "").parse().ok()?,
            "--merge" => opts.merge = true,
            t if TARGETS.contains(&t) => opts.targets.push(t.to_string()),
            _ => return None,
        }
    }
    if opts.targets.is_empty() {
        opts.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Some(opts)
}

/// What one target's run printed, read from libFuzzer's output.
#[derive(Default)]
struct Outcome {
    target: String,
    ok: bool,
    executions: u64,
    seconds: f64,
    cov: u64,
    ft: u64,
    corpus: u64,
    peak_rss_mb: u64,
    artifact: Option<String>,
}

pub fn run(opts: &Options) -> Result<ExitCode> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf();
    let fuzz = root.join("fuzz");
    let started = Instant::now();
    let bin_dir = build(&fuzz)?;
    eprintln!("fuzz: built in {:.0} s", started.elapsed().as_secs_f64());
    let work = fuzz.join("target").join("fuzz-run");
    write_seeds(&root, &work.join("seeds"))?;

    // Side by side, as many at once as there are CPUs.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut outcomes = Vec::new();
    for batch in opts.targets.chunks(cpus.max(1)) {
        let handles: Vec<_> = batch
            .iter()
            .map(|t| {
                let (bin, fuzz, work, t) = (bin_dir.join(t), fuzz.clone(), work.clone(), t.clone());
                let (short, runs) = (opts.short, opts.runs);
                std::thread::spawn(move || run_target(&bin, &fuzz, &work, &t, short, runs))
            })
            .collect();
        for h in handles {
            outcomes.push(h.join().expect("a fuzz thread")?);
        }
    }
    if opts.merge {
        for t in &opts.targets {
            merge(&bin_dir.join(t), &fuzz, &work, t)?;
        }
    }

    println!(
        "{:<13} {:>10} {:>8} {:>9} {:>6} {:>7} {:>6} {:>8}  result",
        "target", "execs", "seconds", "exec/s", "cov", "ft", "corp", "rss MB"
    );
    for o in &outcomes {
        println!(
            "{:<13} {:>10} {:>8.1} {:>9.0} {:>6} {:>7} {:>6} {:>8}  {}",
            o.target,
            o.executions,
            o.seconds,
            o.executions as f64 / o.seconds.max(0.001),
            o.cov,
            o.ft,
            o.corpus,
            o.peak_rss_mb,
            match (&o.ok, &o.artifact) {
                (true, _) => "ok".to_string(),
                (false, Some(a)) => format!("CRASH: {a}"),
                (false, None) => "FAILED (see its log)".to_string(),
            }
        );
    }
    println!(
        "fuzz: {} target(s) in {:.0} s (build included); logs in {}",
        outcomes.len(),
        started.elapsed().as_secs_f64(),
        work.join("logs").display()
    );
    Ok(if outcomes.iter().all(|o| o.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo build --release` of the fuzz crate with coverage; the directory
/// of its binaries. An explicit `--target` keeps the flags off build
/// scripts and proc macros.
fn build(fuzz: &Path) -> Result<PathBuf> {
    let triple = host_triple()?;
    let flags = match std::env::var("RUSTFLAGS") {
        Ok(extra) if !extra.trim().is_empty() => format!("{RUSTFLAGS} {extra}"),
        _ => RUSTFLAGS.to_string(),
    };
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(fuzz)
        .env("RUSTFLAGS", flags)
        .args([
            "build",
            "--release",
            "--locked",
            "--bins",
            "--target",
            &triple,
        ])
        .status()
        .context("cargo build of fuzz/")?;
    if !status.success() {
        bail!("building the fuzz targets failed");
    }
    Ok(fuzz.join("target").join(triple).join("release"))
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV names no host")
}

fn run_target(
    bin: &Path,
    fuzz: &Path,
    work: &Path,
    target: &str,
    short: bool,
    runs: u64,
) -> Result<Outcome> {
    // New inputs go to a scratch corpus (the kept one changes only by --merge).
    let scratch = work.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    let logs = work.join("logs");
    for d in [&scratch, &artifacts, &logs] {
        fs::create_dir_all(d)?;
    }
    let kept = fuzz.join("corpus").join(target);
    fs::create_dir_all(&kept)?;
    let log_path = logs.join(format!("{target}.log"));
    let log = fs::File::create(&log_path)?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(format!("-max_len={MAX_LEN}"));
    if short {
        cmd.arg(format!("-max_total_time={SHORT_SECONDS}"));
    } else {
        cmd.arg(format!("-runs={runs}"));
    }
    if matches!(target, "template" | "expression") {
        cmd.arg(format!(
            "-dict={}",
            fuzz.join("dict").join("arm.dict").display()
        ));
    }
    cmd.arg(&scratch)
        .arg(&kept)
        .arg(work.join("seeds").join(target))
        .stdout(log.try_clone()?)
        .stderr(log);
    eprintln!(
        "fuzz: {target}: {}",
        if short {
            format!("{SHORT_SECONDS} s")
        } else {
            format!("{runs} runs")
        }
    );
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let mut o = parse_log(&text);
    o.target = target.to_string();
    o.ok = status.success();
    o.seconds = seconds;
    if !o.ok {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("fuzz: {target} FAILED; the end of {}:", log_path.display());
        for l in tail.into_iter().rev() {
            eprintln!("  {l}");
        }
    }
    Ok(o)
}

/// The numbers of libFuzzer's last status line and its final stats.
fn parse_log(text: &str) -> Outcome {
    let mut o = Outcome::default();
    let field = |line: &str, name: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == name)?;
        words.next()?.parse().ok()
    };
    for line in text.lines() {
        if line.starts_with('#') {
            if let Some(v) = field(line, "cov:") {
                o.cov = v;
            }
            if let Some(v) = field(line, "ft:") {
                o.ft = v;
            }
            if let Some(v) = field(line, "corp:").or_else(|| {
                // `corp: 123/45Kb`
                line.split("corp: ")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .and_then(|n| n.parse().ok())
            }) {
                o.corpus = v;
            }
        }
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units: ") {
            o.executions = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = line.strip_prefix("stat::peak_rss_mb: ") {
            o.peak_rss_mb = v.trim().parse().unwrap_or(0);
        }
        if let Some(i) = line.find("Test unit written to ") {
            o.artifact = Some(line[i + "Test unit written to ".len()..].trim().to_string());
        }
    }
    o
}

/// `-merge=1`: the kept corpus becomes the smallest set of inputs (of at
/// most `MERGE_MAX_LEN` bytes) that adds coverage to the seeds (which
/// every run writes afresh, so they are not kept twice): from the kept
/// corpus and the run's finds.
fn merge(bin: &Path, fuzz: &Path, work: &Path, target: &str) -> Result<()> {
    let kept = fuzz.join("corpus").join(target);
    let seeds = work.join("seeds").join(target);
    let fresh = work.join("merged").join(target);
    let _ = fs::remove_dir_all(&fresh);
    fs::create_dir_all(&fresh)?;
    for e in fs::read_dir(&seeds)? {
        let e = e?;
        fs::copy(e.path(), fresh.join(e.file_name()))?;
    }
    let out = Command::new(bin)
        .arg("-merge=1")
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-max_len={MERGE_MAX_LEN}"))
        .arg(&fresh)
        .arg(&kept)
        .arg(work.join("corpus").join(target))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if !out.status.success() {
        bail!(
            "merging {target}'s corpus failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for e in fs::read_dir(&seeds)? {
        fs::remove_file(fresh.join(e?.file_name()))?;
    }
    fs::remove_dir_all(&kept)?;
    fs::rename(&fresh, &kept)?;
    let (n, bytes) = dir_size(&kept)?;
    eprintln!(
        "fuzz: {target}: kept corpus {n} inputs, {} KB",
        bytes / 1024
    );
    Ok(())
}

fn dir_size(d: &Path) -> Result<(usize, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    for e in fs::read_dir(d)? {
        n += 1;
        bytes += e?.metadata()?.len();
    }
    Ok((n, bytes))
}

/// The templates the repository deploys: the examples, the quickstart
/// gallery's (tests/templates, with their nested and prerequisite ones)
/// and the labs' start and solution templates.
fn templates(root: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    let mut stack = vec![root.join("examples"), root.join("tests/templates")];
    for lab in fs::read_dir(root.join("labs"))? {
        let lab = lab?.path();
        for name in ["start.json", "solution.json"] {
            if lab.join(name).is_file() {
                files.push(lab.join(name));
            }
        }
    }
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).with_context(|| p.display().to_string())?;
            Ok((p, text))
        })
        .collect()
}

/// Seeds for each target, written afresh into `dir/TARGET/`: the
/// templates; the expressions in them; the bodies of their resources
/// (as PUT and PATCH of the fuzzing lab's resource of the same type); the
/// ids in them and the fuzzing lab's.
fn write_seeds(root: &Path, dir: &Path) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    let mut seeds: [(&str, BTreeSet<Vec<u8>>); 4] = TARGETS.map(|t| (t, BTreeSet::new()));
    let targets = vnet_agent::fuzzing::BODY_TARGETS;
    for (_, text) in templates(root)? {
        seeds[0].1.insert(text.clone().into_bytes());
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        strings(&v, &mut |s| {
            if s.starts_with('[') && !s.starts_with("[[") {
                seeds[1].1.insert(s.as_bytes().to_vec());
            }
            if s.starts_with("/subscriptions/") {
                seeds[3].1.insert(s.as_bytes().to_vec());
            }
        });
        let resources = match v.get("resources") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Object(m)) => m.values().cloned().collect(),
            _ => Vec::new(),
        };
        for r in resources {
            let Some(ty) = r.get("type").and_then(Value::as_str) else {
                continue;
            };
            let body = json!({
                "location": r.get("location"), "kind": r.get("kind"), "sku": r.get("sku"),
                "tags": r.get("tags"), "properties": r.get("properties"),
            });
            let body = serde_json::to_vec(&body)?;
            for (i, t) in targets.iter().enumerate() {
                let parts: Vec<&str> = t.split('/').collect();
                let types: Vec<&str> = parts.iter().skip(1).step_by(2).copied().collect();
                let t_type = format!("{}/{}", parts[0], types.join("/"));
                if t_type.eq_ignore_ascii_case(ty) {
                    for method in [0u8, 0x80] {
                        let mut seed = vec![i as u8 | method];
                        seed.extend_from_slice(&body);
                        seeds[2].1.insert(seed);
                    }
                }
            }
        }
    }
    for (i, t) in targets.iter().enumerate() {
        seeds[2].1.insert(vec![i as u8, b'{', b'}']);
        seeds[2].1.insert(vec![i as u8 | 0x80, b'{', b'}']);
        seeds[3].1.insert(
            format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/lab/providers/{t}")
                .into_bytes(),
        );
    }
    for (target, set) in &seeds {
        let d = dir.join(target);
        fs::create_dir_all(&d)?;
        for (i, s) in set.iter().enumerate() {
            fs::write(d.join(format!("seed-{i:04}")), s)?;
        }
    }
    Ok(())
}

fn strings(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, f)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            f(k);
            strings(x, f)
        }),
        _ => {}
    }
}
