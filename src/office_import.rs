//! PowerPoint and OpenDocument import: a `.pptx` or `.odp` is converted to a PDF by
//! LibreOffice (`soffice`), when the server has it, and that PDF goes on to
//! [`crate::pdf_import`] like any other. This module owns finding `soffice`, telling a deck
//! from a lesson file (both are zips), and the sandbox a conversion runs in: its own
//! directory (removed whatever happens), an empty environment, no network where the machine
//! allows a namespace of its own, a memory limit, a wall-clock limit after which its whole
//! process group is killed, and one conversion at a time; and the speaker notes, read from a second export of the deck as notes pages. It knows nothing
//! of HTTP.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::pdf_import::{self, Source};

/// The address space LibreOffice may take (`RLIMIT_AS`): a deck converts in about 200 MiB
/// resident; 1 GiB leaves room for large pictures, yet keeps a hostile file from taking the
/// server's memory.
pub const MEMORY_MAX: u64 = 1 << 30;
/// How long a teacher whose conversion found another running is asked to wait.
pub const BUSY_RETRY: Duration = Duration::from_secs(15);

/// What to tell a teacher whose server cannot convert slides: how to save them as a PDF.
pub const SAVE_AS_PDF: &str = "This server cannot convert PowerPoint or OpenDocument slides \
    itself, so save them as a PDF and import that: in PowerPoint File → Save As (or Export) → \
    PDF, in Keynote File → Export To → PDF, in Google Slides File → Download → PDF document.";

#[derive(Debug, thiserror::Error)]
pub enum OfficeImportError {
    #[error("{SAVE_AS_PDF}")]
    Unavailable,
    #[error(
        "Another presentation is being converted on this server; try again in {} seconds.",
        BUSY_RETRY.as_secs()
    )]
    Busy,
    #[error(
        "This file cannot be read as a PowerPoint (.pptx) or OpenDocument (.odp) \
         presentation: it is damaged or of another kind. Open it in its program, save it \
         again (or as a PDF) and try again."
    )]
    Unreadable,
    #[error(
        "LibreOffice stopped while converting this presentation: it is damaged, or too large \
         to convert here (it needs more than {} MiB of memory, or makes a PDF larger than an \
         upload may be). Save it as a PDF and import that instead.",
        MEMORY_MAX >> 20
    )]
    Failed,
    #[error(
        "Converting this presentation took more than {secs} seconds and was stopped. Save it \
         as a PDF and import that instead."
    )]
    TooSlow { secs: u64 },
    /// Larger than one upload may be (a deck sent as a lesson file is allowed more).
    #[error("larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("office import: {0}")]
    Io(#[from] std::io::Error),
}

/// The kinds of presentation LibreOffice converts here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deck {
    /// Office Open XML (PowerPoint 2007 and later); `notes`: it has notes slides.
    Pptx { notes: bool },
    /// OpenDocument (LibreOffice Impress; Google Slides exports it too).
    Odp,
}

impl Deck {
    /// The media types a browser sends with these files.
    pub const MEDIA_TYPES: [&str; 2] = [
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.presentation",
    ];

    /// What the file is, from its bytes: a zip holding a PowerPoint presentation
    /// (`[Content_Types].xml` and `ppt/presentation.xml`) or an OpenDocument one (its
    /// `mimetype` entry), else `None` (a lesson file, say, is a zip of neither). The file is
    /// read (its zip directory, off the runtime) from its start, and given back there.
    pub async fn of(
        mut file: std::fs::File,
    ) -> Result<(std::fs::File, Option<Deck>), std::io::Error> {
        tokio::task::spawn_blocking(move || Self::read(&mut file).map(|deck| (file, deck)))
            .await
            .map_err(std::io::Error::other)?
    }

