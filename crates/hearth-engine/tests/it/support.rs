//! Shared helpers: finding the sample model, and a plain sequential greedy decode straight on
//! llama.cpp that the scheduler's output is compared with.

use std::num::NonZeroU32;
use std::path::PathBuf;

use hearth_engine::raw::llama_cpp_2::context::params::LlamaContextParams;
use hearth_engine::raw::llama_cpp_2::llama_batch::LlamaBatch;
use hearth_engine::raw::llama_cpp_2::token::LlamaToken;
use hearth_engine::{
    Completion, EngineConfig, GenerationRequest, Model, ModelHandle, Prompt, SamplingParams,
    TokenId,
};

pub const SAMPLE_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// The sample model's path: `$HEARTH_MODEL_CACHE`, else `~/.cache/hearth/models`. A missing
/// file fails the test with the command that fetches it.
pub fn sample_model_path() -> PathBuf {
    let cache_dir = std::env::var_os("HEARTH_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .expect("HOME is not set and HEARTH_MODEL_CACHE is not either");
            PathBuf::from(home).join(".cache/hearth/models")
        });
    let path = cache_dir.join(SAMPLE_MODEL_FILE);
    assert!(
        path.is_file(),
        "the sample model is missing at {}; run `scripts/fetch-sample-models` (it downloads it into \
         $HEARTH_MODEL_CACHE or ~/.cache/hearth/models)",
        path.display()
    );
    path
}

pub fn load_model(config: &EngineConfig) -> Model {
    Model::load(sample_model_path(), config).expect("the sample model loads")
}

/// Threads per llama.cpp context in tests. Tests run in parallel on small machines; with one
/// thread each they share the cores without llama.cpp's worker threads spinning on each other.
pub const TEST_THREADS: usize = 1;

/// Starts a scheduler for the sample model with `config`, on `TEST_THREADS` threads.
pub fn start(config: EngineConfig) -> ModelHandle {
    let config = EngineConfig {
        threads: TEST_THREADS,
        ..config
    };
    ModelHandle::start(&load_model(&config)).expect("the scheduler starts")
}

pub fn greedy(prompt: &str, max_tokens: usize) -> GenerationRequest {
    GenerationRequest::new(Prompt::Text(prompt.to_owned()))
        .with_max_tokens(max_tokens)
        .with_sampling(SamplingParams::greedy())
}

/// Runs a greedy generation of `prompt` on `handle` to the end.
pub async fn complete_greedy(handle: &ModelHandle, prompt: &str, max_tokens: usize) -> Completion {
    handle
        .generate(greedy(prompt, max_tokens))
        .expect("accepted")
        .collect()
        .await
        .expect("completes")
}

/// The tokens of [`sequential_greedy`], without the steps around them.
pub fn sequential_greedy_tokens(
    model: &Model,
    prompt: &[TokenId],
    max_tokens: usize,
) -> Vec<TokenId> {
    sequential_greedy(model, prompt, max_tokens)
        .iter()
        .map(|step| step.token)
        .collect()
}

/// One step of the reference decode: the chosen token.
#[derive(Debug, Clone)]
pub struct ReferenceStep {
    pub token: TokenId,
}

/// Greedy decoding of one prompt alone, in a single-sequence context, with no scheduler.
/// Stops after `max_tokens` or at an end-of-generation token (which is not included).
pub fn sequential_greedy(
    model: &Model,
    prompt: &[TokenId],
    max_tokens: usize,
) -> Vec<ReferenceStep> {
    let llama = hearth_engine::raw::llama_model(model);
    let backend = hearth_engine::raw::backend().expect("backend");
    let n_ctx = u32::try_from(prompt.len() + max_tokens + 8).expect("small context");
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(1)
        .with_n_threads(TEST_THREADS as i32)
        .with_n_threads_batch(TEST_THREADS as i32);
    let mut context = llama.new_context(backend, params).expect("context");
    let mut batch = LlamaBatch::new(512, 1);
    let mut position = 0_i32;
    for (chunk_idx, chunk) in prompt.chunks(512).enumerate() {
        batch.clear();
        let is_last_chunk = (chunk_idx + 1) * 512 >= prompt.len();
        for (token_idx, &token) in chunk.iter().enumerate() {
            batch
                .add(
                    LlamaToken(token),
                    position,
                    &[0],
                    is_last_chunk && token_idx + 1 == chunk.len(),
                )
                .expect("batch space");
            position += 1;
        }
        context.decode(&mut batch).expect("prompt decodes");
    }
    let mut steps = Vec::new();
    let mut logits_row = batch.n_tokens() - 1;
    for _ in 0..max_tokens {
        let logits = context.get_logits_ith(logits_row);
        // Ties go to the lowest token id, as llama.cpp's greedy sampler does.
        let mut best = (0_usize, f32::NEG_INFINITY);
        for (token, &logit) in logits.iter().enumerate() {
            if logit > best.1 {
                best = (token, logit);
            }
        }
        let token = best.0 as TokenId;
        if model.is_end_of_generation(token) {
            break;
        }
        steps.push(ReferenceStep { token });
        batch.clear();
        batch
            .add(LlamaToken(token), position, &[0], true)
            .expect("batch space");
        position += 1;
        context.decode(&mut batch).expect("token decodes");
        logits_row = 0;
    }
    steps
}

