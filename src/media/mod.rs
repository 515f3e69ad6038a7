//! Uploaded pictures and videos: what may be stored (the kind told from the bytes, a size
//! limit per file, a quota per teacher), storing an upload as content-addressed chunks, and
//! which bytes a `Range` asks for. Plain Rust over the [`Store`]; it knows nothing of HTTP.
//!
//! An upload is written to a temporary file in the data directory while its hash is
//! computed, so memory stays flat whatever the size, and nothing reaches the store until the
//! whole file has arrived and passed every check: a refused or interrupted upload leaves
//! nothing behind but a file that is removed at once. Each such file holds bytes of its
//! teacher's [`room::Room`] while it exists.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

use crate::domain::hlc::{millis_of, wall_millis, Version};
use crate::domain::media::{MediaKind, SNIFF_BYTES};
use crate::domain::node::NodeIds;
use crate::store::{Media, Preview, Store, StoreError, MEDIA_CHUNK, MEDIA_FILE_OVERHEAD};

pub mod preview;
pub mod room;

pub use room::{Claim, Room};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("media storage is full: {used} of {limit} bytes")]
    Full { used: u64, limit: u64 },
    /// The teacher's other files on their way take the room temporary files may have.
    #[error("too many files of this teacher on their way at once")]
    Busy,
    #[error("too many uploads")]
    RateLimited { retry_after: Duration },
    #[error("not a picture or video classcast shows")]
    Unsupported,
    #[error("the upload was interrupted")]
    Interrupted,
    #[error("cannot write the upload: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The data directory's folder for files on their way in or out.
pub const UPLOADS: &str = "uploads";

/// What media is given at start (from the settings `data_dir`, `media_max_mib` and
/// `media_storage_mib`): where files on their way are kept, and what one upload and one
/// lesson file may be.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub uploads: PathBuf,
    pub upload: MediaLimits,
    pub lesson_file: MediaLimits,
}

impl MediaSettings {
    pub fn new(data_dir: &std::path::Path, max_bytes: u64, quota_bytes: u64) -> Self {
        Self {
            uploads: data_dir.join(UPLOADS),
            upload: MediaLimits {
                max_bytes,
                quota_bytes,
            },
            // At most a teacher's whole media quota, plus its lesson.
            lesson_file: MediaLimits {
                max_bytes: quota_bytes.saturating_add(64 << 20),
                quota_bytes: u64::MAX,
            },
        }
    }
}

/// What one teacher may upload.
#[derive(Debug, Clone, Copy)]
pub struct MediaLimits {
    /// Bytes per file.
    pub max_bytes: u64,
    /// Bytes of media per teacher, each file they uploaded counted once.
    pub quota_bytes: u64,
}

/// An upload on its way in.
pub struct Upload {
    path: PathBuf,
    file: tokio::fs::File,
    hash: Sha256,
    size: u64,
    head: Vec<u8>,
    limits: MediaLimits,
    claim: Claim,
    /// What the teacher stored and could store when the file stopped fitting their quota:
    /// from then on it is only hashed (a file they hold already costs nothing), not kept.
    over: Option<(u64, u64)>,
    /// Whether a file that stops fitting is still read to its end (an upload) or refused at
    /// once (a file unpacked from a lesson file, which the teacher does not hold yet).
    hash_past_quota: bool,
}

impl Upload {
    /// Starts an upload into a temporary file under `dir` whose bytes `claim` takes;
    /// `announced` is the size the client said it sends, if it did (refused at once when over
    /// the limit per file).
    pub async fn begin(
        dir: &Path,
        limits: MediaLimits,
        claim: Claim,
        announced: Option<u64>,
    ) -> Result<Upload, MediaError> {
        if announced.is_some_and(|size| size > limits.max_bytes) {
            return Err(too_large(limits));
        }
        let mut upload = Self::create(dir, limits, claim)?;
        upload.hash_past_quota = true;
        // Room for the whole file at once, so parallel uploads each fit whole or not at all
        // rather than all running out part-way.
        if let Some(size) = announced {
            upload.reserve(size)?;
        }
        Ok(upload)
    }

