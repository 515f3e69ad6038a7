//! The store, written once: every query of the [`Store`] trait, over a [`Backend`] that runs
//! them on SQLite or PostgreSQL. One file per part of the trait (`accounts.rs`,
//! `lessons.rs`, `sharing.rs`, `boards.rs`, `media.rs`, `mail.rs`); this one holds what they share and the node
//! bookkeeping (heartbeats, who purges whose rows).
//!
//! Statements use `$n` placeholders and the SQL both engines speak (`NOT flag`, `CAST(… AS
//! BIGINT)`, `->`/`->>` on JSON); where the dialects really differ, the backend supplies the
//! fragment. It must not open connections or know which engine it runs on.

/// One operation of the store (`$op`, a method of the store's traits), timed and, when the
/// database failed, counted, per operation for the metrics (`classcast_store_seconds`,
/// `classcast_store_errors_total`), inside a span naming it at debug level
/// (`CLASSCAST_LOG=classcast::store=debug` follows each one; production logs stay quiet).
/// Around each method rather than the backend's statements: an operation is what a caller
/// waits for, one statement or many. A macro so that the label is a literal: the metrics'
/// keys are then statics, and an operation costs no allocation to count.
macro_rules! measured {
    ($op:literal, $work:expr $(,)?) => {
        async {
            let started = std::time::Instant::now();
            let span = tracing::debug_span!("store", op = $op);
            let result = tracing::Instrument::instrument($work, span).await;
            metrics::histogram!("classcast_store_seconds", "op" => $op).record(started.elapsed());
            // A missing row or a taken address is an answer; a database that fails is not.
            if matches!(
                result,
                Err($crate::store::StoreError::Unavailable(_) | $crate::store::StoreError::Corrupt(_))
            ) {
                metrics::counter!("classcast_store_errors_total", "op" => $op).increment(1);
            }
            result
        }
    };
}

mod accounts;
mod boards;
mod lessons;
mod mail;
mod media;
mod sharing;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::backend::{Arg, Backend, On, Row};
use super::caches::Caches;
use super::state_writer::{StateWrite, StateWriter, STATE_BATCH};
use super::*;
use crate::domain::hlc::{millis_of, wall_millis, Hlc, Version};
use crate::domain::node::Node;

/// The store on backend `B`.
pub(crate) struct SqlStore<B: Backend> {
    db: Arc<B>,
    hlc: Arc<Hlc>,
    node: Uuid,
    /// Board states go through one group-committing writer (see `StateWriter`).
    states: mpsc::Sender<StateWrite>,
    /// Sessions and lessons as last read (see `store/caches.rs`).
    caches: Caches,
}

/// Rows a purge deletes per statement: each batch holds the write connection (which board
/// states wait for on SQLite) only briefly.
const PURGE_BATCH: u16 = 1000;

impl<B: Backend> SqlStore<B> {
    /// The store on `db` for `node`, with its board-state writer; `run` runs the writer
    /// (a task on the server's runtime, or a thread of its own).
    pub(crate) fn new(
        db: Arc<B>,
        node: &Node,
        run: impl FnOnce(StateWriter<WriterRows<B>>, mpsc::Receiver<StateWrite>),
    ) -> Self {
        let (states, queue) = mpsc::channel(4 * STATE_BATCH);
        let rows = WriterRows {
            db: db.clone(),
            node: node.id,
        };
        run(StateWriter::new(rows, node.clock.clone()), queue);
        Self {
            db,
            hlc: node.clock.clone(),
            node: node.id,
            states,
            caches: Caches::default(),
        }
    }

    /// The first row of `sql`, if any.
    async fn one(
        &self,
        on: On<'_, B::Tx>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> StoreResult<Option<B::Row>> {
        Ok(self.db.fetch(on, sql, args).await?.into_iter().next())
    }

