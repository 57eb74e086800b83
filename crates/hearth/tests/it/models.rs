//! `hearth pull` and `hearth models ...` through the built binary, pulling from a real HTTP
//! server started by the test.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use hearth_models::gguf::GgufBuilder;

use crate::{hearth, run, stderr_of, stdout_of};

/// Serves `body` to every request on a free local port, from a background thread, until the
/// test process ends. Returns the base URL.
fn serve_forever(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => head.extend_from_slice(&buffer[..read]),
                }
            }
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{address}")
}

fn tiny_gguf() -> Vec<u8> {
    GgufBuilder::new()
        .string("general.architecture", "llama")
        .u32("general.file_type", 15)
        .u32("llama.context_length", 2048)
        .tensor("token_embd.weight", &[1000])
        .build()
}

fn models(home: &Path, args: &[&str]) -> std::process::Output {
    run(hearth(home)
        .arg("--data-dir")
        .arg(home.join("data"))
        .args(args))
}

#[test]
fn pull_from_a_url_then_list_show_copy_remove() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = serve_forever(tiny_gguf());
    let url = format!("{base}/files/tiny.gguf");

    let pulled = models(dir.path(), &["pull", &url, "--name", "x:1"]);
    assert!(pulled.status.success(), "{}", stderr_of(&pulled));
    assert!(
        stdout_of(&pulled).starts_with("pulled x:1 ("),
        "{}",
        stdout_of(&pulled)
    );
    // Not a terminal: plain status lines, no progress bar escapes.
    let progress = stderr_of(&pulled);
    for status in [
        "pulling manifest",
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ] {
        assert!(progress.contains(status), "{status} missing:\n{progress}");
    }
    assert!(!progress.contains('\u{1b}'), "{progress}");

    let list = models(dir.path(), &["models", "list"]);
    assert!(list.status.success(), "{}", stderr_of(&list));
    let list = stdout_of(&list);
    let mut lines = list.lines();
    assert!(lines.next().unwrap().starts_with("NAME"), "{list}");
    let row = lines.next().expect("one model");
    for cell in ["x:1", "chat", "llama", "Q4_K_M", "owned"] {
        assert!(row.contains(cell), "{cell} missing: {row}");
    }

    let show = models(dir.path(), &["models", "show", "x:1"]);
    let show = stdout_of(&show);
    assert!(show.contains("context length   2048"), "{show}");
    assert!(show.contains(&format!("source           {url}")), "{show}");

    let json = models(dir.path(), &["models", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json[0]["model"], "x:1");
    assert_eq!(json[0]["quantization"], "Q4_K_M");

    let copied = models(dir.path(), &["models", "cp", "x:1", "y"]);
    assert_eq!(stdout_of(&copied), "copied x:1 to y:latest\n");
    let removed = models(dir.path(), &["models", "rm", "x:1"]);
    assert_eq!(
        stdout_of(&removed),
        "removed x:1\n",
        "the copy keeps the blob"
    );

    let rollback = models(dir.path(), &["models", "rollback", "y"]);
    assert!(!rollback.status.success());
    assert_eq!(
        stderr_of(&rollback),
        "hearth: model y:latest has no previous version to roll back to\n"
    );
    let removed = models(dir.path(), &["models", "rm", "y"]);
    assert!(
        stdout_of(&removed).contains("deleted "),
        "{}",
        stdout_of(&removed)
    );
    let empty = models(dir.path(), &["models", "list"]);
    assert!(stdout_of(&empty).starts_with("no models yet"));
}

#[test]
fn bad_names_and_missing_models_are_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = models(
        dir.path(),
        &["pull", "http://127.0.0.1:9/x.gguf", "--name", "Bad:1"],
    );
    assert!(!bad.status.success());
    let message = stderr_of(&bad);
    assert!(
        message.contains("invalid model name \"Bad:1\": 'B' is not allowed in the name"),
        "{message}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing written for a bad name"
    );

    let missing = models(dir.path(), &["models", "show", "nothing"]);
    assert!(!missing.status.success());
    assert!(
        stderr_of(&missing).contains("model nothing:latest not found"),
        "{}",
        stderr_of(&missing)
    );

    let mismatch = models(
        dir.path(),
        &[
            "pull",
            &serve_forever(tiny_gguf()),
            "--name",
            "m",
            "--sha256",
            &"ab".repeat(32),
        ],
    );
    assert!(!mismatch.status.success());
    assert!(
        stderr_of(&mismatch).contains("sha256 mismatch"),
        "{}",
        stderr_of(&mismatch)
    );
    let list = models(dir.path(), &["models", "list"]);
    assert!(stdout_of(&list).starts_with("no models yet"));
}
