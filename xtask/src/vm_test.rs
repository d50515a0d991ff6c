//! `cargo xtask vm-test`: the dev VM brought up for real with Vagrant and
//! libvirt, from an empty pool to a destroyed VM. Builds the Debian package
//! (release) and, once, a Debian box from Debian's packages
//! (`vagrant/build-box.sh`), then runs `vagrant/vm-test.sh` inside
//! `scripts/sandbox.sh`: libvirt's bridge, dnsmasq and NAT rules live in the
//! sandbox's network namespace, never the machine's. The whole log is kept in
//! `target/vm/vm-test.log`. Not part of `.ci/run` (a VM boot and a release
//! build take minutes).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

const TOOLS: [&str; 6] = [
    "vagrant",
    "virsh",
    "libvirtd",
    "debootstrap",
    "qemu-system-x86_64",
    "qemu-img",
];

pub fn run() -> Result<ExitCode> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !running_as_root() {
        bail!("vm-test needs root (libvirt, debootstrap, network namespaces)");
    }
    if !Path::new("/dev/kvm").exists() {
        bail!("vm-test needs /dev/kvm");
    }
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t} || test -x /usr/sbin/{t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "vm-test needs {missing:?}: apt-get install vagrant vagrant-libvirt \
             libvirt-daemon-system qemu-system-x86 qemu-utils debootstrap"
        );
    }
    let started = Instant::now();
    std::fs::create_dir_all(root.join("target/vm"))?;
    let log_path = root.join("target/vm/vm-test.log");
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;

    println!("== building the Debian package (release)");
    let deb = crate::deb::build()?;
    println!("   {}", deb.display());
    for (what, cmd) in [
        ("the box", vec!["vagrant/build-box.sh"]),
        (
            "the VM test (in the sandbox)",
            vec!["scripts/sandbox.sh", "vagrant/vm-test.sh"],
        ),
    ] {
        println!("== {what}");
        let mut child = Command::new(cmd[0])
            .args(&cmd[1..])
            .current_dir(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("running {}", cmd.join(" ")))?;
        for line in BufReader::new(child.stdout.take().context("output")?).lines() {
            let line = line?;
            println!("{line}");
            writeln!(log, "{line}")?;
        }
        let status = child.wait()?;
        if !status.success() {
            eprintln!(
                "xtask vm-test: {} failed ({status}); log: {}",
                cmd.join(" "),
                log_path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let took = started.elapsed().as_secs();
    println!(
        "vm-test passed in {}m{:02}s; log: {}",
        took / 60,
        took % 60,
        log_path.display()
    );
    writeln!(log, "vm-test passed in {}m{:02}s", took / 60, took % 60)?;
    Ok(ExitCode::SUCCESS)
}

/// Whether this process runs as root (`id -u`, without a libc dependency).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
