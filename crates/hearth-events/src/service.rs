//! The events service: publishing (checked against the topic's rules, made durable, then
//! fanned out live), subscribing, and following a stream from a sequence without a gap
//! between what the log replays and what arrives live.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::topics::TopicConfig;
use crate::{
    Appended, Bus, CloseReason, EventLog, LogError, NewEvent, Pattern, StoredEvent, Subscription,
    Topic, TopicError, TopicRules, Violation,
};

/// Why a publish or subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// A topic or pattern is malformed; `field` names it (`events[2].topic`).
    #[error("invalid `{field}`: {source}")]
    Topic {
        field: String,
        #[source]
        source: TopicError,
    },
    /// The data does not satisfy the topic's schema.
    #[error("`{field}` does not match the schema of `{pattern}`: {violation}")]
    Schema {
        field: String,
        pattern: String,
        violation: Violation,
    },
    /// The tenant's log holds as many bytes as it may.
    #[error(
        "this tenant's event log holds {held} bytes, and {adding} more would pass its cap of \
         {max} (events.max_bytes_per_tenant); set retention on its topics \
         (PUT /v1/topics/{{pattern}}) so old events make room"
    )]
    LogFull { held: u64, adding: u64, max: u64 },
    /// An event's data is larger than the limit.
    #[error("`{field}` is {bytes} bytes; events carry at most {max} bytes of data")]
    TooLarge {
        field: String,
        bytes: usize,
        max: usize,
    },
    /// A topic's schema is not a valid JSON Schema.
    #[error("invalid `schema`: {0}")]
    BadSchema(String),
    /// A field of a request is out of its range; the message says what it takes.
    #[error("invalid `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("no consumer named `{0}` in this tenant")]
    NoConsumer(String),
    #[error(
        "a consumer named `{0}` exists with other settings; delete it first (DELETE \
         /v1/consumers/{0}) or pick another name"
    )]
    ConsumerExists(String),
    #[error("this tenant has {max} consumers, the most it may (events.max_consumers_per_tenant)")]
    TooManyConsumers { max: u32 },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Limits of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsOptions {
    /// The largest event data, as JSON text.
    pub max_event_bytes: usize,
    /// Messages a live subscription may fall behind before it is closed.
    pub subscription_queue: usize,
    /// The most bytes of event data one tenant's log may hold. Publishes racing each other
    /// may pass it by what they carry; it bounds the disk, not billing.
    pub max_bytes_per_tenant: u64,
    /// The most durable consumers one tenant may have.
    pub max_consumers_per_tenant: u32,
}

impl Default for EventsOptions {
    fn default() -> EventsOptions {
        EventsOptions {
            max_event_bytes: 1 << 20,
            subscription_queue: 1024,
            max_bytes_per_tenant: 1 << 30,
            max_consumers_per_tenant: 256,
        }
    }
}

/// An event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub topic: String,
    pub data: Value,
    pub idempotency_key: Option<String>,
}

type Buses = Arc<Mutex<HashMap<String, Bus<Arc<StoredEvent>>>>>;

/// The events service over the durable log, one live bus and one rule set per tenant.
/// Durable events reach the bus from the log's writer, right after their commit, so live
/// subscribers see each tenant's events in sequence order.
#[derive(Debug)]
pub struct Events {
    pub(crate) log: EventLog,
    pub(crate) options: EventsOptions,
    buses: Buses,
    rules: Mutex<HashMap<String, Arc<TopicRules>>>,
    /// Each tenant's stored bytes as last read or since counted up by publishes, so the cap
    /// check costs no query per publish; retention's trims drop the entry (read again).
    held_bytes: Mutex<HashMap<String, u64>>,
}

/// A live subscription that first replays the log from a sequence: events in sequence order,
/// none missed and none twice across the switch from replay to live. The log is read a page
/// at a time as the follower takes events, so a replay of millions holds one page in memory.
#[derive(Debug)]
pub struct Follow {
    live: Subscription<Arc<StoredEvent>>,
    /// To subscribe again when the live queue overflowed during a long replay.
    bus: Bus<Arc<StoredEvent>>,
    capacity: usize,
    log: EventLog,
    tenant_id: String,
    /// Set when retention deleted events at or after the asked-for sequence: the highest
    /// sequence deleted.
    gap: Option<u64>,
    /// The next sequence to read from the log, while replaying.
    replay_from: Option<u64>,
    /// The page of replayed events not yet handed out.
    backlog: std::collections::VecDeque<StoredEvent>,
    /// The highest sequence handed out (live events at or below it were replayed).
    handed_out: u64,
}

