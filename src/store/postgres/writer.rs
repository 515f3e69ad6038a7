//! The board-state writer's SQL on PostgreSQL ([`StateRows`]): one statement per batch,
//! the rows passed as arrays and unnested, on a connection of its own.

use super::*;
use crate::store::state_writer::{NewState, StateRows};

/// The writer's connection (to whichever database the node uses now), and the node its rows
/// belong to.
pub(super) struct PgRows {
    pub(super) databases: Arc<Databases>,
    pub(super) node: Uuid,
}

impl PgRows {
    /// The writer's own connection to the database the node uses now.
    async fn connection(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.databases.connection(Role::States).await
    }
}

#[async_trait]
impl StateRows for PgRows {
    async fn newest(&mut self, boards: Vec<Uuid>) -> Result<HashMap<Uuid, Version>, sqlx::Error> {
        newest(&mut *self.connection().await?, boards).await
    }

    async fn insert(&mut self, rows: &[NewState<'_>]) -> Result<HashSet<Uuid>, sqlx::Error> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let boards: Vec<Uuid> = rows.iter().map(|r| r.board).collect();
        let commands: Vec<Uuid> = rows.iter().map(|r| r.command).collect();
        let states: Vec<&str> = rows.iter().map(|r| r.json).collect();
        let versions: Vec<i64> = rows.iter().map(|r| r.version.0).collect();
        let stored: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO board_state (id, board_id, command_id, state, version, node)
             SELECT j.id, j.board_id, j.command_id, j.state::jsonb, j.version, $6
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[])
                  AS j(id, board_id, command_id, state, version)
             WHERE NOT EXISTS (SELECT 1 FROM board_state b WHERE b.command_id = j.command_id)
             AND NOT EXISTS (SELECT 1 FROM board_state b
                             WHERE b.board_id = j.board_id AND b.version >= j.version)
             RETURNING command_id",
        )
        .bind(ids)
        .bind(boards)
        .bind(commands)
        .bind(states)
        .bind(versions)
        .bind(self.node)
        .fetch_all(&mut *self.connection().await?)
        .await?;
        Ok(stored.into_iter().collect())
    }

    async fn earlier(&mut self, commands: &[Uuid]) -> Result<HashMap<Uuid, Saved>, sqlx::Error> {
        earlier(&mut *self.connection().await?, commands).await
    }
}

/// The newest stored version of each of these boards that has a state.
pub(super) async fn newest(
    db: &mut PgConnection,
    boards: Vec<Uuid>,
) -> Result<HashMap<Uuid, Version>, sqlx::Error> {
    let stored = sqlx::query_as::<_, (Uuid, Option<i64>)>(
        "SELECT board_id, MAX(version) FROM board_state WHERE board_id = ANY($1)
         GROUP BY board_id",
    )
    .bind(boards)
    .fetch_all(db)
    .await?;
    Ok(stored
        .into_iter()
        .map(|(board, version)| (board, Version(version.unwrap_or(0))))
        .collect())
}

/// The stored outcome of each of these commands: a command stored twice (a resend that
/// reached two nodes) answers its lowest `(version, id)`, the same on every node.
pub(super) async fn earlier(
    db: &mut PgConnection,
    commands: &[Uuid],
) -> Result<HashMap<Uuid, Saved>, sqlx::Error> {
    let stored = sqlx::query_as::<_, (Uuid, Uuid, i64)>(
        "SELECT b.command_id, b.board_id, b.version FROM board_state b
         WHERE b.command_id = ANY($1)
         AND NOT EXISTS (SELECT 1 FROM board_state o WHERE o.command_id = b.command_id
                         AND (o.version, o.id) < (b.version, b.id))",
    )
    .bind(commands)
    .fetch_all(db)
    .await?;
    Ok(stored
        .into_iter()
        .map(|(command, board, version)| {
            let version = Version(version);
            (command, Saved::Before { board, version })
        })
        .collect())
}
