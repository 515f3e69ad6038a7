//! What a live connection is and may do, whatever carries it: who is on the other end
//! ([`Peer`]), the welcome it gets, the boards a teacher follows, the handling of one client
//! message ([`answer`]), and the session grant that ends it. The WebSocket and the SSE/POST
//! transports (in `http`) share all of this; it knows nothing of HTTP.

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::grants::Grant;
use super::protocol::{
    self, codes, ClientMsg, Command, Followed, Refusal, Role, ServerMsg, TeacherInfo, MAX_FOLLOWED,
};
use super::subscriber::Subscriber;
use super::{Live, LiveError};
use crate::domain::board::Shown;
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

/// A connection's hold on what it was opened with: a teacher's session, a board's identity.
pub fn identity_grant(live: &Live, peer: &Peer) -> Grant {
    match peer {
        Peer::Teacher { session, .. } => live.sessions.hold(*session),
        Peer::Board(board) => live.boards.hold(*board),
    }
}

/// What a connection is told when its [`identity_grant`] is revoked (short enough for a
/// WebSocket close frame).
pub fn identity_ended(peer: &Peer) -> &'static str {
    match peer {
        Peer::Teacher { .. } => {
            "Your session has ended (signed out, password changed or account disabled). Sign in again."
        }
        Peer::Board(_) => "A teacher revoked this board's identity. Claim a new one.",
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
        heartbeat_ms: u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX),
        account,
        board_id,
    }
    .to_json()
}

/// A `hello` or `watch` naming more boards than a connection may follow is refused whole.
pub fn too_many_boards(named: usize) -> Option<Refusal> {
    (named > MAX_FOLLOWED).then(|| {
        Refusal::new(
            codes::TOO_MANY_BOARDS,
            format!(
                "A connection follows at most {MAX_FOLLOWED} boards; this message named {named}. \
                 Name fewer, or open a second connection."
            ),
        )
    })
}

/// Follows each board the teacher may see, up to [`MAX_FOLLOWED`] on this connection. Each
/// board that is not followed gets its own `error` naming it: `not_found` (not paired with
/// this teacher) or `too_many_boards`.
pub async fn follow(
    live: &Live,
    subscriber: &mut Subscriber,
    account: &Account,
    boards: &[Followed],
) {
    if let Some(refusal) = too_many_boards(boards.len()) {
        subscriber.say(refusal.to_json());
        return;
    }
    for Followed { board, .. } in boards {
        if subscriber.follows(*board) {
            continue;
        }
        let result = if subscriber.followed() >= MAX_FOLLOWED {
            Err(Refusal::new(
                codes::TOO_MANY_BOARDS,
                format!("This connection already follows {MAX_FOLLOWED} boards, the most it may."),
            ))
        } else {
            let followed = match live.authorize(account, *board).await {
                Ok(()) => subscriber.follow(account.id, *board).await,
                Err(e) => Err(e),
            };
            followed.map_err(|e| e.refusal(None))
        };
        if let Err(refusal) = result {
            subscriber.say(refusal.about_board(*board).to_json());
        }
    }
}

/// What a connection answers one message with.
pub enum Reply {
    /// A message for the sender: `ack` or `pong`.
    Message(String),
    Refused(Refusal),
}

impl Reply {
    pub fn into_json(self) -> String {
        match self {
            Reply::Message(message) => message,
            Reply::Refused(refusal) => refusal.to_json(),
        }
    }
}

/// Applies a teacher's command that `arrived` then; the `ack`, or why not. Counted in the
/// metrics, with the time from its arrival (waiting for its turn included) to its ack.
pub async fn command(live: &Live, account: &Account, cmd: &Command, arrived: Instant) -> Reply {
    match live.command(account, cmd).await {
        Ok(version) => {
            live.measured.acked(arrived.elapsed());
            Reply::Message(
                ServerMsg::Ack {
                    id: cmd.id,
                    board: cmd.board,
                    version,
                }
                .to_json(),
            )
        }
        Err(e) => {
            live.measured.refused();
            Reply::Refused(e.refusal(Some(cmd.id)))
        }
    }
}

/// Commands of one connection that may wait for their turn; the message budget (40 at once)
/// keeps a connection well below it.
const COMMANDS_QUEUED: usize = 64;

