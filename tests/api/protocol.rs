//! docs/protocol.md, point by point, as a client that trusts it relies on it: errors that
//! name the command they answer, close frames that arrive, one set of error codes on both
//! transports, documented limits, numbers every client can hold, and one time format.

use std::collections::HashSet;

use futures_util::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::harness::*;
use crate::live::{claim, classroom, pair, Ws};

/// 2^53: the first whole number a JavaScript client cannot tell from its neighbour.
const TWO_TO_53: u64 = 1 << 53;

fn command(board: &str, op: &str, args: Value) -> (Uuid, Value) {
    let id = Uuid::now_v7();
    let message = json!({"type": "command", "id": id, "board": board, "op": op, "args": args});
    (id, message)
}

/// POSTs one message to the fallback transport with `token`.
async fn post(app: &TestApp, token: &str, message: &Value) -> reqwest::Response {
    app.request(Method::POST, "/api/live/messages")
        .bearer_auth(token)
        .json(message)
        .send()
        .await
        .unwrap()
}

/// Writes `messages`, then 4 MiB more in padded pings, without reading anything, until the
/// server stops taking them. A server that closes its socket with some of this unread resets
/// the connection, and the close frame waiting to be read is lost with it.
async fn keep_sending(ws: &mut Ws, messages: impl Iterator<Item = Value>) {
    let pad = "x".repeat(32 * 1024);
    let padded = (0..128).map(|i| json!({"type": "ping", "t0": i, "pad": pad}));
    for message in messages.chain(padded) {
        if ws
            .0
            .send(Message::Text(message.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}

#[tokio::test]
async fn every_error_a_command_causes_carries_its_id() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    // A command with a bad field is still answered under its id.
    let (id, mut bad) = command(&board.id, "next", json!({}));
    bad["board"] = json!("not a board id");
    ws.send(bad).await;
    let refused = ws.until(|m| m["type"] == "error").await;
    assert_eq!(
        (&refused["code"], &refused["id"]),
        (&json!("malformed"), &json!(id))
    );
    let present = ws
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(present["type"], "ack");

    // 50 back to back overdraw the message budget (40 at once, then 20 a second).
    let mut sent = HashSet::new();
    for i in 0..50 {
        let (id, message) = command(&board.id, ["next", "prev"][i % 2], json!({}));
        sent.insert(id.to_string());
        ws.send(message).await;
    }
    let mut answered = HashSet::new();
    let mut limited = 0;
    while answered.len() < sent.len() {
        let answer = ws
            .until(|m| m["type"] == "ack" || m["type"] == "error")
            .await;
        let id = answer["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {answer}"));
        assert!(sent.contains(id), "an id that was sent: {answer}");
        assert!(answered.insert(id.to_owned()), "answered once: {answer}");
        limited += usize::from(answer["code"] == "rate_limited");
    }
    assert!(limited > 0, "the burst went over the budget");
}

#[tokio::test]
async fn a_flooding_client_always_hears_why_it_was_closed() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    for round in 0..8 {
        let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
        // Far past the budget and the strikes, and still writing without reading after the
        // server has decided to close.
        keep_sending(&mut ws, (0..400).map(|i| json!({"type": "ping", "t0": i}))).await;
        assert_eq!(ws.close_code().await, 4429, "flood {round}");
    }
}

#[tokio::test]
async fn a_teacher_in_mid_burst_hears_that_the_server_is_shutting_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::start(dir.path());
    let app = TestApp::of_process(&server, dir);
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    let present = ws
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    assert_eq!(present["type"], "ack");
    server.terminate();
    // The teacher keeps pressing without reading while the server stops.
    let presses = (0..30).map(|i| command(&board.id, ["next", "prev"][i % 2], json!({})).1);
    keep_sending(&mut ws, presses).await;
    assert_eq!(ws.close_code().await, 1012);
}

