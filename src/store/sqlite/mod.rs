//! The embedded store: SQLite in WAL mode under the data directory.
//!
//! Reads go through a small pool; every write goes through a single connection, so writes in
//! this process are serialised without SQLite busy-retries, and `BEGIN IMMEDIATE` makes a
//! second process (the `classcast user` command next to a running server) wait its turn
//! instead of failing half-way. The schema obeys the same insert-only rules as the replicated
//! PostgreSQL one so the two never drift apart.
//!
//! The queries are the store's (`store/queries`); this backend runs them (`Backend`),
//! opens and migrates the database, and runs the board-state writer on a thread of its own
//! (`writer.rs`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, Transaction};
use uuid::Uuid;

use super::backend::{Arg, Backend, On};
use super::queries::SqlStore;
use super::state_writer::{NewState, STATE_BATCH};
use super::{redact_url, schema, DatabaseStatus, OpenError, StoreError, StoreResult};
use crate::domain::node::Node;

mod writer;

use writer::WRITER_AUTOCHECKPOINT_PAGES;

/// The migrations of `migrations/sqlite`, in order (see `store::schema`).
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
    (
        "0014_mail",
        include_str!("../migrations/sqlite/0014_mail.sql"),
    ),
    (
        "0015_lesson_library",
        include_str!("../migrations/sqlite/0015_lesson_library.sql"),
    ),
    (
        "0016_lesson_sharing",
        include_str!("../migrations/sqlite/0016_lesson_sharing.sql"),
    ),
    (
        "0017_lesson_theme",
        include_str!("../migrations/sqlite/0017_lesson_theme.sql"),
    ),
];

/// SQLite under the store: a read pool and the single write connection.
pub(crate) struct Sqlite {
    /// Its URL, as `/readyz` shows it.
    url: String,
    read: SqlitePool,
    write: SqlitePool,
}

/// The store on SQLite.
pub(crate) type SqliteStore = SqlStore<Sqlite>;

/// Ids as a JSON array, for `json_each`.
fn json_array(ids: &[Uuid]) -> String {
    serde_json::Value::from_iter(ids.iter().map(Uuid::to_string)).to_string()
}

/// Opens (creating it if needed) the database at `url` for `node`.
pub(crate) async fn open(url: &str, node: &Node) -> Result<SqliteStore, OpenError> {
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
    let db = Sqlite {
        url: redact_url(url),
        read,
        write,
    };
    let mut spawned = Ok(());
    let store = SqlStore::new(std::sync::Arc::new(db), node, |writer, queue| {
        spawned = writer::spawn(writer, queue, options);
    });
    spawned.map_err(|e| unreachable(e.to_string()))?;
    Ok(store)
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

impl super::backend::Row for SqliteRow {
    fn id(&self, column: &str) -> StoreResult<Uuid> {
        self.maybe_id(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("{column}: missing")))
    }

    fn maybe_id(&self, column: &str) -> StoreResult<Option<Uuid>> {
        let text: Option<String> = self.try_get(column)?;
        text.map(|t| Uuid::parse_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    }

    fn int(&self, column: &str) -> StoreResult<i64> {
        Ok(self.try_get(column)?)
    }

    fn maybe_int(&self, column: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.try_get::<i64, _>(column)? != 0)
    }

    fn text(&self, column: &str) -> StoreResult<String> {
        Ok(self.try_get(column)?)
    }

    fn maybe_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn bytes(&self, column: &str) -> StoreResult<Vec<u8>> {
        Ok(self.try_get(column)?)
    }
}

/// `sql` with `args` bound: ids as text, id lists as JSON arrays for `json_each`.
fn query<'q>(
    sql: &'q str,
    args: &'q [Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments<'q>> {
    args.iter().fold(sqlx::query(sql), |query, arg| match *arg {
        Arg::Id(id) => query.bind(id.to_string()),
        Arg::MaybeId(id) => query.bind(id.map(|id| id.to_string())),
        Arg::Ids(ids) => query.bind(json_array(ids)),
        Arg::Int(n) => query.bind(n),
        Arg::MaybeInt(n) => query.bind(n),
        Arg::Flag(on) => query.bind(on),
        Arg::Text(text) => query.bind(text),
        Arg::MaybeText(text) => query.bind(text),
        Arg::Bytes(bytes) => query.bind(bytes),
    })
}

#[async_trait]
impl Backend for Sqlite {
    type Row = SqliteRow;
    type Tx = Transaction<'static, sqlx::Sqlite>;

    const ID_TYPE: &'static str = "TEXT";

    fn in_ids(column: &str, param: &str) -> String {
        format!("{column} IN (SELECT value FROM json_each({param}))")
    }

    fn contains(haystack: &str, needle: &str) -> String {
        format!("instr({haystack}, {needle}) > 0")
    }

    async fn fetch(
        &self,
        on: On<'_, Self::Tx>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> StoreResult<Vec<SqliteRow>> {
        let query = query(sql, args);
        Ok(match on {
            On::Read => query.fetch_all(&self.read).await?,
            On::Write | On::States => query.fetch_all(&self.write).await?,
            On::Tx(tx) => query.fetch_all(&mut **tx).await?,
        })
    }

    async fn execute(&self, on: On<'_, Self::Tx>, sql: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
        let query = query(sql, args);
        let done = match on {
            On::Read => query.execute(&self.read).await?,
            On::Write | On::States => query.execute(&self.write).await?,
            On::Tx(tx) => query.execute(&mut **tx).await?,
        };
        Ok(done.rows_affected())
    }

    async fn begin(&self) -> StoreResult<Self::Tx> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn commit(tx: Self::Tx) -> StoreResult<()> {
        Ok(tx.commit().await?)
    }

    async fn insert_states(&self, node: Uuid, rows: &[NewState<'_>]) -> StoreResult<Vec<Uuid>> {
        writer::insert(&self.write, node, rows).await
    }

    /// In one `BEGIN IMMEDIATE` transaction, so that a second process (`classcast user` next to
    /// a starting server) waits for it rather than applying the same migration again.
    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let migrator = Migrator::new(schema::Embedded(MIGRATIONS)).await?;
        // Up to date (what a command beside a running server finds): nothing to write, so
        // no wait for the server's writes.
        let mut read = self.read.acquire().await?;
        let recorded: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table'
                            AND name = '_sqlx_migrations')",
        )
        .fetch_one(&mut *read)
        .await?;
        if recorded && schema::pending(&migrator, &mut *read).await?.is_empty() {
            return Ok(Vec::new());
        }
        drop(read);
        let mut tx = self.begin().await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name IN ('_sqlx_migrations', 'schema_migration')",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.ensure_migrations_table().await?;
        if tables == ["schema_migration"] {
            let recorded: Vec<String> = sqlx::query_scalar("SELECT name FROM schema_migration")
                .fetch_all(&mut *tx)
                .await?;
            for (version, description, checksum) in schema::bridge(&migrator, &recorded) {
                sqlx::query(schema::RECORD)
                    .bind(version)
                    .bind(description)
                    .bind(checksum)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let applied = schema::apply(&migrator, &mut *tx).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn databases(&self) -> Vec<DatabaseStatus> {
        let answering = sqlx::query("SELECT COUNT(*) FROM sqlite_master")
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
