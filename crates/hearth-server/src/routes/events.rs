//! The events API: publish over REST (`POST /v1/events/{topic}`, batch `POST /v1/events`),
//! answered once the events are durable, and follow over SSE (`GET /v1/events/stream`), with
//! resume from a sequence or `Last-Event-ID`. Each handler calls `hearth-events` in the
//! caller's tenant scope: a tenant never sees another's events. Members publish, readers
//! follow (the gate's route table).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use hearth_events::{Events, EventsError, Publish};
use serde_json::Value;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::TenantScope;
use crate::state::AppState;
use crate::topic_access::TopicAccess;
use crate::wire::events::*;

pub(crate) fn events(state: &AppState) -> Result<Arc<Events>, ApiError> {
    state
        .events
        .clone()
        .ok_or_else(|| ApiError::unavailable("events are not configured on this server"))
}

impl From<EventsError> for ApiError {
    fn from(error: EventsError) -> ApiError {
        let message = error.to_string();
        match error {
            EventsError::Topic { field, .. } => ApiError::bad_request(message).with_param(field),
            EventsError::Schema { field, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "schema_violation", message)
                    .with_param(field)
            }
            EventsError::TooLarge { field, .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", message)
                    .with_param(field)
            }
            EventsError::BadSchema(_) => ApiError::bad_request(message).with_param("schema"),
            EventsError::Invalid { field, .. } => ApiError::bad_request(message).with_param(field),
            EventsError::NoConsumer(_) => ApiError::not_found(message),
            EventsError::ConsumerExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message).with_param("name")
            }
            EventsError::TooManyConsumers { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "limit_reached", message)
            }
            EventsError::LogFull { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "limit_reached", message)
            }
            EventsError::Log(_) => {
                tracing::error!(%message, "the event log failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the event could not be stored; retry it (with the same Idempotency-Key)",
                )
            }
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string)
}

