//! Restart benchmark (not a test; `bench/restart` runs it): how long after a node's
//! `SIGTERM` each of its live clients is back on another node with a current state.
//!
//! Two throwaway PostgreSQL 15 servers (replicating both ways, set up with `classcast
//! cluster init`) and three nodes on loopback. N boards and T teachers (each following its
//! boards) connect over WebSockets, each to the first host of its own shuffled list, and
//! behave as `live.js` does on a close: the next host of their list at once, the one they
//! left tried last. Each round restarts every node in turn (a rolling restart): `SIGTERM`,
//! then, once the process has exited, the same binary again on the same address. Timed, per
//! client of the node stopped: from the `SIGTERM` to its close frame (told to move), and to
//! the first `state` message from the node it moved to (its `welcome` comes just before
//! it); per restart, until every client of the node is back, and until the process exited.
//! The clients of a node add up as the restart rolls on: the last node of a round holds
//! most of them.
//!
//! Usage: restart_bench --bin target/release/classcast [--boards N] [--teachers T] [--rounds R]

#[path = "support/cluster.rs"]
mod cluster;
#[path = "../tests/support/postgres.rs"]
mod pg_server;
#[path = "support/seed.rs"]
mod seed;
#[path = "support/server.rs"]
mod server;
#[path = "support/stats.rs"]
mod stats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use classcast::domain::node::Node;
use classcast::store;
use futures_util::{SinkExt, StreamExt};
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

struct Args {
    bin: String,
    boards: usize,
    teachers: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        bin: "target/release/classcast".into(),
        boards: 300,
        teachers: 30,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--bin" => a.bin = value,
            "--boards" => a.boards = value.parse().expect("--boards N"),
            "--teachers" => a.teachers = value.parse().expect("--teachers N"),
            "--rounds" => a.rounds = value.parse().expect("--rounds N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a.teachers = a.teachers.clamp(1, a.boards.max(1));
    a
}

/// How long a client waits for a node before it counts as gone (the pages' request timeout).
const PATIENCE: Duration = Duration::from_secs(10);
/// A client between two nodes.
const MOVING: usize = usize::MAX;

/// The `hello` of every client: N boards, then T teachers each following its boards.
/// Seeded through the library into the first database (the HTTP API's password hashing
/// and pairing limits are made for people), before `cluster init` copies it to the second.
async fn seed(url: &str, a: &Args) -> Vec<Value> {
    let store = store::open(&[url.to_owned()], &Node::new(Uuid::now_v7()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let hash = classcast::auth::password::PasswordHasher::new(1, Duration::from_secs(5))
        .hash("benchmark password".into())
        .await
        .unwrap();
    let mut teachers = Vec::new();
    for t in 0..a.teachers {
        let (account_id, token) = seed::teacher(store.as_ref(), t, &hash).await;
        teachers.push((account_id, token, Vec::new()));
    }
    let mut hellos = Vec::new();
    for b in 0..a.boards {
        let token = classcast::auth::token::generate();
        let board = store
            .create_board(&classcast::auth::token::hash(&token))
            .await
            .unwrap();
        let code = store
            .issue_code(board, &format!("{:06}", b % 1_000_000), i64::MAX)
            .await
            .unwrap();
        let (account, _, followed) = &mut teachers[b % a.teachers];
        store
            .pair_board(*account, &code, &format!("Room {b}"))
            .await
            .unwrap();
        followed.push(json!({"board": board, "version": 0}));
        hellos.push(json!({"type": "hello", "protocol": 1, "role": "board", "token": token}));
    }
    for (_, token, boards) in teachers {
        hellos.push(
            json!({"type": "hello", "protocol": 1, "role": "teacher", "token": token, "boards": boards}),
        );
    }
    hellos
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A live connection to `base` once it has sent its first `state`: the client is then back
/// with a current state. `None` when the node does not answer.
async fn connect(base: &str, hello: &Value) -> Option<Socket> {
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    tokio::time::timeout(PATIENCE, async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
        ws.send(Message::Text(hello.to_string().into()))
            .await
            .ok()?;
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                if serde_json::from_str::<Value>(&text).ok()?["type"] == "state" {
                    return Some(ws);
                }
            }
        }
        None
    })
    .await
    .ok()?
}

/// A client that had to move: the node it left, the close code it was given, when it had a
/// current state again.
struct Back {
    left: usize,
    code: Option<u16>,
    told: Instant,
    at: Instant,
}

/// One page: connected to the first host of `order`; when its connection closes, the next
/// host of `order` at once, the one it left last, round after round. `on` says where it is.
async fn client(
    bases: Arc<Vec<String>>,
    order: Vec<usize>,
    hello: Value,
    on: Arc<AtomicUsize>,
    backs: mpsc::UnboundedSender<Back>,
) {
    let mut i = 0;
    let mut ws = connect(&bases[order[i]], &hello)
        .await
        .expect("every node answers at first");
    on.store(order[i], Ordering::SeqCst);
    loop {
        let code = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code.into()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        };
        let (left, told) = (order[i], Instant::now());
        on.store(MOVING, Ordering::SeqCst);
        let (next, j) = 'found: loop {
            for step in 1..=order.len() {
                let j = (i + step) % order.len();
                if let Some(next) = connect(&bases[order[j]], &hello).await {
                    break 'found (next, j);
                }
            }
            // No host answered this round: the pages back off.
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let at = Instant::now();
        (ws, i) = (next, j);
        on.store(order[i], Ordering::SeqCst);
        let _ = backs.send(Back {
            left,
            code,
            told,
            at,
        });
    }
}

