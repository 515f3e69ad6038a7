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

use tokio::sync::watch;

/// The open rights of one kind, by key.
pub struct Grants<K> {
    open: Mutex<HashMap<K, watch::Sender<bool>>>,
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
        Grant(
            open.entry(key)
                .or_insert_with(|| watch::channel(false).0)
                .subscribe(),
        )
    }

    /// Ends the right: every holder is woken now.
    pub fn revoke(&self, key: &K) {
        let mut open = self.open.lock();
        open.entry(key.clone())
            .or_insert_with(|| watch::channel(false).0)
            .send_replace(true);
    }

    /// The right was given again (a board paired anew): later holders start unrevoked.
    pub fn restore(&self, key: &K) {
        let mut open = self.open.lock();
        if open.get(key).is_some_and(|s| *s.borrow()) {
            open.remove(key);
        }
    }

    /// The keys someone holds and that are not revoked yet.
    pub fn held(&self) -> Vec<K> {
        let open = self.open.lock();
        open.iter()
            .filter(|(_, s)| !*s.borrow() && s.receiver_count() > 0)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Forgets rights nobody holds any more.
    pub fn prune(&self) {
        let mut open = self.open.lock();
        open.retain(|_, s| s.receiver_count() > 0);
    }
}

/// One holder's view of a right.
#[derive(Clone)]
pub struct Grant(watch::Receiver<bool>);

impl Grant {
    pub fn is_revoked(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the right is revoked (never, while it lasts).
    pub async fn revoked(&mut self) {
        if self.0.wait_for(|revoked| *revoked).await.is_err() {
            std::future::pending::<()>().await;
        }
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
