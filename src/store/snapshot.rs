//! The store's rows as they are, table by table, for backups: [`Source`] reads every
//! replicated table of one database at one moment (a read transaction: SQLite's WAL and
//! PostgreSQL's repeatable read let the server go on writing meanwhile), [`Target`] writes
//! them into a store in one transaction. Values are converted by the target's column types,
//! so rows move between the engines. This module knows no file format, and nothing of what
//! the rows mean.

use std::str::FromStr;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{ConnectOptions, Connection, PgConnection, Row, SqliteConnection, TypeInfo, ValueRef};

use super::postgres::REPLICATED_TABLES;
use super::{is_postgres, redact_url, OpenError, StoreError};

/// One stored value, as neutral between the engines as the schemas are: ids are text, flags
/// are booleans from PostgreSQL and integers from SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("table {table}: {reason}")]
    Table { table: String, reason: String },
}

impl From<sqlx::Error> for SnapshotError {
    fn from(e: sqlx::Error) -> Self {
        SnapshotError::Store(e.into())
    }
}

/// A connection to the first of `urls` that answers.
enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

async fn connect(urls: &[String], read_only: bool) -> Result<Conn, SnapshotError> {
    let mut reasons = Vec::new();
    for url in urls {
        // A backup's statements run for minutes by design: sqlx's slow-statement warnings
        // would be noise.
        let opened = if is_postgres(url) {
            match PgConnectOptions::from_str(url) {
                Ok(options) => PgConnection::connect_with(&options.disable_statement_logging())
                    .await
                    .map(Conn::Postgres),
                Err(e) => Err(e),
            }
        } else {
            match SqliteConnectOptions::from_str(url) {
                // Rows come a few at a time: a row may hold a 1 MiB chunk of media, and sqlx
                // reads 50 ahead by default.
                Ok(options) => SqliteConnection::connect_with(
                    &options
                        .read_only(read_only)
                        .row_buffer_size(4)
                        .disable_statement_logging(),
                )
                .await
                .map(Conn::Sqlite),
                Err(e) => Err(e),
            }
        };
        match opened {
            Ok(conn) => return Ok(conn),
            Err(e) => reasons.push(format!("{}: {e}", redact_url(url))),
        }
    }
    Err(OpenError::Unreachable {
        url: urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(", "),
        reason: reasons.join("; "),
    }
    .into())
}

impl Conn {
    fn engine(&self) -> &'static str {
        match self {
            Conn::Sqlite(_) => "sqlite",
            Conn::Postgres(_) => "postgres",
        }
    }
}

/// The one number `sql`, which binds nothing, answers.
async fn number(conn: &mut Conn, sql: &str) -> Result<i64, sqlx::Error> {
    match conn {
        Conn::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await,
        Conn::Postgres(c) => sqlx::query_scalar(sql).fetch_one(c).await,
    }
}

/// Runs `sql`, which binds nothing.
async fn run(conn: &mut Conn, sql: &str) -> Result<(), sqlx::Error> {
    match conn {
        Conn::Sqlite(c) => sqlx::query(sql).execute(c).await.map(drop),
        Conn::Postgres(c) => sqlx::query(sql).execute(c).await.map(drop),
    }
}

/// A table's columns: their names and, on PostgreSQL, their types.
async fn columns(conn: &mut Conn, table: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    match conn {
        Conn::Sqlite(c) => {
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(c)
                .await
        }
        Conn::Postgres(c) => {
            sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(c)
            .await
        }
    }
}

/// The rows of a table in an order both engines agree on: media chunks by their file and
/// place in it (so a reader can check each file's bytes as they come), the rest by id.
fn order_of(table: &str) -> &'static str {
    match table {
        "media_file_chunk" => "media_id, n, version, id",
        "media_chunk" => "substr(id, 1, 64), CAST(substr(id, 66) AS INTEGER)",
        _ => "id",
    }
}

/// Every replicated table of one database, read at one moment.
pub struct Source {
    conn: Conn,
}

impl Source {
    /// Opens a read transaction on the first of `urls` that answers.
    pub async fn open(urls: &[String]) -> Result<Self, SnapshotError> {
        let mut conn = connect(urls, true).await?;
        if let Conn::Postgres(_) = conn {
            run(
                &mut conn,
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )
            .await?;
            // A backup of a large store reads for minutes.
            run(&mut conn, "SET LOCAL statement_timeout = 0").await?;
        } else {
            run(&mut conn, "BEGIN").await?;
        }
        Ok(Source { conn })
    }

