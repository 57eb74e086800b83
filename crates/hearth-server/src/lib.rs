//! Hearth's HTTP surface.
//!
//! [`router`] builds the axum application: the routes of every API, and the middleware that
//! every response passes through (request ids, OpenAI-style errors, body limits, timeouts,
//! compression, CORS, security headers, metrics and access logs). [`serve`] runs it with a
//! graceful shutdown that drains in-flight requests.
//!
//! Only this crate knows HTTP and JSON wire types; handlers parse, call one domain function,
//! and map the result. Errors become HTTP in exactly one place, [`error::ApiError`].

pub mod error;
mod extract;
pub mod gate;
mod layers;
mod memory_embedder;
mod metrics;
mod openapi;
mod plugin_models;
mod readiness;
pub mod routes;
mod serve;
mod state;
mod system_events;
mod topic_access;
mod wire;

pub use error::ApiError;
pub use extract::ApiJson;
pub use gate::GatewayState;
pub use memory_embedder::PoolEmbedder;
pub use metrics::install_metrics_recorder;
pub use plugin_models::ServerModels;
pub use readiness::{ComponentState, Readiness};
pub use serve::serve;
pub use state::{AppState, RuntimeSettings, SharedState, StaticSettings};
pub use system_events::job_observer as system_events_job_observer;
pub use system_events::model_observer as system_events_model_observer;
pub use system_events::plugin_observer as system_events_plugin_observer;

/// Builds the application router with all routes and middleware.
pub fn router(state: AppState) -> axum::Router {
    let (routes, api) = routes::api_router().split_for_parts();
    finish(routes, openapi::complete(api), state)
}

/// The router without the admin API, and the admin API's own router (with health, readiness
/// and the docs), for a server that serves the admin API on a listener of its own.
pub fn split_routers(state: AppState) -> (axum::Router, axum::Router) {
    let api = openapi_document();
    let (public, _) = routes::public_router().split_for_parts();
    let (admin, _) = routes::admin_router().split_for_parts();
    let admin = admin.merge(routes::health_router().split_for_parts().0);
    (
        finish(public, api.clone(), state.clone()),
        finish(admin, api, state),
    )
}

fn finish(
    routes: axum::Router<AppState>,
    api: utoipa::openapi::OpenApi,
    state: AppState,
) -> axum::Router {
    let routes = routes
        .merge(openapi::docs_router(api))
        // After routing, so the gate knows the route template; unknown routes skip it.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gatekeeper,
        ));
    layers::apply(routes, &state).with_state(state)
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::complete(routes::api_router().into_openapi())
}