/// Events read from the log per page of a replay.
const REPLAY_PAGE: usize = 1024;

impl Follow {
    /// When retention has deleted events at or after the sequence asked for, the highest
    /// sequence it deleted: some events the follower wanted may be gone (those deleted may
    /// also have been on other topics). Readers must be told, never left to skip silently.
    pub fn gap(&self) -> Option<u64> {
        self.gap
    }

    /// The next event, or why the subscription ended. Live events are the bus's shared copy
    /// (a fan-out to many followers copies nothing).
    pub async fn next(&mut self) -> Result<Arc<StoredEvent>, CloseReason> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.handed_out = event.sequence;
                return Ok(Arc::new(event));
            }
            let Some(from) = self.replay_from else {
                break;
            };
            // Durable events that arrived live are in the log too (the bus hears of an event
            // after its commit): drop them before the read, so the live queue never fills up
            // during a long replay. Events that are not durable are handed out as they come.
            while let Some(event) = self.live.try_next() {
                if event.sequence == 0 {
                    return Ok(event);
                }
            }
            let filter = self.live.patterns().to_vec();
            // Overflowed while the follower was busy with the replay: what it missed live is
            // in the log, which is read after the new subscription starts.
            if self.live.close_reason() == Some(CloseReason::SlowConsumer) {
                self.live = self.bus.subscribe_any(filter.clone(), self.capacity);
            }
            let page = self
                .log
                .read(&self.tenant_id, from, REPLAY_PAGE, Some(&filter))
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "replaying the event log failed");
                    CloseReason::ReplayFailed
                })?;
            match page.last() {
                Some(last) => self.replay_from = Some(last.sequence + 1),
                // Caught up: from here on, live events (those replayed are skipped).
                None => self.replay_from = None,
            }
            self.backlog.extend(page);
        }
        loop {
            let event = self.live.next().await?;
            // Events that are not durable have no sequence, and are never replayed.
            if event.sequence == 0 {
                return Ok(event);
            }
            if event.sequence > self.handed_out {
                self.handed_out = event.sequence;
                return Ok(event);
            }
        }
    }
}

