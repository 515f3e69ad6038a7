//! The board-state writer every backend shares: board states are stored in group-committed
//! batches, so that when a thousand teachers press "next" at 8:30 each press waits for one
//! shared commit instead of a thousand commits in a row. A state is acknowledged only after
//! the transaction holding it has committed. The SQL is the store's ([`StateRows`]); the
//! rules live here once:
//! - a command id is stored once: a repeat, inside a batch or later, gets the first outcome;
//! - a new state's version is above every stored state of its board, whichever node wrote
//!   it: rows are inserted only above the newest, and a guess made stale by a replicated row
//!   is read again and tried once more.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Saved, StoreError};
use crate::domain::hlc::{Hlc, Version};

/// One board state waiting to be stored, and where to say it is durable.
pub(crate) struct StateWrite {
    pub command: Uuid,
    pub board: Uuid,
    pub json: String,
    pub done: oneshot::Sender<Result<Saved, String>>,
}

/// A row a batch inserts.
pub(crate) struct NewState<'a> {
    pub id: Uuid,
    pub board: Uuid,
    pub command: Uuid,
    pub json: &'a str,
    pub version: Version,
}

/// A backend's SQL for the writer, on the writer's own connection.
#[async_trait]
pub(crate) trait StateRows: Send {
    /// The newest stored version of each of these boards (those without a state are left
    /// out).
    async fn newest(&mut self, boards: Vec<Uuid>) -> Result<HashMap<Uuid, Version>, StoreError>;
    /// In one statement, inserts every row whose command id is new and whose version is above
    /// every stored state of its board; returns the command ids it stored.
    async fn insert(&mut self, rows: &[NewState<'_>]) -> Result<HashSet<Uuid>, StoreError>;
    /// The stored outcome of each of these commands; a command stored twice (a resend that
    /// reached two nodes) answers its lowest `(version, id)`, the same on every node.
    async fn earlier(&mut self, commands: &[Uuid]) -> Result<HashMap<Uuid, Saved>, StoreError>;
}

/// Most states one batch holds.
pub(crate) const STATE_BATCH: usize = 1024;
/// How often a batch's rows are tried again when states of their boards arrived from
/// elsewhere meanwhile.
const WRITE_ATTEMPTS: usize = 3;
/// Boards whose newest version the writer remembers; past this it forgets them all and asks
/// the database again, which is correct, only slower.
const NEWEST_REMEMBERED: usize = 100_000;

pub(crate) struct StateWriter<R> {
    rows: R,
    hlc: Arc<Hlc>,
    /// The newest version of each board this writer stored or read: a guess that saves a read
    /// per batch, checked by the insert itself.
    newest: HashMap<Uuid, Version>,
}

impl<R: StateRows> StateWriter<R> {
    pub fn new(rows: R, hlc: Arc<Hlc>) -> Self {
        Self {
            rows,
            hlc,
            newest: HashMap::new(),
        }
    }

    /// Stores what the queue brings, a batch at a time, until every sender is gone.
    pub async fn run(mut self, mut queue: mpsc::Receiver<StateWrite>) {
        // Registered once: how well commits are shared shows in the sizes of the batches.
        let batch_states = metrics::histogram!("classcast_state_writer_batch_states");
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < STATE_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch_states.record(u32::try_from(batch.len()).unwrap_or(u32::MAX));
            match self.store(&batch).await {
                Ok(outcomes) => {
                    for (write, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = write.done.send(outcome);
                    }
                }
                Err(e) => {
                    let reason = crate::error_chain(&e);
                    for write in batch {
                        let _ = write.done.send(Err(reason.clone()));
                    }
                }
            }
        }
    }

    /// Rows the insert leaves out are either repeated commands (answered with their earlier
    /// outcome) or stale guesses (read again and tried once more). Should a read fail, only
    /// the rows it concerned get the error (retrying them is safe); the others are stored and
    /// say so.
    async fn store(
        &mut self,
        batch: &[StateWrite],
    ) -> Result<Vec<Result<Saved, String>>, StoreError> {
        // Each command once: a resend inside the same batch gets the first one's outcome.
        let mut first_of: HashMap<Uuid, usize> = HashMap::new();
        let mut pending: Vec<usize> = (0..batch.len())
            .filter(|&i| *first_of.entry(batch[i].command).or_insert(i) == i)
            .collect();
        let mut outcomes: HashMap<usize, Result<Saved, String>> = HashMap::new();
        for _attempt in 0..WRITE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let mut newest = self
                .newest_of(pending.iter().map(|&i| batch[i].board))
                .await?;
            let rows: Vec<NewState<'_>> = pending
                .iter()
                .map(|&i| {
                    let write = &batch[i];
                    let after = newest.get(&write.board).copied().unwrap_or(Version(0));
                    let version = self.hlc.next_after(after);
                    newest.insert(write.board, version);
                    NewState {
                        id: Uuid::now_v7(),
                        board: write.board,
                        command: write.command,
                        json: &write.json,
                        version,
                    }
                })
                .collect();
            let stored = self.rows.insert(&rows).await?;
            let mut left = Vec::new();
            for (&i, row) in pending.iter().zip(&rows) {
                if stored.contains(&row.command) {
                    self.newest.insert(row.board, row.version);
                    outcomes.insert(i, Ok(Saved::New(row.version)));
                } else {
                    left.push(i);
                }
            }
            if left.is_empty() {
                pending = left;
                break;
            }
            let commands: Vec<Uuid> = left.iter().map(|&i| batch[i].command).collect();
            pending = Vec::new();
            match self.rows.earlier(&commands).await {
                Ok(earlier) => {
                    for i in left {
                        match earlier.get(&batch[i].command) {
                            Some(saved) => {
                                outcomes.insert(i, Ok(*saved));
                            }
                            None => {
                                // A newer state of this board arrived from elsewhere.
                                self.newest.remove(&batch[i].board);
                                pending.push(i);
                            }
                        }
                    }
                }
                Err(e) => {
                    let reason = crate::error_chain(&e);
                    for i in left {
                        outcomes.insert(i, Err(reason.clone()));
                    }
                }
            }
        }
        for i in pending {
            let busy = "the board kept changing under this write; try again".to_owned();
            outcomes.insert(i, Err(busy));
        }
        if self.newest.len() > NEWEST_REMEMBERED {
            self.newest.clear();
        }
        Ok((0..batch.len())
            .map(|i| {
                let first = first_of[&batch[i].command];
                let outcome = outcomes
                    .get(&first)
                    .cloned()
                    .unwrap_or_else(|| Err("a command of this batch was not answered".to_owned()));
                match outcome {
                    // The repeat of a command stored by this batch finds it stored before.
                    Ok(Saved::New(version)) if first != i => Ok(Saved::Before {
                        board: batch[first].board,
                        version,
                    }),
                    other => other,
                }
            })
            .collect())
    }

    /// The newest stored version of each of these boards: remembered, or read.
    async fn newest_of(
        &mut self,
        boards: impl Iterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Version>, StoreError> {
        let mut newest = HashMap::new();
        let mut unknown = Vec::new();
        for board in boards {
            match self.newest.get(&board) {
                Some(v) => {
                    newest.insert(board, *v);
                }
                None => unknown.push(board),
            }
        }
        if !unknown.is_empty() {
            newest.extend(self.rows.newest(unknown).await?);
        }
        Ok(newest)
    }
}
