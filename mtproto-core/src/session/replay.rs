//! The replay window: the last [`REPLAY_WINDOW`] msg_ids received in a session
//! (`mtproto_security_guidelines.md`, "Checking msg_id": "store the last N msg_ids … reject a
//! msg_id lower than all stored ones or equal to one of them", N ≥ 1000).
//!
//! Fixed capacity (`heapless`): memory never grows with traffic. Ids are kept sorted in a ring
//! buffer: the usual increasing id is appended (over the oldest once the window is full) without
//! moving the others, and a lookup is one comparison with the newest id or a binary search.

use heapless::Deque;

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
    /// Ascending from front to back.
    ids: Deque<i64, REPLAY_WINDOW>,
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

    /// Whether `msg_id` is remembered (binary search of the two sorted halves of the ring).
    fn contains(&self, msg_id: i64) -> bool {
        let (older, newer) = self.ids.as_slices();
        if newer.first().is_some_and(|&low| msg_id >= low) {
            newer.binary_search(&msg_id).is_ok()
        } else {
            older.binary_search(&msg_id).is_ok()
        }
    }

    /// What `msg_id` would be, without recording it.
    pub fn check(&self, msg_id: i64) -> Replay {
        match self.ids.back() {
            // Above every remembered id (the usual case): fresh, nothing to search.
            None => return Replay::Fresh,
            Some(&newest) if msg_id > newest => return Replay::Fresh,
            Some(_) => {}
        }
        if self.contains(msg_id) {
            return Replay::Duplicate;
        }
        if self.ids.is_full() && self.ids.front().is_some_and(|&min| msg_id < min) {
            return Replay::TooOld;
        }
        Replay::Fresh
    }

    /// Checks `msg_id` and records it if fresh.
    pub fn insert(&mut self, msg_id: i64) -> Replay {
        let verdict = self.check(msg_id);
        if verdict == Replay::Fresh {
            if self.ids.is_full() {
                self.ids.pop_front();
            }
            // Cannot fail: a slot was freed above.
            let _ = self.ids.push_back(msg_id);
            // An id below the newest (out of order) moves down to its place: the ids above it
            // move up one each (rare; as an insertion into a sorted array would).
            let mut at = self.ids.len().saturating_sub(1);
            while let Some(below) = at.checked_sub(1) {
                match (self.ids.get(below), self.ids.get(at)) {
                    (Some(&b), Some(&a)) if b > a => {
                        self.ids.swap(below, at);
                        at = below;
                    }
                    _ => break,
                }
            }
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

    /// The window as the guidelines word it, written the plain way: a sorted list of the last
    /// N ids; an id equal to one of them is a duplicate, one below all of them (list full) too
    /// old; a fresh one is inserted in order, the lowest forgotten when the list is full.
    struct Model(std::vec::Vec<i64>);

    impl Model {
        fn insert(&mut self, id: i64) -> Replay {
            if self.0.contains(&id) {
                return Replay::Duplicate;
            }
            if self.0.len() == REPLAY_WINDOW && self.0.iter().all(|&m| id < m) {
                return Replay::TooOld;
            }
            if self.0.len() == REPLAY_WINDOW {
                self.0.remove(0);
            }
            let at = self.0.iter().position(|&m| m > id).unwrap_or(self.0.len());
            self.0.insert(at, id);
            Replay::Fresh
        }
    }

    #[test]
    fn ids_out_of_order_duplicates_and_wrap_around_agree_with_a_sorted_list() {
        let (mut w, mut model) = (ReplayWindow::new(), Model(std::vec::Vec::new()));
        // Mostly increasing ids with jitter back into the window, repeats and old ones, over
        // several turns of the ring.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..(5 * REPLAY_WINDOW as i64) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = match x % 8 {
                0 => 4 * i - 4 * (x >> 8) as i64 % 2048, // back into (or below) the window
                1 => 4 * (i - 1),                        // most likely a repeat
                _ => 4 * i,
            };
            assert_eq!(w.insert(id), model.insert(id), "id {id} (step {i})");
            assert!(w.len() <= REPLAY_WINDOW);
        }
        let ids: std::vec::Vec<i64> = w.ids.iter().copied().collect();
        assert_eq!(ids, model.0, "same ids, in order");
        for probe in [
            0,
            4,
            model.0[0] - 1,
            model.0[0],
            model.0[500],
            model.0[500] + 1,
        ] {
            let verdict = Model(model.0.clone()).insert(probe);
            assert_eq!(w.check(probe), verdict, "check({probe})");
        }
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
