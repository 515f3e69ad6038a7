//! Cluster mode against real PostgreSQL servers: a node serving from PostgreSQL, and
//! `classcast cluster init` with pglogical (two-way replication set up once, bad setups
//! refused with one clear line before anything changes).

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;

use crate::eventually::eventually;
use crate::harness::{cli, fresh_client, text_slide, Process, TestApp};
use crate::live::{claim, classroom, pair, Ws, PATIENCE};
use crate::tools::{missing, Tool};
#[path = "../support/postgres.rs"]
pub(crate) mod postgres;
use postgres::PgServer;

/// Runs `classcast --database … cluster init`; returns (succeeded, stdout, stderr).
fn cluster_init(urls: &[&str]) -> (bool, String, String) {
    cluster(urls, &["init"])
}

/// Runs `classcast --database … cluster <command>`; returns (succeeded, stdout, stderr).
pub(crate) fn cluster(urls: &[&str], command: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = urls.iter().flat_map(|u| ["--database", *u]).collect();
    args.push("cluster");
    args.extend(command);
    let out = cli(dir.path(), &args, "");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

async fn boards(url: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT token_hash FROM board ORDER BY 1")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

async fn add_board(url: &str, token_hash: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(
        "INSERT INTO board (id, token_hash, version, node)
         VALUES (gen_random_uuid(), $1, 1, gen_random_uuid())",
    )
    .bind(token_hash)
    .execute(&mut conn)
    .await
    .unwrap();
}

/// Two PostgreSQL servers whose `classcast` databases replicate both ways, and their URLs.
pub(crate) async fn replicating_pair() -> (PgServer, PgServer, String, String) {
    let (a, b) = (PgServer::start(), PgServer::start());
    let (url_a, url_b) = (a.create("classcast").await, b.create("classcast").await);
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(ok, "{said}{errors}");
    (a, b, url_a, url_b)
}

/// Waits until the session `token` opens `/api/me` on the node at `base` (it was made through
/// another node, and replication brings it).
async fn until_signed_in(base: &str, token: &str) {
    eventually!(PATIENCE, Duration::from_millis(50), {
        let me = fresh_client()
            .get(format!("{base}/api/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        match me {
            reqwest::StatusCode::OK => Ok(()),
            other => Err(format!("the session never arrived at {base}: {other}")),
        }
    });
}

/// Two nodes on a [`replicating_pair`], each using its own database first and the other's
/// next, and clients of them; the servers and nodes run while this is held.
pub(crate) struct TwoNodes {
    pub app_1: TestApp,
    pub app_2: TestApp,
    /// The databases of node 1 and node 2, for [`until_replicated`].
    pub urls: [String; 2],
    _running: (Process, Process, PgServer, PgServer),
}

impl TwoNodes {
    /// The pair running; `None` without PostgreSQL (the test is then skipped, and
    /// [`missing`] says so).
    pub(crate) async fn start() -> Option<TwoNodes> {
        if missing(&[Tool::Postgres]) {
            return None;
        }
        let (a, b, url_a, url_b) = replicating_pair().await;
        let (node_1, app_1) = node_on(&[&url_a, &url_b]);
        let (node_2, app_2) = node_on(&[&url_b, &url_a]);
        Some(TwoNodes {
            app_1,
            app_2,
            urls: [url_a, url_b],
            _running: (node_1, node_2, a, b),
        })
    }

    /// Waits until `sql` counts `expected` on both databases.
    pub(crate) async fn until_replicated(&self, sql: &str, expected: i64) {
        let urls = [self.urls[0].as_str(), self.urls[1].as_str()];
        until_replicated(&urls, sql, expected).await;
    }
}

/// A node serving from `urls`, and a client of it (which keeps the node's data directory).
pub(crate) fn node_on(urls: &[&str]) -> (Process, TestApp) {
    let data = tempfile::tempdir().unwrap();
    let flags: Vec<&str> = urls.iter().flat_map(|u| ["--database", *u]).collect();
    let node = Process::start_with(data.path(), &flags);
    let app = TestApp::of_process(&node, data);
    (node, app)
}

#[tokio::test]
async fn cluster_init_sets_up_two_way_replication_once() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (a, b) = (PgServer::start(), PgServer::start());
    let (url_a, url_b) = (a.create("classcast").await, b.create("classcast").await);
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(ok, "{said}{errors}");
    assert_eq!(said.matches("subscribed to").count(), 2, "{said}");
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(ok, "{errors}");
    assert!(said.starts_with("Nothing to change"), "{said}");

    // What is written on either database reaches the other, and nothing loops back.
    add_board(&url_a, "written on a").await;
    add_board(&url_b, "written on b").await;
    let both = vec!["written on a".to_owned(), "written on b".to_owned()];
    eventually!(PATIENCE * 3, Duration::from_millis(100), {
        let (on_a, on_b) = (boards(&url_a).await, boards(&url_b).await);
        match on_a == both && on_b == both {
            true => Ok(()),
            false => Err(format!("not replicated: {on_a:?} / {on_b:?}")),
        }
    });

    // `cluster status` says all is well, then that B is down; once B is back, rows written
    // on A meanwhile reach it, and `--repair` re-enables whatever did not resume by itself.
    let (ok, said, errors) = cluster(&[&url_a, &url_b], &["status"]);
    assert!(
        ok && said.contains("All databases answer and replicate"),
        "{said}{errors}"
    );
    assert_eq!(said.matches("replicating").count(), 2, "{said}");
    b.crash();
    let (ok, said, errors) = cluster(&[&url_a, &url_b], &["status"]);
    assert!(!ok && said.contains("NOT ANSWERING"), "{said}{errors}");
    add_board(&url_a, "written while b was down").await;
    b.start_again();
    eventually!(PATIENCE * 6, Duration::from_millis(500), {
        let (ok, said, errors) = cluster(&[&url_a, &url_b], &["status", "--repair"]);
        match ok && boards(&url_b).await.len() == 3 {
            true => Ok(()),
            false => Err(format!("never recovered: {said}{errors}")),
        }
    });
    assert_eq!(boards(&url_a).await, boards(&url_b).await);

    // A database of this cluster cannot be taken into another one.
    let c = PgServer::start();
    let url_c = c.create("classcast").await;
    let (ok, _, errors) = cluster_init(&[&url_a, &url_c]);
    assert!(!ok);
    assert!(
        errors.contains("another cluster") && errors.lines().count() == 1,
        "{errors}"
    );
}

#[tokio::test]
async fn cluster_init_refuses_a_bad_setup_in_one_line_and_changes_nothing() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let good = PgServer::start();
    let good_url = good.create("classcast").await;
    let mut cases: Vec<(&[&str], &str)> = vec![
        (&["wal_level=replica"], "wal_level = logical"),
        (
            &["shared_preload_libraries=''"],
            "shared_preload_libraries = 'pglogical'",
        ),
        (
            &["track_commit_timestamp=off"],
            "track_commit_timestamp = on",
        ),
        (&["max_slot_wal_keep_size=-1"], "max_slot_wal_keep_size"),
    ];
    // PostgreSQL 15.19 and later; where the server does not know the setting, nothing is
    // restricted and there is nothing to refuse.
    if postgres::restricts_output_plugins() {
        cases.push((
            &["output_plugin_libraries=pgoutput,test_decoding"],
            "output_plugin_libraries = 'pgoutput, test_decoding, pglogical_output'",
        ));
        // What `ALTER SYSTEM SET output_plugin_libraries = '…, pglogical_output'` makes:
        // one quoted name, which PostgreSQL does not read as a list.
        cases.push((
            &[r#"output_plugin_libraries='"pgoutput,pglogical_output"'"#],
            "output_plugin_libraries = 'pgoutput, test_decoding, pglogical_output'",
        ));
    }
    for (settings, named) in cases {
        let bad = PgServer::start_with(settings);
        let bad_url = bad.create("classcast").await;
        let (ok, _, errors) = cluster_init(&[&good_url, &bad_url]);
        assert!(!ok, "{settings:?} refused");
        assert!(
            errors.contains(named) && errors.lines().count() == 1,
            "{errors}"
        );
        // `cluster status` names the same line.
        let (ok, said, _) = cluster(&[&bad_url], &["status"]);
        assert!(!ok && said.contains(named), "{settings:?}: {said}");
    }
    // Another application's database.
    let theirs = PgServer::start();
    let their_url = theirs.create("shop").await;
    let mut conn = sqlx::PgConnection::connect(&their_url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE customers (id int PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .unwrap();
    let (ok, _, errors) = cluster_init(&[&good_url, &their_url]);
    assert!(!ok && errors.contains("customers"), "{errors}");
    // Nobody there, and one database alone.
    let nobody = theirs
        .url("classcast")
        .replace(&theirs.port.to_string(), "1");
    let (ok, _, errors) = cluster_init(&[&good_url, &nobody]);
    assert!(!ok && errors.contains("cannot connect"), "{errors}");
    let (ok, _, errors) = cluster_init(&[&good_url]);
    assert!(!ok && errors.contains("at least two"), "{errors}");

    // None of the refused runs touched the good database.
    let mut conn = sqlx::PgConnection::connect(&good_url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn cluster_status_says_why_a_subscription_is_down() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    if !postgres::restricts_output_plugins() {
        // Before PostgreSQL 15.19 no setting makes a provider refuse pglogical.
        return;
    }
    let (_a, mut b, url_a, url_b) = replicating_pair().await;
    // B's administrator takes pglogical's output plugin off B's list: A can no longer read
    // what B writes, and A's subscription to B goes down.
    b.restart_with(&["output_plugin_libraries=pgoutput,test_decoding"]);
    let said = eventually!(PATIENCE * 6, Duration::from_millis(300), {
        let (ok, said, errors) = cluster(&[&url_a, &url_b], &["status"]);
        match said.contains(": down (") {
            true => {
                assert!(!ok, "{said}");
                Ok(format!("{said}{errors}"))
            }
            false => Err(format!("never reported down: {said}{errors}")),
        }
    });
    let down = said
        .lines()
        .find(|l| l.contains("subscription") && l.contains(": down ("))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        down.contains("its provider refuses") && down.contains("output_plugin_libraries"),
        "{said}"
    );
    // B's own report names the line to add.
    assert!(said.contains("setting: output_plugin_libraries"), "{said}");
}

#[tokio::test]
async fn cluster_status_fails_on_a_row_that_differs_between_the_databases() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    add_board(&url_a, "written on a").await;
    eventually!(PATIENCE * 3, Duration::from_millis(100), {
        match boards(&url_b).await.is_empty() {
            false => Ok(()),
            true => Err("not replicated".to_owned()),
        }
    });
    let (ok, said, errors) = cluster(&[&url_a, &url_b], &["status"]);
    assert!(ok && said.contains("holds the same rows"), "{said}{errors}");

    // A change made on B that never reaches A: changes marked with a replication origin are
    // not forwarded (`forward_origins = '{}'`), as a conflict resolved differently on each
    // side would leave it.
    let mut conn = sqlx::PgConnection::connect(&url_b).await.unwrap();
    sqlx::raw_sql(
        "SELECT pg_replication_origin_create('tampered');
         SELECT pg_replication_origin_session_setup('tampered');
         UPDATE board SET version = version + 1;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (ok, said, errors) = cluster(&[&url_a, &url_b], &["status"]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("table board DIFFERS") && errors.contains("table board differs"),
        "{said}{errors}"
    );
    // Only that table.
    assert_eq!(said.matches("DIFFERS").count(), 1, "{said}");
}

#[tokio::test]
async fn commands_run_on_postgresql_leave_no_data_directory_behind() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let database = PgServer::start();
    let url = database.create("classcast").await;
    let somewhere = tempfile::tempdir().unwrap();
    let data_dir = somewhere.path().join("classcast-data");
    let run = |args: &[&str], stdin: &str| {
        let mut all = vec!["--database", url.as_str()];
        all.extend(args);
        let out = cli(&data_dir, &all, stdin);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["migrate"], "");
    run(
        &["user", "add", "it@school.org", "--name", "IT"],
        "a long enough password\n",
    );
    assert!(run(&["user", "list"], "").contains("it@school.org"));
    assert!(!data_dir.exists(), "a data directory was made");
}

#[tokio::test]
async fn a_node_serves_from_postgresql_and_keeps_everything_across_a_restart() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let database = PgServer::start();
    let url = database.create("classcast").await;
    let data = tempfile::tempdir().unwrap();
    let flags = ["--database", url.as_str()];
    let (t, board, acked) = {
        let node = Process::start_with(data.path(), &flags);
        let app = TestApp::of_process(&node, tempfile::tempdir().unwrap());
        let (t, board, lesson) = classroom(&app).await;
        let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
        let present = console
            .command(&board.id, "present", json!({"lesson": lesson}))
            .await;
        assert_eq!(present["type"], "ack", "{present}");
        let next = console.command(&board.id, "next", json!({})).await;
        assert_eq!(next["type"], "ack", "{next}");
        (t, board, next["version"].clone())
    };
    let node = Process::start_with(data.path(), &flags);
    let app = TestApp::of_process(&node, tempfile::tempdir().unwrap());
    let boards = app.get_json("/api/boards", &t).await;
    assert_eq!(boards["items"][0]["state_version"], acked);
    let mut screen = Ws::board(&app, &board).await;
    let state = screen.state_where(|s| s["version"] == acked).await;
    assert_eq!(state["slide_index"], 1);
    assert_eq!(state["lesson"]["title"], "Fractions");
}

pub(crate) async fn readiness(base: &str) -> Value {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Which database (by position) `/readyz` says the node uses, if it is ready.
pub(crate) async fn active_database(base: &str) -> Option<usize> {
    let ready = readiness(base).await;
    ready["databases"]
        .as_array()?
        .iter()
        .position(|d| d["active"] == true && d["answering"] == true)
}

#[tokio::test]
async fn a_node_moves_to_the_other_database_when_its_own_stops_and_back_when_it_returns() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (a, _b, url_a, url_b) = replicating_pair().await;
    let (_node, app) = node_on(&[&url_a, &url_b]);
    assert_eq!(
        active_database(&app.base).await,
        Some(0),
        "the first is preferred"
    );
    let t = app.register("failover@school.org").await;
    let lesson = app
        .create_lesson(
            &t,
            json!({"title": "Before", "slides": [text_slide("One")]}),
        )
        .await;
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    // Replication is asynchronous: the test waits until B has what A acknowledged.
    let mut on_b = sqlx::PgConnection::connect(&url_b).await.unwrap();
    eventually!(PATIENCE * 3, Duration::from_millis(100), {
        let revisions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lesson_revision")
            .fetch_one(&mut on_b)
            .await
            .unwrap();
        match revisions == 1 {
            true => Ok(()),
            false => Err("B never had the lesson".to_owned()),
        }
    });

    a.crash();
    let crashed = tokio::time::Instant::now();
    loop {
        let res = app
            .as_teacher(reqwest::Method::GET, &path, &t)
            .send()
            .await
            .unwrap();
        if res.status() == reqwest::StatusCode::OK {
            break;
        }
        assert_eq!(
            res.status(),
            reqwest::StatusCode::SERVICE_UNAVAILABLE,
            "a clean 503 meanwhile"
        );
        assert!(crashed.elapsed() < PATIENCE * 3, "still not serving from B");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("served from B {:?} after A crashed", crashed.elapsed());
    let res = app
        .as_teacher(reqwest::Method::POST, "/api/lessons", &t)
        .json(&json!({"title": "During", "slides": [text_slide("Two")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let ready = readiness(&app.base).await;
    assert_eq!(ready["databases"][0]["answering"], false, "{ready}");
    assert_eq!(ready["databases"][1]["active"], true, "{ready}");

    a.start_again();
    let back = tokio::time::Instant::now();
    while active_database(&app.base).await != Some(0) {
        assert!(back.elapsed() < PATIENCE * 3, "never went back to A");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("back on A {:?} after it started", back.elapsed());
}

#[tokio::test]
async fn a_database_that_can_never_catch_up_is_left_alone_and_named_for_rebuilding() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    // A keeps at most 1 MB of WAL for a database that is away.
    let (a, b) = (
        PgServer::start_with(&["max_slot_wal_keep_size=1MB"]),
        PgServer::start(),
    );
    let (url_a, url_b) = (a.create("classcast").await, b.create("classcast").await);
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(ok, "{said}{errors}");
    // The node prefers B.
    let (_node, app) = node_on(&[&url_b, &url_a]);
    assert_eq!(active_database(&app.base).await, Some(0));

    b.stop_fast();
    eventually!(PATIENCE * 3, Duration::from_millis(100), {
        match active_database(&app.base).await {
            Some(1) => Ok(()),
            other => Err(format!("never moved to A: {other:?}")),
        }
    });
    let t = app.register("while-b-was-away@school.org").await;
    let lesson = app
        .create_lesson(
            &t,
            json!({"title": "Made on A", "slides": [text_slide("One")]}),
        )
        .await;
    // A writes far more WAL than it keeps for B: B's slot on A loses what B missed.
    let mut on_a = sqlx::PgConnection::connect(&url_a).await.unwrap();
    let mut admin = sqlx::PgConnection::connect(&a.url("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE wal_filler (x text)")
        .execute(&mut admin)
        .await
        .unwrap();
    for round in 0.. {
        assert!(round < 20, "B's slot on A was never lost");
        sqlx::raw_sql(
            "INSERT INTO wal_filler SELECT repeat('x', 1000) FROM generate_series(1, 20000);
             SELECT pg_switch_wal(); CHECKPOINT;",
        )
        .execute(&mut admin)
        .await
        .unwrap();
        let lost: Option<bool> = sqlx::query_scalar(
            "SELECT bool_or(wal_status = 'lost') FROM pg_replication_slots
             WHERE plugin = 'pglogical_output'",
        )
        .fetch_one(&mut on_a)
        .await
        .unwrap();
        if lost == Some(true) {
            break;
        }
    }

    // B answers again, but the node stays on A and says why.
    b.start_again();
    eventually!(PATIENCE * 3, Duration::from_millis(100), {
        let ready = readiness(&app.base).await;
        assert_eq!(ready["databases"][1]["active"], true, "{ready}");
        let a = &ready["databases"][0];
        match a["answering"] == true && a["caught_up"] == false {
            true => {
                let why = a["cannot_catch_up"].as_str().unwrap();
                assert!(why.contains("max_slot_wal_keep_size"), "{ready}");
                Ok(())
            }
            false => Err(ready.to_string()),
        }
    });
    // What was made while B was away is served.
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    let res = app
        .as_teacher(reqwest::Method::GET, &path, &t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    // A node started now does not take B either, though B is its first choice.
    let (_late, late) = node_on(&[&url_b, &url_a]);
    assert_eq!(active_database(&late.base).await, Some(1));

    // `cluster status` and `cluster init` name B as the database to rebuild.
    let (ok, said, errors) = cluster(&[&url_a, &url_b], &["status"]);
    assert!(!ok, "{said}");
    let b_cannot = format!(":{}/classcast: subscription", b.port);
    let named = &errors[errors.find(&b_cannot).unwrap_or_else(|| panic!("{errors}"))..];
    assert!(
        named.contains("can never catch up") && named.contains("rebuild this database"),
        "{errors}"
    );
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(
        !ok && errors.contains("can never catch up"),
        "{said}{errors}"
    );
}

/// Waits until `sql` (a count) gives `expected` on every database.
pub(crate) async fn until_replicated(urls: &[&str], sql: &str, expected: i64) {
    for url in urls {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        eventually!(PATIENCE * 3, Duration::from_millis(100), {
            let found: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
            match found == expected {
                true => Ok(()),
                false => Err(format!("{url}: {sql} gave {found}")),
            }
        });
    }
}

#[tokio::test]
async fn two_nodes_on_two_databases_agree_on_one_owner_and_one_current_revision() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let (node_1, app_1) = node_on(&[&url_a]);
    let (node_2, app_2) = node_on(&[&url_b]);
    let urls = [url_a.as_str(), url_b.as_str()];

    // The same address registered through both nodes at the same moment.
    let register = |base: String, password: &'static str| async move {
        fresh_client()
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"email": "same@school.org", "name": "Same", "password": password}))
            .send()
            .await
            .unwrap()
            .status()
    };
    let (one, two) = tokio::join!(
        register(node_1.base.clone(), "correct horse battery one"),
        register(node_2.base.clone(), "correct horse battery two")
    );
    let created = [one, two]
        .iter()
        .filter(|s| **s == reqwest::StatusCode::CREATED)
        .count();
    assert!(created >= 1, "{one} {two}");
    until_replicated(&urls, "SELECT COUNT(*) FROM account", created as i64).await;
    // Exactly one password opens the account, the same one through either node.
    let mut opened = Vec::new();
    for base in [&node_1.base, &node_2.base] {
        for password in ["correct horse battery one", "correct horse battery two"] {
            let res = fresh_client()
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"email": "same@school.org", "password": password}))
                .send()
                .await
                .unwrap();
            if res.status() == reqwest::StatusCode::OK {
                opened.push(password);
            }
        }
    }
    assert_eq!(opened.len(), 2, "one password per node: {opened:?}");
    assert_eq!(opened[0], opened[1], "the same owner on both: {opened:?}");

    // A lesson saved through both nodes at the same moment ends with one current revision.
    let t = app_1.register("editor@school.org").await;
    let lesson = app_1
        .create_lesson(&t, json!({"title": "Draft", "slides": [text_slide("One")]}))
        .await;
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    until_replicated(&urls, "SELECT COUNT(*) FROM lesson_revision", 1).await;
    // Both based on the same version.
    let tag = format!("\"{}\"", lesson["version"].as_str().unwrap());
    let save = |app: &TestApp, title: &'static str| {
        app.as_teacher(reqwest::Method::PUT, &path, &t)
            .header("if-match", &tag)
            .json(&json!({"title": title, "slides": [text_slide("One")]}))
            .send()
    };
    let (first, second) = tokio::join!(save(&app_1, "From one"), save(&app_2, "From two"));
    // Each is saved, or refused as stale if the other's reached its database first.
    let statuses = [first.unwrap().status(), second.unwrap().status()];
    let saved = statuses
        .iter()
        .filter(|s| **s == reqwest::StatusCode::OK)
        .count();
    assert!(saved >= 1, "{statuses:?}");
    assert!(
        statuses.iter().all(
            |s| *s == reqwest::StatusCode::OK || *s == reqwest::StatusCode::PRECONDITION_FAILED
        ),
        "{statuses:?}"
    );
    until_replicated(
        &urls,
        "SELECT COUNT(*) FROM lesson_revision",
        1 + saved as i64,
    )
    .await;
    let seen_1 = app_1.get_json(&path, &t).await;
    let seen_2 = app_2.get_json(&path, &t).await;
    assert_eq!(seen_1["version"], seen_2["version"]);
    assert_eq!(seen_1["title"], seen_2["title"]);
}

