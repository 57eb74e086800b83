//! Concurrency through the built binary on the sample model, over real HTTP: many streams on a
//! few slots without cross-talk, a disconnect freeing its slot, a full queue answering 429, and
//! the per-request sampling state (`n`, `seed`, `stop`) that batching must keep apart.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use crate::inference::{metric, scrape, serve_with_sample_models_and};
use crate::{Server, client};

const MODEL: &str = "gemma3:270m";

/// Prompts whose greedy continuations are distinct and easy to recognise, so that a token
/// delivered to the wrong request would show.
const PROMPTS: [&str; 16] = [
    "1, 2, 3, 4,",
    "11, 12, 13,",
    "21, 22, 23,",
    "31, 32, 33,",
    "41, 42, 43,",
    "51, 52, 53,",
    "61, 62, 63,",
    "71, 72, 73,",
    "2, 4, 6, 8,",
    "5, 10, 15, 20,",
    "Monday, Tuesday, Wednesday,",
    "January, February, March,",
    "a, b, c, d,",
    "one, two, three,",
    "red, orange, yellow,",
    "Z, Y, X, W,",
];

/// Largest log-probability gap accepted between the token a request chose alone and the one it
/// chose in a batch, where the two differ. Batched kernels round differently from single-row
/// ones, so near-ties can flip; a token from another request's stream would trail by whole
/// nats, or not be among the alternatives at all.
const NEAR_TIE: f64 = 0.25;

fn post(server: &Server, path: &str, body: &serde_json::Value) -> reqwest::blocking::Response {
    client()
        .post(server.url(path))
        .json(body)
        .send()
        .expect("request")
}

