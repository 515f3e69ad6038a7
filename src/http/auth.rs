//! Accounts over HTTP: register, log in, log out, and who am I.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, ClientIp, Json};
use super::AppState;
use crate::auth::{self, IssuedToken};
use crate::store::Account;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f]+(\.[^\s@.\x00-\x1f\x7f-\x9f]+)+$"
    )]
    email: String,
    /// Shown to the teacher and, later, on the boards they control.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f]+(\.[^\s@.\x00-\x1f\x7f-\x9f]+)+$"
    )]
    email: String,
    #[schema(min_length = 1, max_length = 256)]
    password: String,
}

/// A session: send `token` as `Authorization: Bearer <token>`.
#[derive(Serialize, ToSchema)]
pub struct SessionToken {
    token: String,
    /// When the session ends unless renewed: milliseconds since the Unix epoch, server clock.
    expires_at: i64,
}

impl From<IssuedToken> for SessionToken {
    fn from(t: IssuedToken) -> Self {
        Self {
            token: t.token,
            expires_at: t.expires_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    id: Uuid,
    email: String,
    name: String,
    /// Milliseconds since the Unix epoch, server clock.
    created_at: i64,
}

impl From<Account> for Me {
    fn from(a: Account) -> Self {
        Self {
            id: a.id,
            email: a.email,
            name: a.name,
            created_at: a.created.millis(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    token: String,
    /// Milliseconds since the Unix epoch, server clock.
    expires_at: i64,
    account: Me,
}

/// Creates a teacher account and signs it in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created and signed in (open registration)", body = Registered),
        (status = 202, description = "Received; where registration needs approval the account waits for an administrator. Answered alike whether or not the address was registered already", body = PendingRegistration),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Registration closed, or e-mail domain not allowed", body = ErrorBody),
        (status = 409, description = "E-mail address already registered (open registration)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "Busy; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(req): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let registered = state
        .accounts
        .register(&req.email, &req.name, &req.password, client)
        .await?;
    Ok(match registered {
        auth::Registered::Active(account, token) => {
            let SessionToken { token, expires_at } = token.into();
            let body = Registered {
                token,
                expires_at,
                account: account.into(),
            };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        auth::Registered::Pending => {
            let body = PendingRegistration {
                status: "pending",
                message: "Thank you. An administrator of this server approves new accounts; \
                          you can sign in once yours is approved.",
            };
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
    })
}

/// A registration that waits for an administrator's approval.
#[derive(Serialize, ToSchema)]
pub struct PendingRegistration {
    /// Always `pending`.
    status: &'static str,
    /// What happens next, for the person registering.
    message: &'static str,
}

/// Signs in with e-mail address and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = SessionToken),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Wrong e-mail address or password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 429, description = "Too many attempts; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "Busy; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<axum::Json<SessionToken>, ApiError> {
    let token = state
        .accounts
        .login(&req.email, &req.password, client)
        .await?;
    Ok(axum::Json(token.into()))
}

/// Ends the session whose token is sent.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out; the token no longer works and the session's live connections are closed"),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
async fn logout(
    State(state): State<AppState>,
    Auth(auth): Auth<false>,
) -> Result<StatusCode, ApiError> {
    state.accounts.logout(auth.session_id).await?;
    state.live.end_session(auth.session_id);
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in teacher.
#[utoipa::path(get, path = "/api/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = Me),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
async fn me(Auth(auth): Auth) -> axum::Json<Me> {
    axum::Json(auth.account.into())
}
