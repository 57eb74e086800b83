//! Running jobs: the scheduler (one task, asleep until the earliest next fire or a change),
//! starting runs as the overlap policy says, attempts with timeouts and backoff, recording
//! every step, and what a run's end sets off: the next queued run, dependent jobs, the system
//! event and the observer.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hearth_store::{JobAttemptRow, JobRunRow};
use serde_json::{Value, json};

use crate::actions::RunContext;
use crate::spec::{CatchUp, JobSpec, Overlap, Schedule};
use crate::{Inner, JobError, Key, MAX_CATCH_UP, MAX_QUEUED, RunEnded, RunReason, status};

/// The longest the scheduler sleeps without looking again (a clock change, a lost wake).
const MAX_SLEEP_MS: i64 = 60_000;
/// Run ends per history trim.
const TRIM_EVERY: u64 = 32;
/// How long before a fire the scheduler stops trusting the async timer.
const PRECISE_SLEEP: Duration = Duration::from_millis(3);
/// Missed times counted at most when catching up.
const MAX_MISSED_COUNTED: usize = 100_000;

pub(crate) fn spawn_scheduler(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let wake = inner.wake.clone();
    tokio::spawn(schedule_loop(weak, wake));
}

async fn schedule_loop(weak: Weak<Inner>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let now = hearth_time::now_ms();
        let mut due = Vec::new();
        let mut earliest: Option<i64> = None;
        {
            let mut jobs = inner.jobs.lock().await;
            for (key, job) in jobs.iter_mut() {
                let Some(next) = job.next_fire else {
                    continue;
                };
                if next <= now {
                    due.push((key.clone(), next));
                    // Times passed while this one was late are let go, not fired in a burst.
                    job.next_fire = job
                        .schedule
                        .as_ref()
                        .and_then(|schedule| schedule.next_after(now.max(next)));
                }
                if let Some(next) = job.next_fire {
                    earliest = Some(earliest.map_or(next, |earliest: i64| earliest.min(next)));
                }
            }
        }
        for (key, fire) in due {
            let start = Start {
                fire: Some(fire),
                ..Start::now(RunReason::Schedule, fire)
            };
            if let Err(error) = start_run(&inner, &key, start, None).await {
                tracing::warn!(job = %key.1, tenant = %key.0, %error, "a scheduled run could not start");
            }
        }
        drop(inner);
        // To the microsecond: whole milliseconds would wake up to one late, before the timer's
        // own rounding.
        let wait = earliest
            .map_or(Duration::from_millis(MAX_SLEEP_MS as u64), |next| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Duration::from_millis(u64::try_from(next).unwrap_or(0)).saturating_sub(now)
            })
            .min(Duration::from_millis(MAX_SLEEP_MS as u64));
        // The async timer wakes on whole milliseconds, rounded up (a fire would start a
        // millisecond or two late): the last stretch is slept on a blocking thread, to the
        // tens of microseconds.
        if wait <= PRECISE_SLEEP {
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(wait)).await;
            continue;
        }
        let notified = wake.notified();
        tokio::select! {
            _ = tokio::time::sleep(wait - PRECISE_SLEEP) => {}
            _ = notified => {}
        }
    }
}

/// Why and when a run is asked for.
pub(crate) struct Start {
    pub reason: RunReason,
    pub due_at_ms: i64,
    /// Queue it behind a running one whatever the overlap policy (catch-up replays).
    pub queue: bool,
    /// The scheduled time it was made for, recorded with it (catch-up counts from there).
    pub fire: Option<i64>,
}

impl Start {
    pub fn now(reason: RunReason, due_at_ms: i64) -> Start {
        Start {
            reason,
            due_at_ms,
            queue: false,
            fire: None,
        }
    }
}

