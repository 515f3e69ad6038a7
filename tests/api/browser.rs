//! End to end in real headless Chromium: the board page, the teacher console, and the
//! real server binary, through pairing, presenting, a reload, a server restart, a proxy
//! that blocks WebSockets, and three nodes of a cluster of which the ones the pages use are
//! killed or restarted. Screenshots land in `test-artifacts/` (not committed).

use serde_json::{json, Value};

use crate::cluster::postgres::PgServer;
use crate::harness::Process;
use crate::proxy;
use crate::tools::{missing, Tool};
use crate::webdriver::{Browser, Driver};

pub(crate) const EMAIL: &str = "ms.jansen@school.org";
pub(crate) const PASSWORD: &str = "lesson plan 8:30";

/// Selects the option of `select` whose text contains `text`, once it is there.
pub(crate) fn choose(select: &str, text: &str) -> String {
    format!(
        "const s = document.querySelector({select:?}); if (!s) return null;
         const o = [...s.options].find(o => o.textContent.includes({text:?}));
         if (!o) return null;
         s.value = o.value; s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
    )
}

/// A teacher account with a four-slide lesson, made through the API of `server`.
pub(crate) async fn teacher_with_lesson(server: &str) {
    let client = reqwest::Client::new();
    let registered: Value = client
        .post(format!("{server}/api/auth/register"))
        .json(&json!({"email": EMAIL, "name": "Ms Jansen", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = client
        .post(format!("{server}/api/lessons"))
        .bearer_auth(registered["token"].as_str().unwrap())
        .json(&json!({"title": "Fractions", "slides": [
            {"kind": "text", "title": "Slide one", "body": "What is **a half**?"},
            {"kind": "question", "title": "Slide two", "answer": "3/4"},
            {"kind": "text", "title": "Slide three"},
            {"kind": "timer", "title": "Slide four", "seconds": 120, "body": "Work in pairs"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A server in a directory of its own, with the teacher and lesson of
/// [`teacher_with_lesson`]; answers the directory (kept while the server runs), the server
/// and its address.
pub(crate) async fn serving_a_teacher() -> (tempfile::TempDir, Process, String) {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let base = server.base.clone();
    teacher_with_lesson(&base).await;
    (dir, server, base)
}

/// `request` sent, which must answer `201 Created`: the `field` of what it made.
pub(crate) async fn created(request: reqwest::RequestBuilder, field: &str) -> String {
    let res = request.send().await.unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()[field]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The JSON `url` answers `token`, which must be a success.
pub(crate) async fn get(client: &reqwest::Client, url: &str, token: &str) -> Value {
    let res = client.get(url).bearer_auth(token).send().await.unwrap();
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.json().await.unwrap()
}

/// A bearer token of the teacher [`teacher_with_lesson`] made, signed in at `base`.
pub(crate) async fn teacher_token(client: &reqwest::Client, base: &str) -> String {
    let login: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["token"].as_str().unwrap().to_owned()
}

/// A browser signing in at `base` as `email` (with [`PASSWORD`]), going on to `next`.
pub(crate) async fn signed_in_as(driver: &Driver, base: &str, email: &str, next: &str) -> Browser {
    let page = driver.browser(1280, 900).await;
    page.goto(&format!("{base}/login?next={next}")).await;
    page.type_into("#signin-email", email).await;
    page.type_into("#signin-password", PASSWORD).await;
    page.click("#signin-form button[type=submit]").await;
    page
}

/// A browser signed in as the teacher at `base`, on their list of lessons.
pub(crate) async fn signed_in_at_lessons(driver: &Driver, base: &str) -> Browser {
    let page = signed_in_as(driver, base, EMAIL, "/lessons").await;
    page.wait_for_text("#lesson-list", "Fractions").await;
    page
}

/// Opens a board page and a teacher console at `base`, pairs them through the pages as a
/// teacher would, and starts presenting; returns once the board shows the first slide.
async fn pair_and_present(driver: &Driver, base: &str, shots: &str) -> (Browser, Browser) {
    pair_and_present_with(driver, base, Presenting::default(), shots).await
}

/// [`pair_and_present`] with the board page at `board_path` (`/board?preload=off`, say).
async fn pair_and_present_at(
    driver: &Driver,
    base: &str,
    board_path: &str,
    shots: &str,
) -> (Browser, Browser) {
    let how = Presenting {
        board_path,
        ..Presenting::default()
    };
    pair_and_present_with(driver, base, how, shots).await
}

/// How [`pair_and_present_with`] sets up the classroom.
pub(crate) struct Presenting<'a> {
    pub(crate) board_path: &'a str,
    /// Chromium switches of the board's browser only.
    pub(crate) board_switches: &'a [&'a str],
    pub(crate) board_size: (u32, u32),
    pub(crate) teacher_size: (u32, u32),
    pub(crate) lesson: &'a str,
    pub(crate) first_slide: &'a str,
}

impl Default for Presenting<'_> {
    fn default() -> Self {
        Presenting {
            board_path: "/board",
            board_switches: &[],
            board_size: (1280, 720),
            teacher_size: (1280, 900),
            lesson: "Fractions",
            first_slide: "Slide one",
        }
    }
}

pub(crate) async fn pair_and_present_with(
    driver: &Driver,
    base: &str,
    how: Presenting<'_>,
    shots: &str,
) -> (Browser, Browser) {
    let board = driver
        .browser_with(how.board_size.0, how.board_size.1, how.board_switches)
        .await;
    board.goto(&format!("{base}{}", how.board_path)).await;
    let code = board
        .wait_until(
            "the board's pairing code",
            "const t = (document.querySelector('#pair-code')?.innerText || '').replace(/\\D/g, '');
             return t.length === 6 && !document.querySelector('#screen-idle').hidden ? t : null",
        )
        .await;
    board.screenshot(&format!("{shots}-01-board-code")).await;

    let teacher = driver.browser(how.teacher_size.0, how.teacher_size.1).await;
    teacher.goto(&format!("{base}/login?next=/teach")).await;
    teacher.type_into("#signin-email", EMAIL).await;
    teacher.type_into("#signin-password", PASSWORD).await;
    teacher.click("#signin-form button[type=submit]").await;
    teacher
        .type_into("#pair-code", code.as_str().unwrap())
        .await;
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
            &choose("#start-lesson", how.lesson),
        )
        .await;
    board.wait_for_text("#controlled-by", "Ms Jansen").await;
    teacher
        .screenshot(&format!("{shots}-02-teacher-paired"))
        .await;
    teacher.click("#start-submit").await;
    // The first slide's text, or the description of a picture shown full screen (an imported
    // page, whose title is in the picture).
    let first = how.first_slide;
    let shown = format!(
        "const f = document.querySelector('#slide-frame');
         return f && (f.innerText.includes({first:?})
           || [...f.querySelectorAll('img')].some(i => i.alt.includes({first:?}))) || null"
    );
    board
        .wait_until(&format!("the board showing {first:?}"), &shown)
        .await;
    (board, teacher)
}

#[tokio::test]
async fn the_board_tells_teachers_the_public_address() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start_with(
        dir.path(),
        &["--public-url", "https://classcast.school.org"],
    );
    let driver = Driver::start().await;
    let board = driver.browser(1280, 720).await;
    board.goto(&format!("{}/board", server.base)).await;
    board
        .wait_for_text("#pair-instruction", "https://classcast.school.org/teach")
        .await;
}

#[tokio::test]
async fn a_teacher_pairs_a_board_and_presents_through_a_reload_and_a_server_restart() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &base, "e2e").await;

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

    // A timer slide shows its text under the clock, as the editor offers it.
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Work in pairs").await;
    board.wait_for_text("#slide-frame", "2:00").await;
}

#[tokio::test]
async fn behind_a_proxy_that_blocks_websockets_both_pages_fall_back_and_keep_working() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    teacher_with_lesson(&server.base).await;
    let school = proxy::start(&server.base).await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &school.base, "fallback").await;
    let transport = teacher
        .wait_until(
            "the console to name its transport",
            "const t = document.querySelector('#connection')?.dataset.transport;
             return t === 'websocket' || t === 'fallback' ? t : null",
        )
        .await;
    assert_eq!(
        transport, "fallback",
        "the console says it is not on a WebSocket"
    );
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide two").await;
    teacher.screenshot("fallback-03-teacher").await;
    board.screenshot("fallback-03-board").await;
}

#[tokio::test]
async fn the_diagnostics_page_reports_on_every_host() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let driver = Driver::start().await;
    let page = driver.browser(1280, 900).await;
    page.goto(&format!("{}/diagnostics", server.base)).await;
    let report = page
        .wait_until(
            "a finished report",
            "const r = document.querySelector('pre')?.innerText || '';
             return /websocket/i.test(r) && /clock/i.test(r) && !/running|…/i.test(r) ? r : null",
        )
        .await;
    let report = report.as_str().unwrap();
    assert!(
        report.contains(&server.base) || report.contains("127.0.0.1"),
        "{report}"
    );
    assert!(
        report.contains(concat!("classcast ", env!("CARGO_PKG_VERSION"))),
        "the server's version: {report}"
    );
    assert!(!report.contains("\"\""), "every host named: {report}");
    assert!(report.contains("needs a sign-in"), "{report}");
    page.screenshot("diagnostics").await;

    // On a board (it holds a board token), the event stream itself is opened and read.
    page.goto(&format!("{}/board", server.base)).await;
    page.wait_for("#pair-code").await;
    page.wait_until(
        "the board's identity",
        "return localStorage.getItem('classcast.board') ? true : null",
    )
    .await;
    // Opened from the board's own button, and back to the board in one tap.
    let link = page
        .run(
            "return document.querySelector('.idle-tools a[href^=\"/diagnostics\"]').getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(link, "/diagnostics?from=board");
    page.goto(&format!("{}/diagnostics?from=board", server.base))
        .await;
    page.wait_until(
        "the event stream checked",
        "const r = document.querySelector('pre')?.innerText || '';
         return /Event stream OK/.test(r) || null",
    )
    .await;
    page.click("#back-to-board a").await;
    page.wait_for("#pair-code").await;
}

/// Which of `bases` the page says (through `script`) it is live on.
async fn live_host(page: &Browser, bases: &[String], script: &str) -> usize {
    let host = page.wait_until("the page to name its host", script).await;
    bases
        .iter()
        .position(|b| host.as_str().is_some_and(|h| h.trim_end_matches('/') == b))
        .unwrap_or_else(|| panic!("{host} is not a configured host"))
}

/// Three nodes of a cluster on two replicating databases, each listing all three as API
/// hosts; their base URLs, and what keeps them running.
struct ThreeHosts {
    bases: Vec<String>,
    nodes: Vec<Option<Process>>,
    _dirs: Vec<tempfile::TempDir>,
    _databases: (PgServer, PgServer),
}

async fn three_hosts() -> ThreeHosts {
    let (a, b, url_a, url_b) = crate::cluster::replicating_pair().await;
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let (first, second) = match i % 2 {
            0 => (&url_a, &url_b),
            _ => (&url_b, &url_a),
        };
        let mut flags = vec!["--database", first, "--database", second];
        for base in &bases {
            flags.extend(["--api-host", base, "--allowed-origin", base]);
        }
        let listen = bases[i].trim_start_matches("http://");
        nodes.push(Some(Process::start_on_with(dir.path(), listen, &flags)));
    }
    ThreeHosts {
        bases,
        nodes,
        _dirs: dirs,
        _databases: (a, b),
    }
}

