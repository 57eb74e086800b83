//! The gate every routed request passes: who is calling (API key, or the local user of a
//! loopback-only server), whether the route allows them, whether their limits do, and what
//! the request used once its response is complete.
//!
//! Every route declares what it needs in [`access`]; a route missing from that table is
//! refused (deny by default), and a test walks the route table so none can be forgotten.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hearth_gateway::{
    Admission, AuthError, Authenticator, Gateway, LimitExceeded, LimitStatus, Limiter, Principal,
    Role, UsageEvent, UsageRecorder,
};

use crate::error::ApiError;
use crate::state::AppState;

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, key or not: health, readiness, API docs.
    Public,
    /// A key with at least this role.
    Role(Role),
    /// An instance admin key (one without a tenant): changes that affect every tenant.
    InstanceAdmin,
}

/// The access each route requires, by method and route template.
pub fn access(method: &Method, path: &str) -> Option<Access> {
    use Access::{InstanceAdmin, Public, Role as Needs};
    let needs = match (method.as_str(), path) {
        ("GET", "/healthz" | "/readyz" | "/openapi.json" | "/docs" | "/api/version") => Public,
        ("GET", "/metrics" | "/v1/models" | "/v1/models/{model}" | "/api/tags" | "/api/ps") => {
            Needs(Role::Reader)
        }
        ("POST", "/api/show") => Needs(Role::Reader),
        (
            "POST",
            "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/responses"
            | "/api/chat"
            | "/api/generate"
            | "/api/embed"
            | "/api/embeddings",
        ) => Needs(Role::Member),
        // Stored responses, in the caller's tenant: readers read them, members (who make
        // them) delete them.
        ("GET", "/v1/responses/{response_id}" | "/v1/responses/{response_id}/input_items") => {
            Needs(Role::Reader)
        }
        ("DELETE", "/v1/responses/{response_id}") => Needs(Role::Member),
        ("POST", "/api/pull" | "/api/copy") | ("DELETE", "/api/delete") => InstanceAdmin,
        // Memory, in the caller's tenant: readers read and search, members write documents,
        // admins create, change and delete collections.
        (
            "GET",
            "/v1/collections"
            | "/v1/collections/{name}"
            | "/v1/collections/{name}/documents"
            | "/v1/collections/{name}/documents/{id}",
        )
        | ("POST", "/v1/collections/{name}/search")
        | ("GET", "/v1/files" | "/v1/files/{file_id}" | "/v1/files/{file_id}/content") => {
            Needs(Role::Reader)
        }
        ("POST", "/v1/files") | ("DELETE", "/v1/files/{file_id}") => Needs(Role::Member),
        ("POST", "/v1/collections/{name}/documents" | "/v1/collections/{name}/delete")
        | ("DELETE", "/v1/collections/{name}/documents/{id}") => Needs(Role::Member),
        ("POST", "/v1/collections") | ("PATCH" | "DELETE", "/v1/collections/{name}") => {
            Needs(Role::Admin)
        }
        // Conversation memory per user: the members who remember turns export and delete
        // them (a key issued to a user reaches only that user's, which the handler checks).
        ("GET" | "DELETE", "/v1/memories/{user}") => Needs(Role::Member),
        // Knowledge graphs, as collections: readers read, query and search; members write
        // nodes and relations; admins create and delete graphs.
        (
            "GET",
            "/v1/graphs"
            | "/v1/graphs/{graph}"
            | "/v1/graphs/{graph}/nodes"
            | "/v1/graphs/{graph}/nodes/{id}"
            | "/v1/graphs/{graph}/nodes/{id}/neighbors"
            | "/v1/graphs/{graph}/nodes/{id}/subgraph"
            | "/v1/graphs/{graph}/relations/{id}",
        )
        | ("POST", "/v1/graphs/{graph}/paths" | "/v1/graphs/{graph}/search") => Needs(Role::Reader),
        (
            "POST",
            "/v1/graphs/{graph}/nodes"
            | "/v1/graphs/{graph}/nodes/delete"
            | "/v1/graphs/{graph}/relations",
        )
        | ("DELETE", "/v1/graphs/{graph}/nodes/{id}" | "/v1/graphs/{graph}/relations/{id}") => {
            Needs(Role::Member)
        }
        ("POST", "/v1/graphs") | ("DELETE", "/v1/graphs/{graph}") => Needs(Role::Admin),
        // OpenAI's vector stores: readers read and search; members make, change and delete
        // them, as they upload the files they are made of.
        (
            "GET",
            "/v1/vector_stores"
            | "/v1/vector_stores/{vector_store_id}"
            | "/v1/vector_stores/{vector_store_id}/files"
            | "/v1/vector_stores/{vector_store_id}/files/{file_id}"
            | "/v1/vector_stores/{vector_store_id}/files/{file_id}/content"
            | "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}"
            | "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
        )
        | ("POST", "/v1/vector_stores/{vector_store_id}/search") => Needs(Role::Reader),
        (
            "POST",
            "/v1/vector_stores"
            | "/v1/vector_stores/{vector_store_id}"
            | "/v1/vector_stores/{vector_store_id}/files"
            | "/v1/vector_stores/{vector_store_id}/files/{file_id}"
            | "/v1/vector_stores/{vector_store_id}/file_batches"
            | "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
        )
        | (
            "DELETE",
            "/v1/vector_stores/{vector_store_id}"
            | "/v1/vector_stores/{vector_store_id}/files/{file_id}",
        ) => Needs(Role::Member),
        // Events, in the caller's tenant: members publish, readers follow, admins set topics.
        ("POST", "/v1/events" | "/v1/events/{topic}") => Needs(Role::Member),
        // The WebSocket subscribes as a reader; its publish frames check for a member.
        ("GET", "/v1/events/stream" | "/v1/events/ws" | "/v1/topics/{pattern}") => {
            Needs(Role::Reader)
        }
        ("PUT" | "DELETE", "/v1/topics/{pattern}") => Needs(Role::Admin),
        // Durable consumers: readers consume (fetch and settle), admins create and delete.
        ("GET", "/v1/consumers" | "/v1/consumers/{name}")
        | (
            "POST",
            "/v1/consumers/{name}/fetch"
            | "/v1/consumers/{name}/ack"
            | "/v1/consumers/{name}/nak"
            | "/v1/consumers/{name}/term"
            | "/v1/consumers/{name}/in_progress",
        ) => Needs(Role::Reader),
        ("POST", "/v1/consumers") | ("DELETE", "/v1/consumers/{name}") => Needs(Role::Admin),
        // Webhooks carry a tenant's events out of Hearth: admins only, reading included (an
        // endpoint's delivery log shows what was sent where).
        ("GET" | "POST", "/v1/webhooks")
        | ("GET" | "PATCH" | "DELETE", "/v1/webhooks/{id}")
        | ("GET", "/v1/webhooks/{id}/deliveries")
        | (
            "POST",
            "/v1/webhooks/{id}/rotate_secret" | "/v1/webhooks/{id}/deliveries/{delivery}/retry",
        ) => Needs(Role::Admin),
        // Plugins run inside the server for every tenant: instance admins install and manage
        // them (logs included: any tenant's calls write there); readers see what is installed
        // and members call tools, in their own tenant.
        ("GET", "/v1/plugins" | "/v1/plugins/{plugin}" | "/v1/plugins/{plugin}/subscription") => {
            Needs(Role::Reader)
        }
        // Which of a tenant's events reach a plugin is the tenant admins' choice.
        ("PUT" | "DELETE", "/v1/plugins/{plugin}/subscription") => Needs(Role::Admin),
        ("POST", "/v1/plugins/{plugin}/tools/{tool}") => Needs(Role::Member),
        ("POST", "/v1/plugins")
        | ("DELETE", "/v1/plugins/{plugin}")
        | (
            "POST",
            "/v1/plugins/{plugin}/upgrade"
            | "/v1/plugins/{plugin}/rollback"
            | "/v1/plugins/{plugin}/enable"
            | "/v1/plugins/{plugin}/disable",
        )
        | ("GET", "/v1/plugins/{plugin}/logs" | "/v1/plugins/{plugin}/secrets")
        | ("PUT", "/v1/plugins/{plugin}/config")
        | ("PUT" | "DELETE", "/v1/plugins/{plugin}/secrets/{secret}") => InstanceAdmin,
        // Jobs, in the caller's tenant: readers see them and their history; admins define,
        // remove and run them (a job's webhook carries data out, as webhooks do).
        (
            "GET",
            "/v1/jobs" | "/v1/jobs/{job}" | "/v1/jobs/{job}/runs" | "/v1/jobs/{job}/runs/{run}",
        ) => Needs(Role::Reader),
        ("POST", "/v1/jobs" | "/v1/jobs/{job}/run") | ("PUT" | "DELETE", "/v1/jobs/{job}") => {
            Needs(Role::Admin)
        }
        // Experiments, in the caller's tenant: readers read them and their results; admins
        // define, start, ramp and stop them (they change what traffic gets); members (the
        // applications) send feedback.
        (
            "GET",
            "/v1/experiments"
            | "/v1/experiments/{experiment}"
            | "/v1/experiments/{experiment}/results",
        ) => Needs(Role::Reader),
        ("POST", "/v1/feedback") => Needs(Role::Member),
        ("POST", "/v1/experiments")
        | ("PUT" | "PATCH" | "DELETE", "/v1/experiments/{experiment}")
        | (
            "POST",
            "/v1/experiments/{experiment}/start"
            | "/v1/experiments/{experiment}/pause"
            | "/v1/experiments/{experiment}/stop",
        ) => Needs(Role::Admin),
        // Feature flags, in the caller's tenant: readers read and evaluate them (OFREP is how
        // applications read flags); admins define, switch and remove them.
        ("GET", "/v1/flags" | "/v1/flags/{key}" | "/ofrep/v1/configuration")
        | ("POST", "/ofrep/v1/evaluate/flags" | "/ofrep/v1/evaluate/flags/{key}") => {
            Needs(Role::Reader)
        }
        ("POST", "/v1/flags") | ("PUT" | "PATCH" | "DELETE", "/v1/flags/{key}") => {
            Needs(Role::Admin)
        }
        // Prompt templates, in the caller's tenant: readers read and render them; admins push
        // versions and move labels (what a label points at is what traffic gets).
        (
            "GET",
            "/v1/prompts" | "/v1/prompts/{prompt}" | "/v1/prompts/{prompt}/versions/{version}",
        )
        | ("POST", "/v1/prompts/{prompt}/render") => Needs(Role::Reader),
        ("POST", "/v1/prompts")
        | ("DELETE", "/v1/prompts/{prompt}")
        | ("PUT" | "DELETE", "/v1/prompts/{prompt}/labels/{label}") => Needs(Role::Admin),
        // The admin API scopes each operation to what the caller administers.
        ("GET", "/admin/v1/usage") => Needs(Role::Reader),
        ("GET" | "POST", "/admin/v1/tenants" | "/admin/v1/keys" | "/admin/v1/users")
        | ("GET", "/admin/v1/tenants/{tenant}" | "/admin/v1/audit" | "/admin/v1/upstreams")
        | ("PUT", "/admin/v1/tenants/{tenant}/limits" | "/admin/v1/keys/{key}/limits")
        | ("DELETE", "/admin/v1/keys/{key}" | "/admin/v1/users/{user}")
        | ("POST", "/admin/v1/keys/{key}/rotate") => Needs(Role::Admin),
        _ => return None,
    };
    Some(needs)
}

