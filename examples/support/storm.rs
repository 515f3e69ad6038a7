//! `live_bench --procs N`: the 8:30 storm from N load-generator processes, so that the boards
//! are not bounded by what one process may open (20,000 files here), with a teacher's
//! command latency measured while the storm runs against the same command's when idle.
//!
//! The parent (which seeded the store and started the server) starts N copies of its own
//! executable with `--storm-child`; each reads its share of board tokens on stdin, prints
//! `loaded`, connects all of its boards at once when it reads `go`, and prints
//! `served <boards> <ms> <failed>` once every board has had its `welcome` and first `state`.
//! It then holds its sockets until its stdin closes. Meanwhile the parent's teacher sends one
//! command at a time (each after the previous one's `ack`) and times each to its `ack`.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::support::cpu_ms;
use crate::support::stats::report;

/// The flag that makes `live_bench` a storm child.
pub const CHILD_FLAG: &str = "--storm-child";

/// How long a board's connection may take, retries included, before it counts as failed.
const BOARD_WITHIN: Duration = Duration::from_secs(120);

/// The gap between a teacher's commands, idle and during the storm (within its budget of
/// 20 messages a second).
const COMMAND_GAP: Duration = Duration::from_millis(100);

/// Commands timed before the storm: the idle latency.
const IDLE_COMMANDS: usize = 50;

/// What the parent knows of the seeded school and the running server.
pub struct Storm<'a> {
    pub procs: usize,
    /// `host:port` of the node serving the boards, and its WebSocket URL.
    pub addr: &'a str,
    pub ws_url: &'a str,
    pub server_pid: u32,
    pub board_tokens: &'a [String],
    /// The teacher who commands during the storm, the board it steers (one of its own) and
    /// the lesson it presents there.
    pub teacher_token: &'a str,
    pub board: Uuid,
    pub lesson: Uuid,
}

/// Runs the storm; prints the storm's time, memory per board and the command latencies.
pub async fn run(s: Storm<'_>, rss_kib: impl Fn(u32) -> u64) {
    let mut teacher = Teacher::connect(s.ws_url, s.teacher_token, s.board).await;
    teacher
        .command(s.board, "present", json!({ "lesson": s.lesson }))
        .await;

    // Children first, each with its share of tokens loaded, so that `go` starts them together.
    let share = s.board_tokens.len().div_ceil(s.procs);
    let mut children = Vec::new();
    for tokens in s.board_tokens.chunks(share.max(1)) {
        children.push(Generator::start(s.addr, s.ws_url, tokens).await);
    }
    println!(
        "storm: {} boards over {} generator processes ({} each at most)",
        s.board_tokens.len(),
        children.len(),
        share
    );

    let idle = teacher.time_commands(s.board, IDLE_COMMANDS, None).await;
    let rss_before = rss_kib(s.server_pid);

    let cpu_before = cpu_ms(&s.server_pid.to_string());
    let t0 = Instant::now();
    for child in &mut children {
        child.say("go").await;
    }
    let (served, during) = {
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let timed = teacher.time_commands(s.board, usize::MAX, Some(done_rx));
        let served = async {
            let mut served = Vec::new();
            for child in &mut children {
                served.push(child.served().await);
            }
            let _ = done_tx.send(true);
            served
        };
        tokio::join!(served, timed)
    };
    let storm = t0.elapsed();
    let server_cpu = cpu_ms(&s.server_pid.to_string()) - cpu_before;
    let generators_cpu: u64 = children.iter().map(Generator::cpu_ms).sum();
    let boards: usize = served.iter().map(|s| s.boards).sum();
    let failed: usize = served.iter().map(|s| s.failed).sum();
    let slowest = served.iter().map(|s| s.ms).fold(0.0, f64::max);
    println!(
        "storm: {boards} boards served in {:.0} ms ({failed} failed; slowest generator {slowest:.0} ms after its go)",
        storm.as_secs_f64() * 1000.0
    );
    println!(
        "storm CPU: server {server_cpu} ms ({:.0} µs a board), generators {generators_cpu} ms",
        server_cpu as f64 * 1000.0 / boards.max(1) as f64
    );
    tokio::time::sleep(Duration::from_secs(2)).await; // let the server settle before reading RSS
    let rss_idle = rss_kib(s.server_pid);
    println!(
        "memory: server RSS {rss_before} KiB before, {rss_idle} KiB with {boards} idle boards: {:.1} KiB per connection",
        rss_idle.saturating_sub(rss_before) as f64 / boards.max(1) as f64
    );
    let (idle_p50, idle_p99) = (percentile(&idle, 0.5), percentile(&idle, 0.99));
    let (storm_p50, storm_p99) = (percentile(&during, 0.5), percentile(&during, 0.99));
    report("teacher command to ack, idle", idle);
    report("teacher command to ack, during the storm", during);
    println!(
        "teacher command during the storm / idle: p50 {:.2}x, p99 {:.2}x",
        storm_p50 / idle_p50,
        storm_p99 / idle_p99
    );
    for child in children {
        child.stop().await;
    }
}

/// The p-th percentile of `ms`, as `stats::report` computes it.
fn percentile(ms: &[f64], p: f64) -> f64 {
    let mut sorted = ms.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n as f64 - 1.0) * p).round() as usize],
    }
}

/// A teacher's connection that sends one command at a time.
struct Teacher {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: bool,
}

impl Teacher {
    async fn connect(ws_url: &str, token: &str, board: Uuid) -> Self {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("the teacher connects");
        let hello = json!({"type": "hello", "protocol": 1, "role": "teacher", "token": token,
            "boards": [{"board": board, "version": 0}]});
        socket
            .send(Message::Text(hello.to_string().into()))
            .await
            .unwrap();
        Self { socket, next: true }
    }

