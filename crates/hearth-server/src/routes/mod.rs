//! The route table. Every route is registered together with its OpenAPI description, so the
//! document at `/openapi.json` cannot drift from what the server answers.

mod health;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hearth",
        description = "The local-first AI backend: OpenAI- and Ollama-compatible model serving, \
                       gateway, memory, events and plugins in one binary.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "operations", description = "Health, readiness and metrics")
    )
)]
struct ApiDoc;

pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(crate::metrics::metrics))
}
