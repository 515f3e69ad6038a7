//! Boards: identities, pairing codes, pairings with their names, and states (which the
//! board-state writer stores).

use tokio::sync::oneshot;

use super::*;
use crate::store::sql::*;

fn pairing_from(row: &impl Row) -> StoreResult<BoardPairing> {
    Ok(BoardPairing {
        board: row.id("board_id")?,
        name: row.text("name")?,
        paired: Version(row.int("version")?),
    })
}

fn code_from(row: &impl Row) -> StoreResult<ActiveCode> {
    Ok(ActiveCode {
        id: row.id("id")?,
        board: row.id("board_id")?,
        code: row.text("code")?,
        expires_at_ms: row.int("expires_at")?,
    })
}

/// A stored board state, read as text whatever its column's type.
const STATE_COLUMNS: &str = "CAST(state AS TEXT) AS state, version";

/// Which pairing codes [`SqlStore::usable_code`] looks among.
enum CodeOf<'a> {
    Board(Uuid),
    Digits(&'a str),
    Id(Uuid),
}

impl<B: Backend> SqlStore<B> {
    /// A stored board state (its `state` and `version` columns).
    fn state_from(&self, row: &B::Row) -> StoreResult<BoardState> {
        let mut state: BoardState = serde_json::from_str(&row.text("state")?)
            .map_err(|e| StoreError::Corrupt(format!("board state: {e}")))?;
        state.version = self.observed(row.int("version")?).0;
        Ok(state)
    }

    /// Pairs (with the code use that made it) or unpairs (`None`) the board and the teacher.
    async fn insert_pairing(
        &self,
        tx: &mut B::Tx,
        account: Uuid,
        board: Uuid,
        code_use: Option<Uuid>,
    ) -> StoreResult<Version> {
        let keys = [("board_id", board), ("account_id", account)];
        let version = self.version_after(tx, "board_pairing", &keys).await?;
        let values = [
            Arg::Id(board),
            Arg::Id(account),
            Arg::Flag(code_use.is_none()),
            Arg::MaybeId(code_use),
        ];
        let columns = "board_id, account_id, removed, code_use_id";
        self.insert(
            On::Tx(tx),
            "board_pairing",
            Uuid::now_v7(),
            columns,
            &values,
            version,
        )
        .await?;
        Ok(version)
    }

    /// Names the board for the teacher; a rename never touches whether they are paired.
    async fn insert_board_name(
        &self,
        tx: &mut B::Tx,
        account: Uuid,
        board: Uuid,
        name: &str,
    ) -> StoreResult<()> {
        let keys = [("board_id", board), ("account_id", account)];
        let version = self.version_after(tx, "board_name", &keys).await?;
        let values = [Arg::Id(board), Arg::Id(account), Arg::Text(name)];
        let columns = "board_id, account_id, name";
        self.insert(
            On::Tx(tx),
            "board_name",
            Uuid::now_v7(),
            columns,
            &values,
            version,
        )
        .await
    }

    async fn current_pairing(
        &self,
        on: On<'_, B::Tx>,
        account: Uuid,
        board: Uuid,
    ) -> StoreResult<BoardPairing> {
        let sql = format!(
            "SELECT {PAIRING_COLUMNS} FROM board_pairing bp
             WHERE bp.board_id = $1 AND bp.account_id = $2 AND {CURRENT_PAIRING}"
        );
        let row = self
            .one(on, &sql, &[Arg::Id(board), Arg::Id(account)])
            .await?;
        pairing_from(&row.ok_or(StoreError::NotFound)?)
    }

    async fn usable_code(
        &self,
        on: On<'_, B::Tx>,
        of: CodeOf<'_>,
        now_ms: i64,
    ) -> StoreResult<Option<ActiveCode>> {
        let (column, value) = match of {
            CodeOf::Board(board) => ("board_id", Arg::Id(board)),
            CodeOf::Digits(code) => ("code", Arg::Text(code)),
            CodeOf::Id(id) => ("id", Arg::Id(id)),
        };
        let sql = format!(
            "SELECT c.id, c.board_id, c.code, c.expires_at FROM board_code c
             WHERE c.{column} = $1 AND {USABLE_CODE} ORDER BY c.version DESC, c.id DESC LIMIT 1"
        );
        let row = self.one(on, &sql, &[value, Arg::Int(now_ms)]).await?;
        row.map(|row| code_from(&row)).transpose()
    }
}

