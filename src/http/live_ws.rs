//! The live channel's WebSocket transport at `/ws`: `Origin` check, `hello` first, then
//! messages both ways until either side goes away. What a message does is
//! `live::connection`'s; this file owns the socket, its budget and its close codes.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::{interval_at, timeout, Instant};
use tracing::Instrument;

use super::connections::Slot;
use super::error::ApiError;
use super::extract::ClientIp;
use super::live_log::{connection_span, opened};
use super::metrics::LiveConnection;
use super::AppState;
use crate::live::connection::{
    answer, follow, identity_ended, identity_grant, too_many_boards, welcome, Commands, Peer, Reply,
};
use crate::live::protocol::{self, close, codes, ClientMsg, Refusal, Role};
use crate::live::subscriber::Subscriber;
use crate::live::{until_closing, ConnectionGuard, Live};

/// How many refused messages a connection may send before it is closed.
const STRIKES: u32 = 20;
const HELLO_WITHIN: Duration = Duration::from_secs(10);
const WRITE_COALESCE_BYTES: usize = 16 * 1024;
/// What each connection reads into: a board's `hello`, `rendered` and pongs fit.
const READ_BUFFER_BYTES: usize = 512;

pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    slot: Option<Extension<Slot>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.http.allowed_origins) {
        return ApiError::Forbidden {
            code: "origin_not_allowed",
            message: "This page's origin may not open a live connection to this server.".into(),
        }
        .into_response();
    }
    let span = connection_span("websocket", &headers);
    // tungstenite's default buffers are 128 KiB each way; an idle board needs almost none:
    // its messages are a few hundred bytes, and a longer one makes the read buffer grow to
    // fit it.
    // Messages queued with `feed` wait in the write buffer up to this size until a flush,
    // so that those ready at the same moment leave in one write (see `send_ready`).
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_COALESCE_BYTES)
        .max_message_size(protocol::MAX_MESSAGE_BYTES)
        .max_frame_size(protocol::MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let slot = slot.map(|Extension(slot)| slot);
            let connection = live_connection(socket, state, client, slot).instrument(span);
            // What every open connection holds for its loop (issue 23 counts the bytes).
            tracing::debug!(
                bytes = std::mem::size_of_val(&connection),
                "live connection's future"
            );
            // A task of its own, so that axum's upgrade task (768 bytes, sized for the
            // handshake it ran) ends here instead of living as long as the connection.
            tokio::spawn(connection);
            std::future::ready(())
        })
}

/// A WebSocket's whole life, to its last log line. A block over its arguments rather than
/// an `async fn`, which would keep a second copy of each (the socket alone is 368 bytes) in
/// every open connection.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn doubles its arguments' bytes"
)]
fn live_connection(
    mut socket: WebSocket,
    state: AppState,
    client: IpAddr,
    slot: Option<Slot>,
) -> impl Future<Output = ()> + Send {
    async move {
        // The WebSocket keeps its connection's place in the connection budget.
        let closed = serve(&mut socket, &state, client, slot.as_ref()).await;
        tracing::info!(
            code = closed.code,
            reason = closed.reason,
            by = closed.by,
            "live connection closed"
        );
    }
}

/// Browsers always send `Origin` on a WebSocket: it must be this server's own origin (the
/// `Host` it was reached at) or one of the configured front-end origins. Non-browser clients
/// send none and are let through; they authenticate like everyone else.
pub fn origin_allowed(headers: &HeaderMap, allowed_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let own = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest == host);
    own || allowed_origins.iter().any(|o| o == origin)
}

/// How a WebSocket ended, for its last log line: the close code sent or received (1006 when
/// the connection ended without one) and why.
struct Closed {
    code: u16,
    reason: &'static str,
    /// `server` or `client`.
    by: &'static str,
}

/// The connection ended without a close frame (RFC 6455's 1006).
const LOST: Closed = Closed {
    code: 1006,
    reason: "connection lost",
    by: "client",
};