#[tokio::test]
async fn with_three_hosts_the_board_and_the_console_survive_the_nodes_they_use_being_killed() {
    if missing(&[Tool::Chromium, Tool::Postgres]) {
        return;
    }
    let mut hosts = three_hosts().await;
    let (bases, nodes) = (hosts.bases.clone(), &mut hosts.nodes);
    teacher_with_lesson(&bases[0]).await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &bases[0], "three-hosts").await;
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide two").await;

    // Kill the node each page is live on (one or two nodes; one always stays).
    let board_node = live_host(
        &board,
        &bases,
        "return document.body.dataset.liveHost || null",
    )
    .await;
    let teacher_node = live_host(
        &teacher,
        &bases,
        "return document.querySelector('#connection')?.dataset.host || null",
    )
    .await;
    for node in [board_node, teacher_node] {
        if let Some(mut process) = nodes[node].take() {
            process.kill();
        }
    }
    eprintln!("killed node {board_node} (board) and node {teacher_node} (console)");
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide three").await;
    board.screenshot("three-hosts-03-board-after-kill").await;
    teacher
        .screenshot("three-hosts-03-teacher-after-kill")
        .await;
}

/// Watches the board page every 5 ms from now on: each API host it is live on, with when it
/// began (`Date.now()`, the machine's clock), and whether it ever showed its offline sign or
/// stopped showing `slide` (read back with [`BOARD_WATCHED`]).
fn watch_board(slide: &str) -> String {
    format!(
        "const w = window.__watched = {{hosts: [], offline: false, blank: false}};
         setInterval(() => {{
           const host = document.body.dataset.liveHost;
           if (w.hosts.at(-1)?.host !== host) w.hosts.push({{host, at: Date.now()}});
           if (!document.querySelector('#board-status').hidden) w.offline = true;
           if (!document.querySelector('#slide-frame').innerText.includes({slide:?})) w.blank = true;
         }}, 5);
         return true;"
    )
}

const BOARD_WATCHED: &str = "return window.__watched";

