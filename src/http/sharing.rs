//! Sharing a lesson inside the school over HTTP (issue 24): the owner shares a lesson with
//! colleagues by address and puts it in the school library; a teacher lists what is shared
//! with them and browses the library. Reading and copying such a lesson are the lesson
//! routes (`GET /api/lessons/{id}`, `duplicate`). Thin: `crate::library` decides.
//!
//! Every route about one lesson is the owner's: anyone else gets the `404` of a missing
//! lesson (docs/security.md).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Ids, Json};
use super::lessons::{ListOrder, ListParams, Page};
use super::AppState;
use crate::store::{Colleague, LessonShares, Shelf};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shares, share_lesson))
        .routes(routes!(unshare_lesson))
        .routes(routes!(set_listing))
        .routes(routes!(shared_with_me))
        .routes(routes!(school_library))
}

/// A colleague a lesson is shared with.
#[derive(Serialize, ToSchema)]
pub struct Share {
    /// Their account: `DELETE /api/lessons/{id}/shares/{account_id}` stops sharing.
    account_id: Uuid,
    name: String,
    email: String,
}

impl From<Colleague> for Share {
    fn from(c: Colleague) -> Self {
        Share {
            account_id: c.id,
            name: c.name,
            email: c.email,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Shares {
    /// The colleagues who may read the lesson, by name.
    items: Vec<Share>,
    /// Whether it is in the school library (every teacher of this server may read it).
    listed: bool,
}

impl From<LessonShares> for Shares {
    fn from(shares: LessonShares) -> Self {
        Shares {
            items: shares.colleagues.into_iter().map(Share::from).collect(),
            listed: shares.listed,
        }
    }
}

/// Who your lesson is shared with, and whether it is in the school library.
#[utoipa::path(get, path = "/api/lessons/{id}/shares", tag = "sharing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    responses(
        (status = 200, description = "Its colleagues and listing", body = Shares),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
    ))]
