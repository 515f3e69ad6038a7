//! `GET /metrics` in the Prometheus text format, on a listener of its own (`metrics_listen`),
//! never on the public one: it tells anyone who reads it how busy the school is.
//!
//! Every part of classcast counts what it does with the `metrics` crate's macros (a counter
//! is one atomic addition), into the process's one recorder, which is installed only when
//! `metrics_listen` is set: without it the macros record nothing, and histograms do not pile
//! up samples nobody reads. What is a state rather than an event (boards online, the
//! connection budget, the password-hashing queue) is read when Prometheus scrapes, from the
//! node's own state, so no hot path pays for it. [`METRICS`] names every series; the
//! operations guide explains each (a unit test keeps the two in step).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::auth::Accounts;
use crate::live::Live;

/// A metric's kind, as the operations guide lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every series classcast exports: name, kind, help (the `# HELP` line).
pub const METRICS: &[(&str, Kind, &str)] = &[
    ("classcast_live_connections", Kind::Gauge, "Open live connections on this node, by role (board, teacher) and transport (websocket, sse)"),
    ("classcast_boards_online", Kind::Gauge, "Boards with at least one page connected to this node"),
    ("classcast_boards_presenting", Kind::Gauge, "Boards online on this node that present a lesson"),
    ("classcast_commands_total", Kind::Counter, "Teachers' commands handled by this node, by outcome (acked, refused)"),
    ("classcast_command_ack_seconds", Kind::Histogram, "From a command's arrival to its acknowledgement, stored durably (acked commands only)"),
    ("classcast_store_seconds", Kind::Histogram, "Time of each store operation, by operation"),
    ("classcast_store_errors_total", Kind::Counter, "Store operations that failed (database unreachable or failing, corrupt data), by operation"),
    ("classcast_state_writer_batch_states", Kind::Histogram, "Board states the board-state writer stored per group commit"),
    ("classcast_bus_events_sent_total", Kind::Counter, "Events this node told the other nodes (cluster only)"),
    ("classcast_bus_events_received_total", Kind::Counter, "Events this node heard from other nodes (cluster only)"),
    ("classcast_bus_events_dropped_total", Kind::Counter, "Events that never left this node, by reason (queue_full, no_database); the nodes catch up from the store"),
    ("classcast_bus_listener_reconnects_total", Kind::Counter, "Times a listener for other nodes' events (re)connected to a database after losing it (cluster only)"),
    ("classcast_database_failovers_total", Kind::Counter, "Times this node moved to another database (cluster only)"),
    ("classcast_database_active", Kind::Gauge, "1 for the database this node uses, 0 for the others, by database (URL without password)"),
    ("classcast_database_up", Kind::Gauge, "1 when the database answers this node, by database"),
    ("classcast_replication_lag_bytes", Kind::Gauge, "WAL the subscription's provider wrote that the subscriber has not confirmed, by subscription (pglogical only)"),
    ("classcast_replication_lag_seconds", Kind::Gauge, "How old the last change the subscriber applied was when applied, by subscription (pglogical only, when PostgreSQL reports it)"),
    ("classcast_replication_up", Kind::Gauge, "1 while the subscription replicates, by subscription (pglogical only)"),
    ("classcast_connections_open", Kind::Gauge, "TCP connections holding a place in the connection budget (WebSockets included)"),
    ("classcast_connections_limit", Kind::Gauge, "The connection budget: connections that may be open at once (max_connections)"),
    ("classcast_rate_limited_total", Kind::Counter, "Requests or messages refused by a rate limit, by limit"),
    ("classcast_password_hash_waiting", Kind::Gauge, "Logins and registrations waiting for a password-hashing slot"),
    ("classcast_password_hash_running", Kind::Gauge, "Password hashes being computed now (at most one per core)"),
    ("classcast_mail_pending", Kind::Gauge, "Mail in the outbox not sent yet"),
    ("classcast_mail_dead", Kind::Gauge, "Mail the outbox gave up on"),
];

/// Upper bounds of the latency histograms' buckets, in seconds: a command is acknowledged in
/// milliseconds on a healthy node, a failover takes seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the writer's batch-size buckets (a batch holds at most 1,024 states).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How often histogram samples are folded into their buckets between scrapes, so they never
/// pile up when Prometheus is slow to come.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("cannot start the metrics: {0}")]
pub struct MetricsError(String);

/// The process's recorder, installed on first use: a process has one (the `metrics` macros
/// record into it wherever they are), and every server a process runs shares it.
pub fn recorder() -> Result<PrometheusHandle, MetricsError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_batch_states".into()), BATCH_BUCKETS)
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            for (name, kind, help) in METRICS {
                match kind {
                    Kind::Counter => metrics::describe_counter!(*name, *help),
                    Kind::Gauge => metrics::describe_gauge!(*name, *help),
                    Kind::Histogram => metrics::describe_histogram!(*name, *help),
                }
            }
            Ok(handle)
        })
        .clone()
        .map_err(MetricsError)
}

/// What a scrape reads from the node besides the recorder.
#[derive(Clone)]
pub struct Sources {
    pub handle: PrometheusHandle,
    pub live: Arc<Live>,
    pub accounts: Arc<Accounts>,
}

/// The router of the metrics listener: `/metrics` and nothing else.
fn router(sources: Sources) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(sources)
}

async fn scrape(State(sources): State<Sources>) -> Response {
    let boards = sources.live.hub.counts();
    metrics::gauge!("classcast_boards_online").set(f64::from(boards.online));
    metrics::gauge!("classcast_boards_presenting").set(f64::from(boards.presenting));
    let hashing = sources.accounts.hashing();
    metrics::gauge!("classcast_password_hash_waiting").set(as_f64(hashing.waiting));
    metrics::gauge!("classcast_password_hash_running").set(as_f64(hashing.running));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        sources.handle.render(),
    )
        .into_response()
}

/// A count as a gauge's value (exact below 2^53, far beyond any count here).
fn as_f64(n: usize) -> f64 {
    n as f64
}

/// Serves `/metrics` on `listener` until `shutdown` resolves, and meanwhile folds histogram
/// samples into their buckets every [`UPKEEP_EVERY`].
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = sources.handle.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
    let served = axum::serve(listener, router(sources))
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    served
}

/// Counts an open live connection in `classcast_live_connections` while it lives.
pub struct LiveConnection(metrics::Gauge);

impl LiveConnection {
    pub fn open(role: &'static str, transport: &'static str) -> Self {
        let gauge =
            metrics::gauge!("classcast_live_connections", "role" => role, "transport" => transport);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operations_guide_explains_every_metric() {
        let guide = include_str!("../../docs/operations.md");
        for (name, kind, _) in METRICS {
            let kind = format!("{kind:?}").to_lowercase();
            let row = guide
                .lines()
                .find(|line| line.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("docs/operations.md has no row for {name}"));
            assert!(
                row.contains(&format!("| {kind} |")),
                "{name} is a {kind}: {row}"
            );
        }
    }
}
