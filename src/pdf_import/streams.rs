//! What a PDF's streams decode to, measured before `hayro` decodes any: `hayro` inflates a
//! stream whole into memory, so a few KiB of FlateDecode can make it hold GiBs (a
//! decompression bomb). Each stream is decoded here through its filters into a counter that
//! stops at the bound, holding at most the bound in memory for a filter that feeds another.
//! Font programs and colour profiles are streams too, and bounded the same way.

use std::io::{self, Write};

use flate2::read::{DeflateDecoder, ZlibDecoder};
use hayro::hayro_syntax::content::ops::{InlineImage, TypedInstruction};
use hayro::hayro_syntax::content::TypedIter;
use hayro::hayro_syntax::object::{Dict, Name, Object, Stream};
use hayro::hayro_syntax::{Filter, Pdf};

/// How many bytes `stream` decodes to through the filters that expand data (Flate, LZW,
/// run-length, and the ASCII ones that feed them), or `None` once over `max`. Filters that
/// make pictures (JPEG, JPEG 2000, fax, JBIG2) end the count: what they make is bounded by
/// the picture's size, checked apart.
pub fn decoded_len(stream: &Stream<'_>, max: u64) -> Option<u64> {
    let filters = stream.filters();
    let mut data = stream.raw_data().into_owned();
    let params = stream.dict();
    for (i, filter) in filters.iter().enumerate() {
        // The last filter's output is only counted; an earlier one's is kept to feed the next.
        let last = i + 1 == filters.len();
        let mut out = Counter::new(max, !last);
        match filter {
            Filter::FlateDecode => inflate(&data, &mut out),
            Filter::LzwDecode => lzw(&data, params, &mut out),
            Filter::RunLengthDecode => run_length(&data, &mut out),
            Filter::AsciiHexDecode => ascii_hex(&data, &mut out),
            Filter::Ascii85Decode => ascii_85(&data, &mut out),
            _ => break,
        }
        if out.over {
            return None;
        }
        if last {
            return Some(out.len);
        }
        data = out.kept;
    }
    Some(data.len() as u64)
}

