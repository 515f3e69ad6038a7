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
        (Method::GET, format!("/api/lessons/{id}/shares")),
        (Method::POST, format!("/api/lessons/{id}/shares")),
        (Method::DELETE, format!("/api/lessons/{id}/shares/{rev}")),
        (Method::PUT, format!("/api/lessons/{id}/library")),
    ]
}

/// The body every route of the matrix is sent: what each would accept, so that a refusal
/// comes from who asks, not from what they sent.
fn any_body() -> serde_json::Value {
    json!({"title": "Hijacked", "slides": [], "email": "owner@school.org", "listed": true})
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
            .json(&any_body())
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
        "/api/lessons/shared",
        "/api/library",
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
    routes.push((Method::GET, "/api/lessons/shared".into()));
    routes.push((Method::GET, "/api/library".into()));
    routes.push((Method::POST, "/api/slides/import".into()));
    for (method, path) in routes {
        let res = app
            .request(method, &path)
            .json(&any_body())
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

/// The matrix for a lesson that is shared with a colleague and in the school library: the
/// colleague and any other teacher may read and copy it, and nothing else; the owner may
/// do everything.
#[tokio::test]
async fn a_shared_lesson_is_read_only_for_everyone_but_its_owner() {
    let app = spawn_app().await;
    let owner = app.register("owner@school.org").await;
    let colleague = app.register("colleague@school.org").await;
    let teacher = app.register("teacher@school.org").await;
    let lesson = app
        .create_lesson(
            &owner,
            json!({"title": "Shared", "slides": [text_slide("one")]}),
        )
        .await;
    let id = lesson["id"].as_str().unwrap();
    let rev = lesson["version"].as_str().unwrap();
    let res = crate::sharing::share(&app, &owner, &lesson, "colleague@school.org").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{id}/library"), &owner)
        .json(&json!({"listed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    for reader in [&colleague, &teacher] {
        for (method, path) in lesson_routes(id, rev) {
            let res = app
                .as_teacher(method.clone(), &path, reader)
                .json(&any_body())
                .send()
                .await
                .unwrap();
            let allowed = match (method.as_str(), path.ends_with("/duplicate")) {
                ("GET", _) if path == format!("/api/lessons/{id}") => StatusCode::OK,
                (_, true) => StatusCode::CREATED,
                _ => {
                    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
                    continue;
                }
            };
            assert_eq!(res.status(), allowed, "{method} {path}");
        }
    }
    let current: serde_json::Value = app.get_json(&format!("/api/lessons/{id}"), &owner).await;
    assert_eq!(current["version"], rev, "no reader wrote anything");
    assert_eq!(current["access"], "owner");
    let shares = app
        .get_json(&format!("/api/lessons/{id}/shares"), &owner)
        .await;
    assert_eq!(shares["items"].as_array().unwrap().len(), 1);
    assert_eq!(shares["listed"], true);
}
