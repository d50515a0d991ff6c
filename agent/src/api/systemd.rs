//! The daemon as a systemd service: readiness and reload notifications
//! (`sd_notify`, the `NOTIFY_SOCKET` datagram protocol; `Type=notify` makes
//! `systemctl start` return only once the API answers), and the API
//! socket's group (root and the group read and write it: 0660).

use std::path::Path;

use anyhow::{Context, Result};

/// Sends `state` (`READY=1`, `RELOADING=1`, `STOPPING=1`, ...) to the
/// service manager; nothing when the daemon was not started by one.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(e) = sent {
        tracing::warn!("sd_notify {state}: {e}");
    }
}

/// `RELOADING=1` with the monotonic time systemd wants beside it.
pub fn reloading() {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// Gives the socket to `group` (a name from /etc/group or a number), mode
/// 0660: members run the CLI without sudo. Without a group it stays 0600.
pub fn socket_access(socket: &Path, group: Option<&str>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Some(group) = group else {
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
        return Ok(());
    };
    let gid = match group.parse::<u32>() {
        Ok(gid) => gid,
        Err(_) => nix::unistd::Group::from_name(group)
            .with_context(|| format!("looking up group {group}"))?
            .with_context(|| {
                format!("there is no group {group} (create it, or leave --socket-group out)")
            })?
            .gid
            .as_raw(),
    };
    std::os::unix::fs::chown(socket, Some(0), Some(gid))
        .with_context(|| format!("giving {} to group {group}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))?;
    Ok(())
}
