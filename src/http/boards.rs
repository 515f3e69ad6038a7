//! Boards over HTTP: a board claims its identity and codes; a teacher pairs, lists, renames
//! and unpairs boards. The live channel itself is `live_ws` and `live_sse`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::domain::board::{fingerprint, lesson_media};
use crate::domain::pairing_link;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, BoardAuth, ClientIp, Ids, Json};
use super::live_sse;
use super::AppState;
use crate::live::BoardSummary;
use crate::store::ActiveCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(claim))
        .routes(routes!(new_code))
        .routes(routes!(board_self))
        .routes(routes!(pairing_qr))
        .routes(routes!(board_media))
        .routes(routes!(pair))
        .routes(routes!(list_boards))
        .routes(routes!(rename_board, unpair_board))
        .routes(routes!(revoke_board))
        .routes(routes!(live_sse::events))
        .routes(routes!(live_sse::messages))
        .routes(routes!(live_sse::time))
}

#[derive(Serialize, ToSchema)]
pub struct Code {
    /// Six digits.
    code: String,
    /// Milliseconds since the epoch, server clock.
    expires_at: i64,
}

impl From<ActiveCode> for Code {
    fn from(c: ActiveCode) -> Self {
        Self {
            code: c.code,
            expires_at: c.expires_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClaimedBoard {
    board_id: Uuid,
    /// Four characters to show at all times (see `GET /api/boards/self`).
    fingerprint: String,
    /// Keep secret: it is this board's identity. Send it as a bearer token.
    board_token: String,
    code: String,
    code_expires_at: i64,
}

/// A new board identity and its first pairing code. No sign-in needed: a fresh board page
/// calls this once and keeps the answer.
#[utoipa::path(post, path = "/api/boards/claim", tag = "boards",
    responses(
        (status = 201, description = "A new board", body = ClaimedBoard),
        (status = 429, description = "Too many boards from this address", body = ErrorBody),
    ))]
async fn claim(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
) -> Result<(StatusCode, axum::Json<ClaimedBoard>), ApiError> {
    let claimed = state.live.claim(client).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ClaimedBoard {
            fingerprint: fingerprint(claimed.board),
            board_id: claimed.board,
            board_token: claimed.token,
            code: claimed.code.code,
            code_expires_at: claimed.code.expires_at_ms,
        }),
    ))
}

/// A fresh pairing code for the calling board; the previous one stops working.
#[utoipa::path(post, path = "/api/boards/code", tag = "boards", security(("bearer" = [])),
    responses(
        (status = 200, description = "The new code", body = Code),
        (status = 401, description = "No valid board token", body = ErrorBody),
        (status = 429, description = "Too many new codes for this board or address", body = ErrorBody),
    ))]
