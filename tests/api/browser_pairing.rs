//! Pairing by QR code in real headless Chromium: the board's screen is photographed and its
//! QR code decoded as a phone's camera would, the link opened on a phone-sized page, and
//! the board paired.

use crate::browser::{serving_a_teacher, EMAIL, PASSWORD};
use crate::tools::{missing, Tool};
use crate::webdriver::Driver;

/// The text of the one QR code in a screenshot.
fn decode_qr(png: &[u8]) -> String {
    let picture = image::load_from_memory(png).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(picture);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the board");
    let (_, text) = grids[0].decode().expect("a readable QR code");
    text
}

#[tokio::test]
async fn a_phone_pairs_by_scanning_the_boards_qr_code() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;

    // A 1080p board showing its code, and the QR code of that code beside it.
    let board = driver.browser(1920, 1080).await;
    board.goto(&format!("{base}/board")).await;
    let code = board
        .wait_until(
            "the board's code and its QR code",
            "const t = (document.querySelector('#pair-code')?.innerText || '').replace(/\\D/g, '');
             const qr = document.querySelector('#pair-qr');
             return t.length === 6 && !qr.hidden && qr.complete && qr.naturalWidth > 0 ? t : null",
        )
        .await;
    let code = code.as_str().unwrap().to_owned();
    let fingerprint = board
        .wait_until(
            "the board's fingerprint",
            "return (document.querySelector('#fingerprint')?.innerText || '').match(/[A-Z0-9]{4}$/)?.[0] || null",
        )
        .await;
    let fingerprint = fingerprint.as_str().unwrap().to_owned();
    board.screenshot("qr-01-board").await;
    let link = decode_qr(&board.screenshot_png().await);
    assert_eq!(
        link,
        format!("{base}/teach#pair={code}&board={fingerprint}")
    );

    // The phone opens it, signs in, and finds the code filled in and the fingerprint named.
    let phone = driver.browser(390, 844).await;
    phone.goto(&link).await;
    phone.wait_for("#signin-email").await;
    phone.type_into("#signin-email", EMAIL).await;
    phone.type_into("#signin-password", PASSWORD).await;
    phone.click("#signin-form button[type=submit]").await;
    phone.wait_for_text("#pair-scanned", &fingerprint).await;
    let filled = phone
        .run(
            "return document.querySelector('#pair-code').value",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(filled, code.as_str());
    assert!(
        !phone.url().await.contains("pair="),
        "the code is taken off the address bar"
    );
    phone.screenshot("qr-02-phone-scanned").await;

    // Named and confirmed: the board is paired.
    phone.type_into("#pair-name", "Room 12").await;
    phone.click("#pair-submit").await;
    board.wait_for_text("#controlled-by", "Ms Jansen").await;
    phone.screenshot("qr-03-phone-paired").await;

    // Its key may have been copied: the teacher signs the board out everywhere. The board
    // claims a new identity on its own and shows a new code; the console lists no board.
    let key = "return localStorage.getItem('classcast.board')";
    let old_identity = board.run(key, serde_json::json!([])).await;
    phone.click("button[data-focus-key$=':unpair']").await;
    phone.click("dialog button[value=extra]").await;
    phone
        .wait_for_text("#live-region", "signed out everywhere")
        .await;
    let new_code = board
        .wait_until(
            "a new code on the board",
            &format!(
                "const t = (document.querySelector('#pair-code')?.innerText || '').replace(/\\D/g, '');
                 return t.length === 6 && t !== '{code}' && !document.querySelector('#pair-code').hidden ? t : null"
            ),
        )
        .await;
    assert_ne!(new_code, code.as_str());
    let new_identity = board.run(key, serde_json::json!([])).await;
    assert!(new_identity.is_string() && new_identity != old_identity);
    assert!(phone
        .find("button[data-focus-key$=':unpair']")
        .await
        .is_none());
    board.screenshot("qr-04-board-signed-out").await;
}
