//! The JSON shapes of durable consumers (`/v1/consumers`).

use std::time::Duration;

use hearth_events::{ConsumerConfig, ConsumerInfo, DeliverPolicy, Delivery};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::wire::OneOrMany;

/// Where a new consumer starts: `"all"` (every kept event), `"new"` (only later ones),
/// `{"from_seq": N}` or `{"from_time": unix_ms}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DeliverIn {
    #[schema(value_type = String, example = "all")]
    Named(String),
    FromSequence {
        from_seq: u64,
    },
    FromTime {
        /// Unix milliseconds.
        from_time: i64,
    },
}

/// `POST /v1/consumers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerIn {
    /// 1 to 64 letters, digits, `-` or `_`; unique in the tenant.
    pub name: String,
    /// One topic pattern or several (`orders.>`, `["a.*", "b.>"]`).
    pub filter: OneOrMany,
    /// Default `"all"`.
    pub deliver: Option<DeliverIn>,
    /// How long a delivery may go unacknowledged before it counts as failed; default 30000.
    pub ack_wait_ms: Option<u64>,
    /// Deliveries of one event before it is dead-lettered; default no limit.
    pub max_deliver: Option<u32>,
    /// Waits before redelivering after a timeout or a `nak` (the n-th failure waits the n-th
    /// entry, the last repeats); default none (at once).
    pub backoff_ms: Option<Vec<u64>>,
    /// Where events that failed `max_deliver` times, or were terminated, are published, with
    /// the reason and the original event.
    pub dead_letter_topic: Option<String>,
    /// Deliveries out at once; default 1000.
    pub max_ack_pending: Option<u32>,
}

impl ConsumerIn {
    /// The domain's settings; a bad `deliver` names the field.
    pub fn into_config(self) -> Result<ConsumerConfig, (String, String)> {
        let filter: Vec<&str> = self.filter.0.iter().map(String::as_str).collect();
        let mut config = ConsumerConfig::new(&self.name, &filter);
        config.deliver = match self.deliver {
            None => DeliverPolicy::All,
            Some(DeliverIn::Named(name)) => match name.as_str() {
                "all" => DeliverPolicy::All,
                "new" => DeliverPolicy::New,
                other => {
                    return Err((
                        "deliver".to_string(),
                        format!(
                            "`{other}` is not a start position; use \"all\", \"new\", \
                             {{\"from_seq\": N}} or {{\"from_time\": unix_ms}}"
                        ),
                    ));
                }
            },
            Some(DeliverIn::FromSequence { from_seq }) => DeliverPolicy::FromSequence(from_seq),
            Some(DeliverIn::FromTime { from_time }) => DeliverPolicy::FromTime(from_time),
        };
        if let Some(ack_wait) = self.ack_wait_ms {
            config.ack_wait = Duration::from_millis(ack_wait);
        }
        config.max_deliver = self.max_deliver;
        config.backoff = self
            .backoff_ms
            .unwrap_or_default()
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        config.dead_letter_topic = self.dead_letter_topic;
        if let Some(max) = self.max_ack_pending {
            config.max_ack_pending = max;
        }
        Ok(config)
    }
}

/// Counters of a consumer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerStateOut {
    /// The next sequence it examines for a first delivery.
    pub next_seq: u64,
    /// Deliveries out and not acknowledged, including those waiting to be redelivered.
    pub ack_pending: u64,
    pub delivered: u64,
    pub redelivered: u64,
    pub acked: u64,
    pub dead_lettered: u64,
}

/// A consumer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerOut {
    /// Always `consumer`.
    pub object: &'static str,
    pub name: String,
    pub filter: Vec<String>,
    #[schema(value_type = Object)]
    pub deliver: Value,
    pub ack_wait_ms: u64,
    pub max_deliver: Option<u32>,
    pub backoff_ms: Vec<u64>,
    pub dead_letter_topic: Option<String>,
    pub max_ack_pending: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    pub state: ConsumerStateOut,
}

impl From<ConsumerInfo> for ConsumerOut {
    fn from(info: ConsumerInfo) -> ConsumerOut {
        let config = info.config;
        ConsumerOut {
            object: "consumer",
            name: config.name,
            filter: config.filter,
            deliver: match config.deliver {
                DeliverPolicy::All => json!("all"),
                DeliverPolicy::New => json!("new"),
                DeliverPolicy::FromSequence(from_seq) => json!({"from_seq": from_seq}),
                DeliverPolicy::FromTime(from_time) => json!({"from_time": from_time}),
            },
            ack_wait_ms: config.ack_wait.as_millis() as u64,
            max_deliver: config.max_deliver,
            backoff_ms: config
                .backoff
                .iter()
                .map(|wait| wait.as_millis() as u64)
                .collect(),
            dead_letter_topic: config.dead_letter_topic,
            max_ack_pending: config.max_ack_pending,
            created_at: info.created_at_ms,
            state: ConsumerStateOut {
                next_seq: info.next_sequence,
                ack_pending: info.ack_pending,
                delivered: info.delivered,
                redelivered: info.redelivered,
                acked: info.acked,
                dead_lettered: info.dead_lettered,
            },
        }
    }
}

/// A list of consumers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<ConsumerOut>,
}

/// What a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerDeleted {
    pub name: String,
    /// Always `consumer.deleted`.
    pub object: &'static str,
    pub deleted: bool,
}

/// `POST /v1/consumers/{name}/fetch`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchIn {
    /// Most events to return, 1 to 1000; default 1.
    pub batch: Option<usize>,
    /// How long to wait when none are at hand, at most 60000; default 0 (answer at once).
    pub wait_ms: Option<u64>,
}

/// One delivered event.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// Names this delivery in ack, nak, term and in_progress.
    pub delivery_id: String,
    /// 1 for the first delivery.
    pub delivery_count: u32,
    /// The event's id (a time-ordered UUID).
    pub id: String,
    pub topic: String,
    pub seq: u64,
    /// Unix milliseconds.
    pub time: i64,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<Delivery> for DeliveryOut {
    fn from(delivery: Delivery) -> DeliveryOut {
        let event = delivery.event;
        DeliveryOut {
            delivery_id: delivery.delivery_id,
            delivery_count: delivery.delivery_count,
            id: event.id,
            topic: event.topic,
            seq: event.sequence,
            time: event.time_ms,
            data: serde_json::from_str(&event.data)
                .unwrap_or_else(|_| Value::String(event.data.to_string())),
        }
    }
}

/// What a fetch answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<DeliveryOut>,
}

/// `POST /v1/consumers/{name}/ack|nak|term|in_progress`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleIn {
    /// The `delivery_id`s a fetch answered.
    pub delivery_ids: Vec<String>,
    /// `nak` only: redeliver after this long instead of the backoff.
    pub delay_ms: Option<u64>,
}

/// What ack, nak, term and in_progress answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettledOut {
    /// Always `consumer.settled`.
    pub object: &'static str,
    /// `ack`, `nak`, `term` or `in_progress`.
    pub action: &'static str,
    /// Deliveries the action applied to; ids already settled or no longer current are
    /// skipped.
    pub count: u64,
}
