//! Events between the nodes of a cluster, without a broker: what one node tells the others so
//! that their live classrooms follow a board steered elsewhere.
//!
//! An event is a hint: a node that hears "board B has version V" reads the state from the
//! store (a notification may arrive before replication brings the row). A state event also
//! carries the state as stored, when it is small, for the node whose database does not have
//! it yet, or will not while replication is cut: it is the state another node stored, and it
//! is used only where the store is behind it. Events can be lost (a listener reconnecting, a partition), so
//! the live classroom also catches up on its own every few seconds; [`Heard::Missed`] says
//! when to do it at once. One node alone uses [`local::LocalBus`]; nodes on PostgreSQL use
//! [`pg_notify::PgBus`].
//!
//! This module knows nothing of the live classroom or of HTTP: it carries [`Event`]s.

pub mod local;
pub mod pg_notify;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::domain::board::Shown;

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The board has a new state of this version in the store; `stored` is that state as
    /// stored (`BoardState::stored_json`), when it is at most [`CARRIED_BYTES`].
    State {
        board: Uuid,
        version: i64,
        stored: Option<std::sync::Arc<str>>,
    },
    /// The board's teachers or its pairing code changed.
    Pairing { board: Uuid },
    /// The teacher's pairing with the board ended: their feeds of it end everywhere, before
    /// replication brings the row (older nodes skip this line and re-read the pairing on
    /// the `Pairing` event sent with it).
    Unpaired { board: Uuid, account: Uuid },
    /// A teacher revoked the board's identity: its pages close everywhere, before
    /// replication brings the revocation (older nodes skip this line and find out when the
    /// board reconnects).
    Revoked { board: Uuid },
    /// How many pages of the board the sending node holds, and the newest state version one
    /// of them reported showing. Sent on every change and again every
    /// [`PRESENCE_REFRESH`] while any page is connected, so a node that died is forgotten.
    /// `ready` and `cached` are what that page said with it (see `live::hub::Presence`).
    Presence {
        board: Uuid,
        online: u32,
        rendered: Option<i64>,
        shown: Shown,
    },
    /// A new revision of the lesson, of this version, was stored (a save, a restore, a
    /// deletion's tombstone): what a node keeps of the lesson in memory is stale (older
    /// nodes skip this line and serve what they kept for at most a few seconds).
    Lesson { lesson: Uuid, version: i64 },
    /// The sending node (re)connected to the bus and may have missed what the others said:
    /// they repeat their presence at once rather than at their next round.
    Rejoined,
}

/// The largest stored state a state event carries (a state is about 0.6 KiB; one with many
/// timers can be far larger, and a notification holds 8,000 bytes).
pub const CARRIED_BYTES: usize = 2_000;

/// How often a node repeats the presence of the boards it holds pages of.
pub const PRESENCE_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// What a node hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Another node's event.
    Event { node: Uuid, event: Event },
    /// Events may have been lost (a listener lost its connection): catch up from the store.
    Missed,
}

/// A way for nodes to hear each other.
pub trait Bus: Send + Sync {
    /// Tells the other nodes, without waiting: events are queued and sent in batches.
    fn publish(&self, event: Event);
    /// What the other nodes say, for the one task that follows them; `None` once taken, and
    /// for a node alone, which has nobody to hear.
    fn take_heard(&self) -> Option<mpsc::Receiver<Heard>>;
    /// Whether anyone hears the states carried in state events (a node alone: nobody), so a
    /// node spends nothing on them where they go nowhere.
    fn carries_states(&self) -> bool {
        false
    }
}

