//! One harness for every API test: a real server on an ephemeral loopback port with a fresh
//! temporary data directory, and a client with typed helpers.

use std::future::IntoFuture;
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use classcast::config::{CommonArgs, CommonSettings, Config, ServeArgs};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts a server whose configuration `adjust` may change (as flags would).
pub async fn spawn_with(adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    // Teachers sign up and use their accounts at once; tests of approval say so.
    let common = CommonArgs {
        settings: CommonSettings {
            data_dir: Some(dir.path().to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut args = ServeArgs {
        registration: Some(classcast::config::Registration::Open),
        ..Default::default()
    };
    adjust(&mut args);
    let config = Config::resolve(&common, &args).expect("valid test configuration");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        classcast::server::serve(config, listener, async {
            let _ = stopped.into_future().await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base,
        client: reqwest::Client::new(),
        _dir: dir,
        stop: Some(stop),
        server: Some(server),
    }
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// A signed-in teacher.
#[derive(Clone)]
pub struct Teacher {
    pub token: String,
    pub email: String,
}

impl TestApp {
    /// The server's data directory, for `classcast` commands run beside it.
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// A count the server's own SQLite database answers (`SELECT COUNT(*) FROM …`).
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let url = format!(
            "sqlite://{}",
            self.data_dir().join("classcast.db").display()
        );
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }

    /// A client of a server that runs as its own process on `dir` (see [`Process`]).
    pub fn of_process(process: &Process, dir: TempDir) -> TestApp {
        TestApp {
            base: process.base.clone(),
            client: reqwest::Client::new(),
            _dir: dir,
            stop: None,
            server: None,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
    }

    /// A client whose connections come from `address` (any of 127.0.0.0/8), to play
    /// several machines.
    pub fn client_at(address: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(address.parse::<std::net::IpAddr>().expect("an address"))
            .build()
            .unwrap()
    }

    pub fn as_teacher(&self, method: Method, path: &str, teacher: &Teacher) -> RequestBuilder {
        self.request(method, path).bearer_auth(&teacher.token)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GETs `path` without a session, expecting a JSON answer.
    pub async fn public_json(&self, path: &str) -> Value {
        let res = self.request(Method::GET, path).send().await.unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap()
    }

    /// GETs `path` as `teacher`, expecting a JSON answer.
    pub async fn get_json(&self, path: &str, teacher: &Teacher) -> Value {
        let res = self
            .as_teacher(Method::GET, path, teacher)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap()
    }

    /// Registers from an address of its own: registrations are limited per address, and a
    /// test's teachers stand for people on different machines.
    pub async fn register(&self, email: &str) -> Teacher {
        let res = fresh_client()
            .post(format!("{}/api/auth/register", self.base))
            .json(&json!({"email": email, "name": "Test Teacher", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "register {email}");
        let body: Value = res.json().await.unwrap();
        Teacher {
            token: body["token"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
        }
    }

    /// Signs in again an account [`TestApp::register`] made.
    pub async fn login(&self, email: &str) -> Teacher {
        let res = fresh_client()
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "login {email}");
        let body: Value = res.json().await.unwrap();
        Teacher {
            token: body["token"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
        }
    }

    pub async fn create_lesson(&self, teacher: &Teacher, body: Value) -> Value {
        let res = self
            .as_teacher(Method::POST, "/api/lessons", teacher)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    pub async fn lesson_count(&self, teacher: &Teacher) -> usize {
        let page = self.get_json("/api/lessons?limit=100", teacher).await;
        page["items"].as_array().unwrap().len()
    }
}

/// The clock as the server reads it: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.expect("the clock is past 1970").as_millis() as i64
}

/// A client on a loopback address no other `fresh_client` has used (127.1.x.y).
pub fn fresh_client() -> reqwest::Client {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    TestApp::client_at(&format!("127.1.{}.{}", n / 250 % 250, n % 250 + 1))
}

/// Asserts the error envelope and returns its `error` object.
pub async fn expect_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for expected {code}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "errors are JSON"
    );
    let body: Value = res.json().await.unwrap();
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.len() > 10, "a message a person can act on: {body}");
    error
}

/// Asserts a refusal of the live fallback (`/api/live/*`): the protocol's `error` message,
/// the same as on the WebSocket, with the status its code implies. Returns the message.
pub async fn expect_refusal(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for expected {code}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (&body["type"], &body["code"]),
        (&json!("error"), &json!(code)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.len() > 10, "a message a person can act on: {body}");
    body
}

pub fn text_slide(title: &str) -> Value {
    json!({"kind": "text", "title": title, "body": "Some *Markdown*", "notes": "say hello"})
}

/// The real binary, for tests that need a process of their own.
pub const BIN: &str = env!("CARGO_BIN_EXE_classcast");

/// A `classcast serve` process; killed when dropped.
pub struct Process {
    child: Child,
    pub base: String,
    /// Held open: a closed pipe would make the server's next line of output fail.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Process {
    /// On an ephemeral port.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_on(data_dir, "127.0.0.1:0")
    }

    pub fn start_on(data_dir: &Path, listen: &str) -> Self {
        Self::launch(data_dir, listen, &[], &[])
    }

    /// On an ephemeral port, with these flags besides.
    pub fn start_with(data_dir: &Path, flags: &[&str]) -> Self {
        Self::launch(data_dir, "127.0.0.1:0", flags, &[])
    }

    /// On `listen`, with these flags besides.
    pub fn start_on_with(data_dir: &Path, listen: &str, flags: &[&str]) -> Self {
        Self::launch(data_dir, listen, flags, &[])
    }

    /// As [`Process::start_with`], with these environment variables besides.
    pub fn start_with_env(data_dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(data_dir, "127.0.0.1:0", flags, env)
    }

    /// As [`Process::start_with`], writing its log (standard error) to the file `log`.
    pub fn start_logging(data_dir: &Path, flags: &[&str], log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("a log file");
        Self::launch_with(data_dir, "127.0.0.1:0", flags, &[], log.into())
    }

    fn launch(data_dir: &Path, listen: &str, flags: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch_with(data_dir, listen, flags, env, Stdio::null())
    }

    fn launch_with(
        data_dir: &Path,
        listen: &str,
        flags: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Self {
        // Open registration: tests of approval add `--allowed-email-domain`, which implies it.
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen, "--registration", "open"])
            .args(flags)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("CLASSCAST_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the binary starts");
        // The first line names the bound address; it is printed once the port is listening.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Self {
            child,
            base,
            _stdout: stdout,
        }
    }
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Asks the server to stop, as systemd or Ctrl-C would (SIGTERM).
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills the server at once (`kill -9`): no shutdown, no goodbye to its clients.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process has ended.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Whether the process ended within `deadline`, polling its status.
    pub fn exited_within(&mut self, deadline: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with `args` on `data_dir`, `stdin` piped in (a password, say).
pub fn cli(data_dir: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
