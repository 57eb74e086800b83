//! The gate with keys required, on a real SQLite store: every route of the OpenAPI document
//! against every kind of caller, tenant isolation in the admin API, and the rate-limit
//! headers.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hearth_gateway::{
    Actor, Authenticator, Gateway, KeySpec, LimitDefaults, Limiter, Limits, Role, UsageRecorder,
};
use hearth_server::{
    AppState, GatewayState, Readiness, RuntimeSettings, SharedState, StaticSettings,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use tokio::sync::watch;

use crate::{json_body, send};

pub(crate) struct Keys {
    pub(crate) acme_reader: String,
    pub(crate) acme_member: String,
    pub(crate) acme_admin: String,
    pub(crate) acme_member_prefix: String,
    pub(crate) globex_admin: String,
    pub(crate) instance_admin: String,
    revoked: String,
    expired: String,
}

/// A router whose gate requires keys, with keys of each kind made: tenants `acme` and
/// `globex`, memory without an embedding model, and no inference behind it.
pub(crate) struct Gated {
    pub(crate) router: axum::Router,
    pub(crate) keys: Keys,
    pub(crate) store: Store,
    /// The gate's key table, refreshed by hand here (a running server polls it).
    pub(crate) authenticator: std::sync::Arc<Authenticator>,
    /// The flags the router serves, for evaluating in process beside OFREP.
    pub(crate) flags: hearth_flags::Flags,
    _dir: tempfile::TempDir,
}

async fn make(
    gateway: &Gateway,
    tenant: Option<&str>,
    role: Role,
    limits: Limits,
) -> (String, String) {
    let created = gateway
        .create_key(
            &Actor::Cli,
            KeySpec {
                tenant: tenant.map(str::to_owned),
                user: None,
                name: None,
                role,
                scopes: Vec::new(),
                limits,
                expires_in_ms: None,
            },
            hearth_gateway::now_ms(),
        )
        .await
        .expect("key");
    (created.secret, created.key.prefix)
}

pub(crate) async fn gated(defaults: LimitDefaults) -> Gated {
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
    let service = Gateway::new(store.clone());
    let none = Limits::default();
    let (acme_reader, _) = make(&service, Some("acme"), Role::Reader, none).await;
    let (acme_member, acme_member_prefix) = make(&service, Some("acme"), Role::Member, none).await;
    let (acme_admin, _) = make(&service, Some("acme"), Role::Admin, none).await;
    let (globex_admin, _) = make(&service, Some("globex"), Role::Admin, none).await;
    let (instance_admin, _) = make(&service, None, Role::Admin, none).await;
    let (revoked, revoked_prefix) = make(&service, Some("acme"), Role::Admin, none).await;
    service
        .revoke_key(&Actor::Cli, &revoked_prefix, hearth_gateway::now_ms())
        .await
        .expect("revoke");
    let expired = service
        .create_key(
            &Actor::Cli,
            KeySpec {
                tenant: Some("acme".to_owned()),
                user: None,
                name: None,
                role: Role::Admin,
                scopes: Vec::new(),
                limits: none,
                expires_in_ms: Some(1),
            },
            hearth_gateway::now_ms() - 1000,
        )
        .await
        .expect("expired key")
        .secret;

    let (_runtime, runtime_receiver) = watch::channel(RuntimeSettings {
        max_body_bytes: 1 << 20,
        max_upload_bytes: 1 << 20,
        request_timeout: Duration::from_secs(30),
    });
    let (usage, _writer) = UsageRecorder::start(store.clone());
    let authenticator = Authenticator::load(&store).await.expect("keys");
    let memory = std::sync::Arc::new(hearth_memory::Memory::new(
        store.clone(),
        dir.path(),
        hearth_memory::MemoryOptions::default(),
    ));
    let files = hearth_memory::Files::new(store.clone(), dir.path(), 1 << 20);
    let events = std::sync::Arc::new(
        hearth_events::Events::open(dir.path(), hearth_events::EventsOptions::default())
            .await
            .expect("events"),
    );
    // Retention runs often here, so its tests need not wait.
    events.spawn_retention(Duration::from_millis(50));
    events.spawn_dead_letters();
    // Test receivers listen on loopback; retries are a thousand times faster.
    let webhooks = hearth_webhooks::Webhooks::start(
        dir.path(),
        events.clone(),
        hearth_webhooks::WebhooksOptions {
            allow_internal_targets: true,
            retry_schedule: hearth_webhooks::SVIX_SCHEDULE
                .iter()
                .map(|wait| *wait / 1000)
                .collect(),
            ..hearth_webhooks::WebhooksOptions::default()
        },
    )
    .await
    .expect("webhooks");
    let plugins = hearth_plugins::Plugins::open(
        hearth_plugins::PluginsOptions {
            dir: dir.path().join("plugins"),
            max_instances: 50,
            trusted_keys: hearth_plugins::TrustedKeys::default(),
            allow_unsigned: true,
            allow_internal_hosts: true,
            memory: Some(memory.clone()),
        },
        store.clone(),
        Some(events.clone()),
        None,
    )
    .await
    .expect("plugins");
    let jobs = hearth_jobs::Jobs::open(
        hearth_jobs::JobsOptions {
            allow_internal_targets: true,
            ..hearth_jobs::JobsOptions::default()
        },
        store.clone(),
        Some(events.clone()),
        Some(plugins.clone()),
        hearth_jobs::Builtins::new(),
        None,
    )
    .await
    .expect("jobs");
    let flags = hearth_flags::Flags::open(store.clone(), hearth_flags::FlagsOptions::default())
        .await
        .expect("flags");
    let state = AppState::new(SharedState {
        runtime: runtime_receiver,
        settings: StaticSettings::default(),
        readiness: Readiness::default(),
        store: Some(store.clone()),
        inference: None,
        memory: Some(memory.clone()),
        files: Some(files),
        // Vector stores need an embedding model, which this server has not: they answer 503,
        // as the routes that need models do.
        vector_stores: None,
        graphs: Some(hearth_graph::Graphs::new(store.clone(), memory.clone())),
        conversations: Some(hearth_memory::Conversations::new(
            store.clone(),
            memory,
            None,
        )),
        plugins: Some(plugins),
        jobs: Some(jobs),
        prompts: Some(
            hearth_prompts::Prompts::open(store.clone(), hearth_prompts::PromptsOptions::default())
                .await
                .expect("prompts"),
        ),
        flags: Some(flags.clone()),
        experiments: Some(
            hearth_experiments::Experiments::open(store.clone())
                .await
                .expect("experiments"),
        ),
        events: Some(events),
        webhooks: Some(webhooks),
        routing: None,
        cache: None,
        gateway: Some(GatewayState {
            service,
            authenticator: authenticator.clone(),
            limiter: Limiter::new(defaults),
            usage,
            prices: std::sync::Arc::default(),
            oidc: None,
            require_keys: true,
        }),
        metrics: hearth_server::install_metrics_recorder(),
        started_at: Instant::now(),
    });
    Gated {
        router: hearth_server::router(state),
        keys: Keys {
            acme_reader,
            acme_member,
            acme_admin,
            acme_member_prefix,
            globex_admin,
            instance_admin,
            revoked,
            expired,
        },
        store,
        authenticator,
        flags,
        _dir: dir,
    }
}

pub(crate) fn request(method: &Method, path: &str, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method.clone()).uri(path);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let body = if *method == Method::GET || *method == Method::DELETE {
        Body::empty()
    } else {
        Body::from("{}")
    };
    builder
        .header("content-type", "application/json")
        .body(body)
        .expect("request")
}

