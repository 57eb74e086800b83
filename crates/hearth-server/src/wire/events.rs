//! The JSON shapes of the events API (`/v1/events`).

use hearth_events::Appended;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a publish answers for each event.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedOut {
    /// A time-ordered UUID.
    pub id: String,
    pub topic: String,
    /// Its place in the tenant's stream, from 1; 0 for a topic whose events are not kept.
    pub seq: u64,
    /// Unix milliseconds.
    pub time: i64,
    /// True when an earlier publish with the same idempotency key is the answer.
    pub duplicate: bool,
}

impl From<Appended> for PublishedOut {
    fn from(appended: Appended) -> PublishedOut {
        PublishedOut {
            id: appended.event.id,
            topic: appended.event.topic,
            seq: appended.event.sequence,
            time: appended.event.time_ms,
            duplicate: appended.duplicate,
        }
    }
}

/// One event of a batch publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// `.`-separated tokens, no wildcards.
    pub topic: String,
    /// The event's data: any JSON.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Publishes with the same key within two minutes are one event.
    pub idempotency_key: Option<String>,
}

/// `POST /v1/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBatch {
    /// Published in order, all or none.
    pub events: Vec<EventIn>,
}

/// What a batch publish answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<PublishedOut>,
}

/// `GET /v1/events/stream` query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Comma-separated patterns: `a.*,b.>`.
    pub topics: String,
    /// Replay kept events from this sequence before going live; without it (and without a
    /// `Last-Event-ID` header) only new events come.
    pub from_seq: Option<u64>,
}

/// How long and how much of a topic's events are kept.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionIo {
    pub max_age_s: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_events: Option<u64>,
}

/// `PUT /v1/topics/{pattern}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicIn {
    /// A JSON Schema every published event's data must satisfy.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    pub retention: Option<RetentionIo>,
    /// Kept in the log (replay, resume); default true. Not durable: delivered live only.
    pub durable: Option<bool>,
}

/// A topic pattern's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicOut {
    /// Always `topic`.
    pub object: &'static str,
    pub pattern: String,
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    pub retention: RetentionIo,
    pub durable: bool,
}

impl From<hearth_events::TopicConfig> for TopicOut {
    fn from(config: hearth_events::TopicConfig) -> TopicOut {
        TopicOut {
            object: "topic",
            pattern: config.pattern,
            schema: config.schema,
            retention: RetentionIo {
                max_age_s: config.retention.max_age.map(|age| age.as_secs()),
                max_bytes: config.retention.max_bytes,
                max_events: config.retention.max_events,
            },
            durable: config.durable,
        }
    }
}

/// What a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDeleted {
    pub pattern: String,
    /// Always `topic.deleted`.
    pub object: &'static str,
    pub deleted: bool,
}
