//! Per-board live channels on this node: the newest state, who is connected (here and, as
//! other nodes report it, elsewhere), and a signal when pairing changes.
//!
//! Each board's state is a `watch` channel holding the state *and its message already
//! serialised*: fan-out to a thousand subscribers is a thousand pointer copies, and a slow
//! subscriber simply skips to the newest state. The hub holds no authority: the store does.
//! A board's channel lives as long as the node; entries are small (a few hundred bytes).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use super::protocol::ServerMsg;
use crate::domain::board::{BoardState, Shown};
use crate::domain::lesson::LessonContent;

/// A board state, the lesson revision it presents, and its `state` message, ready to send.
#[derive(Debug)]
pub struct Snapshot {
    pub state: BoardState,
    /// The content of `state.lesson`'s revision: `Some` exactly when a lesson is presented.
    /// Each command needs it, so it travels with the state instead of being read again.
    pub lesson: Option<Arc<LessonContent>>,
    pub message: Arc<str>,
}

impl Snapshot {
    pub fn new(state: BoardState, lesson: Option<Arc<LessonContent>>) -> Arc<Self> {
        let message = ServerMsg::State {
            board: state.board,
            state: &state,
        }
        .to_json()
        .into();
        Arc::new(Self {
            state,
            lesson,
            message,
        })
    }
}

/// Board pages connected, the newest version one of them reported showing, and what that
/// page said with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    pub online: u32,
    pub rendered_version: Option<i64>,
    pub shown: Shown,
}

impl Presence {
    /// Takes a page's report of showing `version`: a newer version replaces what was said
    /// of an older one, the same version updates it, an older one is stale.
    pub fn report(&mut self, version: i64, shown: Shown) {
        if Some(version) >= self.rendered_version {
            self.rendered_version = Some(version);
            self.shown = shown;
        }
    }
}

/// What [`BoardChannel::presence`] sums: this node's pages, and what each other node last
/// said of its own, and when.
#[derive(Default)]
struct PresenceParts {
    local: Presence,
    remote: HashMap<Uuid, (Presence, Instant)>,
}

impl PresenceParts {
    fn sum(&self) -> Presence {
        self.remote
            .values()
            .map(|(p, _)| *p)
            .fold(self.local, |sum, p| {
                let (newest, other) = match p.rendered_version > sum.rendered_version {
                    true => (p, sum),
                    false => (sum, p),
                };
                let same = other.rendered_version == newest.rendered_version;
                let (mine, theirs) = (newest.shown, other.shown);
                Presence {
                    online: sum.online + p.online,
                    rendered_version: newest.rendered_version,
                    shown: Shown {
                        ready: mine.ready || (same && theirs.ready),
                        cached: mine.cached || (same && theirs.cached),
                        muted: mine.muted || (same && theirs.muted),
                    },
                }
            })
    }
}

pub struct BoardChannel {
    pub state: watch::Sender<Option<Arc<Snapshot>>>,
    /// The board's pages on every node, as teachers see it.
    pub presence: watch::Sender<Presence>,
    parts: Mutex<PresenceParts>,
    /// Bumped when the board's teachers or code change; the board then re-reads them.
    pub pairing: watch::Sender<u64>,
    /// The board's last `pairing` message: (the `pairing` count it was made at, when its code
    /// expires, the message). Every page of the board shares it, so a new code costs one
    /// read of the store, not one per connection.
    pub pairing_message: tokio::sync::Mutex<Option<(u64, i64, Arc<str>)>>,
    /// Commands on one board are applied one at a time on this node.
    pub commands: tokio::sync::Mutex<()>,
    /// The newest version other nodes announced while a refresh from the store is under
    /// way; 0 when none is.
    pub wanted: std::sync::atomic::AtomicI64,
}

impl BoardChannel {
    /// Changes this node's pages of the board; returns them when they changed, for the other
    /// nodes.
    pub fn change_local(&self, change: impl FnOnce(&mut Presence)) -> Option<Presence> {
        let mut parts = self.parts.lock();
        let before = parts.local;
        change(&mut parts.local);
        let after = parts.local;
        self.presence.send_if_modified(|p| replace(p, parts.sum()));
        (after != before).then_some(after)
    }

    /// What another node says of its pages of the board.
    pub fn set_remote(&self, node: Uuid, presence: Presence) {
        let mut parts = self.parts.lock();
        parts.remote.insert(node, (presence, Instant::now()));
        self.presence.send_if_modified(|p| replace(p, parts.sum()));
    }

    /// This node's pages of the board.
    pub fn local(&self) -> Presence {
        self.parts.lock().local
    }

    /// Forgets what other nodes said longer than `silent` ago (a node that stopped cannot
    /// say its pages went).
    pub fn forget_silent(&self, silent: Duration) {
        let mut parts = self.parts.lock();
        parts.remote.retain(|_, (_, at)| at.elapsed() < silent);
        self.presence.send_if_modified(|p| replace(p, parts.sum()));
    }
}

