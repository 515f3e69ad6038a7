//! The outbox and mailed links, on both backends.

use std::time::Duration;

use classcast::domain::hlc::{wall_millis, Version};
use classcast::domain::node::Node;
use classcast::store::{
    MailOutcome, MailState, NewAccountToken, NewMail, NodeIds, Store, StoreError, TokenPurpose,
    TokenUse,
};
use uuid::Uuid;

use super::{account, Db};

const LEASE: Duration = Duration::from_secs(15 * 60);

fn mail(to: &str) -> NewMail<'_> {
    NewMail {
        recipient: to,
        subject: "Subject",
        text_body: "text",
        html_body: "<p>html</p>",
    }
}

async fn due(store: &dyn Store, now: i64) -> Vec<(Uuid, u32)> {
    store
        .due_mail(LEASE, now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.failures))
        .collect()
}

pub(super) async fn the_outbox_retries_after_failures_gives_up_and_sends_again_on_request(
    store: &dyn Store,
) {
    store.heartbeat().await.unwrap();
    let first = store.queue_mail(mail("a@school.org"), None).await.unwrap();
    let second = store.queue_mail(mail("b@school.org"), None).await.unwrap();
    let now = wall_millis();
    assert_eq!(
        due(store, now).await,
        [(first, 0), (second, 0)],
        "oldest first"
    );
    assert_eq!(store.mail_counts().await.unwrap(), (2, 0));

    let retry_at_ms = now + 60_000;
    let failed = MailOutcome::Failed {
        reason: "421 try later",
        retry_at_ms,
    };
    store.record_mail_attempt(first, failed).await.unwrap();
    assert_eq!(due(store, now).await, [(second, 0)], "waits for its retry");
    assert_eq!(due(store, retry_at_ms).await, [(first, 1), (second, 0)]);

    store
        .record_mail_attempt(second, MailOutcome::Sent)
        .await
        .unwrap();
    let dead = MailOutcome::Dead {
        reason: "550 no such user",
    };
    store.record_mail_attempt(first, dead).await.unwrap();
    assert!(
        due(store, i64::MAX).await.is_empty(),
        "sent and dead mail is done"
    );
    assert_eq!(
        store.mail_counts().await.unwrap(),
        (0, 1),
        "none pending, one dead"
    );

    let records = store.mail_records().await.unwrap();
    let states: Vec<_> = records
        .iter()
        .map(|r| (r.id, r.state, r.failures, r.reason.as_deref()))
        .collect();
    assert_eq!(
        states,
        [
            (second, MailState::Sent, 0, None),
            (first, MailState::Dead, 1, Some("550 no such user")),
        ],
        "newest first"
    );

    assert_eq!(store.retry_mail(first).await.unwrap(), MailState::Dead);
    assert_eq!(
        due(store, now).await,
        [(first, 0)],
        "a retry starts afresh, at once"
    );
    assert_eq!(store.mail_counts().await.unwrap(), (1, 0));
    assert_eq!(store.retry_mail(second).await.unwrap(), MailState::Sent);
    assert_eq!(
        due(store, now).await,
        [(first, 0)],
        "a sent mail is not sent again"
    );
    assert!(matches!(
        store.retry_mail(Uuid::now_v7()).await,
        Err(StoreError::NotFound)
    ));
}

pub(super) async fn a_mailed_link_opens_its_account_once_and_only_for_its_purpose(
    store: &dyn Store,
) {
    let id = account(store, "teacher@school.org").await;
    let now = wall_millis();
    let token = NewAccountToken {
        account: id,
        purpose: TokenPurpose::Reset,
        token_hash: "hash-of-the-link".into(),
        expires_at_ms: now + 1_000,
    };
    store
        .queue_mail(mail("teacher@school.org"), Some(token))
        .await
        .unwrap();
    let open = |purpose, at| store.account_token("hash-of-the-link", purpose, at);
    assert!(open(TokenPurpose::Confirm, now).await.unwrap().is_none());
    assert!(
        open(TokenPurpose::Reset, now + 1_000)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let (link, found) = open(TokenPurpose::Reset, now).await.unwrap().unwrap();
    assert_eq!(found.id, id);

    let how = TokenUse::Reset {
        password_hash: "$argon2id$new",
    };
    assert!(store.use_account_token(link, id, how).await.unwrap());
    assert!(
        !store.use_account_token(link, id, how).await.unwrap(),
        "once"
    );
    assert!(open(TokenPurpose::Reset, now).await.unwrap().is_none());
    let record = store
        .login_record("teacher@school.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.password_hash, "$argon2id$new");

    // A confirmation lets a waiting account sign in.
    let waiting = store
        .create_account(
            &classcast::domain::account::Email::parse("new@school.org").unwrap(),
            "New",
            "$argon2id$fake",
            true,
        )
        .await
        .unwrap();
    let token = NewAccountToken {
        account: waiting.id,
        purpose: TokenPurpose::Confirm,
        token_hash: "confirm-link".into(),
        expires_at_ms: now + 60_000,
    };
    store
        .queue_mail(mail("new@school.org"), Some(token))
        .await
        .unwrap();
    let (link, found) = store
        .account_token("confirm-link", TokenPurpose::Confirm, now)
        .await
        .unwrap()
        .unwrap();
    assert!(found.pending);
    assert!(store
        .use_account_token(link, waiting.id, TokenUse::Confirm)
        .await
        .unwrap());
    let confirmed = store.account(waiting.id).await.unwrap();
    assert!(!confirmed.pending && !confirmed.disabled);
}

pub(super) async fn the_mail_of_a_node_gone_past_its_lease_is_sent_by_one_live_node_and_purged(
    db: Db,
) {
    let mut ids = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    ids.sort_by_key(|id| id.to_string());
    let [low, high, gone] = ids.map(Node::new);
    let gone_store = db.open(&gone).await;
    let orphan = gone_store
        .queue_mail(mail("a@school.org"), None)
        .await
        .unwrap();
    db.last_heard_two_hours_ago(gone.id).await;
    let (low_store, high_store) = (db.open(&low).await, db.open(&high).await);
    low_store.heartbeat().await.unwrap();
    high_store.heartbeat().await.unwrap();
    let own = high_store
        .queue_mail(mail("b@school.org"), None)
        .await
        .unwrap();

    let now = wall_millis();
    assert_eq!(
        due(high_store.as_ref(), now).await,
        [(own, 0)],
        "its own only"
    );
    assert_eq!(
        due(low_store.as_ref(), now).await,
        [(orphan, 0)],
        "the lowest live node takes over the gone node's mail, not a live node's"
    );

    // Sent mail goes with its attempts once old enough; pending mail stays.
    low_store
        .record_mail_attempt(orphan, MailOutcome::Sent)
        .await
        .unwrap();
    let nodes = NodeIds::new(low.id, [gone.id]);
    let purged = low_store
        .purge_mail(&nodes, Version(i64::MAX), now)
        .await
        .unwrap();
    assert_eq!(purged, 1, "the sent mail");
    let left: Vec<_> = low_store
        .mail_records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [own]);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM mail_attempt").await,
        0,
        "its attempt went with it"
    );
}
