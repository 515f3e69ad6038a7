//! What a node does for its live classroom on its timers and on others' word: ending the
//! connections of sessions that ended elsewhere, forgetting rights nobody holds, and purging
//! the rows of the live classroom that are superseded or expired. Part of [`Live`]; it knows
//! nothing of HTTP.

use super::*;
use crate::domain::node::NodeIds;

/// How long superseded board states are kept: far longer than any client keeps a command
/// to resend, so a resend is always recognised.
pub const STATE_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How long expired pairing codes are kept (they answer like unknown ones meanwhile).
pub const CODE_RETENTION: Duration = Duration::from_secs(3600);

/// How long a board that was never paired keeps its identity after it was last shown (its
/// last code purged): it then claims a new one, which costs it nothing.
pub const UNPAIRED_BOARD_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Open sessions are checked against the store at least this often, for expiry.
pub const SESSION_RECHECK: Duration = Duration::from_secs(30);

pub(super) struct SessionCheck {
    /// The store's session change mark at the last check.
    pub(super) mark: Option<i64>,
    pub(super) at: Instant,
}

impl Live {
    pub fn prune_limits(&self) {
        self.limits.prune();
        self.sessions.prune();
        self.pairings.prune();
        self.boards.prune();
    }

    /// Ends a session's live connections now (it was signed out on this node).
    pub fn end_session(&self, session: Uuid) {
        self.sessions.revoke(&session);
    }

    /// Ends the live connections of sessions that ended elsewhere: by `classcast user` in
    /// another process, on another node, or by expiry. Cheap to call often: the sessions
    /// are checked only when the store says something that can end one has changed, and
    /// at least every [`SESSION_RECHECK`] for expiry.
    pub async fn recheck_sessions(&self) -> Result<(), LiveError> {
        // Read even with no connection open: the store's kept sessions follow it too.
        let mark = self.store.session_change_mark().await?;
        let held = self.sessions.held();
        if held.is_empty() {
            return Ok(());
        }
        let due = {
            let check = self.session_check.lock();
            check.mark != Some(mark) || check.at.elapsed() >= SESSION_RECHECK
        };
        if !due {
            return Ok(());
        }
        let live = self.store.live_sessions(&held, now_ms()).await?;
        for ended in held.iter().filter(|s| !live.contains(s)) {
            tracing::info!(session = %ended, "session ended; closing its live connections");
            self.sessions.revoke(ended);
        }
        *self.session_check.lock() = SessionCheck {
            mark: Some(mark),
            at: Instant::now(),
        };
        Ok(())
    }

    /// Deletes the board states `nodes` wrote (this node's upkeep) that were superseded
    /// more than [`STATE_RETENTION`] ago (docs/architecture.md section 3, rule 3: the only
    /// deletes are of superseded rows).
    pub async fn purge_states(&self, nodes: &NodeIds) -> Result<u64, LiveError> {
        let retention = millis_of(STATE_RETENTION);
        let cutoff = Version::at_millis(now_ms() - retention);
        Ok(self.store.purge_board_states(nodes, cutoff).await?)
    }

    /// Deletes the pairing codes `nodes` issued that expired more than [`CODE_RETENTION`]
    /// ago: a board draws a code every few minutes for as long as it waits, every day.
    pub async fn purge_codes(&self, nodes: &NodeIds) -> Result<u64, LiveError> {
        let cutoff = now_ms() - millis_of(CODE_RETENTION);
        Ok(self.store.purge_codes(nodes, cutoff).await?)
    }

    /// Deletes the boards `nodes` claimed more than [`UNPAIRED_BOARD_RETENTION`] ago that were
    /// never paired and show no code: anonymous claims do not pile up for ever.
    pub async fn purge_unpaired_boards(&self, nodes: &NodeIds) -> Result<u64, LiveError> {
        let cutoff = Version::at_millis(now_ms() - millis_of(UNPAIRED_BOARD_RETENTION));
        Ok(self.store.purge_unpaired_boards(nodes, cutoff).await?)
    }
}
