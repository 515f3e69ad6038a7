//! Lesson files: one lesson and the pictures and videos it shows, as one zip a teacher can
//! take to another school. Writing one, and reading one without trusting it: everything in
//! a file is checked (names, sizes, hashes, kinds, the lesson itself, the teacher's quotas)
//! before anything is stored, so a refused file writes nothing. Plain Rust over the
//! [`Store`]; it knows nothing of HTTP.
//!
//! The format (docs/lesson-files.md): `lesson.json`, the [`Manifest`], and `media/<id>.<ext>`
//! for each file a slide names, `<id>` being its SHA-256.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::domain::lesson::{LessonContent, SlideInput, SLIDES_MAX};
use crate::domain::media::{is_media_id, MediaKind};
use crate::domain::ValidationError;
use crate::media::{MediaError, MediaLimits, Upload};
use crate::quota::{LessonQuota, QuotaError};
use crate::store::{LessonRecord, Media, Store, StoreError};

/// What `format` says in every lesson file.
pub const FORMAT: &str = "classcast-lesson";
/// The newest format version this build reads and the one it writes.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "lesson.json";
/// Far above what 500 slides of the longest text take, far below what would strain memory.
const MANIFEST_MAX: u64 = 32 << 20;
/// The manifest and one file per slide at most; more is not a lesson file.
const ENTRIES_MAX: usize = SLIDES_MAX + 1;

#[derive(Debug, thiserror::Error)]
pub enum LessonFileError {
    /// The file is not one this server takes; `message` says why, for the teacher.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The lesson in the file breaks a rule lessons obey (paths start with `lesson.json`).
    #[error("the lesson in the file is not valid")]
    Invalid(ValidationError),
    /// A slide names a file this server does not hold (yet: replication may be behind).
    #[error("media {0} of the lesson is missing")]
    MissingMedia(String),
    #[error(transparent)]
    Media(MediaError),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lesson file: {0}")]
    Io(#[from] std::io::Error),
    #[error("lesson file: {0}")]
    Zip(#[from] zip::result::ZipError),
}

impl From<MediaError> for LessonFileError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Store(e) => Self::Store(e),
            MediaError::Io(e) => Self::Io(e),
            other => Self::Media(other),
        }
    }
}

fn refused(code: &'static str, message: impl Into<String>) -> LessonFileError {
    LessonFileError::Refused {
        code,
        message: message.into(),
    }
}

fn damaged(message: impl Into<String>) -> LessonFileError {
    refused("damaged_lesson_file", message)
}

/// `lesson.json`. Unknown fields are refused rather than dropped: a file that carries them
/// was made by something else, and what it meant by them would be lost without a word.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u32,
    title: String,
    slides: Vec<FileSlide>,
    /// Every file the slides name, once each.
    media: Vec<FileMedia>,
}

/// A slide without its id: an imported lesson is a new lesson, with slides of its own.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSlide {
    kind: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    notes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seconds: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMedia {
    id: String,
    #[serde(rename = "type")]
    media_type: String,
    size: u64,
}

fn entry_name(media: &Media) -> String {
    let extension = MediaKind::from_mime(&media.media_type).map_or("bin", MediaKind::extension);
    format!("media/{}.{extension}", media.id)
}

/// A lesson file written out, read from its start; its name is already gone, so it
/// disappears when closed.
pub struct Exported {
    pub file: std::fs::File,
    pub size: u64,
    pub title: String,
}

