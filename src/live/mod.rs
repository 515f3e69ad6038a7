//! The live classroom: board identities and pairing, teacher commands, and the channels that
//! carry board states to every connected page.
//!
//! [`Live`] is the domain service both transports share (`http::live_ws` for WebSockets,
//! `http::live_sse` for the fallback, with what a connection may do in [`connection`]); it
//! knows nothing of HTTP. It checks every board against the teacher asking,
//! applies commands with [`crate::domain::board::apply`], stores the result before it is
//! acknowledged, and publishes it through the [`hub::Hub`] to this node's pages and through
//! the [`Bus`] to the other nodes, whose events it follows in turn ([`Live::hear`]): a board
//! steered on one node shows the change on every node, read from the store.

pub mod connection;
mod follow;
pub mod grants;
pub mod hub;
pub mod limits;
mod pairing;
pub mod protocol;
pub mod subscriber;
mod upkeep;

use upkeep::SessionCheck;
pub use upkeep::{CODE_RETENTION, SESSION_RECHECK, STATE_RETENTION, UNPAIRED_BOARD_RETENTION};

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::auth::token;
use crate::bus::{Bus, Event, Heard, PRESENCE_REFRESH};
use crate::domain::account::parse_name;
use crate::domain::board::{
    apply, fingerprint, BoardState, CommandError, LessonAt, Op, PairingCode, Shown,
};
use crate::domain::hlc::{millis_of, wall_millis as now_ms, Hlc, Version};
use crate::domain::lesson::LessonContent;
use crate::domain::ValidationError;
use crate::store::{Account, ActiveCode, BoardPairing, Saved, Store, StoreError};
use grants::Grants;
use hub::{Hub, Presence, Snapshot};
use limits::{Limited, LiveLimits};
use protocol::{codes, CodeInfo, Command, Refusal, ServerMsg};

/// How far ahead of this server's clock a `seen` version may be: clocks of a cluster's
/// servers differ by far less (`cluster status` warns past a second).
pub const SEEN_AHEAD_MAX: Duration = Duration::from_secs(60);

/// The longest a pairing code may live (the default): long enough to walk to a laptop and
/// type it, short enough that a photographed code is soon useless.
pub const CODE_TTL_MAX: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("no board shows this code")]
    UnknownCode,
    #[error("this board never had a state of this version")]
    UnknownVersion,
    #[error("this server has not received the board's newest state yet")]
    Behind,
    #[error("too many live connections for this {0}")]
    TooManyConnections(&'static str),
    #[error("too many attempts")]
    RateLimited { retry_after: Duration },
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for LiveError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => LiveError::NotFound,
            other => LiveError::Store(other),
        }
    }
}

impl From<Limited> for LiveError {
    fn from(l: Limited) -> Self {
        LiveError::RateLimited {
            retry_after: l.retry_after,
        }
    }
}

/// A new board identity.
pub struct Claimed {
    pub board: Uuid,
    pub token: String,
    pub code: ActiveCode,
}

/// Who controls a board, and the code it shows (none while presenting).
pub struct Pairing {
    /// Whether any teacher is paired with the board.
    pub paired: bool,
    /// Their names; none while the board keeps names off (its state's `name_hidden`).
    pub teachers: Vec<String>,
    pub code: Option<ActiveCode>,
}

/// A teacher's board as listed.
pub struct BoardSummary {
    pub pairing: BoardPairing,
    pub presence: Presence,
    pub state_version: Option<i64>,
}

