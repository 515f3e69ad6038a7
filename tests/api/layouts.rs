//! Slide layouts, lesson themes and pictures' alternative text over the API (issue 24,
//! docs/layouts.md): saved and read back, refused with the field's path when wrong, carried
//! by lesson files, and absent from lessons saved before them, which read as they did; a
//! PDF's pages described by their text.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{expect_error, spawn_app, Teacher, TestApp};
use crate::lesson_files::{export, import};
use crate::lessons::restore;
use crate::library::save;
use crate::media::upload_picture;
use crate::pdf::PdfSpec;
use classcast::domain::lesson::ALT_MAX;

/// Every layout once: the four of text slides, the three of image slides.
fn every_layout(picture: &str) -> Value {
    json!([
        {"kind": "text", "title": "Plain", "layout": "text"},
        {"kind": "text", "title": "Welcome", "body": "Fractions, week 3", "layout": "title"},
        {"kind": "text", "title": "Compare", "body": "Left\n\n---\n\nRight", "layout": "two-columns"},
        {"kind": "text", "title": "Pupils", "body": "28", "layout": "big"},
        {"kind": "image", "title": "A pie", "media": picture, "layout": "picture"},
        {"kind": "image", "title": "Beside", "media": picture, "body": "Half of it", "layout": "picture-text"},
        {"kind": "image", "title": "Full", "media": picture, "layout": "picture-full"},
    ])
}

/// Asserts that creating a lesson of `slides` in `theme` is refused, the message at `field`
/// saying `said`.
async fn refused(app: &TestApp, t: &Teacher, slides: Value, theme: Value, field: &str, said: &str) {
    let res = app
        .as_teacher(Method::POST, "/api/lessons", t)
        .json(&json!({"title": "Wrong", "slides": slides, "theme": theme}))
        .send()
        .await
        .unwrap();
    let error = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let message = error["fields"][field].as_str().unwrap_or_default();
    assert!(message.contains(said), "{field}: {error}");
}

