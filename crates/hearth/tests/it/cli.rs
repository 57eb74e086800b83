//! The command line itself: help, version, completions.

use crate::{hearth, run, stderr_of, stdout_of};

#[test]
fn version_and_help_and_completions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let version = run(hearth(dir.path()).arg("version"));
    assert!(version.status.success());
    let printed = stdout_of(&version);
    let mut lines = printed.lines();
    assert_eq!(
        lines.next(),
        Some(format!("hearth {}", env!("CARGO_PKG_VERSION")).as_str())
    );
    // The instruction sets the inference kernels were built for; every x86-64 build has SSE3.
    let kernels = lines.next().expect("a cpu kernels line");
    assert!(kernels.starts_with("cpu kernels: "), "{printed}");
    if cfg!(target_arch = "x86_64") {
        assert!(
            kernels.split(' ').any(|feature| feature == "sse3"),
            "{printed}"
        );
    }

    let help = run(hearth(dir.path()).arg("--help"));
    let help = stdout_of(&help);
    for command in [
        "serve",
        "config",
        "migrate",
        "pull",
        "models",
        "version",
        "completions",
        "--data-dir",
        "--config",
    ] {
        assert!(
            help.contains(command),
            "{command} missing from --help:\n{help}"
        );
    }

    for shell in ["bash", "zsh", "fish"] {
        let output = run(hearth(dir.path()).args(["completions", shell]));
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert!(stdout_of(&output).contains("hearth"), "{shell}");
    }

    // Global options are accepted after the subcommand too.
    let output = run(hearth(dir.path()).args(["config", "check", "--data-dir", "/tmp/hearth-x"]));
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains("data_dir = \"/tmp/hearth-x\"  # flag --data-dir"));
}
