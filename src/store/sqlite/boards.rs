//! Boards on SQLite: identities, pairing codes, pairings with their names, and states (which
//! the writer in `writer.rs` stores).

use super::*;

fn pairing_from(row: &SqliteRow) -> StoreResult<BoardPairing> {
    Ok(BoardPairing {
        board: uuid(row, "board_id")?,
        name: row.try_get("name")?,
        paired: Version(row.try_get("version")?),
    })
}

impl SqliteStore {
    /// A stored board state (its `state` and `version` columns).
    fn state_from(&self, row: &SqliteRow) -> StoreResult<BoardState> {
        let json: String = row.try_get("state")?;
        let mut state: BoardState = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("board state: {e}")))?;
        state.version = self.observed(row.try_get("version")?).0;
        Ok(state)
    }
}

fn code_from(row: &SqliteRow) -> StoreResult<ActiveCode> {
    Ok(ActiveCode {
        id: uuid(row, "id")?,
        board: uuid(row, "board_id")?,
        code: row.try_get("code")?,
        expires_at_ms: row.try_get("expires_at")?,
    })
}

impl SqliteStore {
    /// Pairs (with the code use that made it) or unpairs (`None`) the board and the teacher.
    async fn insert_pairing(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        account: Uuid,
        board: Uuid,
        code_use: Option<Uuid>,
    ) -> StoreResult<Version> {
        let keys = [("board_id", board), ("account_id", account)];
        let version = self.version_after(tx, "board_pairing", &keys).await?;
        sqlx::query(
            "INSERT INTO board_pairing (id, board_id, account_id, removed, version, node, code_use_id)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(board.to_string())
        .bind(account.to_string())
        .bind(code_use.is_none())
        .bind(version.0)
        .bind(&self.node)
        .bind(code_use.map(|u| u.to_string()))
        .execute(&mut **tx)
        .await?;
        Ok(version)
    }

    /// Names the board for the teacher; a rename never touches whether they are paired.
    async fn insert_board_name(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        account: Uuid,
        board: Uuid,
        name: &str,
    ) -> StoreResult<()> {
        let keys = [("board_id", board), ("account_id", account)];
        let version = self.version_after(tx, "board_name", &keys).await?;
        sqlx::query(
            "INSERT INTO board_name (id, board_id, account_id, name, version, node)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(board.to_string())
        .bind(account.to_string())
        .bind(name)
        .bind(version.0)
        .bind(&self.node)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn current_pairing<'e, E>(
        &self,
        db: E,
        account: Uuid,
        board: Uuid,
    ) -> StoreResult<BoardPairing>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let sql = format!(
            "SELECT {PAIRING_COLUMNS} FROM board_pairing bp
             WHERE bp.board_id = ? AND bp.account_id = ? AND {CURRENT_PAIRING}"
        );
        let row = sqlx::query(&sql)
            .bind(board.to_string())
            .bind(account.to_string())
            .fetch_optional(db)
            .await?
            .ok_or(StoreError::NotFound)?;
        pairing_from(&row)
    }

    async fn usable_code<'e, E>(
        &self,
        db: E,
        filter: &str,
        value: String,
        now_ms: i64,
    ) -> StoreResult<Option<ActiveCode>>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let sql = format!(
            "SELECT c.id, c.board_id, c.code, c.expires_at FROM board_code c
             WHERE c.{filter} = ? AND {USABLE_CODE} ORDER BY c.version DESC, c.id DESC LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(value)
            .bind(now_ms)
            .fetch_optional(db)
            .await?
            .map(|row| code_from(&row))
            .transpose()
    }
}

#[async_trait]
impl BoardStore for SqliteStore {
    async fn create_board(&self, token_hash: &str) -> StoreResult<Uuid> {
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO board (id, token_hash, version, node) VALUES (?, ?, ?, ?)")
            .bind(id.to_string())
            .bind(token_hash)
            .bind(self.hlc.next().0)
            .bind(&self.node)
            .execute(&self.write)
            .await?;
        Ok(id)
    }

