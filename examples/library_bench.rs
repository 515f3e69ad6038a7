//! The lesson library's search and folder list against the plain list (a benchmark, not a
//! test; `bench/library` runs it): one teacher with `--lessons` lessons of 12 slides (each
//! slide ~500 characters of text and notes drawn from a vocabulary), in a SQLite store and in
//! a PostgreSQL 15 store (a throwaway server, as the store suite starts), read through the
//! library's `Store` as the HTTP handlers call it (no HTTP: what is measured is the query).
//!
//! Per store, `--reads` of each, one after another after a warm-up:
//! - `list`: the first page (20) of the plain list, newest first: what "My lessons" opens with;
//! - `search 1 word` / `search 2 words` / `search, no match`: the first page of `q=…`;
//! - `folder`: the first page of one folder's lessons; `folders`: the folder list with counts.
//!
//! Usage: library_bench [--lessons N] [--reads N] [--no-postgres]

#[path = "../tests/support/postgres.rs"]
mod pg_server;
#[path = "support/seed.rs"]
mod seed;
#[path = "support/stats.rs"]
mod stats;

use std::sync::Arc;
use std::time::Instant;

use classcast::domain::lesson::{LessonContent, SlideInput};
use classcast::domain::library::parse_query;
use classcast::domain::node::Node;
use classcast::store::{self, LessonFilter, LessonOrder, Store};
use uuid::Uuid;

const VOCABULARY: &[&str] = &[
    "fraction",
    "decimal",
    "volcano",
    "river",
    "photosynthesis",
    "verb",
    "poem",
    "atom",
    "triangle",
    "history",
    "castle",
    "energy",
    "climate",
    "grammar",
    "melody",
    "planet",
    "equation",
    "molecule",
    "empire",
    "forest",
    "number",
    "shadow",
    "island",
    "market",
];
const FOLDERS: usize = 10;

struct Args {
    lessons: usize,
    reads: usize,
    postgres: bool,
}

fn args() -> Args {
    let mut a = Args {
        lessons: 2_000,
        reads: 200,
        postgres: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--lessons" => a.lessons = it.next().and_then(|v| v.parse().ok()).expect("--lessons N"),
            "--reads" => a.reads = it.next().and_then(|v| v.parse().ok()).expect("--reads N"),
            "--no-postgres" => a.postgres = false,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A deterministic word of the vocabulary for `(lesson, slide, k)`.
fn word(lesson: usize, slide: usize, k: usize) -> &'static str {
    let n = lesson.wrapping_mul(7919) ^ slide.wrapping_mul(104_729) ^ k.wrapping_mul(31);
    VOCABULARY[n % VOCABULARY.len()]
}

/// Lesson `n`: 12 text slides of ~40 words of body and ~10 of notes, in one of the folders.
fn lesson(n: usize) -> LessonContent {
    let slides = (0..12)
        .map(|s| {
            let body: Vec<&str> = (0..40).map(|k| word(n, s, k)).collect();
            let notes: Vec<&str> = (40..50).map(|k| word(n, s, k)).collect();
            SlideInput {
                kind: "text".into(),
                title: Some(format!("Part {s}: {}", word(n, s, 99))),
                body: Some(body.join(" ")),
                notes: Some(notes.join(" ")),
                ..Default::default()
            }
        })
        .collect();
    let title = format!("Lesson {n} on {}", word(n, 0, 7));
    let folder = format!("Folder {}", n % FOLDERS);
    LessonContent::parse_whole(&title, Some(&folder), None, slides).unwrap()
}

/// Times `reads` calls of `read` (after as many to warm up); returns milliseconds each.
async fn timed<F, Fut>(reads: usize, mut read: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    for _ in 0..reads.min(20) {
        read().await;
    }
    let mut ms = Vec::with_capacity(reads);
    for _ in 0..reads {
        let started = Instant::now();
        std::hint::black_box(read().await);
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms
}

fn p50(ms: &[f64]) -> f64 {
    let mut sorted = ms.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[sorted.len() / 2]
}

async fn measure(name: &str, store: Arc<dyn Store>, a: &Args) {
    let (owner, _) = seed::teacher(store.as_ref(), 1, "x").await;
    let started = Instant::now();
    for n in 0..a.lessons {
        store.create_lesson(owner, &lesson(n)).await.unwrap();
    }
    println!(
        "{name}: seeded {} lessons of 12 slides in {:.1} s",
        a.lessons,
        started.elapsed().as_secs_f64()
    );
    let list = |filter: LessonFilter| {
        let store = store.clone();
        move || {
            let (store, filter) = (store.clone(), filter.clone());
            async move {
                let page = store
                    .list_lessons(owner, &filter, LessonOrder::Updated, None, 21)
                    .await
                    .unwrap();
                page.len()
            }
        }
    };
    let words = |q: &str| LessonFilter {
        words: parse_query(q).unwrap(),
        folder: None,
    };
    let plain = timed(a.reads, list(LessonFilter::default())).await;
    stats::report(&format!("{name}, list"), plain.clone());
    let base = p50(&plain);
    for (label, filter) in [
        ("search 1 word", words("volcano")),
        ("search 2 words", words("Castle PLANET")),
        ("search, no match", words("zebra")),
        (
            "folder",
            LessonFilter {
                words: Vec::new(),
                folder: Some("Folder 3".into()),
            },
        ),
    ] {
        let ms = timed(a.reads, list(filter)).await;
        let ratio = p50(&ms) / base;
        stats::report(&format!("{name}, {label} ({ratio:.1}x the list's p50)"), ms);
    }
    let folders = timed(a.reads, || {
        let store = store.clone();
        async move { store.lesson_folders(owner).await.unwrap().len() }
    })
    .await;
    let ratio = p50(&folders) / base;
    stats::report(
        &format!("{name}, folders ({ratio:.1}x the list's p50)"),
        folders,
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(Uuid::now_v7());
    let url = format!("sqlite://{}", dir.path().join("classcast.db").display());
    let sqlite = store::open(&[url], &node).await.unwrap();
    sqlite.migrate().await.unwrap();
    measure("SQLite", sqlite, &a).await;
    if a.postgres {
        let server = pg_server::PgServer::start();
        let url = server.create("library").await;
        let postgres = store::open(&[url], &node).await.unwrap();
        postgres.migrate().await.unwrap();
        measure("PostgreSQL", postgres, &a).await;
    }
}
