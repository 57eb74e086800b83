//! `cargo xtask bench jobs [--fires N] [--runs N] [--skip-peer]`: how late a cron job's work
//! starts after its time, Hearth against APScheduler (3.11, pip-installed into a virtualenv,
//! its defaults: a `BackgroundScheduler` with its thread pool and in-memory job store), both
//! with an every-second schedule and the same measure taken inside the work: how far into its
//! second it began. Hearth's side (`crates/hearth-jobs/examples/job_bench.rs`, release) also
//! reports recorded manual runs a second (each stored with its attempt, then waited for);
//! APScheduler records no runs, so that has no peer.
//!
//! The report, with the CPU it ran on, goes to `<target>/bench/jobs.json`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};

use crate::process::{cpu_model_name, json_of, release_example, target_dir};

const PEER_PACKAGES: [&str; 1] = ["APScheduler==3.11.3"];

const PEER_SCRIPT: &str = r#"
import json, sys, threading, time
from apscheduler.schedulers.background import BackgroundScheduler

fires = int(sys.argv[1])
lags = []
done = threading.Event()

def mark():
    lags.append((time.time() % 1.0) * 1000.0)
    if len(lags) >= fires:
        done.set()

scheduler = BackgroundScheduler()
scheduler.add_job(mark, "cron", second="*")
scheduler.start()
done.wait()
scheduler.shutdown(wait=False)
lags.sort()
at = lambda q: lags[round((len(lags) - 1) * q)]
print(json.dumps({"cron_lag_ms": {"p50": at(0.5), "p99": at(0.99), "max": lags[-1], "n": len(lags)}}))
"#;

fn hearth(fires: usize, runs: usize) -> anyhow::Result<Value> {
    let job_bench = release_example("hearth-jobs", "job_bench")?;
    eprintln!("bench: Hearth's jobs ({fires} fires, {runs} manual runs)");
    json_of(
        Command::new(job_bench)
            .arg(target_dir().join("bench-jobs"))
            .args(["--fires", &fires.to_string(), "--runs", &runs.to_string()]),
    )
}

fn apscheduler(fires: usize) -> anyhow::Result<Value> {
    let venv = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/hearth/bench-jobs-venv");
    let python = crate::peer::ensure_venv(&venv, &PEER_PACKAGES, "pure Python: seconds")?;
    eprintln!("bench: APScheduler 3.11.3 ({fires} fires)");
    json_of(
        Command::new(python)
            .arg("-c")
            .arg(PEER_SCRIPT)
            .arg(fires.to_string()),
    )
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let number = |name: &str, default: usize| -> anyhow::Result<usize> {
        Ok(crate::flag(args, name)
            .map(|value| value.parse())
            .transpose()
            .with_context(|| format!("{name} N"))?
            .unwrap_or(default))
    };
    let (fires, runs) = (number("--fires", 30)?, number("--runs", 500)?);
    let skip_peer = args.iter().any(|arg| arg == "--skip-peer");
    let ours = hearth(fires, runs)?;
    eprintln!("  {ours}");
    let theirs = if skip_peer {
        Value::Null
    } else {
        apscheduler(fires)?
    };
    if !theirs.is_null() {
        eprintln!("  {theirs}");
    }
    let ratio = |q: &str| match (
        ours["cron_lag_ms"][q].as_f64(),
        theirs["cron_lag_ms"][q].as_f64(),
    ) {
        (Some(ours), Some(theirs)) if ours > 0.0 => json!((theirs / ours * 100.0).round() / 100.0),
        _ => Value::Null,
    };
    let report = json!({
        "cpu": cpu_model_name(),
        "hearth": ours,
        "apscheduler": theirs,
        // How many times later APScheduler starts the work (> 1: Hearth is closer to the time).
        "apscheduler_over_hearth": {"cron_lag_p50": ratio("p50"), "cron_lag_p99": ratio("p99")},
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("jobs.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("bench: written to {}", path.display());
    Ok(())
}
