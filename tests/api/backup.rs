//! Backups as a school's IT person takes them: `classcast backup` beside a running server,
//! `backup --check`, and `classcast restore` into a fresh SQLite or PostgreSQL store, with
//! everything compared row by row and the restored school used again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use classcast::backup::format::{Header, Part, Reader, Writer, FORMAT};
use classcast::config::Registration;
use classcast::store::snapshot::Value;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::cluster::postgres::PgServer;
use crate::harness::{cli, spawn_app, spawn_with, text_slide, Process, TestApp};
use crate::live::{claim, pair, Ws};
use crate::media::{file, png, upload, GIF, JPEG, MP4, WEBM, WEBP};
use crate::tools::{missing, Tool};

/// Runs `classcast <args>` on `data_dir`; returns (succeeded, stdout, stderr).
fn run(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = cli(data_dir, args, "");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Every row of every table a backup holds, each table's rows sorted, flags as integers
/// (PostgreSQL keeps booleans, SQLite 0 and 1) and JSON objects with their keys sorted
/// (PostgreSQL's `jsonb` keeps them so): what two stores must agree on.
fn rows_of(path: &Path) -> BTreeMap<String, Vec<Vec<Value>>> {
    let mut reader = Reader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut tables: BTreeMap<String, Vec<Vec<Value>>> = BTreeMap::new();
    let mut current = None;
    while let Some(part) = reader.next_part().unwrap() {
        match part {
            Part::Table(start) => current = Some(start.table),
            Part::Row(row) => {
                let row = row
                    .into_iter()
                    .map(|v| match v {
                        Value::Bool(on) => Value::Int(i64::from(on)),
                        Value::Text(text) if text.starts_with('{') => {
                            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                            Value::Text(json.to_string())
                        }
                        other => other,
                    })
                    .collect();
                tables
                    .entry(current.clone().unwrap())
                    .or_default()
                    .push(row);
            }
            Part::EndOfTable { .. } | Part::End => {}
        }
    }
    for rows in tables.values_mut() {
        rows.sort_by_key(|row| format!("{row:?}"));
    }
    tables
}

/// Asserts that `restored` holds exactly the rows of `taken`, naming the first difference.
fn same_rows(
    restored: &BTreeMap<String, Vec<Vec<Value>>>,
    taken: &BTreeMap<String, Vec<Vec<Value>>>,
    name: &str,
) {
    let tables =
        |rows: &BTreeMap<String, Vec<Vec<Value>>>| rows.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        tables(restored),
        tables(taken),
        "{name}: the tables with rows"
    );
    for (table, rows) in taken {
        let got = &restored[table];
        assert_eq!(got.len(), rows.len(), "{name}: rows of {table}");
        if let Some((a, b)) = got.iter().zip(rows).find(|(a, b)| a != b) {
            panic!("{name}: a row of {table} differs:\n{a:?}\n{b:?}");
        }
    }
}

