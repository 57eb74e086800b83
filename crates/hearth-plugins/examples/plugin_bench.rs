//! Hearth's side of `cargo xtask bench plugins`, in process: the plugin host over the sample
//! plugins (built from source), printed as one JSON object. Extism's side
//! (`xtask/peers/extism`) measures the same over the same guest logic.
//!
//!     plugin_bench DIR [--calls N]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_events::{Events, EventsOptions};
use hearth_plugins::samples::sample;
use hearth_plugins::{PluginError, Plugins, PluginsOptions, StopReason, TrustedKeys};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::json;

const TENANT: &str = "bench";

fn percentile(samples: &mut [f64], fraction: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[index]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// This process's resident memory, MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn open(dir: &std::path::Path, store: &Store, events: &Arc<Events>) -> Plugins {
    Plugins::open(
        PluginsOptions {
            dir: dir.join("plugins"),
            max_instances: 2_000,
            trusted_keys: TrustedKeys::default(),
            allow_unsigned: true,
            allow_internal_hosts: false,
            memory: None,
        },
        store.clone(),
        Some(events.clone()),
        None,
    )
    .await
    .expect("plugins")
}

/// Latencies of calls to the calculator for `duration`, µs.
async fn calculator_latencies(plugins: Plugins, duration: Duration) -> Vec<f64> {
    let until = Instant::now() + duration;
    let mut samples = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        plugins
            .call_tool(
                "calc-1",
                "convert",
                r#"{"value": 1, "from": "m", "to": "cm"}"#,
                TENANT,
            )
            .await
            .expect("convert");
        samples.push(micros(started.elapsed()));
    }
    samples
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&arguments[1]);
    let calls: usize = arguments
        .iter()
        .position(|argument| argument == "--calls")
        .map(|index| arguments[index + 1].parse().expect("--calls N"))
        .unwrap_or(100_000);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let options = OpenOptions {
        integrity_check: IntegrityCheck::Quick,
        run_migrations: true,
    };
    let store = Store::open(&dir, options).await.expect("store");
    let events = Arc::new(
        Events::open(&dir, EventsOptions::default())
            .await
            .expect("events"),
    );
    let plugins = open(&dir, &store, &events).await;

    // Ten plugins: the misbehaving sample (100 ms a call, as Extism's) and nine calculators.
    let unruly = sample("unruly");
    let manifest = unruly.manifest.replace(
        "timeout_ms = 200",
        "timeout_ms = 100\nmax_instances = 100\nfailures_to_disable = 1000000",
    );
    plugins
        .install(&manifest, &unruly.component, None)
        .await
        .expect("unruly");
    let calculator = sample("calculator");
    for index in 1..10 {
        let manifest = calculator
            .manifest
            .replace("name = \"calculator\"", &format!("name = \"calc-{index}\""))
            .replace("timeout_ms = 500", "timeout_ms = 500\nmax_instances = 100");
        plugins
            .install(&manifest, &calculator.component, None)
            .await
            .expect("calculator");
    }

    // Warm no-op tool calls.
    for _ in 0..1_000 {
        plugins
            .call_tool("unruly", "echo", "{}", TENANT)
            .await
            .expect("echo");
    }
    let mut warm = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let output = plugins
            .call_tool("unruly", "echo", "{}", TENANT)
            .await
            .expect("echo");
        std::hint::black_box(output);
        warm.push(micros(started.elapsed()));
    }

    // New instances from the pool: a plugin's instances made one at a time, four rounds of up
    // to its 256 (removed and installed again between rounds).
    let mut fresh = Vec::new();
    for _ in 0..4 {
        let manifest = calculator
            .manifest
            .replace("name = \"calculator\"", "name = \"fresh\"")
            .replace("timeout_ms = 500", "timeout_ms = 500\nmax_instances = 256");
        plugins
            .install(&manifest, &calculator.component, None)
            .await
            .expect("fresh");
        loop {
            let started = Instant::now();
            let before = plugins.get("fresh").expect("fresh").idle_instances;
            let idle = plugins.prewarm("fresh", 1).await.expect("prewarm");
            if idle == before {
                break;
            }
            fresh.push(micros(started.elapsed()));
        }
        plugins.remove("fresh").await.expect("remove");
    }

    // A runaway guest under its 100 ms, while another plugin is called: its latency beside
    // the runaways against the same calls alone.
    let mut alone = calculator_latencies(plugins.clone(), Duration::from_secs(2)).await;
    let beside = tokio::spawn(calculator_latencies(
        plugins.clone(),
        Duration::from_secs(2),
    ));
    let mut stopped = Vec::new();
    let until = Instant::now() + Duration::from_millis(1_900);
    while Instant::now() < until {
        let started = Instant::now();
        match plugins.call_tool("unruly", "spin", "{}", TENANT).await {
            Err(PluginError::Stopped {
                reason: StopReason::Cpu,
                ..
            }) => {}
            other => panic!("spin: {other:?}"),
        }
        stopped.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut beside = beside.await.expect("beside");

    // A memory bomb: trapped in the call that overran.
    let started = Instant::now();
    let memory = match plugins.call_tool("unruly", "grow", "{}", TENANT).await {
        Err(PluginError::Stopped { reason, .. }) => reason.as_str().to_string(),
        other => format!("{other:?}"),
    };
    let memory_ms = started.elapsed().as_secs_f64() * 1000.0;

    // Restart with the ten plugins installed (their compiled forms on disk).
    drop(plugins);
    let started = Instant::now();
    let plugins = open(&dir, &store, &events).await;
    let restart_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(plugins.list().len(), 10);

    // 1,000 idle instances (100 of each plugin) and 100 calls in flight (waiting on the host's
    // clock), then the process's resident memory.
    let rss_before = rss_mib();
    let mut idle = 0;
    for info in plugins.list() {
        idle += plugins
            .prewarm(&info.manifest.name, 100)
            .await
            .expect("prewarm");
    }
    let in_flight: Vec<_> = (0..100)
        .map(|_| {
            let plugins = plugins.clone();
            tokio::spawn(async move {
                plugins
                    .call_tool("unruly", "sleep", r#"{"ms": 80}"#, TENANT)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let rss_loaded = rss_mib();
    for call in in_flight {
        call.await.expect("task").expect("sleep");
    }

    let report = json!({
        "warm_call_us": {"p50": percentile(&mut warm, 0.5), "p99": percentile(&mut warm, 0.99), "calls": calls},
        "new_instance_us": {"p50": percentile(&mut fresh, 0.5), "p99": percentile(&mut fresh, 0.99), "samples": fresh.len()},
        "restart_10_plugins_ms": restart_ms,
        "runaway_stopped_ms": {"p50": percentile(&mut stopped, 0.5), "p99": percentile(&mut stopped, 0.99), "runs": stopped.len()},
        "other_plugin_p99_us": {"alone": percentile(&mut alone, 0.99), "beside_runaway": percentile(&mut beside, 0.99)},
        "memory_overrun": {"ms": memory_ms, "reason": memory},
        "rss_mib": {"before": rss_before, "idle_1000_in_flight_100": rss_loaded, "idle_instances": idle},
    });
    println!("{report}");
}
