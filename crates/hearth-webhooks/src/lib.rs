//! Hearth's webhooks (product.md C5): a tenant's events posted to URLs it registers, signed
//! per the Standard Webhooks specification, retried on Svix's schedule, and logged.
//!
//! - Each endpoint is fed by one of Hearth's own durable consumers in `hearth-events`
//!   (`_webhook_<id>`, invisible to the consumers API): what an endpoint has not yet
//!   received survives a crash and is delivered after it, and retries are the consumer's
//!   `nak` with the schedule's wait (jittered), or the endpoint's `Retry-After`.
//! - [`sign`]: `whsec_` secrets, `v1,` HMAC-SHA256 signatures of `id.timestamp.body`, one per
//!   secret during a rotation's grace period.
//! - `hearth-egress`: deliveries never reach loopback, private or link-local addresses unless
//!   configured, checked on IP literals and inside the client's DNS step; no redirects.
//! - `410 Gone` disables an endpoint at once; failing without a success for days disables it
//!   too; both publish `hearth.webhook.disabled` in its tenant.
//! - A delivery log (`webhooks.db`): each event delivered to an endpoint, each attempt's
//!   status, latency and first bytes of the answer, and manual redelivery.
//!
//! Knows nothing of Hearth's HTTP server; it is an HTTP client.

mod service;
pub mod sign;
mod store;

pub use service::{EndpointChange, SVIX_SCHEDULE, Webhooks, WebhooksError, WebhooksOptions};
pub use store::{Attempt, DeliveryRecord, Endpoint, LOG_KEPT, WEBHOOKS_FILE};