#[tokio::test]
async fn a_board_moves_to_another_host_at_once_when_its_node_restarts_and_keeps_its_slide() {
    if missing(&[Tool::Chromium, Tool::Postgres]) {
        return;
    }
    let mut hosts = three_hosts().await;
    let (bases, nodes) = (hosts.bases.clone(), &mut hosts.nodes);
    teacher_with_lesson(&bases[0]).await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &bases[0], "restart").await;
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide two").await;
    let script = "return document.body.dataset.liveHost || null";
    let from = live_host(&board, &bases, script).await;
    board.run(&watch_board("Slide two"), json!([])).await;

    // systemctl restart: SIGTERM to the board's node.
    let mut stopping = nodes[from].take().unwrap();
    let sigterm = crate::harness::now_ms();
    stopping.terminate();
    let moved = board
        .wait_until(
            "the board to be live on another host",
            "const h = window.__watched.hosts; return h.length > 1 && h.at(-1).host ? h.at(-1) : null",
        )
        .await;
    let to = bases
        .iter()
        .position(|b| {
            moved["host"]
                .as_str()
                .is_some_and(|h| h.trim_end_matches('/') == b)
        })
        .unwrap_or_else(|| panic!("{moved} is not a configured host"));
    eprintln!(
        "the board moved from node {from} to node {to} {} ms after SIGTERM",
        moved["at"].as_i64().unwrap() - sigterm
    );
    assert_ne!(to, from, "the board left the node that restarts");
    assert!(stopping.exited_within(std::time::Duration::from_secs(10)));
    let watched = board.run(BOARD_WATCHED, json!([])).await;
    assert_eq!(
        (&watched["offline"], &watched["blank"]),
        (&json!(false), &json!(false)),
        "the board kept showing Slide two, with no offline sign: {watched}"
    );
    board.screenshot("restart-03-board-moved").await;

    // The lesson goes on.
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide three").await;
}

#[tokio::test]
async fn a_board_keeps_its_slide_without_an_offline_sign_while_its_only_server_restarts() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::start(dir.path());
    let base = server.base.clone();
    teacher_with_lesson(&base).await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &base, "restart-alone").await;
    board.run(&watch_board("Slide one"), json!([])).await;

    // systemctl restart of the one server: no other host to move to, so the page waits for
    // this one without counting as offline.
    server.terminate();
    assert!(server.exited_within(std::time::Duration::from_secs(10)));
    // Down for a second and a half, as a restart with a migration may be: longer than one
    // reconnect attempt, well within the request timeout the page waits for it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let address = base.trim_start_matches("http://").to_owned();
    let _server = Process::start_on(dir.path(), &address);
    let watched = board.run(BOARD_WATCHED, json!([])).await;
    assert_eq!(
        watched["blank"], false,
        "Slide one stayed on the board while its server was down: {watched}"
    );
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide two").await;
    let watched = board.run(BOARD_WATCHED, json!([])).await;
    assert_eq!(
        watched["offline"], false,
        "no offline sign during the restart: {watched}"
    );
}

#[tokio::test]
async fn with_two_of_three_hosts_dead_a_teacher_signs_in_and_saves_a_lesson() {
    if missing(&[Tool::Chromium, Tool::Postgres]) {
        return;
    }
    let mut hosts = three_hosts().await;
    for node in 0..2 {
        if let Some(mut process) = hosts.nodes[node].take() {
            process.kill();
        }
    }
    let alive = hosts.bases[2].clone();
    teacher_with_lesson(&alive).await;
    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &alive).await;
    page.click("#new-lesson").await;
    page.wait_for("#lesson-title").await;
    page.type_into("#lesson-title", "Saved past two dead hosts")
        .await;
    page.click("#save").await;
    page.wait_until(
        "the lesson to be saved",
        "return document.querySelector('#save-status')?.dataset.state === 'saved' || null",
    )
    .await;
    page.screenshot("three-hosts-editor-saved").await;
}

/// The board's video can play.
pub(crate) const BOARD_VIDEO_READY: &str =
    "const v = document.querySelector('#slide-frame video.slide-media');
     return v && v.readyState >= 2 || null";

/// The board's video plays.
pub(crate) const BOARD_VIDEO_PLAYING: &str =
    "const v = document.querySelector('#slide-frame video.slide-media');
     return v && !v.paused && v.currentTime > 0 || null";

/// The page's service worker controls it (it keeps the page for offline reloads).
const SERVICE_WORKER_IN_CONTROL: &str = "return navigator.serviceWorker.controller ? true : null";

/// The board shows a 2×2 picture ([`PICTURE`]).
const BOARD_PICTURE_SHOWN: &str =
    "const i = document.querySelector('#slide-frame img.slide-media');
     return i && i.complete && i.naturalWidth === 2 || null";

/// A real 2×2 PNG (red, green, blue, white), which a browser decodes.
const PICTURE: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xc0,
    0xf0, 0x1f, 0x08, 0x18, 0xfe, 0xff, 0x07, 0x00, 0x2f, 0xfe, 0x05, 0xfb, 0x0f, 0xf5, 0xd9, 0xed,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[tokio::test]
async fn a_teacher_adds_a_picture_in_the_editor_and_the_board_shows_it() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, _server, base) = serving_a_teacher().await;
    let picture = dir.path().join("class-photo.png");
    std::fs::write(&picture, PICTURE).unwrap();

    let driver = Driver::start().await;
    let editor = signed_in_at_lessons(&driver, &base).await;
    editor.click("#lesson-list a.lesson-link").await;
    editor.wait_for("#add-slide").await;
    editor.click("#add-slide").await;
    editor.click("#add-dialog button[value=image]").await;
    editor
        .wait_until(
            "the new picture slide",
            "return document.querySelector('#slide-kind')?.value === 'image'
                 && document.querySelectorAll('#slide-list li').length === 5 || null",
        )
        .await;
    editor.type_into("#slide-title", "Our class").await;
    editor.attach("#media-file", &picture).await;
    editor
        .wait_until(
            "the uploaded picture in the editor",
            "const i = document.querySelector('#media-preview img');
             return i && i.complete && i.naturalWidth === 2 ? true : null",
        )
        .await;
    let status = editor.find("#media-status").await.unwrap_or_default();
    editor.screenshot("media-01-editor-uploaded").await;
    editor.click("#save").await;
    editor
        .wait_until(
            "the lesson to be saved",
            "return document.querySelector('#save-status')?.dataset.state === 'saved' || null",
        )
        .await;
    assert!(
        !status.contains("0123456789abcdef"),
        "no hash shown: {status}"
    );

    let (board, teacher) = pair_and_present(&driver, &base, "media").await;
    // The editor adds a slide after the one selected (the first): it is the second, and
    // the board fetches its picture while it still shows the first.
    board
        .wait_until(
            "the picture fetched ahead",
            "return performance.getEntriesByType('resource')
                 .some(e => e.name.includes('/api/media/') && e.responseEnd > 0) || null",
        )
        .await;
    teacher.click("#next").await;
    board
        .wait_until("the board to show the picture", BOARD_PICTURE_SHOWN)
        .await;
    board.wait_for_text("#slide-frame", "Our class").await;
    board.screenshot("media-02-board-picture").await;
    // The console's list of slides shows the picture, for a quick jump.
    teacher
        .wait_until(
            "the picture in the console's slide list",
            "const i = document.querySelector('#jump-list img.slide-thumb');
             return i && i.complete && i.naturalWidth === 2 || null",
        )
        .await;
}

