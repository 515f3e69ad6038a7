//! Mail: what classcast writes ([`message`]) and the sender that delivers the outbox over
//! SMTP ([`sender`]).
//!
//! A request that causes a mail never talks to the mail server: it writes the mail to the
//! outbox (the store's `mail` table) and wakes this node's sender, which delivers it with
//! timeouts, retries with backoff and jitter, and gives up after [`sender::MAX_ATTEMPTS`].
//! A slow or dead mail server can then delay mail, never a request. This module sits below
//! accounts (`auth`), which decide what is mailed, and must not import them, `live` or HTTP.

pub mod message;
pub mod sender;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use tokio::sync::Notify;

pub use message::Language;

use crate::domain::hlc::{millis_of, wall_millis, Version};
use crate::store::{NodeIds, Store, StoreError};

/// How the server sends mail (settings `smtp_url`, `mail_from`, `public_url`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (plain), `smtp://user:password@host:587?tls=required` (STARTTLS;
    /// `?tls=opportunistic`: where offered), `smtps://user:password@host` (TLS from the start).
    pub smtp_url: String,
    /// The sender, `Name <address>`.
    pub from: Mailbox,
    /// Where links in mail point (the server's public address, without a slash at the end).
    pub public_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("smtp_url {url:?} cannot be used: {reason}")]
    SmtpUrl { url: String, reason: String },
}

/// Sent and dead mail stays this long in the outbox, for `classcast mail status`.
pub const MAIL_KEPT: Duration = Duration::from_secs(30 * 86_400);
/// A mailed link is deleted this long after it expired.
pub const LINKS_KEPT: Duration = Duration::from_secs(86_400);

/// Deletes the old sent and dead mail of `nodes`, and their long-expired links (this node's
/// upkeep).
pub async fn purge(store: &dyn Store, nodes: &NodeIds) -> Result<u64, StoreError> {
    let now = wall_millis();
    let before = Version::at_millis(now - millis_of(MAIL_KEPT));
    store
        .purge_mail(nodes, before, now - millis_of(LINKS_KEPT))
        .await
}

/// How long connecting, and each command of the conversation with the mail server, may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What writes mail to the outbox needs: where links point, and how to wake the sender.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub public_url: String,
    wake: Arc<Notify>,
}

impl Outbox {
    /// Tells this node's sender that a mail is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The host name of `public_url` (`https://cc.school.org:8443/x` is `cc.school.org`): what
/// the sender greets the mail server as, and the default sender's domain.
pub fn host_of(public_url: &str) -> &str {
    public_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("localhost")
}

/// The outbox of `settings` and the SMTP transport its sender uses.
pub fn outbox(
    settings: &MailSettings,
) -> Result<(Outbox, AsyncSmtpTransport<Tokio1Executor>), MailError> {
    let refused = |reason: String| MailError::SmtpUrl {
        url: crate::store::redact_url(&settings.smtp_url),
        reason,
    };
    let host = host_of(&settings.public_url).to_owned();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
        .map_err(|e| refused(e.to_string()))?
        .timeout(Some(SMTP_TIMEOUT))
        .hello_name(ClientId::Domain(host))
        .build();
    let outbox = Outbox {
        public_url: settings.public_url.clone(),
        wake: Arc::new(Notify::new()),
    };
    Ok((outbox, transport))
}
