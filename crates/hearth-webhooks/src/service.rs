//! The webhooks service: endpoints per tenant, each fed by one of Hearth's own durable
//! consumers (`_webhook_<id>`) so that its deliveries inherit the consumer's guarantees
//! (state committed before it moves, redelivery after a crash), and a worker per enabled
//! endpoint that signs, posts, records and settles.
//!
//! Retries follow Svix's schedule (after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
//! 10 h, 10 h; eight attempts in all) with ±10% jitter, or the endpoint's `Retry-After` when
//! it gives one. A `410 Gone` disables the endpoint at once; an endpoint whose attempts have
//! failed without a success for `disable_after` (5 days) is disabled too; both publish
//! `hearth.webhook.disabled` in the endpoint's tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hearth_events::{ConsumerConfig, DeliverPolicy, Delivery, Events, EventsError, Publish};
use serde_json::{Value, json};

use crate::sign;
use crate::store::{Attempt, DeliveryRecord, Endpoint, Recorded, Signing, Store};

/// Deliveries' outbound requests, as the egress guard names them in its refusals.
const EGRESS: hearth_egress::Egress = hearth_egress::Egress {
    who: "webhooks",
    setting: "webhooks.allow_internal_targets",
};

/// Svix's schedule: the waits after the first to the seventh failed attempt.
pub const SVIX_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Most bytes of an answer kept in the delivery log.
const RESPONSE_EXCERPT: usize = 1024;
/// Events a worker takes from its consumer at once (delivered concurrently).
const BATCH: usize = 16;

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    #[error("invalid `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("no webhook `{0}` in this tenant")]
    NotFound(String),
    #[error("no delivery `{0}` of this webhook")]
    NoDelivery(String),
    #[error("the event of this delivery is no longer kept (retention removed it)")]
    EventGone,
    #[error("this tenant has {max} webhooks, the most it may (webhooks.max_per_tenant)")]
    TooMany { max: u32 },
    #[error("the webhook store failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Events(#[from] EventsError),
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct WebhooksOptions {
    /// Let deliveries reach loopback and private addresses (tests, a private network).
    pub allow_internal_targets: bool,
    /// The waits between attempts; one attempt more than it has entries.
    pub retry_schedule: Vec<Duration>,
    /// One request's limit.
    pub timeout: Duration,
    /// An endpoint failing this long without a success is disabled.
    pub disable_after: Duration,
    /// How long a rotated-out secret still signs.
    pub rotation_grace: Duration,
    pub max_per_tenant: u32,
}

impl Default for WebhooksOptions {
    fn default() -> WebhooksOptions {
        WebhooksOptions {
            allow_internal_targets: false,
            retry_schedule: SVIX_SCHEDULE.to_vec(),
            timeout: Duration::from_secs(15),
            disable_after: Duration::from_secs(5 * 86_400),
            rotation_grace: Duration::from_secs(86_400),
            max_per_tenant: 64,
        }
    }
}

/// A new endpoint, or changes to one.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub topics: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// How one attempt went.
enum Outcome {
    Delivered,
    /// 410 Gone: the receiver wants no more.
    Gone,
    /// Try again, after the endpoint's `Retry-After` when it sent one.
    Failed {
        retry_after: Option<Duration>,
    },
}

/// The service. Workers hold it weakly; dropping the last handle stops them.
pub struct Webhooks {
    events: Arc<Events>,
    store: Store,
    client: reqwest::Client,
    options: WebhooksOptions,
    workers: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn consumer_name(webhook_id: &str) -> String {
    format!("_webhook_{webhook_id}")
}

/// A duration scaled by a factor in [0.9, 1.1): retries of many endpoints failing together
/// spread out instead of arriving at once.
fn jittered(wait: Duration) -> Duration {
    let random = uuid::Uuid::new_v4().as_u128() as u32;
    let factor = 0.9 + 0.2 * (f64::from(random) / f64::from(u32::MAX));
    wait.mul_f64(factor)
}

/// Seconds of a `Retry-After` header (the HTTP-date form is ignored), at most a day.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(86_400)))
}