#[tokio::test]
async fn a_stopping_server_answers_the_command_it_took_before_telling_the_teacher_to_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::start(dir.path());
    let app = TestApp::of_process(&server, dir);
    let (t, board, _) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    // A command naming a state a few seconds ahead: the node waits for it (up to 2 s, as it
    // would for replication) before it answers. The pong after it says the node has taken it.
    let ahead = (now_ms() + 5_000) * 1024;
    let (id, mut waiting) = command(&board.id, "next", json!({}));
    waiting["seen"] = json!(ahead);
    ws.send(waiting).await;
    ws.send(json!({"type": "ping", "t0": 1})).await;
    ws.until(|m| m["type"] == "pong").await;
    server.terminate();
    let answer = ws.until(|m| m["id"] == id.to_string()).await;
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str()),
        (Some("error"), Some("unavailable")),
        "{answer}"
    );
    assert_eq!(
        ws.close_code().await,
        1012,
        "then the teacher is told to move"
    );
}

#[tokio::test]
async fn unreadable_frames_end_the_connection_with_an_error_and_a_standard_close_code() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let mut big = Ws::teacher(&app, &t, &[&board.id]).await;
    let pad = "x".repeat(100 * 1024);
    let huge = json!({"type": "ping", "t0": 1, "pad": pad}).to_string();
    let _ = big.0.send(Message::Text(huge.into())).await;
    let said = big.until(|m| m["type"] == "error").await;
    assert_eq!(said["code"], "too_large", "{said}");
    assert!(
        said["message"].as_str().unwrap().contains("65536"),
        "{said}"
    );
    assert_eq!(big.close_code().await, 1009);

    let mut garbled = Ws::teacher(&app, &t, &[&board.id]).await;
    let not_utf8 = Frame::message(
        &b"{\"type\":\"ping\",\"t0\":\xff}"[..],
        OpCode::Data(Data::Text),
        true,
    );
    garbled.0.send(Message::Frame(not_utf8)).await.unwrap();
    let said = garbled.until(|m| m["type"] == "error").await;
    assert_eq!(said["code"], "malformed", "{said}");
    assert_eq!(garbled.close_code().await, 1007);
}

