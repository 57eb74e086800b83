//! `cargo xtask bench gateway`: what a gateway in front of an upstream costs, measured in one
//! run against (a) a fake OpenAI-compatible upstream directly, (b) Hearth in front of it with
//! auth on (a tenant's key made by the CLI), per-key and per-IP limits on and usage recorded,
//! and (c) LiteLLM's proxy in front of the same upstream; and (d) Hearth again on a second
//! route alias that a running experiment splits (two variants, unit the key), so the cost of
//! assigning each request and recording its exposure is (d) minus (b).
//!
//! - Overhead: at fixed request rates (open loop), the p50 and p99 latency through a gateway
//!   minus the same percentile straight to the upstream in the same run.
//! - Max sustained RPS: closed loop, each connection sending its next request as soon as the
//!   last is answered.
//! - Memory: Hearth's resident size sampled through a long run at a fixed rate (10 minutes by
//!   default), from the end of its first minute to the end.
//!
//! Everything shares the machine's cores: the load generator, the upstream and the gateway.
//! That is the setting the targets are set in (two cores), and it is the same for both gateways.
//!
//! Options: `--quick` (short runs, for checking the benchmark itself), `--skip-peer` (no
//! LiteLLM), `--rates 100,500,...`, `--seconds N` (each fixed-rate run), `--soak-seconds N`,
//! `--soak-rate N`, `--connections N`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::loadgen::{self, Outcome, Target};
use crate::peer;
use crate::process::{Server, local_address, status_kib, target_dir, wait_until_ready};

/// The LiteLLM the benchmark installs into its own virtualenv (wheels only: a minute or two).
const LITELLM: &str = "litellm[proxy]==1.108.7";
/// The model name clients send to either gateway; both route it to the upstream's model.
const ROUTE: &str = "bench";
const UPSTREAM_MODEL: &str = "bench-model";
/// The route alias an experiment splits.
const EXPERIMENT_ROUTE: &str = "bench-ab";
/// The experiment path's name in the report.
const WITH_EXPERIMENT: &str = "Hearth+AB";
const LITELLM_MASTER_KEY: &str = "sk-bench-master";
/// Hearth's target: p99 overhead at this rate.
const TARGET_RATE: f64 = 2000.0;

struct Options {
    quick: bool,
    skip_peer: bool,
    rates: Vec<f64>,
    run: Duration,
    max_run: Duration,
    soak: Duration,
    soak_rate: f64,
    connections: usize,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let quick = args.iter().any(|arg| arg == "--quick");
        let number = |name: &str, default: f64| -> anyhow::Result<f64> {
            crate::flag(args, name).map_or(Ok(default), |text| {
                text.parse()
                    .map_err(|_| anyhow!("{name} {text} is not a number"))
            })
        };
        let rates = match crate::flag(args, "--rates") {
            Some(list) => list
                .split(',')
                .map(|rate| {
                    rate.trim()
                        .parse()
                        .map_err(|_| anyhow!("--rates: {rate} is not a number"))
                })
                .collect::<anyhow::Result<Vec<f64>>>()?,
            None if quick => vec![100.0, TARGET_RATE],
            None => vec![100.0, 500.0, 1000.0, TARGET_RATE],
        };
        Ok(Options {
            quick,
            skip_peer: args.iter().any(|arg| arg == "--skip-peer"),
            rates,
            run: Duration::from_secs_f64(number("--seconds", if quick { 4.0 } else { 15.0 })?),
            max_run: Duration::from_secs_f64(if quick { 4.0 } else { 10.0 }),
            soak: Duration::from_secs_f64(number(
                "--soak-seconds",
                if quick { 30.0 } else { 600.0 },
            )?),
            soak_rate: number("--soak-rate", TARGET_RATE)?,
            connections: number("--connections", 32.0)? as usize,
        })
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    // Reports go beside the inference benchmark's; the servers' homes and logs below them.
    let report_dir = target_dir().join("bench");
    let out_dir = report_dir.join("gateway");
    std::fs::create_dir_all(&out_dir)?;
    let litellm = if options.skip_peer {
        None
    } else {
        let venv = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hearth/litellm-venv");
        Some(peer::ensure_venv(
            &venv,
            &[LITELLM],
            "wheels only: a minute or two",
        )?)
    };
    let binary = build()?;

    let upstream = start_fake_upstream(&out_dir)?;
    let (hearth, key) = start_hearth(&binary, &upstream.address, &out_dir)?;
    start_experiment(&hearth.address, &key.1)?;
    let key = key.0;
    let litellm = match &litellm {
        Some(python) => Some(start_litellm(python, &upstream.address, &out_dir)?),
        None => None,
    };

