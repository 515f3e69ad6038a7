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
mod media;
mod writer;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::*;
use crate::domain::board::BoardState;
use crate::domain::hlc::{millis_of, Hlc, Version};
use crate::domain::node::Node;
use crate::store::sql::*;
use crate::store::state_writer::{StateWrite, StateWriter, STATE_BATCH};
use writer::PgRows;

/// Every migration, in order; a name is applied once per database.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_schema",
        include_str!("../migrations/postgres/0001_schema.sql"),
    ),
    (
        "0002_media",
        include_str!("../migrations/postgres/0002_media.sql"),
    ),
    (
        "0003_media_preview",
        include_str!("../migrations/postgres/0003_media_preview.sql"),
    ),
    (
        "0004_media_keyed_by_id",
        include_str!("../migrations/postgres/0004_media_keyed_by_id.sql"),
    ),
    (
        "0005_board_revocation",
        include_str!("../migrations/postgres/0005_board_revocation.sql"),
    ),
];

/// Every table the migrations create that replicates: all of them but [`LOCAL_TABLES`] (the
/// store suite checks this list against both backends' schemas).
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
    "board_revocation",
    "node_heartbeat",
    "media",
    "media_chunk",
    "media_upload",
    "media_preview",
    "media_file",
    "media_file_chunk",
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
    // Only when missing: `IF NOT EXISTS` would print a notice on every start.
    let bookkept: bool = sqlx::query_scalar("SELECT to_regclass('schema_migration') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    if !bookkept {
        sqlx::Executor::execute(&mut *tx, BOOTSTRAP).await?;
    }
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
    databases: Arc<Databases>,
    hlc: Arc<Hlc>,
    node: Uuid,
    /// Board states go through one group-committing writer per node (see `StateWriter`).
    states: mpsc::Sender<StateWrite>,
}

/// The databases a node may use, in order of preference, and the one it uses now: the first
/// that answers. A watcher checks them every [`WATCH_EVERY`], so a node moves to the next
/// database within seconds of its database failing, and back when the preferred one
/// answers again.
pub(crate) struct Databases {
    members: Vec<Database>,
    /// The position of the database in use; a change wakes requests waiting for a
    /// connection to the one before.
    active: watch::Sender<usize>,
}

/// What a connection is for: each has a pool of its own on every database.
#[derive(Clone, Copy)]
enum Role {
    Read,
    Write,
    /// The board-state writer's single connection.
    States,
}

struct Database {
    /// Its URL without a password, for logs and `/readyz`.
    url: String,
    read: PgPool,
    write: PgPool,
    /// The board-state writer's own connection.
    states: PgPool,
    options: PgConnectOptions,
    /// The watcher's connection, made again after each failure: a server that stopped
    /// refuses it at once, where a pool would keep trying until its timeout.
    probe: tokio::sync::Mutex<Option<PgConnection>>,
    /// Why it can never catch up with another database (its provider dropped the WAL it
    /// missed): the node does not serve from it until it is rebuilt.
    cannot_catch_up: parking_lot::Mutex<Option<String>>,
    /// Its replication was looked at since it last answered: a database that comes back is
    /// used again only once it is known to be able to catch up.
    assessed: AtomicBool,
    /// It answered the watcher's last question.
    answered: AtomicBool,
}

impl Database {
    async fn answers(&self) -> bool {
        let mut probe = self.probe.lock().await;
        let ask = async {
            let conn = match probe.as_mut() {
                Some(conn) => conn,
                None => probe.insert(PgConnection::connect_with(&self.options).await?),
            };
            sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
        };
        let answered = matches!(tokio::time::timeout(ANSWER_WITHIN, ask).await, Ok(Ok(())));
        if !answered {
            *probe = None;
            self.assessed.store(false, Ordering::Relaxed);
        }
        self.answered.store(answered, Ordering::Relaxed);
        answered
    }

    /// Re-enables its subscriptions that are down while their provider could resume them,
    /// and finds whether it can catch up with the others.
    async fn assess(&self) {
        let found = match self.write.acquire().await {
            Ok(mut conn) => cluster::mend_subscriptions(&mut conn).await,
            Err(e) => Err(e),
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "cannot check replication");
                return;
            }
        };
        if !found.reenabled.is_empty() {
            tracing::warn!(url = %self.url, subscriptions = ?found.reenabled, "re-enabled replication that was down");
        }
        let mut stuck = self.cannot_catch_up.lock();
        if found.cannot_catch_up != *stuck {
            match &found.cannot_catch_up {
                Some(why) => tracing::error!(url = %self.url, why = %why,
                    "this database can never catch up with the others; not serving from it until it is rebuilt"),
                None => tracing::info!(url = %self.url, "this database can catch up again"),
            }
            *stuck = found.cannot_catch_up;
        }
        self.assessed.store(true, Ordering::Relaxed);
    }

    fn cannot_catch_up(&self) -> Option<String> {
        self.cannot_catch_up.lock().clone()
    }
}

