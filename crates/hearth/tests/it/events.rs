//! Events through the built binary: `hearth events pub` stores an event on a running server
//! and `hearth events sub` prints it back, replayed from its sequence, as a JSON line; a
//! kill -9 in the middle of publishing and consuming loses nothing that was answered.

use std::time::Duration;

use serde_json::Value;

use crate::Server;

#[test]
fn the_cli_publishes_an_event_and_prints_it_back_from_the_log() {
    let server = Server::start(|_, _| {});
    let home = server.dir.path();
    let events = |args: &[&str]| {
        let output = crate::run(
            crate::hearth(home)
                .arg("events")
                .args(args)
                .args(["--url", &server.url("")]),
        );
        (
            output.status.success(),
            crate::stdout_of(&output),
            crate::stderr_of(&output),
        )
    };
    let (ok, out, err) = events(&["pub", "agent.task.done", r#"{"task": 7}"#]);
    assert!(ok, "{err}");
    let published: Value = serde_json::from_str(out.trim()).expect("JSON answer");
    assert_eq!(published["seq"], 1, "{out}");

    let (ok, _, err) = events(&["pub", "agent.task.done", "{not json"]);
    assert!(!ok);
    assert!(err.contains("not JSON"), "{err}");

    let (ok, out, err) = events(&["sub", "agent.>,other.*", "--from-seq", "1", "--count", "1"]);
    assert!(ok, "{err}");
    let line: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["seq"], 1);
    assert_eq!(line["topic"], "agent.task.done");
    assert_eq!(line["data"]["task"], 7);

    let created = crate::client()
        .post(server.url("/v1/consumers"))
        .json(&serde_json::json!({"name": "auditor", "filter": ["agent.>", "other.*"]}))
        .send()
        .expect("create a consumer");
    assert!(created.status().is_success());
    let (ok, out, err) = events(&["consumers", "list"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.contains("auditor") && out.contains("agent.>,other.*"),
        "{out}"
    );
    let (ok, out, err) = events(&["consumers", "list", "--json"]);
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(listed[0]["state"]["next_seq"], 1, "{out}");

    let (ok, out, err) = events(&["webhooks", "list"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ID"), "{out}");
}

/// kill -9 while publishers publish and a consumer holds un-acknowledged deliveries: after
/// the restart every publish that was answered is delivered to the consumer, and the
/// consumer's acknowledged events are not delivered again.
#[test]
fn a_kill_9_loses_no_acknowledged_publish_and_no_consumer_progress() {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    let mut server = Server::start(|_, _| {});
    let client = crate::client();
    let post = |server: &Server, path: &str, body: Value| {
        let response = client
            .post(server.url(path))
            .json(&body)
            .send()
            .expect("request");
        let status = response.status();
        let body: Value = response.json().expect("JSON answer");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    };
    post(
        &server,
        "/v1/consumers",
        serde_json::json!({"name": "worker", "filter": "jobs.>", "ack_wait_ms": 300}),
    );
    // Publishers that record each sequence the server answered, until the server is gone.
    let answered = Arc::new(Mutex::new(BTreeSet::new()));
    let publishers: Vec<_> = (0..4)
        .map(|publisher| {
            let url = server.url("/v1/events/jobs.run");
            let answered = Arc::clone(&answered);
            std::thread::spawn(move || {
                let client = crate::client();
                for n in 0.. {
                    let Ok(response) = client
                        .post(&url)
                        .json(&serde_json::json!({"publisher": publisher, "n": n}))
                        .send()
                    else {
                        return;
                    };
                    let Ok(body) = response.json::<Value>() else {
                        return;
                    };
                    let Some(seq) = body["seq"].as_u64() else {
                        return;
                    };
                    answered.lock().expect("lock").insert(seq);
                }
            })
        })
        .collect();
    while answered.lock().expect("lock").len() < 100 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The consumer takes a batch and acknowledges half of it; the rest is in flight.
    let fetched = post(
        &server,
        "/v1/consumers/worker/fetch",
        serde_json::json!({"batch": 40}),
    );
    let deliveries = fetched["data"].as_array().expect("data").clone();
    assert_eq!(deliveries.len(), 40, "{fetched}");
    let acked: Vec<Value> = deliveries[..20]
        .iter()
        .map(|delivery| delivery["delivery_id"].clone())
        .collect();
    let answer = post(
        &server,
        "/v1/consumers/worker/ack",
        serde_json::json!({"delivery_ids": acked}),
    );
    assert_eq!(answer["count"], 20);
    let acked_seqs: BTreeSet<u64> = deliveries[..20]
        .iter()
        .map(|delivery| delivery["seq"].as_u64().expect("seq"))
        .collect();

    // kill -9 mid-publish, and start again on the same data.
    server.restart(|_, _| {});
    for publisher in publishers {
        publisher.join().expect("publisher");
    }
    let answered = answered.lock().expect("lock").clone();
    let mut delivered = BTreeSet::new();
    let mut empty_fetches = 0;
    while empty_fetches < 2 {
        let fetched = post(
            &server,
            "/v1/consumers/worker/fetch",
            serde_json::json!({"batch": 500, "wait_ms": 700}),
        );
        let deliveries = fetched["data"].as_array().expect("data").clone();
        if deliveries.is_empty() {
            empty_fetches += 1;
            continue;
        }
        let ids: Vec<Value> = deliveries
            .iter()
            .map(|delivery| delivery["delivery_id"].clone())
            .collect();
        post(
            &server,
            "/v1/consumers/worker/ack",
            serde_json::json!({"delivery_ids": ids}),
        );
        for delivery in deliveries {
            let seq = delivery["seq"].as_u64().expect("seq");
            assert!(!acked_seqs.contains(&seq), "acknowledged {seq} came again");
            delivered.insert(seq);
        }
    }
    let missing: Vec<&u64> = answered
        .iter()
        .filter(|seq| !acked_seqs.contains(seq) && !delivered.contains(seq))
        .collect();
    assert!(
        missing.is_empty(),
        "{} answered publishes were lost: {missing:?}",
        missing.len()
    );
    // The stream has no holes: what was stored is 1..=last, gapless.
    let last = *delivered.iter().chain(&acked_seqs).max().expect("some");
    assert_eq!(delivered.len() + acked_seqs.len(), last as usize);
}

/// Webhooks from the binary, verified by the `standardwebhooks` package (an independent
/// implementation of the specification) in a receiver on loopback: signatures, the retry
/// after a failure, rotation, 410. Loopback is refused by default (SSRF) and allowed here by
/// configuration, with Svix's schedule compressed a thousandfold.
#[test]
fn webhooks_verify_with_the_standard_webhooks_library_and_retry_and_disable() {
    let mut server = Server::start(|_, _| {});
    let refused = crate::client()
        .post(server.url("/v1/webhooks"))
        .json(&serde_json::json!({"url": "http://127.0.0.1:9/hook"}))
        .send()
        .expect("request");
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    let error: Value = refused.json().expect("JSON");
    assert_eq!(error["error"]["param"], "url", "{error}");

    server.restart(|command, _| {
        command
            .env("HEARTH_WEBHOOKS_ALLOW_INTERNAL_TARGETS", "true")
            .env("HEARTH_WEBHOOKS_RETRY_SCALE", "0.001");
    });
    let python = crate::python_clients::venv_python();
    let output = std::process::Command::new(&python)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(crate::python_clients::client_script("webhooks_receiver.py"))
        .arg(server.url(""))
        .output()
        .expect("run the receiver script");
    assert!(
        output.status.success(),
        "webhooks_receiver.py failed:\n{}\n{}\n--- server log\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
}
