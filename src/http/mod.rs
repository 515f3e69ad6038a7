//! The HTTP surface: one router for the JSON API, the operations routes and the pages, with
//! the layers every response shares (request ids, one log line per request, security
//! headers, CORS for configured front-end origins, body size limit, session renewal).
//!
//! Handlers are thin: they extract, call the domain or the store, and map the result.
//! Files: one per resource (`auth`, `lessons`, `boards`, `pages`, `ops`), the live channel's
//! transports (`live_ws`, `live_sse`), `connections` for accepting TCP connections, `error`
//! for the one error type, `extract` for extractors that speak the error envelope, and
//! `metrics` for `/metrics`, which is served on a listener of its own, never by [`app`].

pub mod auth;
pub mod boards;
pub mod connections;
pub mod error;
pub mod extract;
pub mod import_progress;
pub mod lesson_files;
pub mod lessons;
pub mod library;
pub mod live_log;
pub mod live_sse;
pub mod live_ws;
pub mod media;
pub mod metrics;
pub mod ops;
pub mod pages;
pub mod sharing;
pub mod slides;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Accounts;
use crate::store::Store;
use error::{ApiError, InternalCause};
use extract::RenewalSlot;

/// Response headers carrying a renewed session token; the client replaces its stored one.
pub const RENEWED_TOKEN: &str = "x-classcast-token";
pub const RENEWED_TOKEN_EXPIRES: &str = "x-classcast-token-expires";

/// What every handler is given. One `Arc`: axum clones the state for every request (each
/// route's service and each `State` extractor), so a clone must cost one reference count,
/// not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    pub store: Arc<dyn Store>,
    pub accounts: Arc<Accounts>,
    pub http: Arc<HttpSettings>,
    pub pages: Arc<pages::Pages>,
    pub client_config: Arc<ops::ClientConfig>,
    pub live: Arc<crate::live::Live>,
    pub quota: Arc<crate::quota::LessonQuota>,
    /// Room per teacher for files on their way in or out.
    pub room: Arc<crate::media::Room>,
    pub media: Arc<crate::media::MediaSettings>,
    /// LibreOffice, where the server has it, for PowerPoint and OpenDocument import.
    pub office: Arc<crate::office_import::Office>,
    pub lesson_bodies: Arc<lessons::LessonBodies>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "classcast", description = "Steer a classroom display from a laptop, tablet or phone. \
        Every error answers `{\"error\": {\"code\", \"message\", \"fields\"?}}`."),
    modifiers(&BearerAuth),
    // Named only through `value_type` in query parameters, which utoipa does not collect.
    components(schemas(lessons::ListOrder)),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "lessons", description = "Lessons and their revisions"),
        (name = "sharing", description = "Lessons shared with colleagues and the school library"),
        (name = "boards", description = "Board identities and pairing"),
        (name = "media", description = "Pictures and videos for slides"),
        (name = "live", description = "The live channel's fallback transport (the WebSocket is at /ws)"),
        (name = "operations", description = "Health and client configuration"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and the OpenAPI document that describes exactly them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(lessons::router())
        .merge(lesson_files::router())
        .merge(library::router())
        .merge(sharing::router())
        .merge(slides::router())
        .merge(boards::router())
        .merge(media::router())
        .merge(ops::router())
        .split_for_parts()
}

/// The complete application.
pub fn app(state: AppState) -> Router {
    let (api_routes, openapi) = api();
    let openapi = Arc::new(openapi);
    let body_limit = state.http.max_body_bytes;
    let csp = content_security_policy(&state.http);
    Router::new()
        // API answers are for one caller (several carry tokens): no cache may keep them.
        .merge(api_routes.layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )))
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc) }
            }),
        )
        .route("/ws", axum::routing::get(live_ws::upgrade))
        .merge(pages::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(session_renewal))
        .layer(middleware::from_fn_with_state(
            state.http.request_deadline,
            request_deadline,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(cors(&state.http))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(MatchedPath::as_str)
                        .unwrap_or("-");
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", id, method = %req.method(), path = %req.uri().path(), route)
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _: &tracing::Span| {
                    let ms = latency.as_secs_f64() * 1000.0;
                    match res.extensions().get::<InternalCause>() {
                        Some(InternalCause(cause)) => {
                            tracing::error!(status = res.status().as_u16(), ms, cause, "request failed")
                        }
                        None => tracing::info!(status = res.status().as_u16(), ms, "request"),
                    }
                })
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(drop_unfit_request_id))
        .with_state(state)
}