/// Writes `owner`'s lesson `lesson` as a lesson file in `dir`.
pub async fn export(
    store: Arc<dyn Store>,
    owner: Uuid,
    lesson: Uuid,
    dir: &Path,
) -> Result<Exported, LessonFileError> {
    let record = store.lesson(owner, lesson).await?;
    let mut media: Vec<Media> = Vec::new();
    for id in record
        .content
        .slides
        .iter()
        .filter_map(|s| s.media.as_ref())
    {
        if media.iter().all(|m| &m.id != id) {
            let found = store.media(id).await?;
            media.push(found.ok_or_else(|| LessonFileError::MissingMedia(id.clone()))?);
        }
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        title: record.content.title.clone(),
        slides: record
            .content
            .slides
            .iter()
            .map(|s| FileSlide {
                kind: s.kind.name().to_owned(),
                title: s.title.clone(),
                body: s.body.clone(),
                notes: s.notes.clone(),
                media: s.media.clone(),
                answer: s.answer.clone(),
                seconds: s.seconds.map(f64::from),
            })
            .collect(),
        media: media
            .iter()
            .map(|m| FileMedia {
                id: m.id.clone(),
                media_type: m.media_type.clone(),
                size: m.size,
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    tokio::fs::create_dir_all(dir).await?;
    let file = anonymous_file(dir)?;
    let runtime = tokio::runtime::Handle::current();
    let mut file = tokio::task::spawn_blocking(move || {
        let mut zip = ZipWriter::new(file);
        let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        zip.start_file(MANIFEST, deflated)?;
        zip.write_all(&json)?;
        // Pictures and videos are compressed already: stored as they are.
        for m in &media {
            let stored = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .large_file(m.size >= u64::from(u32::MAX));
            zip.start_file(entry_name(m), stored)?;
            for n in 0..m.chunks {
                zip.write_all(&runtime.block_on(store.media_chunk(&m.id, n))?)?;
            }
        }
        Ok::<_, LessonFileError>(zip.finish()?)
    })
    .await
    .map_err(std::io::Error::other)??;
    let size = file.seek(SeekFrom::End(0))?;
    file.rewind()?;
    Ok(Exported {
        file,
        size,
        title: record.content.title,
    })
}

/// A file in `dir` whose name is removed at once: whatever happens next, nothing is left.
fn anonymous_file(dir: &Path) -> std::io::Result<std::fs::File> {
    let path = dir.join(format!("{}.zip", Uuid::now_v7()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Makes the lesson in `file` a new lesson of `owner`, with the files it carries, or refuses
/// it and writes nothing. `dir` holds the files while they are checked.
pub async fn import(
    store: &dyn Store,
    quota: &LessonQuota,
    owner: Uuid,
    file: std::fs::File,
    limits: MediaLimits,
    dir: &Path,
) -> Result<LessonRecord, LessonFileError> {
    let dir = dir.to_owned();
    let (content, uploads) = tokio::task::spawn_blocking(move || unpack(file, limits, &dir))
        .await
        .map_err(std::io::Error::other)??;

    let mut new_bytes = 0;
    for upload in &uploads {
        if !store.uploaded(owner, &upload.id()).await? {
            new_bytes += upload.size();
        }
    }
    let used = store.media_bytes(owner).await?;
    if used + new_bytes > limits.quota_bytes {
        return Err(LessonFileError::Media(MediaError::Full {
            used,
            limit: limits.quota_bytes,
        }));
    }
    quota.admit(owner, &content).await?;
    for upload in uploads {
        upload.finish(store, owner).await?;
    }
    Ok(store.create_lesson(owner, &content).await?)
}

/// Reads and checks a whole lesson file: the lesson, and each file it carries unpacked into
/// an upload of its own (not stored yet).
fn unpack(
    file: std::fs::File,
    limits: MediaLimits,
    dir: &Path,
) -> Result<(LessonContent, Vec<Upload>), LessonFileError> {
    let mut file = file;
    let entries = announced_entries(&mut file)?;
    if entries > ENTRIES_MAX {
        return Err(refused(
            "unsafe_lesson_file",
            format!("The file holds {entries} files; a lesson file holds at most {ENTRIES_MAX}."),
        ));
    }
    let mut zip = ZipArchive::new(file).map_err(|_| not_a_lesson_file())?;

    let mut manifest = None;
    let mut media_entries = BTreeMap::new();
    for index in 0..zip.len() {
        let entry = zip.by_index(index).map_err(unreadable)?;
        let name = entry.name().to_owned();
        if entry.encrypted() {
            return Err(refused(
                "unsafe_lesson_file",
                format!("{name} is encrypted; lesson files are not."),
            ));
        }
        if entry.is_dir() && name == "media/" {
            continue;
        }
        if !entry.is_file() || entry.is_symlink() {
            return Err(unexpected(&name));
        }
        if name == MANIFEST {
            let mut json = Vec::new();
            entry.take(MANIFEST_MAX + 1).read_to_end(&mut json)?;
            if json.len() as u64 > MANIFEST_MAX {
                return Err(refused(
                    "unsafe_lesson_file",
                    format!("{MANIFEST} is larger than {} MiB.", MANIFEST_MAX >> 20),
                ));
            }
            manifest = Some(json);
            continue;
        }
        let id = name
            .strip_prefix("media/")
            .and_then(|rest| rest.split_once('.'))
            .map(|(id, _)| id)
            .filter(|id| is_media_id(id))
            .ok_or_else(|| unexpected(&name))?;
        if media_entries
            .insert(id.to_owned(), (index, name.clone()))
            .is_some()
        {
            return Err(refused(
                "unsafe_lesson_file",
                format!("The file holds two copies of {id}."),
            ));
        }
    }
    let manifest = manifest.ok_or_else(not_a_lesson_file)?;
    let manifest = read_manifest(&manifest)?;

    let slides = manifest.slides.into_iter().map(SlideInput::from).collect();
    let content = LessonContent::parse(&manifest.title, slides).map_err(|errors| {
        let mut prefixed = ValidationError::default();
        for (path, message) in errors.fields {
            prefixed.add(&format!("{MANIFEST}: {path}"), message);
        }
        LessonFileError::Invalid(prefixed)
    })?;

    let named: BTreeSet<&str> = content
        .slides
        .iter()
        .filter_map(|s| s.media.as_deref())
        .collect();
    let listed: BTreeSet<&str> = manifest.media.iter().map(|m| m.id.as_str()).collect();
    let carried: BTreeSet<&str> = media_entries.keys().map(String::as_str).collect();
    if let Some(id) = named.difference(&carried).next() {
        return Err(damaged(format!(
            "A slide shows media/{id}, which the file does not hold."
        )));
    }
    if let Some(id) = carried.union(&listed).find(|id| !named.contains(*id)) {
        return Err(refused(
            "unsafe_lesson_file",
            format!("The file holds or lists {id}, which no slide shows."),
        ));
    }
    if listed.len() != manifest.media.len() || listed != carried {
        return Err(damaged(format!(
            "The list of files in {MANIFEST} does not match the files the lesson file holds."
        )));
    }

    let mut uploads = Vec::with_capacity(manifest.media.len());
    for listed in &manifest.media {
        let (index, name) = &media_entries[&listed.id];
        let mut upload = Upload::create(dir, limits)?;
        let mut entry = zip.by_index(*index).map_err(unreadable)?;
        upload.copy_from(&mut entry).map_err(|e| match e {
            MediaError::TooLarge { limit } => refused(
                "unsafe_lesson_file",
                format!(
                    "{name} is larger than the limit of {} MiB per file.",
                    limit >> 20
                ),
            ),
            MediaError::Io(_) => {
                damaged(format!("{name} cannot be unpacked: the file is damaged."))
            }
            other => other.into(),
        })?;
        if upload.id() != listed.id {
            return Err(damaged(format!(
                "{name} does not hold the file its name says (its SHA-256 differs)."
            )));
        }
        let kind = upload.kind().ok_or_else(|| {
            refused(
                "unsafe_lesson_file",
                format!("{name} is not a picture or video classcast shows."),
            )
        })?;
        if kind.mime() != listed.media_type
            || !name.ends_with(&format!(".{}", kind.extension()))
            || upload.size() != listed.size
        {
            return Err(damaged(format!(
                "{name} is not what {MANIFEST} says it is (its type or size differs)."
            )));
        }
        uploads.push(upload);
    }
    Ok((content, uploads))
}

impl From<FileSlide> for SlideInput {
    fn from(s: FileSlide) -> Self {
        SlideInput {
            id: None,
            kind: s.kind,
            title: Some(s.title),
            body: Some(s.body),
            notes: Some(s.notes),
            media: s.media,
            answer: s.answer,
            seconds: s.seconds,
        }
    }
}

fn read_manifest(json: &[u8]) -> Result<Manifest, LessonFileError> {
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
        version: Option<u32>,
    }
    let head: Head = serde_json::from_slice(json)
        .map_err(|e| damaged(format!("{MANIFEST} cannot be read: {e}.")))?;
    if head.format.as_deref() != Some(FORMAT) {
        return Err(not_a_lesson_file());
    }
    match head.version {
        Some(v) if v > FORMAT_VERSION => {
            return Err(refused(
                "not_a_lesson_file",
                format!(
                    "This lesson file was made by a newer classcast (format {v}); this server \
                     reads format {FORMAT_VERSION}. Update classcast to import it."
                ),
            ))
        }
        Some(_) => {}
        None => return Err(not_a_lesson_file()),
    }
    let mut reader = serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        damaged(format!(
            "{MANIFEST} is not a lesson: at {}: {}.",
            e.path(),
            e.inner()
        ))
    })
}

/// The number of files the archive's end record announces, read before the archive is
/// opened: opening reads every entry's header into memory, which a hostile file with
/// millions of empty entries would fill.
fn announced_entries(file: &mut std::fs::File) -> Result<usize, LessonFileError> {
    const END: [u8; 4] = *b"PK\x05\x06";
    const END_LEN: u64 = 22;
    let size = file.seek(SeekFrom::End(0))?;
    let tail = size.min(END_LEN + u64::from(u16::MAX));
    file.seek(SeekFrom::Start(size - tail))?;
    let mut bytes = vec![0; tail as usize];
    file.read_exact(&mut bytes)?;
    file.rewind()?;
    let at = bytes
        .windows(4)
        .rposition(|w| w == END)
        .filter(|at| bytes.len() - at >= END_LEN as usize)
        .ok_or_else(not_a_lesson_file)?;
    Ok(usize::from(u16::from_le_bytes([
        bytes[at + 10],
        bytes[at + 11],
    ])))
}

fn not_a_lesson_file() -> LessonFileError {
    refused(
        "not_a_lesson_file",
        "This is not a classcast lesson file, or only part of one. Download it again, or make \
         one with \"Download lesson file\" in the lesson editor.",
    )
}

fn unreadable(_: zip::result::ZipError) -> LessonFileError {
    damaged("The lesson file is damaged and cannot be read. Download it again.")
}

fn unexpected(name: &str) -> LessonFileError {
    let shown: String = name.chars().take(100).collect();
    refused(
        "unsafe_lesson_file",
        format!("The file holds {shown:?}, which is not part of a lesson file."),
    )
}
