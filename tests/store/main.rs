use std::sync::Arc;

use classcast::domain::account::Email;
use classcast::domain::board::BoardState;
use classcast::domain::lesson::{LessonContent, SlideInput};
use classcast::domain::node::Node;
use classcast::store::{
    self, LessonCursor, LessonEdit, LessonFilter, LessonOrder, NewSession, NodeIds, Saved, Store,
    StoreError,
};
use sqlx::{Connection, Row};
use uuid::Uuid;

#[path = "../support/eventually.rs"]
mod eventually;
#[path = "../support/postgres.rs"]
mod pg_server;
#[path = "../support/tools.rs"]
mod tools;

mod caches;
use caches::*;
mod library;
use library::*;
mod sharing;
use sharing::*;
mod mail;
use mail::*;
mod purges;
use purges::*;
mod quota;
use quota::*;
mod upgrades;
use upgrades::*;

/// Every replicated table: the list `cluster init` puts in the replication set, checked
/// below against both schemas.
const REPLICATED: &[&str] = store::postgres::REPLICATED_TABLES;

/// A database of one backend for a test, kept while the test runs.
enum Db {
    Sqlite(tempfile::TempDir),
    /// A database of its own on a server the tests running at the same time share.
    Postgres(Arc<pg_server::PgServer>, String),
}

/// A value for a `?` placeholder of [`Db::insert`], typed as each backend stores it.
enum Bind {
    Id(Uuid),
    Int(i64),
    Text(String),
    Json(String),
    Bytes(Vec<u8>),
}