    async fn board_by_token(&self, token_hash: &str) -> StoreResult<Option<Uuid>> {
        let row = sqlx::query(&format!(
            "SELECT b.id FROM board b WHERE b.token_hash = ? AND {NOT_REVOKED}
             ORDER BY b.version, b.id LIMIT 1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| uuid(&r, "id")).transpose()
    }

    async fn issue_code(
        &self,
        board: Uuid,
        code: &str,
        expires_at_ms: i64,
    ) -> StoreResult<ActiveCode> {
        let mut tx = self.begin().await?;
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM board_code WHERE code = ? OR board_id = ?",
        )
        .bind(code)
        .bind(board.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO board_code (id, board_id, code, expires_at, version, node) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(board.to_string())
        .bind(code)
        .bind(expires_at_ms)
        .bind(self.hlc.next_after(Version(newest.unwrap_or(0))).0)
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ActiveCode {
            id,
            board,
            code: code.to_owned(),
            expires_at_ms,
        })
    }

    async fn current_code(&self, board: Uuid, now_ms: i64) -> StoreResult<Option<ActiveCode>> {
        self.usable_code(&self.read, "board_id", board.to_string(), now_ms)
            .await
    }

    async fn resolve_code(&self, code: &str, now_ms: i64) -> StoreResult<Option<ActiveCode>> {
        self.usable_code(&self.read, "code", code.to_owned(), now_ms)
            .await
    }

    async fn pair_board(
        &self,
        account: Uuid,
        code: &ActiveCode,
        name: &str,
    ) -> StoreResult<BoardPairing> {
        let mut tx = self.begin().await?;
        let still = self
            .usable_code(&mut *tx, "id", code.id.to_string(), 0)
            .await?
            .is_some();
        if !still {
            return Err(StoreError::NotFound);
        }
        let use_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO board_code_use (id, code_id, account_id, version, node) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(use_id.to_string())
        .bind(code.id.to_string())
        .bind(account.to_string())
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        let paired = self
            .insert_pairing(&mut tx, account, code.board, Some(use_id))
            .await?;
        self.insert_board_name(&mut tx, account, code.board, name)
            .await?;
        tx.commit().await?;
        Ok(BoardPairing {
            board: code.board,
            name: name.to_owned(),
            paired,
        })
    }

