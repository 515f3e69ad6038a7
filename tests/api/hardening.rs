//! Small findings of the security review: caching of token-bearing answers, request ids,
//! authentication before validation, look-alike e-mail addresses and deeply nested JSON.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;
use crate::live::{classroom, Ws};

#[tokio::test]
async fn answers_that_carry_tokens_are_never_cached() {
    let app = spawn_app().await;
    let register = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "c@school.org", "name": "C", "password": "correct horse battery"}),
        )
        .await;
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({"email": "c@school.org", "password": "correct horse battery"}),
        )
        .await;
    let claim = app.post_json("/api/boards/claim", &json!({})).await;
    for res in [register, login, claim] {
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(res.headers()["cache-control"], "no-store", "{}", res.url());
    }
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_it_is_short_and_plain() {
    let app = spawn_app().await;
    let id_for = |sent: String| {
        let req = app
            .request(Method::GET, "/healthz")
            .header("x-request-id", sent);
        async move {
            let res = req.send().await.unwrap();
            res.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(id_for("client-42.a:b_c".into()).await, "client-42.a:b_c");
    for unfit in [
        "x".repeat(65),
        "two words".into(),
        "line\tbreak".into(),
        "<script>".into(),
    ] {
        let echoed = id_for(unfit.clone()).await;
        assert_ne!(echoed, unfit);
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
    }
}

#[tokio::test]
async fn the_event_stream_checks_the_token_before_the_query() {
    let app = spawn_app().await;
    let bad_query = "/api/live/events?role=nobody";
    let res = app
        .request(Method::GET, bad_query)
        .bearer_auth("not a token")
        .send()
        .await
        .unwrap();
    expect_refusal(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let t = app.register("e@school.org").await;
    let res = app
        .as_teacher(Method::GET, bad_query, &t)
        .send()
        .await
        .unwrap();
    expect_refusal(res, StatusCode::BAD_REQUEST, "malformed").await;
}

#[tokio::test]
async fn look_alike_addresses_are_the_same_account_and_invisible_ones_are_refused() {
    let app = spawn_app().await;
    app.register("kate@school.org").await;
    let register = |email: &str| {
        let body = json!({"email": email, "name": "K", "password": "correct horse battery"});
        let req = app.request(Method::POST, "/api/auth/register").json(&body);
        async move { req.send().await.unwrap() }
    };
    // The Kelvin sign and full-width letters are the same address as plain "kate".
    for same in ["\u{212A}ate@school.org", "\u{FF4B}ate@school.org"] {
        expect_error(register(same).await, StatusCode::CONFLICT, "email_taken").await;
    }
    for hidden in ["kate\u{200B}@school.org", "\u{FEFF}kate@school.org"] {
        let error = expect_error(
            register(hidden).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(error["fields"]["email"].is_string(), "{error}");
    }
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({"email": "\u{212A}ATE@school.org", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn deeply_nested_json_is_refused_wherever_it_hides() {
    let app = spawn_app().await;
    let t = app.register("n@school.org").await;
    let deep = format!(
        "{}{}",
        "{\"a\":".repeat(100_000),
        "1".to_owned() + &"}".repeat(100_000)
    );
    let body = format!(r#"{{"title": "Deep", "slides": [], "extra": {deep}}}"#);
    let res = app
        .as_teacher(Method::POST, "/api/lessons", &t)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(app.lesson_count(&t).await, 0);

    let (teacher, board, _) = classroom(&app).await;
    let mut ws = Ws::teacher(&app, &teacher, &[&board.id]).await;
    let mut extra = json!(1);
    for _ in 0..40 {
        extra = json!([extra]);
    }
    ws.send(json!({"type": "ping", "t0": 1, "extra": extra}))
        .await;
    let refused = ws.until(|m| m["type"] == "error").await;
    assert_eq!(refused["code"], "malformed", "{refused}");
}

#[tokio::test]
async fn only_configured_origins_may_call_the_api_from_another_page() {
    let app = spawn_with(|c| c.allowed_origins = vec!["https://school.example".into()]).await;
    let preflight = |origin: &'static str| {
        fresh_client()
            .request(Method::OPTIONS, format!("{}/api/lessons", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://school.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://school.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    for stranger in [
        "https://evil.example",
        "https://school.example.evil.example",
    ] {
        let refused = preflight(stranger).await.unwrap();
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{stranger}: {:?}",
            refused.headers()
        );
    }
}
