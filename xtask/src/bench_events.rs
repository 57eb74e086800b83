//! `cargo xtask bench events [--quick] [--skip-peer] [--binary PATH]`: Hearth's events
//! against the local nats-server (127.0.0.1:4222, JetStream on) in one run, as ratios.
//!
//! - In process (`crates/hearth-events/examples/events_bench.rs`, release): the bus
//!   (publish to a `>` subscriber among 10,000 other subscriptions; its latency at 10k msg/s
//!   with the subscriber on another runtime thread and on the publisher's own),
//!   the durable log (64 concurrent publishers, each append answered after its fsynced
//!   commit), a replay of 1M stored events from the start, and redelivery timing against the
//!   backoff.
//! - Over HTTP: the release binary (`hearth serve`), 64 keep-alive connections publishing
//!   256-byte events with `POST /v1/events/{topic}` as fast as answers come, for 10 s.
//! - NATS (`xtask/peers/nats`, async-nats with its defaults, built outside the workspace):
//!   core publish to subscribe among the same 10,000 subscriptions, its latency at 10k msg/s,
//!   JetStream publishes with 64 concurrent publishers awaiting acks (file storage; the
//!   server's default is to fsync every 2 minutes, not per write), and a replay of 1M messages
//!   through a pull consumer.
//! - WebSockets, one client (tokio-tungstenite, in the peer) against both: one topic fanned
//!   out to 1,000 subscribers at rising publish rates (deliveries/s, p99, loss) against
//!   Hearth's `/v1/events/ws` and a nats-server started with its WebSocket listener; and
//!   10,000 idle subscribed sockets on Hearth, its resident memory before and with them.
//! - `--soak-seconds N` (default 0: skipped): Hearth's resident memory over N seconds of
//!   publishing (1,000 events/s over HTTP) into a topic with retention (10,000 events kept)
//!   while a durable consumer fetches and acknowledges everything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::loadgen::{Target, closed_loop};
use crate::process::{cpu_model_name, serve_hearth};

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Runs a command and returns its stdout's JSON lines by their `bench` name.
fn measurements(command: &mut Command) -> anyhow::Result<HashMap<String, Value>> {
    let output = command.output().context("cannot run a benchmark")?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}",
            command,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut found = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Ok(value) = serde_json::from_str::<Value>(line)
            && let Some(name) = value["bench"].as_str()
        {
            eprintln!("  {line}");
            found.insert(name.to_string(), value);
        }
    }
    Ok(found)
}

fn hearth_in_process(quick: bool) -> anyhow::Result<HashMap<String, Value>> {
    let target = crate::process::target_dir();
    let events_bench = crate::process::release_example("hearth-events", "events_bench")?;
    let dir = target.join("bench-events");
    std::fs::create_dir_all(&dir)?;
    let mut command = Command::new(events_bench);
    command.arg(&dir);
    if quick {
        command.arg("--quick");
    }
    eprintln!("bench: Hearth in process");
    measurements(&mut command)
}

fn peer_binary() -> anyhow::Result<PathBuf> {
    let target = crate::process::build_outside_workspace(
        "xtask/peers/nats",
        "hearth-nats-peer-target",
        &[],
    )?;
    Ok(target.join("release/hearth-bench-nats-peer"))
}

/// A nats-server of the benchmark's own with a WebSocket listener (the system's has none).
struct NatsWithWebSocket {
    child: std::process::Child,
    url: String,
}

