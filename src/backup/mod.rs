//! Backups of a school: [`backup`] writes one consistent snapshot of every replicated table
//! (accounts, sessions, lessons and their revisions, boards, pairings and states, media
//! with their chunks and previews) from a running server's database; [`check`] verifies a
//! backup without writing anything; [`restore`] loads one into a migrated, empty store of
//! either engine, after checking all of it.
//!
//! Rows are copied as they are (ids, versions, nodes): the multi-master rules make that
//! safe, since nothing is a sequence or a counter. The file format is `format.rs`; reading
//! and writing the databases is `store::snapshot`.

pub mod format;

use std::collections::HashMap;
use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::store::snapshot::{SnapshotError, Source, Target, Value};
use format::{FormatError, Header, Part, Reader, TableStart, Writer, FORMAT};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Database(#[from] SnapshotError),
    #[error("cannot write the backup: {0}")]
    Write(#[source] std::io::Error),
    #[error("the backup is damaged: {0}")]
    Media(String),
    #[error(
        "the store is not empty ({0}); restore into an empty store, or add --force to \
         replace everything it holds"
    )]
    NotEmpty(String),
}

/// What a backup holds: its header, and the rows of each table in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub header: Header,
    pub tables: Vec<(String, u64)>,
    /// Stored files whose bytes were read and match their SHA-256 and size, when checked.
    pub media_checked: Option<u64>,
}

impl Contents {
    fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map_or(0, |(_, rows)| *rows)
    }

    /// One line an administrator reads: when, from what, and the main counts.
    pub fn summary(&self) -> String {
        let count = |n: u64, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        format!(
            "a backup of {} schema {} taken at {} by classcast {}: {}, {} ({}), {}, {}, {} in all",
            self.header.engine,
            self.header.schema,
            taken_at(self.header.taken_at_ms),
            self.header.classcast,
            count(self.rows("account"), "account", "accounts"),
            count(self.rows("lesson"), "lesson", "lessons"),
            count(self.rows("lesson_revision"), "revision", "revisions"),
            count(self.rows("board"), "board", "boards"),
            match self.media_checked {
                Some(n) => format!(
                    "{} (every byte checked)",
                    count(n, "media file", "media files")
                ),
                None => count(
                    self.rows("media_file") + self.rows("media"),
                    "media file",
                    "media files"
                ),
            },
            count(
                self.tables.iter().map(|(_, rows)| rows).sum(),
                "row",
                "rows"
            ),
        )
    }
}

/// A time in milliseconds since the Unix epoch, as HTTP dates read (in UTC).
fn taken_at(ms: i64) -> String {
    let since = std::time::Duration::from_millis(ms.max(0).unsigned_abs());
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + since)
}

/// Writes a snapshot of the first of `urls` that answers to `out`; returns what it holds.
pub async fn backup(urls: &[String], out: impl Write) -> Result<Contents, BackupError> {
    let mut source = Source::open(urls).await?;
    let header = Header {
        format: FORMAT,
        classcast: env!("CARGO_PKG_VERSION").to_owned(),
        engine: source.engine().to_owned(),
        schema: source.schema().await?,
        taken_at_ms: crate::domain::hlc::wall_millis(),
    };
    let mut writer = Writer::new(out, &header).map_err(BackupError::Write)?;
    let mut tables = Vec::new();
    for (table, columns) in source.tables().await? {
        writer
            .table(&TableStart {
                table: table.clone(),
                columns,
            })
            .map_err(BackupError::Write)?;
        let rows = source.rows(&table, |row| writer.row(&row)).await?;
        writer.end_table().map_err(BackupError::Write)?;
        tables.push((table, rows));
    }
    writer.finish().map_err(BackupError::Write)?;
    Ok(Contents {
        header,
        tables,
        media_checked: None,
    })
}

/// A backup file being written, synced to disk every [`SYNC_EVERY`] bytes. Left to the
/// kernel, a backup's gigabytes are written back in bursts, and every sync of the server's own
/// (each acknowledged command waits for one) queues behind them: commands took 334 ms at p99
/// during a backup of 2 GiB written so, 15 ms synced every 8 MiB, and 6.9 ms synced every MiB
/// (3.7 ms without a backup; `bench/backup`).
pub struct SyncedFile<'a> {
    file: &'a std::fs::File,
    unsynced: usize,
}

/// How much of a backup may wait in the page cache.
const SYNC_EVERY: usize = 1 << 20;

impl<'a> SyncedFile<'a> {
    pub fn new(file: &'a std::fs::File) -> Self {
        SyncedFile { file, unsynced: 0 }
    }
}

impl Write for SyncedFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        self.unsynced += written;
        if self.unsynced >= SYNC_EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Reads a whole backup, checking every checksum and every stored file's bytes against its
/// SHA-256 and size; writes nothing.
pub fn check(input: impl Read) -> Result<Contents, BackupError> {
    let mut reader = Reader::new(input)?;
    let mut media = MediaCheck::default();
    let mut tables = Vec::new();
    let mut current: Option<TableStart> = None;
    while let Some(part) = reader.next_part()? {
        match part {
            Part::Table(start) => current = Some(start),
            Part::Row(row) => {
                if let Some(table) = &current {
                    media.row(table, &row)?;
                }
            }
            Part::EndOfTable { rows } => {
                if let Some(table) = current.take() {
                    media.end(&table.table)?;
                    tables.push((table.table, rows));
                }
            }
            Part::End => {}
        }
    }
    media.finish()?;
    Ok(Contents {
        header: reader.header().clone(),
        tables,
        media_checked: Some(media.checked),
    })
}

