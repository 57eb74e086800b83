//! Hearth's gateway: who may call the server and how much.
//!
//! - [`keys`]: API keys (`hk_…`), shown once, stored as sha256 hashes with a visible prefix.
//! - [`Authenticator`]: turns a presented key into a [`Principal`] (tenant, role, limits) from
//!   an in-memory copy of the key table, refreshed when the store's gateway revision moves, so
//!   a request never waits on the database and keys made by the CLI apply within a second.
//! - [`OidcVerifier`]: bearer JWTs of an OIDC issuer (keys from its JWKS) as an alternative to
//!   keys; claims name the tenant and the role.
//! - [`Limiter`]: requests/min (GCRA), tokens/min (token bucket) and concurrent requests per
//!   key, tenant and client IP, plus daily and monthly token quotas; sharded maps, O(1) per
//!   request, no global lock.
//! - [`UsageRecorder`]: one usage record per request, written to the store off the request
//!   path in batches.
//! - [`ResponseCache`]: exact and semantic response caches per tenant, bounded and expiring.
//! - [`Gateway`]: the administrative operations (tenants, their users, keys, usage) shared by
//!   the admin API and the `hearth keys` CLI, each checked against the caller's scope and
//!   audited.
//!
//! This crate knows nothing of HTTP: the server maps its errors and decisions to responses.

mod admin;
mod authenticator;
mod cache;
mod error;
pub mod keys;
mod limits;
mod oidc;
mod prices;
mod principal;
mod usage;

pub use admin::{Actor, CreatedKey, Gateway, KeySpec, KeyView, TenantView, UsageReport, UserView};
pub use authenticator::{AuthError, Authenticator};
pub use cache::{CacheSettings, CachedAnswer, ResponseCache};
pub use error::GatewayError;
pub use limits::{Admission, LimitDefaults, LimitExceeded, LimitKind, LimitStatus, Limiter};
pub use oidc::{OidcSettings, OidcVerifier, looks_like_jwt};
pub use prices::{Price, Prices};
pub use principal::{Limits, Principal, Role};
pub use usage::{UsageEvent, UsageRecorder};

/// Milliseconds since the Unix epoch, the gateway's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
