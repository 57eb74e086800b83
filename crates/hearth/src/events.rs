//! `hearth events pub|sub|consumers list|webhooks list`: publish to a running server, or print its events live as JSON
//! Lines, over its HTTP API (`/v1/events`, the SSE stream). Parsing and printing only; the
//! rules live in `hearth-events` behind the server.

use std::io::Write;

use anyhow::{Context, bail};
use hearth_config::Sources;
use serde_json::{Value, json};

use crate::api_client::{Api, percent_encode};
use crate::cli::{EventsCommand, ListCommand};

pub fn run(sources: &Sources, command: &EventsCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            EventsCommand::Pub {
                server,
                topic,
                data,
                idempotency_key,
            } => {
                let api = Api::new(sources, server)?;
                let data: Value = serde_json::from_str(data)
                    .with_context(|| format!("DATA is not JSON: {data}"))?;
                let mut request = api
                    .request(
                        reqwest::Method::POST,
                        &format!("/v1/events/{}", percent_encode(topic)),
                    )
                    .json(&data);
                if let Some(key) = idempotency_key {
                    request = request.header("idempotency-key", key);
                }
                let answer: Value = api
                    .send(request)
                    .await?
                    .json()
                    .await
                    .context("cannot read the answer")?;
                println!("{answer}");
                Ok(())
            }
            EventsCommand::Sub {
                server,
                patterns,
                from_seq,
                count,
            } => {
                let api = Api::new(sources, server)?;
                subscribe(&api, patterns, *from_seq, *count).await
            }
            EventsCommand::Consumers {
                command: ListCommand::List { server, json },
            } => {
                let api = Api::new(sources, server)?;
                list_consumers(&api, *json).await
            }
            EventsCommand::Webhooks {
                command: ListCommand::List { server, json },
            } => {
                let api = Api::new(sources, server)?;
                list_webhooks(&api, *json).await
            }
        }
    })
}

async fn list_consumers(api: &Api, as_json: bool) -> anyhow::Result<()> {
    let answer = api
        .call(reqwest::Method::GET, "/v1/consumers", None)
        .await?;
    let consumers = answer["data"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", Value::Array(consumers))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:<24} {:>9} {:>11} {:>9} {:>9} {:>6}",
        "NAME", "FILTER", "NEXT_SEQ", "ACK_PENDING", "DELIVERED", "ACKED", "DEAD"
    )?;
    for consumer in consumers {
        let state = &consumer["state"];
        let filter: Vec<&str> = consumer["filter"]
            .as_array()
            .map(|patterns| patterns.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        writeln!(
            out,
            "{:<24} {:<24} {:>9} {:>11} {:>9} {:>9} {:>6}",
            consumer["name"].as_str().unwrap_or(""),
            filter.join(","),
            state["next_seq"],
            state["ack_pending"],
            state["delivered"],
            state["acked"],
            state["dead_lettered"],
        )?;
    }
    Ok(())
}

async fn list_webhooks(api: &Api, as_json: bool) -> anyhow::Result<()> {
    let answer = api.call(reqwest::Method::GET, "/v1/webhooks", None).await?;
    let webhooks = answer["data"].as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", Value::Array(webhooks))?;
        return Ok(());
    }
    writeln!(out, "{:<35} {:<8} {:<24} URL", "ID", "ENABLED", "TOPICS")?;
    for webhook in webhooks {
        let topics: Vec<&str> = webhook["topics"]
            .as_array()
            .map(|patterns| patterns.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut url = webhook["url"].as_str().unwrap_or("").to_string();
        if let Some(reason) = webhook["disabled_reason"].as_str() {
            url.push_str(&format!("  (disabled: {reason})"));
        }
        writeln!(
            out,
            "{:<35} {:<8} {:<24} {url}",
            webhook["id"].as_str().unwrap_or(""),
            webhook["enabled"],
            topics.join(","),
        )?;
    }
    Ok(())
}

/// One server-sent event: its `id`, `event` and `data` fields.
#[derive(Debug, Default, PartialEq)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// The complete events at the front of `buffer` (each ends with a blank line), removed from
/// it; a partial event stays for the next chunk. Comments (keep-alives) are skipped.
fn take_events(buffer: &mut String) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let mut event = SseEvent::default();
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_string()),
                "event" => event.event = Some(value.to_string()),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => {}
            }
        }
        if event.id.is_some() || event.event.is_some() || !event.data.is_empty() {
            events.push(event);
        }
    }
    events
}

async fn subscribe(
    api: &Api,
    patterns: &str,
    from_seq: Option<u64>,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let mut path = format!("/v1/events/stream?topics={}", percent_encode(patterns));
    if let Some(from) = from_seq {
        path.push_str(&format!("&from_seq={from}"));
    }
    let mut response = api.send(api.request(reqwest::Method::GET, &path)).await?;
    let mut buffer = String::new();
    let mut printed = 0;
    let mut stdout = std::io::stdout();
    while let Some(chunk) = response.chunk().await.context("the stream broke")? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        for event in take_events(&mut buffer) {
            match event.event.as_deref() {
                Some("gap") => eprintln!("gap: {}", event.data),
                Some("error") => bail!("the server ended the stream: {}", event.data),
                topic => {
                    let data: Value =
                        serde_json::from_str(&event.data).unwrap_or(Value::String(event.data));
                    let seq = event.id.and_then(|id| id.parse::<u64>().ok());
                    writeln!(
                        stdout,
                        "{}",
                        json!({"seq": seq, "topic": topic, "data": data})
                    )?;
                    stdout.flush()?;
                    printed += 1;
                    if count.is_some_and(|count| printed >= count) {
                        return Ok(());
                    }
                }
            }
        }
    }
    bail!("the server closed the stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_taken_whole_and_partial_ones_wait() {
        let mut buffer =
            ": keep-alive\n\nid: 3\nevent: a.b\ndata: {\"x\":1}\n\nid: 4\nev".to_string();
        let events = take_events(&mut buffer);
        assert_eq!(
            events,
            [SseEvent {
                id: Some("3".to_string()),
                event: Some("a.b".to_string()),
                data: r#"{"x":1}"#.to_string()
            }]
        );
        assert_eq!(buffer, "id: 4\nev");
        buffer.push_str("ent: c\ndata: 2\n\n");
        assert_eq!(take_events(&mut buffer)[0].event.as_deref(), Some("c"));
        assert!(buffer.is_empty());
    }
}