pub struct Live {
    store: Arc<dyn Store>,
    pub hub: Hub,
    /// The other nodes: told of every change here, heard through [`Live::hear`].
    bus: Arc<dyn Bus>,
    /// This node's clock, which observes every version another node announces.
    clock: Arc<Hlc>,
    limits: LiveLimits,
    /// Recent positive authorizations, by (teacher, board).
    authorized: Mutex<HashMap<(Uuid, Uuid), Instant>>,
    /// Sessions of teachers with open live connections; revoking one closes them.
    pub sessions: Grants<Uuid>,
    /// (teacher, board) pairings that open connections follow; revoking one ends the feed.
    pub pairings: Grants<(Uuid, Uuid)>,
    /// Board identities that open connections of boards rely on (revoked by a teacher).
    pub boards: Grants<Uuid>,
    /// What [`Live::recheck_sessions`] saw last.
    session_check: Mutex<SessionCheck>,
    /// Code draws on this node take turns, so two never pick the same free digits.
    drawing: tokio::sync::Mutex<()>,
    /// Open live connections per teacher account or board, on this node.
    connections: Mutex<HashMap<Uuid, u32>>,
    /// Flipped to `true` once the server has stopped accepting connections on its way down:
    /// live connections then end (WebSockets with 1012 once their commands in flight are
    /// answered, event streams after a `restart` message) so clients reconnect elsewhere at
    /// once.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// How long a pairing code lives (at most [`CODE_TTL_MAX`]).
    code_ttl: Duration,
    /// How often connections are pinged; one silent for 7/3 of this is dead (15 s → 35 s).
    pub heartbeat: Duration,
    /// The newest state another node announced with its event, per board, for when this
    /// node's store does not have it (yet): replication is slower than the event, or cut.
    carried: Mutex<HashMap<Uuid, (i64, Arc<str>)>>,
    /// The command metrics.
    pub measured: CommandMetrics,
    /// Turns of connections setting up (see [`Live::setup_turn`]).
    setups: tokio::sync::Semaphore,
}

/// Connections that may set up at once (authenticate, subscribe, read their first state),
/// each with its own database reads in flight. An 8:30 storm of thousands otherwise sets
/// them all up together: the setups are no faster for it (the database serves a few at a
/// time), but the allocator's high-water mark, which a node keeps long after the storm, was
/// all of theirs at once (issue 23: about half of an idle board's memory at 2,000 boards).
pub const SETUPS_AT_ONCE: usize = 32;

/// The metrics of teachers' commands, registered once when the node starts (after the
/// metrics recorder, if any, is installed): a command then costs an atomic addition and a
/// histogram sample, with no lookup.
pub struct CommandMetrics {
    acked: metrics::Counter,
    refused: metrics::Counter,
    ack_seconds: metrics::Histogram,
}

impl CommandMetrics {
    fn new() -> Self {
        Self {
            acked: metrics::counter!("classcast_commands_total", "outcome" => "acked"),
            refused: metrics::counter!("classcast_commands_total", "outcome" => "refused"),
            ack_seconds: metrics::histogram!("classcast_command_ack_seconds"),
        }
    }

    /// A command was acknowledged, `taken` after it arrived.
    pub fn acked(&self, taken: Duration) {
        self.acked.increment(1);
        self.ack_seconds.record(taken);
    }

    pub fn refused(&self) {
        self.refused.increment(1);
    }
}

/// Boards whose carried state a node keeps at most (each at most
/// [`crate::bus::CARRIED_BYTES`]); past it the oldest news is forgotten, and boards wait for
/// replication as they would without it.
const CARRIED_BOARDS: usize = 10_000;

/// Tries to find digits no waiting board shows. With a million codes a miss is as likely as
/// the share of codes in use; twenty misses in a row mean the space is nearly full.
const CODE_DRAWS: usize = 20;

/// How long a teacher's right to a board is trusted without asking the store again.
pub const AUTHORIZED_FOR: Duration = Duration::from_secs(60);
const AUTHORIZED_CACHE: usize = 100_000;

