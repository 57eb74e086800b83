//! The admin API's JSON shapes. Keys are shown with their visible prefix only, except in the
//! one response that creates them.

use hearth_gateway::{CreatedKey, KeyView, Limits, TenantView, UserView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schema;

/// `{"object": "list", "data": [...]}`, as OpenAI lists things.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub object: &'static str,
    pub data: Vec<T>,
}

impl<T> List<T> {
    pub fn of(items: impl IntoIterator<Item = T>) -> List<T> {
        List {
            object: "list",
            data: items.into_iter().collect(),
        }
    }
}

/// Limits in and out; absent or null means none.
#[derive(Debug, Default, Deserialize, Serialize, Clone, Copy, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsIo {
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub max_concurrent: Option<u64>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub tokens_per_day: Option<u64>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub tokens_per_month: Option<u64>,
    /// Spending per month (UTC) in US dollars, priced by the `[[prices]]` table.
    pub budget_usd_per_month: Option<f64>,
}

fn micro_usd(dollars: Option<f64>) -> Option<u64> {
    dollars
        .filter(|dollars| dollars.is_finite() && *dollars >= 0.0)
        .map(|dollars| (dollars * 1_000_000.0).round() as u64)
}

impl From<LimitsIo> for Limits {
    fn from(limits: LimitsIo) -> Limits {
        Limits {
            requests_per_minute: limits.requests_per_minute,
            tokens_per_minute: limits.tokens_per_minute,
            max_concurrent: limits.max_concurrent,
            tokens_per_day: limits.tokens_per_day,
            tokens_per_month: limits.tokens_per_month,
            budget_micro_usd_per_month: micro_usd(limits.budget_usd_per_month),
        }
    }
}