    // The same chat completion to every path; only the model name and the key differ.
    let target = |address: &str, model: &str, authorization: Option<String>| Target {
        address: address.to_string(),
        path: "/v1/chat/completions".into(),
        body: json!({
            "model": model,
            "messages": [{"role": "user", "content": "Say hello in five words."}],
            "max_tokens": 16,
        })
        .to_string()
        .into_bytes(),
        authorization,
    };
    let mut gateways = vec![
        ("direct", target(&upstream.address, UPSTREAM_MODEL, None)),
        (
            "Hearth",
            target(&hearth.address, ROUTE, Some(format!("Bearer {key}"))),
        ),
        (
            WITH_EXPERIMENT,
            target(
                &hearth.address,
                EXPERIMENT_ROUTE,
                Some(format!("Bearer {key}")),
            ),
        ),
    ];
    if let Some(server) = &litellm {
        gateways.push((
            "LiteLLM",
            target(
                &server.address,
                ROUTE,
                Some(format!("Bearer {LITELLM_MASTER_KEY}")),
            ),
        ));
    }

    // Every path answers before anything is timed, and first-use costs are paid.
    for (name, target) in &gateways {
        let warm = loadgen::closed_loop(target, Duration::from_secs(2), 4);
        if warm.ok == 0 {
            bail!(
                "{name} answered no request: {}",
                warm.first_error.unwrap_or_default()
            );
        }
    }

    let mut report = Report::default();
    for (name, target) in &gateways {
        eprintln!(
            "bench: {name}: closed loop, {} connections",
            options.connections
        );
        let outcome = loadgen::closed_loop(target, options.max_run, options.connections);
        report.max.push((name, outcome));
    }
    let litellm_max = report.max_rps("LiteLLM");
    for &rate in &options.rates {
        let mut row = Vec::new();
        for (name, target) in &gateways {
            // A rate far past what a server sustains only measures its queue.
            if litellm_max.is_some_and(|max| *name == "LiteLLM" && rate > max * 0.9) {
                continue;
            }
            eprintln!("bench: {name}: {rate} RPS for {:?}", options.run);
            let outcome = loadgen::open_loop(target, rate, options.run, options.connections);
            row.push((*name, outcome));
        }
        report.rates.push((rate, row));
    }

    eprintln!(
        "bench: Hearth: {} RPS for {:?}, sampling its resident size",
        options.soak_rate, options.soak
    );
    report.soak = Some(soak(
        &gateways[1].1,
        hearth.child.id(),
        options.soak_rate,
        options.soak,
        options.connections,
    ));
    report.hearth_peak_kib = status_kib(hearth.child.id(), "VmHWM");

    let text = report.text(&options);
    println!("{text}");
    std::fs::write(report_dir.join("gateway.txt"), &text)?;
    std::fs::write(
        report_dir.join("gateway.json"),
        serde_json::to_string_pretty(&report.json(&options))?,
    )?;
    eprintln!(
        "bench: report written to {}/gateway.{{txt,json}}; logs in {}",
        report_dir.display(),
        out_dir.display()
    );
    drop((upstream, hearth, litellm));
    Ok(())
}

// ---------------------------------------------------------------- soak

struct Soak {
    outcome: Outcome,
    /// (seconds since the start, resident KiB)
    samples: Vec<(f64, u64)>,
    baseline_at: f64,
}

impl Soak {
    fn baseline(&self) -> Option<u64> {
        self.samples
            .iter()
            .find(|(at, _)| *at >= self.baseline_at)
            .map(|(_, kib)| *kib)
    }

    /// The largest departure from the baseline after it, as a fraction of it.
    fn drift(&self) -> Option<f64> {
        let baseline = self.baseline()? as f64;
        self.samples
            .iter()
            .filter(|(at, _)| *at >= self.baseline_at)
            .map(|(_, kib)| (*kib as f64 - baseline) / baseline)
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
    }

    fn last(&self) -> Option<u64> {
        self.samples.last().map(|(_, kib)| *kib)
    }
}

fn soak(target: &Target, pid: u32, rate: f64, duration: Duration, connections: usize) -> Soak {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS") {
                    samples.push((started.elapsed().as_secs_f64(), kib));
                }
                // Short sleeps so the sampler notices the end promptly.
                let next = started + Duration::from_secs(5 * samples.len() as u64);
                while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            samples
        })
    };
    let outcome = loadgen::open_loop(target, rate, duration, connections);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    Soak {
        outcome,
        samples,
        // The first minute fills pools, caches and the usage writer's buffers; a leak shows as
        // growth after it.
        baseline_at: (duration.as_secs_f64() / 10.0).min(60.0),
    }
}

