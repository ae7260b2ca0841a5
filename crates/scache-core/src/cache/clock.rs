//! Time as the cache sees it: milliseconds of a monotonic clock.
//!
//! The cache never reads a clock itself; callers pass `now` in. This module supplies the two
//! clocks callers use: [`MonotonicClock`] for the server and [`ManualClock`] for tests. Both
//! trust only that they are asked for the time by code that treats it as non-decreasing;
//! `MonotonicClock` gets that from [`Instant`], `ManualClock` from whoever drives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Milliseconds: an instant on a monotonic clock, or a duration (a ttl) on the same scale.
pub type Millis = u64;

/// A source of monotonic time.
pub trait Clock {
    fn now(&self) -> Millis;
}

/// The real clock: milliseconds since this value was created.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Millis {
        // u64 milliseconds last 584 million years; saturate rather than wrap anyway.
        Millis::try_from(self.start.elapsed().as_millis()).unwrap_or(Millis::MAX)
    }
}

/// A clock that moves only when told to. Clones share one time, so a test can keep a clone
/// and advance the clock that a server it handed the other clone to is reading.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        Self { now: Arc::new(AtomicU64::new(start)) }
    }

    pub fn set(&self, now: Millis) {
        self.now.store(now, Ordering::Relaxed);
    }

    pub fn advance(&self, by: Millis) {
        self.now.fetch_add(by, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new(5);
        let other = clock.clone();
        clock.advance(10);
        assert_eq!(other.now(), 15);
        other.set(100);
        assert_eq!(clock.now(), 100);
    }

    #[test]
    fn monotonic_clock_starts_near_zero_and_does_not_go_back() {
        let clock = MonotonicClock::new();
        let first = clock.now();
        assert!(first < 1_000);
        assert!(clock.now() >= first);
    }
}
