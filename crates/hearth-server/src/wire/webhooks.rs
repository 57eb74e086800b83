//! The JSON shapes of webhooks (`/v1/webhooks`).

use hearth_webhooks::{Attempt, DeliveryRecord, Endpoint, EndpointChange};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::wire::OneOrMany;

/// `POST /v1/webhooks` and `PATCH /v1/webhooks/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    /// Where events are posted: http or https, a public address unless the server allows
    /// internal ones.
    pub url: Option<String>,
    /// Topic patterns whose events are sent; default `>` (all).
    pub topics: Option<OneOrMany>,
    pub description: Option<String>,
    /// Default true. Enabling a disabled endpoint sends events from then on.
    pub enabled: Option<bool>,
}

impl From<WebhookIn> for EndpointChange {
    fn from(request: WebhookIn) -> EndpointChange {
        EndpointChange {
            url: request.url,
            topics: request.topics.map(|topics| topics.0),
            description: request.description,
            enabled: request.enabled,
        }
    }
}

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    /// `wh_` and 32 hex digits.
    pub id: String,
    /// Always `webhook`.
    pub object: &'static str,
    pub url: String,
    pub topics: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why Hearth disabled it (410 Gone, failing for days), if it did.
    pub disabled_reason: Option<String>,
    /// Unix milliseconds since which every attempt has failed, if they have.
    pub failing_since: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// `whsec_...`: only on create and on rotate; keep it, it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookOut {
    pub fn with_secret(endpoint: Endpoint, secret: Option<String>) -> WebhookOut {
        WebhookOut {
            id: endpoint.id,
            object: "webhook",
            url: endpoint.url,
            topics: endpoint.topics,
            description: endpoint.description,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            failing_since: endpoint.failing_since_ms,
            created_at: endpoint.created_at_ms,
            updated_at: endpoint.updated_at_ms,
            secret,
        }
    }
}

impl From<Endpoint> for WebhookOut {
    fn from(endpoint: Endpoint) -> WebhookOut {
        WebhookOut::with_secret(endpoint, None)
    }
}

/// A list of webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<WebhookOut>,
}

/// What a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeleted {
    pub id: String,
    /// Always `webhook.deleted`.
    pub object: &'static str,
    pub deleted: bool,
}

/// One attempt to deliver an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub attempt: u32,
    /// Unix milliseconds.
    pub at: i64,
    /// The HTTP status, or null when no answer came.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The answer's first bytes (at most 1 KiB).
    pub response: Option<String>,
    /// Why no usable answer came.
    pub error: Option<String>,
    /// `scheduled` or `manual`.
    pub trigger: String,
}

impl From<Attempt> for AttemptOut {
    fn from(attempt: Attempt) -> AttemptOut {
        AttemptOut {
            attempt: attempt.attempt,
            at: attempt.at_ms,
            status_code: attempt.status_code,
            latency_ms: attempt.latency_ms,
            response: attempt.response,
            error: attempt.error,
            trigger: attempt.trigger,
        }
    }
}

/// One event delivered (or being delivered) to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryRecordOut {
    /// `whd_` and 32 hex digits.
    pub id: String,
    /// Always `webhook.delivery`.
    pub object: &'static str,
    /// The event's id, sent as `webhook-id`.
    pub event_id: String,
    pub seq: u64,
    pub topic: String,
    /// `pending` (retries to come), `succeeded` or `failed` (out of attempts).
    pub status: String,
    pub attempts: Vec<AttemptOut>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<DeliveryRecord> for DeliveryRecordOut {
    fn from(record: DeliveryRecord) -> DeliveryRecordOut {
        DeliveryRecordOut {
            id: record.id,
            object: "webhook.delivery",
            event_id: record.event_id,
            seq: record.event_seq,
            topic: record.topic,
            status: record.status,
            attempts: record.attempts.into_iter().map(AttemptOut::from).collect(),
            created_at: record.created_at_ms,
            updated_at: record.updated_at_ms,
        }
    }
}

/// An endpoint's deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryRecordList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<DeliveryRecordOut>,
}

/// `GET /v1/webhooks/{id}/deliveries` query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// 1 to 1000; default 100.
    pub limit: Option<usize>,
}
