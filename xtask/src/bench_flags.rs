//! `cargo xtask bench flags [--binary PATH] [--skip-peer] [--seconds N] [--connections N]`:
//! feature-flag evaluation, three ways.
//!
//! - In process (`crates/hearth-flags/examples/flag_bench.rs`, release): 1,000 flags of 10
//!   rules each, every rule tried before a split places the unit.
//! - The same 1,000 flags in GrowthBook's Python SDK (4.0, pip-installed into a virtualenv,
//!   evaluating locally as its users run it: features given to a `GrowthBook` object, the
//!   attributes set per unit, `eval_feature`): the context number the issue names, since
//!   flagd (a Go binary) cannot be installed here.
//! - Over HTTP: the release `hearth serve` answering OFREP single-flag evaluations from
//!   keep-alive connections as fast as they come back (closed loop).
//!
//! The report, with the CPU it ran on, goes to `<target>/bench/flags.json`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::http::Connection;
use crate::loadgen::{Target, closed_loop};
use crate::process::{cpu_model_name, json_of, release_example, serve_hearth, target_dir};

const PEER_PACKAGES: [&str; 1] = ["growthbook==4.0.0"];

const PEER_SCRIPT: &str = r#"
import json, sys, time
from growthbook import GrowthBook

FLAGS, RULES, CONTEXTS, BATCH = 1000, 10, 1000, 100
evaluations = int(sys.argv[1])

def feature(index):
    rules = [{"condition": {"plan": {"$in": [f"plan-{index}-{rule}", "enterprise"]},
                            "country": {"$in": ["FR", "DE", "NL"]}},
              "force": True} for rule in range(RULES)]
    rules.append({"key": f"flag-{index}", "variations": [True, False],
                  "weights": [0.2, 0.8], "hashAttribute": "id"})
    return {"defaultValue": False, "rules": rules}

features = {f"flag-{index}": feature(index) for index in range(FLAGS)}
contexts = [{"id": f"user-{unit}", "plan": "pro", "country": "US", "age_days": unit % 400}
            for unit in range(CONTEXTS)]
gb = GrowthBook(features=features)

state = 0x9e3779b97f4a7c15
pairs = []
mask = (1 << 64) - 1
for _ in range(65536):
    state ^= (state << 13) & mask
    state ^= state >> 7
    state ^= (state << 17) & mask
    pairs.append((f"flag-{state % FLAGS}", contexts[(state >> 32) % CONTEXTS]))

on = 0
def evaluate(at):
    global on
    key, context = pairs[at % len(pairs)]
    gb.set_attributes(context)
    on += gb.eval_feature(key).value is True

for at in range(20000):
    evaluate(at)
