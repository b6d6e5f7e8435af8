//! Time as an input. The core never reads a clock: drivers build these values and pass them in.

/// A monotonic instant in microseconds from an origin the driver picks. Used for timers only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// An instant `micros` microseconds after the driver's origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }
    /// An instant `millis` milliseconds after the driver's origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000))
    }
    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// This instant plus `micros` microseconds, saturating.
    pub const fn saturating_add_micros(self, micros: u64) -> Self {
        Self(self.0.saturating_add(micros))
    }
    /// Microseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn saturating_micros_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Wall-clock time: nanoseconds since 1970-01-01 00:00:00 UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(u64);

impl UnixTime {
    /// From nanoseconds since the Unix epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }
    /// From whole seconds since the Unix epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000_000))
    }
    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
    /// Nanoseconds within the current second.
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }
}

/// The current time as the driver saw it: a monotonic instant for timers and the wall clock for
/// msg_id generation and server time offsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Now {
    /// Monotonic clock, for timers.
    pub mono: Instant,
    /// Wall clock, for msg_id and time synchronisation.
    pub unix: UnixTime,
}

#[cfg(feature = "std")]
impl UnixTime {
    /// The system wall clock (std only). Before 1970 reads as the epoch.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_splits_into_seconds_and_nanos() {
        let t = UnixTime::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(t.as_secs(), 1_700_000_000);
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert_eq!(UnixTime::from_secs(u64::MAX).as_nanos(), u64::MAX);
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let a = Instant::from_millis(5);
        assert_eq!(a.as_micros(), 5_000);
        assert_eq!(a.saturating_add_micros(u64::MAX).as_micros(), u64::MAX);
        assert_eq!(Instant::from_micros(1).saturating_micros_since(a), 0);
        assert_eq!(a.saturating_micros_since(Instant::from_micros(1)), 4_999);
    }
}
