//! Plugins under `/v1/plugins`: installing, upgrading, rolling back, enabling, disabling and
//! removing WebAssembly plugins (instance admins: a plugin runs inside the server for every
//! tenant), reading what they offer (readers), calling their tools (members, in their own
//! tenant: a plugin's key-value store and the events it publishes are the caller's tenant's)
//! and sending a tenant's events to a plugin's handler (the tenant's admins).
//! Each handler parses, calls one `hearth-plugins` function and maps the result; admin
//! changes are audited.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use hearth_plugins::Plugins;
use serde_json::Value;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::{Caller, CallerPlugins, ClientAddress, TenantScope};
use crate::state::AppState;
use crate::wire::admin::List;
use crate::wire::memory::Deleted;
use crate::wire::plugins::*;

const DEFAULT_LOG_LINES: usize = 100;
const MAX_LOG_LINES: usize = 1000;

fn plugins(state: &AppState) -> Result<Plugins, ApiError> {
    state
        .plugins
        .clone()
        .ok_or_else(|| ApiError::unavailable("plugins are not configured on this server"))
}

/// Records an admin change to a plugin in the audit trail (when the server has a gateway).
async fn audit(
    state: &AppState,
    caller: &Caller,
    ip: Option<std::net::IpAddr>,
    action: &str,
    plugin: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    if let Some(gateway) = &state.gateway {
        gateway
            .service
            .audit(
                &caller.actor(ip),
                action,
                None,
                Some(plugin.to_string()),
                detail,
                hearth_time::now_ms(),
            )
            .await?;
    }
    Ok(())
}

fn component_bytes(request: &PluginIn) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(request.component.trim())
        .map_err(|error| {
            ApiError::bad_request(format!("component is not base64: {error}"))
                .with_param("component")
        })
}

/// Every installed plugin, by name, with its tools.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses((status = 200, description = "The installed plugins", body = List<PluginOut>)))]
pub async fn list_plugins(
    State(state): State<AppState>,
) -> Result<Json<List<PluginOut>>, ApiError> {
    let list = plugins(&state)?.list();
    Ok(Json(List::of(list.into_iter().map(PluginOut::from))))
}

/// Installs a plugin: its manifest and its component (base64). Refused, with nothing
/// installed, when the component imports what the manifest does not grant.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins",
    request_body = PluginIn,
    responses(
        (status = 201, description = "The installed plugin", body = PluginOut),
        (status = 400, description = "A bad manifest field, a refused import or not a component", body = ErrorBody),
        (status = 409, description = "A plugin of that name is installed", body = ErrorBody)))]
pub async fn install_plugin(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<PluginIn>,
) -> Result<(StatusCode, Json<PluginOut>), ApiError> {
    let component = component_bytes(&request)?;
    let info = plugins(&state)?
        .install(&request.manifest, &component, request.signature.as_deref())
        .await?;
    let detail = format!("version {} sha256 {}", info.manifest.version, info.sha256);
    audit(
        &state,
        &caller,
        ip,
        "plugin.install",
        &info.manifest.name,
        Some(detail),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// One installed plugin.
#[utoipa::path(get, path = "/v1/plugins/{plugin}", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The plugin", body = PluginOut),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn get_plugin(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
) -> Result<Json<PluginOut>, ApiError> {
    Ok(Json(plugins(&state)?.get(&plugin)?.into()))
}

/// Removes a plugin with its key-value store.
#[utoipa::path(delete, path = "/v1/plugins/{plugin}", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "Removed", body = Deleted),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn remove_plugin(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(plugin): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    plugins(&state)?.remove(&plugin).await?;
    audit(&state, &caller, ip, "plugin.remove", &plugin, None).await?;
    Ok(Json(Deleted {
        id: plugin,
        object: "plugin.deleted",
        deleted: true,
    }))
}

