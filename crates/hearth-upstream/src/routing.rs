//! Routes, their ordering strategies, and the dispatch loop with retries and breakers.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hearth_config::{Config, RouteStrategy, RouteTarget};

use crate::breaker::{Breaker, BreakerSettings};

/// Where a request can go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A model of this server.
    Local { model: String },
    /// A model of a configured upstream.
    Remote { upstream: String, model: String },
}

impl Target {
    /// `local/gemma3:270m`, `primary/gpt-4o-mini`: how configs, logs and headers name it.
    pub fn label(&self) -> String {
        match self {
            Target::Local { model } => format!("local/{model}"),
            Target::Remote { upstream, model } => format!("{upstream}/{model}"),
        }
    }
}

impl From<&RouteTarget> for Target {
    fn from(target: &RouteTarget) -> Target {
        match target {
            RouteTarget::Local { model } => Target::Local {
                model: model.clone(),
            },
            RouteTarget::Upstream { upstream, model } => Target::Remote {
                upstream: upstream.clone(),
                model: model.clone(),
            },
        }
    }
}

/// What is known of a remote target's health and load.
#[derive(Debug, Default)]
pub struct TargetStats {
    pub breaker: Breaker,
    in_flight: AtomicU64,
    /// Exponentially weighted mean of the time to response headers, in microseconds; 0 until
    /// the first success, so an untried target is tried early.
    latency_micros: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
}

impl TargetStats {
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn latency(&self) -> Option<Duration> {
        match self.latency_micros.load(Ordering::Acquire) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    pub fn successes(&self) -> u64 {
        self.successes.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn record_latency(&self, sample: Duration) {
        let sample = sample.as_micros().clamp(1, u128::from(u64::MAX)) as u64;
        let _ = self
            .latency_micros
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old * 4 + sample) / 5
                })
            });
    }
}

/// A request to a remote target in flight; released when dropped (after the body streamed).
#[derive(Debug)]
pub struct InFlight(Arc<TargetStats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One try of one target, for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub target: String,
    /// `ok`, an HTTP status, `timeout`, `connect error`, `skipped: breaker open`.
    pub outcome: String,
}

/// The targets of one request, in the order the strategy chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub route: String,
    pub targets: Vec<Target>,
}

/// Where a request ended up.
#[derive(Debug)]
pub enum Dispatch {
    /// An upstream answered with success; its body is still to be read (streamed).
    Remote {
        response: reqwest::Response,
        target: String,
        in_flight: InFlight,
        attempts: Vec<Attempt>,
    },
    /// The plan reached a local target: serve this model here.
    Local {
        model: String,
        attempts: Vec<Attempt>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// Every attempt failed (or every target's breaker is open).
    #[error(
        "no target of route {route:?} could serve the request: {}",
        describe(attempts)
    )]
    AllFailed {
        route: String,
        attempts: Vec<Attempt>,
        /// The status of the last upstream answer, when there was one.
        last_status: Option<u16>,
        /// When a target will be tried again (an open breaker, an upstream's Retry-After).
        retry_after: Option<Duration>,
    },
    /// The upstream refused the request itself (a 4xx other than 429): its answer goes to the
    /// client as it is, since another target would refuse it too.
    #[error("{target} refused the request with {status}")]
    Rejected {
        target: String,
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

fn describe(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "no target was tried".to_string();
    }
    attempts
        .iter()
        .map(|attempt| format!("{}: {}", attempt.target, attempt.outcome))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug)]
struct Upstream {
    base_url: String,
    api_key: Option<String>,
    timeout: Duration,
}

#[derive(Debug)]
struct Route {
    strategy: RouteStrategy,
    targets: Vec<Target>,
    weights: Vec<i64>,
    /// Smooth weighted round robin's running weights: exact proportions, no randomness.
    current_weights: Mutex<Vec<i64>>,
}

/// The routing table of one configuration, with the shared per-target statistics.
#[derive(Debug)]
pub struct Routing {
    upstreams: HashMap<String, Upstream>,
    routes: HashMap<String, Route>,
    stats: Mutex<HashMap<String, Arc<TargetStats>>>,
    client: reqwest::Client,
    max_attempts: u32,
    backoff: Duration,
    breaker: BreakerSettings,
    jitter: RandomState,
    jitter_counter: AtomicU64,
}

/// Most time an upstream's `Retry-After` may make a request wait before trying it again.
const MAX_RETRY_AFTER_WAIT: Duration = Duration::from_secs(5);

