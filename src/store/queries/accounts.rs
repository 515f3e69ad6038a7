//! Accounts, passwords and sessions. Each fact of an account (its name, whether it is
//! disabled, whether it waits for approval) is a row of its own table.

use super::*;
use crate::store::sql::*;

pub(super) fn account_from(row: &impl Row) -> StoreResult<Account> {
    let pending = row.flag("pending")?;
    Ok(Account {
        id: row.id("id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        // A pending account cannot sign in either.
        disabled: row.flag("disabled")? || pending,
        pending,
        created: Version(row.int("version")?),
    })
}

/// The facts of an account that change independently, each in a table of its own.
#[derive(Clone, Copy)]
enum AccountFact<'a> {
    Name(&'a str),
    /// Disabled by an administrator.
    Disabled(bool),
    /// Waiting for approval.
    Pending(bool),
}

impl<B: Backend> SqlStore<B> {
    /// Inserts the newest row of one fact of an account, its version after every earlier row
    /// of that fact, whichever node wrote them. Each fact is its own row, so changing one
    /// never undoes another.
    async fn insert_account_fact(
        &self,
        tx: &mut B::Tx,
        account: Uuid,
        fact: AccountFact<'_>,
    ) -> StoreResult<()> {
        let (table, column, value) = match fact {
            AccountFact::Name(name) => ("account_name", "name", Arg::Text(name)),
            AccountFact::Disabled(on) => ("account_access", "disabled", Arg::Flag(on)),
            AccountFact::Pending(on) => ("account_pending", "pending", Arg::Flag(on)),
        };
        let version = self
            .version_after(tx, table, &[("account_id", account)])
            .await?;
        let columns = format!("account_id, {column}");
        let values = [Arg::Id(account), value];
        self.insert(
            On::Tx(tx),
            table,
            Uuid::now_v7(),
            &columns,
            &values,
            version,
        )
        .await
    }

    pub(super) async fn insert_credential(
        &self,
        tx: &mut B::Tx,
        account: Uuid,
        password_hash: &str,
    ) -> StoreResult<()> {
        let version = self
            .version_after(tx, "account_credential", &[("account_id", account)])
            .await?;
        let values = [Arg::Id(account), Arg::Text(password_hash)];
        let columns = "account_id, password_hash";
        self.insert(
            On::Tx(tx),
            "account_credential",
            Uuid::now_v7(),
            columns,
            &values,
            version,
        )
        .await
    }

    /// Account `id` may sign in: no longer waiting (its address is confirmed).
    pub(super) async fn confirm_account(&self, tx: &mut B::Tx, id: Uuid) -> StoreResult<()> {
        self.insert_account_fact(tx, id, AccountFact::Pending(false))
            .await
    }

    async fn account_on(&self, on: On<'_, B::Tx>, id: Uuid) -> StoreResult<Account> {
        let sql =
            format!("SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE} WHERE a.id = $1");
        let row = self.one(on, &sql, &[Arg::Id(id)]).await?;
        account_from(&row.ok_or(StoreError::NotFound)?)
    }
}

#[async_trait]
impl<B: Backend> AccountStore for SqlStore<B> {
    async fn create_account(
        &self,
        email: &Email,
        name: &str,
        password_hash: &str,
        pending: bool,
    ) -> StoreResult<Account> {
        measured!("create_account", async move {
            let mut tx = self.db.begin().await?;
            self.db.mark_in_progress(&mut tx).await?;
            let taken = self
                .one(
                    On::Tx(&mut tx),
                    "SELECT 1 AS taken FROM account WHERE email_norm = $1 LIMIT 1",
                    &[Arg::Text(email.normalized())],
                )
                .await?
                .is_some();
            if taken {
                return Err(StoreError::EmailTaken);
            }
            let id = Uuid::now_v7();
            let created = self.hlc.next();
            let email_columns = [Arg::Text(email.as_str()), Arg::Text(email.normalized())];
            self.insert(
                On::Tx(&mut tx),
                "account",
                id,
                "email, email_norm",
                &email_columns,
                created,
            )
            .await?;
            self.insert_account_fact(&mut tx, id, AccountFact::Name(name))
                .await?;
            if pending {
                self.insert_account_fact(&mut tx, id, AccountFact::Pending(true))
                    .await?;
            }
            self.insert_credential(&mut tx, id, password_hash).await?;
            B::commit(tx).await?;
            if !self.db.owns_everywhere(id, email.normalized()).await? {
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
        })
        .await
    }

    async fn account(&self, id: Uuid) -> StoreResult<Account> {
        measured!(
            "account",
            async move { self.account_on(On::Read, id).await },
        )
        .await
    }

    async fn login_record(&self, email_normalized: &str) -> StoreResult<Option<LoginRecord>> {
        measured!("login_record", async move {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS}, c.password_hash
             FROM account a {CURRENT_PROFILE}
             JOIN account_credential c ON c.account_id = a.id AND NOT EXISTS (
                SELECT 1 FROM account_credential m WHERE m.account_id = c.account_id
                AND (m.version, m.id) > (c.version, c.id))
             WHERE a.email_norm = $1 ORDER BY a.version, a.id LIMIT 1"
            );
            let row = self
                .one(On::Read, &sql, &[Arg::Text(email_normalized)])
                .await?;
            row.map(|row| {
                Ok(LoginRecord {
                    account: account_from(&row)?,
                    password_hash: row.text("password_hash")?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn any_account(&self) -> StoreResult<bool> {
        measured!("any_account", async move {
            let sql = "SELECT 1 AS found FROM account LIMIT 1";
            Ok(self.one(On::Read, sql, &[]).await?.is_some())
        })
        .await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        measured!("list_accounts", async move {
            let sql = format!(
                "SELECT {ACCOUNT_COLUMNS} FROM account a {CURRENT_PROFILE}
             WHERE {OWNS_EMAIL} ORDER BY a.email_norm"
            );
            let rows = self.db.fetch(On::Read, &sql, &[]).await?;
            rows.iter().map(account_from).collect()
        })
        .await
    }

    async fn set_account_disabled(&self, id: Uuid, disabled: bool) -> StoreResult<Account> {
        measured!("set_account_disabled", async move {
            let mut tx = self.db.begin().await?;
            let mut account = self.account_on(On::Tx(&mut tx), id).await?;
            self.insert_account_fact(&mut tx, id, AccountFact::Disabled(disabled))
                .await?;
            if !disabled && account.pending {
                self.insert_account_fact(&mut tx, id, AccountFact::Pending(false))
                    .await?;
                account.pending = false;
            }
            B::commit(tx).await?;
            self.caches.sessions_changed();
            account.disabled = disabled || account.pending;
            Ok(account)
        })
        .await
    }

    async fn set_password(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        measured!("set_password", async move {
            let mut tx = self.db.begin().await?;
            let sql = "SELECT 1 AS found FROM account WHERE id = $1";
            if self
                .one(On::Tx(&mut tx), sql, &[Arg::Id(id)])
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            self.insert_credential(&mut tx, id, password_hash).await?;
            B::commit(tx).await?;
            self.caches.sessions_changed();
            Ok(())
        })
        .await
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<Uuid> {
        measured!("create_session", async move {
            let mut tx = self.db.begin().await?;
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
            let values = [
                Arg::Text(&session.token_hash),
                Arg::Id(session.account_id),
                Arg::Int(session.expires_at_ms),
                Arg::Id(session.family.unwrap_or(id)),
            ];
            let columns = "token_hash, account_id, expires_at, family_id";
            self.insert(On::Tx(&mut tx), "session", id, columns, &values, version)
                .await?;
            B::commit(tx).await?;
            Ok(id)
        })
        .await
    }

    async fn session(&self, token_hash: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        if let Some(kept) = self.caches.session(token_hash, now_ms) {
            return Ok(Some(kept));
        }
        measured!("session", async move {
            let ticket = self.caches.session_ticket();
            let sql = format!(
                "SELECT s.id AS session_id, COALESCE(s.family_id, s.id) AS family, s.expires_at,
                    {ACCOUNT_COLUMNS}
             FROM session s JOIN account a ON a.id = s.account_id {CURRENT_PROFILE}
             WHERE s.token_hash = $1 AND {LIVE_SESSION} AND {OWNS_EMAIL}"
            );
            let args = [Arg::Text(token_hash), Arg::Int(now_ms)];
            let Some(row) = self.one(On::Read, &sql, &args).await? else {
                return Ok(None);
            };
            let record = SessionRecord {
                id: row.id("session_id")?,
                family: row.id("family")?,
                account: account_from(&row)?,
                expires_at_ms: row.int("expires_at")?,
            };
            self.caches.keep_session(ticket, token_hash, &record);
            Ok(Some(record))
        })
        .await
    }

    async fn session_change_mark(&self) -> StoreResult<i64> {
        measured!("session_change_mark", async move {
            // Versions only grow, so the sum of the newest ones changes with every such write.
            let sql = "SELECT COALESCE((SELECT MAX(version) FROM session_revocation), 0)
                  + COALESCE((SELECT MAX(version) FROM account_credential), 0)
                  + COALESCE((SELECT MAX(version) FROM account_access), 0)
                  + COALESCE((SELECT MAX(version) FROM account_pending), 0) AS mark";
            let row = self.one(On::Read, sql, &[]).await?;
            let mark = row.map_or(Ok(0), |row| row.int("mark"))?;
            self.caches.observe_session_mark(mark);
            Ok(mark)
        })
        .await
    }

    async fn live_sessions(&self, families: &[Uuid], now_ms: i64) -> StoreResult<HashSet<Uuid>> {
        measured!("live_sessions", async move {
            let sql = format!(
                "SELECT DISTINCT COALESCE(s.family_id, s.id) AS family
             FROM session s JOIN account a ON a.id = s.account_id {CURRENT_PROFILE}
             WHERE ({} OR (s.family_id IS NULL AND {}))
             AND {LIVE_SESSION} AND {OWNS_EMAIL}",
                B::in_ids("s.family_id", "$1"),
                B::in_ids("s.id", "$1"),
            );
            let args = [Arg::Ids(families), Arg::Int(now_ms)];
            let rows = self.db.fetch(On::Read, &sql, &args).await?;
            rows.iter().map(|row| row.id("family")).collect()
        })
        .await
    }

    async fn revoke_session(&self, family: Uuid) -> StoreResult<()> {
        measured!("revoke_session", async move {
            let (id, version) = (Uuid::now_v7(), self.hlc.next());
            self.insert(
                On::Write,
                "session_revocation",
                id,
                "session_id",
                &[Arg::Id(family)],
                version,
            )
            .await?;
            self.caches.sessions_changed();
            Ok(())
        })
        .await
    }

    async fn purge_sessions(&self, nodes: &NodeIds, before_ms: i64) -> StoreResult<u64> {
        measured!("purge_sessions", async move {
            let sql = format!(
                "DELETE FROM session WHERE id IN (
                SELECT s.id FROM session s WHERE {} AND s.expires_at < $2 LIMIT $3)",
                B::in_ids("s.node", "$1")
            );
            self.delete_in_batches(&sql, &[Arg::Ids(nodes.ids()), Arg::Int(before_ms)])
                .await
        })
        .await
    }

    async fn purge_pending_accounts(&self, nodes: &NodeIds, before: Version) -> StoreResult<u64> {
        measured!("purge_pending_accounts", async move {
            let select = format!(
                "SELECT a.id FROM account a WHERE {} AND a.version < $2
             AND {WAITING_FOR_APPROVAL} LIMIT $3",
                B::in_ids("a.node", "$1")
            );
            // One transaction per batch: an approval written meanwhile on this database
            // waits for it, then finds no account (the administrator is told so).
            let args = [Arg::Ids(nodes.ids()), Arg::Int(before.0)];
            self.delete_together(&select, &args, &UNAPPROVED_ACCOUNT_ROWS)
                .await
        })
        .await
    }
}