#[tokio::test]
async fn one_pairing_code_accepted_by_two_nodes_at_once_pairs_exactly_one_teacher() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let (_node_1, app_1) = node_on(&[&url_a]);
    let (_node_2, app_2) = node_on(&[&url_b]);
    let urls = [url_a.as_str(), url_b.as_str()];
    let first = app_1.register("first@school.org").await;
    let second = app_2.register("second@school.org").await;
    let board = claim(&app_1).await;
    until_replicated(&urls, "SELECT COUNT(*) FROM session", 2).await;
    until_replicated(&urls, "SELECT COUNT(*) FROM board_code", 1).await;

    // B hears nothing from A for a moment, so both nodes accept the code: the race two
    // nodes can always lose, made certain.
    let subscriptions = |enable: bool| {
        let url_b = url_b.clone();
        async move {
            let mut on_b = sqlx::PgConnection::connect(&url_b).await.unwrap();
            let names: Vec<String> =
                sqlx::query_scalar("SELECT sub_name::text FROM pglogical.subscription")
                    .fetch_all(&mut on_b)
                    .await
                    .unwrap();
            let call = match enable {
                true => "SELECT pglogical.alter_subscription_enable($1, true)",
                false => "SELECT pglogical.alter_subscription_disable($1, true)",
            };
            for name in names {
                sqlx::query(call)
                    .bind(name)
                    .execute(&mut on_b)
                    .await
                    .unwrap();
            }
        }
    };
    subscriptions(false).await;
    let one = pair(&app_1, &first, &board.code, "Room 1").await;
    let two = pair(&app_2, &second, &board.code, "Room 2").await;
    assert_eq!(one.status(), reqwest::StatusCode::CREATED);
    assert_eq!(two.status(), reqwest::StatusCode::CREATED);
    subscriptions(true).await;
    until_replicated(&urls, "SELECT COUNT(*) FROM board_code_use", 2).await;

    // Through either node, exactly one of the two teachers has the board, the same one: the
    // first to use the code.
    let mut holders = Vec::new();
    for app in [&app_1, &app_2] {
        for (teacher, name) in [(&first, "first"), (&second, "second")] {
            let boards = app.get_json("/api/boards", teacher).await;
            if !boards["items"].as_array().unwrap().is_empty() {
                holders.push(name);
            }
        }
    }
    assert_eq!(holders.len(), 2, "one holder per node: {holders:?}");
    assert_eq!(holders[0], holders[1], "the same on both: {holders:?}");
}

