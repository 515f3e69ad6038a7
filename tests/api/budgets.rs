//! No one actor can fill the server's disk: what a teacher or a board token writes is
//! bounded per unit of time and in total, and what does not change is not stored again.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::*;
use crate::live::Ws;

/// Bytes in the data directory: the database, its WAL and anything beside them.
fn disk_use(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "POST {path}");
    res.json().await.unwrap()
}

async fn console(base: &str, token: &str, board: &str) -> Ws {
    let mut ws = Ws::open_at(base, None).await.unwrap();
    ws.send(
        json!({"type": "hello", "protocol": 1, "role": "teacher", "token": token,
                   "boards": [{"board": board, "version": 0}]}),
    )
    .await;
    assert_eq!(ws.next().await["type"], "welcome");
    ws
}

#[tokio::test]
async fn toggling_a_huge_slide_stores_small_states_that_restore_whole_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let base = server.base.clone();
    let teacher = post(
        &base,
        "/api/auth/register",
        None,
        json!({"email": "t@school.org", "name": "T", "password": "correct horse battery"}),
    )
    .await;
    let token = teacher["token"].as_str().unwrap();
    let board = post(&base, "/api/boards/claim", None, json!({})).await;
    let board_id = board["board_id"].as_str().unwrap();
    post(
        &base,
        "/api/boards/pair",
        Some(token),
        json!({"code": board["code"], "name": "Room 1"}),
    )
    .await;
    // Nested quotes: 19,000 characters of Markdown that render to over half a megabyte.
    let body = format!("{}deep", ">".repeat(19_000));
    let lesson = post(
        &base,
        "/api/lessons",
        Some(token),
        json!({"title": "Huge", "slides": [{"kind": "text", "title": "Deep", "body": body}]}),
    )
    .await;

    let mut ws = console(&base, token, board_id).await;
    let ack = ws
        .command(board_id, "present", json!({"lesson": lesson["id"]}))
        .await;
    let shown = ws.state_where(|s| s["version"] == ack["version"]).await;
    let html = shown["slide"]["html"].as_str().unwrap().to_owned();
    assert!(
        html.len() > 250_000,
        "the slide renders to {} bytes",
        html.len()
    );

    let before = disk_use(dir.path());
    let mut last = ack;
    for i in 0..30 {
        last = ws
            .command(board_id, "blank", json!({"on": i % 2 == 0}))
            .await;
        assert_eq!(last["type"], "ack", "{last}");
    }
    let grown = disk_use(dir.path()).saturating_sub(before);
    // With the rendered slide in every stored state this grew by 30 × half a megabyte.
    assert!(
        grown < 2 * 1024 * 1024,
        "30 toggles grew the data directory by {grown} bytes"
    );

    // The slide is derived again from the lesson when the state is read back.
    drop(ws);
    drop(server);
    let server = Process::start(dir.path());
    let mut ws = console(&server.base, token, board_id).await;
    let restored = ws.state_where(|_| true).await;
    assert_eq!(restored["version"], last["version"]);
    assert_eq!(restored["blanked"], false);
    assert_eq!(restored["slide"]["html"].as_str(), Some(html.as_str()));
}
