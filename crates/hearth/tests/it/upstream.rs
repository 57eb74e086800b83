//! Routing to upstream providers through the built binary, against fake OpenAI-compatible
//! upstreams: real HTTP servers in the test that can be told to fail, stall or stream.
//! Fallback, retries, the circuit breaker's open/half-open/closed cycle, weighted splits,
//! streaming pass-through, refusals passed on as they are, and degrading to a local model.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Server, client, write_file};

/// What a fake upstream does with one request.
#[derive(Debug, Clone)]
enum Behavior {
    /// Answer a chat completion saying `text`.
    Complete(&'static str),
    /// Answer with this status and an OpenAI-style error.
    Fail(u16),
    /// Stream these content pieces as SSE, `gap` apart, then usage and `[DONE]`.
    Stream(Vec<&'static str>, Duration),
    /// Wait this long before answering like `Complete`.
    Slow(Duration, &'static str),
}

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    authorization: Option<String>,
    body: serde_json::Value,
}

struct FakeUpstream {
    address: String,
    /// Behaviours for the next requests, in order; `otherwise` after they run out.
    script: Arc<Mutex<VecDeque<Behavior>>>,
    otherwise: Arc<Mutex<Behavior>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeUpstream {
    fn start(otherwise: Behavior) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let upstream = FakeUpstream {
            address,
            script: Arc::default(),
            otherwise: Arc::new(Mutex::new(otherwise)),
            requests: Arc::default(),
        };
        let (script, otherwise, requests) = (
            upstream.script.clone(),
            upstream.otherwise.clone(),
            upstream.requests.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, otherwise, requests) =
                    (script.clone(), otherwise.clone(), requests.clone());
                std::thread::spawn(move || {
                    let _ = answer(stream, &script, &otherwise, &requests);
                });
            }
        });
        upstream
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    fn then(&self, behavior: Behavior) {
        self.script.lock().expect("script").push_back(behavior);
    }

    fn set(&self, behavior: Behavior) {
        *self.otherwise.lock().expect("behavior") = behavior;
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }
}

fn answer(
    stream: TcpStream,
    script: &Mutex<VecDeque<Behavior>>,
    otherwise: &Mutex<Behavior>,
    requests: &Mutex<Vec<Recorded>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let (mut length, mut authorization) = (0, None);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => authorization = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = body["model"].as_str().unwrap_or("").to_string();
    requests.lock().expect("requests").push(Recorded {
        path,
        authorization,
        body,
    });
    let behavior = script
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or_else(|| otherwise.lock().expect("behavior").clone());
    let mut stream = stream;
    let behavior = match behavior {
        Behavior::Slow(delay, text) => {
            std::thread::sleep(delay);
            Behavior::Complete(text)
        }
        other => other,
    };
    match behavior {
        Behavior::Slow(..) => unreachable!("turned into Complete above"),
        Behavior::Complete(text) => {
            let body = serde_json::json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
            })
            .to_string();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
        Behavior::Fail(status) => {
            let body = serde_json::json!({"error": {"message": format!("fake failure {status}"), "type": "invalid_request_error", "param": null, "code": "fake"}}).to_string();
            write!(
                stream,
                "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
        Behavior::Stream(pieces, gap) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            )?;
            let mut send = |data: String| -> std::io::Result<()> {
                let event = format!("data: {data}\n\n");
                write!(stream, "{:x}\r\n{event}\r\n", event.len())?;
                stream.flush()
            };
            for piece in pieces {
                send(serde_json::json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]}).to_string())?;
                std::thread::sleep(gap);
            }
            send(serde_json::json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}).to_string())?;
            send("[DONE]".to_string())?;
            write!(stream, "0\r\n\r\n")?;
        }
    }
    stream.flush()
}

/// `hearth serve` with this config file (and `env`).
fn serve_with_config(config: &str, env: &[(&str, &str)]) -> Server {
    let config = config.to_string();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Server::start(move |command, home| {
        let path = home.join("config.toml");
        write_file(&path, &config);
        command.arg("--config").arg(path);
        command.envs(env);
    })
}

fn chat(server: &Server, model: &str) -> reqwest::blocking::Response {
    client()
        .post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": model, "messages": [{"role": "user", "content": "Hi"}]
        }))
        .send()
        .expect("request")
}

fn two_upstreams(primary: &FakeUpstream, backup: &FakeUpstream, routes: &str) -> String {
    format!(
        r#"
[routing]
backoff_ms = 10
breaker_failures = 2
breaker_open_ms = 400

[[upstreams]]
name = "primary"
base_url = "{}"
api_key_env = "PRIMARY_API_KEY"
timeout_ms = 2000

[[upstreams]]
name = "backup"
base_url = "{}"
timeout_ms = 2000
{routes}"#,
        primary.base_url(),
        backup.base_url()
    )
}

