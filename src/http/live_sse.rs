//! The live channel's fallback transport for networks that block WebSockets: Server-Sent Events for what the
//! server sends (`GET /api/live/events`), plain POSTs for what the client sends
//! (`POST /api/live/messages`), and `GET /api/live/time` for clock offsets. Same messages,
//! same authentication (a bearer header, never the URL), same subscriptions as `/ws`.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::live_ws::authenticate;
use crate::live::connection::{answer, follow, session_ended, session_grant, welcome, Peer};
use crate::live::protocol::{ClientMsg, Followed, Role, ServerMsg};
use crate::live::subscriber::Subscriber;
use crate::live::{until_closing, ConnectionGuard};

use super::error::{ApiError, ErrorBody};
use super::extract::{bearer, ClientIp, Json};
use super::AppState;
use crate::domain::hlc::wall_millis as now_ms;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// `teacher` or `board`.
    #[param(value_type = String)]
    role: Role,
    /// Teacher: boards to follow, `id:version` pairs separated by commas.
    boards: Option<String>,
}

/// The live stream as Server-Sent Events; each event's data is one server message.
#[utoipa::path(get, path = "/api/live/events", tag = "live", security(("bearer" = [])),
    params(EventsParams),
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid teacher or board token", body = ErrorBody),
        (status = 429, description = "The account or board has too many live connections open", body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    // Who is asking comes before what they asked: a stranger learns nothing of the query.
    let token = bearer(&headers).ok_or(ApiError::Unauthorized)?;
    let params = match params {
        Ok(Query(params)) => params,
        Err(e) => {
            let known = authenticate(&state, Role::Teacher, token).await.is_some()
                || authenticate(&state, Role::Board, token).await.is_some();
            return Err(match known {
                true => ApiError::bad_request("malformed_query", e.body_text()),
                false => ApiError::Unauthorized,
            });
        }
    };
    let peer = authenticate(&state, params.role, token)
        .await
        .ok_or(ApiError::Unauthorized)?;
    let live = state.live.clone();
    let counted = live.connection(peer.sender(), matches!(peer, Peer::Teacher { .. }))?;
    let mut subscriber = Subscriber::new(live.clone());
    subscriber.say(welcome(&peer, live.heartbeat));
    match &peer {
        Peer::Teacher { account, .. } => {
            let boards = parse_boards(params.boards.as_deref().unwrap_or(""))?;
            follow(&live, &mut subscriber, account, &boards).await;
        }
        Peer::Board(board) => subscriber
            .be_board(*board)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    }
    // The stream ends when the server shuts down, so the client reconnects elsewhere, and
    // when the teacher's session ends, after saying so (reconnecting then answers 401).
    let feed = Feed {
        subscriber,
        closing: live.closing.subscribe(),
        session: session_grant(&live, &peer),
        _counted: counted,
    };
    let stream = futures_util::stream::unfold(Some(feed), |open| async move {
        let mut feed = open?;
        let message = tokio::select! {
            biased;
            () = session_ended(&mut feed.session) => {
                let ended = ServerMsg::error("session_ended", SESSION_ENDED, None).to_json();
                return Some((Ok(Event::default().data(ended)), None));
            }
            _ = until_closing(&mut feed.closing) => return None,
            m = feed.subscriber.next() => m?,
        };
        Some((
            Ok::<_, Infallible>(Event::default().data(message.as_ref())),
            Some(feed),
        ))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(state.live.heartbeat))
        .into_response())
}

/// What an open event stream holds while it lives.
struct Feed {
    subscriber: Subscriber,
    closing: tokio::sync::watch::Receiver<bool>,
    session: Option<crate::live::grants::Grant>,
    _counted: ConnectionGuard,
}

const SESSION_ENDED: &str =
    "Your session has ended (signed out, password changed or account disabled). Sign in again.";

fn parse_boards(raw: &str) -> Result<Vec<Followed>, ApiError> {
    raw.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (id, version) = pair.split_once(':').unwrap_or((pair, "0"));
            Ok(Followed {
                board: Uuid::parse_str(id).map_err(|_| {
                    ApiError::bad_request("invalid_id", format!("{id:?} is not a board id."))
                })?,
                version: version.parse().unwrap_or(0),
            })
        })
        .collect()
}

/// One client message over plain HTTP: `command` (teacher token), `rendered` or `code`
/// (board token), `ping` (either). A command is answered with its `ack` or `error`.
#[utoipa::path(post, path = "/api/live/messages", tag = "live", security(("bearer" = [])),
    request_body(content = ClientMessage, description = "One client message of the live protocol (docs/protocol.md)"),
    responses(
        (status = 200, description = "The server's reply message", body = Object),
        (status = 204, description = "Accepted; no reply"),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token for this message", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Not a message of the protocol", body = ErrorBody),
        (status = 429, description = "Over the sender's message budget, shared with its WebSockets", body = ErrorBody),
    ))]
pub async fn messages(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    msg: Result<Json<ClientMsg>, ApiError>,
) -> Result<Response, ApiError> {
    // Who is asking comes before what they sent: no token, no reading of the body.
    let token = bearer(&headers).ok_or(ApiError::Unauthorized)?;
    let Json(msg) = msg?;
    let role = match &msg {
        ClientMsg::Command(_) | ClientMsg::Ping { .. } => Role::Teacher,
        ClientMsg::Rendered { .. } | ClientMsg::Code => Role::Board,
        ClientMsg::Hello { .. } | ClientMsg::Watch { .. } => {
            return Err(ApiError::bad_request(
                "not_on_this_transport",
                "Name the boards to follow when opening /api/live/events instead.",
            ))
        }
    };
    let peer = match (authenticate(&state, role, token).await, &msg) {
        (Some(peer), _) => peer,
        (None, ClientMsg::Ping { .. }) => authenticate(&state, Role::Board, token)
            .await
            .ok_or(ApiError::Unauthorized)?,
        (None, _) => return Err(ApiError::Unauthorized),
    };
    // The same budget as the sender's WebSocket messages: one budget, whatever the transport.
    state.live.message_budget(peer.sender())?;
    Ok(match answer(&state.live, &peer, msg, client).await {
        Some(reply) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            reply,
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
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
