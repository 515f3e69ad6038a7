//! Lessons over HTTP: list, create, read, replace, delete, and their revision history (lesson
//! files are `lesson_files`, a slide's preview `slides`).
//!
//! Every route takes the owner from the session and passes it to the store, which answers
//! `NotFound` for another teacher's lesson exactly as for a missing one.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Ids, IfMatch, Json};
use super::AppState;
use crate::domain::design::{Theme, ThemeInput};
use crate::domain::hlc::Version;
use crate::domain::lesson::{LessonContent, Slide, SlideInput};
use crate::domain::library::{parse_folder, parse_query};
use crate::domain::ValidationError;
use crate::library::{readable, Readable};
use crate::store::{
    LessonCursor, LessonEdit, LessonFilter, LessonOrder, LessonRecord, LessonSummary, SharedLesson,
};

pub const PAGE_DEFAULT: u32 = 20;
pub const PAGE_MAX: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lessons, create_lesson))
        .routes(routes!(get_lesson, replace_lesson, delete_lesson))
        .routes(routes!(list_revisions))
        .routes(routes!(restore_revision))
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
    /// The folder to file the lesson in: one line of at most 60 characters, trimmed; `""`
    /// files it in none. Left out (or `null`), a save keeps the lesson where it is.
    #[schema(max_length = 60)]
    folder: Option<String>,
    /// The colours the lesson is shown in (docs/layouts.md). Left out (or `null`), a save
    /// keeps the lesson's theme; a new lesson has the default (`light`, no accent).
    theme: Option<ThemeInput>,
}

/// What a save leaves as it is because the body leaves it out.
struct Kept {
    folder: bool,
    theme: bool,
}

impl LessonBody {
    /// The content, and what it leaves as the lesson has it.
    fn parse(self) -> Result<(LessonContent, Kept), ValidationError> {
        let kept = Kept {
            folder: self.folder.is_none(),
            theme: self.theme.is_none(),
        };
        let content = LessonContent::parse_whole(
            &self.title,
            self.folder.as_deref(),
            self.theme.as_ref(),
            self.slides,
        )?;
        Ok((content, kept))
    }
}

#[derive(Serialize, ToSchema)]
pub struct Lesson {
    id: Uuid,
    title: String,
    slides: Vec<Slide>,
    /// The folder the lesson is filed in; `null` for none.
    folder: Option<String>,
    /// The colours the lesson is shown in; `null` for the default (`light`, no accent).
    theme: Option<Theme>,
    /// The current version; also sent as the `ETag`. Send it back in `If-Match` when saving.
    version: String,
    /// Milliseconds since the Unix epoch, server clock.
    created_at: i64,
    /// Milliseconds since the Unix epoch, server clock.
    updated_at: i64,
    /// What you may do with it: `owner` (yours), or `read` (another teacher's, shared with
    /// you or in the school library: read it, or copy it with `duplicate` to change it).
    access: Access,
    /// Whose lesson it is, when it is not yours.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<LessonOwner>,
}

/// What the caller may do with a lesson.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Owner,
    Read,
}

/// The teacher a lesson belongs to, as a colleague sees them.
#[derive(Serialize, ToSchema)]
pub struct LessonOwner {
    id: Uuid,
    name: String,
}

impl Lesson {
    fn of(record: &LessonRecord, access: Access, owner: Option<LessonOwner>) -> Self {
        Lesson {
            id: record.id,
            title: record.content.title.clone(),
            slides: record.content.slides.clone(),
            folder: record.content.folder.clone(),
            theme: record.content.theme.clone(),
            version: record.revision.to_string(),
            created_at: record.created.millis(),
            updated_at: record.updated.millis(),
            access,
            owner,
        }
    }
}

/// A lesson answer with its `ETag`; the body is made once per revision and kept in
/// `bodies`, so that a save's answer also serves the reads that follow it.
pub(super) fn lesson_response(
    bodies: &LessonBodies,
    status: StatusCode,
    record: &LessonRecord,
) -> Result<Response, ApiError> {
    let body = lesson_body(bodies, record)?;
    Ok(json_with_etag(status, body, record.revision))
}

/// Another teacher's lesson as `reader` may read it, with its `ETag`; made for each read (its
/// body names the owner, so it is not kept with the owner's in [`LessonBodies`]).
fn shared_lesson_response(shared: &SharedLesson) -> Result<Response, ApiError> {
    let owner = LessonOwner {
        id: shared.owner,
        name: shared.owner_name.clone(),
    };
    let body = Lesson::of(&shared.record, Access::Read, Some(owner));
    let json = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_with_etag(
        StatusCode::OK,
        Bytes::from(json),
        shared.record.revision,
    ))
}

