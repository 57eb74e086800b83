//! From a presented key to a [`Principal`], without touching the database: the key table is
//! held in memory, keyed by hash, and swapped whole when the store's gateway revision changes
//! (checked every few hundred milliseconds by [`Authenticator::spawn_refresher`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hearth_store::{KeyRow, LimitColumns, Store, TenantRow};

use crate::principal::{Limits, Principal, Role};
use crate::{GatewayError, keys};

/// Why a presented key is refused. The messages say what to do and never echo the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "an API key is required: send it as `Authorization: Bearer hk_...`; make one with \
         `hearth keys create`"
    )]
    Missing,
    #[error("the API key is not valid; check it, or make a new one with `hearth keys create`")]
    Unknown,
    #[error("the API key {prefix}... was revoked; use another key")]
    Revoked { prefix: String },
    #[error("the API key {prefix}... expired; use another key or rotate it")]
    Expired { prefix: String },
    #[error("the bearer token is not valid: {reason}")]
    InvalidToken { reason: String },
    #[error(
        "the token's tenant {name:?} does not exist here; create it with `hearth keys create \
         --tenant {name}` or the admin API"
    )]
    UnknownTenant { name: String },
}

/// One key as the authenticator keeps it.
#[derive(Debug, Clone)]
struct KnownKey {
    principal: Principal,
    expires_at_ms: Option<i64>,
    revoked: bool,
}

/// The in-memory key table. Share it as `Arc<Authenticator>`.
#[derive(Debug, Default)]
pub struct Authenticator {
    by_hash: RwLock<Arc<HashMap<String, KnownKey>>>,
    /// Tenants by name, with their id and limits, for bearer tokens that name their tenant.
    tenants: RwLock<Arc<HashMap<String, (String, Limits)>>>,
    revision: AtomicI64,
}

pub(crate) fn limits_from(columns: &LimitColumns) -> Limits {
    let positive = |value: Option<i64>| value.and_then(|value| u64::try_from(value).ok());
    Limits {
        requests_per_minute: positive(columns.requests_per_minute),
        tokens_per_minute: positive(columns.tokens_per_minute),
        max_concurrent: positive(columns.max_concurrent),
        tokens_per_day: positive(columns.tokens_per_day),
        tokens_per_month: positive(columns.tokens_per_month),
        budget_micro_usd_per_month: positive(columns.budget_micro_usd_per_month),
    }
}

impl Authenticator {
    /// Loads the key table from the store.
    pub async fn load(store: &Store) -> Result<Arc<Authenticator>, GatewayError> {
        let authenticator = Arc::new(Authenticator {
            by_hash: RwLock::default(),
            tenants: RwLock::default(),
            revision: AtomicI64::new(i64::MIN),
        });
        authenticator.refresh(store).await?;
        Ok(authenticator)
    }

    /// Reloads the key table if the store's revision moved since the last load. Returns
    /// whether it reloaded.
    pub async fn refresh(&self, store: &Store) -> Result<bool, GatewayError> {
        let revision = store.gateway_revision().await?;
        if revision == self.revision.load(Ordering::Acquire) {
            return Ok(false);
        }
        let tenants: HashMap<String, TenantRow> = store
            .tenants()
            .await?
            .into_iter()
            .map(|tenant| (tenant.id.clone(), tenant))
            .collect();
        let mut by_hash = HashMap::new();
        for row in store.keys().await? {
            let Some(role) = Role::parse(&row.role) else {
                tracing::warn!(key = %row.prefix, role = %row.role, "key with an unknown role ignored");
                continue;
            };
            let tenant = row.tenant_id.as_ref().and_then(|id| tenants.get(id));
            by_hash.insert(row.secret_sha256.clone(), known_key(&row, role, tenant));
        }
        *self
            .by_hash
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(by_hash);
        *self
            .tenants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(
            tenants
                .values()
                .map(|tenant| {
                    (
                        tenant.name.clone(),
                        (tenant.id.clone(), limits_from(&tenant.limits)),
                    )
                })
                .collect(),
        );
        self.revision.store(revision, Ordering::Release);
        Ok(true)
    }

    /// A tenant's id and limits by name.
    pub fn tenant_by_name(&self, name: &str) -> Option<(String, Limits)> {
        self.tenants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Checks a presented key at time `now_ms`.
    pub fn authenticate(&self, secret: &str, now_ms: i64) -> Result<Principal, AuthError> {
        if !keys::looks_like_key(secret) {
            return Err(AuthError::Unknown);
        }
        let table = Arc::clone(
            &self
                .by_hash
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let known = table.get(&keys::hash(secret)).ok_or(AuthError::Unknown)?;
        let prefix = known.principal.key_prefix.clone();
        if known.revoked {
            return Err(AuthError::Revoked { prefix });
        }
        if known.expires_at_ms.is_some_and(|expires| expires <= now_ms) {
            return Err(AuthError::Expired { prefix });
        }
        Ok(known.principal.clone())
    }

    /// Keeps the table current: polls the revision every `interval` until the authenticator
    /// is dropped. Errors are logged and retried; the last good table stays in use.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        store: Store,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let authenticator = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(authenticator) = authenticator.upgrade() else {
                    return;
                };
                match authenticator.refresh(&store).await {
                    Ok(true) => tracing::info!("API keys reloaded"),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "cannot reload API keys; keeping the current ones")
                    }
                }
            }
        })
    }
}

fn known_key(row: &KeyRow, role: Role, tenant: Option<&TenantRow>) -> KnownKey {
    KnownKey {
        principal: Principal {
            key_id: row.id.clone(),
            key_prefix: row.prefix.clone(),
            tenant_id: row.tenant_id.clone(),
            tenant_name: tenant.map(|tenant| tenant.name.clone()),
            user_id: row.user_id.clone(),
            role,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            key_limits: limits_from(&row.limits),
            tenant_limits: tenant
                .map(|tenant| limits_from(&tenant.limits))
                .unwrap_or_default(),
        },
        expires_at_ms: row.expires_at_ms,
        revoked: row.revoked_at_ms.is_some(),
    }
}
