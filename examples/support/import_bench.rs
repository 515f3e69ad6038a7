//! What the import benchmarks share: their command line (a count and `--runs`) and a SQLite
//! store with the quota, room and limits the HTTP handler gives an import.

use std::sync::Arc;
use std::time::Duration;

use classcast::domain::node::Node;
use classcast::media::{MediaLimits, Room};
use classcast::quota::LessonQuota;
use classcast::store::{self, Store};
use uuid::Uuid;

/// Runs `measure(count, runs, bench)` on a fresh [`Bench`], with `--<what> N` (default
/// `count`) and `--runs N` (default 3) from the command line.
pub fn main<F: std::future::Future<Output = ()>>(
    what: &str,
    count: usize,
    measure: impl FnOnce(usize, usize, Bench) -> F,
) {
    let (count, runs) = args(what, count);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { measure(count, runs, Bench::new().await).await });
}

fn args(what: &str, count: usize) -> (usize, usize) {
    let (mut count, mut runs) = (count, 3);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse().ok());
        match (flag.strip_prefix("--"), value) {
            (Some(flag), Some(v)) if flag == what => count = v,
            (Some("runs"), Some(v)) => runs = v,
            _ => {
                eprintln!("usage: [--{what} N] [--runs N]");
                std::process::exit(2);
            }
        }
    }
    (count, runs)
}

/// A fresh store in a directory of its own, without quotas that would stop a benchmark.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub quota: LessonQuota,
    pub room: Arc<Room>,
    pub limits: MediaLimits,
}

impl Bench {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::new(Uuid::now_v7());
        let url = format!("sqlite://{}", dir.path().join("classcast.db").display());
        let store: Arc<dyn Store> = store::open(&[url], &node).await.unwrap();
        store.migrate().await.unwrap();
        Self {
            quota: LessonQuota::new(store.clone(), u64::MAX, Duration::from_secs(60)),
            room: Room::new(u64::MAX),
            limits: MediaLimits {
                max_bytes: 200 << 20,
                quota_bytes: 1 << 40,
            },
            dir,
            store,
        }
    }
}
