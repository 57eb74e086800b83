//! The running server over HTTP: operations endpoints, errors, request ids, limits, shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::{Server, client};

#[test]
fn operations_endpoints_answer_over_http() {
    let server = Server::start(|_, _| {});
    let http = client();

    let health = http.get(server.url("/healthz")).send().expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().expect("json")["status"],
        "ok"
    );

    let ready = http.get(server.url("/readyz")).send().expect("readyz");
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["components"]["storage"]["status"], "ready");

    let metrics = http.get(server.url("/metrics")).send().expect("metrics");
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().expect("text");
    assert!(
        metrics.contains("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );

    let openapi = http
        .get(server.url("/openapi.json"))
        .send()
        .expect("openapi");
    assert_eq!(openapi.status(), 200);
    let openapi: serde_json::Value = openapi.json().expect("json");
    assert!(openapi["paths"]["/readyz"]["get"].is_object(), "{openapi}");

    let docs = http.get(server.url("/docs")).send().expect("docs");
    assert_eq!(docs.status(), 200);
    assert!(docs.text().expect("html").contains("/healthz"));
}

#[test]
fn unknown_routes_get_json_404_and_request_ids_round_trip() {
    let server = Server::start(|_, _| {});
    let http = client();

    let response = http
        .get(server.url("/v1/does-not-exist"))
        .header("x-request-id", "trace-me-123")
        .send()
        .expect("request");
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().expect("json");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // The same id appears in the server's log line for that request.
    let mut server = server;
    let line = server.wait_for_log("trace-me-123", Duration::from_secs(5));
    assert!(line.contains("request finished"), "{line}");

    let generated = http.get(server.url("/healthz")).send().expect("request");
    let id = generated.headers()["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
}

#[test]
fn bodies_over_the_limit_get_413() {
    let server = Server::start(|command, _| {
        command.env("HEARTH_SERVER_MAX_BODY_BYTES", "2048");
    });
    let response = client()
        .post(server.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(vec![b'x'; 4096])
        .send()
        .expect("request");
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().expect("json");
    assert_eq!(body["error"]["code"], "request_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("2048")
    );
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let mut server = Server::start(|_, _| {});
    // An idle keep-alive connection must not hold the shutdown.
    let mut idle = TcpStream::connect(&server.address).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    let mut buffer = [0u8; 512];
    let _ = idle.read(&mut buffer).expect("read");

    let (status, log) = server.terminate();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopped after draining all requests"), "{log}");
}