/// The gateway as the server holds it.
#[derive(Clone)]
pub struct GatewayState {
    pub service: Gateway,
    pub authenticator: Arc<Authenticator>,
    pub limiter: Arc<Limiter>,
    pub usage: UsageRecorder,
    /// Prices of models and targets, for usage costs and budgets; replaced on reload.
    pub prices: Arc<std::sync::RwLock<hearth_gateway::Prices>>,
    /// Bearer JWTs of an OIDC issuer, accepted beside API keys when configured.
    pub oidc: Option<Arc<hearth_gateway::OidcVerifier>>,
    /// Whether requests must present a key. When not (a loopback-only server), requests must
    /// also name a loopback host, so a web page cannot reach the server by DNS rebinding.
    pub require_keys: bool,
}

/// The caller of a request, as handlers see it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A request with a valid key.
    Key(Arc<Principal>),
    /// A request to a server that requires no keys.
    Local,
}

impl Caller {
    /// The gateway actor for administrative operations.
    pub fn actor(&self, source: Option<IpAddr>) -> hearth_gateway::Actor {
        let source = source.map(|ip| ip.to_string());
        match self {
            Caller::Key(principal) => {
                hearth_gateway::Actor::key(Principal::clone(principal), source)
            }
            Caller::Local => hearth_gateway::Actor::Local { source },
        }
    }
}