    /// Sends a command and waits for its `ack`; returns the milliseconds it took.
    async fn command(&mut self, board: Uuid, op: &str, args: Value) -> f64 {
        let id = Uuid::now_v7();
        let command = json!({"type": "command", "id": id, "board": board, "op": op, "args": args});
        let sent = Instant::now();
        self.socket
            .send(Message::Text(command.to_string().into()))
            .await
            .unwrap();
        let id = id.to_string();
        while let Some(message) = self.socket.next().await {
            let Message::Text(text) = message.expect("the teacher's connection stays up") else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["id"] == id.as_str() {
                assert_eq!(message["type"], "ack", "the command was refused: {message}");
                return sent.elapsed().as_secs_f64() * 1000.0;
            }
        }
        panic!("the teacher's connection ended");
    }

    /// Times up to `count` commands (`next` and `prev` in turn), one every [`COMMAND_GAP`],
    /// until `until` turns true.
    async fn time_commands(
        &mut self,
        board: Uuid,
        count: usize,
        until: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Vec<f64> {
        let mut ms = Vec::new();
        let mut tick = tokio::time::interval(COMMAND_GAP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while ms.len() < count && !until.as_ref().is_some_and(|u| *u.borrow()) {
            tick.tick().await;
            let op = if self.next { "next" } else { "prev" };
            self.next = !self.next;
            ms.push(self.command(board, op, json!({})).await);
        }
        ms
    }
}

/// One generator process, seen from the parent.
struct Generator {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

/// What a generator reports once its boards are served.
struct Served {
    boards: usize,
    ms: f64,
    failed: usize,
}

impl Generator {
    async fn start(addr: &str, ws_url: &str, tokens: &[String]) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg(CHILD_FLAG)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the generator starts");
        let mut stdin = child.stdin.take().unwrap();
        let mut plan = format!("{addr}\n{ws_url}\n{}\n", tokens.len());
        for token in tokens {
            plan.push_str(token);
            plan.push('\n');
        }
        stdin.write_all(plan.as_bytes()).await.unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let loaded = stdout.next_line().await.unwrap();
        assert_eq!(
            loaded.as_deref(),
            Some("loaded"),
            "the generator loaded its boards"
        );
        Self {
            child,
            stdin,
            stdout,
        }
    }

    async fn say(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn served(&mut self) -> Served {
        let line = self.stdout.next_line().await.unwrap().expect("a report");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.first(), Some(&"served"), "{line}");
        Served {
            boards: fields[1].parse().unwrap(),
            ms: fields[2].parse().unwrap(),
            failed: fields[3].parse().unwrap(),
        }
    }

    /// The CPU time the generator has used.
    fn cpu_ms(&self) -> u64 {
        self.child.id().map_or(0, |pid| cpu_ms(&pid.to_string()))
    }

    /// Closes the generator's stdin, which ends it, and waits for it.
    async fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait().await;
    }
}

/// The generator's side: see the module's documentation.
pub async fn child() {
    // Read on a thread of its own: the plan, then `go`, then the end of stdin.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = line(&mut lines).await;
    let ws_url = line(&mut lines).await;
    let count: usize = line(&mut lines).await.parse().unwrap();
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        tokens.push(line(&mut lines).await);
    }
    println!("loaded");
    assert_eq!(line(&mut lines).await, "go");
    let t0 = Instant::now();
    let (served_tx, mut served_rx) = tokio::sync::mpsc::channel::<bool>(count.max(1));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for token in tokens {
        let (addr, ws_url, served, stop) = (
            addr.clone(),
            ws_url.clone(),
            served_tx.clone(),
            stop_rx.clone(),
        );
        tokio::spawn(async move { board(&addr, &ws_url, &token, served, stop).await });
    }
    drop(served_tx);
    let (mut boards, mut failed) = (0, 0);
    while let Some(ok) = served_rx.recv().await {
        match ok {
            true => boards += 1,
            false => failed += 1,
        }
        if boards + failed == count {
            break;
        }
    }
    println!(
        "served {boards} {:.1} {failed}",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    // Held until the parent closes stdin.
    while lines.recv().await.is_some() {}
    let _ = stop_tx.send(true);
}

/// The next line of the parent's plan.
async fn line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    lines.recv().await.expect("the plan")
}

/// One board: connects (again, if the connection fails, within [`BOARD_WITHIN`]), says
/// hello, reports once it has its first state, then reads what comes until `stop`.
async fn board(
    addr: &str,
    ws_url: &str,
    token: &str,
    served: tokio::sync::mpsc::Sender<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let deadline = Instant::now() + BOARD_WITHIN;
    // Small buffers: the generator holds thousands of these (tungstenite's default is 128 KiB).
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let hello =
        json!({"type": "hello", "protocol": 1, "role": "board", "token": token, "version": 0})
            .to_string();
    let mut socket = loop {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            let (mut socket, _) =
                tokio_tungstenite::client_async_with_config(ws_url, tcp, Some(config))
                    .await
                    .ok()?;
            socket
                .send(Message::Text(hello.clone().into()))
                .await
                .ok()?;
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message {
                    if text.starts_with("{\"type\":\"state\"") {
                        return Some(socket);
                    }
                }
            }
            None
        };
        match tokio::time::timeout_at(deadline.into(), attempt).await {
            Ok(Some(socket)) => break socket,
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => {
                let _ = served.send(false).await;
                return;
            }
        }
    };
    let _ = served.send(true).await;
    drop(served);
    loop {
        tokio::select! {
            message = socket.next() => if !matches!(message, Some(Ok(_))) { return },
            _ = stop.changed() => return,
        }
    }
}
