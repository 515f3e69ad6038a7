//! End to end in real headless Chromium: the board page, the teacher console, and the
//! real server binary, through pairing, presenting, a reload and a server restart.
//! Screenshots of each step land in `test-artifacts/` (not committed).

use serde_json::{json, Value};

use crate::restart::Process;
use crate::webdriver::Driver;

/// Selects the option of `select` whose text contains `text`, once it is there.
fn choose(select: &str, text: &str) -> String {
    format!(
        "const s = document.querySelector({select:?}); if (!s) return null;
         const o = [...s.options].find(o => o.textContent.includes({text:?}));
         if (!o) return null;
         s.value = o.value; s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
    )
}

#[tokio::test]
async fn a_teacher_pairs_a_board_and_presents_through_a_reload_and_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let registered: Value = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "ms.jansen@school.org", "name": "Ms Jansen", "password": "lesson plan 8:30"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["token"].as_str().unwrap();
    let res = client
        .post(format!("{base}/api/lessons"))
        .bearer_auth(token)
        .json(&json!({"title": "Fractions", "slides": [
            {"kind": "text", "title": "Slide one", "body": "What is **a half**?"},
            {"kind": "question", "title": "Slide two", "answer": "3/4"},
            {"kind": "text", "title": "Slide three"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let driver = Driver::start().await;
    let board = driver.browser(1280, 720).await;
    board.goto(&format!("{base}/board")).await;
    let code = board
        .wait_until(
            "the board's pairing code",
            "const t = (document.querySelector('#pair-code')?.innerText || '').replace(/\\D/g, '');
             return t.length === 6 && !document.querySelector('#screen-idle').hidden ? t : null",
        )
        .await;
    let code = code.as_str().unwrap().to_owned();
    board.screenshot("e2e-01-board-code").await;

    let teacher = driver.browser(1280, 900).await;
    teacher.goto(&format!("{base}/login?next=/teach")).await;
    teacher
        .type_into("#signin-email", "ms.jansen@school.org")
        .await;
    teacher
        .type_into("#signin-password", "lesson plan 8:30")
        .await;
    teacher.click("#signin-form button[type=submit]").await;
    teacher.type_into("#pair-code", &code).await;
    teacher.type_into("#pair-name", "Room 12").await;
    teacher.click("#pair-submit").await;
    teacher
        .wait_until(
            "the paired board to be offered",
            &choose("#start-board", "Room 12"),
        )
        .await;
    teacher
        .wait_until(
            "the lesson to be offered",
            &choose("#start-lesson", "Fractions"),
        )
        .await;
    board.wait_for_text("#controlled-by", "Ms Jansen").await;
    teacher.screenshot("e2e-02-teacher-paired").await;
    teacher.click("#start-submit").await;
    board.wait_for_text("#slide-frame", "Slide one").await;

    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide two").await;
    board.screenshot("e2e-03-board-slide-two").await;
    teacher.screenshot("e2e-03-teacher-slide-two").await;

    board.refresh().await;
    board.wait_for_text("#slide-frame", "Slide two").await;

    // The server dies and comes back on the same address; nobody touches either page.
    let address = base.trim_start_matches("http://").to_owned();
    drop(server);
    let server = Process::start_on(dir.path(), &address);
    assert_eq!(server.base, base);
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide three").await;
    board.screenshot("e2e-04-board-after-restart").await;
    teacher.screenshot("e2e-04-teacher-after-restart").await;
}
