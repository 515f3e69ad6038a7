//! The lesson library over HTTP (issue 24): a copy of a lesson, and the teacher's folders.
//! Searching and a folder's lessons are the lesson list's `q` and `folder` (`lessons`).
//! Thin: `crate::library` makes copies, the store counts folders.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Ids};
use super::lessons::{lesson_response, Lesson};
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(duplicate_lesson))
        .routes(routes!(list_folders))
}

/// Makes a new lesson of yours with the lesson's slides and folder, titled "Title (copy)"
/// (or "Title (copy 2)", … when that title is taken). Costs lesson storage like a save.
#[utoipa::path(post, path = "/api/lessons/{id}/duplicate", tag = "lessons", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Lesson id")),
    responses(
        (status = 201, description = "The copy; `ETag` holds its version", body = Lesson),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The teacher's lesson storage is full", body = ErrorBody),
        (status = 404, description = "No such lesson of yours", body = ErrorBody),
        (status = 429, description = "Too many lesson changes; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn duplicate_lesson(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<Response, ApiError> {
    let owner = auth.account.id;
    let content = crate::library::copy_of(state.store.as_ref(), owner, id).await?;
    state.quota.admit(owner, &content).await?;
    let record = state.store.create_lesson(owner, &content).await?;
    lesson_response(&state.lesson_bodies, StatusCode::CREATED, &record)
}

#[derive(Serialize, ToSchema)]
pub struct Folder {
    name: String,
    /// How many of your lessons it holds.
    lessons: i64,
}

#[derive(Serialize, ToSchema)]
pub struct FolderList {
    /// By name; a folder exists while a lesson is filed in it.
    items: Vec<Folder>,
}

/// Your folders, with how many lessons each holds (list one with `GET /api/lessons?folder=`).
#[utoipa::path(get, path = "/api/lessons/folders", tag = "lessons", security(("bearer" = [])),
    responses(
        (status = 200, description = "The folders", body = FolderList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
async fn list_folders(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> Result<axum::Json<FolderList>, ApiError> {
    let folders = state.store.lesson_folders(auth.account.id).await?;
    Ok(axum::Json(FolderList {
        items: folders
            .into_iter()
            .map(|f| Folder {
                name: f.name,
                lessons: f.lessons,
            })
            .collect(),
    }))
}
