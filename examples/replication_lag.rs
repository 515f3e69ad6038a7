//! Replication lag under a steady edit load (a benchmark, not a test; `bench/store` runs it):
//! a teacher saves a lesson through a node `--rate` times a second for `--seconds`, and each
//! saved revision is looked for on the other database (`--replica`) until it is there. The lag
//! of a save is from its acknowledgement to the first poll that finds it on the replica
//! (polled every millisecond, so figures are up to a millisecond late).
//!
//! Usage: replication_lag --base http://node --token T --lesson ID --replica postgres://B
//!        [--rate saves/s] [--seconds S]

#[path = "support/stats.rs"]
mod stats;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;
use uuid::Uuid;

struct Args {
    base: String,
    token: String,
    lesson: String,
    replica: String,
    rate: u32,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        base: String::new(),
        token: String::new(),
        lesson: String::new(),
        replica: String::new(),
        rate: 50,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--base" => a.base = value,
            "--token" => a.token = value,
            "--lesson" => a.lesson = value,
            "--replica" => a.replica = value,
            "--rate" => a.rate = value.parse().expect("--rate saves/s"),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        !a.base.is_empty() && !a.token.is_empty() && !a.lesson.is_empty(),
        "--base, --token and --lesson are needed"
    );
    assert!(!a.replica.is_empty(), "--replica postgres://… is needed");
    a
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = reqwest::Client::new();
    let url = format!("{}/api/lessons/{}", a.base, a.lesson);
    let (acked_tx, mut acked) = tokio::sync::mpsc::unbounded_channel::<(Uuid, Instant)>();
    let saving = {
        let (client, token, rate, seconds) = (client.clone(), a.token.clone(), a.rate, a.seconds);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
            let mut refused = 0;
            for n in 0..rate as u64 * seconds {
                tick.tick().await;
                let body = json!({"title": format!("Replicated {n}"), "slides": [
                    {"kind": "text", "title": "One", "body": "Some **Markdown** text"}
                ]});
                let res = client
                    .put(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("the node answers");
                let acked_at = Instant::now();
                if !res.status().is_success() {
                    refused += 1;
                    continue;
                }
                let saved: Value = res.json().await.expect("a lesson");
                let revision = saved["version"].as_str().expect("a version");
                let _ = acked_tx.send((revision.parse().expect("a revision id"), acked_at));
            }
            refused
        })
    };

    let mut replica = sqlx::PgConnection::connect(&a.replica)
        .await
        .expect("the replica answers");
    let mut waiting: HashMap<Uuid, Instant> = HashMap::new();
    let mut lags = Vec::new();
    let mut done_saving = false;
    let mut give_up = None;
    while !(done_saving && waiting.is_empty()) {
        if give_up.is_some_and(|at| Instant::now() > at) {
            println!(
                "{} saves never reached the replica within 30 s",
                waiting.len()
            );
            break;
        }
        loop {
            match acked.try_recv() {
                Ok((revision, at)) => {
                    waiting.insert(revision, at);
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    done_saving = true;
                    give_up.get_or_insert(Instant::now() + Duration::from_secs(30));
                    break;
                }
            }
        }
        if !waiting.is_empty() {
            let ids: Vec<Uuid> = waiting.keys().copied().collect();
            let arrived: Vec<Uuid> =
                sqlx::query_scalar("SELECT id FROM lesson_revision WHERE id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(&mut replica)
                    .await
                    .expect("the replica answers");
            let now = Instant::now();
            for id in arrived {
                if let Some(at) = waiting.remove(&id) {
                    lags.push(now.duration_since(at).as_secs_f64() * 1000.0);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let refused = saving.await.expect("the saver ends");
    stats::report(&format!("replication lag at {} saves/s", a.rate), lags);
    println!("saves refused: {refused}");
}