impl Drop for NatsWithWebSocket {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_with_websocket(dir: &Path) -> anyhow::Result<NatsWithWebSocket> {
    let (port, ws_port) = (
        crate::free_port().map_err(|error| anyhow::anyhow!(error))?,
        crate::free_port().map_err(|error| anyhow::anyhow!(error))?,
    );
    let config = dir.join("nats-ws.conf");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nwebsocket {{\n  listen: \"127.0.0.1:{ws_port}\"\n  no_tls: true\n}}\n"
        ),
    )?;
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("cannot start nats-server")?;
    let url = format!("ws://127.0.0.1:{ws_port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(format!("127.0.0.1:{ws_port}")).is_ok() {
            return Ok(NatsWithWebSocket { child, url });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nats-server's WebSocket listener did not come up")
}

fn nats_peer(quick: bool) -> anyhow::Result<HashMap<String, Value>> {
    let mut command = Command::new(peer_binary()?);
    command.arg(NATS_URL);
    if quick {
        command.arg("--quick");
    }
    eprintln!("bench: NATS at {NATS_URL}");
    measurements(&mut command)
}

/// The WebSocket fan-out at rising rates, against `url` (Hearth's or nats-server's).
fn ws_fanout(
    peer: &Path,
    server: &str,
    url: &str,
    rates: &[u64],
    seconds: u64,
) -> anyhow::Result<Vec<Value>> {
    let mut found = Vec::new();
    for rate in rates {
        let measured = measurements(Command::new(peer).args([
            "ws-fanout",
            server,
            url,
            "1000",
            &rate.to_string(),
            &seconds.to_string(),
        ]))?;
        if let Some(value) = measured.get("ws_fanout") {
            found.push(value.clone());
        }
    }
    Ok(found)
}

/// 10,000 idle subscribed sockets on Hearth: its resident memory before and with them.
fn ws_idle(peer: &Path, pid: u32, url: &str, sockets: usize) -> anyhow::Result<Value> {
    let before = crate::process::status_kib(pid, "VmRSS").unwrap_or(0);
    let mut child = Command::new(peer)
        .args(["ws-idle", "hearth", url, &sockets.to_string(), "5"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut stdout = std::io::BufReader::new(child.stdout.take().context("peer stdout")?);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line)?;
    std::thread::sleep(Duration::from_secs(2));
    let with = crate::process::status_kib(pid, "VmRSS").unwrap_or(0);
    let _ = child.wait();
    let measured = serde_json::json!({
        "bench": "ws_idle", "sockets": sockets, "ready": serde_json::from_str::<Value>(line.trim()).ok(),
        "rss_before_mib": before as f64 / 1024.0, "rss_with_mib": with as f64 / 1024.0,
        "added_kib_per_socket": (with.saturating_sub(before)) as f64 / sockets as f64,
    });
    eprintln!("  {measured}");
    Ok(measured)
}

/// 64 connections publishing durable events over HTTP as fast as they are answered.
fn hearth_http(binary: &Path, seconds: u64) -> anyhow::Result<Value> {
    let out_dir = crate::process::target_dir().join("bench-events-http");
    std::fs::create_dir_all(&out_dir)?;
    let server = serve_hearth(binary, &out_dir, &[], &[])?;
    let body = serde_json::to_vec(&"x".repeat(254))?;
    let target = Target {
        address: server.address.clone(),
        path: "/v1/events/bench.http".to_string(),
        body,
        authorization: None,
    };
    eprintln!("bench: Hearth over HTTP, 64 connections, {seconds} s");
    let outcome = closed_loop(&target, Duration::from_secs(seconds), 64);
    let measured = serde_json::json!({
        "bench": "durable_publish_http", "publishers": 64, "events": outcome.ok,
        "errors": outcome.errors, "msg_per_s": outcome.achieved_rps(),
        "p50_ms": outcome.latency_ms(0.5), "p99_ms": outcome.latency_ms(0.99),
    });
    eprintln!("  {measured}");
    drop(server);
    Ok(measured)
}

/// Resident memory over a publish and consume soak with retention on: (seconds, MiB) samples.
fn soak(binary: &Path, seconds: u64) -> anyhow::Result<Value> {
    let out_dir = crate::process::target_dir().join("bench-events-soak");
    std::fs::create_dir_all(&out_dir)?;
    let server = serve_hearth(binary, &out_dir, &[], &[])?;
    let mut admin = crate::http::Connection::open(&server.address)?;
    let retention = serde_json::json!({"retention": {"max_events": 10_000}});
    let put = admin.request(
        "PUT",
        "/v1/topics/soak.%3E",
        Some(retention.to_string().as_bytes()),
    )?;
    if put.status != 200 {
        bail!("setting retention failed: {}", put.text());
    }
    let created = admin.post_json(
        "/v1/consumers",
        &serde_json::json!({"name": "soak", "filter": "soak.>", "ack_wait_ms": 30_000}),
    )?;
    if created.status != 200 {
        bail!("creating the consumer failed: {}", created.text());
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = {
        let (address, stop) = (server.address.clone(), stop.clone());
        std::thread::spawn(move || -> anyhow::Result<u64> {
            let mut connection = crate::http::Connection::open(&address)?;
            let mut consumed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let fetched = connection.post_json(
                    "/v1/consumers/soak/fetch",
                    &serde_json::json!({"batch": 500, "wait_ms": 500}),
                )?;
                let ids: Vec<Value> = fetched.json()?["data"]
                    .as_array()
                    .map(|data| data.iter().map(|d| d["delivery_id"].clone()).collect())
                    .unwrap_or_default();
                if ids.is_empty() {
                    continue;
                }
                consumed += ids.len() as u64;
                connection.post_json(
                    "/v1/consumers/soak/ack",
                    &serde_json::json!({"delivery_ids": ids}),
                )?;
            }
            Ok(consumed)
        })
    };
    let target = Target {
        address: server.address.clone(),
        path: "/v1/events/soak.data".to_string(),
        body: serde_json::to_vec(&"x".repeat(254))?,
        authorization: None,
    };
    let publisher = std::thread::spawn(move || {
        crate::loadgen::open_loop(&target, 1000.0, Duration::from_secs(seconds), 8)
    });
    let pid = server.child.id();
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let rss = crate::process::status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
        samples.push(serde_json::json!([started.elapsed().as_secs(), rss]));
        std::thread::sleep(Duration::from_secs(10).min(Duration::from_secs(seconds.max(1))));
    }
    let published = publisher
        .join()
        .map_err(|_| anyhow::anyhow!("publisher panicked"))?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let consumed = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("consumer panicked"))??;
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|sample| sample[1].as_f64())
        .collect();
    // Past the first minute (the log, caches and allocator warm up), how far RSS moves.
    let settled: Vec<f64> = samples
        .iter()
        .filter(|sample| sample[0].as_u64().unwrap_or(0) >= 60)
        .filter_map(|sample| sample[1].as_f64())
        .collect();
    let spread = match (
        settled.iter().copied().reduce(f64::min),
        settled.iter().copied().reduce(f64::max),
    ) {
        (Some(low), Some(high)) if low > 0.0 => (high - low) / low * 100.0,
        _ => 0.0,
    };
    let measured = serde_json::json!({
        "bench": "soak", "seconds": seconds, "published": published.ok,
        "publish_errors": published.errors, "consumed": consumed,
        "rss_first_mib": rss.first(), "rss_last_mib": rss.last(),
        "rss_max_mib": rss.iter().copied().reduce(f64::max),
        "spread_after_first_minute_percent": spread, "samples": samples,
    });
    eprintln!("  {measured}");
    Ok(measured)
}