async fn list_shares(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<axum::Json<Shares>, ApiError> {
    let shares = state.store.lesson_shares(auth.account.id, id).await?;
    Ok(axum::Json(shares.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct ShareBody {
    /// The colleague's address: an account of this server (or cluster) that may sign in.
    email: String,
}

/// Shares your lesson, read-only, with the teacher of this address: they find it under
/// "Shared with me", always in its current version, and may copy it. Sharing again changes
/// nothing (`200`).
#[utoipa::path(post, path = "/api/lessons/{id}/shares", tag = "sharing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    request_body = ShareBody,
    responses(
        (status = 201, description = "Shared now", body = Share),
        (status = 200, description = "It was shared with them already", body = Share),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours; or `unknown_teacher`: no teacher with this address here", body = ErrorBody),
        (status = 422, description = "Not an address (`email`), or `own_lesson`: your own address", body = ErrorBody),
        (status = 429, description = "Too many changes; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn share_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
    Json(body): Json<ShareBody>,
) -> Result<Response, ApiError> {
    let owner = auth.account.id;
    state.quota.pace(owner)?;
    let (colleague, now) =
        crate::library::share(state.store.as_ref(), owner, id, &body.email).await?;
    let status = if now {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(Share::from(colleague))).into_response())
}

/// Stops sharing your lesson with this colleague: their next read of it is refused.
#[utoipa::path(delete, path = "/api/lessons/{id}/shares/{account_id}", tag = "sharing",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Lesson id"),
        ("account_id" = Uuid, Path, description = "The colleague's account"),
    ),
    responses(
        (status = 204, description = "No longer shared"),
        (status = 400, description = "An id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours, or it is not shared with them", body = ErrorBody),
        (status = 429, description = "Too many changes; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn unshare_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id, account]): Ids<2>,
) -> Result<StatusCode, ApiError> {
    let owner = auth.account.id;
    state.quota.pace(owner)?;
    crate::library::unshare(state.store.as_ref(), owner, id, account).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct ListingBody {
    /// `true` puts the lesson in the school library, `false` takes it out.
    listed: bool,
}

/// Puts your lesson in the school library (every teacher of this server may read and copy
/// it) or takes it out.
#[utoipa::path(put, path = "/api/lessons/{id}/library", tag = "sharing", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    request_body = ListingBody,
    responses(
        (status = 200, description = "Who may read it now", body = Shares),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
        (status = 429, description = "Too many changes; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn set_listing(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
    Json(body): Json<ListingBody>,
) -> Result<axum::Json<Shares>, ApiError> {
    let owner = auth.account.id;
    state.quota.pace(owner)?;
    let shares =
        crate::library::list_in_library(state.store.as_ref(), owner, id, body.listed).await?;
    Ok(axum::Json(shares.into()))
}

/// A lesson of another teacher's in a list.
#[derive(Serialize, ToSchema)]
pub struct SharedItem {
    id: Uuid,
    title: String,
    slide_count: i64,
    /// Milliseconds since the Unix epoch, server clock.
    updated_at: i64,
    version: String,
    owner: SharedOwner,
}

#[derive(Serialize, ToSchema)]
pub struct SharedOwner {
    id: Uuid,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SharedList {
    items: Vec<SharedItem>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The parameters of the lists of other teachers' lessons: the lesson list's but `folder`
/// (their folders are their owners').
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SharedParams {
    /// 1 to 100; default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `updated` (newest first, the default) or `title` (A to Z).
    #[param(value_type = Option<ListOrder>)]
    order: Option<String>,
    /// `next_cursor` of the previous page (of the same `q`).
    cursor: Option<String>,
    /// Search, as in `GET /api/lessons`.
    #[param(max_length = 200)]
    q: Option<String>,
}

impl From<SharedParams> for ListParams {
    fn from(p: SharedParams) -> Self {
        ListParams {
            limit: p.limit,
            order: p.order,
            cursor: p.cursor,
            q: p.q,
            folder: None,
        }
    }
}

/// A page of `shelf` as `params` ask.
async fn shelf_page(
    state: &AppState,
    shelf: Shelf,
    params: Result<Query<SharedParams>, QueryRejection>,
) -> Result<axum::Json<SharedList>, ApiError> {
    let page = Page::parse(params.map(|Query(p)| Query(p.into())))?;
    let rows = state
        .store
        .shared_lessons(
            shelf,
            &page.filter,
            page.order,
            page.cursor.as_ref(),
            page.limit + 1,
        )
        .await?;
    let (rows, next_cursor) = page.cut(rows, |s| &s.lesson);
    Ok(axum::Json(SharedList {
        items: rows
            .into_iter()
            .map(|s| SharedItem {
                id: s.lesson.id,
                title: s.lesson.title,
                slide_count: s.lesson.slide_count,
                updated_at: s.lesson.updated.millis(),
                version: s.lesson.revision.to_string(),
                owner: SharedOwner {
                    id: s.owner,
                    name: s.owner_name,
                },
            })
            .collect(),
        next_cursor,
    }))
}

/// Lessons other teachers share with you, a page at a time (read one with
/// `GET /api/lessons/{id}`, copy it with `duplicate`).
#[utoipa::path(get, path = "/api/lessons/shared", tag = "sharing", security(("bearer" = [])),
    params(SharedParams),
    responses(
        (status = 200, description = "A page of lessons", body = SharedList),
        (status = 400, description = "Malformed query, or `bad_search`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "Invalid limit, order or cursor", body = ErrorBody),
    ))]
async fn shared_with_me(
    State(state): State<AppState>,
    Auth(auth): Auth,
    params: Result<Query<SharedParams>, QueryRejection>,
) -> Result<axum::Json<SharedList>, ApiError> {
    shelf_page(&state, Shelf::SharedWith(auth.account.id), params).await
}

/// The school library: lessons the teachers of this server put there, yours included, a
/// page at a time.
#[utoipa::path(get, path = "/api/library", tag = "sharing", security(("bearer" = [])),
    params(SharedParams),
    responses(
        (status = 200, description = "A page of lessons", body = SharedList),
        (status = 400, description = "Malformed query, or `bad_search`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "Invalid limit, order or cursor", body = ErrorBody),
    ))]
async fn school_library(
    State(state): State<AppState>,
    Auth(_auth): Auth,
    params: Result<Query<SharedParams>, QueryRejection>,
) -> Result<axum::Json<SharedList>, ApiError> {
    shelf_page(&state, Shelf::Library, params).await
}
