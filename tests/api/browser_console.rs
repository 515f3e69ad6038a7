//! The teacher's console in real headless Chromium, by keyboard and on a phone: what the
//! review of how teachers use it found, each checked where a teacher would meet it.

use serde_json::json;

use crate::browser::{pair_and_present_with, serving_a_teacher, teacher_token, Presenting};
use crate::tools::{missing, Tool};
use crate::webdriver::{Browser, Driver};

const TAB: &str = "\u{E004}";

/// Focuses, without scrolling, the last thing before the control bar that takes the focus,
/// from the top of the page: the next Tab goes into the bar.
const BEFORE_THE_BAR: &str = "
    window.scrollTo(0, 0);
    const all = [...document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]')]
      .filter((e) => !e.disabled && e.tabIndex >= 0 && e.getClientRects().length);
    const first = all.findIndex((e) => e.closest('.control-bar'));
    all[first - 1].focus({ preventScroll: true });
    return window.scrollY";

/// Tabs through every control of the sticky bar; returns how far the page scrolled on the way.
async fn tab_through_the_bar(teacher: &Browser) -> Vec<f64> {
    let start = teacher.run(BEFORE_THE_BAR, json!([])).await;
    assert_eq!(start, json!(0));
    let mut scrolled = Vec::new();
    loop {
        teacher.press(TAB).await;
        let now = teacher
            .run(
                "return [!!document.activeElement.closest('.control-bar'), window.scrollY]",
                json!([]),
            )
            .await;
        if now[0] != json!(true) {
            break;
        }
        scrolled.push(now[1].as_f64().unwrap());
    }
    scrolled
}

#[tokio::test]
async fn tabbing_into_the_sticky_controls_leaves_the_page_where_it_is() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let how = Presenting {
        teacher_size: (1280, 800),
        ..Presenting::default()
    };
    let (_board, teacher) = pair_and_present_with(&driver, &base, how, "keys").await;
    for ((width, height), shots) in [((1280, 800), "keys-laptop"), ((390, 844), "keys-phone")] {
        teacher.resize(width, height).await;
        let scrolled = tab_through_the_bar(&teacher).await;
        assert!(scrolled.len() >= 2, "the bar's controls: {scrolled:?}");
        assert!(
            scrolled.iter().all(|y| *y == 0.0),
            "{shots}: the page scrolled by {scrolled:?} px"
        );
        teacher.screenshot(&format!("{shots}-focus-in-bar")).await;
    }
}

/// Whether `css`'s text shows whole: not cut off by an ellipsis or a clamp.
fn shows_whole(css: &str) -> String {
    format!(
        "const el = document.querySelector({css:?});
         return !!el && el.textContent.trim().length > 0
           && el.scrollWidth <= el.clientWidth + 1 && el.scrollHeight <= el.clientHeight + 1"
    )
}

/// How many lines `css`'s text takes.
fn lines_of(css: &str) -> String {
    format!(
        "const r = document.createRange();
         r.selectNodeContents(document.querySelector({css:?}));
         return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size"
    )
}

/// A copy of the teacher's lesson under `title`.
async fn lesson_titled(base: &str, title: &str) {
    let client = reqwest::Client::new();
    let token = teacher_token(&client, base).await;
    let res = client
        .post(format!("{base}/api/lessons"))
        .bearer_auth(token)
        .json(&json!({"title": title, "slides": [
            {"kind": "text", "title": "Slide one", "body": "What is **a half**?"},
            {"kind": "timer", "title": "Slide two", "seconds": 120, "body": "Work in pairs"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn on_a_phone_the_title_and_the_status_show_whole_and_the_slide_number_stays_in_view() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let title = "Fractions and decimals, group 7";
    lesson_titled(&base, title).await;
    let driver = Driver::start().await;
    let how = Presenting {
        teacher_size: (390, 844),
        lesson: title,
        ..Presenting::default()
    };
    let (_board, phone) = pair_and_present_with(&driver, &base, how, "phone-head").await;
    phone
        .wait_until(
            "the board to hold the whole lesson",
            "return document.querySelector('#board-holds').dataset.holds === 'cached' || null",
        )
        .await;
    phone.screenshot("phone-head-01-upright").await;
    for part in ["#present-title", "#board-holds"] {
        assert_eq!(
            phone.run(&shows_whole(part), json!([])).await,
            true,
            "{part} shows whole on the phone"
        );
    }
    assert_eq!(phone.run(&lines_of("#end"), json!([])).await, 1);

    // On its side, on the timer's slide, whose controls make the bar taller.
    phone.click("#next").await;
    phone.wait_for("#timer-toggle:not([hidden])").await;
    phone.resize(844, 390).await;
    phone.run("window.scrollTo(0, 0)", json!([])).await;
    phone.screenshot("phone-head-02-landscape-timer").await;
    assert_eq!(
        phone
            .run(&crate::browser::on_screen("#preview-label"), json!([]))
            .await,
        true,
        "'Slide 2 of 2' in view above the controls"
    );
    assert_eq!(phone.run(&lines_of("#end"), json!([])).await, 1);
}
