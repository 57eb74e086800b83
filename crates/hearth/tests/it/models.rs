//! `hearth pull` and `hearth models ...` through the built binary, and the same operations over
//! HTTP (`/api/pull`, `/api/tags`, `/api/copy`, `/api/delete`) on `hearth serve`, pulling from a
//! real HTTP server started by the test.

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_models::gguf::GgufBuilder;

use crate::{Server, client, hearth, run, stderr_of, stdout_of};

/// A file server on a free local port: serves `body` at every path, from a thread per
/// connection, until the test process ends. It answers `Range: bytes=N-` with the rest of the
/// file (206), records each request's path and `Range` header, and can send its first response
/// slowly, so that a client has time to give up in the middle of it.
struct FileServer {
    base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// A request's path and `Range` header.
type Recorded = (String, Option<String>);

impl FileServer {
    fn start(body: Vec<u8>, slow_first_response: bool) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let body = Arc::new(body);
        std::thread::spawn(move || {
            let mut slow = slow_first_response;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (body, recorded) = (body.clone(), recorded.clone());
                let slow = std::mem::take(&mut slow);
                std::thread::spawn(move || respond(stream, &body, &recorded, slow));
            }
        });
        FileServer {
            base_url: format!("http://{address}"),
            requests,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }
}

fn respond(mut stream: TcpStream, body: &[u8], recorded: &Mutex<Vec<Recorded>>, slow: bool) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("range")
            .then(|| value.trim().to_string())
    });
    recorded
        .lock()
        .expect("requests")
        .push((path, range.clone()));
    let start = range
        .as_deref()
        .and_then(|range| {
            range
                .strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse()
                .ok()
        })
        .filter(|start: &usize| *start < body.len());
    let (status, extra, rest) = match start {
        Some(start) => (
            "206 Partial Content",
            format!(
                "content-range: bytes {start}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            ),
            &body[start..],
        ),
        None => ("200 OK", String::new(), body),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra}content-type: application/octet-stream\r\nconnection: close\r\n\r\n",
        rest.len()
    );
    let _ = stream.write_all(header.as_bytes());
    if slow {
        // About 5 MB/s: a 16 MB file takes three seconds.
        for piece in rest.chunks(256 * 1024) {
            if stream.write_all(piece).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    } else {
        let _ = stream.write_all(rest);
    }
}

