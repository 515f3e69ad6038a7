//! PDF import: slides saved as a PDF (from PowerPoint, Keynote, Google Slides…) become a new
//! lesson of one picture slide per page, each page drawn on the server by `hayro` (pure
//! Rust) to fit 3840×2160 (4K) and stored as a PNG of the teacher's media, its text in the
//! slide's notes; or the same slides for the editor to insert into a lesson. Like
//! [`crate::lesson_file::import`], everything is checked and drawn before anything is
//! stored, so a refused PDF writes nothing. Plain Rust over the [`Store`]; it knows nothing
//! of HTTP.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hayro::hayro_interpret::font::GlyphRun;
use hayro::hayro_interpret::{
    interpret_page, BlendMode, ClipPath, Context, Device, DrawMode, DrawProps, Image,
    ImageDrawProps, InterpreterCache, InterpreterSettings, SoftMask,
};
use hayro::hayro_syntax::object::{Name, Object, Stream};
use hayro::hayro_syntax::page::Page;
use hayro::hayro_syntax::{DecryptionError, LoadPdfError, Pdf};
use hayro::kurbo::{Affine, BezPath, Rect};
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{PixmapSettings, RenderCache, RenderSettings};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::ImageEncoder;
use uuid::Uuid;

use crate::domain::design::SlideLayout;
use crate::domain::lesson::{LessonContent, SlideInput, NOTES_MAX, TITLE_MAX};
use crate::domain::one_line;
use crate::media::{finish_all, MediaError, MediaLimits, Room, Upload};
use crate::quota::{LessonQuota, QuotaError};
use crate::store::{LessonRecord, Store, StoreError};

mod streams;

/// Pages one PDF may have: a long lesson, far below the slides a lesson may hold.
pub const PAGES_MAX: usize = 100;
/// The longest side of a page, in points: PDF's own limit (200 inches) without a user unit.
pub const PAGE_POINTS_MAX: f32 = 14_400.0;
/// The shortest side of a page, in points (PDF's own lower limit).
pub const PAGE_POINTS_MIN: f32 = 3.0;
/// How many times longer than wide (or wider than long) a page may be: a longer strip would
/// be drawn less than a pixel across.
pub const PAGE_ASPECT_MAX: f32 = 100.0;
/// What each page is drawn to fit: 4K, so a page is sharp on a 4K board as on a 1080p one
/// (which shows it scaled down; the teacher's lists show the picture's small preview).
pub const FIT: (f32, f32) = (3840.0, 2160.0);
/// How long drawing a whole PDF may take. `hayro` cannot be stopped mid-page, so this is
/// checked between pages; what one page can cost is bounded by its pixels (at most [`FIT`])
/// and the PDF's size (the upload limit).
pub const RENDER_MAX: Duration = Duration::from_secs(120);
/// Pixels one picture in the PDF may have (a 100-megapixel photo): `hayro` decodes a picture
/// whole before scaling it, and a picture claiming more would take GiBs.
pub const PICTURE_PIXELS_MAX: f64 = 100e6;
/// What any one stream of a PDF (a page's drawing, a font program, a colour profile…) may
/// unpack to: `hayro` unpacks a stream whole into memory, and a few KiB of FlateDecode can
/// unpack to GiBs. Ordinary slides' streams unpack to a few MiB at most.
pub const STREAM_BYTES_MAX: u64 = 64 << 20;
/// What a picture's stream may unpack to, per pixel it says it has: four colour components
/// of 16 bits. (A picture of [`PICTURE_PIXELS_MAX`] may thus take 800 MB, its whole size.)
pub const PICTURE_BYTES_PER_PIXEL: f64 = 8.0;
/// The title of a lesson from a PDF without one.
pub const UNTITLED: &str = "Imported slides";

/// How far an import is: page `page` of `pages` is being drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pages {
    pub page: usize,
    pub pages: usize,
}

