//! Lessons over HTTP: list, create, read, replace, delete, and their revision history.
//!
//! Every route takes the owner from the session and passes it to the store, which answers
//! `NotFound` for another teacher's lesson exactly as for a missing one.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio_util::io::ReaderStream;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Ids, IfMatch, Json};
use super::media::receive;
use super::AppState;
use crate::domain::board::SlideView;
use crate::domain::hlc::Version;
use crate::domain::lesson::{LessonContent, Slide, SlideInput, SlideKind};
use crate::domain::ValidationError;
use crate::lesson_file;
use crate::store::{LessonCursor, LessonEdit, LessonOrder, LessonRecord, LessonSummary};

pub const PAGE_DEFAULT: u32 = 20;
pub const PAGE_MAX: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lessons, create_lesson))
        .routes(routes!(get_lesson, replace_lesson, delete_lesson))
        .routes(routes!(list_revisions))
        .routes(routes!(restore_revision))
        .routes(routes!(preview_slide))
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
    let dir = state.config.data_dir.join(crate::media::UPLOADS);
    let exported =
        lesson_file::export(state.store.clone(), &state.room, auth.account.id, id, &dir).await?;
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
/// videos. A damaged, foreign or unsafe file is refused with a message saying why, and
/// nothing of it is stored.
#[utoipa::path(post, path = "/api/lessons/import", tag = "lessons", security(("bearer" = [])),
    request_body(content = Vec<u8>, description = "The lesson file", content_type = "application/zip"),
    responses(
        (status = 201, description = "The new lesson; `ETag` holds the version", body = Lesson),
        (status = 400, description = "The upload was interrupted", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Your lesson or media storage is full", body = ErrorBody),
        (status = 413, description = "Larger than a lesson file may be", body = ErrorBody),
        (status = 422, description = "Not a lesson file, damaged, unsafe, or its lesson is not valid", body = ErrorBody),
        (status = 429, description = "Too many lesson changes; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn import_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let dir = state.config.data_dir.join(crate::media::UPLOADS);
    let claim = state.room.temporary(auth.account.id);
    let upload = receive(
        &dir,
        state.config.lesson_file_limits(),
        claim,
        &headers,
        body,
    )
    .await?;
    let record = lesson_file::import(
        state.store.as_ref(),
        &state.quota,
        &state.room,
        auth.account.id,
        upload.into_file().await?,
        state.config.media_limits(),
        &dir,
    )
    .await?;
    Ok(lesson_response(StatusCode::CREATED, record))
}

/// Refuses a lesson that names a picture or video this server does not hold, slide by slide.
async fn known_media(state: &AppState, content: &LessonContent) -> Result<(), ApiError> {
    let missing = crate::media::unknown_media(state.store.as_ref(), content).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let mut errors = ValidationError::default();
    for index in missing {
        errors.add(
            &format!("slides[{index}].media"),
            "This picture or video is not on the server (any more): upload it again.",
        );
    }
    Err(ApiError::Validation(errors))
}

/// A slide as the board shows it.
#[derive(Serialize, ToSchema)]
pub struct SlidePreview {
    kind: SlideKind,
    title: String,
    /// The body rendered from Markdown and sanitised, as the board receives it.
    html: String,
    media: Option<String>,
    seconds: Option<u32>,
    /// A question's answer, as the board shows it once revealed.
    answer: Option<String>,
}

/// How a slide will look on the board, rendered as the board's is (the editor's preview).
/// Nothing is stored.
#[utoipa::path(post, path = "/api/slides/preview", tag = "lessons", security(("bearer" = [])),
    request_body = SlideInput,
    responses(
        (status = 200, description = "The slide as the board shows it", body = SlidePreview),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "What the slide has is not valid (what it still lacks, a file, an answer or a timer's seconds, is left out of the preview instead)", body = ErrorBody),
    ))]
async fn preview_slide(
    Auth(_): Auth,
    Json(slide): Json<SlideInput>,
) -> Result<axum::Json<SlidePreview>, ApiError> {
    let view = SlideView::of(&LessonContent::draft_slide(slide)?, true);
    Ok(axum::Json(SlidePreview {
        kind: view.kind,
        title: view.title,
        html: view.html,
        media: view.media,
        seconds: view.seconds,
        answer: view.answer,
    }))
}

