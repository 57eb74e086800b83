//! Raw llama.cpp versus the Hearth scheduler on the same model and machine, reported as ratios.
//!
//! Raw runs drive llama-cpp-2 directly: one context, hand-built batches, the greedy sampler.
//! Scheduler runs go through `ModelHandle::generate` like the server does. Run in release:
//!
//! ```text
//! cargo run --release --example raw_bench -p hearth-engine [-- [MODEL.gguf] [--rounds N] [--json] [--kv-cache-type f16|q8_0|q4_0]]
//! ```
//!
//! The model defaults to the sample model in `$HEARTH_MODEL_CACHE` or `~/.cache/hearth/models`.
//! `--json` prints one JSON object instead of the table: the figures, and the prompts they were
//! measured with, so that `cargo xtask bench inference` can send the same prompts to the server
//! and compare against these raw figures.
//!
//! Last run (2-core x86 dev box, quiet, Gemma 3 270M Q4_K_M, 2 threads, llama-cpp-2 0.1.160):
//!
//! ```text
//! measurement                                  raw    scheduler    ratio  target
//! single stream decode (tok/s)                75.9         75.7    0.998  >= 0.97
//! 8 streams decode, aggregate (tok/s)        169.2        168.4    0.995  >= 0.95
//! prompt processing, 512 tokens (tok/s)      534.8        525.6    0.983
//! TTFT 1000-token prefix: cold vs reused (ms) 2108.1      42.3    0.020  <= 0.15
//! ```
//!
//! A later row, "one request, max_tokens=1", times a request that repeats a prompt: both sides
//! keep the prompt but its last token in the KV cache, decode that token and sample once. The
//! difference is the scheduler's cost per request (queueing, thread hand-off, events).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hearth_engine::raw::llama_cpp_2::context::LlamaContext;
use hearth_engine::raw::llama_cpp_2::context::params::LlamaContextParams;
use hearth_engine::raw::llama_cpp_2::llama_batch::LlamaBatch;
use hearth_engine::raw::llama_cpp_2::sampling::LlamaSampler;
use hearth_engine::raw::llama_cpp_2::token::LlamaToken;
use hearth_engine::{
    EngineConfig, EngineError, GenerationEvent, GenerationRequest, KvCacheType, Model, ModelHandle,
    Prompt, SamplingParams,
};

const THREADS: usize = 2;
const DECODE_TOKENS: usize = 64;
const PARALLEL: usize = 8;
const PROMPT_TOKENS: usize = 512;
const SHARED_PREFIX_TOKENS: usize = 1000;
const ROUNDS: usize = 3;
/// Requests per round for the one-token request latency; the median is kept.
const LATENCY_REQUESTS: usize = 60;

const SINGLE_STREAM_PROMPT: &str = "Once upon a time, in a small village by the sea,";
const LATENCY_PROMPT: &str = "The weather report for the harbour this morning says";

fn batch_prompt(index: usize) -> String {
    format!("Story number {index}: once upon a time,")
}

struct Best {
    raw_single: f64,
    scheduler_single: f64,
    raw_batch: f64,
    scheduler_batch: f64,
    raw_prompt: f64,
    scheduler_prompt: f64,
    ttft_cold: Duration,
    ttft_warm: Duration,
    raw_request: Duration,
    scheduler_request: Duration,
}

impl Default for Best {
    fn default() -> Self {
        Self {
            raw_single: 0.0,
            scheduler_single: 0.0,
            raw_batch: 0.0,
            scheduler_batch: 0.0,
            raw_prompt: 0.0,
            scheduler_prompt: 0.0,
            ttft_cold: Duration::MAX,
            ttft_warm: Duration::MAX,
            raw_request: Duration::MAX,
            scheduler_request: Duration::MAX,
        }
    }
}

struct Options {
    model: PathBuf,
    rounds: usize,
    json: bool,
}

