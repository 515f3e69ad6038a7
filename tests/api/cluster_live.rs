//! Live classrooms across the nodes of a cluster against real PostgreSQL servers: a teacher
//! on one node steering a board on another, revocations and sign-outs reaching the other
//! node, a node behind what the teacher saw waiting for it, and nodes sharing no database.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::{differences, node_on, replicating_pair, replication_into, until_replicated};
use crate::eventually::eventually;
use crate::harness::{cli, text_slide, TestApp};
use crate::live::{claim, classroom, pair, Ws, PATIENCE};
use crate::tools::{missing, Tool};

/// Waits until the pairing code reaches the database of `app`'s node, then pairs with it.
pub(crate) async fn pair_once_replicated(app: &TestApp, t: &crate::harness::Teacher, code: &str) {
    eventually!(PATIENCE, Duration::from_millis(50), {
        let res = pair(app, t, code, "Room 12").await;
        match res.status() {
            reqwest::StatusCode::CREATED => Ok(()),
            reqwest::StatusCode::NOT_FOUND => Err("the code never arrived".to_owned()),
            other => panic!("pairing answered {other}"),
        }
    })
}

/// A board on node 2 paired through node 1, its page connected to node 2 and `t`'s console
/// to node 1 (the session made on node 1 works on node 2 once replicated, but the teacher
/// stays on node 1), the console seeing the board online.
async fn board_on_2_followed_from_1(
    app_1: &TestApp,
    app_2: &TestApp,
    t: &crate::harness::Teacher,
) -> (crate::live::Claimed, Ws, Ws) {
    let board = claim(app_2).await;
    pair_once_replicated(app_1, t, &board.code).await;
    let board_ws = Ws::board(app_2, &board).await;
    let mut teacher = Ws::teacher(app_1, t, &[&board.id]).await;
    teacher
        .until(|m| m["type"] == "board" && m["online"] == true)
        .await;
    (board, board_ws, teacher)
}

#[tokio::test]
async fn a_teacher_on_one_node_steers_a_board_on_another_and_sees_it_online() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let (_node_1, app_1) = node_on(&[&url_a, &url_b]);
    let (_node_2, app_2) = node_on(&[&url_b, &url_a]);
    let t = app_1.register("across@school.org").await;
    let lesson = app_1
        .create_lesson(
            &t,
            json!({"title": "Across", "slides": [text_slide("One"), text_slide("Two"), text_slide("Three")]}),
        )
        .await;
    let lesson = lesson["id"].as_str().unwrap();
    let (board, mut board_ws, mut teacher) = board_on_2_followed_from_1(&app_1, &app_2, &t).await;
    let ack = teacher
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let shown = board_ws
        .state_where(|s| s["version"] == ack["version"])
        .await;
    assert_eq!(shown["slide_index"], 0);
    for expected in [1, 2] {
        let ack = teacher.command(&board.id, "next", json!({})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let shown = board_ws
            .state_where(|s| s["version"] == ack["version"])
            .await;
        assert_eq!(shown["slide_index"], expected);
    }
    // What the board on node 2 reports showing reaches the teacher on node 1.
    board_ws
        .send(
            json!({"type": "rendered", "version": shown["version"], "ready": true, "cached": true}),
        )
        .await;
    teacher
        .until(|m| {
            m["type"] == "board" && m["rendered_version"] == shown["version"] && m["cached"] == true
        })
        .await;
    board_ws.close_and_wait().await;
    teacher
        .until(|m| m["type"] == "board" && m["online"] == false)
        .await;

    // Unpaired through node 2, the teacher's feed on node 1 ends within seconds, not when
    // node 1's trust in the pairing lapses.
    crate::live::unpair(&app_2, &t, &board.id).await;
    let ended = teacher
        .until(|m| m["type"] == "unfollowed" && m["board"] == board.id.as_str())
        .await;
    assert_eq!(ended["reason"], "unpaired");
    let refused = teacher.command(&board.id, "prev", json!({})).await;
    assert_eq!(refused["type"], "error", "{refused}");
}

#[tokio::test]
async fn a_board_revoked_through_one_node_closes_on_another_at_once() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let (_node_1, app_1) = node_on(&[&url_a, &url_b]);
    let (_node_2, app_2) = node_on(&[&url_b, &url_a]);
    let t = app_1.register("revoker@school.org").await;
    let (board, mut board_ws, _teacher) = board_on_2_followed_from_1(&app_1, &app_2, &t).await;

    let res = app_1
        .as_teacher(
            reqwest::Method::POST,
            &format!("/api/boards/{}/revoke", board.id),
            &t,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    // The bus tells node 2 before replication may have brought the revocation.
    assert_eq!(board_ws.close_code().await, 4403);
}

/// Sends a command saying the client has seen `seen`; returns its `ack` or `error`.
async fn command_seen(ws: &mut Ws, id: uuid::Uuid, board: &str, op: &str, seen: &Value) -> Value {
    ws.send(
        json!({"type": "command", "id": id, "board": board, "op": op, "args": {}, "seen": seen}),
    )
    .await;
    ws.until(|m| (m["type"] == "ack" || m["type"] == "error") && m["id"] == id.to_string())
        .await
}