impl Db {
    async fn new_sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    async fn new_postgres() -> Db {
        // One server while tests overlap, a database each: initdb took 1.7 s a test. The
        // last test to let go of a server stops it.
        static SHARED: std::sync::Mutex<std::sync::Weak<pg_server::PgServer>> =
            std::sync::Mutex::new(std::sync::Weak::new());
        let server = {
            let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
            shared.upgrade().unwrap_or_else(|| {
                let started = Arc::new(pg_server::PgServer::start());
                *shared = Arc::downgrade(&started);
                started
            })
        };
        let database = format!("t{}", Uuid::now_v7().simple());
        server.create(&database).await;
        Db::Postgres(server, database)
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}", dir.path().join("t.db").display()),
            Db::Postgres(server, database) => server.url(database),
        }
    }

    /// A migrated store on this database for `node`.
    async fn open(&self, node: &Node) -> Arc<dyn Store> {
        let store = store::open(&[self.url()], node).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// Makes every replicated table refuse updates and deletes, so the test also proves the
    /// backend is insert-only (docs/architecture.md section 3, rule 1).
    async fn insert_only(&self) {
        match self {
            Db::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url()).await.unwrap();
                for table in REPLICATED {
                    for op in ["UPDATE", "DELETE"] {
                        let sql = format!(
                            "CREATE TRIGGER no_{op}_{table} BEFORE {op} ON {table} \
                             BEGIN SELECT RAISE(ABORT, 'replicated rows are insert-only'); END"
                        );
                        sqlx::query(&sql).execute(&mut conn).await.unwrap();
                    }
                }
            }
            Db::Postgres(..) => {
                let mut conn = sqlx::PgConnection::connect(&self.url()).await.unwrap();
                let mut sql = "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                    $$ BEGIN RAISE EXCEPTION 'replicated rows are insert-only'; END $$;"
                    .to_owned();
                for table in REPLICATED {
                    sql += &format!(
                        "CREATE TRIGGER insert_only BEFORE UPDATE OR DELETE ON {table}
                         FOR EACH ROW EXECUTE FUNCTION refuse();"
                    );
                }
                sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// Runs `sql` (with `?` placeholders) as replication from another node would: rows
    /// this node's store did not write.
    async fn insert(&self, sql: &str, binds: &[Bind]) {
        match self {
            Db::Sqlite(_) => {
                let mut query = sqlx::query(sql);
                for bind in binds {
                    query = match bind {
                        Bind::Id(id) => query.bind(id.to_string()),
                        Bind::Int(n) => query.bind(*n),
                        Bind::Text(t) | Bind::Json(t) => query.bind(t.clone()),
                        Bind::Bytes(b) => query.bind(b.clone()),
                    };
                }
                let mut conn = sqlx::SqliteConnection::connect(&self.url()).await.unwrap();
                query.execute(&mut conn).await.unwrap();
            }
            Db::Postgres(..) => {
                let mut numbered = String::new();
                let mut binds_left = binds.iter().enumerate();
                for c in sql.chars() {
                    if c != '?' {
                        numbered.push(c);
                        continue;
                    }
                    let (i, bind) = binds_left.next().expect("a value per placeholder");
                    let cast = match bind {
                        Bind::Id(_) => "::uuid",
                        Bind::Int(_) => "::bigint",
                        Bind::Text(_) => "::text",
                        Bind::Json(_) => "::jsonb",
                        Bind::Bytes(_) => "::bytea",
                    };
                    numbered += &format!("${}{cast}", i + 1);
                }
                let mut query = sqlx::query(&numbered);
                for bind in binds {
                    query = match bind {
                        Bind::Id(id) => query.bind(*id),
                        Bind::Int(n) => query.bind(*n),
                        Bind::Text(t) | Bind::Json(t) => query.bind(t.clone()),
                        Bind::Bytes(b) => query.bind(b.clone()),
                    };
                }
                let mut conn = sqlx::PgConnection::connect(&self.url()).await.unwrap();
                query.execute(&mut conn).await.unwrap();
            }
        }
    }

    /// A heartbeat of `node` two hours old: a node gone past every lease.
    async fn last_heard_two_hours_ago(&self, node: Uuid) {
        let two_hours_ago = classcast::domain::hlc::wall_millis() - 2 * 3600 * 1000;
        self.insert(
            "INSERT INTO node_heartbeat (id, node, version) VALUES (?, ?, ?)",
            &[
                Bind::Id(Uuid::now_v7()),
                Bind::Id(node),
                Bind::Int(two_hours_ago << 10),
            ],
        )
        .await;
    }

    async fn count(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Db::Postgres(..) => {
                let mut conn = sqlx::PgConnection::connect(&self.url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// What must hold after a test: on PostgreSQL, the server's statistics show that no row
    /// of a replicated table was ever updated. Backends report their counts when they exit,
    /// so the store's connections are ended first.
    async fn finish(&self) {
        let Db::Postgres(..) = self else { return };
        let mut conn = sqlx::PgConnection::connect(&self.url()).await.unwrap();
        let ended: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM (SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                              AND pid <> pg_backend_pid() OFFSET 0) others
             WHERE pg_terminate_backend(pid)",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let (ten_seconds, a_moment) = (
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(20),
        );
        eventually::eventually!(ten_seconds, a_moment, {
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&ended)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            match left {
                0 => Ok(()),
                _ => Err(format!("{left} never ended")),
            }
        });
        let updated: Vec<(String, i64)> = sqlx::query_as(
            "SELECT relname::text, n_tup_upd FROM pg_stat_user_tables
             WHERE relname = ANY($1) AND n_tup_upd > 0",
        )
        .bind(REPLICATED)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(updated.is_empty(), "rows updated: {updated:?}");
    }
}

/// A fresh, migrated SQLite store whose replicated tables refuse updates and deletes.
async fn sqlite() -> (Arc<dyn Store>, Db) {
    guarded(Db::new_sqlite().await).await
}

/// A fresh, migrated PostgreSQL store on a throwaway server, its replicated tables refusing
/// updates and deletes like SQLite's.
async fn postgres() -> (Arc<dyn Store>, Db) {
    guarded(Db::new_postgres().await).await
}

async fn guarded(db: Db) -> (Arc<dyn Store>, Db) {
    let store = db.open(&Node::new(Uuid::now_v7())).await;
    db.insert_only().await;
    (store, db)
}

fn lesson(title: &str, slides: usize) -> LessonContent {
    let slides = (0..slides)
        .map(|_| SlideInput {
            kind: "text".into(),
            ..Default::default()
        })
        .collect();
    LessonContent::parse(title, slides).unwrap()
}

async fn account(store: &dyn Store, email: &str) -> Uuid {
    store
        .create_account(
            &Email::parse(email).unwrap(),
            "Teacher",
            "$argon2id$fake",
            false,
        )
        .await
        .unwrap()
        .id
}

/// Whether a test of `backend` must be skipped (see `tests/support/tools.rs`): SQLite needs
/// nothing beyond Rust.
fn lacks_tools(backend: &str) -> bool {
    backend == "postgres" && tools::missing(&[tools::Tool::Postgres])
}

/// Runs each named suite function against every backend, a module per backend and a test
/// per function: `stores` get a migrated store whose replicated tables refuse updates and
/// deletes, `databases` a fresh database of their own (to open stores on, or to write rows
/// as replication would).
macro_rules! suite {
    (stores: [$($store:ident),* $(,)?], databases: [$($db:ident),* $(,)?] $(,)?) => {
        suite!(@backend sqlite new_sqlite: [$($store),*] [$($db),*]);
        suite!(@backend postgres new_postgres: [$($store),*] [$($db),*]);
    };
    (@backend $backend:ident $new:ident: [$($store:ident),*] [$($db:ident),*]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $store() {
                    if super::lacks_tools(stringify!($backend)) {
                        return;
                    }
                    let (store, db) = super::$backend().await;
                    super::$store(store.as_ref()).await;
                    db.finish().await;
                }
            )*
            $(
                #[tokio::test]
                async fn $db() {
                    if super::lacks_tools(stringify!($backend)) {
                        return;
                    }
                    super::$db(super::Db::$new().await).await;
                }
            )*
        }
    };
}