/// The KV cache type of every context, raw and scheduled: the server's default (`q8_0`)
/// unless `--kv-cache-type` says otherwise, so both sides read the same cache.
static KV_CACHE_TYPE: std::sync::OnceLock<KvCacheType> = std::sync::OnceLock::new();

fn kv_cache_type() -> KvCacheType {
    *KV_CACHE_TYPE.get_or_init(|| KvCacheType::Q8_0)
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        model: default_model_path(),
        rounds: ROUNDS,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--rounds" => {
                options.rounds = args
                    .next()
                    .and_then(|text| text.parse().ok())
                    .filter(|&rounds| rounds > 0)
                    .ok_or("--rounds needs a positive number")?;
            }
            "--kv-cache-type" => {
                let kind = args
                    .next()
                    .and_then(|name| KvCacheType::from_name(&name))
                    .ok_or("--kv-cache-type needs one of f16, q8_0, q4_0")?;
                let _ = KV_CACHE_TYPE.set(kind);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path => options.model = PathBuf::from(path),
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Options {
        model: path,
        rounds,
        json,
    } = options()?;
    let config = EngineConfig {
        n_parallel: PARALLEL,
        n_ctx_per_seq: 2048,
        n_batch: 512,
        prefill_chunk: 512,
        threads: THREADS,
        queue_capacity: 64,
        kv_cache_type: kv_cache_type(),
        ..EngineConfig::default()
    };
    let model = Model::load(&path, &config)?;
    // In JSON mode stdout carries the JSON object alone.
    let description = format!(
        "model: {} ({}, {}), {THREADS} threads, {DECODE_TOKENS} tokens per stream",
        path.display(),
        model.info().architecture,
        model.info().quantization
    );
    if json {
        eprintln!("{description}");
    } else {
        println!("{description}");
    }

    let short_prompt = model.tokenize(SINGLE_STREAM_PROMPT, true);
    let long_prompt = filler_tokens(&model, PROMPT_TOKENS, 0);
    let prompts: Vec<Vec<i32>> = (0..PARALLEL)
        .map(|index| model.tokenize(&batch_prompt(index), true))
        .collect();
    let latency_prompt = model.tokenize(LATENCY_PROMPT, true);
    let handle = ModelHandle::start(&model)?;

    // Warm the caches and the thread pools once so the first measurement is not penalised.
    raw_single_stream(&model, &short_prompt, 16)?;
    run_scheduler(&handle, std::slice::from_ref(&short_prompt), 16)?;

    // Other work on the machine only ever slows a run down, so each figure is the best of a few
    // rounds, with raw and scheduler runs interleaved so that both see the same conditions.
    let mut best = Best::default();
    for round in 0..rounds {
        best.raw_single =
            best.raw_single
                .max(raw_single_stream(&model, &short_prompt, DECODE_TOKENS)?);
        best.scheduler_single = best.scheduler_single.max(scheduler_throughput(
            &handle,
            std::slice::from_ref(&short_prompt),
        )?);
        best.raw_batch =
            best.raw_batch
                .max(raw_batched(&model, &short_prompt, PARALLEL, DECODE_TOKENS)?);
        best.scheduler_batch = best
            .scheduler_batch
            .max(scheduler_throughput(&handle, &prompts)?);
        best.raw_prompt = best
            .raw_prompt
            .max(raw_prompt_throughput(&model, &long_prompt)?);
        best.scheduler_prompt =
            best.scheduler_prompt
                .max(scheduler_prompt_throughput(&handle, &long_prompt, round)?);
        let (cold, warm) = shared_prefix_ttft(&model, &handle, round)?;
        best.ttft_cold = best.ttft_cold.min(cold);
        best.ttft_warm = best.ttft_warm.min(warm);
        best.raw_request = best
            .raw_request
            .min(raw_request_latency(&model, &latency_prompt)?);
        best.scheduler_request = best
            .scheduler_request
            .min(scheduler_request_latency(&handle, &latency_prompt)?);
        eprintln!("round {} of {rounds} done", round + 1);
    }
    let Best {
        raw_single,
        scheduler_single,
        raw_batch,
        scheduler_batch,
        raw_prompt,
        scheduler_prompt,
        ttft_cold,
        ttft_warm,
        raw_request,
        scheduler_request,
    } = best;
    let stats = handle.stats();

    let milliseconds = |duration: Duration| duration.as_secs_f64() * 1e3;
    if json {
        let report = serde_json::json!({
            "model": path.display().to_string(),
            "threads": THREADS,
            "rounds": rounds,
            "decode_tokens": DECODE_TOKENS,
            "parallel": PARALLEL,
            "single_stream_prompt": SINGLE_STREAM_PROMPT,
            "batch_prompts": (0..PARALLEL).map(batch_prompt).collect::<Vec<_>>(),
            "latency_prompt": LATENCY_PROMPT,
            "raw_single_stream_tokens_per_second": raw_single,
            "scheduler_single_stream_tokens_per_second": scheduler_single,
            "raw_batch_tokens_per_second": raw_batch,
            "scheduler_batch_tokens_per_second": scheduler_batch,
            "raw_prompt_tokens_per_second": raw_prompt,
            "scheduler_prompt_tokens_per_second": scheduler_prompt,
            "ttft_cold_ms": milliseconds(ttft_cold),
            "ttft_reused_ms": milliseconds(ttft_warm),
            "raw_request_p50_ms": milliseconds(raw_request),
            "scheduler_request_p50_ms": milliseconds(scheduler_request),
        });
        println!("{report}");
        return Ok(());
    }

    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>8}  target",
        "measurement", "raw", "scheduler", "ratio"
    );
    let row = |name: &str, raw: f64, scheduled: f64, target: &str| {
        println!(
            "{name:<44} {raw:>12.1} {scheduled:>12.1} {:>8.3}  {target}",
            scheduled / raw
        );
    };
    row(
        "single stream decode (tok/s)",
        raw_single,
        scheduler_single,
        ">= 0.97",
    );
    row(
        &format!("{PARALLEL} streams decode, aggregate (tok/s)"),
        raw_batch,
        scheduler_batch,
        ">= 0.95",
    );
    row(
        &format!("prompt processing, {PROMPT_TOKENS} tokens (tok/s)"),
        raw_prompt,
        scheduler_prompt,
        "",
    );
    println!(
        "{:<44} {:>12.1} {:>12.1} {:>8.3}  <= 0.15",
        format!("TTFT {SHARED_PREFIX_TOKENS}-token prefix: cold vs reused (ms)"),
        ttft_cold.as_secs_f64() * 1e3,
        ttft_warm.as_secs_f64() * 1e3,
        ttft_warm.as_secs_f64() / ttft_cold.as_secs_f64()
    );
    println!(
        "{:<44} {:>12.2} {:>12.2} {:>8.3}",
        "one request, max_tokens=1, p50 (ms)",
        milliseconds(raw_request),
        milliseconds(scheduler_request),
        scheduler_request.as_secs_f64() / raw_request.as_secs_f64()
    );
    println!(
        "\nscheduler: {} steps, {} tokens decoded ({:.1} per step), {} prefix hits reusing {} tokens",
        stats.decode_steps,
        stats.total_tokens_decoded,
        stats.total_tokens_decoded as f64 / stats.decode_steps.max(1) as f64,
        stats.prefix_cache_hits,
        stats.prefix_cache_reused_tokens
    );
    Ok(())
}

