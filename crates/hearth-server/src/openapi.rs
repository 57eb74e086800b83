//! `/openapi.json` and a docs page rendered from it. The page is plain server-rendered HTML
//! with no scripts or external assets, so it works offline, as Hearth does.
//!
//! Each route's `#[utoipa::path]` names its request and response wire types and the errors its
//! handler returns; [`complete`] adds what the routes share, derived from the code that does
//! it: the gate's statuses and security from the gate's access table, the body limit's and
//! the timeout's from the middleware.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::error::ErrorBody;
use crate::gate::{self, Access};
use crate::state::AppState;

const BEARER: &str = "bearer";
const API_KEY: &str = "api_key";

/// The document with the responses and security every route shares.
pub(crate) fn complete(mut api: OpenApi) -> OpenApi {
    let components = api.components.get_or_insert_with(Components::new);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key (`hk_...`), or a JWT of the configured OIDC issuer. A server that \
                     listens on loopback only requires none by default.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "x-api-key",
            "An API key (`hk_...`), as some SDKs send it.",
        ))),
    );
    let mut error_schemas = Vec::new();
    <ErrorBody as utoipa::ToSchema>::schemas(&mut error_schemas);
    error_schemas.push((
        <ErrorBody as utoipa::ToSchema>::name().into_owned(),
        <ErrorBody as utoipa::PartialSchema>::schema(),
    ));
    components.schemas.extend(error_schemas);

    for (path, item) in &mut api.paths.paths {
        let operations = [
            (Method::GET, &mut item.get),
            (Method::POST, &mut item.post),
            (Method::PUT, &mut item.put),
            (Method::PATCH, &mut item.patch),
            (Method::DELETE, &mut item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            if operation.request_body.is_some() {
                add_error(
                    operation,
                    400,
                    "The body is not JSON, or does not match the request schema",
                );
                add_error(
                    operation,
                    413,
                    "The body is larger than server.max_body_bytes",
                );
            }
            // A route missing from the gate's table is refused; a test keeps the table whole.
            if gate::access(&method, path) == Some(Access::Public) {
                continue;
            }
            operation.security = Some(vec![
                SecurityRequirement::new(BEARER, Vec::<String>::new()),
                SecurityRequirement::new(API_KEY, Vec::<String>::new()),
            ]);
            add_error(
                operation,
                401,
                "No valid API key or token, where keys are required",
            );
            add_error(
                operation,
                403,
                "The key's role does not allow this route; or, on a server that requires no \
                 keys, a request for another host or from a web page's origin not allowed",
            );
            add_error(
                operation,
                429,
                "A request, token, concurrency or budget limit of the key, its tenant or the \
                 client address is reached; Retry-After says when to retry",
            );
            add_error(
                operation,
                500,
                "An internal error (a storage failure or a bug); it is logged",
            );
            add_error(
                operation,
                504,
                "The answer did not start within server.request_timeout_ms",
            );
        }
    }
    api
}

/// Documents an error response, or adds `description` to the one documented already.
fn add_error(operation: &mut Operation, status: u16, description: &str) {
    let responses = &mut operation.responses.responses;
    match responses.get_mut(&status.to_string()) {
        Some(RefOr::T(response)) => {
            if !response.description.contains(description) {
                response.description = format!("{}. {description}", response.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
            if status == 429 {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(1)),
                        )
                        .description(Some("Seconds until a retry may succeed"))
                        .build(),
                );
            }
            responses.insert(status.to_string(), RefOr::T(response.build()));
        }
    }
}

pub(crate) fn docs_router(api: utoipa::openapi::OpenApi) -> Router<AppState> {
    let json = Arc::new(api.to_pretty_json().unwrap_or_else(|_| "{}".to_string()));
    let page = Arc::new(render_docs(
        &serde_json::to_value(&api).unwrap_or(Value::Null),
    ));
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json.to_string()) }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let page = page.clone();
                async move {
                    (
                        [(
                            header::CONTENT_SECURITY_POLICY,
                            HeaderValue::from_static(
                                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                            ),
                        )],
                        Html(page.to_string()),
                    )
                        .into_response()
                }
            }),
        )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn render_docs(api: &Value) -> String {
    let title = api["info"]["title"].as_str().unwrap_or("API");
    let version = api["info"]["version"].as_str().unwrap_or("");
    let description = api["info"]["description"].as_str().unwrap_or("");
    let mut body = String::new();
    if let Some(paths) = api["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                let Some(operation) = item.get(*method) else {
                    continue;
                };
                let summary = operation["summary"]
                    .as_str()
                    .or_else(|| operation["description"].as_str())
                    .unwrap_or("");
                let _ = write!(
                    body,
                    "<section><h2><span class=\"method {method}\">{}</span> <code>{}</code></h2><p>{}</p><ul>",
                    method.to_uppercase(),
                    escape(path),
                    escape(summary)
                );
                if let Some(responses) = operation["responses"].as_object() {
                    for (status, response) in responses {
                        let _ = write!(
                            body,
                            "<li><strong>{}</strong> {}</li>",
                            escape(status),
                            escape(response["description"].as_str().unwrap_or(""))
                        );
                    }
                }
                body.push_str("</ul></section>");
            }
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} API</title><style>{STYLE}</style></head><body><main>\
         <h1>{title} <small>{version}</small></h1><p>{description}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>\
         {body}</main></body></html>",
        title = escape(title),
        version = escape(version),
        description = escape(description),
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#fff;color:#1b1b1b}\
main{max-width:52rem;margin:0 auto;padding:1.5rem}h1 small{font-size:.6em;color:#555}\
section{border-top:1px solid #ddd;padding:.5rem 0}h2{font-size:1.05rem}\
.method{display:inline-block;min-width:4.5em;padding:.1em .4em;border-radius:.3em;color:#fff;background:#2f5f8a;font-size:.85em;text-align:center}\
.post{background:#2e7040}.delete{background:#9b2c2c}.put,.patch{background:#7a5a00}\
a{color:#1f5aa6}@media (prefers-color-scheme:dark){body{background:#141414;color:#eee}h1 small{color:#aaa}section{border-color:#333}a{color:#8ab4f8}}";