    /// Starts an upload whose size is not announced (creating a file is quick enough not to
    /// be worth a thread of its own).
    pub fn create(dir: &Path, limits: MediaLimits, claim: Claim) -> Result<Upload, MediaError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.part", Uuid::now_v7()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Upload {
            path,
            file: tokio::fs::File::from_std(file),
            hash: Sha256::new(),
            size: 0,
            head: Vec::with_capacity(SNIFF_BYTES),
            limits,
            claim,
            over: None,
            hash_past_quota: false,
        })
    }

    /// Takes the next bytes of the file.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<(), MediaError> {
        if self.count(bytes)? {
            self.file.write_all(bytes).await?;
        }
        Ok(())
    }

    /// Takes the whole file from `reader`, on a thread that may block (a lesson file being
    /// unpacked, say).
    pub fn copy_from(&mut self, reader: &mut impl Read) -> Result<(), MediaError> {
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                return Ok(());
            }
            if self.count(&buffer[..n])? {
                file.write_all(&buffer[..n])?;
            }
        }
    }

    /// Counts the next bytes; whether they are to be written.
    fn count(&mut self, bytes: &[u8]) -> Result<bool, MediaError> {
        if self.size + bytes.len() as u64 > self.limits.max_bytes {
            return Err(too_large(self.limits));
        }
        self.reserve(self.size + bytes.len() as u64)?;
        self.size += bytes.len() as u64;
        let wanted = SNIFF_BYTES.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..wanted]);
        self.hash.update(bytes);
        Ok(self.over.is_none())
    }

    /// Makes the file's claim hold `total` bytes; past the quota, an upload goes on being
    /// read but no longer kept.
    fn reserve(&mut self, total: u64) -> Result<(), MediaError> {
        if self.over.is_some() {
            return Ok(());
        }
        match self.claim.ensure(total) {
            Err(MediaError::Full { used, limit }) if self.hash_past_quota => {
                self.over = Some((used, limit));
                Ok(())
            }
            other => other,
        }
    }

    /// The id the file will have: the SHA-256 of what arrived so far, lower-case hex.
    pub fn id(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }

    /// The kind told from the bytes, if classcast shows it.
    pub fn kind(&self) -> Option<MediaKind> {
        MediaKind::detect(&self.head)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file that arrived, read from its start, for whoever reads it rather than storing
    /// it as media (its name is gone: it disappears when closed).
    pub async fn into_file(mut self) -> Result<std::fs::File, MediaError> {
        self.file.flush().await?;
        Ok(std::fs::File::open(&self.path)?)
    }

    /// Checks the whole file (its kind, and the uploader's quota: a file they uploaded
    /// before costs nothing) and stores it, once: identical files share their chunks.
    pub async fn finish(self, store: &dyn Store, account: Uuid) -> Result<Media, MediaError> {
        let mut stored = finish_all(vec![self], store, account).await?;
        Ok(stored.pop().expect("one file in, one out"))
    }

    /// Stores the file; one that was not kept whole (past the quota) only when the store
    /// holds it already.
    async fn store(mut self, store: &dyn Store, account: Uuid) -> Result<Media, MediaError> {
        let kind = self.kind().ok_or(MediaError::Unsupported)?;
        let chunks = u32::try_from(self.size.div_ceil(MEDIA_CHUNK as u64))
            .map_err(|_| too_large(self.limits))?;
        let media = Media {
            id: self.id(),
            media_type: kind.mime().to_owned(),
            size: self.size,
            chunks,
        };
        let held = store.media(&media.id).await?.is_some();
        if let (false, Some((used, limit))) = (held, self.over) {
            return Err(MediaError::Full { used, limit });
        }
        if !held {
            self.file.flush().await?;
            self.file.rewind().await?;
            let mut buffer = vec![0; MEDIA_CHUNK];
            for n in 0..chunks {
                let left = self.size - u64::from(n) * MEDIA_CHUNK as u64;
                let length = usize::try_from(left).map_or(MEDIA_CHUNK, |l| l.min(MEDIA_CHUNK));
                let chunk = &mut buffer[..length];
                self.file.read_exact(chunk).await?;
                store.insert_media_chunk(&media.id, n, chunk).await?;
            }
        }
        store.insert_media(&media, account).await?;
        if kind.is_picture()
            && self.over.is_none()
            && store.media_preview(&media.id).await?.is_none()
        {
            self.file.flush().await?;
            if let Some(small) = make_preview(self.path.clone()).await {
                store.insert_media_preview(&media.id, &small).await?;
            }
        }
        Ok(media)
    }
}