impl Live {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        clock: Arc<Hlc>,
        heartbeat: Duration,
        code_ttl: Duration,
    ) -> Self {
        Self {
            store,
            hub: Hub::default(),
            bus,
            clock,
            limits: LiveLimits::new(),
            authorized: Mutex::new(HashMap::new()),
            sessions: Grants::default(),
            pairings: Grants::default(),
            boards: Grants::default(),
            session_check: Mutex::new(SessionCheck {
                mark: None,
                at: Instant::now(),
            }),
            drawing: tokio::sync::Mutex::new(()),
            connections: Mutex::new(HashMap::new()),
            closing: tokio::sync::watch::channel(false).0,
            code_ttl: code_ttl.min(CODE_TTL_MAX),
            heartbeat,
            carried: Mutex::new(HashMap::new()),
            measured: CommandMetrics::new(),
            setups: tokio::sync::Semaphore::new(SETUPS_AT_ONCE),
        }
    }

    /// A turn to set a connection up, among at most [`SETUPS_AT_ONCE`]; held only while this
    /// node does its own work (database reads), never while it waits for the client, so no
    /// client can hold one.
    pub async fn setup_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed.
        self.setups.acquire().await.ok()
    }

    /// A connection that sent nothing (not even a pong) for this long is closed.
    pub fn dead_after(&self) -> Duration {
        self.heartbeat * 7 / 3
    }

    /// Checks that the teacher may follow and steer this board. A positive answer is
    /// remembered for [`AUTHORIZED_FOR`]: a burst of presses then costs no database reads.
    /// Unpairing on this node forgets it at once; on another node it lapses within that time.
    pub async fn authorize(&self, account: &Account, board: Uuid) -> Result<(), LiveError> {
        let key = (account.id, board);
        let fresh = |at: &Instant| at.elapsed() < AUTHORIZED_FOR;
        if self.authorized.lock().get(&key).is_some_and(fresh) {
            return Ok(());
        }
        self.store.board_pairing(account.id, board).await?;
        let mut cache = self.authorized.lock();
        if cache.len() >= AUTHORIZED_CACHE {
            cache.retain(|_, at| fresh(at));
        }
        cache.insert(key, Instant::now());
        Ok(())
    }

    /// The board's newest state, loaded into the hub on first use with the lesson revision
    /// it presents (the slide view is derived from it: the store keeps no rendered HTML).
    pub async fn state(&self, board: Uuid) -> Result<Arc<Snapshot>, LiveError> {
        let channel = self.hub.channel(board);
        if let Some(s) = channel.state.borrow().clone() {
            return Ok(s);
        }
        let (stored, lesson) = self.load(board, None).await?;
        self.hub.publish(stored, lesson);
        let loaded = channel.state.borrow().clone();
        loaded.ok_or(LiveError::NotFound)
    }

    /// The board's newest stored state, its slide view restored from the revision it
    /// presents: the one `known` already holds, if it is the same.
    async fn load(
        &self,
        board: Uuid,
        known: Option<&Snapshot>,
    ) -> Result<(BoardState, Option<Arc<LessonContent>>), LiveError> {
        let stored = self
            .store
            .board_state(board)
            .await?
            .unwrap_or_else(|| BoardState::idle(board));
        self.with_lesson(stored, known).await
    }

    /// A stored state with its slide view restored from the revision it presents: the one
    /// `known` already holds, if it is the same, or the store's.
    async fn with_lesson(
        &self,
        mut stored: BoardState,
        known: Option<&Snapshot>,
    ) -> Result<(BoardState, Option<Arc<LessonContent>>), LiveError> {
        let Some(presented) = &stored.lesson else {
            return Ok((stored, None));
        };
        let same = known.and_then(|k| match (&k.state.lesson, &k.lesson) {
            (Some(p), Some(content))
                if (p.id, p.revision) == (presented.id, presented.revision) =>
            {
                Some(content.clone())
            }
            _ => None,
        });
        let content = match same {
            Some(content) => content,
            None => Arc::new(
                self.store
                    .presented_revision(presented.id, presented.revision)
                    .await?,
            ),
        };
        stored.restore_slide(&content);
        Ok((stored, Some(content)))
    }

    /// Applies a teacher's command; returns the version it produced once that is stored.
    /// A command id seen before is answered with its version and applied no second time.
    #[tracing::instrument(level = "debug", skip_all, fields(board = %cmd.board, command = %cmd.id, op = %cmd.op))]
    pub async fn command(&self, account: &Account, cmd: &Command) -> Result<i64, LiveError> {
        self.authorize(account, cmd.board).await?;
        let op = Op::parse(&cmd.op, &cmd.args)?;
        self.limits.command(account.id)?;
        if Version(cmd.seen).millis() > now_ms() + millis_of(SEEN_AHEAD_MAX) {
            return Err(CommandError::InvalidArgs(format!(
                "`seen` {} is a version no server has made yet: send the newest version of \
                 the board you were sent, or 0",
                cmd.seen
            ))
            .into());
        }
        let channel = self.hub.channel(cmd.board);
        let known = channel
            .state
            .borrow()
            .as_ref()
            .map_or(0, |k| k.state.version);
        if cmd.seen > known {
            // The client saw a newer state elsewhere: wait for it here, without holding the
            // board's turn (other teachers' commands go on meanwhile), then apply to it.
            self.caught_up(cmd.board, cmd.seen).await?;
        }
        let _one_at_a_time = channel.commands.lock().await;
        let current = self.state(cmd.board).await?;
        if cmd.seen > current.state.version {
            return Err(LiveError::Behind);
        }
        let lesson = match (&op, &current.state.lesson) {
            (Op::Present { lesson, .. }, _) => {
                let record = self.store.lesson(account.id, *lesson).await?;
                Some((record.id, record.revision, Arc::new(record.content.clone())))
            }
            (_, Some(presented)) => Some((
                presented.id,
                presented.revision,
                current.lesson.clone().ok_or(LiveError::NotFound)?,
            )),
            (_, None) => None,
        };
        let at = lesson.as_ref().map(|(id, revision, content)| LessonAt {
            id: *id,
            revision: *revision,
            content,
        });
        let mut next = apply(&current.state, &op, at, &account.name, now_ms())?;
        if next == current.state {
            // `next` on the last slide and the like: nothing to store or send. A resend of a
            // command that was stored still answers the version it produced.
            return match self.store.command_outcome(cmd.id).await? {
                Some((board, version)) => earlier_outcome(board, version, cmd),
                None => Ok(current.state.version),
            };
        }
        // The store recognises a resent command id and then writes nothing.
        match self.store.save_board_state(cmd.id, &next).await? {
            Saved::Before { board, version } => earlier_outcome(board, version, cmd),
            Saved::New(version) => {
                next.version = version.0;
                // What the board's idle screen shows follows: its code, and whose names.
                let presenting_changed = current.state.is_presenting() != next.is_presenting()
                    || current.state.name_hidden != next.name_hidden;
                let content = next.lesson.as_ref().and(lesson.map(|(_, _, c)| c));
                let stored = self.bus.carries_states().then(|| next.stored_json().into());
                self.hub.publish(next, content);
                self.bus.publish(Event::State {
                    board: cmd.board,
                    version: version.0,
                    stored,
                });
                if presenting_changed {
                    self.pairing_changed(cmd.board);
                }
                Ok(version.0)
            }
        }
    }

    /// A board reports the state version it now shows. Only a version the board's state has
    /// had counts: a made-up one would freeze the board's status in the console.
    pub async fn rendered(&self, board: Uuid, version: i64, shown: Shown) -> Result<(), LiveError> {
        let channel = self.hub.channel(board);
        let loaded = channel.state.borrow().as_ref().map(|s| s.state.version);
        let newest = match loaded {
            Some(version) => version,
            None => self.state(board).await?.state.version,
        };
        // Every board starts at version 0, the idle state it was sent before any command.
        let issued = version == newest
            || version == 0
            || (version < newest && self.store.had_board_state(board, version).await?);
        if !issued {
            return Err(LiveError::UnknownVersion);
        }
        let changed = channel.change_local(|p| p.report(version, shown));
        self.tell_presence(board, changed);
        Ok(())
    }

    /// Counts a live connection of a teacher (by account) or a board, refused past
    /// [`CONNECTIONS_PER_TEACHER`] or [`CONNECTIONS_PER_BOARD`]; the guard uncounts it.
    pub fn connection(
        self: &Arc<Self>,
        sender: Uuid,
        teacher: bool,
    ) -> Result<ConnectionGuard, LiveError> {
        let (limit, what) = match teacher {
            true => (CONNECTIONS_PER_TEACHER, "account"),
            false => (CONNECTIONS_PER_BOARD, "board"),
        };
        let mut open = self.connections.lock();
        let count = open.entry(sender).or_default();
        if *count >= limit {
            return Err(LiveError::TooManyConnections(what));
        }
        *count += 1;
        Ok(ConnectionGuard {
            live: self.clone(),
            sender,
        })
    }

    /// A board page connected; the guard marks it gone when dropped.
    pub fn board_connected(self: &Arc<Self>, board: Uuid) -> PresenceGuard {
        let changed = self.hub.channel(board).change_local(|p| p.online += 1);
        self.tell_presence(board, changed);
        PresenceGuard {
            live: self.clone(),
            board,
        }
    }
}

