//! Accounts over HTTP: register, log in, log out, who am I, and what arrives by mail
//! (password reset, confirmed addresses).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, ClientIp, Json};
use super::AppState;
use crate::auth::{self, Awaiting, IssuedToken};
use crate::mail::Language;
use crate::store::Account;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(request_password_reset))
        .routes(routes!(reset_password))
        .routes(routes!(confirm_address))
}

/// The language mail is written in: the page's (`language`), else the browser's.
fn language(chosen: Option<&str>, headers: &HeaderMap) -> Language {
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Language::pick(chosen.into_iter().chain(accepted))
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
    /// The language of mail sent about this account (`en`, `nl`); default: the
    /// `Accept-Language` header's.
    #[serde(default)]
    #[schema(max_length = 35)]
    language: Option<String>,
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
    headers: HeaderMap,
    Json(req): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let lang = language(req.language.as_deref(), &headers);
    let registered = state
        .accounts
        .register(&req.email, &req.name, &req.password, client, lang)
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
        auth::Registered::Pending(Awaiting::Approval) => {
            let body = PendingRegistration {
                status: "pending",
                awaiting: "approval",
                message: "Thank you. An administrator of this server approves new accounts; \
                          you can sign in once yours is approved.",
            };
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        auth::Registered::Pending(Awaiting::Confirmation) => {
            let body = PendingRegistration {
                status: "pending",
                awaiting: "confirmation",
                message: "Thank you. We sent a link to this address: follow it to finish \
                          creating your account.",
            };
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
    })
}

/// A registration that waits for an administrator's approval or for its address to be
/// confirmed.
#[derive(Serialize, ToSchema)]
pub struct PendingRegistration {
    /// Always `pending`.
    status: &'static str,
    /// `approval` (an administrator approves it) or `confirmation` (a link was mailed).
    awaiting: &'static str,
    /// What happens next, for the person registering.
    message: &'static str,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f]+(\.[^\s@.\x00-\x1f\x7f-\x9f]+)+$"
    )]
    email: String,
    /// The language of the mail (`en`, `nl`); default: the `Accept-Language` header's.
    #[serde(default)]
    #[schema(max_length = 35)]
    language: Option<String>,
}

/// A request received; what happens next.
#[derive(Serialize, ToSchema)]
pub struct MailRequested {
    /// Always `received`.
    status: &'static str,
    message: &'static str,
}

/// Mails a link to set a new password, if the address has an account.
///
/// The answer is the same, and as quick, whether or not the address has an account: the
/// mail is written after the answer. The link works once, for 30 minutes.
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Received; a link is mailed if the address has an account that may sign in", body = MailRequested),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "This server does not send mail (`mail_not_configured`)", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid e-mail address", body = ErrorBody),
        (status = 429, description = "Too many requests from this address; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn request_password_reset(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Json(req): Json<PasswordResetRequest>,
) -> Result<Response, ApiError> {
    let lang = language(req.language.as_deref(), &headers);
    state
        .accounts
        .request_password_reset(&req.email, client, lang)
        .await?;
    let body = MailRequested {
        status: "received",
        message: "If this address has an account, a link to set a new password is on its way. \
                  It works once, for 30 minutes.",
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetConfirm {
    /// The token of the mailed link (after `#reset=`).
    #[schema(min_length = 1, max_length = 128)]
    token: String,
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

/// Sets a new password with a mailed link and signs in.
///
/// Every other session of the account ends, live connections included.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses(
        (status = 200, description = "Password set; signed in with a new session", body = SessionToken),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "The link has expired or was used already (`link_invalid`)", body = ErrorBody),
        (status = 404, description = "This server does not send mail (`mail_not_configured`)", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "The password is not acceptable", body = ErrorBody),
        (status = 503, description = "Busy; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    Json(req): Json<PasswordResetConfirm>,
) -> Result<axum::Json<SessionToken>, ApiError> {
    let (_, session) = state
        .accounts
        .reset_password(&req.token, &req.password)
        .await?;
    // The account's other sessions ended with the new password: their live connections
    // close now on this node (other nodes notice within their session poll).
    if let Err(e) = state.live.recheck_sessions().await {
        tracing::warn!(error = %e, "cannot close the live connections of ended sessions");
    }
    Ok(axum::Json(session.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct AddressConfirm {
    /// The token of the mailed link (after `#confirm=`).
    #[schema(min_length = 1, max_length = 128)]
    token: String,
}

/// Confirms a new account's address with a mailed link and signs in.
#[utoipa::path(post, path = "/api/auth/confirm", tag = "auth", request_body = AddressConfirm,
    responses(
        (status = 200, description = "Confirmed and signed in", body = SessionToken),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "The account was disabled by an administrator", body = ErrorBody),
        (status = 403, description = "The link has expired or was used already (`link_invalid`)", body = ErrorBody),
        (status = 404, description = "This server does not send mail (`mail_not_configured`)", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ))]
async fn confirm_address(
    State(state): State<AppState>,
    Json(req): Json<AddressConfirm>,
) -> Result<axum::Json<SessionToken>, ApiError> {
    let (_, session) = state.accounts.confirm_address(&req.token).await?;
    Ok(axum::Json(session.into()))
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
