//! Crash-safe persistence of the desired state (resources and allocations).
//!
//! A request is committed here before the kernel is touched, so an apply that
//! is interrupted at any point is finished by the next reconcile. A commit is
//! write-to-temp, fsync, rename, fsync of the directory: after a crash the file
//! holds either the old state or the new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::LabState;

const STATE_FILE: &str = "state.json";
/// The state before the last commit: the way back from a state file that
/// was damaged outside the daemon.
const PREVIOUS_FILE: &str = "state.prev.json";

/// The state directory of one lab. Holding a `Store` holds an exclusive lock on
/// the directory, so two daemons can never write the same lab.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the state directory and locks it.
    pub fn open(dir: &Path) -> Result<Store> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        // The state holds app settings and secrets: root's alone (also for a
        // directory an older version made 0755 with a 0644 state.json).
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (0700)", dir.display()))?;
        let state = dir.join(STATE_FILE);
        if state.exists() {
            fs::set_permissions(&state, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private (0600)", state.display()))?;
        }
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        // SAFETY: flock on an fd we own.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            anyhow::bail!(
                "state directory {} is in use by another vnet-agent daemon (lock held on {})",
                dir.display(),
                lock_path.display()
            );
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The committed state, or an empty lab when nothing was ever committed.
    /// A state file that does not parse (truncated, edited, damaged) is
    /// refused: starting on an empty lab would tear down every namespace the
    /// real state describes. The error names the file and the way out.
    pub fn load(&self) -> Result<LabState> {
        let path = self.dir.join(STATE_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                let prev = self.dir.join(PREVIOUS_FILE);
                let way_back = match fs::read(&prev)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<LabState>(&b).ok())
                {
                    Some(p) => format!(
                        "The state before the last change is kept in {} (generation {}): \
                         `mv {} {}` goes back to it",
                        prev.display(),
                        p.generation,
                        prev.display(),
                        path.display()
                    ),
                    None => "No earlier state is kept".to_string(),
                };
                anyhow::anyhow!(
                    "the committed state {} is damaged ({e}); the daemon will not start on it. \
                     {way_back}. Or move it away to start an empty lab (`vnet-agent down` first \
                     removes what the old one built).",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LabState::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Commits `state` atomically and durably. The state it replaces is kept
    /// as `state.prev.json` (a hard link swapped in atomically, so a crash
    /// at any point leaves `state.json` whole, old or new).
    pub fn commit(&self, state: &LabState) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state)?;
        let current = self.dir.join(STATE_FILE);
        if current.exists() {
            let tmp = self.dir.join("state.prev.tmp");
            let _ = fs::remove_file(&tmp);
            fs::hard_link(&current, &tmp)
                .and_then(|()| fs::rename(&tmp, self.dir.join(PREVIOUS_FILE)))
                .with_context(|| format!("keeping the previous state in {}", self.dir.display()))?;
        }
        write_atomic(&current, &bytes)
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path without a parent directory")?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // A full disk fails here: the half-written file goes, so it holds
        // no space and the old content stays the committed one.
        if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
            drop(f);
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", tmp.display()));
        }
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), LabState::default());
        let state = LabState {
            generation: 7,
            ..Default::default()
        };
        store.commit(&state).unwrap();
        assert_eq!(store.load().unwrap().generation, 7);
        assert!(!dir.path().join("state.tmp").exists());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("state.json")), 0o600);
        assert_eq!(mode(dir.path()), 0o700);
    }

    #[test]
    fn a_damaged_state_is_refused_with_the_way_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for generation in [1, 2] {
            store
                .commit(&LabState {
                    generation,
                    ..Default::default()
                })
                .unwrap();
        }
        // The state before the last commit is kept beside it.
        let prev: LabState =
            serde_json::from_slice(&fs::read(dir.path().join("state.prev.json")).unwrap()).unwrap();
        assert_eq!(prev.generation, 1);
        // Truncated by something else: refused, naming the file and the way back.
        let path = dir.path().join("state.json");
        let text = fs::read(&path).unwrap();
        fs::write(&path, &text[..text.len() / 2]).unwrap();
        let err = format!("{:#}", store.load().unwrap_err());
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains("damaged"),
            "{err}"
        );
        assert!(
            err.contains("state.prev.json (generation 1)") && err.contains("mv "),
            "{err}"
        );
        // The file is left as it was found.
        assert_eq!(fs::read(&path).unwrap().len(), text.len() / 2);
    }

    #[test]
    fn second_daemon_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another vnet-agent daemon"), "{err}");
    }
}
