//! Slide layouts and lesson themes in real headless Chromium (issue 24, docs/layouts.md): a
//! lesson with every layout, presented on a 1080p board and shown in the editor's preview,
//! draws the same slides (the same elements, classes, text, picture and its alt text) in
//! both; every
//! theme passes axe-core on the board, with accents it has to adjust; the editor's layout
//! and theme controls work by keyboard.

use serde_json::{json, Value};

use crate::browser::{
    axe_source, axe_violations, created, get, pair_and_present_with, signed_in_as, teacher_token,
    teacher_with_lesson, Presenting, EMAIL,
};
use crate::harness::Process;
use crate::media::png;
use crate::tools::{missing, Tool};
use crate::webdriver::{Browser, Driver};

const DOWN: &str = "\u{E015}";
const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";
const SPACE: &str = " ";

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

/// The alternative text of the picture of the slide titled `title`.
fn described(title: &str) -> String {
    format!("{title}: a pie cut in four")
}

/// The lesson of [`SLIDES`], made through the API (the pictures described); answers its id.
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
                   "layout": layout, "alt": described(title)})
        })
        .collect();
    let mut lesson = json!({"title": "Looks", "slides": slides});
    if let (Value::Object(lesson), Value::Object(extra)) = (&mut lesson, extra) {
        lesson.extend(extra);
    }
    let request = client
        .post(format!("{base}/api/lessons"))
        .bearer_auth(&token)
        .json(&lesson);
    created(request, "id").await
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

/// A server with the teacher's lesson of every layout ([`presenting_every_layout`]).
struct Classroom {
    base: String,
    board: Browser,
    teacher: Browser,
    /// The lesson's id.
    id: String,
    driver: Driver,
    _server: Process,
    _dir: tempfile::TempDir,
}

/// A server (in its data directory) with the teacher's lesson of every layout, and its id.
async fn serving_every_layout() -> (tempfile::TempDir, Process, String) {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    teacher_with_lesson(&server.base).await;
    let id = lesson_of_every_layout(&server.base, json!({})).await;
    (dir, server, id)
}

/// [`serving_every_layout`], the lesson presented on a board whose page is 1920 × 1080.
async fn presenting_every_layout(shots: &str) -> Classroom {
    let (dir, server, id) = serving_every_layout().await;
    let base = server.base.clone();
    let driver = Driver::start().await;
    let how = Presenting {
        board_size: (1920, 1080),
        lesson: "Looks",
        first_slide: "Plain",
        ..Presenting::default()
    };
    let (board, teacher) = pair_and_present_with(&driver, &base, how, shots).await;
    board.resize(1920, 1080).await; // the page itself 1080p, the window's frame aside
    Classroom {
        base,
        board,
        teacher,
        id,
        driver,
        _server: server,
        _dir: dir,
    }
}

#[tokio::test]
async fn every_layout_is_drawn_alike_on_a_1080p_board_and_in_the_editors_preview() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let room = presenting_every_layout("layouts").await;
    let (base, board, teacher, id) = (&room.base, &room.board, &room.teacher, &room.id);
    let editor = signed_in_as(&room.driver, base, EMAIL, &format!("/lessons/{id}")).await;
    editor.wait_for("#slide-list button[data-key]").await;

    for (i, (title, layout)) in SLIDES.iter().enumerate() {
        if i > 0 {
            teacher.click("#next").await;
        }
        let on_board = drawn(board, "#slide-frame", (title, layout)).await;
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
    let full = drawn(board, "#slide-frame", ("Full", "picture-full")).await;
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

    // A picture's description, edited, is the preview's alt text.
    editor.click("#slide-list li:nth-child(5) button").await;
    editor.type_into("#slide-alt", "Quarters of a pie").await;
    editor
        .wait_until(
            "the preview's picture described anew",
            "return document.querySelector('#slide-preview img')?.alt === 'Quarters of a pie' || null",
        )
        .await;
}

/// Sends the teacher's command `op` to the teacher's only board, through the live
/// protocol's HTTP fallback (docs/protocol.md).
async fn command(base: &str, token: &str, op: &str, args: Value) {
    let client = reqwest::Client::new();
    let boards = get(&client, &format!("{base}/api/boards"), token).await;
    let message = json!({"type": "command", "id": uuid::Uuid::now_v7(),
        "board": boards["items"][0]["id"], "op": op, "args": args});
    let ack: Value = client
        .post(format!("{base}/api/live/messages"))
        .bearer_auth(token)
        .json(&message)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ack["type"], "ack", "{op}: {ack}");
}

