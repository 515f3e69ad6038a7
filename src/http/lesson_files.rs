//! Lesson files over HTTP: a lesson exported as one file with its pictures and videos, a
//! lesson file, a PDF or a presentation imported as a new lesson, and a PDF imported as
//! slides for the editor to insert (docs/lesson-files.md, docs/importing.md). Thin:
//! `crate::lesson_file` reads and writes the files, `crate::pdf_import` draws PDFs,
//! `crate::office_import` turns PowerPoint and OpenDocument slides into PDFs.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio_util::io::ReaderStream;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{media_type, Auth, Ids};
use super::import_progress::{self, Done};
use super::lessons::{json_with_etag, lesson_body, lesson_response, Lesson};
use super::media::receive;
use super::AppState;
use crate::office_import::{Deck, OfficeImportError};
use crate::{lesson_file, pdf_import};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_lesson))
        .routes(routes!(import_lesson))
        .routes(routes!(import_slides))
}

/// The lesson and the pictures and videos it shows, as one lesson file (a zip: see
/// docs/lesson-files.md) to import on any classcast server.
#[utoipa::path(get, path = "/api/lessons/{id}/export", tag = "lessons", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "The lesson file", content_type = "application/zip"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
        (status = 503, description = "A file of the lesson has not reached this server yet", body = ErrorBody),
    ))]
async fn export_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<Response, ApiError> {
    let dir = &state.media.uploads;
    let exported =
        lesson_file::export(state.store.clone(), &state.room, auth.account.id, id, dir).await?;
    let disposition = format!(
        "attachment; filename=\"{}.classcast.zip\"",
        file_name(&exported.title)
    );
    let claim = exported.claim;
    let body = Body::from_stream(futures_util::StreamExt::inspect(
        ReaderStream::new(tokio::fs::File::from_std(exported.file)),
        move |_| {
            // The room stays taken until the download ends, when the stream is dropped.
            let _ = &claim;
        },
    ));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(exported.size));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// A lesson title as a file name any system takes: letters and digits of ASCII, the rest
/// dashes.
fn file_name(title: &str) -> String {
    let mut name = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_end_matches('-').chars().take(60).collect();
    if name.is_empty() {
        "lesson".into()
    } else {
        name
    }
}

