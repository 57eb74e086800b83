//! Feature flags: `/v1/flags`, in the caller's tenant (readers read, admins define, replace,
//! switch off and remove, each change audited), and the OpenFeature Remote Evaluation Protocol
//! under `/ofrep/v1`, so the official OpenFeature SDKs' OFREP providers evaluate a tenant's
//! flags unchanged. OFREP answers in its own shapes (`errorCode`, not OpenAI's errors), as its
//! providers expect.
//!
//! The context an application sends cannot speak for the caller: `$tenant` (the key's tenant
//! name), `$user` (the key's user) and `$key` (the key's prefix) are set here from the key,
//! and a context that sends its own `$` attributes is refused.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_flags::{Context, ErrorCode, Flags};
use serde_json::{Map, Value, json};

use super::audit::audit;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::gate::{Caller, ClientAddress, TenantScope};
use crate::state::AppState;
use crate::wire::admin::List;
use crate::wire::flags::*;
use crate::wire::memory::Deleted;

fn flags(state: &AppState) -> Result<&Flags, ApiError> {
    state
        .flags
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("flags are not configured on this server"))
}

/// The tenant's flags, by key.
#[utoipa::path(get, path = "/v1/flags", tag = "flags",
    responses((status = 200, description = "The flags", body = List<FlagOut>)))]
pub async fn list_flags(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
) -> Result<Json<List<FlagOut>>, ApiError> {
    let list = flags(&state)?.list(&tenant);
    Ok(Json(List::of(list.into_iter().map(FlagOut::from))))
}

/// Defines a flag.
#[utoipa::path(post, path = "/v1/flags", tag = "flags",
    request_body = FlagIn,
    responses(
        (status = 201, description = "The flag", body = FlagOut),
        (status = 400, description = "A bad field (named in `param`)", body = ErrorBody),
        (status = 409, description = "A flag of that key exists", body = ErrorBody)))]
pub async fn create_flag(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<FlagIn>,
) -> Result<(StatusCode, Json<FlagOut>), ApiError> {
    let Some(key) = request.key.clone() else {
        return Err(ApiError::bad_request("give the flag a key").with_param("key"));
    };
    let spec = request.into_spec()?;
    let info = flags(&state)?
        .put(&tenant, &key, spec, false, hearth_time::now_ms())
        .await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "flag.define",
        &key,
        None,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// One flag.
#[utoipa::path(get, path = "/v1/flags/{key}", tag = "flags",
    params(("key" = String, Path, description = "The flag's key")),
    responses(
        (status = 200, description = "The flag", body = FlagOut),
        (status = 404, description = "No such flag", body = ErrorBody)))]
pub async fn get_flag(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(key): Path<String>,
) -> Result<Json<FlagOut>, ApiError> {
    Ok(Json(flags(&state)?.get(&tenant, &key)?.into()))
}

/// Defines or replaces a flag: evaluations see the new definition at once.
#[utoipa::path(put, path = "/v1/flags/{key}", tag = "flags",
    params(("key" = String, Path, description = "The flag's key")),
    request_body = FlagIn,
    responses(
        (status = 200, description = "The flag", body = FlagOut),
        (status = 400, description = "A bad field (named in `param`)", body = ErrorBody),
        (status = 409, description = "The configuration defines the flag", body = ErrorBody)))]
pub async fn put_flag(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(key): Path<String>,
    ApiJson(request): ApiJson<FlagIn>,
) -> Result<Json<FlagOut>, ApiError> {
    if let Some(named) = &request.key
        && named != &key
    {
        return Err(ApiError::bad_request(format!(
            "the body names flag {named} but the path {key}"
        ))
        .with_param("key"));
    }
    let spec = request.into_spec()?;
    let info = flags(&state)?
        .put(&tenant, &key, spec, true, hearth_time::now_ms())
        .await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "flag.define",
        &key,
        None,
    )
    .await?;
    Ok(Json(info.into()))
}

