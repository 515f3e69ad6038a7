//! The live channel's fallback transport for networks that block WebSockets: Server-Sent Events for what the
//! server sends (`GET /api/live/events`), plain POSTs for what the client sends
//! (`POST /api/live/messages`), and `GET /api/live/time` for clock offsets. Same messages,
//! same authentication (a bearer header, never the URL), same subscriptions as `/ws`.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::live_ws::authenticate;
use crate::domain::MAX_SAFE_INTEGER;
use crate::live::connection::{
    answer, follow, identity_ended, identity_grant, too_many_boards, welcome, Peer, Reply,
};
use crate::live::protocol::{
    codes, ClientMsg, Followed, Refusal, Role, ServerMsg, MAX_MESSAGE_BYTES,
};
use crate::live::subscriber::Subscriber;
use crate::live::{until_closing, ConnectionGuard};

use super::extract::{bearer, ClientIp};
use super::live_log::{connection_span, opened};
use super::metrics::LiveConnection;
use super::AppState;
use crate::domain::hlc::wall_millis as now_ms;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// `teacher` or `board`.
    #[param(value_type = String)]
    role: Role,
    /// Teacher: boards to follow, `id:version` pairs separated by commas (at most 100).
    boards: Option<String>,
    /// Board: the state version it shows, a whole number from 0 to 2^53 - 1. Checked, and
    /// otherwise unused: the board's current state is the first event either way.
    version: Option<String>,
}

/// The live stream as Server-Sent Events; each event's data is one server message. A
/// refusal is the protocol's `error` message, as on the WebSocket.
#[utoipa::path(get, path = "/api/live/events", tag = "live", security(("bearer" = [])),
    params(EventsParams),
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`malformed` query, or `too_many_boards`", body = LiveErrorMessage),
        (status = 401, description = "`unauthenticated`: no valid teacher or board token", body = LiveErrorMessage),
        (status = 429, description = "`too_many_connections`: the account or board has as many live connections open as it may", body = LiveErrorMessage),
        (status = 503, description = "`unavailable`: the database cannot be reached", body = LiveErrorMessage),
    ))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // Who is asking comes before what they asked: a stranger learns nothing of the query.
    let Some(token) = bearer(&headers) else {
        return refused(unauthenticated());
    };
    let params = match params {
        Ok(Query(params)) => params,
        Err(e) => {
            let known = authenticate(&state, Role::Teacher, token).await.is_some()
                || authenticate(&state, Role::Board, token).await.is_some();
            return refused(match known {
                true => Refusal::new(codes::MALFORMED, e.body_text()),
                false => unauthenticated(),
            });
        }
    };
    let Some(peer) = authenticate(&state, params.role, token).await else {
        return refused(unauthenticated());
    };
    let boards = match parse_boards(params.boards.as_deref().unwrap_or("")) {
        Ok(boards) => boards,
        Err(refusal) => return refused(refusal),
    };
    if let Some(version) = params.version.as_deref() {
        if version_number(version).is_none() {
            return refused(Refusal::new(
                codes::MALFORMED,
                format!("{version:?} in `version` is not a version (a whole number from 0 to 2^53 - 1)."),
            ));
        }
    }
    if let Some(refusal) = too_many_boards(boards.len()) {
        return refused(refusal);
    }
    let live = state.live.clone();
    let counted = match live.connection(peer.sender(), matches!(peer, Peer::Teacher { .. })) {
        Ok(counted) => counted,
        Err(e) => return refused(e.refusal(None)),
    };
    let mut subscriber = Subscriber::new(live.clone());
    subscriber.say(welcome(&peer, live.heartbeat));
    match &peer {
        Peer::Teacher { account, .. } => follow(&live, &mut subscriber, account, &boards).await,
        Peer::Board(board) => {
            if let Err(e) = subscriber.be_board(*board).await {
                return refused(e.refusal(None));
            }
        }
    }
    // The stream ends when the server shuts down, after telling the client to reconnect
    // elsewhere at once (`restart`), and when the teacher's session or the board's identity ends, after saying so (reconnecting
    // then answers 401).
    let span = connection_span("sse", &headers);
    let feed = Feed {
        subscriber,
        closing: live.closing.subscribe(),
        identity: identity_grant(&live, &peer),
        ended: identity_ended(&peer),
        _counted: counted,
        _open: span.in_scope(|| opened(&peer, "sse")),
        span,
        reason: "the client went away",
    };
    let stream = futures_util::stream::unfold(Some(feed), |open| async move {
        let mut feed = open?;
        let message = tokio::select! {
            biased;
            () = feed.identity.revoked() => {
                let ended = Refusal::new(codes::SESSION_ENDED, feed.ended).to_json();
                feed.reason = "session or identity ended";
                return Some((Ok(Event::default().data(ended)), None));
            }
            _ = until_closing(&mut feed.closing) => {
                // Named, so that an `EventSource` can listen for it; its data is a protocol
                // message like every other event's. The stream ends after it.
                feed.reason = "server restarting";
                let restart = ServerMsg::Restart.to_json();
                return Some((Ok(Event::default().event("restart").data(restart)), None));
            }
            m = feed.subscriber.next() => m?,
        };
        Some((
            Ok::<_, Infallible>(Event::default().data(message.as_ref())),
            Some(feed),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(state.live.heartbeat))
        .into_response()
}

/// What an open event stream holds while it lives.
struct Feed {
    subscriber: Subscriber,
    closing: tokio::sync::watch::Receiver<bool>,
    identity: crate::live::grants::Grant,
    ended: &'static str,
    _counted: ConnectionGuard,
    _open: LiveConnection,
    /// The connection's span (see `live_log`), for its last line.
    span: tracing::Span,
    /// What ends it, for that line.
    reason: &'static str,
}

impl Drop for Feed {
    /// An event stream has no close code: its last line says what ended it.
    fn drop(&mut self) {
        tracing::info!(parent: &self.span, reason = self.reason, "live connection closed");
    }
}

fn unauthenticated() -> Refusal {
    Refusal::new(
        codes::UNAUTHENTICATED,
        "Send a teacher's session token or a board token as `Authorization: Bearer <token>`; \
         this one is missing, expired or unknown.",
    )
}

fn parse_boards(raw: &str) -> Result<Vec<Followed>, Refusal> {
    raw.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (id, version) = pair.split_once(':').unwrap_or((pair, "0"));
            let malformed = |what: &str| {
                Refusal::new(
                    codes::MALFORMED,
                    format!(
                        "{what:?} in `boards` is {}.",
                        match what == id {
                            true => "not a board id",
                            false => "not a version (a whole number from 0 to 2^53 - 1)",
                        }
                    ),
                )
            };
            Ok(Followed {
                board: Uuid::parse_str(id).map_err(|_| malformed(id))?,
                version: version_number(version).ok_or_else(|| malformed(version))?,
            })
        })
        .collect()
}

