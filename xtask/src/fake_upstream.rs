//! The upstream the gateway benchmark puts behind Hearth and LiteLLM: an OpenAI-compatible
//! server that answers every chat completion at once with the same small body. It runs as its
//! own process (`cargo xtask fake-upstream --listen ADDR`, started by the benchmark) so that its
//! threads are not the load generator's, and it is as cheap as an HTTP server can be written in a
//! few lines (a thread per keep-alive connection, no parsing beyond the head), so that what the
//! benchmark sees through a gateway is the gateway's cost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use anyhow::Context;

/// A chat completion with usage, as OpenAI answers one: the gateways parse it (usage is
/// charged against token limits), so it must be the real shape.
const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1764720000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the fake upstream."},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;

const MODELS: &str = r#"{"object":"list","data":[{"id":"bench-model","object":"model","created":0,"owned_by":"bench"}]}"#;

pub fn serve(args: &[String]) -> anyhow::Result<()> {
    let address = crate::flag(args, "--listen").unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let listener =
        TcpListener::bind(&address).with_context(|| format!("cannot listen on {address}"))?;
    eprintln!("fake upstream listening on {address}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            // A connection that breaks ends its thread; the next one is unaffected.
            let _ = answer_connection(stream);
        });
    }
    Ok(())
}

fn answer_connection(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split(' ').nth(1).unwrap_or_default().to_string();
        let (mut length, mut close) = (0usize, false);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        let (status, payload) = if path.ends_with("/chat/completions") {
            ("200 OK", COMPLETION)
        } else if path.ends_with("/models") {
            ("200 OK", MODELS)
        } else {
            (
                "404 Not Found",
                r#"{"error":{"message":"not found","type":"invalid_request_error"}}"#,
            )
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        );
        writer.write_all(response.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}
