//! OpenAI's Files API over the real router with keys required: a multipart upload stored and
//! read back byte for byte, lists by purpose and order, bad forms and oversized files refused,
//! and one tenant's files invisible to another.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hearth_gateway::LimitDefaults;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::gate::gated;
use crate::send;

const BOUNDARY: &str = "hearth-test-boundary";

/// A `multipart/form-data` body with these parts: (name, file name, bytes).
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match filename {
            Some(filename) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, Vec<u8>) {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        builder = builder.header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    }
    let request = builder
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("request");
    let response = send(router, request).await;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, bytes.to_vec())
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(bytes)))
}

async fn upload(
    router: &axum::Router,
    key: &str,
    name: &str,
    purpose: &str,
    content: &[u8],
) -> Value {
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/files",
        key,
        Some(form(&[
            ("purpose", None, purpose.as_bytes()),
            ("file", Some(name), content),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    json(&body)
}

#[tokio::test]
async fn files_are_stored_listed_read_back_and_deleted_within_their_tenant() {
    let gated = gated(LimitDefaults::default()).await;
    let router = &gated.router;
    let member = gated.keys.acme_member.as_str();
    // Binary content, with bytes that are not UTF-8 and a CRLF that looks like framing.
    let content: Vec<u8> = (0..=255u8).chain(*b"\r\n--x\r\n").collect();
    let first = upload(router, member, "bytes.bin", "assistants", &content).await;
    assert_eq!(first["object"], "file");
    assert_eq!(first["bytes"], content.len());
    assert_eq!(first["filename"], "bytes.bin");
    assert_eq!(first["status"], "processed");
    let id = first["id"].as_str().expect("id").to_string();
    let second = upload(router, member, "batch.jsonl", "batch", b"{}\n").await;
    let second_id = second["id"].as_str().expect("id").to_string();

    let (status, body) = call(
        router,
        Method::GET,
        &format!("/v1/files/{id}/content"),
        member,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, content, "the bytes come back as uploaded");

    let reader = gated.keys.acme_reader.as_str();
    let (_, listed) = call(router, Method::GET, "/v1/files", reader, None).await;
    let listed = json(&listed);
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|file| file["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [second_id.as_str(), id.as_str()],
        "newest first: {listed}"
    );
    assert_eq!(listed["first_id"], second_id.as_str());
    let (_, ascending) = call(
        router,
        Method::GET,
        "/v1/files?order=asc&limit=1",
        reader,
        None,
    )
    .await;
    let ascending = json(&ascending);
    assert_eq!(ascending["data"][0]["id"], id.as_str(), "{ascending}");
    assert_eq!(ascending["has_more"], true);
    let (_, next) = call(
        router,
        Method::GET,
        &format!("/v1/files?order=asc&after={id}"),
        reader,
        None,
    )
    .await;
    assert_eq!(json(&next)["data"][0]["id"], second_id.as_str());
    let (_, batch) = call(router, Method::GET, "/v1/files?purpose=batch", reader, None).await;
    assert_eq!(json(&batch)["data"].as_array().map(Vec::len), Some(1));

    // Another tenant sees nothing of it; a reader cannot upload or delete.
    let globex = gated.keys.globex_admin.as_str();
    for (method, path) in [
        (Method::GET, format!("/v1/files/{id}")),
        (Method::GET, format!("/v1/files/{id}/content")),
        (Method::DELETE, format!("/v1/files/{id}")),
    ] {
        let (status, _) = call(router, method.clone(), &path, globex, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, theirs) = call(router, Method::GET, "/v1/files", globex, None).await;
    assert_eq!(json(&theirs)["data"].as_array().map(Vec::len), Some(0));
    let (status, _) = call(
        router,
        Method::DELETE,
        &format!("/v1/files/{id}"),
        reader,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, deleted) = call(
        router,
        Method::DELETE,
        &format!("/v1/files/{id}"),
        member,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&deleted)["deleted"], true);
    let (status, _) = call(
        router,
        Method::GET,
        &format!("/v1/files/{id}/content"),
        member,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_forms_and_oversized_files_are_refused_naming_the_part() {
    let gated = gated(LimitDefaults::default()).await;
    let router = &gated.router;
    let member = gated.keys.acme_member.as_str();
    let cases: [(Vec<u8>, StatusCode, &str); 4] = [
        (
            form(&[
                ("purpose", None, b"homework"),
                ("file", Some("a.txt"), b"a"),
            ]),
            StatusCode::BAD_REQUEST,
            "purpose",
        ),
        (
            form(&[("purpose", None, b"assistants")]),
            StatusCode::BAD_REQUEST,
            "file",
        ),
        (
            form(&[("file", Some("a.txt"), b"a")]),
            StatusCode::BAD_REQUEST,
            "purpose",
        ),
        (
            // The harness keeps files to 1 MiB.
            form(&[
                ("purpose", None, b"assistants"),
                ("file", Some("big.bin"), &vec![7u8; (1 << 20) + 1]),
            ]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (body, status, param) in cases {
        let (got, answer) = call(router, Method::POST, "/v1/files", member, Some(body)).await;
        let answer = json(&answer);
        assert_eq!(got, status, "{answer}");
        if !param.is_empty() {
            assert_eq!(answer["error"]["param"], param, "{answer}");
        }
    }
    // Not a form at all.
    let request = Request::post("/v1/files")
        .header("authorization", format!("Bearer {member}"))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("request");
    let response = send(router, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, listed) = call(router, Method::GET, "/v1/files", member, None).await;
    assert_eq!(
        json(&listed)["data"].as_array().map(Vec::len),
        Some(0),
        "nothing was stored"
    );
}
