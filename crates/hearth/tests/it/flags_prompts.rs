//! Flags and prompts through the CLI against the real binary: `[[flags]]` from the
//! configuration served over OFREP and changed live by a reload (a bad one refused, the
//! running flags kept), flags set and switched from the CLI, and a prompt pushed, labelled and
//! rendered.

use std::time::Duration;

use crate::plugins::cli;
use crate::{Server, client, write_file};

const FLAGS: &str = r#"
[reload]
poll_interval_ms = 100

[[flags]]
key = "checkout"
type = "string"
variants = { classic = "classic", express = "express" }
default_variant = "classic"
rules = [{ when = [{ attribute = "plan", op = "in", values = ["pro"] }], variant = "express" }]
"#;

fn evaluate(server: &Server, key: &str, context: serde_json::Value) -> serde_json::Value {
    client()
        .post(server.url(&format!("/ofrep/v1/evaluate/flags/{key}")))
        .json(&serde_json::json!({"context": context}))
        .send()
        .expect("evaluate")
        .json()
        .expect("JSON")
}

#[test]
fn configured_flags_reload_live_and_the_cli_sets_and_switches_flags() {
    let mut server = Server::start(|command, home| {
        let file = home.join("hearth.toml");
        write_file(&file, FLAGS);
        command.arg("--config").arg(file);
    });
    let config_file = server.dir.path().join("hearth.toml");
    let pro = serde_json::json!({"targetingKey": "u1", "plan": "pro"});
    assert_eq!(
        evaluate(&server, "checkout", pro.clone())["value"],
        "express"
    );

    // The configuration changes the rule: a reload applies it without a restart.
    write_file(&config_file, &FLAGS.replace("\"pro\"", "\"team\""));
    server.wait_for_log("config reloaded", Duration::from_secs(10));
    assert_eq!(
        evaluate(&server, "checkout", pro.clone())["value"],
        "classic"
    );
    // A flag the flags service refuses rejects the reload; the running flag stays.
    write_file(
        &config_file,
        &FLAGS.replace(
            "default_variant = \"classic\"",
            "default_variant = \"turbo\"",
        ),
    );
    let rejected = server.wait_for_log("config reload rejected", Duration::from_secs(10));
    assert!(rejected.contains("default_variant"), "{rejected}");
    let team = serde_json::json!({"targetingKey": "u1", "plan": "team"});
    assert_eq!(evaluate(&server, "checkout", team)["value"], "express");

    // The configuration's flag cannot be switched from the CLI; one set from a file can.
    let (ok, _, err) = cli(&server, &["flags", "disable", "checkout"]);
    assert!(!ok && err.contains("configuration"), "{err}");
    let file = server.dir.path().join("dark.json");
    write_file(
        &file,
        r#"{"key": "dark-mode", "rules": [{"when": [{"attribute": "beta", "op": "in", "values": [true]}], "variant": "on"}]}"#,
    );
    let (ok, out, err) = cli(&server, &["flags", "set", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("dark-mode"), "{out}");
    let (ok, out, err) = cli(
        &server,
        &[
            "flags",
            "eval",
            "dark-mode",
            "--context",
            r#"{"beta": true}"#,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("TARGETING_MATCH"), "{out}");
    let (ok, _, err) = cli(&server, &["flags", "disable", "dark-mode"]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&server, &["flags", "list"]);
    assert!(ok, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(
        rows[0].starts_with("checkout") && rows[0].contains("config"),
        "{out}"
    );
    assert!(
        rows[1].starts_with("dark-mode") && rows[1].contains("off"),
        "{out}"
    );

    // A prompt: pushed twice (the second makes nothing new), labelled, rendered.
    let prompt = server.dir.path().join("greet.json");
    write_file(
        &prompt,
        r#"{"name": "greet", "messages": [{"role": "user", "content": "Hello {{ who }}!"}]}"#,
    );
    let (ok, out, err) = cli(&server, &["prompts", "push", prompt.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("pushed greet version 1"), "{out}");
    let (ok, out, err) = cli(
        &server,
        &[
            "prompts",
            "push",
            prompt.to_str().unwrap(),
            "--label",
            "production",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("unchanged"), "{out}");
    let (ok, out, err) = cli(
        &server,
        &[
            "prompts",
            "render",
            "greet",
            "--at",
            "production",
            "--var",
            "who=Ada",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("Hello Ada!"), "{out}");
    let (ok, _, err) = cli(&server, &["prompts", "render", "greet"]);
    assert!(!ok && err.contains("variables.who"), "{err}");
    let (ok, out, err) = cli(&server, &["prompts", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("production=1"), "{out}");
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
}
