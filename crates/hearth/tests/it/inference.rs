//! Model serving through the built binary, on the real sample models: the OpenAI and Ollama
//! APIs over HTTP.

use std::path::PathBuf;

use crate::{Server, client, hearth, run, stderr_of};

pub fn model_cache() -> PathBuf {
    let dir = std::env::var_os("HEARTH_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth/models")
        });
    assert!(
        dir.join("gemma-3-270m-q4_k_m.gguf").is_file(),
        "sample models missing in {}; run scripts/fetch-sample-models",
        dir.display()
    );
    dir
}

pub fn serve_with_sample_models() -> Server {
    serve_with_sample_models_and(&[])
}

/// `hearth serve` with the sample models registered (in place) and `env` set, e.g.
/// `("HEARTH_MODELS_PARALLEL_SEQUENCES", "1")`.
pub fn serve_with_sample_models_and(env: &[(&str, &str)]) -> Server {
    let cache = model_cache();
    Server::start(|command, home| {
        let data = home.join("data");
        for (path, name) in [
            (cache.join("gemma-3-270m-q4_k_m.gguf"), "gemma3:270m"),
            (cache.join("all-minilm-l6-v2"), "all-minilm:l6-v2"),
        ] {
            let output = run(hearth(home)
                .arg("--data-dir")
                .arg(&data)
                .arg("pull")
                .arg(path)
                .args(["--name", name]));
            assert!(output.status.success(), "{}", stderr_of(&output));
        }
        command.env("HEARTH_MODELS_THREADS", "1");
        command.envs(env.iter().copied());
    })
}

fn cosine(left: &[f64], right: &[f64]) -> f64 {
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}

