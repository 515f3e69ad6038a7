//! Fault tests: a lesson driven through a cluster (two PostgreSQL servers replicating both
//! ways, set up by `classcast cluster init`, and three app nodes) by real WebSocket clients
//! while faults are injected. A teacher presses continuously through a console that behaves
//! like `live.js` (one node at a time, the next when it stops answering or closes,
//! unacknowledged commands resent with their ids, `seen` on every command), and a board
//! follows on another node (in the rolling restart, following every node as the page does).
//! Every scenario ends by checking that the board shows the teacher's last acknowledged
//! command, that every acknowledged command is stored on both databases, and that both
//! databases hold identical rows, table by table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::cluster::postgres::PgServer;
use crate::cluster::{node_on, replicating_pair};
use crate::cluster_live::pair_once_replicated;
use crate::eventually::eventually;
use crate::harness::{text_slide, Process, TestApp};
use crate::live::{claim, Claimed, Ws, PATIENCE};
use crate::tools::{missing, Tool};
#[path = "../support/live_client.rs"]
mod live_client;
use live_client::{Acked, BoardPage, Console};

/// Two replicating databases and three nodes: nodes 0 and 2 prefer database A, node 1 B.
struct Cluster {
    a: PgServer,
    /// Kept running while the cluster lives.
    _b: PgServer,
    url_a: String,
    url_b: String,
    nodes: Vec<(Process, TestApp)>,
}

impl Cluster {
    async fn start() -> Cluster {
        let (a, b, url_a, url_b) = replicating_pair().await;
        let nodes = vec![
            node_on(&[&url_a, &url_b]),
            node_on(&[&url_b, &url_a]),
            node_on(&[&url_a, &url_b]),
        ];
        Cluster {
            a,
            _b: b,
            url_a,
            url_b,
            nodes,
        }
    }

    fn app(&self, node: usize) -> &TestApp {
        &self.nodes[node].1
    }

    fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(|(_, app)| app.base.clone()).collect()
    }

    /// Restarts node `node` as `systemctl restart` does: `SIGTERM`, its exit, then the same
    /// binary on the same address and data directory (a new release, in an upgrade). Never
    /// blocks the test's runtime: its clients move meanwhile.
    async fn restart(&mut self, node: usize) {
        let (process, app) = &mut self.nodes[node];
        process.terminate();
        eventually!(PATIENCE, Duration::from_millis(5), {
            match process.exited() {
                true => Ok(()),
                false => Err(format!("node {node} never exited on SIGTERM")),
            }
        });
        let (first, second) = match node {
            1 => (&self.url_b, &self.url_a),
            _ => (&self.url_a, &self.url_b),
        };
        let flags = ["--database", first, "--database", second].map(str::to_owned);
        let listen = app.base.trim_start_matches("http://").to_owned();
        let data = app.data_dir().to_owned();
        *process = tokio::task::spawn_blocking(move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            Process::start_on_with(&data, &listen, &flags)
        })
        .await
        .unwrap();
        assert_eq!(process.base, app.base, "node {node} is back on its address");
    }

    /// A teacher (registered through node 0) with a ten-slide lesson, and a board claimed
    /// on `board_node` and paired.
    async fn classroom(&self, board_node: usize) -> (crate::harness::Teacher, String, Claimed) {
        let app = self.app(0);
        let t = app.register("faults@school.org").await;
        let slides: Vec<Value> = (1..=10)
            .map(|i| text_slide(&format!("Slide {i}")))
            .collect();
        let lesson = app
            .create_lesson(&t, json!({"title": "Faults", "slides": slides}))
            .await;
        let board = claim(self.app(board_node)).await;
        pair_once_replicated(app, &t, &board.code).await;
        (t, lesson["id"].as_str().unwrap().to_owned(), board)
    }

    /// A lesson being presented: the board's page on `board_node`, and the teacher's console
    /// (starting on node 0) that presented it.
    async fn presenting(
        &self,
        board_node: usize,
    ) -> (crate::harness::Teacher, Claimed, BoardPage, Console) {
        let (t, lesson, board) = self.classroom(board_node).await;
        let page = BoardPage::open(&self.app(board_node).base, &board.token).await;
        let mut console = Console::new(self.bases(), 0, &t.token, &board.id);
        console.command("present", json!({"lesson": lesson})).await;
        (t, board, page, console)
    }

    /// Waits until both databases hold the same rows; returns how long that took.
    async fn until_identical(&self) -> Duration {
        crate::cluster::until_the_same(&self.url_a, &self.url_b).await
    }

    /// Every acknowledged command's state is stored on both databases (a command that
    /// changed nothing is acknowledged with the version of the state it found).
    async fn assert_stored(&self, acked: &[Acked]) {
        use sqlx::Connection;
        for url in [&self.url_a, &self.url_b] {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let stored: Vec<i64> = sqlx::query_scalar("SELECT version FROM board_state")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            for a in acked {
                assert!(
                    stored.contains(&a.version),
                    "{url}: the state of acknowledged command {} (version {}) is lost",
                    a.id,
                    a.version
                );
            }
        }
    }
}

