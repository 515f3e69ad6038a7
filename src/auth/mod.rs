//! Accounts and sessions: registering, logging in and out, and turning a bearer token into
//! the account it belongs to.
//!
//! This is plain Rust over the [`Store`]; it knows nothing of HTTP. It owns the rules (who may
//! register, rate limits, token lifetime and renewal); the store owns how rows are kept.

pub mod limits;
pub mod links;
pub mod password;
pub mod token;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use uuid::Uuid;

use crate::domain::account::{check_password, Email, Registration};
use crate::domain::hlc::{millis_of, wall_millis as now_ms, Version};
use crate::domain::node::NodeIds;
use crate::domain::ValidationError;
use crate::mail::{Language, Outbox};
use crate::store::{Account, NewSession, Store, StoreError};
use limits::LoginLimits;
use password::{HashError, PasswordHasher};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("accounts with this e-mail domain cannot be registered here")]
    DomainNotAllowed,
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error("wrong e-mail address or password")]
    InvalidCredentials,
    #[error("too many attempts")]
    RateLimited { retry_after: Duration },
    #[error("the server is busy")]
    Busy { retry_after: Duration },
    #[error("not signed in, or the session has ended")]
    Unauthenticated,
    #[error(transparent)]
    Store(StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("mail is not set up on this server")]
    MailOff,
    #[error("the link has expired or was used already")]
    LinkInvalid,
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::EmailTaken => AuthError::EmailTaken,
            other => AuthError::Store(other),
        }
    }
}

/// Whether and how accounts are created through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    /// Anyone may register and is signed in at once.
    Open,
    /// New accounts wait for an administrator (`classcast user approve`), except the first
    /// on the server. Whether an address is registered already cannot be told from the answer.
    Approval,
    /// New accounts confirm their address through a mailed link, then sign in. Whether an
    /// address is registered already cannot be told from the answer (its owner is mailed).
    Confirm,
    /// Accounts only through `classcast user add`.
    Closed,
}

/// The outcome of a registration.
pub enum Registered {
    /// Created and signed in.
    Active(Account, IssuedToken),
    /// Received: the account, if the address was free, waits for this.
    Pending(Awaiting),
}

/// What a registration received waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    /// An administrator's approval.
    Approval,
    /// Its owner following the link mailed to the address.
    Confirmation,
}

/// Who may register and how long sessions live.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub registration: RegistrationMode,
    /// Lower-case domains allowed to register; empty allows every domain.
    pub allowed_email_domains: Vec<String>,
    pub session_ttl: Duration,
    /// A session with less than this left is renewed: the client is handed a fresh token.
    pub session_renew_before: Duration,
    /// No session family (a login and its renewals) lives longer than this.
    pub session_max_age: Duration,
}

/// A bearer token just issued, and when it stops working.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at_ms: i64,
}

/// A request's verified identity.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub account: Account,
    /// The session family (the login and its renewals): what logging out ends.
    pub session_id: Uuid,
    /// Set when the session neared its end and a fresh token was issued in its place.
    pub renewed: Option<IssuedToken>,
}

pub struct Accounts {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    limits: LoginLimits,
    settings: AuthSettings,
    /// Sessions this node renewed lately, with when: a client that goes on using the old
    /// token is handed a new one (and a row written) at most once per [`RENEW_AGAIN_AFTER`].
    renewed: Mutex<HashMap<Uuid, i64>>,
    /// Where mail goes, when the server sends mail.
    mail: Option<links::MailDesk>,
}

/// How long a renewed session is not renewed again (its successor may have been lost).
pub const RENEW_AGAIN_AFTER: Duration = Duration::from_secs(3600);

/// Expired sessions are deleted once they have been expired this long.
pub const EXPIRED_SESSIONS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// How long an account registered where registration needs approval may wait for it before
/// it is deleted, address and all (the address can then register again).
pub const UNAPPROVED_ACCOUNTS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

impl Accounts {
    pub fn new(store: Arc<dyn Store>, hasher: PasswordHasher, settings: AuthSettings) -> Self {
        Self {
            store,
            hasher,
            limits: LoginLimits::new(),
            settings,
            renewed: Mutex::new(HashMap::new()),
            mail: None,
        }
    }

    /// These accounts with mail: password reset and addresses confirmed through `outbox`.
    pub fn with_mail(mut self, outbox: Outbox) -> Self {
        self.mail = Some(links::MailDesk {
            outbox,
            limits: Arc::new(limits::MailLimits::new()),
            jobs: Arc::new(tokio::sync::Semaphore::new(links::MAIL_JOBS)),
        });
        self
    }

