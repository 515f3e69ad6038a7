//! Abuse benchmark (not a test): what attacks of the security review cost a normal user now.
//! Run it through `bench/abuse`, which builds the release binary. The server runs under an
//! open-file limit of 1,024 (soft and hard, `ABUSE_NOFILE` to change it), the limit under
//! which the review saw slow connections keep users out.
//!
//! For each attack it starts a fresh `classcast serve` on loopback, lets the attack run and
//! meanwhile measures `GET /api/me` for a signed-in teacher (p50/p99, and how many failed),
//! then the server's RSS. Attackers use addresses 127.0.0.2 and up; the teacher 127.0.0.1.
//! It also measures login timing for unknown and known addresses, and the disk each kind of
//! write takes, from which the worst-case growth per hour under the budgets follows.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[path = "support/server.rs"]
mod server;

struct Server {
    child: tokio::process::Child,
    base: String,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start(bin: &str, flags: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        // The server gets its own open-file limit, soft and hard (the generator needs more).
        let nofile = std::env::var("ABUSE_NOFILE").unwrap_or("1024".into());
        let mut command = tokio::process::Command::new("prlimit");
        command
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(flags)
            .env_remove("CLASSCAST_CONFIG")
            .stderr(Stdio::null());
        let (child, base) = server::spawn(command).await;
        let addr = base.trim_start_matches("http://").parse().unwrap();
        Server {
            child,
            base,
            addr,
            dir,
        }
    }

    fn rss_mib(&self) -> f64 {
        rss_mib(self.child.id().unwrap())
    }

    fn disk_bytes(&self) -> u64 {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

fn client_at(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The `n`-th attacker address: 127.0.<n / 250 + 2>.<n % 250 + 1>.
fn attacker(n: usize) -> String {
    format!(
        "127.{}.{}.{}",
        2 + n / 62_500,
        2 + n / 250 % 250,
        n % 250 + 1
    )
}

/// The resident memory of process `pid`, in MiB (NaN when it cannot be read).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

async fn register(base: &str, from: &str, email: &str) -> String {
    let res = client_at(from)
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "name": "Teacher", "password": "benchmark password"}))
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `GET /api/me` once every 20 ms for `seconds`: latencies (ms) and failures.
async fn probe(base: &str, token: &str, seconds: u64) -> (Vec<f64>, usize) {
    let client = client_at("127.0.0.1");
    let until = Instant::now() + Duration::from_secs(seconds);
    let (mut ms, mut failed) = (Vec::new(), 0);
    while Instant::now() < until {
        let t0 = Instant::now();
        match client
            .get(format!("{base}/api/me"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => ms.push(t0.elapsed().as_secs_f64() * 1e3),
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (ms, failed)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn row(attack: &str, (mut ms, failed): (Vec<f64>, usize), rss: f64, note: &str) {
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "| {attack} | {:.1} | {:.1} | {failed} of {} | {rss:.0} | {note} |",
        pct(&ms, 0.5),
        pct(&ms, 0.99),
        ms.len() + failed
    );
}

async fn connect_from(addr: SocketAddr, from: &str) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{from}:0").parse().ok()?).ok()?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
        .await
        .ok()?
        .ok()
}

/// `n` connections from many addresses that send a header byte now and then and never
/// finish, kept going (and reopened) while `running`.
fn slowloris(addr: SocketAddr, n: usize, body: bool, running: Arc<AtomicBool>) {
    for i in 0..n {
        let running = running.clone();
        let from = attacker(i / 100);
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let Some(mut tcp) = connect_from(addr, &from).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let start: &[u8] = if body {
                    b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                } else {
                    b"GET /api/me HTTP/1.1\r\nHost: x\r\n"
                };
                if tcp.write_all(start).await.is_err() {
                    continue;
                }
                while running.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if tcp.write_all(b"a").await.is_err() {
                        break;
                    }
                }
            }
        });
    }
}