#[tokio::test]
async fn a_teacher_downloads_a_lesson_file_and_imports_it_as_a_new_lesson() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, _server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let page = signed_in_at_lessons(&driver, &base).await;
    page.click("#lesson-list a.lesson-link").await;
    page.wait_for("#add-slide").await;
    // The browser saves what the page hands it; keep a copy of that instead.
    page.run(
        "window.__download = null;
         const blobs = new Map();
         const made = URL.createObjectURL;
         URL.createObjectURL = (blob) => { const url = made(blob); blobs.set(url, blob); return url; };
         HTMLAnchorElement.prototype.click = function () {
           const name = this.download;
           blobs.get(this.href).arrayBuffer().then((b) => {
             let s = '';
             for (const x of new Uint8Array(b)) s += String.fromCharCode(x);
             window.__download = { name, data: btoa(s) };
           });
         };",
        json!([]),
    )
    .await;
    page.click("#share summary").await;
    page.click("#export").await;
    let download = page
        .wait_until("the lesson file", "return window.__download")
        .await;
    assert_eq!(download["name"], "Fractions.classcast.zip");
    page.wait_for_text("#export-status", "downloads").await;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(download["data"].as_str().unwrap())
        .unwrap();
    let lesson_file = dir.path().join("Fractions.classcast.zip");
    std::fs::write(&lesson_file, bytes).unwrap();
    let not_a_lesson = dir.path().join("notes.zip");
    std::fs::write(&not_a_lesson, "just some notes").unwrap();

    page.goto(&format!("{base}/lessons")).await;
    page.wait_for_text("#lesson-list", "Fractions").await;
    page.attach("#import-file", &not_a_lesson).await;
    page.wait_for_text("#page-error", "not a classcast lesson file")
        .await;
    page.screenshot("lesson-file-01-refused").await;
    page.attach("#import-file", &lesson_file).await;
    wait_for_imported(&page, "Fractions (copy)", 4).await;
    page.screenshot("lesson-file-02-imported").await;
    page.goto(&format!("{base}/lessons")).await;
    // The original and the imported copy, told apart by their titles.
    page.wait_until(
        "the lesson and its imported copy",
        "const titles = [...document.querySelectorAll('#lesson-list .lesson-link')].map((a) => a.textContent);
         return titles.includes('Fractions') && titles.includes('Fractions (copy)') || null",
    )
    .await;
}

/// Waits until the editor shows the lesson just imported: `title`, with `slides` slides.
pub(crate) async fn wait_for_imported(page: &Browser, title: &str, slides: usize) {
    let script = format!(
        "return /^\\/lessons\\/[0-9a-f-]{{36}}$/.test(location.pathname)
             && document.querySelector('#lesson-title')?.value === {title:?}
             && document.querySelectorAll('#slide-list li').length === {slides} || null"
    );
    page.wait_until(&format!("{title:?} imported, in the editor"), &script)
        .await;
}