/// Switches a flag on or off (the kill switch): a disabled flag serves its default variant.
#[utoipa::path(patch, path = "/v1/flags/{key}", tag = "flags",
    params(("key" = String, Path, description = "The flag's key")),
    request_body = FlagPatch,
    responses(
        (status = 200, description = "The flag", body = FlagOut),
        (status = 404, description = "No such flag", body = ErrorBody),
        (status = 409, description = "The configuration defines the flag", body = ErrorBody)))]
pub async fn patch_flag(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(key): Path<String>,
    ApiJson(request): ApiJson<FlagPatch>,
) -> Result<Json<FlagOut>, ApiError> {
    let info = flags(&state)?
        .set_enabled(&tenant, &key, request.enabled, hearth_time::now_ms())
        .await?;
    let action = if request.enabled {
        "flag.enable"
    } else {
        "flag.disable"
    };
    audit(&state, &caller.actor(ip), &tenant, action, &key, None).await?;
    Ok(Json(info.into()))
}

/// Removes a flag: OFREP answers FLAG_NOT_FOUND for it from now.
#[utoipa::path(delete, path = "/v1/flags/{key}", tag = "flags",
    params(("key" = String, Path, description = "The flag's key")),
    responses(
        (status = 200, description = "Removed", body = Deleted),
        (status = 404, description = "No such flag", body = ErrorBody),
        (status = 409, description = "The configuration defines the flag", body = ErrorBody)))]
pub async fn delete_flag(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(key): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    flags(&state)?.delete(&tenant, &key).await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "flag.remove",
        &key,
        None,
    )
    .await?;
    Ok(Json(Deleted {
        id: key,
        object: "flag.deleted",
        deleted: true,
    }))
}

/// An OFREP failure answer.
fn failure(status: StatusCode, key: Option<&str>, code: &'static str, details: String) -> Response {
    let body = match key {
        Some(key) => json!({"key": key, "errorCode": code, "errorDetails": details}),
        None => json!({"errorCode": code, "errorDetails": details}),
    };
    (status, Json(body)).into_response()
}

/// The evaluation context of an OFREP request: the body's `context`, with the caller's own
/// attributes set from its key. `Err` is the OFREP failure (code and details).
fn context_of(body: &Bytes, caller: &Caller) -> Result<Context, (&'static str, String)> {
    let request: OfrepRequest = if body.is_empty() {
        OfrepRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|error| {
            (
                "PARSE_ERROR",
                format!("the body is not an evaluation request: {error}"),
            )
        })?
    };
    let mut context = Context::new();
    for (name, value) in request.context.unwrap_or_default() {
        if name.starts_with('$') {
            return Err((
                "INVALID_CONTEXT",
                format!(
                    "`{name}`: attributes starting with `$` are the server's (set from the API \
                     key); rename it"
                ),
            ));
        }
        context.set(name, value);
    }
    if let Caller::Key(principal) = caller {
        if let Some(tenant) = &principal.tenant_name {
            context.set("$tenant", Value::String(tenant.clone()));
        }
        if let Some(user) = &principal.user_id {
            context.set("$user", Value::String(user.clone()));
        }
        context.set("$key", Value::String(principal.key_prefix.clone()));
    }
    Ok(context)
}

fn success(
    key: &str,
    evaluation: &hearth_flags::Evaluation<'_>,
    metadata: &Map<String, Value>,
) -> OfrepSuccess {
    OfrepSuccess {
        key: key.to_string(),
        value: evaluation.value.clone(),
        reason: evaluation.reason.as_str(),
        variant: evaluation.variant.to_string(),
        metadata: metadata.clone(),
    }
}

fn metadata_of(flag: &hearth_flags::CompiledFlag) -> Map<String, Value> {
    flag.spec
        .metadata
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn count(reason: &'static str) {
    metrics::counter!("hearth_flag_evaluations_total", "reason" => reason).increment(1);
}

/// Evaluates one flag of the caller's tenant (OFREP's single evaluation).
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "flags",
    params(("key" = String, Path, description = "The flag's key")),
    request_body = OfrepRequest,
    responses(
        (status = 200, description = "The evaluation", body = OfrepSuccess),
        (status = 400, description = "A body that is not JSON, a `$` attribute, or a split without the attribute it buckets by", body = OfrepFailure),
        (status = 404, description = "No such flag (FLAG_NOT_FOUND)", body = OfrepFailure)))]
