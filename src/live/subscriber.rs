//! What one connected page receives, as one stream of ready-to-send messages: the states of
//! the boards it follows, their online/rendered status (teachers), its pairing (boards), and
//! anything said to it directly. Shared by the WebSocket and SSE transports.
//!
//! The connection's own task pulls from this stream only when it can write, so there is no
//! queue and no task per followed board: a slow page simply gets the newest state of each
//! board when it is ready (the `watch` channels behind the stream keep only the newest), and
//! a board change costs one wake-up of each connection that follows it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{BoxStream, SelectAll};
use futures_util::{future, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::sleep;
use tokio_stream::wrappers::WatchStream;
use uuid::Uuid;

use super::grants::Grant;
use super::protocol::ServerMsg;
use super::{Live, LiveError, PresenceGuard};
use crate::domain::hlc::{millis_of, wall_millis as now_ms};

pub struct Subscriber {
    live: Arc<Live>,
    direct: VecDeque<Arc<str>>,
    feeds: SelectAll<BoxStream<'static, Arc<str>>>,
    /// Each followed board's id, once its pairing with the teacher ends. Made on the first
    /// follow: a board's page follows nothing, and an empty set still allocates.
    unpaired: Option<SelectAll<BoxStream<'static, Uuid>>>,
    followed: Vec<Uuid>,
    _presence: Option<PresenceGuard>,
}

impl Subscriber {
    pub fn new(live: Arc<Live>) -> Self {
        Self {
            live,
            direct: VecDeque::new(),
            feeds: SelectAll::new(),
            unpaired: None,
            followed: Vec::new(),
            _presence: None,
        }
    }

    /// Whether this page follows the board.
    pub fn follows(&self, board: Uuid) -> bool {
        self.followed.contains(&board)
    }

    /// How many boards this page follows.
    pub fn followed(&self) -> usize {
        self.followed.len()
    }

    /// Queues a message for this page ahead of any board update.
    pub fn say(&mut self, message: impl Into<Arc<str>>) {
        self.direct.push_back(message.into());
    }

    /// Teacher: the board's states and its online/rendered status, until the teacher's
    /// pairing with the board ends (then an `unfollowed` message, and nothing more of it).
    pub async fn follow(&mut self, account: Uuid, board: Uuid) -> Result<(), LiveError> {
        if self.followed.contains(&board) {
            return Ok(());
        }
        let pairing = self.live.pairings.hold((account, board));
        let states = self.states(board).await?;
        self.followed.push(board);
        self.feeds
            .push(states.take_until(revoked(&pairing)).boxed());
        self.unpaired.get_or_insert_with(SelectAll::new).push(
            futures_util::stream::once(revoked(&pairing))
                .map(move |()| board)
                .boxed(),
        );
        let presence = self.live.hub.channel(board).presence.subscribe();
        self.feeds.push(
            WatchStream::new(presence)
                .take_until(revoked(&pairing))
                .map(move |p| {
                    ServerMsg::Board {
                        board,
                        online: p.online > 0,
                        rendered_version: p.rendered_version,
                        ready: p.shown.ready,
                        cached: p.shown.cached,
                        muted: p.shown.muted,
                    }
                    .to_json()
                    .into()
                })
                .boxed(),
        );
        Ok(())
    }

    /// Board page: its own states and pairing; it counts as online while this lives.
    pub async fn be_board(&mut self, board: Uuid) -> Result<(), LiveError> {
        self._presence = Some(self.live.board_connected(board));
        let states = self.states(board).await?;
        self.feeds.push(states);
        let changes = self.live.hub.channel(board).pairing.subscribe();
        self.feeds
            .push(pairing_feed(self.live.clone(), board, changes).boxed());
        Ok(())
    }

    /// The board's state messages, each version once, starting with the current one.
    async fn states(&mut self, board: Uuid) -> Result<BoxStream<'static, Arc<str>>, LiveError> {
        self.live.state(board).await?;
        let states = self.live.hub.channel(board).state.subscribe();
        let mut sent = i64::MIN;
        Ok(WatchStream::new(states)
            .filter_map(move |snapshot| {
                let fresh = snapshot.filter(|s| s.state.version > sent);
                if let Some(s) = &fresh {
                    sent = s.state.version;
                }
                future::ready(fresh.map(|s| s.message.clone()))
            })
            .boxed())
    }
}

/// The board's `pairing` message now, again whenever its teachers or code change, and when
/// the code it shows expires: the page then gets a fresh code without asking.
fn pairing_feed(
    live: Arc<Live>,
    board: Uuid,
    changes: watch::Receiver<u64>,
) -> impl Stream<Item = Arc<str>> + Send + 'static {
    futures_util::stream::unfold(
        (live, changes, None::<Option<i64>>),
        move |(live, mut changes, wait)| async move {
            let mut wait = wait;
            loop {
                if let Some(expires) = wait {
                    let expired = async {
                        match expires {
                            // A millisecond past: the code is expired, not expiring.
                            Some(at) => {
                                sleep(Duration::from_millis(
                                    (at - now_ms() + 1).max(0).unsigned_abs(),
                                ))
                                .await
                            }
                            None => future::pending().await,
                        }
                    };
                    tokio::select! {
                        changed = changes.changed() => changed.ok()?,
                        () = expired => {}
                    }
                }
                changes.borrow_and_update();
                // Boxed: the read's state lives only while it runs, not in every idle page.
                match Box::pin(live.pairing_message(board)).await {
                    Ok((message, expires)) => {
                        return Some((message, (live, changes, Some(expires))));
                    }
                    Err(e) => {
                        tracing::warn!(%board, error = %e, "cannot read pairing");
                        wait = Some(Some(now_ms() + millis_of(PAIRING_RETRY)));
                    }
                }
            }
        },
    )
}

/// How soon a board's pairing is read again after the store failed to answer.
const PAIRING_RETRY: Duration = Duration::from_secs(5);

/// Resolves when the grant is revoked.
fn revoked(grant: &Grant) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut grant = grant.clone();
    async move { grant.revoked().await }
}

impl Stream for Subscriber {
    type Item = Arc<str>;

    /// Never ends: with nothing followed (yet), it is simply pending.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<str>>> {
        if let Some(message) = self.direct.pop_front() {
            return Poll::Ready(Some(message));
        }
        let unpaired = match &mut self.unpaired {
            Some(unpaired) => unpaired.poll_next_unpin(cx),
            None => Poll::Pending,
        };
        if let Poll::Ready(Some(board)) = unpaired {
            self.followed.retain(|b| *b != board);
            let reason = "unpaired";
            return Poll::Ready(Some(
                ServerMsg::Unfollowed { board, reason }.to_json().into(),
            ));
        }
        match self.feeds.poll_next_unpin(cx) {
            Poll::Ready(Some(message)) => Poll::Ready(Some(message)),
            _ => Poll::Pending,
        }
    }
}
