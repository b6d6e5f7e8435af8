//! Message identifiers, sequence numbers and the one server-time source they derive from
//! (`mtproto_description.md`, "Message Identifier (msg_id)" and "Message Sequence Number";
//! `mtproto.md`, "Time Synchronization").
//!
//! A msg_id is `unixtime · 2^32` read off the **server's** clock: the local wall clock plus an
//! offset. The offset comes from the handshake's `server_time`, from `bad_msg_notification` 16/17
//! (whose own msg_id carries the server's time) and from authenticated msg_ids. [`MsgIdGen`] keeps
//! its ids strictly increasing; when the offset moves backwards the floor it keeps must be
//! re-derived (the session is restarted, [`MsgIdGen::reset`]) — a floor kept across a downward
//! correction makes every later id "too high" forever (grammers #335/#389).

use crate::time::UnixTime;

/// Server time in nanoseconds since the Unix epoch, as read from a msg_id: the upper 32 bits
/// are seconds, the lower 32 bits the binary fraction of a second.
pub fn msg_id_time_nanos(msg_id: i64) -> i64 {
    // |secs| <= 2^31 and frac < 2^32: |secs · 10^9| < 2.2 · 10^18 and frac · 10^9 < 2^62, so
    // 64 bits hold every step (saturating only to satisfy the lints).
    let secs = msg_id >> 32;
    let frac = msg_id & 0xffff_ffff;
    secs.saturating_mul(1_000_000_000)
        .saturating_add(frac.saturating_mul(1_000_000_000) >> 32)
}

/// The msg_id for a server time in nanoseconds (lower two bits as computed; callers set them).
/// In 64-bit arithmetic (divisions by a constant become multiplications; 128-bit ones are calls
/// into the runtime, three per id): `sub << 32 < 2^62`, and the seconds saturate as before.
pub fn msg_id_for_nanos(nanos: i64) -> i64 {
    const N: i64 = 1_000_000_000;
    let secs = nanos.div_euclid(N);
    let sub = nanos.rem_euclid(N); // 0..N
    let frac = (sub << 32) / N; // < 2^32
    match secs.checked_mul(1 << 32) {
        Some(high) => high | frac,
        None if secs < 0 => i64::MIN,
        None => i64::MAX,
    }
}

fn unix_nanos(t: UnixTime) -> i64 {
    i64::try_from(t.as_nanos()).unwrap_or(i64::MAX)
}

/// The one server-time source of a session: local wall clock plus a learned offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerClock {
    offset_nanos: i64,
    synced: bool,
}

impl ServerClock {
    /// A clock with a known offset in seconds (e.g. the handshake's `time_offset`, or a saved one).
    pub fn with_offset_secs(offset_secs: i64) -> Self {
        Self {
            offset_nanos: offset_secs.saturating_mul(1_000_000_000),
            synced: true,
        }
    }

    /// A clock that has not been synchronised yet (offset 0, [`is_synced`](Self::is_synced) false).
    pub fn unsynced() -> Self {
        Self::default()
    }

    /// Whether the offset was learned from the server (the time window is only enforced then).
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The offset (server − local) in nanoseconds.
    pub fn offset_nanos(&self) -> i64 {
        self.offset_nanos
    }

    /// The offset (server − local) in whole seconds, rounded to the nearest second.
    pub fn offset_secs(&self) -> i64 {
        self.offset_nanos
            .saturating_add(500_000_000)
            .div_euclid(1_000_000_000)
    }

    /// Server time now, in nanoseconds since the epoch.
    pub fn server_nanos(&self, local: UnixTime) -> i64 {
        unix_nanos(local).saturating_add(self.offset_nanos)
    }