fn default_model_path() -> PathBuf {
    let cache_dir = std::env::var_os("HEARTH_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth/models")
        });
    cache_dir.join("gemma-3-270m-q4_k_m.gguf")
}

/// Exactly `count` tokens of varied text (BOS first); each `variant` gives different text.
fn filler_tokens(model: &Model, count: usize, variant: usize) -> Vec<i32> {
    let mut text = format!("Logbook {variant}. ");
    let mut tokens = Vec::new();
    let mut sentence = 0;
    while tokens.len() < count {
        text.push_str(&format!(
            "Sentence {sentence} describes a lighthouse keeper who counts {} ships at dawn. ",
            sentence * 7 + 3
        ));
        sentence += 1;
        tokens = model.tokenize(&text, true);
    }
    tokens.truncate(count);
    tokens
}

fn raw_context_params(
    n_seq: usize,
    n_ctx_per_seq: usize,
) -> Result<LlamaContextParams, Box<dyn std::error::Error>> {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(u32::try_from(n_seq * n_ctx_per_seq)?))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(u32::try_from(n_seq)?)
        .with_n_threads(THREADS as i32)
        .with_n_threads_batch(THREADS as i32)
        .with_kv_unified(false);
    Ok(hearth_engine::raw::with_kv_cache_type(
        params,
        kv_cache_type(),
    ))
}

