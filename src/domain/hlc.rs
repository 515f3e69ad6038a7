//! Hybrid logical clock: the `version` stamped on every replicated row.
//!
//! A version is physical milliseconds since the Unix epoch shifted left by 10 bits, plus a
//! 10-bit counter. That keeps versions below 2^53 until the year 2248, so a browser's
//! JavaScript numbers hold them exactly. (Past 1,024 versions in one millisecond the counter
//! carries into the millisecond: still monotonic, just a hair ahead of the wall clock.)
//! It never goes backwards on one node, and [`Hlc::observe`] bumps it past any version seen
//! elsewhere, so a node's next write always sorts after what it has read. That is
//! what lets "the row with the highest `(version, id)` is current" work on every replica.
//!
//! This module owns only the arithmetic; it knows nothing of storage.

use parking_lot::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const COUNTER_BITS: u32 = 10;

/// A point in hybrid logical time. Ordered like the wall clock it approximates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub i64);

impl Version {
    /// The wall-clock millisecond this version was taken at (good enough for "updated at").
    pub fn millis(self) -> i64 {
        self.0 >> COUNTER_BITS
    }

    /// The first version of a wall-clock millisecond: every version issued at or after it is
    /// greater.
    pub fn at_millis(ms: i64) -> Self {
        Version(ms << COUNTER_BITS)
    }
}

/// A node's clock. Cheap to share behind an `Arc`; `next` takes a short lock.
#[derive(Debug, Default)]
pub struct Hlc {
    last: Mutex<i64>,
}

impl Hlc {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh version, greater than every version this clock has issued or observed.
    pub fn next(&self) -> Version {
        let wall = wall_millis() << COUNTER_BITS;
        let mut last = self.last.lock();
        *last = if wall > *last { wall } else { *last + 1 };
        Version(*last)
    }

    /// Remembers a version read from the store (perhaps written by another node), so the next
    /// version issued here sorts after it even if that node's clock runs ahead of ours.
    pub fn observe(&self, seen: Version) {
        let mut last = self.last.lock();
        if seen.0 > *last {
            *last = seen.0;
        }
    }

    /// `observe(seen)` followed by `next()`, as one step.
    pub fn next_after(&self, seen: Version) -> Version {
        self.observe(seen);
        self.next()
    }
}

/// Milliseconds since the Unix epoch on this machine's clock: the one place the program
/// reads the wall clock, so the clock and the versions never disagree.
pub fn wall_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis_of)
        .unwrap_or(0)
}

/// A duration in whole milliseconds, as times are counted here (saturating: no duration
/// classcast handles comes near the 292 million years an `i64` of milliseconds holds).
pub fn millis_of(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_within_one_millisecond() {
        let hlc = Hlc::new();
        let a = hlc.next();
        let b = hlc.next();
        let c = hlc.next();
        assert!(a < b && b < c);
    }

    #[test]
    fn a_version_from_a_clock_far_ahead_is_overtaken() {
        let hlc = Hlc::new();
        let ahead = Version(hlc.next().0 + (60_000 << COUNTER_BITS));
        let next = hlc.next_after(ahead);
        assert!(next > ahead);
        assert_eq!(next.0, ahead.0 + 1);
    }

    #[test]
    fn versions_stay_exact_in_javascript_numbers() {
        const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;
        let v = Hlc::new().next();
        // Versions today are about a fifth of the limit; they stay exact until the 2240s.
        assert!(
            v.0 < MAX_SAFE_INTEGER / 4 * 3,
            "{v:?} leaves too little headroom"
        );
    }

    #[test]
    fn millis_are_close_to_the_wall_clock() {
        let v = Hlc::new().next();
        assert!((v.millis() - wall_millis()).abs() < 5_000);
    }
}