#[test]
fn a_failing_target_falls_back_retries_and_its_breaker_opens_probes_and_closes() {
    let primary = FakeUpstream::start(Behavior::Fail(503));
    let backup = FakeUpstream::start(Behavior::Complete("from backup"));
    let server = serve_with_config(
        &two_upstreams(
            &primary,
            &backup,
            r#"
[[routes]]
model = "smart"
strategy = "priority"
targets = ["primary/gpt-4o-mini", "backup/gpt-4o-mini"]
"#,
        ),
        &[("PRIMARY_API_KEY", "sk-primary-secret")],
    );

    // Fallback: the primary fails, the backup answers; the client sees which.
    let response = chat(&server, "smart");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-hearth-target"], "backup/gpt-4o-mini");
    let body: serde_json::Value = response.json().expect("JSON");
    assert_eq!(body["choices"][0]["message"]["content"], "from backup");
    let seen = primary.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].body["model"], "gpt-4o-mini",
        "the target's model name is sent"
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer sk-primary-secret"),
        "the key from the environment variable"
    );
    assert_eq!(backup.requests()[0].authorization, None);

    // A second failure opens the primary's breaker: the next request skips it entirely.
    assert_eq!(chat(&server, "smart").status(), 200);
    assert_eq!(primary.requests().len(), 2);
    assert_eq!(chat(&server, "smart").status(), 200);
    assert_eq!(
        primary.requests().len(),
        2,
        "open: the primary is not tried"
    );

    // After the open period, one probe goes through; the primary is back, the breaker closes.
    primary.set(Behavior::Complete("from primary"));
    std::thread::sleep(Duration::from_millis(450));
    let probe = chat(&server, "smart");
    assert_eq!(probe.headers()["x-hearth-target"], "primary/gpt-4o-mini");
    assert_eq!(
        chat(&server, "smart").headers()["x-hearth-target"],
        "primary/gpt-4o-mini"
    );
    assert!(
        !server.log().contains("sk-primary-secret"),
        "the upstream key never reaches the logs"
    );

    // Retries: one target that fails once, then answers.
    primary.then(Behavior::Fail(500));
    let response = chat(&server, "primary/gpt-4o-mini");
    assert_eq!(response.status(), 200, "retried after the 500");
    assert_eq!(
        primary.requests().len(),
        6,
        "the direct name `primary/gpt-4o-mini` reaches the upstream too"
    );

    // A stalled upstream times out (timeout_ms = 2000 here) and the backup answers.
    primary.then(Behavior::Slow(Duration::from_secs(4), "too late"));
    let started = Instant::now();
    let response = chat(&server, "smart");
    assert_eq!(response.headers()["x-hearth-target"], "backup/gpt-4o-mini");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(4),
        "{waited:?}"
    );

    // A refusal of the request itself is the upstream's answer, passed on, not retried.
    primary.then(Behavior::Fail(400));
    let before = primary.requests().len();
    let refused = chat(&server, "smart");
    assert_eq!(refused.status(), 400);
    let refused: serde_json::Value = refused.json().expect("JSON");
    assert_eq!(refused["error"]["code"], "fake");
    assert_eq!(primary.requests().len(), before + 1);
    assert_eq!(backup.requests().len(), 4, "no fallback for a bad request");

    // Both down: 502 naming every attempt, in OpenAI's error shape.
    primary.set(Behavior::Fail(500));
    backup.set(Behavior::Fail(502));
    let down = chat(&server, "smart");
    assert!(
        down.status() == 502 || down.status() == 503,
        "{}",
        down.status()
    );
    let down: serde_json::Value = down.json().expect("JSON");
    assert_eq!(down["error"]["code"], "upstream_unavailable", "{down}");
    let message = down["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("primary/gpt-4o-mini") && message.contains("backup/gpt-4o-mini"),
        "{message}"
    );
}

