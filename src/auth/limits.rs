//! Rate limits on login attempts, per account and per client address.
//!
//! In-memory and per node: in a cluster an attacker spreading guesses over N nodes gets N
//! times the budget, which is still far too little to matter against argon2id hashes.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Attempts allowed at once and how fast they come back, per key.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub burst: u32,
    pub every: Duration,
}

pub struct LoginLimits {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
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
    pub const ACCOUNT: Budget = Budget {
        burst: 10,
        every: Duration::from_secs(6),
    };
    pub const ADDRESS: Budget = Budget {
        burst: 30,
        every: Duration::from_secs(2),
    };

    pub fn new() -> Self {
        Self {
            per_account: RateLimiter::keyed(quota(Self::ACCOUNT)),
            per_address: RateLimiter::keyed(quota(Self::ADDRESS)),
        }
    }

    /// Spends one attempt for this account and this address, or says how long to wait.
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), Limited> {
        self.per_address
            .check_key(&address)
            .and_then(|()| self.per_account.check_key(&account.to_owned()))
            .map_err(Limited::from)
    }

    /// Forgets keys whose budget is full again, so memory does not grow with every address
    /// ever seen.
    pub fn prune(&self) {
        self.per_account.retain_recent();
        self.per_address.retain_recent();
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
