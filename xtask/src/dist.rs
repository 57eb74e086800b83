//! `cargo xtask dist [--check]`: a `hearth` for other machines of this architecture.
//!
//! A build from source targets the building CPU (`.cargo/config.toml`), which is what a user
//! running it there wants and what a copy to an older CPU cannot run. This build targets the
//! architecture's baseline instead and ships ggml's CPU backend once per instruction-set level
//! (SSE4.2, AVX2, AVX-512, AMX, ... as shared libraries beside the binary); at start the binary
//! loads the best one the running CPU supports, as llama.cpp's release builds and Ollama do.
//!
//! The result is a directory `<target>/dist/hearth-<version>-linux-<arch>/`: `hearth`, the
//! llama.cpp libraries it links and the CPU backends. `--check` copies it elsewhere and runs
//! it there as a user would: `hearth version` must name the CPU features of the backend it
//! chose, and a served chat completion on the sample model must answer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::json;

use crate::process::{Server, local_address, target_dir, wait_until_ready};

/// The sample chat model the check serves (see `scripts/fetch-sample-models`).
const CHAT_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("usage: cargo xtask dist [--check] (got {args:?})"),
    };
    let dist = build()?;
    println!("dist: {}", dist.display());
    if check {
        check_dist(&dist)?;
        println!("dist: the copied build runs");
    }
    Ok(())
}

/// Builds the portable binary in a target directory of its own (its compiler flags differ from
/// the native build's, so sharing one would rebuild everything each time) and gathers it.
fn build() -> anyhow::Result<PathBuf> {
    let target = target_dir().join("portable");
    eprintln!(
        "dist: building the portable binary in {} (the first build compiles ggml once per CPU \
         level: many minutes)",
        target.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--quiet"])
        .args(["-p", "hearth", "--bin", "hearth", "--features", "portable"])
        .env("CARGO_TARGET_DIR", &target)
        // Replaces `.cargo/config.toml`'s `target-cpu=native` for this build: Rust code for
        // any x86-64 CPU, ggml's kernels chosen at run time.
        .env("RUSTFLAGS", baseline_rustflags())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release --features portable failed");
    }
    let release = target.join("release");
    let dist = target_dir().join("dist").join(format!(
        "hearth-{}-linux-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    ));
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(&dist)?;
    std::fs::copy(release.join("hearth"), dist.join("hearth"))?;
    // llama.cpp's and ggml's libraries under the names the binary asks for (their sonames,
    // `libllama.so.0`: one numeric suffix), and the CPU backends ggml's build installed into the
    // build script's `backends` folder. `fs::copy` follows the symbolic links among them.
    let mut copied = 0;
    for out in build_script_outputs(&release)? {
        copied += copy_libraries(&out.join("lib"), &dist, is_soname)?;
        copied += copy_libraries(&out.join("backends"), &dist, |name| {
            name.starts_with("libggml-cpu") && name.ends_with(".so")
        })?;
    }
    if !dist.join("libllama.so.0").exists()
        || !std::fs::read_dir(&dist)?.any(|entry| {
            entry.is_ok_and(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("libggml-cpu")
            })
        })
    {
        bail!(
            "the portable build left no libllama.so.0 or no CPU backends to ship ({copied} \
             libraries found under {})",
            release.display()
        );
    }
    Ok(dist)
}

fn baseline_rustflags() -> String {
    if cfg!(target_arch = "x86_64") {
        "-C target-cpu=x86-64".to_string()
    } else {
        String::new()
    }
}

/// Whether a library file name is a soname: `libllama.so.0`, not `libllama.so` or
/// `libllama.so.0.6.0`.
fn is_soname(name: &str) -> bool {
    name.starts_with("lib")
        && !name.starts_with("libggml-cpu")
        && name.rsplit_once(".so.").is_some_and(|(_, version)| {
            !version.is_empty() && version.bytes().all(|byte| byte.is_ascii_digit())
        })
}

/// The `out` directories of llama-cpp-sys-2's build script runs in this profile.
fn build_script_outputs(release: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut outputs = Vec::new();
    for entry in std::fs::read_dir(release.join("build"))? {
        let path = entry?.path();
        let is_sys = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("llama-cpp-sys-2-"));
        if is_sys && path.join("out/backends").is_dir() {
            outputs.push(path.join("out"));
        }
    }
    Ok(outputs)
}

fn copy_libraries(from: &Path, to: &Path, wanted: impl Fn(&str) -> bool) -> anyhow::Result<usize> {
    let mut copied = 0;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Follows symbolic links: a link to a library is copied as the library.
        if wanted(&name) && std::fs::metadata(entry.path())?.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Copies the directory to a fresh place, runs it from an unrelated working directory with a
/// clean environment (no `LD_LIBRARY_PATH`), and checks that it chose a CPU backend and serves.
fn check_dist(dist: &Path) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("hearth-dist-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let install = scratch.join("install");
    let home = scratch.join("home");
    std::fs::create_dir_all(&install)?;
    std::fs::create_dir_all(&home)?;
    for entry in std::fs::read_dir(dist)? {
        let entry = entry?;
        std::fs::copy(entry.path(), install.join(entry.file_name()))?;
    }
    let binary = install.join("hearth");
    let hearth = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(&home)
            .arg("--data-dir")
            .arg(home.join("data"))
            .args(args);
        command
    };

    let version = hearth(&["version"])
        .output()
        .context("cannot run the copied hearth")?;
    let printed = String::from_utf8_lossy(&version.stdout).into_owned();
    if !version.status.success() {
        bail!(
            "`hearth version` failed: {}{}",
            printed,
            String::from_utf8_lossy(&version.stderr)
        );
    }
    let kernels = printed
        .lines()
        .find_map(|line| line.strip_prefix("cpu kernels:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    println!("dist: `hearth version` says the kernels use: {kernels}");
    if kernels.is_empty() || kernels == "none" {
        bail!("the copied build found no CPU backend:\n{printed}");
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && !kernels.split_whitespace().any(|feature| feature == "avx2")
    {
        bail!("this CPU has AVX2 but the backend loaded does not use it: {kernels}");
    }

    let models = crate::bench_inference::model_cache()?;
    let pulled = hearth(&[
        "pull",
        &models.join(CHAT_FILE).to_string_lossy(),
        "--name",
        "sample",
    ])
    .output()?;
    if !pulled.status.success() {
        bail!(
            "hearth pull failed: {}",
            String::from_utf8_lossy(&pulled.stderr)
        );
    }
    let address = local_address()?;
    let log_path = scratch.join("serve.log");
    let child = hearth(&["serve", "--listen", &address])
        .env("HEARTH_MODELS_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/readyz", &log_path)?;
    let response = crate::http::Connection::open(&server.address)?.post_json(
        "/v1/chat/completions",
        &json!({
            "model": "sample",
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 8,
            "temperature": 0
        }),
    )?;
    let body = response.json()?;
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    if response.status != 200 || content.is_empty() {
        bail!(
            "the copied build did not answer a chat completion ({}): {body}; see {}",
            response.status,
            log_path.display()
        );
    }
    println!("dist: a chat completion answered {content:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
