//! Liveness and readiness.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::readiness::ComponentState;
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
}

/// Liveness: the process is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started_at.elapsed().as_secs(),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadinessReport {
    /// `ready`, `starting`, `failed` or `draining`.
    pub status: &'static str,
    pub components: BTreeMap<String, ComponentState>,
}

/// Readiness: 200 when every component is ready, 503 otherwise (also while shutting down).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve traffic", body = ReadinessReport),
        (status = 503, description = "Not ready: starting, failed or draining", body = ReadinessReport)
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadinessReport>) {
    let mut components = state.readiness.snapshot();
    if let Some(store) = &state.store {
        // The store is checked live: a database that stopped answering makes the node unready.
        let storage = match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
            Ok(Ok(())) => ComponentState::ready(),
            Ok(Err(error)) => ComponentState::failed(error.to_string()),
            Err(_) => ComponentState::failed("the database did not answer within 2 s"),
        };
        components.insert("storage".to_string(), storage);
    }
    let status = if state.readiness.is_draining() {
        "draining"
    } else if components.values().any(|state| state.status == "failed") {
        "failed"
    } else if components.values().all(ComponentState::is_ready) {
        "ready"
    } else {
        "starting"
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(ReadinessReport { status, components }))
}