impl Routing {
    /// The routing of `config`. API keys are read from the environment variables the
    /// upstreams name; statistics and breakers of targets that `previous` knew carry over, so
    /// a reload does not forget that a target is down.
    pub fn from_config(
        config: &Config,
        environment: &dyn Fn(&str) -> Option<String>,
        previous: Option<&Routing>,
    ) -> Routing {
        let upstreams = config
            .upstreams
            .iter()
            .map(|upstream| {
                let api_key = upstream.api_key_env.as_deref().and_then(|name| {
                    let key = environment(name);
                    if key.is_none() {
                        tracing::warn!(upstream = %upstream.name, variable = %name, "the upstream's API key variable is not set; requests go without a key");
                    }
                    key
                });
                (
                    upstream.name.clone(),
                    Upstream {
                        base_url: upstream.base_url.clone(),
                        api_key,
                        timeout: upstream.timeout,
                    },
                )
            })
            .collect();
        let routes = config
            .routes
            .iter()
            .map(|route| {
                let weights: Vec<i64> = if route.weights.is_empty() {
                    vec![1; route.targets.len()]
                } else {
                    route
                        .weights
                        .iter()
                        .map(|&weight| i64::from(weight))
                        .collect()
                };
                (
                    route.model.clone(),
                    Route {
                        strategy: route.strategy,
                        targets: route.targets.iter().map(Target::from).collect(),
                        current_weights: Mutex::new(vec![0; weights.len()]),
                        weights,
                    },
                )
            })
            .collect();
        let stats = previous
            .map(|previous| previous.stats_map().clone())
            .unwrap_or_default();
        let client = previous.map_or_else(
            || {
                reqwest::Client::builder()
                    .pool_idle_timeout(Duration::from_secs(90))
                    .tcp_nodelay(true)
                    .build()
                    .unwrap_or_default()
            },
            |previous| previous.client.clone(),
        );
        Routing {
            upstreams,
            routes,
            stats: Mutex::new(stats),
            client,
            max_attempts: config.routing.max_attempts.max(1),
            backoff: config.routing.backoff,
            breaker: BreakerSettings {
                failures: config.routing.breaker_failures.max(1),
                open_for: config.routing.breaker_open,
            },
            jitter: RandomState::new(),
            jitter_counter: AtomicU64::new(0),
        }
    }

    fn stats_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TargetStats>>> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The statistics of a target, made on first use.
    pub fn target_stats(&self, target: &Target) -> Arc<TargetStats> {
        self.stats_map().entry(target.label()).or_default().clone()
    }

    /// Every remote target's statistics, by label, for metrics.
    pub fn all_stats(&self) -> Vec<(String, Arc<TargetStats>)> {
        let mut all: Vec<(String, Arc<TargetStats>)> = self
            .stats_map()
            .iter()
            .map(|(label, stats)| (label.clone(), stats.clone()))
            .collect();
        all.sort_by(|left, right| left.0.cmp(&right.0));
        all
    }

    /// The upstreams (name, base URL, whether a key is set, timeout) and the routes (alias,
    /// strategy, target labels), sorted by name, for the admin API.
    pub fn describe(&self) -> (Vec<UpstreamView>, Vec<RouteView>) {
        let mut upstreams: Vec<UpstreamView> = self
            .upstreams
            .iter()
            .map(|(name, upstream)| UpstreamView {
                name: name.clone(),
                base_url: upstream.base_url.clone(),
                has_api_key: upstream.api_key.is_some(),
                timeout: upstream.timeout,
            })
            .collect();
        upstreams.sort_by(|left, right| left.name.cmp(&right.name));
        let mut routes: Vec<RouteView> = self
            .routes
            .iter()
            .map(|(model, route)| RouteView {
                model: model.clone(),
                strategy: match route.strategy {
                    RouteStrategy::Priority => "priority",
                    RouteStrategy::Weighted => "weighted",
                    RouteStrategy::Latency => "latency",
                    RouteStrategy::LeastBusy => "least_busy",
                },
                targets: route.targets.iter().map(Target::label).collect(),
                weights: route.weights.iter().map(|&weight| weight as u32).collect(),
            })
            .collect();
        routes.sort_by(|left, right| left.model.cmp(&right.model));
        (upstreams, routes)
    }

