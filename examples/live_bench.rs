//! Live-classroom benchmark (not a test): N boards and T teachers on one `classcast serve`
//! process, over real WebSockets on loopback. Run it through `bench/live`, which builds the
//! release binary first and raises the file-descriptor limit.
//!
//! Reports: how long a storm of N boards connecting at once takes to be fully served; memory
//! per idle board connection (server RSS growth / N); command-to-board latency p50/p99/p99.9
//! with commands spread out at a steady rate, and with every teacher pressing at once. With
//! `--nodes 2 --database postgres://…` the boards are served by a second node, so every
//! command crosses between nodes (the bus and a read of the store). `--data-dir DIR` seeds
//! and serves an existing store (a large one, say); `--during CMD` measures the spread again
//! while `CMD` runs back to back (`bench/backup` runs a backup of the store so).
//! `--against tornado|tornado-sqlite` measures a baseline server instead of classcast, with the
//! same generator (`support/baseline.rs`; `bench/speed` runs them all in one go). `--procs N`
//! runs only the storm, from N generator processes, and times a teacher's commands during it
//! against the same commands idle (`support/storm.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use classcast::domain::lesson::{LessonContent, SlideInput};
use classcast::domain::node::Node;
use classcast::store;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/seed.rs"]
mod seed;
#[path = "support/server.rs"]
mod server;
#[path = "support/storm.rs"]
mod storm;
#[path = "support/mod.rs"]
mod support;
use support::stamped::{wall_ns, Stamped};
use support::{cpu_ms, report_both};

use baseline::Against;

struct Args {
    boards: usize,
    teachers: usize,
    rate: u64,
    seconds: u64,
    bin: String,
    /// An empty PostgreSQL database to run on instead of SQLite in the data directory.
    database: Option<String>,
    /// 2: boards on a second node (same database), teachers on the first.
    nodes: u8,
    /// An existing data directory to seed and serve (a large store, say) instead of a new one.
    data_dir: Option<std::path::PathBuf>,
    /// A shell command run back to back during a second spread phase (`{data}` is the
    /// server's data directory, `{bin}` the binary): the first phase without it is the
    /// baseline of the same run.
    during: Option<String>,
    /// The server measured: classcast, or a baseline started instead of it.
    against: Against,
    /// `--procs N`: only the storm, from N generator processes (see `support/storm.rs`).
    procs: Option<usize>,
}

fn args() -> Args {
    let mut a = Args {
        boards: 2000,
        teachers: 200,
        rate: 500,
        seconds: 10,
        bin: "target/release/classcast".into(),
        database: None,
        nodes: 1,
        data_dir: None,
        during: None,
        against: Against::Classcast,
        procs: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--boards" => a.boards = value.parse().expect("--boards N"),
            "--teachers" => a.teachers = value.parse().expect("--teachers N"),
            "--rate" => a.rate = value.parse().expect("--rate commands/s"),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--bin" => a.bin = value,
            "--database" => a.database = Some(value),
            "--nodes" => a.nodes = value.parse().expect("--nodes 1 or 2"),
            "--during" => a.during = Some(value),
            "--data-dir" => a.data_dir = Some(value.into()),
            "--against" => a.against = Against::parse(&value),
            "--procs" => a.procs = Some(value.parse().expect("--procs N (at least 1)")),
            other => panic!("unknown flag {other}"),
        }
    }
    a.teachers = a.teachers.clamp(1, a.boards);
    assert!(
        a.nodes == 1 || (a.nodes == 2 && a.database.is_some()),
        "--nodes 2 needs --database postgres://… (nodes share it)"
    );
    assert!(
        a.against == Against::Classcast
            || (a.database.is_none() && a.data_dir.is_none() && a.during.is_none()),
        "--against a baseline runs one node of its own: no --database, --data-dir or --during"
    );
    assert!(
        a.procs.is_none() || a.nodes == 1,
        "--procs measures one node"
    );
    a
}

#[derive(serde::Deserialize)]
struct StateMsg {
    state: VersionOnly,
}

