//! The lesson library (issue 24): duplicating a lesson, searching one's lessons, folders.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

pub(crate) async fn duplicate(app: &TestApp, t: &Teacher, lesson: &Value) -> reqwest::Response {
    let path = format!("/api/lessons/{}/duplicate", lesson["id"].as_str().unwrap());
    app.as_teacher(Method::POST, &path, t).send().await.unwrap()
}

/// The titles of the lessons a list answers, in its order.
async fn titles(app: &TestApp, t: &Teacher, query: &str) -> Vec<String> {
    titles_at(app, t, &format!("/api/lessons?limit=100&{query}")).await
}

/// The titles of the lessons the list at `path` answers, in its order.
pub(crate) async fn titles_at(app: &TestApp, t: &Teacher, path: &str) -> Vec<String> {
    let page = app.get_json(path, t).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap().to_owned())
        .collect()
}

/// The teacher's folders as (name, lessons).
async fn folders(app: &TestApp, t: &Teacher) -> Vec<(String, i64)> {
    let list = app.get_json("/api/lessons/folders", t).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["lessons"].as_i64().unwrap(),
            )
        })
        .collect()
}

pub(crate) async fn save(app: &TestApp, t: &Teacher, lesson: &Value, body: Value) -> Value {
    let path = format!("/api/lessons/{}", lesson["id"].as_str().unwrap());
    let res = app
        .as_teacher(Method::PUT, &path, t)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_duplicate_is_a_new_lesson_with_the_same_slides_titled_apart() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let original = app
        .create_lesson(
            &t,
            json!({"title": "Fractions", "folder": "Maths", "slides": [
                text_slide("Welcome"),
                {"kind": "question", "title": "1/2 + 1/4?", "answer": "3/4"},
                {"kind": "timer", "title": "Work", "seconds": 300},
            ]}),
        )
        .await;

    let res = duplicate(&app, &t, &original).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let copy: Value = res.json().await.unwrap();
    assert_eq!(etag, format!("\"{}\"", copy["version"].as_str().unwrap()));
    assert_ne!(copy["id"], original["id"]);
    assert_eq!(copy["title"], "Fractions (copy)");
    assert_eq!(
        copy["slides"], original["slides"],
        "the same slides, in order"
    );
    assert_eq!(copy["folder"], "Maths", "filed beside the original");
    let read = app
        .get_json(
            &format!("/api/lessons/{}", copy["id"].as_str().unwrap()),
            &t,
        )
        .await;
    assert_eq!(read, copy);

    let again: Value = duplicate(&app, &t, &original).await.json().await.unwrap();
    assert_eq!(again["title"], "Fractions (copy 2)");
    let of_copy: Value = duplicate(&app, &t, &copy).await.json().await.unwrap();
    assert_eq!(of_copy["title"], "Fractions (copy) (copy)");

    // The original is untouched, and a copy is a lesson of its own: editing it leaves the
    // original as it was.
    save(&app, &t, &copy, json!({"title": "Mine now", "slides": []})).await;
    let read = app
        .get_json(
            &format!("/api/lessons/{}", original["id"].as_str().unwrap()),
            &t,
        )
        .await;
    assert_eq!(read, original);
    assert_eq!(app.lesson_count(&t).await, 4);

    // A title at the length limit is shortened to make room, never refused.
    let long = app
        .create_lesson(&t, json!({"title": "é".repeat(200)}))
        .await;
    let copy: Value = duplicate(&app, &t, &long).await.json().await.unwrap();
    let title = copy["title"].as_str().unwrap();
    assert_eq!(title.chars().count(), 200);
    assert!(title.ends_with("é (copy)"), "{title}");
}

#[tokio::test]
async fn a_duplicate_costs_the_teachers_lesson_storage() {
    let app = spawn_with(|c| c.lesson_storage_mib = Some(2)).await;
    let t = app.register("t@school.org").await;
    let lesson = app.create_lesson(&t, crate::budgets::big_lesson(20)).await;
    // About 400 KiB each: the original and four copies fit in 2 MiB, a fifth does not.
    for _ in 0..4 {
        assert_eq!(
            duplicate(&app, &t, &lesson).await.status(),
            StatusCode::CREATED
        );
    }
    let refused = duplicate(&app, &t, &lesson).await;
    expect_error(refused, StatusCode::FORBIDDEN, "storage_full").await;
    assert_eq!(app.lesson_count(&t).await, 5, "nothing was written");
}

