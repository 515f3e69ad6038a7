//! Previews: a picture scaled down once, when it is stored, for thumbnails (the console's
//! list of slides, the editor), so a phone on a school line does not fetch a 10 MiB photo
//! to draw it 80 pixels wide. Plain image work on a file; it knows nothing of the store.
//!
//! Decoding runs off the async threads, one picture at a time, within limits (pixels and
//! memory), so a hostile picture (a tiny file that claims to be enormous) is refused before
//! it is decoded instead of filling memory; a picture that cannot be decoded simply has no
//! preview.

use std::io::BufReader;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{
    DynamicImage, GenericImageView, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage,
};

use crate::store::Preview;

/// The longest side of a preview, in pixels: sharp in the editor's preview on a
/// high-density screen, a few tens of KiB as JPEG.
pub const PREVIEW_EDGE: u32 = 480;
const QUALITY: u8 = 80;
/// Pictures larger than this in either direction are not decoded for a preview.
const MAX_SIDE: u32 = 16_384;
/// What decoding one picture may take at its peak, the decoder's own buffers included.
pub const MEMORY: u64 = 256 << 20;

/// The preview of the picture in `path`, or `None` when it is small enough to be its own
/// preview or cannot be decoded (within the limits above).
pub fn make(path: &Path) -> Option<Preview> {
    let reader = open(path)?;
    let format = reader.format()?;
    let decoder = reader.into_decoder().ok()?;
    let (width, height) = decoder.dimensions();
    if width <= PREVIEW_EDGE && height <= PREVIEW_EDGE {
        return None;
    }
    if peak(format, decoder.total_bytes()) > MEMORY {
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

/// What decoding a picture of `format` into `output` bytes takes at its peak. The image
/// crate's limits count only the output, but a lossy WebP with alpha also holds its YUV
/// planes and its alpha decoded as 4 bytes a pixel (measured: 343 MiB for a 128 MiB output,
/// 229 MiB for 84 MiB; the review saw 474 MiB), while JPEG, PNG and GIF decoders need little
/// beside it (measured: 113 MiB for a 103 MiB JPEG, 201 MiB for a 192 MiB PNG).
fn peak(format: ImageFormat, output: u64) -> u64 {
    match format {
        ImageFormat::WebP => output.saturating_mul(3),
        _ => output.saturating_add(output / 4),
    }
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
    limits.max_alloc = Some(MEMORY);
    reader.limits(limits);
    Some(reader)
}

/// JPEG has no transparency: what was transparent shows as white, as on a slide.
fn on_white(picture: &DynamicImage) -> RgbImage {
    let (width, height) = picture.dimensions();
    let rgba = picture.to_rgba8();
    RgbImage::from_fn(width, height, |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| {
            let blended = (u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255;
            u8::try_from(blended).unwrap_or(u8::MAX)
        };
        Rgb([over(r), over(g), over(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(picture: &DynamicImage, format: ImageFormat) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        picture.save_with_format(file.path(), format).unwrap();
        file
    }

    #[test]
    fn a_photo_gets_a_small_preview() {
        let photo = DynamicImage::ImageRgb8(RgbImage::from_pixel(1600, 1200, Rgb([9, 99, 199])));
        let preview = make(write(&photo, ImageFormat::Jpeg).path()).expect("a preview");
        let small = image::load_from_memory(&preview.bytes).unwrap();
        assert_eq!(small.dimensions(), (PREVIEW_EDGE, 360));
    }

    #[test]
    fn a_picture_whose_decoding_would_pass_the_memory_bound_is_not_decoded() {
        // 4,800 x 4,800 with alpha: 88 MiB decoded, which the image crate's own limit lets
        // through, but a WebP decoder may take three times that.
        let side = 4800;
        assert!(peak(ImageFormat::WebP, u64::from(side * side * 4)) > MEMORY);
        let picture = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            side,
            side,
            image::Rgba([200, 10, 10, 128]),
        ));
        assert!(make(write(&picture, ImageFormat::WebP).path()).is_none());
    }
}