/// Presses `goto` through `console` `times` times, cycling through the slides.
async fn press(console: &mut Console, times: usize) {
    for _ in 0..times {
        let slide = (console.acked.len() % 10) as u64;
        console.command("goto", json!({"slide": slide})).await;
    }
}

/// The console pressing `times` times in the background; `until_acked` waits for progress.
struct Pressing {
    task: tokio::task::JoinHandle<Console>,
    progress: Arc<std::sync::atomic::AtomicUsize>,
}

impl Pressing {
    fn start(mut console: Console, times: usize) -> Pressing {
        let progress = console.progress.clone();
        let task = tokio::spawn(async move {
            press(&mut console, times).await;
            console
        });
        Pressing { task, progress }
    }

    /// Waits until `count` commands in all were acknowledged.
    async fn until_acked(&self, count: usize) {
        let started = Instant::now();
        while self.progress.load(std::sync::atomic::Ordering::Relaxed) < count {
            assert!(started.elapsed() < PATIENCE * 3, "the teacher is stuck");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn acked(&self) -> usize {
        self.progress.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn finish(self) -> Console {
        self.task.await.unwrap()
    }
}

/// What every scenario ends with: the board shows the last acknowledged command, nothing
/// acknowledged is lost, and the databases converge.
async fn assert_outcome(cluster: &Cluster, console: &Console, page: &BoardPage) {
    page.until_shows(console.last()).await;
    page.assert_never_blank();
    let converged = cluster.until_identical().await;
    cluster.assert_stored(&console.acked).await;
    eprintln!(
        "{} commands acknowledged, none lost; databases identical {converged:?} after the last",
        console.acked.len()
    );
}

#[tokio::test]
async fn a_teacher_on_one_node_steers_a_board_on_another_through_a_node_killed_mid_lesson() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let mut cluster = Cluster::start().await;
    let (_, _, page, mut console) = cluster.presenting(1).await;

    // 1. Teacher on node 0, board on node 1: commands flow.
    let started = Instant::now();
    press(&mut console, 50).await;
    page.until_shows(console.last()).await;
    eprintln!(
        "50 presses through node 0 to a board on node 1 in {:?}",
        started.elapsed()
    );

    // 2. Node 0 is killed while the teacher keeps pressing: the console moves on and resends.
    let pressing = Pressing::start(console, 60);
    pressing.until_acked(61).await;
    cluster.nodes[0].0.kill();
    let killed_at = Instant::now();
    pressing.until_acked(pressing.acked() + 1).await;
    eprintln!(
        "node 0 killed: the next press acknowledged {:?} later",
        killed_at.elapsed()
    );
    let console = pressing.finish().await;
    assert!(console.moves >= 1, "the console left node 0");
    assert_eq!(console.acked.len(), 111);
    assert_outcome(&cluster, &console, &page).await;
}

#[tokio::test]
async fn a_rolling_restart_of_every_node_mid_lesson_loses_no_command_and_the_board_follows() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let mut cluster = Cluster::start().await;
    let (t, lesson, board) = cluster.classroom(1).await;
    // The board on node 1 and the teacher on node 0, both knowing every node, as the pages
    // do from /config.json.
    let page = BoardPage::follow(cluster.bases(), 1, &board.token).await;
    let mut console = Console::new(cluster.bases(), 0, &t.token, &board.id);
    console.command("present", json!({"lesson": lesson})).await;
    let (progress, newest) = (console.progress.clone(), console.newest.clone());
    let acked = move || progress.load(Ordering::Relaxed);
    let newest = move || newest.load(Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let pressing = tokio::spawn(async move {
        while !stopped.load(Ordering::Relaxed) {
            press(&mut console, 1).await;
        }
        console
    });
    // The board shows each acknowledged press of the teacher's, whatever node either is on.
    let until_current = |after: &str| {
        let target = newest();
        let page = page.clone();
        let after = after.to_owned();
        async move {
            eventually!(PATIENCE, Duration::from_millis(5), {
                match page.newest() >= target {
                    true => Ok(()),
                    false => Err(format!("{after}: the board never showed version {target}")),
                }
            })
        }
    };

    for node in 0..3 {
        let at = acked();
        eventually!(PATIENCE, Duration::from_millis(5), {
            match acked() >= at + 10 {
                true => Ok(()),
                false => Err(format!("the teacher is stuck before node {node} restarts")),
            }
        });
        let (moves, at) = (page.moves().len(), acked());
        let sigterm = Instant::now();
        cluster.restart(node).await;
        let restarted = sigterm.elapsed();
        until_current(&format!("node {node} restarted")).await;
        // The lesson goes on through the node that came back as much as through the others.
        eventually!(PATIENCE, Duration::from_millis(5), {
            match acked() >= at + 10 {
                true => Ok(()),
                false => Err(format!("the teacher is stuck after node {node} restarted")),
            }
        });
        until_current(&format!("presses after node {node} restarted")).await;
        let moved: Vec<String> = page.moves()[moves..]
            .iter()
            .map(|m| {
                format!(
                    "board told to move {:?} after SIGTERM, back on node {} -> {} {:?} after it",
                    m.left - sigterm,
                    m.from,
                    m.to,
                    m.back - sigterm
                )
            })
            .collect();
        eprintln!(
            "node {node}: SIGTERM to back on its address {restarted:?}, {} presses meanwhile; {moved:?}",
            acked() - at
        );
    }
    stop.store(true, Ordering::Relaxed);
    let console = pressing.await.unwrap();

    // Each node that closed under a client told it why (1012), and the clients moved on at
    // once instead of waiting for a silence: the board from node 1 to 2 to 0, the teacher
    // from node 0 to 1 to 2 to 0.
    let moves = page.moves();
    let path: Vec<(usize, usize)> = moves.iter().map(|m| (m.from, m.to)).collect();
    assert_eq!(path, [(1, 2), (2, 0)], "{moves:?}");
    assert!(moves.iter().all(|m| m.code == Some(1012)), "{moves:?}");
    assert_eq!(
        console.closes,
        [Some(1012); 3],
        "the teacher's connections ended with"
    );
    assert_outcome(&cluster, &console, &page).await;
}

/// How long to wait for the lesson to go on before starting the stopped database again (an
/// acknowledged state that had not reached the other database yet holds commands back until
/// it does: they are never applied to an older state).
const LESSON_GOES_ON_WITHIN: Duration = Duration::from_secs(8);

#[tokio::test]
async fn a_lesson_goes_on_while_a_database_stops_fast_then_immediately_and_it_catches_up() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let cluster = Cluster::start().await;
    let (_, _, page, mut console) = cluster.presenting(1).await;
    press(&mut console, 10).await;
    let stops: [(&str, crate::cluster::Stop); 2] = [
        ("fast", PgServer::stop_fast),
        ("immediate", PgServer::crash),
    ];
    for (mode, stop) in stops {
        let pressing = Pressing::start(console, 40);
        pressing.until_acked(pressing.acked() + 5).await;
        stop(&cluster.a);
        let stopped = Instant::now();
        let at = pressing.acked();
        while pressing.acked() <= at && stopped.elapsed() < LESSON_GOES_ON_WITHIN {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match pressing.acked() > at {
            true => eprintln!(
                "{mode} stop of A: presses acknowledged again {:?} later",
                stopped.elapsed()
            ),
            false => eprintln!("{mode} stop of A: presses held back until A returned"),
        }
        cluster.a.start_again();
        pressing.until_acked(at + 10).await;
        console = pressing.finish().await;
        assert_outcome(&cluster, &console, &page).await;
    }
}

#[tokio::test]
async fn boards_on_every_node_follow_while_a_database_is_stopped() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let cluster = Cluster::start().await;
    // The teacher on node 0 (database A first); the board open on all three nodes.
    let (_, board, on_1, mut console) = cluster.presenting(1).await;
    let on_0 = BoardPage::open(&cluster.app(0).base, &board.token).await;
    let on_2 = BoardPage::open(&cluster.app(2).base, &board.token).await;
    press(&mut console, 5).await;
    cluster.a.crash();
    // Once the lesson goes on, the teacher presses every 60 ms, as a brisk teacher does.
    press(&mut console, 1).await;
    let window = Instant::now();
    let first = console.acked.len();
    for _ in 0..40 {
        press(&mut console, 1).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let acked: Vec<i64> = console.acked[first..].iter().map(|a| a.version).collect();
    for (node, page) in [(0, &on_0), (1, &on_1), (2, &on_2)] {
        page.until_shows(console.last()).await;
        let (seen, gap) = page.followed(window, &acked);
        eprintln!(
            "database A stopped: the board on node {node} was sent {seen} of {} states, longest gap {gap:?}",
            acked.len()
        );
        // Boards may skip a state when two arrive together, never most of them.
        assert!(
            seen * 2 >= acked.len(),
            "node {node} saw {seen} of {}",
            acked.len()
        );
    }
    cluster.a.start_again();
    assert_outcome(&cluster, &console, &on_1).await;
}

#[tokio::test]
async fn boards_follow_and_a_teacher_who_moves_sides_goes_on_while_replication_is_cut() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let mut cluster = Cluster::start().await;
    // The teacher on node 0 (database A), the board on node 1 (database B).
    let (_, _, page, mut console) = cluster.presenting(1).await;
    press(&mut console, 5).await;
    page.until_shows(console.last()).await;
    for url in [&cluster.url_a, &cluster.url_b] {
        crate::cluster::replication_into(url, false).await;
    }
    // Nothing crosses between the databases now; the teacher presses every 60 ms.
    let window = Instant::now();
    let first = console.acked.len();
    for _ in 0..40 {
        press(&mut console, 1).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    page.until_shows(console.last()).await;
    let acked: Vec<i64> = console.acked[first..].iter().map(|a| a.version).collect();
    let (seen, gap) = page.followed(window, &acked);
    eprintln!(
        "replication cut: the board on the other side was sent {seen} of {} states, longest gap {gap:?}",
        acked.len()
    );
    assert!(seen * 2 >= acked.len(), "saw {seen} of {}", acked.len());

    // The teacher's node dies; the console moves to node 1, on the other database, which
    // has none of the states made through A: the teacher goes on from the newest.
    cluster.nodes[0].0.kill();
    let killed = Instant::now();
    press(&mut console, 1).await;
    eprintln!(
        "replication cut: after moving sides, the next press acknowledged {:?} after the kill",
        killed.elapsed()
    );
    press(&mut console, 9).await;
    assert!(console.moves >= 1, "the console left node 0");
    page.until_shows(console.last()).await;

    for url in [&cluster.url_a, &cluster.url_b] {
        crate::cluster::replication_into(url, true).await;
    }
    assert_outcome(&cluster, &console, &page).await;
}

/// The acknowledged command with the highest version among these consoles': the state every
/// node and board ends on.
fn newest_of(consoles: &[&Console]) -> Acked {
    consoles
        .iter()
        .flat_map(|c| c.acked.iter().copied())
        .max_by_key(|a| a.version)
        .expect("a command was acknowledged")
}

#[tokio::test]
async fn one_board_steered_through_both_databases_while_replication_is_cut_converges() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let cluster = Cluster::start().await;
    let (t, board, page, laptop) = cluster.presenting(2).await;
    crate::cluster::until_replicated(
        &[&cluster.url_a, &cluster.url_b],
        "SELECT COUNT(*) FROM board_state",
        1,
    )
    .await;
    // A phone on node 1 (database B), the laptop on node 0 (database A); nothing crosses.
    let phone = Console::new(cluster.bases(), 1, &t.token, &board.id);
    for url in [&cluster.url_a, &cluster.url_b] {
        crate::cluster::replication_into(url, false).await;
    }
    let (laptop, phone) = (Pressing::start(laptop, 20), Pressing::start(phone, 20));
    let (laptop, phone) = (laptop.finish().await, phone.finish().await);
    for url in [&cluster.url_a, &cluster.url_b] {
        crate::cluster::replication_into(url, true).await;
    }
    // Every node and the board end on the newest acknowledged state, whichever side made it.
    let newest = newest_of(&[&laptop, &phone]);
    page.until_shows(newest).await;
    page.assert_never_blank();
    let both: Vec<Acked> = [&laptop, &phone]
        .iter()
        .flat_map(|c| c.acked.clone())
        .collect();
    let converged = cluster.until_identical().await;
    cluster.assert_stored(&both).await;
    eprintln!("replication healed: databases identical {converged:?} later");
    let (ok, said, errors) =
        crate::cluster::cluster(&[&cluster.url_a, &cluster.url_b], &["status"]);
    assert!(ok, "a replication worker was left stopped: {said}{errors}");

    // 4. And with replication running: both devices at once, through both databases.
    let (laptop, phone) = (Pressing::start(laptop, 20), Pressing::start(phone, 20));
    let (laptop, phone) = (laptop.finish().await, phone.finish().await);
    let newest = newest_of(&[&laptop, &phone]);
    page.until_shows(newest).await;
    cluster.until_identical().await;
    let both: Vec<Acked> = [&laptop, &phone]
        .iter()
        .flat_map(|c| c.acked.clone())
        .collect();
    cluster.assert_stored(&both).await;
}

#[tokio::test]
async fn a_node_whose_bus_connection_dropped_catches_up_within_seconds() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    use sqlx::Connection;
    let cluster = Cluster::start().await;
    let (_, _, page, mut console) = cluster.presenting(1).await;
    press(&mut console, 5).await;
    page.until_shows(console.last()).await;
    for url in [&cluster.url_a, &cluster.url_b] {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(!ended.is_empty(), "{url}: nodes listen");
    }
    let dropped = Instant::now();
    press(&mut console, 5).await;
    page.until_shows(console.last()).await;
    eprintln!(
        "listeners dropped: the board showed the last press {:?} later",
        dropped.elapsed()
    );
    assert_outcome(&cluster, &console, &page).await;
}

