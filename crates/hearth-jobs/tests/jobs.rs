//! The jobs service against real parts: a SQLite store and an events log in a temporary
//! directory, the sample calculator plugin built from source, and a real HTTP receiver for
//! webhooks. Built-in work registered here stands in for work that fails, succeeds late or
//! takes long, so each policy can be seen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hearth_events::{Events, EventsOptions};
use hearth_jobs::{Builtins, JobError, JobSpec, Jobs, JobsOptions, RunInfo, Source, status};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::{Value, json};

const TENANT: &str = "acme";

struct Setup {
    dir: tempfile::TempDir,
    store: Store,
    events: Arc<Events>,
    /// Calls of `flaky` so far; it fails while this is below `flaky_failures`.
    flaky_calls: Arc<AtomicU32>,
    flaky_failures: Arc<AtomicU32>,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let options = OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        };
        let store = Store::open(dir.path(), options).await.unwrap();
        let events = Arc::new(
            Events::open(dir.path(), EventsOptions::default())
                .await
                .unwrap(),
        );
        Setup {
            dir,
            store,
            events,
            flaky_calls: Arc::new(AtomicU32::new(0)),
            flaky_failures: Arc::new(AtomicU32::new(0)),
        }
    }

    fn builtins(&self) -> Builtins {
        let mut builtins = Builtins::new();
        builtins.add("fail", || {
            Box::pin(async { Err("this work always fails".to_string()) })
        });
        builtins.add("slow", || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(json!({"slept_ms": 300}))
            })
        });
        builtins.add("stuck", || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok(json!({}))
            })
        });
        let (calls, failures) = (self.flaky_calls.clone(), self.flaky_failures.clone());
        builtins.add("flaky", move || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            let fail = call < failures.load(Ordering::SeqCst);
            Box::pin(async move {
                if fail {
                    Err(format!("call {call} fails"))
                } else {
                    Ok(json!({"call": call}))
                }
            })
        });
        builtins
    }

    async fn open(&self, plugins: Option<hearth_plugins::Plugins>) -> Jobs {
        Jobs::open(
            JobsOptions {
                allow_internal_targets: true,
                ..JobsOptions::default()
            },
            self.store.clone(),
            Some(self.events.clone()),
            plugins,
            self.builtins(),
            None,
        )
        .await
        .unwrap()
    }
}

fn spec(value: Value) -> JobSpec {
    serde_json::from_value(value).unwrap()
}

fn builtin(name: &str, work: &str) -> JobSpec {
    spec(json!({"name": name, "action": {"type": "builtin", "name": work}}))
}

async fn define(jobs: &Jobs, job: JobSpec) {
    jobs.define(TENANT, job, Source::Api, true).await.unwrap();
}

async fn run_and_wait(jobs: &Jobs, name: &str) -> RunInfo {
    let run = jobs.run_now(TENANT, name, None).await.unwrap();
    jobs.wait(TENANT, &run.id, Duration::from_secs(20))
        .await
        .unwrap()
}

async fn runs(jobs: &Jobs, name: &str) -> Vec<RunInfo> {
    jobs.runs(TENANT, name, 1000, None).await.unwrap()
}