fn raw_context(
    model: &Model,
    n_seq: usize,
    n_ctx_per_seq: usize,
) -> Result<LlamaContext<'_>, Box<dyn std::error::Error>> {
    Ok(hearth_engine::raw::llama_model(model).new_context(
        hearth_engine::raw::backend()?,
        raw_context_params(n_seq, n_ctx_per_seq)?,
    )?)
}

/// Decode tok/s of one sequence: prompt first (not timed), then `n_tokens` greedy steps.
fn raw_single_stream(
    model: &Model,
    prompt: &[i32],
    n_tokens: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut context = raw_context(model, 1, 2048)?;
    let mut batch = LlamaBatch::new(512, 1);
    for (position, &token) in prompt.iter().enumerate() {
        batch.add(
            LlamaToken(token),
            position as i32,
            &[0],
            position + 1 == prompt.len(),
        )?;
    }
    context.decode(&mut batch)?;
    let mut sampler = LlamaSampler::greedy();
    let mut row = batch.n_tokens() - 1;
    let started = Instant::now();
    for position in (prompt.len() as i32..).take(n_tokens) {
        let token = sampler.sample(&context, row);
        batch.clear();
        batch.add(token, position, &[0], true)?;
        context.decode(&mut batch)?;
        row = 0;
    }
    Ok(n_tokens as f64 / started.elapsed().as_secs_f64())
}

/// Aggregate decode tok/s of `n_seq` sequences advanced together, one token each per batch.
fn raw_batched(
    model: &Model,
    prompt: &[i32],
    n_seq: usize,
    n_tokens: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut context = raw_context(model, n_seq, 2048)?;
    let mut batch = LlamaBatch::new(512, 1);
    let mut samplers: Vec<LlamaSampler> = (0..n_seq).map(|_| LlamaSampler::greedy()).collect();
    let mut rows = Vec::new();
    for seq in 0..n_seq {
        for (position, &token) in prompt.iter().enumerate() {
            batch.add(
                LlamaToken(token),
                position as i32,
                &[seq as i32],
                position + 1 == prompt.len(),
            )?;
        }
        rows.push(batch.n_tokens() - 1);
    }
    context.decode(&mut batch)?;
    let started = Instant::now();
    for position in (prompt.len() as i32..).take(n_tokens) {
        let tokens: Vec<LlamaToken> = samplers
            .iter_mut()
            .zip(&rows)
            .map(|(sampler, &row)| sampler.sample(&context, row))
            .collect();
        batch.clear();
        rows.clear();
        for (seq, token) in tokens.into_iter().enumerate() {
            batch.add(token, position, &[seq as i32], true)?;
            rows.push(batch.n_tokens() - 1);
        }
        context.decode(&mut batch)?;
    }
    Ok((n_tokens * n_seq) as f64 / started.elapsed().as_secs_f64())
}

