//! WebSocket measurements with one client (tokio-tungstenite) against both servers: fan-out
//! of one topic to many subscribers at fixed publish rates (deliveries per second, p99
//! latency, loss), and many idle subscribed sockets held open (the caller reads the server's
//! memory). Hearth speaks its JSON frames (`/v1/events/ws`); nats-server its text protocol
//! over its WebSocket listener.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Clone, Copy, PartialEq)]
pub enum Server {
    Hearth,
    Nats,
}

const TOPIC: &str = "bench.fan";

async fn connect(url: &str) -> Result<Socket> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(socket)
}

/// Connects and subscribes; returns once the server confirmed.
async fn subscriber(server: Server, url: &str, topic: &str) -> Result<Socket> {
    let mut socket = connect(url).await?;
    match server {
        Server::Hearth => {
            socket
                .send(Message::Text(
                    json!({"type": "subscribe", "id": "s", "topics": topic})
                        .to_string()
                        .into(),
                ))
                .await?;
            while let Some(message) = socket.next().await {
                if let Message::Text(text) = message? {
                    if text.contains("\"subscribed\"") {
                        break;
                    }
                }
            }
        }
        Server::Nats => {
            socket
                .send(Message::Binary(
                    format!("CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {topic} 1\r\nPING\r\n")
                        .into_bytes()
                        .into(),
                ))
                .await?;
            let mut seen = String::new();
            while let Some(message) = socket.next().await {
                let message = message?;
                seen.push_str(&String::from_utf8_lossy(&message.into_data()));
                if seen.contains("PONG") {
                    break;
                }
            }
        }
    }
    Ok(socket)
}

/// Reads one subscriber's socket, recording each message's age (ns since `origin`, carried
/// in the payload as `t=<ns>;`) until `expected` messages or `idle` without one.
async fn read_ages(
    server: Server,
    mut socket: Socket,
    origin: Instant,
    expected: usize,
    idle: Duration,
) -> (Vec<f64>, Socket) {
    let mut ages = Vec::with_capacity(expected);
    let mut buffer = Vec::<u8>::new();
    while ages.len() < expected {
        let Ok(Some(Ok(message))) = tokio::time::timeout(idle, socket.next()).await else {
            break;
        };
        let now = origin.elapsed().as_nanos() as u64;
        let data = message.into_data();
        match server {
            Server::Hearth => {
                if let Some(sent) = sent_ns(&data) {
                    ages.push(now.saturating_sub(sent) as f64 / 1e6);
                }
            }
            Server::Nats => {
                buffer.extend_from_slice(&data);
                // MSG <subject> <sid> <len>\r\n<payload>\r\n, any number per frame.
                loop {
                    let Some(end) = buffer.windows(2).position(|pair| pair == b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&buffer[..end]).to_string();
                    if let Some(rest) = line.strip_prefix("MSG ") {
                        let length: usize = rest
                            .rsplit(' ')
                            .next()
                            .and_then(|length| length.parse().ok())
                            .unwrap_or(0);
                        if buffer.len() < end + 2 + length + 2 {
                            break;
                        }
                        if let Some(sent) = sent_ns(&buffer[end + 2..end + 2 + length]) {
                            ages.push(now.saturating_sub(sent) as f64 / 1e6);
                        }
                        buffer.drain(..end + 2 + length + 2);
                    } else {
                        if line.starts_with("PING") {
                            let _ = socket
                                .send(Message::Binary(b"PONG\r\n".to_vec().into()))
                                .await;
                        }
                        buffer.drain(..end + 2);
                    }
                }
            }
        }
    }
    (ages, socket)
}

fn sent_ns(data: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find("t=")? + 2;
    let end = text[start..].find(';')? + start;
    text[start..end].parse().ok()
}

/// A 256-byte message carrying its send time.
fn payload(origin: Instant) -> String {
    let stamp = format!("t={};", origin.elapsed().as_nanos() as u64);
    format!("{stamp}{}", "x".repeat(256 - 16 - stamp.len()))
}

/// One topic to `subscribers` sockets while a publisher socket sends `rate` messages a
/// second for `seconds`.
pub async fn fanout(
    server: Server,
    url: &str,
    subscribers: usize,
    rate: u64,
    seconds: u64,
) -> Result<serde_json::Value> {
    let mut sockets = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        sockets.push(subscriber(server, url, TOPIC).await?);
    }
    let origin = Instant::now();
    let expected = (rate * seconds) as usize;
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            tokio::spawn(read_ages(
                server,
                socket,
                origin,
                expected,
                Duration::from_secs(3),
            ))
        })
        .collect();
    let mut publisher = connect(url).await?;
    if server == Server::Nats {
        publisher
            .send(Message::Binary(
                b"CONNECT {\"verbose\":false}\r\n".to_vec().into(),
            ))
            .await?;
    }
    // Hearth answers each publish frame; a reader drains them so the socket never backs up.
    let answers = Arc::new(AtomicU64::new(0));
    let (mut sink, mut stream) = publisher.split();
    let counted = Arc::clone(&answers);
    let drain = tokio::spawn(async move {
        while let Some(Ok(_)) = stream.next().await {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    for index in 0..expected {
        let due = started + interval * index as u32;
        tokio::time::sleep_until(due.into()).await;
        let message = match server {
            Server::Hearth => Message::Text(
                json!({"type": "publish", "topic": TOPIC, "data": payload(origin)})
                    .to_string()
                    .into(),
            ),
            Server::Nats => {
                let body = payload(origin);
                Message::Binary(
                    format!("PUB {TOPIC} {}\r\n{body}\r\n", body.len())
                        .into_bytes()
                        .into(),
                )
            }
        };
        sink.send(message).await?;
    }
    let mut ages = Vec::with_capacity(expected * subscribers);
    for reader in readers {
        let (mine, _socket) = reader.await?;
        ages.extend(mine);
    }
    let elapsed = started.elapsed().as_secs_f64();
    drain.abort();
    ages.sort_by(f64::total_cmp);
    let wanted = expected * subscribers;
    let p99 = if ages.is_empty() {
        0.0
    } else {
        ages[((ages.len() - 1) as f64 * 0.99) as usize]
    };
    Ok(json!({
        "bench": "ws_fanout", "server": if server == Server::Hearth { "hearth" } else { "nats" },
        "subscribers": subscribers, "rate": rate, "seconds": seconds,
        "deliveries": ages.len(), "lost": wanted - ages.len().min(wanted),
        "deliveries_per_s": ages.len() as f64 / elapsed, "p99_ms": p99,
    }))
}

/// Opens `count` subscribed sockets (each its own topic), holds them `hold`, closes them.
pub async fn idle(
    server: Server,
    url: &str,
    count: usize,
    hold: Duration,
) -> Result<serde_json::Value> {
    let mut sockets = Vec::with_capacity(count);
    let started = Instant::now();
    for index in 0..count {
        sockets.push(subscriber(server, url, &format!("bench.idle.{index}")).await?);
    }
    println!(
        "{}",
        json!({"bench": "ws_idle_ready", "sockets": sockets.len(),
               "connect_s": started.elapsed().as_secs_f64()})
    );
    tokio::time::sleep(hold).await;
    Ok(json!({"bench": "ws_idle", "sockets": sockets.len()}))
}