// ---------------------------------------------------------------- processes

/// The release binary, built by the same cargo call as the inference benchmark's (the same
/// packages and examples), so that switching between the two rebuilds nothing.
fn build() -> anyhow::Result<PathBuf> {
    Ok(crate::bench_inference::build()?.hearth)
}

fn start_fake_upstream(out_dir: &Path) -> anyhow::Result<Server> {
    let address = local_address()?;
    let log_path = out_dir.join("upstream.log");
    let child = Command::new(std::env::current_exe()?)
        .args(["fake-upstream", "--listen", &address])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()
        .context("cannot start the fake upstream")?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/v1/models", &log_path)?;
    Ok(server)
}

/// `hearth serve` on a fresh data directory, with auth forced on, one route to the upstream,
/// a per-IP request limit, and a tenant's member key with request, token and concurrency
/// limits, made by the CLI before the server starts. The limits are far above the load so that
/// they are checked on every request without refusing any.
/// Defines and starts the experiment on [`EXPERIMENT_ROUTE`]: two variants (one sets a
/// temperature), the key as the unit.
fn start_experiment(address: &str, admin_key: &str) -> anyhow::Result<()> {
    let mut connection = crate::http::Connection::open(address)?
        .with_header("authorization", &format!("Bearer {admin_key}"));
    let experiment = json!({
        "name": "bench-ab",
        "target": {"model": EXPERIMENT_ROUTE},
        "unit": "key",
        "variants": [{"name": "control", "weight": 50},
                     {"name": "warm", "weight": 50, "parameters": {"temperature": 0.5}}],
    });
    let made = connection.post_json("/v1/experiments", &experiment)?;
    if made.status != 201 {
        bail!("defining the experiment: {} {}", made.status, made.text());
    }
    let started = connection.request("POST", "/v1/experiments/bench-ab/start", None)?;
    if started.status != 200 {
        bail!(
            "starting the experiment: {} {}",
            started.status,
            started.text()
        );
    }
    Ok(())
}