/// How often the watcher asks each database whether it answers.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How often a node looks for replication left down after a database came back.
const MEND_EVERY: Duration = Duration::from_secs(5);
/// How long a database may take to answer the watcher (school networks are slow, a dead
/// server is silent).
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How long a request waits for a connection before it fails with 503, so that requests
/// during a failover end quickly and clients retry.
const ACQUIRE_WITHIN: Duration = Duration::from_secs(3);
/// The longest any statement may run before PostgreSQL cancels it.
const STATEMENT_TIMEOUT: &str = "10s";

impl Databases {
    /// A connection for `role` to the database in use. Waiting for one sends nothing, so when
    /// the node moves to another database meanwhile the wait moves with it: a request that
    /// arrives as its database fails is served by the next one rather than refused.
    async fn connection(&self, role: Role) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + ACQUIRE_WITHIN;
        let mut moved = self.active.subscribe();
        loop {
            let db = &self.members[*moved.borrow_and_update()];
            let pool = match role {
                Role::Read => &db.read,
                Role::Write => &db.write,
                Role::States => &db.states,
            };
            tokio::select! {
                acquired = tokio::time::timeout_at(deadline, pool.acquire()) => {
                    return acquired.unwrap_or(Err(sqlx::Error::PoolTimedOut));
                }
                Ok(()) = moved.changed() => {}
            }
        }
    }

    /// A read connection to each database but the one in use that answered the watcher
    /// last and can catch up: where a write that must not race one made elsewhere is looked
    /// for before it is answered.
    async fn others(&self) -> Vec<PoolConnection<Postgres>> {
        let active = *self.active.borrow();
        let mut others = Vec::new();
        for (i, db) in self.members.iter().enumerate() {
            if i == active || !db.answered.load(Ordering::Relaxed) || db.cannot_catch_up().is_some()
            {
                continue;
            }
            if let Ok(Ok(conn)) = tokio::time::timeout(ANSWER_WITHIN, db.read.acquire()).await {
                others.push(conn);
            }
        }
        others
    }

    /// Whether each database answers now, in order.
    async fn answering(&self) -> Vec<bool> {
        futures_util::future::join_all(self.members.iter().map(Database::answers)).await
    }

    /// Uses the first database that answers and can catch up with the others; keeps the
    /// current one when none does.
    async fn choose(&self) {
        let answering = self.answering().await;
        let mut first = None;
        for (i, (db, up)) in self.members.iter().zip(answering).enumerate() {
            if up && !db.assessed.load(Ordering::Relaxed) {
                db.assess().await;
            }
            if up && db.cannot_catch_up().is_none() {
                first = Some(i);
                break;
            }
        }
        let Some(first) = first else {
            return;
        };
        let before = self.active.send_replace(first);
        if before != first {
            tracing::warn!(
                from = %self.members[before].url,
                to = %self.members[first].url,
                "moving to another database"
            );
        }
    }

    async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            self.choose().await;
        }
    }

    /// Keeps replication between the databases going without anyone's help: after a
    /// database was down, pglogical may leave the others' subscriptions to it down for
    /// minutes; every [`MEND_EVERY`] each answering database has those re-enabled once their
    /// provider answers (`cluster status --repair` does the same by hand). A database found
    /// unable to ever catch up is left for the others.
    async fn mend_replication(self: Arc<Self>) {
        let mut tick = tokio::time::interval(MEND_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.assess().await;
            self.choose().await;
        }
    }

    /// Looks at the replication of each database that answers: see [`Self::mend_replication`].
    async fn assess(&self) {
        for (db, up) in self.members.iter().zip(self.answering().await) {
            if up {
                db.assess().await;
            }
        }
    }
}

