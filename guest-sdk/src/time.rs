//! Time: sleep without blocking the host, read the wall clock and a monotonic clock.
//!
//! [`sleep`] suspends only the calling guest: the host runs other guests on the same thread
//! until the time is up, then resumes this one where it stopped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Suspends the calling guest for at least `duration`.
///
/// ```no_run
/// mixio::time::sleep(std::time::Duration::from_millis(200));
/// ```
pub fn sleep(duration: Duration) {
    crate::sys::sleep(saturating_nanos(duration));
}

/// The current wall-clock time.
pub fn now() -> SystemTime {
    let t = crate::sys::now();
    UNIX_EPOCH + Duration::new(t.seconds, t.nanoseconds)
}

/// A reading of the host's monotonic clock; subtract two to measure elapsed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The current reading.
    pub fn now() -> Instant {
        Instant(crate::sys::monotonic_now())
    }

    /// Time elapsed since this reading.
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_saturate_instead_of_wrapping() {
        assert_eq!(saturating_nanos(Duration::from_millis(3)), 3_000_000);
        assert_eq!(saturating_nanos(Duration::MAX), u64::MAX);
    }

    #[test]
    fn instants_subtract_without_underflow() {
        assert_eq!(Instant(5).duration_since(Instant(9)), Duration::ZERO);
        assert_eq!(Instant(9).duration_since(Instant(5)), Duration::from_nanos(4));
    }
}
