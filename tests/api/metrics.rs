//! `/metrics` on its own listener, scraped from the real binary while a classroom works, and
//! the live connections' lines in its log. Each test runs a server process of its own: the
//! metrics recorder is one per process, so what a scrape shows is that server's alone.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster::postgres::PgServer;
use crate::cluster::replicating_pair;
use crate::eventually::eventually;
use crate::harness::{Process, TestApp};
use crate::live::{classroom, next_event, pair, Ws, PATIENCE};
use crate::tools::{missing, Tool};

/// The server's log, one JSON object a line (`--log-format json`).
fn log_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// A server process with `/metrics` on a port of its choosing, logging to `log`; the
/// metrics' base URL, as its log names it.
async fn start_with_metrics(data: &Path, flags: &[&str], log: &Path) -> (Process, String) {
    let mut flags = flags.to_vec();
    flags.extend(["--metrics-listen", "127.0.0.1:0", "--log-format", "json"]);
    let node = Process::start_logging(data, &flags, log);
    let address = eventually!(PATIENCE, Duration::from_millis(20), {
        log_lines(log)
            .iter()
            .find(|l| l["message"] == "serving /metrics")
            .and_then(|l| l["address"].as_str().map(str::to_owned))
            .ok_or_else(|| "the log never said where /metrics is served".to_owned())
    });
    (node, format!("http://{address}"))
}