#[derive(serde::Deserialize)]
struct VersionOnly {
    version: i64,
}

/// Slides in each teacher's lesson.
const LESSON_SLIDES: usize = 20;

struct Seeded {
    teacher_tokens: Vec<String>,
    board_tokens: Vec<String>,
    board_ids: Vec<Uuid>,
    lessons: Vec<Uuid>,
}

/// Fills a fresh data directory through the library: much faster than the HTTP API, whose
/// password hashing and pairing rate limits are (rightly) made for people.
async fn seed(dir: &std::path::Path, a: &Args) -> Seeded {
    let url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("classcast.db").display()));
    let store = store::open(std::slice::from_ref(&url), &Node::new(Uuid::now_v7()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let hash = classcast::auth::password::PasswordHasher::new(1, Duration::from_secs(5))
        .hash("benchmark password".into())
        .await
        .unwrap();
    let slides = (0..LESSON_SLIDES)
        .map(|i| SlideInput {
            kind: "text".into(),
            title: Some(format!("Slide {i}")),
            body: Some("Some **text**".into()),
            ..Default::default()
        })
        .collect();
    let lesson = LessonContent::parse("Benchmark lesson", slides).unwrap();
    let mut s = Seeded {
        teacher_tokens: vec![],
        board_tokens: vec![],
        board_ids: vec![],
        lessons: vec![],
    };
    let mut accounts = vec![];
    for t in 0..a.teachers {
        let (account_id, token) = seed::teacher(store.as_ref(), t, &hash).await;
        s.lessons
            .push(store.create_lesson(account_id, &lesson).await.unwrap().id);
        s.teacher_tokens.push(token);
        accounts.push(account_id);
    }
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
        store
            .pair_board(accounts[b % a.teachers], &code, &format!("Room {b}"))
            .await
            .unwrap();
        s.board_tokens.push(token);
        s.board_ids.push(board);
    }
    s
}

/// Tokens and ids for a baseline, which keeps its accounts in no store of classcast's.
fn invent(a: &Args) -> Seeded {
    let ids = |n| (0..n).map(|_| Uuid::now_v7()).collect();
    let tokens = |n| (0..n).map(|_| classcast::auth::token::generate()).collect();
    Seeded {
        teacher_tokens: tokens(a.teachers),
        board_tokens: tokens(a.boards),
        board_ids: ids(a.boards),
        lessons: ids(a.teachers),
    }
}

/// Starts the server measured on `dir`: a node of classcast, or the baseline.
async fn start_server(
    a: &Args,
    dir: &std::path::Path,
    s: &Seeded,
) -> (tokio::process::Child, String, u32) {
    if a.against == Against::Classcast {
        return start_node(a, dir).await;
    }
    let accounts = baseline::Accounts {
        teacher_tokens: &s.teacher_tokens,
        board_tokens: &s.board_tokens,
        board_ids: &s.board_ids,
        lessons: &s.lessons,
        slides: LESSON_SLIDES,
    };
    baseline::start(a.against, dir, &accounts).await
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn say_hello<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>, hello: Value)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
}

async fn connect(ws_url: &str, hello: Value) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("connect");
    say_hello(&mut socket, hello).await;
    socket
}

/// A board's connection, and the kernel's receive time of what it read last.
async fn connect_board(
    addr: &str,
    ws_url: &str,
    hello: Value,
) -> (tokio_tungstenite::WebSocketStream<Stamped>, Arc<AtomicU64>) {
    let stream = Stamped::connect(addr).await.expect("connect");
    let received = stream.received_ns.clone();
    let (mut socket, _) = tokio_tungstenite::client_async(ws_url, stream)
        .await
        .expect("handshake");
    say_hello(&mut socket, hello).await;
    (socket, received)
}

/// A teacher's console: the sending half of its connection.
type Console = Arc<tokio::sync::Mutex<futures_util::stream::SplitSink<Socket, Message>>>;

async fn press(console: &Console, command: String) {
    console
        .lock()
        .await
        .send(Message::Text(command.into()))
        .await
        .unwrap();
}