    /// Sets the offset so that "now" on the server is the time carried by `server_msg_id`
    /// (bad_msg 16/17, or the first authenticated message). Returns the change in nanoseconds.
    pub fn sync_to_msg_id(&mut self, local: UnixTime, server_msg_id: i64) -> i64 {
        let new = msg_id_time_nanos(server_msg_id).saturating_sub(unix_nanos(local));
        let delta = new.saturating_sub(self.offset_nanos);
        self.offset_nanos = new;
        self.synced = true;
        delta
    }

    /// Moves the offset up by `nanos` (> 0) when the server's own message shows its clock is
    /// ahead of our estimate (a message cannot be sent later than it is received, so only an
    /// upward correction is safe, as tdlib does). Returns whether the whole-second offset moved.
    pub fn learn_upward(&mut self, nanos: i64) -> bool {
        if nanos <= 0 {
            return false;
        }
        let before = self.offset_secs();
        self.offset_nanos = self.offset_nanos.saturating_add(nanos);
        before != self.offset_secs()
    }

    /// How far (nanoseconds, signed) the time carried by `msg_id` lies from server time now:
    /// positive means in the future.
    pub fn skew_of(&self, local: UnixTime, msg_id: i64) -> i64 {
        msg_id_time_nanos(msg_id).saturating_sub(self.server_nanos(local))
    }
}

/// Generates strictly increasing msg_ids with the given residue modulo 4 (0 for a client, 1 for
/// a server's responses, 3 for its other messages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgIdGen {
    last: i64,
}

impl MsgIdGen {
    /// A generator with no floor yet.
    pub const fn new() -> Self {
        Self { last: 0 }
    }

    /// A generator whose next id is above `last` (a restored session's floor).
    pub const fn above(last: i64) -> Self {
        Self { last }
    }

    /// The last id handed out (0 if none).
    pub fn last(&self) -> i64 {
        self.last
    }

    /// Forgets the floor: the next id follows the clock alone. Only valid together with a new
    /// session (msg_ids must increase within one session).
    pub fn reset(&mut self) {
        self.last = 0;
    }

    /// The next id for server time `server_nanos`, `≡ residue (mod 4)` and above every id handed
    /// out before.
    pub fn next(&mut self, server_nanos: i64, residue: i64) -> i64 {
        let residue = residue & 3;
        let mut id = (msg_id_for_nanos(server_nanos) & !3) | residue;
        if id <= self.last {
            // Next id above the floor with the right residue.
            id = (self.last & !3).saturating_add(4) | residue;
        }
        self.last = id;
        id
    }
}

/// Sequence numbers: `2 · (content-related messages sent before) + (1 if content-related)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqNo {
    content_related: i32,
}

impl SeqNo {
    /// A new session's counter.
    pub const fn new() -> Self {
        Self { content_related: 0 }
    }

    /// A counter that has seen `count` content-related messages (a restored session).
    pub const fn with_count(count: i32) -> Self {
        Self {
            content_related: if count < 0 { 0 } else { count },
        }
    }

    /// The seq_no of the next message.
    pub fn next(&mut self, content_related: bool) -> i32 {
        let base = self.content_related.wrapping_mul(2);
        if content_related {
            self.content_related = self.content_related.wrapping_add(1);
            base | 1
        } else {
            base
        }
    }

