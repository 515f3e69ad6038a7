//! The embedded store: SQLite in WAL mode under the data directory.
//!
//! Reads go through a small pool; every write goes through a single connection, so writes in
//! this process are serialised without SQLite busy-retries, and `BEGIN IMMEDIATE` makes a
//! second process (the `classcast user` command next to a running server) wait its turn
//! instead of failing half-way. The schema obeys the same insert-only rules as the replicated
//! PostgreSQL one so the two never drift apart.
//!
//! One file per part of the [`Store`] trait, which a second backend mirrors one for one:
//! this one opens the database and migrates it; `accounts.rs`, `lessons.rs` and `boards.rs`
//! implement [`AccountStore`], [`LessonStore`] and [`BoardStore`], each with the "current
//! row" SQL of its tables; `writer.rs` is the group-committing board-state writer.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::*;
use crate::domain::board::BoardState;
use crate::domain::hlc::{millis_of, Hlc, Version};
use crate::domain::node::Node;

mod accounts;
mod boards;
mod lessons;
mod media;
mod writer;

use crate::store::sql::*;
use crate::store::state_writer::{StateWrite, StateWriter, STATE_BATCH};
use writer::{SqliteRows, WRITER_AUTOCHECKPOINT_PAGES};

/// Embedded migrations, applied in order; a name once applied is never applied again.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (
        "0002_boards",
        include_str!("../migrations/sqlite/0002_boards.sql"),
    ),
    (
        "0003_session_marks",
        include_str!("../migrations/sqlite/0003_session_marks.sql"),
    ),
    (
        "0004_code_expiry",
        include_str!("../migrations/sqlite/0004_code_expiry.sql"),
    ),
    (
        "0005_session_family",
        include_str!("../migrations/sqlite/0005_session_family.sql"),
    ),
    (
        "0006_pending_accounts",
        include_str!("../migrations/sqlite/0006_pending_accounts.sql"),
    ),
    (
        "0007_independent_facts",
        include_str!("../migrations/sqlite/0007_independent_facts.sql"),
    ),
    (
        "0008_upkeep",
        include_str!("../migrations/sqlite/0008_upkeep.sql"),
    ),
    (
        "0009_pairing_code_use",
        include_str!("../migrations/sqlite/0009_pairing_code_use.sql"),
    ),
    (
        "0010_media",
        include_str!("../migrations/sqlite/0010_media.sql"),
    ),
    (
        "0011_media_preview",
        include_str!("../migrations/sqlite/0011_media_preview.sql"),
    ),
    (
        "0012_media_keyed_by_id",
        include_str!("../migrations/sqlite/0012_media_keyed_by_id.sql"),
    ),
    (
        "0013_board_revocation",
        include_str!("../migrations/sqlite/0013_board_revocation.sql"),
    ),
];

/// Local bookkeeping that is never replicated: which migrations ran. (Databases made before
/// node ids came from the process also hold `local_node`, read once by [`recorded_node_id`].)
const BOOTSTRAP: &str = "
CREATE TABLE IF NOT EXISTS schema_migration (name TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL);
";

pub struct SqliteStore {
    /// Its URL, as `/readyz` shows it.
    url: String,
    read: SqlitePool,
    write: SqlitePool,
    hlc: Arc<Hlc>,
    node: String,
    /// Board states go through one group-committing writer (see `StateWriter`).
    states: mpsc::Sender<StateWrite>,
}

/// Ids as a JSON array, for `json_each`.
fn json_array(ids: impl IntoIterator<Item = Uuid>) -> String {
    serde_json::Value::from_iter(ids.into_iter().map(|id| id.to_string())).to_string()
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `url` for `node`.
    pub async fn open(url: &str, node: &Node) -> Result<Self, OpenError> {
        let unreachable = |reason: String| OpenError::Unreachable {
            url: redact_url(url),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| unreachable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // With sqlx's default of 50, a query returning more rows than that makes SQLite's
            // thread and ours wake each other once per further row; a batch of board states
            // reads up to `STATE_BATCH` rows.
            .row_buffer_size(STATE_BATCH);
        // Every write that is answered (a command's `ack`, a saved lesson) is on disk, not
        // just in the page cache: `FULL` makes each commit wait for `fdatasync` of the WAL.
        // Group commit keeps that to one sync per batch of board states.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .synchronous(SqliteSynchronous::Full)
                    .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES),
            )
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        sqlx::raw_sql(BOOTSTRAP)
            .execute(&write)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (hlc, node) = (node.clock.clone(), node.id.to_string());
        let (states, queue) = mpsc::channel(4 * STATE_BATCH);
        let rows = SqliteRows {
            write: write.clone(),
            node: node.clone(),
        };
        writer::spawn(StateWriter::new(rows, hlc.clone()), queue, options.clone())
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self {
            url: redact_url(url),
            read,
            write,
            hlc,
            node,
            states,
        })
    }

    /// A fresh version after every row of `table` whose `keys` columns hold these ids,
    /// whichever node wrote them: the next row of a fact sorts after all the earlier ones.
    async fn version_after(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        table: &str,
        keys: &[(&str, Uuid)],
    ) -> StoreResult<Version> {
        let filter: Vec<String> = keys
            .iter()
            .map(|(column, _)| format!("{column} = ?"))
            .collect();
        let sql = format!(
            "SELECT MAX(version) FROM {table} WHERE {}",
            filter.join(" AND ")
        );
        let mut query = sqlx::query_scalar::<_, Option<i64>>(&sql);
        for (_, id) in keys {
            query = query.bind(id.to_string());
        }
        let newest = query.fetch_one(&mut **tx).await?;
        Ok(self.hlc.next_after(Version(newest.unwrap_or(0))))
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    fn observed(&self, version: i64) -> Version {
        let v = Version(version);
        self.hlc.observe(v);
        v
    }
}