per = []
for batch in range(evaluations // BATCH):
    started = time.perf_counter_ns()
    for at in range(BATCH):
        evaluate(batch * BATCH + at)
    per.append((time.perf_counter_ns() - started) / BATCH)
per.sort()
at = lambda q: per[round((len(per) - 1) * q)]
print(json.dumps({"evaluation_ns": {"p50": at(0.5), "p99": at(0.99)},
                  "evaluations": len(per) * BATCH, "share_on": on / (20000 + len(per) * BATCH)}))
"#;

fn in_process(evaluations: usize) -> anyhow::Result<Value> {
    let bench = release_example("hearth-flags", "flag_bench")?;
    eprintln!("bench: flags in process ({evaluations} evaluations)");
    json_of(
        Command::new(bench)
            .arg(target_dir().join("bench-flags"))
            .args(["--evaluations", &evaluations.to_string()]),
    )
}

fn growthbook(evaluations: usize) -> anyhow::Result<Value> {
    let venv = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/hearth/bench-flags-venv");
    let python = crate::peer::ensure_venv(&venv, &PEER_PACKAGES, "pure Python: seconds")?;
    eprintln!("bench: GrowthBook's Python SDK 4.0.0 ({evaluations} evaluations)");
    json_of(
        Command::new(python)
            .arg("-c")
            .arg(PEER_SCRIPT)
            .arg(evaluations.to_string()),
    )
}

/// OFREP over HTTP: the release server with the same 1,000 flags, one flag evaluated for one
/// context from `connections` keep-alive connections for `seconds`.
fn over_http(binary: &std::path::Path, seconds: u64, connections: usize) -> anyhow::Result<Value> {
    let out_dir = target_dir().join("bench-flags-http");
    std::fs::create_dir_all(&out_dir)?;
    let server = serve_hearth(binary, &out_dir, &[], &[])?;
    let mut admin = Connection::open(&server.address)?;
    for index in 0..1000 {
        let rules: Vec<Value> = (0..10)
            .map(|rule| {
                json!({"when": [
                    {"attribute": "plan", "op": "in", "values": [format!("plan-{index}-{rule}"), "enterprise"]},
                    {"attribute": "country", "op": "in", "values": ["FR", "DE", "NL"]}],
                    "variant": "on"})
            })
            .collect();
        let flag = json!({"key": format!("flag-{index}"), "rules": rules,
                          "split": [{"variant": "on", "weight": 20}, {"variant": "off", "weight": 80}]});
        let response = admin.post_json("/v1/flags", &flag)?;
        anyhow::ensure!(
            response.status == 201,
            "defining flag-{index}: {} {}",
            response.status,
            response.text()
        );
    }
    let target = Target {
        address: server.address.clone(),
        path: "/ofrep/v1/evaluate/flags/flag-500".into(),
        body: json!({"context": {"targetingKey": "user-7", "plan": "pro", "country": "US"}})
            .to_string()
            .into_bytes(),
        authorization: None,
    };
    eprintln!("bench: OFREP over HTTP ({connections} connections, {seconds} s)");
    let outcome = closed_loop(&target, Duration::from_secs(seconds), connections);
    Ok(json!({
        "connections": connections,
        "evaluations_per_s": outcome.achieved_rps().round(),
        "errors": outcome.errors,
        "first_error": outcome.first_error,
        "latency_ms": {"p50": outcome.latency_ms(0.5), "p99": outcome.latency_ms(0.99)},
    }))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let number = |name: &str, default: usize| -> anyhow::Result<usize> {
        Ok(crate::flag(args, name)
            .map(|value| value.parse())
            .transpose()
            .with_context(|| format!("{name} N"))?
            .unwrap_or(default))
    };
    let seconds = number("--seconds", 10)? as u64;
    let connections = number("--connections", 8)?;
    let skip_peer = args.iter().any(|arg| arg == "--skip-peer");
    let binary = match crate::flag(args, "--binary") {
        Some(path) => PathBuf::from(path),
        None => crate::bench_inference::build()?.hearth,
    };
    let ours = in_process(2_000_000)?;
    eprintln!("  {ours}");
    let theirs = if skip_peer {
        Value::Null
    } else {
        growthbook(200_000)?
    };
    if !theirs.is_null() {
        eprintln!("  {theirs}");
    }
    let http = over_http(&binary, seconds, connections)?;
    eprintln!("  {http}");
    let ratio = |q: &str| match (
        ours["evaluation_ns"][q].as_f64(),
        theirs["evaluation_ns"][q].as_f64(),
    ) {
        (Some(ours), Some(theirs)) if ours > 0.0 => json!((theirs / ours).round()),
        _ => Value::Null,
    };
    let report = json!({
        "cpu": cpu_model_name(),
        "hearth_in_process": ours,
        "growthbook_python": theirs,
        // How many times longer GrowthBook's evaluation takes (> 1: Hearth is faster).
        "growthbook_over_hearth": {"evaluation_p50": ratio("p50"), "evaluation_p99": ratio("p99")},
        "hearth_ofrep_http": http,
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("flags.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("bench: written to {}", path.display());
    Ok(())
}