#[tokio::test]
async fn a_search_finds_every_word_in_titles_and_slide_text_ignoring_case() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let other = app.register("other@school.org").await;
    app.create_lesson(
        &t,
        json!({"title": "Fractions with pie", "slides": [
            {"kind": "text", "title": "Start", "body": "Cut the *cake* in Größe"}]}),
    )
    .await;
    let decimals = app
        .create_lesson(
            &t,
            json!({"title": "Decimals", "slides": [
                {"kind": "question", "title": "Half?", "answer": "0.5", "notes": "Show the PIE chart"}]}),
        )
        .await;
    app.create_lesson(
        &t,
        json!({"title": "Pie recipes", "slides": [text_slide("Fractions of flour")]}),
    )
    .await;
    app.create_lesson(
        &t,
        json!({"title": "Geometry", "slides": [text_slide("Angles")]}),
    )
    .await;
    app.create_lesson(&other, json!({"title": "Pie for others"}))
        .await;

    let search = |q: &str| {
        let query = format!("order=title&{}", query_pair("q", q));
        let app = &app;
        let t = &t;
        async move { titles(app, t, &query).await }
    };
    // A title, speaker notes, another title: only one's own lessons.
    assert_eq!(
        search("pie").await,
        ["Decimals", "Fractions with pie", "Pie recipes"]
    );
    // Case is ignored on both sides, beyond ASCII too.
    assert_eq!(
        search("FRACTIONS").await,
        ["Fractions with pie", "Pie recipes"]
    );
    assert_eq!(
        search("GRÖSSE").await,
        Vec::<String>::new(),
        "no folding beyond case"
    );
    assert_eq!(search("GRÖßE").await, ["Fractions with pie"]);
    // Every word must match, in any order, anywhere in the lesson.
    assert_eq!(
        search("pie fractions").await,
        ["Fractions with pie", "Pie recipes"]
    );
    assert_eq!(search("cake fractions").await, ["Fractions with pie"]);
    assert_eq!(search("cake flour").await, Vec::<String>::new());
    // Answers are slide text; parts of words match.
    assert_eq!(search("0.5").await, ["Decimals"]);
    assert_eq!(search("ngle").await, ["Geometry"]);
    // What the slides are stored as is not searched, and nothing is a wildcard.
    assert_eq!(search("kind").await, Vec::<String>::new());
    assert_eq!(search("question").await, Vec::<String>::new());
    assert_eq!(search("%").await, Vec::<String>::new());
    assert_eq!(search("_").await, Vec::<String>::new());
    // No words: the whole list.
    assert_eq!(search("  ").await.len(), 4);

    // Only the current revision counts, and deleted lessons are gone.
    save(
        &app,
        &t,
        &decimals,
        json!({"title": "Decimals", "slides": [text_slide("Tenths")]}),
    )
    .await;
    assert_eq!(search("chart").await, Vec::<String>::new());
    assert_eq!(search("tenths").await, ["Decimals"]);
    let path = format!("/api/lessons/{}", decimals["id"].as_str().unwrap());
    app.as_teacher(Method::DELETE, &path, &t)
        .send()
        .await
        .unwrap();
    assert_eq!(search("tenths").await, Vec::<String>::new());
}

/// `name=value` in a query string.
fn query_pair(name: &str, value: &str) -> String {
    let mut url = reqwest::Url::parse("http://any/").unwrap();
    url.query_pairs_mut().append_pair(name, value);
    url.query().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_search_pages_like_the_list_in_both_orders() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let mut wanted = Vec::new();
    for n in 0..9 {
        let title = format!("Topic {n}");
        let word = if n % 3 == 0 { "elsewhere" } else { "volcano" };
        app.create_lesson(&t, json!({"title": title, "slides": [text_slide(word)]}))
            .await;
        if word == "volcano" {
            wanted.push(title);
        }
    }
    for order in ["updated", "title"] {
        let seen = crate::lessons::walk(&app, &t, format!("order={order}&q=VOLCANO")).await;
        let mut expected = wanted.clone();
        if order == "updated" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order}");
    }
}

#[tokio::test]
async fn a_search_too_long_or_of_too_many_words_is_refused() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    for q in [
        "x".repeat(201),
        (1..=9)
            .map(|n| format!("w{n}"))
            .collect::<Vec<_>>()
            .join("+"),
    ] {
        let res = app
            .as_teacher(Method::GET, &format!("/api/lessons?q={q}"), &t)
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::BAD_REQUEST, "bad_search").await;
    }
    // At the bounds it is a search like any other.
    let q = (1..=8)
        .map(|n| format!("w{n}"))
        .collect::<Vec<_>>()
        .join("+");
    assert!(titles(&app, &t, &format!("q={q}")).await.is_empty());
    assert!(titles(&app, &t, &format!("q={}", "x".repeat(200)))
        .await
        .is_empty());
}

