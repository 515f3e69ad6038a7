//! What a live connection is and may do, whatever carries it: who is on the other end
//! ([`Peer`]), the welcome it gets, the boards a teacher follows, the handling of one client
//! message ([`answer`]), and the session grant that ends it. The WebSocket and the SSE/POST
//! transports (in `http`) share all of this; it knows nothing of HTTP.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use super::grants::Grant;
use super::protocol::{self, ClientMsg, Followed, Role, ServerMsg, TeacherInfo};
use super::subscriber::Subscriber;
use super::Live;
use crate::domain::hlc::wall_millis as now_ms;
use crate::store::Account;

/// Who is on the other end, once `hello` was accepted.
#[derive(Clone)]
pub enum Peer {
    /// A teacher, and the session the connection was opened with.
    Teacher {
        account: Account,
        session: Uuid,
    },
    Board(Uuid),
}

impl Peer {
    /// Whose message budget a message spends: the teacher's account, or the board.
    pub fn sender(&self) -> Uuid {
        match self {
            Peer::Teacher { account, .. } => account.id,
            Peer::Board(board) => *board,
        }
    }
}

/// A teacher connection's hold on its session (none for a board).
pub fn session_grant(live: &Live, peer: &Peer) -> Option<Grant> {
    match peer {
        Peer::Teacher { session, .. } => Some(live.sessions.hold(*session)),
        Peer::Board(_) => None,
    }
}

/// Resolves when the teacher's session ends; never for a board.
pub async fn session_ended(grant: &mut Option<Grant>) {
    match grant {
        Some(grant) => grant.revoked().await,
        None => std::future::pending().await,
    }
}

pub fn welcome(peer: &Peer, heartbeat: Duration) -> String {
    let (role, account, board_id) = match peer {
        Peer::Teacher { account: a, .. } => (
            Role::Teacher,
            Some(TeacherInfo {
                id: a.id,
                name: a.name.clone(),
            }),
            None,
        ),
        Peer::Board(b) => (Role::Board, None, Some(*b)),
    };
    ServerMsg::Welcome {
        protocol: protocol::PROTOCOL,
        role,
        server_time: now_ms(),
        heartbeat_ms: heartbeat.as_millis() as u64,
        account,
        board_id,
    }
    .to_json()
}

/// Follows each board the teacher may see; answers `not_found` for the others.
pub async fn follow(
    live: &Live,
    subscriber: &mut Subscriber,
    account: &Account,
    boards: &[Followed],
) {
    for followed in boards.iter().take(100) {
        let result = match live.authorize(account, followed.board).await {
            Ok(()) => subscriber.follow(account.id, followed.board).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            subscriber.say(Live::error_message(&e, None));
        }
    }
}

/// Handles one message from an authenticated peer at `client`; returns the direct reply,
/// if any.
pub async fn answer(live: &Live, peer: &Peer, msg: ClientMsg, client: IpAddr) -> Option<String> {
    match (msg, peer) {
        (ClientMsg::Ping { t0 }, _) => Some(
            ServerMsg::Pong {
                t0,
                server_time: now_ms(),
            }
            .to_json(),
        ),
        (ClientMsg::Command(cmd), Peer::Teacher { account, .. }) => {
            Some(match live.command(account, &cmd).await {
                Ok(version) => ServerMsg::Ack {
                    id: cmd.id,
                    board: cmd.board,
                    version,
                }
                .to_json(),
                Err(e) => Live::error_message(&e, Some(cmd.id)),
            })
        }
        (ClientMsg::Rendered { version }, Peer::Board(board)) if version.fract() == 0.0 => {
            match live.rendered(*board, version as i64).await {
                Ok(()) => None,
                Err(e) => Some(Live::error_message(&e, None)),
            }
        }
        (ClientMsg::Rendered { .. }, Peer::Board(_)) => {
            Some(ServerMsg::error("malformed", "A version is a whole number.", None).to_json())
        }
        (ClientMsg::Code, Peer::Board(board)) => match live.request_code(*board, client).await {
            Ok(_) => None,
            Err(e) => Some(Live::error_message(&e, None)),
        },
        (ClientMsg::Command(cmd), Peer::Board(_)) => Some(
            ServerMsg::error("forbidden", "Only teachers send commands.", Some(cmd.id)).to_json(),
        ),
        (_, _) => Some(
            ServerMsg::error("forbidden", "This message is not for your role.", None).to_json(),
        ),
    }
}
