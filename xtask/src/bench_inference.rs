//! `cargo xtask bench inference`: the release binary serving the sample models over HTTP,
//! measured in the same run against llama.cpp used directly through the same binding (the
//! engine's `raw_bench` example), the raw embedding model (the `embed_bench` example), and
//! llama-cpp-python's server as the peer. Prints a table of ratios against the targets and
//! writes it to `<target dir>/bench/inference.json` and `inference.md`.
//!
//! Each figure is the best of a few rounds, and every round measures every contender in turn
//! (the raw examples run as subprocesses while the servers sit idle), so that other work on the
//! machine slows them all alike. Decode rates come from streamed responses: the arrival time of
//! each token's chunk, the first token excluded, so time to first token is not in them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::http::{Connection, SseData};
use crate::peer;
use crate::process::{
    Server, local_address, settings_from_env, status_kib, target_dir, wait_until_ready,
};

const CHAT_MODEL: &str = "gemma3:270m";
const EMBEDDING_MODEL: &str = "all-minilm:l6-v2";
const CHAT_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const EMBEDDING_DIR: &str = "all-minilm-l6-v2";
/// Inference threads everywhere: Hearth, the raw examples (fixed there) and the peer.
const THREADS: usize = 2;
/// Concurrent streams; Hearth gets as many slots, as the raw batch has sequences.
const PARALLEL: usize = 8;
const CONTEXT_PER_SEQUENCE: usize = 2048;
/// Concurrent embedding callers, each sending one text per request.
const EMBEDDING_CALLERS: usize = 32;
/// Sentences of the shared prefix: about 1,000 tokens of Gemma 3's tokenizer (the exact count
/// the server reports is written to the results).
const PREFIX_SENTENCES: usize = 55;
/// Tokens of the json_schema comparison, the first excluded from the rate.
const SCHEMA_TOKENS: usize = 65;
/// How to read the table's ratio column.
const LEGEND: &str = "\nratio is hearth / baseline; for the overhead row, Hearth's overhead in ms \
                      (wall time minus the engine time the server reports); for RSS, MiB.\n";

struct Options {
    quick: bool,
    skip_peer: bool,
    rounds: usize,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            quick: false,
            skip_peer: false,
            rounds: 0,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--skip-peer" => options.skip_peer = true,
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
    let models = model_cache()?;
    let binaries = build()?;
    let out_dir = target_dir().join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let peer_python = if options.skip_peer {
        None
    } else {
        Some(peer::ensure_installed()?)
    };

    eprintln!("bench: starting hearth");
    let hearth = start_hearth(&binaries.hearth, &models, &out_dir)?;
    let peer = match &peer_python {
        Some(python) => {
            eprintln!("bench: starting llama-cpp-python's server");
            Some(start_peer(python, &models, &out_dir)?)
        }
        None => None,
    };
    warm_up(&hearth.address)?;
    if let Some(peer) = &peer {
        warm_up(&peer.address)?;
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
        if let Some(peer) = &peer {
            eprintln!("bench: round {}: llama-cpp-python", round + 1);
            best.peer_single.offer(single_stream(&peer.address, &raw)?);
            best.peer_batch.offer(batch_streams(&peer.address, &raw)?);
        }
    }
    let peak_rss_mib = status_kib(hearth.child.id(), "VmHWM")
        .map(|kib| kib as f64 / 1024.0)
        .context("cannot read the server's VmHWM from /proc")?;
    // What the resident memory is made of at the end: mapped model files versus allocations
    // (KV cache, compute buffers, the embedding model's tensors).
    let rss_split = format!(
        "now: {:.0} MiB file-backed (model weights), {:.0} MiB anonymous",
        status_kib(hearth.child.id(), "RssFile").unwrap_or(0) as f64 / 1024.0,
        status_kib(hearth.child.id(), "RssAnon").unwrap_or(0) as f64 / 1024.0
    );
    let peer_peak_rss_mib = peer
        .as_ref()
        .and_then(|peer| status_kib(peer.child.id(), "VmHWM"))
        .map(|kib| kib as f64 / 1024.0);
    drop(peer);
    drop(hearth);

