//! The teacher's console in real headless Chromium, by keyboard and on a phone: what the
//! review of how teachers use it found, each checked where a teacher would meet it.

use serde_json::json;

use crate::browser::{pair_and_present_with, teacher_with_lesson, Presenting};
use crate::harness::Process;
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
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let base = server.base.clone();
    teacher_with_lesson(&base).await;
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
