//! Rate limits of the live classroom: pairing-code guesses (per account, per address and
//! across the whole node), board claims and code draws, and the message budgets of teachers
//! and boards, which every connection and both transports of one actor share.
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
    code_board: DefaultKeyedRateLimiter<Uuid>,
    code_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Messages, by teacher account or board: whatever connections and transports they use.
    messages: DefaultKeyedRateLimiter<Uuid>,
    /// Commands, by teacher account, over the longer term: each one stores a board state.
    commands: DefaultKeyedRateLimiter<Uuid>,
}

/// Messages of one teacher or board: 20 a second, bursts of 40.
pub const MESSAGES: Budget = Budget {
    burst: 40,
    every: Duration::from_millis(50),
};

/// Commands of one teacher over the long run: 3,600 at once, then one a second. Pressing
/// through a lesson never gets near it; a script that keeps pressing stores at most 3,600
/// board states an hour.
pub const COMMANDS: Budget = Budget {
    burst: 3_600,
    every: Duration::from_secs(1),
};

/// Fresh pairing codes a board may ask for: 5 at once, then one every 30 s.
pub const CODES_PER_BOARD: Budget = Budget {
    burst: 5,
    every: Duration::from_secs(30),
};

/// Fresh pairing codes asked for from one address (a school behind one router has many
/// boards): 30 at once, then one every 5 s.
pub const CODES_PER_ADDRESS: Budget = Budget {
    burst: 30,
    every: Duration::from_secs(5),
};

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
            code_board: RateLimiter::keyed(crate::auth::limits::quota(CODES_PER_BOARD)),
            code_address: RateLimiter::keyed(crate::auth::limits::quota(CODES_PER_ADDRESS)),
            messages: RateLimiter::keyed(crate::auth::limits::quota(MESSAGES)),
            commands: RateLimiter::keyed(crate::auth::limits::quota(COMMANDS)),
        }
    }

    /// One message of this teacher (account id) or board (board id).
    pub fn message(&self, sender: Uuid) -> Result<(), Limited> {
        self.messages.check_key(&sender).map_err(Limited::from)
    }

    /// One command of this teacher.
    pub fn command(&self, account: Uuid) -> Result<(), Limited> {
        self.commands.check_key(&account).map_err(Limited::from)
    }

    /// A fresh code asked for by this board from this address.
    pub fn code(&self, board: Uuid, address: IpAddr) -> Result<(), Limited> {
        self.code_board.check_key(&board).map_err(Limited::from)?;
        self.code_address.check_key(&address).map_err(Limited::from)
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
        self.code_board.retain_recent();
        self.code_address.retain_recent();
        self.messages.retain_recent();
        self.commands.retain_recent();
    }
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self::new()
    }
}
