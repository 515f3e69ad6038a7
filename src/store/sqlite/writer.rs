//! The board-state writer's insert on SQLite, and its thread: the writer and
//! the WAL checkpoints that keep its commits short run on a thread of their own, since on
//! the server's runtime each statement waited behind thousands of connection tasks made
//! ready by the same burst.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::ConnectOptions;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Sqlite;
use crate::store::queries::WriterRows;
use crate::store::state_writer::{NewState, StateWrite, StateWriter};
use crate::store::{StoreError, StoreResult};

const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The writer checkpoints on commit only past this many WAL pages (about 80 MiB): a safety
/// net should [`checkpoints`] fall behind, not the routine.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";

/// Runs `writer`, and the checkpoints that keep its commits short, on a thread of their own
/// until the store is dropped.
pub(super) fn spawn(
    writer: StateWriter<WriterRows<Sqlite>>,
    queue: mpsc::Receiver<StateWrite>,
    options: SqliteConnectOptions,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("board-states".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    () = writer.run(queue) => {}
                    () = checkpoints(options) => {}
                }
            })
        })?;
    Ok(())
}

/// The writer's batch in one statement, its rows passed as one JSON array (see
/// [`Backend::insert_states`](crate::store::backend::Backend::insert_states)).
pub(super) async fn insert(
    write: &SqlitePool,
    node: Uuid,
    rows: &[NewState<'_>],
) -> StoreResult<Vec<Uuid>> {
    let rows: Vec<(Uuid, Uuid, Uuid, &str, i64)> = rows
        .iter()
        .map(|r| (r.id, r.board, r.command, r.json, r.version.0))
        .collect();
    let json = serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let stored: Vec<String> = sqlx::query_scalar(
        "INSERT INTO board_state (id, board_id, command_id, state, version, node)
         SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, $1
         FROM json_each($2) AS j
         WHERE NOT EXISTS (SELECT 1 FROM board_state b WHERE b.command_id = j.value->>2)
         AND NOT EXISTS (SELECT 1 FROM board_state b
                         WHERE b.board_id = j.value->>1 AND b.version >= j.value->>4)
         RETURNING command_id",
    )
    .bind(node.to_string())
    .bind(json)
    .fetch_all(write)
    .await?;
    Ok(stored.iter().filter_map(|c| c.parse().ok()).collect())
}

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`] on a connection
/// of its own. Left to SQLite, the commit that crosses the WAL's size limit does it, and a
/// burst of board states waited for that commit. Never returns.
async fn checkpoints(options: SqliteConnectOptions) {
    let mut conn = match options.connect().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "no checkpoint connection; SQLite checkpoints on commit");
            return std::future::pending().await;
        }
    };
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}