/// Where an import tells how far it is, for a client that follows it. Told nothing until the
/// PDF has passed every check made before drawing, so a follower knows that a refusal then
/// is already answered. When nobody follows any more (the client went away) the import
/// stops before the next page and stores nothing.
pub type Progress = tokio::sync::watch::Sender<Option<Pages>>;

/// One PDF drawn at a time on this node: a page takes a core and tens of MiB.
static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[derive(Debug, thiserror::Error)]
pub enum PdfImportError {
    #[error("This PDF is password-protected; save it without a password and try again.")]
    PasswordProtected,
    #[error(
        "This file cannot be read as a PDF: it is damaged or not a PDF. Save or export it as \
         a PDF again and try again."
    )]
    Unreadable,
    #[error(
        "This PDF has {pages} pages; classcast imports at most {PAGES_MAX} at a time. Save \
         the slides as several PDFs and import each."
    )]
    TooManyPages { pages: usize },
    #[error(
        "Page {page} is {width:.0} × {height:.0} points; classcast imports pages of \
         {PAGE_POINTS_MIN} to {PAGE_POINTS_MAX} points a side, at most {PAGE_ASPECT_MAX} times \
         as long as wide."
    )]
    PageSize {
        page: usize,
        width: f32,
        height: f32,
    },
    #[error(
        "This PDF holds a picture of {width:.0} × {height:.0} pixels; classcast imports \
         pictures of at most {} megapixels. Save the slides with smaller pictures (most \
         programs offer to compress them) and try again.",
        PICTURE_PIXELS_MAX / 1e6
    )]
    PictureTooLarge { width: f64, height: f64 },
    #[error(
        "This PDF holds a part (a page's drawing, a font or a picture) that unpacks to more \
         than {} MiB, more than slides need; it may be damaged or made to harm. Save or export \
         the slides as a PDF again and try again.",
        STREAM_BYTES_MAX >> 20
    )]
    StreamTooLarge,
    #[error(
        "This PDF takes too long to draw (more than {} seconds, stopped at page {page}). \
         Save it with simpler pages or fewer pages and try again.",
        RENDER_MAX.as_secs()
    )]
    TooSlow { page: usize },
    /// The teacher's quota or pace, or writing a page's picture.
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("PDF import: {0}")]
    Io(#[from] std::io::Error),
}

/// A PDF to import: its file and, for slides converted from a presentation, each page's
/// speaker notes, put in its slide's notes above the page's text (none: the text alone).
pub struct Source {
    pub file: std::fs::File,
    pub speaker_notes: Vec<String>,
}

impl From<std::fs::File> for Source {
    fn from(file: std::fs::File) -> Self {
        Self {
            file,
            speaker_notes: Vec::new(),
        }
    }
}

/// One PDF to import: whose it is, the PDF, what each page's picture may be (as an upload),
/// where pictures on their way are written, and who follows the import.
pub struct Job<'a> {
    pub owner: Uuid,
    pub source: Source,
    pub limits: MediaLimits,
    pub dir: &'a Path,
    pub progress: Option<Progress>,
}

/// Makes the PDF of `job` a new lesson of its owner, one picture slide per page, or refuses
/// it and writes nothing.
pub async fn import(
    store: &dyn Store,
    quota: &LessonQuota,
    room: &Arc<Room>,
    job: Job<'_>,
) -> Result<LessonRecord, PdfImportError> {
    let owner = job.owner;
    let drawn = draw_all(store, room, job).await?;
    let mut content = LessonContent::parse(&drawn.title, drawn.slides()).map_err(|e| {
        // Every field is made here within its bounds: a refusal is a bug, not the PDF's.
        std::io::Error::other(format!("PDF import made an invalid lesson: {e:?}"))
    })?;
    content.title = crate::library::distinct_title(store, owner, &content).await?;
    quota.admit(owner, &content).await?;
    finish_all(drawn.uploads, store, owner).await?;
    Ok(store.create_lesson(owner, &content).await?)
}