/// Every replicated table's rows on the database at `url`, each row as its text.
pub(crate) async fn every_row(url: &str) -> Vec<(&'static str, Vec<String>)> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut tables = Vec::new();
    for table in classcast::store::postgres::REPLICATED_TABLES {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY 1"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
        tables.push((*table, rows));
    }
    tables
}

/// Per table, the rows one database holds and the other does not.
pub(crate) async fn differences(url_a: &str, url_b: &str) -> Vec<(&'static str, usize)> {
    let (on_a, on_b) = (every_row(url_a).await, every_row(url_b).await);
    on_a.iter()
        .zip(&on_b)
        .filter_map(|((table, a), (_, b))| {
            let only_a = a.iter().filter(|row| !b.contains(row)).count();
            let only_b = b.iter().filter(|row| !a.contains(row)).count();
            (only_a + only_b > 0).then_some((*table, only_a + only_b))
        })
        .collect()
}

/// A teacher saving lessons one after another through `app`, until told to stop; what it
/// counts.
#[derive(Default)]
struct Saving {
    saved: std::sync::Mutex<Vec<String>>,
    refused: std::sync::atomic::AtomicUsize,
    stop: std::sync::atomic::AtomicBool,
}

impl Saving {
    fn saved(&self) -> usize {
        self.saved.lock().unwrap().len()
    }

