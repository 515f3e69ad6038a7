//! Ending a right ends the live control it gave: a session that is signed out, whose
//! password changes or whose account is disabled loses its open connections, and a teacher
//! who unpairs a board stops receiving it, at once and over every transport.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::harness::*;
use crate::live::{claim, classroom, next_event, pair, unpair, Claimed, Ws};

/// The session's close code on the WebSocket: the session ended, sign in again.
const SESSION_ENDED: u16 = 4403;

/// A teacher presenting on their board over a WebSocket, and the board's own connection.
async fn presenting(app: &TestApp) -> (Teacher, Claimed, Ws, Ws) {
    let (t, board, lesson) = classroom(app).await;
    let screen = Ws::board(app, &board).await;
    let mut console = Ws::teacher(app, &t, &[&board.id]).await;
    let ack = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    (t, board, console, screen)
}

/// An event stream opened with the teacher's token, following `board`.
async fn teacher_events(app: &TestApp, t: &Teacher, board: &str) -> reqwest::Response {
    let res = app
        .as_teacher(
            Method::GET,
            &format!("/api/live/events?role=teacher&boards={board}:0"),
            t,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

/// Reads events until one matches; panics if the stream ends first.
async fn event_where(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    what: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let event = next_event(stream, buffer).await;
        if what(&event) {
            return event;
        }
    }
}

/// Whether the stream ends (within the deadline) without another `state` event.
async fn ends_without_state(stream: &mut reqwest::Response) -> bool {
    loop {
        let chunk = tokio::time::timeout(crate::live::PATIENCE, stream.chunk())
            .await
            .expect("the stream ends within the deadline");
        match chunk {
            Ok(Some(bytes)) if String::from_utf8_lossy(&bytes).contains("\"state\"") => {
                return false
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return true,
        }
    }
}

async fn command_over_http(app: &TestApp, t: &Teacher, board: &str) -> reqwest::Response {
    app.as_teacher(Method::POST, "/api/live/messages", t)
        .json(&json!({"type": "command", "id": Uuid::now_v7(), "board": board, "op": "next", "args": {}}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_out_closes_the_sessions_live_connections_on_both_transports() {
    let app = spawn_app().await;
    let (t, board, mut console, _screen) = presenting(&app).await;
    let mut events = teacher_events(&app, &t, &board.id).await;
    let mut buffer = String::new();
    event_where(&mut events, &mut buffer, |e| e["type"] == "state").await;

    let res = app
        .as_teacher(Method::POST, "/api/auth/logout", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    assert_eq!(console.close_code().await, SESSION_ENDED);
    let said = event_where(&mut events, &mut buffer, |e| e["type"] == "error").await;
    assert_eq!(said["code"], "session_ended", "{said}");
    assert!(ends_without_state(&mut events).await);
    expect_refusal(
        command_over_http(&app, &t, &board.id).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn a_session_signed_out_on_another_device_loses_its_connection_too() {
    let app = spawn_app().await;
    let (t, board, mut console, _screen) = presenting(&app).await;
    // The same session, used from a second connection, is what logging out ends.
    let mut second = Ws::teacher(&app, &t, &[&board.id]).await;
    app.as_teacher(Method::POST, "/api/auth/logout", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(console.close_code().await, SESSION_ENDED);
    assert_eq!(second.close_code().await, SESSION_ENDED);
}

#[tokio::test]
async fn disabling_the_account_from_the_command_line_ends_its_live_control() {
    let app = spawn_app().await;
    let (t, board, mut console, mut screen) = presenting(&app).await;
    let out = cli(app.data_dir(), &["user", "disable", &t.email], "");
    assert!(out.status.success(), "{out:?}");

    assert_eq!(console.close_code().await, SESSION_ENDED);
    expect_refusal(
        command_over_http(&app, &t, &board.id).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // The board still shows the lesson: ending control does not blank the classroom.
    let shown = screen.state_where(|s| !s["lesson"].is_null()).await;
    assert_eq!(shown["slide"]["title"], "One");
}

#[tokio::test]
async fn a_new_password_set_from_the_command_line_ends_the_old_sessions_connections() {
    let app = spawn_app().await;
    let (t, board, mut console, _screen) = presenting(&app).await;
    let mut events = teacher_events(&app, &t, &board.id).await;
    let mut buffer = String::new();
    event_where(&mut events, &mut buffer, |e| e["type"] == "state").await;

    let out = cli(
        app.data_dir(),
        &["user", "set-password", &t.email],
        "a brand new secret\n",
    );
    assert!(out.status.success(), "{out:?}");

    assert_eq!(console.close_code().await, SESSION_ENDED);
    let said = event_where(&mut events, &mut buffer, |e| e["type"] == "error").await;
    assert_eq!(said["code"], "session_ended", "{said}");
    assert!(ends_without_state(&mut events).await);
}

#[tokio::test]
async fn an_unpaired_teacher_stops_receiving_the_board_at_once() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    // A colleague paired with the same board keeps steering it.
    let colleague = app.register("colleague@school.org").await;
    let code = code_shown_by(&app, &board).await;
    assert_eq!(
        pair(&app, &colleague, &code, "Room 12").await.status(),
        StatusCode::CREATED
    );
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let mut theirs = Ws::teacher(&app, &colleague, &[&board.id]).await;
    let ack = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    console
        .state_where(|s| s["version"] == ack["version"])
        .await;

    unpair(&app, &t, &board.id).await;
    let told = console.until(|m| m["type"] == "unfollowed").await;
    assert_eq!(told["board"], board.id.as_str());
    assert_eq!(told["reason"], "unpaired");

    theirs.command(&board.id, "next", json!({})).await;
    let ack = theirs
        .command(&board.id, "reveal", json!({"on": true}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Anything of the board already published reaches an old follower no later than the
    // reply to a message sent after it; two pings make sure of that without sleeping.
    let mut seen = Vec::new();
    for t0 in [1.0, 2.0] {
        console.send(json!({"type": "ping", "t0": t0})).await;
        loop {
            let m = console.next().await;
            if m["type"] == "pong" && m["t0"] == t0 {
                break;
            }
            seen.push(m);
        }
    }
    assert!(
        !seen
            .iter()
            .any(|m| m["type"] == "state" || m["type"] == "board"),
        "the unpaired teacher still received {seen:?}"
    );
    let refused = console
        .command(&board.id, "blank", json!({"on": true}))
        .await;
    assert_eq!(refused["code"], "not_found", "{refused}");
}

/// The code the board shows now (a fresh one after each pairing).
async fn code_shown_by(app: &TestApp, board: &Claimed) -> String {
    let res = app
        .request(Method::GET, "/api/boards/self")
        .bearer_auth(&board.token)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["code"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn pairing_again_after_unpairing_restores_the_feed() {
    let app = spawn_app().await;
    let t = app.register("teacher@school.org").await;
    let board = claim(&app).await;
    pair(&app, &t, &board.code, "Room 1").await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    unpair(&app, &t, &board.id).await;
    console.until(|m| m["type"] == "unfollowed").await;

    let code = code_shown_by(&app, &board).await;
    assert_eq!(
        pair(&app, &t, &code, "Room 1").await.status(),
        StatusCode::CREATED
    );
    console
        .send(json!({"type": "watch", "boards": [{"board": board.id, "version": 0}]}))
        .await;
    let state = console.state_where(|_| true).await;
    assert_eq!(state["board"], board.id.as_str());
}

#[tokio::test]
async fn a_teacher_revokes_a_boards_identity_and_a_copied_token_opens_nothing() {
    let app = spawn_app().await;
    let (t, board, mut console, mut screen) = presenting(&app).await;
    // The same token copied into another browser, following over the event stream.
    let mut copy = app
        .request(Method::GET, "/api/live/events?role=board")
        .bearer_auth(&board.token)
        .send()
        .await
        .unwrap();
    assert_eq!(copy.status(), StatusCode::OK);
    let colleague = app.register("colleague@school.org").await;
    let revoke = |who: &Teacher| {
        app.as_teacher(
            Method::POST,
            &format!("/api/boards/{}/revoke", board.id),
            who,
        )
        .send()
    };
    expect_error(
        revoke(&colleague).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let res = revoke(&t).await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    assert_eq!(screen.close_code().await, SESSION_ENDED);
    let mut buffer = String::new();
    let said = event_where(&mut copy, &mut buffer, |e| e["type"] == "error").await;
    assert_eq!(said["code"], "session_ended", "{said}");
    let told = console.until(|m| m["type"] == "unfollowed").await;
    assert_eq!(told["board"], board.id.as_str());
    let res = app
        .request(Method::GET, "/api/boards/self")
        .bearer_auth(&board.token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let boards: Value = app
        .as_teacher(Method::GET, "/api/boards", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(boards["items"], json!([]), "{boards}");
    expect_error(
        revoke(&t).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // The board's page claims a new identity and is paired again as any new board.
    let fresh = claim(&app).await;
    assert_ne!(fresh.id, board.id);
    assert_eq!(
        pair(&app, &t, &fresh.code, "Room 1").await.status(),
        StatusCode::CREATED
    );
}
