//! Routes for operators and for the browser client's bootstrap: liveness, readiness, and
//! `/config.json` (which API hosts to use and how patiently).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(client_config))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The server's version, for connection reports (`/diagnostics`).
    version: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The process can serve requests: the database it uses answers.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ok`.
    status: &'static str,
    /// Each database the node may use, in order of preference.
    databases: Vec<DatabaseReadiness>,
}

#[derive(Serialize, ToSchema)]
pub struct DatabaseReadiness {
    /// Where it is (`postgres://db1.school.org:5432/classcast`): no user, password or
    /// options, as anyone may read this.
    url: String,
    /// It answered just now.
    answering: bool,
    /// The node uses this one now (the first that answers and can catch up).
    active: bool,
    /// It can catch up with the other databases of a cluster: false when its provider
    /// dropped what it missed, so it must be rebuilt (the node does not use it meanwhile).
    caught_up: bool,
    /// Why it cannot catch up, when `caught_up` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    cannot_catch_up: Option<String>,
}

/// Ready: a database the node may use answers. Lists each of them.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "No database answers", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Readiness>, ApiError> {
    let databases = state.store.databases().await;
    // A node whose database stopped answering moves to one that answers within a second.
    if !databases
        .iter()
        .any(|d| d.answering && d.cannot_catch_up.is_none())
    {
        let down: Vec<&str> = databases.iter().map(|d| d.url.as_str()).collect();
        return Err(ApiError::Unavailable {
            retry_after: std::time::Duration::from_secs(5),
            cause: format!(
                "no database answers that has caught up: {}",
                down.join(", ")
            ),
        });
    }
    Ok(axum::Json(Readiness {
        status: "ok",
        databases: databases
            .into_iter()
            .map(|d| DatabaseReadiness {
                url: crate::store::database_place(&d.url),
                answering: d.answering,
                active: d.active,
                caught_up: d.cannot_catch_up.is_none(),
                cannot_catch_up: d.cannot_catch_up,
            })
            .collect(),
    }))
}

/// What the browser client needs before its first API call.
#[derive(Serialize, ToSchema, Clone)]
pub struct ClientConfig {
    /// Base URLs of the API hosts, tried in random order with failover. The empty string
    /// stands for the origin the page was loaded from.
    pub api_hosts: Vec<String>,
    /// How long the client waits for one request before it tries the next host.
    pub request_timeout_ms: u64,
    /// The largest picture or video a teacher may upload, in bytes: the editor refuses a
    /// larger file before sending it.
    pub media_max_bytes: u64,
    /// The address teachers open (`public_url`, or this machine's network address when it
    /// listens on all interfaces); `null`: the address the page was loaded from.
    pub public_url: Option<String>,
    /// Whether the server sends mail: passwords can then be reset by mail.
    pub mail: bool,
    /// Whether `POST /api/lessons/import` takes PowerPoint (`.pptx`) and OpenDocument
    /// (`.odp`) slides: the server has LibreOffice (docs/importing.md).
    pub office_import: bool,
}

/// Client configuration: API hosts and timeouts.
#[utoipa::path(get, path = "/config.json", tag = "operations",
    responses((status = 200, description = "Client configuration", body = ClientConfig)))]
async fn client_config(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(state.client_config.as_ref().clone()),
    )
}
