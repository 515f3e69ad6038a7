//! The live classroom over real WebSockets and the SSE fallback, against the real server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::harness::*;

/// Longest any single expected message may take; a deadline, not a sleep.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// A WebSocket client. Messages read while waiting for another kind are kept, in order, for
/// later `until` calls: the server's forwarders may interleave message kinds in any order.
pub(crate) struct Ws(
    pub(crate) WebSocketStream<MaybeTlsStream<TcpStream>>,
    std::collections::VecDeque<Value>,
);

impl Ws {
    pub(crate) async fn open(
        app: &TestApp,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        Ws::open_at(&app.base, origin).await
    }

    pub(crate) async fn open_at(
        base: &str,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut request =
            format!("{}/ws", base.replace("http://", "ws://")).into_client_request()?;
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        Ok(Ws(
            tokio_tungstenite::connect_async(request).await?.0,
            Default::default(),
        ))
    }

    pub(crate) async fn teacher(app: &TestApp, t: &Teacher, boards: &[&str]) -> Ws {
        let mut ws = Ws::open(app, None).await.unwrap();
        let boards: Vec<Value> = boards
            .iter()
            .map(|b| json!({"board": b, "version": 0}))
            .collect();
        ws.send(json!({"type": "hello", "protocol": 1, "role": "teacher", "token": t.token, "boards": boards})).await;
        assert_eq!(ws.next().await["type"], "welcome");
        ws
    }

    pub(crate) async fn board(app: &TestApp, board: &Claimed) -> Ws {
        let mut ws = Ws::open(app, None).await.unwrap();
        ws.send(json!({"type": "hello", "protocol": 1, "role": "board", "token": board.token, "version": 0})).await;
        assert_eq!(ws.next().await["type"], "welcome");
        ws
    }

