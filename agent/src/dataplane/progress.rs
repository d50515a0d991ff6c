//! What a long apply is doing now, for a terminal's progress line: the step
//! (in the lab's words) and how far through it. Kept apart from the state
//! lock and the dataplane's apply lock, so a client can read it while the
//! apply runs.

use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Whether an apply or teardown is running.
    pub active: bool,
    pub step: String,
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Default)]
pub struct Progress(Mutex<Snapshot>);

impl Progress {
    /// A new step of `total` units (0: not counted).
    pub fn step(&self, step: &str, total: usize) {
        let mut s = self.0.lock().unwrap();
        *s = Snapshot {
            active: true,
            step: step.to_string(),
            done: 0,
            total: total as u64,
        };
    }

    /// One unit of the current step done.
    pub fn tick(&self) {
        self.0.lock().unwrap().done += 1;
    }

    /// Nothing running any more.
    pub fn finish(&self) {
        *self.0.lock().unwrap() = Snapshot::default();
    }

    pub fn snapshot(&self) -> Snapshot {
        self.0.lock().unwrap().clone()
    }

    /// Finishes when dropped: an apply that fails or is cancelled half way
    /// leaves no stale progress behind.
    pub fn guard(&self) -> Guard<'_> {
        Guard(self)
    }
}

pub struct Guard<'a>(&'a Progress);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_their_units_and_finish_clears() {
        let p = Progress::default();
        assert!(!p.snapshot().active);
        p.step("creating namespaces", 3);
        p.tick();
        p.tick();
        let s = p.snapshot();
        assert_eq!(
            (s.active, s.step.as_str(), s.done, s.total),
            (true, "creating namespaces", 2, 3)
        );
        p.step("links", 0);
        assert_eq!(p.snapshot().done, 0);
        p.finish();
        assert_eq!(p.snapshot(), Snapshot::default());
    }
}