/// Starts a run of a job, or queues or skips it as the job's overlap policy says. Answers the
/// run as recorded.
pub(crate) async fn start_run(
    inner: &Arc<Inner>,
    key: &Key,
    start: Start,
    input: Option<Value>,
) -> Result<JobRunRow, JobError> {
    let Start {
        reason,
        due_at_ms,
        queue,
        fire,
    } = start;
    let now = hearth_time::now_ms();
    let mut run = JobRunRow {
        id: format!("run_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: key.0.clone(),
        job: key.1.clone(),
        reason: reason.as_str().to_string(),
        due_at_ms,
        status: status::RUNNING.to_string(),
        input: input.map(|input| input.to_string()),
        output: None,
        error: None,
        attempts: 0,
        created_at_ms: now,
        started_at_ms: None,
        finished_at_ms: None,
    };
    // The map stays locked while the run is recorded, so a queued run is stored before the
    // run ahead of it can end and look for it.
    let mut jobs = inner.jobs.lock().await;
    let job = jobs
        .get_mut(key)
        .ok_or_else(|| JobError::NotFound(key.1.clone()))?;
    let spec = job.spec.clone();
    if !job.running {
        // Recorded with its first attempt in one write: the work starts right after.
        run.started_at_ms = Some(now);
        run.attempts = 1;
        let attempt = JobAttemptRow {
            run_id: run.id.clone(),
            attempt: 1,
            status: status::RUNNING.to_string(),
            output: None,
            error: None,
            started_at_ms: now,
            finished_at_ms: None,
        };
        inner
            .store
            .record_job_run(&run, Some(&attempt), fire)
            .await?;
        job.running = true;
        drop(jobs);
        spawn_execute(inner, key.clone(), spec, run.clone(), Some(attempt));
        return Ok(run);
    }
    if (queue || spec.overlap == Overlap::Queue) && job.queue.len() < MAX_QUEUED {
        run.status = status::QUEUED.to_string();
        inner.store.record_job_run(&run, None, fire).await?;
        job.queue.push_back(run.clone());
        return Ok(run);
    }
    run.status = status::SKIPPED.to_string();
    run.error = Some(if spec.overlap == Overlap::Queue || queue {
        format!("{MAX_QUEUED} runs were already waiting")
    } else {
        "the previous run was still running (overlap: skip)".to_string()
    });
    run.finished_at_ms = Some(now);
    inner.store.record_job_run(&run, None, fire).await?;
    drop(jobs);
    ended(inner, &run, reason, Duration::ZERO, None).await;
    Ok(run)
}

/// Starts the job's next queued run when nothing of it runs.
pub(crate) async fn start_next(inner: &Arc<Inner>, key: &Key) {
    let mut jobs = inner.jobs.lock().await;
    let Some(job) = jobs.get_mut(key) else {
        return;
    };
    if job.running {
        return;
    }
    let Some(mut run) = job.queue.pop_front() else {
        return;
    };
    job.running = true;
    let spec = job.spec.clone();
    drop(jobs);
    run.status = status::RUNNING.to_string();
    run.started_at_ms = Some(hearth_time::now_ms());
    if let Err(error) = inner.store.update_job_run(&run).await {
        tracing::warn!(job = %key.1, %error, "starting a queued run failed");
    }
    spawn_execute(inner, key.clone(), spec, run, None);
}

/// Runs a started run on its own task; `first` is its first attempt when that was recorded
/// with the run.
fn spawn_execute(
    inner: &Arc<Inner>,
    key: Key,
    spec: Arc<JobSpec>,
    run: JobRunRow,
    first: Option<JobAttemptRow>,
) {
    let inner = inner.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let lag = (run.reason == RunReason::Schedule.as_str()).then(|| {
            Duration::from_millis(
                u64::try_from(run.started_at_ms.unwrap_or(0) - run.due_at_ms).unwrap_or(0),
            )
        });
        let (run, outcome) = execute(&inner, &key, &spec, run, first).await;
        // Free before anyone hears of the end, so a run asked for right after it is not
        // taken for an overlap.
        if let Some(job) = inner.jobs.lock().await.get_mut(&key) {
            job.running = false;
        }
        // Children are told first: whoever hears of the end finds them started.
        if let Ok(output) = outcome {
            dependents(&inner, &key, output).await;
        }
        ended(&inner, &run, reason_of(&run.reason), started.elapsed(), lag).await;
        start_next(&inner, &key).await;
    });
}