    /// Whether this server mails links (password reset, confirmed addresses).
    pub fn mails(&self) -> bool {
        self.mail.is_some()
    }

    /// Registers an account from `client`: every attempt spends that address's budget, so
    /// no one can create accounts, or probe which addresses exist, in bulk.
    pub async fn register(
        &self,
        email: &str,
        name: &str,
        password: &str,
        client: IpAddr,
        lang: Language,
    ) -> Result<Registered, AuthError> {
        let mode = self.settings.registration;
        if mode == RegistrationMode::Closed {
            return Err(AuthError::RegistrationClosed);
        }
        self.limits
            .registration(client)
            .map_err(|l| AuthError::RateLimited {
                retry_after: l.retry_after,
            })?;
        let reg = Registration::parse(email, name, password)?;
        let allowed = &self.settings.allowed_email_domains;
        if !allowed.is_empty() && !allowed.iter().any(|d| d == reg.email.domain()) {
            return Err(AuthError::DomainNotAllowed);
        }
        let hash = self.hash(reg.password).await?;
        let awaiting = match mode {
            // The first account on a server has nobody to approve it: it is the
            // administrator's.
            RegistrationMode::Approval if self.store.any_account().await? => {
                Some(Awaiting::Approval)
            }
            RegistrationMode::Confirm => Some(Awaiting::Confirmation),
            _ => None,
        };
        let pending = awaiting.is_some();
        match self
            .store
            .create_account(&reg.email, &reg.name, &hash, pending)
            .await
        {
            Ok(account) => match awaiting {
                None => {
                    let token = self.issue(account.id, None).await?;
                    Ok(Registered::Active(account, token))
                }
                Some(awaiting) => {
                    tracing::info!(email = %reg.email.as_str(), ?awaiting, "account registered");
                    if awaiting == Awaiting::Confirmation {
                        self.mail_later(links::MailJob::Confirm { account }, lang);
                    }
                    Ok(Registered::Pending(awaiting))
                }
            },
            // Taken, answered exactly like a fresh registration: nothing to learn.
            Err(StoreError::EmailTaken) if pending => {
                if awaiting == Some(Awaiting::Confirmation) {
                    let email_norm = reg.email.normalized().to_owned();
                    self.mail_later(links::MailJob::Taken { email_norm }, lang);
                }
                Ok(Registered::Pending(awaiting.unwrap_or(Awaiting::Approval)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a password, spending one attempt of the account's and the address's budget.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<IssuedToken, AuthError> {
        let email = Email::parse(email).map_err(|m| ValidationError::single("email", m))?;
        if password.is_empty() {
            return Err(ValidationError::single("password", "Enter your password.").into());
        }
        let attempt = self
            .limits
            .attempt(email.normalized(), client)
            .map_err(|l| AuthError::RateLimited {
                retry_after: l.retry_after,
            })?;
        let checked = match self.store.login_record(email.normalized()).await {
            Ok(record) => {
                let phc = record.as_ref().map(|r| r.password_hash.clone());
                match self.hasher.verify(password.to_owned(), phc).await {
                    Ok(matches) => Ok((record, matches)),
                    Err(e) => Err(self.hash_error(e)),
                }
            }
            Err(e) => Err(e.into()),
        };
        let (record, matches) = match checked {
            Ok(checked) => checked,
            Err(e) => {
                self.limits.abandoned(attempt);
                return Err(e);
            }
        };
        // A disabled account answers like a wrong password: telling them apart would confirm
        // the password to whoever tried it.
        let Some(record) = record.filter(|r| matches && !r.account.disabled) else {
            tracing::warn!(client = %client, "failed login");
            return Err(AuthError::InvalidCredentials);
        };
        self.limits.succeeded(attempt);
        self.issue(record.account.id, None).await
    }

    /// The account behind a bearer token; with `renew`, a token near its end gets a successor.
    pub async fn authenticate(&self, token: &str, renew: bool) -> Result<Authenticated, AuthError> {
        let now = now_ms();
        let session = self
            .store
            .session(&token::hash(token), now)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let renew_before = millis_of(self.settings.session_renew_before);
        // A renewal never reaches past the family's absolute end, so a stolen token cannot be
        // kept alive for ever; at that end there is nothing left to gain.
        let room = self.family_end(session.family) > session.expires_at_ms;
        let renewed = if renew && session.expires_at_ms - now < renew_before && room {
            match self.renewing(session.id, now) {
                true => Some(self.issue(session.account.id, Some(session.family)).await?),
                false => None,
            }
        } else {
            None
        };
        Ok(Authenticated {
            account: session.account,
            session_id: session.family,
            renewed,
        })
    }

    /// Whether the session is to be renewed now: not if this node renewed it within the
    /// last [`RENEW_AGAIN_AFTER`].
    fn renewing(&self, session: Uuid, now: i64) -> bool {
        let mut renewed = self.renewed.lock();
        let again = now - millis_of(RENEW_AGAIN_AFTER);
        match renewed.get(&session) {
            Some(&at) if at > again => false,
            _ => {
                renewed.insert(session, now);
                true
            }
        }
    }

    /// Deletes the sessions `nodes` began that expired a while ago (this node's upkeep).
    pub async fn purge_sessions(&self, nodes: &NodeIds) -> Result<u64, StoreError> {
        let before = now_ms() - millis_of(EXPIRED_SESSIONS_KEPT);
        self.store.purge_sessions(nodes, before).await
    }

    /// Deletes the accounts `nodes` registered longer than [`UNAPPROVED_ACCOUNTS_KEPT`] ago
    /// that were never approved (this node's upkeep).
    pub async fn purge_unapproved(&self, nodes: &NodeIds) -> Result<u64, StoreError> {
        let before = Version::at_millis(now_ms() - millis_of(UNAPPROVED_ACCOUNTS_KEPT));
        self.store.purge_pending_accounts(nodes, before).await
    }

    /// When a session of `family` begun at `now` expires: a full lifetime, but never past
    /// the family's end.
    fn renewed_expiry(&self, family: Uuid, now: i64) -> i64 {
        (now + millis_of(self.settings.session_ttl)).min(self.family_end(family))
    }

    /// When a session family ends, however often renewed: its login (the family id is the
    /// login's UUIDv7, which carries its time) plus the absolute lifetime.
    fn family_end(&self, family: Uuid) -> i64 {
        let started = family.get_timestamp().map_or(0, |t| {
            let (secs, nanos) = t.to_unix();
            i64::try_from(secs)
                .map_or(i64::MAX, |s| s.saturating_mul(1000))
                .saturating_add(i64::from(nanos / 1_000_000))
        });
        started + millis_of(self.settings.session_max_age)
    }

    /// Ends the session family: this token, the one it was renewed from and any renewed
    /// from it.
    pub async fn logout(&self, session_id: Uuid) -> Result<(), AuthError> {
        Ok(self.store.revoke_session(session_id).await?)
    }

    /// Sets a new password (administration); every existing session of the account ends.
    pub async fn set_password(&self, account: &Account, password: &str) -> Result<(), AuthError> {
        let email =
            Email::parse(&account.email).map_err(|m| ValidationError::single("email", m))?;
        check_password(password, &email).map_err(|m| ValidationError::single("password", m))?;
        let hash = self.hash(password.to_owned()).await?;
        Ok(self.store.set_password(account.id, &hash).await?)
    }

    /// Called now and then so the rate limiters forget addresses that went quiet.
    pub fn prune_limits(&self) {
        self.limits.prune();
        if let Some(desk) = &self.mail {
            desk.limits.prune();
        }
        let again = now_ms() - millis_of(RENEW_AGAIN_AFTER);
        self.renewed.lock().retain(|_, at| *at > again);
    }

    /// A new session: a login (`family` is `None`) or a renewal within `family`.
    async fn issue(
        &self,
        account_id: Uuid,
        family: Option<Uuid>,
    ) -> Result<IssuedToken, AuthError> {
        let token = token::generate();
        let id = Uuid::now_v7();
        // A login's family is itself, so its expiry and its family's end count from one instant.
        let expires_at_ms = self.renewed_expiry(family.unwrap_or(id), now_ms());
        self.store
            .create_session(NewSession {
                id,
                token_hash: token::hash(&token),
                account_id,
                expires_at_ms,
                family,
            })
            .await?;
        Ok(IssuedToken {
            token,
            expires_at_ms,
        })
    }

    async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.hasher
            .hash(password)
            .await
            .map_err(|e| self.hash_error(e))
    }

    fn hash_error(&self, e: HashError) -> AuthError {
        match e {
            HashError::Busy => AuthError::Busy {
                retry_after: self.hasher.retry_after(),
            },
            HashError::Failed(m) => AuthError::Hashing(m),
        }
    }
}
