//! `cargo xtask bench responses [--binary PATH] [--rounds N]`: the Responses API's streaming
//! cost against chat completions' on the same server, model and prompt. Both stream 128 tokens
//! (greedy, `ignore_eos`); rounds alternate between the two so drift on the machine falls on
//! both. Reported: the time between tokens (first text delta to last, over the deltas between)
//! and the time to the first token, medians, and their ratios (the target is a per-token ratio
//! of at most 1.05).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::http::{Connection, SseData};
use crate::process::{cpu_model_name, serve_hearth, target_dir};

const CHAT_MODEL: &str = "gemma3:270m";
const CHAT_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const TOKENS: u64 = 128;
const PROMPT: &str = "Write a long story about a lighthouse keeper who";

/// One streamed generation: when it was sent and when each piece of text arrived.
struct Streamed {
    sent_at: Instant,
    text_at: Vec<Instant>,
}

impl Streamed {
    fn ttft_ms(&self) -> f64 {
        self.text_at.first().map_or(f64::NAN, |first| {
            (*first - self.sent_at).as_secs_f64() * 1e3
        })
    }

    fn per_token_ms(&self) -> f64 {
        match (self.text_at.first(), self.text_at.last()) {
            (Some(first), Some(last)) if self.text_at.len() > 1 => {
                (*last - *first).as_secs_f64() * 1e3 / (self.text_at.len() - 1) as f64
            }
            _ => f64::NAN,
        }
    }
}

/// Streams one request; `is_text` says whether an event carries generated text.
fn stream(
    connection: &mut Connection,
    path: &str,
    body: &Value,
    is_text: impl Fn(&Value) -> bool,
) -> anyhow::Result<Streamed> {
    let mut sse = SseData::default();
    let mut text_at = Vec::new();
    let sent_at = Instant::now();
    let status = connection.stream(
        "POST",
        path,
        Some(body.to_string().as_bytes()),
        |piece, at| {
            sse.push(piece, at, |data, at| {
                if let Ok(event) = serde_json::from_str::<Value>(data)
                    && is_text(&event)
                {
                    text_at.push(at);
                }
            });
        },
    )?;
    if status != 200 {
        bail!("{path} answered {status}");
    }
    Ok(Streamed { sent_at, text_at })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut binary = None;
    let mut rounds = 10;
    let mut arguments = args.iter();
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--binary" => binary = arguments.next().map(PathBuf::from),
            "--rounds" => {
                rounds = arguments
                    .next()
                    .and_then(|value| value.parse().ok())
                    .context("--rounds takes a number")?;
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    let binary = binary.unwrap_or_else(|| target_dir().join("release/hearth"));
    if !binary.is_file() {
        bail!(
            "no hearth binary at {}; build it (cargo build --release -p hearth) or pass --binary",
            binary.display()
        );
    }
    let models =
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hearth/models");
    let out_dir = target_dir().join("bench-responses");
    std::fs::create_dir_all(&out_dir)?;
    let server = serve_hearth(
        &binary,
        &out_dir,
        &[(models.join(CHAT_FILE), CHAT_MODEL)],
        &[("HEARTH_MODELS_PRELOAD", CHAT_MODEL.to_string())],
    )?;
    let mut connection = Connection::open(&server.address)?;
    let chat = json!({"model": CHAT_MODEL, "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": TOKENS, "temperature": 0, "ignore_eos": true, "stream": true});
    let responses = json!({"model": CHAT_MODEL, "input": PROMPT, "max_output_tokens": TOKENS,
        "temperature": 0, "ignore_eos": true, "stream": true, "store": false});
    let chat_text = |event: &Value| {
        event["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    };
    let responses_text = |event: &Value| event["type"] == "response.output_text.delta";
    // Warm-up: the prompt's cache and both paths.
    stream(&mut connection, "/v1/chat/completions", &chat, chat_text)?;
    stream(&mut connection, "/v1/responses", &responses, responses_text)?;
    let (mut chats, mut answers) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        chats.push(stream(
            &mut connection,
            "/v1/chat/completions",
            &chat,
            chat_text,
        )?);
        answers.push(stream(
            &mut connection,
            "/v1/responses",
            &responses,
            responses_text,
        )?);
    }
    let summary = |runs: &[Streamed]| {
        (
            median(runs.iter().map(Streamed::per_token_ms).collect()),
            median(runs.iter().map(Streamed::ttft_ms).collect()),
            runs.first().map_or(0, |run| run.text_at.len()),
        )
    };
    let (chat_token, chat_ttft, chat_deltas) = summary(&chats);
    let (responses_token, responses_ttft, responses_deltas) = summary(&answers);
    println!(
        "CPU: {} ({} rounds, {TOKENS} tokens, binary {})",
        cpu_model_name(),
        rounds,
        display(&binary)
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "", "chat", "responses", "ratio"
    );
    println!(
        "{:<28} {chat_token:>12.3} {responses_token:>12.3} {:>7.3}x",
        "ms per token (p50)",
        responses_token / chat_token
    );
    println!(
        "{:<28} {chat_ttft:>12.1} {responses_ttft:>12.1} {:>7.3}x",
        "TTFT ms (p50)",
        responses_ttft / chat_ttft
    );
    println!(
        "{:<28} {chat_deltas:>12} {responses_deltas:>12}",
        "text events"
    );
    drop(server);
    Ok(())
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