/// Installs a new version of a plugin: calls from now on go to it, calls in flight finish on
/// the old one, which a rollback returns to.
#[utoipa::path(post, path = "/v1/plugins/{plugin}/upgrade", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    request_body = PluginIn,
    responses(
        (status = 200, description = "The plugin at its new version", body = PluginOut),
        (status = 400, description = "A bad manifest field (its name must be the plugin's), a refused import or not a component", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn upgrade_plugin(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(plugin): Path<String>,
    ApiJson(request): ApiJson<PluginIn>,
) -> Result<Json<PluginOut>, ApiError> {
    let component = component_bytes(&request)?;
    let info = plugins(&state)?
        .upgrade(
            &plugin,
            &request.manifest,
            &component,
            request.signature.as_deref(),
        )
        .await?;
    let detail = format!("version {} sha256 {}", info.manifest.version, info.sha256);
    audit(&state, &caller, ip, "plugin.upgrade", &plugin, Some(detail)).await?;
    Ok(Json(info.into()))
}

/// Returns a plugin to the version it had before its last upgrade.
#[utoipa::path(post, path = "/v1/plugins/{plugin}/rollback", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The plugin at its earlier version", body = PluginOut),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "No earlier version", body = ErrorBody)))]
pub async fn rollback_plugin(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(plugin): Path<String>,
) -> Result<Json<PluginOut>, ApiError> {
    let info = plugins(&state)?.rollback(&plugin).await?;
    let detail = format!("to version {}", info.manifest.version);
    audit(
        &state,
        &caller,
        ip,
        "plugin.rollback",
        &plugin,
        Some(detail),
    )
    .await?;
    Ok(Json(info.into()))
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    ip: Option<std::net::IpAddr>,
    plugin: String,
    enabled: bool,
) -> Result<Json<PluginOut>, ApiError> {
    let info = plugins(&state)?.set_enabled(&plugin, enabled).await?;
    let action = if enabled {
        "plugin.enable"
    } else {
        "plugin.disable"
    };
    audit(&state, &caller, ip, action, &plugin, None).await?;
    Ok(Json(info.into()))
}

/// Sets a plugin's configuration (a JSON object, checked against its manifest's
/// `config_schema`); calls from now on read it.
#[utoipa::path(put, path = "/v1/plugins/{plugin}/config", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    request_body(content = Object, description = "The configuration"),
    responses(
        (status = 200, description = "The plugin with its configuration", body = PluginOut),
        (status = 400, description = "Not an object, or not what the schema asks", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn configure_plugin(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(plugin): Path<String>,
    ApiJson(config): ApiJson<Value>,
) -> Result<Json<PluginOut>, ApiError> {
    let info = plugins(&state)?.configure(&plugin, &config).await?;
    audit(&state, &caller, ip, "plugin.configure", &plugin, None).await?;
    Ok(Json(info.into()))
}

/// The secrets a plugin declares or has set: names only, never values.
#[utoipa::path(get, path = "/v1/plugins/{plugin}/secrets", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The secrets", body = List<SecretOut>),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn list_secrets(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
) -> Result<Json<List<SecretOut>>, ApiError> {
    let secrets = plugins(&state)?.secrets(&plugin).await?;
    Ok(Json(List::of(secrets.into_iter().map(SecretOut::from))))
}

/// Sets a secret the plugin's manifest declares (`capabilities.secrets`); the plugin reads it
/// from its next call. The value is never answered back.
#[utoipa::path(put, path = "/v1/plugins/{plugin}/secrets/{secret}", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name"),
           ("secret" = String, Path, description = "The secret's name")),
    request_body = SecretIn,
    responses(
        (status = 200, description = "The secret, without its value", body = SecretOut),
        (status = 400, description = "Not a declared secret, or an empty value", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn put_secret(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path((plugin, secret)): Path<(String, String)>,
    ApiJson(request): ApiJson<SecretIn>,
) -> Result<Json<SecretOut>, ApiError> {
    let service = plugins(&state)?;
    service.set_secret(&plugin, &secret, &request.value).await?;
    audit(
        &state,
        &caller,
        ip,
        "plugin.secret.set",
        &plugin,
        Some(secret.clone()),
    )
    .await?;
    let found = service
        .secrets(&plugin)
        .await?
        .into_iter()
        .find(|info| info.name == secret)
        .ok_or_else(|| ApiError::internal("a secret just set is not listed"))?;
    Ok(Json(found.into()))
}

/// Removes a secret.
#[utoipa::path(delete, path = "/v1/plugins/{plugin}/secrets/{secret}", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name"),
           ("secret" = String, Path, description = "The secret's name")),
    responses(
        (status = 200, description = "Removed", body = Deleted),
        (status = 404, description = "No such plugin or secret", body = ErrorBody)))]
pub async fn delete_secret(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path((plugin, secret)): Path<(String, String)>,
) -> Result<Json<Deleted>, ApiError> {
    if !plugins(&state)?.delete_secret(&plugin, &secret).await? {
        return Err(ApiError::not_found(format!(
            "plugin {plugin} has no secret {secret} set"
        )));
    }
    audit(
        &state,
        &caller,
        ip,
        "plugin.secret.delete",
        &plugin,
        Some(secret.clone()),
    )
    .await?;
    Ok(Json(Deleted {
        id: secret,
        object: "plugin.secret.deleted",
        deleted: true,
    }))
}

/// Enables a plugin (and resets its breaker).
#[utoipa::path(post, path = "/v1/plugins/{plugin}/enable", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The plugin", body = PluginOut),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn enable_plugin(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(plugin): Path<String>,
) -> Result<Json<PluginOut>, ApiError> {
    set_enabled(state, caller, ip, plugin, true).await
}

