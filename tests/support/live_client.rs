//! Live clients as the pages behave, for the fault tests and the failover benchmark: a
//! teacher's console that moves to the next node when one stops answering or closes (a
//! restart's 1012 among them) and resends what is unacknowledged under the same ids (with
//! `seen`, as `live.js`), and a board page that records every state it is sent and, when
//! following several nodes, moves to the next one at once when its node closes.

// Shared by the API tests and the failover benchmark; each uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// How long a client waits for an answer before it counts the node as gone.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A live connection to the node at `base`, once its `hello` is welcomed.
async fn open(base: &str, hello: Value) -> Option<Socket> {
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .ok()?
        .ok()?;
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .ok()?;
    read(&mut ws, |m| m["type"] == "welcome").await.map(|_| ws)
}

#[derive(Debug, Clone, Copy)]
pub struct Acked {
    pub id: Uuid,
    pub version: i64,
    pub slide: u64,
}

/// A teacher's console, as `live.js` behaves.
pub struct Console {
    pub bases: Vec<String>,
    pub at: usize,
    token: String,
    board: String,
    pub ws: Option<Socket>,
    seen: i64,
    pub acked: Vec<Acked>,
    /// How many commands were acknowledged, for whoever watches the console from outside.
    pub progress: Arc<std::sync::atomic::AtomicUsize>,
    /// The version of the newest acknowledged command, for the same.
    pub newest: Arc<AtomicI64>,
    /// How often a node was left for the next.
    pub moves: usize,
    /// The close code of each connection that ended under the console (`None`: dropped or
    /// silent, without a close frame).
    pub closes: Vec<Option<u16>>,
}

impl Console {
    pub fn new(bases: Vec<String>, at: usize, token: &str, board: &str) -> Console {
        Console {
            bases,
            at,
            token: token.to_owned(),
            board: board.to_owned(),
            ws: None,
            seen: 0,
            acked: Vec::new(),
            progress: Default::default(),
            newest: Default::default(),
            moves: 0,
            closes: Vec::new(),
        }
    }

    /// Connects to the current node, or the next ones in turn; one round at most per call.
    pub async fn connect(&mut self) {
        for _ in 0..self.bases.len() {
            let base = self.bases[self.at].clone();
            let hello = json!({"type": "hello", "protocol": 1, "role": "teacher",
                "token": self.token, "boards": [{"board": self.board, "version": self.seen}]});
            if let Some(ws) = open(&base, hello).await {
                self.ws = Some(ws);
                return;
            }
            self.at = (self.at + 1) % self.bases.len();
            self.moves += 1;
        }
    }

    /// Sends a command until it is acknowledged, through whichever node answers.
    pub async fn command(&mut self, op: &str, args: Value) -> Acked {
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
            let sent = ws.send(Message::Text(command.to_string().into())).await;
            let answer = match sent {
                Ok(()) => {
                    let mine = |m: &Value| m["id"] == id.to_string();
                    next_message(ws, |m| {
                        (m["type"] == "ack" || m["type"] == "error") && mine(m)
                    })
                    .await
                }
                Err(_) => Err(None),
            };
            match answer {
                Ok(ack) if ack["type"] == "ack" => {
                    let version = ack["version"].as_i64().unwrap();
                    self.seen = self.seen.max(version);
                    let slide = args["slide"].as_u64().unwrap_or_default();
                    let acked = Acked { id, version, slide };
                    self.acked.push(acked);
                    self.progress.store(self.acked.len(), Ordering::Relaxed);
                    self.newest.store(self.seen, Ordering::Relaxed);
                    return acked;
                }
                Ok(error) => {
                    let code = error["code"].as_str().unwrap_or_default();
                    assert!(
                        code == "unavailable" || code == "rate_limited",
                        "{op}: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(code) => {
                    // The node stopped answering or closed (1012: it restarts): the next
                    // one at once, and the command again.
                    self.closes.push(code);
                    self.ws = None;
                    self.at = (self.at + 1) % self.bases.len();
                    self.moves += 1;
                }
            }
        }
    }

    pub fn last(&self) -> Acked {
        *self.acked.last().expect("a command was acknowledged")
    }
}

/// The first message that matches, or `None` when the connection ends or stays silent.
pub async fn read(ws: &mut Socket, what: impl Fn(&Value) -> bool) -> Option<Value> {
    next_message(ws, what).await.ok()
}

/// The first message that matches; or, when the connection ends or stays silent, the close
/// code the server gave (`None` without a close frame).
pub async fn next_message(
    ws: &mut Socket,
    what: impl Fn(&Value) -> bool,
) -> Result<Value, Option<u16>> {
    loop {
        let frame = match tokio::time::timeout(PATIENCE, ws.next()).await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => return Err(None),
        };
        match frame {
            Ok(Message::Text(text)) => {
                let msg: Value = serde_json::from_str(&text).map_err(|_| None)?;
                if what(&msg) {
                    return Ok(msg);
                }
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(frame)) => return Err(frame.map(|f| f.code.into())),
            _ => return Err(None),
        }
    }
}

