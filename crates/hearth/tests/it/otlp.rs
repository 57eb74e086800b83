//! Traces leave the process over OTLP/HTTP when a collector is configured. The collector here
//! is a real HTTP server in the test that records what it receives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::{Server, client};

#[derive(Debug, Clone)]
struct Received {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// A minimal OTLP/HTTP collector: answers 200 to every POST and keeps the request.
fn start_collector() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind collector");
    let address = listener.local_addr().expect("address").to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_string();
                    let (mut length, mut content_type) = (0usize, String::new());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        if let Some(value) = lower.strip_prefix("content-type:") {
                            content_type = value.trim().to_string();
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    sink.lock().expect("lock").push(Received {
                        path,
                        content_type,
                        body,
                    });
                    let stream = reader.get_mut();
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    (format!("http://{address}"), received)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn request_spans_are_exported_to_the_configured_collector() {
    let (endpoint, received) = start_collector();
    let mut server = Server::start(|command, _| {
        command.env("HEARTH_TELEMETRY_OTLP_ENDPOINT", &endpoint);
        command.env("HEARTH_TELEMETRY_SERVICE_NAME", "hearth-under-test");
    });
    let response = client()
        .get(server.url("/healthz"))
        .send()
        .expect("request");
    assert_eq!(response.status(), 200);
    // Shutdown flushes the batch exporter, so the spans are there by the time it exits.
    let (status, log) = server.terminate();
    assert_eq!(status.code(), Some(0), "{log}");

    let received = received.lock().expect("lock").clone();
    let traces: Vec<&Received> = received
        .iter()
        .filter(|request| request.path == "/v1/traces")
        .collect();
    assert!(
        !traces.is_empty(),
        "no POST /v1/traces reached the collector; got {received:?}\n{log}"
    );
    assert!(
        traces
            .iter()
            .all(|request| request.content_type == "application/x-protobuf")
    );
    let all: Vec<u8> = traces
        .iter()
        .flat_map(|request| request.body.clone())
        .collect();
    assert!(
        contains(&all, b"hearth-under-test"),
        "service name missing from the export"
    );
    assert!(
        contains(&all, b"GET /healthz"),
        "the request span is missing from the export"
    );
}
