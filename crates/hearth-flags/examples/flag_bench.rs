//! In-process flag evaluation, as Hearth's own features evaluate flags: 1,000 flags of 10
//! rules each (two conditions per rule, every rule tried before the default split places the
//! unit), evaluated for 1,000 contexts in a shuffled order. The cost of one evaluation is
//! read from batches of 100 timed together (one evaluation is shorter than the clock's own
//! overhead); single timed calls are reported too, clock included.
//!
//! `flag_bench DIR [--evaluations N]`; prints one JSON line.

use std::time::Instant;

use hearth_flags::{Context, FlagSpec, Flags, FlagsOptions};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::{Value, json};

const FLAGS: usize = 1000;
const RULES: usize = 10;
const CONTEXTS: usize = 1000;
const BATCH: usize = 100;

/// A flag whose rules look at `plan` and `country`, none of which the bench's contexts
/// satisfy: each evaluation tries all ten, then splits.
fn flag(index: usize) -> FlagSpec {
    let rules: Vec<Value> = (0..RULES)
        .map(|rule| {
            json!({
                "when": [
                    {"attribute": "plan", "op": "in", "values": [format!("plan-{index}-{rule}"), "enterprise"]},
                    {"attribute": "country", "op": "in", "values": ["FR", "DE", "NL"]}
                ],
                "variant": "on"
            })
        })
        .collect();
    serde_json::from_value(json!({
        "rules": rules,
        "split": [{"variant": "on", "weight": 20}, {"variant": "off", "weight": 80}]
    }))
    .expect("a bench flag")
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("flag_bench DIR"));
    let evaluations: usize = args
        .iter()
        .position(|arg| arg == "--evaluations")
        .and_then(|at| args.get(at + 1))
        .map_or(2_000_000, |text| text.parse().expect("--evaluations N"));
    // How many of the flags the evaluations visit (all by default; 1 shows the cost with
    // everything in cache).
    let visited: usize = args
        .iter()
        .position(|arg| arg == "--visit")
        .and_then(|at| args.get(at + 1))
        .map_or(FLAGS, |text| text.parse().expect("--visit N"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let store = Store::open(
        &dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .expect("store");
    let flags = Flags::open(store, FlagsOptions::default())
        .await
        .expect("flags");
    let configured = (0..FLAGS)
        .map(|index| ("bench".to_string(), format!("flag-{index}"), flag(index)))
        .collect();
    flags.apply_config(configured, 0).await.expect("define");
    let keys: Vec<String> = (0..FLAGS).map(|index| format!("flag-{index}")).collect();
    let contexts: Vec<Context> = (0..CONTEXTS)
        .map(|unit| {
            let mut context = Context::for_key(format!("user-{unit}"));
            context.set("plan", json!("pro"));
            context.set("country", json!("US"));
            context.set("age_days", json!(unit % 400));
            context
        })
        .collect();
    // A fixed pseudo-random walk over (flag, context) pairs, so caches see what a server's
    // mixed traffic would.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let pairs: Vec<(usize, usize)> = (0..65_536)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (
                (state % visited as u64) as usize,
                ((state >> 32) % CONTEXTS as u64) as usize,
            )
        })
        .collect();
    let snapshot = flags.snapshot();
    let mut on = 0usize;
    let mut evaluate = |at: usize| {
        let (flag, context) = pairs[at % pairs.len()];
        let evaluation = snapshot
            .evaluate("bench", &keys[flag], &contexts[context])
            .expect("evaluates");
        on += usize::from(evaluation.value == &Value::Bool(true));
    };
    for at in 0..100_000 {
        evaluate(at);
    }
    let batches = evaluations / BATCH;
    let mut per_evaluation_ns = Vec::with_capacity(batches);
    for batch in 0..batches {
        let started = Instant::now();
        for at in 0..BATCH {
            evaluate(batch * BATCH + at);
        }
        per_evaluation_ns.push(started.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    per_evaluation_ns.sort_by(f64::total_cmp);
    let mut single_ns = Vec::with_capacity(200_000);
    for at in 0..200_000 {
        let started = Instant::now();
        evaluate(at);
        single_ns.push(started.elapsed().as_nanos() as f64);
    }
    single_ns.sort_by(f64::total_cmp);
    // The same, taking the current snapshot for each evaluation (what a caller that holds no
    // snapshot pays).
    let mut with_snapshot_ns = Vec::with_capacity(batches);
    for batch in 0..batches / 4 {
        let started = Instant::now();
        for at in 0..BATCH {
            let (flag, context) = pairs[(batch * BATCH + at) % pairs.len()];
            let current = flags.snapshot();
            let evaluation = current
                .evaluate("bench", &keys[flag], &contexts[context])
                .expect("evaluates");
            on += usize::from(evaluation.value == &Value::Bool(true));
        }
        with_snapshot_ns.push(started.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    with_snapshot_ns.sort_by(f64::total_cmp);
    let report = json!({
        "flags": FLAGS,
        "rules_per_flag": RULES,
        "evaluations": batches * BATCH,
        "evaluation_ns": {"p50": quantile(&per_evaluation_ns, 0.5), "p99": quantile(&per_evaluation_ns, 0.99)},
        "single_timed_call_ns": {"p50": quantile(&single_ns, 0.5), "p99": quantile(&single_ns, 0.99)},
        "with_snapshot_fetch_ns": {"p50": quantile(&with_snapshot_ns, 0.5), "p99": quantile(&with_snapshot_ns, 0.99)},
        "share_on": on as f64 / (batches * BATCH + 300_000 + batches / 4 * BATCH) as f64,
    });
    println!("{report}");
}
