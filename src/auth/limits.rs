//! Rate limits on login attempts (per account and address pair, per address, per account),
//! and the budget types the other limits share.
//!
//! In-memory and per node: in a cluster an attacker spreading guesses over N nodes gets N
//! times the budget, which is still far too little to matter against argon2id hashes.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

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

/// Login attempts. Only failed attempts count (a right password gives its attempt back), so
/// the owner is never locked out by their own successes, a school behind one address is not
/// locked out by its teachers signing in at 8:30, and an attacker cannot lock an owner out
/// of an address the owner has signed in from before.
pub struct LoginLimits {
    /// Per (account, address): the owner's own typing mistakes, and one attacker's guesses.
    per_pair: Refundable<(String, IpAddr)>,
    /// Per address, over every account: one address guessing across many accounts.
    per_address: Refundable<IpAddr>,
    /// Per account, over every address: guesses spread over many addresses. An address the
    /// account signed in from within [`KNOWN_FOR`] is exempt, so this cannot lock the owner
    /// out of their usual devices.
    per_account: Refundable<String>,
    known: Mutex<HashMap<(String, IpAddr), Instant>>,
    /// Registrations per address, every attempt counted.
    registrations: DefaultKeyedRateLimiter<IpAddr>,
}

/// An address an account signed in from is known for this long.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 86_400);

/// A login attempt in flight: report its outcome with [`LoginLimits::succeeded`].
pub struct Attempt {
    account: String,
    address: IpAddr,
    counted_for_account: bool,
}

/// An attempt over budget: try again after `retry_after`.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub retry_after: Duration,
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

impl LoginLimits {
    pub const PAIR: Budget = Budget {
        burst: 10,
        every: Duration::from_secs(6),
    };
    pub const ADDRESS: Budget = Budget {
        burst: 30,
        every: Duration::from_secs(2),
    };
    pub const ACCOUNT: Budget = Budget {
        burst: 30,
        every: Duration::from_secs(20),
    };

    /// Registrations per address: a staff room signing up together fits, a script does not.
    pub const REGISTRATIONS: Budget = Budget {
        burst: 10,
        every: Duration::from_secs(60),
    };

    /// One registration attempt from this address.
    pub fn registration(&self, address: IpAddr) -> Result<(), Limited> {
        self.registrations
            .check_key(&address)
            .map_err(Limited::from)
    }

    pub fn new() -> Self {
        Self {
            per_pair: Refundable::new(Self::PAIR),
            per_address: Refundable::new(Self::ADDRESS),
            per_account: Refundable::new(Self::ACCOUNT),
            known: Mutex::new(HashMap::new()),
            registrations: RateLimiter::keyed(quota(Self::REGISTRATIONS)),
        }
    }

    /// Spends one attempt for this account from this address, or says how long to wait.
    /// Give it back with [`LoginLimits::succeeded`] when the password was right.
    pub fn attempt(&self, account: &str, address: IpAddr) -> Result<Attempt, Limited> {
        let pair = (account.to_owned(), address);
        self.per_pair.take(&pair)?;
        if let Err(l) = self.per_address.take(&address) {
            self.per_pair.refund(&pair);
            return Err(l);
        }
        let known = self
            .known
            .lock()
            .get(&pair)
            .is_some_and(|at| at.elapsed() < KNOWN_FOR);
        if !known {
            if let Err(l) = self.per_account.take(&pair.0) {
                self.per_pair.refund(&pair);
                self.per_address.refund(&address);
                return Err(l);
            }
        }
        Ok(Attempt {
            account: pair.0,
            address,
            counted_for_account: !known,
        })
    }

    /// The password was right: the attempt is given back and the address becomes known.
    pub fn succeeded(&self, attempt: Attempt) {
        let pair = self.give_back(attempt);
        self.known.lock().insert(pair, Instant::now());
    }

    /// The password could not be checked (the server was busy): the attempt does not count.
    pub fn abandoned(&self, attempt: Attempt) {
        self.give_back(attempt);
    }

    fn give_back(&self, attempt: Attempt) -> (String, IpAddr) {
        let pair = (attempt.account, attempt.address);
        self.per_pair.refund(&pair);
        self.per_address.refund(&attempt.address);
        if attempt.counted_for_account {
            self.per_account.refund(&pair.0);
        }
        pair
    }

    /// Forgets keys whose budget is full again and addresses known too long ago, so memory
    /// does not grow with every address ever seen.
    pub fn prune(&self) {
        self.registrations.retain_recent();
        self.per_pair.prune();
        self.per_address.prune();
        self.per_account.prune();
        self.known.lock().retain(|_, at| at.elapsed() < KNOWN_FOR);
    }
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self::new()
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
        (0..1000).take_while(|_| budget.take(&()).is_ok()).count() as u32
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
