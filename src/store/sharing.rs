//! Who besides its owner may read a lesson (issue 24): the part of the store's interface
//! for shares with colleagues and the school library, and the records it answers with.
//! Written once for both engines in `queries/sharing.rs`; nothing here knows SQL or HTTP.

use async_trait::async_trait;
use uuid::Uuid;

use super::{LessonCursor, LessonFilter, LessonOrder, LessonRecord, LessonSummary, StoreResult};

/// Who besides its owner may read a lesson (issue 24, docs/lesson-library.md): colleagues
/// it is shared with, and every teacher while it is in the school library. Each is a fact
/// of its own, one insert-only row per change, the newest row current.
#[async_trait]
pub trait ShareStore: Send + Sync {
    /// Records one fact of the owner's lesson `id`. `NotFound` for a lesson that is not the
    /// owner's (or is deleted), as for a missing one.
    async fn set_sharing(&self, owner: Uuid, id: Uuid, fact: Sharing) -> StoreResult<()>;
    /// Whom the owner's lesson `id` is shared with (by name, case aside) and whether it is
    /// in the school library.
    async fn lesson_shares(&self, owner: Uuid, id: Uuid) -> StoreResult<LessonShares>;
    /// Another teacher's lesson `id`, current revision, when it is shared with `reader` or
    /// in the school library; `NotFound` otherwise. Never kept in memory: withdrawing a
    /// share takes effect on the next read.
    async fn shared_lesson(&self, reader: Uuid, id: Uuid) -> StoreResult<SharedLesson>;
    /// Up to `limit` lessons on `shelf` that `filter` holds, in `order`, after `cursor`.
    async fn shared_lessons(
        &self,
        shelf: Shelf,
        filter: &LessonFilter,
        order: LessonOrder,
        cursor: Option<&LessonCursor>,
        limit: u32,
    ) -> StoreResult<Vec<SharedSummary>>;
}

/// One fact of who may read a lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// The lesson is shared with this account (`true`) or no longer (`false`).
    With { account: Uuid, shared: bool },
    /// The lesson is in the school library (`true`) or taken out.
    Library(bool),
}

/// The lessons other teachers let a teacher read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shelf {
    /// Those shared with this account.
    SharedWith(Uuid),
    /// Those in the school library (the reader's own included).
    Library,
}

/// A teacher as a colleague sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colleague {
    pub id: Uuid,
    pub name: String,
    pub email: String,
}

/// Who may read a lesson besides its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonShares {
    pub colleagues: Vec<Colleague>,
    pub listed: bool,
}

/// A lesson someone else owns, as a reader may read it.
#[derive(Debug, Clone)]
pub struct SharedLesson {
    pub record: LessonRecord,
    pub owner: Uuid,
    pub owner_name: String,
}

/// A line of a list of other teachers' lessons.
#[derive(Debug, Clone)]
pub struct SharedSummary {
    pub lesson: LessonSummary,
    pub owner: Uuid,
    pub owner_name: String,
}