    async fn run(&self, app: &TestApp, t: &crate::harness::Teacher) {
        use std::sync::atomic::Ordering;
        while !self.stop.load(Ordering::Relaxed) {
            let res = app
                .as_teacher(reqwest::Method::POST, "/api/lessons", t)
                .json(&json!({"title": "Saved while a database stops", "slides": [text_slide("One")]}))
                .send()
                .await
                .unwrap();
            match res.status() {
                reqwest::StatusCode::CREATED => {
                    let lesson: Value = res.json().await.unwrap();
                    let id = lesson["id"].as_str().unwrap().to_owned();
                    self.saved.lock().unwrap().push(id);
                }
                reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(res.headers().contains_key("retry-after"));
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
                other => panic!("saving answered {other}: {}", res.text().await.unwrap()),
            }
            // A teacher's pace, not a load test: each save is one row set to compare.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `more` saves beyond `from` were acknowledged; returns how long it took.
    async fn until_saved(&self, from: usize, more: usize) -> Duration {
        let started = tokio::time::Instant::now();
        while self.saved() < from + more {
            assert!(
                started.elapsed() < PATIENCE * 3,
                "no saves acknowledged for {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }
}

/// A way to stop a database server.
pub(crate) type Stop = fn(&PgServer);

#[tokio::test]
async fn a_database_stopped_while_a_node_writes_catches_up_and_every_row_converges_unaided() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    let (a, _b, url_a, url_b) = replicating_pair().await;
    let (_node, app) = node_on(&[&url_a, &url_b]);
    let app = Arc::new(app);
    let t = app.register("outage@school.org").await;
    let saving = Arc::new(Saving::default());

    let stops: [(&str, Stop); 2] = [
        ("fast", PgServer::stop_fast),
        ("immediate", PgServer::crash),
    ];
    for (mode, stop) in stops {
        saving.stop.store(false, Ordering::Relaxed);
        let writer = {
            let (saving, app, t) = (saving.clone(), app.clone(), t.clone());
            tokio::spawn(async move { saving.run(&app, &t).await })
        };
        let before = saving.saved();
        saving.until_saved(before, 5).await;
        let before = saving.saved();
        stop(&a);
        let moved = saving.until_saved(before, 5).await;
        eprintln!("{mode} stop: saving again {moved:?} after the node's database stopped");
        let during = saving.saved();
        a.start_again();
        let back = tokio::time::Instant::now();
        while active_database(&app.base).await != Some(0) {
            assert!(back.elapsed() < PATIENCE * 3, "never went back to A");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        saving.until_saved(during, 5).await;
        saving.stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();

        // Nobody re-enables anything: every row of every table reaches the other side.
        let mut differing = differences(&url_a, &url_b).await;
        while !differing.is_empty() && back.elapsed() < PATIENCE * 6 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            differing = differences(&url_a, &url_b).await;
        }
        let rows: usize = every_row(&url_a).await.iter().map(|(_, r)| r.len()).sum();
        eprintln!(
            "{mode} stop: {rows} rows, identical on both databases {:?} after A was back \
             (rows differing: {differing:?})",
            back.elapsed()
        );
        assert!(
            differing.is_empty(),
            "{mode} stop: rows differ: {differing:?}"
        );
    }

    // Every acknowledged save is on both databases.
    let saved = saving.saved.lock().unwrap().clone();
    for url in [&url_a, &url_b] {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let lessons: Vec<String> = sqlx::query_scalar("SELECT id::text FROM lesson")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(saved.iter().all(|id| lessons.contains(id)), "{url}");
    }
    eprintln!(
        "{} saves acknowledged, {} refused with 503 while the node moved",
        saved.len(),
        saving.refused.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn migrate_on_a_cluster_replicates_tables_the_replication_set_lacks() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    // As after an upgrade whose migration created a table since `cluster init`.
    for url in [&url_a, &url_b] {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(
            "SELECT pglogical.replication_set_remove_table('classcast', 'public.node_heartbeat')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let migrate = |urls: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<&str> = urls.iter().flat_map(|u| ["--database", *u]).collect();
        args.push("migrate");
        let out = cli(dir.path(), &args, "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = migrate(&[&url_a, &url_b]);
    assert_eq!(
        said.matches("replicating node_heartbeat on").count(),
        2,
        "{said}"
    );
    let mut on_a = sqlx::PgConnection::connect(&url_a).await.unwrap();
    sqlx::query(
        "INSERT INTO node_heartbeat (id, node, version)
         VALUES (gen_random_uuid(), gen_random_uuid(), 1)",
    )
    .execute(&mut on_a)
    .await
    .unwrap();
    until_replicated(&[&url_a, &url_b], "SELECT COUNT(*) FROM node_heartbeat", 1).await;
    let said = migrate(&[&url_a, &url_b]);
    assert!(said.contains("up to date"), "{said}");
}

#[tokio::test]
async fn three_databases_each_follow_the_two_others_and_a_database_cannot_join_one_with_data() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let servers = [PgServer::start(), PgServer::start(), PgServer::start()];
    let mut urls = Vec::new();
    for server in &servers {
        urls.push(server.create("classcast").await);
    }
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (ok, said, errors) = cluster_init(&urls);
    assert!(ok, "{said}{errors}");
    assert_eq!(said.matches("subscribed to").count(), 6, "{said}");
    let (ok, said, _) = cluster_init(&urls);
    assert!(ok && said.starts_with("Nothing to change"), "{said}");

    for (i, url) in urls.iter().enumerate() {
        add_board(url, &format!("written on {i}")).await;
    }
    until_replicated(&urls, "SELECT COUNT(*) FROM board", 3).await;
    for url in &urls {
        assert_eq!(boards(url).await, boards(urls[0]).await);
    }

    // A new, empty database would never receive the rows the others hold.
    let late = PgServer::start();
    let late_url = late.create("classcast").await;
    let (ok, _, errors) = cluster_init(&[urls[0], urls[1], urls[2], &late_url]);
    assert!(!ok);
    assert!(
        errors.contains("cannot add") && errors.lines().count() == 1,
        "{errors}"
    );
    let mut conn = sqlx::PgConnection::connect(&late_url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0, "nothing changed on the new database");
}

/// docs/deploy-cluster.md, "Rebuild a database", step 2: the survivor at `url` forgets the
/// lost database (its subscription, and the replication slot it read from).
pub(crate) async fn forget_lost_databases(url: &str) {
    let mut survivor = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(
        "SELECT pglogical.drop_subscription(sub_name) FROM pglogical.subscription;
         SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
         WHERE NOT active AND plugin = 'pglogical_output';",
    )
    .execute(&mut survivor)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_lost_database_is_rebuilt_into_a_new_one_that_copies_the_survivor() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, b, url_a, url_b) = replicating_pair().await;
    let (node, app) = node_on(&[&url_a, &url_b]);
    let t = app.register("rebuild@school.org").await;
    app.create_lesson(&t, json!({"title": "Kept", "slides": [text_slide("One")]}))
        .await;
    drop((node, app));
    b.crash();

    forget_lost_databases(&url_a).await;
    let c = PgServer::start();
    let url_c = c.create("classcast").await;
    let (ok, said, errors) = cluster_init(&[&url_a, &url_c]);
    assert!(ok, "{said}{errors}");
    assert!(said.contains("copied what"), "{said}");
    let differing = differences(&url_a, &url_c).await;
    assert!(differing.is_empty(), "rows differ: {differing:?}");
    assert_eq!(
        every_row(&url_c)
            .await
            .iter()
            .find(|(t, _)| *t == "lesson_revision")
            .unwrap()
            .1
            .len(),
        1
    );

    // The two follow each other from now on, and a second run changes nothing.
    add_board(&url_a, "written on a").await;
    add_board(&url_c, "written on c").await;
    until_replicated(&[&url_a, &url_c], "SELECT COUNT(*) FROM board", 2).await;
    let (ok, said, _) = cluster_init(&[&url_a, &url_c]);
    assert!(ok && said.starts_with("Nothing to change"), "{said}");
}

#[tokio::test]
async fn a_single_database_with_data_grows_into_a_cluster_whose_new_member_copies_it() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let a = PgServer::start();
    let url_a = a.create("classcast").await;
    let (node, app) = node_on(&[&url_a]);
    let t = app.register("grow@school.org").await;
    app.create_lesson(
        &t,
        json!({"title": "Before", "slides": [text_slide("One")]}),
    )
    .await;
    drop((node, app));
    let b = PgServer::start();
    let url_b = b.create("classcast").await;
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(ok && said.contains("copied what"), "{said}{errors}");
    let differing = differences(&url_a, &url_b).await;
    assert!(differing.is_empty(), "rows differ: {differing:?}");
    add_board(&url_b, "written on b").await;
    until_replicated(&[&url_a, &url_b], "SELECT COUNT(*) FROM board", 1).await;
}

/// The pglogical node name `cluster init` gives the database at `url`, as `cluster status`
/// reports it.
fn node_name(url: &str) -> String {
    let (_, said, errors) = cluster(&[url], &["status"]);
    let at = said
        .find(": node ")
        .unwrap_or_else(|| panic!("{said}{errors}"));
    said[at + ": node ".len()..]
        .split(',')
        .next()
        .unwrap()
        .to_owned()
}

/// Gives the database at `url` the pglogical node `cluster init` would, and nothing else.
async fn give_pglogical_node(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("CREATE EXTENSION pglogical")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("SELECT pglogical.create_node(node_name := $1, dsn := $2)")
        .bind(node_name(url))
        .bind(url)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rerun_cluster_init_finishes_a_member_a_failed_first_run_left_half_made() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let a = PgServer::start();
    let url_a = a.create("classcast").await;
    let (node, app) = node_on(&[&url_a]);
    let t = app.register("half@school.org").await;
    app.create_lesson(
        &t,
        json!({"title": "Before", "slides": [text_slide("One")]}),
    )
    .await;
    drop((node, app));
    let b = PgServer::start();
    let url_b = b.create("classcast").await;
    // What a first `cluster init` that failed after making the pglogical nodes leaves: B
    // with classcast's schema and a pglogical node, subscribed to nothing, holding nothing.
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["--database", &url_b, "migrate"], "");
    assert!(out.status.success(), "{out:?}");
    for url in [&url_a, &url_b] {
        give_pglogical_node(url).await;
    }

    // The second run copies what A holds into B, as the first would have.
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(ok && said.contains("copied what"), "{said}{errors}");
    let differing = differences(&url_a, &url_b).await;
    assert!(differing.is_empty(), "rows differ: {differing:?}");
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(
        ok && said.starts_with("Nothing to change"),
        "{said}{errors}"
    );

    // A half-made member that holds rows A does not have is refused, not joined blind.
    let c = PgServer::start();
    let url_c = c.create("classcast").await;
    let out = cli(dir.path(), &["--database", &url_c, "migrate"], "");
    assert!(out.status.success(), "{out:?}");
    add_board(&url_c, "only on c").await;
    give_pglogical_node(&url_c).await;
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b, &url_c]);
    assert!(!ok, "{said}");
    assert!(
        errors.lines().count() == 1 && errors.contains("failed half-way"),
        "{errors}"
    );
}

/// Waits until every replicated table holds the same rows on both databases; returns how
/// long that took.
pub(crate) async fn until_the_same(url_a: &str, url_b: &str) -> Duration {
    let started = tokio::time::Instant::now();
    eventually!(PATIENCE * 3, Duration::from_millis(200), {
        let differing = differences(url_a, url_b).await;
        match differing.is_empty() {
            true => Ok(started.elapsed()),
            false => Err(format!("rows differ: {differing:?}")),
        }
    })
}

#[tokio::test]
async fn the_same_file_stored_through_both_databases_at_once_leaves_every_row_the_same() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    use crate::media::{file, upload, PNG};
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let (_node_1, app_1) = node_on(&[&url_a]);
    let (_node_2, app_2) = node_on(&[&url_b]);
    let t = app_1.register("same-file@school.org").await;
    until_signed_in(&app_2.base, &t.token).await;
    // Half the rounds while the databases cannot reach each other, so both surely store
    // the file before either hears of the other's; half as it comes.
    replication_into(&url_a, false).await;
    replication_into(&url_b, false).await;
    let mut stored = Vec::new();
    for round in 0..20 {
        if round == 10 {
            replication_into(&url_a, true).await;
            replication_into(&url_b, true).await;
        }
        // Two chunks each, a different file every round.
        let bytes = file(PNG, 1_100_000 + round);
        let (one, two) = tokio::join!(
            upload(&app_1, &t, bytes.clone(), "image/png"),
            upload(&app_2, &t, bytes.clone(), "image/png"),
        );
        assert_eq!(one.status(), reqwest::StatusCode::CREATED);
        assert_eq!(two.status(), reqwest::StatusCode::CREATED);
        let id = one.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(two.json::<Value>().await.unwrap()["id"], id.as_str());
        stored.push((id, bytes));
    }
    until_the_same(&url_a, &url_b).await;
    // Each file is whole through either node.
    for (id, bytes) in stored.iter().step_by(7) {
        for app in [&app_1, &app_2] {
            let res = app
                .request(reqwest::Method::GET, &format!("/api/media/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), reqwest::StatusCode::OK);
            assert!(res.bytes().await.unwrap() == bytes.as_slice());
        }
    }
}

#[tokio::test]
async fn one_address_registered_through_both_databases_at_once_is_created_once() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    // Registration is open on the test nodes: "created" answers with a session. Each node
    // lists both databases, its own first, as docs/deploy-cluster.md says.
    let (node_1, _app_1) = node_on(&[&url_a, &url_b]);
    let (node_2, _app_2) = node_on(&[&url_b, &url_a]);
    let bases = [node_1.base.clone(), node_2.base.clone()];
    let register = |base: String, email: String, password: &'static str| async move {
        let res = fresh_client()
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"email": email, "name": "Same", "password": password}))
            .send()
            .await
            .unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    let passwords = ["correct horse battery one", "correct horse battery two"];
    for round in 0..6 {
        let email = format!("same{round}@school.org");
        let (one, two) = tokio::join!(
            register(bases[0].clone(), email.clone(), passwords[0]),
            register(bases[1].clone(), email.clone(), passwords[1])
        );
        // Exactly one is told "created"; the other that the address is taken.
        let created: Vec<usize> = [&one, &two]
            .iter()
            .enumerate()
            .filter(|(_, (status, _))| *status == reqwest::StatusCode::CREATED)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(created.len(), 1, "round {round}: {one:?} {two:?}");
        let winner = created[0];
        let loser = [&one, &two][1 - winner];
        assert_eq!(loser.0, reqwest::StatusCode::CONFLICT, "{loser:?}");
        assert_eq!(loser.1["error"]["code"], "email_taken", "{loser:?}");
        // The one told "created" can always sign in, through either node; the other
        // password opens nothing.
        let token = [&one, &two][winner].1["token"].as_str().unwrap().to_owned();
        for base in &bases {
            until_signed_in(base, &token).await;
            for (i, password) in passwords.iter().enumerate() {
                let status = fresh_client()
                    .post(format!("{base}/api/auth/login"))
                    .json(&json!({"email": email, "password": password}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                let expected = match i == winner {
                    true => reqwest::StatusCode::OK,
                    false => reqwest::StatusCode::UNAUTHORIZED,
                };
                assert_eq!(status, expected, "round {round}, {base}, password {i}");
            }
        }
    }
}

#[tokio::test]
async fn one_lesson_saved_through_both_databases_at_once_is_saved_once_and_the_other_told() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let (_node_1, app_1) = node_on(&[&url_a, &url_b]);
    let (_node_2, app_2) = node_on(&[&url_b, &url_a]);
    let urls = [url_a.as_str(), url_b.as_str()];
    let t = app_1.register("two-devices@school.org").await;
    let lesson = app_1
        .create_lesson(&t, json!({"title": "Draft", "slides": [text_slide("One")]}))
        .await;
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    let mut revisions = 1;
    let mut overtaken = 0;
    for round in 0..10 {
        until_replicated(&urls, "SELECT COUNT(*) FROM lesson_revision", revisions).await;
        let base = app_1.get_json(&path, &t).await["version"]
            .as_str()
            .unwrap()
            .to_owned();
        let save = |app: &TestApp, title: String| {
            app.as_teacher(reqwest::Method::PUT, &path, &t)
                .header("if-match", format!("\"{base}\""))
                .json(&json!({"title": title, "slides": [text_slide("One")]}))
                .send()
        };
        let (one, two) = tokio::join!(
            save(&app_1, format!("Laptop {round}")),
            save(&app_2, format!("Phone {round}"))
        );
        let (one, two) = (one.unwrap(), two.unwrap());
        let statuses = [one.status(), two.status()];
        let bodies: [Value; 2] = [one.json().await.unwrap(), two.json().await.unwrap()];
        // Exactly one device is told "saved"; the other that another save is current.
        let saved: Vec<usize> = (0..2)
            .filter(|&i| statuses[i] == reqwest::StatusCode::OK)
            .collect();
        assert_eq!(saved.len(), 1, "round {round}: {statuses:?} {bodies:?}");
        let (winner, loser) = (&bodies[saved[0]], &bodies[1 - saved[0]]);
        assert_eq!(
            statuses[1 - saved[0]],
            reqwest::StatusCode::PRECONDITION_FAILED
        );
        let code = loser["error"]["code"].as_str().unwrap();
        assert!(
            code == "version_conflict" || code == "save_overtaken",
            "{loser}"
        );
        assert_eq!(
            loser["error"]["current_version"], winner["version"],
            "{loser}"
        );
        // An overtaken save was stored: it is in the history, for the teacher to restore.
        revisions += 1;
        if code == "save_overtaken" {
            overtaken += 1;
            revisions += 1;
        }
        until_replicated(&urls, "SELECT COUNT(*) FROM lesson_revision", revisions).await;
        for app in [&app_1, &app_2] {
            let seen = app.get_json(&path, &t).await;
            assert_eq!(seen["version"], winner["version"]);
            let history = app.get_json(&format!("{path}/revisions"), &t).await;
            assert_eq!(
                history["items"].as_array().unwrap().len() as i64,
                revisions,
                "{history}"
            );
        }
    }
    eprintln!("10 rounds: {overtaken} saves overtaken through the other database");
}

