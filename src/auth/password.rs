//! Password hashing with argon2id, kept off the async runtime and bounded in concurrency.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of one core. A storm of logins at 8:30
//! must queue here rather than occupy every runtime thread, and a request that would queue
//! past a deadline is refused (the HTTP layer answers 503 with `Retry-After`) instead of
//! piling up behind the others.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for longer than the deadline.
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    max_wait: Duration,
}

impl PasswordHasher {
    /// `concurrency` hashes run at once (about one per core); a caller waits at most `max_wait`
    /// for a slot.
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            max_wait,
        }
    }

    /// How long a refused caller should wait before trying again.
    pub fn retry_after(&self) -> Duration {
        self.max_wait.max(Duration::from_secs(1))
    }

    /// An argon2id PHC string with the OWASP-recommended parameters (m=19 MiB, t=2, p=1).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_now(&password)).await?
    }

    /// Checks `password` against a stored PHC string. With `None` (an unknown account) it
    /// checks against a fixed hash, so the answer takes as long as for a real account and
    /// does not reveal which addresses are registered.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        self.run(move || {
            // The same argon2 work either way: skipping it for an unknown address made a
            // login for it answer in 3 ms instead of 45 ms, which told who has an account.
            let known = phc.is_some();
            let phc = phc.as_deref().unwrap_or_else(|| dummy_hash());
            let parsed = PasswordHash::new(phc).map_err(|e| HashError::Failed(e.to_string()))?;
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(matches && known)
        })
        .await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work()
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

const DUMMY_PASSWORD: &str = "classcast timing-equaliser";

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now(DUMMY_PASSWORD).expect("argon2 hashes a constant password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = PasswordHasher::new(1, Duration::from_secs(30));
        let phc = hasher.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher
            .verify("correct horse".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("wrong horse".into(), Some(phc))
            .await
            .unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
        assert!(
            !hasher.verify(DUMMY_PASSWORD.into(), None).await.unwrap(),
            "the dummy hash's own password opens no unknown account"
        );
    }

    #[tokio::test]
    async fn a_caller_waiting_past_the_deadline_is_refused() {
        let hasher = PasswordHasher::new(1, Duration::from_millis(1));
        let held = hasher.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            hasher.hash("x".repeat(8)).await,
            Err(HashError::Busy)
        ));
        drop(held);
        assert!(hasher.hash("x".repeat(8)).await.is_ok());
    }
}
