//! The administrative operations on tenants, their users, keys and usage, shared by the admin API and the
//! `hearth keys` CLI. Each checks the actor's scope (an instance admin reaches everything, a
//! tenant's admin only that tenant) and writes an audit entry.

use hearth_store::{
    AuditEntry, KeyRow, LimitColumns, Store, TenantRow, UsageGroup, UsageQuery, UserRow,
};

use crate::authenticator::limits_from;
use crate::principal::{Limits, Principal, Role};
use crate::{GatewayError, keys};

/// Who performs an administrative action.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The `hearth` CLI on the server's machine: whoever can run it owns the data directory,
    /// so it acts as an instance admin.
    Cli,
    /// A request to a server that requires no keys (it listens on loopback only): the local
    /// user, who could as well run the CLI, acts as an instance admin.
    Local { source: Option<String> },
    /// An API caller, and the address the request came from.
    Key {
        principal: Box<Principal>,
        source: Option<String>,
    },
}

impl Actor {
    /// An API caller acting from `source` (its address).
    pub fn key(principal: Principal, source: Option<String>) -> Actor {
        Actor::Key {
            principal: Box::new(principal),
            source,
        }
    }
}

impl Actor {
    /// Who acted, as the audit trail names them: a key prefix, `local` or `cli`.
    pub fn name(&self) -> String {
        match self {
            Actor::Cli => "cli".to_owned(),
            Actor::Local { .. } => "local".to_owned(),
            Actor::Key { principal, .. } => principal.key_prefix.clone(),
        }
    }

    fn source(&self) -> Option<String> {
        match self {
            Actor::Cli => Some("cli".to_owned()),
            Actor::Local { source } | Actor::Key { source, .. } => source.clone(),
        }
    }

    fn administers(&self, tenant_id: Option<&str>) -> bool {
        match self {
            Actor::Cli | Actor::Local { .. } => true,
            Actor::Key { principal, .. } => principal.administers(tenant_id),
        }
    }

    /// The tenant whose data a tenant-bound actor may see; `None` for instance admins.
    fn own_tenant(&self) -> Option<&str> {
        match self {
            Actor::Cli | Actor::Local { .. } => None,
            Actor::Key { principal, .. } => principal.tenant_id.as_deref(),
        }
    }

    fn require(&self, tenant_id: Option<&str>, action: &str) -> Result<(), GatewayError> {
        if self.administers(tenant_id) {
            return Ok(());
        }
        Err(GatewayError::Forbidden(match tenant_id {
            Some(_) => {
                format!("{action} needs an admin key of this tenant or an instance admin key")
            }
            None => format!("{action} needs an instance admin key (one made without --tenant)"),
        }))
    }
}

/// A tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub limits: Limits,
}

/// A user of a tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub name: String,
    pub created_at_ms: i64,
}

/// A key as listings show it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub id: String,
    pub prefix: String,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    /// The user of the tenant the key was issued to, if any.
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub name: Option<String>,
    pub role: Role,
    pub scopes: Vec<String>,
    pub limits: Limits,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub rotated_to: Option<String>,
}

impl KeyView {
    /// `active`, `expired` or `revoked` at `now_ms`.
    pub fn status(&self, now_ms: i64) -> &'static str {
        if self.revoked_at_ms.is_some() {
            "revoked"
        } else if self.expires_at_ms.is_some_and(|at| at <= now_ms) {
            "expired"
        } else {
            "active"
        }
    }
}

/// A key just made: the secret, shown this once, and its listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedKey {
    pub secret: String,
    pub key: KeyView,
}

/// What a new key should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// The tenant's name; `None` makes an instance key (admin role only).
    pub tenant: Option<String>,
    /// The name of the tenant's user the key is issued to (the user must exist; needs a
    /// tenant). Usage made with the key is then counted for that user too.
    pub user: Option<String>,
    pub name: Option<String>,
    pub role: Role,
    pub scopes: Vec<String>,
    pub limits: Limits,
    /// Lifetime from now; `None` never expires.
    pub expires_in_ms: Option<i64>,
}

