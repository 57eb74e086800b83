//! Hearth's own events under `hearth.>` (`hearth.collection.created`, `hearth.key.revoked`,
//! `hearth.completion.finished`, ...), published into the tenant the change concerns, so that
//! its apps and plugins can react; model changes, which concern the whole instance, go to the
//! instance's own scope. They carry names, ids and counts, never secrets or content (a
//! completion's event has its usage, not its prompt). Publishing is best effort: the change has
//! happened and stays, whether or not its event could be stored (a failure is logged).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hearth_events::Events;
use serde_json::{Value, json};

use crate::state::AppState;

/// Publishes `data` to `topic` in `scope` (a tenant id, or the instance's own scope).
pub async fn emit(state: &AppState, scope: &str, topic: &str, data: Value) {
    publish(state.events.clone(), scope, topic, data).await;
}

async fn publish(events: Option<Arc<Events>>, scope: &str, topic: &str, data: Value) {
    let Some(events) = events else {
        return;
    };
    let publish = hearth_events::Publish {
        topic: topic.to_string(),
        data,
        idempotency_key: None,
    };
    if let Err(error) = events.publish(scope, vec![publish], "").await {
        tracing::warn!(%topic, %error, "a system event could not be published");
    }
}

/// [`emit`] from code that cannot wait (a drop, an observer): on its own task.
pub fn spawn_emit(events: Option<Arc<Events>>, scope: String, topic: &'static str, data: Value) {
    if events.is_none() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { publish(events, &scope, topic, data).await });
    }
}

/// Publishes the model pool's loads, unloads and failures as `hearth.model.loaded`,
/// `hearth.model.unloaded` and `hearth.model.failed` in the instance's scope.
pub fn model_observer(events: Arc<Events>) -> hearth_inference::ModelObserver {
    Arc::new(move |change| {
        let (topic, data) = match change {
            hearth_inference::ModelChange::Loaded {
                name,
                kind,
                load_ms,
            } => (
                "hearth.model.loaded",
                json!({"model": name, "kind": hearth_inference::kind_name(kind),
                       "load_ms": load_ms}),
            ),
            hearth_inference::ModelChange::Unloaded { name, reason } => (
                "hearth.model.unloaded",
                json!({"model": name, "reason": reason}),
            ),
            hearth_inference::ModelChange::Failed { name, reason } => (
                "hearth.model.failed",
                json!({"model": name, "reason": reason}),
            ),
        };
        spawn_emit(
            Some(events.clone()),
            crate::gate::scope_of(None).to_string(),
            topic,
            data,
        );
    })
}

/// Whether a request on `route` is a completion, whose end is `hearth.completion.finished`.
pub fn is_completion(route: &str) -> bool {
    matches!(
        route,
        "/v1/chat/completions" | "/v1/completions" | "/api/chat" | "/api/generate"
    )
}

/// How often one holder's exceeded quota or budget is published at most.
const LIMIT_EVENT_EVERY: Duration = Duration::from_secs(60);

/// Whether an exceeded-limit event for `holder` may be published now: at most one a minute
/// each, so a client hammering a spent quota does not flood the log.
pub fn limit_event_due(holder: String) -> bool {
    static LAST: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let mut last = LAST
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    if last.len() > 10_000 {
        last.retain(|_, at| now.duration_since(*at) < LIMIT_EVENT_EVERY);
    }
    match last.get(&holder) {
        Some(at) if now.duration_since(*at) < LIMIT_EVENT_EVERY => false,
        _ => {
            last.insert(holder, now);
            true
        }
    }
}

/// Reports plugin calls as metrics, and as events what an operator or app reacts to: a call
/// the sandbox stopped (`hearth.plugin.stopped`, into the tenant whose call it was) and a
/// plugin its breaker disabled (`hearth.plugin.disabled`, into the instance's scope).
pub fn plugin_observer(events: Option<Arc<Events>>) -> hearth_plugins::PluginObserver {
    use hearth_plugins::{CallOutcome, PluginEvent};
    Arc::new(move |event| match event {
        PluginEvent::Called {
            plugin,
            tenant_id,
            outcome,
            duration,
            memory_peak_bytes,
        } => {
            crate::metrics::record_plugin_call(&plugin, outcome, duration, memory_peak_bytes);
            // Calls with no tenant are the service's own (listing tools at install).
            if let (CallOutcome::Stopped(reason), false) = (outcome, tenant_id.is_empty()) {
                let data = json!({"plugin": plugin, "reason": reason.as_str(),
                                  "duration_ms": duration.as_secs_f64() * 1000.0});
                spawn_emit(events.clone(), tenant_id, "hearth.plugin.stopped", data);
            }
        }
        PluginEvent::Disabled { plugin, reason } => {
            let data = json!({"plugin": plugin, "reason": reason});
            let scope = crate::gate::INSTANCE_SCOPE.to_string();
            spawn_emit(events.clone(), scope, "hearth.plugin.disabled", data);
        }
    })
}

/// Counts job runs as metrics (their system events, `hearth.job.*`, the jobs service publishes
/// itself).
pub fn job_observer() -> hearth_jobs::JobObserver {
    Arc::new(crate::metrics::record_job_run)
}
