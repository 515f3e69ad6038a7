//! Rate limits of the live classroom: pairing-code guesses (per account, per address and
//! across the whole node), board claims and code draws, and the message budgets of teachers
//! and boards, which every connection and both transports of one actor share.
//!
//! Only wrong pairing codes spend the guess budgets: a teacher typing the right code is never
//! refused because others guessed wrong. With a 10^6-code space, codes living 10 minutes and
//! the global budget below (1 wrong guess a second after a burst of 100), attackers get
//! about 700 guesses per code lifetime, plus one for each of their accounts and addresses
//! that has not guessed wrong for 10 minutes.
//!
//! In a cluster the global budget holds for all nodes together: each node takes its share
//! ([`LiveLimits::share_guesses`], from the nodes alive by their heartbeats). The other
//! budgets are per node: with N nodes an account or address may spread N times as many
//! guesses, messages or claims, none of which widens what the global budget protects.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, RateLimiter};
use uuid::Uuid;

pub use crate::budget::Limited;
use crate::budget::{quota, Budget, Refundable};

pub struct LiveLimits {
    pair_account: Refundable<Uuid>,
    pair_address: Refundable<IpAddr>,
    pair_global: Refundable<()>,
    /// When each account and address last guessed wrong.
    wrong: Mutex<HashMap<Guesser, Instant>>,
    claim_address: DefaultKeyedRateLimiter<IpAddr>,
    code_board: DefaultKeyedRateLimiter<Uuid>,
    code_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Messages, by teacher account or board: whatever connections and transports they use.
    messages: DefaultKeyedRateLimiter<Uuid>,
    /// Commands, by teacher account, over the longer term: each one stores a board state.
    commands: DefaultKeyedRateLimiter<Uuid>,
}

/// Wrong pairing codes per teacher: 10 at once, then one every 10 s.
pub const GUESSES_PER_ACCOUNT: Budget = Budget {
    burst: 10,
    every: Duration::from_secs(10),
};

/// Wrong pairing codes per address: 20 at once, then one every 5 s.
pub const GUESSES_PER_ADDRESS: Budget = Budget {
    burst: 20,
    every: Duration::from_secs(5),
};

/// Wrong pairing codes over the whole deployment (a node alone, or all nodes of a cluster
/// together): 100 at once, then one a second.
pub const GUESSES_GLOBAL: Budget = Budget {
    burst: 100,
    every: Duration::from_secs(1),
};

/// An account and address that have not guessed wrong for this long may pair even while
/// the node-wide guess budget is spent.
pub const IN_GOOD_STANDING: Duration = Duration::from_secs(600);

/// Who guessed a pairing code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Guesser {
    Account(Uuid),
    Address(IpAddr),
}

/// A pairing attempt whose code is being checked.
pub struct Guess {
    account: Uuid,
    address: IpAddr,
    /// Whether it was taken from the node-wide budget.
    global: bool,
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

/// Board identities one address may claim: 60 at once, then one every 10 s.
pub const CLAIMS_PER_ADDRESS: Budget = Budget {
    burst: 60,
    every: Duration::from_secs(10),
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

impl LiveLimits {
    pub fn new() -> Self {
        Self {
            pair_account: Refundable::new(GUESSES_PER_ACCOUNT),
            pair_address: Refundable::new(GUESSES_PER_ADDRESS),
            pair_global: Refundable::new(GUESSES_GLOBAL),
            wrong: Mutex::new(HashMap::new()),
            claim_address: RateLimiter::keyed(quota(CLAIMS_PER_ADDRESS)),
            code_board: RateLimiter::keyed(quota(CODES_PER_BOARD)),
            code_address: RateLimiter::keyed(quota(CODES_PER_ADDRESS)),
            messages: RateLimiter::keyed(quota(MESSAGES)),
            commands: RateLimiter::keyed(quota(COMMANDS)),
        }
    }

    /// This node is one of `nodes` alive: it takes that share of the global guess budget.
    pub fn share_guesses(&self, nodes: u32) {
        self.pair_global.share(nodes);
    }

    /// One message of this teacher (account id) or board (board id).
    pub fn message(&self, sender: Uuid) -> Result<(), Limited> {
        self.messages
            .check_key(&sender)
            .map_err(|l| Limited::from(l).counted("live_message"))
    }

    /// One command of this teacher.
    pub fn command(&self, account: Uuid) -> Result<(), Limited> {
        self.commands
            .check_key(&account)
            .map_err(|l| Limited::from(l).counted("live_command"))
    }

    /// A fresh code asked for by this board from this address.
    pub fn code(&self, board: Uuid, address: IpAddr) -> Result<(), Limited> {
        self.code_board
            .check_key(&board)
            .map_err(|l| Limited::from(l).counted("code_board"))?;
        self.code_address
            .check_key(&address)
            .map_err(|l| Limited::from(l).counted("code_address"))
    }

    /// A pairing attempt by this teacher from this address, taken from the guess budgets
    /// until its code is checked: report the outcome with [`LiveLimits::give_back`] or
    /// [`LiveLimits::guessed_wrong`]. When the node-wide budget is spent, an account and
    /// address that have not guessed wrong for [`IN_GOOD_STANDING`] may still try.
    pub fn guess(&self, account: Uuid, address: IpAddr) -> Result<Guess, Limited> {
        self.pair_account
            .take(&account)
            .map_err(|l| l.counted("pairing_account"))?;
        if let Err(l) = self.pair_address.take(&address) {
            self.pair_account.refund(&account);
            return Err(l.counted("pairing_address"));
        }
        let global = match self.pair_global.take(&()) {
            Ok(()) => true,
            Err(_) if self.in_good_standing(account, address) => false,
            Err(l) => {
                self.pair_account.refund(&account);
                self.pair_address.refund(&address);
                return Err(l.counted("pairing_node"));
            }
        };
        Ok(Guess {
            account,
            address,
            global,
        })
    }

    /// The code was right, or could not be checked: the guess does not count.
    pub fn give_back(&self, guess: Guess) {
        self.pair_account.refund(&guess.account);
        self.pair_address.refund(&guess.address);
        if guess.global {
            self.pair_global.refund(&());
        }
    }

    /// The code was wrong: the guess stays spent, and its account and address lose their
    /// standing for a while.
    pub fn guessed_wrong(&self, guess: Guess) {
        let now = Instant::now();
        let mut wrong = self.wrong.lock();
        wrong.insert(Guesser::Account(guess.account), now);
        wrong.insert(Guesser::Address(guess.address), now);
    }

    fn in_good_standing(&self, account: Uuid, address: IpAddr) -> bool {
        let wrong = self.wrong.lock();
        [Guesser::Account(account), Guesser::Address(address)]
            .iter()
            .all(|g| {
                wrong
                    .get(g)
                    .is_none_or(|at| at.elapsed() >= IN_GOOD_STANDING)
            })
    }

    pub fn claim(&self, address: IpAddr) -> Result<(), Limited> {
        self.claim_address
            .check_key(&address)
            .map_err(|l| Limited::from(l).counted("board_claim_address"))
    }

    pub fn prune(&self) {
        self.pair_account.prune();
        self.pair_address.prune();
        self.pair_global.prune();
        self.wrong
            .lock()
            .retain(|_, at| at.elapsed() < IN_GOOD_STANDING);
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
