//! Sharing on "My lessons" in real headless Chromium (issue 24): the owner shares a lesson
//! with a colleague through the Share dialog and puts it in the school library; the
//! colleague finds it under "Shared with me", looks through it read-only and makes a copy.

use serde_json::json;

use crate::browser::{
    axe_source, axe_violations, created, get, serving_a_teacher, signed_in_as,
    signed_in_at_lessons, teacher_token, PASSWORD,
};
use crate::tools::{missing, Tool};
use crate::webdriver::{Browser, Driver};

const ENTER: &str = "\u{E007}";
pub(crate) const COLLEAGUE: &str = "mr.bakker@school.org";

/// Registers the colleague, Mr Bakker, through the API of `base`; returns their token.
pub(crate) async fn colleague(base: &str) -> String {
    let request = reqwest::Client::new()
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": COLLEAGUE, "name": "Mr Bakker", "password": PASSWORD}));
    created(request, "token").await
}

/// Shares the lesson `title` with the colleague in its Share dialog on My lessons, by their
/// address and Enter, as a teacher would; returns once the dialog lists them.
pub(crate) async fn share_with_colleague(owner: &Browser, title: &str) {
    owner
        .click(&format!("button[aria-label='Share “{title}”']"))
        .await;
    owner.wait_for("dialog[open] #share-email").await;
    owner.type_into("#share-email", COLLEAGUE).await;
    owner.press(ENTER).await;
    owner.wait_for_text("#share-people", "Mr Bakker").await;
}

#[tokio::test]
async fn a_colleague_finds_a_shared_lesson_under_shared_with_me_and_copies_it() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let client = reqwest::Client::new();
    let colleague_token = colleague(&base).await;

    // The owner shares "Fractions" by address and puts it in the school library.
    let driver = Driver::start().await;
    let owner = signed_in_at_lessons(&driver, &base).await;
    share_with_colleague(&owner, "Fractions").await;
    owner.click("#share-listed").await;
    owner
        .wait_for_text("#live-region", "is in the school library")
        .await;
    owner.screenshot("sharing-01-dialog").await;
    let token = teacher_token(&client, &base).await;
    let lessons = get(&client, &format!("{base}/api/lessons"), &token).await;
    let id = lessons["items"][0]["id"].as_str().unwrap();
    let shares = get(&client, &format!("{base}/api/lessons/{id}/shares"), &token).await;
    assert_eq!(shares["items"][0]["email"], COLLEAGUE);
    assert_eq!(shares["listed"], true);

    // The colleague sees it under "Shared with me" and in the library, opens it read-only
    // and makes a copy from the preview.
    let page = signed_in_as(&driver, &base, COLLEAGUE, "/lessons").await;
    page.wait_for_text("#shared-list", "Fractions").await;
    page.wait_for_text("#shared-list", "By Ms Jansen").await;
    page.wait_for_text("#library-list", "Fractions").await;
    page.click("#shared-list button[aria-label='Open “Fractions” (read-only)']")
        .await;
    page.wait_for_text("dialog[open] .preview-slides", "Slide four")
        .await;
    page.screenshot("sharing-02-preview").await;
    if !missing(&[Tool::Axe]) {
        let problems = axe_violations(&page, &axe_source()).await;
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
    page.click("dialog[open] .button-primary").await;
    page.wait_for_text("#lesson-list", "Fractions (copy)").await;
    page.screenshot("sharing-03-copied").await;

    // What the page did is what the server holds: a whole copy of the colleague's own.
    let theirs = get(&client, &format!("{base}/api/lessons"), &colleague_token).await;
    let items = theirs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (&items[0]["title"], &items[0]["slide_count"]),
        (&json!("Fractions (copy)"), &json!(4))
    );

    // The original opened in the editor (a link kept from before, say) says it is read-only
    // instead of offering edits that every save would refuse.
    page.goto(&format!("{base}/lessons/{id}")).await;
    page.wait_until(
        "the editor saying the lesson is read-only",
        "return (!document.querySelector('#editor-read-only').hidden
                 && document.querySelector('#editor').hidden) || null",
    )
    .await;
}