#[async_trait]
impl<B: Backend> BoardStore for SqlStore<B> {
    async fn create_board(&self, token_hash: &str) -> StoreResult<Uuid> {
        measured!("create_board", async move {
            let id = Uuid::now_v7();
            let token = [Arg::Text(token_hash)];
            self.insert(
                On::Write,
                "board",
                id,
                "token_hash",
                &token,
                self.hlc.next(),
            )
            .await?;
            Ok(id)
        })
        .await
    }

    async fn board_by_token(&self, token_hash: &str) -> StoreResult<Option<Uuid>> {
        measured!("board_by_token", async move {
            let sql = format!(
                "SELECT b.id FROM board b WHERE b.token_hash = $1 AND {NOT_REVOKED}
             ORDER BY b.version, b.id LIMIT 1"
            );
            let row = self.one(On::Read, &sql, &[Arg::Text(token_hash)]).await?;
            row.map(|r| r.id("id")).transpose()
        })
        .await
    }

    async fn issue_code(
        &self,
        board: Uuid,
        code: &str,
        expires_at_ms: i64,
    ) -> StoreResult<ActiveCode> {
        measured!("issue_code", async move {
            let mut tx = self.db.begin().await?;
            let newest = self
            .one(
                On::Tx(&mut tx),
                "SELECT MAX(version) AS newest FROM board_code WHERE code = $1 OR board_id = $2",
                &[Arg::Text(code), Arg::Id(board)],
            )
            .await?
            .map_or(Ok(None), |row| row.maybe_int("newest"))?;
            let id = Uuid::now_v7();
            let values = [Arg::Id(board), Arg::Text(code), Arg::Int(expires_at_ms)];
            let version = self.hlc.next_after(Version(newest.unwrap_or(0)));
            let columns = "board_id, code, expires_at";
            self.insert(On::Tx(&mut tx), "board_code", id, columns, &values, version)
                .await?;
            B::commit(tx).await?;
            Ok(ActiveCode {
                id,
                board,
                code: code.to_owned(),
                expires_at_ms,
            })
        })
        .await
    }

    async fn current_code(&self, board: Uuid, now_ms: i64) -> StoreResult<Option<ActiveCode>> {
        measured!("current_code", async move {
            self.usable_code(On::Read, CodeOf::Board(board), now_ms)
                .await
        })
        .await
    }

    async fn resolve_code(&self, code: &str, now_ms: i64) -> StoreResult<Option<ActiveCode>> {
        measured!("resolve_code", async move {
            self.usable_code(On::Read, CodeOf::Digits(code), now_ms)
                .await
        })
        .await
    }

    async fn pair_board(
        &self,
        account: Uuid,
        code: &ActiveCode,
        name: &str,
    ) -> StoreResult<BoardPairing> {
        measured!("pair_board", async move {
            let mut tx = self.db.begin().await?;
            let still = self
                .usable_code(On::Tx(&mut tx), CodeOf::Id(code.id), 0)
                .await?
                .is_some();
            if !still {
                return Err(StoreError::NotFound);
            }
            let use_id = Uuid::now_v7();
            let values = [Arg::Id(code.id), Arg::Id(account)];
            let columns = "code_id, account_id";
            self.insert(
                On::Tx(&mut tx),
                "board_code_use",
                use_id,
                columns,
                &values,
                self.hlc.next(),
            )
            .await?;
            let paired = self
                .insert_pairing(&mut tx, account, code.board, Some(use_id))
                .await?;
            self.insert_board_name(&mut tx, account, code.board, name)
                .await?;
            B::commit(tx).await?;
            Ok(BoardPairing {
                board: code.board,
                name: name.to_owned(),
                paired,
            })
        })
        .await
    }