/// Usage groups, scoped to what the actor may see.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageReport {
    pub groups: Vec<UsageGroup>,
}

fn columns(limits: &Limits) -> LimitColumns {
    let signed = |value: Option<u64>| value.map(|value| i64::try_from(value).unwrap_or(i64::MAX));
    LimitColumns {
        requests_per_minute: signed(limits.requests_per_minute),
        tokens_per_minute: signed(limits.tokens_per_minute),
        max_concurrent: signed(limits.max_concurrent),
        tokens_per_day: signed(limits.tokens_per_day),
        tokens_per_month: signed(limits.tokens_per_month),
        budget_micro_usd_per_month: signed(limits.budget_micro_usd_per_month),
    }
}

fn tenant_view(row: TenantRow) -> TenantView {
    TenantView {
        limits: limits_from(&row.limits),
        id: row.id,
        name: row.name,
        created_at_ms: row.created_at_ms,
    }
}

/// A tenant name: what `--tenant` and the admin API take.
fn validate_tenant_name(name: &str) -> Result<(), GatewayError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(GatewayError::invalid(
            "name",
            format!("tenant name {name:?} must be 1 to 64 lowercase letters, digits, `-` or `_`"),
        ))
    }
}

/// A user name: an id from the caller's world (a login, an email address, a service name).
fn validate_user_name(name: &str) -> Result<(), GatewayError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c));
    if valid {
        Ok(())
    } else {
        Err(GatewayError::invalid(
            "user",
            format!(
                "user name {name:?} must be 1 to 128 letters, digits, `-`, `_`, `.`, `@` or `+`"
            ),
        ))
    }
}

fn user_view(row: UserRow, tenant_name: String) -> UserView {
    UserView {
        id: row.id,
        tenant_id: row.tenant_id,
        tenant_name,
        name: row.name,
        created_at_ms: row.created_at_ms,
    }
}

/// The administrative service over the store.
#[derive(Debug, Clone)]
pub struct Gateway {
    store: Store,
}

