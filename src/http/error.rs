//! The one HTTP error type: every failure of every route becomes the same JSON envelope,
//! `{"error": {"code", "message", "fields"?, "current_version"?}}`, with a status that says
//! what kind of failure it is. Domain and store errors are mapped here and nowhere else.
//!
//! Internal failures answer an opaque message; their cause rides along in a response
//! extension ([`InternalCause`]) that the request log writes out, so the body never leaks it.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthError;
use crate::domain::ValidationError;
use crate::error_chain;
use crate::lesson_file::LessonFileError;
use crate::library::ShareError;
use crate::live::LiveError;
use crate::media::MediaError;
use crate::office_import::OfficeImportError;
use crate::pdf_import::PdfImportError;
use crate::quota::QuotaError;
use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `validation_failed`, `not_found`, `version_conflict`, …
    pub code: &'static str,
    /// A sentence a person can act on.
    pub message: String,
    /// Per-field messages, keyed by a path such as `slides[2].title` (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// The lesson's current version (412 only): base a new edit on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
}

/// The cause of a 500/503, for the log only.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read at all (malformed JSON, a bad id in the path).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid session.
    #[error("not signed in")]
    Unauthorized,
    /// 401: wrong e-mail address or password.
    #[error("wrong credentials")]
    InvalidCredentials,
    /// 403: the request is understood but not allowed here.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: missing, or belonging to someone else; the two look the same on purpose.
    #[error("not found")]
    NotFound,
    /// 404 with a more specific explanation (e.g. a pairing code nobody shows).
    #[error("{message}")]
    NotFoundBecause { code: &'static str, message: String },
    /// 405: the route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408: the request took longer than the server waits.
    #[error("request timeout")]
    RequestTimeout,
    /// 409: the request conflicts with existing data.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 412: `If-Match` named a version that is no longer current.
    #[error("version conflict")]
    VersionConflict { current: Uuid },
    /// 412: the save was stored in the history, but another made at the same moment through
    /// another server is current.
    #[error("save overtaken")]
    Overtaken { current: Uuid },
    /// 413: the body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    /// 415: the body is not JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 415: an upload that is not a picture or video classcast shows.
    #[error("unsupported media")]
    UnsupportedMedia,
    /// 422: the input was read but is not valid.
    #[error("validation failed")]
    Validation(ValidationError),
    /// 422: a file was read and refused as a whole (a lesson file, say).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 429: over a rate limit.
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    /// 429: the teacher's other files on their way take the room temporary files may have.
    #[error("too many files on their way")]
    FilesOnTheirWay,
    /// 429: too many live connections open for one account or board.
    #[error("too many connections")]
    TooManyConnections { what: &'static str },
    /// 503: overloaded or the database is unreachable; safe to retry later.
    #[error("unavailable: {cause}")]
    Unavailable {
        retry_after: Duration,
        cause: String,
    },
    /// 503: a resource this request needs is taken by another; the message says which.
    #[error("{message}")]
    Busy {
        code: &'static str,
        message: String,
        retry_after: Duration,
    },
    /// 500: a bug or corrupt data.
    #[error("internal: {0}")]
    Internal(String),
}

/// When a teacher whose files on their way fill their room, or whose live connections are
/// as many as they may be, may try again (by then another has likely ended).
const RETRY_LATER: Duration = Duration::from_secs(10);

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        use ApiError::*;
        match self {
            BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "You are not signed in, or your session has ended. Please sign in.".into(),
            ),
            InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The e-mail address or the password is wrong, or the account has been disabled."
                    .into(),
            ),
            Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "There is nothing here. It may have been deleted, or the address is wrong.".into(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This address does not accept this method.".into(),
            ),
            NotFoundBecause { code, message } => (StatusCode::NOT_FOUND, code, message.clone()),
            Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The request took too long to arrive. Check the connection and try again.".into(),
            ),
            VersionConflict { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "version_conflict",
                "Someone saved this lesson after you opened it. Load the latest version, or \
                 save again based on it to overwrite."
                    .into(),
            ),
            Overtaken { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "save_overtaken",
                "Another save of this lesson, made at the same moment through another server, \
                 came after yours. Yours is kept in the lesson's history: load the latest \
                 version, or save yours again based on it to overwrite."
                    .into(),
            ),
            PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request is larger than the limit of {limit} bytes."),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the request body as JSON with Content-Type: application/json.".into(),
            ),
            UnsupportedMedia => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media",
                "This file is not a picture (PNG, JPEG, WebP, GIF) or a video (MP4, WebM). \
                 Export it in one of these formats and upload it again."
                    .into(),
            ),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Some fields are not valid; see `fields`.".into(),
            ),
            Unprocessable { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            }
            RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "Too many attempts. Try again in {} seconds.",
                    retry_after.as_secs().max(1)
                ),
            ),
            FilesOnTheirWay => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_files",
                format!(
                    "Other files of yours are still on their way (uploads, lesson files being \
                     imported or downloaded) and take the room this server keeps for them. Try \
                     again in {} seconds, when they are done.",
                    RETRY_LATER.as_secs()
                ),
            ),
            TooManyConnections { what } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                format!(
                    "This {what} has too many live connections open; close another page first."
                ),
            ),
            Unavailable { retry_after, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "The server is busy or cannot reach its database. Try again in {} seconds.",
                    retry_after.as_secs().max(1)
                ),
            ),
            Busy { code, message, .. } => (StatusCode::SERVICE_UNAVAILABLE, code, message.clone()),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on the server. It has been logged; please try again.".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                fields: match &self {
                    ApiError::Validation(v) => Some(v.fields.clone()),
                    _ => None,
                },
                current_version: match &self {
                    ApiError::VersionConflict { current } | ApiError::Overtaken { current } => {
                        Some(current.to_string())
                    }
                    _ => None,
                },
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::RateLimited { retry_after }
            | ApiError::Unavailable { retry_after, .. }
            | ApiError::Busy { retry_after, .. } => {
                let secs = retry_after.as_secs().max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::FilesOnTheirWay | ApiError::TooManyConnections { .. } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(RETRY_LATER.as_secs()),
                );
            }
            ApiError::VersionConflict { current } => {
                if let Ok(v) = HeaderValue::from_str(&format!("\"{current}\"")) {
                    response.headers_mut().insert(header::ETAG, v);
                }
            }
            _ => {}
        }
        if let ApiError::Internal(cause) | ApiError::Unavailable { cause, .. } = self {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Validation(e)
    }
}

