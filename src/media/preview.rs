//! Previews: a picture scaled down once, when it is stored, for thumbnails (the console's
//! list of slides, the editor), so a phone on a school line does not fetch a 10 MiB photo
//! to draw it 80 pixels wide. Plain image work on a file; it knows nothing of the store.
//!
//! Decoding runs off the async threads, one picture at a time, within limits (pixels and
//! memory), so a hostile picture (a tiny file that claims to be enormous) is refused by the
//! decoder instead of filling memory; a picture that cannot be decoded simply has no preview.

use std::io::BufReader;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, GenericImageView, ImageReader, Limits, Rgb, RgbImage};

use crate::store::Preview;

/// The longest side of a preview, in pixels: sharp in the editor's preview on a
/// high-density screen, a few tens of KiB as JPEG.
pub const PREVIEW_EDGE: u32 = 480;
const QUALITY: u8 = 80;
/// Pictures larger than this in either direction are not decoded for a preview.
const MAX_SIDE: u32 = 16_384;
/// What decoding may allocate: a 60-megapixel photo fits.
const MAX_ALLOC: u64 = 256 << 20;

/// The preview of the picture in `path`, or `None` when it is small enough to be its own
/// preview or cannot be decoded (within the limits above).
pub fn make(path: &Path) -> Option<Preview> {
    let (width, height) = open(path)?.into_dimensions().ok()?;
    if width <= PREVIEW_EDGE && height <= PREVIEW_EDGE {
        return None;
    }
    let picture = open(path)?.decode().ok()?;
    let small = on_white(&picture.thumbnail(PREVIEW_EDGE, PREVIEW_EDGE));
    let mut bytes = Vec::new();
    small
        .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, QUALITY))
        .ok()?;
    Some(Preview {
        media_type: "image/jpeg".into(),
        bytes,
    })
}

/// A decoder for the picture in `path`, within the limits above.
fn open(path: &Path) -> Option<ImageReader<BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .ok()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    Some(reader)
}

/// JPEG has no transparency: what was transparent shows as white, as on a slide.
fn on_white(picture: &DynamicImage) -> RgbImage {
    let (width, height) = picture.dimensions();
    let rgba = picture.to_rgba8();
    RgbImage::from_fn(width, height, |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        Rgb([over(r), over(g), over(b)])
    })
}