/// A new board identity, claimed from `from`.
async fn claim_board(base: &str, from: &str) -> Value {
    client_at(from)
        .post(format!("{base}/api/boards/claim"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn teacher_on(server: &Server) -> String {
    register(&server.base, "127.0.0.1", "probe@school.org").await
}

#[tokio::main]
async fn main() {
    // The last `--bin` wins: bench/abuse passes the build's, then the caller's, if any.
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .iter()
        .rposition(|a| a == "--bin")
        .and_then(|at| args.get(at + 1).cloned())
        .unwrap_or("target/release/classcast".into());
    let seconds = 8;
    println!("| attack | /api/me p50 ms | p99 ms | failed | server RSS MiB | note |");
    println!("|---|---|---|---|---|---|");

    {
        let s = Server::start(&bin, &[]).await;
        let token = teacher_on(&s).await;
        row(
            "none",
            probe(&s.base, &token, seconds).await,
            s.rss_mib(),
            "",
        );
    }
    for (name, body) in [
        ("2,000 slow header connections", false),
        ("1,100 slow login bodies", true),
    ] {
        let s = Server::start(&bin, &[]).await;
        let token = teacher_on(&s).await;
        let running = Arc::new(AtomicBool::new(true));
        slowloris(
            s.addr,
            if body { 1100 } else { 2000 },
            body,
            running.clone(),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let probed = probe(&s.base, &token, seconds).await;
        running.store(false, Ordering::Relaxed);
        row(name, probed, s.rss_mib(), "from 20 or 11 addresses");
    }
    {
        let s = Server::start(&bin, &[]).await;
        let token = teacher_on(&s).await;
        let running = Arc::new(AtomicBool::new(true));
        for i in 0..8 {
            let (base, running) = (s.base.clone(), running.clone());
            tokio::spawn(async move {
                let client = client_at(&attacker(i));
                while running.load(Ordering::Relaxed) {
                    let _ = client
                        .post(format!("{base}/api/auth/login"))
                        .json(&json!({"email": "probe@school.org", "password": "wrong guess"}))
                        .send()
                        .await;
                }
            });
        }
        let probed = probe(&s.base, &token, seconds).await;
        running.store(false, Ordering::Relaxed);
        row("wrong passwords, 8 loops", probed, s.rss_mib(), "");
    }
    {
        let s = Server::start(&bin, &[]).await;
        let token = teacher_on(&s).await;
        let before = s.rss_mib();
        let storm = futures_util::future::join_all((0..850).map(|i| {
            let base = s.base.clone();
            async move { register(&base, &attacker(i / 10), &format!("r{i}@school.org")).await }
        }));
        let (_, probed) = tokio::join!(storm, probe(&s.base, &token, seconds));
        let note = format!("RSS before {before:.0} MiB; 850 registrations from 85 addresses");
        row("registration storm", probed, s.rss_mib(), &note);
    }
    {
        let s = Server::start(&bin, &[]).await;
        let token = teacher_on(&s).await;
        let claim = claim_board(&s.base, "127.0.0.9").await;
        let board_token = claim["board_token"].as_str().unwrap().to_owned();
        let running = Arc::new(AtomicBool::new(true));
        let url = format!("{}/ws", s.base.replace("http://", "ws://"));
        let mut held = 0;
        let mut sockets = Vec::new();
        for i in 0..2000 {
            let Some(tcp) = connect_from(s.addr, &attacker(i / 100)).await else {
                continue;
            };
            let Ok((mut ws, _)) = tokio_tungstenite::client_async(url.as_str(), tcp).await else {
                continue;
            };
            let hello = json!({"type": "hello", "protocol": 1, "role": "board", "token": board_token, "version": 0});
            let _ = ws.send(Message::Text(hello.to_string().into())).await;
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                if t.contains("welcome") {
                    held += 1;
                }
            }
            sockets.push(ws);
        }
        let spam = {
            let (base, running, token) = (s.base.clone(), running.clone(), board_token.clone());
            tokio::spawn(async move {
                let client = client_at("127.0.0.9");
                while running.load(Ordering::Relaxed) {
                    let _ = client
                        .post(format!("{base}/api/boards/code"))
                        .bearer_auth(&token)
                        .send()
                        .await;
                }
            })
        };
        let probed = probe(&s.base, &token, seconds).await;
        running.store(false, Ordering::Relaxed);
        let _ = spam.await;
        row(
            "2,000 connections on one board token + code requests",
            probed,
            s.rss_mib(),
            &format!("{held} of 2,000 connections accepted as the board"),
        );
    }

    {
        // Answered keep-alive connections holding every place: 13 addresses × 32 (an
        // address's share of 400), each answered once and then idle, as a client sending
        // one cheap request every 15 s would keep them.
        let s = Server::start(&bin, &["--max-connections", "400"]).await;
        let token = teacher_on(&s).await;
        let mut held = Vec::new();
        for i in 0..13 * 32 {
            let Some(mut tcp) = connect_from(s.addr, &attacker(i / 32)).await else {
                continue;
            };
            if tcp
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .is_err()
            {
                continue;
            }
            let mut answer = [0u8; 512];
            if let Ok(Ok(n)) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::io::AsyncReadExt::read(&mut tcp, &mut answer),
            )
            .await
            {
                if n > 0 {
                    held.push(tcp);
                }
            }
        }
        let answered = held.len();
        // Between their requests (every 15 s in the review's probe) they are idle; a
        // connection idle for 2 s gives way.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let probed = probe(&s.base, &token, seconds).await;
        row(
            "keep-alive connections answered and held idle",
            probed,
            s.rss_mib(),
            &format!("{answered} of 416 answered and held, --max-connections 400"),
        );
    }
    lesson_files(&bin).await;
    previews(&bin).await;

    // Login timing: an unknown address against a wrong password for a real one.
    {
        let s = Server::start(&bin, &[]).await;
        teacher_on(&s).await;
        let mut times = [Vec::new(), Vec::new()];
        for i in 0..40 {
            for (k, email) in ["probe@school.org", "nobody@school.org"].iter().enumerate() {
                let client = client_at(&attacker(i * 2 + k));
                let t0 = Instant::now();
                let _ = client
                    .post(format!("{}/api/auth/login", s.base))
                    .json(&json!({"email": email, "password": "wrong guess"}))
                    .send()
                    .await;
                times[k].push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        for t in &mut times {
            t.sort_by(|a, b| a.total_cmp(b));
        }
        println!(
            "\nlogin with a wrong password: known address p50 {:.1} ms (range {:.1}–{:.1}), unknown address p50 {:.1} ms (range {:.1}–{:.1})",
            pct(&times[0], 0.5), times[0][0], times[0][39], pct(&times[1], 0.5), times[1][0], times[1][39]
        );
    }

    disk(&bin).await;
}

/// A lesson file of `entries` pictures of `each` bytes (mostly zeros, so the file is small),
/// whose manifest says each is `claimed` bytes.
fn lesson_file(entries: usize, each: usize, claimed: Option<usize>) -> Vec<u8> {
    use sha2::Digest;
    use std::io::Write;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let (mut slides, mut media, mut files) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..entries {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        bytes.extend_from_slice(&(n as u64).to_be_bytes());
        bytes.resize(each, 0);
        let id = hex::encode(sha2::Sha256::digest(&bytes));
        slides.push(json!({"kind": "image", "media": id}));
        media.push(json!({"id": id, "type": "image/png", "size": claimed.unwrap_or(each)}));
        files.push((format!("media/{id}.png"), bytes));
    }
    let manifest = json!({"format": "classcast-lesson", "version": 1, "title": "Bench",
        "slides": slides, "media": media});
    zip.start_file("lesson.json", options).unwrap();
    zip.write_all(manifest.to_string().as_bytes()).unwrap();
    for (name, bytes) in files {
        zip.start_file(name, options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Imports `file` while watching the server's `uploads/`: the answer, the most bytes it
/// held there at once, and how long it took.
async fn import_watching(s: &Server, token: &str, file: Vec<u8>) -> (u16, u64, f64) {
    let uploads = s.dir.path().join("uploads");
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let running = running.clone();
        tokio::spawn(async move {
            let mut most = 0u64;
            while running.load(Ordering::Relaxed) {
                let now: u64 = std::fs::read_dir(&uploads)
                    .map(|d| {
                        d.filter_map(|e| e.ok()?.metadata().ok())
                            .map(|m| m.len())
                            .sum()
                    })
                    .unwrap_or(0);
                most = most.max(now);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            most
        })
    };
    let t0 = Instant::now();
    let status = client_at("127.0.0.1")
        .post(format!("{}/api/lessons/import", s.base))
        .bearer_auth(token)
        .header("content-type", "application/zip")
        .body(file)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    let took = t0.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    (status, watcher.await.unwrap(), took)
}

/// Samples the server's RSS every 5 ms until `running` is cleared; the task answers the peak.
fn peak_rss(s: &Server) -> (Arc<AtomicBool>, tokio::task::JoinHandle<f64>) {
    let running = Arc::new(AtomicBool::new(true));
    let (flag, pid) = (running.clone(), s.child.id().unwrap());
    let peak = tokio::spawn(async move {
        let mut most = 0f64;
        while flag.load(Ordering::Relaxed) {
            // f64::max ignores the NaN of a process that has gone.
            most = most.max(rss_mib(pid));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        most
    });
    (running, peak)
}

/// A WebP (lossless, one colour: a few KiB) of `side` × `side` pixels with alpha.
fn webp(side: u32, shade: u8) -> Vec<u8> {
    let picture = image::RgbaImage::from_pixel(side, side, image::Rgba([shade, 90, 200, 128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut bytes, image::ImageFormat::WebP)
        .unwrap();
    bytes.into_inner()
}

async fn upload(s: &Server, token: &str, bytes: Vec<u8>) -> (u16, f64) {
    let t0 = Instant::now();
    let status = client_at("127.0.0.1")
        .post(format!("{}/api/media", s.base))
        .bearer_auth(token)
        .header("content-type", "image/webp")
        .body(bytes)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, t0.elapsed().as_secs_f64())
}

/// What previews of hostile pictures cost: the server's memory while one is decoded, and
/// another teacher's upload while one teacher uploads many.
async fn previews(bin: &str) {
    let s = Server::start(bin, &["--registration", "open"]).await;
    let token = teacher_on(&s).await;
    println!();
    for (side, what) in [
        (8192, "past the bound: not decoded"),
        (4600, "the largest WebP with alpha decoded"),
    ] {
        let file = webp(side, 1);
        let size = file.len();
        let before = s.rss_mib();
        let (running, peak) = peak_rss(&s);
        let (status, took) = upload(&s, &token, file).await;
        running.store(false, Ordering::Relaxed);
        println!(
            "WebP of {side}×{side} with alpha, {:.0} KiB ({what}): answered {status} in {took:.2} s, \
             server RSS {before:.0} MiB before, peak {:.0} MiB (bound 256 MiB for the decoding; \
             before: a 2 KiB WebP peaked at 474 MiB)",
            size as f64 / 1024.0,
            peak.await.unwrap()
        );
    }
    // 20 pictures at once from one teacher, then one from another.
    let other = register(&s.base, "127.0.0.1", "other@school.org").await;
    let busy =
        futures_util::future::join_all((2..22).map(|shade| upload(&s, &token, webp(3000, shade))));
    let late = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        upload(&s, &other, webp(3000, 250)).await
    };
    let (busy, (status, took)) = tokio::join!(busy, late);
    let slowest = busy.iter().map(|(_, t)| *t).fold(0f64, f64::max);
    println!(
        "20 WebPs of 3000×3000 at once from one teacher (the last answered after {slowest:.2} s), \
         then one from another teacher: answered {status} in {took:.2} s \
         (before: 50 at once delayed another teacher's upload to 17.6 s)"
    );
}

/// What hostile lesson files cost: disk while one is checked, memory while 8 are.
async fn lesson_files(bin: &str) {
    let s = Server::start(bin, &[]).await;
    let token = teacher_on(&s).await;
    // 11 pictures of 200 MiB (the limit per file) in a file of a few MiB: 2.2 GiB, past the
    // default 2 GiB quota. Said honestly, then with each claimed to be 5 KB.
    for (what, claimed) in [
        ("sizes said honestly", None),
        ("sizes claimed 5 KB", Some(5_000)),
    ] {
        let file = lesson_file(11, 200 << 20, claimed);
        let size = file.len();
        let (status, most, took) = import_watching(&s, &token, file).await;
        println!(
            "\nlesson file of {:.1} MiB unpacking to 2.2 GiB ({what}): answered {status} in {took:.2} s, \
             at most {:.1} MiB in uploads/ meanwhile (before: 2.39 GB, answered 403)",
            size as f64 / 1048576.0,
            most as f64 / 1048576.0
        );
    }
    // A manifest of 600,000 slides (7 MiB unpacked), 8 imports at once.
    let slides = vec![r#"{"kind":""}"#; 600_000].join(",");
    let manifest = format!(
        r#"{{"format":"classcast-lesson","version":1,"title":"Huge","media":[],"slides":[{slides}]}}"#
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("lesson.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, manifest.as_bytes()).unwrap();
    let file = zip.finish().unwrap().into_inner();
    let before = s.rss_mib();
    let (running, peak) = peak_rss(&s);
    let answers = futures_util::future::join_all((0..8).map(|_| {
        let (base, token, file) = (s.base.clone(), token.clone(), file.clone());
        async move {
            client_at("127.0.0.1")
                .post(format!("{base}/api/lessons/import"))
                .bearer_auth(token)
                .header("content-type", "application/zip")
                .body(file)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        }
    }))
    .await;
    running.store(false, Ordering::Relaxed);
    println!(
        "8 lesson files of {:.0} KiB at once, each a manifest of 600,000 slides: answered {answers:?}, \
         server RSS {before:.0} MiB before, peak {:.0} MiB, {:.0} MiB after \
         (before: 2 million slides took 745 MiB each; 8 peaked at 4,016 MiB and held 526 MiB)",
        file.len() as f64 / 1024.0,
        peak.await.unwrap(),
        s.rss_mib()
    );
}

/// Bytes each budgeted write takes on disk, and the worst case per hour that follows.
async fn disk(bin: &str) {
    let s = Server::start(bin, &[]).await;
    let token = teacher_on(&s).await;
    let client = client_at("127.0.0.1");
    let claim = claim_board(&s.base, "127.0.0.1").await;
    let board = claim["board_id"].as_str().unwrap().to_owned();
    client
        .post(format!("{}/api/boards/pair", s.base))
        .bearer_auth(&token)
        .json(&json!({"code": claim["code"], "name": "Room"}))
        .send()
        .await
        .unwrap();
    // The largest slide a lesson may have: 20,000 characters rendering to half a megabyte.
    let body = format!("{}deep", ">".repeat(19_000));
    let lesson: Value = client
        .post(format!("{}/api/lessons", s.base))
        .bearer_auth(&token)
        .json(
            &json!({"title": "Huge", "slides": [{"kind": "text", "title": "Deep", "body": body}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", s.base.replace("http://", "ws://")))
            .await
            .unwrap();
    let hello =
        json!({"type": "hello", "protocol": 1, "role": "teacher", "token": token, "boards": []});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    let send = |op: &str, args: Value| {
        let msg = json!({"type": "command", "id": uuid::Uuid::now_v7(), "board": board, "op": op, "args": args});
        Message::Text(msg.to_string().into())
    };
    ws.send(send("present", json!({"lesson": lesson["id"]})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // a checkpoint settles the WAL
    let before = s.disk_bytes();
    let mut acked = 0usize;
    for i in 0..400 {
        ws.send(send("blank", json!({"on": i % 2 == 0})))
            .await
            .unwrap();
        // At the message budget: 20 a second.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(1), ws.next()).await
        {
            acked += t.contains("\"ack\"") as usize;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Ok(Some(Ok(Message::Text(t)))) =
        tokio::time::timeout(Duration::from_millis(50), ws.next()).await
    {
        acked += t.contains("\"ack\"") as usize;
    }
    let per_state = (s.disk_bytes() - before) as f64 / acked.max(1) as f64;
    let states_per_hour = 3_600.0 + 3_600.0;
    println!(
        "\nboard states: {acked} acked, {per_state:.0} bytes each on disk (with a 600 KB slide); \
         worst case per teacher account: {states_per_hour:.0} states in the first hour = {:.1} MiB, \
         then 3,600 an hour = {:.1} MiB an hour, kept 24 h",
        states_per_hour * per_state / 1048576.0,
        3600.0 * per_state / 1048576.0
    );
    println!(
        "lesson revisions: at most 50 MiB at once, then 20 MiB an hour per teacher account, \
         and never above lesson_storage_mib (256 MiB) in total"
    );
    println!(
        "pairing codes: at most 125 in the first hour per board token, 750 per address, \
         purged an hour after they expire"
    );
}