async fn new_code(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    BoardAuth(board): BoardAuth,
) -> Result<axum::Json<Code>, ApiError> {
    Ok(axum::Json(
        state.live.request_code(board, client).await?.into(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct BoardSelf {
    board_id: Uuid,
    /// Four characters the board shows at all times; the console shows them after pairing.
    fingerprint: String,
    /// Whether any teacher is paired with this board.
    paired: bool,
    /// Names of the teachers paired with this board; empty while it keeps names off (a
    /// teacher chose `show_name: false`).
    paired_with: Vec<String>,
    code: Option<Code>,
}

/// The calling board: who controls it, and its code while it is not presenting.
#[utoipa::path(get, path = "/api/boards/self", tag = "boards", security(("bearer" = [])),
    responses(
        (status = 200, description = "The board", body = BoardSelf),
        (status = 401, description = "No valid board token", body = ErrorBody),
    ))]
async fn board_self(
    State(state): State<AppState>,
    BoardAuth(board): BoardAuth,
) -> Result<axum::Json<BoardSelf>, ApiError> {
    let pairing = state.live.pairing(board).await?;
    Ok(axum::Json(BoardSelf {
        board_id: board,
        fingerprint: fingerprint(board),
        paired: pairing.paired,
        paired_with: pairing.teachers,
        code: pairing.code.map(Code::from),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QrParams {
    /// The address teachers open (`https://classcast.school.org/teach`), as the board shows
    /// it: http(s), at most 300 characters, no `#`.
    url: String,
}

/// The calling board's current pairing code as a QR code (SVG): the link `url` with the code
/// and the board's fingerprint in its fragment (`…/teach#pair=123456&board=K7QM`), which
/// opens the console with the code filled in. It carries nothing the screen does not show.
#[utoipa::path(get, path = "/api/boards/self/qr", tag = "boards", security(("bearer" = [])),
    params(QrParams),
    responses(
        (status = 200, description = "The QR code", content_type = "image/svg+xml"),
        (status = 400, description = "`url` is not a plain web address", body = ErrorBody),
        (status = 401, description = "No valid board token", body = ErrorBody),
        (status = 404, description = "The board has no code now (it is presenting)", body = ErrorBody),
    ))]
async fn pairing_qr(
    State(state): State<AppState>,
    BoardAuth(board): BoardAuth,
    params: Result<Query<QrParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|_| {
        ApiError::bad_request(
            "invalid_url",
            "Name the teachers' address: `?url=https://…/teach`.",
        )
    })?;
    let code = state
        .live
        .pairing(board)
        .await?
        .code
        .ok_or_else(|| ApiError::NotFoundBecause {
            code: "no_code",
            message: "This board shows no pairing code while it presents.".into(),
        })?;
    let link = pairing_link::link(&params.url, &code.code, &fingerprint(board))
        .map_err(|e| ApiError::bad_request("invalid_url", e.0))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        pairing_link::svg(&link),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct BoardMedia {
    /// The lesson revision presented, `null` when the board presents nothing.
    revision: Option<Uuid>,
    /// Ids of every picture and video of that revision, once each: the current slide's
    /// first, then those after it, then those before.
    media: Vec<String>,
}

/// The pictures and videos of the lesson the calling board presents, so that it can hold
/// them all before they are needed (`GET /api/media/{id}` each) and show the lesson without
/// a network. Read it again when the presented revision changes.
#[utoipa::path(get, path = "/api/boards/self/media", tag = "boards", security(("bearer" = [])),
    responses(
        (status = 200, description = "The presented lesson's media", body = BoardMedia),
        (status = 401, description = "No valid board token", body = ErrorBody),
    ))]
async fn board_media(
    State(state): State<AppState>,
    BoardAuth(board): BoardAuth,
) -> Result<axum::Json<BoardMedia>, ApiError> {
    let snapshot = state.live.state(board).await?;
    let media = snapshot.lesson.as_ref().map_or_else(Vec::new, |content| {
        lesson_media(content, snapshot.state.slide_index)
    });
    Ok(axum::Json(BoardMedia {
        revision: snapshot.state.lesson.as_ref().map(|l| l.revision),
        media,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Board {
    id: Uuid,
    /// The name this teacher gave the board.
    name: String,
    /// Four characters the board itself shows: compare them to be sure which screen this is.
    fingerprint: String,
    /// A board page is connected to this node.
    online: bool,
    /// Version of the board's current state, if it ever had one.
    state_version: Option<i64>,
    /// Newest state version the board reported showing.
    rendered_version: Option<i64>,
    /// Showing it, the board held the pictures and videos of the next two slides.
    ready: bool,
    /// Showing it, the board held the pictures and videos of every slide of the lesson.
    cached: bool,
    /// Showing it, the board played the slide's video without sound: its browser allows
    /// sound only after someone touched the board.
    muted: bool,
    /// Milliseconds since the Unix epoch, server clock.
    paired_at: i64,
}

impl From<BoardSummary> for Board {
    fn from(s: BoardSummary) -> Self {
        Self {
            id: s.pairing.board,
            fingerprint: fingerprint(s.pairing.board),
            name: s.pairing.name,
            online: s.presence.online > 0,
            state_version: s.state_version,
            rendered_version: s.presence.rendered_version,
            ready: s.presence.shown.ready,
            cached: s.presence.shown.cached,
            muted: s.presence.shown.muted,
            paired_at: s.pairing.paired.millis(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct PairRequest {
    /// The six digits the board shows, optionally grouped 3 + 3 with a space or a dash.
    #[schema(pattern = r"^[0-9]{3}[ -]?[0-9]{3}$")]
    code: String,
    /// What to call this board, e.g. "Room 12".
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
}

/// Pairs the board that shows `code` with the signed-in teacher.
#[utoipa::path(post, path = "/api/boards/pair", tag = "boards", security(("bearer" = [])),
    request_body = PairRequest,
    responses(
        (status = 201, description = "Paired", body = Board),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No board shows this code (wrong, expired or used)", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 429, description = "Too many attempts; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn pair(
    State(state): State<AppState>,
    Auth(auth): Auth,
    ClientIp(client): ClientIp,
    Json(req): Json<PairRequest>,
) -> Result<(StatusCode, axum::Json<Board>), ApiError> {
    let board = state
        .live
        .pair(&auth.account, &req.code, &req.name, client)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(board.into())))
}

#[derive(Serialize, ToSchema)]
pub struct BoardList {
    items: Vec<Board>,
}

/// The signed-in teacher's boards.
#[utoipa::path(get, path = "/api/boards", tag = "boards", security(("bearer" = [])),
    responses(
        (status = 200, description = "The boards", body = BoardList),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
async fn list_boards(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> Result<axum::Json<BoardList>, ApiError> {
    let boards = state.live.boards(&auth.account).await?;
    Ok(axum::Json(BoardList {
        items: boards.into_iter().map(Board::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct RenameRequest {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
}

/// Renames a board (for this teacher).
#[utoipa::path(put, path = "/api/boards/{id}", tag = "boards", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Board id")),
    request_body = RenameRequest,
    responses(
        (status = 200, description = "Renamed", body = Board),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such board of yours", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
    ))]
async fn rename_board(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
    Json(req): Json<RenameRequest>,
) -> Result<axum::Json<Board>, ApiError> {
    Ok(axum::Json(
        state
            .live
            .rename(&auth.account, id, &req.name)
            .await?
            .into(),
    ))
}

/// Unpairs a board from the signed-in teacher.
#[utoipa::path(delete, path = "/api/boards/{id}", tag = "boards", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Board id")),
    responses(
        (status = 204, description = "Unpaired"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such board of yours", body = ErrorBody),
    ))]
async fn unpair_board(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<StatusCode, ApiError> {
    state.live.unpair(&auth.account, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a board's identity, for a board whose token may have been copied: its pages close and
/// claim a new identity (showing a new code), the old token opens nothing any more, and every
/// teacher paired with it must pair again.
#[utoipa::path(post, path = "/api/boards/{id}/revoke", tag = "boards", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Board id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such board of yours", body = ErrorBody),
    ))]
async fn revoke_board(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Ids([id]): Ids<1>,
) -> Result<StatusCode, ApiError> {
    state.live.revoke(&auth.account, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