#[tokio::test]
async fn both_transports_refuse_the_same_mistakes_with_the_same_codes() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let mut console = Ws::teacher(&app, &t, &[&board.id]).await;
    let mut screen = Ws::board(&app, &board).await;
    let elsewhere = Uuid::now_v7().to_string();
    let (_, from_board) = command(&board.id, "next", json!({}));
    let (_, idle) = command(&board.id, "next", json!({}));
    let (_, unknown_board) = command(&elsewhere, "next", json!({}));
    let (_, unknown_op) = command(&board.id, "fly", json!({}));
    let cases = [
        // (sent by the board?, message, code, fallback status)
        (true, from_board, "forbidden", StatusCode::FORBIDDEN),
        (
            false,
            json!({"type": "rendered", "version": 0}),
            "forbidden",
            StatusCode::FORBIDDEN,
        ),
        (
            false,
            json!({"type": "fly"}),
            "malformed",
            StatusCode::BAD_REQUEST,
        ),
        (
            false,
            json!({"type": "hello", "protocol": 1, "role": "teacher", "token": t.token}),
            "malformed",
            StatusCode::BAD_REQUEST,
        ),
        (
            false,
            idle,
            "not_presenting",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (false, unknown_board, "not_found", StatusCode::NOT_FOUND),
        (
            false,
            unknown_op,
            "invalid_command",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (by_board, message, code, status) in cases {
        let (ws, token) = match by_board {
            true => (&mut screen, &board.token),
            false => (&mut console, &t.token),
        };
        ws.send(message.clone()).await;
        let over_ws = ws.until(|m| m["type"] == "error").await;
        assert_eq!(over_ws["code"], code, "WebSocket, {message}");
        assert_eq!(
            over_ws["id"], message["id"],
            "the WebSocket names the command"
        );
        let over_http = expect_refusal(post(&app, token, &message).await, status, code).await;
        assert_eq!(
            over_http["id"], message["id"],
            "the fallback names the command"
        );
    }
    // The fallback has no feed to add boards to: they are named when the stream opens.
    let watch = json!({"type": "watch", "boards": [{"board": board.id, "version": 0}]});
    expect_refusal(
        post(&app, &t.token, &watch).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let ping = json!({"type": "ping", "t0": 1});
    let res = post(&app, "no such token", &ping).await;
    expect_refusal(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .request(Method::POST, "/api/live/messages")
        .bearer_auth(&t.token)
        .body("x".repeat(70 * 1024))
        .send()
        .await
        .unwrap();
    expect_refusal(res, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
}

#[tokio::test]
async fn a_hello_naming_more_than_100_boards_is_refused_before_welcome() {
    let app = spawn_app().await;
    let t = app.register("many@school.org").await;
    let boards: Vec<Value> = (0..101)
        .map(|_| json!({"board": Uuid::now_v7(), "version": 0}))
        .collect();
    let mut ws = Ws::open(&app, None).await.unwrap();
    ws.send(json!({"type": "hello", "protocol": 1, "role": "teacher", "token": t.token, "boards": boards}))
        .await;
    let first = ws.next().await;
    assert_eq!(first["type"], "error", "no welcome first: {first}");
    assert_eq!(first["code"], "too_many_boards");
    assert_eq!(ws.close_code().await, 4400);
}

#[tokio::test]
async fn a_connection_follows_at_most_100_boards_and_refuses_more_by_name() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[]).await;
    let unknown = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| json!({"board": Uuid::now_v7(), "version": 0}))
            .collect()
    };
    ws.send(json!({"type": "watch", "boards": unknown(101)}))
        .await;
    let refused = ws.until(|m| m["type"] == "error").await;
    assert_eq!(refused["code"], "too_many_boards");
    assert!(
        refused["message"].as_str().unwrap().contains("100"),
        "{refused}"
    );

    // 99 strangers and the teacher's own board: each stranger is refused by name, and the
    // own board is followed.
    let mut named = unknown(99);
    let strangers: HashSet<String> = named
        .iter()
        .map(|b| b["board"].as_str().unwrap().to_owned())
        .collect();
    named.push(json!({"board": board.id, "version": 0}));
    ws.send(json!({"type": "watch", "boards": named})).await;
    let mut refused = HashSet::new();
    while refused.len() < strangers.len() {
        let e = ws.until(|m| m["type"] == "error").await;
        assert_eq!(e["code"], "not_found", "{e}");
        refused.insert(e["board"].as_str().unwrap().to_owned());
    }
    assert_eq!(refused, strangers);
    ws.until(|m| m["type"] == "state" && m["board"] == json!(board.id))
        .await;

    // The fallback's stream refuses the same list before it opens.
    let listed: Vec<String> = (0..101).map(|_| format!("{}:0", Uuid::now_v7())).collect();
    let res = app
        .as_teacher(
            Method::GET,
            &format!("/api/live/events?role=teacher&boards={}", listed.join(",")),
            &t,
        )
        .send()
        .await
        .unwrap();
    expect_refusal(res, StatusCode::BAD_REQUEST, "too_many_boards").await;
}

#[tokio::test]
async fn a_boards_event_stream_checks_the_version_it_names() {
    let app = spawn_app().await;
    let board = crate::live::claim(&app).await;
    let open = |version: &'static str| {
        let app = &app;
        let token = board.token.clone();
        async move {
            app.request(
                Method::GET,
                &format!("/api/live/events?role=board&version={version}"),
            )
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
        }
    };
    for bad in ["abc", "-1", "9007199254740992", "1.5"] {
        let refused = expect_refusal(open(bad).await, StatusCode::BAD_REQUEST, "malformed").await;
        assert!(
            refused["message"].as_str().unwrap().contains("version"),
            "{bad}: {refused}"
        );
    }
    assert_eq!(open("9007199254740991").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_101st_board_a_connection_follows_is_refused_by_name() {
    let app = spawn_app().await;
    let t = app.register("many@school.org").await;
    let mut boards = Vec::new();
    for i in 0..101 {
        let res = fresh_client()
            .post(format!("{}/api/boards/claim", app.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        let code = body["code"].as_str().unwrap();
        let paired = pair(&app, &t, code, &format!("Room {i}")).await;
        assert_eq!(paired.status(), StatusCode::CREATED);
        boards.push(body["board_id"].as_str().unwrap().to_owned());
    }
    let first: Vec<&str> = boards[..100].iter().map(String::as_str).collect();
    let mut ws = Ws::teacher(&app, &t, &first).await;
    ws.send(json!({"type": "watch", "boards": [{"board": boards[100], "version": 0}]}))
        .await;
    let refused = ws.until(|m| m["type"] == "error").await;
    assert_eq!(refused["code"], "too_many_boards", "{refused}");
    assert_eq!(refused["board"], json!(boards[100]));
}

#[tokio::test]
async fn numbers_a_javascript_client_cannot_hold_are_refused() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    let present = ws
        .command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    let version = present["version"].as_i64().unwrap();
    for position in [json!(u64::MAX), json!(TWO_TO_53), json!(-1), json!(1.5)] {
        let refused = ws
            .command(&board.id, "video_play", json!({"position_ms": position}))
            .await;
        assert_eq!(refused["code"], "invalid_command", "{position}: {refused}");
    }
    // The largest safe number is a number like any other (here on the wrong kind of slide).
    let accepted = ws
        .command(
            &board.id,
            "video_play",
            json!({"position_ms": TWO_TO_53 - 1}),
        )
        .await;
    assert_eq!(accepted["code"], "wrong_slide");
    let refused = ws
        .command(&board.id, "goto", json!({"slide": TWO_TO_53}))
        .await;
    assert_eq!(refused["code"], "invalid_command");

    for bad in [json!(TWO_TO_53), json!(-1), json!(0.5)] {
        let mut late = Ws::open(&app, None).await.unwrap();
        late.send(json!({"type": "hello", "protocol": 1, "role": "board", "token": board.token, "version": bad}))
            .await;
        let said = late.until(|m| m["type"] == "error").await;
        assert_eq!(said["code"], "malformed", "hello version {bad}: {said}");
        assert_eq!(late.close_code().await, 4400);
    }

    // A board reports only versions it was sent: not too large, not made up, not skipped.
    let mut screen = Ws::board(&app, &board).await;
    screen.state_where(|s| s["version"] == version).await;
    for made_up in [json!(TWO_TO_53), json!(version + 1), json!(version - 1)] {
        screen
            .send(json!({"type": "rendered", "version": made_up}))
            .await;
        let said = screen.until(|m| m["type"] == "error").await;
        assert_eq!(said["code"], "malformed", "rendered {made_up}: {said}");
    }
    screen
        .send(json!({"type": "rendered", "version": version}))
        .await;
    ws.until(|m| m["type"] == "board" && m["rendered_version"] == version)
        .await;
}

#[tokio::test]
async fn present_and_goto_share_one_range_rule_and_a_no_op_stores_nothing() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    let refused = ws
        .command(
            &board.id,
            "present",
            json!({"lesson": lesson, "slide": 1000}),
        )
        .await;
    assert_eq!(refused["code"], "invalid_command");
    assert!(
        refused["message"].as_str().unwrap().contains("from 0 to 2"),
        "{refused}"
    );
    let last = ws
        .command(&board.id, "present", json!({"lesson": lesson, "slide": 2}))
        .await;
    assert_eq!(last["type"], "ack");
    let refused = ws.command(&board.id, "goto", json!({"slide": 3})).await;
    assert_eq!(refused["code"], "invalid_command");
    assert!(
        refused["message"].as_str().unwrap().contains("from 0 to 2"),
        "{refused}"
    );

    // `next` on the last slide changes nothing: acked with the version the board has.
    let same = ws.command(&board.id, "next", json!({})).await;
    assert_eq!(
        (&same["type"], &same["version"]),
        (&json!("ack"), &last["version"])
    );
    let moved = ws.command(&board.id, "goto", json!({"slide": 0})).await;
    assert!(moved["version"].as_i64() > last["version"].as_i64());
    let same = ws.command(&board.id, "prev", json!({})).await;
    assert_eq!(same["version"], moved["version"]);
    // The board's state is the one `goto` stored, not a copy of it.
    let state = app.get_json("/api/boards", &t).await["items"][0].clone();
    assert_eq!(state["state_version"], moved["version"]);

    // A resend of a stored command is answered with the version it produced, even where it
    // would change nothing now.
    let (id, blank) = command(&board.id, "blank", json!({"on": true}));
    ws.send(blank.clone()).await;
    let blanked = ws
        .until(|m| m["type"] == "ack" && m["id"] == json!(id))
        .await;
    let later = ws.command(&board.id, "next", json!({})).await;
    assert!(later["version"].as_i64() > blanked["version"].as_i64());
    ws.send(blank).await;
    let resent = ws
        .until(|m| m["type"] == "ack" && m["id"] == json!(id))
        .await;
    assert_eq!(resent["version"], blanked["version"]);
}

#[tokio::test]
async fn every_time_in_the_api_is_milliseconds_since_the_epoch() {
    let app = spawn_app().await;
    let before = now_ms();
    let (t, _, lesson) = classroom(&app).await;
    let after = now_ms() + 1;
    let within = |value: &Value, what: &str| {
        let ms = value
            .as_i64()
            .unwrap_or_else(|| panic!("{what} is a number: {value}"));
        assert!((before..=after).contains(&ms), "{what} {ms} is now");
    };
    let me = app.get_json("/api/me", &t).await;
    within(&me["created_at"], "account created_at");
    let saved = app.get_json(&format!("/api/lessons/{lesson}"), &t).await;
    within(&saved["created_at"], "lesson created_at");
    within(&saved["updated_at"], "lesson updated_at");
    let listed = app.get_json("/api/lessons", &t).await;
    within(&listed["items"][0]["updated_at"], "listed updated_at");
    let revisions = app
        .get_json(&format!("/api/lessons/{lesson}/revisions"), &t)
        .await;
    within(&revisions["items"][0]["created_at"], "revision created_at");
    let boards = app.get_json("/api/boards", &t).await;
    within(&boards["items"][0]["paired_at"], "paired_at");
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({"email": t.email, "password": "correct horse battery"}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(login["expires_at"].as_i64().unwrap() > after, "{login}");

    // The API document says so for each of them.
    let api = app.public_json("/api/openapi.json").await;
    for schema in api["components"]["schemas"].as_object().unwrap().values() {
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (name, property) in properties {
            if name.ends_with("_at") {
                assert_eq!(property["type"], "integer", "{name}: {property}");
                assert_eq!(property["format"], "int64", "{name}: {property}");
            }
        }
    }
}

#[tokio::test]
async fn a_waiting_board_is_sent_a_fresh_code_when_its_code_expires() {
    let app = spawn_with(|c| c.code_ttl_secs = Some(1)).await;
    let board = claim(&app).await;
    let mut screen = Ws::board(&app, &board).await;
    let shown = screen.until(|m| m["type"] == "pairing").await;
    assert!(shown["code"]["code"].is_string(), "{shown}");
    // Without asking: the server sends the next code once this one has expired.
    let next = screen.until(|m| m["type"] == "pairing").await;
    assert_ne!(next["code"]["code"], shown["code"]["code"], "{next}");
    assert!(next["code"]["expires_at"].as_i64() > shown["code"]["expires_at"].as_i64());
}

#[tokio::test]
async fn a_command_id_is_one_command_whoever_sends_it() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    let (id, present) = command(&board.id, "present", json!({"lesson": lesson}));
    ws.send(present).await;
    let first = ws.until(|m| m["type"] == "ack").await;

    // Another teacher's console, reusing that id for their own board, is refused.
    let other = app.register("other@school.org").await;
    let theirs = claim(&app).await;
    let paired = pair(&app, &other, &theirs.code, "Room 9").await;
    assert_eq!(paired.status(), StatusCode::CREATED);
    let mut console = Ws::teacher(&app, &other, &[&theirs.id]).await;
    console
        .send(json!({"type": "command", "id": id, "board": theirs.id, "op": "blank", "args": {"on": true}}))
        .await;
    let refused = console.until(|m| m["type"] == "error").await;
    assert_eq!(
        (&refused["code"], &refused["id"]),
        (&json!("invalid_command"), &json!(id))
    );

    // The board it was made for is untouched by the attempt: the id still means `present`.
    ws.send(json!({"type": "command", "id": id, "board": board.id, "op": "present", "args": {"lesson": lesson}}))
        .await;
    let again = ws.until(|m| m["type"] == "ack").await;
    assert_eq!(again["version"], first["version"]);
}

/// The server messages docs/protocol.md lists for version 1, with `restart` (event stream
/// only), the one this release added.
const V1_SERVER_MESSAGES: [&str; 9] = [
    "welcome",
    "state",
    "ack",
    "board",
    "pairing",
    "pong",
    "unfollowed",
    "error",
    "restart",
];

/// The protocol has never changed its version: a client of an earlier release (its pages)
/// speaks exactly the version 1 messages of docs/protocol.md. This release must serve one
/// that sends nothing else, on both transports, and send it nothing it has not been told of;
/// any other version is refused with 4409.
#[tokio::test]
async fn a_client_speaking_exactly_protocol_1_as_documented_is_served() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let documented = |m: &Value| {
        let kind = m["type"].as_str().unwrap_or_default();
        assert!(V1_SERVER_MESSAGES.contains(&kind), "not in version 1: {m}");
        m.clone()
    };

    let mut board_ws = Ws::open(&app, None).await.unwrap();
    board_ws
        .send(json!({"type": "hello", "protocol": 1, "role": "board", "token": board.token, "version": 0}))
        .await;
    let welcome = documented(&board_ws.next().await);
    assert_eq!(
        (welcome["type"].as_str(), welcome["protocol"].as_u64()),
        (Some("welcome"), Some(1))
    );
    assert_eq!(welcome["board_id"], board.id.as_str());
    let mut teacher = Ws::open(&app, None).await.unwrap();
    teacher
        .send(
            json!({"type": "hello", "protocol": 1, "role": "teacher", "token": t.token,
            "boards": [{"board": board.id, "version": 0}]}),
        )
        .await;
    let welcome = documented(&teacher.next().await);
    assert_eq!(
        (welcome["type"].as_str(), welcome["protocol"].as_u64()),
        (Some("welcome"), Some(1))
    );

    // A command without `seen` (it is optional), acknowledged and shown on the board.
    let id = Uuid::new_v4();
    teacher
        .send(
            json!({"type": "command", "id": id, "board": board.id, "op": "present",
            "args": {"lesson": lesson}}),
        )
        .await;
    let ack = documented(&teacher.until(|m| m["id"] == id.to_string()).await);
    assert_eq!(ack["type"], "ack", "{ack}");
    let shown = board_ws
        .state_where(|s| s["version"] == ack["version"])
        .await;
    assert_eq!(shown["slide_index"], 0);
    board_ws
        .send(json!({"type": "rendered", "version": ack["version"]}))
        .await;
    let status = teacher
        .until(|m| m["type"] == "board" && m["rendered_version"] == ack["version"])
        .await;
    documented(&status);
    teacher.send(json!({"type": "ping", "t0": 12.5})).await;
    let pong = documented(&teacher.until(|m| m["type"] == "pong").await);
    assert_eq!(pong["t0"], 12.5);
    teacher
        .send(json!({"type": "watch", "boards": [{"board": board.id, "version": 0}]}))
        .await;
    let state = teacher
        .until(|m| m["type"] == "state" && m["state"]["version"] == ack["version"])
        .await;
    documented(&state);

    // The fallback: the event stream and a command over POST.
    let mut events = app
        .request(
            Method::GET,
            &format!("/api/live/events?role=teacher&boards={}:0", board.id),
        )
        .bearer_auth(&t.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let mut buffer = String::new();
    let welcome = crate::live::next_event(&mut events, &mut buffer).await;
    assert_eq!(documented(&welcome)["protocol"], 1);
    let id = Uuid::new_v4();
    let res = post(
        &app,
        &t.token,
        &json!({"type": "command", "id": id, "board": board.id, "op": "next", "args": {}}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let ack = documented(&res.json::<Value>().await.unwrap());
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_str()),
        (Some("ack"), Some(id.to_string().as_str()))
    );
    loop {
        let event = documented(&crate::live::next_event(&mut events, &mut buffer).await);
        if event["type"] == "state" && event["state"]["version"] == ack["version"] {
            assert_eq!(event["state"]["slide_index"], 1);
            break;
        }
    }

    // Only version 1 is spoken (the current and the previous version are the same).
    for version in [0, 2] {
        let mut ws = Ws::open(&app, None).await.unwrap();
        ws.send(
            json!({"type": "hello", "protocol": version, "role": "board", "token": board.token}),
        )
        .await;
        assert_eq!(ws.close_code().await, 4409, "protocol {version}");
    }
}
