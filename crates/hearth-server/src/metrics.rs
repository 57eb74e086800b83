//! Prometheus metrics: HTTP request counts and latency histograms by route and status, and the
//! standard `process_*` metrics, rendered at `/metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// Installs the process-wide metrics recorder once and returns its handle. Later calls (tests
/// building several routers in one process) get the same handle.
pub fn install_metrics_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_string()),
                    LATENCY_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program's); ours then
            // only renders what is recorded through it, which is nothing. Say so once.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            metrics::describe_counter!("http_requests_total", "HTTP requests answered");
            metrics::describe_histogram!(
                "http_request_duration_seconds",
                metrics::Unit::Seconds,
                "Time from request to response headers"
            );
            handle
        })
        .clone()
}

/// Records one request's count and latency, labelled by method, route template and status.
/// The route is the matched template (`/v1/models/{id}`), never the raw path, so that
/// cardinality stays bounded.
pub(crate) async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    record_process_metrics();
    metrics::gauge!("hearth_uptime_seconds").set(state.started_at.elapsed().as_secs_f64());
    metrics::gauge!("hearth_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The standard `process_*` metrics, read from /proc at scrape time.
fn record_process_metrics() {
    let Some(process) = read_process_stats() else {
        return;
    };
    metrics::gauge!("process_resident_memory_bytes").set(process.resident_bytes as f64);
    metrics::gauge!("process_virtual_memory_bytes").set(process.virtual_bytes as f64);
    metrics::gauge!("process_cpu_seconds_total").set(process.cpu_seconds);
    metrics::gauge!("process_open_fds").set(process.open_fds as f64);
    metrics::gauge!("process_threads").set(process.threads as f64);
    if let Some(start) = process.start_time_seconds {
        metrics::gauge!("process_start_time_seconds").set(start);
    }
}

struct ProcessStats {
    resident_bytes: u64,
    virtual_bytes: u64,
    cpu_seconds: f64,
    open_fds: usize,
    threads: u64,
    start_time_seconds: Option<f64>,
}

/// Linux clock ticks per second; 100 on every mainstream kernel configuration.
const TICKS_PER_SECOND: f64 = 100.0;

fn read_process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is parenthesised and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<u64>().ok())
    };
    // Indexes are the man page's field numbers minus 3 (pid and comm are gone, 1-based).
    let cpu_ticks = field(11)? + field(12)?;
    let threads = field(17)?;
    let start_ticks = field(19)?;
    let virtual_bytes = field(20)?;

    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let resident_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })?;

    let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("btime "))
            .and_then(|value| value.trim().parse::<f64>().ok())
    });

    Some(ProcessStats {
        resident_bytes: resident_kib * 1024,
        virtual_bytes,
        cpu_seconds: cpu_ticks as f64 / TICKS_PER_SECOND,
        open_fds: std::fs::read_dir("/proc/self/fd")
            .map(|dir| dir.count())
            .unwrap_or(0),
        threads,
        start_time_seconds: boot_time.map(|boot| boot + start_ticks as f64 / TICKS_PER_SECOND),
    })
}
