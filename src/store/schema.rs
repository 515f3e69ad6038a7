//! Schema migrations: the SQL files of `migrations/<engine>/`, embedded in the binary and
//! applied by sqlx's migrator, which records each in `_sqlx_migrations` with its checksum (an
//! applied migration whose file changed since is refused) and, on PostgreSQL, holds an
//! advisory lock so that nodes starting at once take turns.
//!
//! Releases before this one recorded their migrations in `schema_migration` (by name); the
//! first migration by this one copies that record into `_sqlx_migrations` ([`bridge`]), so a
//! database of an earlier release upgrades in place. `schema_migration` itself stays as it
//! was: a node of the previous release restarted during a rolling upgrade still finds its
//! migrations applied there (a later release may drop it). This module owns the record of
//! migrations; the schema itself is the SQL files'.

use std::collections::HashSet;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationSource, MigrationType, Migrator};

use super::StoreResult;

/// An engine's migrations as (file name without `.sql`, SQL), in order: `0001_initial` is
/// version 1, described as "initial".
#[derive(Debug)]
pub(crate) struct Embedded(pub &'static [(&'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            self.0
                .iter()
                .map(|(name, sql)| {
                    let (version, description) = name
                        .split_once('_')
                        .ok_or_else(|| format!("migration {name} has no version"))?;
                    Ok(Migration::new(
                        version.parse()?,
                        description.replace('_', " ").into(),
                        MigrationType::Simple,
                        (*sql).into(),
                        false,
                    ))
                })
                .collect()
        })
    }
}

/// A migration's name, as `schema_migration` recorded it and `migrate` reports it.
pub(crate) fn name(migration: &Migration) -> String {
    format!(
        "{:04}_{}",
        migration.version,
        migration.description.replace(' ', "_")
    )
}

/// The migrations of `migrator` that `schema_migration` recorded as applied (`recorded`
/// holds its names), as the rows `_sqlx_migrations` takes over: version, description and
/// the checksum of the embedded file (the files an earlier release applied are unchanged).
pub(crate) fn bridge(migrator: &Migrator, recorded: &[String]) -> Vec<(i64, String, Vec<u8>)> {
    let recorded: HashSet<&str> = recorded.iter().map(String::as_str).collect();
    migrator
        .iter()
        .filter(|m| recorded.contains(name(m).as_str()))
        .map(|m| (m.version, m.description.to_string(), m.checksum.to_vec()))
        .collect()
}

/// Applies the migrations of `migrator` that `conn`'s database lacks (its `_sqlx_migrations`
/// exists); returns their names. An applied migration whose file changed since, or that
/// this release does not know, is refused. sqlx's migrator runs only when there is
/// something to apply: it creates its table first, which a node's ordinary role (no `CREATE`
/// on the schema) may not even when the table exists.
pub(crate) async fn apply<C: Migrate>(
    migrator: &Migrator,
    conn: &mut C,
) -> StoreResult<Vec<String>> {
    let pending = pending(migrator, conn).await?;
    if !pending.is_empty() {
        // `run` takes an `Acquire`, whose future is not `Send` here; `run_direct` is sqlx's
        // way around that (its own comment says so).
        migrator.run_direct(conn).await?;
    }
    Ok(pending)
}

/// The names of the migrations of `migrator` that `conn`'s database lacks (its
/// `_sqlx_migrations` exists), reading only. An applied migration whose file changed since,
/// or that this release does not know, is refused.
pub(crate) async fn pending<C: Migrate>(
    migrator: &Migrator,
    conn: &mut C,
) -> StoreResult<Vec<String>> {
    let applied = conn.list_applied_migrations().await?;
    for done in &applied {
        match migrator.iter().find(|m| m.version == done.version) {
            Some(known) if known.checksum == done.checksum => {}
            Some(_) => return Err(MigrateError::VersionMismatch(done.version).into()),
            None => return Err(MigrateError::VersionMissing(done.version).into()),
        }
    }
    Ok(migrator
        .iter()
        .filter(|m| !applied.iter().any(|done| done.version == m.version))
        .map(name)
        .collect())
}

/// Records `migrations` as applied, as sqlx's migrator does (the statement both engines
/// speak).
pub(crate) const RECORD: &str = "INSERT INTO _sqlx_migrations
    (version, description, success, checksum, execution_time) VALUES ($1, $2, TRUE, $3, 0)";