/// Checks and stores the files of one teacher as [`Upload::finish`] does each, all or none
/// as far as the quota goes: they fit together or nothing is stored. The teacher's turn is
/// held throughout, so other uploads finishing meanwhile cannot take the same free bytes.
pub async fn finish_all(
    uploads: Vec<Upload>,
    store: &dyn Store,
    account: Uuid,
) -> Result<Vec<Media>, MediaError> {
    let Some(first) = uploads.first() else {
        return Ok(Vec::new());
    };
    let _turn = first.claim.turn().await;
    let quota = first.limits.quota_bytes;
    let mut new_bytes = 0;
    for upload in &uploads {
        upload.kind().ok_or(MediaError::Unsupported)?;
        if !store.uploaded(account, &upload.id()).await? {
            if let Some((used, limit)) = upload.over {
                return Err(MediaError::Full { used, limit });
            }
            new_bytes += upload.size + MEDIA_FILE_OVERHEAD;
        }
    }
    let used = store.media_bytes(account).await?;
    if used + new_bytes > quota {
        return Err(MediaError::Full { used, limit: quota });
    }
    let mut stored = Vec::with_capacity(uploads.len());
    for upload in uploads {
        stored.push(upload.store(store, account).await?);
    }
    Ok(stored)
}

/// One picture decoded at a time: a decoded photo takes tens of MiB. Fair between teachers:
/// a teacher's files are stored in their turn ([`room::Claim::turn`]), so at most one of
/// their pictures waits here, and another teacher waits for one decode per teacher ahead.
static PREVIEWS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

async fn make_preview(path: PathBuf) -> Option<Preview> {
    let _turn = PREVIEWS.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || preview::make(&path))
        .await
        .ok()
        .flatten()
}

