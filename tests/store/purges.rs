//! The purges of the store suite: the one DELETE the multi-master rules allow (rows
//! superseded or expired), each removing only what the node made, and taken over for a
//! node gone past its lease. Each runs against every backend (see `suite!` in `main.rs`).

use super::*;

pub(super) async fn purging_revisions_keeps_the_newest_and_what_boards_present(db: Db) {
    let node = Node::new(Uuid::now_v7());
    let mine = NodeIds::new(node.id, []);
    let store = db.open(&node).await;
    let owner = account(store.as_ref(), "r@school.org").await;
    let first = store.create_lesson(owner, &lesson("v0", 1)).await.unwrap();
    let mut revisions = vec![first.revision];
    for i in 1..6 {
        let edit = LessonEdit {
            expected: None,
            content: lesson(&format!("v{i}"), 1),
            restored_from: None,
            keep_folder: false,
            keep_theme: false,
        };
        revisions.push(
            store
                .save_lesson(owner, first.id, edit)
                .await
                .unwrap()
                .revision,
        );
    }
    let bytes = store.lesson_bytes(owner).await.unwrap();
    assert_eq!(bytes, 6 * lesson("v0", 1).stored_bytes() as u64);
    // A board still presents the oldest revision.
    let board = store.create_board("token-rev").await.unwrap();
    let mut state = BoardState::idle(board);
    state.lesson = Some(classcast::domain::board::PresentedLesson {
        id: first.id,
        revision: revisions[0],
        title: "v0".into(),
        slide_count: 1,
    });
    store
        .save_board_state(Uuid::now_v7(), &state)
        .await
        .unwrap();

    let later = classcast::domain::hlc::Version(i64::MAX);
    let recent = classcast::domain::hlc::Version(0);
    assert_eq!(
        store.purge_revisions(&mine, recent, 2).await.unwrap(),
        0,
        "none is old enough"
    );
    assert_eq!(store.purge_revisions(&mine, later, 2).await.unwrap(), 3);
    let kept: Vec<Uuid> = store
        .revisions(owner, first.id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    assert_eq!(kept, [revisions[5], revisions[4], revisions[0]]);
    assert!(store.lesson_bytes(owner).await.unwrap() < bytes);

    store.delete_lesson(owner, first.id).await.unwrap();
    assert_eq!(
        store.purge_revisions(&mine, recent, 2).await.unwrap(),
        2,
        "a deleted lesson keeps only its tombstone, and what a board presents"
    );
    assert!(store
        .presented_revision(first.id, revisions[0])
        .await
        .is_ok());
}

pub(super) async fn purging_sessions_removes_only_expired_ones_of_this_node(db: Db) {
    let node = Node::new(Uuid::now_v7());
    let store = db.open(&node).await;
    let teacher = account(store.as_ref(), "p@school.org").await;
    for (hash, expires_at_ms) in [("old", 1_000), ("older", 2_000), ("live", 10_000)] {
        store
            .create_session(NewSession {
                id: Uuid::now_v7(),
                token_hash: hash.into(),
                account_id: teacher,
                expires_at_ms,
                family: None,
            })
            .await
            .unwrap();
    }
    let other = NodeIds::new(Uuid::now_v7(), []);
    assert_eq!(
        store.purge_sessions(&other, 5_000).await.unwrap(),
        0,
        "another node's"
    );
    let mine = NodeIds::new(node.id, []);
    assert_eq!(store.purge_sessions(&mine, 5_000).await.unwrap(), 2);
    assert_eq!(
        store
            .session("live", 9_000)
            .await
            .unwrap()
            .unwrap()
            .account
            .id,
        teacher
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM session").await, 1);
}

pub(super) async fn purging_codes_removes_only_long_expired_ones(db: Db) {
    let node = Node::new(Uuid::now_v7());
    let mine = NodeIds::new(node.id, []);
    let store = db.open(&node).await;
    let teacher = account(store.as_ref(), "c@school.org").await;
    let board = store.create_board("token-codes").await.unwrap();
    let spent = store.issue_code(board, "111111", 1_000).await.unwrap();
    store.pair_board(teacher, &spent, "Room").await.unwrap();
    store.issue_code(board, "222222", 2_000).await.unwrap();
    let current = store.issue_code(board, "333333", 10_000).await.unwrap();

    assert_eq!(
        store.purge_codes(&mine, 5_000).await.unwrap(),
        2,
        "the two expired codes"
    );
    assert_eq!(
        store.current_code(board, 9_000).await.unwrap(),
        Some(current)
    );
    assert!(
        store.boards_of(teacher).await.unwrap().len() == 1,
        "pairings stay"
    );
    assert_eq!(
        store.purge_codes(&mine, 5_000).await.unwrap(),
        0,
        "purging again is harmless"
    );
    let left = db.count("SELECT COUNT(*) FROM board_code_use").await;
    assert_eq!(left, 0, "the spent code's use went with it");
}

pub(super) async fn purging_boards_removes_only_old_claims_never_paired_nor_shown(db: Db) {
    use classcast::domain::hlc::Version;
    let node = Node::new(Uuid::now_v7());
    let mine = NodeIds::new(node.id, []);
    let store = db.open(&node).await;
    let teacher = account(store.as_ref(), "b@school.org").await;
    store.create_board("token-forgotten").await.unwrap();
    let showing = store.create_board("token-showing").await.unwrap();
    store.issue_code(showing, "444444", 10_000).await.unwrap();
    let paired = store.create_board("token-paired").await.unwrap();
    let code = store.issue_code(paired, "555555", 1_000).await.unwrap();
    store.pair_board(teacher, &code, "Room").await.unwrap();
    store.unpair_board(teacher, paired).await.unwrap();
    store.purge_codes(&mine, 5_000).await.unwrap();
    let later = Version(i64::MAX);

    let other = NodeIds::new(Uuid::now_v7(), []);
    assert_eq!(
        store.purge_unpaired_boards(&other, later).await.unwrap(),
        0,
        "another node's"
    );
    assert_eq!(
        store
            .purge_unpaired_boards(&mine, Version(0))
            .await
            .unwrap(),
        0,
        "none was claimed before the cutoff"
    );
    assert_eq!(store.purge_unpaired_boards(&mine, later).await.unwrap(), 1);
    assert_eq!(store.board_by_token("token-forgotten").await.unwrap(), None);
    assert_eq!(
        store.board_by_token("token-showing").await.unwrap(),
        Some(showing),
        "a board with a code is shown somewhere"
    );
    assert_eq!(
        store.board_by_token("token-paired").await.unwrap(),
        Some(paired),
        "a board once paired keeps its identity"
    );
}

pub(super) async fn purging_accounts_removes_only_old_ones_never_approved(db: Db) {
    use classcast::domain::hlc::Version;
    let node = Node::new(Uuid::now_v7());
    let mine = NodeIds::new(node.id, []);
    let store = db.open(&node).await;
    let register = |email: &'static str, pending: bool| {
        let store = store.clone();
        async move {
            let email = Email::parse(email).unwrap();
            store
                .create_account(&email, "Teacher", "$argon2id$fake", pending)
                .await
                .unwrap()
                .id
        }
    };
    let waiting = register("waiting@school.org", true).await;
    let approved = register("approved@school.org", true).await;
    store.set_account_disabled(approved, false).await.unwrap();
    let open = register("open@school.org", false).await;
    let later = Version(i64::MAX);

    let other = NodeIds::new(Uuid::now_v7(), []);
    assert_eq!(
        store.purge_pending_accounts(&other, later).await.unwrap(),
        0,
        "another node's"
    );
    assert_eq!(
        store
            .purge_pending_accounts(&mine, Version(0))
            .await
            .unwrap(),
        0,
        "none registered before the cutoff"
    );
    assert_eq!(store.purge_pending_accounts(&mine, later).await.unwrap(), 1);
    assert!(matches!(
        store.account(waiting).await,
        Err(StoreError::NotFound)
    ));
    for (table, key) in [
        ("account", "id"),
        ("account_name", "account_id"),
        ("account_pending", "account_id"),
        ("account_credential", "account_id"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE CAST({key} AS TEXT) = '{waiting}'");
        assert_eq!(db.count(&sql).await, 0, "{table} keeps nothing of it");
    }
    assert!(!store.account(approved).await.unwrap().pending);
    assert!(!store.account(open).await.unwrap().disabled);
    let again = register("waiting@school.org", false).await;
    assert_eq!(
        store
            .login_record("waiting@school.org")
            .await
            .unwrap()
            .map(|r| r.account.id),
        Some(again),
        "the address can register again"
    );
}

pub(super) async fn purging_removes_only_superseded_states_of_this_node(db: Db) {
    // Without the insert-only guard: this is the one delete the rules allow.
    let node = Node::new(Uuid::now_v7());
    let mine = NodeIds::new(node.id, []);
    let store = db.open(&node).await;
    let board = store.create_board("token-purge").await.unwrap();
    let other = store.create_board("token-other").await.unwrap();
    let mut state = BoardState::idle(board);
    let mut saved = vec![];
    for i in 0..3 {
        state.slide_index = i;
        saved.push(
            store
                .save_board_state(Uuid::now_v7(), &state)
                .await
                .unwrap(),
        );
    }
    let lone = store
        .save_board_state(Uuid::now_v7(), &BoardState::idle(other))
        .await
        .unwrap();
    let Saved::New(last) = saved[2] else { panic!() };
    let Saved::New(lone) = lone else { panic!() };
    let before = classcast::domain::hlc::Version(last.0.max(lone.0) + 1);

    assert_eq!(
        store.purge_board_states(&mine, before).await.unwrap(),
        2,
        "the two superseded states"
    );
    assert_eq!(
        store.board_state(board).await.unwrap().unwrap().slide_index,
        2
    );
    assert!(
        store.board_state(other).await.unwrap().is_some(),
        "a board's only state stays"
    );
    assert_eq!(
        store.purge_board_states(&mine, before).await.unwrap(),
        0,
        "purging again is harmless"
    );
}

pub(super) async fn the_purges_of_a_node_gone_past_its_lease_are_taken_over_by_one_live_node(
    db: Db,
) {
    // Three nodes on one database: `gone` stopped two hours ago, `low` and `high` are live.
    let mut ids = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    ids.sort_by_key(|id| id.to_string());
    let [low, high, gone] = ids.map(Node::new);
    let gone_store = db.open(&gone).await;
    let board = gone_store.create_board("token-gone").await.unwrap();
    let mut state = BoardState::idle(board);
    for slide in 0..3 {
        state.slide_index = slide;
        gone_store
            .save_board_state(Uuid::now_v7(), &state)
            .await
            .unwrap();
    }
    db.last_heard_two_hours_ago(gone.id).await;
    let (low_store, high_store) = (db.open(&low).await, db.open(&high).await);
    low_store.heartbeat().await.unwrap();
    high_store.heartbeat().await.unwrap();

    let lease = std::time::Duration::from_secs(30 * 60);
    assert_eq!(
        low_store.live_nodes(lease).await.unwrap(),
        2,
        "low and high"
    );
    let long_ago = std::time::Duration::from_secs(3 * 3600);
    assert_eq!(high_store.live_nodes(long_ago).await.unwrap(), 3);
    let high_upkeep = high_store.upkeep_nodes(lease).await.unwrap();
    assert_eq!(
        high_upkeep,
        NodeIds::new(high.id, []),
        "only the lowest live node takes over"
    );
    let low_upkeep = low_store.upkeep_nodes(lease).await.unwrap();
    assert_eq!(low_upkeep, NodeIds::new(low.id, [gone.id]));
    // Within the lease, nobody takes over.
    let long_lease = std::time::Duration::from_secs(3 * 3600);
    let within = low_store.upkeep_nodes(long_lease).await.unwrap();
    assert_eq!(within, NodeIds::new(low.id, []));

    let later = classcast::domain::hlc::Version(i64::MAX);
    assert_eq!(
        high_store
            .purge_board_states(&high_upkeep, later)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        low_store
            .purge_board_states(&low_upkeep, later)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        low_store
            .board_state(board)
            .await
            .unwrap()
            .unwrap()
            .slide_index,
        2,
        "the current state stays"
    );
    // Superseded heartbeats go too; each node's newest stays.
    low_store.heartbeat().await.unwrap();
    assert_eq!(low_store.purge_heartbeats(&low_upkeep).await.unwrap(), 1);
    assert_eq!(low_store.upkeep_nodes(lease).await.unwrap(), low_upkeep);
}

pub(super) async fn purging_media_keeps_what_lessons_name(db: Db) {
    use classcast::store::Media;
    let node = Node::new(Uuid::now_v7());
    let mine = NodeIds::new(node.id, []);
    let store = db.open(&node).await;
    let owner = account(store.as_ref(), "purge@school.org").await;
    let stored = |id: &str| Media {
        id: id.to_owned(),
        media_type: "image/png".into(),
        size: 3,
        chunks: 1,
    };
    let (named, unnamed, cut_off) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
    for id in [&named, &unnamed] {
        store.insert_media_chunk(id, 0, b"png").await.unwrap();
        store.insert_media(&stored(id), owner).await.unwrap();
    }
    // An upload cut off while its chunks were stored: no media row.
    store.insert_media_chunk(&cut_off, 0, b"png").await.unwrap();
    let preview = classcast::store::Preview {
        media_type: "image/jpeg".into(),
        bytes: b"small".to_vec(),
    };
    for id in [&named, &unnamed] {
        store.insert_media_preview(id, &preview).await.unwrap();
    }
    let slides = vec![SlideInput {
        kind: "image".into(),
        media: Some(named.clone()),
        ..Default::default()
    }];
    let content = LessonContent::parse("With a picture", slides).unwrap();
    store.create_lesson(owner, &content).await.unwrap();

    let recent = classcast::domain::hlc::Version(0);
    assert_eq!(
        store.purge_media(&mine, recent).await.unwrap(),
        0,
        "within the grace"
    );
    let later = classcast::domain::hlc::Version(i64::MAX);
    assert_eq!(store.purge_media(&mine, later).await.unwrap(), 1);
    assert!(
        store.media(&named).await.unwrap().is_some(),
        "a lesson names it"
    );
    assert_eq!(store.media_chunk(&named, 0).await.unwrap(), b"png");
    assert!(store.media(&unnamed).await.unwrap().is_none());
    assert_eq!(store.media_preview(&named).await.unwrap(), Some(preview));
    assert_eq!(store.media_preview(&unnamed).await.unwrap(), None);
    for gone in [&unnamed, &cut_off] {
        assert!(matches!(
            store.media_chunk(gone, 0).await,
            Err(StoreError::NotFound)
        ));
    }
    assert_eq!(
        store.media_bytes(owner).await.unwrap(),
        3 + store::MEDIA_FILE_OVERHEAD,
        "the named one only"
    );
}

/// A purge larger than a batch removes every row, a batch at a time. (Outside the suites:
/// their triggers refuse deletes, and purging superseded rows is the one delete allowed.)
pub(super) async fn a_purge_larger_than_a_batch_removes_every_row_in_turn(db: Db) {
    let store = db.open(&Node::new(Uuid::now_v7())).await;
    let board = store.create_board("token-many").await.unwrap();
    // 2,501 states of one board, saved at once: 2,500 of them are superseded.
    let saves = (0..2501u32).map(|slide| {
        let mut state = BoardState::idle(board);
        state.slide_index = slide;
        let store = store.clone();
        async move { store.save_board_state(Uuid::now_v7(), &state).await }
    });
    for saved in futures_util::future::join_all(saves).await {
        saved.unwrap();
    }
    let later = classcast::domain::hlc::Version(i64::MAX);
    let mine = store
        .upkeep_nodes(std::time::Duration::from_secs(1800))
        .await
        .unwrap();
    assert_eq!(mine.ids().len(), 1, "this node alone: {mine:?}");
    assert_eq!(store.purge_board_states(&mine, later).await.unwrap(), 2500);
    assert!(store.board_state(board).await.unwrap().is_some());
}
