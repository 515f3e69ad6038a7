//! The live channel's WebSocket transport at `/ws`: `Origin` check, `hello` first, then
//! messages both ways until either side goes away. What a message does is
//! `live::connection`'s; this file owns the socket, its budget and its close codes.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::{interval_at, timeout, Instant};

use super::connections::Slot;
use super::error::ApiError;
use super::extract::ClientIp;
use super::AppState;
use crate::config::Config;
use crate::live::connection::{answer, follow, session_ended, session_grant, welcome, Peer};
use crate::live::grants::Grant;
use crate::live::protocol::{self, close, ClientMsg, Role, ServerMsg};
use crate::live::subscriber::Subscriber;
use crate::live::{until_closing, Live};

/// How many refused messages a connection may send before it is closed.
const STRIKES: u32 = 20;
const HELLO_WITHIN: Duration = Duration::from_secs(10);
const SESSION_ENDED: &str = "session ended; sign in again";
const WRITE_COALESCE_BYTES: usize = 16 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    slot: Option<Extension<Slot>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.config) {
        return ApiError::Forbidden {
            code: "origin_not_allowed",
            message: "This page's origin may not open a live connection to this server.".into(),
        }
        .into_response();
    }
    // tungstenite's default buffers are 128 KiB each way; an idle board needs almost none.
    // Messages queued with `feed` wait in the write buffer up to this size until a flush,
    // so that those ready at the same moment leave in one write (see `send_ready`).
    ws.read_buffer_size(1024)
        .write_buffer_size(WRITE_COALESCE_BYTES)
        .max_message_size(protocol::MAX_MESSAGE_BYTES)
        .max_frame_size(protocol::MAX_MESSAGE_BYTES)
        // Boxed so that every connection's future holds the idle loop, not the largest
        // state any step of it (database calls included) ever needs.
        .on_upgrade(move |socket| {
            Box::pin(async move {
                // The WebSocket keeps its connection's place in the connection budget.
                let _slot = slot;
                run(socket, state, client).await
            })
        })
}

/// Browsers always send `Origin` on a WebSocket: it must be this server's own origin (the
/// `Host` it was reached at) or one of the configured front-end origins. Non-browser clients
/// send none and are let through; they authenticate like everyone else.
pub fn origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
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
    own || config.allowed_origins.iter().any(|o| o == origin)
}

