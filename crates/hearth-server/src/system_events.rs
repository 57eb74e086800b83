//! Hearth's own events under `hearth.>` (`hearth.collection.created`, `hearth.key.revoked`,
//! ...), published into the tenant the change concerns, so that its apps and plugins can
//! react. They carry names and ids, never secrets or content. Publishing is best effort: the
//! change has happened and stays, whether or not its event could be stored (a failure is
//! logged).

use serde_json::Value;

use crate::state::AppState;

/// Publishes `data` to `topic` in `scope` (a tenant id, or the instance's own scope).
pub async fn emit(state: &AppState, scope: &str, topic: &str, data: Value) {
    let Some(events) = state.events.clone() else {
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