/// Appends `count` picture slides (different 2×2 pictures) to the "Fractions" lesson;
/// returns the pictures' ids.
async fn append_pictures(base: &str, count: u8) -> Vec<String> {
    let client = reqwest::Client::new();
    let token = &teacher_token(&client, base).await;
    let mut pictures = Vec::new();
    for n in 0..count {
        // Bytes after the end of a PNG are ignored by decoders: different pictures.
        let bytes = [PICTURE, &[n]].concat();
        let media: Value = client
            .post(format!("{base}/api/media"))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pictures.push(media["id"].as_str().unwrap().to_owned());
    }
    let list: Value = client
        .get(format!("{base}/api/lessons"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["items"][0]["id"].as_str().unwrap();
    let res = client
        .get(format!("{base}/api/lessons/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let mut lesson: Value = res.json().await.unwrap();
    for picture in &pictures {
        lesson["slides"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kind": "image", "title": "Picture", "media": picture}));
    }
    let res = client
        .put(format!("{base}/api/lessons/{id}"))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(&lesson)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    pictures
}

#[tokio::test]
async fn with_the_pages_host_dead_the_board_loads_a_picture_from_another_host() {
    if missing(&[Tool::Chromium, Tool::Postgres]) {
        return;
    }
    let mut hosts = three_hosts().await;
    let bases = hosts.bases.clone();
    teacher_with_lesson(&bases[0]).await;
    append_pictures(&bases[0], 1).await;
    let driver = Driver::start().await;
    // Nothing fetched ahead: the picture is asked for only when its slide shows.
    let (board, teacher) =
        pair_and_present_at(&driver, &bases[0], "/board?preload=off", "media-hosts").await;
    // The host that served both pages dies, and another; the pages stay open.
    for node in 0..2 {
        if let Some(mut process) = hosts.nodes[node].take() {
            process.kill();
        }
    }
    for _ in 0..4 {
        teacher.click("#next").await;
    }
    let src = board
        .wait_until(
            "the picture, from the host still alive",
            "const i = document.querySelector('#slide-frame img.slide-media');
             return i && i.complete && i.naturalWidth === 2 ? i.src : null",
        )
        .await;
    assert!(
        src.as_str().unwrap().starts_with(&bases[2]),
        "{src} comes from {}",
        bases[2]
    );
    board.screenshot("media-hosts-01-board-picture").await;
}

#[tokio::test]
async fn the_board_holds_the_whole_lesson_and_the_console_says_so() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    // Three pictures at the end of the lesson, far past the two slides fetched ahead.
    let pictures = append_pictures(&base, 3).await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &base, "holds").await;
    // The rest of the lesson comes over a slow school line.
    board.throttle(150, 2_000).await;
    teacher
        .wait_until(
            "the console to say the board holds the whole lesson",
            "return document.querySelector('#board-holds')?.dataset.holds === 'cached' || null",
        )
        .await;
    teacher.screenshot("holds-03-teacher-lesson-loaded").await;
    // Every slide has a thumbnail in the console's list: the pictures (through their
    // preview), and a miniature of each of the others.
    let thumbs = teacher
        .wait_until(
            "a thumbnail of every slide",
            "const pictures = [...document.querySelectorAll('#jump-list img.slide-thumb')];
             const others = [...document.querySelectorAll('#jump-list .slide-thumb-text')];
             return pictures.length === 3 && pictures.every((i) => i.complete && i.naturalWidth === 2)
                 && others.length === 4
                 ? { src: pictures[0].getAttribute('src'), marks: others.map((o) => o.textContent) }
                 : null",
        )
        .await;
    assert!(
        thumbs["src"].as_str().unwrap().ends_with("/preview"),
        "{thumbs}"
    );
    assert_eq!(
        thumbs["marks"],
        json!(["Slide one", "Slide two?", "Slide three", "Slide four02:00"])
    );
    let fetched = board
        .run(
            "return performance.getEntriesByType('resource')
                 .filter((e) => e.name.includes('/api/media/') && e.responseEnd > 0)
                 .map((e) => e.name.split('/').pop())",
            json!([]),
        )
        .await;
    for picture in &pictures {
        assert!(
            fetched.as_array().unwrap().contains(&json!(picture)),
            "{picture} fetched while the first slide shows: {fetched}"
        );
    }

    // A timer running on slide 4 while a picture with a caption shows: the corner line that
    // counts it down stays clear of the caption.
    teacher.type_into("#jump-number", "4").await;
    teacher.click("#jump-form button[type=submit]").await;
    board.wait_for_text("#slide-frame", "02:00").await;
    teacher.click("#timer-toggle").await;
    teacher.click("#next").await;
    let clear = board
        .wait_until(
            "the caption and the corner line both shown",
            "const c = document.querySelector('#slide-frame .slide-caption');
             const m = document.querySelector('.slide-meta');
             const t = document.querySelector('#timers-elsewhere');
             if (!c || !m || !t?.textContent) return null;
             const a = c.getBoundingClientRect(), b = m.getBoundingClientRect();
             return { gap: b.top - a.bottom, overlap: a.bottom > b.top && a.right > b.left };",
        )
        .await;
    assert_eq!(clear["overlap"], json!(false), "{clear}");
    board.screenshot("holds-04-board-caption-and-timer").await;

    // The lesson ends: the board's cache keeps none of its pictures (one put there as the
    // service worker would, so the check does not hang on when the worker took over).
    let cached_media = "return caches.open('classcast-board-1')
         .then((c) => c.keys())
         .then((keys) => keys.filter((r) => r.url.includes('/api/media/')).length)";
    let held = format!(
        "return caches.open('classcast-board-1')
             .then((c) => c.put('/api/media/{}', new Response('picture')))
             .then(() => true)",
        pictures[0]
    );
    board.run(&held, json!([])).await;
    assert!(board.run(cached_media, json!([])).await.as_u64().unwrap() >= 1);
    teacher.click("#end").await;
    teacher.click("dialog button[value=confirm]").await;
    board
        .wait_until(
            "the board's cache without the lesson's media",
            &format!("{cached_media}.then((n) => n === 0 || null)"),
        )
        .await;
}

/// Made in the teacher's page, as a camera would: a second of coloured frames recorded by
/// the browser as WebM, uploaded, and added to the "Fractions" lesson as its last slide.
/// Defines `window.__recordClip()`: a second of coloured frames recorded by the browser as
/// WebM, as a camera would make one.
pub(crate) const RECORD_CLIP: &str = "
window.__recordClip = async () => {
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 48;
  const g = canvas.getContext('2d');
  const recorder = new MediaRecorder(canvas.captureStream(25), { mimeType: 'video/webm' });
  const parts = [];
  recorder.ondataavailable = (e) => parts.push(e.data);
  recorder.start(100);
  for (let i = 0; i < 40; i++) {
    g.fillStyle = `hsl(${i * 9}, 80%, 50%)`;
    g.fillRect(0, 0, 64, 48);
    await new Promise((r) => setTimeout(r, 40));
  }
  const stopped = new Promise((r) => (recorder.onstop = r));
  recorder.stop();
  await stopped;
  return new Blob(parts, { type: 'video/webm' });
};
";

/// A clip recorded in the teacher's page ([`RECORD_CLIP`]), uploaded, and added to the
/// "Fractions" lesson as its last slide.
pub(crate) const ADD_RECORDED_VIDEO: &str = "
window.__video = null;
(async () => {
  const clip = await window.__recordClip();
  const auth = { Authorization: 'Bearer ' + JSON.parse(localStorage.getItem('classcast.session')).token };
  const up = await fetch('/api/media', { method: 'POST', headers: auth, body: clip });
  const media = await up.json();
  const list = await (await fetch('/api/lessons', { headers: auth })).json();
  const id = list.items.find((l) => l.title === 'Fractions').id;
  const res = await fetch('/api/lessons/' + id, { headers: auth });
  const lesson = await res.json();
  lesson.slides.push({ kind: 'video', title: 'Clip', media: media.id });
  const saved = await fetch('/api/lessons/' + id, {
    method: 'PUT',
    headers: { ...auth, 'Content-Type': 'application/json', 'If-Match': res.headers.get('ETag') },
    body: JSON.stringify({ title: lesson.title, slides: lesson.slides }),
  });
  window.__video = saved.ok ? media.media_type : 'save failed ' + saved.status;
})().catch((e) => (window.__video = 'error ' + e));
";

/// The bytes of a clip recorded in `page` ([`RECORD_CLIP`]).
async fn recorded_clip(page: &Browser) -> Vec<u8> {
    page.run(RECORD_CLIP, json!([])).await;
    page.run(
        "window.__clip = null;
         window.__recordClip().then((b) => b.arrayBuffer()).then((buffer) => {
           let s = '';
           for (const x of new Uint8Array(buffer)) s += String.fromCharCode(x);
           window.__clip = btoa(s);
         });",
        json!([]),
    )
    .await;
    let clip = page
        .wait_until("the recorded clip", "return window.__clip")
        .await;
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(clip.as_str().unwrap())
        .unwrap()
}

/// Adds a slide of `kind` in the editor, which then has `count` slides, and selects it.
pub(crate) async fn add_slide(editor: &Browser, kind: &str, count: usize) {
    editor.click_centred("#add-slide").await;
    editor
        .click(&format!("#add-dialog button[value={kind}]"))
        .await;
    editor
        .wait_until(
            &format!("the new {kind} slide"),
            &format!(
                "return document.querySelector('#slide-kind')?.value === {kind:?}
                     && document.querySelectorAll('#slide-list li').length === {count} || null"
            ),
        )
        .await;
}

/// Chooses `file` for the selected slide (which has no file yet) and waits for the upload,
/// which must show its progress on the way, and meanwhile neither "No file yet" nor another
/// slide's picture or video in the board's preview.
async fn upload_in_editor(editor: &Browser, file: &std::path::Path, shown: &str) {
    editor
        .run(
            "window.__progress = [];
             window.__meanwhile = [];
             const bar = document.querySelector('#media-progress');
             const look = () => {
               if (bar.hidden) return;
               window.__progress.push(bar.value);
               if (!document.querySelector('#media-empty').hidden) window.__meanwhile.push('No file yet shown');
               if (document.querySelector('#slide-preview :is(img, video)')) window.__meanwhile.push('a file in the preview');
             };
             new MutationObserver(look).observe(bar, { attributes: true });
             new MutationObserver(look).observe(document.querySelector('#slide-preview'), { childList: true, subtree: true });",
            json!([]),
        )
        .await;
    editor.attach("#media-file", file).await;
    editor
        .wait_until("the uploaded file in the editor", shown)
        .await;
    let meanwhile = editor.run("return window.__meanwhile", json!([])).await;
    assert_eq!(meanwhile, json!([]), "while the file was on its way");
    let progress = editor.run("return window.__progress", json!([])).await;
    assert!(
        progress
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_f64().unwrap_or_default() > 0.0),
        "the upload showed its progress: {progress}"
    );
}

#[tokio::test]
async fn a_teacher_builds_a_whole_lesson_in_the_editor_and_presents_it_from_a_phone() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let editor = signed_in_at_lessons(&driver, &base).await;
    let picture = dir.path().join("earth.png");
    std::fs::write(&picture, PICTURE).unwrap();
    let clip = dir.path().join("orbit.webm");
    std::fs::write(&clip, recorded_clip(&editor).await).unwrap();

    // The whole lesson, made in the editor.
    editor.click("#new-lesson").await;
    editor.wait_for("#add-slide").await;
    editor.type_into("#lesson-title", "Our planet").await;
    add_slide(&editor, "text", 1).await;
    editor.type_into("#slide-title", "Welcome").await;
    editor
        .type_into("#slide-body", "The **third** planet from the Sun.")
        .await;
    add_slide(&editor, "image", 2).await;
    editor.type_into("#slide-title", "The Earth").await;
    upload_in_editor(
        &editor,
        &picture,
        "const i = document.querySelector('#media-preview img');
         return i && i.complete && i.naturalWidth === 2 || null",
    )
    .await;
    add_slide(&editor, "video", 3).await;
    editor.type_into("#slide-title", "Orbit").await;
    // On a school line the video takes a while: the board's preview follows the new slide.
    editor.throttle(20, 100).await;
    upload_in_editor(
        &editor,
        &clip,
        "const v = document.querySelector('#media-preview video');
         return v && v.readyState >= 1 || null",
    )
    .await;
    editor.throttle(0, 1_000_000).await;
    add_slide(&editor, "question", 4).await;
    editor
        .type_into("#slide-title", "How long is a year?")
        .await;
    editor.type_into("#slide-answer", "365 days").await;
    add_slide(&editor, "timer", 5).await;
    editor.type_into("#slide-title", "Discuss").await;
    editor.type_into("#slide-seconds", "60").await;
    editor
        .type_into("#slide-body", "In pairs: why are there seasons?")
        .await;
    editor.click("#save").await;
    editor
        .wait_until(
            "the lesson to be saved",
            "return document.querySelector('#save-status')?.dataset.state === 'saved' || null",
        )
        .await;
    editor.screenshot("whole-01-editor-saved").await;
    // The list of slides shows each in miniature: the picture, the video, the others' titles.
    let thumbs = editor
        .wait_until(
            "the slides in miniature",
            "const t = [...document.querySelectorAll('#slide-list .slide-thumb')];
             const ok = t.length === 5 && t[1].complete && t[1].naturalWidth > 0 && t[2].readyState >= 1;
             return ok ? t.map((e) => e.tagName + ':' + e.textContent) : null",
        )
        .await;
    assert_eq!(
        thumbs,
        json!([
            "SPAN:Welcome",
            "IMG:",
            "VIDEO:",
            "SPAN:How long is a year??",
            "SPAN:Discuss01:00"
        ])
    );
    let refused = editor
        .run(
            "return performance.getEntriesByType('resource')
               .filter((e) => e.name.includes('/api/slides/preview') && e.responseStatus >= 400)
               .map((e) => e.responseStatus)",
            json!([]),
        )
        .await;
    assert_eq!(
        refused,
        json!([]),
        "the editor's previews were all answered"
    );

    // Presented from a phone to a 1080p board.
    let how = Presenting {
        board_size: (1920, 1080),
        teacher_size: (390, 844),
        lesson: "Our planet",
        first_slide: "third",
        ..Presenting::default()
    };
    let (board, phone) = pair_and_present_with(&driver, &base, how, "whole").await;
    phone.click("#next").await;
    board
        .wait_until("the picture on the board", BOARD_PICTURE_SHOWN)
        .await;
    board.wait_for_text("#slide-frame", "The Earth").await;
    phone.click("#next").await;
    board
        .wait_until("the video on the board", BOARD_VIDEO_READY)
        .await;
    phone.click("#video-toggle").await;
    board
        .wait_until("the video playing", BOARD_VIDEO_PLAYING)
        .await;
    phone.screenshot("whole-02-phone-video").await;
    phone.click("#next").await;
    board
        .wait_for_text("#slide-frame", "How long is a year?")
        .await;
    let text = board.run("return document.body.innerText", json!([])).await;
    assert!(
        !text.as_str().unwrap().contains("365 days"),
        "not before the reveal"
    );
    phone.click("#reveal").await;
    board.wait_for_text("#slide-frame", "365 days").await;
    phone.click("#next").await;
    board.wait_for_text("#slide-frame", "In pairs").await;
    phone.click("#timer-toggle").await;
    board
        .wait_until(
            "the timer counting down on the board",
            "return /00:5\\d/.test(document.querySelector('#slide-frame').innerText) || null",
        )
        .await;
    board.screenshot("whole-03-board-timer").await;

    // The server goes; the board, reloaded, still shows the slide.
    board
        .wait_until("the service worker in control", SERVICE_WORKER_IN_CONTROL)
        .await;
    drop(server);
    board.refresh().await;
    board.wait_for_text("#slide-frame", "In pairs").await;
    board.screenshot("whole-04-board-offline").await;
}

#[tokio::test]
async fn presses_during_an_outage_take_the_board_to_the_slide_the_console_names() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (dir, server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &base, "outage").await;
    // Every slide title the board ever shows, to see that it skips what the teacher skipped.
    board
        .run(
            "window.__shown = [];
             const frame = document.querySelector('#slide-frame');
             new MutationObserver(() => window.__shown.push(frame.querySelector('.slide-heading')?.textContent))
               .observe(frame, { childList: true, subtree: true });",
            json!([]),
        )
        .await;

    let address = base.trim_start_matches("http://").to_owned();
    drop(server);
    teacher
        .wait_until(
            "the console to notice the server is gone",
            "return document.querySelector('#connection')?.dataset.transport !== 'websocket' || null",
        )
        .await;
    teacher.click("#next").await;
    teacher.click("#next").await;
    teacher
        .wait_for_text("#pending-summary", "slide 3 (2 presses)")
        .await;
    let pending = teacher
        .run(
            "return JSON.parse(sessionStorage.getItem('classcast.live.pending') || '[]')
                 .map((c) => [c.op, c.args.slide])",
            json!([]),
        )
        .await;
    assert_eq!(
        pending,
        json!([["goto", 2]]),
        "one command waits, for the target"
    );
    teacher.screenshot("outage-03-teacher-waiting").await;

    let server = Process::start_on(dir.path(), &address);
    board.wait_for_text("#slide-frame", "Slide three").await;
    teacher
        .wait_until(
            "nothing waiting any more",
            "return document.querySelector('#pending-summary').hidden || null",
        )
        .await;
    let shown = board.run("return window.__shown", json!([])).await;
    let shown = shown.as_array().unwrap();
    assert!(shown.contains(&json!("Slide three")), "{shown:?}");
    assert!(
        !shown.contains(&json!("Slide two")),
        "straight to the target: {shown:?}"
    );
    drop(server);
}

