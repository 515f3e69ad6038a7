//! The real binary: restarts keep everything, the `user` commands, and one-line errors.

use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{cli, expect_error, Process, BIN};

async fn login(base: &str, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn everything_survives_a_killed_server_restarted_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (token, lesson) = {
        let server = Process::start(dir.path());
        let res = client
            .post(format!("{}/api/auth/register", server.base))
            .json(&json!({"email": "rita@school.org", "name": "Rita", "password": "persistent pw"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let token = res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = client
            .post(format!("{}/api/lessons", server.base))
            .bearer_auth(&token)
            .json(&json!({"title": "Survivor", "slides": [{"kind": "timer", "seconds": 60}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        (token, res.json::<Value>().await.unwrap())
    };

    let server = Process::start(dir.path());
    let id = lesson["id"].as_str().unwrap();
    let res = client
        .get(format!("{}/api/lessons/{id}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the old session still works");
    assert_eq!(res.json::<Value>().await.unwrap(), lesson);
    assert_eq!(
        login(&server.base, "rita@school.org", "persistent pw")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_user_commands_add_list_disable_and_reset_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(
        dir.path(),
        &["user", "add", "sam@school.org", "--name", "Sam"],
        "first password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        dir.path(),
        &["user", "add", "SAM@school.org", "--name", "Again"],
        "first password\n",
    );
    assert!(
        !out.status.success(),
        "a second account for one address is refused"
    );

    let server = Process::start(dir.path());
    let res = login(&server.base, "sam@school.org", "first password").await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A new password, set while the server runs, ends the old session at once.
    let out = cli(
        dir.path(),
        &["user", "set-password", "sam@school.org"],
        "second password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = reqwest::Client::new()
        .request(Method::GET, format!("{}/api/me", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(
        login(&server.base, "sam@school.org", "first password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&server.base, "sam@school.org", "second password")
            .await
            .status(),
        StatusCode::OK
    );

    let out = cli(dir.path(), &["user", "disable", "sam@school.org"], "");
    assert!(out.status.success());
    // Disabled: the right password answers exactly like a wrong one, confirming nothing.
    let right = login(&server.base, "sam@school.org", "second password").await;
    let wrong = login(&server.base, "sam@school.org", "not the password").await;
    assert_eq!(right.status(), wrong.status());
    let right = expect_error(right, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let wrong = expect_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(right, wrong);

    let out = cli(dir.path(), &["user", "list"], "");
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains("sam@school.org\tSam\tdisabled"),
        "{listing}"
    );

    let out = cli(dir.path(), &["user", "enable", "sam@school.org"], "");
    assert!(out.status.success());
    assert_eq!(
        login(&server.base, "sam@school.org", "second password")
            .await
            .status(),
        StatusCode::OK
    );
}

#[test]
fn user_errors_are_one_clear_line_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--config".into(),
                "/nonexistent/classcast.toml".into(),
                "migrate".into(),
            ],
            "/nonexistent/classcast.toml",
        ),
        (
            vec!["--database".into(), "mysql://x".into(), "migrate".into()],
            "mysql://x",
        ),
        (
            vec![
                "--database".into(),
                format!("sqlite://{}/missing/dir/db", dir.path().display()),
                "migrate".into(),
            ],
            "cannot open the database",
        ),
        (
            vec![
                "user".into(),
                "disable".into(),
                "ghost@school.org".into(),
                "--data-dir".into(),
                dir.path().display().to_string(),
            ],
            "no account",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--listen", "nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("--listen"));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("classcast "));
}

/// What `--help` lists is what the command reads: the server's options only under `serve`.
#[test]
fn each_command_lists_the_options_it_reads() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?} --help failed");
        String::from_utf8(out.stdout).unwrap()
    };
    let serve = help(&["serve"]);
    for option in [
        "--listen",
        "--max-connections",
        "--public-url",
        "--database",
        "--data-dir",
    ] {
        assert!(
            serve.contains(option),
            "serve --help lacks {option}:\n{serve}"
        );
    }
    for args in [
        &["cluster"][..],
        &["cluster", "status"],
        &["user", "approve"],
        &["migrate"],
    ] {
        let text = help(args);
        assert!(
            text.contains("--database"),
            "{args:?} --help lacks --database:\n{text}"
        );
        for option in [
            "--listen",
            "--max-connections",
            "--session-ttl-secs",
            "--api-host",
        ] {
            assert!(
                !text.contains(option),
                "{args:?} --help lists {option}:\n{text}"
            );
        }
    }
}

#[test]
fn a_piped_password_that_is_too_short_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(
        dir.path(),
        &["user", "add", "tim@school.org", "--name", "Tim"],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("password"));
    let out = cli(dir.path(), &["user", "list"], "");
    assert!(!String::from_utf8(out.stdout).unwrap().contains("tim@"));
}

#[tokio::test]
async fn a_registration_storm_leaves_memory_within_the_hashing_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let register = |i: usize| {
        // Each from an address of its own: registrations are limited per address.
        let req = crate::harness::fresh_client()
            .post(format!("{}/api/auth/register", server.base))
            .json(&json!({"email": format!("s{i}@school.org"), "name": "S", "password": "correct horse battery"}));
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(register(0).await, StatusCode::CREATED);
    let settled = server.rss_kib();
    for wave in 0..10 {
        let statuses =
            futures_util::future::join_all((1..=8).map(|i| register(wave * 8 + i))).await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::CREATED),
            "{statuses:?}"
        );
    }
    let after = server.rss_kib();
    eprintln!("RSS after one registration {settled} KiB, after 81: {after} KiB");
    // Hashing keeps one 19 MiB buffer per core; nothing else should grow with the storm.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let budget = settled + cores * 20 * 1024;
    assert!(
        after <= budget,
        "{after} KiB resident after the storm, budget {budget} KiB"
    );
}

#[tokio::test]
async fn a_node_keeps_the_id_it_was_given_or_made_once() {
    let dir = tempfile::tempdir().unwrap();
    let read_id = |dir: &std::path::Path| {
        let text = std::fs::read_to_string(dir.join("node-id"))
            .unwrap_or_else(|e| panic!("a node-id file in {}: {e}", dir.display()));
        uuid::Uuid::parse_str(text.trim()).expect("a UUID")
    };
    // A server has its identity once it answers (it prints its address before that).
    let started = |dir: &std::path::Path, flags: &[&str]| {
        let server = Process::start_with(dir, flags);
        let ready = format!("{}/readyz", server.base);
        async move {
            let res = reqwest::get(ready).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            drop(server);
        }
    };
    started(dir.path(), &[]).await;
    let made = read_id(dir.path());
    started(dir.path(), &[]).await;
    assert_eq!(read_id(dir.path()), made, "a restart keeps the node's id");

    // A database from before node ids keeps the id it recorded for itself.
    let legacy = tempfile::tempdir().unwrap();
    let recorded = uuid::Uuid::now_v7();
    let url = format!("sqlite://{}/classcast.db?mode=rwc", legacy.path().display());
    let mut conn = sqlx::ConnectOptions::connect(
        &<sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url).unwrap(),
    )
    .await
    .unwrap();
    sqlx::raw_sql(&format!(
        "CREATE TABLE local_node (node_id TEXT PRIMARY KEY NOT NULL);
         INSERT INTO local_node VALUES ('{recorded}');"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    started(legacy.path(), &[]).await;
    assert_eq!(read_id(legacy.path()), recorded);

    // A configured id wins, and a damaged file is a one-line error, not a new identity.
    let configured = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    started(configured.path(), &["--node-id", &id]).await;
    assert!(!configured.path().join("node-id").exists());
    std::fs::write(dir.path().join("node-id"), "not an id\n").unwrap();
    let out = cli(dir.path(), &["migrate"], "");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("node id") && said.lines().count() == 1,
        "{said}"
    );
}