    /// A fresh version after every row of `table` whose `keys` columns hold these ids,
    /// whichever node wrote them: the next row of a fact sorts after all the earlier ones.
    async fn version_after(
        &self,
        tx: &mut B::Tx,
        table: &str,
        keys: &[(&str, Uuid)],
    ) -> StoreResult<Version> {
        let filter: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, (column, _))| format!("{column} = ${}", i + 1))
            .collect();
        let sql = format!(
            "SELECT MAX(version) AS newest FROM {table} WHERE {}",
            filter.join(" AND ")
        );
        let args: Vec<Arg<'_>> = keys.iter().map(|(_, id)| Arg::Id(*id)).collect();
        let newest = match self.one(On::Tx(tx), &sql, &args).await? {
            Some(row) => row.maybe_int("newest")?,
            None => None,
        };
        Ok(self.hlc.next_after(Version(newest.unwrap_or(0))))
    }

    /// Inserts row `id` of `table`: `columns` bound from `values`, then its `version` and
    /// this node, which every replicated row carries.
    async fn insert(
        &self,
        on: On<'_, B::Tx>,
        table: &str,
        id: Uuid,
        columns: &str,
        values: &[Arg<'_>],
        version: Version,
    ) -> StoreResult<()> {
        let mut args = vec![Arg::Id(id)];
        args.extend_from_slice(values);
        args.extend([Arg::Int(version.0), Arg::Id(self.node)]);
        let params: Vec<String> = (1..=args.len()).map(|n| format!("${n}")).collect();
        let columns: String = columns
            .split(", ")
            .filter(|c| !c.is_empty())
            .map(|c| format!("{c}, "))
            .collect();
        let sql = format!(
            "INSERT INTO {table} (id, {columns}version, node) VALUES ({})",
            params.join(", ")
        );
        self.db.execute(on, &sql, &args).await?;
        Ok(())
    }

    /// The nodes with a heartbeat within `lease`, lowest id first.
    async fn live_node_ids(&self, lease: Duration) -> StoreResult<Vec<Uuid>> {
        let cutoff = Version::at_millis(wall_millis() - millis_of(lease));
        let mut live = self
            .db
            .fetch(
                On::Read,
                "SELECT node FROM node_heartbeat GROUP BY node HAVING MAX(version) >= $1",
                &[Arg::Int(cutoff.0)],
            )
            .await?
            .iter()
            .map(|row| row.id("node"))
            .collect::<StoreResult<Vec<Uuid>>>()?;
        live.sort();
        Ok(live)
    }

    fn observed(&self, version: i64) -> Version {
        let v = Version(version);
        self.hlc.observe(v);
        v
    }

    /// Deletes, a batch at a time, the rows `select` finds (an `id` column; its parameters
    /// are `args`, then the batch size as `LIMIT`) from each of `tables` by the column that
    /// names them (the table of `select` itself last), a batch in one transaction; returns
    /// how many rows `select` found.
    async fn delete_together(
        &self,
        select: &str,
        args: &[Arg<'_>],
        tables: &[(&str, &str)],
    ) -> StoreResult<u64> {
        let mut args = args.to_vec();
        args.push(Arg::Int(i64::from(PURGE_BATCH)));
        let mut total = 0;
        loop {
            let mut tx = self.db.begin().await?;
            let ids = self
                .db
                .fetch(On::Tx(&mut tx), select, &args)
                .await?
                .iter()
                .map(|row| row.id("id"))
                .collect::<StoreResult<Vec<Uuid>>>()?;
            for (table, key) in tables {
                let sql = format!("DELETE FROM {table} WHERE {}", B::in_ids(key, "$1"));
                self.db
                    .execute(On::Tx(&mut tx), &sql, &[Arg::Ids(&ids)])
                    .await?;
            }
            B::commit(tx).await?;
            total += ids.len() as u64;
            if ids.len() < usize::from(PURGE_BATCH) {
                return Ok(total);
            }
        }
    }

    /// Runs `sql`, a `DELETE` whose last parameter is the batch size (`LIMIT $n`), until a
    /// batch comes back short; returns how many rows went.
    async fn delete_in_batches(&self, sql: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
        let mut args = args.to_vec();
        args.push(Arg::Int(i64::from(PURGE_BATCH)));
        let mut total = 0;
        loop {
            let done = self.db.execute(On::Write, sql, &args).await?;
            total += done;
            if done < u64::from(PURGE_BATCH) {
                return Ok(total);
            }
        }
    }
}

/// The board-state writer's rows ([`StateRows`](super::state_writer::StateRows)), on its own
/// connection.
pub(crate) struct WriterRows<B> {
    db: Arc<B>,
    node: Uuid,
}

#[async_trait]
impl<B: Backend> super::state_writer::StateRows for WriterRows<B> {
    async fn newest(&mut self, boards: Vec<Uuid>) -> StoreResult<HashMap<Uuid, Version>> {
        newest_states(&*self.db, On::States, &boards).await
    }

    async fn insert(
        &mut self,
        rows: &[super::state_writer::NewState<'_>],
    ) -> StoreResult<HashSet<Uuid>> {
        Ok(self
            .db
            .insert_states(self.node, rows)
            .await?
            .into_iter()
            .collect())
    }

    async fn earlier(&mut self, commands: &[Uuid]) -> StoreResult<HashMap<Uuid, Saved>> {
        earlier_states(&*self.db, On::States, commands).await
    }
}

/// The newest stored version of each of these boards that has a state.
async fn newest_states<B: Backend>(
    db: &B,
    on: On<'_, B::Tx>,
    boards: &[Uuid],
) -> StoreResult<HashMap<Uuid, Version>> {
    let sql = format!(
        "SELECT board_id, MAX(version) AS newest FROM board_state WHERE {} GROUP BY board_id",
        B::in_ids("board_id", "$1")
    );
    db.fetch(on, &sql, &[Arg::Ids(boards)])
        .await?
        .iter()
        .map(|row| Ok((row.id("board_id")?, Version(row.int("newest")?))))
        .collect()
}

/// The stored outcome of each of these commands: a command stored twice (a resend that
/// reached two nodes) answers its lowest `(version, id)`, the same on every node.
async fn earlier_states<B: Backend>(
    db: &B,
    on: On<'_, B::Tx>,
    commands: &[Uuid],
) -> StoreResult<HashMap<Uuid, Saved>> {
    let sql = format!(
        "SELECT b.command_id, b.board_id, b.version FROM board_state b WHERE {}
         AND NOT EXISTS (SELECT 1 FROM board_state o WHERE o.command_id = b.command_id
                         AND (o.version, o.id) < (b.version, b.id))",
        B::in_ids("b.command_id", "$1")
    );
    db.fetch(on, &sql, &[Arg::Ids(commands)])
        .await?
        .iter()
        .map(|row| {
            let board = row.id("board_id")?;
            let version = Version(row.int("version")?);
            Ok((row.id("command_id")?, Saved::Before { board, version }))
        })
        .collect()
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn migrate(&self) -> StoreResult<Vec<String>> {
        measured!("migrate", async move { self.db.migrate().await }).await
    }

    async fn databases(&self) -> Vec<DatabaseStatus> {
        self.db.databases().await
    }

    async fn replication(&self) -> Vec<Replication> {
        self.db.replication().await
    }

    fn replicated(&self) -> bool {
        self.db.replicated()
    }

    async fn heartbeat(&self) -> StoreResult<()> {
        measured!("heartbeat", async move {
            let (id, version) = (Uuid::now_v7(), self.hlc.next());
            self.insert(On::Write, "node_heartbeat", id, "", &[], version)
                .await
        })
        .await
    }

    async fn live_nodes(&self, within: Duration) -> StoreResult<u32> {
        measured!("live_nodes", async move {
            let since = Version::at_millis(wall_millis() - millis_of(within));
            let row = self
                .one(
                    On::Read,
                    "SELECT COUNT(DISTINCT node) AS nodes FROM node_heartbeat WHERE version >= $1",
                    &[Arg::Int(since.0)],
                )
                .await?;
            let nodes = row.map_or(Ok(0), |row| row.int("nodes"))?;
            Ok(u32::try_from(nodes).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn upkeep_nodes(&self, lease: Duration) -> StoreResult<NodeIds> {
        measured!("upkeep_nodes", async move {
            let live = self.live_node_ids(lease).await?;
            if live.first().is_some_and(|first| *first != self.node) {
                return Ok(NodeIds::new(self.node, []));
            }
            let with_rows = self
                .db
                .fetch(
                    On::Read,
                    "SELECT DISTINCT node FROM board_state
                 UNION SELECT DISTINCT node FROM board_code
                 UNION SELECT DISTINCT node FROM board_code_use
                 UNION SELECT DISTINCT node FROM lesson_revision
                 UNION SELECT DISTINCT node FROM node_heartbeat",
                    &[],
                )
                .await?
                .iter()
                .map(|row| row.id("node"))
                .collect::<StoreResult<Vec<Uuid>>>()?;
            let mut gone: Vec<Uuid> = with_rows
                .into_iter()
                .filter(|node| !live.contains(node))
                .collect();
            gone.sort();
            Ok(NodeIds::new(self.node, gone))
        })
        .await
    }

    async fn purge_heartbeats(&self, nodes: &NodeIds) -> StoreResult<u64> {
        measured!("purge_heartbeats", async move {
            let sql = format!(
                "DELETE FROM node_heartbeat WHERE id IN (
                SELECT h.id FROM node_heartbeat h WHERE {}
                AND EXISTS (SELECT 1 FROM node_heartbeat n WHERE n.node = h.node
                            AND (n.version, n.id) > (h.version, h.id))
                LIMIT $2)",
                B::in_ids("h.node", "$1")
            );
            self.delete_in_batches(&sql, &[Arg::Ids(nodes.ids())]).await
        })
        .await
    }
}