/// Draws the PDF of `job` as picture slides for the editor to insert into a lesson, and
/// stores their pictures as its owner's media, but makes no lesson: the slides are the
/// teacher's to save. Pictures never saved into a lesson are kept like any upload not saved
/// yet, for [`crate::media::MEDIA_GRACE`]. Refused, it stores nothing.
pub async fn import_slides(
    store: &dyn Store,
    room: &Arc<Room>,
    job: Job<'_>,
) -> Result<Vec<SlideInput>, PdfImportError> {
    let owner = job.owner;
    let drawn = draw_all(store, room, job).await?;
    let slides = drawn.slides();
    finish_all(drawn.uploads, store, owner).await?;
    Ok(slides)
}

/// A PDF's pages drawn, their pictures not stored yet (dropped, their files go), with each
/// page's text and the speaker notes of its [`Source`].
struct Drawn {
    title: String,
    uploads: Vec<Upload>,
    texts: Vec<String>,
    speaker_notes: Vec<String>,
}

impl Drawn {
    /// One picture slide per page.
    fn slides(&self) -> Vec<SlideInput> {
        self.uploads
            .iter()
            .zip(&self.texts)
            .enumerate()
            .map(|(i, (upload, text))| SlideInput {
                id: None,
                kind: "image".into(),
                // The page's first line names the slide in the editor's list.
                title: Some(one_line(text.lines().next().unwrap_or_default(), TITLE_MAX)),
                body: None,
                // The page's text is what the picture shows, for those who cannot see it.
                alt: Some(one_line(text, crate::domain::lesson::ALT_MAX)),
                notes: Some(with_speaker_notes(self.speaker_notes.get(i), text.clone())),
                media: Some(upload.id()),
                answer: None,
                seconds: None,
                // The page holds its own title: a caption would repeat it and draw the page
                // smaller.
                layout: Some(SlideLayout::PictureFull.name().into()),
            })
            .collect()
    }
}

/// Draws every page of the PDF of `job`, in this node's one turn, each page's PNG taking
/// room of the teacher's media quota in `room` as it is drawn, so a PDF that would not fit
/// stops at the first page over; pages the teacher already stores cost nothing
/// ([`finish_all`]). Each page is told to `progress` before it is drawn.
async fn draw_all(
    store: &dyn Store,
    room: &Arc<Room>,
    job: Job<'_>,
) -> Result<Drawn, PdfImportError> {
    let Job {
        owner,
        source: Source {
            mut file,
            speaker_notes,
        },
        limits,
        dir,
        progress,
    } = job;
    let used = store.media_bytes(owner).await?;
    let turn = RENDERS.acquire().await.map_err(std::io::Error::other)?;
    let (room, dir) = (room.clone(), dir.to_owned());
    // A follower gone is an interrupted upload: nothing is stored.
    let gone = || PdfImportError::Media(MediaError::Interrupted);
    let follow = progress.clone();
    let (title, pages) = tokio::task::spawn_blocking(move || {
        // Read whole only now, in turn: `hayro` reads from memory, and the upload limit
        // bounds it.
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        render(
            bytes,
            |count| room.pace(owner, count),
            |page, pages| match &follow {
                Some(p) if p.send(Some(Pages { page, pages })).is_err() => Err(gone()),
                _ => Ok(()),
            },
            |png| {
                let mut upload =
                    Upload::create(&dir, limits, room.media(owner, used, limits.quota_bytes))?;
                upload.copy_from(&mut png.as_slice())?;
                Ok(upload)
            },
        )
    })
    .await
    .map_err(|e| {
        // `hayro` may panic on a malformed file it does not expect; the pages drawn so far
        // are dropped (and their files removed) as the thread unwinds.
        if e.is_panic() {
            tracing::warn!("PDF import: drawing the PDF panicked: refused as unreadable");
            PdfImportError::Unreadable
        } else {
            std::io::Error::other(e).into()
        }
    })??;
    drop(turn);
    if progress.is_some_and(|p| p.is_closed()) {
        return Err(gone());
    }
    let (uploads, texts) = pages.into_iter().unzip();
    Ok(Drawn {
        title,
        uploads,
        texts,
        speaker_notes,
    })
}