/// Ends a request that takes longer than `request_deadline_secs`, reading its body included
/// (a body dribbled a byte at a time, say), with `408`, so it holds no connection or memory
/// for ever. Streams and WebSockets are past it once their response has begun.
async fn request_deadline(
    axum::extract::State(deadline): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == axum::http::Method::POST && media::UPLOAD_PATHS.contains(&req.uri().path()) {
        return next.run(req).await; // bounded by its own idle timeout instead
    }
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

/// A client's `X-Request-Id` is kept (it ties the client's logs to ours) only when it is
/// 1 to 64 letters, digits or `-._:`; otherwise a fresh one is made, so no client can put
/// arbitrary text into our logs.
async fn drop_unfit_request_id(mut req: Request, next: Next) -> Response {
    let fit = |v: &HeaderValue| {
        (1..=64).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(b))
    };
    if req.headers().get("x-request-id").is_some_and(|v| !fit(v)) {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

/// Gives the request a slot for a renewed token and, if one was issued, hands it to the client.
async fn session_renewal(mut req: Request, next: Next) -> Response {
    let slot = RenewalSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut response = next.run(req).await;
    let renewed = slot.0.lock().take();
    if let Some(token) = renewed {
        let headers = response.headers_mut();
        if let (Ok(t), Ok(e)) = (
            HeaderValue::from_str(&token.token),
            HeaderValue::from_str(&token.expires_at_ms.to_string()),
        ) {
            headers.insert(HeaderName::from_static(RENEWED_TOKEN), t);
            headers.insert(HeaderName::from_static(RENEWED_TOKEN_EXPIRES), e);
        }
    }
    response
}

/// What the HTTP layer is given at start (from the settings of the same names): no handler
/// reads the configuration itself.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    pub request_deadline: Duration,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Other front-end origins allowed to call (CORS) and to open live connections.
    pub allowed_origins: Vec<String>,
    /// API hosts the pages fail over between (the policy lets pages reach them).
    pub api_hosts: Vec<String>,
}

/// Scripts and styles only from this origin; connections, pictures and videos from it and
/// the configured API hosts (any node serves any media); no inline script or style, no framing.
fn content_security_policy(settings: &HttpSettings) -> HeaderValue {
    let hosts: Vec<&str> = settings
        .api_hosts
        .iter()
        .map(String::as_str)
        .filter(|h| !h.is_empty())
        .collect();
    let mut connect = vec!["'self'".to_owned()];
    for host in &hosts {
        connect.push((*host).to_owned());
        connect.push(host.replacen("http", "ws", 1));
    }
    let media = hosts.join(" ");
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob: {media}; media-src 'self' blob: {media}; connect-src {}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        connect.join(" ")
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

/// Cross-origin calls are allowed only from configured front-end origins. No cookies are
/// used (sessions are bearer tokens), so credentials stay off. The origins are matched by
/// a predicate over one shared list: the layer is cloned for every request, and a list held
/// by value would be copied each time.
fn cors(settings: &HttpSettings) -> CorsLayer {
    let origins: Arc<[HeaderValue]> = settings
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.contains(origin)
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
        ])
        .expose_headers([
            header::ETAG,
            header::CONTENT_DISPOSITION,
            header::RETRY_AFTER,
            HeaderName::from_static(RENEWED_TOKEN),
            HeaderName::from_static(RENEWED_TOKEN_EXPIRES),
        ])
        .max_age(Duration::from_secs(3600))
}
