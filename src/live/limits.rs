//! Rate limits of the live classroom: pairing-code guesses (per account, per address and
//! across the whole node) and board claims (per address).
//!
//! With a 10^6-code space, codes living 10 minutes and the global budget below (1 guess a
//! second after a burst of 100), an attacker with any number of accounts gets about 700
//! guesses per code lifetime: under 0.07% of the space per waiting board.

use std::net::IpAddr;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, RateLimiter};
use uuid::Uuid;

use crate::auth::limits::Budget;
pub use crate::auth::limits::Limited;

pub struct LiveLimits {
    pair_account: DefaultKeyedRateLimiter<Uuid>,
    pair_address: DefaultKeyedRateLimiter<IpAddr>,
    pair_global: DefaultDirectRateLimiter,
    claim_address: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(burst: u32, every: Duration) -> governor::Quota {
    crate::auth::limits::quota(Budget { burst, every })
}

impl LiveLimits {
    pub fn new() -> Self {
        Self {
            pair_account: RateLimiter::keyed(quota(10, Duration::from_secs(10))),
            pair_address: RateLimiter::keyed(quota(20, Duration::from_secs(5))),
            pair_global: RateLimiter::direct(quota(100, Duration::from_secs(1))),
            claim_address: RateLimiter::keyed(quota(60, Duration::from_secs(10))),
        }
    }

    /// One pairing attempt by this teacher from this address.
    pub fn pairing(&self, account: Uuid, address: IpAddr) -> Result<(), Limited> {
        self.pair_account
            .check_key(&account)
            .map_err(Limited::from)?;
        self.pair_address
            .check_key(&address)
            .map_err(Limited::from)?;
        self.pair_global.check().map_err(Limited::from)
    }

    pub fn claim(&self, address: IpAddr) -> Result<(), Limited> {
        self.claim_address
            .check_key(&address)
            .map_err(Limited::from)
    }

    pub fn prune(&self) {
        self.pair_account.retain_recent();
        self.pair_address.retain_recent();
        self.claim_address.retain_recent();
    }
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self::new()
    }
}

/// A connection's own message budget: 20 a second, bursts of 40.
pub fn per_connection() -> DefaultDirectRateLimiter {
    RateLimiter::direct(quota(40, Duration::from_millis(50)))
}