#[tokio::test]
async fn lessons_are_filed_in_folders_listed_with_counts() {
    let app = spawn_app().await;
    let t = app.register("t@school.org").await;
    let other = app.register("other@school.org").await;
    let algebra = app
        .create_lesson(&t, json!({"title": "Algebra", "folder": "  Maths  "}))
        .await;
    assert_eq!(algebra["folder"], "Maths", "trimmed");
    app.create_lesson(&t, json!({"title": "Geometry", "folder": "Maths"}))
        .await;
    let cells = app
        .create_lesson(&t, json!({"title": "Cells", "folder": "Year 8 / Biology"}))
        .await;
    let loose = app
        .create_lesson(&t, json!({"title": "Loose", "folder": ""}))
        .await;
    assert_eq!(loose["folder"], Value::Null);
    app.create_lesson(&other, json!({"title": "Theirs", "folder": "Maths"}))
        .await;

    assert_eq!(
        folders(&app, &t).await,
        [("Maths".into(), 2), ("Year 8 / Biology".into(), 1)]
    );
    assert_eq!(
        titles(&app, &t, "order=title&folder=Maths").await,
        ["Algebra", "Geometry"]
    );
    assert_eq!(
        titles(&app, &t, "folder=Year%208%20%2F%20Biology").await,
        ["Cells"]
    );
    assert_eq!(
        titles(&app, &t, "folder=maths").await,
        Vec::<String>::new(),
        "names are exact"
    );
    assert_eq!(titles(&app, &t, "folder=Maths&q=geo").await, ["Geometry"]);
    let page = app.get_json("/api/lessons?order=title", &t).await;
    assert_eq!(
        page["items"][0]["folder"], "Maths",
        "the list says where each lesson is"
    );
    assert_eq!(page["items"][3]["folder"], Value::Null);

    // Moving a lesson is a save that names the folder.
    let moved = save(
        &app,
        &t,
        &algebra,
        json!({"title": "Algebra", "folder": "Year 8 / Biology"}),
    )
    .await;
    assert_eq!(moved["folder"], "Year 8 / Biology");
    assert_eq!(
        folders(&app, &t).await,
        [("Maths".into(), 1), ("Year 8 / Biology".into(), 2)]
    );
    // A save that does not name a folder (an editor's) leaves the lesson where it is.
    let edited = save(&app, &t, &cells, json!({"title": "Cells and tissue"})).await;
    assert_eq!(edited["folder"], "Year 8 / Biology");
    // A restore brings back the old title and slides, not the old folder.
    let first = cells["version"].as_str().unwrap();
    let path = format!(
        "/api/lessons/{}/revisions/{first}/restore",
        cells["id"].as_str().unwrap()
    );
    let res = app
        .as_teacher(Method::POST, &path, &t)
        .send()
        .await
        .unwrap();
    let restored: Value = res.json().await.unwrap();
    assert_eq!(
        (&restored["title"], &restored["folder"]),
        (&json!("Cells"), &json!("Year 8 / Biology"))
    );
    // An empty folder takes the lesson out; a folder holding nothing is not listed.
    save(
        &app,
        &t,
        &algebra,
        json!({"title": "Algebra", "folder": ""}),
    )
    .await;
    save(
        &app,
        &t,
        &cells,
        json!({"title": "Cells", "folder": "Maths"}),
    )
    .await;
    assert_eq!(folders(&app, &t).await, [("Maths".into(), 2)]);
    let path = format!("/api/lessons/{}", cells["id"].as_str().unwrap());
    app.as_teacher(Method::DELETE, &path, &t)
        .send()
        .await
        .unwrap();
    assert_eq!(folders(&app, &t).await, [("Maths".into(), 1)]);

    // A folder name is one line of at most 60 characters.
    for bad in ["x".repeat(61), "two\nlines".into()] {
        let res = app
            .as_teacher(Method::POST, "/api/lessons", &t)
            .json(&json!({"title": "Bad", "folder": bad}))
            .send()
            .await
            .unwrap();
        let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(error["fields"]["folder"].is_string(), "{error}");
    }
    let res = app
        .as_teacher(
            Method::GET,
            &format!("/api/lessons?folder={}", "x".repeat(61)),
            &t,
        )
        .send()
        .await
        .unwrap();
    let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(error["fields"]["folder"].is_string(), "{error}");
}