/// Disables a plugin: its tools and handlers answer 409 until it is enabled.
#[utoipa::path(post, path = "/v1/plugins/{plugin}/disable", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The plugin", body = PluginOut),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn disable_plugin(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(plugin): Path<String>,
) -> Result<Json<PluginOut>, ApiError> {
    set_enabled(state, caller, ip, plugin, false).await
}

/// A plugin's latest log lines (its own, and the host's notes of stopped calls), oldest first.
#[utoipa::path(get, path = "/v1/plugins/{plugin}/logs", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name"),
           ("limit" = Option<usize>, Query, description = "1–1000, default 100")),
    responses(
        (status = 200, description = "Log lines", body = List<LogLineOut>),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn plugin_logs(
    State(state): State<AppState>,
    Path(plugin): Path<String>,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> Result<Json<List<LogLineOut>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LOG_LINES);
    if !(1..=MAX_LOG_LINES).contains(&limit) {
        return Err(
            ApiError::bad_request(format!("limit is 1 to {MAX_LOG_LINES}")).with_param("limit"),
        );
    }
    let lines = plugins(&state)?.logs(&plugin, limit)?;
    Ok(Json(List::of(lines.into_iter().map(LogLineOut::from))))
}

/// Calls a plugin's tool with the request body as its arguments (a JSON object), in the
/// caller's tenant.
#[utoipa::path(post, path = "/v1/plugins/{plugin}/tools/{tool}", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name"),
           ("tool" = String, Path, description = "The tool's name")),
    request_body(content = Object, description = "The tool's arguments"),
    responses(
        (status = 200, description = "The tool's answer", body = ToolCallOut),
        (status = 400, description = "The arguments are not an object", body = ErrorBody),
        (status = 404, description = "No such plugin or tool", body = ErrorBody),
        (status = 409, description = "The plugin is disabled", body = ErrorBody),
        (status = 422, description = "The tool answered an error of its own", body = ErrorBody),
        (status = 502, description = "The sandbox stopped the call (cpu, memory, time or trap)", body = ErrorBody)))]
pub async fn call_tool(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: CallerPlugins,
    Path((plugin, tool)): Path<(String, String)>,
    ApiJson(arguments): ApiJson<Value>,
) -> Result<Json<ToolCallOut>, ApiError> {
    if !access.allows(&plugin) {
        return Err(access.refuse(&plugin, "plugin"));
    }
    let arguments =
        serde_json::to_string(&arguments).map_err(|error| ApiError::internal(error.to_string()))?;
    let output = plugins(&state)?
        .call_tool(&plugin, &tool, &arguments, &tenant)
        .await?;
    Ok(Json(ToolCallOut {
        object: "plugin.tool_call",
        plugin,
        tool,
        output: output.output,
        duration_ms: output.duration.as_secs_f64() * 1000.0,
    }))
}

async fn subscription(
    plugins: &Plugins,
    plugin: String,
    tenant: &str,
) -> Result<Json<SubscriptionOut>, ApiError> {
    let subscribed = plugins.subscribed(&plugin, tenant).await?;
    let topics = plugins.get(&plugin)?.manifest.capabilities.subscribe;
    Ok(Json(SubscriptionOut {
        object: "plugin.subscription",
        plugin,
        subscribed,
        topics,
    }))
}

/// Whether the caller's tenant sends its events to the plugin's handler.
#[utoipa::path(get, path = "/v1/plugins/{plugin}/subscription", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionOut),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn get_subscription(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(plugin): Path<String>,
) -> Result<Json<SubscriptionOut>, ApiError> {
    subscription(&plugins(&state)?, plugin, &tenant).await
}

/// Sends the caller's tenant's events on the plugin's topics to its handler, from now on
/// (at least once: acknowledged when it returns, delivered again when it fails, dead-lettered
/// to `hearth.plugin.dead_letter` after 5 deliveries).
#[utoipa::path(put, path = "/v1/plugins/{plugin}/subscription", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionOut),
        (status = 400, description = "The plugin handles no events", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn put_subscription(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(plugin): Path<String>,
) -> Result<Json<SubscriptionOut>, ApiError> {
    let plugins = plugins(&state)?;
    plugins.subscribe(&plugin, &tenant).await?;
    subscription(&plugins, plugin, &tenant).await
}

/// Stops sending the caller's tenant's events to the plugin.
#[utoipa::path(delete, path = "/v1/plugins/{plugin}/subscription", tag = "plugins",
    params(("plugin" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The subscription, now off", body = SubscriptionOut),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
pub async fn delete_subscription(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(plugin): Path<String>,
) -> Result<Json<SubscriptionOut>, ApiError> {
    let plugins = plugins(&state)?;
    plugins.unsubscribe(&plugin, &tenant).await?;
    subscription(&plugins, plugin, &tenant).await
}