#[test]
fn weighted_routes_split_exactly_and_streams_pass_through_as_they_arrive() {
    let primary = FakeUpstream::start(Behavior::Complete("p"));
    let backup = FakeUpstream::start(Behavior::Complete("b"));
    let server = serve_with_config(
        &two_upstreams(
            &primary,
            &backup,
            r#"
[[routes]]
model = "split"
strategy = "weighted"
targets = ["primary/a", "backup/b"]
weights = [3, 1]
"#,
        ),
        &[],
    );
    for _ in 0..8 {
        assert_eq!(chat(&server, "split").status(), 200);
    }
    assert_eq!(primary.requests().len(), 6);
    assert_eq!(backup.requests().len(), 2);

    // The models list names the route.
    let models: serde_json::Value = client()
        .get(server.url("/v1/models"))
        .send()
        .expect("models")
        .json()
        .expect("JSON");
    assert!(
        models["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|model| model["id"] == "split" && model["owned_by"] == "hearth-route"),
        "{models}"
    );

    // Streaming: the first piece reaches the client long before the last one is sent.
    primary.set(Behavior::Stream(
        vec!["one", " two", " three", " four"],
        Duration::from_millis(250),
    ));
    let started = Instant::now();
    let response = client()
        .post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "primary/a", "stream": true, "messages": [{"role": "user", "content": "Hi"}]
        }))
        .send()
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut lines = BufReader::new(response).lines();
    let first = lines
        .by_ref()
        .map(|line| line.expect("line"))
        .find(|line| line.starts_with("data: "))
        .expect("a first event");
    let first_at = started.elapsed();
    assert!(first.contains("one"), "{first}");
    let rest: Vec<String> = lines.map(|line| line.expect("line")).collect();
    let total = started.elapsed();
    assert!(
        first_at < Duration::from_millis(500),
        "first chunk after {first_at:?}"
    );
    assert!(
        total >= Duration::from_millis(750),
        "the stream took {total:?}"
    );
    let text = rest.join("\n");
    assert!(text.contains("four") && text.contains("[DONE]"), "{text}");
    // Usage was asked of the upstream for metering, and not shown to this client.
    assert!(!text.contains("\"usage\""), "{text}");
    assert_eq!(
        primary.requests().last().expect("request").body["stream_options"]["include_usage"],
        true
    );
}

#[test]
fn a_route_degrades_to_the_local_model_when_every_upstream_is_down() {
    let primary = FakeUpstream::start(Behavior::Fail(503));
    let cache = crate::inference::model_cache();
    let config = format!(
        r#"
[[upstreams]]
name = "primary"
base_url = "{}"

[[routes]]
model = "smart"
targets = ["primary/gpt-4o-mini", "local/gemma3:270m"]
"#,
        primary.base_url()
    );
    let server = Server::start(move |command, home| {
        let output = crate::run(
            crate::hearth(home)
                .arg("--data-dir")
                .arg(home.join("data"))
                .arg("pull")
                .arg(cache.join("gemma-3-270m-q4_k_m.gguf"))
                .args(["--name", "gemma3:270m"]),
        );
        assert!(output.status.success(), "{}", crate::stderr_of(&output));
        let path = home.join("config.toml");
        write_file(&path, &config);
        command.arg("--config").arg(path);
        command.env("HEARTH_MODELS_THREADS", "1");
    });
    let response = client()
        .post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({
            "model": "smart", "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "user", "content": "Say hi"}]
        }))
        .send()
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().expect("JSON");
    assert_eq!(body["model"], "gemma3:270m", "{body}");
    assert!(body["choices"][0]["message"]["content"].is_string());
    assert!(
        !primary.requests().is_empty(),
        "the upstream was tried first"
    );
}