/// The client closed with `frame` (RFC 6455's 1005 when it gave no code); its reason is its
/// own text and stays out of our logs.
fn by_client(frame: Option<CloseFrame>) -> Closed {
    Closed {
        code: frame.map_or(1005, |f| f.code),
        reason: "closed by the client",
        by: "client",
    }
}

/// What a connection that said a valid `hello` holds for its life.
struct Open {
    peer: Peer,
    live: Arc<Live>,
    subscriber: Subscriber,
    /// Its place among the connections this node and this sender may have.
    counted: ConnectionGuard,
    /// Counts the connection in `classcast_live_connections` while it is open.
    logged: LiveConnection,
}

/// From the upgrade to the first messages: `hello`, authentication, the connection's place,
/// and what it follows. Its own future (boxed by the caller): what it needs while it runs is
/// not kept for the connection's life.
async fn open(
    socket: &mut WebSocket,
    state: &AppState,
    slot: Option<&Slot>,
) -> Result<Open, Closed> {
    let hello = match timeout(HELLO_WITHIN, socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => Some(ClientMsg::parse(&text)),
        Ok(Some(Err(e))) => return Err(refuse_frame(socket, &e, slot).await),
        // Not text (or the end): no hello, as below.
        Ok(_) => None,
        Err(_) => return Err(close_with(slot, socket, close::TIMEOUT, "no hello").await),
    };
    let (protocol, role, token, boards) = match hello {
        Some(Ok(ClientMsg::Hello {
            protocol,
            role,
            token,
            boards,
            ..
        })) => (protocol, role, token, boards),
        // A hello with a bad field is told what was wrong; anything else is no hello.
        Some(Err(malformed)) if malformed.kind.as_deref() == Some("hello") => {
            let _ = socket
                .send(Message::Text(malformed.refusal().to_json().into()))
                .await;
            let reason = "malformed hello";
            return Err(close_with(slot, socket, close::MALFORMED, reason).await);
        }
        _ => {
            let reason = "the first message must be hello";
            return Err(close_with(slot, socket, close::UNAUTHENTICATED, reason).await);
        }
    };
    if !(protocol::OLDEST_ACCEPTED..=protocol::PROTOCOL).contains(&protocol) {
        let reason = "unsupported protocol version";
        return Err(close_with(slot, socket, close::PROTOCOL_VERSION, reason).await);
    }
    let turn = state.live.setup_turn().await;
    let peer = Box::pin(authenticate(state, role, &token)).await;
    drop(turn);
    let Some(peer) = peer else {
        return Err(close_with(slot, socket, close::UNAUTHENTICATED, "invalid token").await);
    };

    if let Some(refusal) = too_many_boards(boards.len()) {
        let _ = socket.send(Message::Text(refusal.to_json().into())).await;
        let reason = "too many boards";
        return Err(close_with(slot, socket, close::MALFORMED, reason).await);
    }
    let live = state.live.clone();
    let counted = match live.connection(peer.sender(), matches!(peer, Peer::Teacher { .. })) {
        Ok(guard) => guard,
        Err(_) => {
            let reason = "too many connections";
            return Err(close_with(slot, socket, close::TOO_MANY_CONNECTIONS, reason).await);
        }
    };
    let logged = opened(&peer, "websocket");
    let mut subscriber = Subscriber::new(live.clone());
    subscriber.say(welcome(&peer, live.heartbeat));
    let turn = live.setup_turn().await;
    match &peer {
        Peer::Teacher { account, .. } => {
            Box::pin(follow(&live, &mut subscriber, account, &boards)).await
        }
        Peer::Board(board) => {
            if let Err(e) = Box::pin(subscriber.be_board(*board)).await {
                subscriber.say(e.refusal(None).to_json());
            }
        }
    }
    drop(turn);
    Ok(Open {
        peer,
        live,
        subscriber,
        counted,
        logged,
    })
}