    pub fn engine(&self) -> &'static str {
        self.conn.engine()
    }

    /// The newest migration applied to the database.
    pub async fn schema(&mut self) -> Result<i64, SnapshotError> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        Ok(number(&mut self.conn, sql).await?)
    }

    /// The replicated tables this database has, each with its columns.
    pub async fn tables(&mut self) -> Result<Vec<(String, Vec<String>)>, SnapshotError> {
        let mut tables = Vec::new();
        for table in REPLICATED_TABLES {
            let columns = columns(&mut self.conn, table).await?;
            if !columns.is_empty() {
                let names = columns.into_iter().map(|(name, _)| name).collect();
                tables.push(((*table).to_owned(), names));
            }
        }
        Ok(tables)
    }

    /// Hands each row of `table` (its `columns`, in order) to `each`, one at a time.
    pub async fn rows(
        &mut self,
        table: &str,
        mut each: impl FnMut(Vec<Value>) -> std::io::Result<()>,
    ) -> Result<u64, SnapshotError> {
        let failed = |reason: String| SnapshotError::Table {
            table: table.to_owned(),
            reason,
        };
        let typed = columns(&mut self.conn, table).await?;
        let mut count = 0;
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let sql = format!("SELECT * FROM {table} ORDER BY {}", order_of(table));
                let mut rows = sqlx::query(&sql).fetch(c);
                while let Some(row) = rows.try_next().await? {
                    each(sqlite_values(&row, typed.len()).map_err(failed)?)
                        .map_err(|e| failed(e.to_string()))?;
                    count += 1;
                }
            }
            Conn::Postgres(c) => {
                // Ids and JSON as text, integers as bigint: what every engine can take.
                let select: Vec<String> = typed
                    .iter()
                    .map(|(name, kind)| match kind.as_str() {
                        "uuid" | "jsonb" | "json" => format!("{name}::text"),
                        "integer" | "smallint" => format!("{name}::bigint"),
                        _ => name.clone(),
                    })
                    .collect();
                let sql = format!(
                    "SELECT {} FROM {table} ORDER BY {}",
                    select.join(", "),
                    order_of(table)
                );
                let mut rows = sqlx::query(&sql).fetch(c);
                while let Some(row) = rows.try_next().await? {
                    each(pg_values(&row, &typed).map_err(failed)?)
                        .map_err(|e| failed(e.to_string()))?;
                    count += 1;
                }
            }
        }
        Ok(count)
    }
}

fn sqlite_values(row: &SqliteRow, columns: usize) -> Result<Vec<Value>, String> {
    (0..columns)
        .map(|i| {
            let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let kind = raw.type_info().name().to_owned();
            let got = match kind.as_str() {
                "INTEGER" | "BOOLEAN" => row.try_get(i).map(Value::Int),
                "TEXT" => row.try_get(i).map(Value::Text),
                "BLOB" => row.try_get(i).map(Value::Bytes),
                other => return Err(format!("a value of type {other}")),
            };
            got.map_err(|e| e.to_string())
        })
        .collect()
}

fn pg_values(row: &PgRow, columns: &[(String, String)]) -> Result<Vec<Value>, String> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let got = match kind.as_str() {
                "bigint" | "integer" | "smallint" => {
                    row.try_get::<Option<i64>, _>(i).map(|v| v.map(Value::Int))
                }
                "boolean" => row
                    .try_get::<Option<bool>, _>(i)
                    .map(|v| v.map(Value::Bool)),
                "bytea" => row
                    .try_get::<Option<Vec<u8>>, _>(i)
                    .map(|v| v.map(Value::Bytes)),
                _ => row
                    .try_get::<Option<String>, _>(i)
                    .map(|v| v.map(Value::Text)),
            };
            got.map(|v| v.unwrap_or(Value::Null))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// A store being written from a snapshot, in one transaction: nothing of it is seen, nor
/// kept, until [`Target::commit`].
pub struct Target {
    conn: Conn,
}

impl Target {
    /// Opens a write transaction on the first of `urls` that answers, whose schema must be
    /// migrated already.
    pub async fn open(urls: &[String]) -> Result<Self, SnapshotError> {
        let mut conn = connect(urls, false).await?;
        if let Conn::Postgres(_) = conn {
            run(&mut conn, "BEGIN").await?;
            run(&mut conn, "SET LOCAL statement_timeout = 0").await?;
        } else {
            run(&mut conn, "BEGIN IMMEDIATE").await?;
        }
        Ok(Target { conn })
    }

