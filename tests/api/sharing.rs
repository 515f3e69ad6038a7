//! Sharing inside the school (issue 24): a lesson shared with a colleague by address, read
//! by them read-only in its current version, copied, unshared; the school library.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;
use crate::library::{duplicate, titles_at as titles};

/// Shares `lesson` of `owner` with the address `email`; the answer.
pub async fn share(
    app: &TestApp,
    owner: &Teacher,
    lesson: &Value,
    email: &str,
) -> reqwest::Response {
    let path = format!("/api/lessons/{}/shares", lesson["id"].as_str().unwrap());
    app.as_teacher(Method::POST, &path, owner)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

/// Puts `lesson` in the school library or takes it out; the answer's body.
async fn list_in_library(app: &TestApp, owner: &Teacher, lesson: &Value, listed: bool) -> Value {
    let path = format!("/api/lessons/{}/library", lesson["id"].as_str().unwrap());
    let res = app
        .as_teacher(Method::PUT, &path, owner)
        .json(&json!({ "listed": listed }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn read(app: &TestApp, t: &Teacher, lesson: &Value) -> reqwest::Response {
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    send(app, Method::GET, &path, t).await
}

/// A request without a body.
async fn send(app: &TestApp, method: Method, path: &str, t: &Teacher) -> reqwest::Response {
    app.as_teacher(method, path, t).send().await.unwrap()
}

/// Asserts the answer is the `404` of a missing lesson.
async fn refused(res: reqwest::Response) {
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

/// A server with two teachers: the owner of the lessons and a colleague.
async fn owner_and_colleague() -> (TestApp, Teacher, Teacher) {
    let app = spawn_app().await;
    let owner = app.register("owner@school.org").await;
    let colleague = app.register("colleague@school.org").await;
    (app, owner, colleague)
}

#[tokio::test]
async fn a_colleague_reads_the_current_version_of_a_shared_lesson_and_cannot_change_it() {
    let (app, owner, colleague) = owner_and_colleague().await;
    let lesson = app
        .create_lesson(
            &owner,
            json!({"title": "Volcanoes", "folder": "Geography", "slides": [text_slide("Lava")]}),
        )
        .await;

    let res = share(&app, &owner, &lesson, " Colleague@School.org ").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let shared: Value = res.json().await.unwrap();
    assert_eq!(shared["email"], "colleague@school.org");
    assert_eq!(shared["name"], "Test Teacher");
    let account = shared["account_id"].as_str().unwrap().to_owned();
    let again = share(&app, &owner, &lesson, "colleague@school.org").await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "sharing again changes nothing"
    );
    let id = lesson["id"].as_str().unwrap();
    let shares = app
        .get_json(&format!("/api/lessons/{id}/shares"), &owner)
        .await;
    assert_eq!(
        shares,
        json!({"items": [{"account_id": account, "name": "Test Teacher",
                          "email": "colleague@school.org"}], "listed": false})
    );

    let page = app.get_json("/api/lessons/shared", &colleague).await;
    let item = &page["items"][0];
    assert_eq!(item["id"], lesson["id"]);
    assert_eq!(item["title"], "Volcanoes");
    assert_eq!(item["slide_count"], 1);
    assert_eq!(item["version"], lesson["version"]);
    assert_eq!(item["owner"]["name"], "Test Teacher");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_null());
    assert_eq!(
        app.get_json("/api/lessons/shared", &owner).await["items"],
        json!([]),
        "nothing is shared with the owner"
    );

    let read_now: Value = read(&app, &colleague, &lesson).await.json().await.unwrap();
    assert_eq!(read_now["access"], "read");
    assert_eq!(read_now["slides"], lesson["slides"]);
    assert_eq!(read_now["owner"]["name"], "Test Teacher");
    let owners: Value = read(&app, &owner, &lesson).await.json().await.unwrap();
    assert_eq!(owners["access"], "owner");
    assert!(owners.get("owner").is_none());

    // The owner saves: the colleague reads the new version at once.
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &owner)
        .json(&json!({"title": "Volcanoes and lava", "slides": [text_slide("Ash")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let saved: Value = res.json().await.unwrap();
    let res = read(&app, &colleague, &lesson).await;
    assert_eq!(
        res.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", saved["version"].as_str().unwrap())
    );
    let current: Value = res.json().await.unwrap();
    assert_eq!(current["title"], "Volcanoes and lava");
    assert_eq!(current["slides"][0]["title"], "Ash");

    // Read-only (every route of the matrix: tests/api/access.rs): a save is refused.
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{id}"), &colleague)
        .json(&json!({"title": "Mine now", "slides": []}))
        .send()
        .await
        .unwrap();
    refused(res).await;
    let after: Value = read(&app, &owner, &lesson).await.json().await.unwrap();
    assert_eq!(after["version"], saved["version"], "nothing was written");
}

#[tokio::test]
async fn sharing_needs_a_teacher_of_this_server_other_than_the_owner() {
    let app = spawn_app().await;
    let owner = app.register("owner@school.org").await;
    let stranger = app.register("stranger@school.org").await;
    let lesson = app
        .create_lesson(&owner, json!({"title": "Mine", "slides": []}))
        .await;

    let res = share(&app, &owner, &lesson, "nobody@school.org").await;
    expect_error(res, StatusCode::NOT_FOUND, "unknown_teacher").await;
    let res = share(&app, &owner, &lesson, "OWNER@school.org").await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "own_lesson").await;
    let res = share(&app, &owner, &lesson, "not an address").await;
    let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(error["fields"]["email"].is_string(), "{error}");
    // Whose lesson it is is checked first: a stranger learns nothing about addresses.
    for email in [
        "nobody@school.org",
        "owner@school.org",
        "stranger@school.org",
    ] {
        let res = share(&app, &stranger, &lesson, email).await;
        refused(res).await;
    }
    let id = lesson["id"].as_str().unwrap();
    let shares = app
        .get_json(&format!("/api/lessons/{id}/shares"), &owner)
        .await;
    assert_eq!(shares["items"], json!([]));
}

#[tokio::test]
async fn unsharing_refuses_the_colleagues_next_read() {
    let (app, owner, colleague) = owner_and_colleague().await;
    let lesson = app
        .create_lesson(
            &owner,
            json!({"title": "Rivers", "slides": [text_slide("Water")]}),
        )
        .await;
    let shared: Value = share(&app, &owner, &lesson, "colleague@school.org")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        read(&app, &colleague, &lesson).await.status(),
        StatusCode::OK
    );

    let id = lesson["id"].as_str().unwrap();
    let path = format!(
        "/api/lessons/{id}/shares/{}",
        shared["account_id"].as_str().unwrap()
    );
    let res = send(&app, Method::DELETE, &path, &owner).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    refused(read(&app, &colleague, &lesson).await).await;
    assert!(titles(&app, &colleague, "/api/lessons/shared")
        .await
        .is_empty());
    let copy = duplicate(&app, &colleague, &lesson).await;
    refused(copy).await;
    let again = send(&app, Method::DELETE, &path, &owner).await;
    refused(again).await;

    // Shared again: readable again (the newest fact wins).
    let res = share(&app, &owner, &lesson, "colleague@school.org").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        read(&app, &colleague, &lesson).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_colleagues_copy_is_their_own_and_shows_its_pictures() {
    let (app, owner, colleague) = owner_and_colleague().await;
    let picture = crate::media::upload_picture(&app, &owner).await;
    let lesson = app
        .create_lesson(
            &owner,
            json!({"title": "Birds", "folder": "Biology", "slides": [
                text_slide("Wings"), {"kind": "image", "media": picture},
            ]}),
        )
        .await;
    share(&app, &owner, &lesson, "colleague@school.org").await;

    let id = lesson["id"].as_str().unwrap();
    let res = duplicate(&app, &colleague, &lesson).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let copy: Value = res.json().await.unwrap();
    assert_eq!(copy["title"], "Birds (copy)");
    assert_eq!(copy["access"], "owner");
    assert!(copy["folder"].is_null(), "the owner's folders are theirs");
    assert_eq!(copy["slides"], lesson["slides"]);
    assert_eq!(
        titles(&app, &colleague, "/api/lessons?limit=100").await,
        ["Birds (copy)"],
        "the copy is the colleague's"
    );
    assert_eq!(app.lesson_count(&owner).await, 1, "the owner has no copy");

    // The colleague changes their copy; the original stays.
    let copy_id = copy["id"].as_str().unwrap();
    let res = app
        .as_teacher(Method::PUT, &format!("/api/lessons/{copy_id}"), &colleague)
        .json(&json!({"title": "My birds", "slides": copy["slides"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let original: Value = read(&app, &owner, &lesson).await.json().await.unwrap();
    assert_eq!(original["title"], "Birds");

    // The pictures stay readable once the original is gone: the copy names them.
    let res = send(&app, Method::DELETE, &format!("/api/lessons/{id}"), &owner).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mine = app
        .get_json(&format!("/api/lessons/{copy_id}"), &colleague)
        .await;
    let media = mine["slides"][1]["media"].as_str().unwrap();
    assert_eq!(media, picture);
    let res = send(
        &app,
        Method::GET,
        &format!("/api/media/{media}"),
        &colleague,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        crate::media::file(crate::media::PNG, 1_000)
    );
}

#[tokio::test]
async fn the_school_library_lists_searches_and_lets_every_teacher_read_and_copy() {
    let app = spawn_app().await;
    let owner = app.register("owner@school.org").await;
    let teacher = app.register("teacher@school.org").await;
    let listed = app
        .create_lesson(
            &owner,
            json!({"title": "Photosynthesis", "slides": [text_slide("Chlorophyll")]}),
        )
        .await;
    let unlisted = app
        .create_lesson(&owner, json!({"title": "Draft", "slides": []}))
        .await;

    assert_eq!(
        list_in_library(&app, &owner, &listed, true).await,
        json!({"items": [], "listed": true})
    );
    assert_eq!(
        titles(&app, &teacher, "/api/library").await,
        ["Photosynthesis"]
    );
    assert_eq!(
        titles(&app, &owner, "/api/library").await,
        ["Photosynthesis"],
        "the owner sees their own listed lesson too"
    );
    assert_eq!(
        titles(&app, &teacher, "/api/library?q=CHLOROPHYLL").await,
        ["Photosynthesis"],
        "searched in slide text, as one's own lessons are"
    );
    assert!(titles(&app, &teacher, "/api/library?q=lava")
        .await
        .is_empty());
    expect_error(
        app.as_teacher(
            Method::GET,
            &format!(
                "/api/library?q={}",
                (0..9)
                    .map(|n| format!("w{n}"))
                    .collect::<Vec<_>>()
                    .join("+")
            ),
            &teacher,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_search",
    )
    .await;
    let page = app.get_json("/api/library", &teacher).await;
    assert_eq!(page["items"][0]["owner"]["name"], "Test Teacher");
    assert_eq!(page["items"][0]["slide_count"], 1);

    let read_now: Value = read(&app, &teacher, &listed).await.json().await.unwrap();
    assert_eq!(read_now["access"], "read");
    refused(read(&app, &teacher, &unlisted).await).await;
    let res = duplicate(&app, &teacher, &listed).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Taken out: gone from the library, and no longer readable.
    assert_eq!(
        list_in_library(&app, &owner, &listed, false).await["listed"],
        false
    );
    assert!(titles(&app, &teacher, "/api/library").await.is_empty());
    refused(read(&app, &teacher, &listed).await).await;
    assert_eq!(
        titles(&app, &teacher, "/api/lessons").await,
        ["Photosynthesis (copy)"],
        "the copy made meanwhile stays"
    );
}

#[tokio::test]
async fn a_deleted_lesson_leaves_the_shared_list_and_the_library() {
    let (app, owner, colleague) = owner_and_colleague().await;
    let lesson = app
        .create_lesson(&owner, json!({"title": "Gone soon", "slides": []}))
        .await;
    share(&app, &owner, &lesson, "colleague@school.org").await;
    list_in_library(&app, &owner, &lesson, true).await;
    assert_eq!(
        titles(&app, &colleague, "/api/lessons/shared").await,
        ["Gone soon"]
    );

    let id = lesson["id"].as_str().unwrap();
    let res = send(&app, Method::DELETE, &format!("/api/lessons/{id}"), &owner).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(titles(&app, &colleague, "/api/lessons/shared")
        .await
        .is_empty());
    assert!(titles(&app, &colleague, "/api/library").await.is_empty());
    refused(read(&app, &colleague, &lesson).await).await;
}

#[tokio::test]
async fn shared_lessons_come_newest_first_a_page_at_a_time() {
    let (app, owner, colleague) = owner_and_colleague().await;
    for title in ["First", "Second", "Third"] {
        let lesson = app
            .create_lesson(&owner, json!({"title": title, "slides": []}))
            .await;
        share(&app, &owner, &lesson, "colleague@school.org").await;
    }
    let page = app
        .get_json("/api/lessons/shared?limit=2", &colleague)
        .await;
    let first: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["Third", "Second"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_eq!(
        titles(
            &app,
            &colleague,
            &format!("/api/lessons/shared?limit=2&cursor={cursor}")
        )
        .await,
        ["First"]
    );
    assert_eq!(
        titles(&app, &colleague, "/api/lessons/shared?order=title").await,
        ["First", "Second", "Third"]
    );
}