/// Prompt tok/s: the whole prompt in one batch, logits only for its last token.
fn raw_prompt_throughput(model: &Model, prompt: &[i32]) -> Result<f64, Box<dyn std::error::Error>> {
    let mut context = raw_context(model, 1, 2048)?;
    let mut batch = LlamaBatch::new(512, 1);
    for (position, &token) in prompt.iter().enumerate() {
        batch.add(
            LlamaToken(token),
            position as i32,
            &[0],
            position + 1 == prompt.len(),
        )?;
    }
    let started = Instant::now();
    context.decode(&mut batch)?;
    Ok(prompt.len() as f64 / started.elapsed().as_secs_f64())
}

struct ScheduledRun {
    first_token_at: Vec<Instant>,
    done_at: Vec<Instant>,
    completion_tokens: Vec<usize>,
    time_to_first_token: Vec<Duration>,
}

fn run_scheduler(
    handle: &ModelHandle,
    prompts: &[Vec<i32>],
    max_tokens: usize,
) -> Result<ScheduledRun, EngineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| EngineError::InvalidRequest(format!("tokio runtime: {error}")))?;
    runtime.block_on(async {
        let mut streams = Vec::new();
        for prompt in prompts {
            let request = GenerationRequest::new(Prompt::Tokens(prompt.clone()))
                .with_max_tokens(max_tokens)
                .with_sampling(SamplingParams::greedy());
            streams.push(handle.generate(request)?);
        }
        let mut run = ScheduledRun {
            first_token_at: Vec::new(),
            done_at: Vec::new(),
            completion_tokens: Vec::new(),
            time_to_first_token: Vec::new(),
        };
        // Streams are drained concurrently so no stream's consumer lags behind the scheduler.
        let mut tasks = Vec::new();
        for mut stream in streams {
            tasks.push(tokio::spawn(async move {
                let mut first_token_at = None;
                while let Some(event) = stream.next().await {
                    match event? {
                        GenerationEvent::Token { .. } => {
                            first_token_at.get_or_insert_with(Instant::now);
                        }
                        GenerationEvent::Text { .. } => {}
                        GenerationEvent::Done { usage, timings, .. } => {
                            return Ok((
                                first_token_at.unwrap_or_else(Instant::now),
                                Instant::now(),
                                usage,
                                timings,
                            ));
                        }
                    }
                }
                Err(EngineError::SchedulerStopped)
            }));
        }
        for task in tasks {
            let (first, done, usage, timings) = task
                .await
                .map_err(|error| EngineError::InvalidRequest(error.to_string()))??;
            run.first_token_at.push(first);
            run.done_at.push(done);
            run.completion_tokens.push(usage.completion_tokens);
            run.time_to_first_token.push(timings.time_to_first_token);
        }
        Ok(run)
    })
}

/// Aggregate decode tok/s through the scheduler: tokens after each stream's first, over the
/// time from the last first token to the last completion (all streams decoding together).
fn scheduler_throughput(handle: &ModelHandle, prompts: &[Vec<i32>]) -> Result<f64, EngineError> {
    let run = run_scheduler(handle, prompts, DECODE_TOKENS + 1)?;
    let start = run
        .first_token_at
        .iter()
        .max()
        .copied()
        .unwrap_or_else(Instant::now);
    let end = run
        .done_at
        .iter()
        .max()
        .copied()
        .unwrap_or_else(Instant::now);
    let tokens: usize = run.completion_tokens.iter().map(|count| count - 1).sum();
    Ok(tokens as f64 / end.saturating_duration_since(start).as_secs_f64())
}

/// Prompt tok/s through the scheduler: prompt tokens over the time to the first token.
fn scheduler_prompt_throughput(
    handle: &ModelHandle,
    prompt: &[i32],
    round: usize,
) -> Result<f64, EngineError> {
    // A different second token each round defeats prefix reuse.
    let mut prompt = prompt.to_vec();
    prompt[1] = 1000 + round as i32;
    let run = run_scheduler(handle, std::slice::from_ref(&prompt), 1)?;
    Ok(prompt.len() as f64 / run.time_to_first_token[0].as_secs_f64())
}