suite!(
    stores: [
        an_address_is_owned_by_its_first_registration,
        sessions_end_by_expiry_revocation_password_change_and_disabling,
        edits_are_new_revisions_and_stale_edits_conflict,
        lessons_are_invisible_to_other_owners,
        listing_pages_without_gaps_or_repeats,
        deletion_is_a_tombstone,
        migrating_twice_applies_nothing,
        a_code_drawn_twice_belongs_to_the_newer_board,
        a_code_pairs_once_and_pairings_are_versioned,
        board_states_are_versioned_and_commands_remembered,
        simultaneous_commands_each_get_their_own_outcome,
        a_revocation_ends_the_whole_session_family,
        open_sessions_are_checked_in_one_go_when_the_change_mark_moves,
        the_newest_states_of_many_boards_are_read_at_once,
        media_is_stored_once_in_chunks_and_counted_for_each_uploader,
        a_revoked_board_is_gone_for_its_token_and_every_teacher,
        the_outbox_retries_after_failures_gives_up_and_sends_again_on_request,
        a_mailed_link_opens_its_account_once_and_only_for_its_purpose,
        a_search_and_a_folder_narrow_the_list_to_current_lessons,
        a_lessons_theme_is_stored_and_kept_by_an_edit_that_keeps_it,
        shares_and_listings_follow_their_newest_fact,
    ],
    databases: [
        purging_revisions_keeps_the_newest_and_what_boards_present,
        purging_codes_removes_only_long_expired_ones,
        purging_boards_removes_only_old_claims_never_paired_nor_shown,
        purging_accounts_removes_only_old_ones_never_approved,
        purging_sessions_removes_only_expired_ones_of_this_node,
        purging_removes_only_superseded_states_of_this_node,
        a_state_that_arrived_by_replication_is_never_overtaken_by_an_older_version,
        a_command_stored_on_two_nodes_answers_its_earliest_outcome_everywhere,
        a_rename_made_elsewhere_undoes_neither_a_disable_nor_an_unpairing,
        the_purges_of_a_node_gone_past_its_lease_are_taken_over_by_one_live_node,
        a_purge_larger_than_a_batch_removes_every_row_in_turn,
        purging_media_keeps_what_lessons_name,
        media_an_earlier_release_keyed_by_content_is_still_read_counted_and_purged,
        a_database_of_the_previous_release_upgrades_in_place,
        the_mail_of_a_node_gone_past_its_lease_is_sent_by_one_live_node_and_purged,
        quota_counts_its_own_saves_between_reads,
        quota_counts_revisions_written_through_another_node,
        quota_sees_the_room_a_purge_freed_at_once,
        what_a_node_keeps_is_forgotten_when_it_learns_of_a_write_elsewhere,
        an_announced_revision_is_not_replaced_by_an_older_one_read_later,
        a_revision_from_before_the_library_is_searched_in_its_stored_text,
        a_sharing_fact_replicated_late_never_overrides_a_newer_one,
    ],
);

async fn an_address_is_owned_by_its_first_registration(store: &dyn Store) {
    let id = account(store, "Ann@School.org").await;
    let again = store
        .create_account(&Email::parse("ann@school.org").unwrap(), "B", "h", false)
        .await;
    assert!(matches!(again, Err(StoreError::EmailTaken)));
    let record = store.login_record("ann@school.org").await.unwrap().unwrap();
    assert_eq!(record.account.id, id);
    assert_eq!(record.account.email, "Ann@School.org");
    assert_eq!(record.password_hash, "$argon2id$fake");
    assert!(store
        .login_record("bob@school.org")
        .await
        .unwrap()
        .is_none());
}

async fn sessions_end_by_expiry_revocation_password_change_and_disabling(store: &dyn Store) {
    let id = account(store, "s@school.org").await;
    let open = |hash: &str, expires_at_ms| NewSession {
        id: Uuid::now_v7(),
        token_hash: hash.into(),
        account_id: id,
        expires_at_ms,
        family: None,
    };
    let s1 = store.create_session(open("h1", 2_000)).await.unwrap();
    assert_eq!(store.session("h1", 1_999).await.unwrap().unwrap().id, s1);
    assert!(
        store.session("h1", 2_000).await.unwrap().is_none(),
        "expired"
    );

    store.create_session(open("h2", i64::MAX)).await.unwrap();
    let s2 = store.session("h2", 0).await.unwrap().unwrap().id;
    store.revoke_session(s2).await.unwrap();
    assert!(store.session("h2", 0).await.unwrap().is_none(), "revoked");

    store.create_session(open("h3", i64::MAX)).await.unwrap();
    store.set_password(id, "$argon2id$new").await.unwrap();
    assert!(
        store.session("h3", 0).await.unwrap().is_none(),
        "older than the password"
    );
    store.create_session(open("h4", i64::MAX)).await.unwrap();
    assert!(store.session("h4", 0).await.unwrap().is_some());
    assert_eq!(
        store
            .login_record("s@school.org")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );

    assert!(store.set_account_disabled(id, true).await.unwrap().disabled);
    assert!(store.session("h4", 0).await.unwrap().is_none(), "disabled");
    assert!(
        !store
            .set_account_disabled(id, false)
            .await
            .unwrap()
            .disabled
    );
    assert!(
        store.session("h4", 0).await.unwrap().is_some(),
        "enabled again"
    );
}

async fn a_revocation_ends_the_whole_session_family(store: &dyn Store) {
    let id = account(store, "f@school.org").await;
    let open = |hash: &str, family| NewSession {
        id: Uuid::now_v7(),
        token_hash: hash.into(),
        account_id: id,
        expires_at_ms: i64::MAX,
        family,
    };
    let login = store.create_session(open("f1", None)).await.unwrap();
    store.create_session(open("f2", Some(login))).await.unwrap();
    let renewed = store.session("f2", 0).await.unwrap().unwrap();
    assert_eq!(renewed.family, login);
    let other = store.create_session(open("f3", None)).await.unwrap();
    assert_eq!(store.session("f3", 0).await.unwrap().unwrap().family, other);

    store.revoke_session(login).await.unwrap();
    assert!(store.session("f1", 0).await.unwrap().is_none());
    assert!(
        store.session("f2", 0).await.unwrap().is_none(),
        "the renewal ends too"
    );
    assert!(
        store.session("f3", 0).await.unwrap().is_some(),
        "another login stays"
    );
    let live = store.live_sessions(&[login, other], 0).await.unwrap();
    assert_eq!(live, [other].into_iter().collect());
}