    let report = Report::new(
        &best,
        &options,
        (peak_rss_mib, rss_split),
        peer_peak_rss_mib,
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
    peer_single: Highest,
    peer_batch: Highest,
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
    let end = streams
        .iter()
        .filter_map(|stream| stream.token_times.last())
        .max()
        .copied()
        .unwrap_or(start);
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

fn model_cache() -> anyhow::Result<PathBuf> {
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
    let home = out_dir.join("hearth-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let data = home.join("data");
    let hearth = |args: &[&std::ffi::OsStr]| {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--data-dir")
            .arg(&data)
            .args(args);
        command
    };
    for (path, name) in [
        (models.join(CHAT_FILE), CHAT_MODEL),
        (models.join(EMBEDDING_DIR), EMBEDDING_MODEL),
    ] {
        let output = hearth(&[
            "pull".as_ref(),
            path.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
        ])
        .output()?;
        if !output.status.success() {
            bail!(
                "hearth pull {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let address = local_address()?;
    let log_path = out_dir.join("hearth.log");
    let log = std::fs::File::create(&log_path)?;
    let child = hearth(&["serve".as_ref(), "--listen".as_ref(), address.as_ref()])
        .env("HEARTH_MODELS_THREADS", THREADS.to_string())
        .env("HEARTH_MODELS_PARALLEL_SEQUENCES", PARALLEL.to_string())
        .env(
            "HEARTH_MODELS_CONTEXT_PER_SEQUENCE",
            CONTEXT_PER_SEQUENCE.to_string(),
        )
        .env(
            "HEARTH_MODELS_PRELOAD",
            format!("{CHAT_MODEL},{EMBEDDING_MODEL}"),
        )
        .env("HEARTH_MODELS_KEEP_ALIVE_SECONDS", "-1")
        // Settings from the benchmark's environment come last, so they win.
        .envs(settings_from_env())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/readyz", &log_path)?;
    Ok(server)
}

fn start_peer(python: &Path, models: &Path, out_dir: &Path) -> anyhow::Result<Server> {
    let address = local_address()?;
    let log_path = out_dir.join("peer.log");
    let log = std::fs::File::create(&log_path)?;
    let child = peer::command(
        python,
        &models.join(CHAT_FILE),
        &address,
        THREADS,
        CHAT_MODEL,
    )
    .stdout(log.try_clone()?)
    .stderr(log)
    .spawn()
    .context("cannot start llama-cpp-python's server")?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/v1/models", &log_path)?;
    Ok(server)
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
    details: Value,
}

fn ratio(hearth: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    Some(hearth? / baseline?)
}

impl Report {
    fn new(
        best: &Best,
        options: &Options,
        (peak_rss_mib, rss_split): (f64, String),
        peer_peak_rss_mib: Option<f64>,
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
        if !options.skip_peer {
            rows.push(Row {
                measurement: format!("{PARALLEL} streams decode, aggregate (tok/s)"),
                hearth: best.hearth_batch.0,
                baseline: best.peer_batch.0,
                baseline_name: "llama-cpp-python",
                value: ratio(best.hearth_batch.0, best.peer_batch.0),
                target: Target::AtLeast(1.8),
                note: String::new(),
            });
            rows.push(Row {
                measurement: "single stream decode (tok/s)".into(),
                hearth: best.hearth_single.0,
                baseline: best.peer_single.0,
                baseline_name: "llama-cpp-python",
                value: ratio(best.hearth_single.0, best.peer_single.0),
                target: Target::None,
                note: String::new(),
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
                "llama-cpp-python"
            } else {
                ""
            },
            value: Some(peak_rss_mib),
            target: Target::AtMost(600.0),
            note: rss_split,
        });
        let details = json!({
            "threads": THREADS,
            "parallel": PARALLEL,
            "context_per_sequence": CONTEXT_PER_SEQUENCE,
            "embedding_callers": EMBEDDING_CALLERS,
            "peer": if options.skip_peer { Value::Null } else { json!(peer::REQUIREMENT) },
            "scheduler_request_p50_ms": best.scheduler_request_ms.0,
            "prefix_tokens": best.prefix_tokens,
            "json_schema_refusal": best.json_schema_refusal,
        });
        Report {
            rows,
            rounds: options.rounds,
            quick: options.quick,
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
            "\ninference benchmark: best of {} round(s){}, {THREADS} threads\n\n",
            self.rounds,
            if self.quick { " (quick)" } else { "" }
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
             {THREADS} threads, Gemma 3 270M Q4_K_M and all-MiniLM-L6-v2.\n\n",
            if self.quick { " --quick" } else { "" },
            self.rounds
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