/// The scope of the instance's own data: what instance keys, and the local user of a server
/// that requires no keys, reach. Tenant ids are UUIDs, so it names no tenant.
pub const INSTANCE_SCOPE: &str = "(instance)";

/// The scope of a tenant's data, or of the instance's own when there is no tenant.
pub fn scope_of(tenant_id: Option<&str>) -> &str {
    tenant_id.unwrap_or(INSTANCE_SCOPE)
}

/// Whose data a request reaches (collections, files, topics): its key's tenant, or the
/// instance's own scope. Never another tenant's, whatever the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TenantScope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let tenant = match parts.extensions.get::<Caller>() {
            Some(Caller::Key(principal)) => principal.tenant_id.as_deref(),
            _ => None,
        };
        Ok(TenantScope(scope_of(tenant).to_string()))
    }
}

/// The scope words that limit the plugins a key may use: `plugin:<name>` each, `plugin:*` for
/// all. A key without any may use every enabled plugin.
pub const PLUGIN_SCOPE_PREFIX: &str = "plugin:";

/// The plugins the caller's key may use (their tools in chats and direct calls).
#[derive(Debug, Clone, Default)]
pub struct CallerPlugins {
    /// `None`: every plugin.
    pub allowed: Option<Vec<String>>,
}

impl CallerPlugins {
    pub fn allows(&self, plugin: &str) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|name| name == plugin))
    }

    /// The refusal of a plugin the key may not use, naming the request field.
    pub fn refuse(&self, plugin: &str, param: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!(
                "this key may use only the plugins its scopes name ({}); not {plugin}",
                self.allowed.as_deref().unwrap_or_default().join(", ")
            ),
        )
        .with_param(param)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CallerPlugins {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(Caller::Key(principal)) = parts.extensions.get::<Caller>() else {
            return Ok(CallerPlugins::default());
        };
        let named: Vec<String> = principal
            .scopes
            .iter()
            .filter_map(|scope| scope.strip_prefix(PLUGIN_SCOPE_PREFIX))
            .map(str::to_owned)
            .collect();
        let allowed = (!named.is_empty() && !named.iter().any(|name| name == "*")).then_some(named);
        Ok(CallerPlugins { allowed })
    }
}

/// The scope word that makes a key's chats remember by default (`memory.remember` unless the
/// request says `false`).
pub const REMEMBER_SCOPE: &str = "memory:remember";

/// The caller, when the gate let one through (a server without a gateway has none).
#[derive(Debug, Clone, Default)]
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeCaller(parts.extensions.get::<Caller>().cloned()))
    }
}

/// The user the caller's key was issued to, if any (whose conversation memory it reaches), and
/// whether its chats remember by default (the key's scope `memory:remember`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerUser {
    pub user: Option<String>,
    pub remember_by_default: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for CallerUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<Caller>() {
            Some(Caller::Key(principal)) => CallerUser {
                user: principal.user_id.clone(),
                remember_by_default: principal.scopes.iter().any(|scope| scope == REMEMBER_SCOPE),
            },
            _ => CallerUser::default(),
        })
    }
}

