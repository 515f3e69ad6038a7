//! What arrives by mail: a link to set a new password, a link to confirm a new account's
//! address, and the note to an address's owner that someone tried to register it again.
//!
//! An answer to a request that may cause a mail never depends on whether the address has an
//! account, in its body or its time: the request is checked and answered, and the mail (or
//! nothing) is written to the outbox by a task of its own afterwards.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{token, AuthError, IssuedToken};
use crate::domain::account::{check_password, Email};
use crate::domain::hlc::{millis_of, wall_millis as now_ms};
use crate::domain::ValidationError;
use crate::mail::{message, Language, Outbox};
use crate::store::{Account, NewAccountToken, NewMail, Store, StoreError, TokenPurpose, TokenUse};

use super::limits::MailLimits;
use super::Accounts;

/// How long a link to set a new password works.
pub const RESET_VALID: Duration = Duration::from_secs(30 * 60);
/// How long a link to confirm an address works.
pub const CONFIRM_VALID: Duration = Duration::from_secs(7 * 24 * 3600);
/// Mails being written at once, at most; beyond, a request's mail is not written (its
/// answer is the same, and the person can ask again).
pub const MAIL_JOBS: usize = 64;

/// A mail a request asks for, written after the answer.
pub(super) enum MailJob {
    /// A link to set a new password, if the address has an account that may sign in.
    Reset { email_norm: String },
    /// A link to confirm the address of an account just registered.
    Confirm { account: Account },
    /// Someone registered an address that has an account: its owner is told (or, if it is
    /// still unconfirmed, sent a fresh link).
    Taken { email_norm: String },
}

/// What writing mail needs, apart from the [`Accounts`] that asked for it.
#[derive(Clone)]
pub(super) struct MailDesk {
    pub outbox: Outbox,
    pub limits: Arc<MailLimits>,
    pub jobs: Arc<tokio::sync::Semaphore>,
}

impl Accounts {
    /// Mails a link to set a new password to `email` if it has an account. The answer (`Ok`)
    /// is the same whether it has one; only a malformed address or too many requests from
    /// `client` are refused.
    pub async fn request_password_reset(
        &self,
        email: &str,
        client: IpAddr,
        lang: Language,
    ) -> Result<(), AuthError> {
        let desk = self.mail.as_ref().ok_or(AuthError::MailOff)?;
        let email = Email::parse(email).map_err(|m| ValidationError::single("email", m))?;
        desk.limits
            .reset_request(client)
            .map_err(|l| AuthError::RateLimited {
                retry_after: l.retry_after,
            })?;
        self.mail_later(
            MailJob::Reset {
                email_norm: email.normalized().to_owned(),
            },
            lang,
        );
        Ok(())
    }

    /// Sets a new password with a mailed link: every session of the account ends, and the
    /// one returned begins.
    pub async fn reset_password(
        &self,
        link: &str,
        password: &str,
    ) -> Result<(Account, IssuedToken), AuthError> {
        self.mail.as_ref().ok_or(AuthError::MailOff)?;
        let (id, account) = self
            .open_link(link, TokenPurpose::Reset)
            .await?
            .filter(|(_, account)| !account.disabled)
            .ok_or(AuthError::LinkInvalid)?;
        let email =
            Email::parse(&account.email).map_err(|m| ValidationError::single("email", m))?;
        check_password(password, &email).map_err(|m| ValidationError::single("password", m))?;
        let hash = self.hash(password.to_owned()).await?;
        let how = TokenUse::Reset {
            password_hash: &hash,
        };
        if !self.store.use_account_token(id, account.id, how).await? {
            return Err(AuthError::LinkInvalid);
        }
        tracing::info!(account = %account.id, "password set with a mailed link");
        let session = self.issue(account.id, None).await?;
        Ok((account, session))
    }

