//! What each teacher may store of lessons: a write budget over time (bytes of new revisions
//! an hour) and a quota in total (bytes of the revisions kept of their lessons).
//!
//! Every save keeps the whole lesson as a new revision (docs/architecture.md section 3, rule
//! 1), so without these a script re-saving a large lesson fills the disk. Plain Rust over the [`Store`]; it knows
//! nothing of HTTP. Old revisions are purged by [`LessonQuota::purge`] (the newest
//! [`REVISIONS_KEPT`] of each lesson stay, and nothing of a deleted lesson but its tombstone).
//!
//! The quota is checked against a tally each node keeps per teacher in memory: the bytes
//! of their kept revisions as last read from the store (at most [`TALLY_REFRESH`] ago), plus
//! what this node admitted since. A save then costs the same with 1 kept revision as with
//! thousands; summing them all happens once per teacher per refresh, and before any refusal,
//! so a purge (by any node) frees room at once. The rows stay the only truth (no counter is
//! stored, docs/architecture.md section 3, rule 4); what a tally can miss for up to a
//! refresh is what other nodes wrote, which docs/security.md bounds.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, RateLimiter};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::budget::{quota, Budget, Limited};
use crate::domain::hlc::{millis_of, wall_millis, Version};
use crate::domain::lesson::LessonContent;
use crate::domain::node::NodeIds;
use crate::store::{Store, StoreError};

/// Revision bytes a teacher may write, counted in KiB: 50 MiB at once, then 20 MiB an hour.
pub const WRITES_KIB: Budget = Budget {
    burst: 50 * 1024,
    every: Duration::from_micros(3_600_000_000 / (20 * 1024)),
};

/// Revisions kept of each lesson: as many as its history lists.
pub const REVISIONS_KEPT: u32 = crate::store::REVISIONS_LISTED;

/// How long a node counts on its tally of a teacher's bytes before it reads their sum again:
/// the window in which saves through other nodes can go unseen (docs/security.md).
pub const TALLY_REFRESH: Duration = Duration::from_secs(30);

/// Teachers a node keeps a tally of at once (about 150 bytes each, so 1.5 MiB at most).
/// Past it, stale tallies go first; a teacher for whom there is still no room is checked
/// against a fresh sum.
const TALLIES_KEPT: usize = 10_000;

