//! Hearth's side of `cargo xtask bench events`: the in-process bus, the durable log and
//! durable consumers measured on this machine, one JSON object per measurement on stdout.
//! Run in release: `cargo run --release -p hearth-events --example events_bench -- DIR`
//! (`--quick` for smaller counts). DIR holds the logs it writes (on the disk under test).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_events::{
    Bus, ConsumerConfig, EventLog, Events, EventsOptions, NewEvent, Pattern, Publish, Topic,
};
use serde_json::json;

/// 256 bytes of event data, as stored: a JSON string of 254 characters.
fn payload() -> String {
    format!("\"{}\"", "x".repeat(254))
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn report(value: serde_json::Value) {
    println!("{value}");
}

/// Publish to deliver through the bus: one subscriber of `>` among `others` subscriptions
/// that do not match, as fast as it goes.
async fn bus_throughput(messages: usize, others: usize) {
    let bus: Bus<Arc<Vec<u8>>> = Bus::new();
    let mut idle = Vec::with_capacity(others);
    for index in 0..others {
        let pattern = Pattern::parse(&format!("bench.sub.{index}")).expect("pattern");
        idle.push(bus.subscribe(pattern, 16));
    }
    let mut all = bus.subscribe(Pattern::parse(">").expect("pattern"), messages);
    let topic = Topic::parse("bench.data").expect("topic");
    let message = Arc::new(vec![7u8; 256]);
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut received = 0;
        while received < messages {
            if all.next().await.is_err() {
                break;
            }
            received += 1;
        }
        (received, started.elapsed())
    });
    for _ in 0..messages {
        bus.publish(&topic, Arc::clone(&message));
    }
    let published = started.elapsed();
    let (received, elapsed) = receiver.await.expect("receiver");
    report(json!({
        "bench": "bus_throughput", "messages": messages, "other_subscriptions": others,
        "received": received, "publish_per_s": messages as f64 / published.as_secs_f64(),
        "msg_per_s": received as f64 / elapsed.as_secs_f64(),
    }));
    drop(idle);
}

/// Latency through the bus at a fixed offered rate: the subscriber notes each message's age.
/// `placement` names where the subscriber runs: on another worker of a multi-thread runtime
/// (each delivery may wake a parked thread), or on the publisher's own thread (a handler
/// in the same runtime thread, as a current-thread runtime runs them).
async fn bus_latency(rate: u64, seconds: u64, others: usize, placement: &str) {
    let bus: Bus<(Instant, Arc<Vec<u8>>)> = Bus::new();
    let mut idle = Vec::with_capacity(others);
    for index in 0..others {
        let pattern = Pattern::parse(&format!("bench.sub.{index}")).expect("pattern");
        idle.push(bus.subscribe(pattern, 16));
    }
    let total = (rate * seconds) as usize;
    let mut all = bus.subscribe(Pattern::parse(">").expect("pattern"), total);
    let receiver = tokio::spawn(async move {
        let mut ages = Vec::with_capacity(total);
        while ages.len() < total {
            match all.next().await {
                Ok((sent, _)) => ages.push(sent.elapsed().as_secs_f64() * 1e6),
                Err(_) => break,
            }
        }
        ages
    });
    let topic = Topic::parse("bench.data").expect("topic");
    let message = Arc::new(vec![7u8; 256]);
    let started = tokio::time::Instant::now();
    // One message every 1/rate s, sent in 1 ms ticks.
    let per_tick = rate / 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0;
    while sent < total {
        tick.tick().await;
        for _ in 0..per_tick.max(1) {
            if sent == total {
                break;
            }
            bus.publish(&topic, (Instant::now(), Arc::clone(&message)));
            sent += 1;
        }
    }
    let mut ages = receiver.await.expect("receiver");
    ages.sort_by(f64::total_cmp);
    report(json!({
        "bench": if placement == "same_thread" { "bus_latency_same_thread" } else { "bus_latency" },
        "placement": placement, "offered_per_s": rate,
        "seconds": started.elapsed().as_secs_f64(),
        "received": ages.len(), "p50_us": percentile(&ages, 0.5), "p99_us": percentile(&ages, 0.99),
        "max_us": ages.last().copied().unwrap_or(0.0),
    }));
    drop(idle);
}