async fn open_sessions_are_checked_in_one_go_when_the_change_mark_moves(store: &dyn Store) {
    let id = account(store, "m@school.org").await;
    let other = account(store, "n@school.org").await;
    let open = |hash: &str, account_id, expires_at_ms| NewSession {
        id: Uuid::now_v7(),
        token_hash: hash.into(),
        account_id,
        expires_at_ms,
        family: None,
    };
    let short = store.create_session(open("m1", id, 5_000)).await.unwrap();
    let kept = store
        .create_session(open("m2", id, i64::MAX))
        .await
        .unwrap();
    let revoked = store
        .create_session(open("m3", id, i64::MAX))
        .await
        .unwrap();
    let theirs = store
        .create_session(open("n1", other, i64::MAX))
        .await
        .unwrap();
    let all = [short, kept, revoked, theirs];
    let live = |now| async move { store.live_sessions(&all, now).await.unwrap() };
    assert_eq!(live(0).await.len(), 4);
    assert!(!live(5_000).await.contains(&short), "expired");

    let mark = store.session_change_mark().await.unwrap();
    assert_eq!(store.session_change_mark().await.unwrap(), mark);
    store.revoke_session(revoked).await.unwrap();
    let after_logout = store.session_change_mark().await.unwrap();
    assert_ne!(after_logout, mark, "a logout moves the mark");
    assert!(!live(0).await.contains(&revoked));

    store.set_account_disabled(other, true).await.unwrap();
    let after_disable = store.session_change_mark().await.unwrap();
    assert_ne!(after_disable, after_logout, "disabling moves the mark");
    assert_eq!(live(0).await, [short, kept].into_iter().collect());

    store.set_password(id, "$argon2id$new").await.unwrap();
    assert_ne!(store.session_change_mark().await.unwrap(), after_disable);
    assert!(
        live(0).await.is_empty(),
        "a new password ends the older sessions"
    );
}

async fn edits_are_new_revisions_and_stale_edits_conflict(store: &dyn Store) {
    let owner = account(store, "o@school.org").await;
    let v1 = store.create_lesson(owner, &lesson("One", 1)).await.unwrap();
    let edit = |expected, content| LessonEdit {
        expected,
        content,
        restored_from: None,
        keep_folder: false,
        keep_theme: false,
    };
    let v2 = store
        .save_lesson(owner, v1.id, edit(Some(v1.revision), lesson("Two", 2)))
        .await
        .unwrap();
    assert!(v2.updated > v1.updated);
    let stale = store
        .save_lesson(owner, v1.id, edit(Some(v1.revision), lesson("Lost", 0)))
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current }) if current == v2.revision)
    );
    assert_eq!(
        store.lesson(owner, v1.id).await.unwrap().content.title,
        "Two"
    );
    let history = store.revisions(owner, v1.id).await.unwrap();
    let titles: Vec<_> = history.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(titles, ["Two", "One"]);
    assert_eq!(
        store.revision(owner, v1.id, v1.revision).await.unwrap(),
        v1.content
    );
}

async fn lessons_are_invisible_to_other_owners(store: &dyn Store) {
    let owner = account(store, "mine@school.org").await;
    let other = account(store, "theirs@school.org").await;
    let l = store
        .create_lesson(owner, &lesson("Mine", 0))
        .await
        .unwrap();
    let edit = LessonEdit {
        expected: None,
        content: lesson("Theirs", 0),
        restored_from: None,
        keep_folder: false,
        keep_theme: false,
    };
    assert!(matches!(
        store.lesson(other, l.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.save_lesson(other, l.id, edit).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_lesson(other, l.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revisions(other, l.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revision(other, l.id, l.revision).await,
        Err(StoreError::NotFound)
    ));
    let listed = store
        .list_lessons(
            other,
            &LessonFilter::default(),
            LessonOrder::Updated,
            None,
            10,
        )
        .await
        .unwrap();
    assert!(listed.is_empty());
}

async fn listing_pages_without_gaps_or_repeats(store: &dyn Store) {
    let owner = account(store, "p@school.org").await;
    for i in 0..7 {
        // Equal titles: the id breaks the tie, so no lesson is skipped or listed twice.
        store
            .create_lesson(owner, &lesson(&format!("T{}", i % 3), i))
            .await
            .unwrap();
    }
    for order in [LessonOrder::Updated, LessonOrder::Title] {
        let mut seen = Vec::new();
        let mut cursor: Option<LessonCursor> = None;
        loop {
            let page = store
                .list_lessons(owner, &LessonFilter::default(), order, cursor.as_ref(), 3)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some(match order {
                LessonOrder::Updated => LessonCursor::Updated {
                    version: last.updated,
                    id: last.id,
                },
                LessonOrder::Title => LessonCursor::Title {
                    title_key: last.title_key.clone(),
                    id: last.id,
                },
            });
            seen.extend(page.iter().map(|s| (s.title_key.clone(), s.updated, s.id)));
        }
        assert_eq!(seen.len(), 7, "{order:?}");
        let mut sorted = seen.clone();
        match order {
            LessonOrder::Updated => sorted.sort_by_key(|s| std::cmp::Reverse((s.1, s.2))),
            LessonOrder::Title => sorted.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2))),
        }
        assert_eq!(seen, sorted, "{order:?}");
    }
}