    pub(crate) async fn send(&mut self, v: Value) {
        self.0
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The next text message.
    pub(crate) async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("a message within the deadline")
                .expect("the connection is open")
                .expect("a readable frame");
            if let Message::Text(text) = msg {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// The first message, kept or new, that matches.
    pub(crate) async fn until(&mut self, what: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.1.iter().position(&what) {
            return self.1.remove(i).unwrap();
        }
        loop {
            let msg = self.next().await;
            if what(&msg) {
                return msg;
            }
            self.1.push_back(msg);
        }
    }

    pub(crate) async fn state_where(&mut self, what: impl Fn(&Value) -> bool) -> Value {
        self.until(|m| m["type"] == "state" && what(&m["state"]))
            .await["state"]
            .clone()
    }

    pub(crate) async fn command(&mut self, board: &str, op: &str, args: Value) -> Value {
        let id = Uuid::now_v7();
        self.send(json!({"type": "command", "id": id, "board": board, "op": op, "args": args}))
            .await;
        self.until(|m| (m["type"] == "ack" || m["type"] == "error") && m["id"] == id.to_string())
            .await
    }

    /// Closes the connection and waits until the server has let go of it.
    pub(crate) async fn close_and_wait(mut self) {
        self.0.close(None).await.unwrap();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.0.next()).await {}
    }

    /// The close code the server ends the connection with.
    pub(crate) async fn close_code(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("closed within the deadline")
            {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

pub(crate) struct Claimed {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) code: String,
}

pub(crate) async fn claim(app: &TestApp) -> Claimed {
    let res = app.post_json("/api/boards/claim", &json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    Claimed {
        id: body["board_id"].as_str().unwrap().to_owned(),
        token: body["board_token"].as_str().unwrap().to_owned(),
        code: body["code"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn pair(app: &TestApp, t: &Teacher, code: &str, name: &str) -> reqwest::Response {
    app.as_teacher(Method::POST, "/api/boards/pair", t)
        .json(&json!({"code": code, "name": name}))
        .send()
        .await
        .unwrap()
}

/// Unpairs the board from the teacher.
pub(crate) async fn unpair(app: &TestApp, t: &Teacher, board: &str) {
    let res = app
        .as_teacher(Method::DELETE, &format!("/api/boards/{board}"), t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// A teacher with a paired board and a three-slide lesson.
pub(crate) async fn classroom(app: &TestApp) -> (Teacher, Claimed, String) {
    let t = app.register("teacher@school.org").await;
    let board = claim(app).await;
    assert_eq!(
        pair(app, &t, &board.code, "Room 12").await.status(),
        StatusCode::CREATED
    );
    let lesson = app
        .create_lesson(
            &t,
            json!({"title": "Fractions", "slides": [
                text_slide("One"),
                {"kind": "question", "title": "Two", "answer": "3/4", "notes": "ask Sam"},
                {"kind": "timer", "title": "Three", "seconds": 60},
            ]}),
        )
        .await;
    (t, board, lesson["id"].as_str().unwrap().to_owned())
}

/// A second teacher, with a one-slide lesson of their own.
pub(crate) async fn another_teacher_with_a_lesson(app: &TestApp) -> (Teacher, Value) {
    let other = app.register("other@school.org").await;
    let lesson = app
        .create_lesson(
            &other,
            json!({"title": "Theirs", "slides": [text_slide("x")]}),
        )
        .await;
    (other, lesson)
}

#[tokio::test]
async fn a_board_pairs_with_its_code_and_then_follows_the_teachers_commands() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut screen = Ws::board(&app, &board).await;
    let pairing = screen.until(|m| m["type"] == "pairing").await;
    assert_eq!(pairing["paired_with"], json!(["Test Teacher"]));
    let fresh = pairing["code"]["code"].as_str().unwrap();
    assert_ne!(
        fresh, board.code,
        "the spent code was replaced for the next teacher"
    );

    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let shown = screen.state_where(|s| s["version"] == ack["version"]).await;
    assert_eq!(shown["slide"]["title"], "One");
    assert_eq!(shown["lesson"]["slide_count"], 3);
    assert_eq!(shown["presenter"]["name"], "Test Teacher");

    let ack = console.command(&board.id, "next", json!({})).await;
    let shown = screen.state_where(|s| s["version"] == ack["version"]).await;
    assert_eq!(shown["slide"]["title"], "Two");
    assert!(
        shown["slide"]["answer"].is_null(),
        "the answer waits for reveal"
    );
    assert!(
        !shown.to_string().contains("ask Sam"),
        "speaker notes never reach the board"
    );

    let ack = console
        .command(&board.id, "reveal", json!({"on": true}))
        .await;
    let shown = screen.state_where(|s| s["version"] == ack["version"]).await;
    assert_eq!(shown["slide"]["answer"], "3/4");

    // The board says what it shows; the console learns the board is in sync.
    screen
        .send(json!({"type": "rendered", "version": shown["version"]}))
        .await;
    let status = console
        .until(|m| m["type"] == "board" && m["rendered_version"] == shown["version"])
        .await;
    assert_eq!(status["online"], true);

    // While presenting, the board shows no code.
    screen
        .until(|m| m["type"] == "pairing" && m["code"].is_null())
        .await;
}

/// A classroom presenting its lesson, moved on to the second slide, which the board has
/// received; the acknowledgements of both commands.
async fn on_the_second_slide(app: &TestApp) -> (Teacher, Ws, Ws, [Value; 2]) {
    let (t, board, lesson) = classroom(app).await;
    let mut screen = Ws::board(app, &board).await;
    let mut console = Ws::teacher(app, &t, &[&board.id]).await;
    let first = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    let second = console.command(&board.id, "next", json!({})).await;
    screen
        .state_where(|s| s["version"] == second["version"])
        .await;
    (t, screen, console, [first, second])
}

#[tokio::test]
async fn a_stale_rendered_report_does_not_set_the_board_back() {
    let app = spawn_app().await;
    let (t, mut screen, _console, [first, second]) = on_the_second_slide(&app).await;
    screen
        .send(json!({"type": "rendered", "version": second["version"]}))
        .await;
    // A late report of the older state, then a ping: once the pong is back, the server has
    // handled the report (one connection's messages are handled in order).
    screen
        .send(json!({"type": "rendered", "version": first["version"]}))
        .await;
    screen.send(json!({"type": "ping", "t0": 1})).await;
    screen.until(|m| m["type"] == "pong").await;

    let boards = app.get_json("/api/boards", &t).await;
    assert_eq!(boards["items"][0]["rendered_version"], second["version"]);
}

#[tokio::test]
async fn the_console_learns_what_the_board_holds_of_the_lesson() {
    let app = spawn_app().await;
    let (t, mut screen, mut console, [first, second]) = on_the_second_slide(&app).await;
    let report = |ready: bool, cached: bool, version: &Value| json!({"type": "rendered", "version": version, "ready": ready, "cached": cached});
    // A board of an older build says nothing of it: it holds nothing, as far as anyone knows.
    screen
        .send(json!({"type": "rendered", "version": second["version"]}))
        .await;
    let said = console
        .until(|m| m["type"] == "board" && m["rendered_version"] == second["version"])
        .await;
    assert_eq!(
        (&said["ready"], &said["cached"]),
        (&json!(false), &json!(false))
    );
    screen.send(report(true, false, &second["version"])).await;
    console
        .until(|m| m["type"] == "board" && m["ready"] == true && m["cached"] == false)
        .await;
    screen.send(report(true, true, &second["version"])).await;
    console
        .until(|m| m["type"] == "board" && m["cached"] == true)
        .await;
    // A late report of the slide before changes nothing.
    screen.send(report(false, false, &first["version"])).await;
    screen.send(json!({"type": "ping", "t0": 1})).await;
    screen.until(|m| m["type"] == "pong").await;
    let boards = app.get_json("/api/boards", &t).await;
    let listed = &boards["items"][0];
    assert_eq!(
        (
            &listed["rendered_version"],
            &listed["ready"],
            &listed["cached"]
        ),
        (&second["version"], &json!(true), &json!(true))
    );
}

#[tokio::test]
async fn a_board_reads_every_media_of_the_lesson_it_presents_and_nothing_else() {
    use crate::media::{file, upload, GIF, PNG, WEBM};
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let mut ids = Vec::new();
    for magic in [PNG, GIF, WEBM] {
        let res = upload(&app, &t, file(magic, 2_000), "application/octet-stream").await;
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let lesson = app
        .create_lesson(
            &t,
            json!({"title": "Pictures", "slides": [
                {"kind": "image", "media": ids[0]},
                text_slide("Words"),
                {"kind": "image", "media": ids[1]},
                {"kind": "video", "media": ids[2]},
                {"kind": "image", "media": ids[0]},
            ]}),
        )
        .await;
    let media = |token: Option<&str>| {
        let mut req = app.request(Method::GET, "/api/boards/self/media");
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        async move { req.send().await.unwrap() }
    };
    let idle: Value = media(Some(&board.token)).await.json().await.unwrap();
    assert_eq!(idle, json!({"revision": null, "media": []}));
    expect_error(media(None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // A teacher's token is not a board's.
    expect_error(
        media(Some(&t.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = console
        .command(
            &board.id,
            "present",
            json!({"lesson": lesson["id"], "slide": 2}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let held: Value = media(Some(&board.token)).await.json().await.unwrap();
    assert_eq!(held["revision"], lesson["version"]);
    // From the current slide on, then the slides before it; each file once.
    assert_eq!(held["media"], json!([ids[1], ids[2], ids[0]]));
}

#[tokio::test]
async fn a_board_cannot_report_a_version_it_was_never_sent() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut screen = Ws::board(&app, &board).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let shown = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    screen
        .send(json!({"type": "rendered", "version": 9.2e18}))
        .await;
    let refused = screen.until(|m| m["type"] == "error").await;
    assert_eq!(refused["code"], "malformed", "{refused}");
    // The board's real report still counts: its status was not frozen in the future.
    screen
        .send(json!({"type": "rendered", "version": shown["version"]}))
        .await;
    screen.send(json!({"type": "ping", "t0": 1})).await;
    screen.until(|m| m["type"] == "pong").await;
    let boards = app.get_json("/api/boards", &t).await;
    assert_eq!(boards["items"][0]["rendered_version"], shown["version"]);
}

#[tokio::test]
async fn an_acknowledged_command_survives_a_restart_and_a_repeated_id_acts_once() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;

    let id = Uuid::now_v7();
    let next = json!({"type": "command", "id": id, "board": board.id, "op": "next", "args": {}});
    console.send(next.clone()).await;
    let first = console.until(|m| m["type"] == "ack").await;
    drop(console);

    // The client did not see the ack (say) and resends after reconnecting.
    let mut again = Ws::teacher(&app, &t, &[&board.id]).await;
    let state = again.state_where(|_| true).await;
    assert_eq!(state["slide_index"], 1);
    again.send(next).await;
    let second = again.until(|m| m["type"] == "ack").await;
    assert_eq!(
        second["version"], first["version"],
        "acked again with the same version"
    );
    let mut screen = Ws::board(&app, &board).await;
    let state = screen.state_where(|_| true).await;
    assert_eq!(
        state["slide_index"], 1,
        "the repeated command had no second effect"
    );
    assert_eq!(state["version"], first["version"]);
}

#[tokio::test]
async fn two_devices_of_one_teacher_see_each_others_changes() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut laptop = Ws::teacher(&app, &t, &[&board.id]).await;
    let mut phone = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = laptop
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    phone.state_where(|s| s["version"] == ack["version"]).await;
    let ack = phone.command(&board.id, "blank", json!({"on": true})).await;
    let seen = laptop.state_where(|s| s["version"] == ack["version"]).await;
    assert_eq!(seen["blanked"], true);
    let mut versions = vec![];
    for op in ["next", "next", "prev"] {
        versions.push(
            laptop.command(&board.id, op, json!({})).await["version"]
                .as_i64()
                .unwrap(),
        );
    }
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions only grow: {versions:?}"
    );
}

#[tokio::test]
async fn another_teachers_board_is_neither_visible_nor_steerable() {
    let app = spawn_app().await;
    let (_, board, _) = classroom(&app).await;
    let (other, other_lesson) = another_teacher_with_a_lesson(&app).await;
    let mut ws = Ws::open(&app, None).await.unwrap();
    ws.send(
        json!({"type": "hello", "protocol": 1, "role": "teacher", "token": other.token,
        "boards": [{"board": board.id, "version": 0}]}),
    )
    .await;
    assert_eq!(ws.next().await["type"], "welcome");
    let refused = ws.until(|m| m["type"] == "error").await;
    assert_eq!(refused["code"], "not_found");
    let reply = ws
        .command(&board.id, "present", json!({"lesson": other_lesson["id"]}))
        .await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "not_found");
    let res = app
        .as_teacher(Method::DELETE, &format!("/api/boards/{}", board.id), &other)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_teacher_cannot_present_someone_elses_lesson() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let (_, foreign) = another_teacher_with_a_lesson(&app).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let reply = console
        .command(&board.id, "present", json!({"lesson": foreign["id"]}))
        .await;
    assert_eq!(reply["code"], "not_found");
}

#[tokio::test]
async fn a_missing_or_wrong_token_or_a_late_hello_is_refused_with_4401() {
    let app = spawn_app().await;
    let mut ws = Ws::open(&app, None).await.unwrap();
    ws.send(json!({"type": "hello", "protocol": 1, "role": "teacher", "token": "wrong"}))
        .await;
    assert_eq!(ws.close_code().await, 4401);
    let mut ws = Ws::open(&app, None).await.unwrap();
    ws.send(json!({"type": "ping", "t0": 1})).await;
    assert_eq!(ws.close_code().await, 4401);
    let mut ws = Ws::open(&app, None).await.unwrap();
    ws.send(json!({"type": "hello", "protocol": 99, "role": "board", "token": "x"}))
        .await;
    assert_eq!(ws.close_code().await, 4409);
}

#[tokio::test]
async fn a_foreign_origin_cannot_open_a_live_connection() {
    let app = spawn_app().await;
    let refused = Ws::open(&app, Some("https://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected a 403, got {:?}", other.map(|_| ())),
    }
    let own = app.base.clone();
    assert!(
        Ws::open(&app, Some(&own)).await.is_ok(),
        "the server's own origin is fine"
    );
    let allowed = spawn_with(|c| c.allowed_origins = vec!["https://school.example".into()]).await;
    assert!(Ws::open(&allowed, Some("https://school.example"))
        .await
        .is_ok());
}

#[tokio::test]
async fn malformed_and_oversized_frames_are_answered_without_harm() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    ws.0.send(Message::Text("{not json".into())).await.unwrap();
    let e = ws.until(|m| m["type"] == "error").await;
    assert_eq!(e["code"], "malformed");
    let e = ws.command(&board.id, "fly", json!({})).await;
    assert_eq!(e["code"], "invalid_command");
    // Still usable after bad input.
    assert_eq!(
        ws.command(&board.id, "present", json!({"lesson": lesson}))
            .await["type"],
        "ack"
    );

    let mut big = Ws::teacher(&app, &t, &[&board.id]).await;
    let huge = "x".repeat(100 * 1024);
    let _ = big
        .0
        .send(Message::Text(
            format!("{{\"type\":\"ping\",\"pad\":\"{huge}\"}}").into(),
        ))
        .await;
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match big.0.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "an oversized frame ends only that connection"
    );
    // The other connection and the server carry on.
    assert_eq!(
        ws.command(&board.id, "next", json!({})).await["type"],
        "ack"
    );

    // Binary frames are refused like malformed text, and count with it: the 21st refused
    // message closes the connection (refusals still queued then may not all be sent).
    let mut binary = Ws::teacher(&app, &t, &[&board.id]).await;
    binary
        .0
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    for _ in 0..20 {
        binary
            .0
            .send(Message::Binary(vec![1, 2, 3].into()))
            .await
            .unwrap();
    }
    let mut refused = 0;
    let code = loop {
        match tokio::time::timeout(PATIENCE, binary.0.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(text))) => {
                let m: Value = serde_json::from_str(&text).unwrap();
                if m["type"] == "error" {
                    assert_eq!(m["code"], "malformed");
                    refused += 1;
                }
            }
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            other => panic!("expected errors, then a close: {other:?}"),
        }
    };
    assert_eq!(code, 4400);
    assert!((1..=20).contains(&refused), "{refused}");
}

#[tokio::test]
async fn a_flood_of_messages_is_rate_limited_per_connection() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    // The budget is a burst of 40, then 20 a second: 60 at once overdraws it, while staying
    // under the strikes that would close the connection.
    for i in 0..60 {
        ws.send(json!({"type": "ping", "t0": i})).await;
    }
    let limited = ws
        .until(|m| m["type"] == "error" && m["code"] == "rate_limited")
        .await;
    assert!(limited["message"].as_str().unwrap().contains("slow down"));
}

#[tokio::test]
async fn codes_are_single_use_and_unpairing_tells_the_board() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let second = app.register("second@school.org").await;
    let res = pair(&app, &second, &board.code, "Stolen").await;
    expect_error(res, StatusCode::NOT_FOUND, "unknown_code").await;

    let mut screen = Ws::board(&app, &board).await;
    let pairing = screen.until(|m| m["type"] == "pairing").await;
    let code = pairing["code"]["code"].as_str().unwrap().to_owned();
    let formatted = format!("{} {}", &code[..3], &code[3..]);
    assert_eq!(
        pair(&app, &second, &formatted, "Shared room")
            .await
            .status(),
        StatusCode::CREATED
    );
    let pairing = screen
        .until(|m| m["type"] == "pairing" && m["paired_with"].as_array().unwrap().len() == 2)
        .await;
    assert_eq!(
        pairing["paired_with"],
        json!(["Test Teacher", "Test Teacher"])
    );

    unpair(&app, &t, &board.id).await;
    screen
        .until(|m| m["type"] == "pairing" && m["paired_with"].as_array().unwrap().len() == 1)
        .await;
    let boards = app.get_json("/api/boards", &t).await;
    assert_eq!(boards["items"], json!([]));
    let boards = app.get_json("/api/boards", &second).await;
    assert_eq!(boards["items"][0]["name"], "Shared room");
    assert_eq!(boards["items"][0]["online"], true);
}

#[tokio::test]
async fn walking_the_million_codes_is_stopped_by_the_rate_limiter() {
    let app = spawn_app().await;
    let t = app.register("guesser@school.org").await;
    let mut checked = 0;
    let mut refused = 0;
    for guess in 0..200 {
        let res = pair(&app, &t, &format!("{:06}", guess * 4999 % 1_000_000), "x").await;
        match res.status() {
            StatusCode::NOT_FOUND => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert!(res.headers().contains_key("retry-after"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    // 10 guesses get through before the per-account limit; at one guess per 10 s after that,
    // covering even 1% of the 10^6 codes would take more than a day per account, and the
    // node-wide limit (one a second) caps any number of accounts together.
    assert!(checked <= 11, "{checked} guesses were checked");
    assert_eq!(checked + refused, 200);
}

#[tokio::test]
async fn the_fallback_transport_carries_the_same_protocol() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let res = app
        .as_teacher(
            Method::GET,
            &format!("/api/live/events?role=teacher&boards={}:0", board.id),
            &t,
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut events = res;
    let mut buffer = String::new();
    assert_eq!(
        next_event(&mut events, &mut buffer).await["type"],
        "welcome"
    );
    let id = Uuid::now_v7();
    let res = app
        .as_teacher(Method::POST, "/api/live/messages", &t)
        .json(&json!({"type": "command", "id": id, "board": board.id, "op": "present", "args": {"lesson": lesson}}))
        .send()
        .await
        .unwrap();
    let ack: Value = res.json().await.unwrap();
    assert_eq!(ack["type"], "ack");
    loop {
        let event = next_event(&mut events, &mut buffer).await;
        if event["type"] == "state" && event["state"]["version"] == ack["version"] {
            assert_eq!(event["state"]["slide"]["title"], "One");
            break;
        }
    }
    let time: Value = app.public_json("/api/live/time").await;
    assert!(time["server_time"].as_i64().unwrap() > 1_700_000_000_000);
}

#[tokio::test]
async fn a_board_token_identifies_the_board_and_nothing_else() {
    let app = spawn_app().await;
    let board = claim(&app).await;
    let me: Value = app
        .request(Method::GET, "/api/boards/self")
        .bearer_auth(&board.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["board_id"], board.id.as_str());
    assert_eq!(me["code"]["code"], board.code.as_str());
    assert_eq!(me["paired_with"], json!([]));
    let res = app
        .request(Method::GET, "/api/me")
        .bearer_auth(&board.token)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .request(Method::POST, "/api/boards/code")
        .bearer_auth("nonsense")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

/// The next SSE event's data, parsed.
pub(crate) async fn next_event(stream: &mut reqwest::Response, buffer: &mut String) -> Value {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(data).unwrap();
            }
            continue;
        }
        let chunk = tokio::time::timeout(PATIENCE, stream.chunk())
            .await
            .expect("an event within the deadline")
            .unwrap()
            .expect("the stream is open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn heartbeats_find_a_peer_that_stopped_answering() {
    let app = spawn_with(|c| c.heartbeat_ms = Some(150)).await;
    let (t, board, _) = classroom(&app).await;
    let mut alive = Ws::teacher(&app, &t, &[&board.id]).await;
    let mut dead = Ws::teacher(&app, &t, &[&board.id]).await;
    // `dead` stops reading, so it never answers the server's pings. `alive` keeps reading
    // (answering pings as it goes) until `dead` has surely been given up on.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1_500);
    while tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout_at(deadline, alive.0.next()).await;
    }
    // Reading now, the client first flushes its overdue pongs into a socket the server has
    // already closed: either the 4408 close frame or that broken pipe shows it was dropped.
    // Messages queued before that are still in the socket and read first.
    loop {
        match tokio::time::timeout(PATIENCE, dead.0.next())
            .await
            .expect("the silent peer was dropped")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4408);
                break;
            }
            Some(Err(_)) | None => break,
            Some(Ok(_)) => continue,
        }
    }
    alive.send(json!({"type": "ping", "t0": 1})).await;
    assert_eq!(alive.until(|m| m["type"] == "pong").await["t0"], 1.0);
}

#[tokio::test]
async fn a_stopping_server_takes_no_new_connections_and_tells_live_clients_to_move_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = crate::harness::Process::start(dir.path());
    let base = server.base.clone();
    let res = reqwest::Client::new()
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "t@school.org", "name": "T", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = Ws::open_at(&base, None).await.unwrap();
    ws.send(
        json!({"type": "hello", "protocol": 1, "role": "teacher", "token": token, "boards": []}),
    )
    .await;
    assert_eq!(ws.next().await["type"], "welcome");
    let mut events = reqwest::Client::new()
        .get(format!("{base}/api/live/events?role=teacher"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let mut buffer = String::new();
    assert_eq!(
        next_event(&mut events, &mut buffer).await["type"],
        "welcome"
    );

    server.terminate();
    assert_eq!(
        ws.close_code().await,
        1012,
        "the WebSocket is told the server is restarting"
    );
    // The node stopped accepting before it told its clients to move: one reconnecting at
    // once is refused and goes to another host, rather than back to the node on its way out.
    let address = base.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "no new connection is taken once clients are told to move"
    );
    // The event stream says the same with a named event, then ends.
    let said = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(chunk)) = events.chunk().await {
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        buffer
    })
    .await
    .expect("the event stream ends");
    assert!(
        said.ends_with("event: restart\ndata: {\"type\":\"restart\"}\n\n"),
        "{said:?}"
    );
    assert!(
        server.exited_within(PATIENCE),
        "the process exits despite open streams"
    );
}

#[tokio::test]
async fn an_expired_code_pairs_nothing_and_the_board_gets_a_fresh_one() {
    let app = spawn_with(|c| c.code_ttl_secs = Some(2)).await;
    let t = app.register("late@school.org").await;
    let board = claim(&app).await;
    // Until the board is shown a new code: the first has expired.
    let fresh = crate::eventually::eventually!(PATIENCE, Duration::from_millis(100), {
        let me: Value = app
            .request(Method::GET, "/api/boards/self")
            .bearer_auth(&board.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = me["code"]["code"].as_str().unwrap().to_owned();
        match code != board.code {
            true => Ok(code),
            false => Err("the code never expired".to_owned()),
        }
    });
    let res = pair(&app, &t, &board.code, "Too late").await;
    expect_error(res, StatusCode::NOT_FOUND, "unknown_code").await;
    assert_eq!(
        pair(&app, &t, &fresh, "Room 3").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_command_waiting_for_a_newer_state_holds_up_neither_its_connection_nor_other_teachers() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut first = Ws::teacher(&app, &t, &[&board.id]).await;
    let mut second = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = first
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    first.state_where(|s| s["version"] == ack["version"]).await;
    // A `seen` 10 s ahead: a state this server waits for (2 s) and never gets.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ahead = (now_ms + 10_000) << 10;
    let waiting = Uuid::now_v7();
    first
        .send(json!({"type": "command", "id": waiting, "board": board.id, "op": "next", "args": {}, "seen": ahead}))
        .await;
    first.send(json!({"type": "ping", "t0": 7})).await;
    // Meanwhile the same board takes another device's command at once...
    let other = second.command(&board.id, "goto", json!({"slide": 2})).await;
    assert_eq!(other["type"], "ack", "{other}");
    // ...and the waiting connection answers its ping and follows that state before it is
    // told its own command found no newer state.
    let mut order = Vec::new();
    loop {
        let msg = first.next().await;
        let what = match msg["type"].as_str().unwrap() {
            "pong" => "pong".to_owned(),
            "state" if msg["state"]["version"] == other["version"] => "state".to_owned(),
            "error" if msg["id"] == waiting.to_string() => {
                assert_eq!(msg["code"], "unavailable", "{msg}");
                "refused".to_owned()
            }
            _ => continue,
        };
        order.push(what);
        if order.last().unwrap() == "refused" {
            break;
        }
    }
    order.sort();
    assert_eq!(
        order,
        ["pong", "refused", "state"],
        "both before the refusal"
    );
    // A `seen` no server can have made (far past every clock) is refused at once.
    first
        .send(json!({"type": "command", "id": Uuid::now_v7(), "board": board.id, "op": "next", "args": {}, "seen": 9_007_199_254_740_991_i64}))
        .await;
    let refusal = first.until(|m| m["type"] == "error").await;
    assert_eq!(refusal["code"], "invalid_command", "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("seen"));
}

#[tokio::test]
async fn a_board_gets_the_qr_code_of_its_own_current_code_only() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let qr = |url: &str, token: Option<&str>| {
        let mut req = app
            .request(Method::GET, "/api/boards/self/qr")
            .query(&[("url", url)]);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    let res = qr("https://classcast.school.org/teach", Some(&board.token))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let svg = res.text().await.unwrap();
    assert!(svg.starts_with("<svg") && !svg.contains("script"), "{svg}");

    let res = qr("javascript:alert(1)", Some(&board.token)).await.unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_url").await;
    let res = qr("https://classcast.school.org/teach", None)
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = qr("https://classcast.school.org/teach", Some(&t.token))
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A presenting board shows no code, so it has no QR code either.
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = console
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(ack["type"], "ack");
    let res = qr("https://classcast.school.org/teach", Some(&board.token))
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "no_code").await;
}

#[tokio::test]
async fn a_teacher_who_keeps_their_name_off_the_board_is_named_nowhere_on_it() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut screen = Ws::board(&app, &board).await;
    let named = screen.until(|m| m["type"] == "pairing").await;
    assert_eq!(
        (named["paired"].clone(), named["paired_with"].clone()),
        (json!(true), json!(["Test Teacher"]))
    );
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let ack = console
        .command(&board.id, "show_name", json!({"on": false}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Still paired, and named neither in its pairing nor when it asks who controls it...
    let hidden = screen
        .until(|m| m["type"] == "pairing" && m["paired_with"] == json!([]))
        .await;
    assert_eq!(hidden["paired"], true);
    let own: Value = app
        .request(Method::GET, "/api/boards/self")
        .bearer_auth(&board.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (own["paired"].clone(), own["paired_with"].clone()),
        (json!(true), json!([]))
    );
    // ...through a presentation and after it.
    let ack = console
        .command(
            &board.id,
            "present",
            json!({"lesson": lesson, "show_name": false}),
        )
        .await;
    screen.state_where(|s| s["version"] == ack["version"]).await;
    let ack = console.command(&board.id, "end", json!({})).await;
    let idle = screen.state_where(|s| s["version"] == ack["version"]).await;
    assert_eq!(idle["name_hidden"], true);
    let after = screen.until(|m| m["type"] == "pairing").await;
    assert_eq!(after["paired_with"], json!([]), "{after}");
    assert!(!after.to_string().contains("Test Teacher"));
    // Shown again when the teacher says so.
    console
        .command(&board.id, "show_name", json!({"on": true}))
        .await;
    screen
        .until(|m| m["type"] == "pairing" && m["paired_with"] == json!(["Test Teacher"]))
        .await;
}