fn too_large(limits: MediaLimits) -> MediaError {
    MediaError::TooLarge {
        limit: limits.max_bytes,
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Stored or refused, the temporary file has served.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How long a save waits for a file it names to arrive: one uploaded a moment ago through
/// another server of a cluster may not have replicated yet.
const ARRIVAL_WAIT: Duration = Duration::from_secs(2);

/// The slides of `content` (by index) naming a file this server does not hold, once files
/// that are on their way (on a replicated store) have had [`ARRIVAL_WAIT`] to arrive. A lesson naming a file nobody
/// stored could be shown by no board and exported by no one.
pub async fn unknown_media(
    store: &dyn Store,
    content: &crate::domain::lesson::LessonContent,
) -> Result<Vec<usize>, StoreError> {
    let named: std::collections::BTreeSet<&str> = content
        .slides
        .iter()
        .filter_map(|s| s.media.as_deref())
        .collect();
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let mut missing = Vec::new();
        for id in &named {
            if store.media(id).await?.is_none() {
                missing.push(*id);
            }
        }
        if missing.is_empty() || !store.replicated() || started.elapsed() >= ARRIVAL_WAIT {
            return Ok(content
                .slides
                .iter()
                .enumerate()
                .filter(|(_, s)| s.media.as_deref().is_some_and(|m| missing.contains(&m)))
                .map(|(i, _)| i)
                .collect());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// How long a file stays while no lesson names it (uploaded and not saved into a lesson yet,
/// or left by deleted lessons) before the hourly purge removes it.
pub const MEDIA_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Removes media `nodes` stored (this node's upkeep, docs/architecture.md section 3) that no lesson has
/// named for [`MEDIA_GRACE`], and what is left of uploads cut off mid-way; returns how many
/// files went.
pub async fn purge(store: &dyn Store, nodes: &NodeIds) -> Result<u64, MediaError> {
    let before = Version::at_millis(wall_millis() - millis_of(MEDIA_GRACE));
    Ok(store.purge_media(nodes, before).await?)
}

/// Which bytes of a file of `size` bytes a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// No range, or one this server answers with the whole file (several ranges).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that lies outside the file.
    Unsatisfiable,
}

pub fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Unsatisfiable;
    };
    let (first, last) = (first.trim(), last.trim());
    let part = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => Some((start, end.min(size.saturating_sub(1)))),
        (Ok(start), Err(_)) if last.is_empty() => Some((start, size.saturating_sub(1))),
        (Err(_), Ok(suffix)) if first.is_empty() && suffix > 0 => {
            Some((size.saturating_sub(suffix), size.saturating_sub(1)))
        }
        _ => None,
    };
    match part {
        Some((start, end)) if start < size && start <= end => Wanted::Part { start, end },
        _ => Wanted::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However many uploads of one teacher are held open, what they keep on disk stays
    /// within the quota; one that no longer fits is still read (it may be theirs already).
    #[tokio::test]
    async fn held_uploads_keep_no_more_on_disk_than_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let room = Room::new(u64::MAX);
        let teacher = Uuid::now_v7();
        let limits = MediaLimits {
            max_bytes: 10_000,
            quota_bytes: 1_000,
        };
        let mut uploads = Vec::new();
        for _ in 0..3 {
            let claim = room.media(teacher, 100, limits.quota_bytes);
            let mut upload = Upload::begin(dir.path(), limits, claim, None)
                .await
                .unwrap();
            for _ in 0..7 {
                upload.push(&[1; 100]).await.unwrap();
            }
            upload.file.flush().await.unwrap();
            uploads.push(upload);
        }
        let on_disk: Vec<u64> = uploads
            .iter()
            .map(|u| std::fs::metadata(&u.path).unwrap().len())
            .collect();
        assert_eq!(on_disk, [700, 200, 0]);
        assert!(uploads.iter().all(|u| u.size() == 700));
        assert_eq!(uploads[1].over, Some((800, 1_000)));
        assert_eq!(room.held(teacher), (900, 0));
        drop(uploads);
        assert_eq!(room.held(teacher), (0, 0));
    }

    #[test]
    fn ranges_are_read_as_the_rfc_says() {
        assert_eq!(wanted(None, 100), Wanted::Whole);
        assert_eq!(
            wanted(Some("bytes=0-9"), 100),
            Wanted::Part { start: 0, end: 9 }
        );
        assert_eq!(
            wanted(Some("bytes=90-"), 100),
            Wanted::Part { start: 90, end: 99 }
        );
        assert_eq!(
            wanted(Some("bytes=-10"), 100),
            Wanted::Part { start: 90, end: 99 }
        );
        assert_eq!(
            wanted(Some("bytes=50-500"), 100),
            Wanted::Part { start: 50, end: 99 }
        );
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::Whole);
        for unsatisfiable in [
            "bytes=100-",
            "bytes=5-1",
            "bytes=-0",
            "bytes=x-y",
            "bytes=7",
        ] {
            assert_eq!(
                wanted(Some(unsatisfiable), 100),
                Wanted::Unsatisfiable,
                "{unsatisfiable}"
            );
        }
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::Whole);
    }
}
