//! Lesson files: one lesson and the pictures and videos it shows, as one zip a teacher can
//! take to another school. Writing one, and reading one without trusting it: everything in
//! a file is checked (names, sizes, hashes, kinds, the lesson itself, the teacher's quotas)
//! before anything is stored, so a refused file writes nothing. Plain Rust over the
//! [`Store`]; it knows nothing of HTTP.
//!
//! The format (docs/lesson-files.md): `lesson.json`, the [`Manifest`], and `media/<id>.<ext>`
//! for each file a slide names, `<id>` being its SHA-256.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::domain::design::ThemeInput;
use crate::domain::lesson::{
    LessonContent, SlideInput, ALT_MAX, ANSWER_MAX, BODY_MAX, NOTES_MAX, SLIDES_MAX, TITLE_MAX,
};
use crate::domain::library::FOLDER_MAX;
use crate::domain::media::{is_media_id, MediaKind};
use crate::domain::ValidationError;
use crate::media::{finish_all, Claim, MediaError, MediaLimits, Room, Upload};
use crate::quota::{LessonQuota, QuotaError};
use crate::store::{LessonRecord, Media, Store, StoreError, MEDIA_FILE_OVERHEAD};

/// What `format` says in every lesson file.
pub const FORMAT: &str = "classcast-lesson";
/// The newest format version this build reads and the one it writes.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "lesson.json";
/// Far above what a lesson saved through the API takes (its body is at most
/// `max_body_bytes`, 1 MiB by default), far below what would strain memory.
const MANIFEST_MAX: u64 = 8 << 20;
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
/// Lists and strings are bounded while they are read, so a small file that unpacks into a
/// huge manifest is refused before it is built.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: Text<64>,
    version: u32,
    title: Text<TITLE_MAX>,
    /// The folder the lesson was filed in; left out when none, so that such a file still
    /// imports on servers from before folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    folder: Option<Text<FOLDER_MAX>>,
    /// The lesson's theme; left out for the default, for servers from before themes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    theme: Option<FileTheme>,
    slides: List<FileSlide, SLIDES_MAX>,
    /// Every file the slides name, once each.
    media: List<FileMedia, SLIDES_MAX>,
}

/// A slide without its id: an imported lesson is a new lesson, with slides of its own.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSlide {
    kind: Text<16>,
    #[serde(default)]
    title: Text<TITLE_MAX>,
    #[serde(default)]
    body: Text<BODY_MAX>,
    #[serde(default)]
    notes: Text<NOTES_MAX>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media: Option<Text<64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<Text<ANSWER_MAX>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seconds: Option<f64>,
    /// Left out for the kind's usual look, so that such a file still imports on servers
    /// from before layouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<Text<16>>,
    /// Left out when none, as `layout` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alt: Option<Text<ALT_MAX>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTheme {
    name: Text<16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accent: Option<Text<16>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMedia {
    id: Text<64>,
    #[serde(rename = "type")]
    media_type: Text<64>,
    size: u64,
}

/// A string of at most `N` characters, refused while it is read when longer.
#[derive(Debug, Default, Serialize)]
#[serde(transparent)]
struct Text<const N: usize>(String);

impl<'de, const N: usize> Deserialize<'de> for Text<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bounded<const N: usize>;
        impl<const N: usize> Visitor<'_> for Bounded<N> {
            type Value = Text<N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a string of at most {N} characters")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<N>, E> {
                if s.chars().count() > N {
                    return Err(E::custom(format_args!("longer than {N} characters")));
                }
                Ok(Text(s.to_owned()))
            }
        }
        d.deserialize_str(Bounded::<N>)
    }
}

/// A list of at most `N` items, refused at the first item over.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct List<T, const N: usize>(Vec<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for List<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bounded<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Bounded<T, N> {
            type Value = List<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of at most {N} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T, N>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == N {
                        return Err(de::Error::custom(format_args!("more than {N} items")));
                    }
                    items.push(item);
                }
                Ok(List(items))
            }
        }
        d.deserialize_seq(Bounded::<T, N>(PhantomData))
    }
}

fn entry_name(media: &Media) -> String {
    let extension = MediaKind::from_mime(&media.media_type).map_or("bin", MediaKind::extension);
    format!("media/{}.{extension}", media.id)
}

/// A lesson file written out, read from its start; its name is already gone, so it
/// disappears when closed. It holds its room until then (keep `claim` as long as `file`).
pub struct Exported {
    pub file: std::fs::File,
    pub size: u64,
    pub title: String,
    pub claim: Claim,
}

