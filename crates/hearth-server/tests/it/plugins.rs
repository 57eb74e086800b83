//! Plugins over the real router: instance admins install and manage them, members call their
//! tools in their own tenant, and every refusal names the field at fault. The components are
//! the sample plugins of `plugins/`, built from source.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use hearth_plugins::samples::sample;
use serde_json::{Value, json};

use hearth_gateway::LimitDefaults;

use crate::gate::gated;
use crate::memory::call;

fn package(name: &str, manifest: Option<String>) -> Value {
    let sample = sample(name);
    json!({
        "manifest": manifest.unwrap_or(sample.manifest),
        "component": base64::engine::general_purpose::STANDARD.encode(sample.component),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_admins_install_plugins_and_members_call_their_tools_in_their_own_tenant() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;

    // A tenant's admin cannot put code into the server every tenant shares.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins",
        Some(package("counter", None)),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins",
        Some(package("counter", None)),
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["object"], "plugin");
    assert_eq!(body["name"], "counter");
    assert_eq!(body["capabilities"]["kv"], true);
    assert_eq!(body["tools"][0]["name"], "count");
    assert_eq!(body["tools"][0]["parameters"]["required"], json!(["name"]));

    let (status, body) = call(
        router,
        Method::GET,
        "/v1/plugins",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["name"], "counter");

    // Readers do not call tools; members do, each tenant with its own store.
    let count = json!({"name": "visits"});
    let path = "/v1/plugins/counter/tools/count";
    let (status, _) = call(
        router,
        Method::POST,
        path,
        Some(count.clone()),
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for expected in [1, 2] {
        let (status, body) = call(
            router,
            Method::POST,
            path,
            Some(count.clone()),
            Some(&keys.acme_member),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["object"], "plugin.tool_call");
        let output: Value = serde_json::from_str(body["output"].as_str().unwrap()).unwrap();
        assert_eq!(output["count"], expected);
    }
    let (status, body) = call(
        router,
        Method::POST,
        path,
        Some(count),
        Some(&keys.globex_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let output: Value = serde_json::from_str(body["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["count"], 1);

    // Logs and management are the instance admin's.
    let (status, _) = call(
        router,
        Method::GET,
        "/v1/plugins/counter/logs",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        router,
        Method::GET,
        "/v1/plugins/counter/logs",
        None,
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/plugins/counter/disable",
        None,
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Installing was audited.
    let (status, body) = call(
        router,
        Method::GET,
        "/admin/v1/audit",
        None,
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let actions: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert!(actions.contains(&"plugin.install"), "{actions:?}");

    let (status, body) = call(
        router,
        Method::DELETE,
        "/v1/plugins/counter",
        None,
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"id": "counter", "object": "plugin.deleted", "deleted": true})
    );
    let (status, _) = call(
        router,
        Method::GET,
        "/v1/plugins/counter",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_is_at_fault_and_stopped_calls_answer_502() {
    let server = gated(LimitDefaults::default()).await;
    let admin = Some(server.keys.instance_admin.as_str());
    let member = Some(server.keys.acme_member.as_str());
    let router = &server.router;
    let install = |body: Value| call(router, Method::POST, "/v1/plugins", Some(body), admin);

    let (status, body) = install(package("socket", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "import_refused");
    assert_eq!(body["error"]["param"], "component");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wasi:sockets/"),
        "{body}"
    );

    let calculator = sample("calculator");
    let too_big = calculator
        .manifest
        .replace("memory_mib = 8", "memory_mib = 4096");
    let (status, body) = install(package("calculator", Some(too_big))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "manifest.limits.memory_mib");

    let (status, body) =
        install(json!({"manifest": calculator.manifest, "component": "not base64!"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "component");

    let (status, body) = install(package("calculator", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = install(package("calculator", None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let convert = "/v1/plugins/calculator/tools/convert";
    let (status, body) = call(
        router,
        Method::POST,
        convert,
        Some(json!({"value": 1, "from": "kg", "to": "m"})),
        member,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "tool_error");
    let (status, body) = call(router, Method::POST, convert, Some(json!([1])), member).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "arguments");
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/plugins/calculator/tools/divide",
        Some(json!({})),
        member,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An upgrade must name the plugin it upgrades; a first version has nothing to roll back to.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/calculator/upgrade",
        Some(package("counter", None)),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "manifest.name");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/calculator/rollback",
        None,
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_previous_version");

    // A disabled plugin answers 409 until it is enabled again.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/calculator/disable",
        None,
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], false);
    let (status, body) = call(
        router,
        Method::POST,
        convert,
        Some(json!({"value": 1, "from": "m", "to": "cm"})),
        member,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "plugin_disabled");
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/plugins/calculator/enable",
        None,
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        router,
        Method::POST,
        convert,
        Some(json!({"value": 1, "from": "m", "to": "cm"})),
        member,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["output"], r#"{"unit":"cm","value":100.0}"#);

    // The sandbox stops a runaway call; the answer says why.
    let (status, body) = install(package("unruly", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/unruly/tools/spin",
        Some(json!({})),
        member,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "plugin_stopped");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("(cpu)"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_admins_send_its_events_to_a_plugin_handler() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins",
        Some(package("relay", None)),
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let path = "/v1/plugins/relay/subscription";
    let (status, body) = call(router, Method::GET, path, None, Some(&keys.acme_reader)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"object": "plugin.subscription", "plugin": "relay", "subscribed": false,
                            "topics": ["orders.placed"]})
    );
    let (status, _) = call(router, Method::PUT, path, None, Some(&keys.acme_member)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(router, Method::PUT, path, None, Some(&keys.acme_admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscribed"], true);

    // An order published in acme comes back as its total, published by the plugin in acme
    // (read through a consumer of acme's).
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/consumers",
        Some(json!({"name": "totals", "filter": "orders.totals"})),
        Some(&keys.acme_admin),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/events/orders.placed",
        Some(json!({"order": 5, "items": [{"price": 2.0, "quantity": 4}]})),
        Some(&keys.acme_member),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/consumers/totals/fetch",
        Some(json!({"batch": 1, "wait_ms": 10000})),
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["topic"], "orders.totals", "{body}");
    assert_eq!(body["data"][0]["data"]["total"], json!(8.0), "{body}");
    // globex is not subscribed.
    let (status, body) = call(router, Method::GET, path, None, Some(&keys.globex_admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscribed"], false);

    let (status, body) = call(router, Method::DELETE, path, None, Some(&keys.acme_admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["subscribed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_admins_set_a_plugins_secrets_which_are_listed_by_name_only() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins",
        Some(package("notes", None)),
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["capabilities"]["memory_write"], json!(["notes"]));
    assert_eq!(body["capabilities"]["secrets"], json!(["NOTES_API_KEY"]));

    let path = "/v1/plugins/notes/secrets/NOTES_API_KEY";
    let value = json!({"value": "sk-very-secret"});
    let (status, _) = call(
        router,
        Method::PUT,
        path,
        Some(value.clone()),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        router,
        Method::PUT,
        path,
        Some(value),
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["set"], true);
    assert!(!body.to_string().contains("sk-very-secret"), "{body}");
    let (status, body) = call(
        router,
        Method::PUT,
        "/v1/plugins/notes/secrets/OTHER",
        Some(json!({"value": "x"})),
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "secret");

    let (status, body) = call(
        router,
        Method::GET,
        "/v1/plugins/notes/secrets",
        None,
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["name"], "NOTES_API_KEY");
    assert!(!body.to_string().contains("sk-very-secret"), "{body}");
    // The plugin reads it in any tenant's call; nobody reads it back.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/notes/tools/key_status",
        Some(json!({})),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["output"], r#"{"length":14,"set":true}"#);

    let (status, _) = call(
        router,
        Method::DELETE,
        path,
        None,
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        router,
        Method::DELETE,
        path,
        None,
        Some(&keys.instance_admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_scoped_to_some_plugins_calls_only_those() {
    let server = gated(LimitDefaults::default()).await;
    let keys = &server.keys;
    let router = &server.router;
    for name in ["calculator", "counter"] {
        let (status, body) = call(
            router,
            Method::POST,
            "/v1/plugins",
            Some(package(name, None)),
            Some(&keys.instance_admin),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = call(
        router,
        Method::POST,
        "/admin/v1/keys",
        Some(json!({"name": "converter-app", "role": "member", "scopes": ["plugin:calculator"]})),
        Some(&keys.acme_admin),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scoped = body["key"].as_str().unwrap().to_string();
    server.authenticator.refresh(&server.store).await.unwrap();

    let convert = json!({"value": 1, "from": "km", "to": "m"});
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/calculator/tools/convert",
        Some(convert),
        Some(&scoped),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/counter/tools/count",
        Some(json!({"name": "visits"})),
        Some(&scoped),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["param"], "plugin");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("calculator"),
        "{body}"
    );
    // A chat naming a plugin the key may not use is refused before any model is asked.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/chat/completions",
        Some(
            json!({"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}],
                    "plugins": {"tools": ["counter"]}}),
        ),
        Some(&scoped),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["param"], "plugins.tools[0]");
    // A key without plugin scopes uses every plugin.
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/plugins/counter/tools/count",
        Some(json!({"name": "visits"})),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
