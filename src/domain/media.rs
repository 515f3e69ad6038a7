//! The kinds of media a lesson may show, told from the first bytes of a file, never from its
//! name or the type a client claims: a page named `.png` is not a picture.
//!
//! Accepted: PNG, JPEG, WebP and GIF pictures, MP4 and WebM video. SVG (it can carry script)
//! and PDF (not shown on boards yet) are refused, like everything else.

/// How many leading bytes [`MediaKind::detect`] looks at.
pub const SNIFF_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Png,
    Jpeg,
    Webp,
    Gif,
    Mp4,
    Webm,
}

/// MP4 brands (the `ftyp` box) of video a browser plays; HEIF pictures share the box and are
/// left out.
const MP4_BRANDS: &[&[u8; 4]] = &[
    b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash",
    b"mmp4", b"MSNV",
];

impl MediaKind {
    /// The kind of the file whose first bytes (up to [`SNIFF_BYTES`]) are `head`.
    pub fn detect(head: &[u8]) -> Option<MediaKind> {
        let at = |offset: usize, sig: &[u8]| head.get(offset..offset + sig.len()) == Some(sig);
        if at(0, b"\x89PNG\r\n\x1a\n") {
            Some(MediaKind::Png)
        } else if at(0, b"\xff\xd8\xff") {
            Some(MediaKind::Jpeg)
        } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
            Some(MediaKind::Gif)
        } else if at(0, b"RIFF") && at(8, b"WEBP") {
            Some(MediaKind::Webp)
        } else if at(4, b"ftyp") && MP4_BRANDS.iter().any(|brand| at(8, *brand)) {
            Some(MediaKind::Mp4)
        } else if at(0, b"\x1a\x45\xdf\xa3") && head.windows(4).any(|w| w == b"webm") {
            Some(MediaKind::Webm)
        } else {
            None
        }
    }

    pub fn from_mime(mime: &str) -> Option<MediaKind> {
        KINDS.iter().find(|k| k.1 == mime).map(|k| k.0)
    }

    pub fn from_extension(extension: &str) -> Option<MediaKind> {
        KINDS.iter().find(|k| k.2 == extension).map(|k| k.0)
    }

    pub fn mime(self) -> &'static str {
        self.entry().1
    }

    pub fn extension(self) -> &'static str {
        self.entry().2
    }

    /// A still picture (a GIF may move, but it is shown as a picture).
    pub fn is_picture(self) -> bool {
        self.mime().starts_with("image/")
    }

    fn entry(self) -> &'static (MediaKind, &'static str, &'static str) {
        &KINDS[self as usize]
    }
}

/// Each kind with its media type and file extension, in the order of [`MediaKind`].
const KINDS: [(MediaKind, &str, &str); 6] = [
    (MediaKind::Png, "image/png", "png"),
    (MediaKind::Jpeg, "image/jpeg", "jpg"),
    (MediaKind::Webp, "image/webp", "webp"),
    (MediaKind::Gif, "image/gif", "gif"),
    (MediaKind::Mp4, "video/mp4", "mp4"),
    (MediaKind::Webm, "video/webm", "webm"),
];

/// Whether `id` is a media id as issued: 64 lower-case hex digits.
pub fn is_media_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_bytes_alone() {
        assert_eq!(
            MediaKind::detect(b"\x89PNG\r\n\x1a\n...."),
            Some(MediaKind::Png)
        );
        assert_eq!(
            MediaKind::detect(b"\xff\xd8\xff\xe0"),
            Some(MediaKind::Jpeg)
        );
        assert_eq!(MediaKind::detect(b"GIF89a..."), Some(MediaKind::Gif));
        assert_eq!(
            MediaKind::detect(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(MediaKind::Webp)
        );
        assert_eq!(
            MediaKind::detect(b"\0\0\0\x20ftypisom\0\0\x02\0"),
            Some(MediaKind::Mp4)
        );
        assert_eq!(
            MediaKind::detect(b"\0\0\0\x18ftypheic"),
            None,
            "HEIF is not video"
        );
        assert_eq!(
            MediaKind::detect(b"\x1a\x45\xdf\xa3\x01\0\0\0\0\0\0\x1f\x42\x86\x81\x01webm"),
            Some(MediaKind::Webm)
        );
        for refused in [
            &b"<!doctype html><script>alert(1)</script>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"%PDF-1.7",
            b"",
            b"\x89PN",
        ] {
            assert_eq!(MediaKind::detect(refused), None);
        }
        for (kind, mime, _) in KINDS {
            assert_eq!(MediaKind::from_mime(mime), Some(kind));
            assert_eq!(kind.mime(), mime, "listed in the order of the enum");
        }
        assert!(is_media_id(&"0a".repeat(32)));
        assert!(!is_media_id(&"0A".repeat(32)));
        assert!(!is_media_id("../etc/passwd"));
    }
}
