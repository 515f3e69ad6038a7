//! The outbox (`mail`, one row per mail; `mail_attempt`, one row per attempt, delivery,
//! giving up or retry) and the single-use links mail carries (`account_token`, and
//! `account_token_use` once used). Where a mail stands is read from its attempts, newest last.

use super::accounts::account_from;
use super::*;
use crate::store::sql::*;

/// A pending mail is one without a delivery or a giving-up that no retry came after.
const PENDING: &str = "NOT EXISTS (
    SELECT 1 FROM mail_attempt t WHERE t.mail_id = m.id AND t.outcome IN ('sent', 'dead')
    AND NOT EXISTS (SELECT 1 FROM mail_attempt r WHERE r.mail_id = m.id
                    AND r.outcome = 'retry' AND (r.version, r.id) > (t.version, t.id)))";

/// A dead mail is one given up with no retry after.
const DEAD: &str = "EXISTS (
    SELECT 1 FROM mail_attempt t WHERE t.mail_id = m.id AND t.outcome = 'dead'
    AND NOT EXISTS (SELECT 1 FROM mail_attempt r WHERE r.mail_id = m.id
                    AND r.outcome = 'retry' AND (r.version, r.id) > (t.version, t.id)))";

/// Where a mail stands after its attempts, oldest first: its state, the failures since it
/// was written or retried, the newest reason, and when it is due.
fn standing(
    attempts: &[(String, Option<String>, Option<i64>)],
) -> (MailState, u32, Option<String>, i64) {
    let (mut state, mut failures, mut reason, mut due) = (MailState::Pending, 0, None, 0);
    for (outcome, why, retry_at) in attempts {
        match outcome.as_str() {
            "sent" => state = MailState::Sent,
            "dead" => {
                state = MailState::Dead;
                reason.clone_from(why);
            }
            "failed" => {
                failures += 1;
                reason.clone_from(why);
                due = retry_at.unwrap_or(0);
            }
            _ => {
                (state, failures, due) = (MailState::Pending, 0, 0);
            }
        }
    }
    (state, failures, reason, due)
}

impl<B: Backend> SqlStore<B> {
    /// The attempts of each of `mails`, oldest first.
    async fn attempts_of(
        &self,
        mails: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Vec<(String, Option<String>, Option<i64>)>>> {
        let sql = format!(
            "SELECT mail_id, outcome, reason, retry_at FROM mail_attempt WHERE {}
             ORDER BY version, id",
            B::in_ids("mail_id", "$1")
        );
        let mut attempts: HashMap<Uuid, Vec<_>> = HashMap::new();
        for row in self.db.fetch(On::Read, &sql, &[Arg::Ids(mails)]).await? {
            let reason = row.maybe_text("reason")?;
            attempts.entry(row.id("mail_id")?).or_default().push((
                row.text("outcome")?,
                reason,
                row.maybe_int("retry_at")?,
            ));
        }
        Ok(attempts)
    }

    /// Inserts an attempt row of `mail`, after every earlier one wherever it was written.
    async fn insert_attempt(
        &self,
        tx: &mut B::Tx,
        mail: Uuid,
        outcome: &str,
        reason: Option<&str>,
        retry_at_ms: Option<i64>,
    ) -> StoreResult<()> {
        let version = self
            .version_after(tx, "mail_attempt", &[("mail_id", mail)])
            .await?;
        let values = [
            Arg::Id(mail),
            Arg::Text(outcome),
            Arg::MaybeText(reason),
            Arg::MaybeInt(retry_at_ms),
        ];
        self.insert(
            On::Tx(tx),
            "mail_attempt",
            Uuid::now_v7(),
            "mail_id, outcome, reason, retry_at",
            &values,
            version,
        )
        .await
    }
}

#[async_trait]
impl<B: Backend> MailStore for SqlStore<B> {
    async fn queue_mail(
        &self,
        mail: NewMail<'_>,
        token: Option<NewAccountToken>,
    ) -> StoreResult<Uuid> {
        measured!("queue_mail", async move {
            let mut tx = self.db.begin().await?;
            if let Some(token) = token {
                let values = [
                    Arg::Id(token.account),
                    Arg::Text(token.purpose.as_str()),
                    Arg::Text(&token.token_hash),
                    Arg::Int(token.expires_at_ms),
                ];
                self.insert(
                    On::Tx(&mut tx),
                    "account_token",
                    Uuid::now_v7(),
                    "account_id, purpose, token_hash, expires_at",
                    &values,
                    self.hlc.next(),
                )
                .await?;
            }
            let id = Uuid::now_v7();
            let values = [
                Arg::Text(mail.recipient),
                Arg::Text(mail.subject),
                Arg::Text(mail.text_body),
                Arg::Text(mail.html_body),
            ];
            self.insert(
                On::Tx(&mut tx),
                "mail",
                id,
                "recipient, subject, text_body, html_body",
                &values,
                self.hlc.next(),
            )
            .await?;
            B::commit(tx).await?;
            Ok(id)
        })
        .await
    }