/// A slide's notes: the speaker's, if any, then a blank line and the page's `text` (which
/// keeps the slide found by its words), within [`NOTES_MAX`] characters.
fn with_speaker_notes(speaker: Option<&String>, text: String) -> String {
    match speaker.map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(speaker) => format!("{speaker}\n\n{text}")
            .trim_end()
            .chars()
            .take(NOTES_MAX)
            .collect(),
        None => text,
    }
}

/// The text of every page of the PDF in `bytes`, as a slide's notes get it (the speaker
/// notes of a presentation's notes pages, say). Blocks: call it off the runtime.
pub fn page_texts(bytes: Vec<u8>) -> Result<Vec<String>, PdfImportError> {
    let pdf = Pdf::new(bytes).map_err(|_| PdfImportError::Unreadable)?;
    let pages = pdf.pages();
    if pages.len() > PAGES_MAX {
        return Err(PdfImportError::TooManyPages { pages: pages.len() });
    }
    check_streams(&pdf)?;
    let (cache, settings) = (InterpreterCache::new(), InterpreterSettings::default());
    Ok(pages
        .iter()
        .map(|page| page_text(page, &cache, &settings))
        .collect())
}

/// Draws every page of the PDF in `bytes`: its title (from its metadata, else
/// [`UNTITLED`]) and, for each page, what `keep` made of its PNG and the page's text.
/// `admit` is told the number of pages before any is drawn, `report` each page (from 1) and
/// the number of pages as it starts on it. Blocks: call it off the runtime.
pub fn render<T>(
    bytes: Vec<u8>,
    admit: impl FnOnce(usize) -> Result<(), MediaError>,
    mut report: impl FnMut(usize, usize) -> Result<(), PdfImportError>,
    mut keep: impl FnMut(Vec<u8>) -> Result<T, PdfImportError>,
) -> Result<(String, Vec<(T, String)>), PdfImportError> {
    let started = Instant::now();
    let pdf = Pdf::new(bytes).map_err(|e| match e {
        LoadPdfError::Decryption(DecryptionError::PasswordProtected) => {
            PdfImportError::PasswordProtected
        }
        // Encrypted in a way `hayro` cannot undo: for the teacher, the same remedy.
        LoadPdfError::Decryption(_) => PdfImportError::PasswordProtected,
        LoadPdfError::Invalid => PdfImportError::Unreadable,
    })?;
    let pages = pdf.pages();
    match pages.len() {
        // A PDF has a page at least; none found is a file damaged past repair.
        0 => return Err(PdfImportError::Unreadable),
        n if n > PAGES_MAX => return Err(PdfImportError::TooManyPages { pages: n }),
        _ => {}
    }
    for (i, page) in pages.iter().enumerate() {
        let (width, height) = page.render_dimensions();
        let fits = |side: f32| (PAGE_POINTS_MIN..=PAGE_POINTS_MAX).contains(&side);
        if !fits(width) || !fits(height) || width.max(height) > PAGE_ASPECT_MAX * width.min(height)
        {
            return Err(PdfImportError::PageSize {
                page: i + 1,
                width,
                height,
            });
        }
    }
    check_streams(&pdf)?;
    admit(pages.len())?;

    let settings = InterpreterSettings::default();
    let cache = RenderCache::new();
    let text_cache = InterpreterCache::new();
    let mut drawn = Vec::with_capacity(pages.len());
    for (i, page) in pages.iter().enumerate() {
        if started.elapsed() > RENDER_MAX {
            return Err(PdfImportError::TooSlow { page: i + 1 });
        }
        report(i + 1, pages.len())?;
        let png = draw(page, &cache, &settings)?;
        drawn.push((keep(png)?, page_text(page, &text_cache, &settings)));
    }
    Ok((title(&pdf), drawn))
}

