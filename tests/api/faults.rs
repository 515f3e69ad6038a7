//! Fault tests: a lesson driven through a cluster (two PostgreSQL servers replicating both
//! ways, set up by `classcast cluster init`, and three app nodes) by real WebSocket clients
//! while faults are injected. A teacher presses continuously through a console that behaves
//! like `live.js` (one node at a time, the next when it stops answering, unacknowledged
//! commands resent with their ids, `seen` on every command), and a board follows on another
//! node. Every scenario ends by checking that the board shows the teacher's last
//! acknowledged command, that every acknowledged command is stored on both databases, and
//! that both databases hold identical rows, table by table.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::cluster::postgres::PgServer;
use crate::cluster::{differences, node_on, pair_once_replicated, replicating_pair};
use crate::harness::{text_slide, Process, TestApp};
use crate::live::{claim, Claimed, Ws, PATIENCE};

/// Two replicating databases and three nodes: nodes 0 and 2 prefer database A, node 1 B.
struct Cluster {
    a: PgServer,
    b: PgServer,
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
            b,
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

    /// A teacher (registered through node 0) with a ten-slide lesson, and a board claimed
    /// on `board_node` and paired.
    async fn classroom(&self, board_node: usize) -> (crate::harness::Teacher, String, Claimed) {
        let app = self.app(0);
        let t = app.register("faults@school.org").await;
        let slides: Vec<Value> = (1..=10).map(|i| text_slide(&format!("Slide {i}"))).collect();
        let lesson = app
            .create_lesson(&t, json!({"title": "Faults", "slides": slides}))
            .await;
        let board = claim(self.app(board_node)).await;
        pair_once_replicated(app, &t, &board.code).await;
        (t, lesson["id"].as_str().unwrap().to_owned(), board)
    }

