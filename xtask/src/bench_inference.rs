//! `cargo xtask bench inference`: the release binary serving the sample models over HTTP,
//! measured in the same run against llama.cpp used directly through the same binding (the
//! engine's `raw_bench` example), the raw embedding model (the `embed_bench` example), and
//! llama.cpp's own `llama-server` as the peer, built natively from the llama.cpp that
//! llama-cpp-python's source distribution vendors (`peer.rs`). Prints the CPU it ran on and a
//! table of ratios against the targets, and writes both to `<target dir>/bench/inference.json`
//! and `inference.md`.
//!
//! Hearth and llama-server serve the same GGUF with the same threads, slots and context per
//! slot, and are driven by the same client: a concurrency sweep (N concurrent streamed chat
//! requests with distinct short prompts, `ignore_eos`, for N = 1, 4, 8: aggregate tokens per
//! second and the median time to first token) and a retrieval-style request (a long passage
//! and a question answered by quoting it: decode rate, Hearth with and without speculation).
//!
//! Each figure is the best of a few rounds, and every round measures every contender in turn
//! (the raw examples run as subprocesses while the servers sit idle; the two servers take turns,
//! the one that goes first swapping every round), so that other work on the machine slows them
//! all alike. Rates come from streamed responses, from the arrival time of each chunk that
//! carries text (one per token): the sweep's aggregate rate counts from sending, time to first
//! token included, as a client waits for it; the decode rates count from the first token.
//!
//! `--peer-only` measures llama-server alone (building it if needed) without building or
//! starting Hearth, and writes no results: a check of the peer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::http::{Connection, SseData};
use crate::peer;
use crate::process::{
    Server, cpu_model_name, local_address, serve_hearth, status_kib, target_dir, wait_until_ready,
};

const CHAT_MODEL: &str = "gemma3:270m";
const EMBEDDING_MODEL: &str = "all-minilm:l6-v2";
const CHAT_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const EMBEDDING_DIR: &str = "all-minilm-l6-v2";
/// The prompt format Hearth uses for Gemma when the GGUF has none (the sample has none), as
/// Jinja for llama-server: `<start_of_turn>user\n{content}<end_of_turn>\n` per message, then
/// `<start_of_turn>model\n`. (The benchmark sends no system messages, which Hearth folds into
/// the first user turn.)
const GEMMA_CHAT_TEMPLATE: &str = concat!(
    r#"{%- for message in messages -%}"#,
    r#"{{ "<start_of_turn>" + ("model" if message.role == "assistant" else "user") + "\n""#,
    r#" + (message.content | trim) + "<end_of_turn>\n" }}"#,
    r#"{%- endfor -%}"#,
    r#"{%- if add_generation_prompt -%}{{ "<start_of_turn>model\n" }}{%- endif -%}"#,
);
/// Inference threads everywhere: Hearth, the raw examples (fixed there) and the peer.
const THREADS: usize = 2;
/// Concurrent streams; Hearth and llama-server get as many slots, as the raw batch has
/// sequences.
const PARALLEL: usize = 8;
const CONTEXT_PER_SEQUENCE: usize = 2048;
/// Concurrent chat requests in each step of the sweep.
const SWEEP_STREAMS: [usize; 3] = [1, 4, 8];
/// Batches of concurrent requests per step and round; the step's rate is its best batch's.
const SWEEP_BATCHES: usize = 3;
/// Tokens each request of the sweep generates (`ignore_eos`, so every one runs to the limit).
const SWEEP_TOKENS: usize = 128;
/// Token limit of the retrieval-style answer. The sample model (a base model) answers by
/// copying the passage from its start, so the answer runs to the limit.
const RAG_TOKENS: usize = 160;
/// Concurrent embedding callers, each sending one text per request.
const EMBEDDING_CALLERS: usize = 32;
/// Sentences of the shared prefix: about 1,000 tokens of Gemma 3's tokenizer (the exact count
/// the server reports is written to the results).
const PREFIX_SENTENCES: usize = 55;
/// Tokens of the json_schema comparison, the first excluded from the rate.
const SCHEMA_TOKENS: usize = 65;
/// The flags of /proc/cpuinfo that decide which llama.cpp kernels can run, in this order.
const CPU_FLAGS: [&str; 16] = [
    "sse4_2",
    "avx",
    "f16c",
    "fma",
    "avx2",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512vbmi",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "amx_fp16",
];
/// How to read the table's ratio column.
const LEGEND: &str = "\nratio is hearth / baseline; for the overhead row, Hearth's overhead in ms \
                      (wall time minus the engine time the server reports); for RSS, MiB.\n";