/// Sets `current` to `new`; whether that changed it.
fn replace(current: &mut Presence, new: Presence) -> bool {
    let changed = *current != new;
    *current = new;
    changed
}

/// What [`Hub::counts`] finds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BoardCounts {
    pub online: u32,
    pub presenting: u32,
}

#[derive(Default)]
pub struct Hub {
    boards: Mutex<HashMap<Uuid, Arc<BoardChannel>>>,
}

impl Hub {
    pub fn channel(&self, board: Uuid) -> Arc<BoardChannel> {
        let mut boards = self.boards.lock();
        boards
            .entry(board)
            .or_insert_with(|| {
                Arc::new(BoardChannel {
                    state: watch::channel(None).0,
                    presence: watch::channel(Presence::default()).0,
                    parts: Mutex::new(PresenceParts::default()),
                    pairing: watch::channel(0).0,
                    pairing_message: tokio::sync::Mutex::new(None),
                    commands: tokio::sync::Mutex::new(()),
                    wanted: std::sync::atomic::AtomicI64::new(0),
                })
            })
            .clone()
    }

    /// Publishes a state unless the channel already holds a newer one.
    pub fn publish(&self, state: BoardState, lesson: Option<Arc<LessonContent>>) {
        let channel = self.channel(state.board);
        let snapshot = Snapshot::new(state, lesson);
        channel.state.send_if_modified(|current| {
            let newer = current
                .as_ref()
                .is_none_or(|c| c.state.version < snapshot.state.version);
            if newer {
                *current = Some(snapshot.clone());
            }
            newer
        });
    }

    pub fn presence(&self, board: Uuid) -> Presence {
        *self.channel(board).presence.borrow()
    }

    /// The board's channel if this node has one (it served or was asked about the board).
    pub fn existing(&self, board: Uuid) -> Option<Arc<BoardChannel>> {
        let boards = self.boards.lock();
        boards.get(&board).cloned()
    }

    /// Every channel this node has.
    pub fn channels(&self) -> Vec<(Uuid, Arc<BoardChannel>)> {
        let boards = self.boards.lock();
        boards.iter().map(|(b, c)| (*b, c.clone())).collect()
    }

    /// Boards with a page connected to this node, and how many of them present a lesson:
    /// read when metrics are scraped, by walking the channels (outside the hub's lock, which
    /// every command takes), rather than making every connection keep a count.
    pub fn counts(&self) -> BoardCounts {
        let mut counts = BoardCounts::default();
        for (_, channel) in self.channels() {
            if channel.local().online == 0 {
                continue;
            }
            counts.online += 1;
            if channel
                .state
                .borrow()
                .as_ref()
                .is_some_and(|s| s.state.is_presenting())
            {
                counts.presenting += 1;
            }
        }
        counts
    }

    pub fn pairing_changed(&self, board: Uuid) {
        self.channel(board).pairing.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let hub = Hub::default();
        let board = Uuid::now_v7();
        let at = |version| BoardState {
            version,
            ..BoardState::idle(board)
        };
        let mut seen = hub.channel(board).state.subscribe();
        hub.publish(at(5), None);
        hub.publish(at(3), None);
        let current = seen.borrow_and_update().clone().unwrap();
        assert_eq!(current.state.version, 5);
        assert!(current.message.contains("\"version\":5"));
        hub.publish(at(6), None);
        assert_eq!(seen.borrow_and_update().as_ref().unwrap().state.version, 6);
    }

    #[test]
    fn teachers_see_a_boards_pages_on_every_node_until_a_node_falls_silent() {
        let hub = Hub::default();
        let channel = hub.channel(Uuid::now_v7());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            channel.change_local(|p| p.online += 1),
            Some(Presence {
                online: 1,
                ..Presence::default()
            })
        );
        assert_eq!(channel.change_local(|p| p.online += 0), None);
        channel.set_remote(
            a,
            Presence {
                online: 2,
                rendered_version: Some(9),
                shown: Shown {
                    ready: true,
                    cached: false,
                    muted: true,
                },
            },
        );
        channel.set_remote(
            b,
            Presence {
                online: 1,
                rendered_version: Some(4),
                shown: Shown {
                    ready: false,
                    cached: true,
                    muted: false,
                },
            },
        );
        let seen = *channel.presence.borrow();
        assert_eq!((seen.online, seen.rendered_version), (4, Some(9)));
        // What the page showing the newest version holds, not what an older one held.
        assert_eq!(
            seen.shown,
            Shown {
                ready: true,
                cached: false,
                muted: true
            }
        );
        channel.forget_silent(Duration::ZERO);
        assert_eq!(*channel.presence.borrow(), channel.local());
    }
}