/// Whether the element `css` can be seen: inside the window, and its top part (up to 30
/// pixels down) not covered by anything else, such as a sticky bar.
pub(crate) fn on_screen(css: &str) -> String {
    format!(
        "const el = document.querySelector({css:?});
         const r = el?.getBoundingClientRect();
         if (!r || r.height === 0 || r.top < 0 || r.top + Math.min(r.height, 30) > innerHeight) return false;
         const seen = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height - 1, 30));
         return !!seen && (el.contains(seen) || seen.contains(el))"
    )
}

#[tokio::test]
async fn a_phone_holds_the_status_the_slide_the_next_one_and_the_notes_on_one_screen() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let how = Presenting {
        teacher_size: (390, 844),
        ..Presenting::default()
    };
    let (board, phone) = pair_and_present_with(&driver, &base, how, "phone").await;
    phone.wait_for_text("#bar-sync", "slide 1").await;
    for part in [
        "#connection",
        "#bar-sync",
        "#preview",
        "#next-title",
        "#notes",
        "#prev",
        "#blank",
        "#next",
    ] {
        assert_eq!(
            phone.run(&on_screen(part), json!([])).await,
            true,
            "{part} on the phone's screen without scrolling"
        );
    }
    phone.screenshot("phone-01-presenting").await;
    // Turned on its side (844×390), it still holds them all.
    phone.resize(844, 390).await;
    phone.screenshot("phone-01-landscape").await;
    for part in [
        "#connection",
        "#preview",
        "#next-title",
        "#notes",
        "#prev",
        "#next",
    ] {
        assert_eq!(
            phone.run(&on_screen(part), json!([])).await,
            true,
            "{part} on the phone's screen in landscape"
        );
    }
    phone.screenshot("phone-01-landscape").await;
    phone.resize(390, 844).await;
    // The status bar stays in view wherever the teacher scrolls to.
    phone
        .run("window.scrollTo(0, document.body.scrollHeight)", json!([]))
        .await;
    assert_eq!(phone.run(&on_screen("#connection"), json!([])).await, true);
    assert_eq!(phone.run(&on_screen("#next"), json!([])).await, true);
    phone.run("window.scrollTo(0, 0)", json!([])).await;

    // A swipe to the left on the slide: the next one.
    phone
        .run(
            "const p = document.querySelector('#preview');
             const at = (type, x) => p.dispatchEvent(new PointerEvent(type, { clientX: x, clientY: 150, bubbles: true }));
             at('pointerdown', 300); at('pointerup', 120);",
            json!([]),
        )
        .await;
    board.wait_for_text("#slide-frame", "Slide two").await;
    phone.wait_for_text("#bar-sync", "slide 2").await;

    // On a laptop: Home, End, a slide's number and Enter, and the box for a number.
    let key = |k: &str| {
        format!("document.body.dispatchEvent(new KeyboardEvent('keydown', {{ key: {k:?}, bubbles: true }}))")
    };
    phone.run(&key("End"), json!([])).await;
    board.wait_for_text("#slide-frame", "Slide four").await;
    phone.run(&key("Home"), json!([])).await;
    board.wait_for_text("#slide-frame", "Slide one").await;
    phone.run(&key("3"), json!([])).await;
    phone.run(&key("Enter"), json!([])).await;
    board.wait_for_text("#slide-frame", "Slide three").await;
    phone.type_into("#jump-number", "2").await;
    phone
        .run(
            "document.querySelector('#jump-form').requestSubmit()",
            json!([]),
        )
        .await;
    board.wait_for_text("#slide-frame", "Slide two").await;

    // The server goes: the bar in view says so.
    drop(server);
    phone
        .wait_until(
            "the phone's status bar to say the connection is gone",
            "return document.querySelector('#connection').dataset.transport !== 'websocket' || null",
        )
        .await;
    assert_eq!(phone.run(&on_screen("#connection"), json!([])).await, true);
    phone.screenshot("phone-02-offline").await;
}

