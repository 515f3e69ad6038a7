use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::*;

/// Every route of the JSON API and operations surface. Adding a route means adding it here,
/// and the test below then insists it is documented.
const SERVED: &[(&str, &str)] = &[
    ("get", "/api/lessons"),
    ("post", "/api/lessons"),
    ("get", "/api/lessons/{id}"),
    ("put", "/api/lessons/{id}"),
    ("delete", "/api/lessons/{id}"),
    ("get", "/api/lessons/{id}/revisions"),
    ("post", "/api/lessons/{id}/revisions/{rev}/restore"),
    ("get", "/api/lessons/{id}/export"),
    ("post", "/api/lessons/import"),
    ("post", "/api/slides/import"),
    ("post", "/api/lessons/{id}/duplicate"),
    ("get", "/api/lessons/folders"),
    ("get", "/api/lessons/{id}/shares"),
    ("post", "/api/lessons/{id}/shares"),
    ("delete", "/api/lessons/{id}/shares/{account_id}"),
    ("put", "/api/lessons/{id}/library"),
    ("get", "/api/lessons/shared"),
    ("get", "/api/library"),
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/password-reset"),
    ("post", "/api/auth/password-reset/confirm"),
    ("post", "/api/auth/confirm"),
    ("get", "/api/me"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/config.json"),
    ("post", "/api/boards/claim"),
    ("post", "/api/boards/code"),
    ("get", "/api/boards/self"),
    ("get", "/api/boards/self/media"),
    ("get", "/api/boards/self/qr"),
    ("post", "/api/boards/pair"),
    ("get", "/api/boards"),
    ("put", "/api/boards/{id}"),
    ("delete", "/api/boards/{id}"),
    ("post", "/api/boards/{id}/revoke"),
    ("get", "/api/live/events"),
    ("post", "/api/live/messages"),
    ("get", "/api/live/time"),
    ("post", "/api/media"),
    ("post", "/api/slides/preview"),
    ("get", "/api/media/{id}"),
    ("get", "/api/media/{id}/preview"),
];

async fn document(app: &TestApp) -> Value {
    let res = app
        .request(Method::GET, "/api/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("the document is JSON")
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_routes() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented = operations(&doc);
    let served: BTreeSet<_> = SERVED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_the_server() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let id = uuid::Uuid::now_v7().to_string();
    // Media is public by its id: the route answers 404 for ids it does not hold.
    let t = app.register("openapi@school.org").await;
    let stored: Value = app
        .as_teacher(Method::POST, "/api/media", &t)
        .body(b"GIF89a\x01\0\x01\0".to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media = stored["id"].as_str().unwrap().to_owned();
    for (method, path) in operations(&doc) {
        let id = if path.starts_with("/api/media/") {
            &media
        } else {
            &id
        };
        let url = path.replace("{id}", id).replace("{rev}", id);
        // The event stream never ends; its status line is all this needs.
        let url = if path == "/api/live/events" {
            format!("{url}?role=teacher")
        } else {
            url
        };
        let res = app
            .request(method.to_uppercase().parse().unwrap(), &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} answered {status}"
        );
        let documented = doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap();
        assert!(
            documented.contains_key(status.as_str()),
            "{method} {path} answered {status}, which its documentation does not list"
        );
    }
}

#[tokio::test]
async fn error_responses_are_documented_with_the_envelope() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schema = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(schema["required"][0], "error");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// Every `$ref` string anywhere in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a schema reference"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} points at nothing"
        );
    }
}

#[tokio::test]
async fn a_stored_file_is_documented_with_the_types_it_is_served_as() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ok = &doc["paths"]["/api/media/{id}"]["get"]["responses"]["200"]["content"];
    let documented: BTreeSet<&str> = ok.as_object().unwrap().keys().map(String::as_str).collect();
    let t = app.register("types@school.org").await;
    for (magic, kind) in [
        (crate::media::PNG, "image/png"),
        (crate::media::WEBM, "video/webm"),
    ] {
        let stored: Value = crate::media::upload(&app, &t, crate::media::file(magic, 2_000), kind)
            .await
            .json()
            .await
            .unwrap();
        let res = app
            .request(Method::GET, stored["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let served = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            documented.contains(served.as_str()),
            "{served} not in {documented:?}"
        );
    }
    assert!(!documented.contains("application/octet-stream"));
}
