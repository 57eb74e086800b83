//! The events API over the real router, gate and a real event log: publishing answers after
//! the event is stored, an idempotency key publishes once, a bad batch stores nothing and
//! names the field, roles decide who publishes, and the SSE stream replays from a sequence
//! and stays inside the caller's tenant.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hearth_gateway::LimitDefaults;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::gate::gated;
use crate::{json_body, send};

fn post(path: &str, key: &str, body: &Value, idempotency_key: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    if let Some(idempotency_key) = idempotency_key {
        builder = builder.header("idempotency-key", idempotency_key);
    }
    builder.body(Body::from(body.to_string())).expect("request")
}

/// A GET with the key, no body.
fn get(path: impl AsRef<str>, key: &str) -> Request<Body> {
    Request::get(path.as_ref())
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .expect("request")
}

/// A DELETE with the key.
fn delete(path: impl AsRef<str>, key: &str) -> Request<Body> {
    Request::delete(path.as_ref())
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .expect("request")
}

/// Reads an SSE body until it holds `count` events (blank-line separated), or fails after a
/// few seconds; returns the events' text.
async fn read_events(response: axum::response::Response, count: usize) -> Vec<String> {
    let mut body = response.into_body();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events: Vec<String> = text
            .split("\n\n")
            .filter(|event| event.contains("data:"))
            .map(str::to_string)
            .collect();
        if events.len() >= count {
            return events;
        }
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("only {} events came: {text:?}", events.len()))
            .expect("the stream ended")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn events_are_stored_once_replayed_in_order_and_kept_per_tenant() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;

    let first = send(
        &gated.router,
        post(
            "/v1/events/agent.task.done",
            &keys.acme_member,
            &json!({"task": 7}),
            Some("once"),
        ),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = json_body(first).await;
    assert_eq!(
        (first["seq"].as_u64(), first["duplicate"].as_bool()),
        (Some(1), Some(false))
    );
    let again = json_body(
        send(
            &gated.router,
            post(
                "/v1/events/agent.task.done",
                &keys.acme_member,
                &json!({"task": 8}),
                Some("once"),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(again["id"], first["id"], "{again}");
    assert_eq!(again["duplicate"], true);

    // A bad batch is refused whole, naming the event at fault.
    let refused = send(
        &gated.router,
        post(
            "/v1/events",
            &keys.acme_member,
            &json!({"events": [{"topic": "ok.topic", "data": 1}, {"topic": "bad..topic", "data": 2}]}),
            None,
        ),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(refused).await["error"]["param"],
        "events[1].topic"
    );
    let batch = json_body(
        send(
            &gated.router,
            post(
                "/v1/events",
                &keys.acme_member,
                &json!({"events": [{"topic": "agent.job.done", "data": {"job": 1}},
                                   {"topic": "emotion.joy", "data": {"level": 0.8}}]}),
                None,
            ),
        )
        .await,
    )
    .await;
    let sequences: Vec<u64> = batch["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(sequences, [2, 3], "nothing of the refused batch was stored");

    // Readers follow but do not publish.
    let forbidden = send(
        &gated.router,
        post("/v1/events/agent.x", &keys.acme_reader, &json!({}), None),
    )
    .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    let stream = send(
        &gated.router,
        get(
            "/v1/events/stream?topics=agent.*.done,nothing.here&from_seq=1",
            &keys.acme_reader,
        ),
    )
    .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let events = read_events(stream, 2).await;
    assert!(
        events[0].contains("id: 1") && events[0].contains("event: agent.task.done"),
        "{events:?}"
    );
    assert!(events[0].contains(r#"data: {"task":7}"#), "{events:?}");
    assert!(
        events[1].contains("id: 2") && events[1].contains("agent.job.done"),
        "{events:?}"
    );

    // Another tenant's stream starts at its own first event, never at acme's.
    let theirs = send(
        &gated.router,
        post(
            "/v1/events/agent.task.done",
            &keys.globex_admin,
            &json!({"globex": true}),
            None,
        ),
    )
    .await;
    assert_eq!(json_body(theirs).await["seq"], 1);
    let stream = send(
        &gated.router,
        get(
            "/v1/events/stream?topics=%3E&from_seq=1",
            &keys.globex_admin,
        ),
    )
    .await;
    let events = read_events(stream, 1).await;
    assert!(events[0].contains(r#"{"globex":true}"#), "{events:?}");

    let malformed = send(
        &gated.router,
        get("/v1/events/stream?topics=a.%3E.b", &keys.acme_reader),
    )
    .await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_topic_schema_set_by_an_admin_refuses_bad_data_naming_the_place() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let put = |key: &str| {
        Request::builder()
            .method(Method::PUT)
            .uri("/v1/topics/emotion.*")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"schema": {"type": "object", "required": ["level"],
                       "properties": {"level": {"type": "number"}}}})
                .to_string(),
            ))
            .expect("request")
    };
    assert_eq!(
        send(&gated.router, put(&keys.acme_member)).await.status(),
        StatusCode::FORBIDDEN,
        "members publish; admins set topics"
    );
    let stored = send(&gated.router, put(&keys.acme_admin)).await;
    assert_eq!(stored.status(), StatusCode::OK);
    assert_eq!(json_body(stored).await["pattern"], "emotion.*");

    let refused = send(
        &gated.router,
        post(
            "/v1/events/emotion.joy",
            &keys.acme_member,
            &json!({"level": "high"}),
            None,
        ),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let error = json_body(refused).await;
    assert_eq!(error["error"]["code"], "schema_violation", "{error}");
    assert_eq!(error["error"]["param"], "data");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("/level"),
        "{error}"
    );
    let accepted = send(
        &gated.router,
        post(
            "/v1/events/emotion.joy",
            &keys.acme_member,
            &json!({"level": 0.7}),
            None,
        ),
    )
    .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    // Another tenant's topics have no such rule.
    let theirs = send(
        &gated.router,
        post(
            "/v1/events/emotion.joy",
            &keys.globex_admin,
            &json!({"level": "high"}),
            None,
        ),
    )
    .await;
    assert_eq!(theirs.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_stream_from_before_what_retention_removed_starts_with_a_gap_event() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let topic = Request::builder()
        .method(Method::PUT)
        .uri("/v1/topics/metrics.%3E")
        .header("authorization", format!("Bearer {}", keys.acme_admin))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"retention": {"max_events": 1}}).to_string(),
        ))
        .expect("request");
    assert_eq!(send(&gated.router, topic).await.status(), StatusCode::OK);
    for n in 1..=3 {
        let published = send(
            &gated.router,
            post(
                "/v1/events/metrics.cpu",
                &keys.acme_member,
                &json!({"n": n}),
                None,
            ),
        )
        .await;
        assert_eq!(published.status(), StatusCode::OK);
    }
    // Retention runs every 50 ms in this harness.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stream = send(
            &gated.router,
            get(
                "/v1/events/stream?topics=metrics.%3E&from_seq=1",
                &keys.acme_reader,
            ),
        )
        .await;
        let events = read_events(stream, 1).await;
        // Retention may run between the publishes: wait until it has trimmed to the newest.
        if events[0].contains("event: gap") && events[0].contains(r#""evicted_through":2"#) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no gap event after retention: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn hearth_publishes_its_own_changes_under_hearth_into_the_tenant_they_concern() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let stream = send(
        &gated.router,
        get("/v1/events/stream?topics=hearth.%3E", &keys.acme_reader),
    )
    .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let created = send(
        &gated.router,
        post(
            "/v1/collections",
            &keys.acme_admin,
            &json!({"name": "docs", "dimensions": 4}),
            None,
        ),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    // Another tenant's change is not in acme's stream.
    let theirs = send(
        &gated.router,
        post(
            "/v1/collections",
            &keys.globex_admin,
            &json!({"name": "theirs", "dimensions": 4}),
            None,
        ),
    )
    .await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    let key = send(
        &gated.router,
        post(
            "/admin/v1/keys",
            &keys.acme_admin,
            &json!({"name": "ci", "role": "reader"}),
            None,
        ),
    )
    .await;
    assert_eq!(key.status(), StatusCode::CREATED);
    let secret = json_body(key).await["key"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(secret.starts_with("hk_"), "{secret}");

    let events = read_events(stream, 2).await;
    assert!(
        events[0].contains("event: hearth.collection.created") && events[0].contains("docs"),
        "{events:?}"
    );
    assert!(
        events[1].contains("event: hearth.key.created"),
        "{events:?}"
    );
    assert!(
        !events[1].contains(&secret),
        "a key's secret is never in an event"
    );
    assert!(!events.concat().contains("theirs"), "{events:?}");
}

#[tokio::test]
async fn durable_consumers_deliver_redeliver_and_dead_letter_within_their_tenant() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let consumer = json!({
        "name": "billing", "filter": "orders.>", "ack_wait_ms": 100,
        "max_deliver": 2, "dead_letter_topic": "dead.orders"
    });
    let refused = send(
        &gated.router,
        post("/v1/consumers", &keys.acme_member, &consumer, None),
    )
    .await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "admins create consumers"
    );
    let created = send(
        &gated.router,
        post("/v1/consumers", &keys.acme_admin, &consumer, None),
    )
    .await;
    assert_eq!(created.status(), StatusCode::OK);
    let created = json_body(created).await;
    assert_eq!(created["deliver"], "all", "{created}");
    assert_eq!(created["state"]["next_seq"], 1, "{created}");
    let conflict = send(
        &gated.router,
        post(
            "/v1/consumers",
            &keys.acme_admin,
            &json!({"name": "billing", "filter": ">"}),
            None,
        ),
    )
    .await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let bad = send(
        &gated.router,
        post(
            "/v1/consumers",
            &keys.acme_admin,
            &json!({"name": "x", "filter": "a.*", "deliver": "sometimes"}),
            None,
        ),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(bad).await["error"]["param"], "deliver");

    for order in 1..=2 {
        let published = send(
            &gated.router,
            post(
                "/v1/events/orders.created",
                &keys.acme_member,
                &json!({"order": order}),
                None,
            ),
        )
        .await;
        assert_eq!(published.status(), StatusCode::OK);
    }
    let fetch = |key: &str, wait_ms: u64| {
        post(
            "/v1/consumers/billing/fetch",
            key,
            &json!({"batch": 10, "wait_ms": wait_ms}),
            None,
        )
    };
    let fetched = json_body(send(&gated.router, fetch(&keys.acme_reader, 0)).await).await;
    let deliveries = fetched["data"].as_array().expect("data").clone();
    assert_eq!(deliveries.len(), 2, "{fetched}");
    assert_eq!(deliveries[0]["data"], json!({"order": 1}));
    assert_eq!(deliveries[0]["delivery_count"], 1);
    let acked = json_body(
        send(
            &gated.router,
            post(
                "/v1/consumers/billing/ack",
                &keys.acme_reader,
                &json!({"delivery_ids": [deliveries[0]["delivery_id"]]}),
                None,
            ),
        )
        .await,
    )
    .await;
    assert_eq!(acked["count"], 1, "{acked}");

    // Another tenant reaches none of it: not the consumer, not its deliveries.
    let theirs = send(&gated.router, fetch(&keys.globex_admin, 0)).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let their_ack = send(
        &gated.router,
        post(
            "/v1/consumers/billing/ack",
            &keys.globex_admin,
            &json!({"delivery_ids": [deliveries[1]["delivery_id"]]}),
            None,
        ),
    )
    .await;
    assert_eq!(their_ack.status(), StatusCode::NOT_FOUND);
    let their_list =
        json_body(send(&gated.router, get("/v1/consumers", &keys.globex_admin)).await).await;
    assert_eq!(their_list["data"], json!([]));

    // The second order is redelivered after its ack wait, nak'd on its last delivery, and
    // dead-lettered with the reason.
    let again = json_body(send(&gated.router, fetch(&keys.acme_reader, 5000)).await).await;
    assert_eq!(again["data"][0]["delivery_count"], 2, "{again}");
    let naked = send(
        &gated.router,
        post(
            "/v1/consumers/billing/nak",
            &keys.acme_reader,
            &json!({"delivery_ids": [again["data"][0]["delivery_id"]]}),
            None,
        ),
    )
    .await;
    assert_eq!(json_body(naked).await["count"], 1);
    let stream = send(
        &gated.router,
        get(
            "/v1/events/stream?topics=dead.%3E&from_seq=1",
            &keys.acme_reader,
        ),
    )
    .await;
    let letters = read_events(stream, 1).await;
    assert!(letters[0].contains("event: dead.orders"), "{letters:?}");
    assert!(
        letters[0].contains(r#""reason":"max_deliver_nak""#)
            && letters[0].contains(r#""data":{"order":2}"#),
        "{letters:?}"
    );
    let info = json_body(
        send(
            &gated.router,
            get("/v1/consumers/billing", &keys.acme_reader),
        )
        .await,
    )
    .await;
    assert_eq!(info["state"]["dead_lettered"], 1, "{info}");
    assert_eq!(info["state"]["ack_pending"], 0, "{info}");

    let bad_id = send(
        &gated.router,
        post(
            "/v1/consumers/billing/ack",
            &keys.acme_reader,
            &json!({"delivery_ids": ["nope"]}),
            None,
        ),
    )
    .await;
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(bad_id).await["error"]["param"], "delivery_ids[0]");
    let deleted = send(
        &gated.router,
        delete("/v1/consumers/billing", &keys.acme_admin),
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::OK);
}

/// What a test receiver was sent.
#[derive(Clone, Default)]
struct Received(std::sync::Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, String)>>>);

