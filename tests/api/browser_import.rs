//! The PDF import end to end in real headless Chromium (issue 24's headline test): a
//! 12-page PDF made here, with text and a picture, is imported on My lessons (its pages
//! counted as they are drawn), a question goes in between two pages in the editor, and the
//! lesson is presented on a paired board, every page's picture shown and its text in the
//! console's notes. And the editor's "Import slides" puts a PDF's pages into a lesson.

use serde_json::{json, Value};

use crate::browser::{
    pair_and_present_with, serving_a_teacher, signed_in_at_lessons, teacher_token,
    wait_for_imported, Presenting,
};
use crate::pdf::PdfSpec;
use crate::tools::{missing, Tool};
use crate::webdriver::Browser;
use crate::webdriver::Driver;

/// Keeps every page the progress bar in `#{box}` shows, in `sessionStorage` (so it is still
/// there once the page has moved on to the editor), as `[aria-valuenow, text]`.
pub(crate) async fn record_pages(page: &Browser, box_id: &str) {
    page.run(
        "const box = document.getElementById(arguments[0]);
         new MutationObserver(() => {
           const bar = box.querySelector('progress');
           const seen = JSON.parse(sessionStorage.getItem('pages') || '[]');
           if (!box.hidden) seen.push([bar.getAttribute('aria-valuenow'), box.querySelector('span').textContent]);
           sessionStorage.setItem('pages', JSON.stringify(seen));
         }).observe(box, { subtree: true, childList: true, characterData: true, attributes: true });",
        json!([box_id]),
    )
    .await;
}

/// The pages recorded by [`record_pages`]: each shown as "Page n of `pages`" with `n` as
/// its value, in order, and at least one.
pub(crate) async fn assert_pages_shown(page: &Browser, pages: usize) {
    let seen = page
        .run("return sessionStorage.getItem('pages')", json!([]))
        .await;
    let seen: Vec<(String, String)> = serde_json::from_str(seen.as_str().unwrap()).unwrap();
    assert!(!seen.is_empty(), "no page progress shown");
    let mut last = 0;
    for (value, text) in &seen {
        let n: usize = value.parse().unwrap();
        assert_eq!(text, &format!("Page {n} of {pages}"));
        assert!((1..=pages).contains(&n) && n >= last, "{seen:?}");
        last = n;
    }
}

/// Saves the lesson open in the editor on `page` and answers it as the server holds it.
pub(crate) async fn saved(page: &Browser, base: &str) -> Value {
    page.click("#save").await;
    page.wait_until(
        "the lesson to be saved",
        "return document.querySelector('#save-status')?.dataset.state === 'saved' || null",
    )
    .await;
    let client = reqwest::Client::new();
    let token = teacher_token(&client, base).await;
    let id = page.url().await.rsplit('/').next().unwrap().to_owned();
    client
        .get(format!("{base}/api/lessons/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The text of page `n` of the PDF, which the notes must hold.
fn page_text(n: usize) -> String {
    format!("The Rhine passes city number {n}")
}

#[tokio::test]
async fn a_twelve_page_pdf_is_imported_given_a_question_and_presented_on_a_board() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, _server, base) = serving_a_teacher().await;
    let mut spec = PdfSpec::text_pages(12, page_text);
    spec.title = Some("Rivers of Europe".into());
    spec.pictures = vec![1, 6, 12];
    let pdf = dir.path().join("Rivers.pdf");
    std::fs::write(&pdf, spec.build()).unwrap();

    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &base).await;
    record_pages(&page, "import-pages").await;
    page.attach("#import-file", &pdf).await;
    wait_for_imported(&page, "Rivers of Europe", 12).await;
    assert_pages_shown(&page, 12).await;
    page.screenshot("import-01-editor").await;

    // A question between pages 6 and 7: chosen after page 6, it goes in after it.
    page.click("#slide-list li:nth-child(6) button[data-key]")
        .await;
    page.click("#add-slide").await;
    page.click("#add-dialog button[value=question]").await;
    page.wait_until(
        "the question after page 6",
        "return document.querySelectorAll('#slide-list li').length === 13
             && document.querySelector('#slide-kind')?.value === 'question' || null",
    )
    .await;
    page.type_into("#slide-title", "Which river is longest?")
        .await;
    page.type_into("#slide-answer", "The Danube").await;

    // What is saved: the pages in order, the question seventh.
    let lesson = saved(&page, &base).await;
    let slides = lesson["slides"].as_array().unwrap().clone();
    assert_eq!(slides.len(), 13);
    assert_eq!(slides[6]["kind"], "question");

    let how = Presenting {
        board_size: (1920, 1080),
        lesson: "Rivers of Europe",
        first_slide: "Page 1",
        ..Presenting::default()
    };
    let (board, teacher) = pair_and_present_with(&driver, &base, how, "import").await;
    for (i, slide) in slides.iter().enumerate() {
        if i > 0 {
            teacher.click("#next").await;
        }
        if slide["kind"] == "question" {
            board
                .wait_for_text("#slide-frame", "Which river is longest?")
                .await;
            continue;
        }
        let n = if i < 6 { i + 1 } else { i };
        let media = slide["media"].as_str().unwrap();
        // The page's own picture, loaded whole at the board's size.
        board
            .wait_until(
                &format!("page {n}'s picture on the board"),
                &format!(
                    "const i = document.querySelector('#slide-frame img.slide-media');
                     return i && i.src.includes({media:?}) && i.complete && i.naturalWidth === 3840 || null"
                ),
            )
            .await;
        teacher
            .wait_for_text("#notes", &format!("Page {n}\n{}", page_text(n)))
            .await;
        if n == 6 {
            board.screenshot("import-02-board-page-6").await;
            teacher.screenshot("import-02-console-page-6").await;
        }
    }
}

#[tokio::test]
async fn the_editors_import_inserts_a_pdfs_pages_after_the_selected_slide() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, _server, base) = serving_a_teacher().await;
    let pdf = dir.path().join("Extra.pdf");
    let spec = PdfSpec::text_pages(3, |n| format!("Extra fraction {n}"));
    std::fs::write(&pdf, spec.build()).unwrap();

    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &base).await;
    page.click("#lesson-list a.lesson-link").await;
    page.wait_for("#import-slides").await;
    page.click("#slide-list li:nth-child(2) button[data-key]")
        .await;
    record_pages(&page, "import-slides-pages").await;
    page.attach("#import-slides-file", &pdf).await;
    let titles = page
        .wait_until(
            "the pages inserted after slide two",
            "const t = [...document.querySelectorAll('#slide-list .slide-title')].map((e) => e.textContent);
             return t.length === 7 ? t : null",
        )
        .await;
    assert_eq!(
        titles,
        json!([
            "Slide one",
            "Slide two",
            "Page 1",
            "Page 2",
            "Page 3",
            "Slide three",
            "Slide four"
        ])
    );
    page.wait_for_text("#import-slides-status", "3 slides were added")
        .await;
    assert_pages_shown(&page, 3).await;
    // Not saved yet: the teacher saves as usual.
    let lesson = saved(&page, &base).await;
    page.screenshot("import-slides-editor").await;
    let slides = lesson["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 7);
    assert_eq!(slides[3]["kind"], "image");
    assert_eq!(slides[3]["notes"], "Page 2\nExtra fraction 2");
    assert_eq!(slides[3]["alt"], "Page 2 Extra fraction 2");
    assert!(slides[3]["media"].as_str().is_some_and(|m| m.len() == 64));
}