async fn scrape(metrics: &str) -> String {
    let res = reqwest::get(format!("{metrics}/metrics")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    res.text().await.unwrap()
}

/// The sum of the samples of `name` that carry every one of `labels` (none: every sample
/// of `name`); `None` when the scrape has none.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in scrape.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let has = |(k, v): &(&str, &str)| {
            series_labels
                .split(',')
                .any(|pair| pair == format!("{k}=\"{v}\""))
        };
        if series_name == name && labels.iter().all(has) {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

/// Waits until `name` (with `labels`) meets `test` in a scrape; returns that scrape.
async fn until_sample(
    metrics: &str,
    name: &str,
    labels: &[(&str, &str)],
    test: impl Fn(f64) -> bool,
) -> String {
    eventually!(PATIENCE, Duration::from_millis(50), {
        let text = scrape(metrics).await;
        match sample(&text, name, labels) {
            Some(v) if test(v) => Ok(text),
            other => Err(format!("{name}{labels:?} is {other:?}:\n{text}")),
        }
    })
}

#[tokio::test]
async fn metrics_follow_a_classroom_on_their_own_listener_and_never_on_the_public_one() {
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = logs.path().join("server.log");
    let (node, metrics) = start_with_metrics(data.path(), &[], &log).await;
    let app = TestApp::of_process(&node, data);

    let public = app.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    // Gauges of this node's state are there from the first scrape, at zero.
    let first = scrape(&metrics).await;
    assert_eq!(sample(&first, "classcast_boards_online", &[]), Some(0.0));
    assert!(sample(&first, "classcast_connections_limit", &[]).unwrap() > 0.0);
    assert_eq!(
        sample(&first, "classcast_password_hash_waiting", &[]),
        Some(0.0)
    );

    let (t, board, lesson) = classroom(&app).await;
    let screen = Ws::board(&app, &board).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let mut stream = app
        .request(
            Method::GET,
            &format!("/api/live/events?role=teacher&boards={}", board.id),
        )
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut stream, &mut String::new()).await["type"],
        "welcome"
    );
    for (op, args) in [("present", json!({"lesson": lesson})), ("next", json!({}))] {
        let acked = console.command(&board.id, op, args).await;
        assert_eq!(acked["type"], "ack", "{acked}");
    }
    let refused = console.command(&board.id, "fly", json!({})).await;
    assert_eq!(refused["type"], "error", "{refused}");
    // Wrong pairing codes until the teacher's budget of guesses is spent.
    let mut limited = false;
    for _ in 0..30 {
        let res = pair(&app, &t, "000000", "Nowhere").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "wrong pairing codes were never refused");

    let text = scrape(&metrics).await;
    let at = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    for (role, transport) in [
        ("board", "websocket"),
        ("teacher", "websocket"),
        ("teacher", "sse"),
    ] {
        let open = [("role", role), ("transport", transport)];
        assert_eq!(
            at("classcast_live_connections", &open),
            1.0,
            "{role} {transport}"
        );
    }
    assert_eq!(at("classcast_boards_online", &[]), 1.0);
    assert_eq!(at("classcast_boards_presenting", &[]), 1.0);
    assert_eq!(at("classcast_commands_total", &[("outcome", "acked")]), 2.0);
    assert_eq!(
        at("classcast_commands_total", &[("outcome", "refused")]),
        1.0
    );
    assert_eq!(at("classcast_command_ack_seconds_count", &[]), 2.0);
    // Every ack took less than the longest bucket, and the buckets are cumulative.
    assert_eq!(
        at("classcast_command_ack_seconds_bucket", &[("le", "10")]),
        2.0
    );
    assert!(
        at(
            "classcast_store_seconds_count",
            &[("op", "save_board_state")]
        ) >= 2.0
    );
    assert!(at("classcast_store_seconds_count", &[("op", "create_account")]) >= 1.0);
    assert!(at("classcast_state_writer_batch_states_sum", &[]) >= 2.0);
    assert!(
        at(
            "classcast_rate_limited_total",
            &[("limit", "pairing_account")]
        ) >= 1.0
    );
    // The board's and the teacher's WebSockets, the event stream, and the scrape's request
    // are not counted: it came to the metrics listener.
    assert!(at("classcast_connections_open", &[]) >= 3.0);
    assert!(
        sample(&text, "classcast_store_errors_total", &[]).is_none(),
        "no store operation failed:\n{text}"
    );

    // Closing the pages takes them off the gauges.
    drop(stream);
    screen.close_and_wait().await;
    console.close_and_wait().await;
    let text = until_sample(&metrics, "classcast_live_connections", &[], |v| v == 0.0).await;
    assert_eq!(sample(&text, "classcast_boards_online", &[]), Some(0.0));

    // Each live connection's lines carry its span: who it is, and its request id.
    let lines = eventually!(PATIENCE, Duration::from_millis(20), {
        let lines = log_lines(&log);
        let closed = lines
            .iter()
            .filter(|l| l["message"] == "live connection closed")
            .count();
        match closed {
            3 => Ok(lines),
            n => Err(format!("{n} live connections logged their closing, not 3")),
        }
    });
    let of_board = |message: &str| {
        lines
            .iter()
            .find(|l| {
                l["message"] == message
                    && l["span"]["role"] == "board"
                    && l["span"]["board"] == board.id.as_str()
                    && l["span"]["transport"] == "websocket"
            })
            .unwrap_or_else(|| panic!("no {message:?} line of the board's WebSocket"))
            .clone()
    };
    let (opened, closed) = (
        of_board("live connection opened"),
        of_board("live connection closed"),
    );
    assert_eq!(opened["level"], "INFO");
    assert_eq!(opened["span"]["conn"], closed["span"]["conn"]);
    assert_ne!(opened["span"]["conn"], "-", "the request id of the upgrade");
    // The test's client closes without a code: RFC 6455's "no status" (1005).
    assert_eq!(closed["code"], 1005, "{closed}");
    assert_eq!(closed["by"], "client");
    let teacher_sse = lines
        .iter()
        .find(|l| {
            l["message"] == "live connection closed"
                && l["span"]["transport"] == "sse"
                && l["span"]["role"] == "teacher"
        })
        .expect("the event stream's closing");
    assert_eq!(teacher_sse["reason"], "the client went away");
}

