//! Connection-attempt pacing: tdlib's limits (`ConnectionCreator.cpp`, `FloodControlStrict`:
//! "no more than `count` events in each `duration`") and an exponential backoff with jitter.
//!
//! - always: at most 10 attempts per 5 s;
//! - after failed attempts (until one succeeds): at most 1 per 1 s, 2 per 4 s and 3 per 8 s
//!   counted over the failures.
//!
//! Pure functions of the instants passed in, so tests run on a synthetic clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// `(window, count)`: at most `count` events in any `window`.
pub type Limit = (Duration, usize);

/// The sanity limit on every attempt: 10 per 5 s.
pub const SANITY_LIMITS: &[Limit] = &[(Duration::from_secs(5), 10)];
/// The limits after failures: 1 per 1 s, 2 per 4 s, 3 per 8 s.
pub const FAILURE_LIMITS: &[Limit] = &[
    (Duration::from_secs(1), 1),
    (Duration::from_secs(4), 2),
    (Duration::from_secs(8), 3),
];

/// Events remembered: enough for the largest count above.
const HISTORY: usize = 10;

/// A sliding-window limiter over a set of [`Limit`]s.
#[derive(Clone, Debug)]
struct Window {
    limits: &'static [Limit],
    events: VecDeque<Instant>,
}

impl Window {
    fn new(limits: &'static [Limit]) -> Self {
        Self {
            limits,
            events: VecDeque::with_capacity(HISTORY),
        }
    }

    /// The earliest instant at which one more event keeps every limit.
    fn next_allowed(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        for &(window, count) in self.limits {
            // The count-th most recent event: one more event must come a full window after it.
            let Some(idx) = self.events.len().checked_sub(count) else {
                continue;
            };
            if let Some(&t) = self.events.get(idx) {
                let t = t + window;
                at = Some(at.map_or(t, |a| a.max(t)));
            }
        }
        at
    }

    fn record(&mut self, t: Instant) {
        if self.events.len() >= HISTORY {
            self.events.pop_front();
        }
        self.events.push_back(t);
    }

    fn clear(&mut self) {
        self.events.clear();
    }
}

/// Paces connection attempts: [`AttemptLimiter::delay`] says how long to wait before the next one.
#[derive(Clone, Debug)]
pub struct AttemptLimiter {
    all: Window,
    failures: Window,
    backoff: Backoff,
}

impl Default for AttemptLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl AttemptLimiter {
    /// tdlib's limits and the default backoff.
    pub fn new() -> Self {
        Self {
            all: Window::new(SANITY_LIMITS),
            failures: Window::new(FAILURE_LIMITS),
            backoff: Backoff::default(),
        }
    }

    /// The earliest instant the limits allow the next attempt (`None`: now).
    pub fn next_allowed(&self) -> Option<Instant> {
        match (self.all.next_allowed(), self.failures.next_allowed()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// How long to wait at `now` before the next attempt: the limits, and after failures the
    /// backoff (`jitter` in `0..=u32::MAX` picks the point within its jitter range).
    pub fn delay(&self, now: Instant, jitter: u32) -> Duration {
        let limits = self
            .next_allowed()
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let backoff = match self.failures.events.back() {
            Some(&last) => (last + self.backoff.delay(jitter)).saturating_duration_since(now),
            None => Duration::ZERO,
        };
        limits.max(backoff)
    }

    /// An attempt starts at `t`.
    pub fn attempt(&mut self, t: Instant) {
        self.all.record(t);
    }

    /// The attempt that started last failed (refused, dropped before the session was ready).
    pub fn failure(&mut self, t: Instant) {
        self.failures.record(t);
        self.backoff.failure();
    }

    /// A connection became ready: the failure limits and the backoff start over.
    pub fn success(&mut self) {
        self.failures.clear();
        self.backoff.reset();
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.backoff.failures
    }
}

/// Exponential backoff with jitter: `base · 2^(failures-1)` capped at `max`, then a random point
/// in its upper half.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max: Duration::from_secs(30),
            failures: 0,
        }
    }
}

