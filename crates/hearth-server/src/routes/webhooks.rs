//! Webhooks over REST (`/v1/webhooks`): admins register endpoints in their tenant, rotate
//! their secrets, read their delivery logs and redeliver. The delivering, signing and
//! retrying live in `hearth-webhooks`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_webhooks::{Webhooks, WebhooksError};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::TenantScope;
use crate::state::AppState;
use crate::topic_access::TopicAccess;
use crate::wire::webhooks::*;

fn webhooks(state: &AppState) -> Result<Arc<Webhooks>, ApiError> {
    state
        .webhooks
        .clone()
        .ok_or_else(|| ApiError::unavailable("webhooks are not configured on this server"))
}

impl From<WebhooksError> for ApiError {
    fn from(error: WebhooksError) -> ApiError {
        let message = error.to_string();
        match error {
            WebhooksError::Invalid { field, .. } => {
                ApiError::bad_request(message).with_param(field)
            }
            WebhooksError::NotFound(_) | WebhooksError::NoDelivery(_) => {
                ApiError::not_found(message)
            }
            WebhooksError::EventGone => ApiError::new(StatusCode::GONE, "event_gone", message),
            WebhooksError::TooMany { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "limit_reached", message)
            }
            WebhooksError::Events(error) => error.into(),
            WebhooksError::Store(_) => {
                tracing::error!(%message, "the webhook store failed");
                ApiError::internal("the webhook store failed; retry the request")
            }
        }
    }
}

/// Registers an endpoint for the tenant's events from now on. The answer carries its
/// `secret` (`whsec_...`), shown this once: deliveries are signed with it per the Standard
/// Webhooks specification.
#[utoipa::path(post, path = "/v1/webhooks", tag = "events",
    request_body = WebhookIn,
    responses(
        (status = 200, description = "The endpoint, with its secret", body = WebhookOut),
        (status = 400, description = "A bad url or topics, named in param", body = ErrorBody),
        (status = 503, description = "Webhooks are not configured", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    ApiJson(request): ApiJson<WebhookIn>,
) -> Result<Json<WebhookOut>, ApiError> {
    let topics = request.topics.as_ref().map_or(vec![">"], |topics| {
        topics.0.iter().map(String::as_str).collect()
    });
    access.check_subscribe(topics, "topics")?;
    let (endpoint, secret) = webhooks(&state)?.create(&tenant, request.into()).await?;
    Ok(Json(WebhookOut::with_secret(endpoint, Some(secret))))
}

/// The tenant's endpoints, oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "events",
    responses(
        (status = 200, description = "The endpoints", body = WebhookList),
        (status = 503, description = "Webhooks are not configured", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
) -> Result<Json<WebhookList>, ApiError> {
    let endpoints = webhooks(&state)?.list(&tenant).await?;
    Ok(Json(WebhookList {
        object: "list",
        data: endpoints.into_iter().map(WebhookOut::from).collect(),
    }))
}

/// One endpoint (never its secret).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "events",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookOut),
        (status = 404, description = "No such endpoint", body = ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
) -> Result<Json<WebhookOut>, ApiError> {
    Ok(Json(webhooks(&state)?.get(&tenant, &id).await?.into()))
}

/// Changes an endpoint's url, topics, description or whether it is enabled. New topics, or
/// enabling a disabled endpoint, send events published from then on.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "events",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = WebhookIn,
    responses(
        (status = 200, description = "The endpoint", body = WebhookOut),
        (status = 400, description = "A bad url or topics, named in param", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody)))]
pub async fn modify(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<WebhookIn>,
) -> Result<Json<WebhookOut>, ApiError> {
    if let Some(topics) = &request.topics {
        access.check_subscribe(topics.0.iter().map(String::as_str), "topics")?;
    }
    let updated = webhooks(&state)?
        .update(&tenant, &id, request.into())
        .await?;
    Ok(Json(updated.into()))
}

/// Deletes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "events",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Deleted", body = WebhookDeleted),
        (status = 404, description = "No such endpoint", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
) -> Result<Json<WebhookDeleted>, ApiError> {
    webhooks(&state)?.delete(&tenant, &id).await?;
    Ok(Json(WebhookDeleted {
        id,
        object: "webhook.deleted",
        deleted: true,
    }))
}

/// A new secret, shown this once. For a day deliveries carry signatures under both the new
/// and the old secret, so receivers can switch without losing any.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate_secret", tag = "events",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint, with its new secret", body = WebhookOut),
        (status = 404, description = "No such endpoint", body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
) -> Result<Json<WebhookOut>, ApiError> {
    let webhooks = webhooks(&state)?;
    let secret = webhooks.rotate_secret(&tenant, &id).await?;
    let endpoint = webhooks.get(&tenant, &id).await?;
    Ok(Json(WebhookOut::with_secret(endpoint, Some(secret))))
}

/// The endpoint's newest deliveries, each with its attempts (status, latency, the answer's
/// first bytes), kept 30 days.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "events",
    params(("id" = String, Path, description = "The endpoint's id"),
           ("limit" = Option<usize>, Query, description = "1 to 1000; default 100")),
    responses(
        (status = 200, description = "The deliveries, newest first", body = DeliveryRecordList),
        (status = 404, description = "No such endpoint", body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryRecordList>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("limit is from 1 to 1000").with_param("limit"));
    }
    let records = webhooks(&state)?.deliveries(&tenant, &id, limit).await?;
    Ok(Json(DeliveryRecordList {
        object: "list",
        data: records.into_iter().map(DeliveryRecordOut::from).collect(),
    }))
}

/// Sends a delivery's event again now, whatever its status, and answers with the delivery
/// and the new attempt.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery}/retry", tag = "events",
    params(("id" = String, Path, description = "The endpoint's id"),
           ("delivery" = String, Path, description = "The delivery's id (whd_...)")),
    responses(
        (status = 200, description = "The delivery with the new attempt", body = DeliveryRecordOut),
        (status = 404, description = "No such endpoint or delivery", body = ErrorBody),
        (status = 410, description = "Retention removed the event", body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryRecordOut>, ApiError> {
    let record = webhooks(&state)?.retry(&tenant, &id, &delivery).await?;
    Ok(Json(record.into()))
}