/// Waits until `name` has `count` finished runs, or fails after `within`.
async fn finished_runs(jobs: &Jobs, name: &str, count: usize, within: Duration) -> Vec<RunInfo> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found: Vec<RunInfo> = runs(jobs, name)
            .await
            .into_iter()
            .filter(|run| status::is_final(&run.status))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} has {} finished runs, waiting for {count}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_cron_schedule_with_seconds_fires_on_its_times_and_publishes_each_run() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    let mut ended = setup.events.subscribe(TENANT, &["hearth.job.>"]).unwrap();
    define(
        &jobs,
        spec(json!({
            "name": "tick",
            "schedule": "* * * * * *",
            "timezone": "Europe/Paris",
            "action": {"type": "builtin", "name": "noop"},
        })),
    )
    .await;
    let info = jobs.get(TENANT, "tick").await.unwrap();
    let next = info.next_run_ms.expect("a scheduled job has a next run");
    assert_eq!(
        next % 1000,
        0,
        "an every-second schedule fires on whole seconds"
    );

    let fired = finished_runs(&jobs, "tick", 2, Duration::from_secs(5)).await;
    for run in &fired {
        assert_eq!(run.reason, "schedule");
        assert_eq!(run.status, status::SUCCEEDED);
        assert_eq!(run.due_at_ms % 1000, 0);
        assert!(
            run.started_at_ms.unwrap() >= run.due_at_ms,
            "never before its time"
        );
    }
    // The time it fired for is kept with the job: what catch-up counts from after a restart.
    let rows = setup.store.jobs().await.unwrap();
    let last_fire = rows[0].last_fire_ms.expect("a fire time recorded");
    assert!(
        fired.iter().any(|run| run.due_at_ms <= last_fire),
        "{last_fire}"
    );
    let event = tokio::time::timeout(Duration::from_secs(5), ended.next())
        .await
        .expect("a run's event")
        .unwrap();
    assert_eq!(event.topic, "hearth.job.succeeded");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["job"], "tick");
    assert_eq!(data["reason"], "schedule");

    // Disabled, it stops firing.
    let mut off = info.spec.clone();
    off.enabled = false;
    define(&jobs, off).await;
    assert_eq!(jobs.get(TENANT, "tick").await.unwrap().next_run_ms, None);
}

#[tokio::test]
async fn a_dependency_never_runs_before_its_parents_succeed() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    define(&jobs, builtin("extract", "noop")).await;
    define(&jobs, builtin("load", "fail")).await;
    define(
        &jobs,
        spec(json!({
            "name": "report",
            "after": ["extract", "load"],
            "action": {"type": "builtin", "name": "noop"},
        })),
    )
    .await;

    // One parent succeeded, the other failed: the child waits.
    assert_eq!(
        run_and_wait(&jobs, "extract").await.status,
        status::SUCCEEDED
    );
    assert_eq!(run_and_wait(&jobs, "load").await.status, status::FAILED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        runs(&jobs, "report").await.is_empty(),
        "report ran before load succeeded"
    );

    // Both succeeded (since it last ran): it runs once, after both, with their outputs.
    define(&jobs, builtin("load", "noop")).await;
    let load = run_and_wait(&jobs, "load").await;
    let report = finished_runs(&jobs, "report", 1, Duration::from_secs(5)).await;
    let report = &report[0];
    assert_eq!(report.reason, "after");
    assert_eq!(report.status, status::SUCCEEDED);
    assert!(report.started_at_ms.unwrap() >= load.finished_at_ms.unwrap());
    let input = report.input.as_ref().unwrap();
    assert!(input["after"]["extract"].is_object() && input["after"]["load"].is_object());

    // One parent again is not enough for a second run.
    run_and_wait(&jobs, "load").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs(&jobs, "report").await.len(), 1);
    run_and_wait(&jobs, "extract").await;
    finished_runs(&jobs, "report", 2, Duration::from_secs(5)).await;

    // A parent others run after cannot be removed.
    let error = jobs.remove(TENANT, "load", Source::Api).await.unwrap_err();
    assert!(matches!(error, JobError::Conflict(_)), "{error}");
}

