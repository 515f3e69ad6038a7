//! PostgreSQL, for cluster mode: several app nodes on databases that replicate both ways.
//!
//! This part holds the schema's migrations (local bookkeeping in `schema_migration`, which
//! does not replicate, since DDL does not either) and, in `cluster.rs`, the two-way
//! replication that `classcast cluster init` sets up with pglogical. The tables follow the
//! same insert-only rules as SQLite's (`migrations/postgres`); the store that reads and
//! writes them mirrors `store/sqlite`.

pub mod cluster;

use sqlx::{Connection, PgConnection};

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
    sqlx::raw_sql(BOOTSTRAP).execute(&mut *tx).await?;
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
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
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
