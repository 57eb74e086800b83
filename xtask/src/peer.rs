//! The peer the inference benchmark compares against: llama-cpp-python's OpenAI-compatible
//! server, on the same GGUF and thread count. It is installed by the benchmark itself into its
//! own virtualenv (pip compiles llama.cpp from source: several minutes on two cores, once), never
//! by `scripts/setup` or CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The pinned peer; the virtualenv remembers which one it holds and is rebuilt when this changes.
pub const REQUIREMENT: &str = "llama-cpp-python[server]==0.3.36";

pub fn venv_dir() -> PathBuf {
    match std::env::var_os("HEARTH_BENCH_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/bench-venv"),
    }
}

/// Creates the virtualenv with the pinned llama-cpp-python unless it is already there, and
/// returns its interpreter.
pub fn ensure_installed() -> anyhow::Result<PathBuf> {
    ensure_venv(
        &venv_dir(),
        REQUIREMENT,
        "compiles llama.cpp: several minutes",
    )
}

/// Creates a virtualenv at `venv` holding `requirement` (a pinned pip requirement) unless it
/// already holds exactly that, and returns its interpreter. A stamp file in the virtualenv
/// remembers what was installed, so a changed pin reinstalls.
pub fn ensure_venv(venv: &Path, requirement: &str, cost: &str) -> anyhow::Result<PathBuf> {
    let python = venv.join("bin/python");
    let stamp = venv.join("hearth-peer.txt");
    if python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|text| text == requirement) {
        return Ok(python);
    }
    eprintln!(
        "bench: installing {requirement} into {} ({cost})",
        venv.display()
    );
    if !python.is_file() {
        run(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
    }
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            requirement,
        ])
        .env("CMAKE_BUILD_PARALLEL_LEVEL", cores.to_string()))?;
    std::fs::write(&stamp, requirement)?;
    Ok(python)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// The command line of the peer server, serving `model` as `alias` (the name the benchmark
/// sends), with settings matched to Hearth's in the benchmark:
/// same threads for decode and prompt, the same context per sequence and batch size, flash
/// attention as Hearth's llama.cpp picks it. `interrupt_requests` is off because by default a
/// new request cuts off the one streaming, which would end concurrent streams early.
pub fn command(python: &Path, model: &Path, address: &str, threads: usize, alias: &str) -> Command {
    let (host, port) = address.split_once(':').unwrap_or((address, "8000"));
    let mut command = Command::new(python);
    command
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(model)
        .args(["--model_alias", alias])
        .args(["--host", host, "--port", port])
        .args(["--n_threads", &threads.to_string()])
        .args(["--n_threads_batch", &threads.to_string()])
        .args(["--n_ctx", "2048", "--n_batch", "512", "--n_ubatch", "512"])
        .args(["--flash_attn", "true"])
        .args(["--interrupt_requests", "false"]);
    command
}