    async fn boards_of(&self, account: Uuid) -> StoreResult<Vec<BoardPairing>> {
        measured!("boards_of", async move {
            let sql = format!(
                "SELECT {PAIRING_COLUMNS} FROM board_pairing bp
             WHERE bp.account_id = $1 AND {CURRENT_PAIRING} ORDER BY name, bp.board_id"
            );
            let rows = self.db.fetch(On::Read, &sql, &[Arg::Id(account)]).await?;
            rows.iter().map(pairing_from).collect()
        })
        .await
    }

    async fn board_pairing(&self, account: Uuid, board: Uuid) -> StoreResult<BoardPairing> {
        measured!("board_pairing", async move {
            self.current_pairing(On::Read, account, board).await
        })
        .await
    }

    async fn rename_board(
        &self,
        account: Uuid,
        board: Uuid,
        name: &str,
    ) -> StoreResult<BoardPairing> {
        measured!("rename_board", async move {
            let mut tx = self.db.begin().await?;
            let current = self
                .current_pairing(On::Tx(&mut tx), account, board)
                .await?;
            self.insert_board_name(&mut tx, account, board, name)
                .await?;
            B::commit(tx).await?;
            Ok(BoardPairing {
                name: name.to_owned(),
                ..current
            })
        })
        .await
    }

    async fn unpair_board(&self, account: Uuid, board: Uuid) -> StoreResult<()> {
        measured!("unpair_board", async move {
            let mut tx = self.db.begin().await?;
            self.current_pairing(On::Tx(&mut tx), account, board)
                .await?;
            self.insert_pairing(&mut tx, account, board, None).await?;
            B::commit(tx).await
        })
        .await
    }

    async fn revoke_board(&self, account: Uuid, board: Uuid) -> StoreResult<()> {
        measured!("revoke_board", async move {
            let mut tx = self.db.begin().await?;
            self.current_pairing(On::Tx(&mut tx), account, board)
                .await?;
            let values = [Arg::Id(board), Arg::Id(account)];
            let (id, version) = (Uuid::now_v7(), self.hlc.next());
            self.insert(
                On::Tx(&mut tx),
                "board_revocation",
                id,
                "board_id, account_id",
                &values,
                version,
            )
            .await?;
            B::commit(tx).await
        })
        .await
    }

    async fn board_revoked(&self, board: Uuid) -> StoreResult<bool> {
        measured!("board_revoked", async move {
            let sql = "SELECT 1 AS found FROM board_revocation WHERE board_id = $1 LIMIT 1";
            Ok(self.one(On::Read, sql, &[Arg::Id(board)]).await?.is_some())
        })
        .await
    }

    async fn board_teachers(&self, board: Uuid) -> StoreResult<Vec<String>> {
        measured!("board_teachers", async move {
            let sql = format!(
                "SELECT p.name FROM board_pairing bp JOIN account a ON a.id = bp.account_id
             {CURRENT_PROFILE} WHERE bp.board_id = $1 AND {CURRENT_PAIRING} ORDER BY bp.version"
            );
            let rows = self.db.fetch(On::Read, &sql, &[Arg::Id(board)]).await?;
            rows.iter().map(|r| r.text("name")).collect()
        })
        .await
    }

    async fn board_state(&self, board: Uuid) -> StoreResult<Option<BoardState>> {
        measured!("board_state", async move {
            let sql = format!(
                "SELECT {STATE_COLUMNS} FROM board_state WHERE board_id = $1
             ORDER BY version DESC, id DESC LIMIT 1"
            );
            let row = self.one(On::Read, &sql, &[Arg::Id(board)]).await?;
            row.map(|row| self.state_from(&row)).transpose()
        })
        .await
    }

    async fn board_states(&self, boards: &[Uuid]) -> StoreResult<Vec<BoardState>> {
        measured!("board_states", async move {
            let sql = format!(
                "SELECT {STATE_COLUMNS} FROM board_state b WHERE {}
             AND NOT EXISTS (SELECT 1 FROM board_state n WHERE n.board_id = b.board_id
                             AND (n.version, n.id) > (b.version, b.id))",
                B::in_ids("b.board_id", "$1")
            );
            let rows = self.db.fetch(On::Read, &sql, &[Arg::Ids(boards)]).await?;
            rows.iter().map(|row| self.state_from(row)).collect()
        })
        .await
    }