impl CallerUser {
    /// Whose memory a request reaches: a key issued to a user reaches that user's only (a
    /// request naming another is refused); any other key names the user in the request
    /// (`param` says where), as apps with one key for all their users do.
    pub fn memory_user(&self, named: Option<&str>, param: &str) -> Result<String, ApiError> {
        match (&self.user, named) {
            (Some(own), None) => Ok(own.clone()),
            (Some(own), Some(named)) if named == own => Ok(own.clone()),
            (Some(_), Some(_)) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                "this key belongs to a user and reaches only that user's memory; leave the \
                 user out or use a key without a user",
            )
            .with_param(param)),
            (None, Some(named)) => {
                hearth_memory::check_user(param, named)?;
                Ok(named.to_string())
            }
            (None, None) => Err(ApiError::bad_request(
                "name whose memory this is: `user` (a key issued to a user needs none)",
            )
            .with_param(param)),
        }
    }
}

fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The key a request presents: `Authorization: Bearer`, or `x-api-key` as some SDKs send it.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
    {
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .unwrap_or(text)
            .trim();
        return Some(token);
    }
    headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// Whether `host` (a Host header or URI authority, port included) names this machine.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:4327
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|byte| byte.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_allowed_origin(origin: &str, allowed: &[String]) -> bool {
    let host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    is_loopback_host(host)
        || allowed
            .iter()
            .any(|allowed| allowed == "*" || allowed == origin)
}

fn refuse_auth(error: &AuthError) -> ApiError {
    let code = match error {
        AuthError::Missing => "missing_api_key",
        AuthError::Unknown => "invalid_api_key",
        AuthError::Revoked { .. } => "revoked_api_key",
        AuthError::Expired { .. } => "expired_api_key",
        AuthError::InvalidToken { .. } => "invalid_token",
        AuthError::UnknownTenant { .. } => "unknown_tenant",
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, error.to_string())
}

/// OpenAI writes reset times as Go durations: `1s`, `6m0s`, `20ms`.
fn reset_text(milliseconds: u64) -> String {
    if milliseconds < 1000 {
        return format!("{milliseconds}ms");
    }
    let seconds = milliseconds.div_ceil(1000);
    match (seconds / 3600, (seconds % 3600) / 60, seconds % 60) {
        (0, 0, seconds) => format!("{seconds}s"),
        (0, minutes, seconds) => format!("{minutes}m{seconds}s"),
        (hours, minutes, seconds) => format!("{hours}h{minutes}m{seconds}s"),
    }
}

fn rate_limit_headers(headers: &mut HeaderMap, status: &LimitStatus) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    if let Some(window) = status.requests {
        set("x-ratelimit-limit-requests", window.limit.to_string());
        set(
            "x-ratelimit-remaining-requests",
            window.remaining.to_string(),
        );
        set("x-ratelimit-reset-requests", reset_text(window.reset_ms));
    }
    if let Some(window) = status.tokens {
        set("x-ratelimit-limit-tokens", window.limit.to_string());
        set("x-ratelimit-remaining-tokens", window.remaining.to_string());
        set("x-ratelimit-reset-tokens", reset_text(window.reset_ms));
    }
}

fn refuse_limit(refusal: &LimitExceeded) -> Response {
    let retry_after = refusal.retry_after_ms.div_ceil(1000).max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        refusal.kind.code(),
        refusal.to_string(),
    )
    .with_retry_after(retry_after)
    .into_response();
    rate_limit_headers(response.headers_mut(), &refusal.status);
    response
}

