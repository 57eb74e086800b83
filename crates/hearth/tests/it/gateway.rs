//! The gateway through the built binary: keys made by the CLI on a running server, the
//! loopback-only mode's host and origin checks, token and concurrency limits on the real
//! model, and usage read back over the admin API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::inference::serve_with_sample_models_and;
use crate::{Server, client, hearth, run, stderr_of, stdout_of};

/// Runs `hearth keys ARGS` on the server's data directory and returns its stdout.
fn keys(server: &Server, args: &[&str]) -> String {
    let home: &Path = server.dir.path();
    let output = run(hearth(home)
        .arg("--data-dir")
        .arg(home.join("data"))
        .arg("keys")
        .args(args));
    assert!(
        output.status.success(),
        "hearth keys {args:?}: {}",
        stderr_of(&output)
    );
    stdout_of(&output)
}

/// The key `hearth keys create|rotate` printed: its last line.
fn secret_of(stdout: &str) -> String {
    stdout.lines().last().expect("a line").trim().to_owned()
}

fn status_with_key(server: &Server, path: &str, key: Option<&str>) -> u16 {
    let mut request = client().get(server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().expect("request").status().as_u16()
}

/// Polls until `path` answers `expected` for `key`, and returns how long that took.
fn wait_for_status(server: &Server, path: &str, key: &str, expected: u16) -> Duration {
    let started = Instant::now();
    loop {
        let status = status_with_key(server, path, Some(key));
        if status == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} still answers {status}, not {expected}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn chat(max_tokens: u32, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "gemma3:270m", "temperature": 0, "max_tokens": max_tokens, "stream": stream,
        "messages": [{"role": "user", "content": "Count from 1 to 100: 1, 2, 3,"}]
    })
}

#[test]
fn keys_made_and_revoked_by_the_cli_apply_to_a_running_server_within_a_second() {
    let server = Server::start(|command, _| {
        command.env("HEARTH_AUTH_MODE", "on");
    });
    assert_eq!(status_with_key(&server, "/v1/models", None), 401);
    assert_eq!(status_with_key(&server, "/healthz", None), 200);

    let created = keys(&server, &["create", "--tenant", "acme", "--role", "reader"]);
    let secret = secret_of(&created);
    assert!(secret.starts_with("hk_"), "{created}");
    let took = wait_for_status(&server, "/v1/models", &secret, 200);
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    // A reader may not generate.
    let generate = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&chat(1, false))
        .send()
        .expect("request");
    assert_eq!(generate.status(), 403);

    let listing = keys(&server, &["list"]);
    let prefix = &secret[..11];
    assert!(
        listing.contains(prefix) && listing.contains("acme"),
        "{listing}"
    );
    assert!(
        !listing.contains(&secret),
        "listings never show the key: {listing}"
    );

    keys(&server, &["revoke", prefix]);
    let took = wait_for_status(&server, "/v1/models", &secret, 401);
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let body: serde_json::Value = client()
        .get(server.url("/v1/models"))
        .bearer_auth(&secret)
        .send()
        .expect("request")
        .json()
        .expect("JSON");
    assert_eq!(body["error"]["code"], "revoked_api_key", "{body}");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        !body.to_string().contains(&secret),
        "errors never echo the key"
    );

    // Rotation: the new key works, the old one during its grace period only.
    let admin = secret_of(&keys(&server, &["create", "--role", "admin"]));
    let rotated = secret_of(&keys(&server, &["rotate", &admin[..11], "--grace", "0s"]));
    wait_for_status(&server, "/admin/v1/keys", &rotated, 200);
    wait_for_status(&server, "/admin/v1/keys", &admin, 401);
}