/// Refuses a PDF holding a picture of more than [`PICTURE_PIXELS_MAX`] pixels, by what its
/// dictionary says, or a stream that unpacks to more than [`STREAM_BYTES_MAX`] (a picture's,
/// more than its pixels need), before `hayro` unpacks anything; pictures written inside
/// content (`BI … ID … EI`), which have filters of their own, included.
fn check_streams(pdf: &Pdf) -> Result<(), PdfImportError> {
    for object in pdf.objects() {
        if let Object::Stream(stream) = object {
            let picture =
                stream.dict().get::<Name<'_>>(b"Subtype").as_deref() == Some(b"Image".as_slice());
            check_stream(&stream, picture)?;
        }
    }
    // Only once every stream is known to unpack within the bound: content is unpacked to be
    // read for them.
    streams::each_inline_picture(pdf, |picture| check_stream(picture, true))
}

/// Refuses `stream` when it unpacks to more than its bound, or, a `picture`, says it has more
/// than [`PICTURE_PIXELS_MAX`] pixels.
fn check_stream(stream: &Stream<'_>, picture: bool) -> Result<(), PdfImportError> {
    let dict = stream.dict();
    let mut max = STREAM_BYTES_MAX;
    if picture {
        // `hayro` reads the short key (an inline picture's) before the long one, in either
        // kind of picture: the larger of the two bounds whichever it takes.
        let side = |short: &[u8], long: &[u8]| {
            let get = |key: &[u8]| dict.get::<f64>(key).unwrap_or(0.0);
            get(short).max(get(long))
        };
        let (width, height) = (side(b"W", b"Width"), side(b"H", b"Height"));
        if width * height > PICTURE_PIXELS_MAX {
            return Err(PdfImportError::PictureTooLarge { width, height });
        }
        // At most 800 MB, by the bound just checked: whole and positive, it fits.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bytes = (width * height * PICTURE_BYTES_PER_PIXEL).max(0.0) as u64;
        max = max.max(bytes);
    }
    match streams::decoded_len(stream, max) {
        Some(_) => Ok(()),
        None => Err(PdfImportError::StreamTooLarge),
    }
}

/// The page drawn on white to fit [`FIT`], as a PNG.
fn draw<'a>(
    page: &'a Page<'a>,
    cache: &RenderCache<'a>,
    settings: &InterpreterSettings,
) -> Result<Vec<u8>, PdfImportError> {
    let (width, height) = page.render_dimensions();
    let scale = (FIT.0 / width).min(FIT.1 / height);
    // `hayro` sizes the picture by cutting off `side × scale` at the point, so a 16:9 page of
    // 28 × 15.75 cm (LibreOffice's, PowerPoint's) came out 1919 pixels wide, a pixel short of
    // the board. Each side aims at its rounded size instead, a quarter pixel over to survive
    // the cut; the sides' scales then differ by well under a pixel across the page.
    let to_pixels = |side: f32| ((side * scale).round().max(1.0) + 0.25) / side;
    let pixmap = hayro::render(
        page,
        cache,
        settings,
        &RenderSettings::default(),
        &PixmapSettings {
            x_scale: to_pixels(width),
            y_scale: to_pixels(height),
            bg_color: WHITE,
        },
    );
    let (w, h) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
    // Opaque on white: RGB is the whole picture, a quarter smaller than RGBA.
    let rgba = pixmap.data_as_u8_slice();
    let mut rgb = vec![0; rgba.len() / 4 * 3];
    for (to, from) in rgb.chunks_exact_mut(3).zip(rgba.chunks_exact(4)) {
        to.copy_from_slice(&from[..3]);
    }
    let mut png = Vec::new();
    // Fast deflate: slides are mostly flat colour, which compresses well at any level, and
    // the best level takes several times longer per page.
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
        .map_err(std::io::Error::other)?;
    Ok(png)
}

