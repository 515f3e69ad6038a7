//! The floor under `live_bench`'s burst figure (not a test): the same connection pattern with
//! none of classcast in it. A child process relays over plain TCP with newline framing: each
//! line a "teacher" sends is answered to that teacher and written to its "board", one read and
//! two writes, no WebSocket, JSON, database or shared state beyond a map of sockets. The
//! parent connects the same numbers of teachers and boards as `live_bench` and has every
//! teacher send at the same instant.
//!
//! Run: `cargo run --release --example relay_floor -- [--pairs 2000] [--bytes 600]`.
//! Whatever this reports on a machine is what no server can beat there with the load
//! generator on the same cores.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

#[path = "support/mod.rs"]
mod support;
use support::stamped::{wall_ns, Stamped};
use support::{cpu_ms, report_both};

type Boards = Arc<Mutex<HashMap<u32, Arc<tokio::sync::Mutex<OwnedWriteHalf>>>>>;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut pairs, mut bytes, mut relay) = (2000usize, 600usize, false);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--pairs" => pairs = args.next().and_then(|v| v.parse().ok()).expect("--pairs N"),
            "--bytes" => bytes = args.next().and_then(|v| v.parse().ok()).expect("--bytes N"),
            "--relay" => relay = true,
            other => panic!("unknown flag {other}"),
        }
    }
    if relay {
        serve().await
    } else {
        generate(pairs, bytes).await
    }
}

/// The relay: first line "board N" or "teacher N"; a teacher's every later line goes back to
/// it prefixed with "ack " and, unchanged, to board N.
async fn serve() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    let boards: Boards = Arc::default();
    loop {
        let (socket, _) = listener.accept().await.unwrap();
        let boards = boards.clone();
        tokio::spawn(async move {
            let (read, write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let Ok(Some(hello)) = lines.next_line().await else {
                return;
            };
            let Some((role, n)) = hello.split_once(' ') else {
                return;
            };
            let n: u32 = n.parse().unwrap();
            if role == "board" {
                boards
                    .lock()
                    .unwrap()
                    .insert(n, Arc::new(tokio::sync::Mutex::new(write)));
                while let Ok(Some(_)) = lines.next_line().await {}
                return;
            }
            let mut teacher = write;
            while let Ok(Some(line)) = lines.next_line().await {
                let board = boards.lock().unwrap().get(&n).cloned();
                let out = format!("ack {line}\n");
                if teacher.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
                if let Some(board) = board {
                    let _ = board.lock().await.write_all(&out.as_bytes()[4..]).await;
                }
            }
        });
    }
}

/// Says who this connection is to the relay.
async fn hello(socket: &mut (impl AsyncWriteExt + Unpin), who: &str) {
    socket
        .write_all(format!("{who}\n").as_bytes())
        .await
        .unwrap();
}

async fn generate(pairs: usize, bytes: usize) {
    let mut relay = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("--relay")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(relay.stdout.take().unwrap()).lines();
    let addr = out.next_line().await.unwrap().unwrap();

    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..pairs).map(|_| AtomicU64::new(0)).collect());
    let latencies = Arc::new(Mutex::new(Vec::new()));
    for b in 0..pairs {
        let mut socket = Stamped::connect(&addr).await.unwrap();
        hello(&mut socket, &format!("board {b}")).await;
        let arrived = socket.received_ns.clone();
        let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(socket).lines();
            while let Ok(Some(_)) = lines.next_line().await {
                let t = sent_at[b].swap(0, Ordering::AcqRel);
                let (read, at_socket) = (wall_ns(), arrived.load(Ordering::Acquire));
                assert!(at_socket >= t, "the kernel gave no receive timestamp");
                let ms = |ns: u64| (ns - t) as f64 / 1e6;
                latencies.lock().unwrap().push((ms(at_socket), ms(read)));
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let relay_pid = relay.id().unwrap().to_string();
    let barrier = Arc::new(tokio::sync::Barrier::new(pairs));
    let payload = "x".repeat(bytes);
    let mut presses = Vec::new();
    for t in 0..pairs {
        let mut socket = TcpStream::connect(&addr).await.unwrap();
        hello(&mut socket, &format!("teacher {t}")).await;
        let (barrier, sent_at, line) = (barrier.clone(), sent_at.clone(), format!("{payload}\n"));
        presses.push(tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            tokio::spawn(async move {
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(_)) = lines.next_line().await {}
            });
            barrier.wait().await;
            sent_at[t].store(wall_ns(), Ordering::Release);
            write.write_all(line.as_bytes()).await.unwrap();
            write
        }));
    }
    let cpu_before = (cpu_ms(&relay_pid), cpu_ms("self"));
    let mut writers = Vec::new();
    for p in presses {
        writers.push(p.await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.lock().unwrap().len() < pairs && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cpu = (
        cpu_ms(&relay_pid) - cpu_before.0,
        cpu_ms("self") - cpu_before.1,
    );
    report_both(
        &format!("relay floor, {pairs} teachers at once ({bytes}-byte messages)"),
        std::mem::take(&mut *latencies.lock().unwrap()),
    );
    println!("burst CPU: relay {} ms, load generator {} ms", cpu.0, cpu.1);
    let _ = relay.kill().await;
}