#[tokio::test]
async fn cycles_and_unknown_parents_are_refused_when_defined() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    define(&jobs, builtin("a", "noop")).await;
    define(
        &jobs,
        spec(json!({"name": "b", "after": ["a"], "action": {"type": "builtin", "name": "noop"}})),
    )
    .await;
    let cycle =
        spec(json!({"name": "a", "after": ["b"], "action": {"type": "builtin", "name": "noop"}}));
    let error = jobs
        .define(TENANT, cycle, Source::Api, true)
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("after"), "{error}");
    assert!(
        error.to_string().contains("a → b → a") || error.to_string().contains("b → a → b"),
        "{error}"
    );
    assert!(
        jobs.get(TENANT, "a").await.unwrap().spec.after.is_empty(),
        "a refused change is not kept"
    );

    let orphan = spec(
        json!({"name": "c", "after": ["missing"], "action": {"type": "builtin", "name": "noop"}}),
    );
    let error = jobs
        .define(TENANT, orphan, Source::Api, true)
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("after[0]"), "{error}");
    // Another tenant's job of that name is not a parent.
    define(&jobs, builtin("missing", "noop")).await;
    let other = spec(
        json!({"name": "c", "after": ["missing"], "action": {"type": "builtin", "name": "noop"}}),
    );
    assert!(
        jobs.define("globex", other, Source::Api, true)
            .await
            .is_err()
    );

    // The same definition again (configuration's, at every start) changes nothing.
    let before = jobs.get(TENANT, "b").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = jobs
        .define(TENANT, before.spec.clone(), Source::Api, true)
        .await
        .unwrap();
    assert_eq!(again.updated_at_ms, before.updated_at_ms);

    let unknown = builtin("d", "make-coffee");
    let error = jobs
        .define(TENANT, unknown, Source::Api, true)
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("action.name"), "{error}");
    let error = jobs
        .define(TENANT, builtin("a", "noop"), Source::Api, false)
        .await
        .unwrap_err();
    assert!(matches!(error, JobError::Conflict(_)), "{error}");
}

#[tokio::test]
async fn retries_back_off_and_every_attempt_is_recorded() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    setup.flaky_failures.store(2, Ordering::SeqCst);
    define(
        &jobs,
        spec(json!({
            "name": "flaky",
            "retries": 3,
            "backoff_ms": 20,
            "action": {"type": "builtin", "name": "flaky"},
        })),
    )
    .await;
    let run = run_and_wait(&jobs, "flaky").await;
    assert_eq!(run.status, status::SUCCEEDED);
    assert_eq!(run.attempts, 3);
    let statuses: Vec<&str> = run.attempt_list.iter().map(|a| a.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "failed", "succeeded"]);
    assert_eq!(run.attempt_list[0].error.as_deref(), Some("call 0 fails"));
    // The second retry waited twice the first one's backoff.
    let gap = |a: usize| {
        run.attempt_list[a + 1].started_at_ms - run.attempt_list[a].finished_at_ms.unwrap()
    };
    assert!(gap(0) >= 20 && gap(1) >= 40, "{} {}", gap(0), gap(1));

    // Out of retries: failed, with the last error.
    define(
        &jobs,
        spec(json!({"name": "broken", "retries": 1, "backoff_ms": 0, "action": {"type": "builtin", "name": "fail"}})),
    )
    .await;
    let run = run_and_wait(&jobs, "broken").await;
    assert_eq!((run.status.as_str(), run.attempts), (status::FAILED, 2));
    assert_eq!(run.error.as_deref(), Some("this work always fails"));

    // Past its timeout an attempt is stopped.
    define(
        &jobs,
        spec(json!({"name": "slowpoke", "timeout_ms": 50, "action": {"type": "builtin", "name": "slow"}})),
    )
    .await;
    let run = run_and_wait(&jobs, "slowpoke").await;
    assert_eq!(run.status, status::FAILED);
    assert_eq!(run.attempt_list[0].status, status::TIMED_OUT);
}