/// Makes `tx` count as in progress from now on (it takes its transaction id at once rather
/// than at its first write), so a node waiting on this database for what was in progress
/// when its own row arrived ([`PgStore::where_arrived`]) waits for a check `tx` makes next.
async fn in_progress_from_now(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How long a write that must not race one made through another database (a registration,
/// a lesson save) waits for its row to reach the other databases before it is answered.
const SEEN_WITHIN: Duration = Duration::from_secs(2);

impl PgStore {
    /// A connection to each other database that answers, once the row `id` of `table`,
    /// written here, has reached it and every transaction in progress there at that moment
    /// has ended: a write of the same thing made on that database, whose check ran before
    /// this row arrived, is committed by then, so both writers see both and can tell which
    /// won (one whose check ran after the arrival saw this row and refused itself).
    /// A database the row has not reached within [`SEEN_WITHIN`] (replication is cut or
    /// slow) is left out: nothing can be told there yet, and the rule of each table decides
    /// once the databases meet.
    async fn where_arrived(
        &self,
        table: &str,
        id: Uuid,
    ) -> StoreResult<Vec<PoolConnection<Postgres>>> {
        let deadline = tokio::time::Instant::now() + SEEN_WITHIN;
        let mut arrived = Vec::new();
        // `table` is one of this crate's table names, never outside input.
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)");
        for mut other in self.databases.others().await {
            // Replication takes about a millisecond or two here: look again soon, then less
            // often.
            let mut wait = Duration::from_millis(1);
            loop {
                let there: bool = sqlx::query_scalar(&sql)
                    .bind(id)
                    .fetch_one(&mut *other)
                    .await?;
                if there {
                    if Self::until_settled(&mut other, deadline).await? {
                        arrived.push(other);
                    }
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(%table, %id, "not replicated yet; cannot check it on every database");
                    break;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(50));
            }
        }
        Ok(arrived)
    }

    /// Waits until every transaction in progress on `conn`'s database now has ended;
    /// false if some are still running at `deadline`.
    async fn until_settled(
        conn: &mut PoolConnection<Postgres>,
        deadline: tokio::time::Instant,
    ) -> StoreResult<bool> {
        let running: Vec<String> =
            sqlx::query_scalar("SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) x")
                .fetch_all(&mut **conn)
                .await?;
        let mut wait = Duration::from_millis(1);
        loop {
            let ended: bool = sqlx::query_scalar(
                "SELECT COALESCE(bool_and(pg_xact_status(x::xid8) IS DISTINCT FROM 'in progress'),
                                 TRUE)
                 FROM unnest($1::text[]) x",
            )
            .bind(&running)
            .fetch_one(&mut **conn)
            .await?;
            if ended {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(50));
        }
    }

    /// Connects to the databases at `urls` (in order of preference) for `node`; at least one
    /// must answer now. The others are connected to when they answer.
    pub async fn open(urls: &[String], node: &Node) -> Result<Self, OpenError> {
        let mut members = Vec::new();
        for url in urls {
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
                    .acquire_timeout(ACQUIRE_WITHIN)
                    .connect_lazy_with(options.clone())
            };
            members.push(Database {
                url: redact_url(url),
                read: pool(8),
                write: pool(4),
                states: pool(1),
                options,
                probe: Default::default(),
                cannot_catch_up: Default::default(),
                assessed: Default::default(),
                answered: Default::default(),
            });
        }
        let databases = Arc::new(Databases {
            members,
            active: watch::Sender::new(0),
        });
        let answering = databases.answering().await;
        let Some(first) = answering.iter().position(|a| *a) else {
            // Why the first one does not (a refused certificate, a wrong password, …).
            let why = match PgConnection::connect_with(&databases.members[0].options).await {
                Err(e) => format!("no database answers ({e})"),
                Ok(_) => "no database answers".to_owned(),
            };
            return Err(OpenError::Unreachable {
                url: urls
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: why,
            });
        };
        databases.active.send_replace(first);
        databases.assess().await;
        databases.choose().await;
        tokio::spawn(databases.clone().watch());
        tokio::spawn(databases.clone().mend_replication());
        let (states, queue) = mpsc::channel(4 * STATE_BATCH);
        let rows = PgRows {
            databases: databases.clone(),
            node: node.id,
        };
        tokio::spawn(StateWriter::new(rows, node.clock.clone()).run(queue));
        Ok(Self {
            databases,
            hlc: node.clock.clone(),
            node: node.id,
            states,
        })
    }

    async fn read(&self) -> StoreResult<PoolConnection<Postgres>> {
        Ok(self.databases.connection(Role::Read).await?)
    }

    async fn write(&self) -> StoreResult<PoolConnection<Postgres>> {
        Ok(self.databases.connection(Role::Write).await?)
    }

    /// A fresh version after every row of `table` whose `keys` columns hold these ids,
    /// whichever node wrote them: the next row of a fact sorts after all the earlier ones.
    async fn version_after(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        table: &str,
        keys: &[(&str, Uuid)],
    ) -> StoreResult<Version> {
        let filter: Vec<String> = keys
            .iter()
            .map(|(column, _)| format!("{column} = ?"))
            .collect();
        let sql = q(format!(
            "SELECT MAX(version) FROM {table} WHERE {}",
            filter.join(" AND ")
        ));
        let mut query = sqlx::query_scalar::<_, Option<i64>>(&sql);
        for (_, id) in keys {
            query = query.bind(id);
        }
        let newest = query.fetch_one(&mut **tx).await?;
        Ok(self.hlc.next_after(Version(newest.unwrap_or(0))))
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
                .execute(&mut *self.write().await?)
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
/// Arguments for [`PgStore::delete_in_batches`]: the nodes whose rows go, then `rest`.
fn purge_args(nodes: &NodeIds, rest: &[i64]) -> StoreResult<PgArguments> {
    let mut args = PgArguments::default();
    let failed = |e: sqlx::error::BoxDynError| StoreError::Unavailable(e.to_string().into());
    sqlx::Arguments::add(&mut args, nodes.ids()).map_err(failed)?;
    for value in rest {
        sqlx::Arguments::add(&mut args, *value).map_err(failed)?;
    }
    Ok(args)
}

#[async_trait]
impl Store for PgStore {
    fn replicated(&self) -> bool {
        true
    }

    /// Migrates every database that answers (schema changes do not replicate) and adds the
    /// tables a migration created to a cluster's replication set; a database that is down is
    /// migrated when the node next starts while it answers.
    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let answering = self.databases.answering().await;
        let mut applied = Vec::new();
        for (db, up) in self.databases.members.iter().zip(answering) {
            if !up {
                tracing::warn!(url = %db.url, "database not answering; not migrated now");
                continue;
            }
            let mut conn = db.write.acquire().await?;
            for name in migrate(&mut conn).await? {
                if !applied.contains(&name) {
                    applied.push(name);
                }
            }
            let added = cluster::replicate_new_tables(&mut conn).await?;
            if !added.is_empty() {
                applied.push(format!("replicating {} on {}", added.join(", "), db.url));
            }
        }
        Ok(applied)
    }

    async fn databases(&self) -> Vec<DatabaseStatus> {
        let active = *self.databases.active.borrow();
        let answering = self.databases.answering().await;
        self.databases
            .members
            .iter()
            .zip(answering)
            .enumerate()
            .map(|(i, (db, answering))| DatabaseStatus {
                url: db.url.clone(),
                answering,
                active: i == active,
                cannot_catch_up: db.cannot_catch_up(),
            })
            .collect()
    }

    async fn heartbeat(&self) -> StoreResult<()> {
        sqlx::query(&q(
            "INSERT INTO node_heartbeat (id, node, version) VALUES (?, ?, ?)",
        ))
        .bind(Uuid::now_v7())
        .bind(self.node)
        .bind(self.hlc.next().0)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn live_nodes(&self, within: Duration) -> StoreResult<u32> {
        let since = Version::at_millis(crate::domain::hlc::wall_millis() - millis_of(within));
        let nodes: i64 = sqlx::query_scalar(&q(
            "SELECT COUNT(DISTINCT node) FROM node_heartbeat WHERE version >= ?",
        ))
        .bind(since.0)
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(u32::try_from(nodes).unwrap_or(u32::MAX))
    }

    async fn upkeep_nodes(&self, lease: Duration) -> StoreResult<NodeIds> {
        let cutoff = Version::at_millis(crate::domain::hlc::wall_millis() - millis_of(lease));
        let live: Vec<String> = sqlx::query_scalar(&q(
            "SELECT node::text FROM node_heartbeat GROUP BY node HAVING MAX(version) >= ?
             ORDER BY 1",
        ))
        .bind(cutoff.0)
        .fetch_all(&mut *self.read().await?)
        .await?;
        let me = self.node.to_string();
        if live.first().is_some_and(|first| *first != me) {
            return Ok(NodeIds::new(self.node, []));
        }
        let with_rows: Vec<String> = sqlx::query_scalar(
            "SELECT node::text FROM (SELECT DISTINCT node FROM board_state
                 UNION SELECT DISTINCT node FROM board_code
                 UNION SELECT DISTINCT node FROM board_code_use
                 UNION SELECT DISTINCT node FROM lesson_revision
                 UNION SELECT DISTINCT node FROM node_heartbeat) AS n ORDER BY 1",
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let gone = with_rows
            .iter()
            .filter(|node| !live.contains(node))
            .filter_map(|node| Uuid::parse_str(node).ok());
        Ok(NodeIds::new(self.node, gone))
    }

    async fn purge_heartbeats(&self, nodes: &NodeIds) -> StoreResult<u64> {
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
