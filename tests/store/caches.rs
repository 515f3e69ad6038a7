//! What a store keeps in memory (`src/store/caches.rs`): sessions and lessons read once and
//! served from memory, forgotten at once by this node's own writes and, for writes made
//! elsewhere, by what the node is told (the session change mark, a lesson's announcement, lost
//! announcements). Two stores on one database stand for two nodes whose databases have
//! converged. Each runs against every backend (see `suite!` in `main.rs`).

use super::*;

pub(super) async fn what_a_node_keeps_is_forgotten_when_it_learns_of_a_write_elsewhere(db: Db) {
    let here = db.open(&Node::new(Uuid::now_v7())).await;
    let there = db.open(&Node::new(Uuid::now_v7())).await;
    let teacher = account(here.as_ref(), "kept@school.org").await;
    let session = NewSession {
        id: Uuid::now_v7(),
        token_hash: "kept-token".into(),
        account_id: teacher,
        expires_at_ms: i64::MAX,
        family: None,
    };
    let family = here.create_session(session).await.unwrap();
    here.session_change_mark().await.unwrap();
    assert!(here.session("kept-token", 0).await.unwrap().is_some());

    there.revoke_session(family).await.unwrap();
    assert!(
        here.session("kept-token", 0).await.unwrap().is_some(),
        "kept until the node hears of the revocation"
    );
    here.session_change_mark().await.unwrap();
    assert!(
        here.session("kept-token", 0).await.unwrap().is_none(),
        "the mark moved: kept sessions are read again"
    );

    let first = here
        .create_lesson(teacher, &lesson("One", 1))
        .await
        .unwrap();
    assert_eq!(
        here.lesson(teacher, first.id).await.unwrap().content.title,
        "One"
    );
    let edit = |title| LessonEdit {
        expected: None,
        content: lesson(title, 2),
        restored_from: None,
        keep_folder: false,
        keep_theme: false,
    };
    let two = there
        .save_lesson(teacher, first.id, edit("Two"))
        .await
        .unwrap();
    let kept = here.lesson(teacher, first.id).await.unwrap();
    assert_eq!(kept.revision, first.revision, "kept until announced");
    here.lesson_announced(first.id, two.updated);
    let fresh = here.lesson(teacher, first.id).await.unwrap();
    assert_eq!(
        (fresh.revision, fresh.content.title.as_str()),
        (two.revision, "Two")
    );

    // A kept lesson is still nobody else's.
    let stranger = account(here.as_ref(), "stranger@school.org").await;
    assert!(matches!(
        here.lesson(stranger, first.id).await,
        Err(StoreError::NotFound)
    ));

    let three = there
        .save_lesson(teacher, first.id, edit("Three"))
        .await
        .unwrap();
    here.announcements_missed();
    assert_eq!(
        here.lesson(teacher, first.id).await.unwrap().revision,
        three.revision
    );

    // This node's own writes are seen at once.
    let four = here
        .save_lesson(teacher, first.id, edit("Four"))
        .await
        .unwrap();
    assert_eq!(
        here.lesson(teacher, first.id).await.unwrap().revision,
        four.revision
    );
    here.delete_lesson(teacher, first.id).await.unwrap();
    assert!(matches!(
        here.lesson(teacher, first.id).await,
        Err(StoreError::NotFound)
    ));
    here.set_account_disabled(teacher, true).await.unwrap();
    let again = NewSession {
        id: Uuid::now_v7(),
        token_hash: "after".into(),
        account_id: stranger,
        expires_at_ms: i64::MAX,
        family: None,
    };
    let theirs = here.create_session(again).await.unwrap();
    assert_eq!(here.session("after", 0).await.unwrap().unwrap().id, theirs);
    here.set_password(stranger, "$argon2id$new").await.unwrap();
    assert!(here.session("after", 0).await.unwrap().is_none(), "at once");
}

pub(super) async fn an_announced_revision_is_not_replaced_by_an_older_one_read_later(db: Db) {
    let here = db.open(&Node::new(Uuid::now_v7())).await;
    let teacher = account(here.as_ref(), "behind@school.org").await;
    let first = here
        .create_lesson(teacher, &lesson("One", 1))
        .await
        .unwrap();
    // Another node stored a newer revision, and said so before replication brought it.
    let newer = classcast::domain::hlc::Version(first.updated.0 + (60_000 << 10));
    here.lesson_announced(first.id, newer);
    assert_eq!(
        here.lesson(teacher, first.id).await.unwrap().revision,
        first.revision,
        "what the database has is served"
    );
    // Replication brings it: the older revision was not kept in its place.
    db.insert(
        "INSERT INTO lesson_revision (id, lesson_id, author_id, title, title_key, slides,
             slide_count, deleted, version, node)
         VALUES (?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?)",
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(first.id),
            Bind::Id(teacher),
            Bind::Text("Arrived".into()),
            Bind::Text("arrived".into()),
            Bind::Text("[]".into()),
            Bind::Int(0),
            Bind::Int(newer.0),
            Bind::Id(Uuid::now_v7()),
        ],
    )
    .await;
    assert_eq!(
        here.lesson(teacher, first.id).await.unwrap().content.title,
        "Arrived"
    );
}