/// A lesson as sent by a client.
#[derive(Deserialize, ToSchema)]
pub struct LessonBody {
    /// 1 to 200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    title: String,
    /// At most 500; order is presentation order.
    #[serde(default)]
    #[schema(max_items = 500)]
    slides: Vec<SlideInput>,
}

/// One variant per slide kind, so that the document says which fields each kind needs.
/// Fields of other kinds are accepted and dropped, so every variant lists them all.
impl utoipa::PartialSchema for SlideInput {
    fn schema() -> RefOr<Schema> {
        use crate::domain::lesson::{
            ANSWER_MAX, BODY_MAX, NOTES_MAX, TIMER_SECONDS_MAX, TITLE_MAX,
        };
        // Optional fields may also be sent as null, which means absent.
        let optional = |t: Type| SchemaType::from_iter([t, Type::Null]);
        let text = |max: usize| {
            ObjectBuilder::new()
                .schema_type(optional(Type::String))
                .max_length(Some(max))
        };
        let variant = |kind: &str, description: &str| {
            ObjectBuilder::new()
                .description(Some(description))
                .property(
                    "id",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::String))
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                        .description(Some("Omit for a new slide; the server assigns one.")),
                )
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind])),
                )
                .required("kind")
                .property("title", text(TITLE_MAX))
                .property(
                    "body",
                    text(BODY_MAX).description(Some("Markdown shown on the board.")),
                )
                .property(
                    "notes",
                    text(NOTES_MAX).description(Some("Speaker notes, never shown on the board.")),
                )
                .property(
                    "media",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::String))
                        .description(Some("Image and video slides only.")),
                )
                .property(
                    "answer",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::String))
                        .description(Some("Question slides only.")),
                )
                .property(
                    "seconds",
                    ObjectBuilder::new()
                        .schema_type(optional(Type::Number))
                        .description(Some("Timer slides only.")),
                )
        };
        let media = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9a-fA-F]{64}$"))
                .description(Some("SHA-256 (hex) of the uploaded file."))
        };
        OneOfBuilder::new()
            .item(variant("text", "Text: a title and Markdown."))
            .item(
                variant("image", "An image.")
                    .property("media", media())
                    .required("media"),
            )
            .item(
                variant("video", "A video.")
                    .property("media", media())
                    .required("media"),
            )
            .item(
                variant("question", "A question whose answer the teacher reveals.")
                    .property(
                        "answer",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .max_length(Some(ANSWER_MAX))
                            .pattern(Some("\\S")),
                    )
                    .required("answer"),
            )
            .item(
                variant("timer", "A countdown.")
                    .property(
                        "seconds",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1))
                            .maximum(Some(TIMER_SECONDS_MAX)),
                    )
                    .required("seconds"),
            )
            .into()
    }
}

impl ToSchema for SlideInput {}

impl LessonBody {
    fn parse(self) -> Result<LessonContent, ValidationError> {
        LessonContent::parse(&self.title, self.slides)
    }
}

#[derive(Serialize, ToSchema)]
pub struct Lesson {
    id: Uuid,
    title: String,
    slides: Vec<Slide>,
    /// The current version; also sent as the `ETag`. Send it back in `If-Match` when saving.
    version: String,
    /// Milliseconds since the Unix epoch, server clock.
    created_at: i64,
    /// Milliseconds since the Unix epoch, server clock.
    updated_at: i64,
}