/// A teacher connection's commands, applied one after another in the order they came. The
/// connection polls [`Commands::next`] beside its reading and writing, so a command that
/// waits (for a state replication has not brought yet) holds up neither its pings nor the
/// states it follows; and no task or channel stands between a command and its connection.
pub struct Commands<'a> {
    live: &'a Live,
    account: &'a Account,
    waiting: VecDeque<(Command, Instant)>,
    running: Option<Pin<Box<dyn Future<Output = Reply> + Send + 'a>>>,
}

impl<'a> Commands<'a> {
    pub fn new(live: &'a Live, account: &'a Account) -> Self {
        Self {
            live,
            account,
            waiting: VecDeque::new(),
            running: None,
        }
    }

    /// Takes a command that `arrived` then, or refuses it (try again in a second) when too
    /// many are waiting.
    pub fn push(&mut self, cmd: Command, arrived: Instant) -> Result<(), Refusal> {
        if self.waiting.len() >= COMMANDS_QUEUED {
            let busy = LiveError::RateLimited {
                retry_after: Duration::from_secs(1),
            };
            return Err(busy.refusal(Some(cmd.id)));
        }
        if self.running.is_none() {
            self.running = Some(self.start(cmd, arrived));
        } else {
            self.waiting.push_back((cmd, arrived));
        }
        Ok(())
    }

    /// Whether every command taken has been answered.
    pub fn is_done(&self) -> bool {
        self.running.is_none()
    }

    /// The reply to the oldest command not yet answered; pending while there is none. Safe
    /// to drop unfinished (in a `select!`): the command goes on where it was at the next call.
    pub async fn next(&mut self) -> Reply {
        let Some(running) = &mut self.running else {
            return std::future::pending().await;
        };
        let reply = running.as_mut().await;
        self.running = self
            .waiting
            .pop_front()
            .map(|(cmd, arrived)| self.start(cmd, arrived));
        reply
    }

    fn start(
        &self,
        cmd: Command,
        arrived: Instant,
    ) -> Pin<Box<dyn Future<Output = Reply> + Send + 'a>> {
        let (live, account) = (self.live, self.account);
        Box::pin(async move { command(live, account, &cmd, arrived).await })
    }
}

/// Handles one message from an authenticated peer at `client`; returns the direct reply,
/// if any. `subscriber` is the connection's feed where it has one (the WebSocket): without
/// one (`POST /api/live/messages`), `watch` is refused, since the event stream names its
/// boards when it opens.
pub async fn answer(
    live: &Live,
    peer: &Peer,
    msg: ClientMsg,
    client: IpAddr,
    subscriber: Option<&mut Subscriber>,
) -> Option<Reply> {
    let refused = |code, message: &str| Some(Reply::Refused(Refusal::new(code, message)));
    match (msg, peer) {
        (ClientMsg::Ping { t0 }, _) => Some(Reply::Message(
            ServerMsg::Pong {
                t0,
                server_time: now_ms(),
            }
            .to_json(),
        )),
        (ClientMsg::Command(cmd), Peer::Teacher { account, .. }) => {
            Some(command(live, account, &cmd, Instant::now()).await)
        }
        (ClientMsg::Command(cmd), Peer::Board(_)) => Some(Reply::Refused(
            Refusal::new(codes::FORBIDDEN, "Only teachers send commands.").with_id(Some(cmd.id)),
        )),
        (
            ClientMsg::Rendered {
                version,
                ready,
                cached,
                muted,
            },
            Peer::Board(board),
        ) => match live
            .rendered(
                *board,
                version,
                Shown {
                    ready,
                    cached,
                    muted,
                },
            )
            .await
        {
            Ok(()) => None,
            Err(e) => Some(Reply::Refused(e.refusal(None))),
        },
        (ClientMsg::Code, Peer::Board(board)) => match live.request_code(*board, client).await {
            Ok(_) => None,
            Err(e) => Some(Reply::Refused(e.refusal(None))),
        },
        (ClientMsg::Watch { boards }, Peer::Teacher { account, .. }) => match subscriber {
            Some(subscriber) => {
                follow(live, subscriber, account, &boards).await;
                None
            }
            None => refused(
                codes::FORBIDDEN,
                "There is nothing to watch on this transport: name the boards when opening \
                 /api/live/events.",
            ),
        },
        (ClientMsg::Hello { .. }, _) => refused(
            codes::MALFORMED,
            "hello is only the first message on a WebSocket; on the fallback, the token goes in \
             the Authorization header.",
        ),
        (_, _) => refused(codes::FORBIDDEN, "This message is not for your role."),
    }
}
