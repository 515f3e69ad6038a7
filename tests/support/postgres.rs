//! Throwaway PostgreSQL servers for the store suite and the cluster tests: `initdb` into a temporary directory, a
//! free loopback port, torn down when dropped. Debian's PostgreSQL 15 (and pglogical, for
//! the cluster tests) come from `scripts/test`. As root, the server runs as `postgres`,
//! since PostgreSQL refuses to run as root.

// Shared by the store and API test crates; each uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian installs PostgreSQL 15's programs (`initdb`, `pg_ctl`, `pg_dump`, …).
pub const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PgServer {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The server's command-line settings, to start it again as it was.
    options: String,
}

impl PgServer {
    /// A server set up as cluster mode needs it (pglogical loaded, logical WAL, commit
    /// timestamps, bounded slot WAL).
    pub fn start() -> PgServer {
        Self::start_with(&[])
    }

    /// As [`PgServer::start`], with these `name=value` settings besides (later ones win).
    pub fn start_with(settings: &[&str]) -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if running_as_root() {
            for path in [dir.path(), &data] {
                chown_to_postgres(path);
            }
        }
        let port = free_port();
        run(
            running_as_root(),
            &[
                &format!("{BIN}/initdb"),
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c shared_preload_libraries=pglogical -c wal_level=logical \
             -c track_commit_timestamp=on -c max_slot_wal_keep_size=1GB",
            dir.path().display()
        );
        if restricts_output_plugins() {
            options += " -c output_plugin_libraries=pgoutput,test_decoding,pglogical_output";
        }
        for setting in settings {
            options += &format!(" -c {setting}");
        }
        let server = PgServer { dir, port, options };
        server.start_again();
        server
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let data = self.data();
        let log = self.dir.path().join("log");
        run(
            running_as_root(),
            &[
                &format!("{BIN}/pg_ctl"),
                "-D",
                data.to_str().unwrap(),
                "-o",
                &self.options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server and starts it again with these `name=value` settings besides.
    pub fn restart_with(&mut self, settings: &[&str]) {
        self.stop_fast();
        for setting in settings {
            self.options += &format!(" -c {setting}");
        }
        self.start_again();
    }

    /// Stops the server at once, as a crash would (`-m immediate`).
    pub fn crash(&self) {
        self.stop_now("immediate");
    }

    /// Stops the server as an administrator would (`-m fast`: open sessions are told the
    /// server is shutting down, then it writes a checkpoint).
    pub fn stop_fast(&self) {
        self.stop_now("fast");
    }

    fn stop_now(&self, mode: &str) {
        let out = self.stop(mode).output().expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl stop -m <mode>`, waiting until the server is gone.
    fn stop(&self, mode: &str) -> Command {
        let data = self.data();
        let pg_ctl = format!("{BIN}/pg_ctl");
        let args = [pg_ctl.as_str(), "-D", data.to_str().unwrap_or_default()];
        command(
            running_as_root(),
            &[&args[..], &["-m", mode, "-w", "stop"]].concat(),
        )
    }

    /// A URL for `database` on this server (created by [`PgServer::create`]).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub async fn create(&self, database: &str) -> String {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .unwrap();
        self.url(database)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .stop("immediate")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether this PostgreSQL lets replication use only the output plugins its
/// `output_plugin_libraries` lists (15.19 and later), so pglogical's must be added.
pub fn restricts_output_plugins() -> bool {
    static KNOWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOWN.get_or_init(|| {
        let out = Command::new(format!("{BIN}/postgres"))
            .arg("--describe-config")
            .output()
            .expect("postgres runs (scripts/test installs it)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("output_plugin_libraries\t"))
    })
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {}", path.display());
}

fn command(as_root: bool, args: &[&str]) -> Command {
    let mut command = match as_root {
        true => {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).args(args);
            c
        }
        false => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    command.current_dir("/");
    command
}

fn run(as_root: bool, args: &[&str]) {
    let out = command(as_root, args)
        .output()
        .unwrap_or_else(|e| panic!("{} runs (scripts/test installs it): {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