/// Publishes one event whose data is the body (any JSON). The answer comes once it is durable;
/// an `Idempotency-Key` header seen within two minutes answers with the first event.
#[utoipa::path(post, path = "/v1/events/{topic}", tag = "events",
    params(("topic" = String, Path, description = "`.`-separated tokens, no wildcards"),
           ("Idempotency-Key" = Option<String>, Header, description = "Publishes with the same key within two minutes are one event")),
    request_body(content = Object, description = "The event's data: any JSON"),
    responses(
        (status = 200, description = "The stored event", body = PublishedOut),
        (status = 400, description = "A bad topic, or data the topic's schema refuses", body = ErrorBody),
        (status = 413, description = "Data larger than the limit", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    Path(topic): Path<String>,
    headers: HeaderMap,
    ApiJson(data): ApiJson<Value>,
) -> Result<Json<PublishedOut>, ApiError> {
    access.check_publish(&topic, "topic")?;
    let event = Publish {
        topic,
        data,
        idempotency_key: idempotency_key(&headers),
    };
    let mut published = events(&state)?.publish(&tenant, vec![event], "").await?;
    metrics::counter!("hearth_events_published_total").increment(1);
    let published = published
        .pop()
        .ok_or_else(|| ApiError::bad_request("nothing was published"))?;
    Ok(Json(published.into()))
}

/// Publishes several events in order, all or none.
#[utoipa::path(post, path = "/v1/events", tag = "events",
    request_body = PublishBatch,
    responses(
        (status = 200, description = "The stored events, in order", body = PublishedList),
        (status = 400, description = "A bad event, its field named in param", body = ErrorBody),
        (status = 413, description = "Data larger than the limit", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn publish_batch(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    meter: crate::gate::Meter,
    ApiJson(batch): ApiJson<PublishBatch>,
) -> Result<Json<PublishedList>, ApiError> {
    for (position, event) in batch.events.iter().enumerate() {
        access.check_publish(&event.topic, &format!("events[{position}].topic"))?;
    }
    // The gate counted the request once; each further event counts as one more.
    meter.take_more_requests((batch.events.len() as u64).saturating_sub(1))?;
    let count = batch.events.len() as u64;
    let events_in = batch
        .events
        .into_iter()
        .map(|event| Publish {
            topic: event.topic,
            data: event.data,
            idempotency_key: event.idempotency_key,
        })
        .collect();
    let published = events(&state)?
        .publish(&tenant, events_in, "events")
        .await?;
    metrics::counter!("hearth_events_published_total").increment(count);
    Ok(Json(PublishedList {
        object: "list",
        data: published.into_iter().map(PublishedOut::from).collect(),
    }))
}

/// Follows the caller's events matching `topics` as server-sent events: `id:` the sequence,
/// `event:` the topic, `data:` the event's JSON. With `from_seq` (or a `Last-Event-ID` header
/// on reconnect) kept events are replayed first, with nothing missed or repeated before the
/// live ones. A client that falls a whole queue behind gets an `error` event and the end of
/// the stream; it resumes with `Last-Event-ID`. When retention has removed events at or after
/// the sequence asked for, a `gap` event comes first (`from_seq`, `evicted_through`).
#[utoipa::path(get, path = "/v1/events/stream", tag = "events",
    params(("topics" = String, Query, description = "Comma-separated patterns: `a.*,b.>`"),
           ("from_seq" = Option<u64>, Query, description = "Replay kept events from this sequence first"),
           ("Last-Event-ID" = Option<String>, Header, description = "The last sequence received: resume after it")),
    responses(
        (status = 200, description = "`text/event-stream` of the matching events", content_type = "text/event-stream", body = String),
        (status = 400, description = "A missing or malformed pattern", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    access: TopicAccess,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let events = events(&state)?;
    let patterns: Vec<&str> = query
        .topics
        .split(',')
        .map(str::trim)
        .filter(|pattern| !pattern.is_empty())
        .collect();
    access.check_subscribe(patterns.iter().copied(), "topics")?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let from = match (last_event_id, query.from_seq) {
        (Some(last), _) => last.saturating_add(1),
        (None, Some(from)) => from,
        (None, None) => events.last_sequence(&tenant).await?.saturating_add(1),
    };
    let follow = events.follow(&tenant, &patterns, from).await?;
    // Retention removed events the client asked for: say so first, never skip silently.
    let gap = follow.gap().map(|evicted_through| {
        let body = serde_json::json!({
            "from_seq": from,
            "evicted_through": evicted_through,
            "message": format!(
                "events up to sequence {evicted_through} were removed by retention; \
                 some you asked for may be missing"
            ),
        });
        Ok::<_, Infallible>(Event::default().event("gap").data(body.to_string()))
    });
    let stream = futures_util::stream::unfold(Some(follow), |state| async move {
        let mut follow = state?;
        match follow.next().await {
            Ok(event) => {
                let mut sse = Event::default().event(&event.topic).data(&*event.data);
                if event.sequence > 0 {
                    sse = sse.id(event.sequence.to_string());
                }
                Some((Ok::<_, Infallible>(sse), Some(follow)))
            }
            Err(reason) => {
                let body = serde_json::json!({"error": {
                    "message": reason.describe(), "type": "server_error", "param": null,
                    "code": match reason {
                        hearth_events::CloseReason::SlowConsumer => "slow_consumer",
                        hearth_events::CloseReason::BusClosed => "shutting_down",
                        hearth_events::CloseReason::ReplayFailed => "replay_failed",
                    }
                }});
                Some((
                    Ok(Event::default().event("error").data(body.to_string())),
                    None,
                ))
            }
        }
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter(gap), stream);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Sets the settings of a topic pattern in the caller's tenant: a JSON Schema checked on
/// every publish to a matching topic (the most specific pattern applies), retention, and
/// whether events are kept.
#[utoipa::path(put, path = "/v1/topics/{pattern}", tag = "events",
    params(("pattern" = String, Path, description = "A topic pattern: `emotion.*`, `agent.>`")),
    request_body = TopicIn,
    responses(
        (status = 200, description = "The stored settings", body = TopicOut),
        (status = 400, description = "A bad pattern or schema", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn put_topic(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(pattern): Path<String>,
    ApiJson(request): ApiJson<TopicIn>,
) -> Result<Json<TopicOut>, ApiError> {
    let retention = request.retention.unwrap_or_default();
    let config = hearth_events::TopicConfig {
        pattern,
        schema: request.schema,
        retention: hearth_events::Retention {
            max_age: retention.max_age_s.map(std::time::Duration::from_secs),
            max_bytes: retention.max_bytes,
            max_events: retention.max_events,
        },
        durable: request.durable.unwrap_or(true),
    };
    Ok(Json(
        events(&state)?.put_topic(&tenant, config).await?.into(),
    ))
}

/// The settings of exactly this pattern.
#[utoipa::path(get, path = "/v1/topics/{pattern}", tag = "events",
    params(("pattern" = String, Path, description = "A topic pattern")),
    responses(
        (status = 200, description = "The settings", body = TopicOut),
        (status = 404, description = "No settings for this pattern", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn get_topic(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(pattern): Path<String>,
) -> Result<Json<TopicOut>, ApiError> {
    events(&state)?
        .topic(&tenant, &pattern)
        .await?
        .map(|config| Json(config.into()))
        .ok_or_else(|| ApiError::not_found(format!("no settings for topic pattern `{pattern}`")))
}

/// Removes the settings of this pattern; its topics fall back to a less specific pattern's.
#[utoipa::path(delete, path = "/v1/topics/{pattern}", tag = "events",
    params(("pattern" = String, Path, description = "A topic pattern")),
    responses(
        (status = 200, description = "Removed", body = TopicDeleted),
        (status = 404, description = "No settings for this pattern", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn delete_topic(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(pattern): Path<String>,
) -> Result<Json<TopicDeleted>, ApiError> {
    if !events(&state)?.delete_topic(&tenant, &pattern).await? {
        return Err(ApiError::not_found(format!(
            "no settings for topic pattern `{pattern}`"
        )));
    }
    Ok(Json(TopicDeleted {
        pattern,
        object: "topic.deleted",
        deleted: true,
    }))
}
