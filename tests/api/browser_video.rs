//! Videos on the board in real headless Chromium: played, paused and sought from the console,
//! and a board whose browser refuses sound says so to the console instead of asking the room.

use serde_json::json;

use crate::browser::{
    pair_and_present_with, serving_a_teacher, signed_in_at_lessons, Presenting, ADD_RECORDED_VIDEO,
    BOARD_VIDEO_PLAYING, BOARD_VIDEO_READY, RECORD_CLIP,
};
use crate::tools::{missing, Tool};
use crate::webdriver::Driver;

#[tokio::test]
async fn a_video_plays_on_the_board_when_the_teacher_presses_play() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &base).await;
    page.run(RECORD_CLIP, json!([])).await;
    page.run(ADD_RECORDED_VIDEO, json!([])).await;
    let kind = page
        .wait_until("the recorded video uploaded", "return window.__video")
        .await;
    assert_eq!(kind, "video/webm");

    // The board's browser refuses sound until someone touches the page, as a TV's does.
    let how = Presenting {
        board_switches: &["--autoplay-policy=document-user-activation-required"],
        ..Presenting::default()
    };
    let (board, teacher) = pair_and_present_with(&driver, &base, how, "video").await;
    for _ in 0..4 {
        teacher.click("#next").await;
    }
    board.wait_until("the video slide", BOARD_VIDEO_READY).await;
    teacher.wait_for("#video-toggle").await;
    teacher.click("#video-toggle").await;
    board
        .wait_until("the video playing", BOARD_VIDEO_PLAYING)
        .await;
    // Muted rather than frozen; the board asks for a tap, and the console says so and offers
    // to try again.
    board
        .wait_until(
            "the video muted with the request for a tap",
            "const v = document.querySelector('#slide-frame video.slide-media');
             return v.muted && !document.querySelector('#sound-hint').hidden || null",
        )
        .await;
    board.screenshot("video-01-board-playing-muted").await;
    teacher.wait_for("#video-sound:not([hidden])").await;
    teacher.screenshot("video-01-console-no-sound").await;
    // Tried again: the board asks its browser once more (which still wants a touch).
    let asked =
        "return document.querySelector('#slide-frame video.slide-media').dataset.mutedSince";
    let before = board.run(asked, json!([])).await;
    teacher.click("#video-sound-retry").await;
    board
        .wait_until(
            "the board to ask for sound again",
            &format!(
                "const v = document.querySelector('#slide-frame video.slide-media');
                 return v.dataset.mutedSince !== {before} && v.muted && !v.paused || null"
            ),
        )
        .await;
    teacher.wait_for("#video-sound:not([hidden])").await;
    // The request for a tap stays with the video, not on the slides after it.
    teacher.click("#prev").await;
    board
        .wait_until(
            "the slide before without the request for a tap",
            "return !document.querySelector('#slide-frame video') && document.querySelector('#sound-hint').hidden || null",
        )
        .await;
    teacher.click("#next").await;
    board
        .wait_until("the video slide again", BOARD_VIDEO_READY)
        .await;
    teacher.click("#video-toggle").await;
    board.wait_for("#sound-hint:not([hidden])").await;
    // Someone in the room taps the board once: sound, and the console stops saying otherwise.
    board.click("#slide-frame").await;
    board
        .wait_until(
            "the sound on",
            "const v = document.querySelector('#slide-frame video.slide-media');
             return !v.muted && !v.paused && document.querySelector('#sound-hint').hidden || null",
        )
        .await;
    teacher.wait_for("#video-sound[hidden]").await;
    board.screenshot("video-02-board-playing").await;
    teacher.click("#video-toggle").await;
    board
        .wait_until(
            "the video paused",
            "return document.querySelector('#slide-frame video.slide-media')?.paused || null",
        )
        .await;

    // A recorded WebM does not say its length; the console finds it out, and the teacher
    // drops the slider at the first second.
    teacher.wait_for("#video-seek-label:not([hidden])").await;
    let length = teacher
        .wait_until(
            "the video's length on the console",
            "const t = document.querySelector('#video-time')?.textContent || '';
             return t.includes(' / ') && document.querySelector('#video-seek').max === '2' ? t : null",
        )
        .await;
    assert!(length.as_str().unwrap().ends_with("/ 00:02"), "{length}");
    teacher
        .run(
            "const s = document.querySelector('#video-seek');
             s.value = '1';
             s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await;
    let at_one_second = "const v = document.querySelector('#slide-frame video.slide-media');
         return v && v.readyState >= 1 && v.paused && Math.abs(v.currentTime - 1) < 0.3 || null";
    board
        .wait_until("the board's video at the first second", at_one_second)
        .await;
    // A board reloaded mid-lesson resumes at that second.
    board.refresh().await;
    board
        .wait_until(
            "the reloaded board's video at the first second",
            at_one_second,
        )
        .await;
    board.screenshot("video-03-board-seeked").await;

    // Played to its end, the console says so and offers to play it again, from the start.
    teacher.click("#video-toggle").await;
    let ended = teacher
        .wait_until(
            "the console to see the video ended",
            "const b = document.querySelector('#video-toggle');
             return b.dataset.ended === 'yes' ? [b.textContent, document.querySelector('#video-time').textContent] : null",
        )
        .await;
    assert_eq!(ended[0], "Play again");
    assert_eq!(ended[1], "00:02 / 00:02", "never past its end");
    teacher.click("#video-toggle").await;
    board
        .wait_until(
            "the board's video playing from the start again",
            "const v = document.querySelector('#slide-frame video.slide-media');
             return v && !v.paused && v.currentTime < 1 || null",
        )
        .await;
}