/// Serves `body` at every path; returns the base URL.
fn serve_forever(body: Vec<u8>) -> String {
    FileServer::start(body, false).base_url
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
    // The tiny file has no chat template and no instruct name: a base model, and pull says so.
    assert!(
        stdout_of(&pulled).contains(
            "note: base model (no chat template): use /v1/completions, or pull an instruct model"
        ),
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
    assert!(
        show.contains("chat template    none: base model (no chat template)"),
        "{show}"
    );

    let json = models(dir.path(), &["models", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json[0]["model"], "x:1");
    assert_eq!(json[0]["quantization"], "Q4_K_M");
    assert!(
        json[0]["note"]
            .as_str()
            .is_some_and(|note| note.starts_with("base model")),
        "{json}"
    );

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

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// `hearth serve` with no models, resolving `hf:` references against `files`.
fn serve_pulling_from(files: &FileServer) -> Server {
    let base_url = files.base_url.clone();
    Server::start(move |command, _| {
        command.env("HF_ENDPOINT", base_url);
    })
}

fn post(server: &Server, path: &str, body: serde_json::Value) -> reqwest::blocking::Response {
    client()
        .post(server.url(path))
        .json(&body)
        .send()
        .expect("request")
}

/// The NDJSON lines of a streamed response, each parsed.
fn ndjson(response: reqwest::blocking::Response) -> Vec<serde_json::Value> {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().expect("body");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

fn tag_names(server: &Server) -> Vec<String> {
    let tags: serde_json::Value = client()
        .get(server.url("/api/tags"))
        .send()
        .expect("tags")
        .json()
        .expect("json");
    tags["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|model| model["name"].as_str().expect("name").to_string())
        .collect()
}

fn assert_error(response: reqwest::blocking::Response, status: u16, code: &str, param: &str) {
    assert_eq!(response.status(), status);
    let body: serde_json::Value = response.json().expect("an OpenAI-style JSON error");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["param"], param, "{body}");
}

#[test]
fn pull_over_http_streams_progress_then_tags_copy_and_delete_see_the_model() {
    let file = tiny_gguf();
    let files = FileServer::start(file.clone(), false);
    let server = serve_pulling_from(&files);

    let url = format!("{}/files/tiny.gguf", files.base_url);
    let lines = ndjson(post(
        &server,
        "/api/pull",
        serde_json::json!({"model": url, "name": "tiny:1"}),
    ));
    let statuses: Vec<&str> = lines
        .iter()
        .map(|line| line["status"].as_str().expect("every line has a status"))
        .collect();
    assert_eq!(statuses.first(), Some(&"pulling manifest"), "{lines:?}");
    // The tiny file is a base model (no chat template, no instruct name): a note says so.
    assert_eq!(
        &statuses[statuses.len() - 4..],
        [
            "verifying sha256 digest",
            "writing manifest",
            "note: base model (no chat template): use /v1/completions, or pull an instruct model",
            "success"
        ],
        "{lines:?}"
    );
    let last_download = lines
        .iter()
        .rfind(|line| line["status"].as_str().unwrap().starts_with("pulling "))
        .filter(|line| line["status"] != "pulling manifest")
        .expect("a download progress line");
    assert_eq!(last_download["total"], file.len());
    assert_eq!(last_download["completed"], file.len());

    let tags: serde_json::Value = client()
        .get(server.url("/api/tags"))
        .send()
        .expect("tags")
        .json()
        .expect("json");
    assert_eq!(tags["models"][0]["name"], "tiny:1", "{tags}");
    assert_eq!(tags["models"][0]["digest"], sha256_hex(&file));
    assert_eq!(tags["models"][0]["details"]["quantization_level"], "Q4_K_M");

    // An hf: reference resolves against HF_ENDPOINT; without a name, the file name is used.
    let pulled = post(
        &server,
        "/api/pull",
        serde_json::json!({"model": "hf:acme/tiny-GGUF/q4/tiny.gguf@v1", "stream": false}),
    );
    assert_eq!(pulled.status(), 200);
    assert_eq!(
        pulled.json::<serde_json::Value>().expect("json"),
        serde_json::json!({"status": "success"})
    );
    assert!(
        files
            .requests()
            .iter()
            .any(|(path, _)| path == "/acme/tiny-GGUF/resolve/v1/q4/tiny.gguf"),
        "{:?}",
        files.requests()
    );

    let copied = post(
        &server,
        "/api/copy",
        serde_json::json!({"source": "tiny:1", "destination": "tiny:copy"}),
    );
    assert_eq!(copied.status(), 200);
    assert_eq!(copied.text().expect("body"), "");
    assert_error(
        post(
            &server,
            "/api/copy",
            serde_json::json!({"source": "nothing:1", "destination": "x"}),
        ),
        404,
        "model_not_found",
        "source",
    );
    assert_error(
        post(
            &server,
            "/api/copy",
            serde_json::json!({"source": "tiny:1", "destination": "Not Valid"}),
        ),
        400,
        "invalid_model_name",
        "destination",
    );
    assert_eq!(tag_names(&server), ["tiny:1", "tiny:copy", "tiny:latest"]);

    let delete = |model: &str| {
        client()
            .delete(server.url("/api/delete"))
            .json(&serde_json::json!({ "model": model }))
            .send()
            .expect("delete")
    };
    let deleted = delete("tiny:1");
    assert_eq!(deleted.status(), 200);
    assert_eq!(deleted.text().expect("body"), "");
    assert_error(delete("tiny:1"), 404, "model_not_found", "model");
    assert_error(delete("Bad:1"), 400, "invalid_model_name", "model");
    assert_eq!(tag_names(&server), ["tiny:copy", "tiny:latest"]);
}

#[test]
fn pull_over_http_refuses_bad_input_and_a_wrong_sha256_registers_nothing() {
    let files = FileServer::start(tiny_gguf(), false);
    let server = serve_pulling_from(&files);
    let url = format!("{}/tiny.gguf", files.base_url);
    let wrong = "ab".repeat(32);

    // Once the stream has started, a failure is an {"error"} line, as in Ollama.
    let lines = ndjson(post(
        &server,
        "/api/pull",
        serde_json::json!({"model": url, "sha256": wrong}),
    ));
    let last = lines.last().expect("lines");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|error| error.contains("sha256 mismatch")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|line| line["status"] == "success"));
    // Without streaming, the same failure is the response's status.
    assert_error(
        post(
            &server,
            "/api/pull",
            serde_json::json!({"model": url, "sha256": wrong, "stream": false}),
        ),
        400,
        "sha256_mismatch",
        "sha256",
    );

    // Errors found before anything is fetched are plain JSON errors, streaming or not.
    assert_error(
        post(
            &server,
            "/api/pull",
            serde_json::json!({"model": url, "sha256": "abc"}),
        ),
        400,
        "invalid_request",
        "sha256",
    );
    assert_error(
        post(
            &server,
            "/api/pull",
            serde_json::json!({"model": url, "name": "Bad Name"}),
        ),
        400,
        "invalid_model_name",
        "name",
    );
    // A path would make the server read its own files for whoever asks.
    let server_file = server.dir.path().join("server.log");
    let local = post(
        &server,
        "/api/pull",
        serde_json::json!({"model": server_file}),
    );
    assert_eq!(local.status(), 400);
    let local: serde_json::Value = local.json().expect("json");
    assert_eq!(local["error"]["code"], "invalid_source");
    assert!(
        local["error"]["message"]
            .as_str()
            .expect("message")
            .contains("`hearth pull PATH`"),
        "{local}"
    );
    // An Ollama hub name is no source either: Hearth has no hub.
    assert_error(
        post(
            &server,
            "/api/pull",
            serde_json::json!({"model": "llama3:8b"}),
        ),
        400,
        "invalid_source",
        "model",
    );

    assert!(tag_names(&server).is_empty());
    let blobs = server.dir.path().join("data/models/blobs");
    assert_eq!(std::fs::read_dir(&blobs).expect("blobs").count(), 0);
}

#[test]
fn a_client_that_leaves_mid_pull_leaves_a_partial_file_the_next_pull_resumes() {
    // 16 MB, sent at about 5 MB/s the first time.
    let file = GgufBuilder::new()
        .string("general.architecture", "llama")
        .u32("general.file_type", 15)
        .tensor("token_embd.weight", &[4_000_000])
        .build();
    let files = FileServer::start(file.clone(), true);
    let server = serve_pulling_from(&files);
    let request = serde_json::json!({
        "model": format!("{}/big.gguf", files.base_url),
        "name": "big:1",
        "sha256": sha256_hex(&file),
    });

    let response = post(&server, "/api/pull", request.clone());
    assert_eq!(response.status(), 200);
    let mut lines = std::io::BufReader::new(response).lines();
    loop {
        let line = lines.next().expect("a progress line").expect("read");
        let line: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert!(line["error"].is_null(), "{line}");
        if line["completed"]
            .as_u64()
            .is_some_and(|done| done >= 1 << 20)
        {
            break;
        }
    }
    drop(lines);

    // The server notices the disconnect at its next progress line and stops; until then the
    // same source is refused as in progress.
    let deadline = Instant::now() + Duration::from_secs(10);
    let resumed = loop {
        let response = post(&server, "/api/pull", {
            let mut request = request.clone();
            request["stream"] = serde_json::json!(false);
            request
        });
        if response.status() != 409 {
            break response;
        }
        assert!(Instant::now() < deadline, "the first pull never stopped");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        resumed.status(),
        200,
        "{}",
        resumed.text().unwrap_or_default()
    );

    let requests = files.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let resumed_from: usize = requests[1]
        .1
        .as_deref()
        .and_then(|range| {
            range
                .strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("the second pull did not resume: {requests:?}"));
    assert!(
        (1 << 20..file.len()).contains(&resumed_from),
        "resumed from {resumed_from} of {}",
        file.len()
    );
    // The sha256 matched, so the resumed file is the whole file, byte for byte.
    assert_eq!(tag_names(&server), ["big:1"]);
    let partial = server.dir.path().join("data/models/partial");
    assert!(
        !std::fs::read_dir(&partial)
            .expect("partial dir")
            .any(|entry| entry.expect("entry").path().extension() == Some("partial".as_ref())),
        "the partial file is gone once the pull completes"
    );
}
