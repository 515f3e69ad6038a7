//! The lesson library on "My lessons" in real headless Chromium (issue 24): a teacher
//! searches as they type, duplicates a lesson and files the copy in a folder by keyboard, and
//! imports slides saved as a PDF, and PowerPoint where the server converts it (else the page
//! says how to save a PDF).

use serde_json::{json, Value};

use crate::browser::{
    axe_source, axe_violations, choose, created, get, serving_a_teacher, signed_in_as,
    signed_in_at_lessons, teacher_token, teacher_with_lesson, wait_for_imported, EMAIL,
};
use crate::browser_import::saved;
use crate::deck::deck;
use crate::harness::Process;
use crate::office_import::{SLIDES, TITLE};
use crate::pdf::PdfSpec;
use crate::tools::{missing, Tool};
use crate::webdriver::{Browser, Driver};

const ENTER: &str = "\u{E007}";

/// Waits until the list shows exactly `titles`, in order.
pub(crate) async fn wait_for_titles(page: &Browser, titles: &[&str]) {
    let want = serde_json::to_string(titles).unwrap();
    let script = format!(
        "const shown = [...document.querySelectorAll('#lesson-list .lesson-link')].map((a) => a.textContent);
         return JSON.stringify(shown) === {want:?} || null"
    );
    page.wait_until(&format!("the list showing {want}"), &script)
        .await;
}

/// Types `text` into the search box as a person would (each key an `input` event).
async fn search(page: &Browser, text: &str) {
    page.run(
        "const s = document.querySelector('#search'); s.value = '';
         s.dispatchEvent(new Event('input', { bubbles: true }));",
        json!([]),
    )
    .await;
    if !text.is_empty() {
        page.type_into("#search", text).await;
    }
}

/// Files the lesson `title` in `folder` by keyboard on My lessons ("Move to folder", the
/// folder's name, Enter); returns once the list says where it is.
pub(crate) async fn file_in_folder(page: &Browser, title: &str, folder: &str) {
    page.click(&format!("button[aria-label='Move to folder: “{title}”']"))
        .await;
    page.wait_for("dialog[open] #move-folder").await;
    page.type_into("#move-folder", folder).await;
    page.press(ENTER).await;
    page.wait_for_text("#lesson-list", &format!("In {folder}"))
        .await;
}

