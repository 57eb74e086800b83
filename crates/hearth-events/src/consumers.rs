//! Durable consumers: a named, stored position in a tenant's stream with a filter, from which
//! events are fetched in batches and must be acknowledged; what is not acknowledged in time,
//! or is refused (`nak`), comes back after a backoff, and what fails `max_deliver` times goes
//! to a dead-letter topic with the reason.
//!
//! The semantics are JetStream's pull consumers with explicit acks, with three changes its
//! users ask for: the backoff schedule applies to `nak` as well as to ack timeouts (a plain
//! `nak` in JetStream redelivers at once), a dead-letter topic receives the event itself (not
//! only an advisory), and every state change is committed (fsynced) before it is answered.
//!
//! State lives in the log's database: one `consumers` row (settings, the cursor, counters) and
//! one `pending` row per event delivered and not yet acknowledged. A fetch claims events in
//! one `BEGIN IMMEDIATE` transaction, so concurrent fetchers never get the same delivery and
//! a crash after a fetch means the events come again, never that they are lost.
//!
//! Timing of a delivery (`n` = how often it has been delivered, backoff's last entry repeats):
//! - fetched: it must be acknowledged by `now + ack_wait` (its deadline); if not, it is
//!   redelivered `backoff[n-1]` after the deadline (at once with no backoff);
//! - `nak`: the deadline is now, redelivered `delay_ms` from now if given, else `backoff[n-1]`;
//! - `in_progress`: the deadline moves to `now + ack_wait`;
//! - `term`: never redelivered; dead-lettered with reason `terminated`;
//! - when it has been delivered `max_deliver` times and its deadline passes (or it is nak'd),
//!   it is dead-lettered with reason `max_deliver` within a tick of the timer (100 ms).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use crate::{Events, EventsError, LogError, NewEvent, Pattern, StoredEvent, Topic};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS consumers (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- A JSON array of topic patterns.
    filter TEXT NOT NULL,
    -- `all`, `new`, `from_seq:N` or `from_time:MS`, as asked at creation.
    deliver TEXT NOT NULL,
    ack_wait_ms BIGINT NOT NULL,
    -- NULL: no limit.
    max_deliver BIGINT,
    -- A JSON array of milliseconds.
    backoff_ms TEXT NOT NULL,
    dead_letter_topic TEXT,
    max_ack_pending BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- The next sequence to examine for a first delivery.
    next_sequence BIGINT NOT NULL,
    delivered BIGINT NOT NULL DEFAULT 0,
    redelivered BIGINT NOT NULL DEFAULT 0,
    acked BIGINT NOT NULL DEFAULT 0,
    dead_lettered BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS pending (
    tenant_id TEXT NOT NULL,
    consumer TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    deliveries BIGINT NOT NULL,
    -- When the current delivery's time to be acknowledged ends.
    deadline_ms BIGINT NOT NULL,
    -- When it may be delivered again (at or after the deadline).
    redeliver_at_ms BIGINT NOT NULL,
    -- How the last delivery ended, for the dead-letter reason: 0 still open or timed out,
    -- 1 nak'd, 2 terminated.
    outcome BIGINT NOT NULL DEFAULT 0,
    -- 1 when this delivery is the last there will be (max_deliver reached, or terminated):
    -- past its deadline it is dead-lettered. The timer reads only these rows.
    exhausted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, consumer, sequence)
);
CREATE INDEX IF NOT EXISTS pending_exhausted ON pending (exhausted, deadline_ms);
";

/// The longest a fetch waits for events.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(60);
/// The most events one fetch returns.
pub const MAX_FETCH_BATCH: usize = 1000;
/// Events examined past the filter in one fetch before it answers with what it has.
const SCAN_LIMIT: usize = 10_000;
/// How often ack deadlines of last deliveries are checked for dead-lettering.
pub const DEAD_LETTER_TICK: Duration = Duration::from_millis(100);

const OUTCOME_NAK: i64 = 1;
const OUTCOME_TERM: i64 = 2;

/// Where a new consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverPolicy {
    /// Every event the log still holds.
    All,
    /// Only events published after the consumer is created.
    New,
    /// From this sequence.
    FromSequence(u64),
    /// From the first event at or after this time (Unix milliseconds).
    FromTime(i64),
}

impl DeliverPolicy {
    fn stored(self) -> String {
        match self {
            DeliverPolicy::All => "all".to_string(),
            DeliverPolicy::New => "new".to_string(),
            DeliverPolicy::FromSequence(sequence) => format!("from_seq:{sequence}"),
            DeliverPolicy::FromTime(time) => format!("from_time:{time}"),
        }
    }

    fn parse_stored(text: &str) -> DeliverPolicy {
        match text.split_once(':') {
            Some(("from_seq", sequence)) => {
                DeliverPolicy::FromSequence(sequence.parse().unwrap_or(1))
            }
            Some(("from_time", time)) => DeliverPolicy::FromTime(time.parse().unwrap_or(0)),
            _ if text == "new" => DeliverPolicy::New,
            _ => DeliverPolicy::All,
        }
    }
}

/// A consumer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Letters, digits, `-` and `_`, at most 64.
    pub name: String,
    /// Topic patterns; an event matching any is delivered.
    pub filter: Vec<String>,
    pub deliver: DeliverPolicy,
    /// How long a delivery may go unacknowledged.
    pub ack_wait: Duration,
    /// Deliveries of one event before it is dead-lettered; `None` for no limit.
    pub max_deliver: Option<u32>,
    /// Waits before redeliveries after a timeout or a nak; the last repeats.
    pub backoff: Vec<Duration>,
    /// Where events that failed `max_deliver` times, or were terminated, are published.
    pub dead_letter_topic: Option<String>,
    /// Deliveries out at once; a fetch gives no new events past it.
    pub max_ack_pending: u32,
}

impl ConsumerConfig {
    /// Settings with the defaults: every event, 30 s to acknowledge, no delivery limit, no
    /// backoff, no dead-letter topic, 1000 deliveries out.
    pub fn new(name: &str, filter: &[&str]) -> ConsumerConfig {
        ConsumerConfig {
            name: name.to_string(),
            filter: filter.iter().map(|pattern| pattern.to_string()).collect(),
            deliver: DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_deliver: None,
            backoff: Vec::new(),
            dead_letter_topic: None,
            max_ack_pending: 1000,
        }
    }