async fn until_ready(base: &str) {
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        let ready = reqwest::get(format!("{base}/readyz")).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let (pg_a, pg_b) = (pg_server::PgServer::start(), pg_server::PgServer::start());
    let (url_a, url_b) = (
        pg_a.create("classcast").await,
        pg_b.create("classcast").await,
    );
    let hellos = seed(&url_a, &a).await;
    let mut nodes = cluster::three_nodes(&a.bin, &url_a, &url_b).await;
    let bases = Arc::new(nodes.iter().map(|n| n.base.clone()).collect::<Vec<_>>());
    for base in bases.iter() {
        until_ready(base).await;
    }

    let (backs, mut backs_rx) = mpsc::unbounded_channel();
    let mut where_on = Vec::new();
    for hello in hellos {
        let mut order: Vec<usize> = (0..bases.len()).collect();
        order.shuffle(&mut rand::thread_rng());
        let on = Arc::new(AtomicUsize::new(MOVING));
        where_on.push(on.clone());
        tokio::spawn(client(bases.clone(), order, hello, on, backs.clone()));
    }
    let started = Instant::now();
    while where_on
        .iter()
        .any(|on| on.load(Ordering::SeqCst) == MOVING)
    {
        assert!(started.elapsed() < PATIENCE * 3, "clients never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{} clients connected in {:?}",
        where_on.len(),
        started.elapsed()
    );

    let (mut back_ms, mut told_ms) = (Vec::new(), Vec::new());
    let (mut exit_ms, mut all_back_ms) = (Vec::new(), Vec::new());
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..a.rounds {
        for (n, node) in nodes.iter_mut().enumerate() {
            let on_it = where_on
                .iter()
                .filter(|on| on.load(Ordering::SeqCst) == n)
                .count();
            let pid = node.child.id().expect("the node runs");
            let sigterm = Instant::now();
            // SAFETY: a plain kill(2) of our own child process.
            let sent = unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGTERM) };
            assert_eq!(sent, 0, "SIGTERM sent");
            let mut moved = 0;
            while moved < on_it {
                let back = tokio::time::timeout(PATIENCE * 3, backs_rx.recv())
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "{} of {on_it} clients of node {n} never came back",
                            on_it - moved
                        )
                    })
                    .expect("clients live");
                if back.left != n {
                    continue;
                }
                moved += 1;
                back_ms.push((back.at - sigterm).as_secs_f64() * 1000.0);
                told_ms.push((back.told - sigterm).as_secs_f64() * 1000.0);
                let code = back.code.map_or("none".to_owned(), |c| c.to_string());
                *codes.entry(code).or_default() += 1;
            }
            all_back_ms.push(sigterm.elapsed().as_secs_f64() * 1000.0);
            node.child.wait().await.unwrap();
            exit_ms.push(sigterm.elapsed().as_secs_f64() * 1000.0);
            let listen = node.base.trim_start_matches("http://").to_owned();
            let dir = std::mem::replace(&mut node.dir, tempfile::tempdir().unwrap());
            let databases = node.databases.clone();
            *node = cluster::start_node(&a.bin, &listen, dir, &databases).await;
            until_ready(&node.base).await;
            eprintln!(
                "round {}/{}: node {n} had {on_it} clients, all back {:.1} ms after SIGTERM",
                round + 1,
                a.rounds,
                all_back_ms.last().unwrap()
            );
        }
    }
    println!(
        "{} boards and {} teachers on 3 nodes, {} rolling restarts; close codes: {codes:?}",
        a.boards, a.teachers, a.rounds
    );
    let worst = back_ms.iter().copied().fold(0.0, f64::max);
    stats::report("SIGTERM → each client of the node told to move", told_ms);
    stats::report(
        "SIGTERM → each client of the node back on another with a current state",
        back_ms,
    );
    stats::report(
        "SIGTERM → every client of the node back (per restart)",
        all_back_ms,
    );
    stats::report("SIGTERM → the node's process exited", exit_ms);
    println!("worst client: {:.2} of the 1 s goal", worst / 1000.0);
}