/// The lesson's title: the PDF's own, made one line within [`TITLE_MAX`], else [`UNTITLED`].
fn title(pdf: &Pdf) -> String {
    let text = pdf
        .metadata()
        .title
        .as_deref()
        .map(text_string)
        .unwrap_or_default();
    let line = one_line(&text, TITLE_MAX);
    if line.is_empty() {
        UNTITLED.into()
    } else {
        line
    }
}

/// A PDF text string: UTF-16BE after its byte-order mark, UTF-8 after its own (PDF 2.0),
/// else PDFDocEncoding, read as Latin-1 (they differ in a few punctuation marks only).
fn text_string(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(&[0xfe, 0xff]) {
        let units = utf16
            .chunks_exact(2)
            .map(|u| u16::from_be_bytes([u[0], u[1]]));
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    } else if let Some(utf8) = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        String::from_utf8_lossy(utf8).into_owned()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

/// The text a page shows, for the slide's notes (so that the lesson can be found by it):
/// runs of text in the order drawn, a new line where a run starts on another line, at most
/// [`NOTES_MAX`] characters.
fn page_text<'a>(
    page: &Page<'a>,
    cache: &InterpreterCache<'a>,
    settings: &InterpreterSettings,
) -> String {
    let (width, height) = page.render_dimensions();
    let mut context = Context::new(
        Affine::IDENTITY,
        Rect::new(0.0, 0.0, f64::from(width), f64::from(height)),
        cache,
        page.xref(),
        settings.clone(),
    );
    let mut text = TextDevice::default();
    interpret_page(page, &mut context, &mut text);
    text.text.trim().to_owned()
}

/// A [`Device`] that keeps only the Unicode of the glyphs drawn.
#[derive(Default)]
struct TextDevice {
    text: String,
    chars: usize,
    /// Where the last run started, in page space: a run lower or higher starts a new line.
    last_y: Option<f64>,
    /// The glyphs of the last run filled: text both filled and stroked comes twice.
    last_fill: Option<*const ()>,
}

impl TextDevice {
    /// Keeps `c`, but no control character other than a new line: notes are stored as JSON
    /// text, and a NUL, say, is refused by PostgreSQL.
    fn push(&mut self, c: char) {
        let c = if c.is_control() && c != '\n' { ' ' } else { c };
        if self.chars < NOTES_MAX {
            self.text.push(c);
            self.chars += 1;
        }
    }
}

impl<'a> Device<'a> for TextDevice {
    fn draw_glyph_run(&mut self, run: &GlyphRun<'_, 'a>, props: DrawProps<'a>, mode: &DrawMode) {
        let glyphs = run.glyphs();
        let key = glyphs.as_ptr().cast::<()>();
        if matches!(mode, DrawMode::Stroke(_)) && self.last_fill == Some(key) {
            return;
        }
        self.last_fill = matches!(mode, DrawMode::Fill(_)).then_some(key);
        let Some(first) = glyphs.first() else { return };
        let y = (props.transform * first.transform()).translation().y;
        match self.last_y {
            Some(last) if (last - y).abs() > 1.0 => self.push('\n'),
            Some(_) => self.push(' '),
            None => {}
        }
        self.last_y = Some(y);
        for glyph in glyphs {
            match glyph.as_unicode() {
                Some(hayro::hayro_interpret::hayro_cmap::BfString::Char(c)) => self.push(c),
                Some(hayro::hayro_interpret::hayro_cmap::BfString::String(s)) => {
                    s.chars().for_each(|c| self.push(c))
                }
                None => {}
            }
        }
    }

    fn draw_path(&mut self, _: &BezPath, _: DrawProps<'a>, _: &DrawMode) {}
    fn push_clip_path(&mut self, _: &ClipPath) {}
    fn push_transparency_group(&mut self, _: f32, _: Option<SoftMask<'a>>, _: BlendMode) {}
    fn draw_image(&mut self, _: Image<'a, '_>, _: ImageDrawProps<'a>) {}
    fn pop_clip(&mut self) {}
    fn pop_transparency_group(&mut self) {}
}