async fn run(socket: WebSocket, state: AppState, client: IpAddr) {
    let (mut sink, mut stream) = socket.split();
    let hello = match timeout(HELLO_WITHIN, stream.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => ClientMsg::parse(&text).ok(),
        Ok(_) => None,
        Err(_) => {
            let _ = sink.send(closing_frame(close::TIMEOUT, "no hello")).await;
            return;
        }
    };
    let Some(ClientMsg::Hello {
        protocol,
        role,
        token,
        boards,
        ..
    }) = hello
    else {
        let _ = sink
            .send(closing_frame(
                close::UNAUTHENTICATED,
                "the first message must be hello",
            ))
            .await;
        return;
    };
    if !(protocol::OLDEST_ACCEPTED..=protocol::PROTOCOL).contains(&protocol) {
        let _ = sink
            .send(closing_frame(
                close::PROTOCOL_VERSION,
                "unsupported protocol version",
            ))
            .await;
        return;
    }
    let Some(peer) = Box::pin(authenticate(&state, role, &token)).await else {
        let _ = sink
            .send(closing_frame(close::UNAUTHENTICATED, "invalid token"))
            .await;
        return;
    };

    let live = state.live.clone();
    let _counted = match live.connection(peer.sender(), matches!(peer, Peer::Teacher { .. })) {
        Ok(guard) => guard,
        Err(_) => {
            let _ = sink
                .send(closing_frame(
                    close::TOO_MANY_CONNECTIONS,
                    "too many connections",
                ))
                .await;
            return;
        }
    };
    let mut subscriber = Subscriber::new(live.clone());
    subscriber.say(welcome(&peer, live.heartbeat));
    match &peer {
        Peer::Teacher { account, .. } => {
            Box::pin(follow(&live, &mut subscriber, account, &boards)).await
        }
        Peer::Board(board) => {
            if let Err(e) = Box::pin(subscriber.be_board(*board)).await {
                subscriber.say(Live::error_message(&e, None));
            }
        }
    }

    let mut session = session_grant(&live, &peer);
    let mut strikes = 0u32;
    let mut last_heard = Instant::now();
    // A random phase: after an 8:30 storm, thousands of connections would otherwise all be
    // pinged in the same instant every period.
    let phase = live.heartbeat.mul_f64(rand::random::<f64>());
    let mut heartbeat = interval_at(Instant::now() + phase, live.heartbeat);
    let mut shutting_down = live.closing.subscribe();
    loop {
        tokio::select! {
            () = session_ended(&mut session) => {
                let _ = sink.send(closing_frame(close::SESSION_ENDED, SESSION_ENDED)).await;
                break;
            }
            _ = until_closing(&mut shutting_down) => {
                let _ = sink.send(closing_frame(close::GOING_AWAY, "server restarting")).await;
                break;
            }
            incoming = stream.next() => {
                // Once the session has ended, not one more message is handled, even if it
                // arrived in the same instant.
                if session.as_ref().is_some_and(Grant::is_revoked) {
                    let _ = sink.send(closing_frame(close::SESSION_ENDED, SESSION_ENDED)).await;
                    break;
                }
                let Some(Ok(message)) = incoming else { break };
                last_heard = Instant::now();
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        strikes += 1;
                        subscriber.say(ServerMsg::error("malformed", "Send JSON text messages.", None).to_json());
                        continue;
                    }
                };
                let parsed = ClientMsg::parse(&text);
                if let Err(e) = live.message_budget(peer.sender()) {
                    strikes += 1;
                    if strikes > STRIKES {
                        let _ = sink.send(closing_frame(close::RATE_LIMITED, "too many messages")).await;
                        break;
                    }
                    let id = parsed.as_ref().ok().and_then(ClientMsg::command_id);
                    subscriber.say(Live::error_message(&e, id));
                    continue;
                }
                let reply = match parsed {
                    Ok(ClientMsg::Watch { boards }) => match &peer {
                        Peer::Teacher { account, .. } => {
                            Box::pin(follow(&live, &mut subscriber, account, &boards)).await;
                            None
                        }
                        Peer::Board(_) => Some(ServerMsg::error("forbidden", "Boards cannot watch other boards.", None).to_json()),
                    },
                    Ok(ClientMsg::Hello { .. }) => Some(ServerMsg::error("malformed", "hello is only the first message.", None).to_json()),
                    Ok(msg) => Box::pin(answer(&live, &peer, msg, client)).await,
                    Err(e) => {
                        strikes += 1;
                        Some(ServerMsg::error("malformed", format!("Not a message of protocol {}: {e}", protocol::PROTOCOL), None).to_json())
                    }
                };
                if strikes > STRIKES {
                    let _ = sink.send(closing_frame(close::MALFORMED, "too many malformed messages")).await;
                    break;
                }
                if let Some(reply) = reply {
                    if send_ready(&mut sink, &mut subscriber, reply.into()).await.is_err() {
                        break;
                    }
                }
            }
            Some(out) = subscriber.next() => {
                if send_ready(&mut sink, &mut subscriber, out.as_ref().into()).await.is_err() {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > live.dead_after() {
                    let _ = sink.send(closing_frame(close::TIMEOUT, "no heartbeat")).await;
                    break;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Sends `first` and every message the subscriber already has ready in one write: a
/// command's acknowledgement and the state it produced reach the teacher in one packet,
/// which halves the wake-ups on both ends when a whole school presses at once.
async fn send_ready(
    sink: &mut SplitSink<WebSocket, Message>,
    subscriber: &mut Subscriber,
    first: Utf8Bytes,
) -> Result<(), axum::Error> {
    sink.feed(Message::Text(first)).await?;
    while let Some(Some(next)) = subscriber.next().now_or_never() {
        sink.feed(Message::Text(next.as_ref().into())).await?;
    }
    sink.flush().await
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
