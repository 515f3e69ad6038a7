use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

/// Every lesson route, with the ids filled in.
fn lesson_routes(id: &str, rev: &str) -> Vec<(Method, String)> {
    vec![
        (Method::GET, format!("/api/lessons/{id}")),
        (Method::PUT, format!("/api/lessons/{id}")),
        (Method::DELETE, format!("/api/lessons/{id}")),
        (Method::GET, format!("/api/lessons/{id}/revisions")),
        (
            Method::POST,
            format!("/api/lessons/{id}/revisions/{rev}/restore"),
        ),
        (Method::POST, format!("/api/lessons/{id}/duplicate")),
    ]
}

#[tokio::test]
async fn another_teachers_lesson_looks_exactly_like_a_missing_one() {
    let app = spawn_app().await;
    let owner = app.register("owner@school.org").await;
    let intruder = app.register("intruder@school.org").await;
    let lesson = app
        .create_lesson(
            &owner,
            json!({"title": "Private", "folder": "Secret plans", "slides": [text_slide("one")]}),
        )
        .await;
    let id = lesson["id"].as_str().unwrap();
    let rev = lesson["version"].as_str().unwrap();

    for (method, path) in lesson_routes(id, rev) {
        let res = app
            .as_teacher(method.clone(), &path, &intruder)
            .json(&json!({"title": "Hijacked", "slides": []}))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(
        app.lesson_count(&intruder).await,
        0,
        "the list shows only one's own lessons"
    );
    // Nor does a search, a folder or the list of folders show anything of another's.
    for path in [
        "/api/lessons?q=private",
        "/api/lessons?folder=Secret%20plans",
        "/api/lessons/folders",
    ] {
        let listed = app.get_json(path, &intruder).await;
        assert_eq!(listed["items"], json!([]), "{path}");
    }
    assert_eq!(
        app.get_json("/api/lessons/folders", &owner).await["items"],
        json!([{"name": "Secret plans", "lessons": 1}]),
        "the owner sees their folder (and no copy was made)"
    );

    let res = app
        .as_teacher(Method::GET, &format!("/api/lessons/{id}"), &owner)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["title"], "Private",
        "nothing the intruder sent was written"
    );
    assert_eq!(body["version"], rev);
}

#[tokio::test]
async fn every_lesson_route_needs_a_session() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7().to_string();
    let mut routes = lesson_routes(&id, &id);
    routes.push((Method::GET, "/api/lessons".into()));
    routes.push((Method::POST, "/api/lessons".into()));
    routes.push((Method::GET, "/api/lessons/folders".into()));
    for (method, path) in routes {
        let res = app
            .request(method, &path)
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}