#[tokio::test]
async fn a_teacher_searches_duplicates_and_files_a_lesson_in_a_folder() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let client = reqwest::Client::new();
    let token = teacher_token(&client, &base).await;
    let res = client
        .post(format!("{base}/api/lessons"))
        .bearer_auth(&token)
        .json(&json!({"title": "Volcanoes", "slides": [
            {"kind": "text", "title": "Lava", "notes": "Mention Etna"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &base).await;
    page.run(
        "document.querySelector('#sort').value = 'title';
         document.querySelector('#sort').dispatchEvent(new Event('change'));",
        json!([]),
    )
    .await;
    wait_for_titles(&page, &["Fractions", "Volcanoes"]).await;

    // Results as one types: slide text and notes, in any case, every word.
    search(&page, "A HALF").await;
    wait_for_titles(&page, &["Fractions"]).await;
    search(&page, "etna").await;
    wait_for_titles(&page, &["Volcanoes"]).await;
    search(&page, "etna fractions").await;
    wait_for_titles(&page, &[]).await;
    page.wait_for_text("#list-status", "No lessons match").await;
    page.screenshot("library-01-no-match").await;

    // Duplicate from the search's results: the copy is listed, titled apart, and focused.
    search(&page, "fractions").await;
    wait_for_titles(&page, &["Fractions"]).await;
    page.click("button[aria-label='Duplicate “Fractions”']")
        .await;
    wait_for_titles(&page, &["Fractions", "Fractions (copy)"]).await;
    page.wait_until(
        "the focus on the copy",
        "return document.activeElement?.textContent === 'Fractions (copy)' || null",
    )
    .await;

    // File the copy in a folder by keyboard: type the name, press Enter.
    file_in_folder(&page, "Fractions (copy)", "Year 7 / Maths").await;
    page.screenshot("library-02-filed").await;

    // The folder filter lists it with its count and shows only what it holds.
    search(&page, "").await;
    wait_for_titles(&page, &["Fractions", "Fractions (copy)", "Volcanoes"]).await;
    page.wait_until(
        "the folder in the filter",
        &choose("#folder-filter", "Year 7 / Maths (1 lesson)"),
    )
    .await;
    wait_for_titles(&page, &["Fractions (copy)"]).await;
    page.screenshot("library-03-folder").await;

    // What the page did is what the server holds: a whole copy, in its folder.
    let res = client
        .get(format!("{base}/api/lessons?folder=Year%207%20%2F%20Maths"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let listed: Value = res.json().await.unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (&items[0]["title"], &items[0]["slide_count"]),
        (&json!("Fractions (copy)"), &json!(4))
    );
}

#[tokio::test]
async fn a_teacher_imports_slides_saved_as_a_pdf() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, _server, base) = serving_a_teacher().await;
    let mut slides = PdfSpec::text_pages(3, |n| format!("Slide {n} about cells"));
    slides.title = Some("Cells".into());
    let pdf = dir.path().join("Cells.pdf");
    std::fs::write(&pdf, slides.build()).unwrap();
    slides.password_protected = true;
    let locked = dir.path().join("Locked.pdf");
    std::fs::write(&locked, slides.build()).unwrap();

    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &base).await;
    page.wait_for_text("#lesson-list", "Fractions").await;
    page.attach("#import-file", &locked).await;
    page.wait_for_text("#page-error", "password-protected")
        .await;
    page.attach("#import-file", &pdf).await;
    wait_for_imported(&page, "Cells", 3).await;
    page.screenshot("library-pdf-imported").await;
}

#[tokio::test]
async fn powerpoint_is_offered_where_the_server_converts_it_and_else_a_pdf_is_explained() {
    if missing(&[Tool::Chromium, Tool::Axe]) {
        return;
    }
    let axe = axe_source();
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start_with(dir.path(), &["--soffice", "/nowhere/soffice"]);
    teacher_with_lesson(&server.base).await;
    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &server.base).await;
    // Without LibreOffice: the sentence on saving a PDF, tied to the button for screen
    // readers, and no deck offered in the file picker.
    page.wait_for_text("#import-hint", "save the slides as a PDF first")
        .await;
    page.wait_until(
        "the hint describing the import button",
        "const button = document.querySelector('#import');
         return !document.querySelector('#import-hint').hidden
             && button.getAttribute('aria-describedby') === 'import-hint'
             && button.textContent === 'Import lesson file or PDF'
             && !document.querySelector('#import-file').accept.includes('.pptx')",
    )
    .await;
    page.screenshot("library-no-office-import").await;
    let problems = axe_violations(&page, &axe).await;
    assert!(problems.is_empty(), "{problems:#?}");
    drop(server);

    if missing(&[Tool::Soffice]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    teacher_with_lesson(&server.base).await;
    let page = signed_in_at_lessons(&driver, &server.base).await;
    page.wait_until(
        "PowerPoint offered",
        "return document.querySelector('#import').textContent === 'Import lesson file, PDF or PowerPoint'
             && document.querySelector('#import-file').accept.includes('.pptx')
             && document.querySelector('#import-hint').hidden",
    )
    .await;
    let problems = axe_violations(&page, &axe).await;
    assert!(problems.is_empty(), "{problems:#?}");
    let pptx = dir.path().join("Photosynthesis.pptx");
    std::fs::write(&pptx, deck(TITLE, &SLIDES, "pptx")).unwrap();
    page.attach("#import-file", &pptx).await;
    wait_for_imported(&page, "Photosynthesis", 3).await;
}

#[tokio::test]
async fn the_editor_files_a_lesson_in_a_folder_and_takes_it_out_again() {
    if missing(&[Tool::Chromium, Tool::Axe]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let client = reqwest::Client::new();
    let token = teacher_token(&client, &base).await;
    let lessons = get(&client, &format!("{base}/api/lessons"), &token).await;
    let id = lessons["items"][0]["id"].as_str().unwrap().to_owned();
    let request = client
        .post(format!("{base}/api/lessons"))
        .bearer_auth(&token)
        .json(&json!({"title": "Volcanoes", "folder": "Year 7 / Maths", "slides": []}));
    created(request, "id").await;

    // The Folder panel offers the teacher's folders; a typed one is saved with the lesson.
    let driver = Driver::start().await;
    let editor = signed_in_as(&driver, &base, EMAIL, &format!("/lessons/{id}")).await;
    let offered = "return !document.querySelector('#editor').hidden
        && [...document.querySelectorAll('#lesson-folders option')]
             .some((o) => o.value === 'Year 7 / Maths') || null";
    editor
        .wait_until("the editor offering the teacher's folder", offered)
        .await;
    editor.click_centred("#filing summary").await;
    editor.type_into("#lesson-folder", "Year 7 / Maths").await;
    let problems = axe_violations(&editor, &axe_source()).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(saved(&editor, &base).await["folder"], "Year 7 / Maths");

    // Emptied, the lesson leaves its folder; the page reloaded shows where it is.
    editor.click("#lesson-folder").await;
    let erase = format!("\u{E010}{}", "\u{E003}".repeat("Year 7 / Maths".len())); // End, Backspaces
    editor.press(&erase).await;
    assert!(saved(&editor, &base).await["folder"].is_null());
    editor.refresh().await;
    editor.click_centred("#filing summary").await;
    editor
        .wait_until(
            "the folder field empty after a reload",
            "const f = document.querySelector('#lesson-folder');
             return document.querySelector('#lesson-title').value === 'Fractions' && f.value === '' || null",
        )
        .await;
}

#[tokio::test]
async fn the_editors_history_restores_an_earlier_version() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let client = reqwest::Client::new();
    let token = teacher_token(&client, &base).await;
    let lessons = get(&client, &format!("{base}/api/lessons"), &token).await;
    let id = lessons["items"][0]["id"].as_str().unwrap().to_owned();

    let driver = Driver::start().await;
    let editor = signed_in_as(&driver, &base, EMAIL, &format!("/lessons/{id}")).await;
    editor
        .wait_until(
            "the editor showing the lesson",
            "return document.querySelector('#lesson-title').value === 'Fractions' || null",
        )
        .await;
    editor.click("#lesson-title").await;
    let erase = format!("\u{E010}{}", "\u{E003}".repeat("Fractions".len())); // End, Backspaces
    editor.press(&format!("{erase}Decimals")).await;
    assert_eq!(saved(&editor, &base).await["title"], "Decimals");

    // The History panel lists both versions, the newest marked current; restoring the older
    // one (confirmed) brings its title back into the editor and saves it as the newest.
    editor.click_centred("#history summary").await;
    editor
        .wait_until(
            "two versions, one to restore",
            "return document.querySelectorAll('#history-list li').length === 2
               && document.querySelectorAll('#history-list li button').length === 1 || null",
        )
        .await;
    editor.click("#history-list li button").await;
    editor.click("dialog button[value=confirm]").await;
    editor
        .wait_until(
            "the restored title in the editor and three versions listed",
            "return document.querySelector('#lesson-title').value === 'Fractions'
               && document.querySelectorAll('#history-list li').length === 3 || null",
        )
        .await;
    let lesson = get(&client, &format!("{base}/api/lessons/{id}"), &token).await;
    assert_eq!(lesson["title"], "Fractions");
}
