//! The bus of nodes on PostgreSQL: `NOTIFY` to tell, `LISTEN` to hear.
//!
//! A notification fires only on the database where it was sent (replication does not carry
//! it), so each node listens on every database of its list and sends on one that answers:
//! the one that took the last notification, else the first of the list that takes it. A
//! database that stops answering costs one batch a short wait, not every batch a long one. Events are queued and sent by one task, many to a
//! notification (a payload holds up to 8,000 bytes), on a connection of their own: a NOTIFY
//! never sits inside a commit of a command, whose throughput it would halve. A queue that
//! fills up (the databases are down) drops events: the nodes catch up from the store.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{decode, encode, encoded_len, Bus, Event, Heard};

/// The channel every node listens on.
const CHANNEL: &str = "classcast";
/// Payload bytes per notification, under PostgreSQL's 8,000.
const PAYLOAD_BYTES: usize = 7_000;
/// Events waiting to be sent, at most; more are dropped.
const QUEUE: usize = 50_000;
/// How long a database may take to accept a notification before the next one is tried.
const SEND_WITHIN: Duration = Duration::from_secs(2);
/// How long the database that took the last notification may take before the others are
/// tried too (a `NOTIFY` takes about a millisecond; sending one twice is harmless: nodes
/// drop what they heard already).
const STILL_THERE_WITHIN: Duration = Duration::from_millis(250);
/// How soon a listener that lost its database tries again.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

pub struct PgBus {
    outgoing: mpsc::Sender<Event>,
    /// Events dropped because the queue was full (`classcast_bus_events_dropped_total`).
    dropped: metrics::Counter,
    heard: parking_lot::Mutex<Option<mpsc::Receiver<Heard>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BusError(String);

impl PgBus {
    /// Listens on every database at `urls` and sends on the first that answers, for `node`.
    /// Connections are made in the background: a database that is down is listened to once
    /// it answers.
    pub fn start(urls: &[String], node: Uuid) -> Result<Self, BusError> {
        let mut pools = Vec::new();
        for url in urls {
            let options = PgConnectOptions::from_str(url).map_err(|e| BusError(e.to_string()))?;
            pools.push(
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(SEND_WITHIN)
                    .connect_lazy_with(options),
            );
        }
        let (heard_tx, heard) = mpsc::channel(QUEUE);
        for pool in &pools {
            tokio::spawn(listen(pool.clone(), node, heard_tx.clone()));
        }
        let (outgoing, queue) = mpsc::channel(QUEUE);
        tokio::spawn(send(pools, node, queue));
        Ok(Self {
            outgoing,
            dropped: metrics::counter!("classcast_bus_events_dropped_total", "reason" => "queue_full"),
            heard: parking_lot::Mutex::new(Some(heard)),
        })
    }
}

impl Bus for PgBus {
    fn publish(&self, event: Event) {
        if self.outgoing.try_send(event).is_err() {
            self.dropped.increment(1);
        }
    }

    fn take_heard(&self) -> Option<mpsc::Receiver<Heard>> {
        self.heard.lock().take()
    }

    fn carries_states(&self) -> bool {
        true
    }
}

/// Sends what the queue brings, as few notifications as fit, on the database that took the
/// last ones, else on the first of the others that takes them.
async fn send(pools: Vec<PgPool>, node: Uuid, mut queue: mpsc::Receiver<Event>) {
    let sent_events = metrics::counter!("classcast_bus_events_sent_total");
    let undelivered =
        metrics::counter!("classcast_bus_events_dropped_total", "reason" => "no_database");
    let mut batch = Vec::new();
    let mut last = 0;
    let mut held = None;
    loop {
        let first = match held.take() {
            Some(event) => event,
            None => match queue.recv().await {
                Some(event) => event,
                None => return,
            },
        };
        batch.clear();
        let mut bytes = encoded_len(&first);
        batch.push(first);
        // What does not fit waits for the next notification.
        while bytes < PAYLOAD_BYTES {
            match queue.try_recv() {
                Ok(event) => {
                    bytes += encoded_len(&event);
                    match bytes <= PAYLOAD_BYTES {
                        true => batch.push(event),
                        false => held = Some(event),
                    }
                }
                Err(_) => break,
            }
        }
        let payload = encode(node, &batch);
        let order = std::iter::once(last).chain((0..pools.len()).filter(|&i| i != last));
        let mut sent = false;
        for (tried, i) in order.enumerate() {
            let notify = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(&pools[i]);
            let within = if tried == 0 {
                STILL_THERE_WITHIN
            } else {
                SEND_WITHIN
            };
            if let Ok(Ok(_)) = tokio::time::timeout(within, notify).await {
                if i != last {
                    tracing::info!(database = i, "sending events through another database");
                }
                last = i;
                sent = true;
                break;
            }
        }
        let events = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        match sent {
            true => sent_events.increment(events),
            false => undelivered.increment(events),
        }
        if !sent {
            tracing::debug!(
                events = batch.len(),
                "no database took the events; nodes catch up"
            );
        }
    }
}

/// Follows one database's notifications for as long as the node runs, reconnecting after a
/// loss; after each (re)connection the node is told it may have missed events.
async fn listen(pool: PgPool, node: Uuid, heard: mpsc::Sender<Heard>) {
    let received = metrics::counter!("classcast_bus_events_received_total");
    let reconnects = metrics::counter!("classcast_bus_listener_reconnects_total");
    let mut connected_before = false;
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(_) => {
                tokio::time::sleep(RELISTEN_AFTER).await;
                continue;
            }
        };
        listener.eager_reconnect(false);
        if listener.listen(CHANNEL).await.is_err() {
            tokio::time::sleep(RELISTEN_AFTER).await;
            continue;
        }
        // The first connection is no reconnection: only losses count.
        if connected_before {
            reconnects.increment(1);
        }
        connected_before = true;
        if heard.send(Heard::Missed).await.is_err() {
            return;
        }
        while let Ok(Some(notification)) = listener.try_recv().await {
            let Some((from, events)) = decode(notification.payload()) else {
                continue;
            };
            if from == node {
                continue;
            }
            received.increment(u64::try_from(events.len()).unwrap_or(u64::MAX));
            for event in events {
                if heard
                    .send(Heard::Event { node: from, event })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
}
