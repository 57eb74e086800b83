//! Plugins as event handlers. A tenant subscribes a plugin; Hearth then feeds it the tenant's
//! events on the manifest's `subscribe` patterns through a system consumer of that tenant
//! (`_plugin_<name>`, events from the subscription on), so delivery is at least once and
//! survives restarts: an event is acknowledged when the handler returns, refused (and
//! delivered again after a backoff) when it answers an error, traps or hits a limit, and
//! dead-lettered to `hearth.plugin.dead_letter` after [`MAX_DELIVERIES`]. One worker per
//! (plugin, tenant) fetches and handles in order; a disabled plugin's worker waits without
//! taking deliveries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hearth_events::{ConsumerConfig, DeliverPolicy, Events};

use crate::loaded::GuestEvent;
use crate::{Inner, PluginError, Plugins};

/// Deliveries of one event before it is dead-lettered.
pub const MAX_DELIVERIES: u32 = 5;
/// Where events a plugin could not handle end up, in the tenant's stream.
pub const DEAD_LETTER_TOPIC: &str = "hearth.plugin.dead_letter";
/// Waits before redelivering a refused event; the last repeats.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(5),
    Duration::from_secs(30),
];
const FETCH_BATCH: usize = 16;
const FETCH_WAIT: Duration = Duration::from_secs(5);
/// How often a worker of a disabled plugin looks whether it was enabled again.
const DISABLED_POLL: Duration = Duration::from_millis(500);

pub(crate) fn consumer_name(plugin: &str) -> String {
    format!("_plugin_{plugin}")
}

/// Makes the tenant's consumer for a plugin (events published from now on).
pub(crate) async fn make_consumer(
    events: &Events,
    plugin: &str,
    tenant_id: &str,
    patterns: &[String],
    timeout_ms: u64,
) -> Result<(), PluginError> {
    let filter: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let mut config = ConsumerConfig::new(&consumer_name(plugin), &filter);
    config.deliver = DeliverPolicy::New;
    // A call cannot outlive its timeout; past this the event is delivered again anyway.
    config.ack_wait = Duration::from_millis(timeout_ms) + Duration::from_secs(30);
    config.max_deliver = Some(MAX_DELIVERIES);
    config.backoff = BACKOFF.to_vec();
    config.dead_letter_topic = Some(DEAD_LETTER_TOPIC.to_string());
    config.max_ack_pending = 256;
    events
        .create_system_consumer(tenant_id, config)
        .await
        .map_err(|error| PluginError::Runtime(format!("making the event consumer: {error}")))?;
    Ok(())
}

pub(crate) async fn drop_consumer(events: &Events, plugin: &str, tenant_id: &str) {
    if let Err(error) = events
        .delete_consumer(tenant_id, &consumer_name(plugin))
        .await
    {
        tracing::warn!(%plugin, tenant = %tenant_id, %error, "a plugin's event consumer could not be deleted");
    }
}

/// Starts the worker that feeds a tenant's events to a plugin; it ends when `stop` is set (or
/// the service is gone), between steps: never aborted in the middle of settling a delivery,
/// whose store transaction would then hold the event log's write lock until its connection
/// was used again.
pub(crate) fn spawn_worker(
    inner: &Arc<Inner>,
    events: Arc<Events>,
    plugin: String,
    tenant_id: String,
    stop: Arc<AtomicBool>,
) {
    let weak = Arc::downgrade(inner);
    tokio::spawn(run_worker(weak, events, plugin, tenant_id, stop));
}

async fn run_worker(
    weak: Weak<Inner>,
    events: Arc<Events>,
    plugin: String,
    tenant_id: String,
    stop: Arc<AtomicBool>,
) {
    let consumer = consumer_name(&plugin);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // Only while the service lives, and only deliveries an enabled plugin will handle.
        let enabled = match weak.upgrade() {
            None => return,
            Some(inner) => match (Plugins { inner }).ensure_enabled(&plugin) {
                Ok(()) => true,
                Err(PluginError::Disabled { .. }) => false,
                Err(_) => return,
            },
        };
        if !enabled {
            tokio::time::sleep(DISABLED_POLL).await;
            continue;
        }
        let deliveries = match events
            .fetch(&tenant_id, &consumer, FETCH_BATCH, FETCH_WAIT)
            .await
        {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%plugin, tenant = %tenant_id, %error, "fetching a plugin's events failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(inner) = weak.upgrade() else {
            release(&events, &tenant_id, &consumer, &deliveries).await;
            return;
        };
        let plugins = Plugins { inner };
        for (index, delivery) in deliveries.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                release(&events, &tenant_id, &consumer, &deliveries[index..]).await;
                return;
            }
            let ids = [delivery.delivery_id.clone()];
            let event = GuestEvent {
                topic: delivery.event.topic.clone(),
                id: delivery.event.id.clone(),
                payload: delivery.event.data.to_string(),
                delivery: delivery.delivery_count,
            };
            let settled = match plugins.handle_event(&plugin, event, &tenant_id).await {
                Ok(()) => events.ack(&tenant_id, &consumer, &ids).await,
                Err(PluginError::NotFound(_)) => return,
                Err(error) => {
                    tracing::debug!(%plugin, tenant = %tenant_id, %error, "a plugin refused an event; it comes again");
                    events.nak(&tenant_id, &consumer, &ids, None).await
                }
            };
            if let Err(error) = settled {
                tracing::warn!(%plugin, tenant = %tenant_id, %error, "settling a plugin's event failed; it comes again after its wait");
            }
        }
    }
}

/// Hands back deliveries a stopping worker fetched but will not handle, for the next worker at
/// once (rather than after their ack wait).
async fn release(
    events: &Events,
    tenant_id: &str,
    consumer: &str,
    deliveries: &[hearth_events::Delivery],
) {
    if deliveries.is_empty() {
        return;
    }
    let ids: Vec<String> = deliveries
        .iter()
        .map(|delivery| delivery.delivery_id.clone())
        .collect();
    if let Err(error) = events
        .nak(tenant_id, consumer, &ids, Some(Duration::ZERO))
        .await
    {
        tracing::debug!(%error, "a stopping plugin worker could not hand back its deliveries; they come again after their wait");
    }
}
