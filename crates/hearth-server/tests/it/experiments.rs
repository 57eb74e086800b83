//! Experiments over the real router: tenant admins define and start them, a request on the
//! target is placed in a variant and recorded when it ends (here without models: the answer is
//! an error, which is measured too), feedback by the request's id joins its variant, results
//! come back with their statistics, a stop with a winner promotes a prompt label, and other
//! tenants see nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use hearth_gateway::LimitDefaults;

use crate::gate::gated;
use crate::memory::call;

/// A chat request on `model` for `user`; returns the status and the request id the server
/// answered with.
async fn chat(router: &axum::Router, key: &str, body: Value) -> (StatusCode, String) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("every answer names its request")
        .to_str()
        .unwrap()
        .to_string();
    // The exposure is recorded when the body ends.
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, request_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_run_experiments_whose_requests_and_feedback_reach_the_results() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    let experiment = json!({
        "name": "bot",
        "target": {"model": "support-bot"},
        "variants": [{"name": "control", "weight": 50},
                     {"name": "warm", "weight": 50, "parameters": {"temperature": 0.9}}],
        "metrics": [{"name": "thumbs_up", "kind": "boolean"}]
    });
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/experiments",
        Some(experiment.clone()),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/experiments",
        Some(experiment.clone()),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "draft");
    let mut bad = experiment.clone();
    bad["name"] = json!("other");
    bad["holdout_percent"] = json!(90);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/experiments",
        Some(bad),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "holdout_percent");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/experiments/bot/start",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "running");

    // Requests on the target are placed by their user and recorded; this server has no
    // models, so each answer is an error, measured as one.
    let mut request_ids = Vec::new();
    for user in 0..40 {
        let body = json!({"model": "support-bot", "user": format!("user-{user}"),
                          "messages": [{"role": "user", "content": "hi"}]});
        let (status, request_id) = chat(router, &keys.acme_member, body).await;
        assert!(
            status.is_client_error() || status.is_server_error(),
            "{status}"
        );
        request_ids.push(request_id);
    }
    // Feedback by the request's id joins the variant that served it.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/feedback",
        Some(json!({"request_id": request_ids[0], "metric": "thumbs_up", "value": true})),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["experiment"], "bot");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/feedback",
        Some(json!({"request_id": request_ids[1], "metric": "stars", "value": 4})),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "metric");
    // Another tenant's key cannot reach these requests.
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/feedback",
        Some(json!({"request_id": request_ids[1], "metric": "thumbs_up", "value": true})),
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, results) = call(
        router,
        Method::GET,
        "/v1/experiments/bot/results",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["control"], "control");
    let exposures = results["exposures"].as_array().unwrap();
    let units: u64 = exposures
        .iter()
        .map(|row| row["units"].as_u64().unwrap())
        .sum();
    assert_eq!(units, 40, "{results}");
    assert!(
        exposures
            .iter()
            .all(|row| row["units"].as_u64().unwrap() > 5),
        "{results}"
    );
    let errors = results["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|metric| metric["name"] == "error")
        .unwrap();
    assert_eq!(errors["kind"], "boolean");
    assert_eq!(
        errors["variants"][0]["mean"], 1.0,
        "every answer was an error: {errors}"
    );
    let thumbs = results["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|metric| metric["name"] == "thumbs_up")
        .unwrap();
    let liked: f64 = thumbs["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["mean"].as_f64().unwrap() * row["units"].as_f64().unwrap())
        .sum();
    assert_eq!(liked.round(), 1.0, "{thumbs}");
    assert!(
        thumbs["variants"][1]["versus_control"]["p_value"].is_number(),
        "{thumbs}"
    );

    // Another tenant sees none of it.
    let (_, body) = call(
        router,
        Method::GET,
        "/v1/experiments",
        None,
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(body["data"], json!([]));

    // Ramp, stop with a winner; the audit trail has each step.
    let (status, body) = call(
        router,
        Method::PATCH,
        "/v1/experiments/bot",
        Some(json!({"weights": {"warm": 80}})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["variants"][1]["weight"], 80);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/experiments/bot/stop",
        Some(json!({"winner": "warm"})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].clone(), body["winner"].clone()),
        (json!("stopped"), json!("warm"))
    );
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
        .filter(|action| action.starts_with("experiment."))
        .collect();
    assert_eq!(
        actions,
        [
            "experiment.stop",
            "experiment.ramp",
            "experiment.start",
            "experiment.define"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_experiments_winner_moves_its_label() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    for content in ["Be brief.", "Be thorough."] {
        let prompt = json!({"name": "support", "model": "gemma3:270m",
                            "messages": [{"role": "system", "content": content}]});
        let (status, body) = call(
            router,
            Method::POST,
            "/v1/prompts",
            Some(prompt),
            Some(&keys.acme_admin),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = call(
        router,
        Method::PUT,
        "/v1/prompts/support/labels/production",
        Some(json!({"version": 1})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let experiment = json!({
        "name": "tone",
        "target": {"prompt": "support"},
        "variants": [{"name": "brief", "weight": 1, "prompt_version": 1},
                     {"name": "thorough", "weight": 1, "prompt_version": 2}],
        "unit": "header",
        "promote_label": "production"
    });
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/experiments",
        Some(experiment),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/experiments/tone/start",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/experiments/tone/stop",
        Some(json!({"winner": "thorough"})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, prompt) = call(
        router,
        Method::GET,
        "/v1/prompts/support",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(prompt["labels"]["production"], 2, "{prompt}");
}