/// Loads the backup `path`, which [`check`] found whole (`checked`), into the store at
/// `urls`, migrated already, in one transaction committed only once the file was read whole
/// again. A store that holds anything is refused unless `force`, which replaces what it
/// holds (returned, with what the backup held).
pub async fn restore(
    urls: &[String],
    path: &std::path::Path,
    checked: Contents,
    force: bool,
) -> Result<(Contents, Vec<(String, i64)>), BackupError> {
    let open = || std::fs::File::open(path).map_err(|e| BackupError::Format(e.into()));
    let mut target = Target::open(urls).await?;
    let held = target.held().await?;
    if !held.is_empty() {
        if !force {
            let listed: Vec<String> = held.iter().map(|(t, n)| format!("{n} {t}")).collect();
            return Err(BackupError::NotEmpty(listed.join(", ")));
        }
        target.clear().await?;
    }
    let mut reader = Reader::new(open()?)?;
    let mut insert = None;
    while let Some(part) = reader.next_part()? {
        match part {
            Part::Table(start) => insert = Some(target.table(&start.table, &start.columns).await?),
            Part::Row(row) => {
                if let Some(insert) = &insert {
                    target.insert(insert, row).await?;
                }
            }
            Part::EndOfTable { .. } => insert = None,
            // Read whole a second time, and still whole: only now is it kept.
            Part::End => {}
        }
    }
    target.commit().await?;
    Ok((checked, held))
}

/// Checks stored files as their chunks go by: chunks come ordered by file and place, after
/// the rows that give each file's size.
#[derive(Default)]
struct MediaCheck {
    /// The size of each stored file, by SHA-256, and whether its bytes were checked.
    sizes: HashMap<String, (u64, bool)>,
    /// The file whose chunks are being read: its SHA-256, the next chunk expected, the hash
    /// and length so far.
    open: Option<(String, i64, Sha256, u64)>,
    checked: u64,
}

impl MediaCheck {
    fn row(&mut self, table: &TableStart, row: &[Value]) -> Result<(), BackupError> {
        let column = |name: &str| {
            table
                .columns
                .iter()
                .position(|c| c == name)
                .and_then(|i| row.get(i))
        };
        match table.table.as_str() {
            "media_file" | "media" => {
                let id = if table.table == "media" {
                    "id"
                } else {
                    "media_id"
                };
                if let (Some(Value::Text(sha)), Some(Value::Int(size))) =
                    (column(id), column("size"))
                {
                    self.sizes
                        .entry(sha.clone())
                        .or_insert((size.max(&0).unsigned_abs(), false));
                }
            }
            "media_file_chunk" => {
                if let (Some(Value::Text(sha)), Some(Value::Int(n)), Some(Value::Bytes(b))) =
                    (column("media_id"), column("n"), column("bytes"))
                {
                    self.chunk(sha, *n, b)?;
                }
            }
            "media_chunk" => {
                if let (Some(Value::Text(id)), Some(Value::Bytes(b))) =
                    (column("id"), column("bytes"))
                {
                    if let Some((sha, n)) = id.split_once('/') {
                        let n = n.parse().unwrap_or(-1);
                        self.chunk(sha, n, b)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Chunk `n` of file `sha`; a repeat of a chunk (stored through two nodes) is skipped.
    fn chunk(&mut self, sha: &str, n: i64, bytes: &[u8]) -> Result<(), BackupError> {
        if self.open.as_ref().is_some_and(|(open, ..)| open != sha) {
            self.close()?;
        }
        let (_, next, hash, len) = self
            .open
            .get_or_insert_with(|| (sha.to_owned(), 0, Sha256::new(), 0));
        if n == *next {
            hash.update(bytes);
            *len += bytes.len() as u64;
            *next += 1;
        }
        Ok(())
    }

    /// The file whose chunks were read is whole and matches, if a stored file has its
    /// SHA-256 (chunks of an upload cut short have none, and are purged in time).
    fn close(&mut self) -> Result<(), BackupError> {
        let Some((sha, _, hash, len)) = self.open.take() else {
            return Ok(());
        };
        let Some((size, checked)) = self.sizes.get_mut(&sha) else {
            return Ok(());
        };
        let got = hex::encode(hash.finalize());
        if got != sha || len != *size {
            return Err(BackupError::Media(format!(
                "the stored file {sha} reads back as {len} bytes with SHA-256 {got}"
            )));
        }
        *checked = true;
        self.checked += 1;
        Ok(())
    }

    /// Every stored file had its bytes.
    fn finish(&self) -> Result<(), BackupError> {
        match self.sizes.iter().find(|(_, (_, checked))| !checked) {
            Some((sha, _)) => Err(BackupError::Media(format!(
                "the stored file {sha} has no bytes in the backup"
            ))),
            None => Ok(()),
        }
    }

    fn end(&mut self, table: &str) -> Result<(), BackupError> {
        match table {
            "media_file_chunk" | "media_chunk" => self.close(),
            _ => Ok(()),
        }
    }
}