/// Bytes a zip adds per file it holds, at most (headers twice, the name twice, zip64).
const ENTRY_OVERHEAD: u64 = 512;

/// Writes `owner`'s lesson `lesson` as a lesson file in `dir`, in room of `owner`'s taken
/// before it is written.
pub async fn export(
    store: Arc<dyn Store>,
    room: &Arc<Room>,
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
        format: Text(FORMAT.into()),
        version: FORMAT_VERSION,
        title: Text(record.content.title.clone()),
        folder: record.content.folder.clone().map(Text),
        theme: record.content.theme.as_ref().map(|theme| FileTheme {
            name: Text(theme.name.name().to_owned()),
            accent: theme.accent.clone().map(Text),
        }),
        slides: List(
            record
                .content
                .slides
                .iter()
                .map(|s| FileSlide {
                    kind: Text(s.kind.name().to_owned()),
                    title: Text(s.title.clone()),
                    body: Text(s.body.clone()),
                    notes: Text(s.notes.clone()),
                    media: s.media.clone().map(Text),
                    answer: s.answer.clone().map(Text),
                    seconds: s.seconds.map(f64::from),
                    layout: s.layout.map(|l| Text(l.name().to_owned())),
                    alt: s.alt.clone().map(Text),
                })
                .collect(),
        ),
        media: List(
            media
                .iter()
                .map(|m| FileMedia {
                    id: Text(m.id.clone()),
                    media_type: Text(m.media_type.clone()),
                    size: m.size,
                })
                .collect(),
        ),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    let mut claim = room.temporary(owner);
    claim.take(
        json.len() as u64
            + media.iter().map(|m| m.size + ENTRY_OVERHEAD).sum::<u64>()
            + 2 * ENTRY_OVERHEAD,
    )?;
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
        title: record.content.title.clone(),
        claim,
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
/// it and writes nothing. `dir` holds the files while they are checked; each takes room of
/// the teacher's media quota in `room` as it is unpacked, so a file that would not fit stops
/// at its first byte over. Files the teacher already stores are not unpacked at all.
pub async fn import(
    store: &dyn Store,
    quota: &LessonQuota,
    room: &Arc<Room>,
    owner: Uuid,
    file: std::fs::File,
    limits: MediaLimits,
    dir: &Path,
) -> Result<LessonRecord, LessonFileError> {
    let (zip, content, listed) = tokio::task::spawn_blocking(move || read(file))
        .await
        .map_err(std::io::Error::other)??;

    let mut wanted = Vec::new();
    for entry in listed {
        if !store.uploaded(owner, &entry.id).await? {
            wanted.push(entry);
            continue;
        }
        let held = store.media(&entry.id).await?;
        if !held.is_some_and(|m| m.media_type == entry.media_type && m.size == entry.size) {
            return Err(damaged(format!(
                "{} is not what {MANIFEST} says it is (its type or size differs).",
                entry.name
            )));
        }
    }
    room.pace(owner, wanted.len())?;
    let used = store.media_bytes(owner).await?;
    let announced: u64 = wanted.iter().map(|e| e.size + MEDIA_FILE_OVERHEAD).sum();
    if used + announced > limits.quota_bytes {
        return Err(LessonFileError::Media(MediaError::Full {
            used,
            limit: limits.quota_bytes,
        }));
    }
    let claims = wanted
        .iter()
        .map(|_| room.media(owner, used, limits.quota_bytes))
        .collect();
    let dir = dir.to_owned();
    let uploads = tokio::task::spawn_blocking(move || unpack(zip, wanted, claims, limits, &dir))
        .await
        .map_err(std::io::Error::other)??;

    let mut content = content;
    content.title = crate::library::distinct_title(store, owner, &content).await?;
    quota.admit(owner, &content).await?;
    finish_all(uploads, store, owner).await?;
    Ok(store.create_lesson(owner, &content).await?)
}

/// A file the lesson file carries, as its manifest lists it.
struct Carried {
    index: usize,
    name: String,
    id: String,
    media_type: String,
    size: u64,
}

/// Reads and checks a lesson file's catalogue and its lesson, without unpacking any picture
/// or video: the lesson, and the files it carries as the manifest lists them.
fn read(
    file: std::fs::File,
) -> Result<(ZipArchive<std::fs::File>, LessonContent, Vec<Carried>), LessonFileError> {
    let mut file = file;
    let entries = announced_entries(&mut file)?;
    if entries > ENTRIES_MAX {
        return Err(refused(
            "unsafe_lesson_file",
            format!("The file holds {entries} files; a lesson file holds at most {ENTRIES_MAX}."),
        ));
    }
    let mut zip = ZipArchive::new(file).map_err(|_| not_a_lesson_file())?;
    // The archive keeps one file of each name: another reader may take the other.
    if zip.len() != entries {
        return Err(refused(
            "unsafe_lesson_file",
            "The file holds two files of the same name.",
        ));
    }

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
        // Exactly `media/<id>.<extension>`: nothing another zip reader could read as a path.
        let id = name
            .strip_prefix("media/")
            .and_then(|rest| rest.split_once('.'))
            .filter(|(id, extension)| {
                is_media_id(id) && MediaKind::from_extension(extension).is_some()
            })
            .map(|(id, _)| id)
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

    let slides = manifest
        .slides
        .0
        .into_iter()
        .map(SlideInput::from)
        .collect();
    let folder = manifest.folder.as_ref().map(|f| f.0.as_str());
    let theme = manifest.theme.map(|theme| ThemeInput {
        name: theme.name.0,
        accent: theme.accent.map(|a| a.0),
    });
    let content = LessonContent::parse_whole(&manifest.title.0, folder, theme.as_ref(), slides)
        .map_err(|errors| {
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
    let listed: BTreeSet<&str> = manifest.media.0.iter().map(|m| m.id.0.as_str()).collect();
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
    if listed.len() != manifest.media.0.len() || listed != carried {
        return Err(damaged(format!(
            "The list of files in {MANIFEST} does not match the files the lesson file holds."
        )));
    }
    let mut files = Vec::with_capacity(manifest.media.0.len());
    for listed in manifest.media.0 {
        let (index, name) = media_entries
            .remove(&listed.id.0)
            .expect("listed equals carried");
        let kind = MediaKind::from_mime(&listed.media_type.0).ok_or_else(|| {
            refused(
                "unsafe_lesson_file",
                format!("{name} is not a picture or video classcast shows."),
            )
        })?;
        if !name.ends_with(&format!(".{}", kind.extension())) {
            return Err(damaged(format!(
                "{name} is not what {MANIFEST} says it is (its type or size differs)."
            )));
        }
        files.push(Carried {
            index,
            name,
            id: listed.id.0,
            media_type: listed.media_type.0,
            size: listed.size,
        });
    }
    Ok((zip, content, files))
}

/// Unpacks each of `files` into an upload of its own (not stored yet), checking each is what
/// the manifest says; `claims` give each its room.
fn unpack(
    mut zip: ZipArchive<std::fs::File>,
    files: Vec<Carried>,
    claims: Vec<Claim>,
    limits: MediaLimits,
    dir: &Path,
) -> Result<Vec<Upload>, LessonFileError> {
    let mut uploads = Vec::with_capacity(files.len());
    for (file, claim) in files.into_iter().zip(claims) {
        let name = &file.name;
        let mut upload = Upload::create(dir, limits, claim)?;
        let mut entry = zip.by_index(file.index).map_err(unreadable)?;
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
        if upload.id() != file.id {
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
        if kind.mime() != file.media_type || upload.size() != file.size {
            return Err(damaged(format!(
                "{name} is not what {MANIFEST} says it is (its type or size differs)."
            )));
        }
        uploads.push(upload);
    }
    Ok(uploads)
}

impl From<FileSlide> for SlideInput {
    fn from(s: FileSlide) -> Self {
        SlideInput {
            id: None,
            kind: s.kind.0,
            title: Some(s.title.0),
            body: Some(s.body.0),
            notes: Some(s.notes.0),
            media: s.media.map(|m| m.0),
            answer: s.answer.map(|a| a.0),
            seconds: s.seconds,
            layout: s.layout.map(|l| l.0),
            alt: s.alt.map(|a| a.0),
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
    const END_LEN: u16 = 22;
    let size = file.seek(SeekFrom::End(0))?;
    let tail = size.min(u64::from(END_LEN) + u64::from(u16::MAX));
    file.seek(SeekFrom::Start(size - tail))?;
    // At most 22 + 65,535 bytes.
    let mut bytes = vec![0; usize::try_from(tail).unwrap_or(usize::MAX)];
    file.read_exact(&mut bytes)?;
    file.rewind()?;
    let at = bytes
        .windows(4)
        .rposition(|w| w == END)
        .filter(|at| bytes.len() - at >= usize::from(END_LEN))
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
