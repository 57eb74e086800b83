//! Durable consumers over REST: admins create and delete them (`/v1/consumers`), readers
//! list them, fetch batches and settle deliveries (ack, nak, term, in_progress), all in the
//! caller's tenant. The semantics live in `hearth-events` (`consumers.rs`).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};

use hearth_events::EventsError;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::gate::TenantScope;
use crate::routes::events::events;
use crate::state::AppState;
use crate::topic_access::TopicAccess;
use crate::wire::consumers::*;

/// Creates a durable consumer: a stored position in the tenant's events with a filter, from
/// which batches are fetched and must be acknowledged. Creating one that exists with the
/// same settings answers with it.
#[utoipa::path(post, path = "/v1/consumers", tag = "events",
    request_body = ConsumerIn,
    responses(
        (status = 200, description = "The consumer", body = ConsumerOut),
        (status = 400, description = "A bad setting, named in param", body = ErrorBody),
        (status = 409, description = "A consumer of that name exists with other settings", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    ApiJson(request): ApiJson<ConsumerIn>,
) -> Result<Json<ConsumerOut>, ApiError> {
    let config = request
        .into_config()
        .map_err(|(field, message)| ApiError::bad_request(message).with_param(field))?;
    access.check_subscribe(config.filter.iter().map(String::as_str), "filter")?;
    let created = events(&state)?.create_consumer(&tenant, config).await?;
    Ok(Json(created.into()))
}

/// The tenant's consumers, by name.
#[utoipa::path(get, path = "/v1/consumers", tag = "events",
    responses(
        (status = 200, description = "The consumers", body = ConsumerList),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
) -> Result<Json<ConsumerList>, ApiError> {
    let consumers = events(&state)?.consumers(&tenant).await?;
    Ok(Json(ConsumerList {
        object: "list",
        data: consumers.into_iter().map(ConsumerOut::from).collect(),
    }))
}

fn no_consumer(name: &str) -> ApiError {
    EventsError::NoConsumer(name.to_string()).into()
}

/// Whether the key's subscribe scopes cover the consumer's filter (fetching is
/// subscribing).
pub(crate) async fn may_consume(
    events: &hearth_events::Events,
    access: &TopicAccess,
    tenant: &str,
    name: &str,
) -> Result<(), ApiError> {
    if *access == TopicAccess::default() {
        return Ok(());
    }
    let config = events.consumer_config(tenant, name).await?;
    access.check_subscribe(config.filter.iter().map(String::as_str), "name")
}

/// Hearth's own consumers (a webhook's, `_`-named) are out of the API's reach: they answer as
/// if they did not exist.
fn app_consumer(name: &str) -> Result<(), ApiError> {
    if hearth_events::is_system_consumer(name) {
        return Err(no_consumer(name));
    }
    Ok(())
}

/// A consumer's settings and counters.
#[utoipa::path(get, path = "/v1/consumers/{name}", tag = "events",
    params(("name" = String, Path, description = "The consumer's name")),
    responses(
        (status = 200, description = "The consumer", body = ConsumerOut),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
) -> Result<Json<ConsumerOut>, ApiError> {
    app_consumer(&name)?;
    events(&state)?
        .consumer(&tenant, &name)
        .await?
        .map(|info| Json(info.into()))
        .ok_or_else(|| no_consumer(&name))
}

/// Deletes a consumer and what it had out.
#[utoipa::path(delete, path = "/v1/consumers/{name}", tag = "events",
    params(("name" = String, Path, description = "The consumer's name")),
    responses(
        (status = 200, description = "Deleted", body = ConsumerDeleted),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(name): Path<String>,
) -> Result<Json<ConsumerDeleted>, ApiError> {
    app_consumer(&name)?;
    if !events(&state)?.delete_consumer(&tenant, &name).await? {
        return Err(no_consumer(&name));
    }
    Ok(Json(ConsumerDeleted {
        name,
        object: "consumer.deleted",
        deleted: true,
    }))
}

/// Fetches up to `batch` events: redeliveries that are due first, then events not delivered
/// yet, in sequence order. With none at hand it waits up to `wait_ms` and answers an empty
/// list when none came. Each must be acknowledged within the consumer's `ack_wait_ms`.
#[utoipa::path(post, path = "/v1/consumers/{name}/fetch", tag = "events",
    params(("name" = String, Path, description = "The consumer's name")),
    request_body = FetchIn,
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 400, description = "A bad batch or wait", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn fetch(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<FetchIn>,
) -> Result<Json<DeliveryList>, ApiError> {
    app_consumer(&name)?;
    let batch = request.batch.unwrap_or(1);
    if batch == 0 || batch > hearth_events::MAX_FETCH_BATCH {
        return Err(ApiError::bad_request(format!(
            "batch is from 1 to {}",
            hearth_events::MAX_FETCH_BATCH
        ))
        .with_param("batch"));
    }
    let wait = Duration::from_millis(request.wait_ms.unwrap_or(0));
    if wait > hearth_events::MAX_FETCH_WAIT {
        return Err(ApiError::bad_request(format!(
            "wait_ms is at most {}",
            hearth_events::MAX_FETCH_WAIT.as_millis()
        ))
        .with_param("wait_ms"));
    }
    let events = events(&state)?;
    may_consume(&events, &access, &tenant, &name).await?;
    let deliveries = events.fetch(&tenant, &name, batch, wait).await?;
    metrics::counter!("hearth_events_consumer_deliveries_total").increment(deliveries.len() as u64);
    Ok(Json(DeliveryList {
        object: "list",
        data: deliveries.into_iter().map(DeliveryOut::from).collect(),
    }))
}

#[derive(Clone, Copy)]
enum Action {
    Ack,
    Nak,
    Term,
    InProgress,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Ack => "ack",
            Action::Nak => "nak",
            Action::Term => "term",
            Action::InProgress => "in_progress",
        }
    }
}

