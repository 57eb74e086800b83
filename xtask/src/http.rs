//! A small HTTP/1.1 client over `std::net::TcpStream` for the benchmarks: keep-alive
//! connections, JSON bodies, and streamed bodies handed over piece by piece with the moment each
//! piece was read. Written here rather than taken from an HTTP crate so that the client's own
//! cost is tiny and predictable (one target is a per-request overhead under a millisecond), and
//! so that a streamed token's timestamp is when its bytes left the socket, not when an async
//! runtime got round to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// One keep-alive connection to a server.
pub struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
    /// Header lines (each ending in CRLF) sent with every request, e.g. an authorization.
    extra_headers: String,
}

/// A response read to its end.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the response is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the length of a response body is known.
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

impl Connection {
    pub fn open(address: &str) -> anyhow::Result<Connection> {
        let stream =
            TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
        // Requests are single small writes; without this a request could wait on Nagle.
        stream.set_nodelay(true)?;
        // Long enough for a cold 1,000-token prompt on two cores under load, short enough
        // that a hung server ends the benchmark.
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        Ok(Connection {
            reader: BufReader::new(stream),
            host: address.to_string(),
            extra_headers: String::new(),
        })
    }

    /// Sends `name: value` with every request on this connection.
    pub fn with_header(mut self, name: &str, value: &str) -> Connection {
        self.extra_headers.push_str(&format!("{name}: {value}\r\n"));
        self
    }

    pub fn post_json(&mut self, path: &str, body: &serde_json::Value) -> anyhow::Result<Response> {
        self.request("POST", path, Some(body.to_string().as_bytes()))
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Response> {
        let mut collected = Vec::new();
        let status = self.stream(method, path, body, |piece, _| {
            collected.extend_from_slice(piece)
        })?;
        Ok(Response {
            status,
            body: collected,
        })
    }

    /// Sends a request and calls `on_piece` with each piece of the body as it is read (a chunk
    /// of a chunked body, or the whole of a sized one) and the time it was read. Returns the
    /// status once the body has ended.
    pub fn stream(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        mut on_piece: impl FnMut(&[u8], Instant),
    ) -> anyhow::Result<u16> {
        let body = body.unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\naccept: */*\r\n",
            self.host
        );
        request.push_str(&self.extra_headers);
        if method != "GET" {
            request.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.reader.get_mut().write_all(&bytes)?;

        let (status, framing) = self.read_head()?;
        match framing {
            Framing::Chunked => loop {
                let size_line = self.read_line()?;
                let size_text = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_text, 16)
                    .with_context(|| format!("bad chunk size line {size_line:?}"))?;
                if size == 0 {
                    // Trailers, then the blank line that ends the message.
                    while !self.read_line()?.is_empty() {}
                    break;
                }
                let mut chunk = vec![0; size];
                self.reader.read_exact(&mut chunk)?;
                on_piece(&chunk, Instant::now());
                if !self.read_line()?.is_empty() {
                    bail!("a chunk did not end with CRLF");
                }
            },
            Framing::Length(length) => {
                let mut whole = vec![0; length];
                self.reader.read_exact(&mut whole)?;
                on_piece(&whole, Instant::now());
            }
            Framing::UntilClose => {
                let mut whole = Vec::new();
                self.reader.read_to_end(&mut whole)?;
                on_piece(&whole, Instant::now());
            }
        }
        Ok(status)
    }

    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("the server closed the connection");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    fn read_head(&mut self) -> anyhow::Result<(u16, Framing)> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut framing = Framing::UntilClose;
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                framing = Framing::Chunked;
            } else if name.eq_ignore_ascii_case("content-length")
                && !matches!(framing, Framing::Chunked)
            {
                framing = Framing::Length(value.parse().context("bad content-length")?);
            }
        }
        Ok((status, framing))
    }
}

/// Splits a server-sent-event stream into its `data:` payloads, each with the time of the piece
/// that completed it.
#[derive(Default)]
pub struct SseData {
    pending: Vec<u8>,
}

impl SseData {
    pub fn push(&mut self, piece: &[u8], at: Instant, mut on_data: impl FnMut(&str, Instant)) {
        self.pending.extend_from_slice(piece);
        while let Some(end) = self.pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(data) = line.trim_end().strip_prefix("data:") {
                on_data(data.trim_start(), at);
            }
        }
    }
}