struct Options {
    quick: bool,
    skip_peer: bool,
    peer_only: bool,
    rounds: usize,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            quick: false,
            skip_peer: false,
            peer_only: false,
            rounds: 0,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--skip-peer" => options.skip_peer = true,
                "--peer-only" => options.peer_only = true,
                "--rounds" => {
                    options.rounds = args
                        .next()
                        .and_then(|text| text.parse().ok())
                        .filter(|&rounds| rounds > 0)
                        .context("--rounds needs a positive number")?;
                }
                other => bail!("unknown option {other:?}\n{}", crate::USAGE),
            }
        }
        if options.skip_peer && options.peer_only {
            bail!("--skip-peer and --peer-only leave nothing to measure");
        }
        if options.rounds == 0 {
            // This machine is shared: five rounds give each contender a fair chance at a quiet one.
            options.rounds = if options.quick { 1 } else { 5 };
        }
        Ok(options)
    }

    /// Requests timed for the per-request overhead, per round.
    fn latency_requests(&self) -> usize {
        if self.quick { 10 } else { 60 }
    }

    /// Seconds each embedding measurement runs, raw and over HTTP alike.
    fn embedding_seconds(&self) -> f64 {
        if self.quick { 0.5 } else { 2.0 }
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    let cpu = Cpu::read();
    eprintln!("bench: CPU {}; flags: {}", cpu.model, cpu.flags.join(" "));
    let models = model_cache()?;
    let out_dir = target_dir().join("bench");
    std::fs::create_dir_all(&out_dir)?;
    if options.peer_only {
        return measure_peer_only(&models, &out_dir, &options);
    }
    let binaries = build()?;
    let llama_server = if options.skip_peer {
        None
    } else {
        Some(peer::ensure_llama_server()?)
    };

    eprintln!("bench: starting hearth");
    let hearth = start_hearth(&binaries.hearth, &models, &out_dir)?;
    let hearth_cpu_features = hearth_cpu_features(&hearth.address)?;
    let peer = match &llama_server {
        Some(binary) => Some(start_llama_server(binary, &models, &out_dir)?),
        None => None,
    };
    warm_up(&hearth.address)?;
    if let Some(peer) = &peer {
        warm_up(&peer.server.address)?;
    }

    let mut best = Best::default();
    for round in 0..options.rounds {
        eprintln!(
            "bench: round {} of {}: raw engine",
            round + 1,
            options.rounds
        );
        let raw = run_json(Command::new(&binaries.raw_bench).args([
            models.join(CHAT_FILE).to_str().unwrap_or_default(),
            "--rounds",
            "1",
            "--json",
        ]))?;
        best.offer_raw(&raw)?;
        eprintln!("bench: round {}: raw embeddings", round + 1);
        let embed = run_json(Command::new(&binaries.embed_bench).args([
            models.join(EMBEDDING_DIR).to_str().unwrap_or_default(),
            "--rounds",
            "1",
            "--workload",
            "short",
            "--seconds",
            &options.embedding_seconds().to_string(),
            "--json",
        ]))?;
        let texts = best.offer_raw_embeddings(&embed)?;

        eprintln!("bench: round {}: hearth", round + 1);
        measure_hearth(&hearth.address, &raw, &texts, round, &options, &mut best)?;

        // The comparison proper: the same client against both servers, taking turns.
        let hearth_turn = |best: &mut Best| -> anyhow::Result<()> {
            eprintln!("bench: round {}: hearth, sweep and RAG", round + 1);
            best.hearth.offer(&measure_server(&hearth.address, round)?);
            best.hearth_rag_without_speculation
                .offer(&rag_answer(&hearth.address, Speculation::Off)?);
            Ok(())
        };
        match &peer {
            Some(peer) => {
                let peer_turn = |best: &mut Best| -> anyhow::Result<()> {
                    eprintln!("bench: round {}: llama-server, sweep and RAG", round + 1);
                    best.llama_server
                        .offer(&measure_server(&peer.server.address, round)?);
                    Ok(())
                };
                if round % 2 == 0 {
                    hearth_turn(&mut best)?;
                    peer_turn(&mut best)?;
                } else {
                    peer_turn(&mut best)?;
                    hearth_turn(&mut best)?;
                }
            }
            None => hearth_turn(&mut best)?,
        }
    }
    let peak_rss_mib = status_kib(hearth.child.id(), "VmHWM")
        .map(|kib| kib as f64 / 1024.0)
        .context("cannot read the server's VmHWM from /proc")?;
    // What the resident memory is made of at the end: mapped model files versus allocations
    // (KV cache, compute buffers, the embedding model's tensors).
    let rss_split = format!(
        "hearth now: {:.0} MiB file-backed (model weights), {:.0} MiB anonymous; \
         llama-server has no embedding model",
        status_kib(hearth.child.id(), "RssFile").unwrap_or(0) as f64 / 1024.0,
        status_kib(hearth.child.id(), "RssAnon").unwrap_or(0) as f64 / 1024.0
    );
    let peer_peak_rss_mib = peer
        .as_ref()
        .and_then(|peer| status_kib(peer.server.child.id(), "VmHWM"))
        .map(|kib| kib as f64 / 1024.0);
    let peer_details = peer.as_ref().map(|peer| {
        json!({
            "llama_cpp_python_sdist": peer::LLAMA_CPP_PYTHON_VERSION,
            "llama_cpp_commit": peer::llama_cpp_commit(),
            "command": peer.command_line,
        })
    });
    drop(peer);
    drop(hearth);

    let report = Report::new(
        &best,
        &options,
        (peak_rss_mib, rss_split),
        peer_peak_rss_mib,
        json!({
            "cpu_model": cpu.model,
            "cpu_flags": cpu.flags,
            "hearth_cpu_features": hearth_cpu_features,
            "peer": peer_details,
        }),
    );
    let table = report.table();
    println!("{table}");
    let json_path = out_dir.join("inference.json");
    let markdown_path = out_dir.join("inference.md");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report.json())?)?;
    std::fs::write(&markdown_path, report.markdown())?;
    println!(
        "results written to {} and {}",
        json_path.display(),
        markdown_path.display()
    );
    Ok(())
}

/// `--peer-only`: the sweep and the retrieval-style request against llama-server alone, printed.
fn measure_peer_only(models: &Path, out_dir: &Path, options: &Options) -> anyhow::Result<()> {
    let binary = peer::ensure_llama_server()?;
    let peer = start_llama_server(&binary, models, out_dir)?;
    warm_up(&peer.server.address)?;
    let mut figures = ServerFigures::default();
    for round in 0..options.rounds {
        eprintln!(
            "bench: round {} of {}: llama-server, sweep and RAG",
            round + 1,
            options.rounds
        );
        figures.offer(&measure_server(&peer.server.address, round)?);
    }
    let peak_rss_mib = status_kib(peer.server.child.id(), "VmHWM").unwrap_or(0) as f64 / 1024.0;
    println!(
        "\nllama-server alone, best of {} round(s), llama.cpp {}:\n{}",
        options.rounds,
        peer::llama_cpp_commit()
            .as_deref()
            .unwrap_or("(commit unknown)"),
        peer.command_line
    );
    let figure = |value: Option<f64>| value.map_or("-".to_string(), |value| format!("{value:.2}"));
    for (step, streams) in SWEEP_STREAMS.iter().enumerate() {
        println!(
            "N={streams}: aggregate {} tok/s, TTFT p50 {} ms, fewest text chunks in a stream {}",
            figure(figures.sweep_rate[step].0),
            figure(figures.sweep_ttft_ms[step].0),
            count(figures.sweep_chunks[step])
        );
    }
    println!(
        "RAG quote, N=1: decode {} tok/s over {} tokens",
        figure(figures.rag.rate.0),
        count(figures.rag.chunks)
    );
    println!("peak RSS {peak_rss_mib:.1} MiB");
    Ok(())
}

/// The CPU the benchmark ran on: its model name and the flags in `CPU_FLAGS` it has.
struct Cpu {
    model: String,
    flags: Vec<&'static str>,
}

impl Cpu {
    fn read() -> Cpu {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let present = field("flags").unwrap_or_default();
        let present: Vec<&str> = present.split_whitespace().collect();
        Cpu {
            model: cpu_model_name(),
            flags: CPU_FLAGS
                .into_iter()
                .filter(|flag| present.contains(flag))
                .collect(),
        }
    }
}