#[test]
fn a_loopback_server_without_keys_refuses_other_hosts_and_web_origins() {
    let server = Server::start(|_, _| {});
    assert_eq!(status_with_key(&server, "/v1/models", None), 200);
    // DNS rebinding: a page on evil.example resolving its name to 127.0.0.1.
    let rebinding = client()
        .get(server.url("/v1/models"))
        .header("host", "evil.example:4327")
        .send()
        .expect("request");
    assert_eq!(rebinding.status(), 403);
    let body: serde_json::Value = rebinding.json().expect("JSON");
    assert_eq!(body["error"]["code"], "host_not_allowed", "{body}");
    let cross_origin = client()
        .post(server.url("/api/show"))
        .header("origin", "https://evil.example")
        .body(r#"{"model": "x"}"#)
        .send()
        .expect("request");
    assert_eq!(cross_origin.status(), 403);
    let local_page = client()
        .get(server.url("/v1/models"))
        .header("origin", "http://localhost:3000")
        .send()
        .expect("request");
    assert_eq!(local_page.status(), 200);
}

#[test]
fn token_and_concurrency_limits_and_usage_on_the_real_model() {
    let server = serve_with_sample_models_and(&[("HEARTH_AUTH_MODE", "on")]);
    let admin = secret_of(&keys(&server, &["create", "--role", "admin"]));
    let thrifty = secret_of(&keys(
        &server,
        &[
            "create", "--tenant", "acme", "--role", "member", "--tpm", "40",
        ],
    ));
    let single = secret_of(&keys(
        &server,
        &[
            "create",
            "--tenant",
            "acme",
            "--role",
            "member",
            "--concurrency",
            "1",
        ],
    ));
    let other = secret_of(&keys(
        &server,
        &["create", "--tenant", "globex", "--role", "admin"],
    ));
    wait_for_status(&server, "/v1/models", &other, 200);

    // Tokens per minute: the first request spends the bucket (prompt and completion), the
    // next is refused until it refills.
    let first = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&thrifty)
        .json(&chat(24, false))
        .send()
        .expect("request");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-limit-tokens"], "40");
    let first: serde_json::Value = first.json().expect("JSON");
    assert!(
        first["usage"]["total_tokens"].as_u64().expect("usage") > 40,
        "{first}"
    );
    let refused = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&thrifty)
        .json(&chat(4, false))
        .send()
        .expect("request");
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.headers()["x-ratelimit-remaining-tokens"], "0");
    let refused: serde_json::Value = refused.json().expect("JSON");
    assert_eq!(refused["error"]["code"], "rate_limit_tokens", "{refused}");

    // Concurrency: while a stream runs, the key's second request is refused.
    let stream = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&single)
        .json(&chat(200, true))
        .send()
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let mut lines = BufReader::new(stream).lines();
    let first_line = lines.next().expect("a first event").expect("read");
    assert!(first_line.starts_with("data: "), "{first_line}");
    let busy = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&single)
        .json(&chat(1, false))
        .send()
        .expect("request");
    assert_eq!(busy.status(), 429);
    let busy: serde_json::Value = busy.json().expect("JSON");
    assert_eq!(busy["error"]["code"], "rate_limit_concurrency", "{busy}");
    // Reading the stream to its end releases the slot.
    for line in lines {
        line.expect("read");
    }
    let started = Instant::now();
    loop {
        let status = client()
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(&single)
            .json(&chat(1, false))
            .send()
            .expect("request")
            .status();
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "slot not released: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Usage, written off the request path, comes back per model; globex sees none of acme's.
    let started = Instant::now();
    let usage = loop {
        let usage: serde_json::Value = client()
            .get(server.url("/admin/v1/usage?group_by=model,key"))
            .bearer_auth(&admin)
            .send()
            .expect("usage")
            .json()
            .expect("JSON");
        let requests: i64 = usage["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|group| group["requests"].as_i64().unwrap_or(0))
            .sum();
        if requests >= 3 {
            break usage;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "usage not stored: {usage}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let groups = usage["data"].as_array().expect("data");
    assert!(
        groups.iter().all(|group| group["model"] == "gemma3:270m"),
        "{usage}"
    );
    let spent: i64 = groups
        .iter()
        .map(|group| group["total_tokens"].as_i64().unwrap_or(0))
        .sum();
    assert!(spent > 40, "{usage}");
    let foreign: serde_json::Value = client()
        .get(server.url("/admin/v1/usage"))
        .bearer_auth(&other)
        .send()
        .expect("usage")
        .json()
        .expect("JSON");
    let foreign_requests: i64 = foreign["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|group| group["requests"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(foreign_requests, 0, "{foreign}");
}

#[test]
fn exact_and_semantic_caches_answer_per_tenant_and_can_be_bypassed() {
    let server = serve_with_sample_models_and(&[
        ("HEARTH_AUTH_MODE", "on"),
        ("HEARTH_CACHE_ENABLED", "true"),
        ("HEARTH_CACHE_SEMANTIC_MODEL", "all-minilm:l6-v2"),
        ("HEARTH_CACHE_SEMANTIC_THRESHOLD", "0.85"),
    ]);
    let acme = secret_of(&keys(
        &server,
        &["create", "--tenant", "acme", "--role", "member"],
    ));
    let globex = secret_of(&keys(
        &server,
        &["create", "--tenant", "globex", "--role", "member"],
    ));
    wait_for_status(&server, "/v1/models", &globex, 200);
    let ask = |key: &str, question: &str, stream: bool, bypass: bool| {
        let mut request = client()
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&serde_json::json!({
                "model": "gemma3:270m", "temperature": 0, "max_tokens": 8, "stream": stream,
                "messages": [{"role": "user", "content": question}]
            }));
        if bypass {
            request = request.header("x-hearth-cache", "bypass");
        }
        let response = request.send().expect("request");
        assert_eq!(response.status(), 200);
        let outcome = response.headers()["x-hearth-cache"]
            .to_str()
            .expect("ascii")
            .to_string();
        (outcome, response.text().expect("body"))
    };
    let question = "What is the capital of France?";
    let (first, answer) = ask(&acme, question, false, false);
    assert_eq!(first, "miss");
    let (second, again) = ask(&acme, question, false, false);
    assert_eq!(second, "hit");
    assert_eq!(again, answer, "the cached answer, byte for byte");
    // Another tenant never gets acme's answers.
    assert_eq!(ask(&globex, question, false, false).0, "miss");
    assert_eq!(ask(&acme, question, false, true).0, "bypass");
    // A question worded differently but meaning the same hits the semantic cache.
    let (similar, similar_answer) = ask(&acme, "What's the capital city of France?", false, false);
    assert_eq!(similar, "hit", "semantic");
    assert_eq!(similar_answer, answer);
    assert_eq!(ask(&acme, "How do volcanoes form?", false, false).0, "miss");
    // Streams are cached as the stream they were.
    let (miss, streamed) = ask(&acme, "Name a colour.", true, false);
    assert_eq!(miss, "miss");
    let (hit, replayed) = ask(&acme, "Name a colour.", true, false);
    assert_eq!(hit, "hit");
    assert_eq!(replayed, streamed);
    assert!(replayed.contains("data: [DONE]"));
}

#[test]
fn the_admin_api_can_have_a_listener_of_its_own() {
    let mut server = Server::start(|command, _| {
        command.env("HEARTH_SERVER_ADMIN_LISTEN", "127.0.0.1:0");
    });
    let line = server.wait_for_log("admin API listening", Duration::from_secs(10));
    let logged: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    let admin_address = logged["address"].as_str().expect("address").to_string();
    let admin = |path: &str| format!("http://{admin_address}{path}");
    assert_eq!(status_with_key(&server, "/admin/v1/tenants", None), 404);
    assert_eq!(status_with_key(&server, "/v1/models", None), 200);
    let tenants = client()
        .get(admin("/admin/v1/tenants"))
        .send()
        .expect("admin");
    assert_eq!(tenants.status(), 200);
    assert_eq!(
        client()
            .get(admin("/healthz"))
            .send()
            .expect("health")
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(admin("/v1/models"))
            .send()
            .expect("models")
            .status(),
        404,
        "the admin listener serves the admin API only"
    );
}
