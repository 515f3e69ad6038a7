//! The board-state writer's SQL on SQLite ([`StateRows`]), and its thread: the writer and
//! the WAL checkpoints that keep its commits short run on a thread of their own, since on
//! the server's runtime each statement waited behind thousands of connection tasks made
//! ready by the same burst.

use super::*;
use crate::store::state_writer::{NewState, StateRows};

const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The writer checkpoints on commit only past this many WAL pages (about 80 MiB): a safety
/// net should [`checkpoints`] fall behind, not the routine.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: &str = "20000";

/// The writer's connection, and the node its rows belong to.
pub(super) struct SqliteRows {
    pub(super) write: SqlitePool,
    pub(super) node: String,
}

/// Runs `writer`, and the checkpoints that keep its commits short, on a thread of their own
/// until the store is dropped.
pub(super) fn spawn(
    writer: StateWriter<SqliteRows>,
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

#[async_trait]
impl StateRows for SqliteRows {
    async fn newest(&mut self, boards: Vec<Uuid>) -> Result<HashMap<Uuid, Version>, sqlx::Error> {
        newest(&self.write, boards).await
    }

    async fn insert(&mut self, rows: &[NewState<'_>]) -> Result<HashSet<Uuid>, sqlx::Error> {
        let rows: Vec<(Uuid, Uuid, Uuid, &str, i64)> = rows
            .iter()
            .map(|r| (r.id, r.board, r.command, r.json, r.version.0))
            .collect();
        let json = serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let stored: Vec<String> = sqlx::query_scalar(
            "INSERT INTO board_state (id, board_id, command_id, state, version, node)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, ?
             FROM json_each(?) AS j
             WHERE NOT EXISTS (SELECT 1 FROM board_state b WHERE b.command_id = j.value->>2)
             AND NOT EXISTS (SELECT 1 FROM board_state b
                             WHERE b.board_id = j.value->>1 AND b.version >= j.value->>4)
             RETURNING command_id",
        )
        .bind(&self.node)
        .bind(json)
        .fetch_all(&self.write)
        .await?;
        Ok(stored.iter().filter_map(|c| c.parse().ok()).collect())
    }

    async fn earlier(&mut self, commands: &[Uuid]) -> Result<HashMap<Uuid, Saved>, sqlx::Error> {
        earlier(&self.write, commands).await
    }
}

/// The stored outcome of each of these commands: a command stored twice (a resend that
/// reached two nodes) answers its lowest `(version, id)`, the same on every node.
/// The newest stored version of each of these boards that has a state.
pub(super) async fn newest(
    db: &SqlitePool,
    boards: Vec<Uuid>,
) -> Result<HashMap<Uuid, Version>, sqlx::Error> {
    let stored = sqlx::query_as::<_, (String, Option<i64>)>(
        "SELECT board_id, MAX(version) FROM board_state
         WHERE board_id IN (SELECT value FROM json_each(?)) GROUP BY board_id",
    )
    .bind(json_array(boards))
    .fetch_all(db)
    .await?;
    Ok(stored
        .into_iter()
        .filter_map(|(board, version)| {
            Some((Uuid::parse_str(&board).ok()?, Version(version.unwrap_or(0))))
        })
        .collect())
}

pub(super) async fn earlier(
    db: &SqlitePool,
    commands: &[Uuid],
) -> Result<HashMap<Uuid, Saved>, sqlx::Error> {
    let stored = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT b.command_id, b.board_id, b.version FROM board_state b
         WHERE b.command_id IN (SELECT value FROM json_each(?))
         AND NOT EXISTS (SELECT 1 FROM board_state o WHERE o.command_id = b.command_id
                         AND (o.version, o.id) < (b.version, b.id))",
    )
    .bind(json_array(commands.iter().copied()))
    .fetch_all(db)
    .await?;
    Ok(stored
        .into_iter()
        .filter_map(|(command, board, version)| {
            let board = Uuid::parse_str(&board).ok()?;
            let version = Version(version);
            Some((
                Uuid::parse_str(&command).ok()?,
                Saved::Before { board, version },
            ))
        })
        .collect())
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