impl Event {
    /// One line of a notification's payload.
    fn encode(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            // The hint for nodes of an older build, which skip the line they do not know.
            Event::State {
                board,
                version,
                stored,
            } => writeln!(out, "s {board} {version}").and_then(|()| match stored {
                Some(stored) if stored.len() <= CARRIED_BYTES && !stored.contains('\n') => {
                    writeln!(out, "S {board} {version} {stored}")
                }
                _ => Ok(()),
            }),
            Event::Pairing { board } => writeln!(out, "p {board}"),
            Event::Revoked { board } => writeln!(out, "r {board}"),
            Event::Unpaired { board, account } => writeln!(out, "u {board} {account}"),
            Event::Presence {
                board,
                online,
                rendered,
                shown,
            } => writeln!(
                out,
                "o {board} {online} {} {} {}{}",
                rendered.unwrap_or(-1),
                u8::from(shown.ready),
                u8::from(shown.cached),
                // Only when set: nodes of an older build skip a line with a word more.
                if shown.muted { " 1" } else { "" }
            ),
            Event::Lesson { lesson, version } => writeln!(out, "l {lesson} {version}"),
            Event::Rejoined => writeln!(out, "j"),
        };
    }

    fn decode(line: &str) -> Option<Event> {
        if line == "j" {
            return Some(Event::Rejoined);
        }
        if let Some(carried) = line.strip_prefix("S ") {
            let mut words = carried.splitn(3, ' ');
            return Some(Event::State {
                board: Uuid::parse_str(words.next()?).ok()?,
                version: words.next()?.parse().ok()?,
                stored: Some(words.next()?.into()),
            });
        }
        let mut words = line.split(' ');
        let kind = words.next()?;
        // The id the event is about: a board's, or a lesson's for `l`.
        let board = Uuid::parse_str(words.next()?).ok()?;
        let event = match kind {
            "l" => Event::Lesson {
                lesson: board,
                version: words.next()?.parse().ok()?,
            },
            "s" => Event::State {
                board,
                version: words.next()?.parse().ok()?,
                stored: None,
            },
            "p" => Event::Pairing { board },
            "r" => Event::Revoked { board },
            "u" => Event::Unpaired {
                board,
                account: Uuid::parse_str(words.next()?).ok()?,
            },
            "o" => Event::Presence {
                board,
                online: words.next()?.parse().ok()?,
                rendered: Some(words.next()?.parse::<i64>().ok()?).filter(|v| *v >= 0),
                // Nodes of an older build send none: a rolling upgrade reads them as no.
                shown: Shown {
                    ready: words.next().is_some_and(|w| w == "1"),
                    cached: words.next().is_some_and(|w| w == "1"),
                    muted: words.next().is_some_and(|w| w == "1"),
                },
            },
            _ => return None,
        };
        words.next().is_none().then_some(event)
    }
}

/// A notification's payload: the sending node on the first line, then one event a line.
fn encode(node: Uuid, events: &[Event]) -> String {
    let mut out = format!("{node}\n");
    for event in events {
        event.encode(&mut out);
    }
    out
}

/// The lines of one event, as [`encode`] writes them.
fn encoded_len(event: &Event) -> usize {
    let mut out = String::new();
    event.encode(&mut out);
    out.len()
}

/// The sender and the events of a payload; lines that do not parse (a newer version's
/// events) are skipped.
fn decode(payload: &str) -> Option<(Uuid, Vec<Event>)> {
    let mut lines = payload.lines();
    let node = Uuid::parse_str(lines.next()?).ok()?;
    Some((node, lines.filter_map(Event::decode).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_a_payload_and_unknown_lines_are_skipped() {
        let node = Uuid::now_v7();
        let board = Uuid::now_v7();
        let events = [
            Event::State {
                board,
                version: 123_456,
                stored: None,
            },
            Event::State {
                board,
                version: 123_457,
                stored: Some(r#"{"board":"b","title":"a b c"}"#.into()),
            },
            Event::Pairing { board },
            Event::Revoked { board },
            Event::Presence {
                board,
                online: 2,
                rendered: Some(7),
                shown: Shown {
                    ready: true,
                    cached: false,
                    muted: true,
                },
            },
            Event::Presence {
                board,
                online: 0,
                rendered: None,
                shown: Shown {
                    ready: false,
                    cached: true,
                    muted: false,
                },
            },
            Event::Rejoined,
            Event::Unpaired {
                board,
                account: Uuid::now_v7(),
            },
            Event::Lesson {
                lesson: Uuid::now_v7(),
                version: 42,
            },
        ];
        let mut payload = encode(node, &events);
        payload.push_str("x something newer\ns not-a-uuid 1\n");
        // A carried state comes with its hint, for nodes that do not read it.
        let mut heard = events.to_vec();
        heard.insert(
            1,
            Event::State {
                board,
                version: 123_457,
                stored: None,
            },
        );
        assert_eq!(decode(&payload), Some((node, heard)));
        // A state too large to carry goes as the hint alone.
        let large = Event::State {
            board,
            version: 9,
            stored: Some("x".repeat(CARRIED_BYTES + 1).into()),
        };
        let payload = encode(node, std::slice::from_ref(&large));
        assert_eq!(payload.lines().count(), 2, "the hint alone");
        assert_eq!(
            encoded_len(&large),
            payload.len() - format!("{node}\n").len()
        );
        assert_eq!(decode("not a node\n"), None);
        // What a node of the previous build sends still reads; what it reads of ours, too,
        // unless a board plays without sound.
        let old = format!("{node}\no {board} 1 5\n");
        let heard = decode(&old).unwrap().1;
        assert!(matches!(
            heard[..],
            [Event::Presence {
                rendered: Some(5),
                shown: Shown {
                    ready: false,
                    cached: false,
                    muted: false
                },
                ..
            }]
        ));
        let ours = encode(node, &events[4..6]);
        let lines: Vec<&str> = ours.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                format!("o {board} 2 7 1 0 1"),
                format!("o {board} 0 -1 0 1")
            ]
        );
    }
}
