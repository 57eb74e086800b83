//! Processes the benchmarks start and watch: where cargo builds, a server killed when dropped,
//! waiting for readiness, and memory figures from /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The cargo that runs xtask.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds an example of a workspace crate in release and returns its path.
pub fn release_example(package: &str, example: &str) -> anyhow::Result<PathBuf> {
    let status = cargo()
        .current_dir(repo_root())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            package,
            "--example",
            example,
        ])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the {example} example failed");
    }
    Ok(target_dir().join("release/examples").join(example))
}

/// Builds a benchmark peer that lives outside the workspace (`dir`, from the repository's
/// root) in release, into `~/.cache/<target_name>` so CI never builds its dependencies, with
/// `extra` arguments (a `--target`); returns that target directory.
pub fn build_outside_workspace(
    dir: &str,
    target_name: &str,
    extra: &[&str],
) -> anyhow::Result<PathBuf> {
    let target = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache")
        .join(target_name);
    let status = cargo()
        .current_dir(repo_root().join(dir))
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--release", "--quiet"])
        .args(extra)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building {dir} failed");
    }
    Ok(target)
}

/// Where cargo puts this workspace's builds (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// A free loopback address for a server the benchmark starts.
pub fn local_address() -> anyhow::Result<String> {
    Ok(format!(
        "127.0.0.1:{}",
        crate::free_port().map_err(|error| anyhow::anyhow!(error))?
    ))
}

/// A server the benchmark started; killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A server started as its own process group (one that forks workers, like LiteLLM's)
        // goes with all its workers; for any other child there is no such group, and this
        // does nothing.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `path` answers 200, failing early if the process exits.
pub fn wait_until_ready(server: &mut Server, path: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if crate::http_status(&server.address, path) == Some(200) {
            return Ok(());
        }
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited ({status}); see {}", log.display());
        }
        if Instant::now() > deadline {
            bail!(
                "the server was not ready within 180 s; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A memory figure of a process from /proc/PID/status (`VmRSS` is the resident size now,
/// `VmHWM` its peak).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The server settings in the benchmark's own environment (`HEARTH_*`, less the variables the
/// benchmarks read themselves) and allocator tuning (`MALLOC_*`), passed on to the server so
/// that a setting can be compared, e.g. `HEARTH_LOG_LEVEL=warn` or `HEARTH_MODELS_BATCH_SIZE=256`.
pub fn settings_from_env() -> Vec<(String, String)> {
    const OWN: [&str; 2] = ["HEARTH_MODEL_CACHE", "HEARTH_BENCH_LLAMA_SERVER_DIR"];
    std::env::vars()
        .filter(|(name, _)| {
            (name.starts_with("HEARTH_") && !OWN.contains(&name.as_str()))
                || name.starts_with("MALLOC_")
        })
        .collect()
}

/// The CPU's model name, as `/proc/cpuinfo` gives it.
pub fn cpu_model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|cpuinfo| {
            cpuinfo.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// `hearth serve` on a fresh data directory under `out_dir` with `models` (path, name)
/// registered in place, `env` set and then the settings from the benchmark's own environment
/// (which win); returns once `/readyz` answers 200. Its log is `out_dir/hearth.log`.
pub fn serve_hearth(
    binary: &Path,
    out_dir: &Path,
    models: &[(PathBuf, &str)],
    env: &[(&str, String)],
) -> anyhow::Result<Server> {
    let home = out_dir.join("hearth-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let data = home.join("data");
    let hearth = |args: &[&std::ffi::OsStr]| {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--data-dir")
            .arg(&data)
            .args(args);
        command
    };
    for (path, name) in models {
        let output = hearth(&[
            "pull".as_ref(),
            path.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
        ])
        .output()?;
        if !output.status.success() {
            bail!(
                "hearth pull {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let address = local_address()?;
    let log_path = out_dir.join("hearth.log");
    let log = std::fs::File::create(&log_path)?;
    let child = hearth(&["serve".as_ref(), "--listen".as_ref(), address.as_ref()])
        .envs(env.iter().map(|(name, value)| (name, value)))
        .envs(settings_from_env())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/readyz", &log_path)?;
    Ok(server)
}

/// Runs a benchmark program and reads the JSON report on the last line of its output.
pub fn json_of(command: &mut Command) -> anyhow::Result<serde_json::Value> {
    let output = command.output().context("cannot run a benchmark")?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("not a JSON report: {stdout}"))
}