/// Latencies in ms, at the board's socket and as read by the generator (see `report_both`).
type Latencies = Arc<std::sync::Mutex<Vec<(f64, f64)>>>;

/// Starts a node of the benchmark on `dir` (and the databases given); returns it, its base
/// URL and its pid.
async fn start_node(a: &Args, dir: &std::path::Path) -> (tokio::process::Child, String, u32) {
    let mut command = tokio::process::Command::new(&a.bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(
            a.database
                .iter()
                .flat_map(|url| ["--database", url.as_str()]),
        )
        // Every simulated school connects from 127.0.0.1; in a deployment they come from
        // many addresses, each far below the default share of a quarter of the budget.
        .env("CLASSCAST_MAX_CONNECTIONS_PER_ADDRESS", "1000000")
        .env("CLASSCAST_LOG", "warn");
    let (server, base) = server::spawn(command).await;
    let pid = server.id().unwrap();
    (server, base, pid)
}

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some(storm::CHILD_FLAG) {
        return storm::child().await;
    }
    let a = args();
    let temp = tempfile::tempdir().unwrap();
    let dir = a.data_dir.clone().unwrap_or_else(|| temp.path().to_owned());
    let started = Instant::now();
    let seeded = Arc::new(match a.against {
        Against::Classcast => seed(&dir, &a).await,
        _ => invent(&a),
    });
    println!(
        "seeded {} boards and {} teachers in {:.1} s",
        a.boards,
        a.teachers,
        started.elapsed().as_secs_f64()
    );

    let (mut server, base, pid) = start_server(&a, &dir, &seeded).await;
    // With --nodes 2, boards are served by a second node on the same databases: every
    // command crosses from the teacher's node to the board's.
    let board_dir = tempfile::tempdir().unwrap();
    let (_board_server, board_base) = match a.nodes {
        1 => (None, base.clone()),
        _ => {
            let (server, base, _) = start_node(&a, board_dir.path()).await;
            (Some(server), base)
        }
    };
    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));
    let board_ws_url = format!("{}/ws", board_base.replace("http://", "ws://"));
    if let Some(procs) = a.procs {
        let storm = storm::Storm {
            procs: procs.max(1),
            addr: board_base.trim_start_matches("http://"),
            ws_url: &board_ws_url,
            server_pid: pid,
            board_tokens: &seeded.board_tokens,
            teacher_token: &seeded.teacher_tokens[0],
            board: seeded.board_ids[0],
            lesson: seeded.lessons[0],
        };
        storm::run(storm, rss_kib).await;
        let _ = server.kill().await;
        return;
    }
    let rss_before = rss_kib(pid);
    let mut profiler = std::env::var("LIVE_BENCH_PERF")
        .ok()
        .map(|out| Profiler::start(pid, &out));

    // The 8:30 storm: every board connects at once; served = hello answered and state received.
    let t0 = Instant::now();
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..a.boards).map(|_| AtomicU64::new(0)).collect());
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..a.boards).map(|_| AtomicU64::new(0)).collect());
    let latencies = Latencies::default();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(a.boards);
    let addr = board_base.trim_start_matches("http://").to_owned();
    for b in 0..a.boards {
        let (addr, url, seeded, ready, sent_at, latencies, received) = (
            addr.clone(),
            board_ws_url.clone(),
            seeded.clone(),
            ready_tx.clone(),
            sent_at.clone(),
            latencies.clone(),
            received.clone(),
        );
        tokio::spawn(async move {
            let hello = json!({"type": "hello", "protocol": 1, "role": "board", "token": seeded.board_tokens[b], "version": 0});
            let (mut socket, arrived) = connect_board(&addr, &url, hello).await;
            let mut ready = Some(ready);
            let mut last = i64::MIN;
            while let Some(Ok(msg)) = socket.next().await {
                let Message::Text(text) = msg else { continue };
                if !text.starts_with("{\"type\":\"state\"") {
                    continue;
                }
                // Only the version is read: the generator shares the server's cores.
                let version = serde_json::from_str::<StateMsg>(&text)
                    .unwrap()
                    .state
                    .version;
                if version <= last {
                    continue;
                }
                last = version;
                if let Some(r) = ready.take() {
                    let _ = r.send(()).await;
                }
                received[b].fetch_add(1, Ordering::Relaxed);
                let t = sent_at[b].swap(0, Ordering::AcqRel);
                if t != 0 {
                    let read = wall_ns();
                    let at_socket = arrived.load(Ordering::Acquire);
                    assert!(at_socket >= t, "the kernel gave no receive timestamp");
                    let ms = |ns: u64| (ns - t) as f64 / 1e6;
                    latencies.lock().unwrap().push((ms(at_socket), ms(read)));
                }
            }
        });
    }
    drop(ready_tx);
    for _ in 0..a.boards {
        ready_rx.recv().await.expect("every board is served");
    }
    let storm = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the server settle before reading RSS
    let rss_idle = rss_kib(pid);
    println!(
        "storm: {} boards connected and served in {:.0} ms",
        a.boards,
        storm.as_secs_f64() * 1000.0
    );
    println!(
        "memory: server RSS {} KiB before, {} KiB with {} idle boards: {:.1} KiB per connection",
        rss_before,
        rss_idle,
        a.boards,
        (rss_idle.saturating_sub(rss_before)) as f64 / a.boards as f64
    );

    // Teachers connect, each following its boards, and present.
    let mut teachers = Vec::new();
    for t in 0..a.teachers {
        let boards: Vec<Value> = (t..a.boards)
            .step_by(a.teachers)
            .map(|b| json!({"board": seeded.board_ids[b], "version": 0}))
            .collect();
        let hello = json!({"type": "hello", "protocol": 1, "role": "teacher", "token": seeded.teacher_tokens[t], "boards": boards});
        let socket = connect(&ws_url, hello).await;
        let (sink, mut stream) = socket.split();
        tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        teachers.push(Arc::new(tokio::sync::Mutex::new(sink)));
    }
    let command = |board: usize, op: &str, args: Value| {
        json!({"type": "command", "id": Uuid::now_v7(), "board": seeded.board_ids[board], "op": op, "args": args}).to_string()
    };
    let expect_all = |target: u64| {
        let received = received.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while received.iter().any(|r| r.load(Ordering::Relaxed) < target)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    for b in 0..a.boards {
        let msg = command(
            b,
            "present",
            json!({"lesson": seeded.lessons[b % a.teachers]}),
        );
        press(&teachers[b % a.teachers], msg).await;
    }
    expect_all(2).await;

    // Spread: a steady total rate, one outstanding command per board, round robin; again
    // with `--during` running back to back, when given.
    let mut phases = vec![None];
    if let Some(during) = &a.during {
        let during = during
            .replace("{data}", dir.to_str().unwrap())
            .replace("{bin}", &a.bin);
        phases.push(Some(during));
    }
    for phase in phases {
        let label = match &phase {
            None => format!("spread ({} commands/s)", a.rate),
            Some(during) => format!("spread ({} commands/s) during `{during}`", a.rate),
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let runs = Arc::new(AtomicU64::new(0));
        let background = phase.map(|during| {
            let (stop, runs) = (stop.clone(), runs.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let status = tokio::process::Command::new("sh")
                        .args(["-c", &during])
                        .stdout(std::process::Stdio::null())
                        .status()
                        .await
                        .unwrap();
                    assert!(status.success(), "`{during}` failed");
                    runs.fetch_add(1, Ordering::Relaxed);
                }
            })
        });
        let interval = Duration::from_micros(1_000_000 / a.rate.max(1));
        let mut tick = tokio::time::interval(interval);
        let total = a.rate * a.seconds;
        for i in 0..total as usize {
            tick.tick().await;
            let b = i % a.boards;
            if sent_at[b].load(Ordering::Acquire) != 0 {
                continue;
            }
            let op = if (i / a.boards).is_multiple_of(2) {
                "next"
            } else {
                "prev"
            };
            let msg = command(b, op, json!({}));
            sent_at[b].store(wall_ns(), Ordering::Release);
            press(&teachers[b % a.teachers], msg).await;
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(background) = background {
            background.await.unwrap();
            println!("{label}: it ran {} times", runs.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let spread = std::mem::take(&mut *latencies.lock().unwrap());
        // The first second shows warm-up (caches, the database's first pages); report it apart.
        let warm = (a.rate as usize).min(spread.len());
        report_both(&format!("{label}, first second"), spread[..warm].to_vec());
        report_both(&format!("{label}, after it"), spread[warm..].to_vec());
    }

    // Burst: every teacher presses at the same instant (one board each).
    if let Some(p) = &mut profiler {
        p.control("enable");
    }
    let cpu_before = (cpu_ms(&pid.to_string()), cpu_ms("self"));
    let start = Arc::new(tokio::sync::Barrier::new(a.teachers));
    let mut presses = Vec::new();
    for t in 0..a.teachers {
        let (start, sink, sent_at) = (start.clone(), teachers[t].clone(), sent_at.clone());
        let msg = command(t, "goto", json!({"slide": 10}));
        presses.push(tokio::spawn(async move {
            start.wait().await;
            sent_at[t].store(wall_ns(), Ordering::Release);
            press(&sink, msg).await;
        }));
    }
    for p in presses {
        p.await.unwrap();
    }
    // CPU is read as soon as every board has its state, so it covers the burst and little
    // else (the counters tick every 10 ms).
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.lock().unwrap().len() < a.teachers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cpu = (
        cpu_ms(&pid.to_string()) - cpu_before.0,
        cpu_ms("self") - cpu_before.1,
    );
    if let Some(p) = &mut profiler {
        p.control("disable");
    }
    report_both(
        &format!("burst ({} teachers at once)", a.teachers),
        std::mem::take(&mut *latencies.lock().unwrap()),
    );
    println!(
        "burst CPU: server {} ms, load generator {} ms",
        cpu.0, cpu.1
    );
    println!("server RSS at the end: {} KiB", rss_kib(pid));
    let _ = server.kill().await;
    if let Some(p) = profiler {
        p.finish();
    }
}

/// `perf record` on the server, sampling only while the burst runs (set `LIVE_BENCH_PERF` to
/// the output file and optionally `LIVE_BENCH_PERF_EVENT`, default `cpu-clock`; read it with
/// `perf report -i FILE`).
struct Profiler {
    perf: std::process::Child,
    ctl: std::fs::File,
    ack: std::io::BufReader<std::fs::File>,
}

impl Profiler {
    fn start(pid: u32, out: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("live-bench-perf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ctl, ack) = (dir.join("ctl"), dir.join("ack"));
        for fifo in [&ctl, &ack] {
            let made = std::process::Command::new("mkfifo").arg(fifo).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
        }
        let event = std::env::var("LIVE_BENCH_PERF_EVENT").unwrap_or("cpu-clock".into());
        let perf = std::process::Command::new("perf")
            .args(["record", "-e", &event, "-g", "-D", "-1", "-o", out, "-p"])
            .arg(pid.to_string())
            .arg(format!(
                "--control=fifo:{},{}",
                ctl.display(),
                ack.display()
            ))
            .spawn()
            .expect("perf is installed");
        let ctl = std::fs::OpenOptions::new().write(true).open(&ctl).unwrap();
        let ack = std::io::BufReader::new(std::fs::File::open(&ack).unwrap());
        Self { perf, ctl, ack }
    }

    /// Sends `enable` or `disable` and waits for perf to confirm it.
    fn control(&mut self, command: &str) {
        use std::io::{BufRead, Write};
        writeln!(self.ctl, "{command}").unwrap();
        let mut answer = String::new();
        self.ack.read_line(&mut answer).unwrap();
    }

    fn finish(mut self) {
        let _ = self.perf.wait();
    }
}
