//! The web pages and their assets, embedded in the binary from `web/`.
//!
//! Pages are served with `Cache-Control: no-cache` and an `ETag`, so a browser always checks
//! for a new version with a cheap conditional request. Assets live under
//! `/assets/<build>/…`, where `<build>` is a hash of every embedded file: a page's references
//! change whenever any asset does, so assets can be cached for a year and never go stale.
//! All of this is computed once at start-up, in memory.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Web;

/// Which page file answers which route.
const PAGES: &[(&str, &str)] = &[
    ("/login", "login.html"),
    ("/lessons", "lessons.html"),
    ("/lessons/{id}", "editor.html"),
    ("/board", "board.html"),
    ("/teach", "teach.html"),
    ("/diagnostics", "diagnostics.html"),
    (SERVICE_WORKER, "sw.js"),
];

/// The board's service worker: served from the root like a page (never cached as an asset:
/// browsers check it for updates), so that it may control `/board`.
const SERVICE_WORKER: &str = "/sw.js";

/// A rendered response body with its validator.
struct Rendered {
    /// Shared, not copied, by every response that sends it.
    body: Bytes,
    etag: HeaderValue,
    content_type: HeaderValue,
}

pub struct Pages {
    build: String,
    pages: HashMap<&'static str, Rendered>,
}

impl Pages {
    pub fn load() -> Self {
        let mut digest = Sha256::new();
        let mut names: Vec<_> = Web::iter().collect();
        names.sort();
        for name in &names {
            if let Some(file) = Web::get(name) {
                digest.update(name.as_bytes());
                digest.update(file.metadata.sha256_hash());
            }
        }
        let build = hex::encode(&digest.finalize()[..6]);
        let base = format!("/assets/{build}");
        let pages = PAGES
            .iter()
            .filter_map(|(route, file)| {
                let raw = Web::get(file)?;
                let text = String::from_utf8_lossy(&raw.data).replace("{{assets}}", &base);
                let content_type = match *route {
                    SERVICE_WORKER => "text/javascript; charset=utf-8",
                    _ => "text/html; charset=utf-8",
                };
                Some((*file, rendered(text.into_bytes(), content_type)))
            })
            .collect();
        Self { build, pages }
    }

    /// The path prefix assets are served under.
    pub fn asset_base(&self) -> String {
        format!("/assets/{}", self.build)
    }
}

fn rendered(body: Vec<u8>, content_type: &str) -> Rendered {
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..12]));
    Rendered {
        body: body.into(),
        etag: HeaderValue::from_str(&etag).expect("hex is a valid header value"),
        content_type: HeaderValue::from_str(content_type).expect("a valid content type"),
    }
}

pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route("/", get(|| async { Redirect::to("/lessons") }))
        .route("/assets/{build}/{*path}", get(asset));
    for (route, file) in PAGES {
        router = router.route(
            route,
            get(
                move |State(state): State<AppState>, headers: HeaderMap| async move {
                    page(&state, file, &headers)
                },
            ),
        );
    }
    router
}

fn page(state: &AppState, file: &str, headers: &HeaderMap) -> Response {
    match state.pages.pages.get(file) {
        Some(r) => conditional(headers, r, "no-cache"),
        None => ApiError::NotFound.into_response(),
    }
}

async fn asset(
    State(state): State<AppState>,
    Path((build, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(file) = Web::get(&format!("assets/{path}")) else {
        return ApiError::NotFound.into_response();
    };
    // A page from an older build may still ask for its assets during an upgrade: serve the
    // current file, but do not let it be cached as if it belonged to that build.
    let cache = if build == state.pages.build {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    let r = Rendered {
        // Embedded files are 'static in release builds: sent without a copy.
        body: match file.data {
            std::borrow::Cow::Borrowed(data) => Bytes::from_static(data),
            std::borrow::Cow::Owned(data) => Bytes::from(data),
        },
        etag: HeaderValue::from_str(&etag).expect("hex is a valid header value"),
        content_type: HeaderValue::from_str(file.metadata.mimetype())
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    };
    conditional(&headers, &r, cache)
}

/// The body, or 304 when the client already holds this version.
fn conditional(headers: &HeaderMap, r: &Rendered, cache_control: &'static str) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == r.etag || tag.trim() == "*")
        });
    let common = [
        (header::ETAG, r.etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        (
            common,
            [(header::CONTENT_TYPE, r.content_type.clone())],
            r.body.clone(),
        )
            .into_response()
    }
}