impl From<Limits> for LimitsIo {
    fn from(limits: Limits) -> LimitsIo {
        LimitsIo {
            requests_per_minute: limits.requests_per_minute,
            tokens_per_minute: limits.tokens_per_minute,
            max_concurrent: limits.max_concurrent,
            tokens_per_day: limits.tokens_per_day,
            tokens_per_month: limits.tokens_per_month,
            budget_usd_per_month: limits
                .budget_micro_usd_per_month
                .map(|micro| micro as f64 / 1_000_000.0),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// 1 to 64 lowercase letters, digits, `-` or `_`.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    pub limits: Option<LimitsIo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    pub id: String,
    pub object: &'static str,
    pub name: String,
    pub created_at_ms: i64,
    pub limits: LimitsIo,
}

impl From<TenantView> for TenantOut {
    fn from(tenant: TenantView) -> TenantOut {
        TenantOut {
            id: tenant.id,
            object: "tenant",
            name: tenant.name,
            created_at_ms: tenant.created_at_ms,
            limits: tenant.limits.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TenantFilter {
    pub tenant: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// The tenant's name. Only a tenant's admin may omit it, for its own tenant.
    #[schema(required = true, nullable = false)]
    pub tenant: Option<String>,
    /// 1 to 128 letters, digits, `-`, `_`, `.`, `@` or `+`: a login, an email address.
    #[schema(pattern = "^[A-Za-z0-9._@+-]{1,128}$")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub object: &'static str,
    pub name: String,
    pub tenant: String,
    pub tenant_id: String,
    pub created_at_ms: i64,
}

impl From<UserView> for UserOut {
    fn from(user: UserView) -> UserOut {
        UserOut {
            id: user.id,
            object: "user",
            name: user.name,
            tenant: user.tenant_name,
            tenant_id: user.tenant_id,
            created_at_ms: user.created_at_ms,
        }
    }
}

/// A deleted user and how many of its keys were revoked with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedUserOut {
    #[serde(flatten)]
    pub user: UserOut,
    pub deleted: bool,
    pub revoked_keys: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    /// The tenant's name; a tenant's admin may omit it for its own tenant. A key without a
    /// tenant is an instance admin key.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub tenant: Option<String>,
    /// The name of the tenant's user the key is for (made first with POST /admin/v1/users).
    #[schema(pattern = "^[A-Za-z0-9._@+-]{1,128}$")]
    pub user: Option<String>,
    pub name: Option<String>,
    #[schema(schema_with = schema::key_role)]
    pub role: Option<String>,
    #[schema(schema_with = schema::scopes)]
    pub scopes: Option<Vec<String>>,
    pub limits: Option<LimitsIo>,
    /// The key's lifetime; none for a key that does not expire.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub expires_in_seconds: Option<i64>,
}

schema::checked_body!(
    /// [`KeyIn`] with the rule the gateway adds: a key without a tenant is an instance admin
    /// key, so it has the admin role and no user. (A tenant's admin may leave out its own
    /// tenant; the document gives the rule for every caller.)
    KeyBody = KeyIn,
    [schema::one_of_holds([
        schema::present("tenant", schema::string()),
        schema::present("role", schema::strings_of(&["admin"])).property("user", schema::null()),
    ])]
);

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// How long the old key stays valid (default 86400, a day).
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    pub id: String,
    pub object: &'static str,
    pub prefix: String,
    pub tenant: Option<String>,
    pub tenant_id: Option<String>,
    pub user: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub role: &'static str,
    pub scopes: Vec<String>,
    pub limits: LimitsIo,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub rotated_to: Option<String>,
}

impl KeyOut {
    pub fn of(key: &KeyView, now_ms: i64) -> KeyOut {
        KeyOut {
            id: key.id.clone(),
            object: "api_key",
            prefix: key.prefix.clone(),
            tenant: key.tenant_name.clone(),
            tenant_id: key.tenant_id.clone(),
            user: key.user_name.clone(),
            user_id: key.user_id.clone(),
            name: key.name.clone(),
            role: key.role.as_str(),
            scopes: key.scopes.clone(),
            limits: key.limits.into(),
            status: key.status(now_ms),
            created_at_ms: key.created_at_ms,
            expires_at_ms: key.expires_at_ms,
            revoked_at_ms: key.revoked_at_ms,
            rotated_to: key.rotated_to.clone(),
        }
    }
}

/// A new key: the listing plus the secret, which is never shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKeyOut {
    pub key: String,
    #[serde(flatten)]
    pub details: KeyOut,
}

impl CreatedKeyOut {
    pub fn of(created: &CreatedKey, now_ms: i64) -> CreatedKeyOut {
        CreatedKeyOut {
            key: created.secret.clone(),
            details: KeyOut::of(&created.key, now_ms),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct UsageParams {
    pub group_by: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub tenant: Option<String>,
    pub key: Option<String>,
    /// A user's id, or its name together with `tenant` (or a tenant key's own tenant).
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UsageGroupOut)]
pub struct UsageOut {
    /// The UTC day (`2026-12-02`) when grouped by day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The prompt template and version, when grouped by prompt (absent: requests that used
    /// none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<i64>,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub cache_hits: i64,
    pub errors: i64,
    pub cost_usd: f64,
    pub mean_latency_ms: f64,
}

impl From<hearth_store::UsageGroup> for UsageOut {
    fn from(group: hearth_store::UsageGroup) -> UsageOut {
        UsageOut {
            day: group
                .day
                .map(|day| super::rfc3339_from_unix_millis(day * 86_400_000)[..10].to_owned()),
            model: group.model,
            key_id: group.key_id,
            tenant_id: group.tenant_id,
            user_id: group.user_id,
            prompt_id: group.prompt_id,
            prompt_version: group.prompt_version,
            requests: group.requests,
            prompt_tokens: group.prompt_tokens,
            completion_tokens: group.completion_tokens,
            total_tokens: group.prompt_tokens + group.completion_tokens,
            cache_hits: group.cache_hits,
            errors: group.errors,
            cost_usd: group.cost_micro_usd as f64 / 1_000_000.0,
            mean_latency_ms: group.mean_latency_ms,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    pub id: String,
    pub at: String,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub source: Option<String>,
    pub tenant_id: Option<String>,
}

impl From<hearth_store::AuditEntry> for AuditOut {
    fn from(entry: hearth_store::AuditEntry) -> AuditOut {
        AuditOut {
            at: super::rfc3339_from_unix_millis(entry.at_ms),
            id: entry.id,
            at_ms: entry.at_ms,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail,
            source: entry.source,
            tenant_id: entry.tenant_id,
        }
    }
}

/// The upstreams and routes in force, and the health of each target used so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamsOut {
    pub upstreams: Vec<UpstreamOut>,
    pub routes: Vec<RouteOut>,
    pub targets: Vec<TargetOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamOut {
    pub name: String,
    pub base_url: String,
    /// Whether an API key is configured (the key itself is never shown).
    pub api_key_set: bool,
    pub timeout_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteOut {
    /// The alias clients send as `model`.
    pub model: String,
    /// `priority`, `weighted`, `latency` or `least_busy`.
    pub strategy: &'static str,
    pub targets: Vec<String>,
    pub weights: Vec<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetOut {
    pub target: String,
    /// The circuit breaker: `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub in_flight: u64,
    pub successes: u64,
    pub failures: u64,
    /// The recent latency, once the target has answered.
    pub latency_ms: Option<f64>,
}