/// Makes a lesson file (as the raw body) a new lesson of yours, with its pictures and
/// videos; or, sent as `application/pdf`, a PDF a new lesson of one picture slide per page
/// (drawn to fit 3840×2160, the page's text in the slide's notes; at most 100 pages); or,
/// where the server has LibreOffice (`office_import` in `/config.json`), PowerPoint
/// (`.pptx`) or OpenDocument (`.odp`) slides, converted to a PDF and imported as one. A deck
/// is told from a lesson file by its bytes, whatever its type says. A damaged, foreign,
/// unsafe or password-protected file is refused with a message saying why, and nothing of
/// it is stored.
#[utoipa::path(post, path = "/api/lessons/import", tag = "lessons", security(("bearer" = [])),
    request_body(description = "A lesson file (`application/zip`), a PDF (`application/pdf`) of one slide per page, or PowerPoint or OpenDocument slides",
        content((Vec<u8> = "application/zip"), (Vec<u8> = "application/pdf"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
            (Vec<u8> = "application/vnd.oasis.opendocument.presentation"))),
    responses(
        (status = 201, description = "The new lesson; `ETag` holds the version", body = Lesson),
        (status = 200, description = "A PDF or presentation sent with `Accept: application/x-ndjson`, once its PDF has passed the checks made before drawing: one line per page as it is drawn, `{\"page\":3,\"pages\":40}`, then `{\"lesson\":{…}}` or the error's body (`{\"error\":{\"code\",\"message\"}}`) as the last line (docs/importing.md)", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "The upload was interrupted", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Your lesson or media storage is full", body = ErrorBody),
        (status = 413, description = "Larger than a lesson file may be", body = ErrorBody),
        (status = 422, description = "Not a lesson file, PDF or presentation, damaged, unsafe, password-protected, too many or too large pages, or its lesson is not valid; a presentation on a server without LibreOffice (`office_import_unavailable`) or one LibreOffice failed to convert in time and memory", body = ErrorBody),
        (status = 429, description = "Too many lesson changes; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "Another presentation is being converted on this server (`office_import_busy`); retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn import_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let dir = &state.media.uploads;
    let claim = state.room.temporary(auth.account.id);
    let kind = media_type(&headers).unwrap_or_default();
    let (pdf, deck) = (
        kind == "application/pdf",
        Deck::MEDIA_TYPES.contains(&kind.as_str()),
    );
    // A PDF is read whole into memory to be drawn, and a deck becomes one: no larger than
    // one upload may be.
    let limits = if pdf || deck {
        state.media.upload
    } else {
        state.media.lesson_file
    };
    let file = receive(dir, limits, claim, &headers, body)
        .await?
        .into_file()
        .await?;
    let (store, quota, room) = (state.store.as_ref(), &state.quota, &state.room);
    let (owner, media) = (auth.account.id, state.media.upload);
    // A PDF to draw (sent, or converted from a deck), else a lesson file; a deck is told by
    // its bytes, as a lesson file is a zip too.
    let source: pdf_import::Source = if pdf {
        file.into()
    } else {
        match Deck::of(file).await.map_err(OfficeImportError::from)? {
            (file, Some(found)) => state.office.convert(found, file, media.max_bytes).await?,
            (_, None) if deck => return Err(OfficeImportError::Unreadable.into()),
            (file, None) => {
                let record =
                    lesson_file::import(store, quota, room, owner, file, media, dir).await?;
                return lesson_response(&state.lesson_bodies, StatusCode::CREATED, &record);
            }
        }
    };
    let bodies = state.lesson_bodies.clone();
    import_progress::answer(
        import_progress::wanted(&headers),
        |progress| async move {
            let job = pdf_import::Job {
                owner,
                source,
                limits: media,
                dir: &state.media.uploads,
                progress,
            };
            pdf_import::import(state.store.as_ref(), &state.quota, &state.room, job).await
        },
        move |record| {
            let body = lesson_body(&bodies, &record)?;
            Ok(Done {
                line: [b"{\"lesson\":".as_slice(), &body, b"}"].concat().into(),
                response: json_with_etag(StatusCode::CREATED, body, record.revision),
            })
        },
    )
    .await
}

/// Slides drawn from a PDF, for the editor to insert.
#[derive(Serialize, ToSchema)]
pub struct ImportedSlides {
    slides: Vec<ImportedSlide>,
}

/// One page of the PDF as a picture slide, as a lesson's save takes it.
#[derive(Serialize, ToSchema)]
pub struct ImportedSlide {
    /// Always `image`.
    kind: String,
    /// The page's first line of text.
    title: String,
    /// The page's text.
    notes: String,
    /// The picture's description: the page's text on one line.
    alt: String,
    /// Always `picture-full`: the page holds its own title, so no caption under it.
    layout: String,
    /// The id of the page's picture among your media (a 3840×2160 PNG, or smaller to keep
    /// the page's shape).
    media: String,
}

/// Draws a PDF (the raw body, whatever its `Content-Type`) as one picture slide per page, as the
/// lesson import does, and stores the pictures among your media, but makes no lesson: the
/// slides are answered for the editor to insert into a lesson and save. Pictures not saved
/// into a lesson within 7 days are removed, like any upload. A damaged, unsafe, too long or
/// password-protected PDF is refused with a message saying why, and nothing of it is stored.
#[utoipa::path(post, path = "/api/slides/import", tag = "lessons", security(("bearer" = [])),
    request_body(description = "A PDF of one slide per page", content((Vec<u8> = "application/pdf"))),
    responses(
        (status = 201, description = "The slides, one per page, in order", body = ImportedSlides),
        (status = 200, description = "With `Accept: application/x-ndjson`, once the PDF has passed the checks made before drawing: one line per page as it is drawn, `{\"page\":3,\"pages\":40}`, then `{\"slides\":[…]}` or the error's body (`{\"error\":{\"code\",\"message\"}}`) as the last line (docs/importing.md)", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "The upload was interrupted", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Your media storage is full", body = ErrorBody),
        (status = 413, description = "Larger than an upload may be", body = ErrorBody),
        (status = 422, description = "Not a PDF, damaged, unsafe, password-protected, or too many or too large pages", body = ErrorBody),
        (status = 429, description = "Too many uploads; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn import_slides(
    State(state): State<AppState>,
    Auth(auth): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (dir, limits, owner) = (&state.media.uploads, state.media.upload, auth.account.id);
    let claim = state.room.temporary(owner);
    let file = receive(dir, limits, claim, &headers, body)
        .await?
        .into_file()
        .await?;
    import_progress::answer(
        import_progress::wanted(&headers),
        |progress| async move {
            let job = pdf_import::Job {
                owner,
                source: file.into(),
                limits,
                dir: &state.media.uploads,
                progress,
            };
            pdf_import::import_slides(state.store.as_ref(), &state.room, job).await
        },
        |slides| {
            let slides = slides
                .into_iter()
                .map(|s| ImportedSlide {
                    kind: s.kind,
                    title: s.title.unwrap_or_default(),
                    notes: s.notes.unwrap_or_default(),
                    alt: s.alt.unwrap_or_default(),
                    layout: s.layout.unwrap_or_default(),
                    media: s.media.unwrap_or_default(),
                })
                .collect();
            let line = serde_json::to_vec(&ImportedSlides { slides })
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let response = (
                StatusCode::CREATED,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                line.clone(),
            )
                .into_response();
            Ok(Done {
                response,
                line: line.into(),
            })
        },
    )
    .await
}
