//! PostgreSQL, for cluster mode: several app nodes on databases that replicate both ways.
//!
//! The same tables and insert-only rules as SQLite's (`migrations/postgres`), with native
//! types; one file per part of the [`Store`] trait, mirroring `store/sqlite` one for one
//! (`accounts.rs`, `lessons.rs`, `boards.rs`, and the board-state writer in `writer.rs`).
//! Migrations keep local bookkeeping in `schema_migration`, which does not replicate (nor
//! does DDL); `cluster.rs` is the two-way replication `classcast cluster init` sets up.
//!
//! SQL is written with `?` placeholders, as for SQLite, and numbered for PostgreSQL by
//! [`q`]: the two backends' statements then differ only where the dialects do.

pub mod cluster;

mod accounts;
mod boards;
mod lessons;
mod writer;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::*;
use crate::domain::board::BoardState;
use crate::domain::hlc::{Hlc, Version};
use crate::domain::node::Node;
use crate::store::state_writer::{StateWrite, StateWriter, STATE_BATCH};
use accounts::CURRENT_PROFILE;
use writer::PgRows;

/// Every migration, in order; a name is applied once per database.
const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_schema",
    include_str!("../migrations/postgres/0001_schema.sql"),
)];

/// Every table the migrations create that replicates: all of them but [`LOCAL_TABLES`].
pub const REPLICATED_TABLES: &[&str] = &[
    "account",
    "account_name",
    "account_access",
    "account_pending",
    "account_credential",
    "session",
    "session_revocation",
    "lesson",
    "lesson_revision",
    "board",
    "board_code",
    "board_code_use",
    "board_pairing",
    "board_name",
    "board_state",
    "node_heartbeat",
];

/// Tables of this database alone: never replicated.
pub const LOCAL_TABLES: &[&str] = &["schema_migration"];

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_migration (
    name text PRIMARY KEY, applied_at bigint NOT NULL)";

/// Applies pending migrations to the database `conn` is connected to; returns their names.
/// Nodes starting at once take turns (an advisory lock), so each migration runs once.
pub async fn migrate(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('classcast migrations'))")
        .execute(&mut *tx)
        .await?;
    sqlx::Executor::execute(&mut *tx, BOOTSTRAP).await?;
    let mut applied = Vec::new();
    for (name, sql) in MIGRATIONS {
        let done = sqlx::query("SELECT 1 FROM schema_migration WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if done {
            continue;
        }
        sqlx::Executor::execute(&mut *tx, *sql).await?;
        sqlx::query("INSERT INTO schema_migration (name, applied_at) VALUES ($1, $2)")
            .bind(name)
            .bind(crate::domain::hlc::wall_millis())
            .execute(&mut *tx)
            .await?;
        applied.push((*name).to_owned());
    }
    tx.commit().await?;
    Ok(applied)
}

pub struct PgStore {
    read: PgPool,
    write: PgPool,
    hlc: Arc<Hlc>,
    node: Uuid,
    /// Board states go through one group-committing writer per node (see `StateWriter`).
    states: mpsc::Sender<StateWrite>,
}

/// The longest any statement may run before PostgreSQL cancels it.
const STATEMENT_TIMEOUT: &str = "10s";