/// Where Debian's libfaketime is (`scripts/test` installs it).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[tokio::test]
async fn a_node_whose_clock_is_seconds_behind_never_applies_a_command_out_of_order() {
    if missing(&[Tool::Postgres, Tool::Faketime]) {
        return;
    }
    let cluster = Cluster::start().await;
    let (t, lesson, board) = cluster.classroom(1).await;
    let page = BoardPage::open(&cluster.app(1).base, &board.token).await;
    // A fourth node, on database B, whose wall clock is 5 s behind the others'.
    let data = tempfile::tempdir().unwrap();
    let late = Process::start_with_env(
        data.path(),
        &["--database", &cluster.url_b, "--database", &cluster.url_a],
        &[
            ("LD_PRELOAD", FAKETIME),
            ("FAKETIME", "-5s"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let late = TestApp::of_process(&late, data);
    let mut ws = Ws::open_at(&late.base, None).await.unwrap();
    ws.send(json!({"type": "hello", "protocol": 1, "role": "teacher", "token": t.token}))
        .await;
    let welcome = ws.next().await;
    let behind = crate::harness::now_ms() - welcome["server_time"].as_i64().unwrap();
    assert!(
        (4_000..6_000).contains(&behind),
        "the node is {behind} ms behind"
    );
    let mut console = Console::new(vec![cluster.app(0).base.clone()], 0, &t.token, &board.id);
    console.command("present", json!({"lesson": lesson})).await;
    // The teacher's presses alternate between node 0 and the late node.
    for press in 0..20 {
        console.bases = vec![if press % 2 == 0 {
            cluster.app(0).base.clone()
        } else {
            late.base.clone()
        }];
        console.ws = None;
        // Never the slide it is on: each press changes the board.
        let slide = (press % 9 + 1) as u64;
        console.command("goto", json!({"slide": slide})).await;
    }
    let versions: Vec<i64> = console.acked.iter().map(|a| a.version).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions move forward: {versions:?}"
    );
    assert_outcome(&cluster, &console, &page).await;
}

#[tokio::test]
async fn a_database_lost_for_good_is_rebuilt_from_the_other_while_the_lesson_goes_on() {
    if missing(&[Tool::Postgres]) {
        return;
    }
    let cluster = Cluster::start().await;
    let (_, _, page, mut console) = cluster.presenting(2).await;
    press(&mut console, 10).await;
    page.until_shows(console.last()).await;

    // B dies for good; the nodes go on with A alone.
    cluster._b.crash();
    press(&mut console, 10).await;
    page.until_shows(console.last()).await;

    // docs/deploy-cluster.md, "Rebuild a database", while the teacher keeps pressing.
    let pressing = Pressing::start(console, 30);
    crate::cluster::forget_lost_databases(&cluster.url_a).await;
    let c = PgServer::start();
    let url_c = c.create("classcast_rebuilt").await;
    let (ok, said, errors) = crate::cluster::cluster(&[&cluster.url_a, &url_c], &["init"]);
    assert!(ok && said.contains("copied what"), "{said}{errors}");
    let console = pressing.finish().await;
    page.until_shows(console.last()).await;
    let rebuilt = Cluster {
        url_b: url_c,
        _b: c,
        ..cluster
    };
    let converged = rebuilt.until_identical().await;
    rebuilt.assert_stored(&console.acked).await;
    eprintln!(
        "rebuilt database identical to the survivor {converged:?} after the last press \
         ({} presses, none lost)",
        console.acked.len()
    );
}