/// Calls `check` with every picture written inside content (`BI … ID … EI`), whose filters
/// `hayro` unpacks whole like a stream's: in each page's content (its streams joined, as
/// drawn) and in every other stream but pictures, since a Type 3 font's glyphs are content
/// streams nothing marks as such (forms and patterns are, but read alike). Reading a stream
/// that is no content finds no picture (it would need a whole `BI … ID` in it). Each stream
/// is unpacked whole here, so call this only once [`decoded_len`] has bounded them all.
pub fn each_inline_picture<E>(
    pdf: &Pdf,
    mut check: impl FnMut(&Stream<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut read = |content: &[u8]| {
        let mut ops = TypedIter::new(content);
        while let Some(op) = ops.next() {
            if let TypedInstruction::InlineImage(InlineImage(picture)) = op {
                check(picture)?;
            }
        }
        Ok(())
    };
    for page in pdf.pages().iter() {
        if let Some(content) = page.page_stream() {
            read(content)?;
        }
    }
    for object in pdf.objects() {
        let Object::Stream(stream) = object else {
            continue;
        };
        let image =
            stream.dict().get::<Name<'_>>(b"Subtype").as_deref() == Some(b"Image".as_slice());
        // A stream that does not unpack (a picture's filter, damage) is not content `hayro`
        // can read either.
        if let (false, Ok(content)) = (image, stream.decoded_data()) {
            read(&content)?;
        }
    }
    Ok(())
}

/// A writer that counts, keeps what it is told to, and fails once past `max`.
struct Counter {
    max: u64,
    len: u64,
    keep: bool,
    kept: Vec<u8>,
    over: bool,
}

impl Counter {
    fn new(max: u64, keep: bool) -> Self {
        Counter {
            max,
            len: 0,
            keep,
            kept: Vec::new(),
            over: false,
        }
    }
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.len += buf.len() as u64;
        if self.len > self.max {
            self.over = true;
            return Err(io::Error::other("over the bound"));
        }
        if self.keep {
            self.kept.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `hayro` tries zlib, then raw deflate, keeping what either makes before an error: the
/// larger count of the two is what it may hold.
fn inflate(data: &[u8], out: &mut Counter) {
    let _ = io::copy(&mut ZlibDecoder::new(data), out);
    if out.over || out.len > 0 {
        return;
    }
    let _ = io::copy(&mut DeflateDecoder::new(data), out);
}

fn lzw(data: &[u8], params: &Dict<'_>, out: &mut Counter) {
    let early = params
        .get::<Dict<'_>>(b"DecodeParms")
        .and_then(|p| p.get::<i32>(b"EarlyChange"))
        .unwrap_or(1);
    let mut decoder = if early == 0 {
        weezl::decode::Decoder::new(weezl::BitOrder::Msb, 8)
    } else {
        weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
    };
    let _ = decoder.into_stream(out).decode_all(data);
}

fn run_length(data: &[u8], out: &mut Counter) {
    let mut i = 0;
    while let Some(&n) = data.get(i) {
        let written = match n {
            128 => return,
            0..=127 => {
                let run = data.get(i + 1..i + 2 + usize::from(n)).unwrap_or_default();
                i += 2 + usize::from(n);
                out.write_all(run)
            }
            _ => {
                let byte = data.get(i + 1).copied().unwrap_or_default();
                i += 2;
                out.write_all(&vec![byte; 257 - usize::from(n)])
            }
        };
        if written.is_err() {
            return;
        }
    }
}

fn ascii_hex(data: &[u8], out: &mut Counter) {
    let digits: Vec<u8> = data
        .iter()
        .take_while(|&&b| b != b'>')
        .filter_map(|&b| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        })
        .collect();
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair.get(1).copied().unwrap_or(0))
        .collect();
    let _ = out.write_all(&bytes);
}

fn ascii_85(data: &[u8], out: &mut Counter) {
    let mut bytes = Vec::with_capacity(data.len() / 5 * 4 + 4);
    let (mut group, mut count) = (0u64, 0);
    for &b in data {
        match b {
            b'~' => break,
            b'z' if count == 0 => bytes.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group = group * 85 + u64::from(b - b'!');
                count += 1;
                if count == 5 {
                    bytes.extend_from_slice(&group_bytes(group));
                    (group, count) = (0, 0);
                }
            }
            _ => {}
        }
    }
    if count > 1 {
        for _ in count..5 {
            group = group * 85 + 84;
        }
        bytes.extend_from_slice(&group_bytes(group)[..count - 1]);
    }
    let _ = out.write_all(&bytes);
}

/// A group of five ASCII85 digits as its four bytes; a group past 2^32 (a damaged one) is
/// taken as all ones, as what it makes only matters by its length here.
fn group_bytes(group: u64) -> [u8; 4] {
    u32::try_from(group).unwrap_or(u32::MAX).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(filter: fn(&[u8], &mut Counter), data: &[u8], max: u64) -> (u64, Vec<u8>, bool) {
        let mut out = Counter::new(max, true);
        filter(data, &mut out);
        (out.len, out.kept, out.over)
    }

    #[test]
    fn the_ascii_filters_and_run_length_unpack_as_pdf_says() {
        assert_eq!(counted(ascii_hex, b"48 65 6c6C6f7>", 100).1, b"Hellop");
        assert_eq!(
            counted(ascii_85, b"87cURD]i,\"Ebo80~>", 100).1,
            b"Hello World!"
        );
        assert_eq!(counted(ascii_85, b"z!!~>", 100).1, [0; 5]);
        // Two bytes as they are, then one byte five times, then the end.
        assert_eq!(
            counted(run_length, &[1, b'a', b'b', 252, b'c', 128, b'x'], 100).1,
            b"abccccc"
        );
    }

    #[test]
    fn a_stream_stops_counting_past_the_bound() {
        let (len, _, over) = counted(run_length, &[129; 2_000], 10_000);
        assert!(over && len > 10_000);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(&vec![0; 5_000_000]).unwrap();
        let bomb = zlib.finish().unwrap();
        assert!(counted(inflate, &bomb, 1 << 20).2);
        assert_eq!(counted(inflate, &bomb, 10_000_000).0, 5_000_000);
        let lzw = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .encode(&vec![7; 300_000])
            .unwrap();
        let mut out = Counter::new(1 << 20, false);
        super::lzw(&lzw, &Dict::default(), &mut out);
        assert_eq!(out.len, 300_000);
    }
}