/// A webhook receiver on loopback: `/flaky` answers 500 to its first request and 200 after,
/// `/gone` answers 410, `/ok` 200.
async fn receiver() -> (String, Received) {
    use axum::extract::State;
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/{kind}",
            axum::routing::post(
                |State(received): State<Received>,
                 axum::extract::Path(kind): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    let seen = {
                        let mut all = received.0.lock().expect("lock");
                        all.push((kind.clone(), headers, body));
                        all.iter().filter(|(path, ..)| *path == kind).count()
                    };
                    match (kind.as_str(), seen) {
                        ("flaky", 1) => (StatusCode::INTERNAL_SERVER_ERROR, "not yet"),
                        ("gone", _) => (StatusCode::GONE, "gone"),
                        _ => (StatusCode::OK, "thanks"),
                    }
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

async fn get_json(gated: &crate::gate::Gated, path: &str, key: &str) -> (StatusCode, Value) {
    let response = send(&gated.router, get(path, key)).await;
    let status = response.status();
    (status, json_body(response).await)
}

#[tokio::test]
async fn webhooks_are_signed_retried_logged_disabled_on_410_and_kept_per_tenant() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let (base, received) = receiver().await;
    let flaky = json!({"url": format!("{base}/flaky"), "topics": ["orders.*"]});
    let refused = send(
        &gated.router,
        post("/v1/webhooks", &keys.acme_member, &flaky, None),
    )
    .await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "admins manage webhooks"
    );
    let created = send(
        &gated.router,
        post("/v1/webhooks", &keys.acme_admin, &flaky, None),
    )
    .await;
    assert_eq!(created.status(), StatusCode::OK);
    let created = json_body(created).await;
    let id = created["id"].as_str().expect("id").to_string();
    assert!(
        created["secret"]
            .as_str()
            .unwrap_or("")
            .starts_with("whsec_"),
        "{created}"
    );
    let gone = json_body(
        send(
            &gated.router,
            post(
                "/v1/webhooks",
                &keys.acme_admin,
                &json!({"url": format!("{base}/gone"), "topics": "orders.>"}),
                None,
            ),
        )
        .await,
    )
    .await;
    let gone_id = gone["id"].as_str().expect("id").to_string();

    let published = send(
        &gated.router,
        post(
            "/v1/events/orders.created",
            &keys.acme_member,
            &json!({"order": 7}),
            None,
        ),
    )
    .await;
    let event_id = json_body(published).await["id"]
        .as_str()
        .expect("id")
        .to_string();

    // The flaky endpoint fails once and gets the retry after the (compressed) first wait.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let deliveries = loop {
        let (_, log) = get_json(
            &gated,
            &format!("/v1/webhooks/{id}/deliveries"),
            &keys.acme_admin,
        )
        .await;
        if log["data"][0]["status"] == "succeeded" {
            break log;
        }
        assert!(tokio::time::Instant::now() < deadline, "no success: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let attempts = deliveries["data"][0]["attempts"]
        .as_array()
        .expect("attempts");
    let statuses: Vec<&Value> = attempts
        .iter()
        .map(|attempt| &attempt["status_code"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(200)], "{deliveries}");
    assert_eq!(attempts[0]["response"], "not yet");
    assert_eq!(deliveries["data"][0]["event_id"], event_id.as_str());
    {
        let all = received.0.lock().expect("lock");
        let flaky: Vec<_> = all.iter().filter(|(kind, ..)| kind == "flaky").collect();
        assert_eq!(flaky.len(), 2);
        let (_, headers, body) = flaky[1];
        // The same webhook-id on every attempt; a Standard Webhooks signature.
        assert_eq!(headers["webhook-id"], event_id.as_str());
        assert_eq!(flaky[0].1["webhook-id"], event_id.as_str());
        let signature = headers["webhook-signature"].to_str().expect("text");
        assert!(signature.starts_with("v1,"), "{signature}");
        let body: Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(body["type"], "orders.created");
        assert_eq!(body["data"], json!({"order": 7}));
    }

    // 410 disables at once and says so with a system event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, endpoint) =
            get_json(&gated, &format!("/v1/webhooks/{gone_id}"), &keys.acme_admin).await;
        if endpoint["enabled"] == false {
            assert!(
                endpoint["disabled_reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("410"),
                "{endpoint}"
            );
            assert!(
                endpoint.get("secret").is_none(),
                "the secret shows only once"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not disabled: {endpoint}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stream = send(
        &gated.router,
        get(
            "/v1/events/stream?topics=hearth.webhook.%3E&from_seq=1",
            &keys.acme_reader,
        ),
    )
    .await;
    let disabled = read_events(stream, 1).await;
    assert!(
        disabled[0].contains("event: hearth.webhook.disabled") && disabled[0].contains(&gone_id),
        "{disabled:?}"
    );

    // A manual retry sends it again and logs a manual attempt.
    let delivery_id = deliveries["data"][0]["id"].as_str().expect("id");
    let retried = json_body(
        send(
            &gated.router,
            Request::post(format!("/v1/webhooks/{id}/deliveries/{delivery_id}/retry"))
                .header("authorization", format!("Bearer {}", keys.acme_admin))
                .body(Body::empty())
                .expect("request"),
        )
        .await,
    )
    .await;
    assert_eq!(retried["attempts"][2]["trigger"], "manual", "{retried}");
    assert_eq!(retried["attempts"][2]["status_code"], 200, "{retried}");

    // Another tenant sees none of it.
    let (_, theirs) = get_json(&gated, "/v1/webhooks", &keys.globex_admin).await;
    assert_eq!(theirs["data"], json!([]));
    let (status, _) = get_json(&gated, &format!("/v1/webhooks/{id}"), &keys.globex_admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get_json(
        &gated,
        &format!("/v1/webhooks/{id}/deliveries"),
        &keys.globex_admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Its webhook's consumer is Hearth's own: not listed, not fetchable.
    let (_, consumers) = get_json(&gated, "/v1/consumers", &keys.acme_admin).await;
    assert_eq!(consumers["data"], json!([]), "{consumers}");
    let stolen = send(
        &gated.router,
        post(
            &format!("/v1/consumers/_webhook_{id}/fetch"),
            &keys.acme_admin,
            &json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(stolen.status(), StatusCode::NOT_FOUND);

    let deleted = send(
        &gated.router,
        delete(format!("/v1/webhooks/{id}"), &keys.acme_admin),
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::OK);
}

#[tokio::test]
async fn webhooks_with_a_bad_url_or_topics_are_refused_naming_the_field() {
    let gated = gated(LimitDefaults::default()).await;
    // This harness allows loopback (its receivers live there); the refusal of a bad scheme
    // and of bad topics holds everywhere.
    for (body, param) in [
        (json!({"url": "ftp://example.com/hook"}), "url"),
        (
            json!({"url": "https://example.com/hook", "topics": ["a..b"]}),
            "topics",
        ),
        (json!({"topics": [">"]}), "url"),
    ] {
        let refused = send(
            &gated.router,
            post("/v1/webhooks", &gated.keys.acme_admin, &body, None),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json_body(refused).await["error"]["param"], param, "{body}");
    }
}

/// The gated router on a real loopback listener, for WebSocket clients.
async fn listening(gated: &crate::gate::Gated) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = gated
        .router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("ws://{address}/v1/events/ws")
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, key: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    socket
}

async fn say(socket: &mut Socket, frame: Value) {
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            frame.to_string().into(),
        ))
        .await
        .expect("send");
}

/// The next text frame, as JSON; fails after a few seconds.
async fn hear(socket: &mut Socket) -> Value {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON frame");
        }
    }
}

#[tokio::test]
async fn the_websocket_subscribes_with_resume_and_gap_publishes_by_role_and_pushes_a_consumer() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let url = listening(&gated).await;

    // Retention that keeps one event, so a resume from 1 has a gap to report.
    let topic = Request::builder()
        .method(Method::PUT)
        .uri("/v1/topics/metrics.%3E")
        .header("authorization", format!("Bearer {}", keys.acme_admin))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"retention": {"max_events": 1}}).to_string(),
        ))
        .expect("request");
    assert_eq!(send(&gated.router, topic).await.status(), StatusCode::OK);

    let mut member = connect(&url, &keys.acme_member).await;
    for n in 1..=3 {
        say(
            &mut member,
            json!({"type": "publish", "topic": "metrics.cpu", "data": {"n": n}, "ref": n}),
        )
        .await;
        let published = hear(&mut member).await;
        assert_eq!(published["type"], "published", "{published}");
        assert_eq!(
            (published["seq"].as_u64(), &published["ref"]),
            (Some(n), &json!(n))
        );
    }
    say(
        &mut member,
        json!({"type": "publish", "topic": "bad..topic", "data": 1}),
    )
    .await;
    let refused = hear(&mut member).await;
    assert_eq!(
        (refused["type"].as_str(), refused["param"].as_str()),
        (Some("error"), Some("topic")),
        "{refused}"
    );

    let mut reader = connect(&url, &keys.acme_reader).await;
    say(
        &mut reader,
        json!({"type": "publish", "topic": "metrics.cpu", "data": 0}),
    )
    .await;
    assert_eq!(
        hear(&mut reader).await["code"],
        "forbidden",
        "readers do not publish"
    );
    // Retention runs every 50 ms here: wait until it has trimmed to the newest.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let id = format!("m{attempt}");
        say(
            &mut reader,
            json!({"type": "subscribe", "id": id, "topics": "metrics.>", "from_seq": 1}),
        )
        .await;
        assert_eq!(hear(&mut reader).await["type"], "subscribed");
        let first = hear(&mut reader).await;
        if first["type"] == "gap" && first["evicted_through"] == 2 {
            assert_eq!(first["subscription"], id.as_str());
            let event = hear(&mut reader).await;
            assert_eq!(
                (event["type"].as_str(), event["seq"].as_u64()),
                (Some("event"), Some(3))
            );
            break;
        }
        say(&mut reader, json!({"type": "unsubscribe", "id": id})).await;
        loop {
            if hear(&mut reader).await["type"] == "unsubscribed" {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no gap: {first}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Live: a REST publish reaches the socket's subscription.
    let published = send(
        &gated.router,
        post(
            "/v1/events/metrics.mem",
            &keys.acme_member,
            &json!({"n": 4}),
            None,
        ),
    )
    .await;
    assert_eq!(published.status(), StatusCode::OK);
    let live = hear(&mut reader).await;
    assert_eq!(
        (live["seq"].as_u64(), &live["data"]),
        (Some(4), &json!({"n": 4})),
        "{live}"
    );

    // Another tenant's socket sees none of it and reaches none of acme's consumers.
    let consumer = json!({"name": "jobs", "filter": "jobs.>", "ack_wait_ms": 60000});
    let created = send(
        &gated.router,
        post("/v1/consumers", &keys.acme_admin, &consumer, None),
    )
    .await;
    assert_eq!(created.status(), StatusCode::OK);
    let mut theirs = connect(&url, &keys.globex_admin).await;
    say(
        &mut theirs,
        json!({"type": "subscribe", "id": "all", "topics": ">", "from_seq": 1}),
    )
    .await;
    assert_eq!(hear(&mut theirs).await["type"], "subscribed");
    say(&mut theirs, json!({"type": "consume", "consumer": "jobs"})).await;
    assert_eq!(hear(&mut theirs).await["code"], "not_found");

    // A consumer pushed over the socket; acknowledged deliveries do not come again.
    say(&mut reader, json!({"type": "consume", "consumer": "jobs"})).await;
    assert_eq!(hear(&mut reader).await["type"], "consuming");
    for job in 1..=2 {
        let published = send(
            &gated.router,
            post(
                "/v1/events/jobs.run",
                &keys.acme_member,
                &json!({"job": job}),
                None,
            ),
        )
        .await;
        assert_eq!(published.status(), StatusCode::OK);
    }
    let mut delivered = Vec::new();
    while delivered.len() < 2 {
        let frame = hear(&mut reader).await;
        if frame["type"] == "delivery" {
            assert_eq!(frame["consumer"], "jobs");
            delivered.push(frame["delivery_id"].clone());
        }
    }
    say(
        &mut reader,
        json!({"type": "ack", "consumer": "jobs", "delivery_ids": delivered, "ref": "a1"}),
    )
    .await;
    loop {
        let frame = hear(&mut reader).await;
        if frame["type"] == "settled" {
            assert_eq!(
                (frame["count"].as_u64(), &frame["ref"]),
                (Some(2), &json!("a1"))
            );
            break;
        }
    }
    let (_, info) = get_json(&gated, "/v1/consumers/jobs", &keys.acme_reader).await;
    assert_eq!(info["state"]["acked"], 2, "{info}");
    // Nothing of acme's reached globex's socket.
    use futures_util::StreamExt;
    let quiet = tokio::time::timeout(Duration::from_millis(200), theirs.next()).await;
    assert!(quiet.is_err(), "globex heard {quiet:?}");
}

#[tokio::test]
async fn a_keys_topic_scopes_restrict_what_it_publishes_and_subscribes_to() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let created = send(
        &gated.router,
        post(
            "/admin/v1/keys",
            &keys.acme_admin,
            &json!({"name": "orders-only", "role": "member",
                    "scopes": ["publish:orders.*", "subscribe:orders.>"]}),
            None,
        ),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let scoped = json_body(created).await["key"]
        .as_str()
        .expect("key")
        .to_string();
    gated
        .authenticator
        .refresh(&gated.store)
        .await
        .expect("refresh");

    let allowed = send(
        &gated.router,
        post(
            "/v1/events/orders.created",
            &scoped,
            &json!({"order": 1}),
            None,
        ),
    )
    .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let refused = send(
        &gated.router,
        post("/v1/events/users.created", &scoped, &json!({}), None),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(refused).await["error"]["param"], "topic");
    let batch = send(
        &gated.router,
        post(
            "/v1/events",
            &scoped,
            &json!({"events": [{"topic": "orders.paid", "data": 1}, {"topic": "users.x", "data": 2}]}),
            None,
        ),
    )
    .await;
    assert_eq!(batch.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(batch).await["error"]["param"], "events[1].topic");

    let stream = |topics: &str| get(format!("/v1/events/stream?topics={topics}"), &scoped);
    assert_eq!(
        send(&gated.router, stream("%3E")).await.status(),
        StatusCode::FORBIDDEN,
        "`>` is wider than orders.>"
    );
    assert_eq!(
        send(&gated.router, stream("orders.*.eu")).await.status(),
        StatusCode::OK
    );

    // A consumer whose filter is wider than the key's scopes cannot be fetched from by it.
    let wide = send(
        &gated.router,
        post(
            "/v1/consumers",
            &keys.acme_admin,
            &json!({"name": "everything", "filter": ">"}),
            None,
        ),
    )
    .await;
    assert_eq!(wide.status(), StatusCode::OK);
    let fetched = send(
        &gated.router,
        post("/v1/consumers/everything/fetch", &scoped, &json!({}), None),
    )
    .await;
    assert_eq!(fetched.status(), StatusCode::FORBIDDEN);
    // The same restrictions hold over the WebSocket.
    let url = listening(&gated).await;
    let mut socket = connect(&url, &scoped).await;
    say(
        &mut socket,
        json!({"type": "publish", "topic": "users.x", "data": 1}),
    )
    .await;
    assert_eq!(hear(&mut socket).await["code"], "forbidden");
    say(
        &mut socket,
        json!({"type": "subscribe", "id": "s", "topics": ">"}),
    )
    .await;
    assert_eq!(hear(&mut socket).await["code"], "forbidden");
    say(
        &mut socket,
        json!({"type": "consume", "consumer": "everything"}),
    )
    .await;
    assert_eq!(hear(&mut socket).await["code"], "forbidden");
}

#[tokio::test]
async fn each_event_of_a_batch_counts_against_the_request_rate() {
    let gated = gated(LimitDefaults {
        key: hearth_gateway::Limits {
            requests_per_minute: Some(5),
            ..hearth_gateway::Limits::default()
        },
        ip: hearth_gateway::Limits::default(),
    })
    .await;
    let key = &gated.keys.acme_member;
    let batch = |count: usize| {
        let events: Vec<Value> = (0..count)
            .map(|n| json!({"topic": "load.test", "data": n}))
            .collect();
        post("/v1/events", key, &json!({"events": events}), None)
    };
    let too_many = send(&gated.router, batch(10)).await;
    assert_eq!(too_many.status(), StatusCode::TOO_MANY_REQUESTS);
    let error = json_body(too_many).await;
    assert_eq!(error["error"]["code"], "rate_limit_requests", "{error}");
    // The refused batch took only its one request: three more events fit in the five.
    let fits = send(&gated.router, batch(3)).await;
    assert_eq!(fits.status(), StatusCode::OK);
    let over = send(&gated.router, batch(2)).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nothing of the refused batches was stored: a consumer of everything finds the three.
    let admin = &gated.keys.acme_admin;
    let created = send(
        &gated.router,
        post(
            "/v1/consumers",
            admin,
            &json!({"name": "count", "filter": ">"}),
            None,
        ),
    )
    .await;
    assert_eq!(created.status(), StatusCode::OK);
    let fetched = json_body(
        send(
            &gated.router,
            post(
                "/v1/consumers/count/fetch",
                admin,
                &json!({"batch": 100}),
                None,
            ),
        )
        .await,
    )
    .await;
    assert_eq!(
        fetched["data"].as_array().map(Vec::len),
        Some(3),
        "{fetched}"
    );
}

/// A server without keys whose events have small queues (8), on a loopback listener; returns
/// its WebSocket URL and its router.
async fn small_queues() -> (String, axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = std::sync::Arc::new(
        hearth_events::Events::open(
            dir.path(),
            hearth_events::EventsOptions {
                subscription_queue: 8,
                ..hearth_events::EventsOptions::default()
            },
        )
        .await
        .expect("events"),
    );
    let (_runtime, runtime_receiver) =
        tokio::sync::watch::channel(hearth_server::RuntimeSettings {
            max_body_bytes: 1 << 20,
            max_upload_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
        });
    let state = hearth_server::AppState::new(hearth_server::SharedState {
        runtime: runtime_receiver,
        settings: hearth_server::StaticSettings::default(),
        readiness: hearth_server::Readiness::default(),
        store: None,
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
        events: Some(events),
        webhooks: None,
        routing: None,
        cache: None,
        gateway: None,
        metrics: hearth_server::install_metrics_recorder(),
        started_at: std::time::Instant::now(),
    });
    let router = hearth_server::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("ws://{address}/v1/events/ws"), router, dir)
}

