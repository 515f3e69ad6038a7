//! Save cost against kept revisions (a benchmark, not a test; `bench/quota` runs it): whether
//! a save of a lesson with 100 kept revisions, or of a teacher with many lessons, costs what
//! a save with 1 does. Two server builds (`--before` and `--after`) are measured in one run,
//! alternating, each on a copy of one seeded SQLite store.
//!
//! Scenarios, each `--saves` saves over `--clients` connections saving one after another
//! (`PUT /api/lessons/{id}`, a 12-slide lesson of about 7 KiB, as `bench/store` saves):
//! - `1 kept`: teachers whose one lesson has 1 revision, each saved once (so every save finds
//!   1 kept revision);
//! - `100 kept`: one teacher per connection, whose one lesson has 100 revisions;
//! - `20 lessons x 100`: one teacher per connection with 20 lessons of 100 revisions each
//!   (2,000 kept), saving one of them.
//!
//! Usage: quota_bench --before BIN --after BIN [--rounds R] [--saves N] [--clients C]

#[path = "support/seed.rs"]
mod seed;
#[path = "support/server.rs"]
mod server;
#[path = "support/stats.rs"]
mod stats;

use std::path::{Path, PathBuf};
use std::time::Instant;

use classcast::domain::lesson::{LessonContent, SlideInput};
use classcast::domain::node::Node;
use classcast::store::{self, LessonEdit};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

struct Args {
    before: String,
    after: String,
    rounds: usize,
    saves: usize,
    clients: usize,
}

