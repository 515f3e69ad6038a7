use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

#[tokio::test]
async fn a_lesson_is_created_read_back_with_its_etag_and_slides_in_order() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let picture_id = crate::media::upload_picture(&app, &t).await;
    let created = app
        .create_lesson(
            &t,
            json!({"title": "Fractions", "slides": [
                text_slide("Welcome"),
                {"kind": "question", "title": "What is 1/2 + 1/4?", "answer": "3/4"},
                {"kind": "timer", "title": "Work in pairs", "seconds": 300},
                {"kind": "image", "media": picture_id.to_uppercase()},
            ]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .as_teacher(Method::GET, &format!("/api/lessons/{id}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let lesson: Value = res.json().await.unwrap();
    assert_eq!(etag, format!("\"{}\"", lesson["version"].as_str().unwrap()));
    assert_eq!(lesson, created);
    let kinds: Vec<_> = lesson["slides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].clone())
        .collect();
    assert_eq!(kinds, ["text", "question", "timer", "image"]);
    assert_eq!(lesson["slides"][1]["answer"], "3/4");
    assert_eq!(lesson["slides"][2]["seconds"], 300);
    assert_eq!(
        lesson["slides"][3]["media"], picture_id,
        "ids are read in any case"
    );
    assert!(lesson["slides"][0]["id"].as_str().unwrap().len() == 36);
}

/// The titles of every lesson `GET /api/lessons?{query}` lists, two a page, following each
/// page's cursor to the last.
pub(crate) async fn walk(app: &TestApp, t: &Teacher, query: String) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/lessons?limit=2&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get_json(&path, t).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen
}

#[tokio::test]
async fn the_list_pages_through_every_lesson_in_both_orders() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let titles = ["delta", "Alpha", "echo", "charlie", "Bravo"];
    for title in titles {
        app.create_lesson(&t, json!({"title": title})).await;
    }
    let walk = |order: &'static str| walk(&app, &t, format!("order={order}"));
    assert_eq!(
        walk("title").await,
        ["Alpha", "Bravo", "charlie", "delta", "echo"]
    );
    let newest_first: Vec<_> = titles.iter().rev().map(|s| s.to_string()).collect();
    assert_eq!(walk("updated").await, newest_first);

    // Editing a lesson moves it to the front of "recently updated".
    let page: Value = app.get_json("/api/lessons?order=title&limit=1", &t).await;
    let alpha = page["items"][0]["id"].as_str().unwrap();
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{alpha}"), &t)
        .json(&json!({"title": "Alpha 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(walk("updated").await[0], "Alpha 2");
}

#[tokio::test]
async fn a_stale_if_match_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let v1 = app.create_lesson(&t, json!({"title": "Plants"})).await;
    let id = v1["id"].as_str().unwrap();
    let v1_tag = format!("\"{}\"", v1["version"].as_str().unwrap());

    // The laptop saves first.
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &t)
        .header("if-match", &v1_tag)
        .json(&json!({"title": "Plants (laptop)", "slides": [text_slide("Roots")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v2: Value = res.json().await.unwrap();
    assert_ne!(v2["version"], v1["version"]);

    // The phone, still on v1, is told instead of overwriting.
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &t)
        .header("if-match", &v1_tag)
        .json(&json!({"title": "Plants (phone)"}))
        .send()
        .await
        .unwrap();
    let error = expect_error(res, StatusCode::PRECONDITION_FAILED, "version_conflict").await;
    assert_eq!(error["current_version"], v2["version"]);

    let now: Value = app.get_json(&format!("/api/lessons/{id}"), &t).await;
    assert_eq!(now["title"], "Plants (laptop)");

    // Based on the current version, the phone's save goes through; without If-Match too.
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &t)
        .header(
            "if-match",
            format!("\"{}\"", v2["version"].as_str().unwrap()),
        )
        .json(&json!({"title": "Plants (phone)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &t)
        .json(&json!({"title": "Plants (unconditional)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_edit_is_kept_and_an_old_version_can_be_restored() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let v1 = app
        .create_lesson(
            &t,
            json!({"title": "Volcanoes", "slides": [text_slide("Lava")]}),
        )
        .await;
    let id = v1["id"].as_str().unwrap();
    app.as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &t)
        .json(&json!({"title": "Volcanoes v2", "slides": []}))
        .send()
        .await
        .unwrap();

    let revisions: Value = app
        .get_json(&format!("/api/lessons/{id}/revisions"), &t)
        .await;
    let items = revisions["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["title"], "Volcanoes v2");
    assert_eq!(items[1]["title"], "Volcanoes");
    assert_eq!(items[1]["version"], v1["version"]);
    assert_eq!(items[1]["slide_count"], 1);
    assert_eq!(items[1]["author_name"], "Test Teacher");

    let restored = restore(&app, &t, &v1).await;
    assert_eq!(restored["title"], "Volcanoes");
    assert_eq!(restored["slides"], v1["slides"]);
    assert_ne!(
        restored["version"], v1["version"],
        "a restore is a new version"
    );

    let revisions: Value = app
        .get_json(&format!("/api/lessons/{id}/revisions"), &t)
        .await;
    assert_eq!(revisions["items"].as_array().unwrap().len(), 3);
    assert_eq!(revisions["items"][0]["restored_from"], v1["version"]);

    let unknown = uuid::Uuid::now_v7();
    let res = app
        .as_teacher(
            Method::POST,
            &format!("/api/lessons/{id}/revisions/{unknown}/restore"),
            &t,
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_deleted_lesson_is_gone_everywhere() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let lesson = app.create_lesson(&t, json!({"title": "Old"})).await;
    let id = lesson["id"].as_str().unwrap();
    let res = app
        .as_teacher(Method::DELETE, &format!("/api/lessons/{id}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for (method, path) in [
        (Method::GET, format!("/api/lessons/{id}")),
        (Method::DELETE, format!("/api/lessons/{id}")),
        (Method::GET, format!("/api/lessons/{id}/revisions")),
    ] {
        let res = app.as_teacher(method, &path, &t).send().await.unwrap();
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(app.lesson_count(&t).await, 0);
}

#[tokio::test]
async fn a_slide_preview_is_rendered_as_the_board_renders_it_and_stores_nothing() {
    let app = spawn_app().await;
    let t = app.register("preview@school.org").await;
    let res = app
        .as_teacher(Method::POST, "/api/slides/preview", &t)
        .json(&json!({"kind": "question", "title": "Q", "body": "**bold** <script>alert(1)</script>", "answer": "3/4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["kind"], "question");
    let html = view["html"].as_str().unwrap();
    assert!(html.contains("<strong>bold</strong>"), "{html}");
    assert!(!html.contains("<script"), "sanitised: {html}");
    assert_eq!(view["answer"], "3/4");
    let res = app
        .as_teacher(Method::POST, "/api/slides/preview", &t)
        .json(&json!({"kind": "timer", "seconds": 0}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // A slide still being written is previewed without what it lacks.
    for draft in [
        json!({"kind": "video", "title": "Orbit"}),
        json!({"kind": "question", "title": "How long is a year?"}),
        json!({"kind": "timer", "title": "Discuss"}),
    ] {
        let res = app
            .as_teacher(Method::POST, "/api/slides/preview", &t)
            .json(&draft)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{draft}");
        let view: Value = res.json().await.unwrap();
        assert_eq!(view["title"], draft["title"]);
        assert!(view["media"].is_null() && view["answer"].is_null() && view["seconds"].is_null());
    }
    assert_eq!(app.lesson_count(&t).await, 0, "nothing stored");
}

#[tokio::test]
async fn a_lesson_naming_a_file_nobody_stored_is_refused_slide_by_slide() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let res = app
        .as_teacher(Method::POST, "/api/lessons", &t)
        .json(&json!({"title": "Ghost", "slides": [
            text_slide("Welcome"),
            {"kind": "image", "media": "b".repeat(64)},
        ]}))
        .send()
        .await
        .unwrap();
    let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let message = error["fields"]["slides[1].media"].as_str().unwrap();
    assert!(message.contains("upload it again"), "{message}");
    assert_eq!(app.lesson_count(&t).await, 0);
}

/// Restores `revision` (a lesson as a save answered it) of its lesson; answers the lesson.
pub(crate) async fn restore(app: &TestApp, t: &Teacher, revision: &Value) -> Value {
    let path = format!(
        "/api/lessons/{}/revisions/{}/restore",
        revision["id"].as_str().unwrap(),
        revision["version"].as_str().unwrap()
    );
    let res = app.as_teacher(Method::POST, &path, t).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}