/// Time to first token of a request whose 1,000-token prefix is new, then of one sharing it.
fn shared_prefix_ttft(
    model: &Model,
    handle: &ModelHandle,
    round: usize,
) -> Result<(Duration, Duration), EngineError> {
    let prefix = filler_tokens(model, SHARED_PREFIX_TOKENS, 100 + round);
    let question = |text: &str| {
        let mut tokens = prefix.clone();
        tokens.extend(model.tokenize(text, false));
        tokens
    };
    let cold = run_scheduler(
        handle,
        &[question(
            " Question: how many ships were counted in sentence 3?",
        )],
        1,
    )?;
    let warm = run_scheduler(
        handle,
        &[question(" Question: what does the keeper do at dawn?")],
        1,
    )?;
    Ok((cold.time_to_first_token[0], warm.time_to_first_token[0]))
}

/// Median time of a request repeating `prompt` with max_tokens=1, done by hand the way the
/// scheduler does it: the prompt but its last token stays cached, the last token is decoded
/// again for its logits, and one token is sampled (and never decoded).
fn raw_request_latency(
    model: &Model,
    prompt: &[i32],
) -> Result<Duration, Box<dyn std::error::Error>> {
    // Shaped like the scheduler's context (all its sequences, full-size sliding-window cache),
    // so that the two differ only in what the scheduler does around the decode.
    let params = raw_context_params(PARALLEL, 2048)?.with_swa_full(true);
    let mut context = hearth_engine::raw::llama_model(model)
        .new_context(hearth_engine::raw::backend()?, params)?;
    let mut batch = LlamaBatch::new(512, 1);
    let (&last, cached) = prompt.split_last().ok_or("empty prompt")?;
    for (position, &token) in cached.iter().enumerate() {
        batch.add(LlamaToken(token), position as i32, &[0], false)?;
    }
    context.decode(&mut batch)?;
    let last_position = u32::try_from(cached.len())?;
    let mut sampler = LlamaSampler::greedy();
    let mut latencies = Vec::with_capacity(LATENCY_REQUESTS);
    for _ in 0..LATENCY_REQUESTS + 2 {
        let started = Instant::now();
        context.kv_cache_seq_rm(0, Some(last_position), None)?;
        batch.clear();
        batch.add(LlamaToken(last), last_position as i32, &[0], true)?;
        context.decode(&mut batch)?;
        // The token is what a request with max_tokens=1 would answer; only its cost matters here.
        let _token = sampler.sample(&context, 0);
        latencies.push(started.elapsed());
    }
    // The first two warm the caches.
    Ok(median(&mut latencies[2..]))
}

/// Median time from `generate` to the `Done` event of a request repeating `prompt` with
/// max_tokens=1: the scheduler reuses all but the prompt's last token.
fn scheduler_request_latency(
    handle: &ModelHandle,
    prompt: &[i32],
) -> Result<Duration, EngineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| EngineError::InvalidRequest(format!("tokio runtime: {error}")))?;
    runtime.block_on(async {
        let mut latencies = Vec::with_capacity(LATENCY_REQUESTS);
        for _ in 0..LATENCY_REQUESTS + 2 {
            let started = Instant::now();
            let request = GenerationRequest::new(Prompt::Tokens(prompt.to_vec()))
                .with_max_tokens(1)
                .with_sampling(SamplingParams::greedy());
            let mut stream = handle.generate(request)?;
            while let Some(event) = stream.next().await {
                if let GenerationEvent::Done { .. } = event? {
                    break;
                }
            }
            latencies.push(started.elapsed());
        }
        Ok(median(&mut latencies[2..]))
    })
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}
