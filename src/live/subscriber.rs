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

use futures_util::stream::{BoxStream, SelectAll};
use futures_util::{future, Stream, StreamExt};
use tokio_stream::wrappers::WatchStream;
use uuid::Uuid;

use super::grants::Grant;
use super::protocol::ServerMsg;
use super::{Live, LiveError, PresenceGuard};

pub struct Subscriber {
    live: Arc<Live>,
    direct: VecDeque<Arc<str>>,
    feeds: SelectAll<BoxStream<'static, Arc<str>>>,
    /// Each followed board's id, once its pairing with the teacher ends.
    unpaired: SelectAll<BoxStream<'static, Uuid>>,
    followed: Vec<Uuid>,
    _presence: Option<PresenceGuard>,
}

impl Subscriber {
    pub fn new(live: Arc<Live>) -> Self {
        Self {
            live,
            direct: VecDeque::new(),
            feeds: SelectAll::new(),
            unpaired: SelectAll::new(),
            followed: Vec::new(),
            _presence: None,
        }
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
        self.unpaired.push(
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
        let pairing = self.live.hub.channel(board).pairing.subscribe();
        let live = self.live.clone();
        self.feeds.push(
            WatchStream::new(pairing)
                .then(move |_| {
                    let live = live.clone();
                    async move { live.pairing_message(board).await }
                })
                .filter_map(move |message| {
                    future::ready(match message {
                        Ok(m) => Some(m),
                        Err(e) => {
                            tracing::warn!(%board, error = %e, "cannot read pairing");
                            None
                        }
                    })
                })
                .boxed(),
        );
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
        if let Poll::Ready(Some(board)) = self.unpaired.poll_next_unpin(cx) {
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
