//! Plugins through the CLI against the real binary: install the sample plugins (built from
//! source), call a tool, watch the sandbox stop a runaway call, upgrade, roll back, and find
//! everything still installed after a restart.

use crate::Server;

fn sample_paths(name: &str) -> (String, String) {
    let components = hearth_plugins::samples::build().unwrap_or_else(|error| panic!("{error}"));
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/samples")
        .join(name)
        .join("plugin.toml");
    (
        manifest.to_str().expect("path").to_string(),
        components
            .join(format!("{name}.wasm"))
            .to_str()
            .expect("path")
            .to_string(),
    )
}

/// Runs `hearth ARGS --url <server>`: (success, stdout, stderr).
pub(crate) fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let output = crate::run(
        crate::hearth(server.dir.path())
            .args(args)
            .args(["--url", &server.url("")]),
    );
    (
        output.status.success(),
        crate::stdout_of(&output),
        crate::stderr_of(&output),
    )
}

#[test]
fn the_cli_installs_calls_upgrades_and_rolls_back_plugins_that_survive_a_restart() {
    let mut server = Server::start(|_, _| {});
    let (calculator_manifest, calculator) = sample_paths("calculator");
    let (ok, out, err) = cli(
        &server,
        &["plugins", "install", &calculator_manifest, &calculator],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "installed plugin calculator 0.1.0");
    let (ok, out, err) = cli(
        &server,
        &[
            "plugins",
            "call",
            "calculator",
            "convert",
            r#"{"value": 5, "from": "km", "to": "mi"}"#,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), r#"{"unit":"mi","value":3.106856}"#);

    // A runaway call is stopped; the error says why, and the plugin's log has it.
    let (unruly_manifest, unruly) = sample_paths("unruly");
    let (ok, _, err) = cli(&server, &["plugins", "install", &unruly_manifest, &unruly]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&server, &["plugins", "call", "unruly", "spin"]);
    assert!(!ok);
    assert!(err.contains("was stopped (cpu)"), "{err}");
    let (ok, out, err) = cli(&server, &["plugins", "logs", "unruly"]);
    assert!(ok, "{err}");
    assert!(out.contains("call stopped (cpu)"), "{out}");

    // The unit converter's manifest at 0.2.0 over the unruly plugin's component, and back.
    let upgraded = server.dir.path().join("calculator-0.2.0.toml");
    let text = std::fs::read_to_string(&calculator_manifest).expect("manifest");
    std::fs::write(&upgraded, text.replace("0.1.0", "0.2.0")).expect("write");
    let (ok, out, err) = cli(
        &server,
        &["plugins", "upgrade", upgraded.to_str().unwrap(), &unruly],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "upgraded plugin calculator 0.2.0");
    let (ok, out, err) = cli(
        &server,
        &["plugins", "call", "calculator", "echo", r#"{"a":1}"#],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), r#"{"a":1}"#);
    let (ok, out, err) = cli(&server, &["plugins", "rollback", "calculator"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "rolled back plugin calculator 0.1.0");
    let (ok, out, err) = cli(&server, &["plugins", "disable", "unruly"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "disabled plugin unruly 0.1.0 (disabled)");

    // After a restart both are installed as they were.
    server.restart(|_, _| {});
    let (ok, out, err) = cli(&server, &["plugins", "list"]);
    assert!(ok, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with("calculator")
            && rows[0].contains("0.1.0")
            && rows[0].ends_with("convert"),
        "{out}"
    );
    assert!(
        rows[1].starts_with("unruly") && rows[1].contains("false"),
        "{out}"
    );
    let (ok, out, err) = cli(
        &server,
        &[
            "plugins",
            "call",
            "calculator",
            "convert",
            r#"{"value": 100, "from": "c", "to": "f"}"#,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), r#"{"unit":"f","value":212.0}"#);
    let (ok, out, err) = cli(&server, &["plugins", "remove", "unruly"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "removed plugin unruly");
}

#[test]
fn a_server_that_trusts_a_key_installs_only_what_that_key_signed() {
    let keys = tempfile::tempdir().expect("temp dir");
    let secret = keys.path().join("publisher.key");
    let output = crate::run(crate::hearth(keys.path()).args([
        "plugins",
        "keygen",
        secret.to_str().unwrap(),
    ]));
    assert!(output.status.success(), "{}", crate::stderr_of(&output));
    let public = crate::stdout_of(&output).trim().to_string();
    assert_eq!(public.len(), 44, "{public}");
    // A key is never overwritten.
    let again = crate::run(crate::hearth(keys.path()).args([
        "plugins",
        "keygen",
        secret.to_str().unwrap(),
    ]));
    assert!(!again.status.success());

    let server = Server::start(|command, _| {
        command
            .env("HEARTH_PLUGINS_TRUSTED_KEYS", &public)
            .env("HEARTH_PLUGINS_ALLOW_UNSIGNED", "false");
    });
    let hearth = |args: &[&str]| cli(&server, args);
    // A copy of the component, so its signature file is this test's own.
    let (manifest, built) = sample_paths("calculator");
    let component = keys.path().join("calculator.wasm");
    std::fs::copy(&built, &component).expect("copy");
    let component = component.to_str().unwrap().to_string();

    let (ok, _, err) = hearth(&["plugins", "install", &manifest, &component]);
    assert!(!ok);
    assert!(err.contains("signed plugins only"), "{err}");
    let output = crate::run(crate::hearth(keys.path()).args([
        "plugins",
        "sign",
        "--key",
        secret.to_str().unwrap(),
        &manifest,
        &component,
    ]));
    assert!(output.status.success(), "{}", crate::stderr_of(&output));
    assert_eq!(
        crate::stdout_of(&output).trim(),
        format!("wrote {component}.sig")
    );
    let (ok, out, err) = hearth(&["plugins", "install", &manifest, &component]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "installed plugin calculator 0.1.0");
    let (ok, out, err) = hearth(&["plugins", "show", "calculator"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("\"signed_by\": \"{public}\"")),
        "{out}"
    );
}

#[test]
fn a_plugin_chats_and_embeds_with_the_models_its_manifest_names() {
    let server = crate::inference::serve_with_sample_models_and(&[]);
    let (manifest, component) = sample_paths("writer");
    let (ok, out, err) = cli(&server, &["plugins", "install", &manifest, &component]);
    assert!(ok, "{out}{err}");

    // The chat goes through the server's own chat path: an answer, with its usage.
    let (ok, out, err) = cli(
        &server,
        &[
            "plugins",
            "call",
            "writer",
            "complete",
            r#"{"prompt": "The capital of France is", "max_tokens": 8}"#,
        ],
    );
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert!(!answer["text"].as_str().unwrap().is_empty(), "{answer}");
    assert!(
        answer["usage"]["completion_tokens"].as_u64().unwrap() >= 1,
        "{answer}"
    );
    // The plugin's chat is the caller's usage (here the local user's, the instance's own).
    let started = std::time::Instant::now();
    loop {
        let usage: serde_json::Value = crate::client()
            .get(server.url("/admin/v1/usage?group_by=model"))
            .send()
            .expect("usage")
            .json()
            .expect("JSON");
        let chat = usage["data"]
            .as_array()
            .and_then(|groups| groups.iter().find(|group| group["model"] == "gemma3:270m"));
        if let Some(chat) = chat {
            assert_eq!(chat["requests"], 1, "{usage}");
            assert_eq!(
                chat["completion_tokens"], answer["usage"]["completion_tokens"],
                "{usage}"
            );
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "no usage: {usage}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let (ok, out, err) = cli(
        &server,
        &[
            "plugins",
            "call",
            "writer",
            "embed",
            r#"{"text": "a lighthouse keeper"}"#,
        ],
    );
    assert!(ok, "{err}");
    let embedded: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(embedded["dimensions"], 384);
    assert!(embedded["norm"].as_f64().unwrap() > 0.1, "{embedded}");

    // A model the manifest does not name is refused inside the plugin's call.
    let (ok, _, err) = cli(
        &server,
        &[
            "plugins",
            "call",
            "writer",
            "complete",
            r#"{"prompt": "hi", "model": "llama3:8b"}"#,
        ],
    );
    assert!(!ok);
    assert!(err.contains("not among this plugin's models"), "{err}");
}