impl Backoff {
    /// The delay after the failures so far; `jitter` (uniform in `u32`) picks within `[d/2, d]`.
    pub fn delay(&self, jitter: u32) -> Duration {
        let Some(exp) = self.failures.checked_sub(1) else {
            return Duration::ZERO;
        };
        let d = self
            .base
            .checked_mul(1u32 << exp.min(20))
            .unwrap_or(self.max)
            .min(self.max);
        let half = d / 2;
        let frac = u64::from(jitter);
        let extra_nanos = (half.as_nanos() * u128::from(frac)) / u128::from(u32::MAX);
        half + Duration::from_nanos(u64::try_from(extra_nanos).unwrap_or(u64::MAX))
    }

    fn failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Attempts a greedy client makes over `span` against a server that always fails: each
    /// attempt as soon as `delay` allows.
    fn greedy_failing(span: Duration, jitter: u32) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut l = AttemptLimiter::new();
        let mut now = t0;
        let mut at = Vec::new();
        while now < t0 + span {
            now += l.delay(now, jitter);
            if now >= t0 + span {
                break;
            }
            l.attempt(now);
            l.failure(now);
            at.push(now - t0);
        }
        at
    }

    /// Counts events in every window of length `w` (starting at each event).
    fn max_in_window(at: &[Duration], w: Duration) -> usize {
        at.iter()
            .map(|&s| at.iter().filter(|&&t| t >= s && t < s + w).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn failures_hold_tdlib_limits() {
        // Zero jitter: the backoff is as short as it gets, so only the limits hold it.
        let at = greedy_failing(Duration::from_secs(60), 0);
        assert!(max_in_window(&at, ms(1000)) <= 1, "{at:?}");
        assert!(max_in_window(&at, ms(4000)) <= 2, "{at:?}");
        assert!(max_in_window(&at, ms(8000)) <= 3, "{at:?}");
        // The first retries follow the limits exactly: 0, 1 s, 4 s, 8 s.
        assert_eq!(&at[..4], &[ms(0), ms(1000), ms(4000), ms(8000)]);
    }

    #[test]
    fn successes_hold_the_sanity_limit() {
        let t0 = Instant::now();
        let mut l = AttemptLimiter::new();
        let mut now = t0;
        let mut at = Vec::new();
        for _ in 0..40 {
            now += l.delay(now, 0);
            l.attempt(now);
            l.success();
            at.push(now - t0);
        }
        assert_eq!(max_in_window(&at, ms(5000)), 10, "{at:?}");
        // Ten immediately, the eleventh exactly 5 s after the first.
        assert_eq!(at[9], ms(0));
        assert_eq!(at[10], ms(5000));
    }

    #[test]
    fn success_resets_the_failure_limits() {
        let t0 = Instant::now();
        let mut l = AttemptLimiter::new();
        l.attempt(t0);
        l.failure(t0);
        assert_eq!(l.delay(t0, 0), ms(1000));
        l.attempt(t0 + ms(1000));
        l.success();
        assert_eq!(l.delay(t0 + ms(1000), 0), Duration::ZERO);
        assert_eq!(l.consecutive_failures(), 0);
    }

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half_and_caps() {
        let mut b = Backoff::default();
        assert_eq!(b.delay(u32::MAX), Duration::ZERO);
        b.failure();
        assert_eq!(b.delay(0), ms(50));
        assert_eq!(b.delay(u32::MAX), ms(100));
        b.failure();
        assert_eq!(b.delay(u32::MAX), ms(200));
        for _ in 0..40 {
            b.failure();
        }
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
        assert_eq!(b.delay(0), Duration::from_secs(15));
    }

    #[test]
    fn long_failure_runs_are_paced_by_the_backoff() {
        // With the backoff at its cap, attempts are ≥ 15 s apart whatever the jitter.
        let at = greedy_failing(Duration::from_secs(600), 0);
        let gaps: Vec<_> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter()
                .rev()
                .take(5)
                .all(|&g| g >= Duration::from_secs(15)),
            "{gaps:?}"
        );
    }
}
