//! Jobs through the CLI against the real binary: jobs from the configuration's `[[jobs]]`
//! (a schedule with seconds, a dependent job), one defined from a file, `jobs run` waiting
//! for its end, and a history that is still there after a restart.

use std::time::Duration;

use crate::Server;
use crate::plugins::cli;

const CONFIG: &str = r#"
[[jobs]]
name = "tick"
schedule = "* * * * * *"
builtin = "noop"

[[jobs]]
name = "after-tick"
after = ["tick"]
builtin = "events.retention"
"#;

fn configured(command: &mut std::process::Command, home: &std::path::Path) {
    let file = home.join("hearth.toml");
    std::fs::write(&file, CONFIG).expect("config");
    command.arg("--config").arg(file);
}

/// The job's runs as `hearth jobs history --json` prints them.
fn history(server: &Server, job: &str) -> Vec<serde_json::Value> {
    let (ok, out, err) = cli(
        server,
        &["jobs", "history", job, "--json", "--limit", "1000"],
    );
    assert!(ok, "{err}");
    serde_json::from_str(&out).expect("JSON runs")
}

#[test]
fn configured_jobs_fire_their_dependents_run_from_the_cli_and_keep_their_history() {
    let mut server = Server::start(configured);
    let (ok, out, err) = cli(&server, &["jobs", "list"]);
    assert!(ok, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with("after-tick") && rows[0].contains("after tick"),
        "{out}"
    );
    assert!(
        rows[1].starts_with("tick") && rows[1].contains("* * * * * *"),
        "{out}"
    );

    // The schedule fires every second; each success runs its dependent after it.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (ticks, afters) = loop {
        let ticks = history(&server, "tick");
        let afters = history(&server, "after-tick");
        if ticks.len() >= 2 && !afters.is_empty() {
            break (ticks, afters);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{ticks:?} {afters:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        ticks.iter().all(|run| run["reason"] == "schedule"),
        "{ticks:?}"
    );
    assert_eq!(afters[0]["reason"], "after");
    assert!(
        afters[0]["created_at"].as_str() >= ticks.last().unwrap()["finished_at"].as_str(),
        "{afters:?} {ticks:?}"
    );

    // A job from a file, run now: the CLI waits and fails when the run fails.
    let file = server.dir.path().join("probe.json");
    std::fs::write(
        &file,
        r#"{"name": "probe", "retries": 1, "backoff_ms": 10,
            "action": {"type": "plugin", "plugin": "missing", "tool": "none"}}"#,
    )
    .expect("job file");
    let (ok, out, err) = cli(&server, &["jobs", "define", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "defined job probe");
    let (ok, out, err) = cli(&server, &["jobs", "run", "probe"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("failed") && err.contains("did not succeed"),
        "{out}{err}"
    );
    let (ok, out, err) = cli(&server, &["jobs", "history", "probe"]);
    assert!(ok, "{err}");
    let row = out.lines().nth(1).expect("a run");
    assert!(
        row.contains("failed") && row.contains("manual") && row.contains(" 2 "),
        "{out}"
    );

    // After a restart the history is there, and configuration's jobs cannot be removed here.
    let before = history(&server, "tick").len();
    server.restart(configured);
    assert!(history(&server, "tick").len() >= before);
    assert_eq!(history(&server, "probe").len(), 1);
    let (ok, _, err) = cli(&server, &["jobs", "remove", "tick"]);
    assert!(!ok);
    assert!(err.contains("configuration"), "{err}");
    let (ok, out, err) = cli(&server, &["jobs", "remove", "probe"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "removed job probe");
}