/// The instruction sets Hearth's llama.cpp kernels were built for, from `/api/version`.
fn hearth_cpu_features(address: &str) -> anyhow::Result<Value> {
    let answer = Connection::open(address)?.request("GET", "/api/version", None)?;
    if answer.status != 200 {
        bail!("/api/version answered {}: {}", answer.status, answer.text());
    }
    let features = answer.json()?["cpu_features"].clone();
    eprintln!(
        "bench: hearth's llama.cpp kernels: {}",
        features
            .as_array()
            .map(|features| {
                features
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "(not reported)".to_string())
    );
    Ok(features)
}

// ---------------------------------------------------------------- figures

/// The highest value offered: rates, where other load only ever lowers the figure.
#[derive(Default, Clone, Copy)]
struct Highest(Option<f64>);

impl Highest {
    fn offer(&mut self, value: f64) {
        self.0 = Some(self.0.map_or(value, |best| best.max(value)));
    }
}

/// The lowest value offered: times, where other load only ever raises the figure.
#[derive(Default, Clone, Copy)]
struct Lowest(Option<f64>);

impl Lowest {
    fn offer(&mut self, value: f64) {
        self.0 = Some(self.0.map_or(value, |best| best.min(value)));
    }
}

#[derive(Default)]
struct Best {
    raw_single: Highest,
    raw_batch: Highest,
    raw_request_ms: Lowest,
    scheduler_request_ms: Lowest,
    raw_embeddings: Highest,
    hearth_single: Highest,
    hearth_batch: Highest,
    ttft_cold_ms: Lowest,
    ttft_reused_ms: Lowest,
    prefix_tokens: Option<u64>,
    unconstrained: Highest,
    constrained: Highest,
    constrained_tokens: Option<usize>,
    /// The server's answer when it refused `response_format: json_schema`.
    json_schema_refusal: Option<String>,
    hearth_embeddings: Highest,
    hearth_request_ms: Lowest,
    /// Wall time minus the engine time the server reports, same request.
    hearth_overhead_ms: Lowest,
    /// The sweep and the retrieval-style answer, Hearth with speculation as it defaults.
    hearth: ServerFigures,
    hearth_rag_without_speculation: RagFigures,
    llama_server: ServerFigures,
}

/// What the shared client measured of one server, best over the rounds.
#[derive(Default)]
struct ServerFigures {
    /// Per step of `SWEEP_STREAMS`: the best batch's aggregate rate (tok/s).
    sweep_rate: [Highest; SWEEP_STREAMS.len()],
    /// Per step: the median time to first token over the step's requests (ms).
    sweep_ttft_ms: [Lowest; SWEEP_STREAMS.len()],
    /// Per step: the fewest chunks with text any stream had, to show a server that stopped
    /// short of `SWEEP_TOKENS` (one that ignored `ignore_eos`, say).
    sweep_chunks: [Option<usize>; SWEEP_STREAMS.len()],
    rag: RagFigures,
}

impl ServerFigures {
    fn offer(&mut self, round: &ServerRound) {
        for (step, measured) in round.sweep.iter().enumerate() {
            self.sweep_rate[step].offer(measured.rate);
            self.sweep_ttft_ms[step].offer(measured.ttft_p50_ms);
            self.sweep_chunks[step] = Some(
                self.sweep_chunks[step].map_or(measured.fewest_chunks, |fewest| {
                    fewest.min(measured.fewest_chunks)
                }),
            );
        }
        self.rag.offer(&round.rag);
    }
}

#[derive(Default)]
struct RagFigures {
    rate: Highest,
    /// Chunks with text in the answer (the same each round at temperature 0).
    chunks: Option<usize>,
}

impl RagFigures {
    fn offer(&mut self, answer: &RagAnswer) {
        self.rate.offer(answer.rate);
        self.chunks = Some(answer.chunks);
    }
}

fn number(report: &Value, key: &str) -> anyhow::Result<f64> {
    report[key]
        .as_f64()
        .with_context(|| format!("the raw report has no number {key:?}: {report}"))
}

impl Best {
    fn offer_raw(&mut self, raw: &Value) -> anyhow::Result<()> {
        self.raw_single
            .offer(number(raw, "raw_single_stream_tokens_per_second")?);
        self.raw_batch
            .offer(number(raw, "raw_batch_tokens_per_second")?);
        self.raw_request_ms
            .offer(number(raw, "raw_request_p50_ms")?);
        self.scheduler_request_ms
            .offer(number(raw, "scheduler_request_p50_ms")?);
        Ok(())
    }

    /// Records the raw batch-32 rate and returns the texts it was measured on.
    fn offer_raw_embeddings(&mut self, embed: &Value) -> anyhow::Result<Vec<String>> {
        let workload = &embed["workloads"][0];
        self.raw_embeddings.offer(
            workload["raw_texts_per_second_by_batch"]["32"]
                .as_f64()
                .with_context(|| format!("no batch-32 rate in {workload}"))?,
        );
        workload["texts"]
            .as_array()
            .context("no texts in the embedding report")?
            .iter()
            .map(|text| {
                text.as_str()
                    .map(str::to_string)
                    .context("a text that is not a string")
            })
            .collect()
    }
}

// ---------------------------------------------------------------- measurements

fn measure_hearth(
    address: &str,
    raw: &Value,
    texts: &[String],
    round: usize,
    options: &Options,
    best: &mut Best,
) -> anyhow::Result<()> {
    best.hearth_single.offer(single_stream(address, raw)?);
    best.hearth_batch.offer(batch_streams(address, raw)?);

    let (cold, reused, prefix_tokens) = shared_prefix_ttft(address, round)?;
    best.ttft_cold_ms.offer(cold);
    best.ttft_reused_ms.offer(reused);
    best.prefix_tokens = prefix_tokens.or(best.prefix_tokens);

    match json_schema_rates(address, openai_json_schema_format())? {
        SchemaOutcome::Refused(message) => best.json_schema_refusal = Some(message),
        SchemaOutcome::Rates {
            unconstrained,
            constrained,
            constrained_tokens,
        } => {
            best.unconstrained.offer(unconstrained);
            best.constrained.offer(constrained);
            best.constrained_tokens = Some(constrained_tokens);
        }
    }

    best.hearth_embeddings.offer(embedding_throughput(
        address,
        texts,
        Duration::from_secs_f64(options.embedding_seconds()),
    )?);
    let prompt = raw["latency_prompt"]
        .as_str()
        .context("no latency_prompt in the raw report")?;
    best.hearth_request_ms.offer(request_latency(
        address,
        prompt,
        options.latency_requests(),
    )?);
    best.hearth_overhead_ms.offer(request_overhead(
        address,
        prompt,
        options.latency_requests(),
    )?);
    Ok(())
}

/// One streamed generation as the client saw it.
struct Streamed {
    sent_at: Instant,
    /// Arrival of each chunk that carried text, one per token.
    token_times: Vec<Instant>,
    prompt_tokens: Option<u64>,
}

/// Sends a streaming request and records when each token arrives. Completions carry text in
/// `choices[0].text`, chat completions in `choices[0].delta.content`.
fn stream_generation(
    connection: &mut Connection,
    path: &str,
    body: &Value,
) -> anyhow::Result<Streamed> {
    let mut sse = SseData::default();
    let mut token_times = Vec::new();
    let mut prompt_tokens = None;
    let mut failure = None;
    let mut raw_body = Vec::new();
    let sent_at = Instant::now();
    let status = connection.stream(
        "POST",
        path,
        Some(body.to_string().as_bytes()),
        |piece, at| {
            raw_body.extend_from_slice(piece);
            sse.push(piece, at, |data, at| {
                if data == "[DONE]" {
                    return;
                }
                let Ok(chunk) = serde_json::from_str::<Value>(data) else {
                    failure = Some(format!("a chunk that is not JSON: {data}"));
                    return;
                };
                if chunk.get("error").is_some() {
                    failure = Some(chunk.to_string());
                }
                let choice = &chunk["choices"][0];
                let text = choice["text"]
                    .as_str()
                    .or_else(|| choice["delta"]["content"].as_str());
                if text.is_some_and(|text| !text.is_empty()) {
                    token_times.push(at);
                }
                if let Some(count) = chunk["usage"]["prompt_tokens"].as_u64() {
                    prompt_tokens = Some(count);
                }
            });
        },
    )?;
    if status != 200 {
        bail!(
            "POST {path} answered {status}: {}",
            String::from_utf8_lossy(&raw_body)
        );
    }
    if let Some(failure) = failure {
        bail!("POST {path} failed in the stream: {failure}");
    }
    if token_times.is_empty() {
        bail!("POST {path} streamed no tokens");
    }
    Ok(Streamed {
        sent_at,
        token_times,
        prompt_tokens,
    })
}

/// Aggregate decode rate of streams that ran together: the tokens that arrived after every
/// stream had its first token, over the time from then to the last token. With one stream,
/// tokens after the first over the time from the first to the last. A server that serves
/// streams one after another scores its one-stream rate here, which is what its clients get.
fn decode_rate(streams: &[Streamed]) -> anyhow::Result<f64> {
    let start = streams
        .iter()
        .filter_map(|stream| stream.token_times.first())
        .max()
        .copied()
        .context("no stream produced a token")?;
    let end = last_token_at(streams).unwrap_or(start);
    let tokens = streams
        .iter()
        .flat_map(|stream| &stream.token_times)
        .filter(|&&at| at > start)
        .count();
    let seconds = end.saturating_duration_since(start).as_secs_f64();
    if tokens == 0 || seconds == 0.0 {
        bail!("too few tokens to time ({tokens} after the first)");
    }
    Ok(tokens as f64 / seconds)
}

/// When the last token of any of `streams` arrived.
fn last_token_at(streams: &[Streamed]) -> Option<Instant> {
    streams
        .iter()
        .filter_map(|stream| stream.token_times.last())
        .max()
        .copied()
}

fn completion_body(prompt: &str, max_tokens: usize) -> Value {
    json!({
        "model": CHAT_MODEL, "prompt": prompt, "max_tokens": max_tokens,
        "temperature": 0, "stream": true,
    })
}

/// The raw example's single-stream prompt and token count, streamed from the server.
fn single_stream(address: &str, raw: &Value) -> anyhow::Result<f64> {
    let prompt = raw["single_stream_prompt"]
        .as_str()
        .context("no single_stream_prompt in the raw report")?;
    let tokens = number(raw, "decode_tokens")? as usize;
    let mut connection = Connection::open(address)?;
    let streamed = stream_generation(
        &mut connection,
        "/v1/completions",
        &completion_body(prompt, tokens + 1),
    )?;
    decode_rate(std::slice::from_ref(&streamed))
}

/// The raw example's batch prompts, one stream each, all sent at once.
fn batch_streams(address: &str, raw: &Value) -> anyhow::Result<f64> {
    let tokens = number(raw, "decode_tokens")? as usize;
    let bodies: Vec<Value> = raw["batch_prompts"]
        .as_array()
        .context("no batch_prompts in the raw report")?
        .iter()
        .map(|prompt| completion_body(prompt.as_str().unwrap_or_default(), tokens + 1))
        .collect();
    let streams = concurrent_streams(address, "/v1/completions", &bodies)?;
    decode_rate(&streams)
}

/// Runs one streaming request per body, each on its own connection (opened beforehand, so
/// connecting is not timed), released together.
fn concurrent_streams(
    address: &str,
    path: &str,
    bodies: &[Value],
) -> anyhow::Result<Vec<Streamed>> {
    let connections = bodies
        .iter()
        .map(|_| Connection::open(address))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let barrier = Barrier::new(bodies.len());
    std::thread::scope(|scope| {
        let threads: Vec<_> = connections
            .into_iter()
            .zip(bodies)
            .map(|(mut connection, body)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    stream_generation(&mut connection, path, body)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .map_err(|_| anyhow!("a client thread panicked"))?
            })
            .collect()
    })
}