/// The node id a database made before node ids came from the process recorded for itself,
/// if `url` names such a database: a node adopting it keeps its rows its own.
pub async fn recorded_node_id(url: &str) -> Option<Uuid> {
    let options = SqliteConnectOptions::from_str(url).ok()?.read_only(true);
    let mut conn = options.connect().await.ok()?;
    let id: String = sqlx::query_scalar("SELECT node_id FROM local_node LIMIT 1")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    Uuid::parse_str(&id).ok()
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

fn uuid(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// Rows a purge deletes per statement: each batch holds the one write connection (which
/// board states wait for) only briefly.
const PURGE_BATCH: i64 = 1000;

impl SqliteStore {
    /// Runs `sql`, a `DELETE` whose last parameter is the batch size (`LIMIT ?`), until a
    /// batch comes back short; returns how many rows went.
    async fn delete_in_batches(
        &self,
        sql: &str,
        args: sqlx::sqlite::SqliteArguments<'static>,
    ) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let mut batch = args.clone();
            sqlx::Arguments::add(&mut batch, PURGE_BATCH)
                .map_err(|e| StoreError::Unavailable(e.to_string().into()))?;
            let done = sqlx::query_with(sql, batch)
                .execute(&self.write)
                .await?
                .rows_affected();
            total += done;
            if done < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

/// Arguments for [`SqliteStore::delete_in_batches`]: the nodes whose rows go (as a JSON array
/// for `json_each`), then `rest`.
fn purge_args(
    nodes: &NodeIds,
    rest: &[i64],
) -> StoreResult<sqlx::sqlite::SqliteArguments<'static>> {
    let mut args = sqlx::sqlite::SqliteArguments::default();
    let failed = |e: sqlx::error::BoxDynError| StoreError::Unavailable(e.to_string().into());
    sqlx::Arguments::add(
        &mut args,
        serde_json::Value::from(nodes.texts()).to_string(),
    )
    .map_err(failed)?;
    for value in rest {
        sqlx::Arguments::add(&mut args, *value).map_err(failed)?;
    }
    Ok(args)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut applied = Vec::new();
        for (name, sql) in MIGRATIONS {
            let mut tx = self.begin().await?;
            let done = sqlx::query("SELECT 1 FROM schema_migration WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if done {
                continue;
            }
            sqlx::Executor::execute(&mut *tx, *sql).await?;
            sqlx::query("INSERT INTO schema_migration (name, applied_at) VALUES (?, ?)")
                .bind(name)
                .bind(self.hlc.next().millis())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push((*name).to_owned());
        }
        Ok(applied)
    }

    async fn heartbeat(&self) -> StoreResult<()> {
        sqlx::query("INSERT INTO node_heartbeat (id, node, version) VALUES (?, ?, ?)")
            .bind(Uuid::now_v7().to_string())
            .bind(&self.node)
            .bind(self.hlc.next().0)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn live_nodes(&self, within: Duration) -> StoreResult<u32> {
        let since = Version::at_millis(crate::domain::hlc::wall_millis() - millis_of(within));
        let nodes: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT node) FROM node_heartbeat WHERE version >= ?",
        )
        .bind(since.0)
        .fetch_one(&self.read)
        .await?;
        Ok(u32::try_from(nodes).unwrap_or(u32::MAX))
    }

    async fn upkeep_nodes(&self, lease: Duration) -> StoreResult<NodeIds> {
        let cutoff = Version::at_millis(crate::domain::hlc::wall_millis() - millis_of(lease));
        let live: Vec<String> = sqlx::query_scalar(
            "SELECT node FROM node_heartbeat GROUP BY node HAVING MAX(version) >= ? ORDER BY node",
        )
        .bind(cutoff.0)
        .fetch_all(&self.read)
        .await?;
        let me = Uuid::parse_str(&self.node).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if live.first().is_some_and(|first| *first != self.node) {
            return Ok(NodeIds::new(me, []));
        }
        let with_rows: Vec<String> = sqlx::query_scalar(
            "SELECT node FROM (SELECT DISTINCT node FROM board_state
                 UNION SELECT DISTINCT node FROM board_code
                 UNION SELECT DISTINCT node FROM board_code_use
                 UNION SELECT DISTINCT node FROM lesson_revision
                 UNION SELECT DISTINCT node FROM node_heartbeat) ORDER BY node",
        )
        .fetch_all(&self.read)
        .await?;
        let gone = with_rows
            .iter()
            .filter(|node| !live.contains(node))
            .filter_map(|node| Uuid::parse_str(node).ok());
        Ok(NodeIds::new(me, gone))
    }

    async fn purge_heartbeats(&self, nodes: &NodeIds) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM node_heartbeat WHERE id IN (
                SELECT h.id FROM node_heartbeat h WHERE h.node IN (SELECT value FROM json_each(?))
                AND EXISTS (SELECT 1 FROM node_heartbeat n WHERE n.node = h.node
                            AND (n.version, n.id) > (h.version, h.id))
                LIMIT ?)",
            purge_args(nodes, &[])?,
        )
        .await
    }

    async fn databases(&self) -> Vec<DatabaseStatus> {
        let answering = sqlx::query("SELECT 1 FROM schema_migration LIMIT 1")
            .fetch_optional(&self.read)
            .await
            .is_ok();
        vec![DatabaseStatus {
            url: self.url.clone(),
            answering,
            active: true,
            cannot_catch_up: None,
        }]
    }
}