/// Hearth's and nats-server's WebSockets: fan-out at each rate, and idle sockets on Hearth.
fn websockets(binary: &Path, quick: bool) -> anyhow::Result<(Vec<Value>, Vec<Value>, Value)> {
    let peer = peer_binary()?;
    let out_dir = crate::process::target_dir().join("bench-events-ws");
    std::fs::create_dir_all(&out_dir)?;
    let rates: &[u64] = if quick { &[50] } else { &[50, 100, 200, 400] };
    let seconds = if quick { 2 } else { 5 };
    let server = serve_hearth(binary, &out_dir, &[], &[])?;
    let url = format!("ws://{}/v1/events/ws", server.address);
    eprintln!("bench: WebSocket fan-out to 1,000 subscribers, Hearth");
    let hearth = ws_fanout(&peer, "hearth", &url, rates, seconds)?;
    drop(server);
    let server = serve_hearth(binary, &out_dir, &[], &[])?;
    let url = format!("ws://{}/v1/events/ws", server.address);
    eprintln!("bench: 10,000 idle sockets on Hearth");
    let idle = ws_idle(
        &peer,
        server.child.id(),
        &url,
        if quick { 1000 } else { 10_000 },
    )?;
    drop(server);
    let nats = nats_with_websocket(&out_dir)?;
    eprintln!("bench: WebSocket fan-out to 1,000 subscribers, nats-server");
    let theirs = ws_fanout(&peer, "nats", &nats.url, rates, seconds)?;
    Ok((hearth, theirs, idle))
}