impl PgStore {
    /// Connects to the database at `url` for `node`.
    pub async fn open(url: &str, node: &Node) -> Result<Self, OpenError> {
        let unreachable = |reason: String| OpenError::Unreachable {
            url: redact_url(url),
            reason,
        };
        // An answered write is durable: each commit waits for the WAL's flush.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| unreachable(e.to_string()))?
            .options([
                ("statement_timeout", STATEMENT_TIMEOUT),
                ("synchronous_commit", "on"),
            ]);
        let pool = |connections: u32| {
            PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
        };
        let read = pool(8).await.map_err(|e| unreachable(e.to_string()))?;
        let write = pool(4).await.map_err(|e| unreachable(e.to_string()))?;
        let states_conn = pool(1).await.map_err(|e| unreachable(e.to_string()))?;
        let (states, queue) = mpsc::channel(4 * STATE_BATCH);
        let rows = PgRows {
            write: states_conn,
            node: node.id,
        };
        tokio::spawn(StateWriter::new(rows, node.clock.clone()).run(queue));
        Ok(Self {
            read,
            write,
            hlc: node.clock.clone(),
            node: node.id,
            states,
        })
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.write.begin().await?)
    }

    fn observed(&self, version: i64) -> Version {
        let v = Version(version);
        self.hlc.observe(v);
        v
    }

    /// Runs `sql`, a `DELETE` whose last parameter is the batch size (`LIMIT ?`), until a
    /// batch comes back short; returns how many rows went.
    async fn delete_in_batches(&self, sql: &str, args: PgArguments) -> StoreResult<u64> {
        let sql = q(sql);
        let mut total = 0;
        loop {
            let mut batch = args.clone();
            sqlx::Arguments::add(&mut batch, PURGE_BATCH)
                .map_err(|e| StoreError::Unavailable(e.to_string().into()))?;
            let done = sqlx::query_with(&sql, batch)
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

/// Rows a purge deletes per statement.
const PURGE_BATCH: i64 = 1000;

/// Numbers the `?` placeholders of `sql` for PostgreSQL (`$1`, `$2`, …), in order. The SQL
/// here has no `?` anywhere else (no jsonb `?` operators).
fn q(sql: impl AsRef<str>) -> String {
    let sql = sql.as_ref();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn uuid(row: &PgRow, col: &str) -> StoreResult<Uuid> {
    Ok(row.try_get(col)?)
}

/// Node ids as stored (UUIDs); anything else names no node of this backend.
fn node_ids(nodes: &[String]) -> Vec<Uuid> {
    nodes
        .iter()
        .filter_map(|n| Uuid::parse_str(n).ok())
        .collect()
}

/// Arguments for [`PgStore::delete_in_batches`]: the nodes whose rows go, then `rest`.
fn purge_args(nodes: &[String], rest: &[i64]) -> StoreResult<PgArguments> {
    let mut args = PgArguments::default();
    let failed = |e: sqlx::error::BoxDynError| StoreError::Unavailable(e.to_string().into());
    sqlx::Arguments::add(&mut args, node_ids(nodes)).map_err(failed)?;
    for value in rest {
        sqlx::Arguments::add(&mut args, *value).map_err(failed)?;
    }
    Ok(args)
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut conn = self.write.acquire().await?;
        Ok(migrate(&mut conn).await?)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn heartbeat(&self) -> StoreResult<()> {
        sqlx::query(&q(
            "INSERT INTO node_heartbeat (id, node, version) VALUES (?, ?, ?)",
        ))
        .bind(Uuid::now_v7())
        .bind(self.node)
        .bind(self.hlc.next().0)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn upkeep_nodes(&self, lease: Duration) -> StoreResult<Vec<String>> {
        let cutoff =
            Version::at_millis(crate::domain::hlc::wall_millis() - lease.as_millis() as i64);
        let live: Vec<String> = sqlx::query_scalar(&q(
            "SELECT node::text FROM node_heartbeat GROUP BY node HAVING MAX(version) >= ?
             ORDER BY 1",
        ))
        .bind(cutoff.0)
        .fetch_all(&self.read)
        .await?;
        let me = self.node.to_string();
        let mut nodes = vec![me.clone()];
        if live.first().is_some_and(|first| *first != me) {
            return Ok(nodes);
        }
        let with_rows: Vec<String> = sqlx::query_scalar(
            "SELECT node::text FROM (SELECT DISTINCT node FROM board_state
                 UNION SELECT DISTINCT node FROM board_code
                 UNION SELECT DISTINCT node FROM board_code_use
                 UNION SELECT DISTINCT node FROM lesson_revision
                 UNION SELECT DISTINCT node FROM node_heartbeat) AS n ORDER BY 1",
        )
        .fetch_all(&self.read)
        .await?;
        nodes.extend(
            with_rows
                .into_iter()
                .filter(|node| *node != me && !live.contains(node)),
        );
        Ok(nodes)
    }

    async fn purge_heartbeats(&self, nodes: &[String]) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM node_heartbeat WHERE id IN (
                SELECT h.id FROM node_heartbeat h WHERE h.node = ANY(?)
                AND EXISTS (SELECT 1 FROM node_heartbeat n WHERE n.node = h.node
                            AND (n.version, n.id) > (h.version, h.id))
                LIMIT ?)",
            purge_args(nodes, &[])?,
        )
        .await
    }
}
