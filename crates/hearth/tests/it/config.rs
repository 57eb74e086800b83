//! Configuration through the binary: precedence, validation failures, hot reload.

use std::time::Duration;

use crate::{Server, client, hearth, run, stderr_of, stdout_of, write_file};

#[test]
fn invalid_config_stops_start_up_with_the_key_named() {
    let cases = [
        ("[server]\nlisen = \"127.0.0.1:1\"\n", "server.lisen"),
        (
            "[server]\nmax_body_bytes = \"lots\"\n",
            "server.max_body_bytes",
        ),
        ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
    ];
    for (text, key) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hearth.toml");
        write_file(&file, text);
        let output = run(hearth(dir.path())
            .arg("--config")
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("serve"));
        assert!(!output.status.success(), "{text} was accepted");
        let stderr = stderr_of(&output);
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
        assert!(stderr.contains("invalid configuration"), "{stderr}");
        assert!(
            !dir.path().join("data").exists(),
            "nothing may be created before the config is valid"
        );
    }
}

#[test]
fn env_overrides_the_file_and_flags_override_env() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hearth.toml");
    write_file(
        &file,
        "[server]\nlisten = \"127.0.0.1:1001\"\n[log]\nlevel = \"warn\"\n",
    );

    let check = |extra: &[&str], env: &[(&str, &str)]| {
        let mut command = hearth(dir.path());
        command.arg("--config").arg(&file).args(extra);
        for (name, value) in env {
            command.env(name, value);
        }
        command.args(["config", "check"]);
        let output = run(&mut command);
        assert!(output.status.success(), "{}", stderr_of(&output));
        stdout_of(&output)
    };

    let from_file = check(&[], &[]);
    assert!(
        from_file.contains("listen = \"127.0.0.1:1001\"  # file"),
        "{from_file}"
    );

    let from_env = check(&[], &[("HEARTH_SERVER_LISTEN", "127.0.0.1:1002")]);
    assert!(
        from_env.contains("listen = \"127.0.0.1:1002\"  # env HEARTH_SERVER_LISTEN"),
        "{from_env}"
    );

    let from_flag = check(&["--log-level", "debug"], &[("HEARTH_LOG_LEVEL", "error")]);
    assert!(
        from_flag.contains("level = \"debug\"  # flag --log-level"),
        "{from_flag}"
    );

    // And the server really listens where the flag says, over what env says.
    let server = Server::start(|command, _| {
        command.env("HEARTH_SERVER_LISTEN", "127.0.0.1:1");
    });
    assert_ne!(server.address, "127.0.0.1:1");
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .expect("request")
            .status(),
        200
    );
}

#[test]
fn config_check_masks_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(hearth(dir.path())
        .env(
            "HEARTH_TELEMETRY_OTLP_HEADERS",
            "authorization=Bearer very-secret",
        )
        .args(["config", "check"]));
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(!stdout.contains("very-secret"), "{stdout}");
    assert!(stdout.contains("otlp_headers = \"********\""), "{stdout}");
}

#[test]
fn log_level_reloads_on_file_change_and_a_bad_reload_keeps_the_old_config() {
    let mut server = Server::start(|command, home| {
        let file = home.join("hearth.toml");
        // The binary's own lines stay at info so the harness sees the address it listens on;
        // request lines (from hearth_server) are below the threshold.
        write_file(
            &file,
            "[log]\nlevel = \"warn,hearth::serve=info\"\n[reload]\npoll_interval_ms = 100\n",
        );
        command.arg("--config").arg(file);
    });
    let http = client();
    let config_file = server.dir.path().join("hearth.toml");

    http.get(server.url("/healthz"))
        .header("x-request-id", "before-reload")
        .send()
        .expect("request");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !server.log().contains("before-reload"),
        "info lines are off at warn"
    );

    write_file(
        &config_file,
        "[log]\nlevel = \"info\"\n[reload]\npoll_interval_ms = 100\n",
    );
    server.wait_for_log("config reloaded", Duration::from_secs(10));
    http.get(server.url("/healthz"))
        .header("x-request-id", "after-reload")
        .send()
        .expect("request");
    server.wait_for_log("after-reload", Duration::from_secs(5));

    // A bad value is refused, named, and the info level stays in force.
    write_file(
        &config_file,
        "[log]\nlevel = \"loud\"\n[reload]\npoll_interval_ms = 100\n",
    );
    let rejected = server.wait_for_log("config reload rejected", Duration::from_secs(10));
    assert!(rejected.contains("log.level"), "{rejected}");
    http.get(server.url("/healthz"))
        .header("x-request-id", "after-bad-reload")
        .send()
        .expect("request");
    server.wait_for_log("after-bad-reload", Duration::from_secs(5));

    // SIGHUP reloads too: back to warn, and request lines stop.
    write_file(
        &config_file,
        "[log]\nlevel = \"warn\"\n[reload]\nwatch = false\n",
    );
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    http.get(server.url("/healthz"))
        .header("x-request-id", "after-sighup")
        .send()
        .expect("request");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!server.log().contains("after-sighup"), "{}", server.log());
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
}

/// `scripts/setup` reads `HEARTH_VENV`; exporting it (or a variable of another tool sharing
/// our prefix) once stopped `hearth serve` with "unknown config key".
#[test]
fn unknown_hearth_env_vars_are_warnings_and_our_own_are_silent() {
    let mut server = Server::start(|command, _| {
        command
            .env("HEARTH_VENV", "/x")
            .env("HEARTH_SERVER_LISTN", "127.0.0.1:1");
    });
    let response = client()
        .get(server.url("/healthz"))
        .send()
        .expect("the server runs");
    assert!(response.status().is_success());
    let log = server.wait_for_log("HEARTH_SERVER_LISTN", Duration::from_secs(10));
    assert!(log.contains("did you mean HEARTH_SERVER_LISTEN?"), "{log}");
    let whole_log = server.log();
    assert!(!whole_log.contains("HEARTH_VENV"), "{whole_log}");

    // `config check` says the same on stderr and succeeds.
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(hearth(dir.path())
        .env("HEARTH_SERVER_LISTN", "127.0.0.1:1")
        .args(["config", "check"]));
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("warning: environment variable HEARTH_SERVER_LISTN"),
        "{}",
        stderr_of(&output)
    );
}