impl Gateway {
    pub fn new(store: Store) -> Gateway {
        Gateway { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends an admin action to the audit trail (the gateway's own, and those of services
    /// the gateway does not own, such as installing a plugin).
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        tenant_id: Option<&str>,
        target: Option<String>,
        detail: Option<String>,
        now_ms: i64,
    ) -> Result<(), GatewayError> {
        self.store
            .append_audit(&AuditEntry {
                id: uuid::Uuid::new_v4().to_string(),
                at_ms: now_ms,
                actor: actor.name(),
                action: action.to_owned(),
                target,
                detail,
                source: actor.source(),
                tenant_id: tenant_id.map(str::to_owned),
            })
            .await?;
        Ok(())
    }

    pub async fn create_tenant(
        &self,
        actor: &Actor,
        name: &str,
        limits: Limits,
        now_ms: i64,
    ) -> Result<TenantView, GatewayError> {
        actor.require(None, "creating a tenant")?;
        validate_tenant_name(name)?;
        if self.store.tenant_by_name(name).await?.is_some() {
            return Err(GatewayError::Conflict(format!(
                "tenant {name:?} already exists"
            )));
        }
        let row = TenantRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            created_at_ms: now_ms,
            limits: columns(&limits),
        };
        self.store.insert_tenant(&row).await?;
        self.audit(
            actor,
            "tenant.create",
            Some(&row.id),
            Some(name.to_owned()),
            None,
            now_ms,
        )
        .await?;
        Ok(tenant_view(row))
    }

    /// The tenant named `name`, made first when missing (the CLI's bootstrap).
    pub async fn ensure_tenant(
        &self,
        actor: &Actor,
        name: &str,
        now_ms: i64,
    ) -> Result<TenantView, GatewayError> {
        match self.store.tenant_by_name(name).await? {
            Some(row) => Ok(tenant_view(row)),
            None => {
                self.create_tenant(actor, name, Limits::default(), now_ms)
                    .await
            }
        }
    }

    /// The tenants the actor may see: all for an instance admin, its own for a tenant key.
    pub async fn tenants(&self, actor: &Actor) -> Result<Vec<TenantView>, GatewayError> {
        let own = actor.own_tenant();
        Ok(self
            .store
            .tenants()
            .await?
            .into_iter()
            .filter(|tenant| own.is_none_or(|own| own == tenant.id))
            .filter(|tenant| actor.administers(Some(&tenant.id)))
            .map(tenant_view)
            .collect())
    }

    /// A tenant by name or id, when the actor may administer it.
    pub async fn tenant(
        &self,
        actor: &Actor,
        name_or_id: &str,
    ) -> Result<TenantView, GatewayError> {
        let row = match self.store.tenant_by_name(name_or_id).await? {
            Some(row) => Some(row),
            None => self.store.tenant_by_id(name_or_id).await?,
        };
        let not_found = || GatewayError::NotFound {
            what: format!("tenant {name_or_id:?}"),
        };
        let row = row.ok_or_else(not_found)?;
        // Another tenant's existence is not disclosed.
        if !actor.administers(Some(&row.id)) {
            return Err(not_found());
        }
        Ok(tenant_view(row))
    }

    pub async fn set_tenant_limits(
        &self,
        actor: &Actor,
        name_or_id: &str,
        limits: Limits,
        now_ms: i64,
    ) -> Result<TenantView, GatewayError> {
        let tenant = self.tenant(actor, name_or_id).await?;
        // A tenant's admin may not raise its own tenant's limits.
        actor.require(None, "changing a tenant's limits")?;
        self.store
            .update_tenant_limits(&tenant.id, &columns(&limits))
            .await?;
        self.audit(
            actor,
            "tenant.limits",
            Some(&tenant.id),
            Some(tenant.name.clone()),
            Some(format!("{limits:?}")),
            now_ms,
        )
        .await?;
        Ok(TenantView { limits, ..tenant })
    }

    pub async fn create_key(
        &self,
        actor: &Actor,
        spec: KeySpec,
        now_ms: i64,
    ) -> Result<CreatedKey, GatewayError> {
        let tenant = match &spec.tenant {
            Some(name) => {
                validate_tenant_name(name)?;
                // Instance admins bootstrap tenants by naming them; others must name their own.
                let tenant = if actor.own_tenant().is_none() && actor.administers(None) {
                    self.ensure_tenant(actor, name, now_ms).await?
                } else {
                    self.tenant(actor, name).await?
                };
                Some(tenant)
            }
            None => None,
        };
        let tenant_id = tenant.as_ref().map(|tenant| tenant.id.as_str());
        actor.require(tenant_id, "creating a key")?;
        if tenant.is_none() && spec.role != Role::Admin {
            return Err(GatewayError::invalid(
                "tenant",
                "a key without a tenant is an instance admin key; give --tenant for reader and \
                 member keys",
            ));
        }
        if let Some(lifetime) = spec.expires_in_ms
            && lifetime <= 0
        {
            return Err(GatewayError::invalid(
                "expires",
                "the lifetime must be positive",
            ));
        }
        for scope in &spec.scopes {
            if scope.is_empty() || scope.contains(char::is_whitespace) {
                return Err(GatewayError::invalid(
                    "scopes",
                    format!("scope {scope:?} must be one word"),
                ));
            }
        }
        let user = match (&spec.user, &tenant) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(GatewayError::invalid(
                    "user",
                    "a user belongs to a tenant: give the tenant too",
                ));
            }
            (Some(name), Some(tenant)) => {
                validate_user_name(name)?;
                Some(
                    self.store
                        .user_by_name(&tenant.id, name)
                        .await?
                        .ok_or_else(|| GatewayError::NotFound {
                            what: format!("user {name:?} of tenant {:?}", tenant.name),
                        })?,
                )
            }
        };
        let secret = keys::generate();
        let row = KeyRow {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant_id.map(str::to_owned),
            user_id: user.as_ref().map(|user| user.id.clone()),
            name: spec.name.clone(),
            prefix: secret.prefix.clone(),
            secret_sha256: secret.sha256.clone(),
            role: spec.role.as_str().to_owned(),
            scopes: spec.scopes.join(" "),
            limits: columns(&spec.limits),
            created_at_ms: now_ms,
            expires_at_ms: spec
                .expires_in_ms
                .map(|lifetime| now_ms.saturating_add(lifetime)),
            revoked_at_ms: None,
            rotated_to: None,
        };
        self.store.insert_key(&row).await?;
        self.audit(
            actor,
            "key.create",
            tenant_id,
            Some(row.prefix.clone()),
            Some(match &user {
                Some(user) => format!("role={} user={}", spec.role, user.name),
                None => format!("role={}", spec.role),
            }),
            now_ms,
        )
        .await?;
        Ok(CreatedKey {
            secret: secret.secret,
            key: self.key_view(
                row,
                tenant.map(|tenant| tenant.name),
                user.map(|user| user.name),
            ),
        })
    }

    /// Makes a user of a tenant the actor administers.
    pub async fn create_user(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<UserView, GatewayError> {
        let tenant = self.tenant(actor, tenant).await?;
        actor.require(Some(&tenant.id), "creating a user")?;
        validate_user_name(name)?;
        if self.store.user_by_name(&tenant.id, name).await?.is_some() {
            return Err(GatewayError::Conflict(format!(
                "tenant {:?} already has a user {name:?}",
                tenant.name
            )));
        }
        let row = UserRow {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant.id.clone(),
            name: name.to_owned(),
            created_at_ms: now_ms,
            deleted_at_ms: None,
        };
        self.store.insert_user(&row).await?;
        self.audit(
            actor,
            "user.create",
            Some(&tenant.id),
            Some(name.to_owned()),
            None,
            now_ms,
        )
        .await?;
        Ok(user_view(row, tenant.name))
    }

    /// The tenant's user named `name`, made first when missing (the CLI's bootstrap).
    pub async fn ensure_user(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<UserView, GatewayError> {
        let tenant_view = self.tenant(actor, tenant).await?;
        match self.store.user_by_name(&tenant_view.id, name).await? {
            Some(row) => Ok(user_view(row, tenant_view.name)),
            None => self.create_user(actor, tenant, name, now_ms).await,
        }
    }

    /// The live users the actor administers, optionally of one tenant.
    pub async fn users(
        &self,
        actor: &Actor,
        tenant: Option<&str>,
    ) -> Result<Vec<UserView>, GatewayError> {
        let tenant_id = match tenant {
            Some(name) => Some(self.tenant(actor, name).await?.id),
            None => None,
        };
        let names = self.tenant_names().await?;
        Ok(self
            .store
            .users(tenant_id.as_deref())
            .await?
            .into_iter()
            .filter(|row| actor.administers(Some(&row.tenant_id)))
            .map(|row| {
                let tenant_name = names.get(&row.tenant_id).cloned().unwrap_or_default();
                user_view(row, tenant_name)
            })
            .collect())
    }

    /// A live user of a tenant the actor administers, by name (within `tenant`) or id.
    pub async fn user(
        &self,
        actor: &Actor,
        tenant: Option<&str>,
        name_or_id: &str,
    ) -> Result<UserView, GatewayError> {
        let not_found = || GatewayError::NotFound {
            what: format!("user {name_or_id:?}"),
        };
        let row = match tenant {
            Some(tenant) => {
                let tenant = self.tenant(actor, tenant).await?;
                match self.store.user_by_name(&tenant.id, name_or_id).await? {
                    Some(row) => Some(row),
                    None => self
                        .store
                        .user_by_id(name_or_id)
                        .await?
                        .filter(|row| row.tenant_id == tenant.id),
                }
            }
            None => match self.store.user_by_id(name_or_id).await? {
                Some(row) => Some(row),
                // A tenant's admin names its own users without naming its tenant.
                None => match actor.own_tenant() {
                    Some(own) => self.store.user_by_name(own, name_or_id).await?,
                    None => None,
                },
            },
        };
        let row = row
            .filter(|row| row.deleted_at_ms.is_none())
            .filter(|row| actor.administers(Some(&row.tenant_id)))
            .ok_or_else(not_found)?;
        let tenant_name = self
            .store
            .tenant_by_id(&row.tenant_id)
            .await?
            .map(|tenant| tenant.name)
            .unwrap_or_default();
        Ok(user_view(row, tenant_name))
    }

    /// Deletes a user and revokes its keys at once; its usage history stays. Returns the
    /// user and how many keys were revoked.
    pub async fn delete_user(
        &self,
        actor: &Actor,
        tenant: Option<&str>,
        name_or_id: &str,
        now_ms: i64,
    ) -> Result<(UserView, u64), GatewayError> {
        let user = self.user(actor, tenant, name_or_id).await?;
        actor.require(Some(&user.tenant_id), "deleting a user")?;
        let revoked = self
            .store
            .delete_user(&user.id, now_ms)
            .await?
            .ok_or_else(|| GatewayError::NotFound {
                what: format!("user {name_or_id:?}"),
            })?;
        self.audit(
            actor,
            "user.delete",
            Some(&user.tenant_id),
            Some(user.name.clone()),
            Some(format!("revoked_keys={revoked}")),
            now_ms,
        )
        .await?;
        Ok((user, revoked))
    }

    async fn tenant_names(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, GatewayError> {
        Ok(self
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|tenant| (tenant.id, tenant.name))
            .collect())
    }

    async fn user_name(&self, user_id: Option<&str>) -> Result<Option<String>, GatewayError> {
        Ok(match user_id {
            Some(id) => self.store.user_by_id(id).await?.map(|user| user.name),
            None => None,
        })
    }

    fn key_view(
        &self,
        row: KeyRow,
        tenant_name: Option<String>,
        user_name: Option<String>,
    ) -> KeyView {
        KeyView {
            role: Role::parse(&row.role).unwrap_or(Role::Reader),
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            limits: limits_from(&row.limits),
            id: row.id,
            prefix: row.prefix,
            tenant_id: row.tenant_id,
            tenant_name,
            user_id: row.user_id,
            user_name,
            name: row.name,
            created_at_ms: row.created_at_ms,
            expires_at_ms: row.expires_at_ms,
            revoked_at_ms: row.revoked_at_ms,
            rotated_to: row.rotated_to,
        }
    }

    /// The keys the actor administers, optionally of one tenant.
    pub async fn keys(
        &self,
        actor: &Actor,
        tenant: Option<&str>,
    ) -> Result<Vec<KeyView>, GatewayError> {
        let tenant_id = match tenant {
            Some(name) => Some(self.tenant(actor, name).await?.id),
            None => None,
        };
        let names = self.tenant_names().await?;
        let users: std::collections::HashMap<String, String> = self
            .store
            .users(tenant_id.as_deref())
            .await?
            .into_iter()
            .map(|user| (user.id, user.name))
            .collect();
        let mut views = Vec::new();
        for row in self.store.keys().await? {
            if !actor.administers(row.tenant_id.as_deref())
                || (tenant_id.is_some() && row.tenant_id != tenant_id)
            {
                continue;
            }
            let tenant_name = row.tenant_id.as_ref().and_then(|id| names.get(id).cloned());
            // A deleted user's (revoked) keys still name it.
            let user_name = match row.user_id.as_deref() {
                Some(id) => match users.get(id) {
                    Some(name) => Some(name.clone()),
                    None => self.user_name(Some(id)).await?,
                },
                None => None,
            };
            views.push(self.key_view(row, tenant_name, user_name));
        }
        Ok(views)
    }

    /// One key by id or visible prefix, when the actor administers it.
    async fn find_key(&self, actor: &Actor, id_or_prefix: &str) -> Result<KeyRow, GatewayError> {
        let not_found = || GatewayError::NotFound {
            what: format!("key {id_or_prefix:?}"),
        };
        let mut candidates = match self.store.key_by_id(id_or_prefix).await? {
            Some(row) => vec![row],
            None => self.store.keys_by_prefix(id_or_prefix).await?,
        };
        candidates.retain(|row| actor.administers(row.tenant_id.as_deref()));
        match candidates.len() {
            0 => Err(not_found()),
            1 => Ok(candidates.remove(0)),
            _ => Err(GatewayError::Conflict(format!(
                "several keys start with {id_or_prefix:?}; name the key by its id"
            ))),
        }
    }

    pub async fn revoke_key(
        &self,
        actor: &Actor,
        id_or_prefix: &str,
        now_ms: i64,
    ) -> Result<KeyView, GatewayError> {
        let row = self.find_key(actor, id_or_prefix).await?;
        if row.revoked_at_ms.is_some() {
            return Err(GatewayError::Conflict(format!(
                "key {} is already revoked",
                row.prefix
            )));
        }
        self.store.revoke_key(&row.id, now_ms).await?;
        self.audit(
            actor,
            "key.revoke",
            row.tenant_id.as_deref(),
            Some(row.prefix.clone()),
            None,
            now_ms,
        )
        .await?;
        let tenant_name = match &row.tenant_id {
            Some(id) => self.store.tenant_by_id(id).await?.map(|tenant| tenant.name),
            None => None,
        };
        let user_name = self.user_name(row.user_id.as_deref()).await?;
        Ok(self.key_view(
            KeyRow {
                revoked_at_ms: Some(now_ms),
                ..row
            },
            tenant_name,
            user_name,
        ))
    }

    /// Replaces a key's limits; they apply within a second. A tenant's admin may set its own
    /// tenant's keys' limits (within the tenant's, which it cannot change).
    pub async fn set_key_limits(
        &self,
        actor: &Actor,
        id_or_prefix: &str,
        limits: Limits,
        now_ms: i64,
    ) -> Result<KeyView, GatewayError> {
        let row = self.find_key(actor, id_or_prefix).await?;
        let columns = columns(&limits);
        self.store.update_key_limits(&row.id, &columns).await?;
        self.audit(
            actor,
            "key.limits",
            row.tenant_id.as_deref(),
            Some(row.prefix.clone()),
            Some(format!("{limits:?}")),
            now_ms,
        )
        .await?;
        let tenant_name = match &row.tenant_id {
            Some(id) => self.store.tenant_by_id(id).await?.map(|tenant| tenant.name),
            None => None,
        };
        let user_name = self.user_name(row.user_id.as_deref()).await?;
        Ok(self.key_view(
            KeyRow {
                limits: columns,
                ..row
            },
            tenant_name,
            user_name,
        ))
    }

    /// A new key with the same tenant, role, scopes and limits; the old one stays valid for
    /// `grace_ms` so that clients can switch over.
    pub async fn rotate_key(
        &self,
        actor: &Actor,
        id_or_prefix: &str,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<CreatedKey, GatewayError> {
        let old = self.find_key(actor, id_or_prefix).await?;
        if old.revoked_at_ms.is_some() {
            return Err(GatewayError::Conflict(format!(
                "key {} is revoked; make a new key instead",
                old.prefix
            )));
        }
        if grace_ms < 0 {
            return Err(GatewayError::invalid(
                "grace",
                "the grace period cannot be negative",
            ));
        }
        let secret = keys::generate();
        // The new key keeps the old one's remaining lifetime policy: same length from now.
        let lifetime = old.expires_at_ms.map(|at| at - old.created_at_ms);
        let new = KeyRow {
            id: uuid::Uuid::new_v4().to_string(),
            prefix: secret.prefix.clone(),
            secret_sha256: secret.sha256.clone(),
            created_at_ms: now_ms,
            expires_at_ms: lifetime.map(|lifetime| now_ms.saturating_add(lifetime)),
            revoked_at_ms: None,
            rotated_to: None,
            ..old.clone()
        };
        self.store
            .rotate_key(&old.id, now_ms.saturating_add(grace_ms), &new)
            .await?;
        self.audit(
            actor,
            "key.rotate",
            old.tenant_id.as_deref(),
            Some(old.prefix.clone()),
            Some(format!("new={} grace_ms={grace_ms}", new.prefix)),
            now_ms,
        )
        .await?;
        let tenant_name = match &new.tenant_id {
            Some(id) => self.store.tenant_by_id(id).await?.map(|tenant| tenant.name),
            None => None,
        };
        Ok(CreatedKey {
            secret: secret.secret,
            key: {
                let user_name = self.user_name(new.user_id.as_deref()).await?;
                self.key_view(new, tenant_name, user_name)
            },
        })
    }

    /// Usage aggregates. A tenant's key sees its tenant only, whatever it asks for; readers
    /// and members may read their tenant's usage, admins administer it.
    pub async fn usage(
        &self,
        actor: &Actor,
        mut query: UsageQuery,
    ) -> Result<UsageReport, GatewayError> {
        if let Some(own) = actor.own_tenant() {
            if query.tenant_id.as_deref().is_some_and(|asked| asked != own) {
                return Err(GatewayError::Forbidden(
                    "a tenant's key can read only its own tenant's usage".to_owned(),
                ));
            }
            query.tenant_id = Some(own.to_owned());
        } else if let Actor::Key { principal, .. } = actor
            && principal.role != Role::Admin
        {
            return Err(GatewayError::Forbidden(
                "reading all tenants' usage needs an instance admin key".to_owned(),
            ));
        }
        Ok(UsageReport {
            groups: self.store.usage_groups(&query).await?,
        })
    }

    /// The id of the user a usage query names, by id or by name within `tenant` (a tenant
    /// key's own tenant by default), deleted users included: their history stays readable.
    /// Another tenant's user is not found.
    pub async fn usage_user(
        &self,
        actor: &Actor,
        tenant: Option<&str>,
        name_or_id: &str,
    ) -> Result<String, GatewayError> {
        let not_found = || GatewayError::NotFound {
            what: format!("user {name_or_id:?}"),
        };
        let tenant_id = match tenant {
            Some(tenant) => Some(self.tenant(actor, tenant).await?.id),
            None => actor.own_tenant().map(str::to_owned),
        };
        let row = match &tenant_id {
            Some(tenant_id) => match self.store.user_by_name(tenant_id, name_or_id).await? {
                Some(row) => Some(row),
                None => self.store.user_by_id(name_or_id).await?,
            },
            None => self.store.user_by_id(name_or_id).await?,
        };
        let row = row
            .filter(|row| tenant_id.as_ref().is_none_or(|id| *id == row.tenant_id))
            .filter(|row| actor.own_tenant().is_none_or(|own| own == row.tenant_id))
            .ok_or_else(not_found)?;
        Ok(row.id)
    }

    /// The newest audit entries the actor may read.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, GatewayError> {
        let tenant = actor.own_tenant();
        actor.require(tenant, "reading the audit log")?;
        Ok(self
            .store
            .recent_audit(limit.clamp(1, 1000), tenant)
            .await?)
    }
}