pub(super) fn json_with_etag(status: StatusCode, body: Bytes, revision: Uuid) -> Response {
    let json = HeaderValue::from_static("application/json");
    let mut response = (status, [(header::CONTENT_TYPE, json)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// Answers to `GET /api/lessons/{id}` by revision id, as sent: a revision never changes, so
/// its JSON is made once.
pub type LessonBodies = crate::cache::Cache<Uuid, Bytes>;

/// What [`LessonBodies`] holds: the bodies of the lessons opened lately.
pub const LESSON_BODIES: crate::cache::Bounds = crate::cache::Bounds {
    entries: std::num::NonZeroUsize::new(2_048).expect("not zero"),
    bytes: 16 << 20,
    ttl: None,
};

/// The answer's body for `record`, made or kept in `bodies`.
pub(super) fn lesson_body(bodies: &LessonBodies, record: &LessonRecord) -> Result<Bytes, ApiError> {
    if let Some(body) = bodies.get(&record.revision) {
        return Ok(body);
    }
    let body = Lesson::of(record, Access::Owner, None);
    let json = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let json = Bytes::from(json);
    bodies.put(bodies.ticket(), record.revision, json.clone(), json.len());
    Ok(json)
}

#[derive(Serialize, ToSchema)]
pub struct LessonListItem {
    id: Uuid,
    title: String,
    slide_count: i64,
    /// Milliseconds since the Unix epoch, server clock.
    updated_at: i64,
    version: String,
    /// The folder the lesson is filed in; `null` for none.
    folder: Option<String>,
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
    pub(super) limit: Option<String>,
    /// `updated` (newest first, the default) or `title` (A to Z).
    #[param(value_type = Option<ListOrder>)]
    pub(super) order: Option<String>,
    /// `next_cursor` of the previous page (of the same `q` and `folder`).
    pub(super) cursor: Option<String>,
    /// Search: only lessons whose title or slide text (titles, text, notes, answers) contains
    /// every word, in any order, ignoring case. At most 200 characters and 8 words.
    #[param(max_length = 200)]
    pub(super) q: Option<String>,
    /// Only the lessons filed in this folder.
    #[param(max_length = 60)]
    pub(super) folder: Option<String>,
}

/// The caller's lessons, a page at a time; a search (`q`) or a folder's (`folder`).
#[utoipa::path(get, path = "/api/lessons", tag = "lessons", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of lessons", body = LessonList),
        (status = 400, description = "Malformed query, or `bad_search`: `q` is too long or has too many words", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "Invalid limit, order, cursor or folder", body = ErrorBody),
    ))]
async fn list_lessons(
    State(state): State<AppState>,
    Auth(auth): Auth,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<axum::Json<LessonList>, ApiError> {
    let page = Page::parse(params)?;
    let rows = state
        .store
        .list_lessons(
            auth.account.id,
            &page.filter,
            page.order,
            page.cursor.as_ref(),
            page.limit + 1,
        )
        .await?;
    let (rows, next_cursor) = page.cut(rows, |s| s);
    Ok(axum::Json(LessonList {
        items: rows
            .into_iter()
            .map(|s| LessonListItem {
                id: s.id,
                title: s.title,
                slide_count: s.slide_count,
                updated_at: s.updated.millis(),
                version: s.revision.to_string(),
                folder: s.folder,
            })
            .collect(),
        next_cursor,
    }))
}

/// A page of a lesson list as asked for: which lessons, in what order, from where, how many.
pub(super) struct Page {
    pub filter: LessonFilter,
    pub order: LessonOrder,
    pub cursor: Option<LessonCursor>,
    pub limit: u32,
}

impl Page {
    /// The page `params` ask for, or why they cannot be read.
    pub(super) fn parse(
        params: Result<Query<ListParams>, QueryRejection>,
    ) -> Result<Page, ApiError> {
        let Query(params) = params.map_err(|e| {
            ApiError::bad_request(
                "malformed_query",
                format!("The query string cannot be read: {}.", e.body_text()),
            )
        })?;
        let words = parse_query(params.q.as_deref().unwrap_or_default()).map_err(|e| {
            let message = e.fields.into_values().next().unwrap_or_default();
            ApiError::bad_request("bad_search", message)
        })?;
        let mut errors = ValidationError::default();
        let folder = params
            .folder
            .as_deref()
            .and_then(|raw| parse_folder(&mut errors, raw));
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
        Ok(Page {
            filter: LessonFilter { words, folder },
            order,
            cursor,
            limit,
        })
    }

    /// `rows`, read with one more than the page holds, cut to the page, and the cursor of
    /// the next page when there is one (`summary` finds each row's lesson).
    pub(super) fn cut<T>(
        &self,
        mut rows: Vec<T>,
        summary: impl Fn(&T) -> &LessonSummary,
    ) -> (Vec<T>, Option<String>) {
        let limit = self.limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|last| encode_cursor(self.order, summary(last)))
        } else {
            None
        };
        (rows, next)
    }
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
    let (content, _) = body.parse()?;
    known_media(&state, &content).await?;
    state.quota.admit(auth.account.id, &content).await?;
    let record = state.store.create_lesson(auth.account.id, &content).await?;
    lesson_response(&state.lesson_bodies, StatusCode::CREATED, &record)
}

/// One lesson with all its slides: yours, or another teacher's that is shared with you or in
/// the school library (`access` says which; always its current version).
#[utoipa::path(get, path = "/api/lessons/{id}", tag = "lessons", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "The lesson; `ETag` holds the version", body = Lesson),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson you may read", body = ErrorBody),
    ))]
async fn get_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<Response, ApiError> {
    match readable(state.store.as_ref(), auth.account.id, id).await? {
        Readable::Own(record) => lesson_response(&state.lesson_bodies, StatusCode::OK, &record),
        Readable::Shared(shared) => shared_lesson_response(&shared),
    }
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
    let (content, kept) = body.parse()?;
    known_media(&state, &content).await?;
    state.quota.admit(auth.account.id, &content).await?;
    let edit = LessonEdit {
        expected,
        content,
        restored_from: None,
        keep_folder: kept.folder,
        keep_theme: kept.theme,
    };
    let record = state.store.save_lesson(auth.account.id, id, edit).await?;
    state.live.announce_lesson(id, record.updated);
    lesson_response(&state.lesson_bodies, StatusCode::OK, &record)
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
    let version = state.store.delete_lesson(auth.account.id, id).await?;
    state.live.announce_lesson(id, version);
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
        // A restore brings back title, slides and theme (how the lesson looked); where the
        // lesson is filed stays.
        keep_folder: true,
        keep_theme: false,
    };
    let record = state.store.save_lesson(auth.account.id, id, edit).await?;
    state.live.announce_lesson(id, record.updated);
    lesson_response(&state.lesson_bodies, StatusCode::OK, &record)
}
