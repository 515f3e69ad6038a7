//! Room per teacher on this node for files on their way in or out. Bytes that will become
//! new media count against the teacher's media quota while they arrive, so parallel uploads
//! and the files unpacked from a lesson file stop at the first byte over it rather than after
//! filling the disk; other temporary files (a lesson file being received, one being written
//! for download) count against a bound of their own, so no number of held connections
//! fills the disk either. It also gives each teacher one turn at a time for checking the
//! quota and storing, so two finishing uploads cannot both fit into the same free bytes.
//!
//! It also paces uploads: every file a teacher uploads (or unpacks from a lesson file),
//! new or not, writes rows, so each spends one of [`UPLOADS`].
//!
//! The room is this node's: in a cluster, uploads to two nodes at the same instant may each
//! fill what is free (docs/security.md). It knows nothing of HTTP and never holds its lock
//! across an await.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, RateLimiter};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::MediaError;
use crate::budget::{quota, Budget, Limited};

/// Files one teacher may upload: a lesson file's 500 at once, then one every 5 s.
pub const UPLOADS: Budget = Budget {
    burst: 500,
    every: Duration::from_secs(5),
};

pub struct Room {
    teachers: Mutex<HashMap<Uuid, Held>>,
    /// Bytes of temporary files (not new media) one teacher may have on this node.
    temporary_most: u64,
    uploads: DefaultKeyedRateLimiter<Uuid>,
}

#[derive(Default)]
struct Held {
    /// Bytes on their way to becoming new media.
    pending: u64,
    temporary: u64,
    claims: usize,
    turn: Arc<tokio::sync::Mutex<()>>,
}

enum Counted {
    /// Against the media quota: `used` is what the teacher stored when the claim began.
    Media {
        used: u64,
        quota: u64,
    },
    Temporary,
}

/// Bytes one file holds of its teacher's room; given back when dropped.
pub struct Claim {
    room: Arc<Room>,
    owner: Uuid,
    counted: Counted,
    bytes: u64,
}

impl Room {
    pub fn new(temporary_most: u64) -> Arc<Self> {
        Arc::new(Room {
            teachers: Mutex::new(HashMap::new()),
            temporary_most,
            uploads: RateLimiter::keyed(quota(UPLOADS)),
        })
    }

    /// Spends `files` uploads of `owner`'s [`UPLOADS`], or says when to try again.
    pub fn pace(&self, owner: Uuid, files: usize) -> Result<(), MediaError> {
        let Some(n) = NonZeroU32::new(u32::try_from(files).unwrap_or(u32::MAX).min(UPLOADS.burst))
        else {
            return Ok(());
        };
        match self.uploads.check_key_n(&owner, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(MediaError::RateLimited {
                retry_after: Limited::from(not_until)
                    .counted("media_uploads")
                    .retry_after,
            }),
            // Not reached: `n` is clamped to the burst.
            Err(_) => Err(MediaError::RateLimited {
                retry_after: UPLOADS.every,
            }),
        }
    }

    /// Forgets the pace of teachers who went quiet.
    pub fn prune(&self) {
        self.uploads.retain_recent();
    }

    /// Room for a file that becomes new media of `owner`, who stores `used` bytes of a
    /// `quota`.
    pub fn media(self: &Arc<Self>, owner: Uuid, used: u64, quota: u64) -> Claim {
        self.claim(owner, Counted::Media { used, quota })
    }

    /// Room for a temporary file of `owner` that is not media.
    pub fn temporary(self: &Arc<Self>, owner: Uuid) -> Claim {
        self.claim(owner, Counted::Temporary)
    }

    fn claim(self: &Arc<Self>, owner: Uuid, counted: Counted) -> Claim {
        self.lock().entry(owner).or_default().claims += 1;
        Claim {
            room: self.clone(),
            owner,
            counted,
            bytes: 0,
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<Uuid, Held>> {
        self.teachers.lock()
    }

    /// Bytes held on this node by `owner`'s files on their way: new media, and the rest.
    #[cfg(test)]
    pub fn held(&self, owner: Uuid) -> (u64, u64) {
        self.lock()
            .get(&owner)
            .map_or((0, 0), |h| (h.pending, h.temporary))
    }
}

impl Claim {
    /// Takes `n` more bytes, or says why they do not fit (and takes nothing).
    pub fn take(&mut self, n: u64) -> Result<(), MediaError> {
        let mut teachers = self.room.lock();
        let held = teachers
            .get_mut(&self.owner)
            .expect("a claim keeps its teacher's entry");
        match self.counted {
            Counted::Media { used, quota } => {
                if used + held.pending + n > quota {
                    return Err(MediaError::Full {
                        used: used + held.pending - self.bytes,
                        limit: quota,
                    });
                }
                held.pending += n;
            }
            Counted::Temporary => {
                if held.temporary + n > self.room.temporary_most {
                    return Err(MediaError::Busy);
                }
                held.temporary += n;
            }
        }
        self.bytes += n;
        Ok(())
    }

    /// Holds at least `total` bytes in all, taking what is missing.
    pub fn ensure(&mut self, total: u64) -> Result<(), MediaError> {
        match total.checked_sub(self.bytes) {
            Some(more) if more > 0 => self.take(more),
            _ => Ok(()),
        }
    }

    /// The teacher's turn to check the quota and store: one at a time per teacher.
    pub async fn turn(&self) -> OwnedMutexGuard<()> {
        let turn = self.room.lock()[&self.owner].turn.clone();
        turn.lock_owned().await
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut teachers = self.room.lock();
        if let Some(held) = teachers.get_mut(&self.owner) {
            match self.counted {
                Counted::Media { .. } => held.pending -= self.bytes,
                Counted::Temporary => held.temporary -= self.bytes,
            }
            held.claims -= 1;
            if held.claims == 0 {
                teachers.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_one_teacher_share_the_free_bytes_and_give_them_back() {
        let room = Room::new(100);
        let teacher = Uuid::now_v7();
        let mut a = room.media(teacher, 40, 100);
        let mut b = room.media(teacher, 40, 100);
        a.take(30).unwrap();
        assert!(matches!(
            b.take(31),
            Err(MediaError::Full {
                used: 70,
                limit: 100
            })
        ));
        b.take(30).unwrap();
        assert_eq!(room.held(teacher), (60, 0));
        drop(a);
        assert_eq!(room.held(teacher), (30, 0));
        // Another teacher's files take nothing of this one's room.
        room.media(Uuid::now_v7(), 0, 100).take(100).unwrap();
        drop(b);
        assert_eq!(room.held(teacher), (0, 0));
        assert!(room.lock().is_empty());
    }

    #[test]
    fn temporary_files_have_a_bound_of_their_own() {
        let room = Room::new(10);
        let teacher = Uuid::now_v7();
        let mut file = room.temporary(teacher);
        file.take(10).unwrap();
        assert!(matches!(file.take(1), Err(MediaError::Busy)));
        assert!(matches!(
            room.temporary(teacher).take(1),
            Err(MediaError::Busy)
        ));
        room.media(teacher, 0, 5).take(5).unwrap();
    }
}
