//! Events between the nodes of a cluster, without a broker: what one node tells the others so
//! that their live classrooms follow a board steered elsewhere.
//!
//! An event is a hint, never the data: a node that hears "board B has version V" reads the
//! state from the store (states hold rendered HTML, and a notification may arrive before
//! replication brings the row). Events can be lost (a listener reconnecting, a partition), so
//! the live classroom also catches up on its own every few seconds; [`Heard::Missed`] says
//! when to do it at once. One node alone uses [`local::LocalBus`]; nodes on PostgreSQL use
//! [`pg_notify::PgBus`].
//!
//! This module knows nothing of the live classroom or of HTTP: it carries [`Event`]s.

pub mod local;
pub mod pg_notify;

use tokio::sync::mpsc;
use uuid::Uuid;

/// What one node tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The board has a new state of this version in the store.
    State { board: Uuid, version: i64 },
    /// The board's teachers or its pairing code changed.
    Pairing { board: Uuid },
    /// How many pages of the board the sending node holds, and the newest state version one
    /// of them reported showing. Sent on every change and again every
    /// [`PRESENCE_REFRESH`] while any page is connected, so a node that died is forgotten.
    /// `ready` and `cached` are what that page said with it (see `live::hub::Presence`).
    Presence {
        board: Uuid,
        online: u32,
        rendered: Option<i64>,
        ready: bool,
        cached: bool,
    },
    /// The sending node (re)connected to the bus and may have missed what the others said:
    /// they repeat their presence at once rather than at their next round.
    Rejoined,
}

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
}

impl Event {
    /// One line of a notification's payload.
    fn encode(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            Event::State { board, version } => writeln!(out, "s {board} {version}"),
            Event::Pairing { board } => writeln!(out, "p {board}"),
            Event::Presence {
                board,
                online,
                rendered,
                ready,
                cached,
            } => writeln!(
                out,
                "o {board} {online} {} {} {}",
                rendered.unwrap_or(-1),
                u8::from(*ready),
                u8::from(*cached)
            ),
            Event::Rejoined => writeln!(out, "j"),
        };
    }

    fn decode(line: &str) -> Option<Event> {
        if line == "j" {
            return Some(Event::Rejoined);
        }
        let mut words = line.split(' ');
        let kind = words.next()?;
        let board = Uuid::parse_str(words.next()?).ok()?;
        let event = match kind {
            "s" => Event::State {
                board,
                version: words.next()?.parse().ok()?,
            },
            "p" => Event::Pairing { board },
            "o" => Event::Presence {
                board,
                online: words.next()?.parse().ok()?,
                rendered: Some(words.next()?.parse::<i64>().ok()?).filter(|v| *v >= 0),
                // Nodes of an older build send neither: a rolling upgrade reads them as no.
                ready: words.next().is_some_and(|w| w == "1"),
                cached: words.next().is_some_and(|w| w == "1"),
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
            },
            Event::Pairing { board },
            Event::Presence {
                board,
                online: 2,
                rendered: Some(7),
                ready: true,
                cached: false,
            },
            Event::Presence {
                board,
                online: 0,
                rendered: None,
                ready: false,
                cached: true,
            },
            Event::Rejoined,
        ];
        let mut payload = encode(node, &events);
        payload.push_str("x something newer\ns not-a-uuid 1\n");
        assert_eq!(decode(&payload), Some((node, events.to_vec())));
        assert_eq!(decode("not a node\n"), None);
        // What a node of the previous build sends still reads.
        let old = format!("{node}\no {board} 1 5\n");
        let heard = decode(&old).unwrap().1;
        assert!(matches!(
            heard[..],
            [Event::Presence {
                rendered: Some(5),
                ready: false,
                cached: false,
                ..
            }]
        ));
    }
}
