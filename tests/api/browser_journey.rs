//! Issue 24's "Done when" as one journey in real headless Chromium, through the pages only:
//! a teacher imports last year's PowerPoint (its PDF where LibreOffice is missing), adds a
//! question between two pages, picks a theme, files the lesson in a folder, shares it with a
//! colleague, and presents it from a phone to a 1080p board. The API only sets up the
//! accounts and checks what the pages did.

use serde_json::{json, Value};

use crate::browser::{
    add_slide, axe_source, axe_violations, choose, get, pair_and_present_with, serving_a_teacher,
    signed_in_as, signed_in_at_lessons, teacher_token, wait_for_imported, Presenting,
};
use crate::browser_import::{assert_pages_shown, record_pages, saved};
use crate::browser_library::wait_for_titles;
use crate::browser_sharing::{colleague, share_with_colleague, COLLEAGUE};
use crate::deck::deck;
use crate::office_import::{SLIDES, TITLE};
use crate::pdf::PdfSpec;
use crate::tools::{missing, Tool};
use crate::webdriver::{Browser, Driver};

const QUESTION: &str = "Which gas do plants take in?";
const ANSWER: &str = "Carbon dioxide";
const FOLDER: &str = "Year 8 / Biology";
const ACCENT: &str = "#2e8b57";

/// Last year's slides as a file on the teacher's computer: the `.pptx` where LibreOffice is
/// here to make it (and the server to convert it), else the PDF PowerPoint would save.
fn last_years_slides(dir: &std::path::Path) -> std::path::PathBuf {
    if missing(&[Tool::Soffice]) {
        eprintln!("no soffice here: the journey imports the deck saved as a PDF instead");
        let mut pdf = PdfSpec::text_pages(0, |_| String::new());
        pdf.title = Some(TITLE.into());
        pdf.pages = SLIDES
            .iter()
            .map(|(text, notes)| vec![text.to_string(), notes.to_string()])
            .collect();
        let path = dir.join(format!("{TITLE}.pdf"));
        std::fs::write(&path, pdf.build()).unwrap();
        return path;
    }
    let path = dir.join(format!("{TITLE}.pptx"));
    std::fs::write(&path, deck(TITLE, &SLIDES, "pptx")).unwrap();
    path
}

/// Waits until the board shows the page titled `title`, drawn 3840 pixels wide (4K), in the dark
/// theme, full screen (an imported page holds its title: no caption repeats it), described by
/// its text.
async fn board_shows_page(board: &Browser, title: &str) {
    let script = format!(
        "const f = document.querySelector('#slide-frame');
         const i = f.querySelector('img.slide-media');
         return f.dataset.theme === 'dark' && !f.querySelector('.slide-caption')
           && i && i.alt.includes({title:?}) && i.complete && i.naturalWidth === 3840 || null"
    );
    board
        .wait_until(&format!("the page {title:?} on the board"), &script)
        .await;
}

