//! The lesson library's operations over the store (issue 24): who may read a lesson (its
//! owner, colleagues it is shared with, every teacher while it is in the school library),
//! sharing by address, copies of a lesson and the titles that tell them apart. Searching
//! and folders are the store's lesson list ([`LessonFilter`](crate::store::LessonFilter));
//! their rules are `domain::library`.
//!
//! Plain Rust over the [`Store`]; it knows nothing of HTTP.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::account::Email;
use crate::domain::lesson::LessonContent;
use crate::domain::library::copy_title;
use crate::domain::ValidationError;
use crate::store::{
    Colleague, LessonCursor, LessonFilter, LessonOrder, LessonRecord, LessonShares, SharedLesson,
    Sharing, Store, StoreError, StoreResult,
};

/// Why a lesson could not be shared with an address.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The address is not well formed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No teacher who may sign in has this address on this server (or cluster).
    #[error("no teacher with this address here")]
    UnknownTeacher,
    /// The address is the owner's own.
    #[error("a lesson is not shared with its owner")]
    Yourself,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A lesson as the caller may read it.
pub enum Readable {
    /// Theirs.
    Own(Arc<LessonRecord>),
    /// Another teacher's, shared with them or in the school library: read-only.
    Shared(SharedLesson),
}

impl Readable {
    pub fn record(&self) -> &LessonRecord {
        match self {
            Readable::Own(record) => record,
            Readable::Shared(shared) => &shared.record,
        }
    }
}

/// Lesson `id` as `reader` may read it: their own (kept in memory, checked against its
/// owner), else another teacher's that is shared with them or listed, asked of the database
/// each time so that a share withdrawn on any node is refused once it arrives here.
/// `NotFound` for any other lesson, as for one that does not exist.
pub async fn readable(store: &dyn Store, reader: Uuid, id: Uuid) -> StoreResult<Readable> {
    match store.lesson(reader, id).await {
        Ok(record) => Ok(Readable::Own(record)),
        Err(StoreError::NotFound) => Ok(Readable::Shared(store.shared_lesson(reader, id).await?)),
        Err(e) => Err(e),
    }
}

/// Shares the owner's lesson `id` with the teacher whose address is `email`; answers them,
/// and whether this shared it now (`false`: it was shared with them already, nothing is
/// written). The lesson is checked first, so a stranger's request tells nothing of which
/// addresses have an account.
pub async fn share(
    store: &dyn Store,
    owner: Uuid,
    id: Uuid,
    email: &str,
) -> Result<(Colleague, bool), ShareError> {
    let shares = store.lesson_shares(owner, id).await?;
    let email = Email::parse(email).map_err(|e| ValidationError::single("email", e))?;
    // The account that owns the address (its earliest registration), as for signing in.
    let account = match store.login_record(email.normalized()).await? {
        Some(login) if !login.account.disabled => login.account,
        _ => return Err(ShareError::UnknownTeacher),
    };
    if account.id == owner {
        return Err(ShareError::Yourself);
    }
    if let Some(known) = shares.colleagues.into_iter().find(|c| c.id == account.id) {
        return Ok((known, false));
    }
    let fact = Sharing::With {
        account: account.id,
        shared: true,
    };
    store.set_sharing(owner, id, fact).await?;
    let colleague = Colleague {
        id: account.id,
        name: account.name,
        email: account.email,
    };
    Ok((colleague, true))
}

/// Stops sharing the owner's lesson `id` with `account`: their next read is refused.
/// `NotFound` when it is not shared with them (nothing is written).
pub async fn unshare(store: &dyn Store, owner: Uuid, id: Uuid, account: Uuid) -> StoreResult<()> {
    let shares = store.lesson_shares(owner, id).await?;
    if !shares.colleagues.iter().any(|c| c.id == account) {
        return Err(StoreError::NotFound);
    }
    let fact = Sharing::With {
        account,
        shared: false,
    };
    store.set_sharing(owner, id, fact).await
}

/// Puts the owner's lesson `id` in the school library or takes it out; answers who may read
/// it now. Writes only when that changes something.
pub async fn list_in_library(
    store: &dyn Store,
    owner: Uuid,
    id: Uuid,
    listed: bool,
) -> StoreResult<LessonShares> {
    let mut shares = store.lesson_shares(owner, id).await?;
    if shares.listed != listed {
        store
            .set_sharing(owner, id, Sharing::Library(listed))
            .await?;
        shares.listed = listed;
    }
    Ok(shares)
}

/// How many of the owner's titles from the title on are read to find a free copy title:
/// "Title (copy)", "Title (copy 2)", … sort right after "Title".
const TITLES_READ: u32 = 200;

/// What a copy of lesson `id` for `owner` holds: its current slides, and its folder when it
/// is the owner's own (another teacher's folders are theirs), under a title none of the
/// owner's lessons has ("Title (copy)", "Title (copy 2)", …). The slides keep naming the
/// same pictures and videos: media are stored once by content and kept while any lesson
/// names them. `NotFound` for a lesson the owner may not read, as for one that does not
/// exist.
pub async fn copy_of(store: &dyn Store, owner: Uuid, id: Uuid) -> StoreResult<LessonContent> {
    let original = readable(store, owner, id).await?;
    let mut content = original.record().content.clone();
    if let Readable::Shared(_) = original {
        content.folder = None;
    }
    let taken = titles_from(store, owner, &content).await?;
    content.title = copy_title(&content.title, |t| taken.contains(t));
    Ok(content)
}

/// The title `content` can be stored under beside the owner's lessons: its own, or, when
/// they have a lesson of that title already, a copy's title: an import never makes two rows
/// alike.
pub async fn distinct_title(
    store: &dyn Store,
    owner: Uuid,
    content: &LessonContent,
) -> StoreResult<String> {
    let taken = titles_from(store, owner, content).await?;
    Ok(if taken.contains(&content.title) {
        copy_title(&content.title, |t| taken.contains(t))
    } else {
        content.title.clone()
    })
}

/// The owner's titles that sort from `content`'s title on (titles sort case-insensitively).
async fn titles_from(
    store: &dyn Store,
    owner: Uuid,
    content: &LessonContent,
) -> StoreResult<BTreeSet<String>> {
    let after = LessonCursor::Title {
        title_key: content.title_key(),
        id: Uuid::nil(),
    };
    let page = store
        .list_lessons(
            owner,
            &LessonFilter::default(),
            LessonOrder::Title,
            Some(&after),
            TITLES_READ,
        )
        .await?;
    Ok(page.into_iter().map(|l| l.title).collect())
}
