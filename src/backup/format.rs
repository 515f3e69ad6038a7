//! The backup file: what it holds and how each part is checked.
//!
//! ```text
//! CLASSCAST BACKUP\n                  magic, uncompressed: a foreign file is refused at once
//! gzip stream of frames:              a frame is a tag byte, a u32 length (LE), the payload
//!   H {header JSON}                   format, classcast and schema version, engine, time
//!   T {"table": …, "columns": […]}    then one R frame per row (values, see `Value`)
//!   R row …
//!   E {"rows": n, "sha256": …}        the count and SHA-256 of this table's R frames
//!   … (a T … E run per table)
//!   Z {"sha256": …}                   SHA-256 of every frame before it
//! ```
//! A flipped byte fails gzip's CRC or a SHA-256, a cut file ends before `Z`, a file of a
//! newer format says so in its header. This module knows nothing of databases.

use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::store::snapshot::Value;

/// The first bytes of every backup file.
pub const MAGIC: &[u8] = b"CLASSCAST BACKUP\n";
/// The format this release writes and reads.
pub const FORMAT: u32 = 1;
/// The largest frame a reader accepts (a row holds at most one media chunk of 1 MiB): a
/// damaged length never makes it allocate more.
const MAX_FRAME: u32 = 16 << 20;

/// What a backup says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub format: u32,
    /// The classcast release that wrote it.
    pub classcast: String,
    /// The engine it was taken from: `sqlite` or `postgres`.
    pub engine: String,
    /// The newest migration applied to that database.
    pub schema: i64,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
}

/// A table's rows follow: its name and columns, in the order of each row's values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableStart {
    pub table: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TableEnd {
    rows: u64,
    sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trailer {
    sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a classcast backup")]
    Foreign,
    #[error("the backup is cut short ({0})")]
    Truncated(String),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error(
        "the backup was made by a newer classcast (format {0}); this release reads format {FORMAT}"
    )]
    Newer(u32),
    #[error("cannot read the backup: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for FormatError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => FormatError::Truncated(e.to_string()),
            // gzip's checks (CRC, length, a corrupt block) fail as invalid input or data.
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                FormatError::Damaged(e.to_string())
            }
            _ => FormatError::Io(e),
        }
    }
}

/// Writes a backup to `out`: [`Writer::header`], then per table [`Writer::table`], its
/// [`Writer::row`]s and [`Writer::end_table`], then [`Writer::finish`].
pub struct Writer<W: Write> {
    out: flate2::write::GzEncoder<W>,
    whole: Sha256,
    table: Option<(Sha256, u64)>,
    /// A buffer reused for each frame's payload.
    frame: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        let mut writer = Writer {
            // Media (JPEG, MP4) does not shrink; rows of text do, and fast compression is
            // most of the gain for little of the time.
            out: flate2::write::GzEncoder::new(out, flate2::Compression::fast()),
            whole: Sha256::new(),
            table: None,
            frame: Vec::new(),
        };
        writer.json(b'H', header)?;
        Ok(writer)
    }

    fn json(&mut self, tag: u8, value: &impl Serialize) -> io::Result<()> {
        self.frame.clear();
        serde_json::to_writer(&mut self.frame, value)?;
        self.emit(tag)
    }

    /// Writes the frame in `self.frame` under `tag`.
    fn emit(&mut self, tag: u8) -> io::Result<()> {
        let len = u32::try_from(self.frame.len())
            .ok()
            .filter(|len| *len <= MAX_FRAME)
            .ok_or_else(|| io::Error::other("a row is larger than a backup frame may be"))?;
        let head = [[tag].as_slice(), &len.to_le_bytes()].concat();
        for part in [head.as_slice(), &self.frame] {
            self.whole.update(part);
            if let (b'R', Some((sha, _))) = (tag, self.table.as_mut()) {
                sha.update(part);
            }
            self.out.write_all(part)?;
        }
        Ok(())
    }

    pub fn table(&mut self, start: &TableStart) -> io::Result<()> {
        self.json(b'T', start)?;
        self.table = Some((Sha256::new(), 0));
        Ok(())
    }

    pub fn row(&mut self, values: &[Value]) -> io::Result<()> {
        self.frame.clear();
        for value in values {
            encode(value, &mut self.frame);
        }
        self.emit(b'R')?;
        if let Some((_, rows)) = self.table.as_mut() {
            *rows += 1;
        }
        Ok(())
    }

    pub fn end_table(&mut self) -> io::Result<()> {
        let (sha, rows) = self.table.take().unwrap_or_default();
        let end = TableEnd {
            rows,
            sha256: hex::encode(sha.finalize()),
        };
        self.json(b'E', &end)
    }

    /// Writes the trailer and flushes; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let trailer = Trailer {
            sha256: hex::encode(self.whole.clone().finalize()),
        };
        self.json(b'Z', &trailer)?;
        let mut out = self.out.finish()?;
        out.flush()?;
        Ok(out)
    }
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    let bytes = |out: &mut Vec<u8>, tag: u8, data: &[u8]| {
        out.push(tag);
        // A value is part of a frame, which is bounded far below 4 GiB when written.
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(data);
    };
    match value {
        Value::Null => out.push(0),
        Value::Int(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Text(text) => bytes(out, 2, text.as_bytes()),
        Value::Bytes(data) => bytes(out, 3, data),
        Value::Bool(on) => out.extend_from_slice(&[4, u8::from(*on)]),
    }
}

