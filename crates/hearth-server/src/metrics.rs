//! Prometheus metrics: HTTP request counts and latency histograms by route and status, the
//! standard `process_*` metrics, and per-model scheduler metrics, rendered at `/metrics`.
//!
//! The per-model series (`hearth_model_*{model="..."}`) are not kept in the recorder: they are
//! read from each loaded chat model's scheduler at scrape time and rendered beside it. So only
//! loaded models have series (an unloaded model's disappear instead of freezing at their last
//! value), and a reloaded model's counters restart from zero, which Prometheus reads as the
//! counter reset it is.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hearth_engine::SchedulerStats;
use hearth_inference::{Inference, LoadedModel};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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
            // Histograms keep every sample until upkeep folds them into their buckets; render
            // does it too, but a server nobody scrapes would otherwise grow by each request's
            // samples (measured: ~18 bytes a request, without end).
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("hearth-metrics".to_string())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
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
            metrics::describe_histogram!(
                "hearth_memory_search_duration_seconds",
                metrics::Unit::Seconds,
                "Time a collection search took in the memory service, by mode"
            );
            metrics::describe_counter!(
                "hearth_memory_documents_written_total",
                "Documents stored by upserts"
            );
            metrics::describe_counter!(
                "hearth_memory_documents_deleted_total",
                "Documents removed by deletes"
            );
            metrics::describe_counter!(
                "hearth_memory_embedding_tokens_total",
                "Tokens the embedding model read for documents and queries"
            );
            metrics::describe_counter!(
                "hearth_plugin_calls_total",
                "Plugin calls by plugin and outcome (ok, guest_error, or the reason the sandbox \
                 stopped it: cpu, memory, time, trap)"
            );
            metrics::describe_histogram!(
                "hearth_plugin_call_duration_seconds",
                metrics::Unit::Seconds,
                "Time a plugin call took, waiting for an instance included"
            );
            metrics::describe_gauge!(
                "hearth_plugin_memory_peak_bytes",
                metrics::Unit::Bytes,
                "The largest linear memory an instance of the plugin's serving version grew to"
            );
            metrics::describe_counter!(
                "hearth_job_runs_total",
                "Job runs by job and how they ended (succeeded, failed, skipped, interrupted)"
            );
            metrics::describe_histogram!(
                "hearth_job_run_duration_seconds",
                metrics::Unit::Seconds,
                "Time a job run took, every attempt and backoff included"
            );
            metrics::describe_histogram!(
                "hearth_job_start_lag_seconds",
                metrics::Unit::Seconds,
                "How late a scheduled job run started after its cron time"
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
    if let Some(memory) = &state.memory {
        metrics::gauge!("hearth_memory_indexes_loaded").set(memory.loaded_indexes() as f64);
    }
    let mut text = state.metrics.render();
    if let Some(inference) = &state.inference {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&render_model_metrics(&loaded_chat_models(inference)));
    }
    if let Some(routing) = &state.routing {
        text.push_str(&render_target_metrics(&routing.current().all_stats()));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Each loaded chat model's name and scheduler statistics, sorted by name.
fn loaded_chat_models(inference: &Inference) -> Vec<(String, SchedulerStats)> {
    let pool = inference.pool();
    let mut models: Vec<(String, SchedulerStats)> = pool
        .running()
        .into_iter()
        .filter_map(|running| match pool.loaded(&running.spec.name)? {
            LoadedModel::Chat(handle) => Some((running.spec.name, handle.stats())),
            LoadedModel::Embedding(_) => None,
        })
        .collect();
    models.sort_by(|left, right| left.0.cmp(&right.0));
    models
}

/// One per-model metric: its name, type, help text, and its samples for one model (an extra
/// label and the value; a gauge with no value yet has no sample).
struct ModelMetric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: fn(&SchedulerStats) -> Vec<Sample>,
}

/// One sample: an extra label beside `model` (if any) and the value.
type Sample = (Option<(&'static str, &'static str)>, f64);

fn one(value: f64) -> Vec<Sample> {
    vec![(None, value)]
}