    async fn board_state_versions(&self, boards: &[Uuid]) -> StoreResult<HashMap<Uuid, i64>> {
        measured!("board_state_versions", async move {
            let newest = newest_states(&*self.db, On::Read, boards).await?;
            Ok(newest
                .into_iter()
                .map(|(board, version)| (board, self.observed(version.0).0))
                .collect())
        })
        .await
    }

    async fn command_outcome(&self, command: Uuid) -> StoreResult<Option<(Uuid, Version)>> {
        measured!("command_outcome", async move {
            let earlier = earlier_states(&*self.db, On::Read, &[command]).await?;
            Ok(match earlier.get(&command) {
                Some(Saved::Before { board, version }) => Some((*board, *version)),
                Some(Saved::New(_)) | None => None,
            })
        })
        .await
    }

    async fn had_board_state(&self, board: Uuid, version: i64) -> StoreResult<bool> {
        measured!("had_board_state", async move {
            let sql =
                "SELECT 1 AS found FROM board_state WHERE board_id = $1 AND version = $2 LIMIT 1";
            let args = [Arg::Id(board), Arg::Int(version)];
            Ok(self.one(On::Read, sql, &args).await?.is_some())
        })
        .await
    }

    async fn save_board_state(&self, command: Uuid, state: &BoardState) -> StoreResult<Saved> {
        measured!("save_board_state", async move {
            let json = state.stored_json();
            let (done, durable) = oneshot::channel();
            let write = StateWrite {
                command,
                board: state.board,
                json,
                done,
            };
            let gone = || StoreError::Unavailable("the board state writer has stopped".into());
            self.states.send(write).await.map_err(|_| gone())?;
            durable
                .await
                .map_err(|_| gone())?
                .map_err(|reason| StoreError::Unavailable(reason.into()))
        })
        .await
    }

    async fn purge_board_states(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        measured!("purge_board_states", async move {
            let sql = format!(
                "DELETE FROM board_state WHERE id IN (
                SELECT s.id FROM board_state s WHERE {} AND s.version < $2
                AND EXISTS (SELECT 1 FROM board_state n WHERE n.board_id = s.board_id
                            AND (n.version, n.id) > (s.version, s.id))
                LIMIT $3)",
                B::in_ids("s.node", "$1")
            );
            self.delete_in_batches(&sql, &[Arg::Ids(nodes.ids()), Arg::Int(before.0)])
                .await
        })
        .await
    }

    async fn purge_codes(&self, nodes: &NodeIds, before_ms: i64) -> StoreResult<u64> {
        measured!("purge_codes", async move {
            let sql = format!(
                "DELETE FROM board_code WHERE id IN (
                SELECT c.id FROM board_code c WHERE {} AND c.expires_at < $2 LIMIT $3)",
                B::in_ids("c.node", "$1")
            );
            let codes = self
                .delete_in_batches(&sql, &[Arg::Ids(nodes.ids()), Arg::Int(before_ms)])
                .await?;
            // The records of those codes' use, once their codes are gone.
            let sql = format!(
                "DELETE FROM board_code_use WHERE id IN (
                SELECT u.id FROM board_code_use u WHERE {}
                AND NOT EXISTS (SELECT 1 FROM board_code c WHERE c.id = u.code_id)
                LIMIT $2)",
                B::in_ids("u.node", "$1")
            );
            self.delete_in_batches(&sql, &[Arg::Ids(nodes.ids())])
                .await?;
            Ok(codes)
        })
        .await
    }

    async fn purge_unpaired_boards(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        measured!("purge_unpaired_boards", async move {
            let sql = format!(
                "DELETE FROM board WHERE id IN (
                SELECT b.id FROM board b WHERE {} AND b.version < $2
                AND {NEVER_PAIRED} LIMIT $3)",
                B::in_ids("b.node", "$1")
            );
            self.delete_in_batches(&sql, &[Arg::Ids(nodes.ids()), Arg::Int(before.0)])
                .await
        })
        .await
    }
}