/// What one round measured of one server through the shared client.
struct ServerRound {
    /// One entry per step of `SWEEP_STREAMS`.
    sweep: Vec<SweepStep>,
    rag: RagAnswer,
}

struct SweepStep {
    /// The best batch's aggregate rate: chunks with text over all streams, over the time from
    /// sending to the last token (tok/s).
    rate: f64,
    /// The median time to first token over every request of the step (ms).
    ttft_p50_ms: f64,
    fewest_chunks: usize,
}

struct RagAnswer {
    /// Decode rate, the first token excluded (tok/s).
    rate: f64,
    chunks: usize,
}

/// Whether a request carries Hearth's `"speculation": false`. `ServerDefault` sends nothing,
/// so it is what any server does unasked; llama-server only ever gets that.
#[derive(Clone, Copy)]
enum Speculation {
    ServerDefault,
    Off,
}

/// One round of the sweep and the retrieval-style answer against any OpenAI-compatible server.
fn measure_server(address: &str, round: usize) -> anyhow::Result<ServerRound> {
    let sweep = SWEEP_STREAMS
        .iter()
        .enumerate()
        .map(|(step, &streams)| sweep_step(address, round, step, streams))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rag = rag_answer(address, Speculation::ServerDefault)?;
    Ok(ServerRound { sweep, rag })
}

/// `SWEEP_BATCHES` batches of `streams` concurrent streamed chat requests, each request with
/// its own prompt (different in every batch, step and round, so no server answers from its
/// prompt cache), generating `SWEEP_TOKENS` tokens each.
fn sweep_step(
    address: &str,
    round: usize,
    step: usize,
    streams: usize,
) -> anyhow::Result<SweepStep> {
    let mut best_rate: f64 = 0.0;
    let mut ttfts_ms = Vec::with_capacity(SWEEP_BATCHES * streams);
    let mut fewest_chunks = usize::MAX;
    for batch in 0..SWEEP_BATCHES {
        let bodies: Vec<Value> = (0..streams)
            .map(|request| {
                let index = ((round * SWEEP_STREAMS.len() + step) * SWEEP_BATCHES + batch)
                    * PARALLEL
                    + request;
                json!({
                    "model": CHAT_MODEL,
                    "messages": [{"role": "user", "content": story_prompt(index)}],
                    "max_tokens": SWEEP_TOKENS, "ignore_eos": true,
                    "temperature": 0, "stream": true,
                })
            })
            .collect();
        let results = concurrent_streams(address, "/v1/chat/completions", &bodies)
            .with_context(|| format!("{streams} concurrent chat streams to {address}"))?;
        let sent_at = results
            .iter()
            .map(|streamed| streamed.sent_at)
            .min()
            .context("a batch of no requests")?;
        let last_token = last_token_at(&results).unwrap_or(sent_at);
        let chunks: usize = results
            .iter()
            .map(|streamed| streamed.token_times.len())
            .sum();
        let seconds = last_token.saturating_duration_since(sent_at).as_secs_f64();
        if seconds > 0.0 {
            best_rate = best_rate.max(chunks as f64 / seconds);
        }
        for streamed in &results {
            let first = streamed.token_times[0].saturating_duration_since(streamed.sent_at);
            ttfts_ms.push(first.as_secs_f64() * 1e3);
            fewest_chunks = fewest_chunks.min(streamed.token_times.len());
        }
    }
    Ok(SweepStep {
        rate: best_rate,
        ttft_p50_ms: crate::median(&mut ttfts_ms),
        fewest_chunks,
    })
}