#[tokio::test]
async fn a_teacher_imports_last_years_slides_adds_a_question_files_shares_and_presents_them() {
    if missing(&[Tool::Chromium, Tool::Axe]) {
        return;
    }
    let axe = axe_source();
    let (dir, _server, base) = serving_a_teacher().await;
    let colleague_token = colleague(&base).await;
    let slides = last_years_slides(dir.path());
    let driver = Driver::start().await;

    // 1. On My lessons: the file chosen, its progress shown, the lesson opened in the editor.
    let page = signed_in_at_lessons(&driver, &base).await;
    record_pages(&page, "import-pages").await;
    page.attach("#import-file", &slides).await;
    wait_for_imported(&page, TITLE, 3).await;
    assert_pages_shown(&page, 3).await;
    page.screenshot("journey-01-imported").await;

    // 2. In the editor: a question after the first page, the dark theme with an accent, a
    // folder, saved.
    page.click("#slide-list li:nth-child(1) button").await;
    add_slide(&page, "question", 4).await;
    page.type_into("#slide-title", QUESTION).await;
    page.type_into("#slide-answer", ANSWER).await;
    page.click_centred("#look summary").await;
    page.wait_until("the dark theme chosen", &choose("#lesson-theme", "Dark"))
        .await;
    page.click_centred("#lesson-accent-on").await;
    page.wait_until(
        "the accent's checkbox ticked",
        "return document.querySelector('#lesson-accent-on').checked || null",
    )
    .await;
    page.run(
        "const a = document.querySelector('#lesson-accent'); a.value = arguments[0];
         a.dispatchEvent(new Event('change', { bubbles: true }));",
        json!([ACCENT]),
    )
    .await;
    page.wait_until(
        "the preview in the dark theme",
        "return document.querySelector('#slide-preview').dataset.theme === 'dark' || null",
    )
    .await;
    page.click_centred("#filing summary").await;
    page.type_into("#lesson-folder", FOLDER).await;
    let lesson = saved(&page, &base).await;
    assert_eq!(lesson["theme"], json!({"name": "dark", "accent": ACCENT}));
    assert_eq!(lesson["folder"], FOLDER);
    let kinds: Vec<&Value> = lesson["slides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["kind"])
        .collect();
    assert_eq!(kinds, ["image", "question", "image", "image"]);
    page.screenshot("journey-02-editor").await;

    // 3. On My lessons: in its folder, found under its filter, shared by address.
    page.goto(&format!("{base}/lessons")).await;
    page.wait_for_text("#lesson-list", &format!("In {FOLDER}"))
        .await;
    page.wait_until(
        "the folder in the filter",
        &choose("#folder-filter", &format!("{FOLDER} (1 lesson)")),
    )
    .await;
    wait_for_titles(&page, &[TITLE]).await;
    share_with_colleague(&page, TITLE).await;
    page.screenshot("journey-03-shared").await;

    // What the pages did is what the server holds.
    let client = reqwest::Client::new();
    let token = teacher_token(&client, &base).await;
    let filed = get(
        &client,
        &format!("{base}/api/lessons?folder={FOLDER}"),
        &token,
    )
    .await;
    let id = filed["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(filed["items"][0]["title"], TITLE);

    // 4. The colleague: under "Shared with me", read-only, with the question.
    let theirs = signed_in_as(&driver, &base, COLLEAGUE, "/lessons").await;
    theirs.wait_for_text("#shared-list", TITLE).await;
    theirs
        .click(&format!(
            "#shared-list button[aria-label='Open “{TITLE}” (read-only)']"
        ))
        .await;
    theirs
        .wait_for_text("dialog[open] .preview-slides", QUESTION)
        .await;
    theirs.screenshot("journey-04-colleague").await;
    let read = get(
        &client,
        &format!("{base}/api/lessons/{id}"),
        &colleague_token,
    )
    .await;
    assert_eq!(read["access"], "read");
    assert_eq!(
        (&read["slides"][1]["title"], &read["slides"][1]["answer"]),
        (&json!(QUESTION), &json!(ANSWER))
    );

    // 5. Presented from a phone to a 1080p board.
    let how = Presenting {
        board_size: (1920, 1080),
        teacher_size: (390, 844),
        lesson: TITLE,
        first_slide: SLIDES[0].0,
        ..Presenting::default()
    };
    let (board, phone) = pair_and_present_with(&driver, &base, how, "journey").await;
    // The window is 1920 × 1080 with the browser's frame: the page gets the whole 1080p.
    board.resize(1920, 1080).await;
    board_shows_page(&board, SLIDES[0].0).await;
    phone.wait_for_text("#notes", SLIDES[0].1).await;
    phone.click("#next").await;
    board.wait_for_text("#slide-frame", QUESTION).await;
    let shown = board.run("return document.body.innerText", json!([])).await;
    assert!(
        !shown.as_str().unwrap().contains(ANSWER),
        "not before the reveal"
    );
    phone.click("#reveal").await;
    board.wait_for_text("#slide-frame", ANSWER).await;
    board.screenshot("journey-05-board-answer").await;
    phone.click("#next").await;
    board_shows_page(&board, SLIDES[1].0).await;
    phone.wait_for_text("#notes", SLIDES[1].1).await;
    board.screenshot("journey-06-board-page-2").await;
    phone.screenshot("journey-07-phone").await;

    // 6. Both screens pass axe-core as they are now.
    for (screen, at) in [("board", &board), ("phone", &phone)] {
        let problems = axe_violations(at, &axe).await;
        assert!(problems.is_empty(), "{screen}: {}", problems.join("\n"));
    }
}
