//! The scheduler against a plain sequential decode: same greedy output alone, and with many
//! concurrent requests sharing decode steps, no output reaching the wrong request.

use hearth_engine::{EngineConfig, FinishReason};

use crate::support::{assert_same_greedy_output, greedy, sequential_greedy, start};

#[tokio::test]
async fn greedy_completion_is_deterministic_and_equals_a_sequential_decode() {
    let handle = start(EngineConfig {
        n_parallel: 2,
        ..EngineConfig::default()
    });
    let prompt = "The capital of France is";
    let first = handle
        .generate(greedy(prompt, 24))
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    let second = handle
        .generate(greedy(prompt, 24))
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    assert_eq!(first.tokens, second.tokens);
    assert_eq!(first.text, second.text);

    let prompt_tokens = handle.model().tokenize(prompt, true);
    let reference = sequential_greedy(handle.model(), &prompt_tokens, 24);
    assert_eq!(
        first.tokens,
        reference.iter().map(|step| step.token).collect::<Vec<_>>()
    );
    assert_eq!(
        first.text,
        handle
            .model()
            .detokenize(&first.tokens)
            .expect("valid tokens")
    );
}

/// Prompts whose greedy continuations are distinct and easy to recognise, so that a token
/// delivered to the wrong request would show.
const DISTINCT_PROMPTS: [&str; 16] = [
    "1, 2, 3, 4, 5,",
    "10, 11, 12, 13,",
    "100, 101, 102, 103,",
    "2, 4, 6, 8, 10,",
    "Monday, Tuesday, Wednesday,",
    "January, February, March, April,",
    "a, b, c, d, e,",
    "one, two, three, four,",
    "red, orange, yellow, green,",
    "5, 10, 15, 20, 25,",
    "The quick brown fox jumps over the",
    "To be or not to be, that is the",
    "Twinkle, twinkle, little star, how I",
    "1000, 2000, 3000,",
    "Z, Y, X, W, V,",
    "first, second, third, fourth,",
];

#[tokio::test]
async fn sixteen_concurrent_requests_on_four_slots_complete_without_cross_talk() {
    let handle = start(EngineConfig {
        n_parallel: 4,
        ..EngineConfig::default()
    });
    let max_tokens = 16;
    let streams: Vec<_> = DISTINCT_PROMPTS
        .iter()
        .map(|prompt| {
            handle
                .generate(greedy(prompt, max_tokens))
                .expect("accepted")
        })
        .collect();
    let mut outputs = Vec::new();
    for stream in streams {
        outputs.push(stream.collect().await.expect("completes"));
    }

    let stats = handle.stats();
    assert_eq!(stats.requests_completed, 16);
    assert_eq!(stats.active_sequences, 0);
    assert!(
        stats.total_tokens_decoded > stats.decode_steps * 2,
        "steps should batch several sequences: {} tokens in {} steps",
        stats.total_tokens_decoded,
        stats.decode_steps
    );

    let mut texts: Vec<&str> = outputs.iter().map(|output| output.text.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    let pairs: Vec<(&str, &str)> = DISTINCT_PROMPTS
        .iter()
        .copied()
        .zip(outputs.iter().map(|output| output.text.as_str()))
        .collect();
    assert_eq!(
        texts.len(),
        16,
        "the continuations should all differ: {pairs:#?}"
    );

    for (prompt, output) in DISTINCT_PROMPTS.iter().zip(&outputs) {
        assert!(matches!(
            output.finish_reason,
            Some(FinishReason::Length | FinishReason::Stop)
        ));
        let prompt_tokens = handle.model().tokenize(prompt, true);
        assert_same_greedy_output(
            prompt,
            handle.model(),
            &prompt_tokens,
            &output.tokens,
            max_tokens,
        );
    }
}