    fn read(file: &mut std::fs::File) -> Result<Option<Deck>, std::io::Error> {
        file.rewind()?;
        let deck = match zip::ZipArchive::new(&mut *file) {
            Ok(mut zip) => {
                let mut mimetype = Vec::new();
                if let Ok(entry) = zip.by_name("mimetype") {
                    // The entry is a few dozen bytes; a larger one is not OpenDocument's.
                    entry.take(100).read_to_end(&mut mimetype)?;
                }
                if mimetype == Self::MEDIA_TYPES[1].as_bytes() {
                    Some(Deck::Odp)
                } else if zip.index_for_name("[Content_Types].xml").is_some()
                    && zip.index_for_name("ppt/presentation.xml").is_some()
                {
                    let notes = zip.file_names().any(|n| n.starts_with("ppt/notesSlides/"));
                    Some(Deck::Pptx { notes })
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        file.rewind()?;
        Ok(deck)
    }

    fn extension(self) -> &'static str {
        match self {
            Deck::Pptx { .. } => "pptx",
            Deck::Odp => "odp",
        }
    }

    /// Whether it may have speaker notes: a PowerPoint deck says so by its entries; every
    /// OpenDocument slide has a notes page, empty or not.
    fn has_notes(self) -> bool {
        matches!(self, Deck::Pptx { notes: true } | Deck::Odp)
    }
}

/// LibreOffice on this server, if it has it.
pub struct Office {
    /// The programs a conversion runs, when `soffice` and `prlimit` are both found.
    programs: Option<Programs>,
    /// Where each conversion gets its own directory: the uploads directory, which the server
    /// empties when it starts, so not even a crash leaves one behind.
    dir: PathBuf,
    /// One conversion at a time on this node: LibreOffice takes a core and hundreds of MiB.
    turn: tokio::sync::Semaphore,
    /// How long a deck's conversion may take before LibreOffice is killed
    /// (`office_import_secs`): a deck of a hundred slides converts in seconds.
    time_limit: Duration,
}

impl Office {
    /// `soffice` at `configured`, else on `PATH`; conversions in directories under `dir`,
    /// each within `time_limit`.
    pub fn new(configured: Option<&Path>, dir: &Path, time_limit: Duration) -> Self {
        let soffice = match configured {
            Some(path) => path.is_file().then(|| path.to_owned()),
            None => on_path("soffice"),
        };
        let prlimit = on_path("prlimit");
        let isolate = soffice.as_ref().and_then(|_| network_namespace());
        match (&soffice, &prlimit) {
            (Some(soffice), Some(_)) if isolate.is_some() => {
                tracing::info!(soffice = %soffice.display(), "PowerPoint and OpenDocument import on, without network");
            }
            (Some(soffice), Some(_)) => tracing::warn!(
                soffice = %soffice.display(),
                "PowerPoint and OpenDocument import on, but LibreOffice keeps the server's \
                 network: `unshare --net --map-root-user` (util-linux) is missing or not \
                 allowed here (user namespaces off?)"
            ),
            (Some(_), None) => tracing::warn!(
                "PowerPoint and OpenDocument import off: soffice is here but prlimit \
                 (util-linux), which limits its memory, is not"
            ),
            (None, _) => tracing::info!(
                "PowerPoint and OpenDocument import off: no soffice (LibreOffice) found"
            ),
        }
        Self {
            programs: soffice.zip(prlimit).map(|(soffice, prlimit)| Programs {
                soffice,
                prlimit,
                isolate,
            }),
            dir: dir.to_owned(),
            turn: tokio::sync::Semaphore::new(1),
            time_limit,
        }
    }

    /// Whether `.pptx` and `.odp` files can be imported here.
    pub fn available(&self) -> bool {
        self.programs.is_some()
    }

    /// Converts the `deck` in `file` (at most `max_bytes`) to a PDF, returned open for
    /// reading with the speaker notes of each slide where LibreOffice gives them; the
    /// conversion's directory is gone by then, whatever happened.
    pub async fn convert(
        &self,
        deck: Deck,
        mut file: std::fs::File,
        max_bytes: u64,
    ) -> Result<Source, OfficeImportError> {
        let programs = self
            .programs
            .as_ref()
            .ok_or(OfficeImportError::Unavailable)?;
        if file.metadata()?.len() > max_bytes {
            return Err(OfficeImportError::TooLarge { limit: max_bytes });
        }
        let _turn = self
            .turn
            .try_acquire()
            .map_err(|_| OfficeImportError::Busy)?;
        let mut sandbox = Sandbox::create(&self.dir, deck, self.time_limit)?;
        let input = sandbox.input.clone();
        tokio::task::spawn_blocking(move || {
            std::io::copy(&mut file, &mut std::fs::File::create(input)?)
        })
        .await
        .map_err(std::io::Error::other)??;

        let slides = sandbox.run(programs, "pdf", max_bytes).await?;
        let speaker_notes = if deck.has_notes() {
            match sandbox.run(programs, NOTES_PAGES, max_bytes).await {
                Ok(notes) => speaker_notes(slides.clone(), notes).await,
                Err(e) => {
                    tracing::warn!(error = %e, "office import: no notes pages; the slides' notes are their text");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        Ok(Source {
            // Open, it stays readable once its directory is removed.
            file: std::fs::File::open(slides)?,
            speaker_notes,
        })
    }
}

/// The export filter that gives one notes page per slide (the slide drawn small, its speaker
/// notes below), and nothing else.
const NOTES_PAGES: &str = "pdf:impress_pdf_Export:{\
    \"ExportNotesPages\":{\"type\":\"boolean\",\"value\":\"true\"},\
    \"ExportOnlyNotesPages\":{\"type\":\"boolean\",\"value\":\"true\"}}";

/// Each slide's speaker notes: the text of its notes page (`notes`) after the text of the
/// slide drawn on it, which is the text of the slide's page in `slides`. None at all when
/// the two PDFs do not pair up page by page, or cannot be read.
async fn speaker_notes(slides: PathBuf, notes: PathBuf) -> Vec<String> {
    let texts = tokio::task::spawn_blocking(move || {
        let slides = pdf_import::page_texts(std::fs::read(slides).ok()?).ok()?;
        let notes = pdf_import::page_texts(std::fs::read(notes).ok()?).ok()?;
        Some((slides, notes))
    })
    .await;
    match texts {
        Ok(Some((slides, notes))) if slides.len() == notes.len() => {
            let notes = slides
                .iter()
                .zip(notes)
                .map(|(slide, page)| {
                    let notes = page.strip_prefix(slide.as_str()).unwrap_or(&page);
                    notes.trim().to_owned()
                })
                .collect();
            without_page_numbers(notes)
        }
        _ => {
            tracing::warn!("office import: the notes pages do not pair with the slides");
            Vec::new()
        }
    }
}

/// The notes without the slide numbers PowerPoint's notes pages print below them: when
/// every page's last line is a number, and they rise from page to page from at least 1
/// (hidden slides, left out, skip numbers), those lines are page numbers, not notes.
fn without_page_numbers(mut notes: Vec<String>) -> Vec<String> {
    let number = |notes: &String| -> Option<(usize, u32)> {
        let (rest, last) = notes.rsplit_once('\n').unwrap_or(("", notes));
        Some((rest.trim_end().len(), last.trim().parse().ok()?))
    };
    let numbers: Option<Vec<(usize, u32)>> = notes.iter().map(number).collect();
    if let Some(numbers) = numbers {
        let rising = numbers.windows(2).all(|w| w[0].1 < w[1].1);
        if rising && numbers.first().is_some_and(|&(_, n)| n >= 1) {
            for (notes, (keep, _)) in notes.iter_mut().zip(numbers) {
                notes.truncate(keep);
            }
        }
    }
    notes
}

/// Why no PDF came out: LibreOffice says nothing but "source file could not be loaded" and
/// exits 0 for a file it cannot read; a crash (out of memory, or a PDF over its size limit,
/// most likely) exits otherwise.
fn failure(status: ExitStatus) -> OfficeImportError {
    if status.success() {
        OfficeImportError::Unreadable
    } else {
        tracing::warn!(%status, "office import: LibreOffice failed");
        OfficeImportError::Failed
    }
}

/// A conversion's directory and LibreOffice's process group: on drop, the group is killed
/// and the directory removed, so a refused, failed or abandoned conversion (the client gone)
/// leaves nothing.
struct Sandbox {
    path: PathBuf,
    /// The deck, copied in.
    input: PathBuf,
    /// LibreOffice's runs so far, each writing its PDF into a directory of its own.
    runs: usize,
    /// When all runs must be done, `time_limit` after the sandbox was made.
    deadline: Instant,
    time_limit: Duration,
    group: Option<rustix::process::Pid>,
}

impl Sandbox {
    fn create(dir: &Path, deck: Deck, time_limit: Duration) -> Result<Self, std::io::Error> {
        let path = dir.join(format!("office-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&path)?;
        let input = path.join(format!("deck.{}", deck.extension()));
        Ok(Self {
            path,
            input,
            runs: 0,
            deadline: Instant::now() + time_limit,
            time_limit,
            group: None,
        })
    }

    /// Runs `soffice` (of `programs`, with `prlimit`, in a network namespace of its own where
    /// it can) on the deck with the export `filter`, until the deadline, each file it writes
    /// at most `max_bytes`; the PDF it made.
    async fn run(
        &mut self,
        programs: &Programs,
        filter: &str,
        max_bytes: u64,
    ) -> Result<PathBuf, OfficeImportError> {
        self.runs += 1;
        let output = self.path.join(format!("out{}", self.runs));
        let mut profile = String::from("-env:UserInstallation=file://");
        profile.push_str(&self.path.join("profile").to_string_lossy());
        let mut command = match &programs.isolate {
            Some(unshare) => {
                let mut command = tokio::process::Command::new(unshare);
                command.args(UNSHARE).arg(&programs.prlimit);
                command
            }
            None => tokio::process::Command::new(&programs.prlimit),
        };
        command
            .arg(format!("--as={MEMORY_MAX}"))
            .arg(format!("--fsize={max_bytes}"))
            .arg("--")
            .arg(&programs.soffice)
            .arg(profile)
            .args([
                "--headless",
                "--norestore",
                "--convert-to",
                filter,
                "--outdir",
            ])
            .arg(&output)
            .arg(&self.input)
            // Nothing of the server's environment (its settings, a database URL) reaches
            // LibreOffice: a home and temporary directory of its own, and where programs are.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.path)
            .env("TMPDIR", &self.path)
            .env("LANG", "C.UTF-8")
            .current_dir(&self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: `soffice` is a script starting `oosplash`, which starts
            // `soffice.bin`; killing the group reaches them all.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        self.group = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
        let status = match tokio::time::timeout_at(self.deadline.into(), child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                tracing::warn!("office import: LibreOffice took too long and was killed");
                let secs = self.time_limit.as_secs();
                return Err(OfficeImportError::TooSlow { secs });
            }
        };
        // Whatever LibreOffice left running ends here, before another run or the removal.
        self.kill();
        let pdf = output.join("deck.pdf");
        if pdf.is_file() {
            Ok(pdf)
        } else {
            Err(failure(status))
        }
    }

    fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            // Gone already (the usual case) is no error here.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill();
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(error = %e, dir = %self.path.display(), "office import: cannot remove its directory");
        }
    }
}

/// What a conversion runs.
struct Programs {
    soffice: PathBuf,
    /// util-linux's `prlimit`, which sets LibreOffice's memory and file-size limits.
    prlimit: PathBuf,
    /// util-linux's `unshare`, where it can give LibreOffice a network of its own.
    isolate: Option<PathBuf>,
}

/// `unshare`'s arguments: a new network namespace (only a loopback, down), made without
/// privileges inside a user namespace mapping the server's user to root. `unshare` then
/// executes the rest in place, so the process group stays the one started.
const UNSHARE: [&str; 3] = ["--net", "--map-root-user", "--"];

/// `unshare`, when it can make a network namespace here: a deck can link pictures on other
/// hosts, which LibreOffice may fetch, and without a network of its own it would reach
/// whatever the server reaches (its database, the school's network).
fn network_namespace() -> Option<PathBuf> {
    let unshare = on_path("unshare")?;
    let made = std::process::Command::new(&unshare)
        .args(UNSHARE)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    made.then_some(unshare)
}

/// `program` in one of the directories of `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::without_page_numbers;

    fn notes(pages: &[&str]) -> Vec<String> {
        pages.iter().map(|&p| p.to_owned()).collect()
    }

    #[test]
    fn page_numbers_under_every_notes_page_are_dropped_and_nothing_else() {
        // PowerPoint's notes pages: each ends with its slide's number (slide 3 hidden).
        let numbered = notes(&["Ask who has a plant\n1", "2", "Homework\n  4 "]);
        assert_eq!(
            without_page_numbers(numbered),
            notes(&["Ask who has a plant", "", "Homework"])
        );
        // Notes that happen to end with a number are kept: not on every page, or not rising.
        let kept = notes(&["The answer is\n42", "Nothing to add"]);
        assert_eq!(without_page_numbers(kept.clone()), kept);
        let kept = notes(&["Count\n3", "Count\n2"]);
        assert_eq!(without_page_numbers(kept.clone()), kept);
        let kept = notes(&["Start at\n0"]);
        assert_eq!(without_page_numbers(kept.clone()), kept);
    }
}
