//! Sharing inside the school over a real store, on both backends: a share and a listing are
//! facts whose newest row is current, read-only access follows them at once, deleted
//! lessons leave the lists, and a fact that replication brings late never overrides a newer
//! one.

use classcast::domain::library::parse_query;
use classcast::domain::node::Node;
use classcast::store::{LessonEdit, LessonFilter, LessonOrder, Sharing, Shelf, Store, StoreError};
use uuid::Uuid;

use super::{account, lesson, Bind, Db};

/// The titles on `shelf` that a search for `q` lists, newest first.
async fn shelved(store: &dyn Store, shelf: Shelf, q: &str) -> Vec<String> {
    let filter = LessonFilter {
        words: parse_query(q).unwrap(),
        folder: None,
    };
    let page = store
        .shared_lessons(shelf, &filter, LessonOrder::Updated, None, 50)
        .await
        .unwrap();
    page.into_iter().map(|s| s.lesson.title).collect()
}

fn with(account: Uuid, shared: bool) -> Sharing {
    Sharing::With { account, shared }
}

/// Whether `reader` may read lesson `id` of someone else's.
async fn readable(store: &dyn Store, reader: Uuid, id: Uuid) -> bool {
    match store.shared_lesson(reader, id).await {
        Ok(_) => true,
        Err(StoreError::NotFound) => false,
        Err(e) => panic!("{e}"),
    }
}

pub(super) async fn shares_and_listings_follow_their_newest_fact(store: &dyn Store) {
    let owner = account(store, "owner@school.org").await;
    let colleague = account(store, "colleague@school.org").await;
    let other = account(store, "other@school.org").await;
    let volcanoes = store
        .create_lesson(owner, &lesson("Volcanoes", 2))
        .await
        .unwrap();
    let rivers = store
        .create_lesson(owner, &lesson("Rivers", 1))
        .await
        .unwrap();
    let shares = store.lesson_shares(owner, volcanoes.id).await.unwrap();
    assert!(shares.colleagues.is_empty() && !shares.listed);
    assert!(!readable(store, colleague, volcanoes.id).await);

    store
        .set_sharing(owner, volcanoes.id, with(colleague, true))
        .await
        .unwrap();
    store
        .set_sharing(owner, rivers.id, with(colleague, true))
        .await
        .unwrap();
    let shares = store.lesson_shares(owner, volcanoes.id).await.unwrap();
    let ids: Vec<Uuid> = shares.colleagues.iter().map(|c| c.id).collect();
    assert_eq!(ids, [colleague]);
    assert_eq!(shares.colleagues[0].email, "colleague@school.org");
    let read = store.shared_lesson(colleague, volcanoes.id).await.unwrap();
    assert_eq!(read.owner, owner);
    assert_eq!(read.owner_name, "Teacher");
    assert_eq!(read.record.revision, volcanoes.revision);
    assert!(
        !readable(store, other, volcanoes.id).await,
        "shared with one colleague"
    );
    assert_eq!(
        shelved(store, Shelf::SharedWith(colleague), "").await,
        ["Rivers", "Volcanoes"]
    );
    assert_eq!(
        shelved(store, Shelf::SharedWith(colleague), "volcanoes").await,
        ["Volcanoes"]
    );
    assert!(shelved(store, Shelf::SharedWith(other), "")
        .await
        .is_empty());

    // Only the owner records facts of a lesson.
    let refused = store
        .set_sharing(colleague, volcanoes.id, with(other, true))
        .await;
    assert!(matches!(refused, Err(StoreError::NotFound)));
    let refused = store.lesson_shares(colleague, volcanoes.id).await;
    assert!(matches!(refused, Err(StoreError::NotFound)));

    // A save is read at once, in its new version.
    let edit = LessonEdit {
        expected: None,
        content: lesson("Volcanoes and lava", 3),
        restored_from: None,
        keep_folder: true,
        keep_theme: false,
    };
    let saved = store.save_lesson(owner, volcanoes.id, edit).await.unwrap();
    let read = store.shared_lesson(colleague, volcanoes.id).await.unwrap();
    assert_eq!(read.record.revision, saved.revision);
    assert_eq!(read.record.content.slides.len(), 3);

    // Withdrawn, then made again: the newest row decides.
    store
        .set_sharing(owner, volcanoes.id, with(colleague, false))
        .await
        .unwrap();
    assert!(!readable(store, colleague, volcanoes.id).await);
    assert_eq!(
        shelved(store, Shelf::SharedWith(colleague), "").await,
        ["Rivers"]
    );
    assert!(store
        .lesson_shares(owner, volcanoes.id)
        .await
        .unwrap()
        .colleagues
        .is_empty());
    store
        .set_sharing(owner, volcanoes.id, with(colleague, true))
        .await
        .unwrap();
    assert!(readable(store, colleague, volcanoes.id).await);

    // The school library: every teacher reads what is listed, until it is taken out.
    store
        .set_sharing(owner, rivers.id, Sharing::Library(true))
        .await
        .unwrap();
    assert!(store.lesson_shares(owner, rivers.id).await.unwrap().listed);
    assert!(readable(store, other, rivers.id).await);
    assert_eq!(shelved(store, Shelf::Library, "").await, ["Rivers"]);
    assert!(shelved(store, Shelf::Library, "lava").await.is_empty());
    store
        .set_sharing(owner, rivers.id, Sharing::Library(false))
        .await
        .unwrap();
    assert!(!readable(store, other, rivers.id).await);
    assert!(shelved(store, Shelf::Library, "").await.is_empty());

    // A deleted lesson leaves every list and cannot be read.
    store
        .set_sharing(owner, rivers.id, Sharing::Library(true))
        .await
        .unwrap();
    store.delete_lesson(owner, rivers.id).await.unwrap();
    assert!(shelved(store, Shelf::Library, "").await.is_empty());
    assert_eq!(
        shelved(store, Shelf::SharedWith(colleague), "").await,
        ["Volcanoes and lava"]
    );
    assert!(!readable(store, colleague, rivers.id).await);
    let refused = store.set_sharing(owner, rivers.id, with(other, true)).await;
    assert!(matches!(refused, Err(StoreError::NotFound)));
}