    /// The route aliases clients may send.
    pub fn route_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.routes.keys().cloned().collect();
        names.sort();
        names
    }

    /// The plan for `model`: a route alias, or `upstream/model` naming an upstream directly.
    /// `None` when the name is neither (a local model name, served as usual).
    pub fn plan(&self, model: &str) -> Option<Plan> {
        if let Some(route) = self.routes.get(model) {
            return Some(Plan {
                route: model.to_string(),
                targets: self.order(route),
            });
        }
        let (upstream, upstream_model) = model.split_once('/')?;
        if self.upstreams.contains_key(upstream) && !upstream_model.is_empty() {
            return Some(Plan {
                route: model.to_string(),
                targets: vec![Target::Remote {
                    upstream: upstream.to_string(),
                    model: upstream_model.to_string(),
                }],
            });
        }
        None
    }

    /// The route's targets in the order its strategy picks for this request.
    fn order(&self, route: &Route) -> Vec<Target> {
        let mut targets = route.targets.clone();
        match route.strategy {
            RouteStrategy::Priority => {}
            RouteStrategy::Weighted => {
                let mut current = route
                    .current_weights
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let total: i64 = route.weights.iter().sum();
                for (weight, running) in route.weights.iter().zip(current.iter_mut()) {
                    *running += weight;
                }
                let chosen = (0..current.len())
                    .max_by_key(|&index| (current[index], std::cmp::Reverse(index)))
                    .unwrap_or(0);
                current[chosen] -= total;
                // The chosen one first; the others keep their order as fallbacks.
                let first = targets.remove(chosen);
                targets.insert(0, first);
            }
            RouteStrategy::Latency => {
                // Stable: equal latencies keep the configured order; unmeasured ones go first.
                targets.sort_by_key(|target| match target {
                    Target::Local { .. } => Duration::MAX,
                    Target::Remote { .. } => {
                        self.target_stats(target).latency().unwrap_or_default()
                    }
                });
            }
            RouteStrategy::LeastBusy => {
                targets.sort_by_key(|target| match target {
                    Target::Local { .. } => u64::MAX,
                    Target::Remote { .. } => self.target_stats(target).in_flight(),
                });
            }
        }
        targets
    }

    fn backoff_before(&self, retry: u32) -> Duration {
        let base = self.backoff.saturating_mul(1u32 << retry.min(10));
        // Jitter in [0.5, 1.5) so that clients retrying together spread out.
        let draw = self
            .jitter
            .hash_one(self.jitter_counter.fetch_add(1, Ordering::Relaxed));
        let factor = 0.5 + (draw % 1000) as f64 / 1000.0;
        base.mul_f64(factor)
    }

    /// Sends `body` (with its `model` replaced by each target's) to the plan's targets in
    /// order, to `endpoint` under each upstream's base URL (e.g. `/chat/completions`).
    pub async fn dispatch(
        &self,
        plan: &Plan,
        endpoint: &str,
        body: &serde_json::Value,
    ) -> Result<Dispatch, RoutingError> {
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut tries_per_target: HashMap<String, u32> = HashMap::new();
        let mut last_status = None;
        let mut retry_after: Option<Duration> = None;
        let mut made = 0;
        let mut pass = 0;
        while made < self.max_attempts {
            let mut tried_any = false;
            for target in &plan.targets {
                if made >= self.max_attempts {
                    break;
                }
                let (upstream_name, model) = match target {
                    // Degrading to this server ends the search, whatever attempts are left.
                    Target::Local { model } => {
                        return Ok(Dispatch::Local {
                            model: model.clone(),
                            attempts,
                        });
                    }
                    Target::Remote { upstream, model } => (upstream, model),
                };
                let label = target.label();
                let Some(upstream) = self.upstreams.get(upstream_name) else {
                    continue;
                };
                let stats = self.target_stats(target);
                if !stats.breaker.try_acquire(Instant::now()) {
                    if pass == 0 {
                        attempts.push(Attempt {
                            target: label,
                            outcome: "skipped: breaker open".to_string(),
                        });
                    }
                    continue;
                }
                tried_any = true;
                let earlier_tries = tries_per_target.entry(label.clone()).or_default();
                if *earlier_tries > 0 {
                    let wait = retry_after
                        .filter(|wait| *wait <= MAX_RETRY_AFTER_WAIT)
                        .unwrap_or_else(|| self.backoff_before(*earlier_tries - 1));
                    tokio::time::sleep(wait).await;
                }
                *earlier_tries += 1;
                made += 1;
                match self.send(upstream, &stats, endpoint, body, model).await {
                    Ok(response) => {
                        attempts.push(Attempt {
                            target: label.clone(),
                            outcome: "ok".to_string(),
                        });
                        stats.in_flight.fetch_add(1, Ordering::AcqRel);
                        return Ok(Dispatch::Remote {
                            response,
                            target: label,
                            in_flight: InFlight(stats),
                            attempts,
                        });
                    }
                    Err(Failure::Rejected {
                        status,
                        content_type,
                        body,
                    }) => {
                        return Err(RoutingError::Rejected {
                            target: label,
                            status,
                            content_type,
                            body,
                        });
                    }
                    Err(Failure::Retryable {
                        outcome,
                        status,
                        retry_after: wait,
                    }) => {
                        tracing::warn!(target = %label, %outcome, "upstream attempt failed");
                        last_status = status.or(last_status);
                        retry_after = wait;
                        attempts.push(Attempt {
                            target: label,
                            outcome,
                        });
                    }
                }
            }
            if !tried_any {
                break;
            }
            pass += 1;
        }
        // When every breaker is open, say when the first one will let a probe through.
        let now = Instant::now();
        let reopens = plan
            .targets
            .iter()
            .filter_map(
                |target| match self.target_stats(target).breaker.state(now) {
                    crate::BreakerState::Open { until } => {
                        Some(until.saturating_duration_since(now))
                    }
                    _ => None,
                },
            )
            .min();
        Err(RoutingError::AllFailed {
            route: plan.route.clone(),
            attempts,
            last_status,
            retry_after: retry_after.or(reopens),
        })
    }

    async fn send(
        &self,
        upstream: &Upstream,
        stats: &TargetStats,
        endpoint: &str,
        body: &serde_json::Value,
        model: &str,
    ) -> Result<reqwest::Response, Failure> {
        let mut body = body.clone();
        if let Some(object) = body.as_object_mut() {
            object.insert(
                "model".to_string(),
                serde_json::Value::String(model.to_string()),
            );
        }
        let mut request = self
            .client
            .post(format!("{}{endpoint}", upstream.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &upstream.api_key {
            request = request.bearer_auth(key);
        }
        let started = Instant::now();
        let result = tokio::time::timeout(upstream.timeout, request.send()).await;
        let failure = |outcome: String, status: Option<u16>, retry_after: Option<Duration>| {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            if stats.breaker.record_failure(self.breaker, Instant::now()) {
                tracing::warn!(%outcome, "upstream circuit breaker opened");
            }
            Err(Failure::Retryable {
                outcome,
                status,
                retry_after,
            })
        };
        let response = match result {
            Err(_) => {
                return failure(
                    format!("timeout after {} ms", upstream.timeout.as_millis()),
                    None,
                    None,
                );
            }
            Ok(Err(error)) if error.is_connect() => {
                return failure("connection failed".to_string(), None, None);
            }
            Ok(Err(error)) => return failure(format!("request failed: {error}"), None, None),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            stats.successes.fetch_add(1, Ordering::Relaxed);
            stats.breaker.record_success();
            stats.record_latency(started.elapsed());
            return Ok(response);
        }
        if status.as_u16() == 429 || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return failure(
                status.as_u16().to_string(),
                Some(status.as_u16()),
                retry_after,
            );
        }
        // The upstream is healthy; the request is what it refuses.
        stats.breaker.record_success();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        Err(Failure::Rejected {
            status: status.as_u16(),
            content_type,
            body,
        })
    }
}

enum Failure {
    Retryable {
        outcome: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    Rejected {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

/// An upstream as the admin API shows it (never its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamView {
    pub name: String,
    pub base_url: String,
    pub has_api_key: bool,
    pub timeout: Duration,
}

/// A route as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    pub model: String,
    pub strategy: &'static str,
    pub targets: Vec<String>,
    pub weights: Vec<u32>,
}

/// The routing in force, replaced whole by a config reload.
#[derive(Debug)]
pub struct RoutingHandle {
    current: RwLock<Arc<Routing>>,
}

impl RoutingHandle {
    pub fn new(routing: Routing) -> Arc<RoutingHandle> {
        Arc::new(RoutingHandle {
            current: RwLock::new(Arc::new(routing)),
        })
    }

    pub fn current(&self) -> Arc<Routing> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Builds the routing of a reloaded config, keeping what is known of each target.
    pub fn reload(&self, config: &Config, environment: &dyn Fn(&str) -> Option<String>) {
        let previous = self.current();
        let next = Routing::from_config(config, environment, Some(&previous));
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
    }
}
