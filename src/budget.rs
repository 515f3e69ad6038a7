//! Budgets: how many attempts a key may make at once and how fast they come back, as every
//! rate limit of classcast counts them (logins, registrations, pairing, live messages, lesson
//! saves, media). Plain types over governor's GCRA, and a GCRA of our own for the budgets
//! whose attempts can be given back, which governor cannot do. Knows no service.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::Quota;
use parking_lot::Mutex;

/// Attempts allowed at once and how fast they come back, per key.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub burst: u32,
    pub every: Duration,
}

/// A keyed budget (GCRA, like governor's) whose attempts can be given back: for attempts
/// that should only count when they fail, such as a right password or a right pairing code.
/// An attempt is taken before the slow check, so a burst of parallel attempts cannot all
/// slip through, and refunded when it turns out right.
pub struct Refundable<K> {
    budget: Budget,
    /// The budget is shared among this many nodes: each gets this share of it (see
    /// [`Refundable::share`]).
    nodes: AtomicU32,
    /// Per key, the theoretical arrival time of the next attempt.
    next: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Refundable<K> {
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            nodes: AtomicU32::new(1),
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Makes this node's budget its share of one the `nodes` nodes of a cluster spend
    /// together: 1/`nodes` of the burst (at least 1), coming back `nodes` times slower.
    pub fn share(&self, nodes: u32) {
        self.nodes.store(nodes.max(1), Ordering::Relaxed);
    }

    /// This node's share: (burst, interval).
    fn budget(&self) -> (u32, Duration) {
        let nodes = self.nodes.load(Ordering::Relaxed);
        (
            (self.budget.burst / nodes).max(1),
            self.budget.every * nodes,
        )
    }

    /// Spends one attempt for `key`, or says how long to wait.
    pub fn take(&self, key: &K) -> Result<(), Limited> {
        let now = Instant::now();
        let (burst, every) = self.budget();
        let tolerance = every * (burst - 1);
        let mut next = self.next.lock();
        let at = next.get(key).copied().unwrap_or(now).max(now);
        if at > now + tolerance {
            return Err(Limited {
                retry_after: (at - now - tolerance).max(Duration::from_secs(1)),
            });
        }
        next.insert(key.clone(), at + every);
        Ok(())
    }

    /// Gives back an attempt taken for `key`.
    pub fn refund(&self, key: &K) {
        let (_, every) = self.budget();
        let mut next = self.next.lock();
        if let Some(at) = next.get_mut(key) {
            *at = at.checked_sub(every).unwrap_or(*at);
        }
    }

    /// Forgets keys whose budget is full again.
    pub fn prune(&self) {
        let now = Instant::now();
        let mut next = self.next.lock();
        next.retain(|_, at| *at > now);
    }
}

/// An attempt over budget: try again after `retry_after`.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Counts this refusal under its limit's name in the metrics
    /// (`classcast_rate_limited_total`); refusals are rare, so the lookup is no cost.
    pub fn counted(self, limit: &'static str) -> Self {
        metrics::counter!("classcast_rate_limited_total", "limit" => limit).increment(1);
        self
    }
}

impl From<governor::NotUntil<<DefaultClock as Clock>::Instant>> for Limited {
    fn from(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Self {
        Limited {
            retry_after: not_until
                .wait_time_from(DefaultClock::default().now())
                .max(Duration::from_secs(1)),
        }
    }
}

/// A governor quota for a budget.
pub(crate) fn quota(budget: Budget) -> Quota {
    Quota::with_period(budget.every)
        .expect("budget periods are non-zero")
        .allow_burst(NonZeroU32::new(budget.burst).expect("bursts are non-zero"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts_at_once(budget: &Refundable<()>) -> u32 {
        (0..1000_u32)
            .take_while(|_| budget.take(&()).is_ok())
            .map(|_| 1)
            .sum()
    }

    #[test]
    fn a_budget_shared_by_four_nodes_gives_each_a_quarter() {
        let budget = Budget {
            burst: 100,
            every: Duration::from_secs(1),
        };
        let alone = Refundable::new(budget);
        assert_eq!(attempts_at_once(&alone), 100);
        let shared = Refundable::new(budget);
        shared.share(4);
        assert_eq!(attempts_at_once(&shared), 25);
        let refused = shared.take(&()).unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(3), "{refused:?}");
        // A refund gives back one attempt of the share.
        shared.refund(&());
        assert!(shared.take(&()).is_ok());
    }
}