async fn settle(
    state: &AppState,
    tenant: &str,
    access: &TopicAccess,
    name: &str,
    request: SettleIn,
    action: Action,
) -> Result<Json<SettledOut>, ApiError> {
    app_consumer(name)?;
    if request.delay_ms.is_some() && !matches!(action, Action::Nak) {
        return Err(ApiError::bad_request("delay_ms applies to nak only").with_param("delay_ms"));
    }
    if request.delivery_ids.len() > hearth_events::MAX_FETCH_BATCH {
        return Err(ApiError::bad_request(format!(
            "settle at most {} deliveries at once",
            hearth_events::MAX_FETCH_BATCH
        ))
        .with_param("delivery_ids"));
    }
    let events = events(state)?;
    may_consume(&events, access, tenant, name).await?;
    let ids = &request.delivery_ids;
    let count = match action {
        Action::Ack => events.ack(tenant, name, ids).await?,
        Action::Nak => {
            let delay = request.delay_ms.map(Duration::from_millis);
            events.nak(tenant, name, ids, delay).await?
        }
        Action::Term => events.term(tenant, name, ids).await?,
        Action::InProgress => events.in_progress(tenant, name, ids).await?,
    };
    metrics::counter!("hearth_events_consumer_settled_total", "action" => action.name())
        .increment(count);
    Ok(Json(SettledOut {
        object: "consumer.settled",
        action: action.name(),
        count,
    }))
}

/// Acknowledges deliveries: done, never delivered again. A late ack of an earlier delivery
/// of an event still out counts.
#[utoipa::path(post, path = "/v1/consumers/{name}/ack", tag = "events",
    params(("name" = String, Path, description = "The consumer's name")),
    request_body = SettleIn,
    responses(
        (status = 200, description = "How many were acknowledged", body = SettledOut),
        (status = 400, description = "A malformed delivery id, named in param", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody)))]
pub async fn ack(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SettleIn>,
) -> Result<Json<SettledOut>, ApiError> {
    settle(&state, &tenant, &access, &name, request, Action::Ack).await
}

/// Refuses deliveries: each comes again after `delay_ms`, or the consumer's backoff, or is
/// dead-lettered when it has been delivered `max_deliver` times.
#[utoipa::path(post, path = "/v1/consumers/{name}/nak", tag = "events",
    params(("name" = String, Path, description = "The consumer's name")),
    request_body = SettleIn,
    responses(
        (status = 200, description = "How many were refused", body = SettledOut),
        (status = 400, description = "A malformed delivery id, named in param", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody)))]
pub async fn nak(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SettleIn>,
) -> Result<Json<SettledOut>, ApiError> {
    settle(&state, &tenant, &access, &name, request, Action::Nak).await
}

/// Gives up on deliveries: never redelivered; dead-lettered with reason `terminated` when
/// the consumer has a dead-letter topic.
#[utoipa::path(post, path = "/v1/consumers/{name}/term", tag = "events",
    params(("name" = String, Path, description = "The consumer's name")),
    request_body = SettleIn,
    responses(
        (status = 200, description = "How many were terminated", body = SettledOut),
        (status = 400, description = "A malformed delivery id, named in param", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody)))]
pub async fn term(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SettleIn>,
) -> Result<Json<SettledOut>, ApiError> {
    settle(&state, &tenant, &access, &name, request, Action::Term).await
}

/// Asks for more time: each delivery's deadline moves to `ack_wait_ms` from now.
#[utoipa::path(post, path = "/v1/consumers/{name}/in_progress", tag = "events",
    params(("name" = String, Path, description = "The consumer's name")),
    request_body = SettleIn,
    responses(
        (status = 200, description = "How many were extended", body = SettledOut),
        (status = 400, description = "A malformed delivery id, named in param", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody)))]
pub async fn in_progress(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SettleIn>,
) -> Result<Json<SettledOut>, ApiError> {
    settle(&state, &tenant, &access, &name, request, Action::InProgress).await
}