/// Returns the server, and a member key and an admin key of the bench tenant.
fn start_hearth(
    binary: &Path,
    upstream: &str,
    out_dir: &Path,
) -> anyhow::Result<(Server, (String, String))> {
    let home = out_dir.join("hearth-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let config = home.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[auth]
mode = "on"

[limits]
ip_requests_per_minute = 100000000

[[upstreams]]
name = "fake"
base_url = "http://{upstream}/v1"
timeout_ms = 30000

[[routes]]
model = "{ROUTE}"
strategy = "priority"
targets = ["fake/{UPSTREAM_MODEL}"]

[[routes]]
model = "{EXPERIMENT_ROUTE}"
strategy = "priority"
targets = ["fake/{UPSTREAM_MODEL}"]
"#
        ),
    )?;
    let hearth = |args: &[&str]| {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(crate::process::settings_from_env())
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(home.join("data"))
            .args(args);
        command
    };
    let output = hearth(&[
        "keys",
        "create",
        "--tenant",
        "bench",
        "--role",
        "member",
        "--rpm",
        "100000000",
        "--tpm",
        "10000000000",
        "--concurrency",
        "10000",
    ])
    .output()?;
    if !output.status.success() {
        bail!(
            "hearth keys create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let key = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .context("hearth keys create printed no key")?
        .trim()
        .to_string();
    let output = hearth(&["keys", "create", "--tenant", "bench", "--role", "admin"]).output()?;
    if !output.status.success() {
        bail!(
            "hearth keys create --role admin failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let admin_key = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .context("hearth keys create printed no key")?
        .trim()
        .to_string();
    let address = local_address()?;
    let log_path = out_dir.join("hearth.log");
    let child = hearth(&["serve", "--listen", &address])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/readyz", &log_path)?;
    Ok((server, (key, admin_key)))
}

/// LiteLLM's proxy with one model routed to the upstream, a master key (its auth), one worker
/// per core, and its logging at warnings so that it is not writing a line per request.
fn start_litellm(python: &Path, upstream: &str, out_dir: &Path) -> anyhow::Result<Server> {
    let config = out_dir.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: {ROUTE}\n    litellm_params:\n      model: openai/{UPSTREAM_MODEL}\n      api_base: http://{upstream}/v1\n      api_key: sk-upstream\ngeneral_settings:\n  master_key: {LITELLM_MASTER_KEY}\n"
        ),
    )?;
    let address = local_address()?;
    let (host, port) = address.split_once(':').expect("host:port");
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let log_path = out_dir.join("litellm.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(python.with_file_name("litellm"))
        // Its own process group, so that stopping it stops the worker processes it forks.
        .process_group(0)
        .arg("--config")
        .arg(&config)
        .args(["--host", host, "--port", port])
        .args(["--num_workers", &cores.to_string()])
        // No network here: the model price map is read from the package, not fetched.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_LOG", "WARNING")
        .env("LITELLM_TELEMETRY", "False")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start LiteLLM")?;
    let mut server = Server { child, address };
    wait_until_ready(&mut server, "/health/liveliness", &log_path)?;
    Ok(server)
}

// ---------------------------------------------------------------- report

#[derive(Default)]
struct Report {
    max: Vec<(&'static str, Outcome)>,
    rates: Vec<(f64, Vec<(&'static str, Outcome)>)>,
    soak: Option<Soak>,
    hearth_peak_kib: Option<u64>,
}

/// Whether an open-loop run kept its schedule: nearly every request answered, none refused,
/// and requests left close to their slots.
fn sustained(outcome: &Outcome, rate: f64) -> bool {
    outcome.achieved_rps() >= rate * 0.95
        && outcome.errors * 1000 <= outcome.ok
        && outcome.lateness_ms(0.99).is_some_and(|late| late <= 5.0)
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |value| format!("{value:.3}"))
}

impl Report {
    fn max_rps(&self, name: &str) -> Option<f64> {
        self.max
            .iter()
            .find(|(gateway, _)| *gateway == name)
            .map(|(_, outcome)| outcome.achieved_rps())
    }

    fn at_rate(&self, rate: f64, name: &str) -> Option<&Outcome> {
        let (_, row) = self.rates.iter().find(|(at, _)| *at == rate)?;
        row.iter()
            .find(|(gateway, _)| *gateway == name)
            .map(|(_, outcome)| outcome)
    }

    /// A gateway's added latency at a percentile: its figure minus the upstream's, same rate.
    fn overhead(&self, rate: f64, name: &str, quantile: f64) -> Option<f64> {
        let through = self.at_rate(rate, name)?.latency_ms(quantile)?;
        let direct = self.at_rate(rate, "direct")?.latency_ms(quantile)?;
        Some(through - direct)
    }

    fn text(&self, options: &Options) -> String {
        let mut out = String::new();
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        out.push_str(&format!(
            "gateway benchmark{}: fake upstream direct vs Hearth (auth, limits, usage on) vs LiteLLM, {cores} cores shared, {} connections\n\n",
            if options.quick { " (quick)" } else { "" },
            options.connections
        ));
        out.push_str("max sustained RPS (closed loop)\n");
        for (name, outcome) in &self.max {
            out.push_str(&format!(
                "  {name:<9} {:>9.0} RPS  p50 {} ms  p99 {} ms  errors {}\n",
                outcome.achieved_rps(),
                ms(outcome.latency_ms(0.5)),
                ms(outcome.latency_ms(0.99)),
                outcome.errors
            ));
        }
        out.push_str(&format!(
            "\nfixed rates (open loop, {:?} each): latency p50 / p99 ms, overhead = gateway - direct at the same percentile\n",
            options.run
        ));
        out.push_str(&format!(
            "  {:>6}  {:<9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}  {}\n",
            "RPS", "path", "achieved", "p50", "p99", "+p50", "+p99", "late p99", "kept up"
        ));
        for (rate, row) in &self.rates {
            for (name, outcome) in row {
                let (plus50, plus99) = if *name == "direct" {
                    (None, None)
                } else {
                    (
                        self.overhead(*rate, name, 0.5),
                        self.overhead(*rate, name, 0.99),
                    )
                };
                out.push_str(&format!(
                    "  {:>6.0}  {:<9} {:>9.0} {:>9} {:>9} {:>9} {:>9} {:>8}  {}{}\n",
                    rate,
                    name,
                    outcome.achieved_rps(),
                    ms(outcome.latency_ms(0.5)),
                    ms(outcome.latency_ms(0.99)),
                    ms(plus50),
                    ms(plus99),
                    ms(outcome.lateness_ms(0.99)),
                    if sustained(outcome, *rate) {
                        "yes"
                    } else {
                        "NO"
                    },
                    outcome
                        .first_error
                        .as_ref()
                        .map_or(String::new(), |error| format!(
                            "  ({} errors; first: {error})",
                            outcome.errors
                        )),
                ));
            }
        }
        if let Some(soak) = &self.soak {
            out.push_str(&format!(
                "\nHearth resident memory over {:?} at {:.0} RPS ({:.0} achieved, {} errors, latency p50 {} ms, p99 {} ms): {} MiB at {:.0} s, {} MiB at the end, largest departure {}; peak {} MiB\n",
                options.soak,
                options.soak_rate,
                soak.outcome.achieved_rps(),
                soak.outcome.errors,
                ms(soak.outcome.latency_ms(0.5)),
                ms(soak.outcome.latency_ms(0.99)),
                mib(soak.baseline()),
                soak.baseline_at,
                mib(soak.last()),
                soak.drift().map_or("-".to_string(), |drift| format!("{:+.1}%", drift * 100.0)),
                mib(self.hearth_peak_kib),
            ));
        }
        out.push_str("\ntargets\n");
        for (what, value, target, pass) in self.targets() {
            out.push_str(&format!(
                "  {what:<48} {:>10} {target:>10}  {}\n",
                value.map_or("-".to_string(), |value| format!("{value:.3}")),
                match pass {
                    Some(true) => "pass",
                    Some(false) => "MISS",
                    None => "n/a",
                }
            ));
        }
        out
    }

    /// (what, value, target, met)
    fn targets(&self) -> Vec<(String, Option<f64>, &'static str, Option<bool>)> {
        let overhead = self.overhead(TARGET_RATE, "Hearth", 0.99);
        let kept_up = self
            .at_rate(TARGET_RATE, "Hearth")
            .map(|outcome| sustained(outcome, TARGET_RATE));
        let ratio = self
            .max_rps("Hearth")
            .zip(self.max_rps("LiteLLM"))
            .map(|(hearth, litellm)| hearth / litellm);
        let drift = self.soak.as_ref().and_then(Soak::drift);
        // What the experiment adds on top of the plain route, at the same rate and percentile.
        let experiment = self
            .overhead(TARGET_RATE, WITH_EXPERIMENT, 0.99)
            .zip(overhead)
            .map(|(with, without)| (with - without) * 1000.0);
        vec![
            (
                format!("experiment assignment + recording, added p99 at {TARGET_RATE:.0} RPS, µs"),
                experiment,
                "<= 20",
                experiment.map(|value| value <= 20.0),
            ),
            (
                format!("Hearth p99 overhead at {TARGET_RATE:.0} RPS, ms"),
                overhead,
                "<= 1",
                overhead.map(|value| value <= 1.0 && kept_up == Some(true)),
            ),
            (
                "max sustained RPS, Hearth / LiteLLM".to_string(),
                ratio,
                ">= 20",
                ratio.map(|value| value >= 20.0),
            ),
            (
                "Hearth RSS drift after the first minute, %".to_string(),
                drift.map(|value| value * 100.0),
                "within 5",
                drift.map(|value| value.abs() <= 0.05),
            ),
        ]
    }

    fn json(&self, options: &Options) -> Value {
        let outcome = |outcome: &Outcome| {
            json!({
                "achieved_rps": outcome.achieved_rps(),
                "ok": outcome.ok,
                "errors": outcome.errors,
                "p50_ms": outcome.latency_ms(0.5),
                "p90_ms": outcome.latency_ms(0.9),
                "p99_ms": outcome.latency_ms(0.99),
                "p999_ms": outcome.latency_ms(0.999),
                "late_p99_ms": outcome.lateness_ms(0.99),
                "first_error": outcome.first_error,
            })
        };
        json!({
            "quick": options.quick,
            "connections": options.connections,
            "max": self.max.iter().map(|(name, o)| json!({"path": name, "outcome": outcome(o)})).collect::<Vec<_>>(),
            "rates": self.rates.iter().map(|(rate, row)| json!({
                "rate": rate,
                "paths": row.iter().map(|(name, o)| json!({"path": name, "outcome": outcome(o)})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "soak": self.soak.as_ref().map(|soak| json!({
                "rate": options.soak_rate,
                "seconds": options.soak.as_secs_f64(),
                "outcome": outcome(&soak.outcome),
                "rss_kib": soak.samples,
                "drift": soak.drift(),
            })),
            "hearth_peak_kib": self.hearth_peak_kib,
            "targets": self.targets().into_iter().map(|(what, value, target, pass)| json!({
                "what": what, "value": value, "target": target, "pass": pass,
            })).collect::<Vec<_>>(),
        })
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_string(), |kib| format!("{:.1}", kib as f64 / 1024.0))
}