    /// Confirms an account's address with a mailed link and signs it in.
    pub async fn confirm_address(&self, link: &str) -> Result<(Account, IssuedToken), AuthError> {
        self.mail.as_ref().ok_or(AuthError::MailOff)?;
        let (id, mut account) = self
            .open_link(link, TokenPurpose::Confirm)
            .await?
            .ok_or(AuthError::LinkInvalid)?;
        if !self
            .store
            .use_account_token(id, account.id, TokenUse::Confirm)
            .await?
        {
            return Err(AuthError::LinkInvalid);
        }
        account = self.store.account(account.id).await?;
        if account.disabled {
            // Confirmed, but an administrator disabled it meanwhile.
            return Err(AuthError::InvalidCredentials);
        }
        tracing::info!(account = %account.id, "address confirmed");
        let session = self.issue(account.id, None).await?;
        Ok((account, session))
    }

    async fn open_link(
        &self,
        link: &str,
        purpose: TokenPurpose,
    ) -> Result<Option<(Uuid, Account)>, AuthError> {
        if link.is_empty() || link.len() > 128 {
            return Err(AuthError::LinkInvalid);
        }
        Ok(self
            .store
            .account_token(&token::hash(link), purpose, now_ms())
            .await?)
    }

    /// Writes the mail `job` asks for once the caller has answered; never waits.
    pub(super) fn mail_later(&self, job: MailJob, lang: Language) {
        let Some(desk) = self.mail.clone() else {
            return;
        };
        let Ok(permit) = desk.jobs.clone().try_acquire_owned() else {
            tracing::warn!("too many mails being written at once; one request's mail was dropped");
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = write_mail(store.as_ref(), &desk, job, lang).await {
                tracing::warn!(error = %e, "cannot write a mail to the outbox");
            }
            drop(permit);
        });
    }
}

/// What a mail to an account is about.
enum Kind {
    Reset,
    Confirm,
    Taken,
}

async fn write_mail(
    store: &dyn Store,
    desk: &MailDesk,
    job: MailJob,
    lang: Language,
) -> Result<(), StoreError> {
    let (account, kind) = match job {
        MailJob::Confirm { account } => (account, Kind::Confirm),
        MailJob::Reset { email_norm } => match store.login_record(&email_norm).await? {
            // A disabled or unconfirmed account could not sign in with a new password.
            Some(record) if !record.account.disabled => (record.account, Kind::Reset),
            _ => return Ok(()),
        },
        MailJob::Taken { email_norm } => match store.login_record(&email_norm).await? {
            Some(record) if record.account.pending => (record.account, Kind::Confirm),
            Some(record) => (record.account, Kind::Taken),
            None => return Ok(()),
        },
    };
    if desk.limits.account_mail(account.id).is_err() {
        tracing::info!(account = %account.id, "mail to this account held back: too many lately");
        return Ok(());
    }
    let base = &desk.outbox.public_url;
    let link = token::generate();
    let (message, purpose, valid) = match kind {
        Kind::Reset => (
            message::password_reset(
                lang,
                &account.name,
                &format!("{base}/login#reset={link}"),
                RESET_VALID.as_secs() / 60,
            ),
            Some(TokenPurpose::Reset),
            RESET_VALID,
        ),
        Kind::Confirm => (
            message::confirm_address(
                lang,
                &account.name,
                &format!("{base}/login#confirm={link}"),
                CONFIRM_VALID.as_secs() / 86_400,
            ),
            Some(TokenPurpose::Confirm),
            CONFIRM_VALID,
        ),
        Kind::Taken => (
            message::already_registered(lang, &account.name, &format!("{base}/login")),
            None,
            Duration::ZERO,
        ),
    };
    let token = purpose.map(|purpose| NewAccountToken {
        account: account.id,
        purpose,
        token_hash: token::hash(&link),
        expires_at_ms: now_ms() + millis_of(valid),
    });
    let mail = NewMail {
        recipient: &account.email,
        subject: &message.subject,
        text_body: &message.text,
        html_body: &message.html,
    };
    store.queue_mail(mail, token).await?;
    desk.outbox.wake();
    Ok(())
}