/// The gate, as a route layer (after routing, so the route template is known).
pub(crate) async fn gatekeeper(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(gateway) = state.gateway.clone() else {
        return next.run(request).await;
    };
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let Some(needs) = access(request.method(), &route) else {
        tracing::error!(%route, method = %request.method(), "route without a declared access requirement; refused");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "access_undeclared",
            "this route declares no access requirement, so it is refused",
        )
        .into_response();
    };
    if needs == Access::Public {
        return next.run(request).await;
    }

    let caller = if gateway.require_keys {
        let principal = match presented_key(request.headers()) {
            None => Err(AuthError::Missing),
            Some(token) if hearth_gateway::looks_like_jwt(token) => match &gateway.oidc {
                Some(oidc) => oidc.verify(
                    token,
                    &gateway.authenticator,
                    gateway.limiter.defaults().key,
                ),
                None => Err(AuthError::InvalidToken {
                    reason: "this server accepts API keys only (no OIDC issuer is configured)"
                        .to_string(),
                }),
            },
            Some(secret) => gateway
                .authenticator
                .authenticate(secret, hearth_gateway::now_ms()),
        };
        let principal = match principal {
            Ok(principal) => principal,
            Err(error) => return refuse_auth(&error).into_response(),
        };
        let allowed = match needs {
            Access::Public => true,
            Access::Role(role) => principal.has_role(role),
            Access::InstanceAdmin => principal.administers(None),
        };
        if !allowed {
            let needed = match needs {
                Access::InstanceAdmin => {
                    "an instance admin key (one made without --tenant)".to_owned()
                }
                Access::Role(role) => format!("a key with the {role} role or above"),
                Access::Public => String::new(),
            };
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_permissions",
                format!(
                    "this key ({}..., role {}) cannot use {route}; it needs {needed}",
                    principal.key_prefix, principal.role
                ),
            )
            .into_response();
        }
        Caller::Key(Arc::new(principal))
    } else {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| {
                request
                    .uri()
                    .authority()
                    .map(|authority| authority.as_str())
            });
        if host.is_some_and(|host| !is_loopback_host(host)) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                "this server requires no API keys because it listens on loopback only, so it \
                 answers only requests for localhost; to serve other hosts, listen on their \
                 address (API keys are then required) or set auth.mode = \"on\"",
            )
            .into_response();
        }
        if let Some(origin) = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok())
            && !is_allowed_origin(origin, &state.settings.cors_allowed_origins)
        {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!(
                    "requests from web pages at {origin} are refused; allow the origin in \
                     server.cors_allowed_origins"
                ),
            )
            .into_response();
        }
        Caller::Local
    };

    let ip = client_ip(&request);
    let principal = match &caller {
        Caller::Key(principal) => Some(principal.as_ref()),
        Caller::Local => None,
    };
    let admission = match gateway
        .limiter
        .admit(principal, ip, hearth_gateway::now_ms())
    {
        Ok(admission) => admission,
        Err(refusal) => {
            report_exceeded(&state, &caller, &refusal);
            return refuse_limit(&refusal);
        }
    };
    let status = admission.status;
    let meter = Meter::new(admission, gateway.limiter.clone());
    request.extensions_mut().insert(caller.clone());
    request.extensions_mut().insert(meter.clone());

    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut response = next.run(request).await;
    rate_limit_headers(response.headers_mut(), &status);
    let finish = Finish {
        request_id,
        experiments: state.experiments.clone(),
        meter,
        caller,
        route,
        status: response.status().as_u16(),
        started,
        usage: gateway.usage.clone(),
        prices: gateway.prices.clone(),
        events: state.events.clone(),
    };
    response.map(|body| {
        Body::new(MeteredBody {
            body,
            _finish: finish,
        })
    })
}

/// What a finished meter is recorded as: the model asked for, the target that served it and
/// the cost of its tokens (none for a cache hit).
struct Priced {
    model: String,
    target: String,
    cost_micro_usd: u64,
}

#[derive(Debug, Default)]
struct MeterState {
    model: Option<String>,
    /// The upstream target that served the request; local when unset.
    target: Option<String>,
    cache_hit: bool,
    prompt_tokens: u64,
    completion_tokens: u64,
    first_token_at: Option<Instant>,
    /// The prompt template the request rendered, and its version.
    prompt: Option<(String, u32)>,
    /// The experiment variant the request was assigned, recorded as an exposure at the end.
    experiment: Option<hearth_experiments::Assignment>,
    /// The answer's own id (`chatcmpl-...`, `resp_...`), which feedback may name.
    response_id: Option<String>,
}

impl MeterState {
    /// `None` when no model was used (nothing to record).
    fn priced(&self, prices: &std::sync::RwLock<hearth_gateway::Prices>) -> Option<Priced> {
        let model = self.model.clone()?;
        let target = self
            .target
            .clone()
            .unwrap_or_else(|| format!("local/{model}"));
        let cost_micro_usd = if self.cache_hit {
            0
        } else {
            prices
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .cost_micro_usd(&target, self.prompt_tokens, self.completion_tokens)
        };
        Some(Priced {
            model,
            target,
            cost_micro_usd,
        })
    }
}

/// What one request used, reported by its handler while it runs; the gate records it when
/// the response is complete. Tokens are charged to the caller's token limits as they come.
#[derive(Clone)]
pub struct Meter {
    inner: Arc<MeterInner>,
}

struct MeterInner {
    state: Mutex<MeterState>,
    /// Held until the last clone is gone (the stream ended): concurrency slots stay taken.
    admission: Option<Admission>,
    limiter: Option<Arc<Limiter>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Meter").finish_non_exhaustive()
    }
}

impl Meter {
    fn new(admission: Admission, limiter: Arc<Limiter>) -> Meter {
        Meter {
            inner: Arc::new(MeterInner {
                state: Mutex::default(),
                admission: Some(admission),
                limiter: Some(limiter),
            }),
        }
    }