fn decode(mut payload: &[u8]) -> Result<Vec<Value>, FormatError> {
    let damaged = || FormatError::Damaged("a row does not decode".into());
    let take = |n: usize, payload: &mut &[u8]| -> Result<Vec<u8>, FormatError> {
        if payload.len() < n {
            return Err(damaged());
        }
        let (head, rest) = payload.split_at(n);
        *payload = rest;
        Ok(head.to_vec())
    };
    let mut values = Vec::new();
    while let Some((&tag, rest)) = payload.split_first() {
        payload = rest;
        let value = match tag {
            0 => Value::Null,
            1 => {
                let raw = take(8, &mut payload)?;
                Value::Int(i64::from_le_bytes(raw.try_into().map_err(|_| damaged())?))
            }
            2 | 3 => {
                let raw = take(4, &mut payload)?;
                let len = u32::from_le_bytes(raw.try_into().map_err(|_| damaged())?);
                let data = take(usize::try_from(len).map_err(|_| damaged())?, &mut payload)?;
                match tag {
                    2 => Value::Text(String::from_utf8(data).map_err(|_| damaged())?),
                    _ => Value::Bytes(data),
                }
            }
            4 => Value::Bool(take(1, &mut payload)?[0] != 0),
            _ => return Err(damaged()),
        };
        values.push(value);
    }
    Ok(values)
}

/// What a reader finds next.
#[derive(Debug)]
pub enum Part {
    Table(TableStart),
    Row(Vec<Value>),
    /// The table's rows were all read and match its checksum.
    EndOfTable {
        rows: u64,
    },
    /// The trailer was read and the whole file matches it.
    End,
}

/// Reads a backup, checking every part as it goes: a row is only given out as part of a
/// table whose checksum is checked at its end, so a caller that writes what it reads must
/// only commit once [`Part::End`] came.
pub struct Reader<R: Read> {
    input: flate2::bufread::GzDecoder<io::BufReader<R>>,
    header: Header,
    whole: Sha256,
    table: Option<(Sha256, u64)>,
    ended: bool,
}

impl<R: Read> Reader<R> {
    /// Opens a backup: its magic and its header (refusing a newer format).
    pub fn new(input: R) -> Result<Self, FormatError> {
        let mut input = io::BufReader::new(input);
        let mut magic = vec![0; MAGIC.len()];
        let got = read_up_to(&mut input, &mut magic)?;
        if got < MAGIC.len() || magic != MAGIC {
            return Err(FormatError::Foreign);
        }
        if input.fill_buf()?.is_empty() {
            return Err(FormatError::Truncated(
                "nothing after its first line".into(),
            ));
        }
        let mut reader = Reader {
            input: flate2::bufread::GzDecoder::new(input),
            header: Header {
                format: 0,
                classcast: String::new(),
                engine: String::new(),
                schema: 0,
                taken_at_ms: 0,
            },
            whole: Sha256::new(),
            table: None,
            ended: false,
        };
        let (tag, payload) = reader
            .frame()?
            .ok_or_else(|| FormatError::Truncated("no header".into()))?;
        if tag != b'H' {
            return Err(FormatError::Damaged("no header".into()));
        }
        let header: serde_json::Value = serde_json::from_slice(&payload)
            .map_err(|e| FormatError::Damaged(format!("header: {e}")))?;
        // The format first: a newer one may have changed the rest of the header.
        let format = header["format"].as_u64().unwrap_or(0);
        if format > u64::from(FORMAT) {
            return Err(FormatError::Newer(
                u32::try_from(format).unwrap_or(u32::MAX),
            ));
        }
        reader.header = serde_json::from_value(header)
            .map_err(|e| FormatError::Damaged(format!("header: {e}")))?;
        Ok(reader)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next frame (tag and payload), counted into the whole file's checksum.
    fn frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, FormatError> {
        let mut head = [0u8; 5];
        let got = read_up_to(&mut self.input, &mut head)?;
        if got == 0 {
            return Ok(None);
        }
        if got < head.len() {
            return Err(FormatError::Truncated("inside a frame".into()));
        }
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            return Err(FormatError::Damaged(format!("a frame of {len} bytes")));
        }
        let mut payload = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
        self.input.read_exact(&mut payload)?;
        if head[0] != b'Z' {
            self.whole.update(head);
            self.whole.update(&payload);
        }
        if let (b'R', Some((sha, _))) = (head[0], self.table.as_mut()) {
            sha.update(head);
            sha.update(&payload);
        }
        Ok(Some((head[0], payload)))
    }