#[tokio::test]
async fn metrics_show_the_database_in_use_the_replication_and_a_failover_of_a_cluster() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (a, _b, url_a, url_b): (PgServer, PgServer, String, String) = replicating_pair().await;
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = logs.path().join("server.log");
    let flags = ["--database", url_a.as_str(), "--database", url_b.as_str()];
    let (node, metrics) = start_with_metrics(data.path(), &flags, &log).await;
    let app = TestApp::of_process(&node, data);
    // Each database subscribes to the other: two subscriptions, both replicating.
    let text = until_sample(&metrics, "classcast_replication_up", &[], |up| up == 2.0).await;
    let subscriptions: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("classcast_replication_lag_bytes{"))
        .collect();
    assert_eq!(subscriptions.len(), 2, "{text}");
    assert_eq!(sample(&text, "classcast_database_up", &[]), Some(2.0));
    // The first database is in use, the second is not.
    let (database_a, database_b) = (
        classcast::store::redact_url(&url_a),
        classcast::store::redact_url(&url_b),
    );
    let active = |text: &str, database: &str| {
        sample(text, "classcast_database_active", &[("database", database)])
    };
    assert_eq!(active(&text, &database_a), Some(1.0));
    assert_eq!(active(&text, &database_b), Some(0.0));
    assert_eq!(
        sample(&text, "classcast_database_failovers_total", &[]),
        None,
        "no failover yet"
    );

    // A command is stored in PostgreSQL and told to the other nodes on the bus.
    let (t, board, lesson) = classroom(&app).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let acked = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(acked["type"], "ack", "{acked}");
    let text = until_sample(&metrics, "classcast_bus_events_sent_total", &[], |n| {
        n >= 1.0
    })
    .await;
    assert!(
        sample(
            &text,
            "classcast_store_seconds_count",
            &[("op", "save_board_state")]
        ) >= Some(1.0)
    );

    // The node moves to the second database when the first stops: counted at once, and
    // the database gauges follow at their next sample.
    a.crash();
    until_sample(&metrics, "classcast_database_failovers_total", &[], |n| {
        n == 1.0
    })
    .await;
    let text = eventually!(PATIENCE * 3, Duration::from_millis(200), {
        let text = scrape(&metrics).await;
        match (active(&text, &database_a), active(&text, &database_b)) {
            (Some(0.0), Some(1.0)) => Ok(text),
            other => Err(format!("active (A, B) is {other:?}:\n{text}")),
        }
    });
    let up = |database: &str| sample(&text, "classcast_database_up", &[("database", database)]);
    assert_eq!((up(&database_a), up(&database_b)), (Some(0.0), Some(1.0)));
}

#[tokio::test]
async fn the_outbox_gauges_count_pending_and_dead_mail() {
    let smtp = crate::smtp::SmtpServer::start().await;
    smtp.refuse("gone@school.org");
    let (data, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = logs.path().join("server.log");
    let url = smtp.url();
    let flags = [
        "--smtp-url",
        &url,
        "--public-url",
        "https://classcast.school.example",
    ];
    let (node, metrics) = start_with_metrics(data.path(), &flags, &log).await;
    let app = TestApp::of_process(&node, data);
    until_sample(&metrics, "classcast_mail_dead", &[], |v| v == 0.0).await;
    app.register("gone@school.org").await;
    let asked = crate::harness::fresh_client()
        .post(format!("{}/api/auth/password-reset", app.base))
        .json(&json!({"email": "gone@school.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    // The outbox is sampled every 15 s.
    eventually!(PATIENCE * 3, Duration::from_millis(200), {
        let text = scrape(&metrics).await;
        let counts = (
            sample(&text, "classcast_mail_pending", &[]),
            sample(&text, "classcast_mail_dead", &[]),
        );
        match counts {
            (Some(0.0), Some(1.0)) => Ok(()),
            other => Err(format!("pending and dead mail: {other:?}")),
        }
    });
}
