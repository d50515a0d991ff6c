//! `cargo xtask deb`: the Debian package (cargo-deb), built and checked: it
//! holds the binary, the systemd unit, the examples and the docs, and its
//! maintainer script makes the socket's group.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

/// What the package must hold.
const MUST_HOLD: [&str; 5] = [
    "./usr/bin/vnet-agent",
    "./lib/systemd/system/vnet-agent.service",
    "./usr/share/vnet-agent/examples/lab.json",
    "./usr/share/doc/vnet-agent/README.md",
    "./usr/share/vnet-agent/user-ci.sh",
];

pub fn run() -> Result<ExitCode> {
    println!("{}", build()?.display());
    Ok(ExitCode::SUCCESS)
}

/// Builds the package, checks what it holds, and returns its path.
pub fn build() -> Result<PathBuf> {
    let out = Command::new("cargo")
        .args(["deb", "-p", "vnet-agent"])
        .output()
        .context("cargo deb (install it: cargo install cargo-deb)")?;
    if !out.status.success() {
        bail!("cargo deb failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let deb = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or_default(),
    );
    let list = Command::new("dpkg-deb").arg("-c").arg(&deb).output()?;
    let listing = String::from_utf8_lossy(&list.stdout);
    let missing: Vec<&str> = MUST_HOLD
        .iter()
        .copied()
        .filter(|p| !listing.contains(p))
        .collect();
    if !missing.is_empty() {
        bail!("{} lacks {missing:?}:\n{listing}", deb.display());
    }
    let info = Command::new("dpkg-deb").arg("-I").arg(&deb).output()?;
    let info = String::from_utf8_lossy(&info.stdout);
    for want in ["Depends:", "nftables", "postinst"] {
        if !info.contains(want) {
            bail!("{} control lacks {want}:\n{info}", deb.display());
        }
    }
    Ok(deb)
}