#[tokio::test]
async fn a_node_behind_what_the_teacher_saw_waits_for_it_instead_of_acting_on_an_older_slide() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let urls = [url_a.as_str(), url_b.as_str()];
    // Each node on one database only: what node 2 knows is what replication brought to B.
    let (_node_1, app_1) = node_on(&[&url_a]);
    let (_node_2, app_2) = node_on(&[&url_b]);
    let (t, board, lesson) = classroom(&app_1).await;
    let mut on_1 = Ws::teacher(&app_1, &t, &[&board.id]).await;
    let presented = on_1
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(presented["type"], "ack", "{presented}");
    until_replicated(&urls, "SELECT COUNT(*) FROM board_state", 1).await;
    until_replicated(&urls, "SELECT COUNT(*) FROM session", 1).await;

    // B stops receiving; the teacher moves on to slide 2 through node 1 ...
    replication_into(&url_b, false).await;
    let moved = on_1.command(&board.id, "next", json!({})).await;
    assert_eq!(moved["type"], "ack", "{moved}");
    // ... then, their node gone, presses next again through node 2.
    let mut on_2 = Ws::teacher(&app_2, &t, &[&board.id]).await;
    let id = uuid::Uuid::now_v7();
    let refused = command_seen(&mut on_2, id, &board.id, "next", &moved["version"]).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unavailable", "{refused}");

    // Once B has caught up, the resend applies to the slide the teacher saw: slide 3.
    replication_into(&url_b, true).await;
    // Each refusal comes after the server's own wait for the state: asked again at once.
    let acked = eventually!(PATIENCE * 2, Duration::ZERO, {
        let answer = command_seen(&mut on_2, id, &board.id, "next", &moved["version"]).await;
        match answer["type"] == "ack" {
            true => Ok(answer),
            false => {
                assert_eq!(answer["code"], "unavailable", "{answer}");
                Err("B never caught up".to_owned())
            }
        }
    });
    let shown = on_2.state_where(|s| s["version"] == acked["version"]).await;
    assert_eq!(
        shown["slide_index"], 2,
        "applied to slide 2, not to slide 1"
    );
    eventually!(PATIENCE, Duration::from_millis(100), {
        let differing = differences(&url_a, &url_b).await;
        match differing.is_empty() {
            true => Ok(()),
            false => Err(format!("rows differ: {differing:?}")),
        }
    });
}

#[tokio::test]
async fn signing_out_or_disabling_on_one_node_ends_live_control_on_another_within_seconds() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    let urls = [url_a.as_str(), url_b.as_str()];
    let (_node_1, app_1) = node_on(&[&url_a]);
    let (_node_2, app_2) = node_on(&[&url_b]);
    let (t, board, _) = classroom(&app_1).await;
    until_replicated(&urls, "SELECT COUNT(*) FROM session", 1).await;

    // Signed out through node 2: the console on node 1 is closed.
    let mut on_1 = Ws::teacher(&app_1, &t, &[&board.id]).await;
    let res = app_2
        .as_teacher(reqwest::Method::POST, "/api/auth/logout", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    let signed_out = tokio::time::Instant::now();
    assert_eq!(on_1.close_code().await, 4403);
    eprintln!(
        "signed out on node 2: node 1 closed the console {:?} later",
        signed_out.elapsed()
    );

    // Disabled with `classcast user disable` on database B: the same on node 1.
    let t = app_1.login("teacher@school.org").await;
    let mut on_1 = Ws::teacher(&app_1, &t, &[&board.id]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = cli(
        dir.path(),
        &[
            "--database",
            &url_b,
            "user",
            "disable",
            "teacher@school.org",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(on_1.close_code().await, 4403);
    let refused = app_1
        .as_teacher(reqwest::Method::GET, "/api/boards", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn nodes_that_share_no_database_still_bring_a_board_up_to_date_within_seconds() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let (_a, _b, url_a, url_b) = replicating_pair().await;
    // Node 1 knows only A and node 2 only B: no event of one reaches the other; replication
    // and each node's catching up are the only path.
    let (_node_1, app_1) = node_on(&[&url_a]);
    let (_node_2, app_2) = node_on(&[&url_b]);
    let (t, board, lesson) = classroom(&app_1).await;
    until_replicated(&[&url_a, &url_b], "SELECT COUNT(*) FROM board_pairing", 1).await;
    let mut board_ws = Ws::board(&app_2, &board).await;
    let mut teacher = Ws::teacher(&app_1, &t, &[&board.id]).await;
    let presented = teacher
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(presented["type"], "ack", "{presented}");
    let pressed = tokio::time::Instant::now();
    let shown = board_ws
        .state_where(|s| s["version"] == presented["version"])
        .await;
    assert_eq!(shown["slide_index"], 0);
    eprintln!(
        "a board on a node sharing no database showed the press {:?} later",
        pressed.elapsed()
    );
}