/// What docs/deploy-cluster.md (section 3) grants the role nodes serve with.
const NODE_ROLE: &str = "CREATE ROLE classcast_node LOGIN;
    GRANT USAGE ON SCHEMA public, pglogical TO classcast_node;
    GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA public TO classcast_node;
    GRANT SELECT ON ALL TABLES IN SCHEMA pglogical TO classcast_node;";

#[tokio::test]
async fn nodes_serve_and_mend_replication_as_an_ordinary_role() {
    if missing(&[Tool::Postgres, Tool::Openssl]) {
        return;
    }
    let (_a, b, url_a, url_b) = replicating_pair().await;
    for url in [&url_a, &url_b] {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(NODE_ROLE).execute(&mut conn).await.unwrap();
        let superuser: bool =
            sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = 'classcast_node'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(!superuser);
    }
    let as_node = |url: &str| url.replace("postgres@", "classcast_node@");
    let (_node, app) = node_on(&[&as_node(&url_a), &as_node(&url_b)]);
    let t = app.register("ordinary@school.org").await;
    app.create_lesson(
        &t,
        json!({"title": "Served", "slides": [text_slide("One")]}),
    )
    .await;
    let urls = [url_a.as_str(), url_b.as_str()];
    until_replicated(&urls, "SELECT COUNT(*) FROM lesson_revision", 1).await;

    // B goes down and comes back: A's subscription to it stays down in pglogical's back-off
    // (minutes) unless the node re-enables it, which it does as the ordinary role.
    b.crash();
    b.start_again();
    add_board(&url_b, "written on b after it came back").await;
    until_replicated(&urls, "SELECT COUNT(*) FROM board", 1).await;
}