    /// The filter's patterns.
    fn patterns(&self) -> Result<Vec<Pattern>, EventsError> {
        self.filter
            .iter()
            .map(|pattern| {
                Pattern::parse(pattern).map_err(|source| EventsError::Topic {
                    field: "filter".to_string(),
                    source,
                })
            })
            .collect()
    }

    /// The wait before redelivering after the `deliveries`-th delivery failed.
    fn backoff_after(&self, deliveries: u32) -> Duration {
        let index = (deliveries.max(1) - 1) as usize;
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO)
    }

    /// Checks an app's consumer name: Hearth's own (`_`-named) are not an app's to make.
    fn check_app_name(&self) -> Result<(), EventsError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !name_ok || is_system_consumer(&self.name) {
            return Err(EventsError::Invalid {
                field: "name".to_string(),
                message: "a consumer's name is 1 to 64 letters, digits, `-` or `_`, not \
                          starting with `_` (Hearth's own)"
                    .to_string(),
            });
        }
        Ok(())
    }

    /// Checks everything but the name; the error names the field. Returns the filter's
    /// patterns.
    fn check_settings(&self) -> Result<Vec<Pattern>, EventsError> {
        let invalid = |field: &str, message: String| EventsError::Invalid {
            field: field.to_string(),
            message,
        };
        if self.filter.is_empty() {
            return Err(invalid(
                "filter",
                "give at least one topic pattern (`>` for every event)".to_string(),
            ));
        }
        let patterns = self.patterns()?;
        if self.ack_wait < Duration::from_millis(1) || self.ack_wait > Duration::from_secs(86_400) {
            return Err(invalid(
                "ack_wait_ms",
                "ack_wait_ms is from 1 to 86400000 (a day)".to_string(),
            ));
        }
        if self.max_deliver == Some(0) {
            return Err(invalid(
                "max_deliver",
                "max_deliver is at least 1 (leave it out for no limit)".to_string(),
            ));
        }
        if self.backoff.len() > 64 || self.backoff.iter().any(|wait| *wait > MAX_BACKOFF) {
            return Err(invalid(
                "backoff_ms",
                "backoff_ms has at most 64 waits of at most a day each".to_string(),
            ));
        }
        if self.max_ack_pending == 0 || self.max_ack_pending > 100_000 {
            return Err(invalid(
                "max_ack_pending",
                "max_ack_pending is from 1 to 100000".to_string(),
            ));
        }
        if let Some(dead_letter) = &self.dead_letter_topic {
            let topic = Topic::parse(dead_letter).map_err(|source| EventsError::Topic {
                field: "dead_letter_topic".to_string(),
                source,
            })?;
            if patterns.iter().any(|pattern| pattern.matches(&topic)) {
                return Err(invalid(
                    "dead_letter_topic",
                    format!(
                        "`{dead_letter}` matches the consumer's own filter, so dead letters \
                         would be delivered to it again; pick a topic outside the filter"
                    ),
                ));
            }
        }
        Ok(patterns)
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

/// Whether a consumer is Hearth's own (a webhook's): named with a leading `_`. Apps cannot
/// create, list, fetch from or settle them; only the service that made them can.
pub fn is_system_consumer(name: &str) -> bool {
    name.starts_with('_')
}

/// A consumer's settings and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    pub config: ConsumerConfig,
    pub created_at_ms: i64,
    /// The next sequence it will examine for a first delivery.
    pub next_sequence: u64,
    /// Deliveries out and not acknowledged (including those waiting to be redelivered).
    pub ack_pending: u64,
    /// First deliveries, redeliveries, acknowledgements and dead letters so far.
    pub delivered: u64,
    pub redelivered: u64,
    pub acked: u64,
    pub dead_lettered: u64,
}

/// One delivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Names this delivery in `ack`, `nak`, `term` and `in_progress`: `<sequence>.<count>`.
    pub delivery_id: String,
    /// 1 for the first delivery.
    pub delivery_count: u32,
    pub event: StoredEvent,
}

