//! The driver's clock: the only place `mtproto-std-io` reads time. The core receives it as
//! [`Now`] values.

use std::time::{Duration, Instant as StdInstant};

use mtproto_core::time::{Instant, Now, UnixTime};

/// A monotonic origin: core instants are microseconds since it.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: StdInstant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: StdInstant::now(),
        }
    }

    /// The current time for the core.
    pub fn now(&self) -> Now {
        self.at(StdInstant::now())
    }

    /// `t` as a core time (the wall clock is read now).
    pub fn at(&self, t: StdInstant) -> Now {
        let micros = t.saturating_duration_since(self.origin).as_micros();
        Now {
            mono: Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX)),
            unix: UnixTime::now(),
        }
    }

    /// A core instant back on the std clock.
    pub fn to_std(&self, t: Instant) -> StdInstant {
        self.origin + Duration::from_micros(t.as_micros())
    }

    /// Time from now until the core instant `t` (zero if it passed).
    pub fn until(&self, t: Instant) -> Duration {
        self.to_std(t).saturating_duration_since(StdInstant::now())
    }
}
