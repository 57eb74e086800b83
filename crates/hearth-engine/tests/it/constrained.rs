//! Grammar-constrained output on the real model: JSON objects and JSON schemas are followed by
//! construction, whatever a 270M base model would have written freely.

use hearth_engine::{
    ChatMessage, ChatRole, Constraint, EngineConfig, EngineError, FinishReason, GenerationRequest,
    Prompt, SamplingParams,
};

use crate::support::{assert_same_greedy_output, start};

fn chat(text: &str, constraint: Constraint, max_tokens: usize) -> GenerationRequest {
    GenerationRequest::new(Prompt::Chat(vec![ChatMessage::new(ChatRole::User, text)]))
        .with_max_tokens(max_tokens)
        .with_sampling(SamplingParams::greedy())
        .with_constraint(constraint)
}

#[tokio::test]
async fn a_json_schema_is_followed_and_the_output_validates() {
    let handle = start(EngineConfig {
        n_parallel: 2,
        ..EngineConfig::default()
    });
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 24},
            "population": {"type": "integer", "minimum": 0},
            "capital": {"type": "boolean"}
        },
        "required": ["city", "population", "capital"],
        "additionalProperties": false
    });
    let completion = handle
        .generate(chat(
            "Describe Paris as JSON.",
            Constraint::JsonSchema(schema),
            96,
        ))
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    assert_eq!(
        completion.finish_reason,
        Some(FinishReason::Stop),
        "the grammar ends the output once the object is closed: {:?}",
        completion.text
    );
    let value: serde_json::Value =
        serde_json::from_str(&completion.text).expect("the output is JSON");
    let object = value.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["capital", "city", "population"], "{value}");
    assert!(
        object["city"]
            .as_str()
            .is_some_and(|city| city.chars().count() <= 24)
    );
    assert!(object["population"].as_u64().is_some(), "{value}");
    assert!(object["capital"].is_boolean(), "{value}");
}

#[tokio::test]
async fn json_object_mode_produces_an_object_and_leaves_an_unconstrained_neighbour_greedy() {
    let handle = start(EngineConfig {
        n_parallel: 2,
        ..EngineConfig::default()
    });
    let prompt = "List three colours.";
    let constrained = handle
        .generate(chat(prompt, Constraint::JsonObject, 64))
        .expect("accepted");
    // An unconstrained sequence in the same batch is not affected by its neighbour's grammar:
    // it is the greedy decode of its own prompt.
    let max_tokens = 16;
    let mut free = chat(prompt, Constraint::JsonObject, max_tokens);
    free.constraint = None;
    let free = handle.generate(free).expect("accepted");
    let (constrained, free) = tokio::join!(constrained.collect(), free.collect());
    let constrained = constrained.expect("completes");
    if constrained.finish_reason == Some(FinishReason::Stop) {
        let value: serde_json::Value =
            serde_json::from_str(&constrained.text).expect("the output is JSON");
        assert!(value.is_object(), "{value}");
    } else {
        // Cut off by max_tokens: still the beginning of an object.
        assert!(constrained.text.starts_with('{'), "{:?}", constrained.text);
    }
    // Compared token by token, since batched kernels may round a near-tie the other way.
    let free = free.expect("completes");
    let messages = [ChatMessage::new(ChatRole::User, prompt)];
    let formatted = handle.model().format_chat(&messages).expect("formats");
    let prompt_tokens = handle.model().tokenize(&formatted, true);
    assert_same_greedy_output(
        "unconstrained neighbour",
        handle.model(),
        &prompt_tokens,
        &free.tokens,
        max_tokens,
    );
}

#[test]
fn an_unusable_schema_is_refused_before_anything_runs() {
    let handle = start(EngineConfig {
        n_parallel: 1,
        ..EngineConfig::default()
    });
    let refused = handle.generate(chat(
        "Hi",
        Constraint::JsonSchema(serde_json::json!({"type": "no-such-type"})),
        8,
    ));
    assert!(
        matches!(refused, Err(EngineError::InvalidGrammar { .. })),
        "{refused:?}"
    );
    assert_eq!(handle.stats().queue_depth, 0);
}

/// The schema (OpenAI strict mode: all required, nothing else) and prompt on which the sample
/// model, unbounded, writes `{"name": "Make up a person", "age": 1800000000000000000…` until its
/// tokens run out: after `18` only digits or `}` may follow, and it prefers `0`.
fn runaway_person_request() -> GenerationRequest {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": false
    });
    chat("Make up a person", Constraint::JsonSchema(schema), 60)
}

/// Runs [`runaway_person_request`] on a fresh scheduler whose JSON numbers hold at most
/// `max_digits` digits per part (0: unbounded).
async fn person_with_number_bound(max_digits: usize) -> hearth_engine::Completion {
    let handle = start(EngineConfig {
        n_parallel: 1,
        json_number_max_digits: max_digits,
        ..EngineConfig::default()
    });
    handle
        .generate(runaway_person_request())
        .expect("accepted")
        .collect()
        .await
        .expect("completes")
}

#[tokio::test]
async fn json_numbers_are_bounded_so_a_runaway_integer_still_closes() {
    // Unbounded, the model never stops writing digits: the reply does not parse.
    let runaway = person_with_number_bound(0).await;
    assert_eq!(
        runaway.finish_reason,
        Some(FinishReason::Length),
        "{:?}",
        runaway.text
    );
    assert!(serde_json::from_str::<serde_json::Value>(&runaway.text).is_err());

    // With llama.cpp's bound (the default), the integer stops at 16 digits and the object closes.
    let completion = person_with_number_bound(hearth_engine::DEFAULT_JSON_NUMBER_MAX_DIGITS).await;
    assert_eq!(
        completion.finish_reason,
        Some(FinishReason::Stop),
        "{:?}",
        completion.text
    );
    let person: serde_json::Value =
        serde_json::from_str(&completion.text).expect("the output is JSON");
    assert!(
        person["age"].is_i64() || person["age"].is_u64(),
        "an integer: {person}"
    );
    let digits = person["age"].to_string().trim_start_matches('-').len();
    assert!(digits <= 16, "{person}");
}
