//! Events through the built binary: `hearth events pub` stores an event on a running server
//! and `hearth events sub` prints it back, replayed from its sequence, as a JSON line.

use serde_json::Value;

use crate::Server;

#[test]
fn the_cli_publishes_an_event_and_prints_it_back_from_the_log() {
    let server = Server::start(|_, _| {});
    let home = server.dir.path();
    let events = |args: &[&str]| {
        let output = crate::run(
            crate::hearth(home)
                .arg("events")
                .args(args)
                .args(["--url", &server.url("")]),
        );
        (
            output.status.success(),
            crate::stdout_of(&output),
            crate::stderr_of(&output),
        )
    };
    let (ok, out, err) = events(&["pub", "agent.task.done", r#"{"task": 7}"#]);
    assert!(ok, "{err}");
    let published: Value = serde_json::from_str(out.trim()).expect("JSON answer");
    assert_eq!(published["seq"], 1, "{out}");

    let (ok, _, err) = events(&["pub", "agent.task.done", "{not json"]);
    assert!(!ok);
    assert!(err.contains("not JSON"), "{err}");

    let (ok, out, err) = events(&["sub", "agent.>,other.*", "--from-seq", "1", "--count", "1"]);
    assert!(ok, "{err}");
    let line: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["seq"], 1);
    assert_eq!(line["topic"], "agent.task.done");
    assert_eq!(line["data"]["task"], 7);
}