    pub fn engine(&self) -> &'static str {
        self.conn.engine()
    }

    /// The rows each replicated table holds, for the tables that hold any.
    pub async fn held(&mut self) -> Result<Vec<(String, i64)>, SnapshotError> {
        let mut held = Vec::new();
        for table in REPLICATED_TABLES {
            let rows = number(&mut self.conn, &format!("SELECT COUNT(*) FROM {table}")).await?;
            if rows > 0 {
                held.push(((*table).to_owned(), rows));
            }
        }
        Ok(held)
    }

    /// Deletes every row of every replicated table (a restore that replaces a store).
    pub async fn clear(&mut self) -> Result<(), SnapshotError> {
        for table in REPLICATED_TABLES {
            run(&mut self.conn, &format!("DELETE FROM {table}")).await?;
        }
        Ok(())
    }

    /// Prepares the insert of `columns` into `table`: a table or column this store does not
    /// have is refused (the snapshot is of a newer schema).
    pub async fn table(
        &mut self,
        table: &str,
        columns: &[String],
    ) -> Result<Insert, SnapshotError> {
        let known = self::columns(&mut self.conn, table).await?;
        let newer = |what: String| SnapshotError::Table {
            table: table.to_owned(),
            reason: format!(
                "{what} is not in this release's schema: the backup was made by a newer \
                 classcast; restore it with that release or a later one"
            ),
        };
        if !REPLICATED_TABLES.contains(&table) || known.is_empty() {
            return Err(newer("the table".into()));
        }
        let mut kinds = Vec::new();
        for column in columns {
            match known.iter().find(|(name, _)| name == column) {
                Some((_, kind)) => kinds.push(kind.to_lowercase()),
                None => return Err(newer(format!("column {column}"))),
            }
        }
        let params: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| match (&self.conn, kind.as_str()) {
                (Conn::Postgres(_), "uuid" | "jsonb") => format!("${}::{kind}", i + 1),
                _ => format!("${}", i + 1),
            })
            .collect();
        Ok(Insert {
            table: table.to_owned(),
            sql: format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                columns.join(", "),
                params.join(", ")
            ),
            kinds,
        })
    }

    /// Inserts one row of a table [`Target::table`] prepared.
    pub async fn insert(&mut self, insert: &Insert, row: Vec<Value>) -> Result<(), SnapshotError> {
        let failed = |reason: String| SnapshotError::Table {
            table: insert.table.clone(),
            reason,
        };
        if row.len() != insert.kinds.len() {
            return Err(failed(format!(
                "a row of {} values for {} columns",
                row.len(),
                insert.kinds.len()
            )));
        }
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let mut query = sqlx::query(&insert.sql);
                for value in row {
                    query = match value {
                        Value::Null => query.bind(None::<i64>),
                        Value::Int(n) => query.bind(n),
                        Value::Bool(on) => query.bind(i64::from(on)),
                        Value::Text(text) => query.bind(text),
                        Value::Bytes(bytes) => query.bind(bytes),
                    };
                }
                query.execute(c).await?;
            }
            Conn::Postgres(c) => {
                let mut query = sqlx::query(&insert.sql);
                for (value, kind) in row.into_iter().zip(&insert.kinds) {
                    query = match (kind.as_str(), value) {
                        ("boolean", Value::Null) => query.bind(None::<bool>),
                        ("boolean", Value::Bool(on)) => query.bind(on),
                        ("boolean", Value::Int(n)) => query.bind(n != 0),
                        ("bigint" | "integer" | "smallint", Value::Null) => query.bind(None::<i64>),
                        ("bigint" | "integer" | "smallint", Value::Int(n)) => query.bind(n),
                        ("bytea", Value::Null) => query.bind(None::<Vec<u8>>),
                        ("bytea", Value::Bytes(bytes)) => query.bind(bytes),
                        (_, Value::Null) => query.bind(None::<String>),
                        (_, Value::Text(text)) => query.bind(text),
                        (kind, value) => {
                            return Err(failed(format!("{value:?} for a column of type {kind}")))
                        }
                    };
                }
                query.execute(c).await?;
            }
        }
        Ok(())
    }

    pub async fn commit(mut self) -> Result<(), SnapshotError> {
        Ok(run(&mut self.conn, "COMMIT").await?)
    }
}

/// The insert of one table's rows (see [`Target::table`]).
pub struct Insert {
    table: String,
    sql: String,
    /// The target's type of each column, lower-case.
    kinds: Vec<String>,
}
