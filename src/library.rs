//! The lesson library's operations over the store (issue 24): copies of a lesson and the
//! titles that tell them apart. Searching and folders are the store's lesson list
//! ([`LessonFilter`](crate::store::LessonFilter)); their rules are `domain::library`.
//!
//! Plain Rust over the [`Store`]; it knows nothing of HTTP.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::domain::lesson::LessonContent;
use crate::domain::library::copy_title;
use crate::store::{LessonCursor, LessonFilter, LessonOrder, Store, StoreResult};

/// How many of the owner's titles from the title on are read to find a free copy title:
/// "Title (copy)", "Title (copy 2)", … sort right after "Title".
const TITLES_READ: u32 = 200;

/// What a copy of the owner's lesson `id` holds: its current slides and folder, under a
/// title none of the owner's lessons has ("Title (copy)", "Title (copy 2)", …).
/// `NotFound` for another teacher's lesson, as for one that does not exist.
pub async fn copy_of(store: &dyn Store, owner: Uuid, id: Uuid) -> StoreResult<LessonContent> {
    let original = store.lesson(owner, id).await?;
    let mut content = original.content.clone();
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