/// A lesson answer with its `ETag`.
fn lesson_response(status: StatusCode, record: LessonRecord) -> Response {
    let etag = format!("\"{}\"", record.revision);
    let body = Lesson {
        id: record.id,
        title: record.content.title,
        slides: record.content.slides,
        version: record.revision.to_string(),
        created_at: record.created.millis(),
        updated_at: record.updated.millis(),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

#[derive(Serialize, ToSchema)]
pub struct LessonListItem {
    id: Uuid,
    title: String,
    slide_count: i64,
    /// Milliseconds since the Unix epoch, server clock.
    updated_at: i64,
    version: String,
}

#[derive(Serialize, ToSchema)]
pub struct LessonList {
    items: Vec<LessonListItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The orderings the list offers (documentation only: the handler parses the raw string so
/// that a wrong value is reported in the error envelope).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ListOrder {
    Updated,
    Title,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1 to 100; default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `updated` (newest first, the default) or `title` (A to Z).
    #[param(value_type = Option<ListOrder>)]
    order: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The caller's lessons, a page at a time.
#[utoipa::path(get, path = "/api/lessons", tag = "lessons", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of lessons", body = LessonList),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "Invalid limit, order or cursor", body = ErrorBody),
    ))]
async fn list_lessons(
    State(state): State<AppState>,
    Auth(auth): Auth,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<axum::Json<LessonList>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::bad_request(
            "malformed_query",
            format!("The query string cannot be read: {}.", e.body_text()),
        )
    })?;
    let mut errors = ValidationError::default();
    let limit = match params.limit.as_deref().filter(|l| !l.is_empty()) {
        None => PAGE_DEFAULT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => n,
            _ => {
                errors.add("limit", format!("Use a whole number from 1 to {PAGE_MAX}."));
                PAGE_DEFAULT
            }
        },
    };
    let order = match params.order.as_deref() {
        None | Some("") | Some("updated") => LessonOrder::Updated,
        Some("title") => LessonOrder::Title,
        Some(_) => {
            errors.add("order", "Use `updated` or `title`.");
            LessonOrder::Updated
        }
    };
    let cursor = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => match decode_cursor(raw, order) {
            Some(c) => Some(c),
            None => {
                errors.add(
                    "cursor",
                    "This cursor is not valid for this ordering; start from the first page.",
                );
                None
            }
        },
    };
    let (limit, order, cursor) = errors.into_result((limit, order, cursor))?;
    let mut rows = state
        .store
        .list_lessons(auth.account.id, order, cursor.as_ref(), limit + 1)
        .await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| encode_cursor(order, last))
    } else {
        None
    };
    Ok(axum::Json(LessonList {
        items: rows
            .into_iter()
            .map(|s| LessonListItem {
                id: s.id,
                title: s.title,
                slide_count: s.slide_count,
                updated_at: s.updated.millis(),
                version: s.revision.to_string(),
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "o")]
enum CursorWire {
    #[serde(rename = "u")]
    Updated { v: i64, i: Uuid },
    #[serde(rename = "t")]
    Title { k: String, i: Uuid },
}

fn encode_cursor(order: LessonOrder, last: &LessonSummary) -> String {
    let wire = match order {
        LessonOrder::Updated => CursorWire::Updated {
            v: last.updated.0,
            i: last.id,
        },
        LessonOrder::Title => CursorWire::Title {
            k: last.title_key.clone(),
            i: last.id,
        },
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

fn decode_cursor(raw: &str, order: LessonOrder) -> Option<LessonCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    match (serde_json::from_slice(&bytes).ok()?, order) {
        (CursorWire::Updated { v, i }, LessonOrder::Updated) => Some(LessonCursor::Updated {
            version: Version(v),
            id: i,
        }),
        (CursorWire::Title { k, i }, LessonOrder::Title) => Some(LessonCursor::Title {
            title_key: k,
            id: i,
        }),
        _ => None,
    }
}

/// Creates a lesson.
#[utoipa::path(post, path = "/api/lessons", tag = "lessons", security(("bearer" = [])),
    request_body = LessonBody,
    responses(
        (status = 201, description = "Created; `ETag` holds the version", body = Lesson),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The teacher's lesson storage is full", body = ErrorBody),
        (status = 429, description = "Too many lesson changes; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ))]
async fn create_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Json(body): Json<LessonBody>,
) -> Result<Response, ApiError> {
    let content = body.parse()?;
    known_media(&state, &content).await?;
    state.quota.admit(auth.account.id, &content).await?;
    let record = state.store.create_lesson(auth.account.id, &content).await?;
    Ok(lesson_response(StatusCode::CREATED, record))
}

/// One lesson with all its slides.
#[utoipa::path(get, path = "/api/lessons/{id}", tag = "lessons", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "The lesson; `ETag` holds the version", body = Lesson),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
    ))]
async fn get_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<Response, ApiError> {
    let record = state.store.lesson(auth.account.id, id).await?;
    Ok(lesson_response(StatusCode::OK, record))
}

/// Replaces a lesson's title and slides, keeping the previous version as a revision.
///
/// Send `If-Match` with the version you edited: if someone saved in between, the answer is
/// 412 with `current_version`, and nothing is written.
#[utoipa::path(put, path = "/api/lessons/{id}", tag = "lessons", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Lesson id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|"[0-9a-fA-F-]{36}")$"#,
            description = "The version this edit is based on, quoted, as in the ETag"),
    ),
    request_body = LessonBody,
    responses(
        (status = 200, description = "Saved; `ETag` holds the new version", body = Lesson),
        (status = 400, description = "Malformed JSON, id or If-Match", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The teacher's lesson storage is full", body = ErrorBody),
        (status = 429, description = "Too many lesson changes; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
        (status = 412, description = "`version_conflict`: the lesson changed since `If-Match`; `save_overtaken` (a cluster): stored in the history, but a save made at the same moment through another server came after it", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ))]
async fn replace_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
    IfMatch(expected): IfMatch,
    Json(body): Json<LessonBody>,
) -> Result<Response, ApiError> {
    let content = body.parse()?;
    known_media(&state, &content).await?;
    state.quota.admit(auth.account.id, &content).await?;
    let edit = LessonEdit {
        expected,
        content,
        restored_from: None,
    };
    let record = state.store.save_lesson(auth.account.id, id, edit).await?;
    Ok(lesson_response(StatusCode::OK, record))
}