/// A certificate authority and a certificate for `localhost` it signed, made in `dir` with
/// the `openssl` command, and the settings of a PostgreSQL server that uses them and refuses
/// every connection without TLS; returns the CA's certificate and those settings.
fn tls_server_files(dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (scripts/test installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=classcast test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.crt",
        "-extfile",
        "ext.cnf",
    ]);
    std::fs::write(
        dir.join("pg_hba.conf"),
        "local all all trust\n\
         hostssl all all 127.0.0.1/32 trust\n\
         hostssl replication all 127.0.0.1/32 trust\n\
         hostnossl all all 0.0.0.0/0 reject\n",
    )
    .unwrap();
    // PostgreSQL runs as `postgres` and wants its key private.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["ca.crt", "server.crt", "pg_hba.conf"] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let owner = std::process::Command::new("chown")
        .args(["postgres:postgres"])
        .arg(dir.join("server.key"))
        .status()
        .unwrap();
    assert!(owner.success());
    let at = |file: &str| dir.join(file).display().to_string();
    let settings = vec![
        "ssl=on".to_owned(),
        format!("ssl_cert_file={}", at("server.crt")),
        format!("ssl_key_file={}", at("server.key")),
        format!("hba_file={}", at("pg_hba.conf")),
    ];
    (dir.join("ca.crt"), settings)
}