const MODEL_METRICS: &[ModelMetric] = &[
    ModelMetric {
        name: "hearth_model_queue_depth",
        kind: "gauge",
        help: "Requests waiting for a slot",
        samples: |stats| one(stats.queue_depth as f64),
    },
    ModelMetric {
        name: "hearth_model_queue_capacity",
        kind: "gauge",
        help: "Requests that may wait for a slot before new ones get 429",
        samples: |stats| one(stats.queue_capacity as f64),
    },
    ModelMetric {
        name: "hearth_model_active_sequences",
        kind: "gauge",
        help: "Slots running a sequence now",
        samples: |stats| one(stats.active_sequences as f64),
    },
    ModelMetric {
        name: "hearth_model_slots",
        kind: "gauge",
        help: "Sequences the model decodes together (models.parallel_sequences)",
        samples: |stats| one(stats.slots as f64),
    },
    ModelMetric {
        name: "hearth_model_batch_occupancy_ratio",
        kind: "gauge",
        help: "Active sequences divided by slots",
        samples: |stats| one(stats.active_sequences as f64 / stats.slots.max(1) as f64),
    },
    ModelMetric {
        name: "hearth_model_requests_total",
        kind: "counter",
        help: "Generations that ended, by outcome (cancelled: the client went away)",
        samples: |stats| {
            vec![
                (
                    Some(("outcome", "completed")),
                    stats.requests_completed as f64,
                ),
                (
                    Some(("outcome", "cancelled")),
                    stats.requests_cancelled as f64,
                ),
                (Some(("outcome", "failed")), stats.requests_failed as f64),
            ]
        },
    },
    ModelMetric {
        name: "hearth_model_prompt_tokens_total",
        kind: "counter",
        help: "Prompt tokens decoded (tokens reused from the prefix cache are not)",
        samples: |stats| one(stats.total_prompt_tokens as f64),
    },
    ModelMetric {
        name: "hearth_model_generated_tokens_total",
        kind: "counter",
        help: "Tokens generated",
        samples: |stats| one(stats.total_generated_tokens as f64),
    },
    ModelMetric {
        name: "hearth_model_decoded_tokens_total",
        kind: "counter",
        help: "Tokens passed through llama.cpp decode, prompt and generated",
        samples: |stats| one(stats.total_tokens_decoded as f64),
    },
    ModelMetric {
        name: "hearth_model_decode_steps_total",
        kind: "counter",
        help: "Decode calls; decoded tokens divided by steps is the mean batch size",
        samples: |stats| one(stats.decode_steps as f64),
    },
    ModelMetric {
        name: "hearth_model_prefix_cache_hits_total",
        kind: "counter",
        help: "Requests that reused part of a slot's KV cache",
        samples: |stats| one(stats.prefix_cache_hits as f64),
    },
    ModelMetric {
        name: "hearth_model_prefix_cache_reused_tokens_total",
        kind: "counter",
        help: "Prompt tokens not decoded again thanks to prefix reuse",
        samples: |stats| one(stats.prefix_cache_reused_tokens as f64),
    },
    ModelMetric {
        name: "hearth_model_prefix_cache_window_misses_total",
        kind: "counter",
        help: "Requests whose shared prefix was read again because sliding-window layers had dropped the entries before it",
        samples: |stats| one(stats.prefix_cache_window_misses as f64),
    },
    ModelMetric {
        name: "hearth_model_draft_tokens_total",
        kind: "counter",
        help: "Tokens drafted by prompt lookup (speculative decoding), by outcome: accepted ones each saved a decode step, rejected ones were decoded for nothing",
        samples: |stats| {
            vec![
                (
                    Some(("outcome", "accepted")),
                    stats.draft_tokens_accepted as f64,
                ),
                (
                    Some(("outcome", "rejected")),
                    stats
                        .draft_tokens
                        .saturating_sub(stats.draft_tokens_accepted) as f64,
                ),
            ]
        },
    },
    ModelMetric {
        name: "hearth_model_decode_seconds_total",
        kind: "counter",
        help: "Time in llama.cpp's decode",
        samples: |stats| one(stats.decode_seconds),
    },
    ModelMetric {
        name: "hearth_model_step_seconds_total",
        kind: "counter",
        help: "Time in scheduler steps: decode plus batching and sampling (the difference is work outside llama.cpp)",
        samples: |stats| one(stats.step_seconds),
    },
    ModelMetric {
        name: "hearth_model_time_to_first_token_seconds",
        kind: "gauge",
        help: "Mean time to first token of the recent requests",
        samples: |stats| {
            stats
                .recent_time_to_first_token
                .map(|duration| (None, duration.as_secs_f64()))
                .into_iter()
                .collect()
        },
    },
    ModelMetric {
        name: "hearth_model_tokens_per_second",
        kind: "gauge",
        help: "Mean generation speed of the recent requests",
        samples: |stats| {
            stats
                .recent_tokens_per_second
                .map(|speed| (None, speed))
                .into_iter()
                .collect()
        },
    },
];

/// The per-model metrics in the Prometheus text format: for each metric its `HELP` and `TYPE`
/// lines, then one sample per model (the format wants a metric's samples together).
fn render_model_metrics(models: &[(String, SchedulerStats)]) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    if models.is_empty() {
        return text;
    }
    for metric in MODEL_METRICS {
        let _ = writeln!(text, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(text, "# TYPE {} {}", metric.name, metric.kind);
        for (model, stats) in models {
            for (label, value) in (metric.samples)(stats) {
                let extra = label
                    .map(|(key, value)| format!(",{key}=\"{value}\""))
                    .unwrap_or_default();
                let _ = writeln!(
                    text,
                    "{}{{model=\"{}\"{extra}}} {value}",
                    metric.name,
                    escape_label(model)
                );
            }
        }
    }
    text
}