/// Adds an active account with `classcast user add`, its password piped in.
fn add_account(data_dir: &Path, email: &str, password: &str) {
    let out = cli(
        data_dir,
        &["user", "add", "--name", "Teacher", email],
        &format!("{password}\n"),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
}

fn db_of(dir: &Path) -> PathBuf {
    dir.join("classcast.db")
}

/// A school in use on a server where registration needs approval: a teacher, a disabled
/// one and one waiting for approval; 50 lessons with two revisions each; a board paired and
/// presenting; a picture of every kind (one with a preview) and a 20 MiB video.
async fn busy_school(app: &TestApp) -> (crate::harness::Teacher, crate::live::Claimed, String) {
    for email in ["busy@school.org", "gone@school.org"] {
        add_account(app.data_dir(), email, "correct horse battery");
    }
    let (ok, said, errors) = run(app.data_dir(), &["user", "disable", "gone@school.org"]);
    assert!(ok, "{said}{errors}");
    let pending = crate::harness::fresh_client()
        .post(format!("{}/api/auth/register", app.base))
        .json(&json!({"email": "waiting@school.org", "name": "Waiting", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(pending.status(), StatusCode::ACCEPTED);
    let t = app.login("busy@school.org").await;
    let mut first = String::new();
    for i in 0..50 {
        let lesson = app
            .create_lesson(
                &t,
                json!({"title": format!("Lesson {i}"), "slides": [text_slide("One"), text_slide("Two"), text_slide("Three")]}),
            )
            .await;
        let id = lesson["id"].as_str().unwrap().to_owned();
        let res = app
            .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &t)
            .json(&json!({"title": format!("Lesson {i}, again"), "slides": [text_slide("One"), text_slide("Two"), text_slide("Three")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        if i == 0 {
            first = id;
        }
    }
    for (bytes, kind) in [
        (png(1600, 1200), "image/png"),
        (file(JPEG, 3000), "image/jpeg"),
        (file(GIF, 3000), "image/gif"),
        (file(WEBP, 3000), "image/webp"),
        (file(WEBM, 3000), "video/webm"),
        (file(MP4, 20 << 20), "video/mp4"),
    ] {
        let res = upload(app, &t, bytes, kind).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{kind}");
    }
    let board = claim(app).await;
    assert_eq!(
        pair(app, &t, &board.code, "Room 4").await.status(),
        StatusCode::CREATED
    );
    (t, board, first)
}

#[tokio::test]
async fn a_school_backed_up_while_teaching_restores_into_sqlite_and_postgresql_row_for_row() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let app = spawn_with(|a| a.registration = Some(Registration::Approval)).await;
    let (t, board, lesson) = busy_school(&app).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");

    // A teacher keeps pressing next and back, ten times a second, while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let pressed = Arc::new(AtomicU32::new(0));
    let presser = {
        let (stop, pressed, board) = (stop.clone(), pressed.clone(), board.id.clone());
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(std::time::Duration::from_millis(100));
            while !stop.load(Ordering::Relaxed) {
                for op in ["next", "prev"] {
                    pace.tick().await;
                    let ack = console.command(&board, op, json!({})).await;
                    assert_eq!(ack["type"], "ack", "{ack}");
                    pressed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("school.ccb");
    let (data, out) = (app.data_dir().to_owned(), backup.clone());
    let (ok, said, errors) = tokio::task::spawn_blocking(move || {
        run(&data, &["backup", "--out", out.to_str().unwrap()])
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    presser.await.unwrap();
    assert!(ok, "{said}{errors}");
    assert!(pressed.load(Ordering::Relaxed) > 0);
    assert!(
        said.contains("3 accounts, 50 lessons (100 revisions), 1 board"),
        "{said}"
    );

    let (ok, said, errors) = run(
        work.path(),
        &["backup", "--check", backup.to_str().unwrap()],
    );
    assert!(ok, "{said}{errors}");
    assert!(
        said.contains("is whole") && said.contains("6 media files (every byte checked)"),
        "{said}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a backup is its owner's alone");
    let taken = rows_of(&backup);
    assert_eq!(taken["lesson"].len(), 50);
    assert_eq!(taken["media_file"].len(), 6);
    assert_eq!(taken["account_pending"].len(), 1);

    // Into a fresh SQLite store, and into a fresh PostgreSQL database.
    let lite = tempfile::tempdir().unwrap();
    let (ok, said, errors) = run(lite.path(), &["restore", backup.to_str().unwrap()]);
    assert!(ok, "{said}{errors}");
    let server = PgServer::start();
    let url = server.create("restored").await;
    let (ok, said, errors) = run(
        work.path(),
        &["--database", &url, "restore", backup.to_str().unwrap()],
    );
    assert!(ok, "{said}{errors}");
    for (name, args) in [
        ("sqlite", vec!["backup"]),
        ("postgres", vec!["--database", url.as_str(), "backup"]),
    ] {
        let again = work.path().join(format!("{name}.ccb"));
        let mut args = args.clone();
        args.extend(["--out", again.to_str().unwrap()]);
        let dir = if name == "sqlite" {
            lite.path()
        } else {
            work.path()
        };
        let (ok, said, errors) = run(dir, &args);
        assert!(ok, "{said}{errors}");
        same_rows(&rows_of(&again), &taken, name);
    }

    // The restored school works, on either engine: the same password, the same lessons, and
    // the board paired before the backup still is.
    let node = Process::start(lite.path());
    let restored = TestApp::of_process(&node, lite);
    let again = restored.login("busy@school.org").await;
    assert_eq!(restored.lesson_count(&again).await, 50);
    let listed = restored.get_json("/api/boards", &again).await;
    assert_eq!(listed["items"][0]["id"], board.id.as_str(), "{listed}");
    Ws::board(&restored, &board).await;
    let (_pg_node, on_pg) = crate::cluster::node_on(&[&url]);
    let again = on_pg.login("busy@school.org").await;
    assert_eq!(on_pg.lesson_count(&again).await, 50);
    Ws::board(&on_pg, &board).await;
    drop(server);
}

#[tokio::test]
async fn a_damaged_cut_foreign_or_newer_backup_is_refused_and_force_replaces_a_store() {
    let app = spawn_app().await;
    let t = app.register("kept@school.org").await;
    app.create_lesson(&t, json!({"title": "Kept", "slides": [text_slide("One")]}))
        .await;
    let work = tempfile::tempdir().unwrap();
    // Written to standard output, as for a pipe to gpg or ssh.
    let piped = cli(app.data_dir(), &["backup", "--out", "-"], "");
    let said = String::from_utf8_lossy(&piped.stderr);
    assert!(
        piped.status.success() && said.contains("Backed up"),
        "{said}"
    );
    let good = work.path().join("good.ccb");
    std::fs::write(&good, &piped.stdout).unwrap();
    let bytes = piped.stdout;

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let newer = {
        let header = Header {
            format: FORMAT + 1,
            classcast: "9.9.9".into(),
            engine: "sqlite".into(),
            schema: 99,
            taken_at_ms: 0,
        };
        Writer::new(Vec::new(), &header).unwrap().finish().unwrap()
    };
    for (name, content, said) in [
        ("flipped", flipped, "damaged"),
        ("cut", bytes[..bytes.len() * 2 / 3].to_vec(), "cut short"),
        (
            "foreign",
            b"PK\x03\x04 a zip file".to_vec(),
            "not a classcast backup",
        ),
        ("newer", newer, "newer classcast"),
    ] {
        let path = work.path().join(format!("{name}.ccb"));
        std::fs::write(&path, content).unwrap();
        for args in [
            vec!["backup", "--check", path.to_str().unwrap()],
            vec!["restore", path.to_str().unwrap()],
        ] {
            let fresh = tempfile::tempdir().unwrap();
            let (ok, _, errors) = run(fresh.path(), &args);
            assert!(!ok, "{name}: {args:?} succeeded");
            assert!(errors.contains(said), "{name}: {errors}");
            assert_eq!(errors.trim().lines().count(), 1, "{name}: {errors}");
            assert!(!db_of(fresh.path()).exists(), "{name}: a store was made");
        }
    }

    // A store that holds anything is refused, unless --force, which replaces all of it.
    let other = tempfile::tempdir().unwrap();
    add_account(other.path(), "extra@school.org", "a long enough password");
    let (ok, _, errors) = run(other.path(), &["restore", good.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        errors.contains("not empty") && errors.contains("--force"),
        "{errors}"
    );
    let (ok, said, errors) = run(
        other.path(),
        &["restore", "--force", good.to_str().unwrap()],
    );
    assert!(ok, "{said}{errors}");
    assert!(said.contains("Replaced"), "{said}");
    let again = work.path().join("again.ccb");
    let (ok, said, errors) = run(other.path(), &["backup", "--out", again.to_str().unwrap()]);
    assert!(ok, "{said}{errors}");
    same_rows(&rows_of(&again), &rows_of(&good), "replaced");
}

#[tokio::test]
async fn a_backup_of_a_store_one_migration_behind_restores_into_the_current_one() {
    // A store as the release before the newest migration left it: the newest migration
    // (0017) only adds a revision's theme, so without that column and its record the store
    // is one migration behind. (A newer migration must be undone here instead.)
    let newest = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/store/migrations/sqlite"
    ))
    .unwrap()
    .map(|f| f.unwrap().file_name().into_string().unwrap())
    .max()
    .unwrap();
    assert_eq!(
        newest, "0017_lesson_theme.sql",
        "undo the newest migration here"
    );
    let old = tempfile::tempdir().unwrap();
    add_account(old.path(), "old@school.org", "a long enough password");
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", db_of(old.path()).display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "ALTER TABLE lesson_revision DROP COLUMN theme;
             DELETE FROM _sqlx_migrations WHERE version = 17",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        // A lesson saved before the library: a revision without a folder or search text.
        sqlx::raw_sql(
            "INSERT INTO lesson (id, owner_id, version, node)
               SELECT '0193a000-0000-7000-8000-000000000001', id, 1, id FROM account;
             INSERT INTO lesson_revision (id, lesson_id, version, node, author_id, title,
               title_key, slide_count, slides, deleted, restored_from)
               SELECT '0193a000-0000-7000-8000-000000000002',
                 '0193a000-0000-7000-8000-000000000001', 2, id, id, 'Old Fractions',
                 'old fractions', 0, '[]', 0, NULL FROM account",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("old.ccb");
    let (ok, said, errors) = run(old.path(), &["backup", "--out", file.to_str().unwrap()]);
    assert!(ok, "{said}{errors}");
    assert!(said.contains("sqlite schema 16"), "{said}");

    let new = tempfile::tempdir().unwrap();
    let (ok, said, errors) = run(new.path(), &["restore", file.to_str().unwrap()]);
    assert!(ok, "{said}{errors}");
    let node = Process::start(new.path());
    let app = TestApp::of_process(&node, new);
    let res = crate::harness::fresh_client()
        .post(format!("{}/api/auth/login", app.base))
        .json(&json!({"email": "old@school.org", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Its lesson is listed, found by a search and in no folder.
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = crate::harness::Teacher {
        token,
        email: "old@school.org".into(),
    };
    let found = app.get_json("/api/lessons?q=FRACTIONS", &t).await;
    assert_eq!(found["items"][0]["title"], "Old Fractions");
    assert_eq!(found["items"][0]["folder"], serde_json::Value::Null);
    let folders = app.get_json("/api/lessons/folders", &t).await;
    assert_eq!(folders["items"], json!([]));
    // Sharing works on it, and its lesson reads in the default theme.
    let shared = app.get_json("/api/lessons/shared", &t).await;
    assert_eq!(shared["items"], json!([]));
    let id = found["items"][0]["id"].as_str().unwrap();
    let old = app.get_json(&format!("/api/lessons/{id}"), &t).await;
    assert_eq!(old["theme"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_school_on_one_machine_moves_onto_a_two_database_cluster_and_back() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let app = spawn_app().await;
    let t = app.register("mover@school.org").await;
    app.create_lesson(&t, json!({"title": "Moved", "slides": [text_slide("One")]}))
        .await;
    let board = claim(&app).await;
    assert_eq!(
        pair(&app, &t, &board.code, "Room 9").await.status(),
        StatusCode::CREATED
    );
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("school.ccb");
    let (ok, said, errors) = run(app.data_dir(), &["backup", "--out", file.to_str().unwrap()]);
    assert!(ok, "{said}{errors}");
    let taken = rows_of(&file);

    // The steps of docs/operations.md: restore into one database, then `cluster init` makes
    // the other a copy of it.
    let (a, b) = (PgServer::start(), PgServer::start());
    let (url_a, url_b) = (a.create("classcast").await, b.create("classcast").await);
    let (ok, said, errors) = run(
        work.path(),
        &["--database", &url_a, "restore", file.to_str().unwrap()],
    );
    assert!(ok, "{said}{errors}");
    let (ok, said, errors) = crate::cluster::cluster(&[&url_a, &url_b], &["init"]);
    assert!(ok && said.contains("copied what"), "{said}{errors}");
    for (name, url) in [("a", &url_a), ("b", &url_b)] {
        let again = work.path().join(format!("{name}.ccb"));
        let (ok, said, errors) = run(
            work.path(),
            &[
                "--database",
                url,
                "backup",
                "--out",
                again.to_str().unwrap(),
            ],
        );
        assert!(ok, "{said}{errors}");
        same_rows(&rows_of(&again), &taken, name);
    }

    // And the way back: a backup of a cluster's database restored onto one machine.
    let back = tempfile::tempdir().unwrap();
    let from_b = work.path().join("b.ccb");
    let (ok, said, errors) = run(back.path(), &["restore", from_b.to_str().unwrap()]);
    assert!(ok, "{said}{errors}");
    let again = work.path().join("back.ccb");
    let (ok, said, errors) = run(back.path(), &["backup", "--out", again.to_str().unwrap()]);
    assert!(ok, "{said}{errors}");
    same_rows(&rows_of(&again), &taken, "back on SQLite");

    // Two nodes serve the school, each from its own database.
    let (_one, _app_one) = crate::cluster::node_on(&[&url_a, &url_b]);
    let (_two, app_two) = crate::cluster::node_on(&[&url_b, &url_a]);
    let again = app_two.login("mover@school.org").await;
    assert_eq!(app_two.lesson_count(&again).await, 1);
    Ws::board(&app_two, &board).await;
}

#[test]
fn the_nightly_script_keeps_seven_daily_and_four_weekly_checked_backups() {
    let data = tempfile::tempdir().unwrap();
    add_account(data.path(), "nightly@school.org", "a long enough password");
    let kept = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/classcast-backup");
    let bin_dir = Path::new(crate::harness::BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    // Every night of November 2026, whose Sundays are the 1st, 8th, 15th, 22nd and 29th.
    for day in 1..=30 {
        let out = std::process::Command::new(script)
            .args(["--data-dir", data.path().to_str().unwrap()])
            .env("PATH", &path)
            .env("BACKUP_DIR", kept.path())
            .env("BACKUP_DATE", format!("2026-11-{day:02}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = |folder: &str| {
        let mut names: Vec<String> = std::fs::read_dir(kept.path().join(folder))
            .unwrap()
            .map(|f| f.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let named = |days: &[u32]| -> Vec<String> {
        days.iter()
            .map(|d| format!("classcast-2026-11-{d:02}.ccb"))
            .collect()
    };
    assert_eq!(listed("daily"), named(&[24, 25, 26, 27, 28, 29, 30]));
    assert_eq!(listed("weekly"), named(&[8, 15, 22, 29]));
    let sunday = kept.path().join("weekly/classcast-2026-11-29.ccb");
    let (ok, said, errors) = run(
        data.path(),
        &["backup", "--check", sunday.to_str().unwrap()],
    );
    assert!(ok && said.contains("1 account,"), "{said}{errors}");
}

#[tokio::test]
async fn a_member_database_copied_with_pg_dump_serves_alone_without_the_cluster() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, _url_b) = crate::cluster::replicating_pair().await;
    let (node, app) = crate::cluster::node_on(&[&url_a]);
    let t = app.register("dumped@school.org").await;
    app.create_lesson(
        &t,
        json!({"title": "Dumped", "slides": [text_slide("One")]}),
    )
    .await;
    drop((node, app));

    // As docs/operations.md says: all but pglogical's schema, then restored without the
    // extension (its entry taken out of the dump's list), by a role owning the new database.
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("member.dump");
    // Runs one of PostgreSQL's programs; returns what it printed.
    let tool = |name: &str, args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(format!("{}/{name}", crate::cluster::postgres::BIN))
            .args(args)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {said}");
        String::from_utf8(out.stdout).unwrap()
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    tool(
        "pg_dump",
        &[
            os("--format=custom"),
            os("--exclude-schema=pglogical"),
            os("--file"),
            dump.as_os_str(),
            url_a.as_ref(),
        ],
    );
    let c = PgServer::start();
    let url_c = c.create("restored").await;
    let list = work.path().join("member.list");
    let listed = tool("pg_restore", &[os("--list"), dump.as_os_str()]);
    let wanted: Vec<&str> = listed
        .lines()
        .filter(|line| !line.contains("pglogical"))
        .collect();
    std::fs::write(&list, wanted.join("\n")).unwrap();
    tool(
        "pg_restore",
        &[
            os("--no-owner"),
            os("--exit-on-error"),
            os("--dbname"),
            url_c.as_ref(),
            os("--use-list"),
            list.as_os_str(),
            dump.as_os_str(),
        ],
    );

    let (_node, restored) = crate::cluster::node_on(&[&url_c]);
    let again = restored.login("dumped@school.org").await;
    assert_eq!(restored.lesson_count(&again).await, 1);
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url_c).await.unwrap();
    let pglogical: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_extension WHERE extname = 'pglogical'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(pglogical, 0, "pglogical's catalog came along");
}
