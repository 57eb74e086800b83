//! The HTTP surface in-process: the real router and middleware, driven with `oneshot`, with a
//! real SQLite store in a temporary directory.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use hearth_server::{
    AppState, ComponentState, Readiness, RuntimeSettings, SharedState, StaticSettings,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

mod events;
mod experiments;
mod files;
mod flags;
mod gate;
mod graphs;
mod jobs;
mod memory;
mod openapi;
mod plugins;
mod prompts;
mod shutdown;

struct Harness {
    router: axum::Router,
    readiness: Readiness,
    runtime: watch::Sender<RuntimeSettings>,
    _dir: tempfile::TempDir,
}

async fn harness(settings: StaticSettings) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(
        dir.path(),
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .expect("store");
    let (runtime, runtime_receiver) = watch::channel(RuntimeSettings {
        max_body_bytes: 4096,
        max_upload_bytes: 4096,
        request_timeout: Duration::from_secs(30),
    });
    let readiness = Readiness::default();
    readiness.set("config", ComponentState::ready());
    let state = AppState::new(SharedState {
        runtime: runtime_receiver,
        settings,
        readiness: readiness.clone(),
        store: Some(store),
        inference: None,
        memory: None,
        files: None,
        vector_stores: None,
        graphs: None,
        conversations: None,
        plugins: None,
        jobs: None,
        prompts: None,
        flags: None,
        experiments: None,
        events: None,
        webhooks: None,
        routing: None,
        cache: None,
        gateway: None,
        metrics: hearth_server::install_metrics_recorder(),
        started_at: Instant::now(),
    });
    Harness {
        router: hearth_server::router(state),
        readiness,
        runtime,
        _dir: dir,
    }
}

async fn default_harness() -> Harness {
    harness(StaticSettings {
        cors_allowed_origins: Vec::new(),
        compression: true,
        ..StaticSettings::default()
    })
    .await
}

async fn send(router: &axum::Router, request: Request<Body>) -> Response {
    router.clone().oneshot(request).await.expect("infallible")
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

async fn json_body(response: Response) -> serde_json::Value {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&bytes)))
}

async fn text_body(response: Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn unknown_routes_get_an_openai_style_404_with_a_request_id() {
    let harness = default_harness().await;
    let response = send(&harness.router, get("/v1/nothing-here")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id generated")
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    insta::assert_json_snapshot!("not_found_error", json_body(response).await);
}

#[tokio::test]
async fn a_client_request_id_is_echoed_back() {
    let harness = default_harness().await;
    let request = Request::get("/healthz")
        .header("x-request-id", "client-chosen-42")
        .body(Body::empty())
        .expect("request");
    let response = send(&harness.router, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "client-chosen-42");
}

#[tokio::test]
async fn wrong_methods_get_an_openai_style_405() {
    let harness = default_harness().await;
    let request = Request::delete("/healthz")
        .body(Body::empty())
        .expect("request");
    let response = send(&harness.router, request).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    insta::assert_json_snapshot!("method_not_allowed_error", json_body(response).await);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_the_limit_follows_runtime_settings() {
    let harness = default_harness().await;
    let oversized = || {
        Request::post("/v1/anything")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, "5000")
            .body(Body::from(vec![b' '; 5000]))
            .expect("request")
    };
    let response = send(&harness.router, oversized()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], "request_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("4096 bytes"),
        "{body}"
    );

    // A hot reload raises the limit: the same body now reaches routing (and is a 404).
    harness
        .runtime
        .send_modify(|settings| settings.max_body_bytes = 10_000);
    let response = send(&harness.router, oversized()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let harness = default_harness().await;
    let response = send(&harness.router, get("/healthz")).await;
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers.contains_key("content-security-policy"));
}

#[tokio::test]
async fn large_responses_are_compressed_when_the_client_accepts_it() {
    let harness = default_harness().await;
    for encoding in ["gzip", "br"] {
        let request = Request::get("/openapi.json")
            .header(header::ACCEPT_ENCODING, encoding)
            .body(Body::empty())
            .expect("request");
        let response = send(&harness.router, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], encoding);
    }
    let plain = send(&harness.router, get("/openapi.json")).await;
    assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
}

#[tokio::test]
async fn cors_is_closed_by_default_and_open_to_configured_origins() {
    let preflight = || {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/healthz")
            .header(header::ORIGIN, "https://app.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .expect("request")
    };
    let closed = default_harness().await;
    let response = send(&closed.router, preflight()).await;
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );

    let open = harness(StaticSettings {
        cors_allowed_origins: vec!["https://app.example".to_string()],
        compression: true,
        ..StaticSettings::default()
    })
    .await;
    let response = send(&open.router, preflight()).await;
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
}

#[tokio::test]
async fn readiness_reports_each_component_and_fails_while_draining() {
    let harness = default_harness().await;
    let response = send(&harness.router, get("/readyz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["components"]["storage"]["status"], "ready");
    assert_eq!(body["components"]["config"]["status"], "ready");

    harness.readiness.set("models", ComponentState::starting());
    let response = send(&harness.router, get("/readyz")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(response).await["status"], "starting");

    harness
        .readiness
        .set("models", ComponentState::failed("model file missing"));
    let body = json_body(send(&harness.router, get("/readyz")).await).await;
    assert_eq!(body["status"], "failed");
    assert_eq!(
        body["components"]["models"]["message"],
        "model file missing"
    );

    harness.readiness.set("models", ComponentState::ready());
    harness.readiness.start_draining();
    let response = send(&harness.router, get("/readyz")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(response).await["status"], "draining");

    let live = send(&harness.router, get("/healthz")).await;
    assert_eq!(
        live.status(),
        StatusCode::OK,
        "liveness stays up while draining"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_process() {
    let harness = default_harness().await;
    send(&harness.router, get("/healthz")).await;
    send(&harness.router, get("/no/such/route/123")).await;
    let response = send(&harness.router, get("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = text_body(response).await;
    for expected in [
        "http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}",
        "http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",status=\"200\",le=\"0.005\"}",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "hearth_build_info{version=",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(
        !text.contains("/no/such/route/123"),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes_it_serves() {
    let harness = default_harness().await;
    let document = json_body(send(&harness.router, get("/openapi.json")).await).await;
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.")
    );
    let paths = document["paths"].as_object().expect("paths");
    for path in paths.keys() {
        let response = send(&harness.router, get(path)).await;
        // A served route may answer 404 for the resource it names ("no response ..."); an
        // unserved one gets the router's fallback.
        let unrouted = response.status() == StatusCode::NOT_FOUND
            && json_body(response).await["error"]["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("no route for"));
        assert!(!unrouted, "{path} is documented but not served");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            paths.contains_key(path),
            "{path} is served but not documented"
        );
    }

    let docs = send(&harness.router, get("/docs")).await;
    assert_eq!(docs.status(), StatusCode::OK);
    let html = text_body(docs).await;
    assert!(html.contains("<code>/readyz</code>"), "{html}");
}

#[tokio::test]
async fn the_version_names_the_cpu_features_the_kernels_use() {
    let harness = default_harness().await;
    let response = send(&harness.router, get("/api/version")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let features = body["cpu_features"].as_array().expect("a list");
    if cfg!(target_arch = "x86_64") {
        assert!(features.iter().any(|feature| feature == "sse3"), "{body}");
    }
}