#[test]
fn usage_is_priced_and_a_spent_budget_stops_the_key() {
    let primary = FakeUpstream::start(Behavior::Complete("priced"));
    let config = format!(
        r#"
[auth]
mode = "on"

[[upstreams]]
name = "primary"
base_url = "{}"

[[prices]]
model = "gpt-4o-mini"
prompt_per_million = 1000000      # a dollar a token, to make the arithmetic plain
completion_per_million = 2000000
"#,
        primary.base_url()
    );
    let server = serve_with_config(&config, &[]);
    let keys = |args: &[&str]| {
        let home = server.dir.path();
        let output = crate::run(
            crate::hearth(home)
                .arg("--data-dir")
                .arg(home.join("data"))
                .arg("--config")
                .arg(home.join("config.toml"))
                .arg("keys")
                .args(args),
        );
        assert!(output.status.success(), "{}", crate::stderr_of(&output));
        crate::stdout_of(&output)
            .lines()
            .last()
            .expect("key")
            .to_string()
    };
    let admin = keys(&["create", "--role", "admin"]);
    let thrifty = keys(&["create", "--tenant", "acme", "--budget-usd", "5"]);
    let ask = || {
        client()
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(&thrifty)
            .json(&serde_json::json!({"model": "primary/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .expect("request")
    };
    let started = Instant::now();
    let first = loop {
        let response = ask();
        if response.status() != 401 || started.elapsed() > Duration::from_secs(3) {
            break response;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(first.status(), 200);
    // 7 prompt tokens at $1 and 3 completion tokens at $2: $13, over the $5 budget.
    let refused = ask();
    assert_eq!(refused.status(), 429);
    let refused: serde_json::Value = refused.json().expect("JSON");
    assert_eq!(refused["error"]["code"], "budget_exceeded", "{refused}");
    // The tenant's apps hear of both: the completion's usage and the spent budget.
    let watcher = keys(&["create", "--tenant", "acme", "--role", "reader"]);
    let started = Instant::now();
    let mut stream = loop {
        let response = client()
            .get(
                server
                    .url("/v1/events/stream?topics=hearth.completion.*,hearth.budget.*&from_seq=1"),
            )
            .bearer_auth(&watcher)
            .send()
            .expect("event stream");
        if response.status() != 401 || started.elapsed() > Duration::from_secs(3) {
            break response;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(stream.status(), 200);
    let mut text = String::new();
    let mut chunk = [0u8; 4096];
    while !(text.contains("event: hearth.completion.finished")
        && text.contains("event: hearth.budget.exceeded"))
    {
        let read = std::io::Read::read(&mut stream, &mut chunk).expect("read the stream");
        assert!(read > 0, "the stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&chunk[..read]));
    }
    assert!(text.contains(r#""target":"primary/gpt-4o-mini""#), "{text}");
    assert!(text.contains(r#""cost_micro_usd":13000000"#), "{text}");
    let started = Instant::now();
    loop {
        let usage: serde_json::Value = client()
            .get(server.url("/admin/v1/usage?group_by=model"))
            .bearer_auth(&admin)
            .send()
            .expect("usage")
            .json()
            .expect("JSON");
        if let Some(group) = usage["data"].get(0) {
            assert_eq!(group["model"], "primary/gpt-4o-mini", "{usage}");
            assert_eq!(group["cost_usd"], 13.0, "{usage}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no usage: {usage}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_key_made_for_a_user_is_metered_as_that_users_usage() {
    let primary = FakeUpstream::start(Behavior::Complete("metered"));
    let config = format!(
        "[auth]\nmode = \"on\"\n\n[[upstreams]]\nname = \"primary\"\nbase_url = \"{}\"\n",
        primary.base_url()
    );
    let server = serve_with_config(&config, &[]);
    let keys = |args: &[&str]| {
        let home = server.dir.path();
        let output = crate::run(
            crate::hearth(home)
                .arg("--data-dir")
                .arg(home.join("data"))
                .arg("--config")
                .arg(home.join("config.toml"))
                .args(args),
        );
        assert!(output.status.success(), "{}", crate::stderr_of(&output));
        crate::stdout_of(&output)
    };
    let last_line = |text: String| text.lines().last().expect("a line").to_string();
    let admin = last_line(keys(&[
        "keys", "create", "--tenant", "acme", "--role", "admin",
    ]));
    // The CLI makes the user when it is missing, like the tenant.
    let ada = last_line(keys(&[
        "keys", "create", "--tenant", "acme", "--user", "ada",
    ]));
    let listed = keys(&["keys", "list", "--tenant", "acme"]);
    assert!(
        listed
            .lines()
            .any(|line| line.split_whitespace().nth(2) == Some("ada")),
        "the USER column names ada: {listed}"
    );
    assert!(keys(&["users", "list"]).contains("ada"));
    let started = Instant::now();
    for _ in 0..2 {
        let answered = loop {
            let response = client()
                .post(server.url("/v1/chat/completions"))
                .bearer_auth(&ada)
                .json(&serde_json::json!({"model": "primary/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}))
                .send()
                .expect("request");
            // Keys made by the CLI apply within a second.
            if response.status() != 401 || started.elapsed() > Duration::from_secs(3) {
                break response;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(answered.status(), 200);
    }
    let started = Instant::now();
    let groups = loop {
        let usage: serde_json::Value = client()
            .get(server.url("/admin/v1/usage?group_by=user&user=ada"))
            .bearer_auth(&admin)
            .send()
            .expect("usage")
            .json()
            .expect("JSON");
        let groups = usage["data"].as_array().cloned().unwrap_or_default();
        if groups.first().is_some_and(|group| group["requests"] == 2) {
            break groups;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no usage for ada: {usage}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert!(groups[0]["user_id"].is_string(), "{groups:?}");

    // Deleting the user revokes its key within a second.
    assert!(keys(&["users", "delete", "--tenant", "acme", "ada"]).contains("revoked 1 key"));
    let started = Instant::now();
    loop {
        let status = client()
            .get(server.url("/v1/models"))
            .bearer_auth(&ada)
            .send()
            .expect("request")
            .status();
        if status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a deleted user's key still works: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
