//! The official OpenAI and Ollama Python clients against the built binary serving the sample
//! models: what an app developer's first five minutes look like. The client scripts live in
//! `tests/clients/` and assert by themselves; this module starts the server, runs each script
//! with the virtualenv `scripts/setup` creates, and shows the script's output when it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::inference::serve_with_sample_models;

const SERVER_LOG_LINES: usize = 40;

/// The virtualenv's interpreter. A missing venv fails the test, naming the command that makes
/// it: these tests are the proof that real clients work, so they are never skipped.
pub(crate) fn venv_python() -> PathBuf {
    let venv = std::env::var_os("HEARTH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth/venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no Python virtualenv with the openai and ollama clients at {}; run scripts/setup \
         (or set HEARTH_VENV to one made from crates/hearth/tests/clients/requirements.txt)",
        venv.display()
    );
    python
}

pub(crate) fn client_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Runs one client script against a fresh server and fails with the script's output and the
/// server's log unless it exits 0.
fn run_client_script(name: &str) {
    run_client_script_after(name, |_| {});
}

/// [`run_client_script`], once `prepare` has set the server up (installed a plugin, say).
fn run_client_script_after(name: &str, prepare: impl FnOnce(&crate::Server)) {
    let python = venv_python();
    let server = serve_with_sample_models();
    prepare(&server);
    // A clean environment, so a developer's OPENAI_API_KEY, OLLAMA_HOST or proxy settings
    // cannot redirect the clients away from the server under test.
    let output = Command::new(&python)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", server.dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(client_script(name))
        .arg(format!("http://{}", server.address))
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // The end of the server log has the failing requests; its start is llama.cpp's
        // model-loading chatter.
        let log = server.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(SERVER_LOG_LINES)..].join("\n");
        panic!(
            "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n\
             --- last {SERVER_LOG_LINES} lines of the server log\n{tail}",
            output.status
        );
    }
    println!("{stdout}");
}

#[test]
fn openai_python_client_works_against_the_binary() {
    run_client_script("openai_client.py");
}

#[test]
fn ollama_python_client_works_against_the_binary() {
    run_client_script("ollama_client.py");
}

#[test]
fn openai_python_client_runs_the_responses_api_against_the_binary() {
    run_client_script("openai_responses.py");
}

#[test]
fn openai_python_client_chats_with_a_plugin_tool_against_the_binary() {
    run_client_script_after("openai_plugins.py", |server| {
        use base64::Engine as _;
        let calculator = hearth_plugins::samples::sample("calculator");
        let body = serde_json::json!({
            "manifest": calculator.manifest,
            "component": base64::engine::general_purpose::STANDARD.encode(&calculator.component),
        });
        let response = crate::client()
            .post(server.url("/v1/plugins"))
            .json(&body)
            .send()
            .expect("install the calculator");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().unwrap_or_default()
        );
    });
}

#[test]
fn openai_python_client_uses_prompt_templates_against_the_binary() {
    run_client_script("openai_prompts.py");
}

#[test]
fn openfeature_python_sdk_reads_flags_over_ofrep_against_the_binary() {
    run_client_script("openfeature_flags.py");
}

#[test]
fn openai_python_client_takes_part_in_an_experiment_against_the_binary() {
    run_client_script("openai_experiments.py");
}