fn greedy(prompt: &str, max_tokens: u32) -> serde_json::Value {
    serde_json::json!({"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0})
}

fn completion(server: &Server, body: &serde_json::Value) -> serde_json::Value {
    let response = post(server, "/v1/completions", body);
    assert_eq!(response.status(), 200);
    response.json().expect("json")
}

/// A streamed completion's text, chunk by chunk until `[DONE]`.
fn streamed_text(server: &Server, prompt: &str, max_tokens: u32) -> String {
    let mut body = greedy(prompt, max_tokens);
    body["stream"] = serde_json::json!(true);
    let response = post(server, "/v1/completions", &body);
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    for line in BufReader::new(response).lines() {
        let line = line.expect("read");
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            return text;
        }
        let chunk: serde_json::Value = serde_json::from_str(data).expect("chunk");
        assert!(chunk["error"].is_null(), "{chunk}");
        if let Some(piece) = chunk["choices"][0]["text"].as_str() {
            text.push_str(piece);
        }
    }
    panic!("the stream for {prompt:?} ended without [DONE]");
}

/// Checks a batched output against the same prompt's output alone (with its log-probabilities).
/// Equal is the rule. Where they differ, the token where they part must have been a near-tie
/// alone: the batched text's next piece is among that position's top alternatives, within
/// `NEAR_TIE` of the token chosen alone. Only the first difference can be judged: after it the
/// two runs continue different texts.
fn assert_same_or_near_tie(prompt: &str, alone: &serde_json::Value, batched: &str) {
    let choice = &alone["choices"][0];
    let logprobs = &choice["logprobs"];
    let tokens: Vec<&str> = logprobs["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|token| token.as_str().expect("token"))
        .collect();
    assert_eq!(
        tokens.concat(),
        choice["text"].as_str().expect("text"),
        "{prompt}: tokens do not spell the text"
    );
    let mut offset = 0;
    for (position, token) in tokens.iter().enumerate() {
        let rest = &batched[offset..];
        if rest.starts_with(token) {
            offset += token.len();
            continue;
        }
        let chosen = logprobs["token_logprobs"][position]
            .as_f64()
            .expect("logprob");
        let alternatives: BTreeMap<String, f64> =
            serde_json::from_value(logprobs["top_logprobs"][position].clone()).expect("top");
        let best_match = alternatives
            .iter()
            .filter(|(text, _)| !text.is_empty() && rest.starts_with(text.as_str()))
            .map(|(_, logprob)| *logprob)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(
            chosen - best_match < NEAR_TIE,
            "{prompt}: alone {:?}, batched {batched:?}; at token {position} the batched text \
             continues with {rest:?}, which trails the choice alone ({token:?}, {chosen}) by \
             {} among {alternatives:?}: output was mixed up, not rounded",
            choice["text"],
            chosen - best_match
        );
        eprintln!(
            "{prompt}: batched output parts from the output alone at token {position} on a \
             near-tie ({:.4} nats)",
            chosen - best_match
        );
        return;
    }
    assert_eq!(
        batched,
        &batched[..offset],
        "{prompt}: batched output is longer"
    );
}

#[test]
fn sixteen_concurrent_streams_on_four_slots_complete_without_cross_talk() {
    let server = serve_with_sample_models_and(&[("HEARTH_MODELS_PARALLEL_SEQUENCES", "4")]);
    let max_tokens = 8;
    let alone: Vec<serde_json::Value> = PROMPTS
        .iter()
        .map(|prompt| {
            let mut body = greedy(prompt, max_tokens);
            body["logprobs"] = serde_json::json!(5);
            completion(&server, &body)
        })
        .collect();
    let before = scrape(&server);

    let batched: Vec<String> = std::thread::scope(|scope| {
        let streams: Vec<_> = PROMPTS
            .iter()
            .map(|prompt| scope.spawn(|| streamed_text(&server, prompt, max_tokens)))
            .collect();
        streams
            .into_iter()
            .map(|stream| stream.join().expect("stream thread"))
            .collect()
    });

    let mut distinct = batched.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        PROMPTS.len(),
        "the continuations should all differ: {batched:#?}"
    );
    for ((prompt, alone), batched) in PROMPTS.iter().zip(&alone).zip(&batched) {
        assert_same_or_near_tie(prompt, alone, batched);
    }

    // The streams shared decode steps: more tokens than steps, by a batch's worth.
    let after = scrape(&server);
    let delta = |name: &str| {
        let series = format!("{name}{{model=\"{MODEL}\"}}");
        metric(&after, &series).expect("after") - metric(&before, &series).expect("before")
    };
    let (tokens, steps) = (
        delta("hearth_model_decoded_tokens_total"),
        delta("hearth_model_decode_steps_total"),
    );
    assert!(
        tokens > steps * 2.0,
        "steps should batch several sequences: {tokens} tokens in {steps} steps"
    );
}

#[test]
fn a_client_that_disconnects_mid_stream_frees_its_slot_for_the_next_request() {
    let server = serve_with_sample_models_and(&[("HEARTH_MODELS_PARALLEL_SEQUENCES", "1")]);
    // Loads the model, and measures how fast it generates here.
    completion(&server, &greedy("Hello", 16));
    let speed = metric(
        &scrape(&server),
        &format!("hearth_model_tokens_per_second{{model=\"{MODEL}\"}}"),
    )
    .expect("tokens per second");

    let long_tokens = 3000;
    let mut body = greedy("1, 2, 3, 4, 5,", long_tokens);
    body["stream"] = serde_json::json!(true);
    let response = post(&server, "/v1/completions", &body);
    assert_eq!(response.status(), 200);
    let mut lines = BufReader::new(response).lines();
    while !lines
        .next()
        .expect("a line")
        .expect("read")
        .starts_with("data: ")
    {}
    drop(lines);

    // The only slot is taken until the server notices; then the next step frees it.
    let started = Instant::now();
    let second = completion(&server, &greedy("a, b, c,", 4));
    let waited = started.elapsed();
    assert_eq!(second["choices"][0]["finish_reason"], "length", "{second}");
    let long_stream = Duration::from_secs_f64(f64::from(long_tokens) / speed);
    assert!(
        waited < long_stream / 4,
        "the second request waited {waited:?}; the abandoned stream would have run {long_stream:?}"
    );
    let text = scrape(&server);
    let outcome = |outcome: &str| {
        metric(
            &text,
            &format!("hearth_model_requests_total{{model=\"{MODEL}\",outcome=\"{outcome}\"}}"),
        )
        .expect("requests_total")
    };
    assert_eq!(outcome("cancelled"), 1.0, "{text}");
    assert_eq!(outcome("completed"), 2.0, "{text}");
}

#[test]
fn a_full_queue_answers_429_with_retry_after_and_an_openai_error() {
    let server = serve_with_sample_models_and(&[
        ("HEARTH_MODELS_PARALLEL_SEQUENCES", "1"),
        ("HEARTH_MODELS_QUEUE_CAPACITY", "1"),
    ]);
    completion(&server, &greedy("Hello", 1));

    // One request runs, one waits, and the rest find the queue full.
    let mut body = greedy("1, 2, 3, 4, 5,", 2000);
    body["stream"] = serde_json::json!(true);
    let responses: Vec<reqwest::blocking::Response> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| post(&server, "/v1/completions", &body)))
            .collect();
        requests
            .into_iter()
            .map(|request| request.join().expect("request thread"))
            .collect()
    });
    let (refused, accepted): (Vec<_>, Vec<_>) = responses
        .into_iter()
        .partition(|response| response.status() == 429);
    assert!(
        refused.len() >= 2,
        "{} accepted with one slot and a queue of one",
        accepted.len()
    );
    assert!(accepted.iter().all(|response| response.status() == 200));
    for response in refused {
        assert_eq!(response.headers()["retry-after"], "1");
        let body: serde_json::Value = response.json().expect("json");
        assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
        assert_eq!(body["error"]["code"], "queue_full", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("queue")),
            "{body}"
        );
    }
}

