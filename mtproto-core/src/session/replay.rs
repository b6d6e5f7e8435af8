//! The replay window: the last [`REPLAY_WINDOW`] msg_ids received in a session
//! (`mtproto_security_guidelines.md`, "Checking msg_id": "store the last N msg_ids … reject a
//! msg_id lower than all stored ones or equal to one of them", N ≥ 1000).
//!
//! Fixed capacity (`heapless`): memory never grows with traffic. Ids are kept sorted; inserting
//! the usual increasing id is an append.

/// How many msg_ids the window remembers.
pub const REPLAY_WINDOW: usize = 1024;

/// The verdict on an incoming msg_id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Not seen before: accept (and record it with [`ReplayWindow::insert`]).
    Fresh,
    /// Seen before: a duplicate or a replay.
    Duplicate,
    /// Lower than every remembered id while the window is full: cannot be told from a replay.
    TooOld,
}

/// Remembers recent msg_ids of one session.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    ids: heapless::Vec<i64, REPLAY_WINDOW>,
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Forgets everything (a new session).
    pub fn clear(&mut self) {
        self.ids.clear();
    }

    /// What `msg_id` would be, without recording it.
    pub fn check(&self, msg_id: i64) -> Replay {
        if self.ids.binary_search(&msg_id).is_ok() {
            return Replay::Duplicate;
        }
        if self.ids.is_full() && self.ids.first().is_some_and(|&min| msg_id < min) {
            return Replay::TooOld;
        }
        Replay::Fresh
    }

    /// Checks `msg_id` and records it if fresh.
    pub fn insert(&mut self, msg_id: i64) -> Replay {
        let verdict = self.check(msg_id);
        if verdict == Replay::Fresh {
            if self.ids.is_full() && !self.ids.is_empty() {
                self.ids.remove(0);
            }
            let at = self.ids.binary_search(&msg_id).unwrap_or_else(|at| at);
            // Cannot fail: a slot was freed above and `at <= len`.
            let _ = self.ids.insert(at, msg_id);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_ids_below_a_full_window_are_refused() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.insert(100), Replay::Fresh);
        assert_eq!(w.insert(100), Replay::Duplicate);
        assert_eq!(
            w.insert(96),
            Replay::Fresh,
            "out of order but not full: fine"
        );
        for i in 0..REPLAY_WINDOW as i64 {
            w.insert(1_000 + 4 * i);
        }
        assert_eq!(w.len(), REPLAY_WINDOW);
        assert_eq!(w.insert(100), Replay::TooOld);
        assert_eq!(w.insert(1_000 + 4 * 5), Replay::Duplicate);
        assert_eq!(w.insert(1_001), Replay::Fresh, "inside the window, unseen");
        assert_eq!(w.len(), REPLAY_WINDOW, "bounded");
    }

    #[test]
    fn a_million_ids_stay_within_the_window() {
        let mut w = ReplayWindow::new();
        for i in 0..1_000_000i64 {
            assert_eq!(w.insert(i * 4), Replay::Fresh);
        }
        assert_eq!(w.len(), REPLAY_WINDOW);
        assert_eq!(w.insert(0), Replay::TooOld);
    }
}