/// A short story request; each `index` below 576 gets its own subject and place.
fn story_prompt(index: usize) -> String {
    const SUBJECTS: [&str; 24] = [
        "a lighthouse keeper",
        "a clockmaker",
        "a retired astronaut",
        "a baker",
        "a lost dog",
        "a beekeeper",
        "a chess prodigy",
        "a ferry captain",
        "a librarian",
        "a street musician",
        "a glassblower",
        "a mountain guide",
        "a night nurse",
        "a young inventor",
        "a stray cat",
        "a train conductor",
        "a tailor",
        "a fisherman's daughter",
        "a museum guard",
        "a radio host",
        "a gardener",
        "a mapmaker",
        "a violin teacher",
        "a snowplough driver",
    ];
    const PLACES: [&str; 24] = [
        "in a desert town",
        "on a night train",
        "in a flooded city",
        "on a remote island",
        "in a busy market",
        "at the edge of a forest",
        "in an old observatory",
        "on a cargo ship",
        "in a mountain village",
        "under a frozen lake",
        "in a closed theatre",
        "at a country fair",
        "in a lighthouse",
        "on the moon",
        "in a rainy harbour",
        "inside a clock tower",
        "at a roadside diner",
        "in a salt mine",
        "on a rooftop garden",
        "in an abandoned mall",
        "at a border crossing",
        "in a windmill",
        "on a river barge",
        "in a snowed-in hotel",
    ];
    format!(
        "Write a story about {} {}.",
        SUBJECTS[index % SUBJECTS.len()],
        PLACES[(index / SUBJECTS.len()) % PLACES.len()]
    )
}

/// The passage of the retrieval-style request: about 600 tokens of plain prose, as a search
/// step would put into the prompt.
const RAG_PASSAGE: &str = "\
The town of Marrow Bay sits at the mouth of the Ellery River, where the water turns from brown \
to green within a single mile. It was founded in 1791 by a group of rope makers who needed a \
harbour that did not freeze in winter. For most of the nineteenth century the town lived on \
rope, salted cod and the repair of fishing boats, and its population never rose above four \
thousand people. \
The first lighthouse was built on Gannet Point in 1824 from local granite. It burned whale oil \
until 1862, when the keeper, Thomas Arlen, persuaded the harbour board to buy a lamp that \
burned paraffin instead. The new lamp could be seen from eighteen miles out at sea, twice as \
far as the old one, and the number of wrecks on the Gannet shoals fell from eleven in the \
decade before to two in the decade after. \
In the spring of 1907 a storm surge broke the old sea wall in three places and flooded the \
lower town to a depth of six feet. The rebuilding took four years. The new wall was made of \
concrete poured over an iron frame, and it was raised two feet higher than the wall it \
replaced. The engineer in charge, Margaret Hollis, insisted that every section be tested with \
weighted carts before the town council paid for it, and no section of her wall has failed \
since. \
The railway reached Marrow Bay in 1913 and changed the town more than the storm had. Fresh \
fish could now be sold in the city the morning after it was caught, and the salting sheds \
closed one by one over the following twenty years. The last of them became a museum in 1961. \
It holds the ledgers of the Cullen family, who kept a record of every barrel of cod they sold \
between 1840 and 1930, and a model of the harbour as it looked before the flood. \
Today the town is known for its autumn rope festival, held on the second Saturday of October. \
Teams of six pull against each other on a rope made each year by hand in the old way, from \
hemp twisted in three strands. The winning team keeps the rope until the next festival, when \
it is cut into short lengths and given to the children of the town. The tradition began in \
1952 to raise money for a new school roof, and the school still receives half of what the \
festival earns. \
The harbour is now used mostly by small boats that take visitors out to see the seals on the \
Gannet shoals. The lighthouse was automated in 1989 and its last keeper, Edith Morrow, still \
lives in the town. She has written a short history of the light, which is sold in the museum \
shop, and she gives a talk about it every Thursday evening in the summer.";

/// The question of the retrieval-style request: its answer is sentences of the passage word
/// for word, so a server that drafts tokens from the prompt can speed it up.
const RAG_QUESTION: &str = "Using only the passage above, answer: how was the sea wall rebuilt \
after the storm of 1907? Quote the relevant sentences of the passage word for word.";

/// The retrieval-style request, one stream alone: its decode rate, the first token excluded.
fn rag_answer(address: &str, speculation: Speculation) -> anyhow::Result<RagAnswer> {
    let mut body = json!({
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": format!("{RAG_PASSAGE}\n\n{RAG_QUESTION}")}],
        "max_tokens": RAG_TOKENS, "temperature": 0, "stream": true,
    });
    if let Speculation::Off = speculation {
        body["speculation"] = json!(false);
    }
    let mut connection = Connection::open(address)?;
    let streamed = stream_generation(&mut connection, "/v1/chat/completions", &body)
        .with_context(|| format!("the RAG request to {address}"))?;
    Ok(RagAnswer {
        rate: decode_rate(std::slice::from_ref(&streamed))?,
        chunks: streamed.token_times.len(),
    })
}

/// About 1,000 tokens of varied text; each `variant` is different from its first sentence on.
fn prefix_text(variant: usize) -> String {
    let mut text = format!("Logbook {variant}. ");
    for sentence in 0..PREFIX_SENTENCES {
        text.push_str(&format!(
            "Sentence {sentence} describes a lighthouse keeper who counts {} ships at dawn. ",
            sentence * 7 + 3 + variant
        ));
    }
    text
}

/// Time to first token, in ms, of a request with a new 1,000-token prefix, then of one that
/// shares the prefix and asks something else; and the prompt's length in tokens.
fn shared_prefix_ttft(address: &str, round: usize) -> anyhow::Result<(f64, f64, Option<u64>)> {
    let prefix = prefix_text(100 + round);
    let mut connection = Connection::open(address)?;
    let mut ttft = |question: &str| -> anyhow::Result<(f64, Option<u64>)> {
        let mut body = completion_body(&format!("{prefix}{question}"), 1);
        body["stream_options"] = json!({"include_usage": true});
        let streamed = stream_generation(&mut connection, "/v1/completions", &body)?;
        let first = streamed.token_times[0].saturating_duration_since(streamed.sent_at);
        Ok((first.as_secs_f64() * 1e3, streamed.prompt_tokens))
    };
    let (cold, prompt_tokens) = ttft(" Question: how many ships were counted in sentence 3?")?;
    let (reused, _) = ttft(" Question: what does the keeper do at dawn?")?;
    Ok((cold, reused, prompt_tokens))
}

enum SchemaOutcome {
    Refused(String),
    Rates {
        unconstrained: f64,
        constrained: f64,
        constrained_tokens: usize,
    },
}

/// The schema the constrained run must follow: a title and a story, both free text, so the
/// output can run to the token limit.
fn story_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
        "required": ["title", "story"],
        "additionalProperties": false,
    })
}

/// OpenAI's form of a schema-constrained response.
fn openai_json_schema_format() -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {"name": "story", "strict": true, "schema": story_schema()},
    })
}