fn layouts(lesson: &Value) -> Vec<Value> {
    lesson["slides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["layout"].clone())
        .collect()
}

#[tokio::test]
async fn every_layout_is_saved_and_read_back_and_a_wrong_one_is_refused_with_its_path() {
    let app = spawn_app().await;
    let t = app.register("layouts@school.org").await;
    let picture = upload_picture(&app, &t).await;
    let want: Vec<Value> = [
        "text",
        "title",
        "two-columns",
        "big",
        "picture",
        "picture-text",
        "picture-full",
    ]
    .map(Value::from)
    .into();
    let created = app
        .create_lesson(
            &t,
            json!({"title": "Looks", "slides": every_layout(&picture)}),
        )
        .await;
    assert_eq!(layouts(&created), want);
    let id = created["id"].as_str().unwrap();
    let read = app.get_json(&format!("/api/lessons/{id}"), &t).await;
    assert_eq!(layouts(&read), want);
    assert_eq!(read["slides"][5]["body"], "Half of it");

    // A layout of another kind, or any layout for a kind that has one look.
    for (slide, path, names) in [
        (
            json!({"kind": "text", "title": "x", "layout": "picture-text"}),
            "slides[1].layout",
            "text, title, two-columns, big",
        ),
        (
            json!({"kind": "image", "media": picture, "layout": "big"}),
            "slides[1].layout",
            "picture, picture-text, picture-full",
        ),
        (
            json!({"kind": "timer", "seconds": 60, "layout": "text"}),
            "slides[1].layout",
            "leave the layout out",
        ),
        (
            json!({"kind": "text", "layout": "sideways"}),
            "slides[1].layout",
            "text, title",
        ),
    ] {
        refused(
            &app,
            &t,
            json!([{"kind": "text"}, slide]),
            Value::Null,
            path,
            names,
        )
        .await;
    }

    // The editor's preview shows the layout as the board will.
    let res = app
        .as_teacher(Method::POST, "/api/slides/preview", &t)
        .json(&json!({"kind": "text", "title": "T", "body": "1\n\n---\n\n2", "layout": "two-columns"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["layout"], "two-columns");
    assert!(view["html"].as_str().unwrap().contains("<hr />"), "{view}");
}

#[tokio::test]
async fn a_lesson_without_layouts_reads_as_before_and_lesson_files_carry_them() {
    let app = spawn_app().await;
    let t = app.register("old@school.org").await;
    let picture = upload_picture(&app, &t).await;
    let old = app
        .create_lesson(
            &t,
            json!({"title": "Old", "slides": [
                {"kind": "text", "title": "A"},
                {"kind": "image", "media": picture}]}),
        )
        .await;
    // No new field appears on slides that have none.
    for slide in old["slides"].as_array().unwrap() {
        assert_eq!(slide.get("layout"), None, "{slide}");
    }
    let saved = save(
        &app,
        &t,
        &old,
        json!({"title": "Old", "slides": every_layout(&picture)}),
    )
    .await;
    let id = old["id"].as_str().unwrap();

    let res = export(&app, &t, id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = import(&app, &t, res.bytes().await.unwrap().to_vec()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let imported: Value = res.json().await.unwrap();
    assert_eq!(layouts(&imported), layouts(&saved));
}

#[tokio::test]
async fn a_theme_is_saved_kept_by_saves_that_leave_it_out_and_checked() {
    let app = spawn_app().await;
    let t = app.register("themes@school.org").await;
    let dark = json!({"name": "dark", "accent": "#ffcc00"});
    let lesson = app
        .create_lesson(
            &t,
            json!({"title": "Dark", "theme": {"name": "dark", "accent": "#FFCC00"},
                   "slides": [{"kind": "text", "title": "A"}]}),
        )
        .await;
    assert_eq!(lesson["theme"], dark, "stored in lowercase");
    let plain = app
        .create_lesson(&t, json!({"title": "Plain", "slides": []}))
        .await;
    assert_eq!(plain["theme"], Value::Null, "none: the default look");

    // A save without a theme (an older editor, a script) keeps it; one with a theme sets it.
    let kept = save(&app, &t, &lesson, json!({"title": "Dark 2", "slides": []})).await;
    assert_eq!(kept["theme"], dark);
    let light = json!({"name": "light"});
    let changed = save(
        &app,
        &t,
        &kept,
        json!({"title": "Light", "slides": [], "theme": light}),
    )
    .await;
    assert_eq!(changed["theme"], light);
    let id = lesson["id"].as_str().unwrap();
    assert_eq!(
        app.get_json(&format!("/api/lessons/{id}"), &t).await["theme"],
        light
    );

    // A restore brings back the look the lesson had then.
    let restored = restore(&app, &t, &lesson).await;
    assert_eq!(restored["theme"], dark);

    // Lesson files carry it.
    let res = export(&app, &t, id).await;
    let res = import(&app, &t, res.bytes().await.unwrap().to_vec()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["theme"], dark);

    for (theme, field, said) in [
        (
            json!({"name": "neon"}),
            "theme.name",
            "light, dark, contrast",
        ),
        (
            json!({"name": "dark", "accent": "yellow"}),
            "theme.accent",
            "#1d5fa8",
        ),
        (
            json!({"name": "dark", "accent": "#fc0"}),
            "theme.accent",
            "six hexadecimal",
        ),
    ] {
        refused(&app, &t, json!([]), theme, field, said).await;
    }
}

#[tokio::test]
async fn a_pictures_alt_text_is_one_bounded_line_and_a_pdf_page_gives_its_text() {
    let app = spawn_app().await;
    let t = app.register("alt@school.org").await;
    let picture = upload_picture(&app, &t).await;
    let lesson = app
        .create_lesson(
            &t,
            json!({"title": "Pies", "slides": [
                {"kind": "image", "media": picture, "alt": "  A pie cut in four  "},
                {"kind": "image", "media": picture, "alt": ""},
                {"kind": "text", "alt": "dropped: a text slide has no picture"}]}),
        )
        .await;
    let alts: Vec<&Value> = lesson["slides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("alt").unwrap_or(&Value::Null))
        .collect();
    assert_eq!(
        alts,
        [&json!("A pie cut in four"), &Value::Null, &Value::Null]
    );
    let id = lesson["id"].as_str().unwrap();
    let res = export(&app, &t, id).await;
    let res = import(&app, &t, res.bytes().await.unwrap().to_vec()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let imported: Value = res.json().await.unwrap();
    assert_eq!(imported["slides"][0]["alt"], "A pie cut in four");

    let longest = "é".repeat(ALT_MAX);
    let fits = json!([{"kind": "image", "media": picture, "alt": longest}]);
    app.create_lesson(&t, json!({"title": "Long", "slides": fits}))
        .await;
    for (alt, said) in [
        (format!("{longest}é"), "at most 1000 characters"),
        ("Two\nlines".to_owned(), "one line"),
    ] {
        let slides = json!([{"kind": "image", "media": picture, "alt": alt}]);
        refused(&app, &t, slides, Value::Null, "slides[0].alt", said).await;
    }

    // A page of a PDF is described by its text, on one line.
    let pdf = PdfSpec::text_pages(2, |n| format!("Fractions part {n}")).build();
    let res = app
        .as_teacher(Method::POST, "/api/lessons/import", &t)
        .header("content-type", "application/pdf")
        .body(pdf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let slides = res.json::<Value>().await.unwrap()["slides"].clone();
    assert_eq!(slides[1]["alt"], "Page 2 Fractions part 2");
    assert_eq!(slides[1]["notes"], "Page 2\nFractions part 2");
}