/// Who calls: a name for messages, the key presented, and (for valid keys) its role and
/// whether it is an instance key.
type Caller<'a> = (&'a str, Option<&'a str>, Option<(Role, bool)>);

/// What the gate should decide for a caller on a route.
#[derive(Debug, PartialEq)]
enum Expected {
    Unauthenticated,
    Forbidden,
    Through,
}

#[tokio::test]
async fn every_route_against_every_kind_of_caller() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    // (who, the key presented, its role and whether it is an instance key)
    let callers: [Caller; 8] = [
        ("no key", None, None),
        ("revoked", Some(&keys.revoked), None),
        ("expired", Some(&keys.expired), None),
        (
            "reader",
            Some(&keys.acme_reader),
            Some((Role::Reader, false)),
        ),
        (
            "member",
            Some(&keys.acme_member),
            Some((Role::Member, false)),
        ),
        (
            "tenant admin",
            Some(&keys.acme_admin),
            Some((Role::Admin, false)),
        ),
        (
            "other tenant's admin",
            Some(&keys.globex_admin),
            Some((Role::Admin, false)),
        ),
        (
            "instance admin",
            Some(&keys.instance_admin),
            Some((Role::Admin, true)),
        ),
    ];
    let document = hearth_server::openapi_document();
    let mut checked = 0;
    for (template, item) in &document.paths.paths {
        let path = template
            .replace("{model}", "gemma3:270m")
            .replace("{tenant}", "acme")
            .replace("{key}", &keys.acme_member_prefix)
            .replace("{user}", "nobody")
            .replace("{name}", "docs")
            .replace("{id}", "doc-1")
            .replace("{file_id}", "file-0");
        let operations = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ];
        for (method, present) in operations {
            if !present {
                continue;
            }
            let needs = hearth_server::gate::access(&method, template).expect("declared");
            for (name, key, holder) in &callers {
                let expected = match (needs, holder) {
                    (hearth_server::gate::Access::Public, _) => Expected::Through,
                    (_, None) => Expected::Unauthenticated,
                    (hearth_server::gate::Access::Role(role), Some((own, _))) if own >= &role => {
                        Expected::Through
                    }
                    (hearth_server::gate::Access::InstanceAdmin, Some((Role::Admin, true))) => {
                        Expected::Through
                    }
                    _ => Expected::Forbidden,
                };
                let response = send(&gated.router, request(&method, &path, *key)).await;
                let status = response.status();
                let body: serde_json::Value = if status.is_success() {
                    serde_json::Value::Null
                } else {
                    json_body(response).await
                };
                let decided = match (status, body["error"]["code"].as_str()) {
                    (StatusCode::UNAUTHORIZED, _) => Expected::Unauthenticated,
                    (StatusCode::FORBIDDEN, Some("insufficient_permissions")) => {
                        Expected::Forbidden
                    }
                    _ => Expected::Through,
                };
                assert_eq!(
                    decided, expected,
                    "{method} {path} as {name}: {status} {body}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 150,
        "only {checked} checks: is the route table empty?"
    );
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_keys_tenants_or_usage() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    // globex's admin: acme is invisible.
    for (method, path) in [
        (Method::GET, "/admin/v1/tenants/acme".to_owned()),
        (
            Method::DELETE,
            format!("/admin/v1/keys/{}", keys.acme_member_prefix),
        ),
        (
            Method::POST,
            format!("/admin/v1/keys/{}/rotate", keys.acme_member_prefix),
        ),
        (Method::GET, "/admin/v1/usage?tenant=acme".to_owned()),
    ] {
        let response = send(
            &gated.router,
            request(&method, &path, Some(&keys.globex_admin)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let listed = json_body(
        send(
            &gated.router,
            request(&Method::GET, "/admin/v1/keys", Some(&keys.globex_admin)),
        )
        .await,
    )
    .await;
    let tenants: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|key| key["tenant"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(tenants, ["globex"], "{listed}");
    assert!(
        listed.to_string().find("hk_").is_some()
            && !listed.to_string().contains(&keys.globex_admin),
        "listings show prefixes, never secrets: {listed}"
    );
    let tenants = json_body(
        send(
            &gated.router,
            request(&Method::GET, "/admin/v1/tenants", Some(&keys.acme_admin)),
        )
        .await,
    )
    .await;
    assert_eq!(
        tenants["data"].as_array().map(Vec::len),
        Some(1),
        "{tenants}"
    );

    // A tenant admin makes keys for its own tenant; the secret is in this response only.
    let response = send(
        &gated.router,
        Request::post("/admin/v1/keys")
            .header("authorization", format!("Bearer {}", keys.acme_admin))
            .body(Body::from(r#"{"role": "reader", "name": "dashboard"}"#))
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(created["tenant"], "acme", "{created}");
    let secret = created["key"].as_str().expect("secret");
    assert!(secret.starts_with(created["prefix"].as_str().expect("prefix")));

    // The audit trail names the acting key's prefix, and acme's admin reads acme's entries.
    let audit = json_body(
        send(
            &gated.router,
            request(&Method::GET, "/admin/v1/audit", Some(&keys.acme_admin)),
        )
        .await,
    )
    .await;
    let entries = audit["data"].as_array().expect("entries");
    assert!(entries.iter().any(|entry| {
        entry["action"] == "key.create"
            && entry["actor"]
                .as_str()
                .is_some_and(|actor| keys.acme_admin.starts_with(actor))
    }));
    assert!(
        entries
            .iter()
            .all(|entry| entry["tenant_id"] == entries[0]["tenant_id"])
    );
    drop(gated.store);
}

fn post(path: &str, key: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

#[tokio::test]
async fn a_tenant_admin_issues_keys_to_its_own_users_only_and_deleting_one_revokes_them() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let response = send(
        &gated.router,
        post("/admin/v1/users", &keys.acme_admin, r#"{"name": "ada"}"#),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let ada = json_body(response).await;
    assert_eq!(
        (ada["tenant"].as_str(), ada["object"].as_str()),
        (Some("acme"), Some("user"))
    );
    let ada_id = ada["id"].as_str().expect("id").to_owned();
    let again = send(
        &gated.router,
        post("/admin/v1/users", &keys.acme_admin, r#"{"name": "ada"}"#),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let bad = json_body(
        send(
            &gated.router,
            post("/admin/v1/users", &keys.acme_admin, r#"{"name": "a d a"}"#),
        )
        .await,
    )
    .await;
    assert_eq!(bad["error"]["param"], "user", "{bad}");

    // A key for ada; another tenant cannot issue keys to her nor see her.
    let response = send(
        &gated.router,
        post(
            "/admin/v1/keys",
            &keys.acme_admin,
            r#"{"user": "ada", "role": "member"}"#,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(created["user"], "ada", "{created}");
    assert_eq!(created["user_id"].as_str(), Some(ada_id.as_str()));
    let response = send(
        &gated.router,
        post(
            "/admin/v1/keys",
            &keys.globex_admin,
            r#"{"tenant": "acme", "user": "ada"}"#,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let globex_users = json_body(
        send(
            &gated.router,
            request(&Method::GET, "/admin/v1/users", Some(&keys.globex_admin)),
        )
        .await,
    )
    .await;
    assert_eq!(
        globex_users["data"],
        serde_json::json!([]),
        "{globex_users}"
    );
    let response = send(
        &gated.router,
        request(
            &Method::DELETE,
            &format!("/admin/v1/users/{ada_id}"),
            Some(&keys.globex_admin),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Usage can be asked for by user: by name within the caller's tenant; another
    // tenant's user is not found.
    let usage = send(
        &gated.router,
        request(
            &Method::GET,
            "/admin/v1/usage?group_by=user&user=ada",
            Some(&keys.acme_admin),
        ),
    )
    .await;
    assert_eq!(usage.status(), StatusCode::OK);
    let unknown = send(
        &gated.router,
        request(
            &Method::GET,
            "/admin/v1/usage?user=ada",
            Some(&keys.globex_admin),
        ),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let ada_key = created["key"].as_str().expect("secret").to_owned();
    gated
        .authenticator
        .refresh(&gated.store)
        .await
        .expect("refresh");
    let response = send(
        &gated.router,
        request(&Method::GET, "/v1/models", Some(&ada_key)),
    )
    .await;
    // Through the gate (this router has no models, hence 503 rather than 200).
    assert!(
        ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&response.status()),
        "{}",
        response.status()
    );

    // Deleting ada revokes her key at once.
    let response = send(
        &gated.router,
        request(
            &Method::DELETE,
            "/admin/v1/users/ada",
            Some(&keys.acme_admin),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let deleted = json_body(response).await;
    assert_eq!(deleted["revoked_keys"], 1, "{deleted}");
    gated
        .authenticator
        .refresh(&gated.store)
        .await
        .expect("refresh");
    let response = send(
        &gated.router,
        request(&Method::GET, "/v1/models", Some(&ada_key)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn requests_per_minute_answer_429_with_openai_headers() {
    let gated = gated(LimitDefaults {
        key: Limits {
            requests_per_minute: Some(3),
            ..Limits::default()
        },
        ip: Limits::default(),
    })
    .await;
    let key = gated.keys.acme_reader.clone();
    for remaining in ["2", "1", "0"] {
        let response = send(
            &gated.router,
            request(&Method::GET, "/v1/models", Some(&key)),
        )
        .await;
        assert_eq!(response.headers()["x-ratelimit-limit-requests"], "3");
        assert_eq!(
            response.headers()["x-ratelimit-remaining-requests"],
            remaining
        );
    }
    let refused = send(
        &gated.router,
        request(&Method::GET, "/v1/models", Some(&key)),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "20");
    assert_eq!(refused.headers()["x-ratelimit-remaining-requests"], "0");
    assert_eq!(refused.headers()["x-ratelimit-reset-requests"], "20s");
    let body = json_body(refused).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_requests");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("requests per minute")),
        "{body}"
    );
    // Health checks are never limited.
    let health = send(&gated.router, request(&Method::GET, "/healthz", None)).await;
    assert_eq!(health.status(), StatusCode::OK);
    // Another key has its own window.
    let other = send(
        &gated.router,
        request(&Method::GET, "/v1/models", Some(&gated.keys.acme_member)),
    )
    .await;
    assert_ne!(other.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn key_limits_change_at_runtime_through_the_admin_api() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let response = send(
        &gated.router,
        Request::put(format!("/admin/v1/keys/{}/limits", keys.acme_member_prefix))
            .header("authorization", format!("Bearer {}", keys.acme_admin))
            .body(Body::from(r#"{"requests_per_minute": 1}"#))
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let key = json_body(response).await;
    assert_eq!(key["limits"]["requests_per_minute"], 1, "{key}");
    // The running gate picks the change up with the key table's next refresh.
    gated
        .authenticator
        .refresh(&gated.store)
        .await
        .expect("refresh");
    let first = send(
        &gated.router,
        request(&Method::GET, "/v1/models", Some(&keys.acme_member)),
    )
    .await;
    assert_eq!(first.headers()["x-ratelimit-limit-requests"], "1");
    let second = send(
        &gated.router,
        request(&Method::GET, "/v1/models", Some(&keys.acme_member)),
    )
    .await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another tenant's admin cannot touch it.
    let foreign = send(
        &gated.router,
        Request::put(format!("/admin/v1/keys/{}/limits", keys.acme_member_prefix))
            .header("authorization", format!("Bearer {}", keys.globex_admin))
            .body(Body::from(r#"{"requests_per_minute": 1000}"#))
            .expect("request"),
    )
    .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
}
