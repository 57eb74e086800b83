//! The scheduler against a plain sequential decode: same greedy output alone, and with many
//! concurrent requests sharing decode steps, no output reaching the wrong request.

use hearth_engine::{
    EngineConfig, FinishReason, GenerationEvent, GenerationRequest, Prompt, SamplingParams,
};

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

#[tokio::test]
async fn a_long_prompt_is_read_in_chunks_while_running_streams_keep_generating() {
    let prefill_chunk = 64;
    let handle = start(EngineConfig {
        n_parallel: 2,
        prefill_chunk,
        ..EngineConfig::default()
    });
    let mut running = handle
        .generate(greedy("1, 2, 3, 4, 5,", 1000))
        .expect("accepted");
    running.next().await.expect("an event").expect("no error");

    let filler = "The lighthouse keeper counted the ships that passed at dawn. ".repeat(80);
    let mut long_prompt = handle.model().tokenize(&filler, true);
    long_prompt.truncate(prefill_chunk * 10);
    let request = GenerationRequest::new(Prompt::Tokens(long_prompt))
        .with_max_tokens(1)
        .with_sampling(SamplingParams::greedy());
    let mut joining = handle.generate(request).expect("accepted");

    // Tokens the running stream received while the long prompt was being read.
    let mut tokens_while_reading = 0;
    loop {
        tokio::select! {
            biased;
            event = running.next() => {
                if let Some(Ok(GenerationEvent::Token { .. })) = event {
                    tokens_while_reading += 1;
                }
            }
            event = joining.next() => {
                match event.expect("an event").expect("no error") {
                    GenerationEvent::Token { .. } => break,
                    other => panic!("expected the first token, got {other:?}"),
                }
            }
        }
    }
    // Ten chunks take ten steps, each of which also advanced the running stream (give or take
    // the step in flight when the request arrived and the order of events within a step).
    assert!(
        tokens_while_reading >= 8,
        "the running stream got only {tokens_while_reading} tokens during 10 prompt chunks"
    );
}