pub(super) async fn a_sharing_fact_replicated_late_never_overrides_a_newer_one(db: Db) {
    let store = db.open(&Node::new(Uuid::now_v7())).await;
    db.insert_only().await;
    let owner = account(store.as_ref(), "owner@school.org").await;
    let colleague = account(store.as_ref(), "colleague@school.org").await;
    let other = account(store.as_ref(), "other@school.org").await;
    let id = store
        .create_lesson(owner, &lesson("Shared", 1))
        .await
        .unwrap()
        .id;
    store
        .set_sharing(owner, id, with(colleague, true))
        .await
        .unwrap();
    store
        .set_sharing(owner, id, with(colleague, false))
        .await
        .unwrap();
    store
        .set_sharing(owner, id, Sharing::Library(false))
        .await
        .unwrap();

    // Rows another node wrote long ago arrive now: older than what this node wrote.
    let share = "INSERT INTO lesson_share (id, lesson_id, account_id, shared, version, node)
                 VALUES (?, ?, ?, TRUE, ?, ?)";
    let listing = "INSERT INTO lesson_listing (id, lesson_id, listed, version, node)
                   VALUES (?, ?, TRUE, ?, ?)";
    let node = Uuid::now_v7();
    db.insert(
        share,
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(id),
            Bind::Id(colleague),
            Bind::Int(1),
            Bind::Id(node),
        ],
    )
    .await;
    db.insert(
        listing,
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(id),
            Bind::Int(1),
            Bind::Id(node),
        ],
    )
    .await;
    assert!(
        !readable(store.as_ref(), colleague, id).await,
        "the newer withdrawal stands"
    );
    assert!(
        !readable(store.as_ref(), other, id).await,
        "the newer unlisting stands"
    );
    assert!(shelved(store.as_ref(), Shelf::SharedWith(colleague), "")
        .await
        .is_empty());
    assert!(shelved(store.as_ref(), Shelf::Library, "").await.is_empty());
    let shares = store.lesson_shares(owner, id).await.unwrap();
    assert!(shares.colleagues.is_empty() && !shares.listed);

    // A newer one (a node whose clock ran ahead) wins; this node's next change is versioned
    // after it, and wins in turn.
    let ahead = i64::MAX >> 1;
    db.insert(
        share,
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(id),
            Bind::Id(colleague),
            Bind::Int(ahead),
            Bind::Id(node),
        ],
    )
    .await;
    assert!(readable(store.as_ref(), colleague, id).await);
    store
        .set_sharing(owner, id, with(colleague, false))
        .await
        .unwrap();
    assert!(!readable(store.as_ref(), colleague, id).await);
    db.finish().await;
}
