//! Extism's side of `cargo xtask bench plugins`, in process: the same measurements as Hearth's
//! `plugin_bench` example over the same guest logic, printed as one JSON object.
//!
//!     hearth-bench-extism-peer GUEST.wasm [--calls N]

use std::time::{Duration, Instant};

use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};
use serde_json::json;

fn percentile(samples: &mut [f64], fraction: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[index]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let guest = std::fs::read(&arguments[1]).expect("the guest");
    let calls: usize = arguments
        .iter()
        .position(|argument| argument == "--calls")
        .map(|index| arguments[index + 1].parse().expect("--calls N"))
        .unwrap_or(100_000);

    // Limits as Hearth's plugin has them: 100 ms a call, 16 MiB of memory (256 pages).
    let manifest = Manifest::new([Wasm::data(guest)])
        .with_timeout(Duration::from_millis(100))
        .with_memory_max(256);
    let compiled = CompiledPlugin::new(PluginBuilder::new(manifest).with_wasi(true))
        .expect("compile");

    // Warm no-op calls on one instance.
    let mut plugin = Plugin::new_from_compiled(&compiled).expect("instance");
    for _ in 0..1_000 {
        let _: String = plugin.call("echo", "{}").expect("echo");
    }
    let mut warm = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let output: &str = plugin.call("echo", "{}").expect("echo");
        std::hint::black_box(output);
        warm.push(micros(started.elapsed()));
    }

    // New instances from the compiled plugin.
    let mut fresh = Vec::new();
    for _ in 0..1_000 {
        let started = Instant::now();
        let plugin = Plugin::new_from_compiled(&compiled).expect("instance");
        fresh.push(micros(started.elapsed()));
        drop(plugin);
    }

    // A runaway call under its 100 ms timeout.
    let mut stopped = Vec::new();
    for _ in 0..10 {
        let mut plugin = Plugin::new_from_compiled(&compiled).expect("instance");
        let started = Instant::now();
        let result: Result<String, _> = plugin.call("spin", "{}");
        assert!(result.is_err(), "spin returned");
        stopped.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    // A memory bomb under its 16 MiB.
    let mut plugin = Plugin::new_from_compiled(&compiled).expect("instance");
    let started = Instant::now();
    let result: Result<String, _> = plugin.call("grow", "{}");
    let memory_error = result.err().map(|error| error.to_string()).unwrap_or_default();
    let memory_ms = started.elapsed().as_secs_f64() * 1000.0;

    let report = json!({
        "warm_call_us": {"p50": percentile(&mut warm, 0.5), "p99": percentile(&mut warm, 0.99), "calls": calls},
        "new_instance_us": {"p50": percentile(&mut fresh, 0.5), "p99": percentile(&mut fresh, 0.99)},
        "runaway_stopped_ms": {"p50": percentile(&mut stopped, 0.5), "p99": percentile(&mut stopped, 0.99)},
        "memory_overrun": {"ms": memory_ms, "error": memory_error},
    });
    println!("{report}");
}