#[tokio::test]
async fn a_websocket_subscriber_that_does_not_read_is_ended_with_a_reason_not_buffered() {
    use futures_util::StreamExt;
    let (url, router, _dir) = small_queues().await;
    let mut socket = connect(&url, "unused").await;
    say(
        &mut socket,
        json!({"type": "subscribe", "id": "s", "topics": "load.>"}),
    )
    .await;
    assert_eq!(hear(&mut socket).await["type"], "subscribed");
    // Far more than the socket's buffers and queues hold, while the client reads nothing.
    let padding = "x".repeat(1000);
    for batch in 0..20 {
        let events: Vec<Value> = (0..500)
            .map(|n| json!({"topic": "load.test", "data": {"n": batch * 500 + n, "pad": padding}}))
            .collect();
        let published = send(
            &router,
            Request::post("/v1/events")
                .header("content-type", "application/json")
                .body(Body::from(json!({"events": events}).to_string()))
                .expect("request"),
        )
        .await;
        assert_eq!(published.status(), StatusCode::OK);
    }
    // What was queued arrives, then the reason: a 1008 close or a slow_consumer error.
    let mut received = 0;
    let reason = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server ends the stream");
        match next {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                if frame["type"] == "error" {
                    break frame["code"].as_str().unwrap_or("").to_string();
                }
                received += 1;
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(close)))) => {
                assert_eq!(u16::from(close.code), 1008, "{close:?}");
                break close.reason.to_string();
            }
            other => panic!("unexpected {other:?} after {received} events"),
        }
    };
    assert!(
        received < 10_000,
        "every event was buffered for a client that read none"
    );
    assert!(reason.contains("slow"), "{reason}");
}

