//! The sample plugins of the repository's `plugins/` workspace, built from source for tests
//! and benchmarks (`cargo build --target wasm32-wasip2 --release`, once per process; cargo's
//! own lock keeps concurrent test processes from building twice).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A sample plugin: its manifest and its component.
#[derive(Debug, Clone)]
pub struct Sample {
    pub manifest: String,
    pub component: Vec<u8>,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

/// Builds every sample (a no-op when they are up to date) and returns the folder of the
/// components.
pub fn build() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
                Some(dir) => PathBuf::from(dir).join("plugins"),
                None => workspace().join("../target/plugins"),
            };
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let output = Command::new(cargo)
                .args([
                    "build",
                    "--release",
                    "--locked",
                    "--target",
                    "wasm32-wasip2",
                ])
                .arg("--manifest-path")
                .arg(workspace().join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", &target_dir)
                .output()
                .map_err(|error| format!("cargo could not be run: {error}"))?;
            if !output.status.success() {
                return Err(format!(
                    "building the sample plugins failed (is the wasm32-wasip2 target installed? \
                     `rustup target add wasm32-wasip2`):\n{}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(target_dir.join("wasm32-wasip2/release"))
        })
        .clone()
}

/// Sample `name` (`calculator`, `counter`, `relay`, `unruly`, `socket`), built.
pub fn sample(name: &str) -> Sample {
    let components = build().unwrap_or_else(|error| panic!("{error}"));
    let manifest_path = workspace().join("samples").join(name).join("plugin.toml");
    Sample {
        manifest: std::fs::read_to_string(&manifest_path)
            .unwrap_or_else(|error| panic!("{}: {error}", manifest_path.display())),
        component: std::fs::read(components.join(format!("{name}.wasm")))
            .unwrap_or_else(|error| panic!("sample {name}: {error}")),
    }
}
