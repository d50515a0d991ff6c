//! A progress line on a terminal while the daemon works on a long request
//! (a deploy of many instances, a scale, `down` of a big lab): the daemon's
//! current step and count, polled from `GET /lab/progress` on a second
//! connection. Only when stderr is a terminal: piped or logged output stays
//! plain, byte for byte what it was.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::client::request;

/// Draws until dropped, then clears its line.
pub struct ProgressLine {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// `None` unless stderr is a terminal (`VNET_AGENT_PROGRESS=never` turns it off).
pub fn start(socket: PathBuf, principal: String, label: &str) -> Option<ProgressLine> {
    if !std::io::stderr().is_terminal()
        || std::env::var("VNET_AGENT_PROGRESS").as_deref() == Ok("never")
    {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let label = label.to_string();
    let handle = std::thread::spawn(move || {
        let started = Instant::now();
        let mut drawn = false;
        // Quick requests draw nothing.
        let mut next = Duration::from_millis(300);
        loop {
            while started.elapsed() < next {
                if flag.load(Ordering::Relaxed) {
                    if drawn {
                        eprint!("\r\x1b[K");
                        let _ = std::io::stderr().flush();
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            next += Duration::from_millis(200);
            let Ok((200, p)) = request(&socket, &principal, "GET", "/lab/progress", None) else {
                continue;
            };
            eprint!("\r\x1b[K{}", line(&label, &p, started.elapsed()));
            let _ = std::io::stderr().flush();
            drawn = true;
        }
    });
    Some(ProgressLine {
        stop,
        handle: Some(handle),
    })
}

/// `deploying: configuring namespaces 120/203 (4s)`.
fn line(label: &str, p: &serde_json::Value, elapsed: Duration) -> String {
    let step = p["step"].as_str().filter(|s| !s.is_empty());
    let (done, total) = (
        p["done"].as_u64().unwrap_or(0),
        p["total"].as_u64().unwrap_or(0),
    );
    let secs = elapsed.as_secs();
    match step {
        Some(step) if total > 0 => format!("{label}: {step} {done}/{total} ({secs}s)"),
        Some(step) => format!("{label}: {step} ({secs}s)"),
        None => format!("{label}: waiting for the daemon ({secs}s)"),
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_step_and_its_count() {
        let p = serde_json::json!({"active": true, "step": "creating namespaces", "done": 120, "total": 203});
        assert_eq!(
            line("deploying", &p, Duration::from_millis(4200)),
            "deploying: creating namespaces 120/203 (4s)"
        );
        let p = serde_json::json!({"active": true, "step": "starting processes", "done": 0, "total": 0});
        assert_eq!(
            line("down", &p, Duration::ZERO),
            "down: starting processes (0s)"
        );
        let idle = serde_json::json!({"active": false, "step": "", "done": 0, "total": 0});
        assert!(line("x", &idle, Duration::ZERO).contains("waiting"));
    }
}
