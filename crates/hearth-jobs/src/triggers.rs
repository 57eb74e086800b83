//! Jobs started by events: each triggered job has a system consumer in its tenant
//! (`_job_<name>`, events from its definition on, on its `trigger` pattern) and a worker that
//! starts a run per event, with the event as the run's input, and acknowledges the event once
//! the run is recorded (the run's own retries take it from there). An event not recorded is
//! delivered again; a restart resumes where the consumer stood. A job's own run events never
//! trigger it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hearth_events::{ConsumerConfig, DeliverPolicy, Delivery, Events};
use serde_json::{Value, json};

use crate::spec::JobSpec;
use crate::{Inner, JobError, Key, RunReason};

const FETCH_BATCH: usize = 16;
const FETCH_WAIT: Duration = Duration::from_secs(5);

fn consumer_name(job: &str) -> String {
    format!("_job_{job}")
}

/// Makes a job's trigger what its definition says (at load, and whenever it is defined,
/// enabled or disabled): the consumer follows the pattern (a changed one from now on) and the
/// worker runs while the job is enabled.
pub(crate) async fn sync(inner: &Arc<Inner>, key: &Key, spec: &JobSpec) -> Result<(), JobError> {
    let Some(events) = &inner.events else {
        return Ok(());
    };
    match &spec.trigger {
        None => drop_consumer(inner, key).await,
        Some(pattern) => {
            let existing = events
                .consumer_config(&key.0, &consumer_name(&key.1))
                .await
                .ok();
            if existing.is_none_or(|config| config.filter != vec![pattern.clone()]) {
                drop_consumer(inner, key).await;
                make_consumer(events, key, pattern).await?;
            }
            if spec.enabled {
                spawn_worker(inner, events.clone(), key).await;
            }
        }
    }
    Ok(())
}

async fn make_consumer(events: &Events, key: &Key, pattern: &str) -> Result<(), JobError> {
    let mut config = ConsumerConfig::new(&consumer_name(&key.1), &[pattern]);
    config.deliver = DeliverPolicy::New;
    config.ack_wait = Duration::from_secs(30);
    config.max_ack_pending = 256;
    events
        .create_system_consumer(&key.0, config)
        .await
        .map_err(|error| JobError::Runtime(format!("making the trigger's consumer: {error}")))?;
    Ok(())
}

pub(crate) async fn drop_consumer(inner: &Arc<Inner>, key: &Key) {
    let Some(events) = &inner.events else {
        return;
    };
    if let Err(error) = events.delete_consumer(&key.0, &consumer_name(&key.1)).await {
        tracing::warn!(job = %key.1, tenant = %key.0, %error, "a job's trigger consumer could not be deleted");
    }
}

async fn spawn_worker(inner: &Arc<Inner>, events: Arc<Events>, key: &Key) {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let mut jobs = inner.jobs.lock().await;
        let Some(job) = jobs.get_mut(key) else {
            return;
        };
        if let Some(old) = job.trigger_stop.replace(stop.clone()) {
            old.store(true, Ordering::Relaxed);
        }
    }
    let weak = Arc::downgrade(inner);
    let key = key.clone();
    tokio::spawn(async move {
        let consumer = consumer_name(&key.1);
        loop {
            // Stopped, or the service is gone.
            if stop.load(Ordering::Relaxed) || weak.strong_count() == 0 {
                return;
            }
            let deliveries = match events
                .fetch(&key.0, &consumer, FETCH_BATCH, FETCH_WAIT)
                .await
            {
                Ok(deliveries) => deliveries,
                Err(error) => {
                    tracing::warn!(job = %key.1, tenant = %key.0, %error, "fetching a job's trigger events failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for delivery in deliveries {
                // Stopped between fetch and start: handed back at once for the next worker.
                let Some(inner) = weak.upgrade().filter(|_| !stop.load(Ordering::Relaxed)) else {
                    let _ = events
                        .nak(
                            &key.0,
                            &consumer,
                            std::slice::from_ref(&delivery.delivery_id),
                            Some(Duration::ZERO),
                        )
                        .await;
                    continue;
                };
                let settled = if is_own_event(&key.1, &delivery) {
                    Ok(())
                } else {
                    let input = event_input(&delivery);
                    let start = crate::runner::Start::now(RunReason::Event, delivery.event.time_ms);
                    crate::runner::start_run(&inner, &key, start, Some(input))
                        .await
                        .map(|_| ())
                };
                let ids = [delivery.delivery_id.clone()];
                let result = match settled {
                    Ok(()) => events.ack(&key.0, &consumer, &ids).await,
                    Err(error) => {
                        tracing::warn!(job = %key.1, %error, "a triggered run could not be recorded; the event comes again");
                        events
                            .nak(&key.0, &consumer, &ids, Some(Duration::from_secs(1)))
                            .await
                    }
                };
                if let Err(error) = result {
                    tracing::warn!(job = %key.1, %error, "settling a trigger event failed");
                }
            }
        }
    });
}

/// A job's own run events (`hearth.job.*` naming it) would start it again forever.
fn is_own_event(job: &str, delivery: &Delivery) -> bool {
    delivery.event.topic.starts_with("hearth.job.")
        && serde_json::from_str::<Value>(&delivery.event.data)
            .ok()
            .and_then(|data| {
                data.get("job")
                    .and_then(Value::as_str)
                    .map(|name| name == job)
            })
            .unwrap_or(false)
}

fn event_input(delivery: &Delivery) -> Value {
    let event = &delivery.event;
    json!({
        "event": {
            "id": event.id,
            "topic": event.topic,
            "sequence": event.sequence,
            "time_ms": event.time_ms,
            "data": serde_json::from_str::<Value>(&event.data).unwrap_or(Value::Null),
        }
    })
}
