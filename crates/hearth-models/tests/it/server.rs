//! A real HTTP/1.1 file server for pull tests, written by hand so that it can misbehave on
//! purpose: cut a response after some bytes, or ignore `Range` like some servers do. It serves
//! files from memory, answers `Range: bytes=N-` with 206 (guarded by `If-Range`), and records
//! every request it receives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server saw it; header names are lowercase.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    pub headers: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<String, (Vec<u8>, &'static str)>,
    requests: Vec<RecordedRequest>,
    cut_next_response_after: Option<usize>,
    ignore_range: bool,
}

#[derive(Clone)]
pub struct FileServer {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FileServer {
    pub async fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State::default()));
        let accept_state = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, accept_state.clone()));
            }
        });
        FileServer {
            base_url: format!("http://{address}"),
            state,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Serves `bytes` at `path` as a binary file.
    pub fn serve(&self, path: &str, bytes: Vec<u8>) {
        self.serve_as(path, bytes, "application/octet-stream");
    }

    pub fn serve_as(&self, path: &str, bytes: Vec<u8>, content_type: &'static str) {
        let mut state = self.state.lock().unwrap();
        state.files.insert(path.to_string(), (bytes, content_type));
    }

    /// The next response announces its full length but the connection closes after `bytes`.
    pub fn cut_next_response_after(&self, bytes: usize) {
        self.state.lock().unwrap().cut_next_response_after = Some(bytes);
    }

    /// From now on, `Range` headers are ignored and whole files are sent with 200.
    pub fn ignore_range(&self) {
        self.state.lock().unwrap().ignore_range = true;
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn serve_connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim().to_string()))
        .collect();

    let (status, response_headers, body, cut_after) = {
        let mut state = state.lock().unwrap();
        state.requests.push(RecordedRequest {
            path: path.clone(),
            headers: headers.clone(),
        });
        let cut_after = state.cut_next_response_after.take();
        match state.files.get(&path) {
            None => (
                "404 Not Found",
                vec![("content-type", "text/plain".to_string())],
                b"not found".to_vec(),
                cut_after,
            ),
            Some((bytes, content_type)) => {
                let etag = format!(
                    "\"{}-{}\"",
                    bytes.len(),
                    bytes.first().copied().unwrap_or(0)
                );
                let mut response_headers = vec![
                    ("content-type", content_type.to_string()),
                    ("etag", etag.clone()),
                    ("accept-ranges", "bytes".to_string()),
                ];
                let if_range_matches = headers
                    .get("if-range")
                    .is_none_or(|validator| *validator == etag);
                let range_start = headers
                    .get("range")
                    .and_then(|range| range.strip_prefix("bytes="))
                    .and_then(|range| range.strip_suffix('-'))
                    .and_then(|start| start.parse::<usize>().ok())
                    .filter(|_| !state.ignore_range && if_range_matches);
                match range_start {
                    Some(start) if start >= bytes.len() => {
                        response_headers
                            .push(("content-range", format!("bytes */{}", bytes.len())));
                        (
                            "416 Range Not Satisfiable",
                            response_headers,
                            Vec::new(),
                            cut_after,
                        )
                    }
                    Some(start) => {
                        response_headers.push((
                            "content-range",
                            format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
                        ));
                        (
                            "206 Partial Content",
                            response_headers,
                            bytes[start..].to_vec(),
                            cut_after,
                        )
                    }
                    None => ("200 OK", response_headers, bytes.clone(), cut_after),
                }
            }
        }
    };

    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in response_headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let sent = cut_after.map_or(body.len(), |limit| limit.min(body.len()));
    let _ = stream.write_all(&body[..sent]).await;
    let _ = stream.flush().await;
    // Dropping the stream closes the connection, mid-body when the response was cut.
}
