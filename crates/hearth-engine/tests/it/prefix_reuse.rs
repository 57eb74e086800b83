//! Prefix reuse: a request sharing a prompt prefix with an earlier one reuses that slot's KV
//! cache, decodes only the rest, and produces exactly what it would without reuse.

use hearth_engine::EngineConfig;

use crate::support::{complete_greedy, sequential_greedy_tokens, start};

const SHARED_PREFIX: &str = "You are a helpful assistant for a small bakery. The bakery opens at seven in the \
    morning and closes at six in the evening, every day except Monday. It sells sourdough bread, croissants, \
    rye loaves, cinnamon rolls and seasonal fruit tarts. Orders for cakes must be placed two days ahead. \
    The owner, Marta, has baked for thirty years and trained in Lyon. Parking is available behind the shop.\n\n";

#[tokio::test]
async fn a_shared_prefix_is_reused_and_gives_the_same_greedy_output() {
    // One slot, so the second request can only run where the first one left its cache.
    let handle = start(EngineConfig {
        n_parallel: 1,
        ..EngineConfig::default()
    });
    let first_prompt = format!("{SHARED_PREFIX}Question: When does the bakery open?\nAnswer:");
    let second_prompt = format!("{SHARED_PREFIX}Question: What does the bakery sell?\nAnswer:");

    let first = complete_greedy(&handle, &first_prompt, 12).await;
    assert_eq!(first.usage.cached_prompt_tokens, 0);

    let second = complete_greedy(&handle, &second_prompt, 12).await;
    let prefix_tokens = handle.model().tokenize(SHARED_PREFIX, true).len();
    assert!(
        second.usage.cached_prompt_tokens + 2 >= prefix_tokens,
        "expected about {prefix_tokens} reused tokens, got {}",
        second.usage.cached_prompt_tokens
    );
    assert!(second.usage.cached_prompt_tokens < second.usage.prompt_tokens);

    let second_tokens = handle.model().tokenize(&second_prompt, true);
    let reference = sequential_greedy_tokens(handle.model(), &second_tokens, 12);
    assert_eq!(second.tokens, reference, "reuse must not change the output");

    let stats = handle.stats();
    assert_eq!(stats.prefix_cache_hits, 1);
    assert_eq!(
        stats.prefix_cache_reused_tokens,
        second.usage.cached_prompt_tokens as u64
    );
}

#[tokio::test]
async fn a_fully_cached_prompt_still_decodes_its_last_token() {
    let handle = start(EngineConfig {
        n_parallel: 1,
        ..EngineConfig::default()
    });
    let prompt = format!("{SHARED_PREFIX}Question: Is the bakery open on Monday?\nAnswer:");
    let first = complete_greedy(&handle, &prompt, 8).await;
    let again = complete_greedy(&handle, &prompt, 8).await;
    assert_eq!(
        again.usage.cached_prompt_tokens,
        again.usage.prompt_tokens - 1
    );
    assert_eq!(again.tokens, first.tokens);
}

#[tokio::test]
async fn a_prefix_whose_sliding_window_was_dropped_is_read_again() {
    // Gemma 3's sliding-window layers keep the last 512 positions plus one batch (768 cells at
    // n_batch 64). A first prompt far longer than that pushes the shared prefix's entries out
    // of those layers, so reusing the prefix would attend to nothing: the prompt must be read
    // again, and the output must be what it is without any cache.
    let handle = start(EngineConfig {
        n_parallel: 1,
        n_batch: 64,
        prefill_chunk: 64,
        ..EngineConfig::default()
    });
    let window = handle.model().info().sliding_window;
    assert_eq!(window, Some(512), "the sample model's sliding window");
    let filler =
        "The ovens are cleaned every night and the flour is delivered on Tuesdays. ".repeat(70);
    let first_prompt = format!("{SHARED_PREFIX}{filler}Question: Who owns the bakery?\nAnswer:");
    let first_tokens = handle.model().tokenize(&first_prompt, true).len();
    assert!(
        first_tokens > 1000,
        "the first prompt is only {first_tokens} tokens"
    );
    complete_greedy(&handle, &first_prompt, 1).await;

    let second_prompt = format!("{SHARED_PREFIX}Question: Where can I park?\nAnswer:");
    let second = complete_greedy(&handle, &second_prompt, 12).await;
    assert_eq!(
        second.usage.cached_prompt_tokens, 0,
        "nothing reusable was reused"
    );
    assert_eq!(handle.stats().prefix_cache_window_misses, 1);

    // "Uncached" is a scheduler of the same settings that never saw the first prompt. (A raw
    // context of another shape is no reference here: with AVX-512 kernels its logits differ in
    // the last bits, and this prompt's second token is a near tie, 0.017 apart in logprob.)
    drop(handle);
    let fresh = start(EngineConfig {
        n_parallel: 1,
        n_batch: 64,
        prefill_chunk: 64,
        ..EngineConfig::default()
    });
    let reference = complete_greedy(&fresh, &second_prompt, 12).await;
    assert_eq!(
        second.tokens, reference.tokens,
        "the output is the uncached one"
    );
}