/// How long a client should wait after the database failed.
const DATABASE_RETRY: Duration = Duration::from_secs(5);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                message: "An account with this e-mail address exists already. Sign in instead."
                    .into(),
            },
            StoreError::VersionConflict { current } => ApiError::VersionConflict { current },
            StoreError::Overtaken { current } => ApiError::Overtaken { current },
            StoreError::Unavailable(cause) => ApiError::Unavailable {
                retry_after: DATABASE_RETRY,
                cause: error_chain(cause.as_ref()),
            },
            StoreError::Corrupt(what) => ApiError::Internal(format!("corrupt data: {what}")),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(v) => ApiError::Validation(v),
            AuthError::RegistrationClosed => ApiError::Forbidden {
                code: "registration_closed",
                message: "New accounts cannot be created on this server. Ask your school's \
                          administrator for an account."
                    .into(),
            },
            AuthError::DomainNotAllowed => ApiError::Forbidden {
                code: "email_domain_not_allowed",
                message: "Accounts can only be created with a school e-mail address accepted \
                          by this server."
                    .into(),
            },
            AuthError::EmailTaken => StoreError::EmailTaken.into(),
            AuthError::InvalidCredentials => ApiError::InvalidCredentials,
            AuthError::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            AuthError::Busy { retry_after } => ApiError::Unavailable {
                retry_after,
                cause: "password hashing queue is full".into(),
            },
            AuthError::Unauthenticated => ApiError::Unauthorized,
            AuthError::Store(e) => e.into(),
            AuthError::Hashing(m) => ApiError::Internal(m),
            AuthError::MailOff => ApiError::NotFoundBecause {
                code: "mail_not_configured",
                message: "This server does not send mail, so this cannot be done by mail here. \
                          Ask your school's administrator to set a new password for you."
                    .into(),
            },
            AuthError::LinkInvalid => ApiError::Forbidden {
                code: "link_invalid",
                message: "This link has expired or was used already. Ask for a new one on the \
                          sign-in page."
                    .into(),
            },
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::TooLarge { limit } => ApiError::PayloadTooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            MediaError::Full { used, limit } => ApiError::Forbidden {
                code: "storage_full",
                message: format!(
                    "Your pictures and videos use {} of your {} MiB, and this file does not \
                     fit. Ask your administrator for more.",
                    mib(used),
                    limit >> 20
                ),
            },
            MediaError::Busy => ApiError::FilesOnTheirWay,
            MediaError::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            MediaError::Unsupported => ApiError::UnsupportedMedia,
            MediaError::Interrupted => ApiError::bad_request(
                "upload_interrupted",
                "The upload stopped before the whole file arrived. Try again.",
            ),
            MediaError::Io(e) => ApiError::Internal(format!("upload: {e}")),
            MediaError::Store(e) => e.into(),
        }
    }
}

