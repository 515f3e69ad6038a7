//! Delivers the outbox: one mail at a time, each attempt a row. A mail the server refuses
//! for good (a 5xx answer: an unknown recipient) is dead at once, with the server's words;
//! any other failure is tried again later, the mail after a backoff of its own and the whole
//! queue after a pause that grows while the server keeps failing, so a stalled server costs
//! one timeout per pause rather than one per mail.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use uuid::Uuid;

use super::Outbox;
use crate::domain::hlc::{millis_of, wall_millis};
use crate::store::{MailOutcome, OutgoingMail, Store};

/// Attempts before a mail is given up (about four hours of backoff).
pub const MAX_ATTEMPTS: u32 = 12;
/// A node silent this long has its mail sent by another (heartbeats come every 5 minutes;
/// a restart or an upgrade takes far less).
pub const MAIL_LEASE: Duration = Duration::from_secs(15 * 60);
/// How often the outbox is read when nothing wakes the sender: for retries that came due
/// and mail taken over from a node gone.
const POLL: Duration = Duration::from_secs(10);
/// Mails read from the outbox at a time.
const BATCH: u32 = 100;
/// No attempt, whatever the server does, takes longer than this.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(60);
/// Reasons kept in the outbox are cut to this many characters.
const REASON_CHARS: usize = 500;

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Refused for good: sending it again would be refused again.
    Refused(String),
    /// Failed for now (no answer, a timeout, a 4xx answer).
    Failed(String),
}

/// Delivers the mail of this node's outbox until the server stops.
pub async fn run(
    outbox: Outbox,
    store: Arc<dyn Store>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
) {
    // Failures in a row: while the mail server keeps failing, the queue waits longer.
    let mut failing = 0u32;
    loop {
        let mut wait = POLL;
        match store.due_mail(MAIL_LEASE, wall_millis(), BATCH).await {
            Ok(due) => {
                let full = due.len() == BATCH as usize;
                for mail in due {
                    let attempt = attempt(&transport, &from, &mail).await;
                    let failed = matches!(attempt, Attempt::Failed(_));
                    record(store.as_ref(), &mail, attempt).await;
                    if failed {
                        failing += 1;
                        break;
                    }
                    failing = 0;
                }
                if failing > 0 {
                    let pause = backoff(Duration::from_secs(5), failing, Duration::from_secs(300));
                    tokio::time::sleep(pause).await;
                    continue;
                }
                if full {
                    wait = Duration::ZERO;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the mail outbox"),
        }
        tokio::select! {
            () = outbox.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn attempt(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    mail: &OutgoingMail,
) -> Attempt {
    let to: Mailbox = match mail.recipient.parse() {
        Ok(to) => to,
        Err(e) => return Attempt::Refused(format!("the address cannot be used: {e}")),
    };
    let message = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            mail.html_body.clone(),
        ));
    let message = match message {
        Ok(message) => message,
        Err(e) => return Attempt::Refused(format!("the mail cannot be written: {e}")),
    };
    match tokio::time::timeout(ATTEMPT_DEADLINE, transport.send(message)).await {
        Ok(Ok(_)) => Attempt::Delivered,
        Ok(Err(e)) if e.is_permanent() => Attempt::Refused(e.to_string()),
        Ok(Err(e)) => Attempt::Failed(e.to_string()),
        Err(_) => Attempt::Failed(format!(
            "no answer within {} seconds",
            ATTEMPT_DEADLINE.as_secs()
        )),
    }
}

/// Writes what the attempt came to; a failure that was the last allowed makes it dead.
async fn record(store: &dyn Store, mail: &OutgoingMail, attempt: Attempt) {
    let failures = mail.failures + 1;
    let reason: String = match &attempt {
        Attempt::Delivered => String::new(),
        Attempt::Refused(why) | Attempt::Failed(why) => why.chars().take(REASON_CHARS).collect(),
    };
    let outcome = match attempt {
        Attempt::Delivered => MailOutcome::Sent,
        Attempt::Refused(_) => MailOutcome::Dead { reason: &reason },
        Attempt::Failed(_) if failures >= MAX_ATTEMPTS => MailOutcome::Dead { reason: &reason },
        Attempt::Failed(_) => {
            let wait = backoff(Duration::from_secs(10), failures, Duration::from_secs(3600));
            MailOutcome::Failed {
                reason: &reason,
                retry_at_ms: wall_millis() + millis_of(wait),
            }
        }
    };
    log(mail.id, &outcome, failures);
    if let Err(e) = store.record_mail_attempt(mail.id, outcome).await {
        // Not recorded: the mail stays due and is tried again (a delivered one may then
        // arrive twice; a lost mail would be worse).
        tracing::warn!(mail = %mail.id, error = %e, "cannot record a mail attempt");
    }
}

fn log(mail: Uuid, outcome: &MailOutcome<'_>, attempt: u32) {
    match outcome {
        MailOutcome::Sent => tracing::info!(%mail, attempt, "mail sent"),
        MailOutcome::Failed { reason, .. } => {
            tracing::warn!(%mail, attempt, reason, "mail not sent; will try again")
        }
        MailOutcome::Dead { reason } => {
            tracing::error!(%mail, attempt, reason, "mail given up")
        }
    }
}

/// `base` doubled for every failure after the first, at most `cap`, then a quarter up or
/// down at random so that many waits do not end in the same instant.
fn backoff(base: Duration, failures: u32, cap: Duration) -> Duration {
    let doubled = base.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(cap).mul_f64(0.75 + rand::random::<f64>() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_a_quarter_of_jitter() {
        let base = Duration::from_secs(10);
        let cap = Duration::from_secs(3600);
        for (failures, middle) in [(1, 10.0), (2, 20.0), (4, 80.0), (12, 3600.0), (40, 3600.0)] {
            let wait = backoff(base, failures, cap).as_secs_f64();
            assert!(
                (middle * 0.75..=middle * 1.25).contains(&wait),
                "{failures} failures: {wait} s"
            );
        }
    }
}
