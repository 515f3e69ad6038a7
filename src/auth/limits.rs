//! Rate limits on login attempts (per account and address pair, per address, per account).
//!
//! In-memory and per node: in a cluster an attacker spreading guesses over N nodes gets N
//! times the budget, which is still far too little to matter against argon2id hashes.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, RateLimiter};

pub use crate::budget::Limited;
use crate::budget::{quota, Budget, Refundable};

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

/// Mail that requests cause: requests per address (a reset is asked for without an account,
/// so only the address can be counted), and mails per account, so that nobody can flood a
/// colleague's mailbox through the reset form. Per node, like the login limits.
pub struct MailLimits {
    requests: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<uuid::Uuid>,
}

impl MailLimits {
    /// Reset requests per address: a few typos fit, a script does not.
    pub const REQUESTS: Budget = Budget {
        burst: 5,
        every: Duration::from_secs(60),
    };
    /// Mails per account: three at once, then one every twenty minutes.
    pub const PER_ACCOUNT: Budget = Budget {
        burst: 3,
        every: Duration::from_secs(20 * 60),
    };

    pub fn new() -> Self {
        Self {
            requests: RateLimiter::keyed(quota(Self::REQUESTS)),
            per_account: RateLimiter::keyed(quota(Self::PER_ACCOUNT)),
        }
    }

    /// One reset request from this address.
    pub fn reset_request(&self, address: IpAddr) -> Result<(), Limited> {
        self.requests.check_key(&address).map_err(Limited::from)
    }

    /// One mail to this account.
    pub fn account_mail(&self, account: uuid::Uuid) -> Result<(), Limited> {
        self.per_account.check_key(&account).map_err(Limited::from)
    }

    /// Forgets keys whose budget is full again.
    pub fn prune(&self) {
        self.requests.retain_recent();
        self.per_account.retain_recent();
    }
}

impl Default for MailLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self::new()
    }
}
