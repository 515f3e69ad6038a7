//! No one actor can fill the server's disk: what a teacher or a board token writes is
//! bounded per unit of time and in total, and what does not change is not stored again.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::harness::*;
use crate::live::{claim, classroom, Ws};

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

#[tokio::test]
async fn a_teachers_message_budget_is_shared_by_every_connection_and_the_http_fallback() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &t, &[&board.id]).await;
    ws.command(&board.id, "present", json!({"lesson": lesson}))
        .await;
    // 50 commands at once overdraw the budget (a burst of 40, then 20 a second); every one
    // is answered, and every refusal names its command so the client knows what to resend.
    let ids: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
    for id in &ids {
        ws.send(json!({"type": "command", "id": id, "board": board.id, "op": "blank", "args": {"on": true}}))
            .await;
    }
    let mut limited = 0;
    for id in &ids {
        let reply = ws
            .until(|m| (m["type"] == "ack" || m["type"] == "error") && m["id"] == id.to_string())
            .await;
        if reply["type"] == "error" {
            assert_eq!(reply["code"], "rate_limited", "{reply}");
            limited += 1;
        }
    }
    assert!(limited > 0, "50 commands at once were all accepted");

    // The fallback spends the same budget: right after the flood, it is refused too.
    let answers = futures_util::future::join_all((0..20).map(|i| {
        app.as_teacher(Method::POST, "/api/live/messages", &t)
            .json(&json!({"type": "ping", "t0": i}))
            .send()
    }))
    .await;
    let refused: Vec<_> = answers
        .into_iter()
        .map(Result::unwrap)
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        !refused.is_empty(),
        "the HTTP fallback has a budget of its own"
    );
    assert!(refused[0].headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_http_fallback_alone_cannot_flood_commands() {
    let app = spawn_app().await;
    let (t, board, lesson) = classroom(&app).await;
    let send = |op: &str, args: Value| {
        app.as_teacher(Method::POST, "/api/live/messages", &t)
            .json(&json!({"type": "command", "id": Uuid::now_v7(), "board": board.id, "op": op, "args": args}))
            .send()
    };
    assert_eq!(
        send("present", json!({"lesson": lesson}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let answers =
        futures_util::future::join_all((0..80).map(|i| send("blank", json!({"on": i % 2 == 0}))))
            .await;
    let limited = answers
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        limited >= 20,
        "only {limited} of 80 simultaneous commands were refused"
    );
}

#[tokio::test]
async fn a_board_cannot_churn_through_pairing_codes() {
    let app = spawn_app().await;
    let board = claim(&app).await;
    let mut codes = vec![board.code.clone()];
    let mut refused = None;
    for _ in 0..10 {
        let res = app
            .request(Method::POST, "/api/boards/code")
            .bearer_auth(&board.token)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(res);
            break;
        }
        assert_eq!(res.status(), StatusCode::OK);
        codes.push(
            res.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let refused = refused.expect("ten fresh codes in a row were all handed out");
    assert!(codes.len() <= 6, "{} codes before the limit", codes.len());
    expect_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // The live channel's `code` message spends the same budget.
    let mut ws = Ws::board(&app, &board).await;
    ws.send(json!({"type": "code"})).await;
    let said = ws.until(|m| m["type"] == "error").await;
    assert_eq!(said["code"], "rate_limited", "{said}");
}

/// A lesson of `slides` slides of 20,000 characters each.
pub(crate) fn big_lesson(slides: usize) -> Value {
    let slides: Vec<Value> = (0..slides)
        .map(|i| json!({"kind": "text", "title": format!("Slide {i}"), "body": "x".repeat(20_000)}))
        .collect();
    json!({"title": "Big", "slides": slides})
}

/// Saves `lesson` as `body` again and again until a save is refused, at most `most` times:
/// how many went through, and the refusal.
pub(crate) async fn save_until_refused(
    app: &TestApp,
    t: &Teacher,
    lesson: &Value,
    body: &Value,
    most: usize,
) -> (usize, reqwest::Response) {
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    for saves in 0..most {
        let res = app
            .as_teacher(Method::PUT, &path, t)
            .json(body)
            .send()
            .await
            .unwrap();
        if res.status() != StatusCode::OK {
            return (saves, res);
        }
    }
    panic!("{most} saves were all accepted");
}

#[tokio::test]
async fn re_saving_a_large_lesson_is_budgeted() {
    let app = spawn_app().await;
    let t = app.register("teacher@school.org").await;
    let body = big_lesson(48); // just under the 1 MiB body limit
    let lesson = app.create_lesson(&t, body.clone()).await;
    let (saves, refused) = save_until_refused(&app, &t, &lesson, &body, 60).await;
    // 50 MiB at once, then 20 MiB an hour.
    assert!(saves >= 44, "only {saves} saves before the budget ran out");
    assert!(refused.headers().contains_key("retry-after"));
    expect_error(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn a_teachers_lesson_storage_has_a_quota() {
    let app = spawn_with(|c| c.lesson_storage_mib = Some(2)).await;
    let t = app.register("teacher@school.org").await;
    let body = big_lesson(20); // about 400 KiB
    let lesson = app.create_lesson(&t, body.clone()).await;
    let (saves, refused) = save_until_refused(&app, &t, &lesson, &body, 10).await;
    assert_eq!(saves, 4, "five revisions of 400 KiB fit in 2 MiB");
    let error = expect_error(refused, StatusCode::FORBIDDEN, "storage_full").await;
    assert!(
        error["message"].as_str().unwrap().contains("of your 2 MiB"),
        "{error}"
    );
    // Nothing was written: the lesson is as it was.
    let path = format!("/api/lessons/{}/revisions", lesson["id"].as_str().unwrap());
    let revisions = app.get_json(&path, &t).await;
    assert_eq!(revisions["items"].as_array().unwrap().len(), 5);
}

/// Pairs the board showing `code` as `teacher`, from `client`.
async fn pair_from(
    app: &TestApp,
    client: &reqwest::Client,
    teacher: &Teacher,
    code: &str,
) -> reqwest::Response {
    client
        .post(format!("{}/api/boards/pair", app.base))
        .bearer_auth(&teacher.token)
        .json(&json!({"code": code, "name": "Room"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn right_pairing_codes_spend_no_guess_budget() {
    let app = spawn_app().await;
    let t = app.register("many@school.org").await;
    // One teacher setting up a whole floor: more boards than the wrong-guess burst.
    for room in 0..14 {
        let board = claim(&app).await;
        let res = pair_from(&app, &app.client, &t, &board.code).await;
        assert_eq!(res.status(), StatusCode::CREATED, "board {room}");
    }
}

#[tokio::test]
async fn attackers_spending_the_node_wide_guess_budget_do_not_lock_out_a_teacher() {
    let app = spawn_app().await;
    // Eleven accounts on six addresses guess wrong until the node-wide budget is gone.
    let mut refused = 0;
    for a in 0..11 {
        let attacker = app.register(&format!("guesser{a}@school.org")).await;
        let from = TestApp::client_at(&format!("127.0.0.{}", 2 + a / 2));
        for guess in 0..10 {
            let code = format!("{:06}", 900_000 + a * 10 + guess);
            let res = pair_from(&app, &from, &attacker, &code).await;
            if res.status() == StatusCode::TOO_MANY_REQUESTS {
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "110 wrong guesses were all let through");
    let teacher = app.register("real@school.org").await;
    let board = claim(&app).await;
    // The budget is spent: a fresh attacker account on a fresh address guesses once, then
    // is refused...
    let attacker = app.register("guesser99@school.org").await;
    let from = TestApp::client_at("127.0.0.30");
    let res = pair_from(&app, &from, &attacker, "999999").await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "a fresh account on a fresh address may guess once"
    );
    let res = pair_from(&app, &from, &attacker, "999998").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...while a teacher who has not guessed wrong types the right code and pairs.
    let res = pair_from(
        &app,
        &TestApp::client_at("127.0.0.20"),
        &teacher,
        &board.code,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn one_board_token_or_account_holds_a_bounded_number_of_live_connections() {
    let app = spawn_app().await;
    let (t, board, _) = classroom(&app).await;
    let mut pages = Vec::new();
    for _ in 0..8 {
        pages.push(Ws::board(&app, &board).await);
    }
    // The ninth page of the same board is told why it is closed.
    let mut ninth = Ws::open(&app, None).await.unwrap();
    ninth
        .send(json!({"type": "hello", "protocol": 1, "role": "board", "token": board.token, "version": 0}))
        .await;
    assert_eq!(ninth.close_code().await, 4430);
    let stream = app
        .request(Method::GET, "/api/live/events?role=board")
        .bearer_auth(&board.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream.headers()["retry-after"],
        "10",
        "as the protocol promises"
    );
    expect_refusal(
        stream,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_connections",
    )
    .await;
    // Every open page still gets a new code, read once for all of them.
    pages[0].send(json!({"type": "code"})).await;
    let code = pages[0].until(|m| m["type"] == "pairing").await;
    for page in &mut pages[1..] {
        let seen = page
            .until(|m| m["type"] == "pairing" && m["code"] == code["code"])
            .await;
        assert_eq!(seen["paired_with"], json!(["Test Teacher"]));
    }
    // Closing a page frees its place.
    pages.pop().unwrap().close_and_wait().await;
    pages.push(Ws::board(&app, &board).await);

    // A teacher account: 30 connections, then refused.
    let mut consoles = Vec::new();
    for _ in 0..30 {
        consoles.push(Ws::teacher(&app, &t, &[&board.id]).await);
    }
    let mut extra = Ws::open(&app, None).await.unwrap();
    extra
        .send(json!({"type": "hello", "protocol": 1, "role": "teacher", "token": t.token, "boards": []}))
        .await;
    assert_eq!(extra.close_code().await, 4430);
}

#[tokio::test]
async fn pairing_names_the_screen_that_was_paired() {
    let app = spawn_app().await;
    let t = app.register("fp@school.org").await;
    let board = claim(&app).await;
    let other = claim(&app).await;
    let mut screen = Ws::board(&app, &board).await;
    let shown = screen.until(|m| m["type"] == "pairing").await;
    let on_board = shown["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(on_board.len(), 4);

    let paired: Value = pair_from(&app, &app.client, &t, &board.code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        paired["fingerprint"],
        on_board.as_str(),
        "the console names the same screen"
    );
    // The board confirms who paired it, and still shows its fingerprint.
    let confirmed = screen
        .until(|m| m["type"] == "pairing" && m["paired_with"] == json!(["Test Teacher"]))
        .await;
    assert_eq!(confirmed["fingerprint"], on_board.as_str());
    let listed = app.get_json("/api/boards", &t).await;
    assert_eq!(listed["items"][0]["fingerprint"], on_board.as_str());
    let theirs = app
        .request(Method::GET, "/api/boards/self")
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_ne!(
        theirs["fingerprint"],
        on_board.as_str(),
        "another screen, other letters"
    );
}

#[tokio::test]
async fn a_code_a_waiting_board_shows_is_never_handed_to_another_board() {
    // 3,000 codes drawn from a million: by the birthday bound two would share digits in 99
    // runs out of 100 if draws ignored the codes in use, and the older board's code would
    // stop working while it is on the screen.
    let app = spawn_app().await;
    let mut boards = Vec::new();
    for chunk in 0..60 {
        let client = fresh_client();
        let claims = futures_util::future::join_all((0..50).map(|_| {
            let req = client.post(format!("{}/api/boards/claim", app.base));
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        }))
        .await;
        assert!(
            claims.iter().all(|c| c["code"].is_string()),
            "chunk {chunk}"
        );
        boards.extend(claims);
    }
    let codes: std::collections::HashSet<_> = boards.iter().map(|b| b["code"].clone()).collect();
    assert_eq!(
        codes.len(),
        boards.len(),
        "two boards were handed the same code"
    );
    for chunk in boards.chunks(100) {
        let now = futures_util::future::join_all(chunk.iter().map(|b| {
            let req = app
                .request(Method::GET, "/api/boards/self")
                .bearer_auth(b["board_token"].as_str().unwrap());
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        }))
        .await;
        for (board, now) in chunk.iter().zip(now) {
            assert_eq!(
                now["code"]["code"], board["code"],
                "a board's code was taken over"
            );
        }
    }
}