pub async fn ofrep_evaluate(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let service = flags(&state)?;
    let context = match context_of(&body, &caller) {
        Ok(context) => context,
        Err((code, details)) => {
            count("ERROR");
            return Ok(failure(StatusCode::BAD_REQUEST, Some(&key), code, details));
        }
    };
    let snapshot = service.snapshot();
    let Some(flag) = snapshot.flag(&tenant, &key) else {
        count("ERROR");
        return Ok(failure(
            StatusCode::NOT_FOUND,
            Some(&key),
            ErrorCode::FlagNotFound.as_str(),
            format!("no flag {key} in this tenant"),
        ));
    };
    match flag.evaluate(&context) {
        Ok(evaluation) => {
            count(evaluation.reason.as_str());
            Ok(Json(success(&key, &evaluation, &metadata_of(flag))).into_response())
        }
        Err(code) => {
            count("ERROR");
            Ok(failure(
                StatusCode::BAD_REQUEST,
                Some(&key),
                code.as_str(),
                missing_key_details(flag),
            ))
        }
    }
}

fn missing_key_details(flag: &hearth_flags::CompiledFlag) -> String {
    let attribute = flag
        .spec
        .bucket_by
        .as_deref()
        .unwrap_or(hearth_flags::TARGETING_KEY);
    format!(
        "flag {} splits by `{attribute}`, which the context lacks",
        flag.key
    )
}

/// Evaluates every flag of the caller's tenant (OFREP's bulk evaluation). The answer carries
/// an ETag; a request whose `If-None-Match` names it gets 304.
#[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "flags",
    request_body = OfrepRequest,
    responses(
        (status = 200, description = "Every flag, evaluated", body = OfrepBulk),
        (status = 304, description = "Nothing changed since the ETag given"),
        (status = 400, description = "A body that is not JSON, or a `$` attribute", body = OfrepBulkFailure)))]
pub async fn ofrep_evaluate_all(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let service = flags(&state)?;
    let context = match context_of(&body, &caller) {
        Ok(context) => context,
        Err((code, details)) => return Ok(failure(StatusCode::BAD_REQUEST, None, code, details)),
    };
    let snapshot = service.snapshot();
    let results: Vec<OfrepResult> = snapshot
        .flags(&tenant)
        .into_iter()
        .map(|info| {
            let flag = &info.flag;
            match flag.evaluate(&context) {
                Ok(evaluation) => {
                    count(evaluation.reason.as_str());
                    OfrepResult::Success(success(&flag.key, &evaluation, &metadata_of(flag)))
                }
                Err(code) => {
                    count("ERROR");
                    OfrepResult::Failure(OfrepFailure {
                        key: flag.key.clone(),
                        error_code: code.as_str(),
                        error_details: missing_key_details(flag),
                    })
                }
            }
        })
        .collect();
    let body = serde_json::to_vec(&OfrepBulk { flags: results }).expect("evaluations serialize");
    // The answer's own hash: the same flags and context give the same tag on every node.
    let etag = format!(
        "\"{:08x}{:08x}\"",
        hearth_flags::bucket::murmur3_32(&body, 0),
        hearth_flags::bucket::murmur3_32(&body, 0x9e37_79b9)
    );
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let etag_value = HeaderValue::from_str(&etag).expect("a hex tag is a header value");
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        body,
    )
        .into_response())
}

/// What the OFREP providers may ask of this server.
#[utoipa::path(get, path = "/ofrep/v1/configuration", tag = "flags",
    responses((status = 200, description = "The server's OFREP capabilities", body = Object)))]
pub async fn ofrep_configuration() -> Json<Value> {
    Json(json!({
        "name": "hearth",
        "capabilities": {
            "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": 1000}},
            "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]}
        }
    }))
}
