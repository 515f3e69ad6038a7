//! What a node keeps in memory of the store's rows, so that the requests every page makes
//! (a bearer token's session, a lesson) cost no database read: sessions and lesson revisions
//! are never updated (docs/architecture.md section 3, rule 1), so what was read stays true
//! until a newer row says otherwise.
//!
//! What can make a kept value untrue, and how it is forgotten:
//! - A write through this node (a logout, a new password, a disabled account, a lesson
//!   saved or deleted): at once, after its commit.
//! - A write elsewhere that can end a session (another node, `classcast user` in another
//!   process): the session change mark, read by the node's session poll, clears the sessions
//!   ([`Caches::observe_session_mark`]).
//! - A lesson saved through another node: its announcement on the bus forgets the lesson and
//!   keeps this node from keeping an older revision that its database still has
//!   ([`Caches::lesson_announced`]); events that may have been lost clear the lessons.
//! - Anything the above miss (a row whose version sorts below the mark, an event lost in a
//!   partition): every entry is served at most [`CACHE_TTL`].
//!
//! Bounded in entries and bytes (see `docs/benchmarks.md` for what each costs). It must not
//! read the database itself: the queries do, with a ticket taken first.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use lru::LruCache;
use parking_lot::Mutex;
use uuid::Uuid;

use super::{LessonRecord, SessionRecord};
use crate::cache::{Bounds, Cache, Ticket};
use crate::domain::hlc::Version;

/// How long a kept session or lesson is served before it is read again: the bound on how
/// long a change this node missed goes unseen.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Sessions kept: a school's teachers many times over.
pub const SESSIONS: Bounds = Bounds {
    entries: NonZeroUsize::new(20_000).expect("not zero"),
    bytes: 8 << 20,
    ttl: Some(CACHE_TTL),
};

/// Lessons kept: the current revision of those opened lately.
pub const LESSONS: Bounds = Bounds {
    entries: NonZeroUsize::new(2_048).expect("not zero"),
    bytes: 16 << 20,
    ttl: Some(CACHE_TTL),
};

/// Lessons whose announced version is remembered.
const ANNOUNCED: NonZeroUsize = NonZeroUsize::new(4_096).expect("not zero");

/// A session's fixed size in memory besides its texts.
const SESSION_BYTES: usize = 256;

#[derive(Clone)]
struct KeptLesson {
    owner: Uuid,
    record: Arc<LessonRecord>,
}

pub(crate) struct Caches {
    sessions: Cache<String, Arc<SessionRecord>>,
    /// The session change mark the sessions were kept under.
    session_mark: Mutex<Option<i64>>,
    lessons: Cache<Uuid, KeptLesson>,
    /// The newest version other nodes announced of a lesson: an older one read from a
    /// database that replication has not reached yet is served but not kept.
    announced: Mutex<LruCache<Uuid, Version>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            sessions: Cache::new(SESSIONS),
            session_mark: Mutex::new(None),
            lessons: Cache::new(LESSONS),
            announced: Mutex::new(LruCache::new(ANNOUNCED)),
        }
    }
}

impl Caches {
    /// The kept session of `token_hash`, if it is still live at `now_ms` (expiry is the only
    /// end a session reaches without a write).
    pub(crate) fn session(&self, token_hash: &str, now_ms: i64) -> Option<SessionRecord> {
        let kept = self.sessions.get(token_hash)?;
        (kept.expires_at_ms > now_ms).then(|| (*kept).clone())
    }

    pub(crate) fn session_ticket(&self) -> Ticket {
        self.sessions.ticket()
    }

    pub(crate) fn keep_session(&self, ticket: Ticket, token_hash: &str, record: &SessionRecord) {
        let bytes = SESSION_BYTES
            + token_hash.len()
            + record.account.email.len()
            + record.account.name.len();
        let record = Arc::new(record.clone());
        self.sessions
            .put(ticket, token_hash.to_owned(), record, bytes);
    }

    /// A write through this node may have ended sessions: called after its commit.
    pub(crate) fn sessions_changed(&self) {
        self.sessions.clear();
    }

    /// The store's session change mark as just read: when it moved, something written
    /// elsewhere may have ended a kept session.
    pub(crate) fn observe_session_mark(&self, mark: i64) {
        let mut seen = self.session_mark.lock();
        if *seen != Some(mark) {
            self.sessions.clear();
            *seen = Some(mark);
        }
    }

    /// The kept current revision of lesson `id`: `Some(None)` when it is kept but not
    /// `owner`'s (answered like a lesson that does not exist), `None` when not kept.
    pub(crate) fn lesson(&self, owner: Uuid, id: Uuid) -> Option<Option<Arc<LessonRecord>>> {
        let kept = self.lessons.get(&id)?;
        Some((kept.owner == owner).then_some(kept.record))
    }

    pub(crate) fn lesson_ticket(&self) -> Ticket {
        self.lessons.ticket()
    }

    /// Keeps `record` as lesson's current revision, unless another node announced a newer
    /// one.
    pub(crate) fn keep_lesson(&self, ticket: Ticket, owner: Uuid, record: &Arc<LessonRecord>) {
        let behind = self
            .announced
            .lock()
            .peek(&record.id)
            .is_some_and(|newest| *newest > record.updated);
        if behind {
            return;
        }
        // The texts dominate; each slide's strings and the record's fields add about this.
        let bytes = record.content.stored_bytes() + 128 * (record.content.slides.len() + 1);
        let kept = KeptLesson {
            owner,
            record: record.clone(),
        };
        self.lessons.put(ticket, record.id, kept, bytes);
    }

    /// Lesson `id` changed through this node: called after its commit.
    pub(crate) fn forget_lesson(&self, id: Uuid) {
        self.lessons.forget(&id);
    }

    /// Another node stored revision `version` of lesson `id`.
    pub(crate) fn lesson_announced(&self, id: Uuid, version: Version) {
        {
            let mut announced = self.announced.lock();
            match announced.get_mut(&id) {
                Some(newest) if *newest >= version => {}
                Some(newest) => *newest = version,
                None => {
                    announced.put(id, version);
                }
            }
        }
        self.lessons.forget(&id);
    }

    /// Announcements may have been lost: nothing kept of lessons is trusted.
    pub(crate) fn clear_lessons(&self) {
        self.lessons.clear();
    }
}