impl From<LessonFileError> for ApiError {
    fn from(e: LessonFileError) -> Self {
        match e {
            LessonFileError::Refused { code, message } => ApiError::Unprocessable { code, message },
            LessonFileError::Invalid(v) => ApiError::Validation(v),
            LessonFileError::MissingMedia(_) => ApiError::Unavailable {
                retry_after: Duration::from_secs(5),
                cause: e.to_string(),
            },
            LessonFileError::Media(e) => e.into(),
            LessonFileError::Quota(e) => e.into(),
            LessonFileError::Store(e) => e.into(),
            LessonFileError::Io(_) | LessonFileError::Zip(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<PdfImportError> for ApiError {
    fn from(e: PdfImportError) -> Self {
        let code = match e {
            PdfImportError::PasswordProtected => "pdf_password_protected",
            PdfImportError::Unreadable => "not_a_pdf",
            PdfImportError::TooManyPages { .. } => "pdf_too_many_pages",
            PdfImportError::PageSize { .. } => "pdf_page_size",
            PdfImportError::PictureTooLarge { .. } => "pdf_picture_too_large",
            PdfImportError::StreamTooLarge => "pdf_stream_too_large",
            PdfImportError::TooSlow { .. } => "pdf_too_slow",
            PdfImportError::Media(e) => return e.into(),
            PdfImportError::Quota(e) => return e.into(),
            PdfImportError::Store(e) => return e.into(),
            PdfImportError::Io(_) => return ApiError::Internal(e.to_string()),
        };
        ApiError::Unprocessable {
            code,
            message: e.to_string(),
        }
    }
}

impl From<OfficeImportError> for ApiError {
    fn from(e: OfficeImportError) -> Self {
        let code = match e {
            OfficeImportError::Unavailable => "office_import_unavailable",
            OfficeImportError::Unreadable => "not_a_presentation",
            OfficeImportError::Failed => "office_conversion_failed",
            OfficeImportError::TooSlow { .. } => "office_conversion_too_slow",
            OfficeImportError::Busy => {
                return ApiError::Busy {
                    code: "office_import_busy",
                    message: e.to_string(),
                    retry_after: crate::office_import::BUSY_RETRY,
                }
            }
            OfficeImportError::TooLarge { limit } => return MediaError::TooLarge { limit }.into(),
            OfficeImportError::Io(_) => return ApiError::Internal(e.to_string()),
        };
        ApiError::Unprocessable {
            code,
            message: e.to_string(),
        }
    }
}

impl From<ShareError> for ApiError {
    fn from(e: ShareError) -> Self {
        match e {
            ShareError::Invalid(v) => ApiError::Validation(v),
            // Teachers of one school may know each other's addresses: saying that none
            // matches tells a signed-in owner no more than the school's staff list would
            // (docs/security.md, "Sharing").
            ShareError::UnknownTeacher => ApiError::NotFoundBecause {
                code: "unknown_teacher",
                message: "No teacher with this e-mail address uses this server. Check the \
                          address, or ask your colleague to make an account."
                    .into(),
            },
            ShareError::Yourself => ApiError::Unprocessable {
                code: "own_lesson",
                message: "This is your own address: the lesson is yours already.".into(),
            },
            ShareError::Store(e) => e.into(),
        }
    }
}

impl From<QuotaError> for ApiError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            QuotaError::Full { used, limit } => ApiError::Forbidden {
                code: "storage_full",
                message: format!(
                    "Your lessons and their saved versions use {} of your {} MiB. Delete \
                     lessons you no longer need (their space is freed within an hour), or ask \
                     your administrator for more.",
                    mib(used),
                    limit >> 20
                ),
            },
            QuotaError::Store(e) => e.into(),
        }
    }
}

/// Bytes as MiB with one decimal, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

impl From<LiveError> for ApiError {
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::Invalid(v) => ApiError::Validation(v),
            LiveError::UnknownCode => ApiError::NotFoundBecause {
                code: "unknown_code",
                message: "No board shows this code. Check the digits on the board; a code \
                          works once and for 10 minutes."
                    .into(),
            },
            LiveError::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            LiveError::NotFound => ApiError::NotFound,
            LiveError::UnknownVersion => ApiError::bad_request("malformed", e.to_string()),
            LiveError::TooManyConnections(what) => ApiError::TooManyConnections { what },
            LiveError::Command(c) => ApiError::bad_request("invalid_command", c.to_string()),
            LiveError::Behind => ApiError::Unavailable {
                retry_after: Duration::from_secs(1),
                cause: e.to_string(),
            },
            LiveError::Store(s) => s.into(),
        }
    }
}
