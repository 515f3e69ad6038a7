//! PowerPoint and OpenDocument import: a `.pptx` or `.odp` is converted to a PDF by
//! LibreOffice (`soffice`), when the server has it, and that PDF goes on to
//! [`crate::pdf_import`] like any other. This module owns finding `soffice`, telling a deck
//! from a lesson file (both are zips), and the sandbox a conversion runs in: its own
//! directory (removed whatever happens), an empty environment, a memory limit, a wall-clock
//! limit after which its whole process group is killed, and one conversion at a time. It
//! knows nothing of HTTP.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use uuid::Uuid;

/// How long one conversion may take before LibreOffice is killed: a deck of a hundred
/// slides converts in seconds; one taking minutes is pathological.
pub const CONVERT_MAX: Duration = Duration::from_secs(120);
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
        "LibreOffice stopped while converting this presentation: it is damaged, or needs more \
         than {} MiB of memory to convert. Save it as a PDF and import that instead.",
        MEMORY_MAX >> 20
    )]
    Failed,
    #[error(
        "Converting this presentation took more than {} seconds and was stopped. Save it as a \
         PDF and import that instead.",
        CONVERT_MAX.as_secs()
    )]
    TooSlow,
    /// Larger than one upload may be (a deck sent as a lesson file is allowed more).
    #[error("larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("office import: {0}")]
    Io(#[from] std::io::Error),
}

/// The kinds of presentation LibreOffice converts here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deck {
    /// Office Open XML (PowerPoint 2007 and later).
    Pptx,
    /// OpenDocument (LibreOffice Impress, Keynote's and Google Slides' exports).
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
    /// read from its start and left there.
    pub fn of(file: &mut std::fs::File) -> Result<Option<Deck>, std::io::Error> {
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
                    Some(Deck::Pptx)
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
            Deck::Pptx => "pptx",
            Deck::Odp => "odp",
        }
    }
}

/// LibreOffice on this server, if it has it.
pub struct Office {
    /// `soffice` and `prlimit` (util-linux, which sets the memory limit), both found.
    programs: Option<(PathBuf, PathBuf)>,
    /// Where each conversion gets its own directory: the uploads directory, which the server
    /// empties when it starts, so not even a crash leaves one behind.
    dir: PathBuf,
    /// One conversion at a time on this node: LibreOffice takes a core and hundreds of MiB.
    turn: tokio::sync::Semaphore,
}

impl Office {
    /// `soffice` at `configured`, else on `PATH`; conversions in directories under `dir`.
    pub fn new(configured: Option<&Path>, dir: &Path) -> Self {
        let soffice = match configured {
            Some(path) => path.is_file().then(|| path.to_owned()),
            None => on_path("soffice"),
        };
        let prlimit = on_path("prlimit");
        match (&soffice, &prlimit) {
            (Some(soffice), Some(_)) => {
                tracing::info!(soffice = %soffice.display(), "PowerPoint and OpenDocument import on");
            }
            (Some(_), None) => tracing::warn!(
                "PowerPoint and OpenDocument import off: soffice is here but prlimit \
                 (util-linux), which limits its memory, is not"
            ),
            (None, _) => tracing::info!(
                "PowerPoint and OpenDocument import off: no soffice (LibreOffice) found"
            ),
        }
        Self {
            programs: soffice.zip(prlimit),
            dir: dir.to_owned(),
            turn: tokio::sync::Semaphore::new(1),
        }
    }

    /// Whether `.pptx` and `.odp` files can be imported here.
    pub fn available(&self) -> bool {
        self.programs.is_some()
    }

    /// Converts the `deck` in `file` (at most `max_bytes`) to a PDF, returned open for
    /// reading; its directory is gone by then, whatever happened.
    pub async fn convert(
        &self,
        deck: Deck,
        mut file: std::fs::File,
        max_bytes: u64,
    ) -> Result<std::fs::File, OfficeImportError> {
        let (soffice, prlimit) = self
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
        let mut sandbox = Sandbox::create(&self.dir)?;
        let input = sandbox.path.join(format!("deck.{}", deck.extension()));
        let output = sandbox.path.join("out");
        let copy = input.clone();
        tokio::task::spawn_blocking(move || {
            std::io::copy(&mut file, &mut std::fs::File::create(copy)?)
        })
        .await
        .map_err(std::io::Error::other)??;

        let mut profile = String::from("-env:UserInstallation=file://");
        profile.push_str(&sandbox.path.join("profile").to_string_lossy());
        let mut command = tokio::process::Command::new(prlimit);
        command
            .arg(format!("--as={MEMORY_MAX}"))
            .arg("--")
            .arg(soffice)
            .arg(profile)
            .args([
                "--headless",
                "--norestore",
                "--convert-to",
                "pdf",
                "--outdir",
            ])
            .arg(&output)
            .arg(&input)
            // Nothing of the server's environment (its settings, a database URL) reaches
            // LibreOffice: a home and temporary directory of its own, and where programs are.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &sandbox.path)
            .env("TMPDIR", &sandbox.path)
            .env("LANG", "C.UTF-8")
            .current_dir(&sandbox.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: `soffice` is a script starting `oosplash`, which starts
            // `soffice.bin`; killing the group reaches them all.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        sandbox.group = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?));
        let status = match tokio::time::timeout(CONVERT_MAX, child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                tracing::warn!("office import: LibreOffice took too long and was killed");
                return Err(OfficeImportError::TooSlow);
            }
        };
        // Whatever LibreOffice left running ends here, before its directory goes.
        sandbox.kill();
        let pdf = output.join("deck.pdf");
        match std::fs::File::open(&pdf) {
            // Open, it stays readable once its directory is removed.
            Ok(pdf) => Ok(pdf),
            Err(_) => Err(failure(status)),
        }
    }
}

/// Why no PDF came out: LibreOffice says nothing but "source file could not be loaded" and
/// exits 0 for a file it cannot read; a crash (out of memory, most likely) exits otherwise.
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
    group: Option<rustix::process::Pid>,
}

impl Sandbox {
    fn create(dir: &Path) -> Result<Self, std::io::Error> {
        let path = dir.join(format!("office-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path, group: None })
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

/// `program` in one of the directories of `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}