    async fn account_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> StoreResult<Option<(Uuid, Account)>> {
        measured!("account_token", async move {
            let sql = format!(
                "SELECT k.id AS token_id, {ACCOUNT_COLUMNS}
             FROM account_token k JOIN account a ON a.id = k.account_id {CURRENT_PROFILE}
             WHERE k.token_hash = $1 AND k.purpose = $2 AND k.expires_at > $3
             AND NOT EXISTS (SELECT 1 FROM account_token_use u WHERE u.token_id = k.id)
             AND {OWNS_EMAIL}"
            );
            let args = [
                Arg::Text(token_hash),
                Arg::Text(purpose.as_str()),
                Arg::Int(now_ms),
            ];
            let Some(row) = self.one(On::Read, &sql, &args).await? else {
                return Ok(None);
            };
            Ok(Some((row.id("token_id")?, account_from(&row)?)))
        })
        .await
    }

    async fn use_account_token(
        &self,
        token: Uuid,
        account: Uuid,
        how: TokenUse<'_>,
    ) -> StoreResult<bool> {
        measured!("use_account_token", async move {
            let mut tx = self.db.begin().await?;
            // Checked again inside the transaction: two uses at once on this database take turns,
            // and the second finds the first.
            let used = "SELECT 1 AS used FROM account_token_use WHERE token_id = $1";
            if self
                .one(On::Tx(&mut tx), used, &[Arg::Id(token)])
                .await?
                .is_some()
            {
                return Ok(false);
            }
            match how {
                TokenUse::Reset { password_hash } => {
                    self.insert_credential(&mut tx, account, password_hash)
                        .await?;
                }
                TokenUse::Confirm => self.confirm_account(&mut tx, account).await?,
            }
            self.insert(
                On::Tx(&mut tx),
                "account_token_use",
                Uuid::now_v7(),
                "token_id",
                &[Arg::Id(token)],
                self.hlc.next(),
            )
            .await?;
            B::commit(tx).await?;
            self.caches.sessions_changed();
            Ok(true)
        })
        .await
    }

