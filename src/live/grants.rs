//! Rights that open live connections rely on, and their revocation: a teacher's session
//! (ended by logging out, a password change, disabling the account or expiry) and a
//! teacher's pairing with a board (ended by unpairing).
//!
//! A connection holds a [`Grant`] for each right it uses; revoking the right wakes every
//! holder at once, so the connection closes or stops the feed that right allowed. It owns
//! only this bookkeeping; deciding *that* a right has ended is for the caller (an API call
//! on this node, or the store's answer when open sessions are checked again).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The open rights of one kind, by key.
pub struct Grants<K> {
    open: Mutex<HashMap<K, Arc<Right>>>,
}

/// One right, shared by its holders: whether it is revoked, and who to wake when it is.
/// (A `watch` channel did this before, at about 350 bytes a right for its eight wake lists;
/// this is about 60: every board's page holds one.)
#[derive(Default)]
struct Right {
    revoked: AtomicBool,
    woken: Notify,
}

impl<K> Default for Grants<K> {
    fn default() -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Grants<K> {
    /// A holder of `key`'s right. Once revoked, a right stays revoked for new holders too
    /// until [`Grants::restore`]: a connection that was authorised just before the right
    /// ended cannot slip in after it.
    pub fn hold(&self, key: K) -> Grant {
        let mut open = self.open.lock();
        Grant(open.entry(key).or_default().clone())
    }

    /// Ends the right: every holder is woken now.
    pub fn revoke(&self, key: &K) {
        let mut open = self.open.lock();
        let right = open.entry(key.clone()).or_default();
        // Set before waking: a holder woken (or about to wait) then sees it.
        right.revoked.store(true, Ordering::SeqCst);
        right.woken.notify_waiters();
    }

    /// The right was given again (a board paired anew): later holders start unrevoked.
    pub fn restore(&self, key: &K) {
        let mut open = self.open.lock();
        if open
            .get(key)
            .is_some_and(|r| r.revoked.load(Ordering::SeqCst))
        {
            open.remove(key);
        }
    }

    /// The keys someone holds and that are not revoked yet.
    pub fn held(&self) -> Vec<K> {
        let open = self.open.lock();
        open.iter()
            .filter(|(_, r)| !r.revoked.load(Ordering::SeqCst) && Arc::strong_count(r) > 1)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Forgets rights nobody holds any more.
    pub fn prune(&self) {
        let mut open = self.open.lock();
        open.retain(|_, r| Arc::strong_count(r) > 1);
    }
}

/// One holder's view of a right.
#[derive(Clone)]
pub struct Grant(Arc<Right>);

impl Grant {
    pub fn is_revoked(&self) -> bool {
        self.0.revoked.load(Ordering::SeqCst)
    }

    /// Resolves when the right is revoked (never, while it lasts).
    pub async fn revoked(&mut self) {
        let woken = self.0.woken.notified();
        let mut woken = std::pin::pin!(woken);
        // Registered before the flag is read: a revocation between the two still wakes it.
        woken.as_mut().enable();
        if self.is_revoked() {
            return;
        }
        woken.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoking_wakes_every_holder_and_refuses_late_ones_until_restored() {
        let grants = Grants::default();
        let mut a = grants.hold(1);
        let b = grants.hold(1);
        let other = grants.hold(2);
        assert_eq!(grants.held().len(), 2);
        grants.revoke(&1);
        a.revoked().await;
        assert!(b.is_revoked() && !other.is_revoked());
        assert!(grants.hold(1).is_revoked(), "a late holder is not let in");
        assert_eq!(grants.held(), vec![2]);
        grants.restore(&1);
        assert!(!grants.hold(1).is_revoked());
    }

    #[test]
    fn rights_nobody_holds_are_forgotten() {
        let grants = Grants::default();
        let kept = grants.hold("kept");
        drop(grants.hold("dropped"));
        grants.prune();
        assert_eq!(grants.held(), vec!["kept"]);
        drop(kept);
    }
}