/// Runs the attempts of one run and records each.
async fn execute(
    inner: &Arc<Inner>,
    key: &Key,
    spec: &JobSpec,
    mut run: JobRunRow,
    mut first: Option<JobAttemptRow>,
) -> (JobRunRow, Result<Value, String>) {
    let input: Option<Value> = run
        .input
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    let timeout = Duration::from_millis(spec.timeout_ms);
    let attempts = spec.retries + 1;
    let mut outcome: Result<Value, String> = Err("no attempt ran".to_string());
    for attempt in 1..=attempts {
        run.attempts = i64::from(attempt);
        let mut row = match first.take() {
            Some(recorded) => recorded,
            None => {
                record(inner, |store| store.update_job_run(&run)).await;
                let row = JobAttemptRow {
                    run_id: run.id.clone(),
                    attempt: i64::from(attempt),
                    status: status::RUNNING.to_string(),
                    output: None,
                    error: None,
                    started_at_ms: hearth_time::now_ms(),
                    finished_at_ms: None,
                };
                record(inner, |store| store.put_job_attempt(&row)).await;
                row
            }
        };
        let context = RunContext {
            tenant_id: &key.0,
            job: &key.1,
            run_id: &run.id,
            attempt,
            reason: &run.reason,
            input: input.as_ref(),
            timeout,
        };
        let (attempt_status, result) =
            match tokio::time::timeout(timeout, inner.doers.run(&spec.action, &context)).await {
                Ok(Ok(output)) => (status::SUCCEEDED, Ok(output)),
                Ok(Err(error)) => (status::FAILED, Err(error)),
                Err(_) => (
                    status::TIMED_OUT,
                    Err(format!(
                        "the attempt ran past the job's timeout_ms ({} ms)",
                        spec.timeout_ms
                    )),
                ),
            };
        row.status = attempt_status.to_string();
        row.finished_at_ms = Some(hearth_time::now_ms());
        match &result {
            Ok(output) => row.output = Some(output.to_string()),
            Err(error) => row.error = Some(error.clone()),
        }
        record(inner, |store| store.put_job_attempt(&row)).await;
        outcome = result;
        if outcome.is_ok() || attempt == attempts {
            break;
        }
        // 1×, 2×, 4×, ... the backoff, capped.
        let wait = spec
            .backoff_ms
            .saturating_mul(1u64 << (attempt - 1).min(20))
            .min(crate::spec::MAX_BACKOFF_MS);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    run.finished_at_ms = Some(hearth_time::now_ms());
    match &outcome {
        Ok(output) => {
            run.status = status::SUCCEEDED.to_string();
            run.output = Some(output.to_string());
        }
        Err(error) => {
            run.status = status::FAILED.to_string();
            run.error = Some(error.clone());
        }
    }
    record(inner, |store| store.update_job_run(&run)).await;
    (run, outcome)
}

fn reason_of(text: &str) -> RunReason {
    match text {
        "schedule" => RunReason::Schedule,
        "catch_up" => RunReason::CatchUp,
        "event" => RunReason::Event,
        "after" => RunReason::After,
        _ => RunReason::Manual,
    }
}

/// Writes to the store; a failure is logged (the run goes on: its outcome matters more than
/// one lost line of history).
async fn record<'a, F, Fut>(inner: &'a Inner, write: F)
where
    F: FnOnce(&'a hearth_store::Store) -> Fut,
    Fut: std::future::Future<Output = Result<(), hearth_store::StoreError>>,
{
    if let Err(error) = write(&inner.store).await {
        tracing::warn!(%error, "recording a job run failed");
    }
}

/// What every run's end does: trims the job's history, publishes the system event, tells the
/// observer and wakes callers waiting on it.
async fn ended(
    inner: &Arc<Inner>,
    run: &JobRunRow,
    reason: RunReason,
    duration: Duration,
    lag: Option<Duration>,
) {
    // A trim is a write of its own: one run end in TRIM_EVERY pays for it, so a job keeps
    // about `history_per_job` runs without a second write per run.
    if inner
        .runs_ended
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(TRIM_EVERY)
        && let Err(error) = inner
            .store
            .trim_job_runs(&run.tenant_id, &run.job, inner.options.history_per_job)
            .await
    {
        tracing::warn!(job = %run.job, %error, "trimming a job's history failed");
    }
    let final_status = match run.status.as_str() {
        status::SUCCEEDED => status::SUCCEEDED,
        status::SKIPPED => status::SKIPPED,
        status::INTERRUPTED => status::INTERRUPTED,
        _ => status::FAILED,
    };
    if let Some(events) = &inner.events {
        let mut data = json!({
            "job": run.job,
            "run_id": run.id,
            "reason": run.reason,
            "status": final_status,
            "attempts": run.attempts,
            "duration_ms": duration.as_millis() as u64,
        });
        if let Some(error) = &run.error {
            data["error"] = Value::String(error.clone());
        }
        let publish = hearth_events::Publish {
            topic: format!("hearth.job.{final_status}"),
            data,
            idempotency_key: None,
        };
        if let Err(error) = events.publish(&run.tenant_id, vec![publish], "").await {
            tracing::warn!(job = %run.job, %error, "a job's system event could not be published");
        }
    }
    if let Some(observer) = &inner.observer {
        observer(&RunEnded {
            tenant_id: run.tenant_id.clone(),
            job: run.job.clone(),
            status: final_status,
            reason,
            attempts: u32::try_from(run.attempts).unwrap_or(0),
            duration,
            lag,
        });
    }
    let _ = inner.ended.send(run.id.clone());
}

/// A job succeeded: each job that runs after it notes it, and runs once all its parents have
/// succeeded since it last ran, with their outputs as its input.
async fn dependents(inner: &Arc<Inner>, key: &Key, output: Value) {
    let mut ready = Vec::new();
    {
        let mut jobs = inner.jobs.lock().await;
        for ((tenant, name), job) in jobs.iter_mut() {
            if tenant != &key.0 || !job.spec.after.iter().any(|parent| parent == &key.1) {
                continue;
            }
            job.parents_done.insert(key.1.clone(), output.clone());
            if !job.spec.enabled {
                continue;
            }
            if job
                .spec
                .after
                .iter()
                .all(|parent| job.parents_done.contains_key(parent))
            {
                let parents: serde_json::Map<String, Value> =
                    std::mem::take(&mut job.parents_done).into_iter().collect();
                ready.push(((tenant.clone(), name.clone()), json!({ "after": parents })));
            }
        }
    }
    for (child, input) in ready {
        let now = hearth_time::now_ms();
        let start = Start::now(RunReason::After, now);
        if let Err(error) = start_run(inner, &child, start, Some(input)).await {
            tracing::warn!(job = %child.1, %error, "a dependent job could not start");
        }
    }
}

/// A run the server stopped in the middle of: recorded as interrupted, with its open attempt.
pub(crate) async fn interrupt(
    inner: &Arc<Inner>,
    run: &mut JobRunRow,
    now: i64,
) -> Result<(), JobError> {
    for mut attempt in inner.store.job_attempts(&run.id).await? {
        if attempt.status == status::RUNNING {
            attempt.status = status::INTERRUPTED.to_string();
            attempt.error = Some("the server stopped during the attempt".to_string());
            attempt.finished_at_ms = Some(now);
            inner.store.put_job_attempt(&attempt).await?;
        }
    }
    run.status = status::INTERRUPTED.to_string();
    run.error = Some("the server stopped during the run".to_string());
    run.finished_at_ms = Some(now);
    inner.store.update_job_run(run).await?;
    let duration =
        Duration::from_millis(u64::try_from(now - run.started_at_ms.unwrap_or(now)).unwrap_or(0));
    ended(inner, run, reason_of(&run.reason), duration, None).await;
    Ok(())
}

/// Replays the times a scheduled job missed while the server was down, as its catch-up
/// policy says: none, one run for all, or one per time (the newest [`MAX_CATCH_UP`]).
pub(crate) async fn catch_up(
    inner: &Arc<Inner>,
    key: &Key,
    spec: &JobSpec,
    schedule: &Schedule,
    last_fire: i64,
    now: i64,
) -> Result<(), JobError> {
    let mut missed = Vec::new();
    let mut cursor = last_fire;
    while let Some(next) = schedule.next_after(cursor) {
        if next > now || missed.len() >= MAX_MISSED_COUNTED {
            break;
        }
        missed.push(next);
        cursor = next;
    }
    let (Some(&first), Some(&last)) = (missed.first(), missed.last()) else {
        return Ok(());
    };
    let count = missed.len();
    match spec.catch_up {
        CatchUp::Skip => {
            tracing::info!(job = %key.1, tenant = %key.0, missed = count, "a job missed its times while the server was down; catch_up is skip");
        }
        CatchUp::Once => {
            let input = json!({"missed": count, "first_ms": first, "last_ms": last});
            start_run(
                inner,
                key,
                Start::now(RunReason::CatchUp, last),
                Some(input),
            )
            .await?;
        }
        CatchUp::All => {
            let from = count.saturating_sub(MAX_CATCH_UP);
            for &time in &missed[from..] {
                let start = Start {
                    queue: true,
                    ..Start::now(RunReason::CatchUp, time)
                };
                start_run(inner, key, start, None).await?;
            }
        }
    }
    inner.store.set_job_last_fire(&key.0, &key.1, last).await?;
    Ok(())
}