#[test]
fn openai_and_ollama_apis_serve_the_sample_models() {
    let server = serve_with_sample_models();
    let http = client();

    let models: serde_json::Value = http
        .get(server.url("/v1/models"))
        .send()
        .expect("models")
        .json()
        .expect("json");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|model| model["id"].as_str())
        .collect();
    assert_eq!(ids, ["all-minilm:l6-v2", "gemma3:270m"]);

    let chat = serde_json::json!({
        "model": "gemma3:270m",
        "messages": [{"role": "user", "content": "Count from 1 to 5: 1, 2,"}],
        "max_tokens": 8, "temperature": 0
    });
    let first: serde_json::Value = http
        .post(server.url("/v1/chat/completions"))
        .json(&chat)
        .send()
        .expect("chat")
        .json()
        .expect("json");
    let text = first["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();
    assert!(!text.is_empty(), "{first}");
    assert_eq!(first["object"], "chat.completion");
    assert!(first["usage"]["completion_tokens"].as_u64().expect("usage") <= 8);
    // Greedy decoding is deterministic, and the second request reuses the cached prompt.
    let second: serde_json::Value = http
        .post(server.url("/v1/chat/completions"))
        .json(&chat)
        .send()
        .expect("chat")
        .json()
        .expect("json");
    assert_eq!(second["choices"][0]["message"]["content"], text.as_str());
    assert!(
        second["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .expect("cached")
            > 0,
        "{second}"
    );

    // Streaming: the same text, chunk by chunk, then usage, then [DONE].
    let mut streaming = chat.clone();
    streaming["stream"] = serde_json::json!(true);
    streaming["stream_options"] = serde_json::json!({"include_usage": true});
    let body = http
        .post(server.url("/v1/chat/completions"))
        .json(&streaming)
        .send()
        .expect("stream")
        .text()
        .expect("sse");
    let events: Vec<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{body}");
    let mut streamed = String::new();
    let mut saw_usage = false;
    for event in &events[..events.len() - 1] {
        let chunk: serde_json::Value = serde_json::from_str(event).expect("chunk json");
        if let Some(content) = chunk["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(content);
        }
        saw_usage |= chunk["usage"]["total_tokens"].is_u64();
    }
    assert_eq!(streamed, text);
    assert!(saw_usage, "{body}");

    // Embeddings: similar sentences are closer than unrelated ones.
    let embeddings: serde_json::Value = http
        .post(server.url("/v1/embeddings"))
        .json(&serde_json::json!({"model": "all-minilm:l6-v2", "input": [
            "A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."
        ]}))
        .send().expect("embeddings").json().expect("json");
    let vectors: Vec<Vec<f64>> = embeddings["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| {
            item["embedding"]
                .as_array()
                .expect("vector")
                .iter()
                .map(|value| value.as_f64().expect("number"))
                .collect()
        })
        .collect();
    assert_eq!(vectors[0].len(), 384);
    assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]));

    // Ollama: non-streamed chat gives the same greedy text; generate streams NDJSON.
    let ollama: serde_json::Value = http
        .post(server.url("/api/chat"))
        .body(
            serde_json::json!({
                "model": "gemma3:270m", "stream": false,
                "messages": [{"role": "user", "content": "Count from 1 to 5: 1, 2,"}],
                "options": {"temperature": 0, "num_predict": 8}
            })
            .to_string(),
        )
        .send()
        .expect("ollama chat")
        .json()
        .expect("json");
    assert_eq!(ollama["message"]["content"], text.as_str(), "{ollama}");
    assert_eq!(ollama["done"], true);
    let lines = http
        .post(server.url("/api/generate"))
        .body(r#"{"model":"gemma3:270m","prompt":"Hello","options":{"num_predict":4}}"#)
        .send()
        .expect("generate")
        .text()
        .expect("ndjson");
    let last: serde_json::Value =
        serde_json::from_str(lines.lines().last().expect("a line")).expect("json");
    assert_eq!(last["done"], true, "{lines}");
    assert!(last["eval_count"].as_u64().expect("eval_count") >= 1);

    let ps: serde_json::Value = http
        .get(server.url("/api/ps"))
        .send()
        .expect("ps")
        .json()
        .expect("json");
    assert_eq!(ps["models"].as_array().expect("models").len(), 2, "{ps}");

    // The README's quick start: the sample is a base model, so it continues text sensibly.
    let continued: serde_json::Value = http
        .post(server.url("/v1/completions"))
        .json(&serde_json::json!({"model": "gemma3:270m", "prompt": "Paris is the capital of", "max_tokens": 16, "temperature": 0}))
        .send()
        .expect("completion")
        .json()
        .expect("json");
    let text = continued["choices"][0]["text"].as_str().expect("text");
    assert!(text.starts_with(" France"), "{continued}");

    // And /api/show tells a user why chat answers with continuation text.
    let shown: serde_json::Value = http
        .post(server.url("/api/show"))
        .json(&serde_json::json!({"model": "gemma3:270m"}))
        .send()
        .expect("show")
        .json()
        .expect("json");
    assert_eq!(
        shown["model_info"]["hearth.note"],
        "base model (no chat template): use /v1/completions, or pull an instruct model",
        "{shown}"
    );

    // Errors: unknown model 404 naming `model`; a bad parameter 400 naming it.
    let missing = http
        .post(server.url("/v1/chat/completions"))
        .json(
            &serde_json::json!({"model": "nope:1", "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .expect("missing");
    assert_eq!(missing.status(), 404);
    let missing: serde_json::Value = missing.json().expect("json");
    assert_eq!(missing["error"]["code"], "model_not_found");
    let bad = http.post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "gemma3:270m", "temperature": 5, "messages": [{"role": "user", "content": "x"}]}))
        .send().expect("bad");
    assert_eq!(bad.status(), 400);
    let bad: serde_json::Value = bad.json().expect("json");
    assert_eq!(bad["error"]["param"], "temperature");

    // Hearth told of its own work: the model's load and each completion's usage (never the
    // prompt), replayed from the event log.
    let mut stream = http
        .get(server.url("/v1/events/stream?topics=hearth.model.*,hearth.completion.*&from_seq=1"))
        .send()
        .expect("event stream");
    let mut text = String::new();
    let mut chunk = [0u8; 4096];
    while !(text.contains("event: hearth.model.loaded")
        && text.contains("event: hearth.completion.finished"))
    {
        let read = std::io::Read::read(&mut stream, &mut chunk).expect("read the stream");
        assert!(read > 0, "the stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&chunk[..read]));
    }
    let finished = text
        .split("\n\n")
        .find(|event| event.contains("event: hearth.completion.finished"))
        .and_then(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .expect("a completion event");
    let finished: serde_json::Value = serde_json::from_str(finished).expect("JSON");
    assert_eq!(finished["model"], "gemma3:270m", "{finished}");
    assert!(
        finished["completion_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{finished}"
    );
    assert!(
        !text.contains("Count from 1 to 5"),
        "a prompt leaked into events: {text}"
    );
}

/// The value of one sample in Prometheus text, by its series as written:
/// `metric(&text, r#"hearth_model_slots{model="gemma3:270m"}"#)`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

pub fn scrape(server: &Server) -> String {
    client()
        .get(server.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text")
}

#[test]
fn metrics_show_each_loaded_chat_model_until_it_is_deleted() {
    let server = serve_with_sample_models_and(&[
        ("HEARTH_MODELS_PARALLEL_SEQUENCES", "2"),
        ("HEARTH_MODELS_QUEUE_CAPACITY", "8"),
    ]);
    let http = client();
    let request = serde_json::json!({
        "model": "gemma3:270m", "prompt": "1, 2, 3, 4,", "max_tokens": 6, "temperature": 0
    });
    let completion: serde_json::Value = http
        .post(server.url("/v1/completions"))
        .json(&request)
        .send()
        .expect("completion")
        .json()
        .expect("json");
    let prompt_tokens = completion["usage"]["prompt_tokens"]
        .as_f64()
        .expect("usage");
    let completion_tokens = completion["usage"]["completion_tokens"]
        .as_f64()
        .expect("usage");

    let text = scrape(&server);
    let value = |text: &str, name: &str, labels: &str| {
        let series = format!("{name}{{model=\"gemma3:270m\"{labels}}}");
        metric(text, &series).unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    assert_eq!(value(&text, "hearth_model_slots", ""), 2.0);
    assert_eq!(value(&text, "hearth_model_queue_capacity", ""), 8.0);
    assert_eq!(value(&text, "hearth_model_queue_depth", ""), 0.0);
    assert_eq!(value(&text, "hearth_model_active_sequences", ""), 0.0);
    assert_eq!(value(&text, "hearth_model_batch_occupancy_ratio", ""), 0.0);
    let outcome = |text: &str, outcome: &str| {
        value(
            text,
            "hearth_model_requests_total",
            &format!(",outcome=\"{outcome}\""),
        )
    };
    assert_eq!(outcome(&text, "completed"), 1.0);
    assert_eq!(outcome(&text, "cancelled"), 0.0);
    assert_eq!(outcome(&text, "failed"), 0.0);
    assert_eq!(
        value(&text, "hearth_model_generated_tokens_total", ""),
        completion_tokens
    );
    // Nothing was cached yet, so every prompt token was decoded; the last generated token is
    // sampled but never decoded. Drafts the sampler rejected were decoded as well.
    assert_eq!(
        value(&text, "hearth_model_prompt_tokens_total", ""),
        prompt_tokens
    );
    let rejected_drafts = value(
        &text,
        "hearth_model_draft_tokens_total",
        ",outcome=\"rejected\"",
    );
    let decoded = value(&text, "hearth_model_decoded_tokens_total", "") - rejected_drafts;
    assert!(
        (prompt_tokens..prompt_tokens + completion_tokens).contains(&decoded),
        "{decoded}"
    );
    let steps = value(&text, "hearth_model_decode_steps_total", "");
    assert!((1.0..=completion_tokens).contains(&steps), "{steps}");
    let ttft = value(&text, "hearth_model_time_to_first_token_seconds", "");
    assert!(ttft > 0.0 && ttft < 60.0, "{ttft}");
    assert!(value(&text, "hearth_model_tokens_per_second", "") > 0.0);
    assert_eq!(
        value(&text, "hearth_model_prefix_cache_hits_total", ""),
        0.0
    );

    // The same prompt again reuses the cached prefix.
    let again = http
        .post(server.url("/v1/completions"))
        .json(&request)
        .send()
        .expect("completion");
    assert_eq!(again.status(), 200);
    let text = scrape(&server);
    assert_eq!(outcome(&text, "completed"), 2.0);
    assert_eq!(
        value(&text, "hearth_model_prefix_cache_hits_total", ""),
        1.0
    );
    assert!(value(&text, "hearth_model_prefix_cache_reused_tokens_total", "") > 0.0);

    // Deleting the model unloads it, and its series go with it: only loaded models have any.
    let deleted = http
        .delete(server.url("/api/delete"))
        .json(&serde_json::json!({"model": "gemma3:270m"}))
        .send()
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    let text = scrape(&server);
    assert!(!text.contains("gemma3:270m"), "{text}");
    assert!(
        model_cache().join("gemma-3-270m-q4_k_m.gguf").is_file(),
        "a model registered in place keeps its file"
    );
}

#[test]
fn ignore_eos_and_speculation_are_request_fields() {
    let server = serve_with_sample_models();
    let http = client();
    // Gemma's end of turn (token 106) pushed far up: the answer ends at once, unless the end
    // of generation is ignored.
    let request = |extra: serde_json::Value| {
        let mut body = serde_json::json!({
            "model": "gemma3:270m", "max_tokens": 12, "temperature": 0,
            "messages": [{"role": "user", "content": "Say yes."}],
            "logit_bias": {"106": 100},
        });
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        http.post(server.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .expect("chat")
    };
    let usage = |response: reqwest::blocking::Response| {
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().expect("json");
        (
            body["usage"]["completion_tokens"].as_u64(),
            body["choices"][0]["finish_reason"].clone(),
        )
    };
    let (tokens, finish) = usage(request(serde_json::json!({})));
    assert_eq!((tokens, finish.as_str()), (Some(1), Some("stop")));
    let (tokens, finish) = usage(request(
        serde_json::json!({"ignore_eos": true, "speculation": false}),
    ));
    assert_eq!((tokens, finish.as_str()), (Some(12), Some("length")));

    let refused = request(serde_json::json!({"speculation": "sometimes"}));
    assert_eq!(refused.status(), 400);
    let error: serde_json::Value = refused.json().expect("json");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("speculation")),
        "{error}"
    );
}