/// Durable appends from `publishers` concurrent tasks, each waiting for its fsynced commit.
async fn durable_publish(
    dir: &std::path::Path,
    publishers: usize,
    events: usize,
) -> serde_json::Value {
    let log = EventLog::open(dir).await.expect("log");
    let data = payload();
    let per_publisher = events / publishers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let log = log.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let topic = Topic::parse(&format!("bench.durable.{publisher}")).expect("topic");
            let mut latencies = Vec::with_capacity(per_publisher);
            for _ in 0..per_publisher {
                let sent = Instant::now();
                log.append(vec![NewEvent {
                    tenant_id: "bench".to_string(),
                    topic: topic.clone(),
                    data: data.clone(),
                    idempotency_key: None,
                    rule: None,
                }])
                .await
                .expect("append");
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(events);
    for task in tasks {
        latencies.extend(task.await.expect("publisher"));
    }
    let elapsed = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    let (commits, stored) = log.commit_stats();
    json!({
        "bench": "durable_publish", "publishers": publishers, "events": latencies.len(),
        "commits": commits, "events_per_commit": stored as f64 / commits.max(1) as f64,
        "msg_per_s": latencies.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
    })
}

/// Stores `count` events, then follows the stream from its start to the end.
async fn replay(dir: &std::path::Path, count: usize) {
    let events = Events::open(
        dir,
        EventsOptions {
            max_bytes_per_tenant: u64::MAX,
            ..EventsOptions::default()
        },
    )
    .await
    .expect("events");
    let started = Instant::now();
    let mut stored = 0;
    while stored < count {
        let batch = (count - stored).min(2048);
        let publishes = (0..batch)
            .map(|_| Publish {
                topic: "bench.replay".to_string(),
                data: serde_json::Value::String("x".repeat(254)),
                idempotency_key: None,
            })
            .collect();
        events
            .publish("replay", publishes, "events")
            .await
            .expect("publish");
        stored += batch;
    }
    let fill = started.elapsed();
    let started = Instant::now();
    let mut follow = events.follow("replay", &[">"], 1).await.expect("follow");
    let mut read = 0;
    while read < count {
        follow.next().await.expect("event");
        read += 1;
    }
    let elapsed = started.elapsed();
    report(json!({
        "bench": "replay", "events": count, "fill_s": fill.as_secs_f64(),
        "msg_per_s": count as f64 / elapsed.as_secs_f64(),
    }));
}

/// When redeliveries come against when the backoff says: a consumer that never
/// acknowledges, ack wait 100 ms, backoff 200, 400, 800 ms.
async fn redelivery(dir: &std::path::Path, events_count: usize) {
    let events = Arc::new(
        Events::open(dir, EventsOptions::default())
            .await
            .expect("events"),
    );
    let mut config = ConsumerConfig::new("late", &["jobs.>"]);
    let ack_wait = Duration::from_millis(100);
    let backoff = [200u64, 400, 800];
    config.ack_wait = ack_wait;
    config.backoff = backoff
        .iter()
        .map(|ms| Duration::from_millis(*ms))
        .collect();
    config.max_deliver = Some(4);
    events
        .create_consumer("redelivery", config)
        .await
        .expect("consumer");
    for n in 0..events_count {
        events
            .publish(
                "redelivery",
                vec![Publish {
                    topic: "jobs.run".to_string(),
                    data: json!(n),
                    idempotency_key: None,
                }],
                "",
            )
            .await
            .expect("publish");
    }
    // Delivery times by (sequence, count).
    let mut seen: std::collections::HashMap<(u64, u32), Instant> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < events_count * 4 && Instant::now() < deadline {
        let deliveries = events
            .fetch("redelivery", "late", 1000, Duration::from_secs(2))
            .await
            .expect("fetch");
        let now = Instant::now();
        for delivery in deliveries {
            seen.insert((delivery.event.sequence, delivery.delivery_count), now);
        }
    }
    let mut errors = Vec::new();
    for ((sequence, count), at) in &seen {
        if *count < 2 {
            continue;
        }
        let Some(previous) = seen.get(&(*sequence, count - 1)) else {
            continue;
        };
        let expected = ack_wait.as_secs_f64() * 1000.0 + backoff[(*count - 2) as usize] as f64;
        let actual = at.duration_since(*previous).as_secs_f64() * 1000.0;
        errors.push(actual - expected);
    }
    let mut absolute: Vec<f64> = errors.iter().map(|error| error.abs()).collect();
    absolute.sort_by(f64::total_cmp);
    report(json!({
        "bench": "redelivery", "redeliveries": errors.len(),
        "early": errors.iter().filter(|error| **error < 0.0).count(),
        "p99_error_ms": percentile(&absolute, 0.99),
        "max_error_ms": absolute.last().copied().unwrap_or(0.0),
    }));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().expect("usage: events_bench DIR [--quick]"));
    let quick = args.iter().any(|arg| arg == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fresh = |name: &str| {
        let path = dir.join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("bench dir");
        path
    };
    runtime.block_on(async {
        let scale = if quick { 10 } else { 1 };
        bus_throughput(2_000_000 / scale, 10_000).await;
        bus_latency(10_000, if quick { 1 } else { 3 }, 10_000, "other_thread").await;
        // The same on one thread: a current-thread runtime of its own.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(bus_latency(
                    10_000,
                    if quick { 1 } else { 3 },
                    10_000,
                    "same_thread",
                ))
        })
        .join()
        .expect("same-thread latency");
        // The disk's fsync time varies from run to run: the median of three runs.
        let mut runs = Vec::new();
        // A directory per run: the last run's connections may still be closing.
        for run in 0..3 {
            let dir = fresh(&format!("durable-{run}"));
            runs.push(durable_publish(&dir, 64, 20_000 / scale).await);
        }
        runs.sort_by(|a, b| {
            a["msg_per_s"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["msg_per_s"].as_f64().unwrap_or(0.0))
        });
        let rates: Vec<serde_json::Value> =
            runs.iter().map(|run| run["msg_per_s"].clone()).collect();
        let mut median = runs[1].clone();
        median["runs_msg_per_s"] = json!(rates);
        report(median);
        replay(&fresh("replay"), 1_000_000 / scale).await;
        redelivery(&fresh("redelivery"), 20).await;
    });
}