fn number(found: &HashMap<String, Value>, bench: &str, field: &str) -> Option<f64> {
    found.get(bench)?.get(field)?.as_f64()
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|arg| arg == "--quick");
    let skip_peer = args.iter().any(|arg| arg == "--skip-peer");
    let binary = match crate::flag(args, "--binary") {
        Some(path) => PathBuf::from(path),
        None => crate::release_binary().map_err(|error| anyhow::anyhow!(error))?,
    };
    let hearth = hearth_in_process(quick)?;
    let http = hearth_http(&binary, if quick { 3 } else { 10 })?;
    let nats = if skip_peer {
        HashMap::new()
    } else {
        nats_peer(quick)?
    };
    let (ws_hearth, ws_nats, ws_idle) = websockets(&binary, quick)?;
    let soak_seconds: u64 = crate::flag(args, "--soak-seconds")
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(0);
    let soaked = if soak_seconds > 0 {
        eprintln!("bench: {soak_seconds} s publish and consume soak");
        Some(soak(&binary, soak_seconds)?)
    } else {
        None
    };

    println!(
        "\nevents benchmark on {} ({} cores)",
        cpu_model_name(),
        num_cores()
    );
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "measure", "Hearth", "NATS", "ratio"
    );
    let row = |label: &str, ours: Option<f64>, theirs: Option<f64>, higher_is_better: bool| {
        let ratio = match (ours, theirs) {
            (Some(ours), Some(theirs)) if ours > 0.0 && theirs > 0.0 => {
                let ratio = if higher_is_better {
                    ours / theirs
                } else {
                    theirs / ours
                };
                format!("{ratio:.2}x")
            }
            _ => "-".to_string(),
        };
        let show =
            |value: Option<f64>| value.map_or("-".to_string(), |value| format!("{value:.1}"));
        println!(
            "{label:<44} {:>14} {:>14} {ratio:>8}",
            show(ours),
            show(theirs)
        );
    };
    row(
        "publish->deliver msg/s (`>` among 10k subs)",
        number(&hearth, "bus_throughput", "msg_per_s"),
        number(&nats, "bus_throughput", "msg_per_s"),
        true,
    );
    row(
        "p99 latency us at 10k msg/s (other thread)",
        number(&hearth, "bus_latency", "p99_us"),
        number(&nats, "bus_latency", "p99_us"),
        false,
    );
    // The subscriber on the publisher's thread: the bus's own cost, without a parked
    // thread's wake. NATS's client always crosses threads and a socket.
    row(
        "p99 latency us at 10k msg/s (same thread)",
        number(&hearth, "bus_latency_same_thread", "p99_us"),
        number(&nats, "bus_latency", "p99_us"),
        false,
    );
    row(
        "durable publish msg/s, 64 publishers (log)",
        number(&hearth, "durable_publish", "msg_per_s"),
        number(&nats, "durable_publish", "msg_per_s"),
        true,
    );
    row(
        "durable publish p99 ms (log)",
        number(&hearth, "durable_publish", "p99_ms"),
        number(&nats, "durable_publish", "p99_ms"),
        false,
    );
    let http_map: HashMap<String, Value> =
        HashMap::from([("durable_publish_http".to_string(), http)]);
    row(
        "durable publish msg/s, 64 publishers (HTTP)",
        number(&http_map, "durable_publish_http", "msg_per_s"),
        number(&nats, "durable_publish", "msg_per_s"),
        true,
    );
    row(
        "durable publish p99 ms (HTTP)",
        number(&http_map, "durable_publish_http", "p99_ms"),
        number(&nats, "durable_publish", "p99_ms"),
        false,
    );
    row(
        "replay from the start msg/s",
        number(&hearth, "replay", "msg_per_s"),
        number(&nats, "replay", "msg_per_s"),
        true,
    );
    for (ours, theirs) in ws_hearth
        .iter()
        .zip(ws_nats.iter().map(Some).chain(std::iter::repeat(None)))
    {
        let rate = ours["rate"].as_u64().unwrap_or(0);
        row(
            &format!("WS fan-out deliveries/s, 1000 subs, {rate}/s"),
            ours["deliveries_per_s"].as_f64(),
            theirs.and_then(|theirs| theirs["deliveries_per_s"].as_f64()),
            true,
        );
        row(
            &format!(
                "WS fan-out p99 ms ({} / {} lost)",
                ours["lost"],
                theirs.map_or(Value::Null, |t| t["lost"].clone())
            ),
            ours["p99_ms"].as_f64(),
            theirs.and_then(|theirs| theirs["p99_ms"].as_f64()),
            false,
        );
    }
    println!(
        "{} idle WebSockets on Hearth: RSS {:.1} -> {:.1} MiB ({:.1} KiB each)",
        ws_idle["sockets"],
        ws_idle["rss_before_mib"].as_f64().unwrap_or(0.0),
        ws_idle["rss_with_mib"].as_f64().unwrap_or(0.0),
        ws_idle["added_kib_per_socket"].as_f64().unwrap_or(0.0)
    );
    if let Some(soaked) = &soaked {
        println!(
            "soak {} s: {} published, {} consumed; RSS {:.1} -> {:.1} MiB (max {:.1}), spread after the first minute {:.1}%",
            soaked["seconds"],
            soaked["published"],
            soaked["consumed"],
            soaked["rss_first_mib"].as_f64().unwrap_or(0.0),
            soaked["rss_last_mib"].as_f64().unwrap_or(0.0),
            soaked["rss_max_mib"].as_f64().unwrap_or(0.0),
            soaked["spread_after_first_minute_percent"]
                .as_f64()
                .unwrap_or(0.0)
        );
    }
    if let Some(redelivery) = hearth.get("redelivery") {
        println!(
            "redelivery vs backoff: {} redeliveries, {} early, p99 error {:.1} ms, max {:.1} ms",
            redelivery["redeliveries"],
            redelivery["early"],
            redelivery["p99_error_ms"].as_f64().unwrap_or(0.0),
            redelivery["max_error_ms"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}
