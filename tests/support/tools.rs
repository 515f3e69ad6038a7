//! What some tests need besides Rust: PostgreSQL 15 with pglogical, Chromium and its driver,
//! axe-core, strace, libfaketime, openssl, LibreOffice. `scripts/test` (the full lane) installs them all
//! and sets `FULL_LANE`, and there a missing tool fails the test that needs it.
//! Elsewhere (plain `cargo test`, the fast lane) such a test is skipped, and says so on
//! standard error, past the test harness's capture, with the tools it lacks.

// Shared by the store and API test crates; each uses a part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

#[derive(Clone, Copy, Debug)]
pub enum Tool {
    /// Debian's PostgreSQL 15 server programs and pglogical.
    Postgres,
    /// `/usr/bin/chromium` and `chromedriver`.
    Chromium,
    /// axe-core, fetched by `scripts/test` into `target/axe/`.
    Axe,
    Strace,
    Faketime,
    Openssl,
    /// LibreOffice's `soffice` (Debian's `libreoffice-impress-nogui`).
    Soffice,
}

impl Tool {
    fn present(self) -> bool {
        match self {
            Tool::Postgres => {
                Path::new("/usr/lib/postgresql/15/bin/initdb").exists()
                    && Path::new("/usr/lib/postgresql/15/lib/pglogical.so").exists()
            }
            Tool::Chromium => Path::new("/usr/bin/chromium").exists() && on_path("chromedriver"),
            Tool::Axe => Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/axe/axe.min.js"
            ))
            .exists(),
            Tool::Strace => on_path("strace"),
            Tool::Faketime => {
                Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1").exists()
            }
            Tool::Openssl => on_path("openssl"),
            Tool::Soffice => on_path("soffice"),
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Whether the running test must be skipped for want of `tools`: it then says so. In the full
/// lane a missing tool fails the test instead.
pub fn missing(tools: &[Tool]) -> bool {
    let absent: Vec<Tool> = tools.iter().copied().filter(|t| !t.present()).collect();
    if absent.is_empty() {
        return false;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if std::env::var_os("FULL_LANE").is_some() {
        panic!("{test} needs {absent:?}, which scripts/test installs");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {absent:?} (scripts/test installs it)"
    );
    true
}
