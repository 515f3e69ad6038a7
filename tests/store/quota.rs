//! The lesson quota over a real store, on both backends: each node checks a save against a
//! tally of the teacher's kept bytes (`src/quota.rs`), which must count its own saves between
//! reads, read what other nodes wrote, and see room a purge freed.

use std::sync::Arc;
use std::time::Duration;

use classcast::domain::hlc::Version;
use classcast::domain::node::Node;
use classcast::quota::{LessonQuota, QuotaError};
use classcast::store::{LessonEdit, NodeIds, Store};
use uuid::Uuid;

use super::{account, lesson, Bind, Db};

/// Longer than any test: the tally is read only when there is none, or before a refusal.
const NEVER: Duration = Duration::from_secs(3600);

fn edit(title: &str) -> LessonEdit {
    LessonEdit {
        expected: None,
        content: lesson(title, 1),
        restored_from: None,
        keep_folder: false,
        keep_theme: false,
    }
}

/// One revision's bytes, as the quota counts them; every revision of these tests has the
/// same size.
fn size() -> u64 {
    lesson("v", 1).stored_bytes() as u64
}

/// How `admit` refused, or a panic when it admitted.
fn refused_at(admitted: Result<(), QuotaError>) -> u64 {
    match admitted {
        Err(QuotaError::Full { used, .. }) => used,
        other => panic!("expected storage_full, got {other:?}"),
    }
}

/// Saves on `node` through `store` as a server does: admitted first, then written.
async fn save(quota: &LessonQuota, store: &dyn Store, owner: Uuid, id: Uuid) -> bool {
    if quota.admit(owner, &lesson("v", 1)).await.is_err() {
        return false;
    }
    store.save_lesson(owner, id, edit("v")).await.unwrap();
    true
}

pub(super) async fn quota_counts_its_own_saves_between_reads(db: Db) {
    let store = db.open(&Node::new(Uuid::now_v7())).await;
    db.insert_only().await;
    let owner = account(store.as_ref(), "q1@school.org").await;
    let quota = LessonQuota::new(store.clone(), 3 * size(), NEVER);

    quota.admit(owner, &lesson("v", 1)).await.unwrap();
    let id = store
        .create_lesson(owner, &lesson("v", 1))
        .await
        .unwrap()
        .id;
    let mut saves = 0;
    while save(&quota, store.as_ref(), owner, id).await {
        saves += 1;
        assert!(saves < 10, "never refused");
    }
    assert_eq!(saves, 2, "three revisions fit");
    assert_eq!(
        refused_at(quota.admit(owner, &lesson("v", 1)).await),
        3 * size()
    );
    assert_eq!(store.revisions(owner, id).await.unwrap().len(), 3);
    db.finish().await;
}

pub(super) async fn quota_counts_revisions_written_through_another_node(db: Db) {
    let here = db.open(&Node::new(Uuid::now_v7())).await;
    let there = db.open(&Node::new(Uuid::now_v7())).await;
    db.insert_only().await;
    let owner = account(here.as_ref(), "q2@school.org").await;

    // Two revisions saved through the other node before this one counts.
    let id = there
        .create_lesson(owner, &lesson("v", 1))
        .await
        .unwrap()
        .id;
    there.save_lesson(owner, id, edit("v")).await.unwrap();
    let quota = LessonQuota::new(here.clone(), 3 * size(), NEVER);
    assert!(
        save(&quota, here.as_ref(), owner, id).await,
        "the third of three"
    );
    assert_eq!(
        refused_at(quota.admit(owner, &lesson("v", 1)).await),
        3 * size(),
        "the other node's two and this one's"
    );

    // A revision that arrives by replication long after it was written, with an old
    // version, is counted by the next read all the same: a tally is a whole sum read
    // again, never what came after a version.
    let late = Uuid::now_v7();
    db.insert(
        "INSERT INTO lesson_revision (id, lesson_id, version, node, author_id, title, title_key,
         slide_count, slides, deleted, restored_from)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, NULL)",
        &[
            Bind::Id(late),
            Bind::Id(id),
            Bind::Int(1),
            Bind::Id(Uuid::now_v7()),
            Bind::Id(owner),
            Bind::Text("v".into()),
            Bind::Text("v".into()),
            Bind::Int(1),
            Bind::Text(serde_json::to_string(&lesson("v", 1).slides).unwrap()),
        ],
    )
    .await;
    let after_refresh = LessonQuota::new(here.clone(), 3 * size(), Duration::ZERO);
    assert_eq!(
        refused_at(after_refresh.admit(owner, &lesson("v", 1)).await),
        4 * size()
    );
    db.finish().await;
}

pub(super) async fn quota_sees_the_room_a_purge_freed_at_once(db: Db) {
    let here = db.open(&Node::new(Uuid::now_v7())).await;
    let there_node = Node::new(Uuid::now_v7());
    let there = db.open(&there_node).await;
    let owner = account(here.as_ref(), "q3@school.org").await;
    let quota = Arc::new(LessonQuota::new(here.clone(), 3 * size(), NEVER));

    // Full, through the other node; this node's tally says so.
    let id = there
        .create_lesson(owner, &lesson("v", 1))
        .await
        .unwrap()
        .id;
    for _ in 0..2 {
        there.save_lesson(owner, id, edit("v")).await.unwrap();
    }
    assert!(!save(&quota, here.as_ref(), owner, id).await);

    // The other node purges its old revisions: all but the newest go.
    let later = Version(i64::MAX);
    let purged = there
        .purge_revisions(&NodeIds::new(there_node.id, []), later, 1)
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert!(
        save(&quota, here.as_ref(), owner, id).await,
        "a refusal reads the sum again, so the tally's stale figure refuses nothing"
    );
    assert!(save(&quota, here.as_ref(), owner, id).await);
    assert!(!save(&quota, here.as_ref(), owner, id).await, "full again");
    db.finish().await;
}
