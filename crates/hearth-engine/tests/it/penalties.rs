//! Repeat, frequency and presence penalties and logit biases are applied by the engine to just
//! the tokens they concern; the output must be exactly what llama.cpp's own samplers give.

use std::num::NonZeroU32;

use hearth_engine::raw::llama_cpp_2::context::params::LlamaContextParams;
use hearth_engine::raw::llama_cpp_2::llama_batch::LlamaBatch;
use hearth_engine::raw::llama_cpp_2::sampling::LlamaSampler;
use hearth_engine::raw::llama_cpp_2::token::LlamaToken;
use hearth_engine::raw::llama_cpp_2::token::logit_bias::LlamaLogitBias;
use hearth_engine::{EngineConfig, GenerationRequest, Model, Prompt, SamplingParams, TokenId};

use crate::support::{TEST_THREADS, sequential_greedy_tokens, start};

const PROMPT: &str = "Repeat after me: the cat sat on the mat, the cat sat on the mat, the cat";
const MAX_TOKENS: usize = 40;

/// llama.cpp's own chain for `params` (bias, penalties, then greedy or top-k/temperature/dist),
/// run on a plain single-sequence context: the reference.
fn llama_cpp_reference(model: &Model, prompt: &[TokenId], params: &SamplingParams) -> Vec<TokenId> {
    let llama = hearth_engine::raw::llama_model(model);
    let n_vocab = llama.n_vocab();
    let context_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(512))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(1)
        .with_n_threads(TEST_THREADS as i32)
        .with_n_threads_batch(TEST_THREADS as i32);
    let mut context = llama
        .new_context(
            hearth_engine::raw::backend().expect("backend"),
            context_params,
        )
        .expect("context");
    let biases: Vec<LlamaLogitBias> = params
        .logit_bias
        .iter()
        .map(|&(token, bias)| LlamaLogitBias::new(LlamaToken(token), bias))
        .collect();
    let mut samplers = vec![
        LlamaSampler::logit_bias(n_vocab, &biases),
        LlamaSampler::penalties(
            n_vocab,
            params.repeat_last_n as i32,
            params.repeat_penalty,
            params.frequency_penalty,
            params.presence_penalty,
        ),
    ];
    if params.temperature <= 0.0 {
        samplers.push(LlamaSampler::greedy());
    } else {
        samplers.push(LlamaSampler::top_k(params.top_k as i32));
        samplers.push(LlamaSampler::temp(params.temperature));
        samplers.push(LlamaSampler::dist(params.seed.expect("a seed")));
    }
    let mut sampler = LlamaSampler::chain_simple(samplers);

    let mut batch = LlamaBatch::new(512, 1);
    for (position, &token) in prompt.iter().enumerate() {
        batch
            .add(
                LlamaToken(token),
                position as i32,
                &[0],
                position + 1 == prompt.len(),
            )
            .expect("batch space");
    }
    context.decode(&mut batch).expect("prompt decodes");
    let mut tokens = Vec::new();
    let mut row = batch.n_tokens() - 1;
    for position in prompt.len()..prompt.len() + MAX_TOKENS {
        let token = sampler.sample(&context, row);
        if model.is_end_of_generation(token.0) {
            break;
        }
        tokens.push(token.0);
        batch.clear();
        batch
            .add(token, position as i32, &[0], true)
            .expect("batch space");
        context.decode(&mut batch).expect("decodes");
        row = 0;
    }
    tokens
}

async fn engine_output(params: &SamplingParams) -> (Vec<TokenId>, Vec<TokenId>, Model) {
    let handle = start(EngineConfig {
        n_parallel: 1,
        ..EngineConfig::default()
    });
    let prompt = handle.model().tokenize(PROMPT, true);
    let completion = handle
        .generate(
            GenerationRequest::new(Prompt::Tokens(prompt.clone()))
                .with_max_tokens(MAX_TOKENS)
                .with_sampling(params.clone())
                // Token by token, as the reference decodes: a drafted pass's kernels round
                // differently, which can flip the near-ties penalties create (speculation.rs
                // checks drafted output with that tolerance).
                .with_speculation(false),
        )
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    (completion.tokens, prompt, handle.model().clone())
}

#[tokio::test]
async fn greedy_output_with_penalties_and_a_bias_is_llama_cpps_own() {
    let params = SamplingParams {
        repeat_penalty: 1.3,
        // A window shorter than the output, so tokens also leave it.
        repeat_last_n: 12,
        frequency_penalty: 0.4,
        presence_penalty: 0.2,
        logit_bias: vec![(1_000, 2.5), (236_743, -1.5)],
        ..SamplingParams::greedy()
    };
    let (tokens, prompt, model) = engine_output(&params).await;
    assert_eq!(tokens, llama_cpp_reference(&model, &prompt, &params));
    assert_ne!(
        tokens,
        sequential_greedy_tokens(&model, &prompt, MAX_TOKENS),
        "the penalties must change the output, or this test shows nothing"
    );
}

#[tokio::test]
async fn sampled_output_with_penalties_is_llama_cpps_own_for_the_same_seed() {
    let params = SamplingParams {
        temperature: 0.9,
        top_k: 40,
        seed: Some(7),
        repeat_penalty: 1.1,
        repeat_last_n: 64,
        presence_penalty: 0.5,
        ..SamplingParams::default()
    };
    let (tokens, prompt, model) = engine_output(&params).await;
    assert_eq!(tokens, llama_cpp_reference(&model, &prompt, &params));
}