    /// A meter that records nothing, for servers without a gateway (and plugins' model calls,
    /// which no request carries).
    pub(crate) fn detached() -> Meter {
        Meter {
            inner: Arc::new(MeterInner {
                state: Mutex::default(),
                admission: None,
                limiter: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn charge(&self, tokens: u64) {
        if let (Some(limiter), Some(admission)) = (&self.inner.limiter, &self.inner.admission) {
            limiter.charge(admission, tokens, hearth_gateway::now_ms());
        }
    }

    fn charge_cost(&self, micro_usd: u64) {
        if let (Some(limiter), Some(admission)) = (&self.inner.limiter, &self.inner.admission) {
            limiter.charge_cost(admission, micro_usd, hearth_gateway::now_ms());
        }
    }

    /// Counts `count` more requests against the caller's per-minute request limits (a batch
    /// that is many requests in one); all or none.
    pub fn take_more_requests(&self, count: u64) -> Result<(), ApiError> {
        if let (Some(limiter), Some(admission)) = (&self.inner.limiter, &self.inner.admission) {
            limiter
                .take_more(admission, count, hearth_gateway::now_ms())
                .map_err(|refusal| {
                    ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        refusal.kind.code(),
                        format!("{refusal} (each event of a batch counts as a request)"),
                    )
                    .with_retry_after(refusal.retry_after_ms.div_ceil(1000).max(1))
                })?;
        }
        Ok(())
    }

    /// The request was answered from a cache: it used no tokens.
    pub fn cache_hit(&self, model: &str) {
        let mut state = self.state();
        state.model = Some(model.to_owned());
        state.target = Some("cache".to_owned());
        state.cache_hit = true;
    }

    /// The request rendered this version of a prompt template (its usage row says so).
    pub fn used_prompt(&self, name: &str, version: u32) {
        self.state().prompt = Some((name.to_owned(), version));
    }

    /// The request was assigned an experiment's variant: its end is recorded as an exposure.
    pub fn assigned(&self, assignment: hearth_experiments::Assignment) {
        self.state().experiment = Some(assignment);
    }

    /// The answer's own id, by which feedback may name the request.
    pub fn answered_as(&self, id: &str) {
        let mut state = self.state();
        if state.experiment.is_some() {
            state.response_id = Some(id.to_owned());
        }
    }

    /// The upstream target (`primary/gpt-4o-mini`) that served the request.
    pub fn served_by(&self, target: &str) {
        self.state().target = Some(target.to_owned());
    }

    /// Records what a meter no request carried saw (a plugin's model call) as a usage row of
    /// `tenant`, with its cost, under `route`.
    pub(crate) fn record_detached(
        &self,
        gateway: &GatewayState,
        tenant: &str,
        route: &str,
        status: u16,
        latency: std::time::Duration,
    ) {
        let state = self.state();
        let Some(Priced {
            model,
            target,
            cost_micro_usd,
        }) = state.priced(&gateway.prices)
        else {
            return;
        };
        gateway.usage.record(UsageEvent {
            at_ms: hearth_gateway::now_ms(),
            tenant_id: (tenant != INSTANCE_SCOPE).then(|| tenant.to_string()),
            key_id: None,
            user_id: None,
            target,
            model,
            route: route.to_string(),
            status,
            prompt_tokens: state.prompt_tokens,
            completion_tokens: state.completion_tokens,
            latency_ms: latency.as_millis() as u64,
            time_to_first_token_ms: None,
            cache_hit: false,
            cost_micro_usd,
            prompt_id: None,
            prompt_version: None,
        });
    }

    #[cfg(test)]
    pub(crate) fn detached_for_tests() -> Meter {
        Meter::detached()
    }

    /// The model serving the request and the prompt it read.
    pub fn started(&self, model: &str, prompt_tokens: usize) {
        let tokens = prompt_tokens as u64;
        {
            let mut state = self.state();
            state.model = Some(model.to_owned());
            state.prompt_tokens += tokens;
        }
        self.charge(tokens);
    }

    /// `count` more tokens generated.
    pub fn generated(&self, count: usize) {
        if count == 0 {
            return;
        }
        {
            let mut state = self.state();
            state.first_token_at.get_or_insert_with(Instant::now);
            state.completion_tokens += count as u64;
        }
        self.charge(count as u64);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Meter {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Meter>()
            .cloned()
            .unwrap_or_else(Meter::detached))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unavailable("the gateway is not configured on this server"))
    }
}

/// A generation whose tokens are reported to the request's [`Meter`] as they come.
pub struct MeteredGeneration {
    inner: hearth_engine::GenerationStream,
    meter: Meter,
    /// Token events seen; the final count in `Done` may add the end-of-turn token.
    seen: usize,
}

impl MeteredGeneration {
    pub fn new(inner: hearth_engine::GenerationStream, meter: Meter) -> MeteredGeneration {
        MeteredGeneration {
            inner,
            meter,
            seen: 0,
        }
    }

    pub async fn collect(self) -> Result<hearth_engine::Completion, hearth_engine::EngineError> {
        hearth_engine::Completion::gather(self).await
    }
}

impl futures_util::Stream for MeteredGeneration {
    type Item = Result<hearth_engine::GenerationEvent, hearth_engine::EngineError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(context);
        if let Poll::Ready(Some(Ok(event))) = &polled {
            match event {
                hearth_engine::GenerationEvent::Token { .. } => {
                    self.seen += 1;
                    self.meter.generated(1);
                }
                hearth_engine::GenerationEvent::Done { usage, .. } => {
                    let rest = usage.completion_tokens.saturating_sub(self.seen);
                    self.seen = usage.completion_tokens;
                    self.meter.generated(rest);
                }
                hearth_engine::GenerationEvent::Text { .. } => {}
            }
        }
        polled
    }
}

/// The client's address, when the server knows it (not in in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip()),
        ))
    }
}

/// Records the request's usage when the response body is done (sent, or abandoned by the
/// client), which for a stream is when the last token went out.
struct Finish {
    /// The request's `x-request-id`, which feedback names.
    request_id: Option<String>,
    experiments: Option<hearth_experiments::Experiments>,
    meter: Meter,
    caller: Caller,
    route: String,
    status: u16,
    started: Instant,
    usage: UsageRecorder,
    prices: Arc<std::sync::RwLock<hearth_gateway::Prices>>,
    /// Where `hearth.completion.finished` goes.
    events: Option<Arc<hearth_events::Events>>,
}

