//! The jobs benchmark's Hearth side (`cargo xtask bench jobs` runs it in release): how late an
//! every-second cron job's work starts after its second (measured inside the work, as the
//! APScheduler peer measures its own), and how many recorded runs a second the service makes
//! when asked back to back. Prints one JSON line.
//!
//! `job_bench DIR [--fires N] [--runs N]`

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_jobs::{Builtins, JobSpec, Jobs, JobsOptions, Source};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::json;

fn quantiles(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    json!({"p50": at(0.5), "p99": at(0.99), "max": at(1.0), "n": samples.len()})
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("job_bench DIR [--fires N] [--runs N]"));
    let option = |name: &str, default: usize| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|index| args.get(index + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let (fires, runs) = (option("--fires", 30), option("--runs", 500));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(
        &dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .unwrap();

    // The work notes how far into its second it started: fires are on whole seconds.
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut builtins = Builtins::new();
    let seen = lags.clone();
    builtins.add("mark", move || {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        seen.lock()
            .unwrap()
            .push(f64::from(since.subsec_micros()) / 1000.0);
        Box::pin(async { Ok(json!({})) })
    });
    let jobs = Jobs::open(JobsOptions::default(), store, None, None, builtins, None)
        .await
        .unwrap();
    let tick: JobSpec = serde_json::from_value(json!({
        "name": "tick", "schedule": "* * * * * *", "action": {"type": "builtin", "name": "mark"},
    }))
    .unwrap();
    jobs.define("bench", tick.clone(), Source::Api, true)
        .await
        .unwrap();
    while lags.lock().unwrap().len() < fires {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut off = tick;
    off.enabled = false;
    jobs.define("bench", off, Source::Api, true).await.unwrap();
    let lag_ms = quantiles(lags.lock().unwrap().clone());

    // Manual runs back to back, each recorded (run row, attempt row, their ends) and waited for.
    let noop: JobSpec = serde_json::from_value(json!({
        "name": "noop", "action": {"type": "builtin", "name": "noop"},
    }))
    .unwrap();
    jobs.define("bench", noop, Source::Api, true).await.unwrap();
    let mut run_ms = Vec::with_capacity(runs);
    let started = std::time::Instant::now();
    for _ in 0..runs {
        let one = std::time::Instant::now();
        let run = jobs.run_now("bench", "noop", None).await.unwrap();
        let run = jobs
            .wait("bench", &run.id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(run.status, "succeeded");
        run_ms.push(one.elapsed().as_secs_f64() * 1000.0);
    }
    let runs_per_s = runs as f64 / started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "cron_lag_ms": lag_ms,
            "manual_run_ms": quantiles(run_ms),
            "manual_runs_per_s": runs_per_s,
        })
    );
}