/// axe-core, which `scripts/test` fetches into `target/axe` (`npm pack axe-core`).
pub(crate) fn axe_source() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/axe/axe.min.js");
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; scripts/test fetches axe-core there"))
}

/// The accessibility problems axe-core finds on the page now (WCAG 2.x A and AA, and
/// best practices, and whether each control's accessible name holds its visible text,
/// WCAG 2.5.3, a rule axe leaves off by default), one line each: the rule and where.
pub(crate) async fn axe_violations(page: &Browser, axe: &str) -> Vec<String> {
    page.run(axe, json!([])).await;
    let found = page
        .run(
            "return axe.run(document, { resultTypes: ['violations'],
                 rules: { 'label-content-name-mismatch': { enabled: true } } }).then((r) =>
               r.violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} (${v.help})`)))",
            json!([]),
        )
        .await;
    found
        .as_array()
        .unwrap_or_else(|| panic!("axe ran: {found}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn every_page_passes_axe_in_english_and_dutch() {
    if missing(&[Tool::Chromium, Tool::Axe]) {
        return;
    }
    let axe = axe_source();
    let (_dir, _server, base) = serving_a_teacher().await;
    append_pictures(&base, 3).await; // seven slides: the console's list scrolls
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &base, "axe").await;
    let editor = signed_in_at_lessons(&driver, &base).await;
    let mut problems = Vec::new();
    for language in ["en", "nl"] {
        for page in [&board, &teacher, &editor] {
            page.run(
                &format!("localStorage.setItem('classcast.lang', {language:?})"),
                json!([]),
            )
            .await;
        }
        let mut check = |name: String, found: Vec<String>| {
            problems.extend(
                found
                    .into_iter()
                    .map(|v| format!("{name} [{language}]: {v}")),
            );
        };
        // Each page once what it loads is there (the boards' list with its buttons, say).
        for (path, loaded) in [
            ("/login", "main"),
            ("/lessons", "#lesson-list a.lesson-link"),
            ("/diagnostics", "main"),
            ("/teach?setup", "#board-list button"),
        ] {
            editor.goto(&format!("{base}{path}")).await;
            editor.wait_for(loaded).await;
            check(path.to_owned(), axe_violations(&editor, &axe).await);
        }
        // My lessons' dialogs, open: filing a lesson in a folder (the second of each
        // lesson's actions) and sharing it (the third).
        for (action, field, what) in [
            (2, "#move-folder", "/lessons, moving to a folder"),
            (3, "#share-email", "/lessons, sharing"),
        ] {
            editor.goto(&format!("{base}/lessons")).await;
            editor
                .click(&format!(
                    "#lesson-list .lesson-actions button:nth-child({action})"
                ))
                .await;
            editor.wait_for(&format!("dialog[open] {field}")).await;
            check(what.into(), axe_violations(&editor, &axe).await);
        }
        editor.goto(&format!("{base}/lessons")).await;
        editor.click("#lesson-list a.lesson-link").await;
        editor.wait_for("#slide-preview strong").await;
        check("/lessons/{id}".into(), axe_violations(&editor, &axe).await);
        teacher.refresh().await;
        teacher.wait_for("#preview .slide-heading").await;
        check(
            "/teach presenting".into(),
            axe_violations(&teacher, &axe).await,
        );
        board.refresh().await;
        board.wait_for("#slide-frame .slide-heading").await;
        check(
            "/board presenting".into(),
            axe_violations(&board, &axe).await,
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // On a 1366×768 laptop, each slide of the console's list, focused from the keyboard,
    // is in view and not under the sticky control bar (WCAG 2.4.11).
    let laptop = driver.browser(1366, 768).await;
    laptop.goto(&format!("{base}/login?next=/teach")).await;
    laptop.type_into("#signin-email", EMAIL).await;
    laptop.type_into("#signin-password", PASSWORD).await;
    laptop.click("#signin-form button[type=submit]").await;
    laptop.wait_for("#jump-list button").await;
    let count = laptop
        .run(
            "return document.querySelectorAll('#jump-list button').length",
            json!([]),
        )
        .await;
    for n in 1..=count.as_u64().unwrap() {
        let css = format!("#jump-list li:nth-child({n}) button");
        laptop
            .run(
                &format!("document.querySelector({css:?}).focus()"),
                json!([]),
            )
            .await;
        assert_eq!(
            laptop.run(&on_screen(&css), json!([])).await,
            true,
            "slide {n} of the list, focused, can be seen"
        );
    }
}

#[tokio::test]
async fn a_timer_keeps_counting_while_the_teacher_shows_another_slide() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path());
    let base = server.base.clone();
    teacher_with_lesson(&base).await; // slide four: a two-minute timer
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &base, "timers").await;
    for _ in 0..3 {
        teacher.click("#next").await;
    }
    board.wait_for_text("#slide-frame", "Slide four").await;
    board.wait_for_text("#slide-frame", "Ready").await;
    teacher.click("#timer-toggle").await;
    let clock = "return document.querySelector('#slide-frame .slide-clock')?.textContent";
    board
        .wait_until(
            "the timer running",
            &format!("{clock}?.startsWith('01:5') || null"),
        )
        .await;
    teacher.click("#timer-add").await;
    board
        .wait_until(
            "a minute more",
            &format!("{clock}?.startsWith('02:5') || null"),
        )
        .await;

    // Back one slide: the timer goes on, in the corner of the board and on the console.
    teacher.click("#prev").await;
    board.wait_for_text("#slide-frame", "Slide three").await;
    board
        .wait_for_text("#timers-elsewhere", "Slide four 02:")
        .await;
    teacher
        .wait_for_text("#timers-elsewhere", "Slide four 02:")
        .await;
    board.screenshot("timers-01-board-elsewhere").await;
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide four").await;
    let phase = board
        .run(
            "return [document.querySelector('#slide-frame .slide-clock').textContent,
                     document.querySelector('#slide-frame').firstElementChild.dataset.phase]",
            json!([]),
        )
        .await;
    assert_eq!(phase[1], "running", "{phase}");
    assert!(
        phase[0].as_str().unwrap().starts_with("02:"),
        "not reset: {phase}"
    );
    board
        .wait_until(
            "no countdown elsewhere",
            "return document.querySelector('#timers-elsewhere').textContent === '' || null",
        )
        .await;

    // The teacher keeps their name off the board from now on.
    teacher.click("#back").await;
    teacher.click("#start-show-name").await;
    teacher.click("#start-submit").await;
    board.wait_for_text("#slide-frame", "Slide one").await;
    board
        .wait_until(
            "the name gone from the board",
            "return document.querySelector('#presenter').textContent === '' || null",
        )
        .await;
    let text = board.run("return document.body.innerText", json!([])).await;
    assert!(!text.as_str().unwrap().contains("Ms Jansen"), "{text}");

    // The corner line reads from the back of the room: at least 2.5 % of the screen's height.
    let share = board
        .run(
            "return parseFloat(getComputedStyle(document.querySelector('#slide-pos')).fontSize) / innerHeight",
            json!([]),
        )
        .await;
    assert!(
        share.as_f64().unwrap() >= 0.025,
        "corner text {share} of the height"
    );
}

#[tokio::test]
async fn a_board_reloaded_without_its_server_still_shows_the_slide() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let (board, teacher) = pair_and_present(&driver, &base, "offline").await;
    teacher.click("#next").await;
    board.wait_for_text("#slide-frame", "Slide two").await;
    // The board's page is cached once its service worker controls it.
    board
        .wait_until("the service worker in control", SERVICE_WORKER_IN_CONTROL)
        .await;

    drop(server); // the server (or the school's network) is gone
    board.refresh().await;
    board.wait_for_text("#slide-frame", "Slide two").await;
    board.screenshot("offline-01-board-reloaded").await;
}

/// Whether leaving the page now would make the browser ask first. (WebDriver answers such
/// questions itself on navigation, so the page's answer to the event is what is read.)
const ASKS_BEFORE_LEAVING: &str = "
const leaving = new Event('beforeunload', { cancelable: true });
window.dispatchEvent(leaving);
return leaving.defaultPrevented;";

#[tokio::test]
async fn leaving_the_editor_with_unsaved_changes_asks_first() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let editor = signed_in_at_lessons(&driver, &base).await;
    editor.click("#lesson-list a.lesson-link").await;
    editor.wait_for("#add-slide").await;
    assert_eq!(editor.run(ASKS_BEFORE_LEAVING, json!([])).await, false);
    editor.type_into("#lesson-title", "Fractions, week 3").await;
    assert_eq!(
        editor.run(ASKS_BEFORE_LEAVING, json!([])).await,
        true,
        "unsaved changes: the browser asks before leaving"
    );
    editor.click("#save").await;
    editor
        .wait_until(
            "the lesson to be saved",
            "return document.querySelector('#save-status')?.dataset.state === 'saved' || null",
        )
        .await;
    assert_eq!(editor.run(ASKS_BEFORE_LEAVING, json!([])).await, false);
    editor.click("a.back-link").await;
    editor
        .wait_for_text("#lesson-list", "Fractions, week 3")
        .await;
}

#[tokio::test]
async fn the_editor_previews_a_slide_as_the_board_shows_it_and_warns_of_small_text() {
    if missing(&[Tool::Chromium]) {
        return;
    }
    let (_dir, _server, base) = serving_a_teacher().await;
    let driver = Driver::start().await;
    let editor = signed_in_at_lessons(&driver, &base).await;
    editor.click("#lesson-list a.lesson-link").await;
    // The first slide's Markdown, rendered by the server as for the board.
    editor
        .wait_until(
            "the preview of the first slide",
            "const b = document.querySelector('#slide-preview strong');
             return b && b.textContent === 'a half' || null",
        )
        .await;
    assert!(editor.find("#preview-small:not([hidden])").await.is_none());
    let long = "Every pupil reads this sentence aloud to the class before we start. ".repeat(40);
    editor.type_into("#slide-body", &long).await;
    editor.wait_for("#preview-small:not([hidden])").await;
    editor.screenshot("editor-preview-small-text").await;

    // Slides reorder by drag and drop: the fourth dropped on the first.
    let order = editor
        .run(
            "const items = () => [...document.querySelectorAll('#slide-list li')];
             const data = new DataTransfer();
             const fire = (type, el) => el.dispatchEvent(
                 new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
             fire('dragstart', items()[3]);
             fire('dragover', items()[0]);
             fire('drop', items()[0]);
             fire('dragend', items()[3]);
             return items().map((li) => li.querySelector('.slide-title').textContent);",
            json!([]),
        )
        .await;
    assert_eq!(
        order,
        json!(["Slide four", "Slide one", "Slide two", "Slide three"])
    );
}