/// Decode rate of the same chat request with and without `response_format`.
fn json_schema_rates(address: &str, response_format: Value) -> anyhow::Result<SchemaOutcome> {
    // Both runs must decode to the token limit, or the rates would come from a handful of
    // tokens: the sample is a base model that may end its turn at once, so Gemma's end tokens
    // (<eos> 1, <end_of_turn> 106) are pushed down in both. Under the schema an end token is
    // still the only choice once the JSON is complete.
    let body = json!({
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content":
            "Write a long story about a lighthouse keeper, as JSON with a title and the story."}],
        "max_tokens": SCHEMA_TOKENS, "temperature": 0, "stream": true,
        "logit_bias": {"1": -100, "106": -100},
    });
    let mut constrained_body = body.clone();
    constrained_body["response_format"] = response_format;
    let mut connection = Connection::open(address)?;
    // A one-token request first: a server without json_schema refuses it with 400.
    let mut probe = constrained_body.clone();
    probe["stream"] = json!(false);
    probe["max_tokens"] = json!(1);
    let answer = connection.post_json("/v1/chat/completions", &probe)?;
    match answer.status {
        200 => {}
        400 => {
            let message = answer
                .json()
                .ok()
                .and_then(|body| body["error"]["message"].as_str().map(str::to_string));
            return Ok(SchemaOutcome::Refused(
                message.unwrap_or_else(|| answer.text()),
            ));
        }
        status => bail!("the json_schema probe answered {status}: {}", answer.text()),
    }
    let unconstrained = stream_generation(&mut connection, "/v1/chat/completions", &body)?;
    let constrained =
        stream_generation(&mut connection, "/v1/chat/completions", &constrained_body)?;
    Ok(SchemaOutcome::Rates {
        unconstrained: decode_rate(std::slice::from_ref(&unconstrained))?,
        constrained: decode_rate(std::slice::from_ref(&constrained))?,
        constrained_tokens: constrained.token_times.len(),
    })
}

/// Texts per second when `EMBEDDING_CALLERS` clients each send one text per request, in a loop.
fn embedding_throughput(
    address: &str,
    texts: &[String],
    duration: Duration,
) -> anyhow::Result<f64> {
    let connections = (0..EMBEDDING_CALLERS)
        .map(|_| Connection::open(address))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let barrier = Barrier::new(EMBEDDING_CALLERS + 1);
    let (embedded, elapsed) = std::thread::scope(|scope| {
        let callers: Vec<_> = connections
            .into_iter()
            .enumerate()
            .map(|(caller, mut connection)| {
                let barrier = &barrier;
                scope.spawn(move || -> anyhow::Result<usize> {
                    barrier.wait();
                    let started = Instant::now();
                    let mut next = caller;
                    let mut embedded = 0;
                    while started.elapsed() < duration {
                        let body = json!({"model": EMBEDDING_MODEL, "input": texts[next]});
                        let answer = connection.post_json("/v1/embeddings", &body)?;
                        if answer.status != 200 {
                            bail!(
                                "/v1/embeddings answered {}: {}",
                                answer.status,
                                answer.text()
                            );
                        }
                        embedded += 1;
                        next = (next + EMBEDDING_CALLERS) % texts.len();
                    }
                    Ok(embedded)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut embedded = 0;
        for caller in callers {
            embedded += caller
                .join()
                .map_err(|_| anyhow!("an embedding client panicked"))??;
        }
        Ok::<_, anyhow::Error>((embedded, started.elapsed()))
    })?;
    Ok(embedded as f64 / elapsed.as_secs_f64())
}

/// Median time of a non-streamed completion with max_tokens=1 repeating the same prompt, as
/// the raw example times it in process.
fn request_latency(address: &str, prompt: &str, requests: usize) -> anyhow::Result<f64> {
    let mut connection = Connection::open(address)?;
    let body = json!({"model": CHAT_MODEL, "prompt": prompt, "max_tokens": 1, "temperature": 0});
    let mut latencies = Vec::with_capacity(requests);
    // The first two put the prompt in the cache and warm the paths.
    for index in 0..requests + 2 {
        let started = Instant::now();
        let answer = connection.post_json("/v1/completions", &body)?;
        let elapsed = started.elapsed();
        if answer.status != 200 {
            bail!(
                "/v1/completions answered {}: {}",
                answer.status,
                answer.text()
            );
        }
        if index >= 2 {
            latencies.push(elapsed.as_secs_f64() * 1e3);
        }
    }
    Ok(crate::median(&mut latencies))
}

/// Median of (client-side wall time − the engine time the server reports) for a repeated
/// one-token Ollama generation: what HTTP, JSON, tokenizing and handing the request to the
/// scheduler and back cost, measured within each request, so that it does not depend on two
/// processes being equally lucky on a shared machine. The engine time is Ollama's
/// `prompt_eval_duration + eval_duration`: from a slot taking the request to the last token.
fn request_overhead(address: &str, prompt: &str, requests: usize) -> anyhow::Result<f64> {
    let mut connection = Connection::open(address)?;
    let body = json!({"model": CHAT_MODEL, "prompt": prompt, "raw": true, "stream": false,
        "options": {"num_predict": 1, "temperature": 0}});
    let mut overheads = Vec::with_capacity(requests);
    for index in 0..requests + 2 {
        let started = Instant::now();
        let answer = connection.post_json("/api/generate", &body)?;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        if answer.status != 200 {
            bail!(
                "/api/generate answered {}: {}",
                answer.status,
                answer.text()
            );
        }
        let reply = answer.json()?;
        let engine_ns = reply["prompt_eval_duration"].as_u64().unwrap_or(0)
            + reply["eval_duration"].as_u64().unwrap_or(0);
        if engine_ns == 0 {
            bail!("/api/generate reported no engine time: {reply}");
        }
        if index >= 2 {
            overheads.push(elapsed_ms - engine_ns as f64 / 1e6);
        }
    }
    Ok(crate::median(&mut overheads))
}

/// One short generation, so the first measured request pays no first-use costs.
fn warm_up(address: &str) -> anyhow::Result<()> {
    let mut connection = Connection::open(address)?;
    stream_generation(
        &mut connection,
        "/v1/completions",
        &completion_body("Hello there,", 8),
    )?;
    Ok(())
}

// ---------------------------------------------------------------- processes

pub struct Binaries {
    pub hearth: PathBuf,
    raw_bench: PathBuf,
    embed_bench: PathBuf,
}

/// Builds the server and the two raw examples in release, in one cargo call.
pub fn build() -> anyhow::Result<Binaries> {
    eprintln!("bench: building the release binary and the raw examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--quiet"])
        .args(["-p", "hearth", "--bin", "hearth"])
        .args(["-p", "hearth-engine", "--example", "raw_bench"])
        .args(["-p", "hearth-embed", "--example", "embed_bench"])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let release = target_dir().join("release");
    Ok(Binaries {
        hearth: release.join("hearth"),
        raw_bench: release.join("examples/raw_bench"),
        embed_bench: release.join("examples/embed_bench"),
    })
}

pub fn model_cache() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("HEARTH_MODEL_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth/models")
        }
    };
    if !dir.join(CHAT_FILE).is_file() || !dir.join(EMBEDDING_DIR).is_dir() {
        bail!(
            "the sample models are not in {}; run scripts/fetch-sample-models",
            dir.display()
        );
    }
    Ok(dir)
}

/// Runs a raw example and parses the JSON object it prints (its progress goes to stderr).
fn run_json(command: &mut Command) -> anyhow::Result<Value> {
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{command:?} printed no JSON object"))
}

