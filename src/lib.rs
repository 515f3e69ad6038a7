//! classcast: a teacher steers a classroom display from a laptop, tablet or phone.
//!
//! # Layout
//! - [`addresses`]: where teachers reach this server (`public_url`, network addresses).
//! - [`cli`]: the command line (`serve`, `migrate`, `user`) and its glue.
//! - [`config`]: defaults < file < `CLASSCAST_*` environment < flags.
//! - [`server`]: builds the state and serves the router; the entry point tests share.
//! - [`http`]: routes, extractors and the one error type; thin handlers.
//! - [`live`]: boards, pairing, commands, and what a live connection may do (its WebSocket and
//!   SSE transports are in `http`).
//! - [`auth`]: accounts, sessions, password hashing and login rate limits.
//! - [`quota`]: what each teacher may store of lessons, over time and in total.
//! - [`media`]: uploaded pictures and videos: checks, chunked storage, ranges.
//! - [`backup`]: backups of a whole school, checked, and restored into either engine.
//! - [`lesson_file`]: a lesson and its media as one zip, written and checked before import.
//! - [`pdf_import`], [`office_import`]: slides from a PDF, and from PowerPoint or OpenDocument
//!   through LibreOffice, as a new lesson.
//! - [`store`]: the storage trait, written once over an SQLite and a PostgreSQL backend
//!   (insert-only rows), and the replication `classcast cluster` sets up.
//! - [`budget`]: rate-limit budgets every service shares (knows no service).
//! - [`cache`]: a bounded in-memory cache with tickets against racing changes (knows no
//!   service).
//! - [`bus`]: events between the nodes of a cluster (PostgreSQL `NOTIFY`).
//! - [`domain`]: validated types and pure rules; knows no HTTP, SQL or sockets.
//!
//! Dependencies point down that list only: `http` and `live` use `auth`, `quota`, `lesson_file`, `media`,
//! `store`,
//! `bus` and `domain`; `store` and `bus` use `domain`; `domain` uses none of them.

#![forbid(unsafe_code)]
// A lossy `as` cast is a silent bug waiting for a large value: the library converts with
// `try_from`, `unsigned_abs` or a saturating helper, and says why where a cast is exact.
// (Held here rather than in Cargo.toml's `[lints]`, which would also hold the tests and
// benchmarks, whose synthetic data takes low bytes of counters on purpose.)
#![deny(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

pub mod addresses;
pub mod auth;
pub mod backup;
pub mod budget;
pub mod bus;
pub mod cache;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod lesson_file;
pub mod library;
pub mod live;
pub mod mail;
pub mod media;
pub mod office_import;
pub mod pdf_import;
pub mod quota;
pub mod server;
pub mod store;

/// An error and all its causes on one line, for logs and command-line messages.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