/// A board page: every state it was sent, in order, with when it arrived, and each move
/// from one node to another.
#[derive(Clone, Default)]
pub struct BoardPage {
    states: Arc<Mutex<Vec<(Instant, Value)>>>,
    moves: Arc<Mutex<Vec<Move>>>,
}

/// A board page leaving a node whose connection ended, for the next one.
#[derive(Debug, Clone, Copy)]
pub struct Move {
    /// When the connection ended, and the close code it ended with (`None`: without one).
    pub left: Instant,
    pub code: Option<u16>,
    pub from: usize,
    /// When the next node welcomed it, and which.
    pub back: Instant,
    pub to: usize,
}

fn board_hello(token: &str, version: i64) -> Value {
    json!({"type": "hello", "protocol": 1, "role": "board", "token": token, "version": version})
}

impl BoardPage {
    /// The board with `token` opened on the node at `base`.
    pub async fn open(base: &str, token: &str) -> BoardPage {
        let mut ws = open(base, board_hello(token, 0))
            .await
            .expect("the board's node answers");
        let page = BoardPage::default();
        let states = page.states.clone();
        tokio::spawn(async move {
            while let Some(state) = read(&mut ws, |m| m["type"] == "state").await {
                states
                    .lock()
                    .unwrap()
                    .push((Instant::now(), state["state"].clone()));
            }
        });
        page
    }

    /// The board with `token` opened on the node at `bases[at]`; when its connection ends it
    /// moves as `live.js` does: to the next node at once, the one it left tried last, round
    /// after round until one welcomes it.
    pub async fn follow(bases: Vec<String>, at: usize, token: &str) -> BoardPage {
        let token = token.to_owned();
        let mut ws = open(&bases[at], board_hello(&token, 0))
            .await
            .expect("the board's node answers");
        let page = BoardPage::default();
        let (states, moves) = (page.states.clone(), page.moves.clone());
        tokio::spawn(async move {
            let mut at = at;
            loop {
                let code = loop {
                    match next_message(&mut ws, |m| m["type"] == "state").await {
                        Ok(state) => states
                            .lock()
                            .unwrap()
                            .push((Instant::now(), state["state"].clone())),
                        Err(code) => break code,
                    }
                };
                let left = Instant::now();
                let shown = newest_version(&states.lock().unwrap());
                let (next, to) = 'found: loop {
                    for step in 1..=bases.len() {
                        let to = (at + step) % bases.len();
                        if let Some(next) = open(&bases[to], board_hello(&token, shown)).await {
                            break 'found (next, to);
                        }
                    }
                    // No node answered this round: a pause, as the page's backoff.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                let back = Instant::now();
                moves.lock().unwrap().push(Move {
                    left,
                    code,
                    from: at,
                    back,
                    to,
                });
                (ws, at) = (next, to);
            }
        });
        page
    }

    /// Each move from one node to another so far.
    pub fn moves(&self) -> Vec<Move> {
        self.moves.lock().unwrap().clone()
    }

    /// The version of the newest state it was sent (0 before any).
    pub fn newest(&self) -> i64 {
        newest_version(&self.states.lock().unwrap())
    }

    /// Waits until the board shows this acknowledged command's state.
    pub async fn until_shows(&self, acked: Acked) {
        let started = Instant::now();
        loop {
            let newest = self.states.lock().unwrap().last().map(|(_, s)| s.clone());
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

    /// How many of `versions` it was sent after `since`, and the longest time between two
    /// states it was sent then.
    pub fn followed(&self, since: Instant, versions: &[i64]) -> (usize, Duration) {
        let states = self.states.lock().unwrap();
        let arrivals: Vec<(Instant, i64)> = states
            .iter()
            .filter(|(at, _)| *at >= since)
            .filter_map(|(at, s)| Some((*at, s["version"].as_i64()?)))
            .collect();
        let seen = versions
            .iter()
            .filter(|v| arrivals.iter().any(|(_, a)| a == *v))
            .count();
        let gap = arrivals
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap_or_default();
        (seen, gap)
    }

    /// Once presenting, every state the board was sent showed a slide of the lesson.
    pub fn assert_never_blank(&self) {
        let states = self.states.lock().unwrap();
        let presenting = states
            .iter()
            .map(|(_, s)| s)
            .skip_while(|s| s["lesson"].is_null());
        for state in presenting {
            assert!(
                !state["lesson"].is_null() && !state["slide"].is_null(),
                "{state}"
            );
        }
    }
}

fn newest_version(states: &[(Instant, Value)]) -> i64 {
    states
        .iter()
        .filter_map(|(_, s)| s["version"].as_i64())
        .max()
        .unwrap_or(0)
}