/// Publishes `hearth.quota.exceeded` or `hearth.budget.exceeded` in the key's tenant when a
/// daily or monthly token quota or the budget refused a request (at most once a minute per
/// key and limit; per-minute rate limits are not reported).
fn report_exceeded(state: &AppState, caller: &Caller, refusal: &LimitExceeded) {
    let topic = match refusal.kind {
        hearth_gateway::LimitKind::TokensPerDay | hearth_gateway::LimitKind::TokensPerMonth => {
            "hearth.quota.exceeded"
        }
        hearth_gateway::LimitKind::Budget => "hearth.budget.exceeded",
        _ => return,
    };
    let Caller::Key(principal) = caller else {
        return;
    };
    let holder = format!("{}/{}", principal.key_id, refusal.kind.code());
    if !crate::system_events::limit_event_due(holder) {
        return;
    }
    crate::system_events::spawn_emit(
        state.events.clone(),
        scope_of(principal.tenant_id.as_deref()).to_string(),
        topic,
        serde_json::json!({
            "key_prefix": principal.key_prefix,
            "user_id": principal.user_id,
            "holder": refusal.holder,
            "limit": refusal.limit,
            "unit": refusal.kind.describe(),
            "retry_after_ms": refusal.retry_after_ms,
        }),
    );
}