/// `hearth serve` on a fresh data directory with both sample models registered in place and
/// preloaded, the slots and threads the comparison needs, and everything else at its default.
fn start_hearth(binary: &Path, models: &Path, out_dir: &Path) -> anyhow::Result<Server> {
    serve_hearth(
        binary,
        out_dir,
        &[
            (models.join(CHAT_FILE), CHAT_MODEL),
            (models.join(EMBEDDING_DIR), EMBEDDING_MODEL),
        ],
        &[
            ("HEARTH_MODELS_THREADS", THREADS.to_string()),
            ("HEARTH_MODELS_PARALLEL_SEQUENCES", PARALLEL.to_string()),
            (
                "HEARTH_MODELS_CONTEXT_PER_SEQUENCE",
                CONTEXT_PER_SEQUENCE.to_string(),
            ),
            (
                "HEARTH_MODELS_PRELOAD",
                format!("{CHAT_MODEL},{EMBEDDING_MODEL}"),
            ),
            ("HEARTH_MODELS_KEEP_ALIVE_SECONDS", "-1".to_string()),
        ],
    )
}

/// The peer server as started, with its command line for the report.
struct Peer {
    server: Server,
    command_line: String,
}

/// `llama-server` on the chat model with Hearth's threads, slots and context per slot (see
/// `peer::llama_server_command`), ready once `/health` answers 200 (it answers 503 while the
/// model loads).
fn start_llama_server(binary: &Path, models: &Path, out_dir: &Path) -> anyhow::Result<Peer> {
    let address = local_address()?;
    let log_path = out_dir.join("llama-server.log");
    let log = std::fs::File::create(&log_path)?;
    let mut command = peer::llama_server_command(
        binary,
        &models.join(CHAT_FILE),
        &address,
        CHAT_MODEL,
        &peer::ServingSettings {
            threads: THREADS,
            parallel: PARALLEL,
            context_per_sequence: CONTEXT_PER_SEQUENCE,
            chat_template: GEMMA_CHAT_TEMPLATE,
        },
    );
    let command_line = peer::shell_line(&command);
    eprintln!(
        "bench: starting llama-server (llama.cpp {}): {command_line}",
        peer::llama_cpp_commit()
            .as_deref()
            .unwrap_or("commit unknown")
    );
    let child = command
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/health", &log_path)?;
    // Both servers must see the same prompt tokens, or the comparison measures templates.
    let probe = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let answer = Connection::open(&server.address)?.post_json("/apply-template", &probe)?;
    let expected = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n";
    if answer.status != 200 || answer.json()?["prompt"] != expected {
        bail!(
            "llama-server renders chats unlike Hearth: /apply-template answered {}: {} \
             (expected {expected:?})",
            answer.status,
            answer.text()
        );
    }
    Ok(Peer {
        server,
        command_line,
    })
}

// ---------------------------------------------------------------- report

/// One line of the results: Hearth's figure, what it is compared with, and the target.
struct Row {
    measurement: String,
    hearth: Option<f64>,
    baseline: Option<f64>,
    baseline_name: &'static str,
    /// `hearth / baseline`, or for the absolute rows the figure itself.
    value: Option<f64>,
    target: Target,
    note: String,
}

#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
    /// Shown for context; no target.
    None,
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::AtLeast(bound) => format!(">= {bound}"),
            Target::AtMost(bound) => format!("<= {bound}"),
            Target::None => String::new(),
        }
    }

    fn verdict(self, value: Option<f64>) -> &'static str {
        match (self, value) {
            (Target::None, _) => "",
            (_, None) => "n/a",
            (Target::AtLeast(bound), Some(value)) if value >= bound => "pass",
            (Target::AtMost(bound), Some(value)) if value <= bound => "pass",
            _ => "MISS",
        }
    }
}

struct Report {
    rows: Vec<Row>,
    rounds: usize,
    quick: bool,
    /// The CPU, its flags, Hearth's kernels and the peer's llama.cpp, in one line.
    machine: String,
    details: Value,
}

fn ratio(hearth: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    Some(hearth? / baseline?)
}

/// A count for a note, `-` when there is none.
fn count(value: Option<usize>) -> String {
    value.map_or("-".to_string(), |value| value.to_string())
}