async fn deletion_is_a_tombstone(store: &dyn Store) {
    let owner = account(store, "d@school.org").await;
    let l = store
        .create_lesson(owner, &lesson("Gone", 1))
        .await
        .unwrap();
    store.delete_lesson(owner, l.id).await.unwrap();
    assert!(matches!(
        store.lesson(owner, l.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_lesson(owner, l.id).await,
        Err(StoreError::NotFound)
    ));
    let listed = store
        .list_lessons(
            owner,
            &LessonFilter::default(),
            LessonOrder::Title,
            None,
            10,
        )
        .await
        .unwrap();
    assert!(listed.is_empty());
}

async fn migrating_twice_applies_nothing(store: &dyn Store) {
    assert!(store.migrate().await.unwrap().is_empty());
    assert!(store
        .databases()
        .await
        .iter()
        .all(|d| d.answering && d.active));
}

#[tokio::test]
async fn the_sqlite_schema_follows_the_replication_rules() {
    let (_store, db) = sqlite().await;
    let mut conn = sqlx::SqliteConnection::connect(&db.url()).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         AND name NOT IN ('_sqlx_migrations', 'schema_migration', 'local_node') ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    let mut expected: Vec<String> = REPLICATED.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        tables, expected,
        "every replicated table is guarded by this suite"
    );
    for table in &tables {
        let unique: Vec<String> = sqlx::query(&format!(
            "SELECT name FROM pragma_index_list('{table}') WHERE \"unique\" = 1 AND origin != 'pk'"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("name"))
        .collect();
        assert!(unique.is_empty(), "{table} has UNIQUE indexes {unique:?}");
        let sql: String = sqlx::query("SELECT sql FROM sqlite_master WHERE name = ?")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get("sql");
        assert!(
            !sql.to_uppercase().contains("AUTOINCREMENT"),
            "{table} uses a sequence"
        );
    }
}

async fn media_is_stored_once_in_chunks_and_counted_for_each_uploader(store: &dyn Store) {
    use classcast::store::{Media, MEDIA_CHUNK};
    let (first, second) = (
        account(store, "m1@school.org").await,
        account(store, "m2@school.org").await,
    );
    let id = "ab".repeat(32);
    assert_eq!(store.media(&id).await.unwrap(), None);
    let whole: Vec<u8> = (0..MEDIA_CHUNK + 10).map(|i| (i % 251) as u8).collect();
    let (head, tail) = whole.split_at(MEDIA_CHUNK);
    store.insert_media_chunk(&id, 0, head).await.unwrap();
    store.insert_media_chunk(&id, 1, tail).await.unwrap();
    store.insert_media_chunk(&id, 0, head).await.unwrap(); // a second upload of it
    let media = Media {
        id: id.clone(),
        media_type: "image/png".into(),
        size: whole.len() as u64,
        chunks: 2,
    };
    for uploader in [first, first, second] {
        store.insert_media(&media, uploader).await.unwrap();
    }
    assert_eq!(store.media(&id).await.unwrap(), Some(media.clone()));
    let mut read = store.media_chunk(&id, 0).await.unwrap();
    read.extend(store.media_chunk(&id, 1).await.unwrap());
    assert_eq!(read, whole, "byte-exact");
    assert!(matches!(
        store.media_chunk(&id, 2).await,
        Err(StoreError::NotFound)
    ));
    // Its bytes once, and what its rows take.
    let costs = media.size + store::MEDIA_FILE_OVERHEAD;
    assert_eq!(store.media_bytes(first).await.unwrap(), costs, "once");
    assert_eq!(store.media_bytes(second).await.unwrap(), costs);
    let nobody = account(store, "m3@school.org").await;
    assert_eq!(store.media_bytes(nobody).await.unwrap(), 0);
    assert!(store.uploaded(first, &id).await.unwrap());
    assert!(!store.uploaded(nobody, &id).await.unwrap());

    // A preview, made once; one made later (on another node, say) does not replace it.
    use classcast::store::Preview;
    assert_eq!(store.media_preview(&id).await.unwrap(), None);
    let preview = |bytes: &[u8]| Preview {
        media_type: "image/jpeg".into(),
        bytes: bytes.to_vec(),
    };
    store
        .insert_media_preview(&id, &preview(b"first"))
        .await
        .unwrap();
    store
        .insert_media_preview(&id, &preview(b"second"))
        .await
        .unwrap();
    assert_eq!(
        store.media_preview(&id).await.unwrap(),
        Some(preview(b"first"))
    );
}

async fn the_newest_states_of_many_boards_are_read_at_once(store: &dyn Store) {
    let (one, two, quiet) = (
        store.create_board("token-one").await.unwrap(),
        store.create_board("token-two").await.unwrap(),
        store.create_board("token-quiet").await.unwrap(),
    );
    let mut newest = std::collections::HashMap::new();
    for (board, slides) in [(one, 3), (two, 2)] {
        let mut state = BoardState::idle(board);
        for slide in 0..slides {
            state.slide_index = slide;
            let Saved::New(v) = store
                .save_board_state(Uuid::now_v7(), &state)
                .await
                .unwrap()
            else {
                panic!("a new command is stored")
            };
            newest.insert(board, (v.0, slide));
        }
    }
    let boards = [one, two, quiet];
    let versions = store.board_state_versions(&boards).await.unwrap();
    assert_eq!(versions.len(), 2, "a board without a state has no version");
    let mut states = store.board_states(&boards).await.unwrap();
    states.sort_by_key(|s| s.board);
    assert_eq!(states.len(), 2);
    for state in states {
        let (version, slide) = newest[&state.board];
        assert_eq!((state.version, state.slide_index), (version, slide));
        assert_eq!(versions[&state.board], version);
    }
}

async fn a_code_drawn_twice_belongs_to_the_newer_board(store: &dyn Store) {
    let older = store.create_board("token-a").await.unwrap();
    let newer = store.create_board("token-b").await.unwrap();
    assert_eq!(store.board_by_token("token-a").await.unwrap(), Some(older));
    store.issue_code(older, "123456", i64::MAX).await.unwrap();
    assert_eq!(
        store
            .resolve_code("123456", 0)
            .await
            .unwrap()
            .unwrap()
            .board,
        older
    );
    store.issue_code(newer, "123456", i64::MAX).await.unwrap();
    assert_eq!(
        store
            .resolve_code("123456", 0)
            .await
            .unwrap()
            .unwrap()
            .board,
        newer
    );
    assert!(
        store.current_code(older, 0).await.unwrap().is_none(),
        "the older board must draw again"
    );
    let fresh = store.issue_code(older, "654321", 1_000).await.unwrap();
    assert_eq!(store.current_code(older, 999).await.unwrap(), Some(fresh));
    assert!(
        store.current_code(older, 1_000).await.unwrap().is_none(),
        "expired"
    );
}

async fn a_code_pairs_once_and_pairings_are_versioned(store: &dyn Store) {
    let teacher = account(store, "pair@school.org").await;
    let board = store.create_board("token-p").await.unwrap();
    let code = store.issue_code(board, "111222", i64::MAX).await.unwrap();
    let pairing = store.pair_board(teacher, &code, "Room 1").await.unwrap();
    assert_eq!(pairing.name, "Room 1");
    assert!(matches!(
        store.pair_board(teacher, &code, "Again").await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store.resolve_code("111222", 0).await.unwrap().is_none(),
        "a used code resolves no more"
    );
    store.rename_board(teacher, board, "Room 2").await.unwrap();
    assert_eq!(store.boards_of(teacher).await.unwrap()[0].name, "Room 2");
    assert_eq!(store.board_teachers(board).await.unwrap(), ["Teacher"]);
    store.unpair_board(teacher, board).await.unwrap();
    assert!(store.boards_of(teacher).await.unwrap().is_empty());
    assert!(matches!(
        store.board_pairing(teacher, board).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.unpair_board(teacher, board).await,
        Err(StoreError::NotFound)
    ));
}

async fn board_states_are_versioned_and_commands_remembered(store: &dyn Store) {
    let board = store.create_board("token-s").await.unwrap();
    assert!(store.board_state(board).await.unwrap().is_none());
    let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
    let mut state = BoardState::idle(board);
    let Saved::New(v1) = store.save_board_state(c1, &state).await.unwrap() else {
        panic!("a new command is stored")
    };
    state.blanked = true;
    let Saved::New(v2) = store.save_board_state(c2, &state).await.unwrap() else {
        panic!("a new command is stored")
    };
    assert!(v2 > v1);
    let current = store.board_state(board).await.unwrap().unwrap();
    assert!(current.blanked);
    assert_eq!(current.version, v2.0);
    // A resend of the first command writes nothing and answers its first outcome.
    state.revealed = true;
    let again = store.save_board_state(c1, &state).await.unwrap();
    assert_eq!(again, Saved::Before { board, version: v1 });
    assert!(!store.board_state(board).await.unwrap().unwrap().revealed);
    assert_eq!(store.command_outcome(c2).await.unwrap(), Some((board, v2)));
    assert_eq!(store.command_outcome(Uuid::now_v7()).await.unwrap(), None);
    // The versions the board had, and only those.
    assert!(store.had_board_state(board, v1.0).await.unwrap());
    assert!(store.had_board_state(board, v2.0).await.unwrap());
    assert!(!store.had_board_state(board, v2.0 + 1).await.unwrap());
    let other = store.create_board("token-s2").await.unwrap();
    assert!(!store.had_board_state(other, v1.0).await.unwrap());
}

/// Commands saved at the same moment (as when a whole school presses "next"), among them a
/// command sent twice and a resend of one stored earlier: each new command gets its own,
/// increasing version; the repeats get the first outcome and change nothing.
async fn simultaneous_commands_each_get_their_own_outcome(store: &dyn Store) {
    let boards = [
        store.create_board("token-b1").await.unwrap(),
        store.create_board("token-b2").await.unwrap(),
    ];
    let earlier = Uuid::now_v7();
    let Saved::New(v0) = store
        .save_board_state(earlier, &BoardState::idle(boards[0]))
        .await
        .unwrap()
    else {
        panic!("a new command is stored")
    };
    let twice = Uuid::now_v7();
    let mut sent: Vec<(Uuid, BoardState)> = (0..40u32)
        .map(|i| {
            let mut state = BoardState::idle(boards[i as usize % 2]);
            state.slide_index = i + 1;
            (
                if i == 7 || i == 21 {
                    twice
                } else {
                    Uuid::now_v7()
                },
                state,
            )
        })
        .collect();
    let mut resent = BoardState::idle(boards[0]);
    resent.blanked = true;
    sent.push((earlier, resent));
    let outcomes = futures_util::future::join_all(
        sent.iter()
            .map(|(id, state)| store.save_board_state(*id, state)),
    )
    .await;
    let outcomes: Vec<Saved> = outcomes.into_iter().map(Result::unwrap).collect();

    assert_eq!(
        outcomes[40],
        Saved::Before {
            board: boards[0],
            version: v0
        }
    );
    let Saved::New(first) = outcomes[7] else {
        panic!("the first of a repeated command is new: {:?}", outcomes[7])
    };
    assert_eq!(
        outcomes[21],
        Saved::Before {
            board: boards[1],
            version: first
        },
        "the repeat is answered with the first outcome"
    );
    for board in boards {
        let mut versions: Vec<(i64, u32)> = sent
            .iter()
            .zip(&outcomes)
            .filter(|((_, state), _)| state.board == board)
            .filter_map(|((_, state), outcome)| match outcome {
                Saved::New(v) => Some((v.0, state.slide_index)),
                Saved::Before { .. } => None,
            })
            .collect();
        assert_eq!(versions.len(), if board == boards[0] { 20 } else { 19 });
        versions.sort();
        versions.dedup_by_key(|v| v.0);
        assert_eq!(
            versions.len(),
            if board == boards[0] { 20 } else { 19 },
            "versions are distinct"
        );
        assert!(versions[0].0 > v0.0 || board != boards[0]);
        let newest = store.board_state(board).await.unwrap().unwrap();
        let (version, slide) = *versions.last().unwrap();
        assert_eq!((newest.version, newest.slide_index), (version, slide));
        assert!(!newest.blanked, "the resend changed nothing");
    }
}

async fn a_revoked_board_is_gone_for_its_token_and_every_teacher(store: &dyn Store) {
    let first = account(store, "first@school.org").await;
    let second = account(store, "second@school.org").await;
    let stranger = account(store, "stranger@school.org").await;
    let board = store.create_board("token-revoked").await.unwrap();
    for (teacher, digits) in [(first, "666666"), (second, "777777")] {
        let code = store.issue_code(board, digits, i64::MAX).await.unwrap();
        store.pair_board(teacher, &code, "Room").await.unwrap();
    }
    assert!(matches!(
        store.revoke_board(stranger, board).await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.board_revoked(board).await.unwrap());

    store.revoke_board(first, board).await.unwrap();
    assert!(store.board_revoked(board).await.unwrap());
    assert_eq!(store.board_by_token("token-revoked").await.unwrap(), None);
    assert!(store.board_teachers(board).await.unwrap().is_empty());
    for teacher in [first, second] {
        assert!(store.boards_of(teacher).await.unwrap().is_empty());
        assert!(matches!(
            store.board_pairing(teacher, board).await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(matches!(
        store.revoke_board(second, board).await,
        Err(StoreError::NotFound)
    ));
}

/// Writes a board state as replication would: a row made by another node, with its version.
async fn replicate_state(db: &Db, board: Uuid, command: Uuid, version: i64, slide: u32) {
    let mut state = BoardState::idle(board);
    state.slide_index = slide;
    db.insert(
        "INSERT INTO board_state (id, board_id, command_id, state, version, node)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(board),
            Bind::Id(command),
            Bind::Json(state.stored_json()),
            Bind::Int(version),
            Bind::Id(Uuid::now_v7()),
        ],
    )
    .await;
}

async fn a_state_that_arrived_by_replication_is_never_overtaken_by_an_older_version(db: Db) {
    let (store, db) = guarded(db).await;
    let board = store.create_board("token-r").await.unwrap();
    let state = BoardState::idle(board);
    let Saved::New(mine) = store
        .save_board_state(Uuid::now_v7(), &state)
        .await
        .unwrap()
    else {
        panic!("a new command is stored")
    };
    // Another node, its clock a minute ahead, stored a newer state of the same board; this
    // node's writer remembers `mine` as the newest.
    let theirs = mine.0 + (60_000 << 10);
    replicate_state(&db, board, Uuid::now_v7(), theirs, 7).await;
    let Saved::New(next) = store
        .save_board_state(Uuid::now_v7(), &state)
        .await
        .unwrap()
    else {
        panic!("a new command is stored")
    };
    assert!(next.0 > theirs, "{next:?} is above the replicated {theirs}");
    assert_eq!(
        store.board_state(board).await.unwrap().unwrap().version,
        next.0
    );
}

async fn a_command_stored_on_two_nodes_answers_its_earliest_outcome_everywhere(db: Db) {
    let (store, db) = guarded(db).await;
    let board = store.create_board("token-twice").await.unwrap();
    let command = Uuid::now_v7();
    let Saved::New(here) = store
        .save_board_state(command, &BoardState::idle(board))
        .await
        .unwrap()
    else {
        panic!("a new command is stored")
    };
    // The resend reached another node too, which stored it later ...
    replicate_state(&db, board, command, here.0 + 5, 1).await;
    let expected = Saved::Before {
        board,
        version: here,
    };
    let again = store
        .save_board_state(command, &BoardState::idle(board))
        .await;
    assert_eq!(again.unwrap(), expected);
    // ... or earlier: then that one is the outcome, here as there.
    let other = Uuid::now_v7();
    replicate_state(&db, board, other, here.0 + 7, 2).await;
    replicate_state(&db, board, other, here.0 + 6, 3).await;
    let outcome = store.command_outcome(other).await.unwrap();
    assert_eq!(
        outcome,
        Some((board, classcast::domain::hlc::Version(here.0 + 6)))
    );
}

async fn a_rename_made_elsewhere_undoes_neither_a_disable_nor_an_unpairing(db: Db) {
    let (store, db) = guarded(db).await;
    let teacher = account(&*store, "facts@school.org").await;
    let disabled = store.set_account_disabled(teacher, true).await.unwrap();
    assert!(disabled.disabled);
    let board = store.create_board("token-facts").await.unwrap();
    let code = store.issue_code(board, "424242", i64::MAX).await.unwrap();
    let paired = store.pair_board(teacher, &code, "Room 1").await.unwrap();
    store.unpair_board(teacher, board).await.unwrap();

    // Another node renamed both a minute later by its clock, without having seen either.
    let later = Bind::Int(paired.paired.0 + (60_000 << 10));
    db.insert(
        "INSERT INTO account_name (id, account_id, name, version, node) VALUES (?, ?, ?, ?, ?)",
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(teacher),
            Bind::Text("Renamed".into()),
            Bind::Int(paired.paired.0 + (60_000 << 10)),
            Bind::Id(Uuid::now_v7()),
        ],
    )
    .await;
    db.insert(
        "INSERT INTO board_name (id, board_id, account_id, name, version, node)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(board),
            Bind::Id(teacher),
            Bind::Text("Room 2".into()),
            later,
            Bind::Id(Uuid::now_v7()),
        ],
    )
    .await;

    let now = store.account(teacher).await.unwrap();
    assert_eq!(now.name, "Renamed");
    assert!(now.disabled, "the rename did not enable the account");
    assert!(
        store.boards_of(teacher).await.unwrap().is_empty(),
        "still unpaired"
    );
    assert!(matches!(
        store.board_pairing(teacher, board).await,
        Err(StoreError::NotFound)
    ));
}

/// Media stored before schema 12 (SQLite) / 4 (PostgreSQL), keyed by their SHA-256 in
/// `media` and `media_chunk`, as those databases hold them.
async fn media_an_earlier_release_keyed_by_content_is_still_read_counted_and_purged(db: Db) {
    use classcast::store::Media;
    let node = Node::new(Uuid::now_v7());
    let mine = NodeIds::new(node.id, []);
    let store = db.open(&node).await;
    let owner = account(store.as_ref(), "legacy@school.org").await;
    let (named, unnamed) = ("dd".repeat(32), "ee".repeat(32));
    for id in [&named, &unnamed] {
        db.insert(
            "INSERT INTO media_chunk (id, media_id, n, bytes, version, node)
             VALUES (?, ?, ?, ?, ?, ?)",
            &[
                Bind::Text(format!("{id}/0")),
                Bind::Text(id.clone()),
                Bind::Int(0),
                Bind::Bytes(b"old".to_vec()),
                Bind::Int(1),
                Bind::Id(node.id),
            ],
        )
        .await;
        db.insert(
            "INSERT INTO media (id, media_type, size, chunks, version, node)
             VALUES (?, ?, ?, ?, ?, ?)",
            &[
                Bind::Text(id.clone()),
                Bind::Text("image/png".into()),
                Bind::Int(3),
                Bind::Int(1),
                Bind::Int(1),
                Bind::Id(node.id),
            ],
        )
        .await;
        db.insert(
            "INSERT INTO media_upload (id, media_id, account_id, version, node)
             VALUES (?, ?, ?, ?, ?)",
            &[
                Bind::Id(Uuid::now_v7()),
                Bind::Text(id.clone()),
                Bind::Id(owner),
                Bind::Int(1),
                Bind::Id(node.id),
            ],
        )
        .await;
    }
    let stored = |id: &str| Media {
        id: id.to_owned(),
        media_type: "image/png".into(),
        size: 3,
        chunks: 1,
    };
    assert_eq!(store.media(&named).await.unwrap(), Some(stored(&named)));
    assert_eq!(store.media_chunk(&named, 0).await.unwrap(), b"old");
    let overhead = store::MEDIA_FILE_OVERHEAD;
    assert_eq!(store.media_bytes(owner).await.unwrap(), 6 + 2 * overhead);
    // Uploading it again stores no second copy.
    store.insert_media(&stored(&named), owner).await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM media_file").await, 0);
    assert_eq!(store.media_bytes(owner).await.unwrap(), 6 + 2 * overhead);

    let slides = vec![SlideInput {
        kind: "image".into(),
        media: Some(named.clone()),
        ..Default::default()
    }];
    let content = LessonContent::parse("An old picture", slides).unwrap();
    store.create_lesson(owner, &content).await.unwrap();
    let later = classcast::domain::hlc::Version(i64::MAX);
    assert_eq!(store.purge_media(&mine, later).await.unwrap(), 1);
    assert_eq!(store.media_chunk(&named, 0).await.unwrap(), b"old");
    assert!(store.media(&unnamed).await.unwrap().is_none());
    assert!(matches!(
        store.media_chunk(&unnamed, 0).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.media_bytes(owner).await.unwrap(), 3 + overhead);
}

#[tokio::test]
async fn the_postgres_schema_mirrors_sqlite_and_follows_the_replication_rules() {
    if lacks_tools("postgres") {
        return;
    }
    use std::collections::BTreeMap;
    let server = pg_server::PgServer::start();
    let url = server.create("classcast").await;
    let mut pg = sqlx::PgConnection::connect(&url).await.unwrap();
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(migrations)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        sqlx::raw_sql(&std::fs::read_to_string(file).unwrap())
            .execute(&mut pg)
            .await
            .unwrap();
    }
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY 1, 2",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    let mut on_postgres: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        on_postgres
            .entry(row.get("t"))
            .or_default()
            .push(row.get("c"));
    }

    // The same tables and columns as SQLite after every migration.
    let (_store, db) = sqlite().await;
    let mut lite = sqlx::SqliteConnection::connect(&db.url()).await.unwrap();
    let rows = sqlx::query(
        "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
         AND m.name NOT IN ('_sqlx_migrations', 'schema_migration', 'local_node') ORDER BY 1, 2",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let mut on_sqlite: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        on_sqlite
            .entry(row.get("t"))
            .or_default()
            .push(row.get("c"));
    }
    assert_eq!(on_postgres, on_sqlite);
    let mut replicated: Vec<&str> = REPLICATED.to_vec();
    replicated.sort();
    assert_eq!(on_postgres.keys().collect::<Vec<_>>(), replicated);

    // No UNIQUE index but primary keys, no sequences, a version and a node on every row.
    let unique: Vec<String> = sqlx::query_scalar(
        "SELECT i.indexrelid::regclass::text FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND i.indisunique AND NOT i.indisprimary",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    assert!(unique.is_empty(), "UNIQUE indexes: {unique:?}");
    let sequences: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_sequences")
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!(sequences, 0);
    for (table, columns) in &on_postgres {
        for needed in ["id", "version", "node"] {
            assert!(columns.iter().any(|c| c == needed), "{table} has {needed}");
        }
    }
}