/// The upstream targets' health and load, read at scrape time: only targets that were used
/// have statistics, so the series stay few.
fn render_target_metrics(
    targets: &[(String, std::sync::Arc<hearth_upstream::TargetStats>)],
) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    if targets.is_empty() {
        return text;
    }
    let now = std::time::Instant::now();
    type Read = fn(&hearth_upstream::TargetStats, std::time::Instant) -> Option<f64>;
    let families: [(&str, &str, &str, Read); 5] = [
        (
            "hearth_upstream_breaker_state",
            "gauge",
            "Circuit breaker of the target: 0 closed, 1 half-open, 2 open",
            |stats, now| {
                Some(match stats.breaker.state(now) {
                    hearth_upstream::BreakerState::Closed => 0.0,
                    hearth_upstream::BreakerState::HalfOpen => 1.0,
                    hearth_upstream::BreakerState::Open { .. } => 2.0,
                })
            },
        ),
        (
            "hearth_upstream_in_flight",
            "gauge",
            "Requests to the target whose answer is still streaming",
            |stats, _| Some(stats.in_flight() as f64),
        ),
        (
            "hearth_upstream_latency_seconds",
            "gauge",
            "Moving average of the time to the target's response headers",
            |stats, _| stats.latency().map(|latency| latency.as_secs_f64()),
        ),
        (
            "hearth_upstream_successes_total",
            "counter",
            "Attempts the target answered with success",
            |stats, _| Some(stats.successes() as f64),
        ),
        (
            "hearth_upstream_failures_total",
            "counter",
            "Attempts that failed (429, 5xx, timeouts, connection errors)",
            |stats, _| Some(stats.failures() as f64),
        ),
    ];
    for (name, kind, help, read) in families {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for (target, stats) in targets {
            if let Some(value) = read(stats, now) {
                let _ = writeln!(
                    text,
                    "{name}{{target=\"{}\"}} {value}",
                    escape_label(target)
                );
            }
        }
    }
    text
}

/// Escapes a label value as the text format requires. Model names cannot hold these
/// characters today; the format must not depend on that staying true.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

/// Records one plugin call: its outcome and how long it took.
pub(crate) fn record_plugin_call(
    plugin: &str,
    outcome: hearth_plugins::CallOutcome,
    duration: std::time::Duration,
    memory_peak_bytes: u64,
) {
    let outcome = match outcome {
        hearth_plugins::CallOutcome::Ok => "ok",
        hearth_plugins::CallOutcome::GuestError => "guest_error",
        hearth_plugins::CallOutcome::Stopped(reason) => reason.as_str(),
    };
    let plugin = plugin.to_owned();
    metrics::counter!("hearth_plugin_calls_total", "plugin" => plugin.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("hearth_plugin_call_duration_seconds", "plugin" => plugin.clone())
        .record(duration.as_secs_f64());
    metrics::gauge!("hearth_plugin_memory_peak_bytes", "plugin" => plugin)
        .set(memory_peak_bytes as f64);
}

/// Records one job run's end: how it ended, how long it took and, for scheduled runs, how
/// late it started.
pub(crate) fn record_job_run(run: &hearth_jobs::RunEnded) {
    let job = run.job.clone();
    metrics::counter!("hearth_job_runs_total", "job" => job.clone(), "status" => run.status)
        .increment(1);
    metrics::histogram!("hearth_job_run_duration_seconds", "job" => job)
        .record(run.duration.as_secs_f64());
    if let Some(lag) = run.lag {
        metrics::histogram!("hearth_job_start_lag_seconds").record(lag.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn model_metrics_render_each_family_once_with_a_sample_per_model() {
        let busy = SchedulerStats {
            queue_depth: 3,
            queue_capacity: 64,
            active_sequences: 2,
            slots: 4,
            total_tokens_decoded: 120,
            total_prompt_tokens: 80,
            total_generated_tokens: 40,
            decode_steps: 30,
            requests_completed: 5,
            requests_cancelled: 1,
            requests_failed: 0,
            prefix_cache_hits: 2,
            prefix_cache_reused_tokens: 17,
            prefix_cache_window_misses: 0,
            draft_tokens: 12,
            draft_tokens_accepted: 9,
            decode_seconds: 1.5,
            step_seconds: 1.75,
            recent_time_to_first_token: Some(Duration::from_millis(250)),
            recent_tokens_per_second: Some(42.5),
        };
        // Loaded but never used: no recent averages, so those gauges have no sample.
        let idle = SchedulerStats {
            queue_capacity: 64,
            slots: 1,
            ..SchedulerStats::default()
        };
        let text = render_model_metrics(&[
            ("gemma3:270m".to_string(), busy),
            ("acme/tiny:v2".to_string(), idle),
        ]);
        insta::assert_snapshot!(text);
        assert_eq!(render_model_metrics(&[]), "", "no models, no families");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), r"x\ny");
    }
}
