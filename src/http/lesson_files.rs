//! Lesson files over HTTP: a lesson exported as one file with its pictures and videos, and a
//! lesson file or a PDF imported as a new lesson (docs/lesson-files.md, docs/importing.md).
//! Thin: `crate::lesson_file` reads and writes the files, `crate::pdf_import` draws PDFs,
//! `crate::office_import` turns PowerPoint and OpenDocument slides into PDFs.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Ids};
use super::lessons::{lesson_response, Lesson};
use super::media::receive;
use super::AppState;
use crate::office_import::{Deck, OfficeImportError};
use crate::{lesson_file, pdf_import};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_lesson))
        .routes(routes!(import_lesson))
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
/// (drawn to fit 1920×1080, the page's text in the slide's notes; at most 100 pages); or,
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
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    let is = |types: &[&str]| kind.is_some_and(|k| types.iter().any(|t| k.eq_ignore_ascii_case(t)));
    let (pdf, deck) = (is(&["application/pdf"]), is(&Deck::MEDIA_TYPES));
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
    // A deck is told by its bytes: a lesson file is a zip too.
    let (file, found) = if pdf {
        (file, None)
    } else {
        Deck::of(file).await.map_err(OfficeImportError::from)?
    };
    // A PDF to draw (sent, or converted from a deck), else the file to read as a lesson file.
    let pdf: Result<pdf_import::Source, std::fs::File> = match found {
        _ if pdf => Ok(file.into()),
        Some(found) => Ok(state.office.convert(found, file, media.max_bytes).await?),
        None if deck => return Err(OfficeImportError::Unreadable.into()),
        None => Err(file),
    };
    let record = match pdf {
        Ok(pdf) => pdf_import::import(store, quota, room, owner, pdf, media, dir).await?,
        Err(file) => lesson_file::import(store, quota, room, owner, file, media, dir).await?,
    };
    lesson_response(&state.lesson_bodies, StatusCode::CREATED, &record)
}
