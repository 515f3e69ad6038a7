//! What each teacher may store of lessons: a write budget over time (bytes of new revisions
//! an hour) and a quota in total (bytes of the revisions kept of their lessons).
//!
//! Every save keeps the whole lesson as a new revision (docs/architecture.md section 3, rule
//! 1), so without these a script re-saving a large lesson fills the disk. Plain Rust over the [`Store`]; it knows
//! nothing of HTTP. Old revisions are purged by [`LessonQuota::purge`] (the newest
//! [`REVISIONS_KEPT`] of each lesson stay, and nothing of a deleted lesson but its tombstone).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, RateLimiter};
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
}

impl LessonQuota {
    pub fn new(store: Arc<dyn Store>, limit_bytes: u64) -> Self {
        Self {
            store,
            writes: RateLimiter::keyed(quota(WRITES_KIB)),
            limit: limit_bytes,
        }
    }

    /// Admits a new revision of `content` by `owner`, or says why not. Nothing is spent when
    /// the storage is full.
    pub async fn admit(&self, owner: Uuid, content: &LessonContent) -> Result<(), QuotaError> {
        let size = content.stored_bytes() as u64;
        let used = self.store.lesson_bytes(owner).await?;
        if used + size > self.limit {
            return Err(QuotaError::Full {
                used,
                limit: self.limit,
            });
        }
        let kib = u32::try_from(size / 1024).unwrap_or(u32::MAX);
        let kib = NonZeroU32::new(kib.clamp(1, WRITES_KIB.burst)).expect("clamped to at least 1");
        match self.writes.check_key_n(&owner, kib) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(QuotaError::RateLimited {
                retry_after: Limited::from(not_until)
                    .counted("lesson_writes")
                    .retry_after,
            }),
            // Not reached: a revision is clamped to the burst.
            Err(_) => Err(QuotaError::RateLimited {
                retry_after: Duration::from_secs(3600),
            }),
        }
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
    }
}
