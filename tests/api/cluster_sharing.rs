//! Sharing in a cluster: a share made through one node lets the colleague read through
//! another as soon as its row has replicated, and withdrawing it there is refused just as
//! soon: nothing about who may read a lesson is kept in a node's memory.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster::TwoNodes;
use crate::eventually::eventually;
use crate::harness::text_slide;
use crate::live::PATIENCE;

#[tokio::test]
async fn a_share_made_through_one_node_is_read_and_withdrawn_through_another() {
    let Some(nodes) = TwoNodes::start().await else {
        return;
    };
    let (app_1, app_2) = (&nodes.app_1, &nodes.app_2);
    let owner = app_1.register("owner@school.org").await;
    let colleague = app_1.register("colleague@school.org").await;
    let lesson = app_1
        .create_lesson(
            &owner,
            json!({"title": "Tides", "slides": [text_slide("Moon")]}),
        )
        .await;
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    nodes
        .until_replicated("SELECT COUNT(*) FROM lesson_revision", 1)
        .await;
    nodes
        .until_replicated("SELECT COUNT(*) FROM session", 2)
        .await;
    let status = |app: &crate::harness::TestApp| {
        let request = app.as_teacher(Method::GET, &path, &colleague);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status(app_2).await, StatusCode::NOT_FOUND);

    let res = app_1
        .as_teacher(Method::POST, &format!("{path}/shares"), &owner)
        .json(&json!({"email": "colleague@school.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let account = res.json::<Value>().await.unwrap()["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually!(PATIENCE, std::time::Duration::from_millis(20), {
        match status(app_2).await {
            StatusCode::OK => Ok(()),
            other => Err(format!("node 2 answers {other}")),
        }
    });
    let read = app_2.get_json(&path, &colleague).await;
    assert_eq!(
        (&read["title"], &read["access"]),
        (&json!("Tides"), &json!("read"))
    );
    let shared = app_2.get_json("/api/lessons/shared", &colleague).await;
    assert_eq!(shared["items"][0]["title"], "Tides");

    let res = app_1
        .as_teacher(Method::DELETE, &format!("{path}/shares/{account}"), &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    eventually!(PATIENCE, std::time::Duration::from_millis(20), {
        match status(app_2).await {
            StatusCode::NOT_FOUND => Ok(()),
            other => Err(format!("node 2 still answers {other}")),
        }
    });
    let shared = app_2.get_json("/api/lessons/shared", &colleague).await;
    assert_eq!(shared["items"], json!([]));
}