#[tokio::test]
async fn a_cluster_runs_over_tls_with_certificates_verified() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let tls = tempfile::tempdir().unwrap();
    let (ca, settings) = tls_server_files(tls.path());
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let (a, b) = (
        PgServer::start_with(&settings),
        PgServer::start_with(&settings),
    );
    a.create("classcast").await;
    b.create("classcast").await;
    // The URLs of docs/deploy-cluster.md: the same for the nodes, `cluster init` and
    // pglogical's connections between the servers.
    let url = |server: &PgServer, ca: &std::path::Path| {
        format!(
            "postgres://postgres@localhost:{}/classcast?sslmode=verify-full&sslrootcert={}",
            server.port,
            ca.display()
        )
    };
    let (url_a, url_b) = (url(&a, &ca), url(&b, &ca));
    let (ok, said, errors) = cluster_init(&[&url_a, &url_b]);
    assert!(ok, "{said}{errors}");
    let (_node, app) = node_on(&[&url_a, &url_b]);
    let t = app.register("tls@school.org").await;
    app.create_lesson(
        &t,
        json!({"title": "Private", "slides": [text_slide("One")]}),
    )
    .await;
    until_replicated(&[&url_a, &url_b], "SELECT COUNT(*) FROM lesson_revision", 1).await;
    // Every connection is encrypted: the servers refuse any other, and say so.
    let mut conn = sqlx::PgConnection::connect(&url_b).await.unwrap();
    let (all, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a
         JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type IN ('client backend', 'walsender')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(all > 1 && encrypted == all, "{encrypted} of {all}");
    // A server whose certificate the URL's authority did not sign is refused.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = tls_server_files(other.path());
    let wrong = url(&a, &other_ca);
    let out = cli(other.path(), &["--database", &wrong, "migrate"], "");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("certificate") || said.contains("Certificate"),
        "{said}"
    );
}

/// Stops (or resumes) what the database at `url` receives from the others.
pub(crate) async fn replication_into(url: &str, on: bool) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let call = if on { "enable" } else { "disable" };
    sqlx::query(&format!(
        "SELECT pglogical.alter_subscription_{call}(sub_name, true) FROM pglogical.subscription"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}