/// A version as a query gives it: a whole number from 0 to 2^53 - 1.
fn version_number(raw: &str) -> Option<i64> {
    raw.parse()
        .ok()
        .filter(|v| (0..=MAX_SAFE_INTEGER).contains(v))
}

/// A refusal as an HTTP answer: the protocol's `error` message as the body, and a status
/// derived from its code (docs/protocol.md, "Fallback").
fn refused(refusal: Refusal) -> Response {
    let status = match refusal.code {
        codes::UNAUTHENTICATED | codes::SESSION_ENDED => StatusCode::UNAUTHORIZED,
        codes::FORBIDDEN => StatusCode::FORBIDDEN,
        codes::NOT_FOUND => StatusCode::NOT_FOUND,
        codes::TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        codes::RATE_LIMITED | codes::TOO_MANY_CONNECTIONS => StatusCode::TOO_MANY_REQUESTS,
        codes::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        codes::MALFORMED | codes::TOO_MANY_BOARDS => StatusCode::BAD_REQUEST,
        // invalid_command, not_presenting, empty_lesson, wrong_slide: understood, not possible.
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        refusal.to_json(),
    )
        .into_response();
    if let Some(wait) = refusal.retry_after {
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// One client message over plain HTTP: `command` (teacher token), `rendered` or `code`
/// (board token), `ping` (either). The answer is what the WebSocket would send: `ack`,
/// `pong`, or `error` with the same code (then with the status `refused` gives it).
#[utoipa::path(post, path = "/api/live/messages", tag = "live", security(("bearer" = [])),
    request_body(content = ClientMessage, description = "One client message of the live protocol (docs/protocol.md)"),
    responses(
        (status = 200, description = "The server's reply: `ack` or `pong`", body = Object),
        (status = 204, description = "Accepted; no reply (`rendered`, `code`)"),
        (status = 400, description = "`malformed`: not a message of the protocol", body = LiveErrorMessage),
        (status = 401, description = "`unauthenticated`: no valid token", body = LiveErrorMessage),
        (status = 403, description = "`forbidden`: not a message for this token's role, or for this transport", body = LiveErrorMessage),
        (status = 404, description = "`not_found`: no such board or lesson of yours", body = LiveErrorMessage),
        (status = 413, description = "`too_large`: over 64 KiB", body = LiveErrorMessage),
        (status = 422, description = "`invalid_command`, `not_presenting`, `empty_lesson` or `wrong_slide`", body = LiveErrorMessage),
        (status = 429, description = "`rate_limited`: over the sender's message budget, shared with its WebSockets", body = LiveErrorMessage),
        (status = 503, description = "`unavailable`: the database cannot be reached", body = LiveErrorMessage),
    ))]
