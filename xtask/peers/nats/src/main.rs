//! The NATS side of `cargo xtask bench events`, the same measurements as Hearth's
//! `events_bench` example, against nats-server at the given address through async-nats:
//! core publish to subscribe (a `>` subscriber among 10,000 others), its latency at a fixed
//! rate, JetStream publishes acknowledged by the server from 64 concurrent publishers (file
//! storage, its defaults: no fsync per write), and a replay of a stored stream from its start.
//! One JSON object per measurement on stdout.
//! Usage: hearth-bench-nats-peer nats://127.0.0.1:4222 [--quick]

mod ws;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

async fn idle_subscriptions(
    client: &async_nats::Client,
    count: usize,
) -> Result<Vec<async_nats::Subscriber>> {
    let mut idle = Vec::with_capacity(count);
    for index in 0..count {
        idle.push(client.subscribe(format!("bench.sub.{index}")).await?);
    }
    client.flush().await?;
    Ok(idle)
}

async fn core_throughput(url: &str, messages: usize, others: usize) -> Result<()> {
    let subscriber_client = async_nats::connect(url).await?;
    let _idle = idle_subscriptions(&subscriber_client, others).await?;
    let mut all = subscriber_client.subscribe(">").await?;
    subscriber_client.flush().await?;
    let publisher = async_nats::connect(url).await?;
    let payload = bytes::Bytes::from(vec![7u8; 256]);
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut received = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(2), all.next()).await {
                Ok(Some(_)) => {
                    received += 1;
                    if received == messages {
                        break;
                    }
                }
                _ => break,
            }
        }
        (received, started.elapsed())
    });
    for _ in 0..messages {
        publisher.publish("bench.data", payload.clone()).await?;
    }
    publisher.flush().await?;
    let published = started.elapsed();
    let (received, elapsed) = receiver.await?;
    // A receiver that gave up waited 2 s for nothing: not part of the rate.
    let elapsed = if received < messages {
        elapsed.saturating_sub(Duration::from_secs(2))
    } else {
        elapsed
    };
    println!(
        "{}",
        json!({"bench": "bus_throughput", "messages": messages, "other_subscriptions": others,
               "received": received, "publish_per_s": messages as f64 / published.as_secs_f64(),
               "msg_per_s": received as f64 / elapsed.as_secs_f64()})
    );
    Ok(())
}

async fn core_latency(url: &str, rate: u64, seconds: u64, others: usize) -> Result<()> {
    let subscriber_client = async_nats::connect(url).await?;
    let _idle = idle_subscriptions(&subscriber_client, others).await?;
    let mut all = subscriber_client.subscribe(">").await?;
    subscriber_client.flush().await?;
    let publisher = async_nats::connect(url).await?;
    let total = (rate * seconds) as usize;
    let origin = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut ages = Vec::with_capacity(total);
        while ages.len() < total {
            match tokio::time::timeout(Duration::from_secs(2), all.next()).await {
                Ok(Some(message)) => {
                    let sent_ns =
                        u64::from_le_bytes(message.payload[..8].try_into().unwrap_or_default());
                    let now_ns = origin.elapsed().as_nanos() as u64;
                    ages.push(now_ns.saturating_sub(sent_ns) as f64 / 1000.0);
                }
                _ => break,
            }
        }
        ages
    });
    let per_tick = (rate / 1000).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        tick.tick().await;
        for _ in 0..per_tick {
            if sent == total {
                break;
            }
            let mut payload = vec![7u8; 256];
            payload[..8].copy_from_slice(&(origin.elapsed().as_nanos() as u64).to_le_bytes());
            publisher.publish("bench.data", payload.into()).await?;
            sent += 1;
        }
        publisher.flush().await?;
    }
    let mut ages = receiver.await?;
    ages.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"bench": "bus_latency", "offered_per_s": rate, "seconds": started.elapsed().as_secs_f64(),
               "received": ages.len(), "p50_us": percentile(&ages, 0.5),
               "p99_us": percentile(&ages, 0.99), "max_us": ages.last().copied().unwrap_or(0.0)})
    );
    Ok(())
}