#[tokio::test]
async fn overlapping_runs_are_skipped_or_queued_as_the_job_says() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    define(&jobs, builtin("skipper", "slow")).await;
    let first = jobs.run_now(TENANT, "skipper", None).await.unwrap();
    let second = jobs.run_now(TENANT, "skipper", None).await.unwrap();
    assert_eq!(first.status, status::RUNNING);
    assert_eq!(second.status, status::SKIPPED);
    assert!(second.error.unwrap().contains("still running"));

    define(
        &jobs,
        spec(json!({"name": "queuer", "overlap": "queue", "action": {"type": "builtin", "name": "slow"}})),
    )
    .await;
    let first = jobs.run_now(TENANT, "queuer", None).await.unwrap();
    let second = jobs.run_now(TENANT, "queuer", None).await.unwrap();
    assert_eq!(second.status, status::QUEUED);
    let second = jobs
        .wait(TENANT, &second.id, Duration::from_secs(10))
        .await
        .unwrap();
    let first = jobs.run(TENANT, &first.id).await.unwrap();
    assert_eq!(second.status, status::SUCCEEDED);
    assert!(
        second.started_at_ms.unwrap() >= first.finished_at_ms.unwrap(),
        "queued runs wait their turn"
    );
}

#[tokio::test]
async fn history_survives_a_restart_and_a_run_cut_short_is_marked_interrupted() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    define(&jobs, builtin("daily", "noop")).await;
    define(&jobs, builtin("forever", "stuck")).await;
    let done = run_and_wait(&jobs, "daily").await;
    let cut = jobs.run_now(TENANT, "forever", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A second service on the same files is what the next start finds.
    let restarted = setup.open(None).await;
    let history = runs(&restarted, "daily").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, done.id);
    assert_eq!(history[0].status, status::SUCCEEDED);
    let cut = restarted.run(TENANT, &cut.id).await.unwrap();
    assert_eq!(cut.status, status::INTERRUPTED);
    assert_eq!(cut.attempt_list[0].status, status::INTERRUPTED);
    assert_eq!(restarted.list(TENANT).await.len(), 2);
    drop(setup.dir);
}

#[tokio::test]
async fn times_missed_while_down_are_caught_up_once_or_each() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    for (name, policy) in [("once", "once"), ("each", "all"), ("never", "skip")] {
        define(
            &jobs,
            spec(json!({
                "name": name,
                "schedule": "0 0 1 1 *",
                "catch_up": policy,
                "overlap": "skip",
                "action": {"type": "builtin", "name": "noop"},
            })),
        )
        .await;
    }
    // As if each last fired five years ago: four or five New Years were missed.
    let now = hearth_time::now_ms();
    let five_years_ago = now - 5 * 365 * 86_400_000;
    for name in ["once", "each", "never"] {
        setup
            .store
            .set_job_last_fire(TENANT, name, five_years_ago)
            .await
            .unwrap();
    }
    let restarted = setup.open(None).await;
    let once = finished_runs(&restarted, "once", 1, Duration::from_secs(5)).await;
    assert_eq!(once.len(), 1);
    assert_eq!(once[0].reason, "catch_up");
    let missed = once[0].input.as_ref().unwrap()["missed"].as_u64().unwrap();
    assert!((4..=5).contains(&missed), "{missed}");
    let each = finished_runs(&restarted, "each", missed as usize, Duration::from_secs(5)).await;
    assert!(
        each.iter()
            .all(|run| run.reason == "catch_up" && run.status == status::SUCCEEDED)
    );
    assert!(runs(&restarted, "never").await.is_empty());
    drop(jobs);
}

#[tokio::test]
async fn an_event_on_the_trigger_starts_a_run_with_the_event_and_own_events_do_not_loop() {
    let setup = Setup::new().await;
    let jobs = setup.open(None).await;
    define(
        &jobs,
        spec(json!({"name": "on-order", "trigger": "orders.*", "action": {"type": "builtin", "name": "noop"}})),
    )
    .await;
    define(
        &jobs,
        spec(json!({"name": "watcher", "trigger": "hearth.job.>", "action": {"type": "builtin", "name": "noop"}})),
    )
    .await;
    let publish = hearth_events::Publish {
        topic: "orders.created".into(),
        data: json!({"order": 7}),
        idempotency_key: None,
    };
    setup
        .events
        .publish(TENANT, vec![publish.clone()], "")
        .await
        .unwrap();
    // Another tenant's orders are not this job's.
    setup
        .events
        .publish("globex", vec![publish], "")
        .await
        .unwrap();
    let run = &finished_runs(&jobs, "on-order", 1, Duration::from_secs(10)).await[0];
    assert_eq!(run.reason, "event");
    let event = &run.input.as_ref().unwrap()["event"];
    assert_eq!(event["topic"], "orders.created");
    assert_eq!(event["data"]["order"], 7);

    // The watcher saw on-order's run event, and its own run's event did not start it again.
    finished_runs(&jobs, "watcher", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs(&jobs, "watcher").await.len(), 1);
    assert_eq!(runs(&jobs, "on-order").await.len(), 1);
}