/// The connection from `hello` to its close: [`open`], then messages both ways until either
/// side goes away.
async fn serve(
    socket: &mut WebSocket,
    state: &AppState,
    client: IpAddr,
    slot: Option<&Slot>,
) -> Closed {
    let Open {
        peer,
        live,
        mut subscriber,
        counted: _counted,
        logged: _logged,
    } = match Box::pin(open(socket, state, slot)).await {
        Ok(open) => open,
        Err(closed) => return closed,
    };
    let mut commands = match &peer {
        Peer::Teacher { account, .. } => Some(Commands::new(&live, account)),
        Peer::Board(_) => None,
    };
    let mut identity = identity_grant(&live, &peer);
    let ended = identity_ended(&peer);
    let mut strikes = 0u32;
    let mut last_heard = Instant::now();
    // A random phase: after an 8:30 storm, thousands of connections would otherwise all be
    // pinged in the same instant every period.
    let phase = live.heartbeat.mul_f64(rand::random::<f64>());
    let mut heartbeat = interval_at(Instant::now() + phase, live.heartbeat);
    let mut shutting_down = live.closing.subscribe();
    let (code, reason) = loop {
        tokio::select! {
            () = identity.revoked() => break (close::SESSION_ENDED, ended),
            _ = until_closing(&mut shutting_down) => break (close::SERVICE_RESTART, "server restarting"),
            incoming = socket.next() => {
                // Once the session or identity has ended, not one more message is handled,
                // even if it arrived in the same instant.
                if identity.is_revoked() {
                    break (close::SESSION_ENDED, ended);
                }
                let message = match incoming {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Box::pin(refuse_frame(socket, &e, slot)).await,
                    None => return LOST,
                };
                last_heard = Instant::now();
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(frame) => return by_client(frame),
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        strikes += 1;
                        if strikes > STRIKES {
                            break (close::MALFORMED, "too many malformed messages");
                        }
                        subscriber.say(Refusal::new(codes::MALFORMED, "Send JSON text messages.").to_json());
                        continue;
                    }
                };
                let parsed = ClientMsg::parse(&text);
                if let Err(e) = live.message_budget(peer.sender()) {
                    strikes += 1;
                    if strikes > STRIKES {
                        break (close::RATE_LIMITED, "too many messages");
                    }
                    let id = match &parsed {
                        Ok(msg) => msg.command_id(),
                        Err(malformed) => malformed.id,
                    };
                    subscriber.say(e.refusal(id).to_json());
                    continue;
                }
                let reply = match (parsed, &mut commands) {
                    (Ok(ClientMsg::Command(cmd)), Some(commands)) => {
                        commands.push(cmd, std::time::Instant::now()).err().map(Reply::Refused)
                    }
                    (Ok(msg), _) => Box::pin(answer(&live, &peer, msg, client, Some(&mut subscriber))).await,
                    (Err(malformed), _) => {
                        strikes += 1;
                        Some(Reply::Refused(malformed.refusal()))
                    }
                };
                if strikes > STRIKES {
                    break (close::MALFORMED, "too many malformed messages");
                }
                if let Some(reply) = reply {
                    if send_ready(socket, &mut subscriber, reply.into_json().into()).await.is_err() {
                        return LOST;
                    }
                }
            }
            reply = next_reply(&mut commands) => {
                if send_ready(socket, &mut subscriber, reply.into_json().into()).await.is_err() {
                    return LOST;
                }
            }
            Some(out) = subscriber.next() => {
                if send_ready(socket, &mut subscriber, out.as_ref().into()).await.is_err() {
                    return LOST;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > live.dead_after() {
                    break (close::TIMEOUT, "no heartbeat");
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return LOST;
                }
            }
        }
    };
    if code == close::SERVICE_RESTART {
        // The commands this node has taken are applied and acknowledged before the client is
        // told to move, so it need not resend them elsewhere; what it sends from now on is
        // left unread, and it resends that on its next node (same ids).
        while commands.as_ref().is_some_and(|c| !c.is_done()) {
            let reply = next_reply(&mut commands).await;
            if send_ready(socket, &mut subscriber, reply.into_json().into())
                .await
                .is_err()
            {
                return LOST;
            }
        }
    }
    Box::pin(close_with(slot, socket, code, reason)).await
}

/// The reply to a teacher's next command; never, for a board.
async fn next_reply(commands: &mut Option<Commands<'_>>) -> Reply {
    match commands {
        Some(commands) => commands.next().await,
        None => std::future::pending().await,
    }
}