/// Revisions past the newest [`REVISIONS_KEPT`] are purged once they are this old.
pub const REVISION_RETENTION: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("too many lesson changes")]
    RateLimited { retry_after: Duration },
    #[error("lesson storage is full: {used} of {limit} bytes")]
    Full { used: u64, limit: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct LessonQuota {
    store: Arc<dyn Store>,
    writes: DefaultKeyedRateLimiter<Uuid>,
    /// Bytes of lesson revisions one teacher may keep.
    limit: u64,
    refresh: Duration,
    /// Per teacher, the tally and the turn to check it: one check at a time per teacher, so
    /// two saves at once cannot both fit into the same free bytes.
    tallies: Mutex<HashMap<Uuid, Turn>>,
}

type Turn = Arc<tokio::sync::Mutex<Option<Tally>>>;

/// What this node knows of one teacher's kept bytes.
#[derive(Debug, Clone, Copy)]
struct Tally {
    /// The sum of their kept revisions in this node's database, read at `read_at`.
    read: u64,
    read_at: Instant,
    /// Bytes of the revisions this node admitted since: counted until the next read, even
    /// when the save then failed (a refusal reads again, so this never refuses wrongly).
    admitted: u64,
}

impl Tally {
    fn used(&self) -> u64 {
        self.read.saturating_add(self.admitted)
    }

    fn fresh(&self, now: Instant, refresh: Duration) -> bool {
        now.saturating_duration_since(self.read_at) < refresh
    }
}

impl LessonQuota {
    /// A quota of `limit_bytes` a teacher, its tallies read again every `refresh`
    /// ([`TALLY_REFRESH`] in a server).
    pub fn new(store: Arc<dyn Store>, limit_bytes: u64, refresh: Duration) -> Self {
        Self {
            store,
            writes: RateLimiter::keyed(quota(WRITES_KIB)),
            limit: limit_bytes,
            refresh,
            tallies: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a new revision of `content` by `owner`, or says why not. Nothing is spent when
    /// the storage is full.
    pub async fn admit(&self, owner: Uuid, content: &LessonContent) -> Result<(), QuotaError> {
        self.admit_at(owner, content, Instant::now()).await
    }

    async fn admit_at(
        &self,
        owner: Uuid,
        content: &LessonContent,
        now: Instant,
    ) -> Result<(), QuotaError> {
        let size = content.stored_bytes() as u64;
        let turn = self.turn(owner, now);
        let mut kept = turn.lock().await;
        let (mut tally, just_read) = match *kept {
            Some(tally) if tally.fresh(now, self.refresh) => (tally, false),
            _ => (self.read(owner, now).await?, true),
        };
        // Refused only on a fresh sum: the tally may count saves that failed, and revisions
        // purged since it was read.
        if tally.used() + size > self.limit && !just_read {
            tally = self.read(owner, now).await?;
        }
        *kept = Some(tally);
        if tally.used() + size > self.limit {
            return Err(QuotaError::Full {
                used: tally.used(),
                limit: self.limit,
            });
        }
        let kib = u32::try_from(size / 1024).unwrap_or(u32::MAX);
        self.spend(owner, kib)?;
        *kept = Some(Tally {
            admitted: tally.admitted.saturating_add(size),
            ..tally
        });
        Ok(())
    }

    /// Spends the least of `owner`'s write budget (one KiB) on a change that stores no
    /// lesson (a share, a listing in the school library): its row is small, but not free.
    pub fn pace(&self, owner: Uuid) -> Result<(), QuotaError> {
        self.spend(owner, 1)
    }

    /// Spends `kib` of `owner`'s write budget (at least 1, at most its burst).
    fn spend(&self, owner: Uuid, kib: u32) -> Result<(), QuotaError> {
        let kib = NonZeroU32::new(kib.clamp(1, WRITES_KIB.burst)).expect("clamped to at least 1");
        match self.writes.check_key_n(&owner, kib) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(QuotaError::RateLimited {
                retry_after: Limited::from(not_until)
                    .counted("lesson_writes")
                    .retry_after,
            }),
            // Not reached: a write is clamped to the burst.
            Err(_) => Err(QuotaError::RateLimited {
                retry_after: Duration::from_secs(3600),
            }),
        }
    }

    /// A tally of the sum of `owner`'s kept revisions as the store has them now.
    async fn read(&self, owner: Uuid, now: Instant) -> Result<Tally, StoreError> {
        Ok(Tally {
            read: self.store.lesson_bytes(owner).await?,
            read_at: now,
            admitted: 0,
        })
    }

    /// `owner`'s turn and tally; a new one when they have none, or when no room is left for
    /// it (kept by nobody then: this check reads the sum).
    fn turn(&self, owner: Uuid, now: Instant) -> Turn {
        let mut tallies = self.tallies.lock();
        if let Some(turn) = tallies.get(&owner) {
            return turn.clone();
        }
        if tallies.len() >= TALLIES_KEPT {
            self.drop_stale(&mut tallies, now);
        }
        if tallies.len() >= TALLIES_KEPT {
            return Turn::default();
        }
        tallies.entry(owner).or_default().clone()
    }

    /// Forgets the tallies past their refresh (they would be read again) that no check
    /// holds: a check under way keeps its teacher's turn, so two never run at once.
    fn drop_stale(&self, tallies: &mut HashMap<Uuid, Turn>, now: Instant) {
        tallies.retain(|_, turn| {
            Arc::strong_count(turn) > 1
                || turn
                    .try_lock()
                    .is_ok_and(|tally| tally.is_some_and(|t| t.fresh(now, self.refresh)))
        });
    }

    /// Deletes this node's revisions nobody can reach any more; returns how many.
    pub async fn purge(&self, nodes: &NodeIds) -> Result<u64, StoreError> {
        let cutoff = wall_millis() - millis_of(REVISION_RETENTION);
        self.store
            .purge_revisions(nodes, Version::at_millis(cutoff), REVISIONS_KEPT)
            .await
    }

    pub fn prune(&self) {
        self.writes.retain_recent();
        let mut tallies = self.tallies.lock();
        self.drop_stale(&mut tallies, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::Email;
    use crate::domain::lesson::SlideInput;
    use crate::domain::node::Node;
    use crate::store::LessonEdit;

    fn lesson() -> LessonContent {
        let slide = SlideInput {
            kind: "text".into(),
            ..Default::default()
        };
        LessonContent::parse("v", vec![slide]).unwrap()
    }

    async fn store(dir: &std::path::Path) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let store = crate::store::open(&[url], &Node::new(Uuid::now_v7()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// Saves through another node reach this node's count when its tally is read again, a
    /// refresh after the last read; until then a save is checked against the tally alone,
    /// without summing the teacher's revisions (the overshoot docs/security.md bounds).
    #[tokio::test]
    async fn other_nodes_saves_count_from_the_next_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let (here, there) = (store(dir.path()).await, store(dir.path()).await);
        let owner = here
            .create_account(&Email::parse("t@school.org").unwrap(), "T", "h", false)
            .await
            .unwrap()
            .id;
        let size = lesson().stored_bytes() as u64;
        let quota = LessonQuota::new(here.clone(), 3 * size, TALLY_REFRESH);
        let start = Instant::now();
        quota.admit_at(owner, &lesson(), start).await.unwrap();
        let id = here.create_lesson(owner, &lesson()).await.unwrap().id;
        for _ in 0..2 {
            let edit = LessonEdit {
                expected: None,
                content: lesson(),
                restored_from: None,
                keep_folder: false,
                keep_theme: false,
            };
            there.save_lesson(owner, id, edit).await.unwrap();
        }

        let within = start + TALLY_REFRESH - Duration::from_millis(1);
        quota.admit_at(owner, &lesson(), within).await.unwrap();
        let refreshed = quota
            .admit_at(owner, &lesson(), start + TALLY_REFRESH)
            .await;
        assert!(
            matches!(refreshed, Err(QuotaError::Full { used, .. }) if used == 3 * size),
            "{refreshed:?}"
        );
    }

    #[tokio::test]
    async fn tallies_are_bounded_and_stale_ones_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let quota = LessonQuota::new(store(dir.path()).await, 1 << 20, TALLY_REFRESH);
        let start = Instant::now();
        for _ in 0..TALLIES_KEPT {
            let turn = quota.turn(Uuid::now_v7(), start);
            *turn.try_lock().unwrap() = Some(Tally {
                read: 0,
                read_at: start,
                admitted: 0,
            });
        }
        let count = || quota.tallies.lock().len();
        let newcomer = Uuid::now_v7();
        let soon = start + Duration::from_secs(1);
        drop(quota.turn(newcomer, soon));
        assert_eq!(count(), TALLIES_KEPT, "all fresh: the newcomer is not kept");
        assert!(!quota.tallies.lock().contains_key(&newcomer));

        drop(quota.turn(newcomer, start + TALLY_REFRESH));
        assert_eq!(count(), 1, "the stale ones went; the newcomer is kept");
    }
}
