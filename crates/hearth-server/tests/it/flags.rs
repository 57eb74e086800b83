//! Feature flags over the real router: tenant admins define them, readers evaluate them over
//! OFREP in its own shapes, the server's `$` attributes come from the key alone, the bulk
//! answer's ETag turns repeats into 304s, and other tenants see nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use hearth_gateway::LimitDefaults;

use crate::gate::gated;
use crate::memory::call;

async fn bulk(
    router: &axum::Router,
    key: &str,
    etag: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/ofrep/v1/evaluate/flags")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let body = Body::from(json!({"context": {"targetingKey": "user-1"}}).to_string());
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|value| value.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, etag, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_define_flags_that_readers_evaluate_over_ofrep() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    let flag = json!({
        "key": "new-checkout",
        "type": "string",
        "variants": {"classic": "classic", "express": "express"},
        "default_variant": "classic",
        "rules": [{"when": [{"attribute": "$tenant", "op": "in", "values": ["acme"]},
                            {"attribute": "plan", "op": "in", "values": ["pro"]}],
                   "variant": "express"}],
        "metadata": {"owner": "payments"}
    });

    // Readers and members do not define flags; admins do.
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/flags",
        Some(flag.clone()),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/flags",
        Some(flag.clone()),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["object"], "flag");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["source"], "api");
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/flags",
        Some(flag.clone()),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut bad = flag.clone();
    bad["rules"][0]["variant"] = json!("turbo");
    let (status, body) = call(
        router,
        Method::PUT,
        "/v1/flags/new-checkout",
        Some(bad),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "rules[0].variant");

    // A reader evaluates it; `$tenant` is the key's tenant, whatever the context says.
    let evaluate = |context: Value, key: &'static str| {
        let keys = &server.keys;
        let token = match key {
            "acme" => keys.acme_reader.clone(),
            _ => keys.globex_admin.clone(),
        };
        async move {
            call(
                router,
                Method::POST,
                "/ofrep/v1/evaluate/flags/new-checkout",
                Some(json!({"context": context})),
                Some(&token),
            )
            .await
        }
    };
    let (status, body) = evaluate(json!({"targetingKey": "u1", "plan": "pro"}), "acme").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"key": "new-checkout", "value": "express", "reason": "TARGETING_MATCH",
               "variant": "express", "metadata": {"owner": "payments"}})
    );
    let (status, body) = evaluate(json!({"targetingKey": "u1", "plan": "free"}), "acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["value"].clone(), body["reason"].clone()),
        (json!("classic"), json!("DEFAULT"))
    );
    let (status, body) = evaluate(json!({"$tenant": "acme", "plan": "pro"}), "acme").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errorCode"], "INVALID_CONTEXT");
    // Another tenant's key finds no such flag.
    let (status, body) = evaluate(json!({"plan": "pro"}), "globex").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        (body["key"].clone(), body["errorCode"].clone()),
        (json!("new-checkout"), json!("FLAG_NOT_FOUND"))
    );

    // In process and over OFREP, the same context gets the same answer, splits included.
    let rollout = json!({"key": "rollout", "split": [{"variant": "on", "weight": 30}, {"variant": "off", "weight": 70}]});
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/flags",
        Some(rollout),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let acme = server
        .store
        .tenant_by_name("acme")
        .await
        .unwrap()
        .unwrap()
        .id;
    let snapshot = server.flags.snapshot();
    for unit in 0..300 {
        let context = json!({"targetingKey": format!("user-{unit}"), "plan": "pro"});
        let (status, over_http) = call(
            router,
            Method::POST,
            "/ofrep/v1/evaluate/flags/rollout",
            Some(json!({"context": context})),
            Some(&keys.acme_reader),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{over_http}");
        let mut in_process = hearth_flags::Context::for_key(format!("user-{unit}"));
        in_process.set("plan", json!("pro"));
        let evaluation = snapshot.evaluate(&acme, "rollout", &in_process).unwrap();
        assert_eq!(over_http["value"], *evaluation.value, "user-{unit}");
        assert_eq!(over_http["variant"], evaluation.variant, "user-{unit}");
        assert_eq!(
            over_http["reason"],
            evaluation.reason.as_str(),
            "user-{unit}"
        );
    }
    let (status, _) = call(
        router,
        Method::DELETE,
        "/v1/flags/rollout",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The bulk answer has an ETag; the same state answers 304, a change a new tag.
    let (status, etag, body) = bulk(router, &keys.acme_reader, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["flags"][0]["key"], "new-checkout");
    let etag = etag.expect("an ETag");
    let (status, _, _) = bulk(router, &keys.acme_reader, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, body) = call(
        router,
        Method::PATCH,
        "/v1/flags/new-checkout",
        Some(json!({"enabled": false})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, newer, body) = bulk(router, &keys.acme_reader, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(newer.as_deref(), Some(etag.as_str()));
    assert_eq!(body["flags"][0]["reason"], "DISABLED");
    let (_, _, body) = bulk(router, &keys.globex_admin, None).await;
    assert_eq!(body, json!({"flags": []}));

    // Changes are audited; removal is an admin's.
    let (_, body) = call(
        router,
        Method::GET,
        "/admin/v1/audit",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    let actions: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .filter(|action| action.starts_with("flag."))
        .collect();
    assert_eq!(
        actions,
        ["flag.disable", "flag.remove", "flag.define", "flag.define"]
    );
    let (status, _) = call(
        router,
        Method::DELETE,
        "/v1/flags/new-checkout",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        router,
        Method::DELETE,
        "/v1/flags/new-checkout",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