#[test]
fn n_2_returns_two_choices() {
    let server = serve_with_sample_models_and(&[]);
    let mut body = greedy("Once upon a time", 6);
    body["n"] = serde_json::json!(2);
    body["temperature"] = serde_json::json!(0.9);
    let response = completion(&server, &body);
    let choices = response["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 2, "{response}");
    for (index, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], index);
        assert!(
            !choice["text"].as_str().expect("text").is_empty(),
            "{response}"
        );
    }
    let tokens = response["usage"]["completion_tokens"]
        .as_u64()
        .expect("usage");
    assert!((2..=12).contains(&tokens), "{response}");
}

#[test]
fn a_seeded_request_at_temperature_above_zero_returns_the_same_text_twice() {
    let server = serve_with_sample_models_and(&[]);
    let mut body = greedy("Once upon a time", 16);
    body["temperature"] = serde_json::json!(1.0);
    body["seed"] = serde_json::json!(1234);
    let first = completion(&server, &body);
    let second = completion(&server, &body);
    assert_eq!(
        first["choices"][0]["text"], second["choices"][0]["text"],
        "{first}\n{second}"
    );
}

#[test]
fn a_stop_sequence_ends_the_output_before_it() {
    let server = serve_with_sample_models_and(&[]);
    let prompt = "1, 2, 3, 4, 5,";
    let plain = completion(&server, &greedy(prompt, 12));
    let text = plain["choices"][0]["text"].as_str().expect("text");
    assert!(text.is_ascii() && text.len() >= 6, "{text:?}");
    // A stop taken from the second half of the greedy text, whose first occurrence is past the
    // start, so that something comes before it.
    let (stop, at) = (text.len() / 2..text.len() - 1)
        .map(|start| &text[start..start + 2])
        .find_map(|stop| Some((stop, text.find(stop).filter(|at| *at > 0)?)))
        .unwrap_or_else(|| panic!("no usable stop sequence in {text:?}"));

    let mut body = greedy(prompt, 12);
    body["stop"] = serde_json::json!([stop]);
    let stopped = completion(&server, &body);
    assert_eq!(
        stopped["choices"][0]["text"],
        &text[..at],
        "stop {stop:?} in {text:?}"
    );
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
}