    /// Content-related messages counted so far.
    pub fn count(&self) -> i32 {
        self.content_related
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NANOS: i128 = 1_000_000_000;

    #[test]
    fn msg_id_time_round_trips_within_a_quarter_nanosecond_unit() {
        // 1_700_000_000.5 s: the fraction 0.5 is 2^31.
        let id = msg_id_for_nanos(1_700_000_000_500_000_000);
        assert_eq!(id >> 32, 1_700_000_000);
        assert_eq!(id & 0xffff_ffff, 1 << 31);
        assert_eq!(msg_id_time_nanos(id), 1_700_000_000_500_000_000);
    }

    #[test]
    fn msg_ids_agree_with_the_formula_in_128_bit_arithmetic() {
        // unixtime · 2^32, the fraction of a second in the low 32 bits (floored), saturated.
        let reference = |nanos: i64| -> i64 {
            let n = i128::from(nanos);
            let id = (n.div_euclid(NANOS) << 32) | ((n.rem_euclid(NANOS) << 32) / NANOS);
            id.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut probes = std::vec![
            0,
            1,
            -1,
            999_999_999,
            1_000_000_000,
            -1_000_000_000,
            -1_000_000_001,
            1_700_000_000_500_000_000,
            i64::MAX,
            i64::MIN,
            (1i64 << 31) * 1_000_000_000 - 1,
            (1i64 << 31) * 1_000_000_000,
            -(1i64 << 31) * 1_000_000_000,
            -(1i64 << 31) * 1_000_000_000 - 1,
        ];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            probes.push(x as i64);
            probes.push(1_700_000_000_000_000_000 + (x % 1_000_000_000_000) as i64);
        }
        for n in probes {
            assert_eq!(msg_id_for_nanos(n), reference(n), "{n}");
        }
        // And back: seconds · 10^9 + the fraction · 10^9 / 2^32 (floored).
        let time = |id: i64| -> i64 {
            let t = i128::from(id >> 32) * NANOS + ((i128::from(id & 0xffff_ffff) * NANOS) >> 32);
            t as i64
        };
        for id in [
            0,
            1,
            -1,
            i64::MAX,
            i64::MIN,
            3 << 32,
            (-3 << 32) | 0xffff_ffff,
        ] {
            assert_eq!(msg_id_time_nanos(id), time(id), "{id}");
        }
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_eq!(msg_id_time_nanos(x as i64), time(x as i64), "{x}");
        }
    }

    #[test]
    fn ids_are_increasing_with_the_residue_even_when_time_stands_still() {
        let mut g = MsgIdGen::new();
        let a = g.next(1_700_000_000_000_000_000, 0);
        let b = g.next(1_700_000_000_000_000_000, 0);
        let c = g.next(1_600_000_000_000_000_000, 0);
        assert!(a < b && b < c);
        assert!([a, b, c].iter().all(|x| x % 4 == 0));
        let mut s = MsgIdGen::new();
        let r = s.next(1_700_000_000_000_000_000, 1);
        let o = s.next(1_700_000_000_000_000_000, 3);
        assert_eq!((r & 3, o & 3), (1, 3));
        assert!(o > r);
    }

    #[test]
    fn reset_lets_ids_follow_a_corrected_clock_downwards() {
        let mut g = MsgIdGen::new();
        let high = g.next(1_700_000_120_000_000_000, 0);
        let still_high = g.next(1_700_000_000_000_000_000, 0);
        assert!(still_high > high, "without reset the floor wins");
        g.reset();
        let low = g.next(1_700_000_000_000_000_000, 0);
        assert!(low < high);
        assert_eq!(low >> 32, 1_700_000_000);
    }

    #[test]
    fn clock_syncs_to_a_server_msg_id() {
        let mut c = ServerClock::unsynced();
        let local = UnixTime::from_secs(1_700_000_000);
        let server_id = msg_id_for_nanos(1_700_000_120_000_000_000) | 1;
        let delta = c.sync_to_msg_id(local, server_id);
        assert_eq!(c.offset_secs(), 120);
        assert_eq!(delta / 1_000_000_000, 120);
        assert!(c.is_synced());
        assert_eq!(c.server_nanos(local) / 1_000_000_000, 1_700_000_120);
        assert_eq!(c.skew_of(local, server_id) / 1_000_000, 0);
    }

    #[test]
    fn seq_no_counts_content_related_messages() {
        let mut s = SeqNo::new();
        assert_eq!(s.next(false), 0);
        assert_eq!(s.next(true), 1);
        assert_eq!(s.next(true), 3);
        assert_eq!(s.next(false), 4);
        assert_eq!(s.next(true), 5);
        assert_eq!(s.count(), 3);
    }
}
