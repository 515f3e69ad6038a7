//! Media over HTTP: a teacher uploads a picture or video (`POST /api/media`, the file as the
//! raw body), and anyone holding its id fetches it (`GET /api/media/{id}`), with ranges.
//!
//! The id is the SHA-256 of the bytes: 256 bits nobody guesses, and the only way to name a
//! media. Boards load media with `<img>` and `<video>`, which cannot send a bearer token, so
//! the id is the capability: there is no listing, and a teacher gets ids only of files they
//! uploaded or of lessons they may see. Answers are immutable and cacheable for a year, and
//! can never run as a page of this origin (`nosniff`, `attachment`, a sandboxing CSP).

use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{media_type, Auth};
use super::AppState;
use crate::domain::media::{is_media_id, MediaKind};
use crate::media::{wanted, Claim, MediaError, MediaLimits, Upload, Wanted};
use crate::store::{Media, MEDIA_CHUNK};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(download))
        .routes(routes!(download_preview))
        // An upload is bounded by `media_max_mib` as it streams in, not by the JSON limit.
        .layer(DefaultBodyLimit::disable())
}

/// An HTML form with the file.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the handler streams the form
pub struct UploadForm {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The routes large files arrive on (media, lesson files): exempt from the request deadline
/// (a large video over a school line takes minutes), bounded by [`UPLOAD_IDLE`] instead.
pub const UPLOAD_PATHS: [&str; 3] = ["/api/media", "/api/lessons/import", "/api/slides/import"];

/// How long an upload may send nothing before it counts as interrupted.
const UPLOAD_IDLE: Duration = Duration::from_secs(30);

#[derive(Serialize, ToSchema)]
pub struct MediaBody {
    /// The SHA-256 of the bytes, lower-case hex: what a slide's `media` names.
    id: String,
    /// Detected from the bytes.
    media_type: String,
    size: u64,
    /// Where the file is served.
    url: String,
}

impl From<Media> for MediaBody {
    fn from(m: Media) -> Self {
        Self {
            url: format!("/api/media/{}", m.id),
            id: m.id,
            media_type: m.media_type,
            size: m.size,
        }
    }
}

/// Uploads a picture (PNG, JPEG, WebP, GIF) or a video (MP4, WebM): the raw request body, or
/// the first file of a `multipart/form-data` form.
/// The type is told from the bytes, whatever the name or `Content-Type`; identical files are
/// stored once. Answers the file's id.
#[utoipa::path(post, path = "/api/media", tag = "media", security(("bearer" = [])),
    request_body(description = "The file's bytes, raw or as the file of a form", content(
        (Vec<u8> = "application/octet-stream"),
        (UploadForm = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Stored (or stored before: the same id)", body = MediaBody),
        (status = 400, description = "The upload was interrupted, or the form holds no file", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Your media storage is full", body = ErrorBody),
        (status = 413, description = "Larger than the limit per file", body = ErrorBody),
        (status = 415, description = "Not a picture or video classcast shows", body = ErrorBody),
    ))]
async fn upload(
    State(state): State<AppState>,
    Auth(auth): Auth,
    request: Request,
) -> Result<(StatusCode, axum::Json<MediaBody>), ApiError> {
    let dir = &state.media.uploads;
    let limits = state.media.upload;
    let owner = auth.account.id;
    state.room.pace(owner, 1)?;
    let used = state.store.media_bytes(owner).await?;
    let claim = state.room.media(owner, used, limits.quota_bytes);
    let form = media_type(request.headers()).is_some_and(|t| t == "multipart/form-data");
    let upload = if form {
        let form = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request("malformed_form", e.body_text()))?;
        receive_form(dir, limits, claim, form).await?
    } else {
        let (parts, body) = request.into_parts();
        receive(dir, limits, claim, &parts.headers, body).await?
    };
    let store = state.store.as_ref();
    let media = upload.finish(store, owner).await?;
    Ok((StatusCode::CREATED, axum::Json(media.into())))
}

/// Receives a request body into an upload in `dir`, refusing it once it passes
/// `limits.max_bytes` (at once when `Content-Length` says it will) or what `claim` may take.
pub async fn receive(
    dir: &std::path::Path,
    limits: MediaLimits,
    claim: Claim,
    headers: &HeaderMap,
    body: Body,
) -> Result<Upload, ApiError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let upload = Upload::begin(dir, limits, claim, announced).await?;
    fill(upload, body.into_data_stream(), |_| {
        MediaError::Interrupted.into()
    })
    .await
}

/// Receives the first file of a `multipart/form-data` body (an HTML form's file field),
/// streamed like a raw body; other fields are skipped.
async fn receive_form(
    dir: &std::path::Path,
    limits: MediaLimits,
    claim: Claim,
    mut form: Multipart,
) -> Result<Upload, ApiError> {
    loop {
        let field = tokio::time::timeout(UPLOAD_IDLE, form.next_field())
            .await
            .map_err(|_| ApiError::from(MediaError::Interrupted))?
            .map_err(|e| form_error(&e))?;
        let Some(field) = field else {
            return Err(ApiError::bad_request(
                "no_file",
                "The form holds no file. Send the picture or video as a file field (`file`).",
            ));
        };
        if field.file_name().is_some() {
            let upload = Upload::begin(dir, limits, claim, None).await?;
            return fill(upload, field, |e| form_error(&e)).await;
        }
    }
}

/// Streams `bytes` into `upload` until they end; a read error becomes `failed(error)`, and
/// [`UPLOAD_IDLE`] without data counts as an interrupted upload.
async fn fill<E>(
    mut upload: Upload,
    mut bytes: impl futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    failed: impl Fn(E) -> ApiError,
) -> Result<Upload, ApiError> {
    loop {
        match tokio::time::timeout(UPLOAD_IDLE, bytes.next()).await {
            Ok(Some(Ok(chunk))) => upload.push(&chunk).await?,
            Ok(Some(Err(e))) => return Err(failed(e)),
            Ok(None) => return Ok(upload),
            Err(_) => return Err(MediaError::Interrupted.into()),
        }
    }
}