    async fn due_mail(
        &self,
        lease: Duration,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutgoingMail>> {
        measured!("due_mail", async move {
            let live = self.live_node_ids(lease).await?;
            // The lowest live node also sends the mail of nodes gone past the lease.
            let orphans = live.first().is_some_and(|first| *first == self.node);
            let sql = format!(
                "SELECT m.id, m.recipient, m.subject, m.text_body, m.html_body FROM mail m
             WHERE (m.node = $1 OR ($2 AND NOT {})) AND {PENDING}
             ORDER BY m.version, m.id LIMIT $4",
                B::in_ids("m.node", "$3")
            );
            let args = [
                Arg::Id(self.node),
                Arg::Flag(orphans),
                Arg::Ids(&live),
                Arg::Int(i64::from(limit)),
            ];
            let rows = self.db.fetch(On::Read, &sql, &args).await?;
            let ids = rows
                .iter()
                .map(|row| row.id("id"))
                .collect::<StoreResult<Vec<Uuid>>>()?;
            let attempts = self.attempts_of(&ids).await?;
            let mut due = Vec::new();
            for (row, id) in rows.iter().zip(ids) {
                let (_, failures, _, due_at) =
                    standing(attempts.get(&id).map_or(&[][..], Vec::as_slice));
                if due_at <= now_ms {
                    due.push(OutgoingMail {
                        id,
                        recipient: row.text("recipient")?,
                        subject: row.text("subject")?,
                        text_body: row.text("text_body")?,
                        html_body: row.text("html_body")?,
                        failures,
                    });
                }
            }
            Ok(due)
        })
        .await
    }

    async fn record_mail_attempt(&self, mail: Uuid, outcome: MailOutcome<'_>) -> StoreResult<()> {
        measured!("record_mail_attempt", async move {
            let (name, reason, retry_at) = match outcome {
                MailOutcome::Sent => ("sent", None, None),
                MailOutcome::Failed {
                    reason,
                    retry_at_ms,
                } => ("failed", Some(reason), Some(retry_at_ms)),
                MailOutcome::Dead { reason } => ("dead", Some(reason), None),
            };
            let mut tx = self.db.begin().await?;
            self.insert_attempt(&mut tx, mail, name, reason, retry_at)
                .await?;
            B::commit(tx).await
        })
        .await
    }

    async fn mail_records(&self) -> StoreResult<Vec<MailRecord>> {
        measured!("mail_records", async move {
            let sql =
                "SELECT id, recipient, subject, version FROM mail ORDER BY version DESC, id DESC";
            let rows = self.db.fetch(On::Read, sql, &[]).await?;
            let ids = rows
                .iter()
                .map(|row| row.id("id"))
                .collect::<StoreResult<Vec<Uuid>>>()?;
            let attempts = self.attempts_of(&ids).await?;
            rows.iter()
                .zip(ids)
                .map(|(row, id)| {
                    let (state, failures, reason, due_at_ms) =
                        standing(attempts.get(&id).map_or(&[][..], Vec::as_slice));
                    Ok(MailRecord {
                        id,
                        recipient: row.text("recipient")?,
                        subject: row.text("subject")?,
                        written: Version(row.int("version")?),
                        state,
                        failures,
                        reason,
                        due_at_ms,
                    })
                })
                .collect()
        })
        .await
    }

    async fn mail_counts(&self) -> StoreResult<(u64, u64)> {
        measured!("mail_counts", async move {
            let sql = format!(
                "SELECT (SELECT COUNT(*) FROM mail m WHERE {PENDING}) AS pending,
                    (SELECT COUNT(*) FROM mail m WHERE {DEAD}) AS dead"
            );
            let row = self.one(On::Read, &sql, &[]).await?;
            let count = |column| {
                row.as_ref()
                    .map_or(Ok(0), |row| row.int(column))
                    .map(i64::unsigned_abs)
            };
            Ok((count("pending")?, count("dead")?))
        })
        .await
    }

    async fn retry_mail(&self, id: Uuid) -> StoreResult<MailState> {
        measured!("retry_mail", async move {
            let mut tx = self.db.begin().await?;
            let found = "SELECT 1 AS found FROM mail WHERE id = $1";
            if self
                .one(On::Tx(&mut tx), found, &[Arg::Id(id)])
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            let sql = "SELECT outcome, reason, retry_at FROM mail_attempt WHERE mail_id = $1
                   ORDER BY version, id";
            let attempts = self
                .db
                .fetch(On::Tx(&mut tx), sql, &[Arg::Id(id)])
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        row.text("outcome")?,
                        row.maybe_text("reason")?,
                        row.maybe_int("retry_at")?,
                    ))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let (state, ..) = standing(&attempts);
            if state != MailState::Sent {
                self.insert_attempt(&mut tx, id, "retry", None, None)
                    .await?;
                B::commit(tx).await?;
            }
            Ok(state)
        })
        .await
    }

    async fn purge_mail(
        &self,
        nodes: &NodeIds,
        before: Version,
        tokens_before_ms: i64,
    ) -> StoreResult<u64> {
        measured!("purge_mail", async move {
            let done = format!(
                "SELECT m.id FROM mail m WHERE {} AND m.version < $2 AND NOT ({PENDING}) LIMIT $3",
                B::in_ids("m.node", "$1")
            );
            // A mail and its attempts go together: a mail left without its attempts would
            // read as pending and be sent again.
            let args = [Arg::Ids(nodes.ids()), Arg::Int(before.0)];
            let tables = [("mail_attempt", "mail_id"), ("mail", "id")];
            let mut total = self.delete_together(&done, &args, &tables).await?;
            let expired = format!(
                "SELECT k.id FROM account_token k WHERE {} AND k.expires_at < $2 LIMIT $3",
                B::in_ids("k.node", "$1")
            );
            let args = [Arg::Ids(nodes.ids()), Arg::Int(tokens_before_ms)];
            let tables = [("account_token_use", "token_id"), ("account_token", "id")];
            total += self.delete_together(&expired, &args, &tables).await?;
            Ok(total)
        })
        .await
    }
}
