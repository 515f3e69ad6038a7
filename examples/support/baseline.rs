//! The servers `live_bench` can run against instead of classcast (`--against`): the Tornado
//! baselines of `bench/baselines/tornado/live_server.py`, in memory or committing each change
//! to SQLite, started the way `live_bench` starts `classcast serve` (a child process on an
//! ephemeral port that names its address) from the virtual environment `bench/baselines/venv`
//! makes. They hold no store to seed: the generator makes up its tokens and ids and hands them
//! over in a file.

use std::path::Path;

use serde_json::json;
use uuid::Uuid;

use super::server;

/// The server under measurement.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Against {
    Classcast,
    /// Tornado keeping the board states in memory only.
    Tornado,
    /// Tornado committing each new state to SQLite (synced) before answering.
    TornadoSqlite,
}

impl Against {
    pub fn parse(name: &str) -> Self {
        match name {
            "classcast" => Self::Classcast,
            "tornado" => Self::Tornado,
            "tornado-sqlite" => Self::TornadoSqlite,
            other => panic!("--against classcast, tornado or tornado-sqlite, not {other}"),
        }
    }
}

/// Who is who for a baseline: board `b` belongs to teacher `b % teachers`, and each teacher
/// has the lesson of the same index, of `slides` slides.
pub struct Accounts<'a> {
    pub teacher_tokens: &'a [String],
    pub board_tokens: &'a [String],
    pub board_ids: &'a [Uuid],
    pub lessons: &'a [Uuid],
    pub slides: usize,
}

/// Starts the baseline `against` with its files in `dir`; returns it, its base URL and its pid.
pub async fn start(
    against: Against,
    dir: &Path,
    accounts: &Accounts<'_>,
) -> (tokio::process::Child, String, u32) {
    let store = match against {
        Against::Tornado => "memory",
        Against::TornadoSqlite => "sqlite",
        Against::Classcast => unreachable!("classcast is started by live_bench"),
    };
    let teachers = accounts.teacher_tokens.len();
    let seed = json!({
        "slides": accounts.slides,
        "boards": accounts.board_ids.iter().zip(accounts.board_tokens)
            .map(|(id, token)| json!({"id": id, "token": token}))
            .collect::<Vec<_>>(),
        "teachers": accounts.teacher_tokens.iter().enumerate()
            .map(|(t, token)| json!({
                "token": token,
                "name": format!("T{t}"),
                "boards": accounts.board_ids.iter().skip(t).step_by(teachers).collect::<Vec<_>>(),
                "lessons": [accounts.lessons[t]],
            }))
            .collect::<Vec<_>>(),
    });
    let seed_file = dir.join("baseline-seed.json");
    std::fs::write(&seed_file, seed.to_string()).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = std::process::Command::new(repo.join("bench/baselines/venv"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("bench/baselines/venv runs");
    assert!(venv.status.success(), "bench/baselines/venv failed");
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_owned();
    let mut command = tokio::process::Command::new(python);
    command
        .arg(repo.join("bench/baselines/tornado/live_server.py"))
        .args(["--store", store, "--seed"])
        .arg(&seed_file)
        .arg("--database")
        .arg(dir.join("tornado.sqlite3"));
    let (child, base) = server::spawn(command).await;
    let pid = child.id().unwrap();
    (child, base, pid)
}