impl Webhooks {
    /// Opens the store in `data_dir` and starts a worker for every enabled endpoint.
    pub async fn start(
        data_dir: &std::path::Path,
        events: Arc<Events>,
        options: WebhooksOptions,
    ) -> Result<Arc<Webhooks>, WebhooksError> {
        let store = Store::open(data_dir).await?;
        let client = hearth_egress::client(options.allow_internal_targets, options.timeout, EGRESS)
            .map_err(|error| WebhooksError::Invalid {
                field: "webhooks".to_string(),
                message: format!("cannot build the HTTP client: {error}"),
            })?;
        let webhooks = Arc::new(Webhooks {
            events,
            store,
            client,
            options,
            workers: Mutex::new(HashMap::new()),
        });
        for id in webhooks.store.enabled_ids().await? {
            webhooks.spawn_worker(&id);
        }
        let weak = Arc::downgrade(&webhooks);
        tokio::spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                hourly.tick().await;
                let Some(webhooks) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = webhooks.store.trim_log(now_ms()).await {
                    tracing::warn!(%error, "trimming the webhook delivery log failed");
                }
            }
        });
        Ok(webhooks)
    }

    fn check_url(&self, url: &str) -> Result<(), WebhooksError> {
        hearth_egress::check_url(url, self.options.allow_internal_targets, EGRESS)
            .map(|_| ())
            .map_err(|message| WebhooksError::Invalid {
                field: "url".to_string(),
                message,
            })
    }

    fn check_topics(topics: &[String]) -> Result<(), WebhooksError> {
        if topics.is_empty() || topics.len() > 64 {
            return Err(WebhooksError::Invalid {
                field: "topics".to_string(),
                message: "give 1 to 64 topic patterns (`>` for every event)".to_string(),
            });
        }
        for topic in topics {
            hearth_events::Pattern::parse(topic).map_err(|error| WebhooksError::Invalid {
                field: "topics".to_string(),
                message: error.to_string(),
            })?;
        }
        Ok(())
    }

    /// Its consumer: only events published from now on.
    async fn make_consumer(&self, endpoint: &Endpoint) -> Result<(), WebhooksError> {
        let patterns: Vec<&str> = endpoint.topics.iter().map(String::as_str).collect();
        let mut config = ConsumerConfig::new(&consumer_name(&endpoint.id), &patterns);
        config.deliver = DeliverPolicy::New;
        // Longer than a request may take: a delivery is only redelivered by timeout when a
        // worker died with it (a crash); the worker settles every attempt itself.
        config.ack_wait = self.options.timeout + Duration::from_secs(30);
        config.max_ack_pending = 256;
        self.events
            .create_system_consumer(&endpoint.tenant_id, config)
            .await?;
        Ok(())
    }

    async fn drop_consumer(&self, endpoint: &Endpoint) -> Result<(), WebhooksError> {
        self.events
            .delete_consumer(&endpoint.tenant_id, &consumer_name(&endpoint.id))
            .await?;
        Ok(())
    }

    /// Creates an endpoint for events from now on; returns it and its secret (shown once).
    pub async fn create(
        self: &Arc<Self>,
        tenant_id: &str,
        change: EndpointChange,
    ) -> Result<(Endpoint, String), WebhooksError> {
        let url = change.url.ok_or_else(|| WebhooksError::Invalid {
            field: "url".to_string(),
            message: "a webhook needs a url".to_string(),
        })?;
        self.check_url(&url)?;
        let topics = change.topics.unwrap_or_else(|| vec![">".to_string()]);
        Self::check_topics(&topics)?;
        let max = self.options.max_per_tenant;
        if self.store.count(tenant_id).await? >= u64::from(max) {
            return Err(WebhooksError::TooMany { max });
        }
        let now = now_ms();
        let endpoint = Endpoint {
            id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
            tenant_id: tenant_id.to_string(),
            url,
            topics,
            description: change.description,
            enabled: change.enabled.unwrap_or(true),
            disabled_reason: None,
            failing_since_ms: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let secret = sign::new_secret();
        self.store
            .insert(&Signing {
                endpoint: endpoint.clone(),
                secret: secret.clone(),
                previous_secret: None,
                previous_until_ms: None,
            })
            .await?;
        if endpoint.enabled {
            self.make_consumer(&endpoint).await?;
            self.spawn_worker(&endpoint.id);
        }
        Ok((endpoint, secret))
    }

    /// A tenant's endpoint.
    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<Endpoint, WebhooksError> {
        Ok(self.signing(tenant_id, id).await?.endpoint)
    }

    async fn signing(&self, tenant_id: &str, id: &str) -> Result<Signing, WebhooksError> {
        self.store
            .get(Some(tenant_id), id)
            .await?
            .ok_or_else(|| WebhooksError::NotFound(id.to_string()))
    }

    /// A tenant's endpoints, oldest first.
    pub async fn list(&self, tenant_id: &str) -> Result<Vec<Endpoint>, WebhooksError> {
        Ok(self.store.list(tenant_id).await?)
    }

    /// Changes an endpoint. New topics, or enabling a disabled one, start from events
    /// published from then on (nothing queued while it was off floods it).
    pub async fn update(
        self: &Arc<Self>,
        tenant_id: &str,
        id: &str,
        change: EndpointChange,
    ) -> Result<Endpoint, WebhooksError> {
        let mut endpoint = self.get(tenant_id, id).await?;
        if let Some(url) = change.url {
            self.check_url(&url)?;
            endpoint.url = url;
        }
        let topics_changed = match change.topics {
            Some(topics) => {
                Self::check_topics(&topics)?;
                let changed = topics != endpoint.topics;
                endpoint.topics = topics;
                changed
            }
            None => false,
        };
        if let Some(description) = change.description {
            endpoint.description = Some(description);
        }
        let was_enabled = endpoint.enabled;
        if let Some(enabled) = change.enabled {
            endpoint.enabled = enabled;
            if enabled {
                endpoint.disabled_reason = None;
                endpoint.failing_since_ms = None;
            }
        }
        self.store.update(&endpoint, now_ms()).await?;
        if !endpoint.enabled || topics_changed {
            self.stop_worker(id);
            self.drop_consumer(&endpoint).await?;
        }
        if endpoint.enabled && (!was_enabled || topics_changed) {
            self.make_consumer(&endpoint).await?;
            self.spawn_worker(id);
        }
        self.get(tenant_id, id).await
    }

    /// A new secret (returned, shown once); the old one keeps signing for the grace period,
    /// so receivers can switch without dropping deliveries.
    pub async fn rotate_secret(&self, tenant_id: &str, id: &str) -> Result<String, WebhooksError> {
        self.get(tenant_id, id).await?;
        let secret = sign::new_secret();
        let now = now_ms();
        let until = now + self.options.rotation_grace.as_millis() as i64;
        self.store.rotate(id, &secret, until, now).await?;
        Ok(secret)
    }

    /// Deletes an endpoint, its consumer and its delivery log.
    pub async fn delete(&self, tenant_id: &str, id: &str) -> Result<(), WebhooksError> {
        let endpoint = self.get(tenant_id, id).await?;
        self.stop_worker(id);
        self.drop_consumer(&endpoint).await?;
        self.store.delete(id).await?;
        Ok(())
    }

    /// An endpoint's newest deliveries with their attempts.
    pub async fn deliveries(
        &self,
        tenant_id: &str,
        id: &str,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, WebhooksError> {
        self.get(tenant_id, id).await?;
        Ok(self.store.deliveries(id, limit.clamp(1, 1000)).await?)
    }

    /// Sends a delivery's event again now (whatever its status) and records the attempt.
    pub async fn retry(
        &self,
        tenant_id: &str,
        id: &str,
        delivery_id: &str,
    ) -> Result<DeliveryRecord, WebhooksError> {
        let signing = self.signing(tenant_id, id).await?;
        let record = self
            .store
            .delivery(id, delivery_id)
            .await?
            .ok_or_else(|| WebhooksError::NoDelivery(delivery_id.to_string()))?;
        let event = self
            .events
            .event(tenant_id, record.event_seq)
            .await?
            .ok_or(WebhooksError::EventGone)?;
        let (outcome, attempt) = self.attempt(&signing, &event, "manual").await;
        let status = match outcome {
            Outcome::Delivered => "succeeded",
            _ => record.status.as_str(),
        };
        self.store
            .record(Recorded {
                webhook_id: id,
                event_seq: event.sequence,
                event_id: &event.id,
                topic: &event.topic,
                status,
                attempt,
                succeeded: matches!(outcome, Outcome::Delivered),
            })
            .await?;
        self.store
            .delivery(id, delivery_id)
            .await?
            .ok_or_else(|| WebhooksError::NoDelivery(delivery_id.to_string()))
    }

    fn spawn_worker(self: &Arc<Self>, id: &str) {
        let weak = Arc::downgrade(self);
        let webhook_id = id.to_string();
        let task = tokio::spawn(async move { work(weak, webhook_id).await });
        if let Some(old) = self
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_string(), task.abort_handle())
        {
            old.abort();
        }
    }

    fn stop_worker(&self, id: &str) {
        if let Some(worker) = self
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
        {
            worker.abort();
        }
    }

    /// One signed POST of an event, timed, its answer's first bytes kept.
    async fn attempt(
        &self,
        signing: &Signing,
        event: &hearth_events::StoredEvent,
        trigger: &str,
    ) -> (Outcome, Attempt) {
        let data: Value = serde_json::from_str(&event.data)
            .unwrap_or_else(|_| Value::String(event.data.to_string()));
        let body = json!({
            "type": event.topic,
            "timestamp": hearth_time::rfc3339_from_unix_millis(event.time_ms),
            "data": data,
        })
        .to_string();
        let timestamp = now_ms() / 1000;
        let mut secrets = vec![signing.secret.as_str()];
        if let (Some(previous), Some(until)) = (&signing.previous_secret, signing.previous_until_ms)
            && until > now_ms()
        {
            secrets.push(previous);
        }
        let signature = sign::signature_header(&secrets, &event.id, timestamp, body.as_bytes());
        let at_ms = now_ms();
        let started = Instant::now();
        let sent = async {
            hearth_egress::check_url(
                &signing.endpoint.url,
                self.options.allow_internal_targets,
                EGRESS,
            )?;
            self.client
                .post(&signing.endpoint.url)
                .header("content-type", "application/json")
                .header("webhook-id", &event.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .map_err(|error| describe(&error))
        }
        .await;
        let mut attempt = Attempt {
            attempt: 0,
            at_ms,
            status_code: None,
            latency_ms: 0,
            response: None,
            error: None,
            trigger: trigger.to_string(),
        };
        let outcome = match sent {
            Ok(mut response) => {
                let status = response.status();
                let wait = retry_after(response.headers());
                let mut excerpt = Vec::new();
                while excerpt.len() < RESPONSE_EXCERPT {
                    match response.chunk().await {
                        Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                excerpt.truncate(RESPONSE_EXCERPT);
                attempt.status_code = Some(status.as_u16());
                attempt.response = Some(String::from_utf8_lossy(&excerpt).into_owned());
                if status.is_success() {
                    Outcome::Delivered
                } else if status == reqwest::StatusCode::GONE {
                    Outcome::Gone
                } else {
                    Outcome::Failed { retry_after: wait }
                }
            }
            Err(error) => {
                attempt.error = Some(error);
                Outcome::Failed { retry_after: None }
            }
        };
        attempt.latency_ms = started.elapsed().as_millis() as u64;
        (outcome, attempt)
    }

    /// Delivers one event from the consumer and settles it; false when the endpoint was
    /// disabled by it.
    async fn deliver(&self, signing: &Signing, delivery: &Delivery) -> Result<bool, WebhooksError> {
        let endpoint = &signing.endpoint;
        let consumer = consumer_name(&endpoint.id);
        let ids = [delivery.delivery_id.clone()];
        let (outcome, attempt) = self.attempt(signing, &delivery.event, "scheduled").await;
        let attempts_allowed = self.options.retry_schedule.len() as u32 + 1;
        let (status, succeeded) = match &outcome {
            Outcome::Delivered => ("succeeded", true),
            Outcome::Gone => ("failed", false),
            Outcome::Failed { .. } if delivery.delivery_count >= attempts_allowed => {
                ("failed", false)
            }
            Outcome::Failed { .. } => ("pending", false),
        };
        let (_, failing_since) = self
            .store
            .record(Recorded {
                webhook_id: &endpoint.id,
                event_seq: delivery.event.sequence,
                event_id: &delivery.event.id,
                topic: &delivery.event.topic,
                status,
                attempt,
                succeeded,
            })
            .await?;
        let tenant = &endpoint.tenant_id;
        match outcome {
            Outcome::Delivered => {
                self.events.ack(tenant, &consumer, &ids).await?;
            }
            Outcome::Gone => {
                self.disable(endpoint, "the endpoint answered 410 Gone")
                    .await?;
                return Ok(false);
            }
            Outcome::Failed { retry_after } => {
                if status == "failed" {
                    // Out of attempts: the log says so; the consumer lets it go.
                    self.events.ack(tenant, &consumer, &ids).await?;
                } else {
                    let index = (delivery.delivery_count.max(1) - 1) as usize;
                    let scheduled = self
                        .options
                        .retry_schedule
                        .get(index)
                        .copied()
                        .unwrap_or_default();
                    let wait = retry_after.unwrap_or_else(|| jittered(scheduled));
                    self.events.nak(tenant, &consumer, &ids, Some(wait)).await?;
                }
                if let Some(since) = failing_since
                    && now_ms() - since >= self.options.disable_after.as_millis() as i64
                {
                    let days = self.options.disable_after.as_secs_f64() / 86_400.0;
                    let reason = format!(
                        "every attempt has failed for {days:.1} days (since {})",
                        hearth_time::rfc3339_from_unix_millis(since)
                    );
                    self.disable(endpoint, &reason).await?;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Disables an endpoint for a reason, drops its consumer and reports it as the system
    /// event `hearth.webhook.disabled` in its tenant.
    async fn disable(&self, endpoint: &Endpoint, reason: &str) -> Result<(), WebhooksError> {
        let mut disabled = endpoint.clone();
        disabled.enabled = false;
        disabled.disabled_reason = Some(reason.to_string());
        self.store.update(&disabled, now_ms()).await?;
        self.drop_consumer(endpoint).await?;
        tracing::warn!(webhook = %endpoint.id, url = %endpoint.url, reason, "a webhook was disabled");
        let published = self
            .events
            .publish(
                &endpoint.tenant_id,
                vec![Publish {
                    topic: "hearth.webhook.disabled".to_string(),
                    data: json!({"id": endpoint.id, "url": endpoint.url, "reason": reason}),
                    idempotency_key: None,
                }],
                "",
            )
            .await;
        if let Err(error) = published {
            tracing::warn!(%error, "publishing hearth.webhook.disabled failed");
        }
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&endpoint.id);
        Ok(())
    }
}

/// A request error in words for the delivery log.
fn describe(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The endpoint as stored now, when it is still there and enabled; a read that fails is
/// logged and tried again a second later.
async fn enabled_endpoint(
    webhooks: &std::sync::Weak<Webhooks>,
    webhook_id: &str,
) -> Option<Signing> {
    loop {
        let service = webhooks.upgrade()?;
        match service.store.get(None, webhook_id).await {
            Ok(Some(signing)) if signing.endpoint.enabled => return Some(signing),
            Ok(_) => return None,
            Err(error) => {
                tracing::warn!(%error, webhook = %webhook_id, "reading a webhook failed; retrying");
            }
        }
        drop(service);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// An endpoint's worker: fetch from its consumer, deliver the batch concurrently, settle each.
/// Its tenant and topics never change under it (new topics or a disable stop or replace the
/// worker), so the endpoint is read at the start and again only after a fetch that brought
/// deliveries: a rotated secret or a new url applies to them.
async fn work(webhooks: std::sync::Weak<Webhooks>, webhook_id: String) {
    let Some(mut signing) = enabled_endpoint(&webhooks, &webhook_id).await else {
        return;
    };
    let consumer = consumer_name(&webhook_id);
    loop {
        let Some(service) = webhooks.upgrade() else {
            return;
        };
        let fetched = service
            .events
            .fetch(
                &signing.endpoint.tenant_id,
                &consumer,
                BATCH,
                Duration::from_secs(5),
            )
            .await;
        let deliveries = match fetched {
            Ok(deliveries) if deliveries.is_empty() => continue,
            Ok(deliveries) => deliveries,
            Err(EventsError::NoConsumer(_)) => {
                // Enabled but without its consumer (a crash between the two writes that make
                // an endpoint): make it again, from new events on.
                if let Err(error) = service.make_consumer(&signing.endpoint).await {
                    tracing::warn!(%error, webhook = %webhook_id, "a webhook has no consumer and one could not be made");
                    return;
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, webhook = %webhook_id, "fetching webhook events failed; retrying");
                drop(service);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        drop(service);
        signing = match enabled_endpoint(&webhooks, &webhook_id).await {
            Some(signing) => signing,
            None => return,
        };
        let Some(service) = webhooks.upgrade() else {
            return;
        };
        let results = futures_util::future::join_all(
            deliveries
                .iter()
                .map(|delivery| service.deliver(&signing, delivery)),
        )
        .await;
        for result in results {
            match result {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, webhook = %webhook_id, "settling a webhook delivery failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(100));
            assert!(
                wait >= Duration::from_secs(90) && wait <= Duration::from_secs(110),
                "{wait:?}"
            );
        }
    }
}

#[cfg(test)]
mod delivery_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hearth_events::{EventsOptions, Publish};

    use super::*;

    /// A receiver on loopback that answers every request with `status`; returns its URL
    /// and how many requests it has had.
    async fn receiver(status: u16) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let counted = Arc::clone(&counted);
                async move {
                    counted.fetch_add(1, Ordering::Relaxed);
                    axum::http::StatusCode::from_u16(status).expect("status")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}/hook"), hits)
    }

    /// The events and webhooks services on `dir`, loopback allowed.
    async fn services(
        dir: &std::path::Path,
        options: WebhooksOptions,
    ) -> (Arc<Events>, Arc<Webhooks>) {
        let events = Arc::new(
            Events::open(dir, EventsOptions::default())
                .await
                .expect("events"),
        );
        let options = WebhooksOptions {
            allow_internal_targets: true,
            ..options
        };
        let webhooks = Webhooks::start(dir, Arc::clone(&events), options)
            .await
            .expect("webhooks");
        (events, webhooks)
    }

    #[tokio::test]
    async fn an_endpoint_failing_past_disable_after_is_disabled_and_reported() {
        let dir = tempfile::tempdir().expect("dir");
        let (events, webhooks) = services(
            dir.path(),
            WebhooksOptions {
                retry_schedule: vec![Duration::from_millis(20); 7],
                disable_after: Duration::from_millis(150),
                ..WebhooksOptions::default()
            },
        )
        .await;
        let (url, hits) = receiver(503).await;
        let (endpoint, _) = webhooks
            .create(
                "t1",
                EndpointChange {
                    url: Some(url),
                    topics: Some(vec!["jobs.>".to_string()]),
                    ..EndpointChange::default()
                },
            )
            .await
            .expect("create");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        loop {
            let current = webhooks.get("t1", &endpoint.id).await.expect("endpoint");
            if !current.enabled {
                let reason = current.disabled_reason.unwrap_or_default();
                assert!(reason.contains("failed"), "{reason}");
                break;
            }
            assert!(Instant::now() < deadline, "never disabled");
            n += 1;
            publish_job(&events, n).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert!(hits.load(Ordering::Relaxed) >= 2);
        let disabled = events
            .follow("t1", &["hearth.webhook.disabled"], 1)
            .await
            .expect("follow")
            .next()
            .await
            .expect("the system event");
        assert!(disabled.data.contains(&endpoint.id), "{}", disabled.data);
        // Its log shows the failed attempts.
        let log = webhooks
            .deliveries("t1", &endpoint.id, 100)
            .await
            .expect("log");
        assert!(
            log.iter()
                .flat_map(|delivery| &delivery.attempts)
                .all(|attempt| attempt.status_code == Some(503))
        );
    }

    #[tokio::test]
    async fn an_enabled_endpoint_whose_consumer_is_gone_gets_it_back() {
        let dir = tempfile::tempdir().expect("dir");
        let (events, webhooks) = services(dir.path(), WebhooksOptions::default()).await;
        let (url, hits) = receiver(200).await;
        let (endpoint, _) = webhooks
            .create(
                "t1",
                EndpointChange {
                    url: Some(url),
                    ..EndpointChange::default()
                },
            )
            .await
            .expect("create");
        // As after a crash between writing the endpoint and making its consumer.
        assert!(
            events
                .delete_consumer("t1", &consumer_name(&endpoint.id))
                .await
                .expect("delete")
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        while hits.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < deadline, "nothing was delivered");
            n += 1;
            publish_job(&events, n).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes `jobs.run` with `n` for tenant t1.
    async fn publish_job(events: &Events, n: u64) {
        events
            .publish(
                "t1",
                vec![Publish {
                    topic: "jobs.run".to_string(),
                    data: json!(n),
                    idempotency_key: None,
                }],
                "",
            )
            .await
            .expect("publish");
    }
}