impl Events {
    /// The service over the log in `data_dir`.
    pub async fn open(
        data_dir: &std::path::Path,
        options: EventsOptions,
    ) -> Result<Events, EventsError> {
        let buses: Buses = Arc::default();
        let deliver = Arc::clone(&buses);
        let hook: crate::log::CommitHook = Arc::new(move |event: &StoredEvent| {
            let bus = deliver
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&event.tenant_id)
                .cloned();
            if let (Some(bus), Ok(topic)) = (bus, Topic::parse(&event.topic)) {
                bus.publish(&topic, Arc::new(event.clone()));
            }
        });
        let log = EventLog::open_with_hook(data_dir, Some(hook)).await?;
        let mut rules = HashMap::new();
        for tenant_id in log.tenants_with_topics().await? {
            let configs = log.topics(&tenant_id).await?;
            rules.insert(tenant_id, Arc::new(crate::topics::rules_of(configs)));
        }
        Ok(Events {
            log,
            options,
            buses,
            rules: Mutex::new(rules),
            held_bytes: Mutex::default(),
        })
    }

    /// Sets a tenant's settings for a topic pattern (replacing earlier ones): the schema is
    /// checked, the settings stored, and publishes from then on follow them.
    pub async fn put_topic(
        &self,
        tenant_id: &str,
        config: TopicConfig,
    ) -> Result<TopicConfig, EventsError> {
        Pattern::parse(&config.pattern).map_err(|source| EventsError::Topic {
            field: "pattern".to_string(),
            source,
        })?;
        if let Some(schema) = &config.schema {
            crate::EventSchema::compile(schema.clone())
                .map_err(|error| EventsError::BadSchema(error.0))?;
        }
        self.log
            .save_topic(tenant_id, &config, crate::log::now_ms())
            .await?;
        self.reload_rules(tenant_id).await?;
        Ok(config)
    }

    /// A tenant's settings for exactly `pattern`.
    pub async fn topic(
        &self,
        tenant_id: &str,
        pattern: &str,
    ) -> Result<Option<TopicConfig>, EventsError> {
        Ok(self
            .log
            .topics(tenant_id)
            .await?
            .into_iter()
            .find(|config| config.pattern == pattern))
    }

    /// Removes a tenant's settings for `pattern`; false when there were none.
    pub async fn delete_topic(&self, tenant_id: &str, pattern: &str) -> Result<bool, EventsError> {
        let deleted = self.log.delete_topic(tenant_id, pattern).await?;
        if deleted {
            self.reload_rules(tenant_id).await?;
        }
        Ok(deleted)
    }

    async fn reload_rules(&self, tenant_id: &str) -> Result<(), EventsError> {
        let configs = self.log.topics(tenant_id).await?;
        self.set_rules(tenant_id, crate::topics::rules_of(configs));
        Ok(())
    }

    pub(crate) fn bus(&self, tenant_id: &str) -> Bus<Arc<StoredEvent>> {
        self.buses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(tenant_id.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn rules(&self, tenant_id: &str) -> Option<Arc<TopicRules>> {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant_id)
            .cloned()
    }

    /// Replaces a tenant's topic rules.
    pub fn set_rules(&self, tenant_id: &str, rules: TopicRules) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant_id.to_string(), Arc::new(rules));
    }

    /// Publishes events in order, all or none: each is checked (topic, size, schema) before
    /// anything is written, made durable, and then delivered to live subscriptions. A
    /// duplicate (same idempotency key within the window) answers with the first event and is
    /// not delivered again. Events of a topic whose rules say not durable are delivered live
    /// only, with sequence 0. Errors name `field[i].topic` (`field.topic` for one event, and
    /// plain `topic` with an empty `field`, when the request is the event itself).
    pub async fn publish(
        &self,
        tenant_id: &str,
        events: Vec<Publish>,
        field: &str,
    ) -> Result<Vec<Appended>, EventsError> {
        let rules = self.rules(tenant_id);
        let single = events.len() == 1;
        let mut checked = Vec::with_capacity(events.len());
        for (position, event) in events.into_iter().enumerate() {
            // Without a field, the request is the event: its fields are `topic` and `data`.
            let at = |name: &str| match (field.is_empty(), single) {
                (true, _) => name.to_string(),
                (false, true) => format!("{field}.{name}"),
                (false, false) => format!("{field}[{position}].{name}"),
            };
            let topic = Topic::parse(&event.topic).map_err(|source| EventsError::Topic {
                field: at("topic"),
                source,
            })?;
            let data = event.data.to_string();
            if data.len() > self.options.max_event_bytes {
                return Err(EventsError::TooLarge {
                    field: at("data"),
                    bytes: data.len(),
                    max: self.options.max_event_bytes,
                });
            }
            let mut durable = true;
            let mut rule = None;
            if let Some((pattern, settings)) =
                rules.as_ref().and_then(|rules| rules.for_topic(&topic))
            {
                durable = settings.durable;
                rule = Some(pattern.to_string());
                if let Some(schema) = &settings.schema {
                    schema
                        .check(&event.data)
                        .map_err(|violation| EventsError::Schema {
                            field: at("data"),
                            pattern: pattern.to_string(),
                            violation,
                        })?;
                }
            }
            checked.push((
                NewEvent {
                    tenant_id: tenant_id.to_string(),
                    topic,
                    data,
                    idempotency_key: event.idempotency_key,
                    rule,
                },
                durable,
            ));
        }
        let durable: Vec<NewEvent> = checked
            .iter()
            .filter(|(_, durable)| *durable)
            .map(|(event, _)| event.clone())
            .collect();
        let adding: u64 = durable.iter().map(|event| event.data.len() as u64).sum();
        if adding > 0 {
            let known = self
                .held_bytes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(tenant_id)
                .copied();
            let held = match known {
                Some(held) => held,
                None => {
                    let held = self.log.stream_bytes(tenant_id).await?;
                    self.held_bytes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(tenant_id.to_string(), held);
                    held
                }
            };
            let max = self.options.max_bytes_per_tenant;
            if held.saturating_add(adding) > max {
                return Err(EventsError::LogFull { held, adding, max });
            }
        }
        // The log's writer delivers the durable ones live after their commit.
        let appended = self.log.append(durable).await?;
        let added: u64 = appended
            .iter()
            .filter(|appended| !appended.duplicate)
            .map(|appended| appended.event.data.len() as u64)
            .sum();
        if let Some(held) = self
            .held_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(tenant_id)
        {
            *held += added;
        }
        let mut stored = appended.into_iter();
        let bus = self.bus(tenant_id);
        let mut answers = Vec::with_capacity(checked.len());
        for (event, durable) in checked {
            if durable {
                answers.push(stored.next().ok_or(LogError::Closed)?);
            } else {
                let appended = Appended {
                    event: StoredEvent {
                        tenant_id: tenant_id.to_string(),
                        sequence: 0,
                        id: uuid::Uuid::now_v7().to_string(),
                        topic: event.topic.as_str().to_string(),
                        time_ms: crate::log::now_ms(),
                        data: Arc::from(event.data.as_str()),
                    },
                    duplicate: false,
                };
                bus.publish(&event.topic, Arc::new(appended.event.clone()));
                answers.push(appended);
            }
        }
        Ok(answers)
    }

    /// A live subscription to a tenant's events matching any of `patterns`.
    pub fn subscribe(
        &self,
        tenant_id: &str,
        patterns: &[&str],
    ) -> Result<Subscription<Arc<StoredEvent>>, EventsError> {
        if patterns.is_empty() {
            return Err(EventsError::Topic {
                field: "topics".to_string(),
                source: TopicError::Empty,
            });
        }
        let patterns = patterns
            .iter()
            .map(|pattern| {
                Pattern::parse(pattern).map_err(|source| EventsError::Topic {
                    field: "topics".to_string(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .bus(tenant_id)
            .subscribe_any(patterns, self.options.subscription_queue))
    }

    /// Events matching any of `patterns` from `from_sequence` on: first those in the log,
    /// then live ones, with nothing missed or repeated in between (it subscribes before it
    /// reads).
    pub async fn follow(
        &self,
        tenant_id: &str,
        patterns: &[&str],
        from_sequence: u64,
    ) -> Result<Follow, EventsError> {
        let live = self.subscribe(tenant_id, patterns)?;
        let evicted = self.log.evicted_through(tenant_id).await?;
        let gap = (from_sequence.max(1) <= evicted).then_some(evicted);
        Ok(Follow {
            live,
            bus: self.bus(tenant_id),
            capacity: self.options.subscription_queue,
            log: self.log.clone(),
            tenant_id: tenant_id.to_string(),
            gap,
            replay_from: Some(from_sequence.max(1)),
            backlog: std::collections::VecDeque::new(),
            handed_out: from_sequence.saturating_sub(1),
        })
    }

    /// Applies every tenant's retention settings to the log; returns how many events went.
    pub async fn enforce_retention(&self) -> Result<u64, EventsError> {
        let rules: Vec<(String, Arc<TopicRules>)> = self
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(tenant, rules)| (tenant.clone(), Arc::clone(rules)))
            .collect();
        let now = crate::log::now_ms();
        let mut deleted = 0;
        for (tenant_id, rules) in rules {
            for (pattern, settings) in rules.iter() {
                if settings.retention != crate::Retention::default() {
                    let trimmed = self
                        .log
                        .trim(&tenant_id, pattern.as_str(), &settings.retention, now)
                        .await?;
                    if trimmed > 0 {
                        self.held_bytes
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&tenant_id);
                    }
                    deleted += trimmed;
                }
            }
        }
        Ok(deleted)
    }

    /// Enforces retention every `every` while the service lives.
    pub fn spawn_retention(self: &Arc<Self>, every: std::time::Duration) {
        let events = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let Some(events) = events.upgrade() else {
                    return;
                };
                match events.enforce_retention().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "retention removed events"),
                    Err(error) => tracing::warn!(%error, "enforcing event retention failed"),
                }
            }
        });
    }

    /// The service's limits.
    pub fn options(&self) -> EventsOptions {
        self.options
    }

    /// A tenant's stored event with this sequence, if it is still kept.
    pub async fn event(
        &self,
        tenant_id: &str,
        sequence: u64,
    ) -> Result<Option<StoredEvent>, EventsError> {
        let found = self.log.read(tenant_id, sequence, 1, None).await?;
        Ok(found.into_iter().find(|event| event.sequence == sequence))
    }

    /// A tenant's newest sequence.
    pub async fn last_sequence(&self, tenant_id: &str) -> Result<u64, EventsError> {
        Ok(self.log.last_sequence(tenant_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{EventSchema, Retention, TopicSettings};

    async fn events(dir: &std::path::Path) -> Events {
        Events::open(dir, EventsOptions::default()).await.unwrap()
    }

    fn publish(topic: &str, data: Value) -> Publish {
        Publish {
            topic: topic.to_string(),
            data,
            idempotency_key: None,
        }
    }

    #[tokio::test]
    async fn published_events_are_durable_then_live_and_tenants_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        let mut mine = events.subscribe("t1", &["agent.>"]).unwrap();
        let mut theirs = events.subscribe("t2", &[">"]).unwrap();
        let answer = events
            .publish(
                "t1",
                vec![publish("agent.task.done", json!({"ok": true}))],
                "",
            )
            .await
            .unwrap();
        assert_eq!(answer[0].event.sequence, 1);
        let live = mine.next().await.unwrap();
        assert_eq!((live.sequence, &*live.data), (1, r#"{"ok":true}"#));
        assert!(theirs.try_next().is_none(), "another tenant saw the event");
    }

    #[tokio::test]
    async fn bad_events_are_refused_whole_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        let mut rules = TopicRules::new();
        rules.set(
            Pattern::parse("emotion.*").unwrap(),
            TopicSettings {
                schema: Some(
                    EventSchema::compile(json!({
                        "type": "object", "required": ["level"],
                        "properties": {"level": {"type": "number"}}
                    }))
                    .unwrap(),
                ),
                retention: Retention::default(),
                durable: true,
            },
        );
        events.set_rules("t1", rules);
        let error = events
            .publish(
                "t1",
                vec![
                    publish("emotion.joy", json!({"level": 1})),
                    publish("emotion.fear", json!({"level": "high"})),
                ],
                "events",
            )
            .await
            .unwrap_err();
        match &error {
            EventsError::Schema {
                field, violation, ..
            } => {
                assert_eq!(field, "events[1].data");
                assert_eq!(violation.path, "/level");
            }
            other => panic!("{other:?}"),
        }
        let error = events
            .publish("t1", vec![publish("a..b", json!(1))], "topic")
            .await
            .unwrap_err();
        assert!(matches!(&error, EventsError::Topic { field, .. } if field == "topic.topic"));
        // Nothing of the refused batches was stored.
        assert_eq!(events.last_sequence("t1").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn topic_settings_are_stored_applied_and_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        let config = TopicConfig {
            pattern: "emotion.*".to_string(),
            schema: Some(json!({"type": "object", "required": ["level"]})),
            retention: Retention::default(),
            durable: true,
        };
        events.put_topic("t1", config.clone()).await.unwrap();
        assert!(matches!(
            events
                .put_topic(
                    "t1",
                    TopicConfig {
                        schema: Some(json!({"type": 7})),
                        ..config.clone()
                    }
                )
                .await,
            Err(EventsError::BadSchema(_))
        ));
        let refused = events
            .publish("t1", vec![publish("emotion.joy", json!({}))], "")
            .await;
        assert!(
            matches!(refused, Err(EventsError::Schema { .. })),
            "{refused:?}"
        );
        // Another tenant has no such rule.
        events
            .publish("t2", vec![publish("emotion.joy", json!({}))], "")
            .await
            .unwrap();
        drop(events);

        let events = Events::open(dir.path(), EventsOptions::default())
            .await
            .unwrap();
        assert_eq!(events.topic("t1", "emotion.*").await.unwrap(), Some(config));
        assert!(
            events
                .publish("t1", vec![publish("emotion.joy", json!({}))], "")
                .await
                .is_err(),
            "the rule came back with the restart"
        );
        assert!(events.delete_topic("t1", "emotion.*").await.unwrap());
        assert!(!events.delete_topic("t1", "emotion.*").await.unwrap());
        events
            .publish("t1", vec![publish("emotion.joy", json!({}))], "")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn retention_trims_the_log_and_a_follower_from_before_it_is_told_of_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        events
            .put_topic(
                "t1",
                TopicConfig {
                    pattern: "metrics.>".to_string(),
                    schema: None,
                    retention: Retention {
                        max_events: Some(1),
                        ..Retention::default()
                    },
                    durable: true,
                },
            )
            .await
            .unwrap();
        for n in 1..=3 {
            events
                .publish("t1", vec![publish("metrics.cpu", json!(n))], "")
                .await
                .unwrap();
        }
        assert_eq!(events.enforce_retention().await.unwrap(), 2);
        let mut follow = events.follow("t1", &["metrics.>"], 1).await.unwrap();
        assert_eq!(follow.gap(), Some(2));
        assert_eq!(follow.next().await.unwrap().sequence, 3);
        // From after the gap, nothing is missing.
        let after = events.follow("t1", &["metrics.>"], 3).await.unwrap();
        assert_eq!(after.gap(), None);
    }

    #[tokio::test]
    async fn a_tenant_at_its_log_cap_is_refused_until_retention_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let options = EventsOptions {
            max_bytes_per_tenant: 8,
            ..EventsOptions::default()
        };
        let events = Events::open(dir.path(), options).await.unwrap();
        events
            .put_topic(
                "t1",
                TopicConfig {
                    pattern: "a.>".to_string(),
                    schema: None,
                    retention: Retention {
                        max_events: Some(1),
                        ..Retention::default()
                    },
                    durable: true,
                },
            )
            .await
            .unwrap();
        // "1234" is 4 bytes of JSON.
        for _ in 0..2 {
            events
                .publish("t1", vec![publish("a.b", json!(1234))], "")
                .await
                .unwrap();
        }
        let full = events
            .publish("t1", vec![publish("a.b", json!(1234))], "")
            .await;
        assert!(
            matches!(full, Err(EventsError::LogFull { held: 8, .. })),
            "{full:?}"
        );
        // Another tenant has its own cap.
        events
            .publish("t2", vec![publish("a.b", json!(1234))], "")
            .await
            .unwrap();
        events.enforce_retention().await.unwrap();
        events
            .publish("t1", vec![publish("a.b", json!(1234))], "")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_long_replay_holds_one_page_and_survives_live_events_overflowing_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        let batch = |from: u64, count: u64| {
            (from..from + count)
                .map(|n| publish("a.b", json!(n)))
                .collect::<Vec<_>>()
        };
        events
            .publish("t1", batch(0, 3000), "events")
            .await
            .unwrap();
        let mut follow = events.follow("t1", &["a.>"], 1).await.unwrap();
        // More arrive live than the subscription's queue holds, before the follower reads.
        for start in (3000..5000).step_by(500) {
            events
                .publish("t1", batch(start, 500), "events")
                .await
                .unwrap();
        }
        for expected in 1..=5000 {
            let event = follow.next().await.unwrap();
            assert_eq!(event.sequence, expected);
        }
        events
            .publish("t1", batch(5000, 1), "events")
            .await
            .unwrap();
        assert_eq!(follow.next().await.unwrap().sequence, 5001);
    }

    #[tokio::test]
    async fn following_from_a_sequence_replays_then_goes_live_without_gaps_or_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let events = events(dir.path()).await;
        for n in 1..=5 {
            events
                .publish("t1", vec![publish("a.b", json!(n))], "")
                .await
                .unwrap();
        }
        events
            .publish("t1", vec![publish("other", json!(0))], "")
            .await
            .unwrap();
        let mut follow = events.follow("t1", &["a.>", "a.b"], 3).await.unwrap();
        for n in 7..=8 {
            events
                .publish("t1", vec![publish("a.b", json!(n))], "")
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(follow.next().await.unwrap().sequence);
        }
        assert_eq!(seen, [3, 4, 5, 7, 8]);
    }
}
