//! `cargo xtask bench plugins [--calls N] [--skip-peer]`: Hearth's plugin host against
//! Extism's Rust SDK over the same guest logic (echo, spin, grow), both in process, in one
//! run.
//!
//! - Hearth: `crates/hearth-plugins/examples/plugin_bench.rs` (release) over the sample
//!   plugins built from source: warm no-op tool calls, new instances from the pool, a restart
//!   with 10 plugins installed, runaway guests under a 100 ms limit (and another plugin's p99
//!   beside them against alone), a memory bomb, and resident memory with 1,000 idle instances
//!   and 100 calls in flight.
//! - Extism (`xtask/peers/extism`, 1.30.0 with its default features, built outside the
//!   workspace; the guest `xtask/peers/extism-guest` with extism-pdk for
//!   wasm32-unknown-unknown): warm calls, new instances from a compiled plugin, the runaway
//!   and the memory bomb under the same limits.
//!
//! The report, with the CPU it ran on, goes to `<target>/bench/plugins.json`.

use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::process::{
    build_outside_workspace, cpu_model_name, json_of, release_example, target_dir,
};

fn hearth(calls: usize) -> anyhow::Result<Value> {
    let plugin_bench = release_example("hearth-plugins", "plugin_bench")?;
    eprintln!("bench: Hearth's plugin host");
    json_of(
        Command::new(plugin_bench)
            .arg(target_dir().join("bench-plugins"))
            .args(["--calls", &calls.to_string()]),
    )
}

fn extism(calls: usize) -> anyhow::Result<Value> {
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .status()?;
    if !status.success() {
        bail!("rustup could not add wasm32-unknown-unknown for the Extism guest");
    }
    let guest_target = build_outside_workspace(
        "xtask/peers/extism-guest",
        "hearth-extism-guest-target",
        &["--target", "wasm32-unknown-unknown"],
    )?;
    let peer_target =
        build_outside_workspace("xtask/peers/extism", "hearth-extism-peer-target", &[])?;
    eprintln!("bench: Extism 1.30.0");
    json_of(
        Command::new(peer_target.join("release/hearth-bench-extism-peer"))
            .arg(guest_target.join("wasm32-unknown-unknown/release/hearth_bench_extism_guest.wasm"))
            .args(["--calls", &calls.to_string()]),
    )
}

fn ratio(ours: &Value, theirs: &Value) -> Value {
    match (ours.as_f64(), theirs.as_f64()) {
        (Some(ours), Some(theirs)) if ours > 0.0 => json!((theirs / ours * 100.0).round() / 100.0),
        _ => Value::Null,
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let calls: usize = crate::flag(args, "--calls")
        .map(|calls| calls.parse())
        .transpose()
        .context("--calls N")?
        .unwrap_or(100_000);
    let skip_peer = args.iter().any(|arg| arg == "--skip-peer");
    let ours = hearth(calls)?;
    eprintln!("  {ours}");
    let theirs = if skip_peer {
        Value::Null
    } else {
        extism(calls)?
    };
    if !theirs.is_null() {
        eprintln!("  {theirs}");
    }
    let report = json!({
        "cpu": cpu_model_name(),
        "hearth": ours,
        "extism": theirs,
        // How many times slower Extism is (> 1: Hearth is faster).
        "extism_over_hearth": {
            "warm_call_p50": ratio(&ours["warm_call_us"]["p50"], &theirs["warm_call_us"]["p50"]),
            "warm_call_p99": ratio(&ours["warm_call_us"]["p99"], &theirs["warm_call_us"]["p99"]),
            "new_instance_p50": ratio(&ours["new_instance_us"]["p50"], &theirs["new_instance_us"]["p50"]),
            "new_instance_p99": ratio(&ours["new_instance_us"]["p99"], &theirs["new_instance_us"]["p99"]),
        },
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("plugins.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("bench: written to {}", path.display());
    Ok(())
}
