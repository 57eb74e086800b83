//! Usage metering: one record per request, handed to a background writer that stores them in
//! batches, so the request path never waits on the database. The queue is bounded; when it is
//! full (the database stalled), a record waits in its own task rather than being dropped.

use std::time::Duration;

use hearth_store::{Store, UsageRow};
use tokio::sync::mpsc;

/// What one request used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub at_ms: i64,
    pub tenant_id: Option<String>,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    /// The model name the client asked for.
    pub model: String,
    /// What served it: `local/gemma3:270m`, `primary/gpt-4o-mini`.
    pub target: String,
    /// The route template, e.g. `/v1/chat/completions`.
    pub route: String,
    pub status: u16,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: u64,
    pub time_to_first_token_ms: Option<u64>,
    pub cache_hit: bool,
    pub cost_micro_usd: u64,
    /// The prompt template the request rendered, and its version.
    pub prompt_id: Option<String>,
    pub prompt_version: Option<u32>,
}

const QUEUE_CAPACITY: usize = 16_384;
const BATCH_MAX: usize = 512;
const BATCH_WAIT: Duration = Duration::from_millis(200);

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct UsageRecorder {
    sender: mpsc::Sender<UsageEvent>,
}

impl UsageRecorder {
    /// Starts the writer on the current runtime. It stops, after storing what is queued, once
    /// every recorder is dropped; await the returned handle to know it is done.
    pub fn start(store: Store) -> (UsageRecorder, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let writer = tokio::spawn(write_batches(store, receiver));
        (UsageRecorder { sender }, writer)
    }

    /// Queues a record without waiting.
    pub fn record(&self, event: UsageEvent) {
        match self.sender.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let sender = self.sender.clone();
                tokio::spawn(async move {
                    if sender.send(event).await.is_err() {
                        tracing::error!("usage record lost: the usage writer has stopped");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("usage record lost: the usage writer has stopped");
            }
        }
    }
}

fn row(event: UsageEvent) -> UsageRow {
    let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    UsageRow {
        // Time-ordered ids: the primary key's index grows at its end, as the table does, rather
        // than at random pages of an index far larger than SQLite's page cache.
        id: uuid::Uuid::now_v7().to_string(),
        at_ms: event.at_ms,
        tenant_id: event.tenant_id,
        key_id: event.key_id,
        user_id: event.user_id,
        model: event.model,
        target: event.target,
        route: event.route,
        status: i64::from(event.status),
        prompt_tokens: signed(event.prompt_tokens),
        completion_tokens: signed(event.completion_tokens),
        latency_ms: signed(event.latency_ms),
        time_to_first_token_ms: event.time_to_first_token_ms.map(signed),
        cache_hit: event.cache_hit,
        cost_micro_usd: signed(event.cost_micro_usd),
        prompt_id: event.prompt_id,
        prompt_version: event.prompt_version.map(i64::from),
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<UsageEvent>) {
    let mut batch: Vec<UsageRow> = Vec::with_capacity(BATCH_MAX);
    loop {
        // Idle: wait for the first record.
        let Some(first) = receiver.recv().await else {
            return;
        };
        batch.push(row(first));
        // Then let the next moments' records gather in the queue while the writer sleeps:
        // a request that queues a record while nobody waits on the queue wakes no one, which
        // matters at thousands of requests a second on two cores.
        tokio::time::sleep(BATCH_WAIT).await;
        loop {
            while batch.len() < BATCH_MAX {
                match receiver.try_recv() {
                    Ok(event) => batch.push(row(event)),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            store_with_retries(&store, &batch).await;
            batch.clear();
        }
    }
}

async fn store_with_retries(store: &Store, batch: &[UsageRow]) {
    let mut delay = Duration::from_millis(100);
    loop {
        match store.insert_usage(batch).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, records = batch.len(), "cannot store usage records; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}