async fn fresh_stream(
    context: &jetstream::Context,
    name: &str,
    subjects: &str,
) -> Result<jetstream::stream::Stream> {
    let _ = context.delete_stream(name).await;
    Ok(context
        .create_stream(jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![subjects.to_string()],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?)
}

async fn durable_publish(url: &str, publishers: usize, events: usize) -> Result<serde_json::Value> {
    let client = async_nats::connect(url).await?;
    let context = jetstream::new(client);
    fresh_stream(&context, "HEARTH_BENCH_DURABLE", "bench.durable.>").await?;
    let per_publisher = events / publishers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let context = context.clone();
        tasks.push(tokio::spawn(async move {
            let subject = format!("bench.durable.{publisher}");
            let mut latencies = Vec::with_capacity(per_publisher);
            for _ in 0..per_publisher {
                let sent = Instant::now();
                let acked = match context
                    .publish(subject.clone(), vec![7u8; 256].into())
                    .await
                {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if acked {
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(events);
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    context.delete_stream("HEARTH_BENCH_DURABLE").await?;
    Ok(
        json!({"bench": "durable_publish", "publishers": publishers, "events": latencies.len(),
              "msg_per_s": latencies.len() as f64 / elapsed.as_secs_f64(),
              "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99)}),
    )
}

async fn replay(url: &str, count: usize) -> Result<()> {
    let client = async_nats::connect(url).await?;
    let context = jetstream::new(client);
    let stream = fresh_stream(&context, "HEARTH_BENCH_REPLAY", "bench.replay").await?;
    let started = Instant::now();
    let mut stored = 0;
    while stored < count {
        let batch = (count - stored).min(2048);
        let mut acks = Vec::with_capacity(batch);
        for _ in 0..batch {
            acks.push(
                context
                    .publish("bench.replay", vec![7u8; 256].into())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
        stored += batch;
    }
    let fill = started.elapsed();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer.messages().await?;
    let mut read = 0;
    while read < count {
        match messages.next().await {
            Some(Ok(_)) => read += 1,
            _ => break,
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{}",
        json!({"bench": "replay", "events": read, "fill_s": fill.as_secs_f64(),
               "msg_per_s": read as f64 / elapsed.as_secs_f64()})
    );
    context.delete_stream("HEARTH_BENCH_REPLAY").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // ws-fanout|ws-idle hearth|nats URL N ...: the WebSocket measurements.
    if let Some(mode) = args.first().filter(|mode| mode.starts_with("ws-")) {
        let server = if args.get(1).map(String::as_str) == Some("nats") {
            ws::Server::Nats
        } else {
            ws::Server::Hearth
        };
        let url = args.get(2).ok_or("a WebSocket URL")?;
        let number = |index: usize| -> u64 {
            args.get(index)
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        let measured = if mode == "ws-fanout" {
            ws::fanout(server, url, number(3) as usize, number(4), number(5)).await?
        } else {
            ws::idle(
                server,
                url,
                number(3) as usize,
                Duration::from_secs(number(4)),
            )
            .await?
        };
        println!("{measured}");
        return Ok(());
    }
    let url = args
        .first()
        .cloned()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string());
    let scale = if args.iter().any(|arg| arg == "--quick") {
        10
    } else {
        1
    };
    core_throughput(&url, 2_000_000 / scale, 10_000).await?;
    core_latency(&url, 10_000, if scale == 1 { 3 } else { 1 }, 10_000).await?;
    // The median of three runs, as Hearth's side reports.
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(durable_publish(&url, 64, 20_000 / scale).await?);
    }
    runs.sort_by(|a, b| {
        a["msg_per_s"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["msg_per_s"].as_f64().unwrap_or(0.0))
    });
    let rates: Vec<serde_json::Value> = runs.iter().map(|run| run["msg_per_s"].clone()).collect();
    let mut median = runs[1].clone();
    median["runs_msg_per_s"] = json!(rates);
    println!("{median}");
    replay(&url, 1_000_000 / scale).await?;
    Ok(())
}
