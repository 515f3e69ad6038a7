//! Failover benchmark (not a test; `bench/failover` runs it): how long a teacher and a board
//! are out of step when the node the teacher is on is killed with `kill -9`, and how long
//! writes stop when the database a node uses is stopped.
//!
//! Two throwaway PostgreSQL 15 servers (replicating both ways, set up with `classcast
//! cluster init`) and three nodes on loopback. The board stays on node 1; the teacher's
//! console (as `live.js` behaves: the next host when one stops answering, unacknowledged
//! commands resent) starts on node 0 or 2. Each round kills the console's node, then times
//! the teacher's next press: until it is acknowledged by another node, and until the board
//! shows it. The killed node is started again on its address before the next round.
//!
//! Usage: failover_bench --bin target/release/classcast [--kills N]

#[path = "support/cluster.rs"]
mod cluster;
#[path = "../tests/support/live_client.rs"]
mod live_client;
#[path = "../tests/support/postgres.rs"]
mod pg_server;
#[path = "support/server.rs"]
mod server;
#[path = "support/stats.rs"]
mod stats;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use live_client::{BoardPage, Console};

struct Args {
    bin: String,
    kills: usize,
}

fn args() -> Args {
    let mut a = Args {
        bin: "target/release/classcast".into(),
        kills: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--bin" => a.bin = value,
            "--kills" => a.kills = value.parse().expect("--kills N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

async fn post(url: String, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::main]
async fn main() {
    let a = args();
    let (pg_a, pg_b) = (pg_server::PgServer::start(), pg_server::PgServer::start());
    let (url_a, url_b) = (
        pg_a.create("classcast").await,
        pg_b.create("classcast").await,
    );
    let mut nodes = cluster::three_nodes(&a.bin, &url_a, &url_b).await;
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();

    let registered: Value = post(
        format!("{}/api/auth/register", bases[0]),
        None,
        json!({"email": "bench@school.org", "name": "Bench", "password": "benchmark password"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = registered["token"].as_str().unwrap().to_owned();
    let slides: Vec<Value> = (1..=10)
        .map(|i| json!({"kind": "text", "title": format!("Slide {i}")}))
        .collect();
    let lesson: Value = post(
        format!("{}/api/lessons", bases[0]),
        Some(&token),
        json!({"title": "Failover", "slides": slides}),
    )
    .await
    .json()
    .await
    .unwrap();
    let claimed: Value = post(format!("{}/api/boards/claim", bases[1]), None, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let board = claimed["board_id"].as_str().unwrap().to_owned();
    // The code reaches node 0's database by replication.
    loop {
        let paired = post(
            format!("{}/api/boards/pair", bases[0]),
            Some(&token),
            json!({"code": claimed["code"], "name": "Room 1"}),
        )
        .await;
        if paired.status() == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = BoardPage::open(&bases[1], claimed["board_token"].as_str().unwrap()).await;
    // The console never uses node 1: the board's node stays up.
    let console_bases = vec![bases[0].clone(), bases[2].clone()];
    let mut console = Console::new(console_bases.clone(), 0, &token, &board);
    console
        .command("present", json!({"lesson": lesson["id"]}))
        .await;

    let (mut teacher_ms, mut board_ms) = (Vec::new(), Vec::new());
    for round in 0..a.kills {
        for _ in 0..5 {
            let slide = (console.acked.len() % 9 + 1) as u64;
            console.command("goto", json!({"slide": slide})).await;
        }
        page.until_shows(console.last()).await;
        let victim = if console.at == 0 { 0 } else { 2 };
        let node = &mut nodes[victim];
        node.child.kill().await.unwrap();
        let killed = Instant::now();
        let slide = (console.acked.len() % 9 + 1) as u64;
        let acked = console.command("goto", json!({"slide": slide})).await;
        teacher_ms.push(killed.elapsed().as_secs_f64() * 1000.0);
        page.until_shows(acked).await;
        board_ms.push(killed.elapsed().as_secs_f64() * 1000.0);
        // Back on its address, for a later round.
        let listen = node.base.trim_start_matches("http://").to_owned();
        let dir = std::mem::replace(&mut node.dir, tempfile::tempdir().unwrap());
        let databases = node.databases.clone();
        *node = cluster::start_node(&a.bin, &listen, dir, &databases).await;
        eprint!("\rkill {}/{}", round + 1, a.kills);
    }
    eprintln!();
    stats::report(
        "kill -9 of the teacher's node → next press acknowledged",
        teacher_ms,
    );
    stats::report(
        "kill -9 of the teacher's node → the board shows it",
        board_ms,
    );

    // The database node 0 uses stops: how long until its writes go on.
    let mut console = Console::new(vec![bases[0].clone()], 0, &token, &board);
    for _ in 0..5 {
        let slide = (console.acked.len() % 9 + 1) as u64;
        console.command("goto", json!({"slide": slide})).await;
    }
    let stops: [(&str, Stop); 2] = [
        ("fast", pg_server::PgServer::stop_fast),
        ("immediate", pg_server::PgServer::crash),
    ];
    for (mode, stop) in stops {
        stop(&pg_a);
        let stopped = Instant::now();
        let slide = (console.acked.len() % 9 + 1) as u64;
        console.command("goto", json!({"slide": slide})).await;
        println!(
            "database stopped ({mode}) → the next press acknowledged: {:.1} ms",
            stopped.elapsed().as_secs_f64() * 1000.0
        );
        pg_a.start_again();
        until_back_on_first(&bases[0]).await;
    }
}

/// A way to stop a database server.
type Stop = fn(&pg_server::PgServer);

/// Waits until the node at `base` uses its first database again.
async fn until_back_on_first(base: &str) {
    loop {
        let ready: Value = reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["databases"][0]["active"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
