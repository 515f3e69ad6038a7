//! Slide layouts in real headless Chromium (issue 24, docs/layouts.md): a lesson with every
//! layout, presented on a 1080p board and shown in the editor's preview, draws the same
//! slides (the same elements, classes, text and picture) in both; the editor's layout
//! control works by keyboard.

use serde_json::{json, Value};

use crate::browser::{
    pair_and_present_with, signed_in_as, teacher_token, teacher_with_lesson, Presenting, EMAIL,
};
use crate::harness::Process;
use crate::media::png;
use crate::tools::{missing, Tool};
use crate::webdriver::{Browser, Driver};

const DOWN: &str = "\u{E015}";

/// Every layout once, as (title, layout); the titles tell the slides apart.
const SLIDES: [(&str, &str); 7] = [
    ("Plain", "text"),
    ("Welcome", "title"),
    ("Compare", "two-columns"),
    ("Pupils", "big"),
    ("A pie", "picture"),
    ("Beside", "picture-text"),
    ("Full", "picture-full"),
];

/// The lesson of [`SLIDES`], made through the API; answers its id.
pub(crate) async fn lesson_of_every_layout(base: &str, extra: Value) -> String {
    let client = reqwest::Client::new();
    let token = teacher_token(&client, base).await;
    let picture: Value = client
        .post(format!("{base}/api/media"))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .body(png(64, 48))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let picture = picture["id"].as_str().unwrap();
    let slides: Vec<Value> = SLIDES
        .iter()
        .map(|(title, layout)| {
            let kind = if layout.starts_with("picture") {
                "image"
            } else {
                "text"
            };
            let body = match *layout {
                "two-columns" => "Halves\n\n---\n\nQuarters",
                "big" => "28",
                _ => "A **half** of it",
            };
            json!({"kind": kind, "title": title, "body": body, "media": picture,
                   "layout": layout})
        })
        .collect();
    let mut lesson = json!({"title": "Looks", "slides": slides});
    if let (Value::Object(lesson), Value::Object(extra)) = (&mut lesson, extra) {
        lesson.extend(extra);
    }
    let res = client
        .post(format!("{base}/api/lessons"))
        .bearer_auth(&token)
        .json(&lesson)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What a slide in `frame` is made of, once it shows the slide titled `title` in `layout`
/// (a full-screen picture shows no title): each
/// element's tag and classes, the text, the picture's alt text, and whether any text is
/// set below the slide's own size (no layout may do so; captions are the slide's
/// own smaller line and were so before layouts).
async fn drawn(page: &Browser, frame: &str, (title, layout): (&str, &str)) -> Value {
    let script = format!(
        "const root = document.querySelector('{frame} > .slide');
         if (root?.dataset.layout !== {layout:?}) return null;
         if ({layout:?} !== 'picture-full' && !root.textContent.includes({title:?})) return null;
         const base = parseFloat(getComputedStyle(root).fontSize);
         const small = [...root.querySelectorAll('.slide-heading, .slide-body')]
           .filter((e) => parseFloat(getComputedStyle(e).fontSize) < base - 0.01)
           .map((e) => e.className);
         return {{
           layout: root.dataset.layout,
           elements: [...root.querySelectorAll('*')].map((e) => e.tagName + '.' + e.className),
           classes: root.className,
           text: root.textContent.replace(/\\s+/g, ' ').trim(),
           alt: root.querySelector('img')?.alt ?? null,
           small,
         }}"
    );
    page.wait_until(&format!("{frame} showing {title:?}"), &script)
        .await
}

#[tokio::test]
async fn every_layout_is_drawn_alike_on_a_1080p_board_and_in_the_editors_preview() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let base = server.base.clone();
    teacher_with_lesson(&base).await;
    let id = lesson_of_every_layout(&base, json!({})).await;
    let driver = Driver::start().await;
    let how = Presenting {
        board_size: (1920, 1080),
        lesson: "Looks",
        first_slide: "Plain",
        ..Presenting::default()
    };
    let (board, teacher) = pair_and_present_with(&driver, &base, how, "layouts").await;
    board.resize(1920, 1080).await; // the page itself 1080p, the window's frame aside
    let editor = signed_in_as(&driver, &base, EMAIL, &format!("/lessons/{id}")).await;
    editor.wait_for("#slide-list button[data-key]").await;

    for (i, (title, layout)) in SLIDES.iter().enumerate() {
        if i > 0 {
            teacher.click("#next").await;
        }
        let on_board = drawn(&board, "#slide-frame", (title, layout)).await;
        board.screenshot(&format!("layouts-board-{layout}")).await;
        editor
            .click(&format!("#slide-list li:nth-child({}) button", i + 1))
            .await;
        let in_preview = drawn(&editor, "#slide-preview", (title, layout)).await;
        assert_eq!(on_board, in_preview, "{layout}: board and preview differ");
        assert_eq!(
            on_board["small"],
            json!([]),
            "{layout}: text below its size"
        );
    }
    let full = drawn(&board, "#slide-frame", ("Full", "picture-full")).await;
    assert_eq!(
        full["text"], "",
        "a full-screen picture has no caption: {full}"
    );

    // By keyboard: the first slide's layout, one step down the list, is a title slide.
    editor.click("#slide-list li:nth-child(1) button").await;
    editor.wait_for_text("#slide-preview", "Plain").await;
    editor
        .run("document.querySelector('#slide-layout').focus()", json!([]))
        .await;
    editor.press(DOWN).await;
    editor
        .wait_until(
            "the preview in the title layout",
            "return document.querySelector('#slide-preview > .slide')?.dataset.layout === 'title' || null",
        )
        .await;
    editor
        .wait_for_text("#slide-layout-hint", "large in the middle")
        .await;
    editor.screenshot("layouts-editor-title").await;
}