    /// The next part, checked; `None` after [`Part::End`].
    pub fn next_part(&mut self) -> Result<Option<Part>, FormatError> {
        if self.ended {
            return Ok(None);
        }
        let (tag, payload) = self
            .frame()?
            .ok_or_else(|| FormatError::Truncated("it ends before its trailer".into()))?;
        let json_error = |e: serde_json::Error| FormatError::Damaged(e.to_string());
        match (tag, self.table.is_some()) {
            (b'T', false) => {
                let start: TableStart = serde_json::from_slice(&payload).map_err(json_error)?;
                self.table = Some((Sha256::new(), 0));
                Ok(Some(Part::Table(start)))
            }
            (b'R', true) => {
                if let Some((_, rows)) = self.table.as_mut() {
                    *rows += 1;
                }
                Ok(Some(Part::Row(decode(&payload)?)))
            }
            (b'E', true) => {
                let end: TableEnd = serde_json::from_slice(&payload).map_err(json_error)?;
                let (sha, rows) = self.table.take().unwrap_or_default();
                if end.rows != rows || end.sha256 != hex::encode(sha.finalize()) {
                    return Err(FormatError::Damaged(
                        "a table's checksum does not match".into(),
                    ));
                }
                Ok(Some(Part::EndOfTable { rows }))
            }
            (b'Z', false) => {
                let trailer: Trailer = serde_json::from_slice(&payload).map_err(json_error)?;
                if trailer.sha256 != hex::encode(self.whole.clone().finalize()) {
                    return Err(FormatError::Damaged(
                        "the file's checksum does not match".into(),
                    ));
                }
                // Past the trailer, gzip's own check (CRC and length) must pass too.
                let mut rest = Vec::new();
                self.input.read_to_end(&mut rest)?;
                if !rest.is_empty() {
                    return Err(FormatError::Damaged("bytes after the trailer".into()));
                }
                self.ended = true;
                Ok(Some(Part::End))
            }
            _ => Err(FormatError::Damaged(format!(
                "an unexpected part ({})",
                char::from(tag)
            ))),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT,
            classcast: "test".into(),
            engine: "sqlite".into(),
            schema: 13,
            taken_at_ms: 1,
        }
    }

    /// Bytes that do not repeat (a flipped bit in runs of one byte may decode the same).
    fn noise(len: usize, seed: i64) -> Vec<u8> {
        let mut x = seed.unsigned_abs().wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &header()).unwrap();
        w.table(&TableStart {
            table: "account".into(),
            columns: vec!["id".into(), "n".into(), "b".into(), "f".into(), "x".into()],
        })
        .unwrap();
        for i in 0..3 {
            w.row(&[
                Value::Text(format!("id-{i}")),
                Value::Int(-i),
                Value::Bytes(noise(70_000, i)),
                Value::Bool(i % 2 == 0),
                Value::Null,
            ])
            .unwrap();
        }
        w.end_table().unwrap();
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Part>), FormatError> {
        let mut r = Reader::new(bytes)?;
        let mut parts = Vec::new();
        while let Some(part) = r.next_part()? {
            parts.push(part);
        }
        Ok((r.header().clone(), parts))
    }

    #[test]
    fn what_is_written_reads_back_checked() {
        let (head, parts) = read_all(&sample()).unwrap();
        assert_eq!(head, header());
        assert_eq!(parts.len(), 6);
        match &parts[2] {
            Part::Row(values) => {
                assert_eq!(values[0], Value::Text("id-1".into()));
                assert_eq!(values[1], Value::Int(-1));
                assert_eq!(values[2], Value::Bytes(noise(70_000, 1)));
                assert_eq!(values[3], Value::Bool(false));
                assert_eq!(values[4], Value::Null);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parts[4], Part::EndOfTable { rows: 3 }));
        assert!(matches!(parts[5], Part::End));
    }

    #[test]
    fn a_flipped_byte_a_cut_file_and_a_foreign_one_are_refused() {
        let good = sample();
        for at in [MAGIC.len() + 12, good.len() / 2, good.len() - 6] {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            assert!(read_all(&bad).is_err(), "a flipped byte at {at} was read");
        }
        for len in [
            MAGIC.len(),
            MAGIC.len() + 10,
            good.len() / 2,
            good.len() - 1,
        ] {
            let err = read_all(&good[..len]).unwrap_err();
            assert!(
                matches!(err, FormatError::Truncated(_) | FormatError::Damaged(_)),
                "cut at {len}: {err}"
            );
        }
        assert!(matches!(
            read_all(b"PK\x03\x04 a zip file").unwrap_err(),
            FormatError::Foreign
        ));
    }

    #[test]
    fn a_newer_format_says_so() {
        let newer = Header {
            format: FORMAT + 1,
            ..header()
        };
        let bytes = Writer::new(Vec::new(), &newer).unwrap().finish().unwrap();
        let err = read_all(&bytes).unwrap_err();
        assert!(matches!(err, FormatError::Newer(2)), "{err}");
        assert!(err.to_string().contains("newer classcast"));
    }
}