/// A webhook receiver on loopback: answers 503 to the first request and 200 after, and keeps
/// what it received.
async fn receiver() -> (
    String,
    Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Arc<std::sync::Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let mut seen = kept.lock().unwrap();
                seen.push((headers, body));
                if seen.len() == 1 {
                    (StatusCode::SERVICE_UNAVAILABLE, "try again".to_string())
                } else {
                    (StatusCode::OK, r#"{"thanks": true}"#.to_string())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), seen)
}

#[tokio::test]
async fn a_webhook_action_posts_signed_and_is_retried_and_a_plugin_action_calls_its_tool() {
    let setup = Setup::new().await;
    let plugins = hearth_plugins::Plugins::open(
        hearth_plugins::PluginsOptions {
            dir: setup.dir.path().join("plugins"),
            max_instances: 20,
            trusted_keys: hearth_plugins::TrustedKeys::default(),
            allow_unsigned: true,
            allow_internal_hosts: false,
            memory: None,
        },
        setup.store.clone(),
        Some(setup.events.clone()),
        None,
    )
    .await
    .unwrap();
    let calculator = hearth_plugins::samples::sample("calculator");
    plugins
        .install(&calculator.manifest, &calculator.component, None)
        .await
        .unwrap();
    let jobs = setup.open(Some(plugins)).await;

    define(
        &jobs,
        spec(json!({
            "name": "convert",
            "action": {"type": "plugin", "plugin": "calculator", "tool": "convert",
                       "arguments": {"value": 2, "from": "km", "to": "m"}},
        })),
    )
    .await;
    let run = run_and_wait(&jobs, "convert").await;
    assert_eq!(run.status, status::SUCCEEDED, "{:?}", run.error);
    assert!(run.output.unwrap().to_string().contains("2000"));

    let (url, seen) = receiver().await;
    let secret = hearth_webhooks::sign::new_secret();
    define(
        &jobs,
        spec(json!({
            "name": "notify",
            "retries": 2,
            "backoff_ms": 10,
            "action": {"type": "webhook", "url": url, "secret": secret},
        })),
    )
    .await;
    let run = jobs
        .run_now(TENANT, "notify", Some(json!({"hello": "world"})))
        .await
        .unwrap();
    let run = jobs
        .wait(TENANT, &run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, status::SUCCEEDED, "{:?}", run.error);
    assert_eq!(run.attempts, 2);
    assert!(
        run.attempt_list[0]
            .error
            .as_deref()
            .unwrap()
            .contains("503")
    );
    assert_eq!(run.output.unwrap()["body"]["thanks"], true);
    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[1];
    let header = |name: &str| headers[name].to_str().unwrap().to_string();
    assert_eq!(
        header("webhook-id"),
        seen[0].0["webhook-id"].to_str().unwrap(),
        "one id per run"
    );
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    let expected = hearth_webhooks::sign::signature(
        &secret,
        &header("webhook-id"),
        timestamp,
        body.as_bytes(),
    );
    assert_eq!(Some(header("webhook-signature")), expected);
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["data"]["job"], "notify");
    assert_eq!(body["data"]["attempt"], 2);
    assert_eq!(body["data"]["input"]["hello"], "world");
}