/// How long a closing connection waits for the client's answer to its close frame.
const LINGER: Duration = Duration::from_secs(3);

/// Sends the close frame, then reads and drops what the client still sends until it answers
/// the close (or [`LINGER`] passes). Closing a socket with unread data in it resets the
/// connection, and the client's kernel may then throw away the close frame that says why.
async fn close_with(
    slot: Option<&Slot>,
    socket: &mut WebSocket,
    code: u16,
    reason: &'static str,
) -> Closed {
    let closed = Closed {
        code,
        reason,
        by: "server",
    };
    if socket.send(closing_frame(code, reason)).await.is_err() {
        return closed;
    }
    linger(slot, async {
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    closed
}

/// Waits for `until` at most [`LINGER`], and not at all once a new connection needs the
/// place: a closing connection gives way first (a flood of refused connections, each
/// lingering, would otherwise hold the whole budget).
async fn linger(slot: Option<&Slot>, until: impl std::future::Future<Output = ()>) {
    let closing = slot.map(Slot::closing);
    let asked = async {
        match &closing {
            Some(closing) => closing.asked().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = timeout(LINGER, until) => {}
        () = asked => {}
    }
}

/// Ends a connection whose client sent a frame that cannot be read: over the size limit, a
/// text that is not UTF-8, or broken framing. The client is told with an `error` and a
/// standard close code. What it still sends is not read (an oversized frame would have to be
/// buffered whole), so the socket stays open for [`LINGER`] for the close frame to arrive
/// before the reset.
async fn refuse_frame(socket: &mut WebSocket, error: &axum::Error, slot: Option<&Slot>) -> Closed {
    use tungstenite::error::{CapacityError, Error};
    let inner = std::error::Error::source(error).and_then(|e| e.downcast_ref::<Error>());
    let (code, close_code, message, reason) = match inner {
        Some(Error::Capacity(CapacityError::MessageTooLong { size, max_size })) => (
            codes::TOO_LARGE,
            close::TOO_BIG,
            format!("Messages are at most {max_size} bytes; this one had {size}."),
            "message too big",
        ),
        Some(Error::Utf8(_)) => (
            codes::MALFORMED,
            close::INVALID_PAYLOAD,
            "Text messages must be valid UTF-8.".to_owned(),
            "invalid UTF-8",
        ),
        Some(Error::Protocol(e)) => (
            codes::MALFORMED,
            close::PROTOCOL_ERROR,
            format!("Not a valid WebSocket frame: {e}."),
            "protocol error",
        ),
        // The connection itself failed: nobody is left to tell.
        _ => return LOST,
    };
    let refusal = Refusal::new(code, message).to_json();
    if socket.send(Message::Text(refusal.into())).await.is_ok()
        && socket.send(closing_frame(close_code, reason)).await.is_ok()
    {
        linger(slot, std::future::pending()).await;
    }
    Closed {
        code: close_code,
        reason,
        by: "server",
    }
}

/// Sends `first` and every message the subscriber already has ready in one write: a
/// command's acknowledgement and the state it produced reach the teacher in one packet,
/// which halves the wake-ups on both ends when a whole school presses at once.
async fn send_ready(
    socket: &mut WebSocket,
    subscriber: &mut Subscriber,
    first: Utf8Bytes,
) -> Result<(), axum::Error> {
    socket.feed(Message::Text(first)).await?;
    while let Some(Some(next)) = subscriber.next().now_or_never() {
        socket.feed(Message::Text(next.as_ref().into())).await?;
    }
    socket.flush().await
}

fn closing_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

pub async fn authenticate(state: &AppState, role: Role, token: &str) -> Option<Peer> {
    match role {
        Role::Teacher => state
            .accounts
            .authenticate(token, false)
            .await
            .ok()
            .map(|a| Peer::Teacher {
                account: a.account,
                session: a.session_id,
            }),
        Role::Board => state
            .live
            .board_for_token(token)
            .await
            .ok()
            .flatten()
            .map(Peer::Board),
    }
}