/// What a command whose id was stored before answers: the version it produced, if it was
/// for the same board (ids are global; one made for another board is not this command).
fn earlier_outcome(board: Uuid, version: Version, cmd: &Command) -> Result<i64, LiveError> {
    match board == cmd.board {
        true => Ok(version.0),
        false => Err(CommandError::InvalidArgs(
            "this command id was used for another board".into(),
        )
        .into()),
    }
}

impl LiveError {
    /// The protocol's answer to a failed command (`id`) or request.
    pub fn refusal(&self, id: Option<Uuid>) -> Refusal {
        let refusal = match self {
            LiveError::NotFound | LiveError::UnknownCode => Refusal::new(
                codes::NOT_FOUND,
                "There is no such board or lesson of yours.",
            ),
            LiveError::Command(CommandError::NotPresenting) => {
                Refusal::new(codes::NOT_PRESENTING, self.to_string())
            }
            LiveError::Command(CommandError::EmptyLesson) => {
                Refusal::new(codes::EMPTY_LESSON, self.to_string())
            }
            LiveError::Command(CommandError::WrongSlideKind(_)) => {
                Refusal::new(codes::WRONG_SLIDE, self.to_string())
            }
            LiveError::Command(_) => Refusal::new(codes::INVALID_COMMAND, self.to_string()),
            LiveError::RateLimited { retry_after } => Refusal {
                retry_after: Some(*retry_after),
                ..Refusal::new(codes::RATE_LIMITED, "Too many messages; slow down.")
            },
            LiveError::Invalid(v) => Refusal::new(
                codes::MALFORMED,
                v.fields
                    .iter()
                    .map(|(field, message)| format!("{field}: {message}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            LiveError::TooManyConnections(_) => Refusal {
                retry_after: Some(Duration::from_secs(10)),
                ..Refusal::new(
                    codes::TOO_MANY_CONNECTIONS,
                    format!("{self}; close another page first."),
                )
            },
            LiveError::UnknownVersion => Refusal::new(
                codes::MALFORMED,
                "No state of this board had that version; report versions you were sent.",
            ),
            LiveError::Behind => Refusal {
                retry_after: Some(Duration::from_secs(1)),
                ..Refusal::new(
                    codes::UNAVAILABLE,
                    "This server has not received the newest state of this board yet; try \
                     again in a moment.",
                )
            },
            LiveError::Store(cause) => {
                tracing::error!(cause = %crate::error_chain(cause), "live request failed");
                Refusal {
                    retry_after: Some(Duration::from_secs(1)),
                    ..Refusal::new(
                        codes::UNAVAILABLE,
                        "The server cannot reach its database; try again.",
                    )
                }
            }
        };
        refusal.with_id(id)
    }
}

/// Resolves once the server begins shutting down (see [`Live::closing`]).
pub async fn until_closing(closing: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across the caller's next await.
    let _ = closing.wait_for(|c| *c).await.map(|_| ());
}

/// Live connections one teacher account may hold open on a node: phone, laptop and tablet
/// with a few tabs each, and room to spare.
pub const CONNECTIONS_PER_TEACHER: u32 = 30;
/// Live connections one board token may hold open on a node: the board page, a reload that
/// overlaps the old page, a second screen.
pub const CONNECTIONS_PER_BOARD: u32 = 8;

/// Keeps a live connection counted while it lives.
pub struct ConnectionGuard {
    live: Arc<Live>,
    sender: Uuid,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.live.connections.lock();
        if let Some(count) = open.get_mut(&self.sender) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.sender);
            }
        }
    }
}

/// Keeps a board counted as online while its connection lives.
pub struct PresenceGuard {
    live: Arc<Live>,
    board: Uuid,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let channel = self.live.hub.channel(self.board);
        let changed = channel.change_local(|p| p.online = p.online.saturating_sub(1));
        self.live.tell_presence(self.board, changed);
    }
}
