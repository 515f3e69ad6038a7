//! Upgrades of the store suite: a database an earlier release made is migrated in place and
//! keeps everything it holds.

use super::*;

/// Runs `sql`, several statements, on `db` as an earlier release's migrator did.
async fn run_script(db: &Db, sql: &str) {
    match db {
        Db::Sqlite(_) => {
            let url = format!("{}?mode=rwc", db.url());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Db::Postgres(..) => {
            let mut conn = sqlx::PgConnection::connect(&db.url()).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// Makes `db` what the release before sqlx's migrator left: every migration of its engine
/// applied and recorded by name in `schema_migration`. Returns how many.
async fn as_the_previous_release_left_it(db: &Db) -> i64 {
    let (engine, bookkeeping) = match db {
        Db::Sqlite(_) => (
            "sqlite",
            "CREATE TABLE schema_migration (name TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)",
        ),
        Db::Postgres(..) => (
            "postgres",
            "CREATE TABLE schema_migration (name text PRIMARY KEY, applied_at bigint NOT NULL)",
        ),
    };
    run_script(db, bookkeeping).await;
    let dir = format!(
        "{}/src/store/migrations/{engine}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        run_script(db, &std::fs::read_to_string(file).unwrap()).await;
        let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
        db.insert(
            "INSERT INTO schema_migration (name, applied_at) VALUES (?, ?)",
            &[Bind::Text(name), Bind::Int(0)],
        )
        .await;
    }
    files.len().try_into().unwrap()
}

pub(super) async fn a_database_of_the_previous_release_upgrades_in_place(db: Db) {
    let applied = as_the_previous_release_left_it(&db).await;
    let (account, node) = (Uuid::now_v7(), Uuid::now_v7());
    for (sql, binds) in [
        (
            "INSERT INTO account (id, email, email_norm, version, node) VALUES (?, ?, ?, ?, ?)",
            vec![
                Bind::Id(account),
                Bind::Text("Old@School.org".into()),
                Bind::Text("old@school.org".into()),
                Bind::Int(1),
                Bind::Id(node),
            ],
        ),
        (
            "INSERT INTO account_name (id, account_id, name, version, node) VALUES (?, ?, ?, ?, ?)",
            vec![
                Bind::Id(Uuid::now_v7()),
                Bind::Id(account),
                Bind::Text("Kept".into()),
                Bind::Int(2),
                Bind::Id(node),
            ],
        ),
        (
            "INSERT INTO account_credential (id, account_id, password_hash, version, node)
             VALUES (?, ?, ?, ?, ?)",
            vec![
                Bind::Id(Uuid::now_v7()),
                Bind::Id(account),
                Bind::Text("$argon2id$kept".into()),
                Bind::Int(3),
                Bind::Id(node),
            ],
        ),
    ] {
        db.insert(sql, &binds).await;
    }

    let store = db.open(&Node::new(Uuid::now_v7())).await;
    let kept = store.login_record("old@school.org").await.unwrap().unwrap();
    assert_eq!(
        (kept.account.id, kept.account.name.as_str()),
        (account, "Kept")
    );
    assert_eq!(kept.password_hash, "$argon2id$kept");
    // Every migration the old record named is sqlx's now, none applied again; the old record
    // stays as it was for nodes of the previous release during a rolling upgrade.
    let recorded = db
        .count("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .await;
    assert_eq!(recorded, applied);
    let old_record = db.count("SELECT COUNT(*) FROM schema_migration").await;
    assert_eq!(old_record, applied);
    assert!(store.migrate().await.unwrap().is_empty());

    // A migration whose file changed since it was applied is refused, not run again.
    db.insert(
        "UPDATE _sqlx_migrations SET checksum = ? WHERE version = 1",
        &[Bind::Bytes(vec![0; 48])],
    )
    .await;
    let refused = store.migrate().await.unwrap_err();
    let reason = classcast::error_chain(&refused);
    assert!(
        reason.contains("previously applied but has been modified"),
        "{reason}"
    );
}

#[tokio::test]
async fn upgrading_to_one_row_per_fact_keeps_every_account_and_pairing_as_it_was() {
    // A database as schema 6 left it, with an approved, a disabled and a pending account,
    // a renamed one, and a standing and a removed pairing.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE schema_migration (name TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(migrations)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap() < "0007")
        .collect();
    files.sort();
    for file in &files {
        sqlx::raw_sql(&std::fs::read_to_string(file).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        let name = file.file_stem().unwrap().to_str().unwrap();
        sqlx::query("INSERT INTO schema_migration VALUES (?, 0)")
            .bind(name)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let board = Uuid::now_v7();
    let mut seed = String::new();
    for (i, (id, email)) in ids.iter().zip(["a", "b", "c", "d"]).enumerate() {
        seed += &format!(
            "INSERT INTO account VALUES ('{id}', '{email}@s.org', '{email}@s.org', {v}, 'n');
             INSERT INTO account_profile VALUES ('{p}', '{id}', {v}, 'n', 'Name {email}', {d}, {pe});",
            v = 1000 + i,
            p = Uuid::now_v7(),
            d = i32::from(i == 1 || i == 2),
            pe = i32::from(i == 2),
        );
    }
    // The fourth renamed itself later.
    seed += &format!(
        "INSERT INTO account_profile VALUES ('{}', '{}', 2000, 'n', 'Renamed d', 0, 0);
         INSERT INTO board VALUES ('{board}', 'hash', 1000, 'n');
         INSERT INTO board_pairing VALUES ('{}', '{board}', '{}', 'Room A', 0, 1100, 'n');
         INSERT INTO board_pairing VALUES ('{}', '{board}', '{}', 'Room B', 0, 1100, 'n');
         INSERT INTO board_pairing VALUES ('{}', '{board}', '{}', 'Room B', 1, 1200, 'n');",
        Uuid::now_v7(),
        ids[3],
        Uuid::now_v7(),
        ids[0],
        Uuid::now_v7(),
        ids[1],
        Uuid::now_v7(),
        ids[1],
    );
    sqlx::raw_sql(&seed).execute(&mut conn).await.unwrap();
    drop(conn);

    let store = store::open(std::slice::from_ref(&url), &Node::new(Uuid::now_v7()))
        .await
        .unwrap();
    let applied = store.migrate().await.unwrap();
    assert_eq!(
        applied.first().map(String::as_str),
        Some("0007_independent_facts")
    );
    let facts = |a: &classcast::store::Account| (a.name.clone(), a.disabled, a.pending);
    let mut seen = Vec::new();
    for id in &ids {
        seen.push(facts(&store.account(*id).await.unwrap()));
    }
    assert_eq!(
        seen,
        [
            ("Name a".to_owned(), false, false),
            ("Name b".to_owned(), true, false),
            ("Name c".to_owned(), true, true),
            ("Renamed d".to_owned(), false, false),
        ]
    );
    let kept = store.boards_of(ids[0]).await.unwrap();
    assert_eq!((kept.len(), kept[0].name.as_str()), (1, "Room A"));
    assert!(
        store.boards_of(ids[1]).await.unwrap().is_empty(),
        "the removed pairing"
    );
    // Approving the pending account still works on the new rows.
    let approved = store.set_account_disabled(ids[2], false).await.unwrap();
    assert!(!approved.disabled && !approved.pending);
}
