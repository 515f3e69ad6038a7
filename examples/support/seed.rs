//! Rows a benchmark writes straight into the store before it starts the server.

use classcast::domain::account::Email;
use classcast::store::{NewSession, Store};
use uuid::Uuid;

/// Teacher `n` (`t{n}@bench.org`, password hash `hash`) with a session that never expires:
/// its id and its bearer token.
pub async fn teacher(store: &dyn Store, n: usize, hash: &str) -> (Uuid, String) {
    let account = store
        .create_account(
            &Email::parse(&format!("t{n}@bench.org")).unwrap(),
            &format!("T{n}"),
            hash,
            false,
        )
        .await
        .unwrap();
    let token = classcast::auth::token::generate();
    store
        .create_session(NewSession {
            id: Uuid::now_v7(),
            token_hash: classcast::auth::token::hash(&token),
            account_id: account.id,
            expires_at_ms: i64::MAX,
            family: None,
        })
        .await
        .unwrap();
    (account.id, token)
}