    async fn boards_of(&self, account: Uuid) -> StoreResult<Vec<BoardPairing>> {
        let sql = format!(
            "SELECT {PAIRING_COLUMNS} FROM board_pairing bp
             WHERE bp.account_id = ? AND {CURRENT_PAIRING} ORDER BY name, bp.board_id"
        );
        let rows = sqlx::query(&sql)
            .bind(account.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(pairing_from).collect()
    }

    async fn board_pairing(&self, account: Uuid, board: Uuid) -> StoreResult<BoardPairing> {
        self.current_pairing(&self.read, account, board).await
    }

    async fn rename_board(
        &self,
        account: Uuid,
        board: Uuid,
        name: &str,
    ) -> StoreResult<BoardPairing> {
        let mut tx = self.begin().await?;
        let current = self.current_pairing(&mut *tx, account, board).await?;
        self.insert_board_name(&mut tx, account, board, name)
            .await?;
        tx.commit().await?;
        Ok(BoardPairing {
            name: name.to_owned(),
            ..current
        })
    }

    async fn unpair_board(&self, account: Uuid, board: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        self.current_pairing(&mut *tx, account, board).await?;
        self.insert_pairing(&mut tx, account, board, None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_board(&self, account: Uuid, board: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        self.current_pairing(&mut *tx, account, board).await?;
        sqlx::query(
            "INSERT INTO board_revocation (id, board_id, account_id, version, node)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(board.to_string())
        .bind(account.to_string())
        .bind(self.hlc.next().0)
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn board_revoked(&self, board: Uuid) -> StoreResult<bool> {
        let revoked: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM board_revocation WHERE board_id = ? LIMIT 1")
                .bind(board.to_string())
                .fetch_optional(&self.read)
                .await?;
        Ok(revoked.is_some())
    }

    async fn board_teachers(&self, board: Uuid) -> StoreResult<Vec<String>> {
        let sql = format!(
            "SELECT p.name FROM board_pairing bp JOIN account a ON a.id = bp.account_id {CURRENT_PROFILE}
             WHERE bp.board_id = ? AND {CURRENT_PAIRING} ORDER BY bp.version"
        );
        let rows = sqlx::query(&sql)
            .bind(board.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    async fn board_state(&self, board: Uuid) -> StoreResult<Option<BoardState>> {
        let row = sqlx::query(
            "SELECT state, version FROM board_state WHERE board_id = ? ORDER BY version DESC, id DESC LIMIT 1",
        )
        .bind(board.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| self.state_from(&row)).transpose()
    }

    async fn board_states(&self, boards: &[Uuid]) -> StoreResult<Vec<BoardState>> {
        let rows = sqlx::query(
            "SELECT b.state, b.version FROM board_state b
             WHERE b.board_id IN (SELECT value FROM json_each(?))
             AND NOT EXISTS (SELECT 1 FROM board_state n WHERE n.board_id = b.board_id
                             AND (n.version, n.id) > (b.version, b.id))",
        )
        .bind(json_array(boards.iter().copied()))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|row| self.state_from(row)).collect()
    }

    async fn board_state_versions(&self, boards: &[Uuid]) -> StoreResult<HashMap<Uuid, i64>> {
        let newest = writer::newest(&self.read, boards.to_vec()).await?;
        Ok(newest
            .into_iter()
            .map(|(board, version)| (board, self.observed(version.0).0))
            .collect())
    }

    async fn command_outcome(&self, command: Uuid) -> StoreResult<Option<(Uuid, Version)>> {
        let earlier = writer::earlier(&self.read, &[command]).await?;
        Ok(match earlier.get(&command) {
            Some(Saved::Before { board, version }) => Some((*board, *version)),
            Some(Saved::New(_)) | None => None,
        })
    }

    async fn had_board_state(&self, board: Uuid, version: i64) -> StoreResult<bool> {
        let found = sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM board_state WHERE board_id = ? AND version = ? LIMIT 1",
        )
        .bind(board.to_string())
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }

    async fn save_board_state(&self, command: Uuid, state: &BoardState) -> StoreResult<Saved> {
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
    }

    async fn purge_board_states(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM board_state WHERE id IN (
                SELECT s.id FROM board_state s
                WHERE s.node IN (SELECT value FROM json_each(?)) AND s.version < ?
                AND EXISTS (SELECT 1 FROM board_state n WHERE n.board_id = s.board_id
                            AND (n.version, n.id) > (s.version, s.id))
                LIMIT ?)",
            purge_args(nodes, &[before.0])?,
        )
        .await
    }

    async fn purge_codes(&self, nodes: &NodeIds, before_ms: i64) -> StoreResult<u64> {
        let codes = self
            .delete_in_batches(
                "DELETE FROM board_code WHERE id IN (
                    SELECT c.id FROM board_code c
                    WHERE c.node IN (SELECT value FROM json_each(?)) AND c.expires_at < ?
                    LIMIT ?)",
                purge_args(nodes, &[before_ms])?,
            )
            .await?;
        // The records of those codes' use, once their codes are gone.
        self.delete_in_batches(
            "DELETE FROM board_code_use WHERE id IN (
                SELECT u.id FROM board_code_use u
                WHERE u.node IN (SELECT value FROM json_each(?))
                AND NOT EXISTS (SELECT 1 FROM board_code c WHERE c.id = u.code_id)
                LIMIT ?)",
            purge_args(nodes, &[])?,
        )
        .await?;
        Ok(codes)
    }

    async fn purge_unpaired_boards(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        self.delete_in_batches(
            &format!(
                "DELETE FROM board WHERE id IN (
                    SELECT b.id FROM board b
                    WHERE b.node IN (SELECT value FROM json_each(?)) AND b.version < ?
                    AND {NEVER_PAIRED} LIMIT ?)"
            ),
            purge_args(nodes, &[before.0])?,
        )
        .await
    }
}