fn args() -> Args {
    let mut a = Args {
        before: String::new(),
        after: String::new(),
        rounds: 3,
        saves: 400,
        clients: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--before" => a.before = value,
            "--after" => a.after = value,
            "--rounds" => a.rounds = value.parse().expect("--rounds N"),
            "--saves" => a.saves = value.parse().expect("--saves N"),
            "--clients" => a.clients = value.parse().expect("--clients N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        !a.before.is_empty() && !a.after.is_empty(),
        "--before and --after name the two server binaries"
    );
    assert!(a.clients > 0 && a.saves >= a.clients);
    a
}

/// The lesson every save writes, as the library stores it and as JSON for the API.
fn lesson() -> (LessonContent, serde_json::Value) {
    let slides: Vec<serde_json::Value> = (0..12)
        .map(|i| {
            json!({"kind": "text", "title": format!("Slide {i}"),
                   "body": "Some **Markdown** text ".repeat(20), "notes": "notes"})
        })
        .collect();
    let body = json!({"title": "Benchmark lesson", "slides": slides});
    let inputs = slides
        .iter()
        .map(|s| SlideInput {
            kind: "text".into(),
            title: s["title"].as_str().map(str::to_owned),
            body: s["body"].as_str().map(str::to_owned),
            notes: s["notes"].as_str().map(str::to_owned),
            ..Default::default()
        })
        .collect();
    let content = LessonContent::parse("Benchmark lesson", inputs).unwrap();
    (content, body)
}

/// Who saves which lesson in one scenario: one queue of `(token, lesson)` per connection.
struct Scenario {
    name: &'static str,
    queues: Vec<Vec<(String, Uuid)>>,
}

/// Seeds the store of `dir` through the library (much faster than the API); returns the
/// scenarios.
async fn seed(dir: &Path, a: &Args) -> Vec<Scenario> {
    let url = format!("sqlite://{}", dir.join("classcast.db").display());
    let store = store::open(&[url], &Node::new(Uuid::now_v7()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (content, _) = lesson();
    let mut n = 0;
    let mut teacher = || {
        n += 1;
        n
    };
    let per_client = a.saves / a.clients;

    // Each teacher saved once: every save finds 1 kept revision.
    let mut queues = vec![Vec::new(); a.clients];
    for i in 0..per_client * a.clients {
        let (owner, token) = seed::teacher(store.as_ref(), teacher(), "x").await;
        let id = store.create_lesson(owner, &content).await.unwrap().id;
        queues[i % a.clients].push((token, id));
    }
    let mut scenarios = vec![Scenario {
        name: "1 kept",
        queues,
    }];

    for (name, lessons) in [("100 kept", 1), ("20 lessons x 100", 20)] {
        let mut queues = Vec::new();
        for _ in 0..a.clients {
            let (owner, token) = seed::teacher(store.as_ref(), teacher(), "x").await;
            let mut saved = None;
            for _ in 0..lessons {
                let id = store.create_lesson(owner, &content).await.unwrap().id;
                for _ in 1..100 {
                    let edit = LessonEdit {
                        expected: None,
                        content: content.clone(),
                        restored_from: None,
                        keep_folder: false,
                        keep_theme: false,
                    };
                    store.save_lesson(owner, id, edit).await.unwrap();
                }
                saved = Some(id);
            }
            let id = saved.unwrap();
            queues.push(vec![(token.clone(), id); per_client]);
        }
        scenarios.push(Scenario { name, queues });
    }
    scenarios
}

/// A copy of the seeded store in `to`: `VACUUM INTO` reads a consistent snapshot while the
/// seeding store may still be open.
async fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let url = format!("sqlite://{}", from.join("classcast.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let into = to.join("classcast.db");
    sqlx::query("VACUUM INTO ?")
        .bind(into.to_str().unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
}

/// One scenario against a running server: save throughput (saves/s) and latencies (ms).
async fn run(base: &str, scenario: &Scenario, body: &serde_json::Value) -> (f64, Vec<f64>) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = scenario
        .queues
        .iter()
        .cloned()
        .map(|queue| {
            let (client, base, body) = (client.clone(), base.to_owned(), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for (token, id) in queue {
                    let sent = Instant::now();
                    let res = client
                        .put(format!("{base}/api/lessons/{id}"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert!(res.status().is_success(), "save: {}", res.status());
                    res.bytes().await.unwrap();
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, latencies)
}

/// Reads each lesson once through its teacher, so that no scenario's saves pay for the
/// server's first sight of a session (all of `1 kept`'s would, each of another teacher).
async fn warm_up(base: &str, scenarios: &[Scenario]) {
    let client = reqwest::Client::new();
    for (token, id) in scenarios.iter().flat_map(|s| s.queues.iter().flatten()) {
        let res = client
            .get(format!("{base}/api/lessons/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "warm-up: {}", res.status());
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() {
    let a = args();
    let work = tempfile::tempdir().unwrap();
    let seeded = work.path().join("seeded");
    std::fs::create_dir_all(&seeded).unwrap();
    let t = Instant::now();
    let scenarios = seed(&seeded, &a).await;
    println!("seeded in {:.1} s", t.elapsed().as_secs_f64());
    let (_, body) = lesson();

    // Per build and scenario: the p50 latency and the throughput of each round.
    let builds = [("before", &a.before), ("after", &a.after)];
    let mut figures: Vec<Vec<(Vec<f64>, Vec<f64>)>> =
        vec![vec![(vec![], vec![]); scenarios.len()]; builds.len()];
    for round in 0..a.rounds {
        // Alternating which build goes first, so neither has the quieter half of a round.
        let order: Vec<usize> = if round % 2 == 0 {
            vec![0, 1]
        } else {
            vec![1, 0]
        };
        for b in order {
            let (build, bin) = builds[b];
            let dir: PathBuf = work.path().join(format!("r{round}-{build}"));
            copy_store(&seeded, &dir).await;
            let mut command = tokio::process::Command::new(bin);
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&dir)
                .args(["--lesson-storage-mib", "100000"])
                .env("CLASSCAST_LOG", "warn");
            let (mut server, base) = server::spawn(command).await;
            warm_up(&base, &scenarios).await;
            for (s, scenario) in scenarios.iter().enumerate() {
                let (rate, latencies) = run(&base, scenario, &body).await;
                stats::report(
                    &format!(
                        "round {round} {build:6} {:16} {rate:7.1} saves/s",
                        scenario.name
                    ),
                    latencies.clone(),
                );
                figures[b][s].0.push(median(latencies));
                figures[b][s].1.push(rate);
            }
            server.kill().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    println!("\nmedians over {} rounds:", a.rounds);
    for (b, (build, _)) in builds.iter().enumerate() {
        let one = (
            median(figures[b][0].0.clone()),
            median(figures[b][0].1.clone()),
        );
        for (s, scenario) in scenarios.iter().enumerate() {
            let p50 = median(figures[b][s].0.clone());
            let rate = median(figures[b][s].1.clone());
            println!(
                "{build:6} {:16} p50 {p50:6.2} ms ({:.2}x of 1 kept), {rate:7.1} saves/s ({:.2}x of 1 kept)",
                scenario.name,
                p50 / one.0,
                rate / one.1
            );
        }
    }
    for (s, scenario) in scenarios.iter().enumerate() {
        let p50 = |b: usize| median(figures[b][s].0.clone());
        let rate = |b: usize| median(figures[b][s].1.clone());
        println!(
            "after/before {:16} p50 {:.2}x, saves/s {:.2}x",
            scenario.name,
            p50(1) / p50(0),
            rate(1) / rate(0)
        );
    }
}
