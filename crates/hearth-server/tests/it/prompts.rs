//! Prompt templates over the real router: each tenant's admins push versions and move labels,
//! readers read and render, other tenants see nothing, changes are audited, and a request's
//! `prompt` reference is rendered (and refused, naming the field) before any model is asked.

use axum::http::{Method, StatusCode};
use serde_json::json;

use hearth_gateway::LimitDefaults;

use crate::gate::gated;
use crate::memory::call;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_push_and_label_prompts_that_readers_render_and_others_cannot_see() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    let prompt = json!({
        "name": "support",
        "messages": [
            {"role": "system", "content": "You are {{ persona }}."},
            {"role": "user", "content": "{{ question }}"}
        ],
        "variables": {
            "persona": {"type": "string", "default": "a helpful agent"},
            "question": {"type": "string"}
        },
        "model": "gemma3:270m",
        "parameters": {"temperature": 0.2},
        "labels": ["production"],
        "note": "first"
    });

    // Members do not push; admins do, and the same definition again makes no new version.
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/prompts",
        Some(prompt.clone()),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/prompts",
        Some(prompt.clone()),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["object"], "prompt.version");
    assert_eq!(body["version"], 1);
    assert_eq!(body["labels"], json!(["production"]));
    assert_eq!(body["variables"]["persona"]["required"], false);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/prompts",
        Some(prompt.clone()),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["created"], false);
    let mut second = prompt.clone();
    second["messages"][0]["content"] = json!("You are {{ persona }}. Be brief.");
    second["labels"] = json!(["staging"]);
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/prompts",
        Some(second),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);

    // A bad definition names its field.
    let mut bad = prompt.clone();
    bad["messages"][1]["content"] = json!("{{ question ");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/prompts",
        Some(bad),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "messages[1].content");

    // Readers list and render; labels select versions.
    let (status, body) = call(
        router,
        Method::GET,
        "/v1/prompts",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["id"], "support");
    assert_eq!(body["data"][0]["latest_version"], 2);
    assert_eq!(
        body["data"][0]["labels"],
        json!({"production": 1, "staging": 2})
    );
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/prompts/support/render",
        Some(json!({"label": "production", "variables": {"question": "Why?"}})),
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You are a helpful agent."},
               {"role": "user", "content": "Why?"}])
    );
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/prompts/support/render",
        Some(json!({"variables": {}})),
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "variables.question");
    let (status, body) = call(
        router,
        Method::GET,
        "/v1/prompts/support/versions/staging",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);

    // Moving a label is an admin's, and audited.
    let (status, _) = call(
        router,
        Method::PUT,
        "/v1/prompts/support/labels/production",
        Some(json!({"version": 2})),
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        router,
        Method::PUT,
        "/v1/prompts/support/labels/production",
        Some(json!({"version": 2})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["labels"]["production"], 2);
    let (status, body) = call(
        router,
        Method::GET,
        "/admin/v1/audit",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let actions: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .filter(|action| action.starts_with("prompt."))
        .collect();
    assert_eq!(
        actions,
        ["prompt.label", "prompt.push", "prompt.push", "prompt.push"]
    );

    // Another tenant sees nothing, renders nothing and references nothing.
    let (status, body) = call(
        router,
        Method::GET,
        "/v1/prompts",
        None,
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/prompts/support/render",
        Some(json!({"variables": {"question": "q"}})),
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let chat = |variables: serde_json::Value| json!({"messages": [], "prompt": {"id": "support", "variables": variables}});
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/chat/completions",
        Some(chat(json!({"question": "q"}))),
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["param"], "prompt.id");

    // In the owning tenant, a bad variable is refused before any model is asked.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/chat/completions",
        Some(chat(json!({"question": 7}))),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "prompt.variables.question");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/responses",
        Some(json!({"prompt": {"id": "support", "version": "2", "label": "staging"}})),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "prompt.version");

    // Removing it is an admin's too.
    let (status, _) = call(
        router,
        Method::DELETE,
        "/v1/prompts/support",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        router,
        Method::GET,
        "/v1/prompts/support",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
