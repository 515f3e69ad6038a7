//! A bounded in-memory cache of values read from the store, for what a node may keep because
//! the rows behind it are never updated (sessions, lesson revisions; docs/architecture.md
//! section 3, rule 1).
//!
//! It holds at most a number of entries and of bytes, evicting the least recently used, and
//! an entry is served at most for its time to live. A read that races a change cannot leave
//! a stale value behind: take a [`Ticket`] before reading the store and hand it to
//! [`Cache::put`], which keeps nothing when the cache was cleared or an entry forgotten since.
//! It knows nothing of what it holds, of the store or of HTTP.

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;

/// How much a cache may hold, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub entries: NonZeroUsize,
    pub bytes: usize,
    /// How long an entry is served; `None`: until evicted (values that never change).
    pub ttl: Option<Duration>,
}

pub struct Cache<K: Hash + Eq, V> {
    bounds: Bounds,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K: Hash + Eq, V> {
    entries: LruCache<K, Entry<V>>,
    bytes: usize,
    /// Grows with every change that voids entries, so reads begun before it keep nothing.
    generation: u64,
}

struct Entry<V> {
    value: V,
    bytes: usize,
    at: Instant,
}

/// Taken before reading what is to be cached (see [`Cache::put`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
                generation: 0,
            }),
        }
    }

    /// The value of `key`, if it is held and still within its time to live.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let mut inner = self.inner.lock();
        let entry = inner.entries.get(key)?;
        if self.bounds.ttl.is_some_and(|ttl| entry.at.elapsed() >= ttl) {
            let gone = inner.entries.pop(key).map_or(0, |e| e.bytes);
            inner.bytes -= gone;
            return None;
        }
        Some(entry.value.clone())
    }

    /// Where the cache stands before a read of the store whose result is to be kept.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.inner.lock().generation)
    }

    /// Keeps `value` (about `bytes` large) for `key`, unless something was forgotten or
    /// cleared since `ticket` was taken: the value may then predate that change. A value
    /// larger than the whole cache is not kept.
    pub fn put(&self, ticket: Ticket, key: K, value: V, bytes: usize) {
        if bytes > self.bounds.bytes {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.generation != ticket.0 {
            return;
        }
        let entry = Entry {
            value,
            bytes,
            at: Instant::now(),
        };
        if let Some(old) = inner.entries.put(key, entry) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.entries.len() > self.bounds.entries.get() || inner.bytes > self.bounds.bytes {
            match inner.entries.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.bytes,
                None => break,
            }
        }
    }

    /// Drops `key`, and keeps nothing read before now.
    pub fn forget(&self, key: &K) {
        let mut inner = self.inner.lock();
        inner.generation += 1;
        if let Some(old) = inner.entries.pop(key) {
            inner.bytes -= old.bytes;
        }
    }

    /// Drops every entry, and keeps nothing read before now.
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.generation += 1;
        inner.entries.clear();
        inner.bytes = 0;
    }

    /// Entries and bytes held.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.entries.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: usize, bytes: usize, ttl: Option<Duration>) -> Cache<u32, &'static str> {
        Cache::new(Bounds {
            entries: NonZeroUsize::new(entries).unwrap(),
            bytes,
            ttl,
        })
    }

    #[test]
    fn holds_at_most_its_entries_and_bytes_evicting_the_least_recently_used() {
        let c = cache(2, 100, None);
        c.put(c.ticket(), 1, "one", 10);
        c.put(c.ticket(), 2, "two", 10);
        assert_eq!(c.get(&1), Some("one"));
        c.put(c.ticket(), 3, "three", 10);
        assert_eq!(
            (c.get(&1), c.get(&2), c.get(&3)),
            (Some("one"), None, Some("three"))
        );
        c.put(c.ticket(), 4, "four", 91);
        assert_eq!(c.size(), (1, 91), "bytes bound: both others went");
        c.put(c.ticket(), 5, "huge", 101);
        assert_eq!(c.get(&5), None);
        assert_eq!(c.get(&4), Some("four"), "a value too large evicts nothing");
        c.put(c.ticket(), 4, "four again", 5);
        assert_eq!(c.size(), (1, 5), "a replaced entry gives its bytes back");
    }

    #[test]
    fn a_read_begun_before_a_change_keeps_nothing() {
        let c = cache(10, 100, None);
        let before = c.ticket();
        c.forget(&7);
        c.put(before, 1, "stale", 1);
        assert_eq!(c.get(&1), None);
        c.put(c.ticket(), 1, "fresh", 1);
        let before = c.ticket();
        c.clear();
        assert_eq!(c.get(&1), None);
        c.put(before, 2, "stale", 1);
        assert_eq!(c.size(), (0, 0));
    }

    #[test]
    fn entries_are_served_only_within_their_time_to_live() {
        let c = cache(10, 100, Some(Duration::ZERO));
        c.put(c.ticket(), 1, "one", 10);
        assert_eq!(c.get(&1), None);
        assert_eq!(c.size(), (0, 0), "an expired entry is dropped when found");
        let c = cache(10, 100, Some(Duration::from_secs(3600)));
        c.put(c.ticket(), 1, "one", 10);
        assert_eq!(c.get(&1), Some("one"));
    }
}
