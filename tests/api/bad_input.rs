use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

/// Sends `body` raw as JSON to create a lesson, expects the error, and checks nothing was written.
async fn refused_create(
    app: &TestApp,
    t: &Teacher,
    body: &str,
    status: StatusCode,
    code: &str,
) -> Value {
    let res = app
        .as_teacher(Method::POST, "/api/lessons", t)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let error = expect_error(res, status, code).await;
    assert_eq!(
        app.lesson_count(t).await,
        0,
        "nothing was written for {body:.60}"
    );
    error
}

#[tokio::test]
async fn malformed_json_is_a_400_that_says_so() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    for body in ["{", "{\"title\": }", "not json", ""] {
        refused_create(&app, &t, body, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
}

#[tokio::test]
async fn wrong_types_are_named_by_their_path() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let e = refused_create(
        &app,
        &t,
        r#"{"title": 5}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(
        e["fields"]["title"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{e}"
    );
    let e = refused_create(
        &app,
        &t,
        r#"{"title": "T", "slides": [{"kind": "timer", "seconds": "ten"}]}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(e["fields"].get("slides[0].seconds").is_some(), "{e}");
    let e = refused_create(
        &app,
        &t,
        r#"{"slides": []}"#,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(
        e["fields"]["body"].as_str().unwrap().contains("title"),
        "{e}"
    );
    refused_create(
        &app,
        &t,
        "[]",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn invalid_content_is_refused_with_every_field_named() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let body = json!({"title": "", "slides": [
        {"kind": "poem"},
        {"kind": "question", "title": "x".repeat(201)},
        {"kind": "timer", "seconds": 0},
        {"kind": "video", "media": "not-a-hash"},
        {"kind": "text", "body": "b".repeat(20_001)},
    ]});
    let e = refused_create(
        &app,
        &t,
        &body.to_string(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields = e["fields"].as_object().unwrap();
    for key in [
        "title",
        "slides[0].kind",
        "slides[1].title",
        "slides[1].answer",
        "slides[2].seconds",
        "slides[3].media",
        "slides[4].body",
    ] {
        assert!(fields.contains_key(key), "{key} missing from {e}");
    }
    assert!(fields["slides[0].kind"].as_str().unwrap().contains("poem"));

    let too_many: Vec<Value> = (0..501).map(|i| text_slide(&i.to_string())).collect();
    let e = refused_create(
        &app,
        &t,
        &json!({"title": "T", "slides": too_many}).to_string(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(e["fields"]["slides"].as_str().unwrap().contains("500"));
}

#[tokio::test]
async fn an_oversize_body_is_refused_before_it_is_read() {
    let app = spawn_with(|c| c.max_body_bytes = Some(4096)).await;
    let t = app.register("t@school.org").await;
    let body = json!({"title": "T", "slides": [{"kind": "text", "body": "x".repeat(10_000)}]});
    let e = refused_create(
        &app,
        &t,
        &body.to_string(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("4096"));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let res = app
        .as_teacher(Method::POST, "/api/lessons", &t)
        .header("content-type", "text/plain")
        .body(r#"{"title": "T"}"#)
        .send()
        .await
        .unwrap();
    expect_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(app.lesson_count(&t).await, 0);
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_a_400_naming_it() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let lesson = app.create_lesson(&t, json!({"title": "Keep me"})).await;
    let id = lesson["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, "/api/lessons/42".to_owned()),
        (Method::PUT, "/api/lessons/not-a-uuid".to_owned()),
        (Method::DELETE, "/api/lessons/%27%20OR%201=1".to_owned()),
        (
            Method::POST,
            format!("/api/lessons/{id}/revisions/zzz/restore"),
        ),
    ] {
        let res = app
            .as_teacher(method, &path, &t)
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap();
        let e = expect_error(res, StatusCode::BAD_REQUEST, "invalid_id").await;
        assert!(e["message"].as_str().unwrap().contains("UUID"));
    }
    let now: Value = app.get_json(&format!("/api/lessons/{id}"), &t).await;
    assert_eq!(now["version"], lesson["version"], "nothing was written");
}

#[tokio::test]
async fn bad_list_parameters_are_named() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let res = app
        .as_teacher(
            Method::GET,
            "/api/lessons?limit=0&order=size&cursor=%%%",
            &t,
        )
        .send()
        .await
        .unwrap();
    let e = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    for key in ["limit", "order"] {
        assert!(e["fields"].get(key).is_some(), "{key} in {e}");
    }
    let res = app
        .as_teacher(Method::GET, "/api/lessons?cursor=AAAA", &t)
        .send()
        .await
        .unwrap();
    let e = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(e["fields"].get("cursor").is_some());
}

#[tokio::test]
async fn bad_registrations_name_every_field_and_create_nothing() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "not-an-address", "name": "", "password": "short"}),
        )
        .await;
    let e = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    for key in ["email", "name", "password"] {
        assert!(e["fields"].get(key).is_some(), "{key} in {e}");
    }
    let res = app
        .post_json(
            "/api/auth/register",
            &json!({"email": "x@school.org", "name": "n".repeat(101), "password": "long enough"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // The address is still free: nothing was half-written.
    app.register("x@school.org").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_envelope() {
    let app = spawn_app().await;
    let res = app
        .request(Method::GET, "/api/nothing-here")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .request(Method::PATCH, "/api/lessons")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn a_malformed_if_match_is_a_400_not_a_conflict() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let lesson = app.create_lesson(&t, json!({"title": "Keep"})).await;
    let id = lesson["id"].as_str().unwrap();
    for tag in ["null", "abc", lesson["version"].as_str().unwrap()] {
        let res = app
            .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &t)
            .header("if-match", tag)
            .json(&json!({"title": "Changed"}))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_if_match").await;
    }
    let now: Value = app.get_json(&format!("/api/lessons/{id}"), &t).await;
    assert_eq!(now["title"], "Keep");
}