impl Report {
    fn new(
        best: &Best,
        options: &Options,
        (peak_rss_mib, rss_split): (f64, String),
        peer_peak_rss_mib: Option<f64>,
        machine: Value,
    ) -> Report {
        let mut rows = vec![
            Row {
                measurement: "single stream decode (tok/s)".into(),
                hearth: best.hearth_single.0,
                baseline: best.raw_single.0,
                baseline_name: "raw engine",
                value: ratio(best.hearth_single.0, best.raw_single.0),
                target: Target::AtLeast(0.97),
                note: String::new(),
            },
            Row {
                measurement: format!("{PARALLEL} streams decode, aggregate (tok/s)"),
                hearth: best.hearth_batch.0,
                baseline: best.raw_batch.0,
                baseline_name: "raw engine, one batch",
                value: ratio(best.hearth_batch.0, best.raw_batch.0),
                target: Target::AtLeast(0.95),
                note: String::new(),
            },
        ];
        // With --skip-peer the comparison rows still show Hearth's figures, without a ratio.
        let peer_name = if options.skip_peer {
            ""
        } else {
            "llama-server"
        };
        let (hearth, peer) = (&best.hearth, &best.llama_server);
        for (step, streams) in SWEEP_STREAMS.into_iter().enumerate() {
            rows.push(Row {
                measurement: format!("N={streams} concurrent chats, aggregate (tok/s)"),
                hearth: hearth.sweep_rate[step].0,
                baseline: peer.sweep_rate[step].0,
                baseline_name: peer_name,
                value: ratio(hearth.sweep_rate[step].0, peer.sweep_rate[step].0),
                target: Target::AtLeast(if streams == 1 { 1.0 } else { 1.1 }),
                note: format!(
                    "{SWEEP_TOKENS} tokens each, ignore_eos; fewest text chunks in a stream: \
                     hearth {}, llama-server {}",
                    count(hearth.sweep_chunks[step]),
                    count(peer.sweep_chunks[step])
                ),
            });
        }
        for (step, streams) in SWEEP_STREAMS.into_iter().enumerate() {
            rows.push(Row {
                measurement: format!("N={streams} concurrent chats, TTFT p50 (ms)"),
                hearth: hearth.sweep_ttft_ms[step].0,
                baseline: peer.sweep_ttft_ms[step].0,
                baseline_name: peer_name,
                value: ratio(hearth.sweep_ttft_ms[step].0, peer.sweep_ttft_ms[step].0),
                target: if streams == PARALLEL {
                    Target::AtMost(0.8)
                } else {
                    Target::None
                },
                note: String::new(),
            });
        }
        for (speculation, rag, target) in [
            ("on", &hearth.rag, Target::AtLeast(1.3)),
            ("off", &best.hearth_rag_without_speculation, Target::None),
        ] {
            rows.push(Row {
                measurement: format!("RAG quote, N=1, decode (tok/s), speculation {speculation}"),
                hearth: rag.rate.0,
                baseline: peer.rag.rate.0,
                baseline_name: peer_name,
                value: ratio(rag.rate.0, peer.rag.rate.0),
                target,
                note: format!(
                    "~600-token passage; answer tokens: hearth {}, llama-server {}",
                    count(rag.chunks),
                    count(peer.rag.chunks)
                ),
            });
        }
        rows.push(Row {
            measurement: "TTFT, shared 1000-token prefix (ms)".into(),
            hearth: best.ttft_reused_ms.0,
            baseline: best.ttft_cold_ms.0,
            baseline_name: "same, no reuse",
            value: ratio(best.ttft_reused_ms.0, best.ttft_cold_ms.0),
            target: Target::AtMost(0.15),
            note: best
                .prefix_tokens
                .map(|tokens| format!("{tokens} prompt tokens"))
                .unwrap_or_default(),
        });
        rows.push(match &best.json_schema_refusal {
            Some(message) => Row {
                measurement: "json_schema decode (tok/s)".into(),
                hearth: None,
                baseline: None,
                baseline_name: "unconstrained",
                value: None,
                target: Target::AtLeast(0.9),
                note: format!("unsupported: the server answered 400 ({message})"),
            },
            None => Row {
                measurement: "json_schema decode (tok/s)".into(),
                hearth: best.constrained.0,
                baseline: best.unconstrained.0,
                baseline_name: "unconstrained",
                value: ratio(best.constrained.0, best.unconstrained.0),
                target: Target::AtLeast(0.9),
                note: best
                    .constrained_tokens
                    .map(|tokens| format!("{tokens} constrained tokens"))
                    .unwrap_or_default(),
            },
        });
        rows.push(Row {
            measurement: format!("embeddings, {EMBEDDING_CALLERS} callers x 1 text (texts/s)"),
            hearth: best.hearth_embeddings.0,
            baseline: best.raw_embeddings.0,
            baseline_name: "raw model, batch 32",
            value: ratio(best.hearth_embeddings.0, best.raw_embeddings.0),
            target: Target::AtLeast(0.9),
            note: String::new(),
        });
        let versus_raw = best
            .hearth_request_ms
            .0
            .zip(best.raw_request_ms.0)
            .map(|(hearth, raw)| hearth - raw);
        rows.push(Row {
            measurement: "request, max_tokens=1, p50 (ms): overhead".into(),
            hearth: best.hearth_request_ms.0,
            baseline: best.raw_request_ms.0,
            baseline_name: "raw engine, in process",
            // Measured inside each request (wall minus reported engine time); the difference
            // of the two columns, from two processes, is in the note.
            value: best.hearth_overhead_ms.0,
            target: Target::AtMost(1.0),
            note: format!(
                "wall minus server-reported engine time; hearth - raw = {}{}",
                versus_raw.map_or("-".to_owned(), |ms| format!("{ms:.2} ms")),
                best.scheduler_request_ms
                    .0
                    .map(|scheduler| format!(", scheduler in process {scheduler:.2} ms"))
                    .unwrap_or_default()
            ),
        });
        rows.push(Row {
            measurement: "peak RSS, both models loaded (MiB)".into(),
            hearth: Some(peak_rss_mib),
            baseline: peer_peak_rss_mib,
            baseline_name: if peer_peak_rss_mib.is_some() {
                "llama-server"
            } else {
                ""
            },
            value: Some(peak_rss_mib),
            target: Target::AtMost(547.0),
            note: rss_split,
        });
        let words = |value: &Value| {
            value.as_array().map_or("-".to_string(), |items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        };
        let machine_line = format!(
            "CPU: {}; flags: {}; hearth's kernels: {}{}",
            machine["cpu_model"].as_str().unwrap_or("unknown"),
            words(&machine["cpu_flags"]),
            words(&machine["hearth_cpu_features"]),
            match machine["peer"]["llama_cpp_commit"].as_str() {
                Some(commit) => format!("; llama-server: llama.cpp {commit}"),
                None => String::new(),
            }
        );
        let details = json!({
            "threads": THREADS,
            "parallel": PARALLEL,
            "context_per_sequence": CONTEXT_PER_SEQUENCE,
            "sweep_streams": SWEEP_STREAMS,
            "sweep_batches": SWEEP_BATCHES,
            "sweep_tokens": SWEEP_TOKENS,
            "rag_max_tokens": RAG_TOKENS,
            "embedding_callers": EMBEDDING_CALLERS,
            "machine": machine,
            "scheduler_request_p50_ms": best.scheduler_request_ms.0,
            "prefix_tokens": best.prefix_tokens,
            "json_schema_refusal": best.json_schema_refusal,
        });
        Report {
            rows,
            rounds: options.rounds,
            quick: options.quick,
            machine: machine_line,
            details,
        }
    }

    fn cells(row: &Row) -> [String; 7] {
        let figure = |value: Option<f64>| {
            value
                .map(|value| format!("{value:.2}"))
                .unwrap_or_else(|| "-".into())
        };
        [
            row.measurement.clone(),
            figure(row.hearth),
            if row.baseline_name.is_empty() {
                String::new()
            } else {
                format!("{} ({})", figure(row.baseline), row.baseline_name)
            },
            row.value
                .map(|value| format!("{value:.3}"))
                .unwrap_or_else(|| "-".into()),
            row.target.text(),
            row.target.verdict(row.value).to_string(),
            row.note.clone(),
        ]
    }

    const HEADERS: [&'static str; 7] = [
        "measurement",
        "measured",
        "baseline",
        "ratio",
        "target",
        "result",
        "note",
    ];

    fn table(&self) -> String {
        let rows: Vec<[String; 7]> = self.rows.iter().map(Self::cells).collect();
        let mut widths = Self::HEADERS.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(index, (cell, width))| {
                    if index == 0 || index == 2 || index == 6 {
                        format!("{cell:<width$}")
                    } else {
                        format!("{cell:>width$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut table = format!(
            "\ninference benchmark: best of {} round(s){}, {THREADS} threads\n{}\n\n",
            self.rounds,
            if self.quick { " (quick)" } else { "" },
            self.machine
        );
        table.push_str(&line(&Self::HEADERS.map(String::from)));
        table.push('\n');
        for row in &rows {
            table.push_str(&line(row));
            table.push('\n');
        }
        table.push_str(LEGEND);
        table
    }

    fn markdown(&self) -> String {
        let mut text = format!(
            "# Inference benchmark\n\n`cargo xtask bench inference{}`: best of {} round(s), \
             {THREADS} threads, Gemma 3 270M Q4_K_M and all-MiniLM-L6-v2.\n\n{}\n\n",
            if self.quick { " --quick" } else { "" },
            self.rounds,
            self.machine
        );
        text.push_str(&format!("| {} |\n", Self::HEADERS.join(" | ")));
        text.push_str(&format!("|{}\n", "---|".repeat(Self::HEADERS.len())));
        for row in &self.rows {
            text.push_str(&format!("| {} |\n", Self::cells(row).join(" | ")));
        }
        text.push_str(LEGEND);
        text
    }

    fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                json!({
                    "measurement": row.measurement,
                    "hearth": row.hearth,
                    "baseline": row.baseline,
                    "baseline_name": row.baseline_name,
                    "value": row.value,
                    "target": row.target.text(),
                    "result": row.target.verdict(row.value),
                    "note": row.note,
                })
            })
            .collect();
        json!({
            "rounds": self.rounds,
            "quick": self.quick,
            "settings": self.details,
            "rows": rows,
        })
    }
}
