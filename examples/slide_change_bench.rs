//! Slide change on a slow school line (not a test; `bench/slides` runs it): how long after
//! the teacher presses "next" a board behind a throttled connection shows the next slide's
//! picture, with the board fetching ahead (as it does) and without (`/board?preload=off`).
//!
//! One node on SQLite on loopback; headless Chromium (chromedriver) for the board, its
//! network slowed with Chromium's network emulation; the teacher's presses come from a
//! WebSocket console. The lesson is a title slide and then pictures (noise PNGs, which
//! compress as badly as photos). The teacher stays `--dwell` seconds on each slide, as in a
//! lesson, then presses next; the time is from the press until the board's `<img>` has loaded
//! (its `load` event, stamped in the page with the same clock).
//!
//! Usage: slide_change_bench --bin target/release/classcast [--pictures 6] [--kib 1024]
//!        [--kbps 2000] [--latency 150] [--dwell 8]

#[path = "../tests/support/live_client.rs"]
mod live_client;
#[path = "support/server.rs"]
mod server;
#[path = "support/stats.rs"]
mod stats;
#[allow(dead_code)] // the tests' WebDriver client: the bench uses part of it
#[path = "../tests/api/webdriver.rs"]
mod webdriver;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use live_client::Console;
use webdriver::{Browser, Driver};

struct Args {
    bin: String,
    pictures: usize,
    kib: usize,
    kbps: u32,
    latency: u32,
    dwell: u64,
}

fn args() -> Args {
    let mut a = Args {
        bin: "target/release/classcast".into(),
        pictures: 6,
        kib: 1024,
        kbps: 2000,
        latency: 150,
        dwell: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let number = || value.parse::<u64>().expect("a number");
        match flag.as_str() {
            "--bin" => a.bin = value.clone(),
            "--pictures" => a.pictures = number() as usize,
            "--kib" => a.kib = number() as usize,
            "--kbps" => a.kbps = number() as u32,
            "--latency" => a.latency = number() as u32,
            "--dwell" => a.dwell = number(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A PNG of coloured noise of about `kib` KiB, different for each `seed`.
fn picture(kib: usize, seed: u32) -> Vec<u8> {
    let side = ((kib * 1024 / 3) as f64).sqrt() as u32;
    let image = image::RgbImage::from_fn(side, side, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed.wrapping_mul(97))
            .wrapping_mul(2_246_822_519);
        image::Rgb([(n >> 8) as u8, (n >> 16) as u8, (n >> 24) as u8])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Stamps, in the board page, when each slide picture has loaded (`window.__shown[src]`).
const STAMP_PICTURES: &str = "
window.__shown = {};
const note = (img) => {
  const mark = () => { window.__shown[img.getAttribute('src')] ??= Date.now(); };
  if (img.complete && img.naturalWidth) mark(); else img.addEventListener('load', mark, { once: true });
};
new MutationObserver((records) => {
  for (const r of records) {
    if (r.type === 'attributes' && r.target.matches('img.slide-media')) note(r.target);
    for (const n of r.addedNodes) {
      if (n.nodeType !== 1) continue;
      if (n.matches('img.slide-media')) note(n);
      n.querySelectorAll('img.slide-media').forEach(note);
    }
  }
}).observe(document.getElementById('slide-frame'), { childList: true, subtree: true, attributes: true, attributeFilter: ['src'] });
";

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(&a.bin);
    command
        .args(["serve", "--registration", "open", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("CLASSCAST_LOG", "warn")
        .stderr(std::process::Stdio::null());
    let (_server, base) = server::spawn(command).await;
    let http = reqwest::Client::new();
    let registered: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "bench@school.org", "name": "Bench", "password": "benchmark password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["token"].as_str().unwrap().to_owned();
    let mut slides = vec![json!({"kind": "text", "title": "Start"})];
    let mut sources = Vec::new();
    for n in 0..a.pictures {
        let media: Value = http
            .post(format!("{base}/api/media"))
            .bearer_auth(&token)
            .body(picture(a.kib, n as u32))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sources.push(media["url"].as_str().unwrap().to_owned());
        slides.push(
            json!({"kind": "image", "title": format!("Picture {}", n + 1), "media": media["id"]}),
        );
    }
    let lesson: Value = http
        .post(format!("{base}/api/lessons"))
        .bearer_auth(&token)
        .json(&json!({"title": "Pictures", "slides": slides}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "{} pictures of {} KiB; board behind {} kbit/s and {} ms; {} s on each slide",
        a.pictures, a.kib, a.kbps, a.latency, a.dwell
    );

    let driver = Driver::start().await;
    for (mode, query) in [
        ("fetching ahead", ""),
        ("without fetching ahead", "?preload=off"),
    ] {
        let board = driver.browser(1280, 720).await;
        let board_id = pair(&board, &base, query, &http, &token).await;
        board.throttle(a.latency, a.kbps).await;
        board.run(STAMP_PICTURES, json!([])).await;
        let mut console = Console::new(vec![base.clone()], 0, &token, &board_id);
        console.connect().await;
        console
            .command("present", json!({"lesson": lesson["id"]}))
            .await;
        let mut changes = Vec::new();
        for src in &sources {
            tokio::time::sleep(Duration::from_secs(a.dwell)).await;
            let pressed = now_ms();
            console.command("next", json!({})).await;
            let script = format!("return window.__shown[{src:?}] ?? null");
            let shown = board.wait_until("the picture on the board", &script).await;
            changes.push(shown.as_f64().unwrap() - pressed);
        }
        stats::report(&format!("slide change, {mode}"), changes);
    }
}

/// Opens the board page, pairs it with the teacher by its code, and returns its id.
async fn pair(
    board: &Browser,
    base: &str,
    query: &str,
    http: &reqwest::Client,
    token: &str,
) -> String {
    board.goto(&format!("{base}/board{query}")).await;
    let code = board
        .wait_until(
            "the board's pairing code",
            "const t = (document.querySelector('#pair-code')?.innerText || '').replace(/\\D/g, '');
             return t.length === 6 ? t : null",
        )
        .await;
    let paired = http
        .post(format!("{base}/api/boards/pair"))
        .bearer_auth(token)
        .json(&json!({"code": code, "name": "Room 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paired.status(), 201);
    let identity = board
        .run(
            "return JSON.parse(localStorage.getItem('classcast.board'))",
            json!([]),
        )
        .await;
    identity["board_id"].as_str().unwrap().to_owned()
}