#[tokio::test]
async fn every_theme_passes_axe_on_the_board_with_an_accent_that_would_not() {
    if missing(&[Tool::Chromium, Tool::Axe]) {
        return;
    }
    let axe = axe_source();
    let room = presenting_every_layout("themes").await;
    let (base, board, id) = (&room.base, &room.board, &room.id);
    let client = reqwest::Client::new();
    let token = teacher_token(&client, base).await;

    // Each accent too pale or too dark for its theme as it is: the board adjusts it.
    let mut problems = Vec::new();
    for (theme, accent) in [
        ("light", "#ffee00"),
        ("dark", "#1d2a5a"),
        ("contrast", "#3366ff"),
    ] {
        let lesson = get(&client, &format!("{base}/api/lessons/{id}"), &token).await;
        let res = client
            .put(format!("{base}/api/lessons/{id}"))
            .bearer_auth(&token)
            .json(
                &json!({"title": lesson["title"], "slides": lesson["slides"],
                "theme": {"name": theme, "accent": accent}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        command(base, &token, "present", json!({"lesson": id})).await;
        for (i, (title, layout)) in SLIDES.iter().enumerate() {
            command(base, &token, "goto", json!({"slide": i})).await;
            board
                .wait_until(
                    &format!("{title:?} in the {theme} theme"),
                    &format!(
                        "const f = document.querySelector('#slide-frame');
                         return f.dataset.theme === {theme:?}
                           && f.firstElementChild?.dataset.layout === {layout:?} || null"
                    ),
                )
                .await;
            board.screenshot(&format!("themes-{theme}-{layout}")).await;
            for found in axe_violations(board, &axe).await {
                problems.push(format!("{theme} {layout}: {found}"));
            }
        }
        let shown = board
            .run(
                "return getComputedStyle(document.querySelector('#slide-frame')).getPropertyValue('--slide-accent').trim()",
                json!([]),
            )
            .await;
        let shown = shown.as_str().unwrap_or_default();
        assert!(
            shown.starts_with('#') && shown != accent,
            "{theme}: the accent {accent} shown as {shown:?}, not adjusted"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn the_editor_sets_a_lessons_theme_by_keyboard_and_previews_it() {
    if missing(&[Tool::Chromium, Tool::Axe]) {
        return;
    }
    let (_dir, server, id) = serving_every_layout().await;
    let base = server.base.clone();
    let driver = Driver::start().await;
    let editor = signed_in_as(&driver, &base, EMAIL, &format!("/lessons/{id}")).await;
    editor.wait_for_text("#slide-preview", "Plain").await;
    editor
        .run("document.querySelector('#look summary').focus()", json!([]))
        .await;
    editor.press(ENTER).await; // opens the Theme panel
    editor.press(TAB).await; // the theme
    editor.press(DOWN).await; // Dark
    editor
        .wait_until(
            "the preview and the miniatures in the dark theme",
            "return document.querySelector('#slide-preview').dataset.theme === 'dark'
               && document.querySelector('#slide-list .slide-thumb-text').dataset.theme === 'dark' || null",
        )
        .await;
    editor.press(TAB).await; // the accent's checkbox
    editor.press(SPACE).await;
    editor
        .wait_until(
            "the preview with an accent",
            "return document.querySelector('#slide-preview').style.getPropertyValue('--slide-accent') || null",
        )
        .await;
    editor.screenshot("themes-editor-dark").await;
    // The new controls pass axe-core too: the Theme panel open, a picture's description shown.
    editor.click("#slide-list li:nth-child(6) button").await;
    editor.wait_for_text("#slide-preview", "Beside").await;
    let problems = axe_violations(&editor, &axe_source()).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    editor.click("#save").await;
    editor
        .wait_for_text("#save-status", "All changes saved")
        .await;
    let client = reqwest::Client::new();
    let token = teacher_token(&client, &base).await;
    let saved = get(&client, &format!("{base}/api/lessons/{id}"), &token).await;
    assert_eq!(saved["theme"], json!({"name": "dark", "accent": "#1d5fa8"}));
}
