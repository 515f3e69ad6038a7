//! What a node keeps in memory, in a cluster: a lesson or a session read through one node is
//! kept there for a few seconds (`store/caches.rs`), and a save or a logout through another
//! node must still be seen there at once, through the bus and the session poll, not when the
//! kept copy expires.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::cluster::TwoNodes;
use crate::eventually::eventually;
use crate::harness::text_slide;
use crate::live::PATIENCE;
use classcast::store::caches::CACHE_TTL;

#[tokio::test]
async fn a_save_and_a_logout_through_one_node_reach_what_another_node_kept() {
    // Both nodes hear each other on both databases; each reads its own first.
    let Some(nodes) = TwoNodes::start().await else {
        return;
    };
    let (app_1, app_2) = (&nodes.app_1, &nodes.app_2);
    let t = app_1.register("kept@school.org").await;
    let lesson = app_1
        .create_lesson(&t, json!({"title": "First", "slides": [text_slide("One")]}))
        .await;
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    nodes
        .until_replicated("SELECT COUNT(*) FROM lesson_revision", 1)
        .await;
    nodes
        .until_replicated("SELECT COUNT(*) FROM session", 1)
        .await;

    // Node 2 reads the lesson, and keeps it and the session from here on for at most
    // CACHE_TTL: both must be seen fresh there before that.
    let kept_since = Instant::now();
    assert_eq!(app_2.get_json(&path, &t).await["title"], "First");
    let tag = format!("\"{}\"", lesson["version"].as_str().unwrap());
    let saved = app_1
        .as_teacher(Method::PUT, &path, &t)
        .header("if-match", &tag)
        .json(&json!({"title": "Second", "slides": [text_slide("One")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    eventually!(PATIENCE, std::time::Duration::from_millis(20), {
        match app_2.get_json(&path, &t).await["title"].as_str() {
            Some("Second") => Ok(()),
            other => Err(format!("node 2 still serves {other:?}")),
        }
    });
    assert!(
        kept_since.elapsed() < CACHE_TTL,
        "fresh through the announcement, not by the kept copy's expiry: {:?}",
        kept_since.elapsed()
    );

    // Node 2 kept the session since its first read; a logout through node 1 ends it there
    // too.
    let me = app_2.as_teacher(Method::GET, "/api/me", &t).send().await;
    assert_eq!(me.unwrap().status(), StatusCode::OK);
    let out = app_1
        .as_teacher(Method::POST, "/api/auth/logout", &t)
        .send()
        .await;
    assert!(out.unwrap().status().is_success());
    eventually!(PATIENCE, std::time::Duration::from_millis(20), {
        let me = app_2.as_teacher(Method::GET, "/api/me", &t).send().await;
        match me.unwrap().status() {
            StatusCode::UNAUTHORIZED => Ok(()),
            other => Err(format!("node 2 still answers {other}")),
        }
    });
    assert!(
        kept_since.elapsed() < CACHE_TTL,
        "ended through the session poll, not by the kept copy's expiry: {:?}",
        kept_since.elapsed()
    );
}