fn form_error(e: &MultipartError) -> ApiError {
    match e.status() {
        StatusCode::BAD_REQUEST => ApiError::bad_request(
            "malformed_form",
            format!("The form cannot be read: {}.", e.body_text()),
        ),
        _ => MediaError::Interrupted.into(),
    }
}

/// A stored picture or video, whole or the one byte range asked for (`Range: bytes=…`).
#[utoipa::path(get, path = "/api/media/{id}", tag = "media",
    params(("id" = String, Path, description = "The file's id (its SHA-256)")),
    responses(
        (status = 200, description = "The file, with the type told from its bytes when it was uploaded", content(
            (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/webp"),
            (Vec<u8> = "image/gif"), (Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm"),
        )),
        (status = 206, description = "The range asked for, with the file's type", content(
            (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/webp"),
            (Vec<u8> = "image/gif"), (Vec<u8> = "video/mp4"), (Vec<u8> = "video/webm"),
        )),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 404, description = "No such file", body = ErrorBody),
        (status = 416, description = "The range lies outside the file"),
    ))]
async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_media_id(&id) {
        return Err(ApiError::NotFound);
    }
    let media = state.store.media(&id).await?.ok_or(ApiError::NotFound)?;
    let etag = format!("\"{}\"", media.id);
    let mut fixed = immutable_headers(&etag, &media.media_type);
    fixed.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if matches_etag(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, fixed).into_response());
    }
    let mut set = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            fixed.insert(name, value);
        }
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match wanted(range, media.size) {
        Wanted::Whole => (StatusCode::OK, 0, media.size.saturating_sub(1)),
        Wanted::Part { start, end } => {
            set(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", media.size),
            );
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        Wanted::Unsatisfiable => {
            set(header::CONTENT_RANGE, format!("bytes */{}", media.size));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, fixed).into_response());
        }
    };
    let length = if media.size == 0 { 0 } else { end - start + 1 };
    set(header::CONTENT_LENGTH, length.to_string());
    let body = Body::from_stream(chunks(state, media, start, length));
    Ok((status, fixed, body).into_response())
}

/// A picture scaled down for thumbnails (at most 480 pixels a side, JPEG), made once when
/// it was stored. A picture small enough to be its own preview, or one stored before
/// previews existed, redirects to the picture itself; a video has none.
#[utoipa::path(get, path = "/api/media/{id}/preview", tag = "media",
    params(("id" = String, Path, description = "The picture's id (its SHA-256)")),
    responses(
        (status = 200, description = "The preview", content_type = "image/jpeg"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 307, description = "The picture is its own preview: see `Location`"),
        (status = 404, description = "No such picture", body = ErrorBody),
    ))]
async fn download_preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_media_id(&id) {
        return Err(ApiError::NotFound);
    }
    let Some(preview) = state.store.media_preview(&id).await? else {
        let media = state.store.media(&id).await?.ok_or(ApiError::NotFound)?;
        return match MediaKind::from_mime(&media.media_type).is_some_and(MediaKind::is_picture) {
            true => Ok(Redirect::temporary(&format!("/api/media/{id}")).into_response()),
            false => Err(ApiError::NotFound),
        };
    };
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&preview.bytes)));
    let mut fixed = immutable_headers(&etag, &preview.media_type);
    if matches_etag(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, fixed).into_response());
    }
    fixed.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(preview.bytes.len()),
    );
    Ok((StatusCode::OK, fixed, preview.bytes).into_response())
}

/// What every answer with stored bytes carries: cacheable for a year under `etag`, and
/// never run as a page of this origin.
fn immutable_headers(etag: &str, media_type: &str) -> HeaderMap {
    let kind = MediaKind::from_mime(media_type);
    let mut fixed = HeaderMap::new();
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            fixed.insert(name, value);
        }
    };
    set(header::ETAG, etag);
    set(header::CONTENT_TYPE, media_type);
    set(header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    set(
        header::CONTENT_DISPOSITION,
        &format!(
            "attachment; filename=\"{}.{}\"",
            etag.trim_matches('"'),
            kind.map_or("bin", MediaKind::extension)
        ),
    );
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    );
    fixed
}

fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// `length` bytes of `media` from `start`, read a stored chunk at a time.
fn chunks(
    state: AppState,
    media: Media,
    start: u64,
    length: u64,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunk = MEDIA_CHUNK as u64;
    futures_util::stream::unfold(
        (state, media, start, start + length),
        move |(state, media, at, stop)| async move {
            if at >= stop {
                return None;
            }
            let n = u32::try_from(at / chunk).unwrap_or(u32::MAX);
            let read = state.store.media_chunk(&media.id, n).await;
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => return Some((Err(std::io::Error::other(e)), (state, media, stop, stop))),
            };
            // Offsets within one chunk of `MEDIA_CHUNK` bytes, a `usize`.
            let within =
                |offset: u64| usize::try_from(offset - u64::from(n) * chunk).unwrap_or(usize::MAX);
            let from = within(at);
            let to = within(stop).min(bytes.len());
            if to <= from {
                let short = std::io::Error::other(format!("chunk {n} of {} is short", media.id));
                return Some((Err(short), (state, media, stop, stop)));
            }
            let part = bytes.get(from..to).unwrap_or_default().to_vec();
            let next = u64::from(n) * chunk + to as u64;
            Some((Ok(part), (state, media, next, stop)))
        },
    )
}
