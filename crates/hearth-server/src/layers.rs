//! The middleware every request passes through, from the outside in: request id, access log
//! and trace span, request-id echo, metrics, security headers, CORS, compression, panic
//! capture, request timeout and body size limit. Fallbacks turn unknown routes and methods
//! into OpenAI-style errors too, so no response leaves without the JSON error shape.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ApiError;
use crate::state::{AppState, StaticSettings};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub(crate) fn apply(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let mut router = routes
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // Our own limit below replaces axum's fixed 2 MB default so it can change at runtime.
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state.clone(), limit_body))
        .layer(from_fn_with_state(state.clone(), limit_time))
        .layer(CatchPanicLayer::custom(panic_response));
    if state.settings.compression {
        // Streamed NDJSON (Ollama) and SSE must reach the client chunk by chunk.
        let predicate = DefaultPredicate::new()
            .and(NotForContentType::const_new("application/x-ndjson"))
            .and(NotForContentType::const_new("text/event-stream"));
        router = router.layer(CompressionLayer::new().compress_when(predicate));
    }
    if let Some(cors) = cors_layer(&state.settings) {
        router = router.layer(cors);
    }
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(from_fn(crate::metrics::record_request))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The span every log line of a request is written in; its fields (the request id above all)
/// appear on each line, and it is the root of the request's OpenTelemetry trace.
fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str())
        .unwrap_or("unmatched");
    tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {}", request.method(), route),
        otel.kind = "server",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        status = tracing::field::Empty,
    )
}

fn log_response(response: &Response, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    span.record("status", status);
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::error!(status, latency_ms, "request failed");
    } else {
        tracing::info!(status, latency_ms, "request finished");
    }
}

fn cors_layer(settings: &StaticSettings) -> Option<CorsLayer> {
    if settings.cors_allowed_origins.is_empty() {
        return None;
    }
    let allow_origin = if settings
        .cors_allowed_origins
        .iter()
        .any(|origin| origin == "*")
    {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            settings
                .cors_allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
            .expose_headers([REQUEST_ID, header::RETRY_AFTER])
            .max_age(Duration::from_secs(3600)),
    )
}

/// Rejects bodies over the configured limit: at once when `content-length` says so, and while
/// reading otherwise (chunked uploads), without buffering more than the limit.
async fn limit_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let settings = state.current();
    // Files and plugin components (base64 in JSON) may be as large as uploads.
    let path = request.uri().path().trim_end_matches('/');
    let is_upload = request.method() == axum::http::Method::POST
        && (path == "/v1/files"
            || path == "/v1/plugins"
            || (path.starts_with("/v1/plugins/") && path.ends_with("/upgrade")));
    let limit = if is_upload {
        settings.max_upload_bytes.max(settings.max_body_bytes)
    } else {
        settings.max_body_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    let (parts, body) = request.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}

/// Bounds the time until the response starts. Streaming bodies may run past it: their pace is
/// governed by the work they stream, not by this limit.
async fn limit_time(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let timeout = state.current().request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "the request did not complete within {} ms (server.request_timeout_ms)",
                timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("the server hit an internal error handling this request; it has been logged")
        .into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {method} {}; the API is described at /docs and /openapi.json",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see /docs for the methods it accepts",
            uri.path()
        ),
    )
}