/// A delivery id, parsed.
fn parse_delivery_id(id: &str) -> Option<(i64, i64)> {
    let (sequence, count) = id.split_once('.')?;
    Some((sequence.parse().ok()?, count.parse().ok()?))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn config_of(row: &sqlx::sqlite::SqliteRow) -> ConsumerConfig {
    let filter: String = row.get("filter");
    let backoff: String = row.get("backoff_ms");
    let max_deliver: Option<i64> = row.get("max_deliver");
    let deliver: String = row.get("deliver");
    ConsumerConfig {
        name: row.get("name"),
        filter: serde_json::from_str(&filter).unwrap_or_default(),
        deliver: DeliverPolicy::parse_stored(&deliver),
        ack_wait: Duration::from_millis(row.get::<i64, _>("ack_wait_ms").max(1) as u64),
        max_deliver: max_deliver.map(|max| max.clamp(1, u32::MAX as i64) as u32),
        backoff: serde_json::from_str::<Vec<u64>>(&backoff)
            .unwrap_or_default()
            .into_iter()
            .map(Duration::from_millis)
            .collect(),
        dead_letter_topic: row.get("dead_letter_topic"),
        max_ack_pending: row.get::<i64, _>("max_ack_pending").clamp(1, 100_000) as u32,
    }
}

fn info_of(row: &sqlx::sqlite::SqliteRow) -> ConsumerInfo {
    let count = |column: &str| row.get::<i64, _>(column).max(0) as u64;
    ConsumerInfo {
        config: config_of(row),
        created_at_ms: row.get("created_at_ms"),
        next_sequence: count("next_sequence"),
        ack_pending: count("ack_pending"),
        delivered: count("delivered"),
        redelivered: count("redelivered"),
        acked: count("acked"),
        dead_lettered: count("dead_lettered"),
    }
}

/// A consumer's settings, as fetching and settling read them (no counting).
const CONFIG_COLUMNS: &str = "name, filter, deliver, ack_wait_ms, max_deliver, backoff_ms, \
     dead_letter_topic, max_ack_pending";

const INFO_COLUMNS: &str = "name, filter, deliver, ack_wait_ms, max_deliver, backoff_ms, \
     dead_letter_topic, max_ack_pending, created_at_ms, next_sequence, delivered, redelivered, \
     acked, dead_lettered, (SELECT COUNT(*) FROM pending WHERE pending.tenant_id = \
     consumers.tenant_id AND pending.consumer = consumers.name) AS ack_pending";

/// What one pass of a fetch claimed.
struct Claimed {
    deliveries: Vec<Delivery>,
    /// When the soonest waiting redelivery becomes due, if any.
    next_redelivery_ms: Option<i64>,
}

impl Events {
    /// Creates a consumer. Creating one that exists with the same settings answers with it;
    /// with other settings it is refused (delete it first).
    pub async fn create_consumer(
        &self,
        tenant_id: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, EventsError> {
        config.check_app_name()?;
        config.check_settings()?;
        self.insert_consumer(tenant_id, config).await
    }

    /// Creates one of Hearth's own consumers (`_name`, see [`is_system_consumer`]); it does
    /// not count against the tenant's cap and apps never see it.
    pub async fn create_system_consumer(
        &self,
        tenant_id: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, EventsError> {
        if !is_system_consumer(&config.name) {
            return Err(EventsError::Invalid {
                field: "name".to_string(),
                message: "Hearth's own consumers are named with a leading `_`".to_string(),
            });
        }
        config.check_settings()?;
        self.insert_consumer(tenant_id, config).await
    }

    async fn insert_consumer(
        &self,
        tenant_id: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, EventsError> {
        if let Some(existing) = self.consumer(tenant_id, &config.name).await? {
            if existing.config == config {
                return Ok(existing);
            }
            return Err(EventsError::ConsumerExists(config.name));
        }
        let pool = &self.log.pool;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM consumers WHERE tenant_id = $1 AND substr(name, 1, 1) != '_'",
        )
        .bind(tenant_id)
        .fetch_one(pool)
        .await
        .map_err(LogError::from)?;
        let max = self.options.max_consumers_per_tenant;
        if !is_system_consumer(&config.name) && count as u64 >= max as u64 {
            return Err(EventsError::TooManyConsumers { max });
        }
        let start = match config.deliver {
            DeliverPolicy::All => 1,
            DeliverPolicy::New => self.log.last_sequence(tenant_id).await? + 1,
            DeliverPolicy::FromSequence(sequence) => sequence.max(1),
            DeliverPolicy::FromTime(time) => {
                let first: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(sequence) FROM events WHERE tenant_id = $1 AND time_ms >= $2",
                )
                .bind(tenant_id)
                .bind(time)
                .fetch_one(pool)
                .await
                .map_err(LogError::from)?;
                match first {
                    Some(first) => first.max(1) as u64,
                    None => self.log.last_sequence(tenant_id).await? + 1,
                }
            }
        };
        let backoff: Vec<i64> = config.backoff.iter().map(|wait| millis(*wait)).collect();
        let inserted = sqlx::query(
            "INSERT INTO consumers (tenant_id, name, filter, deliver, ack_wait_ms, max_deliver, \
             backoff_ms, dead_letter_topic, max_ack_pending, created_at_ms, next_sequence) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(&config.name)
        .bind(json!(config.filter).to_string())
        .bind(config.deliver.stored())
        .bind(millis(config.ack_wait))
        .bind(config.max_deliver.map(i64::from))
        .bind(json!(backoff).to_string())
        .bind(&config.dead_letter_topic)
        .bind(i64::from(config.max_ack_pending))
        .bind(crate::log::now_ms())
        .bind(i64::try_from(start).unwrap_or(i64::MAX))
        .execute(pool)
        .await
        .map_err(LogError::from)?
        .rows_affected();
        if inserted == 0 {
            // Another request created it between the check and the insert.
            return Err(EventsError::ConsumerExists(config.name));
        }
        self.consumer(tenant_id, &config.name)
            .await?
            .ok_or(EventsError::Log(LogError::Closed))
    }

    /// A tenant's consumer, or `None`.
    pub async fn consumer(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<ConsumerInfo>, EventsError> {
        let row = sqlx::query(&format!(
            "SELECT {INFO_COLUMNS} FROM consumers WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.log.pool)
        .await
        .map_err(LogError::from)?;
        Ok(row.as_ref().map(info_of))
    }

    /// A consumer's settings alone: what every fetch and settle reads, without the count of
    /// deliveries out that [`Events::consumer`] makes.
    pub async fn consumer_config(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<ConsumerConfig, EventsError> {
        let row = sqlx::query(&format!(
            "SELECT {CONFIG_COLUMNS} FROM consumers WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.log.pool)
        .await
        .map_err(LogError::from)?;
        row.as_ref()
            .map(config_of)
            .ok_or_else(|| EventsError::NoConsumer(name.to_string()))
    }

    /// A tenant's consumers, by name (not Hearth's own).
    pub async fn consumers(&self, tenant_id: &str) -> Result<Vec<ConsumerInfo>, EventsError> {
        let rows = sqlx::query(&format!(
            "SELECT {INFO_COLUMNS} FROM consumers WHERE tenant_id = $1 \
             AND substr(name, 1, 1) != '_' ORDER BY name"
        ))
        .bind(tenant_id)
        .fetch_all(&self.log.pool)
        .await
        .map_err(LogError::from)?;
        Ok(rows.iter().map(info_of).collect())
    }

    /// Deletes a consumer and what it had out; false when there was none.
    pub async fn delete_consumer(&self, tenant_id: &str, name: &str) -> Result<bool, EventsError> {
        let mut transaction = self
            .log
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(LogError::from)?;
        let deleted = sqlx::query("DELETE FROM consumers WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(LogError::from)?
            .rows_affected();
        sqlx::query("DELETE FROM pending WHERE tenant_id = $1 AND consumer = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(LogError::from)?;
        transaction.commit().await.map_err(LogError::from)?;
        Ok(deleted > 0)
    }

    /// Up to `batch` events for the consumer: first redeliveries that are due, then events
    /// not delivered yet, in sequence order. With none at hand it waits up to `wait` for one
    /// (a publish, or a redelivery coming due) and answers empty when none came.
    pub async fn fetch(
        &self,
        tenant_id: &str,
        name: &str,
        batch: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, EventsError> {
        let batch = batch.clamp(1, MAX_FETCH_BATCH);
        let deadline = tokio::time::Instant::now() + wait.min(MAX_FETCH_WAIT);
        let config = self.consumer_config(tenant_id, name).await?;
        let patterns = config.patterns()?;
        // Subscribed before claiming, so a publish between the claim and the wait wakes it.
        let mut live = if wait.is_zero() {
            None
        } else {
            Some(self.bus(tenant_id).subscribe_any(patterns.clone(), 16))
        };
        loop {
            let claimed = self.claim(tenant_id, &config, &patterns, batch).await?;
            if !claimed.deliveries.is_empty() {
                return Ok(claimed.deliveries);
            }
            let Some(subscription) = live.as_mut() else {
                return Ok(Vec::new());
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut wake = deadline;
            if let Some(due) = claimed.next_redelivery_ms {
                let until = Duration::from_millis((due - crate::log::now_ms()).max(0) as u64);
                wake = wake.min(now + until);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                closed = subscription.next() => {
                    if closed.is_err() {
                        // A full one-slot queue closes as slow; a new one still wakes us.
                        *subscription = self.bus(tenant_id).subscribe_any(patterns.clone(), 16);
                    }
                }
            }
        }
    }

    /// One transaction: due redeliveries, then new events, each recorded as out.
    async fn claim(
        &self,
        tenant_id: &str,
        config: &ConsumerConfig,
        patterns: &[Pattern],
        batch: usize,
    ) -> Result<Claimed, EventsError> {
        let now = crate::log::now_ms();
        let mut transaction = self
            .log
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(LogError::from)?;
        let state = sqlx::query(
            "SELECT next_sequence, (SELECT COUNT(*) FROM pending WHERE tenant_id = $1 \
             AND consumer = $2) FROM consumers WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant_id)
        .bind(&config.name)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(LogError::from)?;
        let Some(state) = state else {
            return Err(EventsError::NoConsumer(config.name.clone()));
        };
        let mut next_sequence: i64 = state.get(0);
        let examined_from = next_sequence;
        let out: i64 = state.get(1);
        let max_deliver = config.max_deliver.map_or(i64::MAX, i64::from);
        let ack_wait = millis(config.ack_wait);
        let mut deliveries = Vec::new();

        // Redeliveries that are due, oldest event first.
        let due = sqlx::query(
            "SELECT pending.sequence, pending.deliveries, events.id, events.topic, \
             events.time_ms, events.data FROM pending LEFT JOIN events \
             ON events.tenant_id = pending.tenant_id AND events.sequence = pending.sequence \
             WHERE pending.tenant_id = $1 AND pending.consumer = $2 \
             AND pending.redeliver_at_ms <= $3 AND pending.deliveries < $4 \
             AND pending.outcome != $5 ORDER BY pending.sequence LIMIT $6",
        )
        .bind(tenant_id)
        .bind(&config.name)
        .bind(now)
        .bind(max_deliver)
        .bind(OUTCOME_TERM)
        .bind(batch as i64)
        .fetch_all(&mut *transaction)
        .await
        .map_err(LogError::from)?;
        let mut gone = 0_i64;
        for row in &due {
            let sequence: i64 = row.get(0);
            let count: i64 = row.get::<i64, _>(1) + 1;
            let id: Option<String> = row.get(2);
            let Some(id) = id else {
                // Retention removed the event while it was out: nothing left to deliver.
                sqlx::query(
                    "DELETE FROM pending WHERE tenant_id = $1 AND consumer = $2 AND sequence = $3",
                )
                .bind(tenant_id)
                .bind(&config.name)
                .bind(sequence)
                .execute(&mut *transaction)
                .await
                .map_err(LogError::from)?;
                gone += 1;
                continue;
            };
            let deadline = now + ack_wait;
            let redeliver_at = deadline + millis(config.backoff_after(count as u32));
            sqlx::query(
                "UPDATE pending SET deliveries = $4, deadline_ms = $5, redeliver_at_ms = $6, \
                 outcome = 0, exhausted = $7 WHERE tenant_id = $1 AND consumer = $2 \
                 AND sequence = $3",
            )
            .bind(tenant_id)
            .bind(&config.name)
            .bind(sequence)
            .bind(count)
            .bind(deadline)
            .bind(redeliver_at)
            .bind(i64::from(count >= max_deliver))
            .execute(&mut *transaction)
            .await
            .map_err(LogError::from)?;
            let data: String = row.get(5);
            deliveries.push(Delivery {
                delivery_id: format!("{sequence}.{count}"),
                delivery_count: count as u32,
                event: StoredEvent {
                    tenant_id: tenant_id.to_string(),
                    sequence: sequence as u64,
                    id,
                    topic: row.get(3),
                    time_ms: row.get(4),
                    data: Arc::from(data),
                },
            });
        }
        let redelivered = deliveries.len() as i64;

        // New events, within what may be out at once.
        let room = (i64::from(config.max_ack_pending) - (out - gone)).max(0) as usize;
        let wanted = (batch - deliveries.len()).min(room);
        let mut first_deliveries = 0_i64;
        if wanted > 0 {
            let mut scanned = 0;
            while first_deliveries < wanted as i64 && scanned < SCAN_LIMIT {
                let rows = sqlx::query(
                    "SELECT sequence, id, topic, time_ms, data FROM events \
                     WHERE tenant_id = $1 AND sequence >= $2 ORDER BY sequence LIMIT 512",
                )
                .bind(tenant_id)
                .bind(next_sequence)
                .fetch_all(&mut *transaction)
                .await
                .map_err(LogError::from)?;
                if rows.is_empty() {
                    break;
                }
                for row in &rows {
                    scanned += 1;
                    let sequence: i64 = row.get(0);
                    next_sequence = sequence + 1;
                    let topic: String = row.get(2);
                    let matches = Topic::parse(&topic)
                        .is_ok_and(|topic| patterns.iter().any(|pattern| pattern.matches(&topic)));
                    if !matches {
                        continue;
                    }
                    let deadline = now + ack_wait;
                    sqlx::query(
                        "INSERT INTO pending (tenant_id, consumer, sequence, deliveries, \
                         deadline_ms, redeliver_at_ms, exhausted) VALUES ($1, $2, $3, 1, $4, $5, \
                         $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(tenant_id)
                    .bind(&config.name)
                    .bind(sequence)
                    .bind(deadline)
                    .bind(deadline + millis(config.backoff_after(1)))
                    .bind(i64::from(max_deliver <= 1))
                    .execute(&mut *transaction)
                    .await
                    .map_err(LogError::from)?;
                    let data: String = row.get(4);
                    deliveries.push(Delivery {
                        delivery_id: format!("{sequence}.1"),
                        delivery_count: 1,
                        event: StoredEvent {
                            tenant_id: tenant_id.to_string(),
                            sequence: sequence as u64,
                            id: row.get(1),
                            topic,
                            time_ms: row.get(3),
                            data: Arc::from(data),
                        },
                    });
                    first_deliveries += 1;
                    if first_deliveries == wanted as i64 {
                        break;
                    }
                }
            }
        }
        let changed = !due.is_empty() || next_sequence != examined_from;
        if changed {
            sqlx::query(
                "UPDATE consumers SET next_sequence = $3, delivered = delivered + $4, \
                 redelivered = redelivered + $5 WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant_id)
            .bind(&config.name)
            .bind(next_sequence)
            .bind(first_deliveries)
            .bind(redelivered)
            .execute(&mut *transaction)
            .await
            .map_err(LogError::from)?;
        }
        // Only a fetch that got nothing waits, and only it needs the soonest redelivery.
        let next_redelivery_ms: Option<i64> = if deliveries.is_empty() {
            sqlx::query_scalar(
                "SELECT MIN(redeliver_at_ms) FROM pending WHERE tenant_id = $1 \
                 AND consumer = $2 AND deliveries < $3 AND outcome != $4",
            )
            .bind(tenant_id)
            .bind(&config.name)
            .bind(max_deliver)
            .bind(OUTCOME_TERM)
            .fetch_one(&mut *transaction)
            .await
            .map_err(LogError::from)?
        } else {
            None
        };
        if changed {
            transaction.commit().await.map_err(LogError::from)?;
        } else {
            // An empty poll wrote nothing: no commit, no fsync.
            transaction.rollback().await.map_err(LogError::from)?;
        }
        deliveries.sort_by_key(|delivery| delivery.event.sequence);
        Ok(Claimed {
            deliveries,
            next_redelivery_ms,
        })
    }

    /// Acknowledges deliveries: they are done and never come again. Any delivery of an event
    /// still out acknowledges it (a late ack of an earlier delivery counts). Returns how many
    /// events were acknowledged; ids not out (already acknowledged, unknown) are skipped.
    pub async fn ack(
        &self,
        tenant_id: &str,
        name: &str,
        delivery_ids: &[String],
    ) -> Result<u64, EventsError> {
        self.settle(tenant_id, name, delivery_ids, Settle::Ack)
            .await
    }

    /// Refuses deliveries: each comes again after `delay`, or its backoff, or is dead-lettered
    /// when it has been delivered `max_deliver` times. Only the current delivery of an event
    /// counts. Returns how many were refused.
    pub async fn nak(
        &self,
        tenant_id: &str,
        name: &str,
        delivery_ids: &[String],
        delay: Option<Duration>,
    ) -> Result<u64, EventsError> {
        let refused = self
            .settle(tenant_id, name, delivery_ids, Settle::Nak(delay))
            .await?;
        self.dead_letter_due().await?;
        Ok(refused)
    }

    /// Gives up on deliveries: never redelivered, dead-lettered with reason `terminated`
    /// when the consumer has a dead-letter topic.
    pub async fn term(
        &self,
        tenant_id: &str,
        name: &str,
        delivery_ids: &[String],
    ) -> Result<u64, EventsError> {
        let terminated = self
            .settle(tenant_id, name, delivery_ids, Settle::Term)
            .await?;
        self.dead_letter_due().await?;
        Ok(terminated)
    }

    /// Asks for more time: each delivery's deadline moves to `ack_wait` from now.
    pub async fn in_progress(
        &self,
        tenant_id: &str,
        name: &str,
        delivery_ids: &[String],
    ) -> Result<u64, EventsError> {
        self.settle(tenant_id, name, delivery_ids, Settle::InProgress)
            .await
    }

    async fn settle(
        &self,
        tenant_id: &str,
        name: &str,
        delivery_ids: &[String],
        settle: Settle,
    ) -> Result<u64, EventsError> {
        let config = self.consumer_config(tenant_id, name).await?;
        let mut ids = Vec::with_capacity(delivery_ids.len());
        for (position, id) in delivery_ids.iter().enumerate() {
            let parsed = parse_delivery_id(id).ok_or_else(|| EventsError::Invalid {
                field: format!("delivery_ids[{position}]"),
                message: format!(
                    "`{id}` is not a delivery id; use the `delivery_id` a fetch answered"
                ),
            })?;
            ids.push(parsed);
        }
        let now = crate::log::now_ms();
        let mut transaction = self
            .log
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(LogError::from)?;
        let mut settled = 0_u64;
        for (sequence, count) in ids {
            let changed = match settle {
                Settle::Ack => sqlx::query(
                    "DELETE FROM pending WHERE tenant_id = $1 AND consumer = $2 AND sequence = $3 \
                     AND deliveries >= $4",
                )
                .bind(tenant_id)
                .bind(name)
                .bind(sequence)
                .bind(count),
                Settle::Nak(delay) => {
                    let wait = delay.unwrap_or_else(|| config.backoff_after(count as u32));
                    sqlx::query(
                        "UPDATE pending SET deadline_ms = $5, redeliver_at_ms = $6, outcome = $7 \
                         WHERE tenant_id = $1 AND consumer = $2 AND sequence = $3 \
                         AND deliveries = $4 AND outcome = 0",
                    )
                    .bind(tenant_id)
                    .bind(name)
                    .bind(sequence)
                    .bind(count)
                    .bind(now)
                    .bind(now.saturating_add(millis(wait.min(MAX_BACKOFF))))
                    .bind(OUTCOME_NAK)
                }
                Settle::Term => sqlx::query(
                    "UPDATE pending SET deadline_ms = $5, outcome = $6, exhausted = 1 \
                     WHERE tenant_id = $1 AND consumer = $2 AND sequence = $3 \
                     AND deliveries = $4 AND outcome = 0",
                )
                .bind(tenant_id)
                .bind(name)
                .bind(sequence)
                .bind(count)
                .bind(now)
                .bind(OUTCOME_TERM),
                Settle::InProgress => {
                    let deadline = now + millis(config.ack_wait);
                    sqlx::query(
                        "UPDATE pending SET deadline_ms = $5, redeliver_at_ms = $6 \
                         WHERE tenant_id = $1 AND consumer = $2 AND sequence = $3 \
                         AND deliveries = $4 AND outcome = 0 AND deadline_ms > $7",
                    )
                    .bind(tenant_id)
                    .bind(name)
                    .bind(sequence)
                    .bind(count)
                    .bind(deadline)
                    .bind(deadline + millis(config.backoff_after(count as u32)))
                    .bind(now)
                }
            }
            .execute(&mut *transaction)
            .await
            .map_err(LogError::from)?
            .rows_affected();
            settled += changed;
        }
        if matches!(settle, Settle::Ack) && settled > 0 {
            sqlx::query(
                "UPDATE consumers SET acked = acked + $3 WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant_id)
            .bind(name)
            .bind(settled as i64)
            .execute(&mut *transaction)
            .await
            .map_err(LogError::from)?;
        }
        transaction.commit().await.map_err(LogError::from)?;
        Ok(settled)
    }

    /// Dead-letters every delivery that is finished for good: terminated, or delivered
    /// `max_deliver` times with its deadline passed. Each goes to its consumer's dead-letter
    /// topic (when it has one) with the event and the reason, and then leaves `pending`. The
    /// publish carries an idempotency key, so a crash between the two publishes it once.
    /// Returns how many it finished.
    pub async fn dead_letter_due(&self) -> Result<u64, EventsError> {
        let now = crate::log::now_ms();
        let rows = sqlx::query(
            "SELECT pending.tenant_id, pending.consumer, pending.sequence, pending.deliveries, \
             pending.outcome, consumers.dead_letter_topic, events.id, events.topic, \
             events.time_ms, events.data FROM pending JOIN consumers \
             ON consumers.tenant_id = pending.tenant_id AND consumers.name = pending.consumer \
             LEFT JOIN events ON events.tenant_id = pending.tenant_id \
             AND events.sequence = pending.sequence \
             WHERE pending.exhausted = 1 AND pending.deadline_ms <= $1 LIMIT 512",
        )
        .bind(now)
        .fetch_all(&self.log.pool)
        .await
        .map_err(LogError::from)?;
        let mut finished = 0;
        for row in rows {
            let tenant_id: String = row.get(0);
            let consumer: String = row.get(1);
            let sequence: i64 = row.get(2);
            let deliveries: i64 = row.get(3);
            let outcome: i64 = row.get(4);
            let dead_letter_topic: Option<String> = row.get(5);
            let event_id: Option<String> = row.get(6);
            let reason = match outcome {
                OUTCOME_TERM => "terminated",
                OUTCOME_NAK => "max_deliver_nak",
                _ => "max_deliver_ack_timeout",
            };
            if let (Some(topic), Some(event_id)) = (dead_letter_topic, event_id) {
                let original_topic: String = row.get(7);
                let time_ms: i64 = row.get(8);
                let data: String = row.get(9);
                let original: serde_json::Value =
                    serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
                let letter = json!({
                    "consumer": consumer,
                    "reason": reason,
                    "deliveries": deliveries,
                    "event": {
                        "id": event_id,
                        "topic": original_topic,
                        "seq": sequence,
                        "time": time_ms,
                        "data": original,
                    },
                });
                let topic = Topic::parse(&topic).map_err(|source| EventsError::Topic {
                    field: "dead_letter_topic".to_string(),
                    source,
                })?;
                let rule = self.rules(&tenant_id).and_then(|rules| {
                    rules
                        .for_topic(&topic)
                        .map(|(pattern, _)| pattern.to_string())
                });
                self.log
                    .append(vec![NewEvent {
                        tenant_id: tenant_id.clone(),
                        topic,
                        data: letter.to_string(),
                        idempotency_key: Some(format!(
                            "hearth-dead-letter:{consumer}:{sequence}:{deliveries}"
                        )),
                        rule,
                    }])
                    .await?;
            }
            let mut transaction = self
                .log
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(LogError::from)?;
            let removed = sqlx::query(
                "DELETE FROM pending WHERE tenant_id = $1 AND consumer = $2 AND sequence = $3 \
                 AND deliveries = $4",
            )
            .bind(&tenant_id)
            .bind(&consumer)
            .bind(sequence)
            .bind(deliveries)
            .execute(&mut *transaction)
            .await
            .map_err(LogError::from)?
            .rows_affected();
            if removed > 0 {
                sqlx::query(
                    "UPDATE consumers SET dead_lettered = dead_lettered + 1 \
                     WHERE tenant_id = $1 AND name = $2",
                )
                .bind(&tenant_id)
                .bind(&consumer)
                .execute(&mut *transaction)
                .await
                .map_err(LogError::from)?;
            }
            transaction.commit().await.map_err(LogError::from)?;
            finished += removed;
            tracing::debug!(%tenant_id, %consumer, sequence, reason, "dead-lettered");
        }
        Ok(finished)
    }

    /// Dead-letters due deliveries every [`DEAD_LETTER_TICK`] while the service lives.
    pub fn spawn_dead_letters(self: &Arc<Self>) {
        let events = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(DEAD_LETTER_TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(events) = events.upgrade() else {
                    return;
                };
                if let Err(error) = events.dead_letter_due().await {
                    tracing::warn!(%error, "dead-lettering failed deliveries failed; retrying");
                }
            }
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Settle {
    Ack,
    Nak(Option<Duration>),
    Term,
    InProgress,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{EventsOptions, Publish};

    async fn events(dir: &std::path::Path) -> Arc<Events> {
        Arc::new(Events::open(dir, EventsOptions::default()).await.unwrap())
    }

    async fn publish(events: &Events, tenant: &str, topic: &str, data: Value) -> u64 {
        let published = events
            .publish(
                tenant,
                vec![Publish {
                    topic: topic.to_string(),
                    data,
                    idempotency_key: None,
                }],
                "",
            )
            .await
            .unwrap();
        published[0].event.sequence
    }

    fn ids(deliveries: &[Delivery]) -> Vec<String> {
        deliveries
            .iter()
            .map(|delivery| delivery.delivery_id.clone())
            .collect()
    }

    fn sequences(deliveries: &[Delivery]) -> Vec<(u64, u32)> {
        deliveries
            .iter()
            .map(|delivery| (delivery.event.sequence, delivery.delivery_count))
            .collect()
    }

    #[tokio::test]
    async fn fetched_events_come_back_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        publish(&events, "t1", "orders.created", json!({"order": 1})).await;
        publish(&events, "t1", "users.created", json!({"user": 1})).await;
        publish(&events, "t1", "orders.paid", json!({"order": 1})).await;
        let mut config = ConsumerConfig::new("billing", &["orders.>"]);
        config.ack_wait = Duration::from_millis(50);
        events.create_consumer("t1", config).await.unwrap();

        let first = events
            .fetch("t1", "billing", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(sequences(&first), [(1, 1), (3, 1)]);
        assert_eq!(&*first[0].event.data, r#"{"order":1}"#);
        assert_eq!(
            events
                .ack("t1", "billing", &ids(&first[..1]))
                .await
                .unwrap(),
            1
        );
        // Out and not yet timed out: nothing to fetch.
        assert!(
            events
                .fetch("t1", "billing", 10, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        // The unacknowledged one comes again after its ack wait, counted.
        let again = events
            .fetch("t1", "billing", 10, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(sequences(&again), [(3, 2)]);
        // A late ack of the first delivery settles it too.
        assert_eq!(
            events
                .ack("t1", "billing", &ids(&first[1..]))
                .await
                .unwrap(),
            1
        );
        assert_eq!(events.ack("t1", "billing", &ids(&again)).await.unwrap(), 0);
        let info = events.consumer("t1", "billing").await.unwrap().unwrap();
        assert_eq!(
            (
                info.ack_pending,
                info.delivered,
                info.redelivered,
                info.acked
            ),
            (0, 2, 1, 2)
        );
        assert_eq!(info.next_sequence, 4);
    }

    #[tokio::test]
    async fn a_waiting_fetch_wakes_for_a_publish() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        events
            .create_consumer("t1", ConsumerConfig::new("worker", &["jobs.*"]))
            .await
            .unwrap();
        let fetching = {
            let events = Arc::clone(&events);
            tokio::spawn(async move {
                events
                    .fetch("t1", "worker", 5, Duration::from_secs(20))
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        publish(&events, "t1", "other.thing", json!(0)).await;
        publish(&events, "t1", "jobs.run", json!(1)).await;
        let started = std::time::Instant::now();
        let got = fetching.await.unwrap();
        assert_eq!(sequences(&got), [(2, 1)]);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn redeliveries_wait_for_the_backoff_after_timeouts_and_naks_alike() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        publish(&events, "t1", "jobs.run", json!(1)).await;
        let mut config = ConsumerConfig::new("worker", &["jobs.>"]);
        config.ack_wait = Duration::from_millis(100);
        config.backoff = vec![Duration::from_millis(300), Duration::from_millis(600)];
        events.create_consumer("t1", config).await.unwrap();

        let fetched_at = std::time::Instant::now();
        let first = events
            .fetch("t1", "worker", 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(sequences(&first), [(1, 1)]);
        // Timed out at 100 ms, then the first backoff: not before 400 ms.
        let second = events
            .fetch("t1", "worker", 1, Duration::from_secs(5))
            .await
            .unwrap();
        let waited = fetched_at.elapsed();
        assert_eq!(sequences(&second), [(1, 2)]);
        assert!(waited >= Duration::from_millis(400), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");

        // A plain nak of the second delivery waits the second backoff, not zero.
        let naked_at = std::time::Instant::now();
        assert_eq!(
            events
                .nak("t1", "worker", &ids(&second), None)
                .await
                .unwrap(),
            1
        );
        let third = events
            .fetch("t1", "worker", 1, Duration::from_secs(5))
            .await
            .unwrap();
        let waited = naked_at.elapsed();
        assert_eq!(sequences(&third), [(1, 3)]);
        assert!(waited >= Duration::from_millis(600), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");

        // A nak with a delay takes the delay; a stale delivery id changes nothing.
        assert_eq!(
            events
                .nak("t1", "worker", &ids(&first), None)
                .await
                .unwrap(),
            0
        );
        let naked_at = std::time::Instant::now();
        events
            .nak("t1", "worker", &ids(&third), Some(Duration::ZERO))
            .await
            .unwrap();
        let fourth = events
            .fetch("t1", "worker", 1, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(sequences(&fourth), [(1, 4)]);
        assert!(naked_at.elapsed() < Duration::from_millis(550));

        // In progress moves the deadline: not redelivered at the old one.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            events
                .in_progress("t1", "worker", &ids(&fourth))
                .await
                .unwrap(),
            1
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        let info = events.consumer("t1", "worker").await.unwrap().unwrap();
        assert_eq!(info.ack_pending, 1);
        assert!(
            events
                .fetch("t1", "worker", 1, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
    }

    async fn dead_letters(events: &Events, tenant: &str) -> Vec<Value> {
        let topic = Pattern::parse("dead.>").unwrap();
        events
            .log
            .read(tenant, 1, 100, Some(std::slice::from_ref(&topic)))
            .await
            .unwrap()
            .iter()
            .map(|event| serde_json::from_str(&event.data).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn events_that_fail_max_deliver_times_or_are_terminated_go_to_the_dead_letter_topic() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        publish(&events, "t1", "jobs.a", json!({"job": "a"})).await;
        publish(&events, "t1", "jobs.b", json!({"job": "b"})).await;
        publish(&events, "t1", "jobs.c", json!({"job": "c"})).await;
        let mut config = ConsumerConfig::new("worker", &["jobs.*"]);
        config.ack_wait = Duration::from_millis(50);
        config.max_deliver = Some(2);
        config.dead_letter_topic = Some("dead.jobs".to_string());
        events.create_consumer("t1", config).await.unwrap();

        let first = events
            .fetch("t1", "worker", 3, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(first.len(), 3);
        // a: nak'd twice. b: terminated. c: times out twice.
        events
            .nak("t1", "worker", &ids(&first[..1]), Some(Duration::ZERO))
            .await
            .unwrap();
        events
            .term("t1", "worker", &ids(&first[1..2]))
            .await
            .unwrap();
        let second = events
            .fetch("t1", "worker", 3, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(sequences(&second)[0], (1, 2));
        events
            .nak("t1", "worker", &ids(&second[..1]), None)
            .await
            .unwrap();
        let mut letters = dead_letters(&events, "t1").await;
        assert_eq!(letters.len(), 2, "{letters:?}");
        // c's second delivery times out; the timer's pass dead-letters it.
        let mut pending = second;
        while pending.iter().all(|delivery| delivery.event.sequence != 3) {
            pending = events
                .fetch("t1", "worker", 3, Duration::from_secs(5))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
        events.dead_letter_due().await.unwrap();
        letters = dead_letters(&events, "t1").await;
        let reasons: Vec<(&str, i64)> = letters
            .iter()
            .map(|letter| {
                (
                    letter["reason"].as_str().unwrap(),
                    letter["event"]["seq"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("terminated", 2),
                ("max_deliver_nak", 1),
                ("max_deliver_ack_timeout", 3)
            ]
        );
        assert_eq!(letters[1]["event"]["data"], json!({"job": "a"}));
        assert_eq!(letters[1]["event"]["topic"], "jobs.a");
        assert_eq!(letters[1]["consumer"], "worker");
        let info = events.consumer("t1", "worker").await.unwrap().unwrap();
        assert_eq!((info.ack_pending, info.dead_lettered), (0, 3));
        assert!(
            events
                .fetch("t1", "worker", 3, Duration::from_millis(200))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn consumer_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        for n in 1..=3 {
            publish(&events, "t1", "jobs.run", json!(n)).await;
        }
        let mut config = ConsumerConfig::new("worker", &[">"]);
        config.ack_wait = Duration::from_millis(100);
        events.create_consumer("t1", config).await.unwrap();
        let first = events
            .fetch("t1", "worker", 2, Duration::ZERO)
            .await
            .unwrap();
        events.ack("t1", "worker", &ids(&first[..1])).await.unwrap();
        drop(events);

        let events = self::events(dir.path()).await;
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let got = events
                .fetch("t1", "worker", 10, Duration::from_secs(5))
                .await
                .unwrap();
            events.ack("t1", "worker", &ids(&got)).await.unwrap();
            seen.extend(sequences(&got));
        }
        seen.sort_unstable();
        // Event 2 was out (its second delivery), event 3 new; event 1 never again.
        assert_eq!(seen, [(2, 2), (3, 1)]);
    }

    #[tokio::test]
    async fn concurrent_fetchers_never_share_a_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        for n in 0..200 {
            publish(&events, "t1", "jobs.run", json!(n)).await;
        }
        events
            .create_consumer("t1", ConsumerConfig::new("pool", &["jobs.>"]))
            .await
            .unwrap();
        let mut workers = Vec::new();
        for _ in 0..4 {
            let events = Arc::clone(&events);
            workers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = events.fetch("t1", "pool", 7, Duration::ZERO).await.unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    events.ack("t1", "pool", &ids(&got)).await.unwrap();
                    mine.extend(got.into_iter().map(|delivery| delivery.event.sequence));
                }
            }));
        }
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (1..=200).collect::<Vec<u64>>());
    }

    #[tokio::test]
    async fn settings_are_checked_and_consumers_belong_to_their_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        publish(&events, "t1", "jobs.old", json!(1)).await;
        let mut looped = ConsumerConfig::new("worker", &["jobs.>"]);
        looped.dead_letter_topic = Some("jobs.dead".to_string());
        assert!(matches!(
            events.create_consumer("t1", looped).await,
            Err(EventsError::Invalid { field, .. }) if field == "dead_letter_topic"
        ));
        assert!(matches!(
            events
                .create_consumer("t1", ConsumerConfig::new("bad name", &[">"]))
                .await,
            Err(EventsError::Invalid { field, .. }) if field == "name"
        ));
        assert!(matches!(
            events
                .create_consumer("t1", ConsumerConfig::new("w", &["a..b"]))
                .await,
            Err(EventsError::Topic { field, .. }) if field == "filter"
        ));
        let mut new_only = ConsumerConfig::new("worker", &["jobs.>"]);
        new_only.deliver = DeliverPolicy::New;
        let created = events
            .create_consumer("t1", new_only.clone())
            .await
            .unwrap();
        assert_eq!(created.next_sequence, 2);
        // The same settings again answer with it; other settings are refused.
        assert_eq!(
            events
                .create_consumer("t1", new_only.clone())
                .await
                .unwrap(),
            created
        );
        assert!(matches!(
            events
                .create_consumer("t1", ConsumerConfig::new("worker", &[">"]))
                .await,
            Err(EventsError::ConsumerExists(_))
        ));
        publish(&events, "t1", "jobs.new", json!(2)).await;
        let got = events
            .fetch("t1", "worker", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(sequences(&got), [(2, 1)]);

        // Another tenant sees none of it.
        assert!(matches!(
            events.fetch("t2", "worker", 1, Duration::ZERO).await,
            Err(EventsError::NoConsumer(_))
        ));
        assert!(matches!(
            events.ack("t2", "worker", &ids(&got)).await,
            Err(EventsError::NoConsumer(_))
        ));
        assert!(events.consumers("t2").await.unwrap().is_empty());
        assert!(!events.delete_consumer("t2", "worker").await.unwrap());
        assert!(matches!(
            events
                .ack("t1", "worker", &["nonsense".to_string()])
                .await,
            Err(EventsError::Invalid { field, .. }) if field == "delivery_ids[0]"
        ));
        assert!(events.delete_consumer("t1", "worker").await.unwrap());
        assert!(events.consumers("t1").await.unwrap().is_empty());
    }
}