/// Deletes a lesson.
#[utoipa::path(delete, path = "/api/lessons/{id}", tag = "lessons", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
    ))]
async fn delete_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_lesson(auth.account.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Revision {
    /// Pass to the restore route.
    version: String,
    /// Milliseconds since the Unix epoch, server clock.
    created_at: i64,
    title: String,
    slide_count: i64,
    author_name: String,
    /// The version this one restored, if it was a restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    restored_from: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RevisionList {
    /// Newest first; the first is the current version. At most the 100 newest.
    items: Vec<Revision>,
}

/// Earlier versions of a lesson.
#[utoipa::path(get, path = "/api/lessons/{id}/revisions", tag = "lessons", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "Revisions, newest first", body = RevisionList),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
    ))]
async fn list_revisions(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<axum::Json<RevisionList>, ApiError> {
    let revisions = state.store.revisions(auth.account.id, id).await?;
    Ok(axum::Json(RevisionList {
        items: revisions
            .into_iter()
            .map(|r| Revision {
                version: r.revision.to_string(),
                created_at: r.created.millis(),
                title: r.title,
                slide_count: r.slide_count,
                author_name: r.author_name,
                restored_from: r.restored_from.map(|u| u.to_string()),
            })
            .collect(),
    }))
}

/// Makes an earlier version current again, as a new version (history is never rewritten).
#[utoipa::path(post, path = "/api/lessons/{id}/revisions/{rev}/restore", tag = "lessons",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Lesson id"),
        ("rev" = Uuid, Path, description = "The version to restore"),
    ),
    responses(
        (status = 200, description = "Restored; `ETag` holds the new version", body = Lesson),
        (status = 400, description = "An id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The teacher's lesson storage is full", body = ErrorBody),
        (status = 429, description = "Too many lesson changes; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 404, description = "No such lesson of yours, or no such version of it", body = ErrorBody),
        (status = 412, description = "`save_overtaken`: in a cluster, a save made at the same moment through another server came after this restore, which is kept in the history", body = ErrorBody),
    ))]
async fn restore_revision(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id, rev]): Ids<2>,
) -> Result<Response, ApiError> {
    let content = state.store.revision(auth.account.id, id, rev).await?;
    known_media(&state, &content).await?;
    state.quota.admit(auth.account.id, &content).await?;
    let edit = LessonEdit {
        expected: None,
        content,
        restored_from: Some(rev),
    };
    let record = state.store.save_lesson(auth.account.id, id, edit).await?;
    Ok(lesson_response(StatusCode::OK, record))
}