impl Finish {
    /// Records an assigned request's exposure: what it measured, under its unit and variant.
    fn record_exposure(&self, state: &mut MeterState, cost_micro_usd: u64) {
        let (Some(experiments), Some(assignment)) = (&self.experiments, state.experiment.take())
        else {
            return;
        };
        let tenant = match &self.caller {
            Caller::Key(principal) => principal.tenant_id.as_deref(),
            Caller::Local => None,
        };
        let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let measured = hearth_experiments::Measured {
            request_id: self.request_id.clone().unwrap_or_default(),
            response_id: state.response_id.take(),
            at_ms: hearth_gateway::now_ms(),
            latency_ms: signed(self.started.elapsed().as_millis() as u64),
            time_to_first_token_ms: state
                .first_token_at
                .map(|at| signed(at.saturating_duration_since(self.started).as_millis() as u64)),
            prompt_tokens: signed(state.prompt_tokens),
            completion_tokens: signed(state.completion_tokens),
            cost_micro_usd: signed(cost_micro_usd),
            error: self.status >= 400,
            cache_hit: state.cache_hit,
        };
        if !experiments.record(scope_of(tenant), &assignment, measured) {
            metrics::counter!("hearth_experiment_exposures_dropped_total").increment(1);
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        let meter = self.meter.clone();
        let mut state = meter.state();
        // Priced once: the exposure and the usage row share the cost.
        let priced = state.priced(&self.prices);
        self.record_exposure(
            &mut state,
            priced.as_ref().map_or(0, |priced| priced.cost_micro_usd),
        );
        let Some(Priced {
            model,
            target,
            cost_micro_usd,
        }) = priced
        else {
            return;
        };
        let (prompt_tokens, completion_tokens, first_token_at, cache_hit) = (
            state.prompt_tokens,
            state.completion_tokens,
            state.first_token_at,
            state.cache_hit,
        );
        let (prompt_id, prompt_version) = state.prompt.clone().unzip();
        drop(state);
        self.meter.charge_cost(cost_micro_usd);
        let (tenant_id, key_id, user_id) = match &self.caller {
            Caller::Key(principal) => (
                principal.tenant_id.clone(),
                Some(principal.key_id.clone()),
                principal.user_id.clone(),
            ),
            Caller::Local => (None, None, None),
        };
        let latency_ms = self.started.elapsed().as_millis() as u64;
        let time_to_first_token_ms =
            first_token_at.map(|at| at.saturating_duration_since(self.started).as_millis() as u64);
        if crate::system_events::is_completion(&self.route) {
            let key_prefix = match &self.caller {
                Caller::Key(principal) => Some(principal.key_prefix.clone()),
                Caller::Local => None,
            };
            crate::system_events::spawn_emit(
                self.events.clone(),
                scope_of(tenant_id.as_deref()).to_string(),
                "hearth.completion.finished",
                serde_json::json!({
                    "model": model, "target": target, "route": self.route,
                    "status": self.status, "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens, "latency_ms": latency_ms,
                    "time_to_first_token_ms": time_to_first_token_ms, "cache_hit": cache_hit,
                    "cost_micro_usd": cost_micro_usd, "key_prefix": key_prefix,
                    "user_id": user_id,
                }),
            );
        }
        self.usage.record(UsageEvent {
            at_ms: hearth_gateway::now_ms(),
            tenant_id,
            key_id,
            user_id,
            target,
            model,
            route: std::mem::take(&mut self.route),
            status: self.status,
            prompt_tokens,
            completion_tokens,
            latency_ms,
            time_to_first_token_ms,
            cache_hit,
            cost_micro_usd,
            prompt_id,
            prompt_version,
        });
    }
}

struct MeteredBody {
    body: Body,
    _finish: Finish,
}

impl HttpBody for MeteredBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_with_and_without_ports() {
        for host in [
            "localhost",
            "localhost:4327",
            "127.0.0.1:4327",
            "[::1]:4327",
            "app.localhost:80",
            "127.1.2.3",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:4327",
            "192.168.1.2",
            "localhost.evil.example",
            "[2001:db8::1]:80",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn reset_times_are_written_like_openai() {
        assert_eq!(reset_text(20), "20ms");
        assert_eq!(reset_text(1000), "1s");
        assert_eq!(reset_text(360_000), "6m0s");
        assert_eq!(reset_text(3_725_000), "1h2m5s");
    }

    #[test]
    fn keys_are_read_from_bearer_or_x_api_key() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hk_abc"),
        );
        assert_eq!(presented_key(&headers), Some("hk_abc"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("hk_def"));
        assert_eq!(presented_key(&headers), Some("hk_def"));
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn the_access_table_says_who_may_do_what() {
        let cases = [
            (Method::GET, "/healthz", Access::Public),
            (Method::GET, "/api/version", Access::Public),
            (Method::GET, "/v1/models", Access::Role(Role::Reader)),
            (Method::GET, "/metrics", Access::Role(Role::Reader)),
            (
                Method::POST,
                "/v1/chat/completions",
                Access::Role(Role::Member),
            ),
            (Method::POST, "/api/embed", Access::Role(Role::Member)),
            (Method::POST, "/api/pull", Access::InstanceAdmin),
            (Method::DELETE, "/api/delete", Access::InstanceAdmin),
            (Method::POST, "/admin/v1/keys", Access::Role(Role::Admin)),
            (Method::GET, "/admin/v1/audit", Access::Role(Role::Admin)),
            (Method::GET, "/admin/v1/usage", Access::Role(Role::Reader)),
            (Method::POST, "/admin/v1/users", Access::Role(Role::Admin)),
            (
                Method::DELETE,
                "/admin/v1/users/{user}",
                Access::Role(Role::Admin),
            ),
            // Vector stores: readers search, members make them and attach files.
            (
                Method::POST,
                "/v1/vector_stores/{vector_store_id}/search",
                Access::Role(Role::Reader),
            ),
            (
                Method::GET,
                "/v1/vector_stores/{vector_store_id}/files/{file_id}/content",
                Access::Role(Role::Reader),
            ),
            (
                Method::POST,
                "/v1/vector_stores",
                Access::Role(Role::Member),
            ),
            (
                Method::POST,
                "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
                Access::Role(Role::Member),
            ),
            (
                Method::DELETE,
                "/v1/vector_stores/{vector_store_id}",
                Access::Role(Role::Member),
            ),
            // Jobs: readers read them, admins define and run them.
            (
                Method::GET,
                "/v1/jobs/{job}/runs/{run}",
                Access::Role(Role::Reader),
            ),
            (Method::PUT, "/v1/jobs/{job}", Access::Role(Role::Admin)),
            (
                Method::PUT,
                "/v1/plugins/{plugin}/secrets/{secret}",
                Access::InstanceAdmin,
            ),
            (
                Method::POST,
                "/v1/jobs/{job}/run",
                Access::Role(Role::Admin),
            ),
            // Experiments: members send feedback, admins start.
            (Method::POST, "/v1/feedback", Access::Role(Role::Member)),
            (
                Method::POST,
                "/v1/experiments/{experiment}/start",
                Access::Role(Role::Admin),
            ),
            // Flags: readers evaluate, admins define.
            (
                Method::POST,
                "/ofrep/v1/evaluate/flags/{key}",
                Access::Role(Role::Reader),
            ),
            (Method::PATCH, "/v1/flags/{key}", Access::Role(Role::Admin)),
            // Prompts: readers read and render, admins push and label.
            (
                Method::POST,
                "/v1/prompts/{prompt}/render",
                Access::Role(Role::Reader),
            ),
            (Method::POST, "/v1/prompts", Access::Role(Role::Admin)),
            (
                Method::PUT,
                "/v1/prompts/{prompt}/labels/{label}",
                Access::Role(Role::Admin),
            ),
            // Plugins run for every tenant: instance admins manage them, members call tools.
            (Method::GET, "/v1/plugins", Access::Role(Role::Reader)),
            (Method::POST, "/v1/plugins", Access::InstanceAdmin),
            (
                Method::POST,
                "/v1/plugins/{plugin}/upgrade",
                Access::InstanceAdmin,
            ),
            (
                Method::GET,
                "/v1/plugins/{plugin}/logs",
                Access::InstanceAdmin,
            ),
            (
                Method::POST,
                "/v1/plugins/{plugin}/tools/{tool}",
                Access::Role(Role::Member),
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(access(&method, path), Some(expected), "{method} {path}");
        }
        assert_eq!(access(&Method::GET, "/v1/secret-new-route"), None);
    }

    #[test]
    fn every_route_declares_its_access() {
        let document = crate::openapi_document();
        let mut missing = Vec::new();
        for (path, item) in &document.paths.paths {
            let operations = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
            ];
            for (method, present) in operations {
                if present && access(&method, path).is_none() {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "routes without an access requirement: {missing:?}"
        );
        // The docs routes are served outside the OpenAPI document.
        assert_eq!(access(&Method::GET, "/docs"), Some(Access::Public));
        assert_eq!(access(&Method::GET, "/openapi.json"), Some(Access::Public));
    }
}
