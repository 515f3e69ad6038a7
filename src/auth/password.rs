//! Password hashing with argon2id, kept off the async runtime and bounded in concurrency and
//! memory.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of one core. A storm of logins at 8:30
//! must queue here rather than occupy every runtime thread, and a request that would queue
//! past a deadline is refused (the HTTP layer answers 503 with `Retry-After`) instead of
//! piling up behind the others. The 19 MiB are one buffer per hashing slot, allocated once
//! and reused: allocating them per hash left hundreds of MiB resident after a registration
//! storm (the allocator keeps freed blocks), which no idle server gave back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
    /// How many hashes run at once.
    slots: usize,
    /// Callers waiting for a slot now (for the metrics).
    waiting: Arc<AtomicUsize>,
    max_wait: Duration,
    /// Argon2 working memory: at most one buffer per permit, reused by every hash.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl PasswordHasher {
    /// `concurrency` hashes run at once (about one per core); a caller waits at most `max_wait`
    /// for a slot.
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            slots: concurrency.max(1),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_wait,
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Callers waiting for a slot, and hashes running now.
    pub fn queue(&self) -> HashQueue {
        HashQueue {
            waiting: self.waiting.load(Ordering::Relaxed),
            running: self.slots.saturating_sub(self.permits.available_permits()),
        }
    }

    /// How long a refused caller should wait before trying again.
    pub fn retry_after(&self) -> Duration {
        self.max_wait.max(Duration::from_secs(1))
    }

    /// An argon2id PHC string with the OWASP-recommended parameters (m=19 MiB, t=2, p=1).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |memory| hash_now(&password, memory)).await?
    }

    /// Checks `password` against a stored PHC string. With `None` (an unknown account) it
    /// checks against a fixed hash, so the answer takes as long as for a real account and
    /// does not reveal which addresses are registered.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        self.run(move |memory| {
            // The same argon2 work either way: skipping it for an unknown address made a
            // login for it answer in 3 ms instead of 45 ms, which told who has an account.
            let known = phc.is_some();
            let phc = match &phc {
                Some(phc) => phc.as_str(),
                None => dummy_hash(memory),
            };
            Ok(verify_now(&password, phc, memory)? && known)
        })
        .await?
    }

    /// Runs `work` on a blocking thread once a slot is free, with that slot's memory.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let waiting = Waiting::new(&self.waiting);
        let permit = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        drop(waiting);
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            let take = || pool.lock().pop();
            let mut memory = take().unwrap_or_default();
            let done = work(&mut memory);
            pool.lock().push(memory);
            done
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

/// What [`PasswordHasher::queue`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashQueue {
    pub waiting: usize,
    pub running: usize,
}

/// Counts a caller as waiting for a slot until dropped (it got one, gave up, or was
/// cancelled with its request).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The blocks `argon` needs, from `memory` (grown once to fit).
fn blocks<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::new());
    }
    &mut memory[..needed]
}

fn failed(e: impl std::fmt::Display) -> HashError {
    HashError::Failed(e.to_string())
}

/// The argon2 output of `len` bytes for `password` and `salt`, in the caller's memory.
fn compute(
    argon: &Argon2<'_>,
    password: &str,
    salt: Salt<'_>,
    len: usize,
    memory: &mut Vec<Block>,
) -> Result<Output, HashError> {
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(failed)?;
    let blocks = blocks(memory, argon.params());
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), raw_salt, out, blocks)
            .map_err(|_| argon2::password_hash::Error::Password)
    })
    .map_err(failed)
}

/// An argon2id PHC string with the default (OWASP) parameters and a fresh salt.
fn hash_now(password: &str, memory: &mut Vec<Block>) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let argon = Argon2::default();
    let params = argon.params().clone();
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let hash = compute(&argon, password, salt.as_salt(), len, memory)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string, with whatever parameters it was hashed with.
fn verify_now(password: &str, phc: &str, memory: &mut Vec<Block>) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(failed)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(failed("the stored hash has no salt or no output"));
    };
    let params = Params::try_from(&parsed).map_err(failed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(failed)?;
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .map_err(failed)?;
    let argon = Argon2::new(algorithm, version, params);
    let computed = compute(&argon, password, salt, expected.len(), memory)?;
    // `Output` compares in constant time.
    Ok(computed == expected)
}

const DUMMY_PASSWORD: &str = "classcast timing-equaliser";

/// The hash unknown addresses are checked against, made once with the caller's memory.
fn dummy_hash(memory: &mut Vec<Block>) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_now(DUMMY_PASSWORD, memory).expect("argon2 hashes a constant password")
    })
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