pub async fn messages(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Who is asking comes before what they sent: a stranger learns nothing of its body.
    let Some(token) = bearer(&headers) else {
        return refused(unauthenticated());
    };
    let parsed = match &body {
        Ok(bytes) if bytes.len() <= MAX_MESSAGE_BYTES => std::str::from_utf8(bytes)
            .map_err(|_| Refusal::new(codes::MALFORMED, "The body must be UTF-8 JSON."))
            .map(|text| ClientMsg::parse(text).map_err(|m| m.refusal())),
        _ => Err(Refusal::new(
            codes::TOO_LARGE,
            format!("Messages are at most {MAX_MESSAGE_BYTES} bytes."),
        )),
    };
    // Most messages name the role that may send them; the other role is tried second, so
    // that a message for the wrong role is refused as on the WebSocket, not as a stranger's.
    let board_first = matches!(parsed, Ok(Ok(ClientMsg::Rendered { .. } | ClientMsg::Code)));
    let (first, second) = match board_first {
        true => (Role::Board, Role::Teacher),
        false => (Role::Teacher, Role::Board),
    };
    let peer = match authenticate(&state, first, token).await {
        Some(peer) => peer,
        None => match authenticate(&state, second, token).await {
            Some(peer) => peer,
            None => return refused(unauthenticated()),
        },
    };
    let msg = match parsed {
        Ok(Ok(msg)) => Ok(msg),
        Ok(Err(refusal)) | Err(refusal) => Err(refusal),
    };
    // The same budget as the sender's WebSocket messages: one budget, whatever the transport.
    if let Err(e) = state.live.message_budget(peer.sender()) {
        let id = match &msg {
            Ok(msg) => msg.command_id(),
            Err(refusal) => refusal.id,
        };
        return refused(e.refusal(id));
    }
    let msg = match msg {
        Ok(msg) => msg,
        Err(refusal) => return refused(refusal),
    };
    match answer(&state.live, &peer, msg, client, None).await {
        Some(Reply::Message(reply)) => {
            ([(header::CONTENT_TYPE, "application/json")], reply).into_response()
        }
        Some(Reply::Refused(refusal)) => refused(refusal),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// The protocol's `error` message, for the API document (docs/protocol.md lists the codes).
#[derive(Serialize, ToSchema)]
pub struct LiveErrorMessage {
    /// Always `error`.
    r#type: String,
    code: String,
    /// A sentence a person can act on.
    message: String,
    /// The command refused, when it was a command.
    id: Option<Uuid>,
    /// The board a refused `boards` entry named.
    board: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct ServerTime {
    /// Milliseconds since the Unix epoch on the server's clock.
    server_time: i64,
}

/// The server's clock, for clock-offset estimates on the fallback transport.
#[utoipa::path(get, path = "/api/live/time", tag = "live",
    responses((status = 200, description = "The server's clock", body = ServerTime)))]
pub async fn time() -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(ServerTime {
            server_time: now_ms(),
        }),
    )
}

/// The client messages `POST /api/live/messages` takes, for the API document.
pub struct ClientMessage;

impl utoipa::PartialSchema for ClientMessage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        let kind = |name: &str| {
            ObjectBuilder::new()
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([name])),
                )
                .required("type")
        };
        let uuid = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        };
        OneOfBuilder::new()
            .item(
                kind("command")
                    .description(Some("Teacher token: a command (docs/protocol.md, ops)."))
                    .property("id", uuid())
                    .property("board", uuid())
                    .property("op", ObjectBuilder::new().schema_type(Type::String))
                    .property("args", ObjectBuilder::new().schema_type(Type::Object))
                    .required("id")
                    .required("board")
                    .required("op"),
            )
            .item(
                kind("rendered")
                    .description(Some("Board token: the state version the board now shows."))
                    .property(
                        "version",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
                    )
                    .required("version"),
            )
            .item(
                kind("ping")
                    .description(Some("Either token: answered with a pong."))
                    .property("t0", ObjectBuilder::new().schema_type(Type::Number))
                    .required("t0"),
            )
            .item(kind("code").description(Some("Board token: draw a fresh pairing code.")))
            .into()
    }
}

impl utoipa::ToSchema for ClientMessage {}
