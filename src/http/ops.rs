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
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// The process can serve requests: its database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    state.store.ping().await?;
    Ok(axum::Json(Health { status: "ok" }))
}

/// What the browser client needs before its first API call.
#[derive(Serialize, ToSchema, Clone)]
pub struct ClientConfig {
    /// Base URLs of the API hosts, tried in random order with failover. The empty string
    /// stands for the origin the page was loaded from.
    pub api_hosts: Vec<String>,
    /// How long the client waits for one request before it tries the next host.
    pub request_timeout_ms: u64,
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
