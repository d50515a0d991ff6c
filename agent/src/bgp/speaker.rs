//! `vnet-agent bgp-speaker --config <file>`: runs BIRD 2 in the namespace it
//! was started in (the daemon supervises this process like an app's), with
//! the configuration rendered from the daemon's file next to it. When the
//! daemon rewrites the file, the new configuration is written and BIRD is
//! told to `configure` over its control socket: sessions stay up, only what
//! changed is announced or withdrawn.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::config::Speaker;

const WHAT: &str = "BGP speaker configuration";

/// The daemon's file: the speaker, plus what the daemon adds to every
/// host's configuration (ignored here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpeakerFile {
    speaker: Speaker,
}

/// BIRD's control socket of the speaker whose daemon file is `config`.
pub fn control_socket(config: &Path) -> PathBuf {
    config.with_extension("ctl")
}

fn bird_conf_path(config: &Path) -> PathBuf {
    config.with_extension("bird.conf")
}

fn write_conf(config: &Path, speaker: &Speaker) -> Result<()> {
    crate::store::write_atomic(&bird_conf_path(config), speaker.bird_conf().as_bytes())
}

pub fn run(config: &Path) -> Result<ExitCode> {
    let (file, mut seen) = crate::services::watch::load::<SpeakerFile>(config, WHAT)?;
    write_conf(config, &file.speaker)?;
    let socket = control_socket(config);
    let _ = std::fs::remove_file(&socket);
    let mut cmd = Command::new("bird");
    cmd.arg("-f")
        .arg("-c")
        .arg(bird_conf_path(config))
        .arg("-s")
        .arg(&socket)
        .arg("-P")
        .arg(config.with_extension("pid"));
    // BIRD ends with this process, however it ends (the daemon stops a
    // speaker by this process's PID).
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .context("starting bird (Debian's bird2 package)")?;
    eprintln!("{}: bird started (pid {})", file.speaker.what, child.id());
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = child.try_wait()? {
            eprintln!("bird exited: {status}");
            return Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(1, 255) as u8
            ));
        }
        let now = std::fs::metadata(config).and_then(|m| m.modified()).ok();
        if now == seen {
            continue;
        }
        match crate::services::watch::load::<SpeakerFile>(config, WHAT) {
            Ok((f, modified)) => {
                seen = modified;
                write_conf(config, &f.speaker)?;
                match super::control::query(&socket, "configure") {
                    Ok(reply) => eprintln!("reconfigured: {}", reply.join(" ")),
                    Err(e) => eprintln!("reconfiguring bird: {e:#}"),
                }
            }
            Err(e) => eprintln!("keeping the previous configuration: {e:#}"),
        }
    }
}