/// Largest logit gap accepted between the scheduler's choice and the sequential decode's best
/// token at the same position. Batched kernels round differently from single-sequence ones, so
/// near-ties can flip; a token from another request's stream would trail by whole logits. On
/// an AVX-512 machine a request decoded alone, its steps several rows wide because of drafts,
/// measured a gap of 0.42 against the one-row reference ("List three colours.", token 6).
const NEAR_TIE_LOGIT_GAP: f32 = 0.5;

/// Checks that the scheduler's greedy tokens equal a sequential decode of the same prompt. Where
/// they differ, it replays the scheduler's own tokens through a single-sequence context and
/// checks that every one of them was the best or a near-tied choice there: a rounding
/// difference, not output mixed up between sequences.
pub fn assert_same_greedy_output(
    label: &str,
    model: &Model,
    prompt: &[TokenId],
    scheduled: &[TokenId],
    max_tokens: usize,
) {
    let reference = sequential_greedy_tokens(model, prompt, max_tokens);
    let Some(divergence) = scheduled.iter().zip(&reference).position(|(a, b)| a != b) else {
        assert_eq!(
            scheduled.len(),
            reference.len(),
            "{label}: same tokens but different lengths"
        );
        return;
    };
    let gaps = forced_logit_gaps(model, prompt, scheduled);
    let (worst_position, worst_gap) =
        gaps.iter()
            .copied()
            .enumerate()
            .fold((0, 0.0_f32), |worst, (position, gap)| {
                if gap > worst.1 {
                    (position, gap)
                } else {
                    worst
                }
            });
    assert!(
        worst_gap < NEAR_TIE_LOGIT_GAP,
        "{label}: the scheduler's token {worst_position} trails the sequential best by {worst_gap} logits \
         (first divergence at token {divergence}): that is not rounding, output was mixed up"
    );
    eprintln!(
        "{label}: diverged from the sequential decode at token {divergence} on a near-tie; \
         largest gap of the scheduler's tokens under sequential evaluation: {worst_gap:.4}"
    );
}

/// For each generated token: how far its logit trails the best logit when the prompt and the
/// generated tokens before it are decoded in a single-sequence context.
fn forced_logit_gaps(model: &Model, prompt: &[TokenId], generated: &[TokenId]) -> Vec<f32> {
    let llama = hearth_engine::raw::llama_model(model);
    let backend = hearth_engine::raw::backend().expect("backend");
    let all: Vec<TokenId> = prompt.iter().chain(generated).copied().collect();
    assert!(
        all.len() <= 512,
        "forced replay handles one batch of at most 512 tokens"
    );
    let n_ctx = u32::try_from(all.len() + 8).expect("small context");
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(1)
        .with_n_threads(TEST_THREADS as i32)
        .with_n_threads_batch(TEST_THREADS as i32);
    let mut context = llama.new_context(backend, params).expect("context");
    let mut batch = LlamaBatch::new(512, 1);
    for (position, &token) in all.iter().enumerate() {
        let wants_logits = position + 1 >= prompt.len() && position + 1 < all.len();
        batch
            .add(LlamaToken(token), position as i32, &[0], wants_logits)
            .expect("batch space");
    }
    context.decode(&mut batch).expect("replay decodes");
    generated
        .iter()
        .enumerate()
        .map(|(generated_idx, &token)| {
            let row = (prompt.len() - 1 + generated_idx) as i32;
            let logits = context.get_logits_ith(row);
            let best = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            best - logits[token as usize]
        })
        .collect()
}
