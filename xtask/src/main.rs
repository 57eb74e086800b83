//! Project automation, run as `cargo xtask <task>`.
//!
//! - `startup [--runs N] [--binary PATH]`: time from process start to `/readyz` 200 and idle
//!   RSS of `hearth serve` with no models, median of N runs (default 10). Builds the release
//!   binary first unless `--binary` is given.
//! - `bench inference [--quick] [--skip-peer | --peer-only] [--rounds N]`: the release binary
//!   serving the sample models over HTTP against the raw engine, the raw embedding model and
//!   llama.cpp's own `llama-server` (built natively on first use, outside the clone); see
//!   `bench_inference.rs`.
//! - `bench gateway [--quick] [--skip-peer] [--rates A,B] [--seconds N] [--soak-seconds N]`:
//!   the release binary in front of a fake upstream against the upstream directly and against
//!   LiteLLM's proxy; see `bench_gateway.rs`.
//! - `bench memory [--binary PATH] [--skip-peer] [--skip-vectors]`: retrieval quality
//!   (nDCG@10) of keyword, vector and hybrid search on the Cranfield collection against a
//!   reference BM25 (`bench_memory.rs`), then the HNSW index against faiss and hnswlib on
//!   gcide's MiniLM embeddings, one thread (`bench_vectors.rs`).
//! - `bench events [--quick] [--skip-peer] [--binary PATH] [--soak-seconds N]`: the bus, the durable log,
//!   consumers and HTTP publishing against the local nats-server through async-nats; see
//!   `bench_events.rs`.
//! - `bench responses [--binary PATH] [--rounds N]`: the Responses API's streaming cost per
//!   token and to the first token against chat completions' on the same server and prompt;
//!   see `bench_responses.rs`.
//! - `bench graph [--binary PATH] [--skip-peer] [--nodes N] [--edges M]`: knowledge-graph
//!   neighbours and depth-3 paths over HTTP on a 1M-relation graph against Kùzu in-process;
//!   see `bench_graph.rs`.
//! - `bench retrieval [--binary PATH] [--questions N]`: time to the first token of a chat
//!   with `memory` over 99,000 gcide definitions against the same final prompt without it;
//!   see `bench_retrieval.rs`.
//! - `bench plugins [--calls N] [--skip-peer]`: the plugin host in process against Extism's
//!   Rust SDK over the same guest logic; see `bench_plugins.rs`.
//! - `bench jobs [--fires N] [--runs N] [--skip-peer]`: how late cron work starts, against
//!   APScheduler; see `bench_jobs.rs`.
//! - `bench flags [--binary PATH] [--skip-peer] [--seconds N] [--connections N]`: flag
//!   evaluation in process against GrowthBook's Python SDK, and OFREP over HTTP; see
//!   `bench_flags.rs`.
//! - `fake-upstream --listen ADDR`: that benchmark's upstream, as its own process.
//! - `dist [--check]`: a portable binary with ggml's CPU backends chosen at run time, for
//!   other machines; `--check` runs a copy of it; see `dist.rs`.

mod bench_events;
mod bench_flags;
mod bench_gateway;
mod bench_graph;
mod bench_inference;
mod bench_jobs;
mod bench_memory;
mod bench_plugins;
mod bench_responses;
mod bench_retrieval;
mod bench_vectors;
mod dist;
mod fake_upstream;
mod http;
mod loadgen;
mod peer;
mod process;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("startup") => startup(&args[1..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("inference") => {
            bench_inference::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("gateway") => {
            bench_gateway::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("events") => {
            bench_events::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("responses") => {
            bench_responses::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("retrieval") => {
            bench_retrieval::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("graph") => {
            bench_graph::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("plugins") => {
            bench_plugins::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("flags") => {
            bench_flags::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("jobs") => {
            bench_jobs::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("memory") => {
            bench_memory::run(&args[2..]).map_err(|error| format!("{error:#}"))
        }
        Some("dist") => dist::run(&args[1..]).map_err(|error| format!("{error:#}")),
        Some("fake-upstream") => {
            fake_upstream::serve(&args[1..]).map_err(|error| format!("{error:#}"))
        }
        _ => Err(format!("{USAGE}\n(got {args:?})")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:
  cargo xtask startup [--runs N] [--binary PATH]
  cargo xtask bench inference [--quick] [--skip-peer | --peer-only] [--rounds N]
  cargo xtask bench gateway [--quick] [--skip-peer] [--rates A,B,...] [--seconds N] [--soak-seconds N] [--soak-rate N] [--connections N]
  cargo xtask bench memory [--binary PATH] [--skip-peer]
  cargo xtask bench events [--quick] [--skip-peer] [--binary PATH] [--soak-seconds N]
  cargo xtask bench responses [--binary PATH] [--rounds N]
  cargo xtask bench graph [--binary PATH] [--skip-peer] [--nodes N] [--edges M]
  cargo xtask bench retrieval [--binary PATH] [--questions N]
  cargo xtask bench plugins [--calls N] [--skip-peer]
  cargo xtask bench jobs [--fires N] [--runs N] [--skip-peer]
  cargo xtask bench flags [--binary PATH] [--skip-peer] [--seconds N] [--connections N]
  cargo xtask fake-upstream --listen ADDR
  cargo xtask dist [--check]";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1).cloned())
}

fn release_binary() -> Result<PathBuf, String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
        .args(["build", "--release", "--quiet", "-p", "hearth"])
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err("cargo build --release failed".to_string());
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_string());
    Ok(PathBuf::from(target).join("release").join("hearth"))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    Ok(listener
        .local_addr()
        .map_err(|error| error.to_string())?
        .port())
}

/// One GET over a fresh connection; returns the status code.
fn http_status(address: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The value at `fraction` (0 to 1) of `values` sorted, by nearest rank; NaN when empty.
pub fn percentile(values: &[f64], fraction: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

fn startup(args: &[String]) -> Result<(), String> {
    let runs: usize = flag(args, "--runs")
        .map(|text| {
            text.parse()
                .map_err(|_| format!("--runs {text} is not a number"))
        })
        .transpose()?
        .unwrap_or(10);
    let binary = match flag(args, "--binary") {
        Some(path) => PathBuf::from(path),
        None => release_binary()?,
    };
    let mut ready_ms = Vec::new();
    let mut rss_mib = Vec::new();
    for run in 0..runs {
        let dir = std::env::temp_dir().join(format!("hearth-startup-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let address = format!("127.0.0.1:{}", free_port()?);
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .env_clear()
            .env("HOME", &dir)
            .arg("--data-dir")
            .arg(&dir)
            .args(["serve", "--listen", &address])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let ready = loop {
            if http_status(&address, "/readyz") == Some(200) {
                break started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                return Err("hearth did not become ready within 10 s".to_string());
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        // Idle: let start-up work settle before reading resident memory.
        std::thread::sleep(Duration::from_millis(500));
        let rss = process::status_kib(child.id(), "VmRSS").unwrap_or(0) as f64 / 1024.0;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "run {:>2}: ready in {:>6.1} ms, idle RSS {:>5.1} MiB",
            run + 1,
            ready.as_secs_f64() * 1000.0,
            rss
        );
        ready_ms.push(ready.as_secs_f64() * 1000.0);
        rss_mib.push(rss);
    }
    println!(
        "median of {runs}: start to /readyz 200 = {:.1} ms (target <= 100), idle RSS = {:.1} MiB (target <= 30)",
        median(&mut ready_ms),
        median(&mut rss_mib)
    );
    Ok(())
}
