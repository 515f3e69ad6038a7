//! What one connected page receives: the forwarding tasks that turn hub channels into
//! messages on the connection's outgoing queue. Shared by the WebSocket and SSE transports.
//!
//! Each followed board gets a task that waits on its `watch` channel and queues the
//! pre-serialised state message; if the page reads slowly, the queue fills, the task waits,
//! and meanwhile newer states replace older ones in the channel, so the page skips straight
//! to the newest. Dropping the [`Subscriber`] ends every task.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::protocol::ServerMsg;
use super::{Live, LiveError, PresenceGuard};

/// Messages waiting to be written to one connection.
pub type Outbox = mpsc::Sender<Arc<str>>;

/// How many messages may wait for a slow connection before forwarders pause.
pub const OUTBOX: usize = 16;

pub struct Subscriber {
    live: Arc<Live>,
    outbox: Outbox,
    tasks: JoinSet<()>,
    followed: Vec<Uuid>,
    _presence: Option<PresenceGuard>,
}

impl Subscriber {
    pub fn new(live: Arc<Live>, outbox: Outbox) -> Self {
        Self {
            live,
            outbox,
            tasks: JoinSet::new(),
            followed: Vec::new(),
            _presence: None,
        }
    }

    /// Teacher: the board's states and its online/rendered status.
    pub async fn follow(&mut self, board: Uuid) -> Result<(), LiveError> {
        if self.followed.contains(&board) {
            return Ok(());
        }
        self.followed.push(board);
        self.forward_states(board).await?;
        let mut presence = self.live.hub.channel(board).presence.subscribe();
        let outbox = self.outbox.clone();
        self.tasks.spawn(async move {
            loop {
                let p = *presence.borrow_and_update();
                let msg = ServerMsg::Board {
                    board,
                    online: p.online > 0,
                    rendered_version: p.rendered_version,
                }
                .to_json();
                if outbox.send(msg.into()).await.is_err() || presence.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    /// Board page: its own states and pairing, and it counts as online while this lives.
    pub async fn be_board(&mut self, board: Uuid) -> Result<(), LiveError> {
        self._presence = Some(self.live.board_connected(board));
        self.forward_states(board).await?;
        let mut pairing = self.live.hub.channel(board).pairing.subscribe();
        let outbox = self.outbox.clone();
        let live = self.live.clone();
        self.tasks.spawn(async move {
            loop {
                pairing.borrow_and_update();
                match Box::pin(live.pairing_message(board)).await {
                    Ok(msg) => {
                        if outbox.send(msg.into()).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(%board, error = %e, "cannot read pairing"),
                }
                if pairing.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(())
    }

    async fn forward_states(&mut self, board: Uuid) -> Result<(), LiveError> {
        self.live.state(board).await?;
        let mut states = self.live.hub.channel(board).state.subscribe();
        let outbox = self.outbox.clone();
        self.tasks.spawn(async move {
            let mut sent = i64::MIN;
            loop {
                let snapshot = states.borrow_and_update().clone();
                if let Some(s) = snapshot.filter(|s| s.state.version > sent) {
                    sent = s.state.version;
                    if outbox.send(s.message.clone()).await.is_err() {
                        return;
                    }
                }
                if states.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(())
    }
}