    /// Waits until both databases hold the same rows; returns how long that took.
    async fn until_identical(&self) -> Duration {
        let started = Instant::now();
        loop {
            let differing = differences(&self.url_a, &self.url_b).await;
            if differing.is_empty() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < PATIENCE * 3,
                "rows still differ: {differing:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every acknowledged command is stored, with its version, on both databases.
    async fn assert_stored(&self, acked: &[Acked]) {
        use sqlx::Connection;
        for url in [&self.url_a, &self.url_b] {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let stored: Vec<(Uuid, i64)> =
                sqlx::query_as("SELECT command_id, version FROM board_state")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            for a in acked {
                assert!(
                    stored.iter().any(|(id, _)| *id == a.id),
                    "{url}: acknowledged command {} (version {}) is lost",
                    a.id,
                    a.version
                );
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Acked {
    id: Uuid,
    version: i64,
    slide: u64,
}

/// A teacher's console, as `live.js` behaves.
struct Console {
    bases: Vec<String>,
    at: usize,
    token: String,
    board: String,
    ws: Option<Ws>,
    seen: i64,
    acked: Vec<Acked>,
    /// How many commands were acknowledged, for whoever watches the console from outside.
    progress: Arc<std::sync::atomic::AtomicUsize>,
    /// How often a node was left for the next.
    moves: usize,
}

impl Console {
    fn new(bases: Vec<String>, at: usize, t: &crate::harness::Teacher, board: &str) -> Console {
        Console {
            bases,
            at,
            token: t.token.clone(),
            board: board.to_owned(),
            ws: None,
            seen: 0,
            acked: Vec::new(),
            progress: Default::default(),
            moves: 0,
        }
    }

    /// Connects to the current node, or the next ones in turn; one round at most per call.
    async fn connect(&mut self) {
        for _ in 0..self.bases.len() {
            let base = self.bases[self.at].clone();
            let opened = tokio::time::timeout(PATIENCE, Ws::open_at(&base, None)).await;
            if let Ok(Ok(mut ws)) = opened {
                ws.send(json!({"type": "hello", "protocol": 1, "role": "teacher",
                    "token": self.token, "boards": [{"board": self.board, "version": self.seen}]}))
                    .await;
                if let Some(welcome) = read(&mut ws, |m| m["type"] == "welcome").await {
                    assert_eq!(welcome["type"], "welcome");
                    self.ws = Some(ws);
                    return;
                }
            }
            self.at = (self.at + 1) % self.bases.len();
            self.moves += 1;
        }
    }

    /// Sends a command until it is acknowledged, through whichever node answers.
    async fn command(&mut self, op: &str, args: Value) -> Acked {
        let id = Uuid::now_v7();
        let deadline = Instant::now() + PATIENCE * 3;
        loop {
            assert!(Instant::now() < deadline, "{op} never acknowledged");
            if self.ws.is_none() {
                self.connect().await;
                continue;
            }
            let ws = self.ws.as_mut().unwrap();
            let command = json!({"type": "command", "id": id, "board": self.board, "op": op,
                "args": args, "seen": self.seen});
            let sent = ws.0.send(Message::Text(command.to_string().into())).await;
            let answer = match sent {
                Ok(()) => {
                    let mine = |m: &Value| m["id"] == id.to_string();
                    read(ws, |m| (m["type"] == "ack" || m["type"] == "error") && mine(m)).await
                }
                Err(_) => None,
            };
            match answer {
                Some(ack) if ack["type"] == "ack" => {
                    let version = ack["version"].as_i64().unwrap();
                    self.seen = self.seen.max(version);
                    let slide = args["slide"].as_u64().unwrap_or_default();
                    let acked = Acked { id, version, slide };
                    self.acked.push(acked);
                    self.progress
                        .store(self.acked.len(), std::sync::atomic::Ordering::Relaxed);
                    return acked;
                }
                Some(error) => {
                    let code = error["code"].as_str().unwrap_or_default();
                    assert!(
                        code == "unavailable" || code == "rate_limited",
                        "{op}: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None => {
                    // The node stopped answering: the next one, and the command again.
                    self.ws = None;
                    self.at = (self.at + 1) % self.bases.len();
                    self.moves += 1;
                }
            }
        }
    }

    fn last(&self) -> Acked {
        *self.acked.last().expect("a command was acknowledged")
    }
}

/// The first message that matches, or `None` when the connection ends or stays silent.
async fn read(ws: &mut Ws, what: impl Fn(&Value) -> bool) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.0.next()).await.ok()??;
        if let Ok(Message::Text(text)) = frame {
            let msg: Value = serde_json::from_str(&text).ok()?;
            if what(&msg) {
                return Some(msg);
            }
        } else if !matches!(frame, Ok(Message::Ping(_) | Message::Pong(_))) {
            return None;
        }
    }
}

/// A board page: every state it was sent, in order.
#[derive(Clone, Default)]
struct BoardPage(Arc<Mutex<Vec<Value>>>);

impl BoardPage {
    async fn open(app: &TestApp, board: &Claimed) -> BoardPage {
        let mut ws = Ws::board(app, board).await;
        let page = BoardPage::default();
        let states = page.0.clone();
        tokio::spawn(async move {
            while let Some(state) = read(&mut ws, |m| m["type"] == "state").await {
                states.lock().unwrap().push(state["state"].clone());
            }
        });
        page
    }

    /// Waits until the board shows this acknowledged command's state.
    async fn until_shows(&self, acked: Acked) {
        let started = Instant::now();
        loop {
            let newest = self.0.lock().unwrap().last().cloned();
            if let Some(state) = newest.filter(|s| s["version"].as_i64() >= Some(acked.version)) {
                assert_eq!(state["version"].as_i64(), Some(acked.version), "{state}");
                assert_eq!(state["slide_index"].as_u64(), Some(acked.slide), "{state}");
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the board never showed version {}",
                acked.version
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Once presenting, every state the board was sent showed a slide of the lesson.
    fn assert_never_blank(&self) {
        let states = self.0.lock().unwrap();
        let presenting = states.iter().skip_while(|s| s["lesson"].is_null());
        for state in presenting {
            assert!(!state["lesson"].is_null() && !state["slide"].is_null(), "{state}");
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
    cluster.assert_stored(&console.acked).await;
    let converged = cluster.until_identical().await;
    eprintln!(
        "{} commands acknowledged, none lost; databases identical {converged:?} after the last",
        console.acked.len()
    );
}

#[tokio::test]
async fn a_teacher_on_one_node_steers_a_board_on_another_through_a_node_killed_mid_lesson() {
    let mut cluster = Cluster::start().await;
    let (t, lesson, board) = cluster.classroom(1).await;
    let page = BoardPage::open(cluster.app(1), &board).await;
    let mut console = Console::new(cluster.bases(), 0, &t, &board.id);
    console
        .command("present", json!({"lesson": lesson}))
        .await;

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
