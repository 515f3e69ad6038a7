//! What a live connection, WebSocket or event stream, tells the logs and the metrics: a span
//! per connection that its log lines carry (so one board's or teacher's connection can be
//! followed through the log), the line that says it opened, and its count in
//! `classcast_live_connections`. Each transport logs its closing itself, with what ended it.

use axum::http::HeaderMap;

use super::metrics::LiveConnection;
use crate::live::connection::Peer;

/// The span of one live connection, entered by everything it does, so its log lines can be
/// followed: `conn` is the request id of the request that opened it (the access log's line
/// of that request has it too); `role`, `board` or `account` are filled in once its `hello`
/// or token says who it is.
pub fn connection_span(transport: &'static str, headers: &HeaderMap) -> tracing::Span {
    let conn = headers
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or("-");
    // Not inside the request's span, which would then live, fields and all, as long as
    // the connection: `conn` ties the two together.
    tracing::info_span!(
        parent: None,
        "live",
        conn,
        transport,
        role = tracing::field::Empty,
        board = tracing::field::Empty,
        account = tracing::field::Empty,
    )
}

/// Names who is on a connection in its span, logs that it opened, and counts it in
/// `classcast_live_connections` until the returned guard is dropped.
pub fn opened(peer: &Peer, transport: &'static str) -> LiveConnection {
    let span = tracing::Span::current();
    let role = match peer {
        Peer::Teacher { .. } => "teacher",
        Peer::Board(_) => "board",
    };
    span.record("role", role);
    match peer {
        Peer::Teacher { account, .. } => {
            span.record("account", tracing::field::display(account.id))
        }
        Peer::Board(board) => span.record("board", tracing::field::display(board)),
    };
    tracing::info!("live connection opened");
    LiveConnection::open(role, transport)
}
