//! The gateway benchmark's load generator: keep-alive connections, each on its own thread,
//! sending one JSON request after another either at a fixed overall rate (open loop: a request
//! is due at its slot whether or not earlier ones have been answered) or as fast as answers
//! come back (closed loop, for the most a server sustains).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::http::Connection;

/// What every request of a run sends.
#[derive(Clone)]
pub struct Target {
    pub address: String,
    pub path: String,
    /// The JSON body, serialized once: the generator's own work per request stays tiny.
    pub body: Vec<u8>,
    pub authorization: Option<String>,
}

impl Target {
    fn connect(&self) -> anyhow::Result<Connection> {
        let connection = Connection::open(&self.address)?;
        Ok(match &self.authorization {
            Some(value) => connection.with_header("authorization", value),
            None => connection,
        })
    }
}

/// What a run measured.
#[derive(Default)]
pub struct Outcome {
    /// Requests answered 200.
    pub ok: usize,
    /// Requests answered otherwise, or whose connection broke.
    pub errors: usize,
    /// Time from writing each successful request to reading its whole response, sorted.
    latencies_us: Vec<u32>,
    /// How far behind its slot each open-loop request was sent, sorted.
    lateness_us: Vec<u32>,
    pub elapsed: Duration,
    /// The first error's description, for the report.
    pub first_error: Option<String>,
}

impl Outcome {
    pub fn latency_ms(&self, quantile: f64) -> Option<f64> {
        percentile(&self.latencies_us, quantile).map(|us| us as f64 / 1000.0)
    }

    pub fn lateness_ms(&self, quantile: f64) -> Option<f64> {
        percentile(&self.lateness_us, quantile).map(|us| us as f64 / 1000.0)
    }

    pub fn achieved_rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        self.lateness_us.extend(other.lateness_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn finish(&mut self, elapsed: Duration) {
        self.latencies_us.sort_unstable();
        self.lateness_us.sort_unstable();
        self.elapsed = elapsed;
    }
}

fn percentile(sorted: &[u32], quantile: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() as f64 * quantile) as usize).min(sorted.len() - 1);
    Some(sorted[index])
}

/// `rate` requests per second in all for `duration`, spread over `connections` connections:
/// request `i` is due at `i / rate` seconds after the start and goes out on connection
/// `i % connections`. Latency is counted from the moment a request is written (the server's
/// part); how late each one left its slot is kept apart, so a run the generator or the server
/// could not keep up with shows as late rather than as slow.
pub fn open_loop(target: &Target, rate: f64, duration: Duration, connections: usize) -> Outcome {
    let start = Instant::now() + Duration::from_millis(50);
    let total = (rate * duration.as_secs_f64()) as usize;
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let target = target.clone();
            std::thread::spawn(move || {
                let mut outcome = Outcome::default();
                let mut connection = None;
                for index in (worker..total).step_by(connections) {
                    let due = start + Duration::from_secs_f64(index as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let sent = Instant::now();
                    outcome
                        .lateness_us
                        .push(micros(sent.saturating_duration_since(due)));
                    one_request(&target, &mut connection, &mut outcome, sent);
                }
                outcome
            })
        })
        .collect();
    collect(workers, start)
}

/// `connections` connections each sending its next request as soon as the last is answered,
/// for `duration`.
pub fn closed_loop(target: &Target, duration: Duration, connections: usize) -> Outcome {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (target, stop) = (target.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut outcome = Outcome::default();
                let mut connection = None;
                while !stop.load(Ordering::Relaxed) {
                    one_request(&target, &mut connection, &mut outcome, Instant::now());
                }
                outcome
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    collect(workers, start)
}

fn collect(workers: Vec<std::thread::JoinHandle<Outcome>>, start: Instant) -> Outcome {
    let mut outcome = Outcome::default();
    for worker in workers {
        if let Ok(part) = worker.join() {
            outcome.merge(part);
        }
    }
    outcome.finish(Instant::now().saturating_duration_since(start));
    outcome
}

fn one_request(
    target: &Target,
    connection: &mut Option<Connection>,
    outcome: &mut Outcome,
    sent: Instant,
) {
    let result = (|| {
        if connection.is_none() {
            *connection = Some(target.connect()?);
        }
        let open = connection.as_mut().expect("just connected");
        open.request("POST", &target.path, Some(&target.body))
    })();
    match result {
        Ok(response) if response.status == 200 => {
            outcome.ok += 1;
            outcome.latencies_us.push(micros(sent.elapsed()));
        }
        Ok(response) => {
            outcome.errors += 1;
            outcome.first_error.get_or_insert_with(|| {
                format!("{}: {}", response.status, truncate(&response.text()))
            });
        }
        Err(error) => {
            outcome.errors += 1;
            outcome
                .first_error
                .get_or_insert_with(|| format!("{error:#}"));
            // The connection may be half-read; the next request opens a new one.
            *connection = None;
        }
    }
}

fn micros(duration: Duration) -> u32 {
    duration.as_micros().min(u32::MAX as u128) as u32
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}
