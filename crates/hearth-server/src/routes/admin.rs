//! The admin API under `/admin/v1`: tenants, users, keys, usage and the audit trail. Each handler
//! parses, names the caller, and makes one call to the gateway service, which checks that the
//! caller administers what it touches and audits the change.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_gateway::{Gateway, KeySpec, Role};
use hearth_store::UsageQuery;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::{Caller, ClientAddress};
use crate::state::AppState;
use crate::wire::admin::*;

fn gateway(state: &AppState) -> Result<Gateway, ApiError> {
    state
        .gateway
        .as_ref()
        .map(|gateway| gateway.service.clone())
        .ok_or_else(|| ApiError::unavailable("the gateway is not configured on this server"))
}

/// The tenants the caller administers.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "admin",
    responses(
        (status = 200, description = "The tenants", body = List<TenantOut>),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
) -> Result<Json<List<TenantOut>>, ApiError> {
    let tenants = gateway(&state)?.tenants(&caller.actor(ip)).await?;
    Ok(Json(List::of(tenants.into_iter().map(TenantOut::from))))
}

/// Creates a tenant (instance admins only).
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "admin",
    request_body(content = TenantIn, description = "The tenant's name and limits"),
    responses(
        (status = 201, description = "The tenant", body = TenantOut),
        (status = 400, description = "An invalid name", body = ErrorBody),
        (status = 403, description = "Not an instance admin key", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<TenantIn>,
) -> Result<(StatusCode, Json<TenantOut>), ApiError> {
    let tenant = gateway(&state)?
        .create_tenant(
            &caller.actor(ip),
            &request.name,
            request.limits.unwrap_or_default().into(),
            hearth_gateway::now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

/// One tenant, by name or id.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}", tag = "admin",
    params(("tenant" = String, Path, description = "Tenant name or id")),
    responses(
        (status = 200, description = "The tenant", body = TenantOut),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(tenant): Path<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let tenant = gateway(&state)?.tenant(&caller.actor(ip), &tenant).await?;
    Ok(Json(tenant.into()))
}

/// Replaces a tenant's limits (instance admins only); they apply within a second.
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/limits", tag = "admin",
    params(("tenant" = String, Path, description = "Tenant name or id")),
    request_body(content = LimitsIo, description = "The new limits; an absent limit is none"),
    responses(
        (status = 200, description = "The tenant with its new limits", body = TenantOut),
        (status = 403, description = "Not an instance admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn set_tenant_limits(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(tenant): Path<String>,
    ApiJson(limits): ApiJson<LimitsIo>,
) -> Result<Json<TenantOut>, ApiError> {
    let tenant = gateway(&state)?
        .set_tenant_limits(
            &caller.actor(ip),
            &tenant,
            limits.into(),
            hearth_gateway::now_ms(),
        )
        .await?;
    Ok(Json(tenant.into()))
}

/// The users of the tenants the caller administers.
#[utoipa::path(get, path = "/admin/v1/users", tag = "admin",
    params(("tenant" = Option<String>, Query, description = "Only this tenant's users")),
    responses(
        (status = 200, description = "The users", body = List<UserOut>),
        (status = 400, description = "An invalid query", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiQuery(query): ApiQuery<TenantFilter>,
) -> Result<Json<List<UserOut>>, ApiError> {
    let users = gateway(&state)?
        .users(&caller.actor(ip), query.tenant.as_deref())
        .await?;
    Ok(Json(List::of(users.into_iter().map(UserOut::from))))
}

/// Makes a user of a tenant; keys are then issued to it (`"user"` in POST /admin/v1/keys).
#[utoipa::path(post, path = "/admin/v1/users", tag = "admin",
    request_body(content = UserIn, description = "The user's tenant and name"),
    responses(
        (status = 201, description = "The user", body = UserOut),
        (status = 400, description = "An invalid name, or no tenant named by an instance \
            admin", body = ErrorBody),
        (status = 403, description = "Not an admin of the tenant", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The tenant has a user of that name", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<UserIn>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    let tenant = own_tenant_unless_named(request.tenant, &caller).ok_or_else(|| {
        ApiError::bad_request("a user belongs to a tenant: give \"tenant\"").with_param("tenant")
    })?;
    let user = gateway(&state)?
        .create_user(
            &caller.actor(ip),
            &tenant,
            &request.name,
            hearth_gateway::now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Deletes a user and revokes its keys at once; its usage history stays.
#[utoipa::path(delete, path = "/admin/v1/users/{user}", tag = "admin",
    params(("user" = String, Path, description = "User id, or name with ?tenant= (a tenant key's own tenant by default)"),
           ("tenant" = Option<String>, Query, description = "The user's tenant, when naming it by name")),
    responses(
        (status = 200, description = "The deleted user and the number of keys revoked",
            body = DeletedUserOut),
        (status = 400, description = "An invalid query", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(user): Path<String>,
    ApiQuery(query): ApiQuery<TenantFilter>,
) -> Result<Json<DeletedUserOut>, ApiError> {
    let (user, revoked_keys) = gateway(&state)?
        .delete_user(
            &caller.actor(ip),
            query.tenant.as_deref(),
            &user,
            hearth_gateway::now_ms(),
        )
        .await?;
    Ok(Json(DeletedUserOut {
        user: user.into(),
        deleted: true,
        revoked_keys,
    }))
}

/// `named`, or else a tenant key's own tenant.
fn own_tenant_unless_named(named: Option<String>, caller: &Caller) -> Option<String> {
    named.or_else(|| match caller {
        Caller::Key(principal) => principal.tenant_name.clone(),
        Caller::Local => None,
    })
}

/// The keys the caller administers (never their secrets).
#[utoipa::path(get, path = "/admin/v1/keys", tag = "admin",
    params(("tenant" = Option<String>, Query, description = "Only this tenant's keys")),
    responses(
        (status = 200, description = "The keys", body = List<KeyOut>),
        (status = 400, description = "An invalid query", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiQuery(query): ApiQuery<TenantFilter>,
) -> Result<Json<List<KeyOut>>, ApiError> {
    let now = hearth_gateway::now_ms();
    let keys = gateway(&state)?
        .keys(&caller.actor(ip), query.tenant.as_deref())
        .await?;
    Ok(Json(List::of(keys.iter().map(|key| KeyOut::of(key, now)))))
}

/// Makes a key; the response carries the secret, this once.
#[utoipa::path(post, path = "/admin/v1/keys", tag = "admin",
    request_body(content = KeyBody,
        description = "The key's tenant, user, role, scopes, limits and lifetime"),
    responses(
        (status = 201, description = "The key, with its secret", body = CreatedKeyOut),
        (status = 400, description = "An invalid role, scope, lifetime or name; a reader or \
            member key without a tenant", body = ErrorBody),
        (status = 403, description = "Not an admin of the tenant", body = ErrorBody),
        (status = 404, description = "No such tenant or user", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<KeyIn>,
) -> Result<(StatusCode, Json<CreatedKeyOut>), ApiError> {
    let role = Role::parse(request.role.as_deref().unwrap_or("member")).ok_or_else(|| {
        ApiError::bad_request("role must be admin, member or reader").with_param("role")
    })?;
    // A tenant's admin makes keys for its own tenant unless it says otherwise.
    let tenant = own_tenant_unless_named(request.tenant, &caller);
    let expires_in_ms = match request.expires_in_seconds {
        Some(seconds) if seconds <= 0 => {
            return Err(ApiError::bad_request("expires_in_seconds must be positive")
                .with_param("expires_in_seconds"));
        }
        Some(seconds) => Some(seconds.saturating_mul(1000)),
        None => None,
    };
    let now = hearth_gateway::now_ms();
    let created = gateway(&state)?
        .create_key(
            &caller.actor(ip),
            KeySpec {
                tenant,
                user: request.user,
                name: request.name,
                role,
                scopes: request.scopes.unwrap_or_default(),
                limits: request.limits.unwrap_or_default().into(),
                expires_in_ms,
            },
            now,
        )
        .await?;
    key_event(&state, "hearth.key.created", &created.key).await;
    Ok((StatusCode::CREATED, Json(CreatedKeyOut::of(&created, now))))
}

/// Revokes a key at once, by id or visible prefix.
#[utoipa::path(delete, path = "/admin/v1/keys/{key}", tag = "admin",
    params(("key" = String, Path, description = "Key id or visible prefix (hk_...)")),
    responses(
        (status = 200, description = "The revoked key", body = KeyOut),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The key is revoked already, or the prefix names \
            several keys", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(key): Path<String>,
) -> Result<Json<KeyOut>, ApiError> {
    let now = hearth_gateway::now_ms();
    let key = gateway(&state)?
        .revoke_key(&caller.actor(ip), &key, now)
        .await?;
    key_event(&state, "hearth.key.revoked", &key).await;
    Ok(Json(KeyOut::of(&key, now)))
}

/// Replaces a key's limits; they apply within a second.
#[utoipa::path(put, path = "/admin/v1/keys/{key}/limits", tag = "admin",
    params(("key" = String, Path, description = "Key id or visible prefix (hk_...)")),
    request_body(content = LimitsIo, description = "The new limits; an absent limit is none"),
    responses(
        (status = 200, description = "The key with its new limits", body = KeyOut),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The prefix names several keys", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn set_key_limits(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(key): Path<String>,
    ApiJson(limits): ApiJson<LimitsIo>,
) -> Result<Json<KeyOut>, ApiError> {
    let now = hearth_gateway::now_ms();
    let key = gateway(&state)?
        .set_key_limits(&caller.actor(ip), &key, limits.into(), now)
        .await?;
    Ok(Json(KeyOut::of(&key, now)))
}

/// Replaces a key; the old one stays valid for the grace period (default 24 hours).
#[utoipa::path(post, path = "/admin/v1/keys/{key}/rotate", tag = "admin",
    params(("key" = String, Path, description = "Key id or visible prefix (hk_...)")),
    request_body(content = Option<RotateIn>, description = "The grace period; an empty body \
        takes the default"),
    responses(
        (status = 201, description = "The new key, with its secret", body = CreatedKeyOut),
        (status = 400, description = "A negative grace period", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The key is revoked, or the prefix names several keys",
            body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedKeyOut>), ApiError> {
    // The body is optional: an empty one (or `null`) takes the default grace period.
    let request: RotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        RotateIn::default()
    } else {
        serde_json::from_slice::<Option<RotateIn>>(&body)
            .map_err(|error| {
                ApiError::bad_request(format!("invalid request body: {error}"))
                    .with_param("grace_seconds")
            })?
            .unwrap_or_default()
    };
    let grace_seconds = request.grace_seconds.unwrap_or(86_400);
    if grace_seconds < 0 {
        return Err(
            ApiError::bad_request("grace_seconds cannot be negative").with_param("grace_seconds")
        );
    }
    let now = hearth_gateway::now_ms();
    let created = gateway(&state)?
        .rotate_key(
            &caller.actor(ip),
            &key,
            grace_seconds.saturating_mul(1000),
            now,
        )
        .await?;
    key_event(&state, "hearth.key.created", &created.key).await;
    Ok((StatusCode::CREATED, Json(CreatedKeyOut::of(&created, now))))
}

/// Usage totals: requests, tokens, errors, cache hits, cost and latency, grouped by day,
/// model, key and/or user. A tenant's key sees its tenant's usage only.
#[utoipa::path(get, path = "/admin/v1/usage", tag = "admin",
    params(
        ("group_by" = Option<String>, Query, description = "Comma-separated: day, model, key, user, prompt",
            pattern = r"^\s*(day|model|key|user)?\s*(,\s*(day|model|key|user)?\s*)*$"),
        ("since_ms" = Option<i64>, Query, description = "From (Unix ms, inclusive)"),
        ("until_ms" = Option<i64>, Query, description = "Until (Unix ms, exclusive)"),
        ("tenant" = Option<String>, Query, description = "Tenant name or id (instance admins)"),
        ("key" = Option<String>, Query, description = "Key id"),
        ("user" = Option<String>, Query, description = "User id, or name within `tenant`")
    ),
    responses(
        (status = 200, description = "The usage groups", body = List<UsageOut>),
        (status = 400, description = "An invalid query: an unknown group_by, a time that is \
            not a number", body = ErrorBody),
        (status = 403, description = "Another tenant's usage, or all tenants' without an \
            instance admin key", body = ErrorBody),
        (status = 404, description = "No such tenant or user", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiQuery(query): ApiQuery<UsageParams>,
) -> Result<Json<List<UsageOut>>, ApiError> {
    let service = gateway(&state)?;
    let actor = caller.actor(ip);
    let mut usage_query = UsageQuery {
        key_id: query.key.clone(),
        since_ms: query.since_ms,
        until_ms: query.until_ms,
        ..UsageQuery::default()
    };
    for group in query
        .group_by
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|group| !group.is_empty())
    {
        match group {
            "day" => usage_query.by_day = true,
            "model" => usage_query.by_model = true,
            "key" => usage_query.by_key = true,
            "user" => usage_query.by_user = true,
            "prompt" => usage_query.by_prompt = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "group_by {other:?} is not one of day, model, key, user, prompt"
                ))
                .with_param("group_by"));
            }
        }
    }
    if let Some(tenant) = &query.tenant {
        usage_query.tenant_id = Some(service.tenant(&actor, tenant).await?.id);
    }
    if let Some(user) = &query.user {
        usage_query.user_id = Some(
            service
                .usage_user(&actor, query.tenant.as_deref(), user)
                .await?,
        );
    }
    let report = service.usage(&actor, usage_query).await?;
    Ok(Json(List::of(
        report.groups.into_iter().map(UsageOut::from),
    )))
}

/// The newest audit entries the caller may read.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin",
    params(("limit" = Option<i64>, Query, description = "At most this many (1 to 1000, default 100)")),
    responses(
        (status = 200, description = "The audit entries, newest first", body = List<AuditOut>),
        (status = 400, description = "An invalid query", body = ErrorBody),
        (status = 503, description = "The gateway is not configured", body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiQuery(query): ApiQuery<AuditParams>,
) -> Result<Json<List<AuditOut>>, ApiError> {
    let entries = gateway(&state)?
        .audit_log(&caller.actor(ip), query.limit.unwrap_or(100))
        .await?;
    Ok(Json(List::of(entries.into_iter().map(AuditOut::from))))
}

/// The upstreams and routes in force (from the config; change them there and reload), with
/// each used target's health. Instance admins only: upstreams serve every tenant.
#[utoipa::path(get, path = "/admin/v1/upstreams", tag = "admin",
    responses(
        (status = 200, description = "Upstreams, routes and target health", body = UpstreamsOut),
        (status = 403, description = "Not an instance admin key", body = ErrorBody)))]
pub async fn upstreams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UpstreamsOut>, ApiError> {
    if let Caller::Key(principal) = &caller
        && !principal.administers(None)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the upstreams serve every tenant: reading them needs an instance admin key",
        ));
    }
    let Some(routing) = state.routing.as_ref().map(|routing| routing.current()) else {
        return Ok(Json(UpstreamsOut {
            upstreams: Vec::new(),
            routes: Vec::new(),
            targets: Vec::new(),
        }));
    };
    let (upstreams, routes) = routing.describe();
    let now = std::time::Instant::now();
    Ok(Json(UpstreamsOut {
        upstreams: upstreams
            .into_iter()
            .map(|upstream| UpstreamOut {
                name: upstream.name,
                base_url: upstream.base_url,
                api_key_set: upstream.has_api_key,
                timeout_ms: u64::try_from(upstream.timeout.as_millis()).unwrap_or(u64::MAX),
            })
            .collect(),
        routes: routes
            .into_iter()
            .map(|route| RouteOut {
                model: route.model,
                strategy: route.strategy,
                targets: route.targets,
                weights: route.weights,
            })
            .collect(),
        targets: routing
            .all_stats()
            .into_iter()
            .map(|(target, stats)| TargetOut {
                target,
                breaker: stats.breaker.state(now).name(),
                in_flight: stats.in_flight(),
                successes: stats.successes(),
                failures: stats.failures(),
                latency_ms: stats
                    .latency()
                    .map(|latency| latency.as_secs_f64() * 1000.0),
            })
            .collect(),
    }))
}

/// Tells the key's tenant that a key was made (`hearth.key.created`, also by a rotation) or
/// revoked: its id, prefix, name and role, never its secret.
async fn key_event(state: &AppState, topic: &str, key: &hearth_gateway::KeyView) {
    crate::system_events::emit(
        state,
        crate::gate::scope_of(key.tenant_id.as_deref()),
        topic,
        serde_json::json!({"id": key.id, "prefix": key.prefix, "name": key.name,
                           "role": key.role.as_str()}),
    )
    .await;
}
