//! The peers the benchmarks compare against, installed by the benchmarks themselves into caches
//! outside the clone, never by `scripts/setup` or CI.
//!
//! The inference benchmark's peer is llama.cpp's own `llama-server`, built natively
//! (`GGML_NATIVE=ON`, so with every instruction set of the CPU that builds it) from the
//! llama.cpp that the pinned `llama-cpp-python` source distribution vendors: one pin names the
//! llama.cpp version, and the build takes several minutes on two cores, once. The gateway
//! benchmark's peer, LiteLLM, is a pip install into a virtualenv (`ensure_venv`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The `llama-cpp-python` release whose source distribution vendors the llama.cpp we build.
pub const LLAMA_CPP_PYTHON_VERSION: &str = "0.3.36";

/// Where the source distribution, its extracted tree and the build live:
/// `HEARTH_BENCH_LLAMA_SERVER_DIR`, or a folder per version under `~/.cache/hearth`.
pub fn llama_server_dir() -> PathBuf {
    match std::env::var_os("HEARTH_BENCH_LLAMA_SERVER_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/llama-server")
            .join(format!("llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}")),
    }
}

/// The CMake cache settings of the build. Only the server is built; `LLAMA_CURL` is gone from
/// this llama.cpp (HTTPS is `LLAMA_OPENSSL`, off: the model is a local file), and the web UI
/// is neither built with npm nor downloaded from Hugging Face at build time, so the build needs
/// no network. A static binary keeps the build folder self-contained.
const CMAKE_SETTINGS: [&str; 11] = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=ON",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
];

/// Builds `llama-server` unless the cache already holds this build of it, and returns the
/// binary. A stamp file records the version and settings it was built with, so a changed pin
/// or setting rebuilds.
pub fn ensure_llama_server() -> anyhow::Result<PathBuf> {
    let dir = llama_server_dir();
    let build = dir.join("build");
    let binary = build.join("bin/llama-server");
    let stamp = dir.join("built-with.txt");
    let recipe = format!(
        "llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}\n{}\n",
        CMAKE_SETTINGS.join("\n")
    );
    if binary.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|text| text == recipe) {
        return Ok(binary);
    }
    eprintln!(
        "bench: building llama-server from llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}'s \
         llama.cpp in {} (builds llama.cpp: several minutes, once)",
        dir.display()
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let source = extracted_source(&dir)?;
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    run(Command::new("cmake")
        .arg("-S")
        .arg(source.join("vendor/llama.cpp"))
        .arg("-B")
        .arg(&build)
        .args(CMAKE_SETTINGS))?;
    run(Command::new("cmake").arg("--build").arg(&build).args([
        "--target",
        "llama-server",
        "-j",
        &cores.to_string(),
    ]))?;
    if !binary.is_file() {
        bail!("the build did not produce {}", binary.display());
    }
    std::fs::write(&stamp, recipe)?;
    Ok(binary)
}

/// The llama.cpp commit the source distribution vendors, as its git metadata names it
/// (`.git/modules/vendor/llama.cpp/HEAD` in the extracted tree), if the cache has it.
pub fn llama_cpp_commit() -> Option<String> {
    let head = llama_server_dir()
        .join(sdist_name())
        .join(".git/modules/vendor/llama.cpp/HEAD");
    let commit = std::fs::read_to_string(head).ok()?.trim().to_string();
    (commit.len() == 40 && commit.chars().all(|char| char.is_ascii_hexdigit())).then_some(commit)
}

/// `llama_cpp_python-<version>`: the source distribution's file stem and top folder.
fn sdist_name() -> String {
    format!("llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}")
}

/// Downloads the source distribution into `dir` unless it is there, extracts it afresh, and
/// returns the extracted tree.
fn extracted_source(dir: &Path) -> anyhow::Result<PathBuf> {
    let tarball = dir.join(format!("{}.tar.gz", sdist_name()));
    if !tarball.is_file() {
        run(Command::new("python3")
            .args(["-m", "pip", "download", "--disable-pip-version-check"])
            .args(["--no-binary", ":all:", "--no-deps"])
            .arg(format!("llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"))
            .arg("-d")
            .arg(dir))?;
        if !tarball.is_file() {
            bail!(
                "pip download did not leave {} (see its output above)",
                tarball.display()
            );
        }
    }
    let source = dir.join(sdist_name());
    // A tree left by an interrupted extraction would build stale or partial sources.
    if source.exists() {
        std::fs::remove_dir_all(&source)
            .with_context(|| format!("cannot remove {}", source.display()))?;
    }
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir))?;
    Ok(source)
}

/// What the benchmark matches between Hearth and llama-server.
pub struct ServingSettings<'a> {
    /// Threads for decode and for prompts alike.
    pub threads: usize,
    /// Slots, each with `context_per_sequence` tokens of context.
    pub parallel: usize,
    pub context_per_sequence: usize,
    /// The Jinja chat template: the prompt format Hearth uses for the model, so that both
    /// servers see the same tokens (without it llama-server falls back to ChatML for a GGUF
    /// that carries no template, as the sample model does).
    pub chat_template: &'a str,
}

/// The command line of the peer server, serving `model` as `alias` (the name the benchmark
/// sends) with `settings`: `parallel` slots sharing `parallel * context_per_sequence` tokens
/// of context (no unified KV cache when the slots are given, so each slot gets
/// `context_per_sequence`) and Hearth's batch sizes. Everything else, flash attention
/// included, is llama-server's own default.
pub fn llama_server_command(
    binary: &Path,
    model: &Path,
    address: &str,
    alias: &str,
    settings: &ServingSettings,
) -> Command {
    let (host, port) = address.split_once(':').unwrap_or((address, "8080"));
    let threads = settings.threads.to_string();
    let mut command = Command::new(binary);
    command
        .arg("-m")
        .arg(model)
        .args(["--alias", alias, "--host", host, "--port", port])
        .args(["-t", &threads, "-tb", &threads])
        .args([
            "-c",
            &(settings.parallel * settings.context_per_sequence).to_string(),
        ])
        .args([
            "-np",
            &settings.parallel.to_string(),
            "-b",
            "512",
            "-ub",
            "512",
        ])
        .args(["--chat-template", settings.chat_template]);
    command
}

/// `command` as one line a shell would run as it is: each argument that is not plain is
/// single-quoted.
pub fn shell_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| {
            let part = part.to_string_lossy();
            let plain = !part.is_empty()
                && part
                    .chars()
                    .all(|char| char.is_ascii_alphanumeric() || "_./:=,+-".contains(char));
            if plain {
                part.into_owned()
            } else {
                format!("'{}'", part.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates a virtualenv at `venv` holding `requirements` (pinned pip requirements) unless it
/// already holds exactly those, and returns its interpreter. A stamp file in the virtualenv
/// remembers what was installed, so a changed pin reinstalls.
pub fn ensure_venv(venv: &Path, requirements: &[&str], cost: &str) -> anyhow::Result<PathBuf> {
    let python = venv.join("bin/python");
    let stamp = venv.join("hearth-peer.txt");
    let requirement = requirements.join(" ");
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
        .args(["-m", "pip", "install", "--disable-pip-version-check"])
        .args(requirements)
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
