//! Accounts, passwords and sessions on PostgreSQL. Each fact of an account (its name, whether it
//! is disabled, whether it waits for approval) is a row of its own table.

use super::*;

fn account_from(row: &PgRow) -> StoreResult<Account> {
    Ok(Account {
        id: uuid(row, "id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        // A pending account cannot sign in either.
        disabled: row.try_get::<bool, _>("disabled")? || row.try_get::<bool, _>("pending")?,
        pending: row.try_get("pending")?,
        created: Version(row.try_get("version")?),
    })
}

/// The facts of an account that change independently, each in a table of its own.
#[derive(Clone, Copy)]
enum AccountFact {
    Name,
    /// Disabled by an administrator.
    Disabled,
    /// Waiting for approval.
    Pending,
}

impl PgStore {
    /// Inserts the newest row of one fact of an account (`account_name`, `account_access`,
    /// `account_pending`), its version after every earlier row of that fact, whichever node
    /// wrote them. Each fact is its own row, so changing one never undoes another.
    async fn insert_account_fact<T>(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        fact: AccountFact,
        account: Uuid,
        value: T,
    ) -> StoreResult<()>
    where
        T: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
    {
        let (table, column) = match fact {
            AccountFact::Name => ("account_name", "name"),
            AccountFact::Disabled => ("account_access", "disabled"),
            AccountFact::Pending => ("account_pending", "pending"),
        };
        let version = self
            .version_after(tx, table, &[("account_id", account)])
            .await?;
        sqlx::query(&q(format!(
            "INSERT INTO {table} (id, account_id, {column}, version, node) VALUES (?, ?, ?, ?, ?)"
        )))
        .bind(Uuid::now_v7())
        .bind(account)
        .bind(value)
        .bind(version.0)
        .bind(self.node)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert_credential(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        account: Uuid,
        password_hash: &str,
    ) -> StoreResult<()> {
        let version = self
            .version_after(tx, "account_credential", &[("account_id", account)])
            .await?;
        sqlx::query(&q(
            "INSERT INTO account_credential (id, account_id, version, node, password_hash)
             VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(Uuid::now_v7())
        .bind(account)
        .bind(version.0)
        .bind(self.node)
        .bind(password_hash)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

impl PgStore {
    /// Whether account `id`, just registered here, owns its address on every other database
    /// that answers, once it has arrived there ([`PgStore::where_arrived`]). A registration
    /// of the same address made on another database before this one arrived there is there
    /// by then: of the two, the earliest `(version, id)` owns the address on every database
    /// (docs/architecture.md section 3, rule 2), so exactly one of the two is answered "created".
    async fn owns_everywhere(&self, id: Uuid, email_norm: &str) -> StoreResult<bool> {
        for mut other in self.where_arrived("account", id).await? {
            let owner: Option<Uuid> = sqlx::query_scalar(&q(format!(
                "SELECT a.id FROM account a WHERE a.email_norm = ? AND {OWNS_EMAIL}"
            )))
            .bind(email_norm)
            .fetch_optional(&mut *other)
            .await?;
            if owner != Some(id) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl AccountStore for PgStore {
    async fn create_account(
        &self,
        email: &Email,
        name: &str,
        password_hash: &str,
        pending: bool,
    ) -> StoreResult<Account> {
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await?;
        in_progress_from_now(&mut tx).await?;
        let taken = sqlx::query(&q("SELECT 1 FROM account WHERE email_norm = ? LIMIT 1"))
            .bind(email.normalized())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if taken {
            return Err(StoreError::EmailTaken);
        }
        let id = Uuid::now_v7();
        let created = self.hlc.next();
        sqlx::query(&q(
            "INSERT INTO account (id, email, email_norm, version, node) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(email.as_str())
        .bind(email.normalized())
        .bind(created.0)
        .bind(self.node)
        .execute(&mut *tx)
        .await?;
        self.insert_account_fact(&mut tx, AccountFact::Name, id, name.to_owned())
            .await?;
        if pending {
            self.insert_account_fact(&mut tx, AccountFact::Pending, id, true)
                .await?;
        }
        self.insert_credential(&mut tx, id, password_hash).await?;
        tx.commit().await?;
        if !self.owns_everywhere(id, email.normalized()).await? {
            return Err(StoreError::EmailTaken);
        }
        Ok(Account {
            id,
            email: email.as_str().to_owned(),
            name: name.to_owned(),
            disabled: pending,
            pending,
            created,
        })
    }

    async fn account(&self, id: Uuid) -> StoreResult<Account> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE}
             WHERE a.id = ?"
        );
        let row = sqlx::query(&q(sql))
            .bind(id)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or(StoreError::NotFound)?;
        account_from(&row)
    }

    async fn login_record(&self, email_normalized: &str) -> StoreResult<Option<LoginRecord>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, c.password_hash
             FROM account a {CURRENT_PROFILE}
             JOIN account_credential c ON c.account_id = a.id AND NOT EXISTS (
                SELECT 1 FROM account_credential m WHERE m.account_id = c.account_id
                AND (m.version, m.id) > (c.version, c.id))
             WHERE a.email_norm = ? ORDER BY a.version, a.id LIMIT 1"
        );
        let row = sqlx::query(&q(sql))
            .bind(email_normalized)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        row.map(|row| {
            Ok(LoginRecord {
                account: account_from(&row)?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    async fn any_account(&self) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar(&q("SELECT EXISTS (SELECT 1 FROM account)"))
                .fetch_one(&mut *self.read().await?)
                .await?,
        )
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE}
             WHERE {OWNS_EMAIL} ORDER BY a.email_norm"
        );
        let rows = sqlx::query(&q(sql))
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter().map(account_from).collect()
    }

    async fn set_account_disabled(&self, id: Uuid, disabled: bool) -> StoreResult<Account> {
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await?;
        let sql =
            format!("SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE} WHERE a.id = ?");
        let row = sqlx::query(&q(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut account = account_from(&row)?;
        self.insert_account_fact(&mut tx, AccountFact::Disabled, id, disabled)
            .await?;
        if !disabled && account.pending {
            self.insert_account_fact(&mut tx, AccountFact::Pending, id, false)
                .await?;
            account.pending = false;
        }
        tx.commit().await?;
        account.disabled = disabled || account.pending;
        Ok(account)
    }

    async fn set_password(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await?;
        let exists = sqlx::query(&q("SELECT 1 FROM account WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        self.insert_credential(&mut tx, id, password_hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<Uuid> {
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await?;
        // A session must sort after the password it was opened with, even if that password
        // was written by a node whose clock runs ahead of ours.
        let version = self
            .version_after(
                &mut tx,
                "account_credential",
                &[("account_id", session.account_id)],
            )
            .await?;
        let id = session.id;
        sqlx::query(&q(
            "INSERT INTO session (id, token_hash, account_id, version, node, expires_at, family_id)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(&session.token_hash)
        .bind(session.account_id)
        .bind(version.0)
        .bind(self.node)
        .bind(session.expires_at_ms)
        .bind(session.family.unwrap_or(id))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn session(&self, token_hash: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        let sql = format!(
            "SELECT s.id AS session_id, COALESCE(s.family_id, s.id) AS family, s.expires_at,
                    {ACCOUNT_COLUMNS}
             FROM session s JOIN account a ON a.id = s.account_id {CURRENT_PROFILE}
             WHERE s.token_hash = ? AND {LIVE_SESSION} AND {OWNS_EMAIL}"
        );
        let row = sqlx::query(&q(sql))
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            id: uuid(&row, "session_id")?,
            family: uuid(&row, "family")?,
            account: account_from(&row)?,
            expires_at_ms: row.try_get("expires_at")?,
        }))
    }

    async fn session_change_mark(&self) -> StoreResult<i64> {
        // Versions only grow, so the sum of the newest ones changes with every such write.
        Ok(sqlx::query_scalar(&q(
            "SELECT COALESCE((SELECT MAX(version) FROM session_revocation), 0)
                  + COALESCE((SELECT MAX(version) FROM account_credential), 0)
                  + COALESCE((SELECT MAX(version) FROM account_access), 0)
                  + COALESCE((SELECT MAX(version) FROM account_pending), 0)",
        ))
        .fetch_one(&mut *self.read().await?)
        .await?)
    }

    async fn live_sessions(&self, families: &[Uuid], now_ms: i64) -> StoreResult<HashSet<Uuid>> {
        let sql = format!(
            "WITH wanted(id) AS (SELECT unnest(?::uuid[]))
             SELECT DISTINCT COALESCE(s.family_id, s.id)
             FROM session s JOIN account a ON a.id = s.account_id {CURRENT_PROFILE}
             WHERE (s.family_id IN (SELECT id FROM wanted)
                    OR (s.family_id IS NULL AND s.id IN (SELECT id FROM wanted)))
             AND {LIVE_SESSION} AND {OWNS_EMAIL}"
        );
        let live: Vec<Uuid> = sqlx::query_scalar(&q(sql))
            .bind(families)
            .bind(now_ms)
            .fetch_all(&mut *self.read().await?)
            .await?;
        Ok(live.into_iter().collect())
    }

    async fn revoke_session(&self, family: Uuid) -> StoreResult<()> {
        sqlx::query(&q(
            "INSERT INTO session_revocation (id, session_id, version, node) VALUES (?, ?, ?, ?)",
        ))
        .bind(Uuid::now_v7())
        .bind(family)
        .bind(self.hlc.next().0)
        .bind(self.node)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    async fn purge_sessions(&self, nodes: &NodeIds, before_ms: i64) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM session WHERE id IN (
                SELECT s.id FROM session s WHERE s.node = ANY(?) AND s.expires_at < ?
                LIMIT ?)",
            purge_args(nodes, &[before_ms])?,
        )
        .await
    }

    async fn purge_pending_accounts(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let mut conn = self.write().await?;
            let mut tx = conn.begin().await?;
            let ids: Vec<Uuid> = sqlx::query_scalar(&q(format!(
                "SELECT a.id FROM account a WHERE a.node = ANY(?) AND a.version < ?
                 AND {WAITING_FOR_APPROVAL} LIMIT ?"
            )))
            .bind(nodes.ids())
            .bind(before.0)
            .bind(PURGE_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            for (table, key) in UNAPPROVED_ACCOUNT_ROWS {
                sqlx::query(&q(format!("DELETE FROM {table} WHERE {key} = ANY(?)")))
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            total += ids.len() as u64;
            if (ids.len() as i64) < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}
