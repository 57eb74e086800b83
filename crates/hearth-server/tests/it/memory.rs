//! The memory API over the real router and a real SQLite store: collections and documents
//! through their whole life, errors that name the field and write nothing, and tenants that
//! never see each other's collections. Vectors are supplied here; text embedded by the local
//! model is tested through the binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hearth_gateway::LimitDefaults;
use hearth_memory::{Memory, MemoryOptions};
use hearth_server::{AppState, Readiness, RuntimeSettings, SharedState, StaticSettings};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::gate::{gated, request};
use crate::{json_body, send};

/// The most documents one upsert may hold in these tests.
const MAX_DOCUMENTS: usize = 8;

pub(crate) struct Keyless {
    pub(crate) router: axum::Router,
    _dir: tempfile::TempDir,
}

/// A server that requires no keys (its caller reaches the instance's own collections), with
/// memory and no embedding model.
pub(crate) async fn keyless() -> Keyless {
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
    let memory = Memory::new(
        store.clone(),
        dir.path(),
        MemoryOptions {
            max_documents_per_upsert: MAX_DOCUMENTS,
            index_threads: 1,
            ..MemoryOptions::default()
        },
    );
    let (_runtime, runtime_receiver) = watch::channel(RuntimeSettings {
        max_body_bytes: 1 << 20,
        max_upload_bytes: 1 << 20,
        request_timeout: Duration::from_secs(30),
    });
    let memory = Arc::new(memory);
    let state = AppState::new(SharedState {
        runtime: runtime_receiver,
        settings: StaticSettings::default(),
        readiness: Readiness::default(),
        store: Some(store.clone()),
        inference: None,
        memory: Some(memory.clone()),
        files: None,
        vector_stores: None,
        graphs: Some(hearth_graph::Graphs::new(store, memory)),
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
    Keyless {
        router: hearth_server::router(state),
        _dir: dir,
    }
}

/// Sends a request, optionally with a JSON body and a key, and returns the status and body.
pub(crate) async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let request = builder
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
        .expect("request");
    let response = send(router, request).await;
    let status = response.status();
    (status, json_body(response).await)
}

/// A vector along axis `i % 4`, tilted toward the next axis, more for each round of four:
/// `axis(2)` is nearest to itself, then to `axis(6)`.
fn axis(i: usize) -> Vec<f32> {
    let mut vector = vec![0.0; 4];
    vector[i % 4] = 1.0;
    vector[(i + 1) % 4] = 0.1 * (1 + i / 4) as f32;
    vector
}

fn documents(range: std::ops::Range<usize>) -> Value {
    let documents: Vec<Value> = range
        .map(|i| {
            json!({
                "id": format!("doc-{i}"),
                "text": format!("document number {i}"),
                "metadata": {"bucket": i % 2, "lang": if i < 4 { "en" } else { "fr" }},
                "embedding": axis(i),
            })
        })
        .collect();
    json!({ "documents": documents })
}

fn ids(listing: &Value) -> Vec<&str> {
    listing["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {listing}"))
        .iter()
        .map(|item| item["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn a_collection_is_created_listed_read_changed_and_deleted() {
    let server = keyless().await;
    let router = &server.router;
    let (status, created) = call(
        router,
        Method::POST,
        "/v1/collections",
        Some(json!({
            "name": "notes", "dimensions": 4, "metric": "dot", "quantization": "int8",
            "hnsw": {"m": 8, "ef": 32}, "metadata": {"owner": "docs-team"}
        })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["object"], "collection");
    assert_eq!(created["metric"], "dot");
    assert_eq!(created["quantization"], "int8");
    assert_eq!(
        created["hnsw"],
        json!({"m": 8, "ef_construction": 200, "ef": 32})
    );
    assert_eq!(created["embedding_model"], Value::Null);
    assert_eq!(created["metadata"], json!({"owner": "docs-team"}));

    let (status, taken) = call(
        router,
        Method::POST,
        "/v1/collections",
        Some(json!({"name": "notes", "dimensions": 4})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");

    for name in ["b-second", "c-third"] {
        let (status, body) = call(
            router,
            Method::POST,
            "/v1/collections",
            Some(json!({"name": name, "dimensions": 4})),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, first) = call(router, Method::GET, "/v1/collections?limit=2", None, None).await;
    assert_eq!(ids(&first).len(), 2);
    let names: Vec<&str> = first["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|collection| collection["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["b-second", "c-third"]);
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = call(
        router,
        Method::GET,
        &format!("/v1/collections?limit=2&after={cursor}"),
        None,
        None,
    )
    .await;
    assert_eq!(second["data"][0]["name"], "notes");
    assert_eq!(second["has_more"], false);

    let (status, patched) = call(
        router,
        Method::PATCH,
        "/v1/collections/notes",
        Some(json!({"name": "renamed", "hnsw": {"ef": 100}})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["hnsw"]["ef"], 100);
    let (status, fixed) = call(
        router,
        Method::PATCH,
        "/v1/collections/renamed",
        Some(json!({"hnsw": {"m": 32}})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{fixed}");
    assert_eq!(fixed["error"]["param"], "hnsw.m", "{fixed}");

    let (status, read) = call(router, Method::GET, "/v1/collections/renamed", None, None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["document_count"], 0);
    let (status, deleted) = call(
        router,
        Method::DELETE,
        "/v1/collections/renamed",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        deleted,
        json!({"id": "renamed", "object": "collection.deleted", "deleted": true})
    );
    let (status, gone) = call(router, Method::GET, "/v1/collections/renamed", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(gone["error"]["code"], "not_found");
}

#[tokio::test]
async fn documents_are_upserted_listed_read_searched_and_deleted() {
    let server = keyless().await;
    let router = &server.router;
    call(
        router,
        Method::POST,
        "/v1/collections",
        Some(json!({"name": "docs", "dimensions": 4})),
        None,
    )
    .await;
    let (status, upserted) = call(
        router,
        Method::POST,
        "/v1/collections/docs/documents",
        Some(documents(0..8)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{upserted}");
    assert_eq!(upserted["ids"].as_array().map(Vec::len), Some(8));
    assert_eq!(upserted["usage"]["total_tokens"], 0);

    // Nearest to axis 2: doc-2 and doc-6 point there.
    let (status, found) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(json!({"vector": axis(2), "top_k": 2})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), ["doc-2", "doc-6"], "{found}");
    assert_eq!(found["data"][0]["text"], "document number 2");
    assert_eq!(found["data"][0]["metadata"]["lang"], "en");
    assert!(found["data"][0].get("embedding").is_none());

    // Filtered: only French documents, and all of them when top_k asks for more than match.
    let (_, french) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(json!({
            "vector": axis(2), "top_k": 8, "include": ["embedding"],
            "filter": {"key": "lang", "type": "eq", "value": "fr"}
        })),
        None,
    )
    .await;
    assert_eq!(
        ids(&french),
        ["doc-6", "doc-5", "doc-7", "doc-4"],
        "{french}"
    );
    assert!(french["data"][0].get("text").is_none());
    assert_eq!(
        french["data"][0]["embedding"].as_array().map(Vec::len),
        Some(4)
    );

    let (_, page) = call(
        router,
        Method::GET,
        "/v1/collections/docs/documents?limit=3",
        None,
        None,
    )
    .await;
    assert_eq!(ids(&page), ["doc-0", "doc-1", "doc-2"]);
    assert_eq!(page["next_cursor"], "doc-2");
    let filter = urlencoding(&json!({"key": "bucket", "type": "eq", "value": 1}).to_string());
    let (status, odd) = call(
        router,
        Method::GET,
        &format!("/v1/collections/docs/documents?filter={filter}&after=doc-1"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{odd}");
    assert_eq!(ids(&odd), ["doc-3", "doc-5", "doc-7"]);

    let (status, one) = call(
        router,
        Method::GET,
        "/v1/collections/docs/documents/doc-3?include=embedding",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let embedding: Vec<f32> = serde_json::from_value(one["embedding"].clone()).expect("floats");
    assert_eq!(embedding, axis(3));

    let (status, deleted) = call(
        router,
        Method::DELETE,
        "/v1/collections/docs/documents/doc-3",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, _) = call(
        router,
        Method::DELETE,
        "/v1/collections/docs/documents/doc-3",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, by_filter) = call(
        router,
        Method::POST,
        "/v1/collections/docs/delete",
        Some(json!({"filter": {"key": "lang", "type": "eq", "value": "fr"}})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_filter}");
    assert_eq!(by_filter["deleted"], 4);
    let (_, left) = call(router, Method::GET, "/v1/collections/docs", None, None).await;
    assert_eq!(left["document_count"], 3, "{left}");
    let (_, nearest) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(json!({"vector": axis(2), "top_k": 10})),
        None,
    )
    .await;
    assert_eq!(
        ids(&nearest).len(),
        3,
        "deleted documents are never hits: {nearest}"
    );

    let metrics = crate::text_body(send(router, crate::get("/metrics")).await).await;
    for family in [
        "hearth_memory_search_duration_seconds_bucket{mode=\"vector\"",
        "hearth_memory_documents_written_total",
        "hearth_memory_documents_deleted_total",
        "hearth_memory_indexes_loaded",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
}

/// Percent-encodes a query-string value.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn bad_input_gets_a_named_error_and_writes_nothing() {
    let server = keyless().await;
    let router = &server.router;
    call(
        router,
        Method::POST,
        "/v1/collections",
        Some(json!({"name": "docs", "dimensions": 4})),
        None,
    )
    .await;
    let mut wrong_length = documents(0..3);
    wrong_length["documents"][1]["embedding"] = json!([1.0, 2.0]);
    let mut not_an_object = documents(0..3);
    not_an_object["documents"][2]["metadata"] = json!(["a", "list"]);
    let mut no_vector = documents(0..3);
    no_vector["documents"][0]
        .as_object_mut()
        .expect("object")
        .remove("embedding");
    let cases = [
        (
            "POST",
            "/v1/collections",
            json!({"name": "x", "dimensions": 4, "metric": "manhattan"}),
            StatusCode::BAD_REQUEST,
            "metric",
        ),
        (
            "POST",
            "/v1/collections",
            json!({"name": "no spaces", "dimensions": 4}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "POST",
            "/v1/collections",
            json!({"name": "no-model"}),
            StatusCode::BAD_REQUEST,
            "dimensions",
        ),
        (
            "POST",
            "/v1/collections/docs/documents",
            wrong_length,
            StatusCode::BAD_REQUEST,
            "documents[1].embedding",
        ),
        (
            "POST",
            "/v1/collections/docs/documents",
            not_an_object,
            StatusCode::BAD_REQUEST,
            "documents[2].metadata",
        ),
        (
            "POST",
            "/v1/collections/docs/documents",
            no_vector,
            StatusCode::BAD_REQUEST,
            "documents[0].embedding",
        ),
        (
            "POST",
            "/v1/collections/docs/documents",
            documents(0..MAX_DOCUMENTS + 1),
            StatusCode::PAYLOAD_TOO_LARGE,
            "documents",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"vector": axis(0), "filter": {"key": "lang", "type": "like", "value": "en"}}),
            StatusCode::BAD_REQUEST,
            "filter",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"vector": axis(0), "query": "both"}),
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"query": "text needs an embedding model"}),
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"vector": axis(0), "mode": "keyword"}),
            StatusCode::BAD_REQUEST,
            "vector",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"query": "?!", "mode": "keyword"}),
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"query": "x", "vector": axis(0), "mode": "hybrid", "hybrid": {"k": 0}}),
            StatusCode::BAD_REQUEST,
            "hybrid.k",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"vector": axis(0), "top_k": 0}),
            StatusCode::BAD_REQUEST,
            "top_k",
        ),
        (
            "POST",
            "/v1/collections/docs/search",
            json!({"vector": [0.0, 0.0, 0.0, 0.0]}),
            StatusCode::BAD_REQUEST,
            "vector",
        ),
        (
            "POST",
            "/v1/collections/docs/delete",
            json!({}),
            StatusCode::BAD_REQUEST,
            "ids",
        ),
    ];
    for (method, path, body, status, param) in cases {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (got, error) = call(router, method, path, Some(body.clone()), None).await;
        assert_eq!(got, status, "{path} {body}: {error}");
        assert_eq!(error["error"]["param"], param, "{path} {body}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{error}"
        );
    }
    let (_, collection) = call(router, Method::GET, "/v1/collections/docs", None, None).await;
    assert_eq!(collection["document_count"], 0, "nothing half-written");
    let (_, listed) = call(router, Method::GET, "/v1/collections", None, None).await;
    assert_eq!(ids(&listed).len(), 1, "no collection made: {listed}");

    let (status, missing) = call(
        router,
        Method::POST,
        "/v1/collections/nowhere/search",
        Some(json!({"vector": axis(0)})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

#[tokio::test]
async fn tenants_never_see_each_others_collections_and_roles_decide_who_writes() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let router = &gated.router;
    let acme_admin = Some(keys.acme_admin.as_str());
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/collections",
        Some(json!({"name": "docs", "dimensions": 4})),
        acme_admin,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/collections/docs/documents",
        Some(documents(0..4)),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // globex's admin reaches none of it, on any route: 404, as for a missing collection.
    let globex = Some(keys.globex_admin.as_str());
    let routes = [
        (Method::GET, "/v1/collections/docs", None),
        (
            Method::PATCH,
            "/v1/collections/docs",
            Some(json!({"name": "mine"})),
        ),
        (Method::DELETE, "/v1/collections/docs", None),
        (
            Method::POST,
            "/v1/collections/docs/documents",
            Some(documents(0..1)),
        ),
        (Method::GET, "/v1/collections/docs/documents", None),
        (Method::GET, "/v1/collections/docs/documents/doc-1", None),
        (Method::DELETE, "/v1/collections/docs/documents/doc-1", None),
        (
            Method::POST,
            "/v1/collections/docs/delete",
            Some(json!({"ids": ["doc-1"]})),
        ),
        (
            Method::POST,
            "/v1/collections/docs/search",
            Some(json!({"vector": axis(1)})),
        ),
    ];
    for (method, path, body) in routes {
        let (status, error) = call(router, method.clone(), path, body, globex).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {error}");
    }
    let (_, listed) = call(router, Method::GET, "/v1/collections", None, globex).await;
    assert_eq!(ids(&listed).len(), 0, "{listed}");
    // The same name is free in another tenant.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/collections",
        Some(json!({"name": "docs", "dimensions": 8})),
        globex,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // acme's collection is untouched, and its reader searches but does not write.
    let reader = Some(keys.acme_reader.as_str());
    let (status, found) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(json!({"vector": axis(1), "top_k": 1})),
        reader,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), ["doc-1"]);
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/collections/docs/documents",
        Some(documents(4..5)),
        reader,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Members write documents but do not create or delete collections.
    let member = Some(keys.acme_member.as_str());
    let (status, _) = call(router, Method::DELETE, "/v1/collections/docs", None, member).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, collection) = call(router, Method::GET, "/v1/collections/docs", None, reader).await;
    assert_eq!(collection["document_count"], 4, "{collection}");
    assert_eq!(collection["dimensions"], 4, "{collection}");

    // An unauthenticated request reaches nothing.
    let response = send(router, request(&Method::GET, "/v1/collections", None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keyword_search_ranks_by_bm25_with_snippets_and_hybrid_fuses_both_rankings() {
    let server = keyless().await;
    let router = &server.router;
    call(
        router,
        Method::POST,
        "/v1/collections",
        Some(json!({"name": "docs", "dimensions": 4})),
        None,
    )
    .await;
    let texts = [
        "The cat slept all afternoon on the warm windowsill.",
        "Cats and dogs: a guide to keeping both in a small flat.",
        "Simmer the tomatoes with garlic and basil to make a soup.",
        "The windowsill garden grew basil, mint and chives.",
    ];
    let documents: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            json!({"id": format!("doc-{i}"), "text": text, "metadata": {"i": i}, "embedding": axis(i)})
        })
        .collect();
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/collections/docs/documents",
        Some(json!({ "documents": documents })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Stemmed and case-folded: "CATS" matches "cat" and "Cats".
    let (status, found) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(json!({"query": "CATS sleeping", "mode": "keyword", "top_k": 5})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(ids(&found), ["doc-0", "doc-1"], "{found}");
    let snippet = found["data"][0]["snippet"].as_str().expect("a snippet");
    assert!(snippet.contains("<mark>cat</mark>"), "{snippet}");
    assert!(found["data"][0]["score"].as_f64().unwrap_or(0.0) > 0.0);

    // A filter applies to keyword matches too.
    let (_, filtered) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(json!({
            "query": "basil windowsill", "mode": "keyword",
            "filter": {"key": "i", "type": "gte", "value": 2}
        })),
        None,
    )
    .await;
    assert_eq!(ids(&filtered), ["doc-3", "doc-2"], "{filtered}");

    // Hybrid: doc-3 is first by keywords, doc-0 nearest by vector; with the vector side
    // weighted down, keywords decide, and the fused list carries the keyword snippets.
    let hybrid = |weights: Value| {
        json!({
            "query": "windowsill basil", "vector": axis(0), "mode": "hybrid",
            "top_k": 2, "hybrid": weights
        })
    };
    let (status, fused) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(hybrid(json!({"embedding_weight": 0.1, "text_weight": 1.0}))),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fused}");
    assert_eq!(ids(&fused)[0], "doc-3", "{fused}");
    assert!(fused["data"][0]["snippet"].as_str().is_some(), "{fused}");
    let (_, vector_led) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(hybrid(json!({"embedding_weight": 1.0, "text_weight": 0.1}))),
        None,
    )
    .await;
    assert_eq!(ids(&vector_led)[0], "doc-0", "{vector_led}");

    // Replaced and deleted text leaves the keyword index with its document.
    call(
        router,
        Method::POST,
        "/v1/collections/docs/documents",
        Some(json!({"documents": [{"id": "doc-3", "text": "Nothing about herbs now.", "embedding": axis(3)}]})),
        None,
    )
    .await;
    call(
        router,
        Method::DELETE,
        "/v1/collections/docs/documents/doc-0",
        None,
        None,
    )
    .await;
    let (_, after) = call(
        router,
        Method::POST,
        "/v1/collections/docs/search",
        Some(json!({"query": "windowsill", "mode": "keyword"})),
        None,
    )
    .await;
    assert_eq!(ids(&after), Vec::<&str>::new(), "{after}");
}