#[tokio::test]
async fn sse_and_websocket_subscribers_resume_after_a_reconnect_without_loss_or_repeats() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let publish = |n: u64| {
        post(
            "/v1/events/orders.created",
            &keys.acme_member,
            &json!({"order": n}),
            None,
        )
    };
    for n in 1..=2 {
        assert_eq!(
            send(&gated.router, publish(n)).await.status(),
            StatusCode::OK
        );
    }
    // SSE: read two, go away, miss two, come back with Last-Event-ID.
    let stream = send(
        &gated.router,
        get(
            "/v1/events/stream?topics=orders.*&from_seq=1",
            &keys.acme_reader,
        ),
    )
    .await;
    let first = read_events(stream, 2).await;
    assert!(first[1].contains("id: 2"), "{first:?}");
    for n in 3..=4 {
        assert_eq!(
            send(&gated.router, publish(n)).await.status(),
            StatusCode::OK
        );
    }
    let resumed = send(
        &gated.router,
        Request::get("/v1/events/stream?topics=orders.*")
            .header("authorization", format!("Bearer {}", keys.acme_reader))
            .header("last-event-id", "2")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    let again = read_events(resumed, 2).await;
    assert!(
        again[0].contains("id: 3") && again[1].contains("id: 4"),
        "{again:?}"
    );

    // WebSocket: the same, resuming with from_seq after the last sequence received.
    let url = listening(&gated).await;
    let mut socket = connect(&url, &keys.acme_reader).await;
    say(
        &mut socket,
        json!({"type": "subscribe", "id": "o", "topics": "orders.*", "from_seq": 1}),
    )
    .await;
    assert_eq!(hear(&mut socket).await["type"], "subscribed");
    let mut last = 0;
    for expected in 1..=4 {
        let event = hear(&mut socket).await;
        assert_eq!(event["seq"], expected, "{event}");
        last = expected;
    }
    drop(socket);
    for n in 5..=6 {
        assert_eq!(
            send(&gated.router, publish(n)).await.status(),
            StatusCode::OK
        );
    }
    let mut socket = connect(&url, &keys.acme_reader).await;
    say(
        &mut socket,
        json!({"type": "subscribe", "id": "o", "topics": "orders.*", "from_seq": last + 1}),
    )
    .await;
    assert_eq!(hear(&mut socket).await["type"], "subscribed");
    for expected in 5..=6 {
        assert_eq!(hear(&mut socket).await["seq"], expected);
    }
    assert_eq!(
        send(&gated.router, publish(7)).await.status(),
        StatusCode::OK
    );
    assert_eq!(hear(&mut socket).await["seq"], 7, "live after the replay");
}
