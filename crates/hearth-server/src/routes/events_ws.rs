//! Events over one WebSocket (`GET /v1/events/ws`): JSON text frames to subscribe (with resume
//! from a sequence and the gap signal), unsubscribe, publish, take pushed deliveries from a
//! durable consumer and settle them. Everything runs in the caller's tenant; publishing needs
//! the member role, like `POST /v1/events`.
//!
//! Client frames (`type`): `subscribe {id, topics, from_seq?}`, `unsubscribe {id}`,
//! `publish {topic, data, idempotency_key?, ref?}`, `consume {consumer}`, `stop {consumer}`,
//! `ack|nak|term|in_progress {consumer, delivery_ids, delay_ms?, ref?}`.
//! Server frames: `subscribed`, `unsubscribed`, `event {subscription, seq, id, topic, time,
//! data}`, `gap {subscription, from_seq, evicted_through}`, `published`, `delivery {consumer,
//! delivery_id, delivery_count, ...}`, `consuming`, `stopped`, `settled`, `error {code,
//! message, ref?}`.
//!
//! The connection's own task polls every subscription and writes what is ready in one batch:
//! no task or queue per subscription. A client that reads too slowly backs up into each
//! subscription's bounded bus queue; when one overflows, that subscription ends with an
//! `error` frame (`slow_consumer`) and the client resumes it from the last sequence it
//! received: memory per connection stays bounded. Pushed consumer deliveries go through a
//! bounded queue and wait for room (they are redelivered if never settled).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::{FutureExt, SinkExt, StreamExt};
use hearth_events::{CloseReason, Events, EventsError, Publish, StoredEvent};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::{ApiError, ErrorBody};
use crate::gate::{Caller, TenantScope};
use crate::routes::events::events;
use crate::state::AppState;
use crate::topic_access::TopicAccess;

/// Subscriptions and consumers one connection may hold at once.
const MAX_STREAMS_PER_CONNECTION: usize = 64;
/// Deliveries a pushed consumer asks for at a time.
const PUSH_BATCH: usize = 64;

/// Whether the caller may publish (members and admins; a server without keys lets all).
#[derive(Debug, Clone, Copy)]
pub struct MayPublish(bool);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for MayPublish {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(MayPublish(match parts.extensions.get::<Caller>() {
            Some(Caller::Key(principal)) => principal.has_role(hearth_gateway::Role::Member),
            _ => true,
        }))
    }
}

/// Opens the events WebSocket. See the module's documentation for the frames.
#[utoipa::path(get, path = "/v1/events/ws", tag = "events",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 503, description = "Events are not configured", body = ErrorBody)))]
pub async fn socket(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    may_publish: MayPublish,
    access: TopicAccess,
    meter: crate::gate::Meter,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let events = events(&state)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "{rejection}: connect with a WebSocket client (Upgrade: websocket)"
        ))
    })?;
    let max_message = events.options().max_event_bytes + 64 * 1024;
    Ok(upgrade
        // An idle socket holds its read buffer from the start: a small one that grows with use
        // (the default is 128 KiB, 1.3 GB for 10,000 sockets). The write buffer grows only
        // while frames are batched, and each batch is flushed at once.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(64 * 1024)
        .max_message_size(max_message)
        .on_upgrade(move |socket| async move {
            metrics::gauge!("hearth_events_websockets").increment(1.0);
            Connection::new(events, tenant, may_publish.0, access, meter)
                .run(socket)
                .await;
            metrics::gauge!("hearth_events_websockets").decrement(1.0);
        }))
}

/// The outgoing side every task of a connection writes to.
#[derive(Clone)]
struct Outbound {
    frames: mpsc::Sender<String>,
}

impl Outbound {
    /// Queues a frame, waiting for room.
    async fn send(&self, frame: Value) -> bool {
        self.send_text(frame.to_string()).await
    }

    async fn send_text(&self, frame: String) -> bool {
        self.frames.send(frame).await.is_ok()
    }
}

fn error_frame(code: &str, message: impl Into<String>, reference: Option<&Value>) -> Value {
    let mut frame = json!({"type": "error", "code": code, "message": message.into()});
    if let Some(reference) = reference {
        frame["ref"] = reference.clone();
    }
    frame
}

/// A frame with `head` (its own fields, already JSON: `"type":"event","subscription":"s1"`)
/// and the event's, the stored data placed as it is (it is JSON text already): one event
/// fanned out to a thousand sockets is written a thousand times, never parsed again.
fn event_frame(head: &str, event: &StoredEvent) -> String {
    let text = |value: &str| Value::String(value.to_string()).to_string();
    format!(
        "{{{head},\"seq\":{},\"id\":{},\"topic\":{},\"time\":{},\"data\":{}}}",
        event.sequence,
        text(&event.id),
        text(&event.topic),
        event.time_ms,
        event.data
    )
}

fn events_error_frame(error: EventsError, reference: Option<&Value>) -> Value {
    api_error_frame(error.into(), reference)
}

fn api_error_frame(api: ApiError, reference: Option<&Value>) -> Value {
    let mut frame = error_frame(api.code, api.message, reference);
    if let Some(param) = api.param {
        frame["param"] = json!(param);
    }
    frame
}

struct Connection {
    events: Arc<Events>,
    tenant: String,
    may_publish: bool,
    access: TopicAccess,
    /// The connection's admission: each publish frame counts as a request.
    meter: crate::gate::Meter,
    outbound: Outbound,
    frames: mpsc::Receiver<String>,
    tasks: JoinSet<()>,
    /// Pushed consumers' names to their tasks.
    streams: HashMap<String, tokio::task::AbortHandle>,
    /// Every subscription's events, polled by the connection's own task (no task and no
    /// queue per subscription: a fan-out delivery is one wake and one write).
    live: futures_util::stream::SelectAll<futures_util::stream::BoxStream<'static, LiveItem>>,
    /// Subscription ids to their cancel flags.
    subscriptions: HashMap<String, Arc<AtomicBool>>,
}

/// What a subscription yields, with its id and its frames' head.
struct LiveItem {
    id: Arc<str>,
    head: Arc<str>,
    cancelled: Arc<AtomicBool>,
    live: Live,
}

enum Live {
    /// First, when retention removed events the subscription asked for.
    Gap {
        from: u64,
        evicted_through: u64,
    },
    Event(Arc<StoredEvent>),
    /// Last: why it ended.
    Closed(CloseReason),
}

impl Connection {
    fn new(
        events: Arc<Events>,
        tenant: String,
        may_publish: bool,
        access: TopicAccess,
        meter: crate::gate::Meter,
    ) -> Connection {
        let capacity = events.options().subscription_queue;
        let (sender, frames) = mpsc::channel(capacity);
        Connection {
            events,
            tenant,
            may_publish,
            access,
            meter,
            outbound: Outbound { frames: sender },
            frames,
            tasks: JoinSet::new(),
            streams: HashMap::new(),
            live: futures_util::stream::SelectAll::new(),
            subscriptions: HashMap::new(),
        }
    }

    /// Feeds one subscription item to the socket (not flushed); false when the socket failed.
    async fn feed_live(&mut self, socket: &mut WebSocket, item: LiveItem) -> bool {
        if item.cancelled.load(Ordering::Relaxed) {
            return true;
        }
        let frame = match item.live {
            Live::Event(event) => event_frame(&item.head, &event),
            Live::Gap {
                from,
                evicted_through,
            } => json!({"type": "gap", "subscription": &*item.id, "from_seq": from,
                        "evicted_through": evicted_through})
            .to_string(),
            Live::Closed(reason) => {
                self.subscriptions.remove(&*item.id);
                let code = match reason {
                    CloseReason::SlowConsumer => {
                        metrics::counter!("hearth_events_slow_consumers_total").increment(1);
                        "slow_consumer"
                    }
                    CloseReason::BusClosed => "shutting_down",
                    CloseReason::ReplayFailed => "replay_failed",
                };
                let mut frame = error_frame(code, reason.describe(), None);
                frame["subscription"] = json!(&*item.id);
                frame.to_string()
            }
        };
        socket.feed(Message::Text(frame.into())).await.is_ok()
    }

    async fn run(mut self, mut socket: WebSocket) {
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let answer = self.handle(text.as_str()).await;
                        if let Some(answer) = answer
                            && socket.send(Message::Text(answer.to_string().into())).await.is_err()
                        {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let frame = error_frame("invalid_request",
                            "frames are JSON text, not binary", None);
                        if socket.send(Message::Text(frame.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                Some(item) = self.live.next(), if !self.live.is_empty() => {
                    // Whatever else is ready goes out with it: one write, not one a frame.
                    let mut sent = self.feed_live(&mut socket, item).await;
                    let mut batched = 1;
                    while sent && batched < 256 {
                        let Some(Some(item)) = self.live.next().now_or_never() else {
                            break;
                        };
                        sent = self.feed_live(&mut socket, item).await;
                        batched += 1;
                    }
                    if !sent || socket.flush().await.is_err() {
                        break;
                    }
                }
                Some(frame) = self.frames.recv() => {
                    // Whatever else is queued goes out with it: one write, not one a frame.
                    let mut sent = socket.feed(Message::Text(frame.into())).await.is_ok();
                    let mut batched = 1;
                    while sent && batched < 256 {
                        let Ok(more) = self.frames.try_recv() else {
                            break;
                        };
                        sent = socket.feed(Message::Text(more.into())).await.is_ok();
                        batched += 1;
                    }
                    if !sent || socket.flush().await.is_err() {
                        break;
                    }
                }
            }
        }
        self.tasks.abort_all();
    }

    /// Handles one client frame; returns the direct answer, if any.
    async fn handle(&mut self, text: &str) -> Option<Value> {
        let frame: Value = match serde_json::from_str(text) {
            Ok(frame @ Value::Object(_)) => frame,
            _ => {
                return Some(error_frame(
                    "invalid_request",
                    "a frame is a JSON object with a `type`",
                    None,
                ));
            }
        };
        let reference = frame.get("ref").cloned();
        let reference = reference.as_ref();
        let kind = frame["type"].as_str().unwrap_or("");
        match kind {
            "subscribe" => Some(self.subscribe(&frame).await),
            "unsubscribe" | "stop" => {
                let key = if kind == "stop" {
                    frame["consumer"]
                        .as_str()
                        .map(|name| format!("consumer:{name}"))
                } else {
                    frame["id"].as_str().map(|id| format!("subscription:{id}"))
                };
                let Some(key) = key else {
                    return Some(error_frame(
                        "invalid_request",
                        format!(
                            "{kind} needs the `{}`",
                            if kind == "stop" { "consumer" } else { "id" }
                        ),
                        reference,
                    ));
                };
                if let Some(task) = self.streams.remove(&key) {
                    task.abort();
                }
                if let Some(cancelled) = frame["id"]
                    .as_str()
                    .filter(|_| kind == "unsubscribe")
                    .and_then(|id| self.subscriptions.remove(id))
                {
                    cancelled.store(true, Ordering::Relaxed);
                }
                let mut answer =
                    json!({"type": if kind == "stop" { "stopped" } else { "unsubscribed" }});
                if kind == "stop" {
                    answer["consumer"] = frame["consumer"].clone();
                } else {
                    answer["id"] = frame["id"].clone();
                }
                Some(answer)
            }
            "publish" => Some(self.publish(&frame, reference).await),
            "consume" => Some(self.consume(&frame).await),
            "ack" | "nak" | "term" | "in_progress" => {
                Some(self.settle(kind, &frame, reference).await)
            }
            other => Some(error_frame(
                "invalid_request",
                format!(
                    "unknown frame type `{other}`; use subscribe, unsubscribe, publish, consume, \
                     stop, ack, nak, term or in_progress"
                ),
                reference,
            )),
        }
    }

    fn room_for_another(&self, reference: Option<&Value>) -> Result<(), Value> {
        if self.streams.len() + self.subscriptions.len() >= MAX_STREAMS_PER_CONNECTION {
            return Err(error_frame(
                "limit_reached",
                format!(
                    "a connection holds at most {MAX_STREAMS_PER_CONNECTION} subscriptions and \
                     consumers; open another connection"
                ),
                reference,
            ));
        }
        Ok(())
    }

    async fn subscribe(&mut self, frame: &Value) -> Value {
        let id = frame["id"].as_str().unwrap_or("").to_string();
        let reference = frame.get("id");
        if id.is_empty() {
            return error_frame("invalid_request", "subscribe needs an `id`", None);
        }
        if self.subscriptions.contains_key(&id) {
            return error_frame(
                "invalid_request",
                format!("subscription `{id}` exists; unsubscribe it first"),
                reference,
            );
        }
        if let Err(error) = self.room_for_another(reference) {
            return error;
        }
        let patterns: Vec<String> = match &frame["topics"] {
            Value::String(topics) => topics
                .split(',')
                .map(str::trim)
                .filter(|pattern| !pattern.is_empty())
                .map(str::to_string)
                .collect(),
            Value::Array(topics) => topics
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        if let Err(refused) = self
            .access
            .check_subscribe(patterns.iter().copied(), "topics")
        {
            return api_error_frame(refused, reference);
        }
        let from = match frame["from_seq"].as_u64() {
            Some(from) => from,
            None => match self.events.last_sequence(&self.tenant).await {
                Ok(last) => last + 1,
                Err(error) => return events_error_frame(error, reference),
            },
        };
        let follow = match self.events.follow(&self.tenant, &patterns, from).await {
            Ok(follow) => follow,
            Err(error) => return events_error_frame(error, reference),
        };
        let gap = follow.gap().map(|evicted_through| Live::Gap {
            from,
            evicted_through,
        });
        let cancelled = Arc::new(AtomicBool::new(false));
        let name: Arc<str> = Arc::from(id.as_str());
        let head: Arc<str> = Arc::from(format!(
            "\"type\":\"event\",\"subscription\":{}",
            Value::String(id.clone())
        ));
        let item = {
            let (name, head, cancelled) = (name.clone(), head.clone(), cancelled.clone());
            move |live| LiveItem {
                id: name.clone(),
                head: head.clone(),
                cancelled: cancelled.clone(),
                live,
            }
        };
        let first = futures_util::stream::iter(gap.map(&item));
        let events = futures_util::stream::unfold(Some(follow), move |state| {
            let item = item.clone();
            async move {
                let mut follow = state?;
                match follow.next().await {
                    Ok(event) => Some((item(Live::Event(event)), Some(follow))),
                    Err(reason) => Some((item(Live::Closed(reason)), None)),
                }
            }
        });
        self.live.push(Box::pin(first.chain(events)));
        self.subscriptions.insert(id.clone(), cancelled);
        json!({"type": "subscribed", "id": id, "from_seq": from})
    }

    async fn publish(&mut self, frame: &Value, reference: Option<&Value>) -> Value {
        if !self.may_publish {
            return error_frame(
                "forbidden",
                "publishing needs a member or admin key",
                reference,
            );
        }
        let Some(topic) = frame["topic"].as_str() else {
            return error_frame("invalid_request", "publish needs a `topic`", reference);
        };
        if let Err(refused) = self.access.check_publish(topic, "topic") {
            return api_error_frame(refused, reference);
        }
        if let Err(refused) = self.meter.take_more_requests(1) {
            return api_error_frame(refused, reference);
        }
        let event = Publish {
            topic: topic.to_string(),
            data: frame.get("data").cloned().unwrap_or(Value::Null),
            idempotency_key: frame["idempotency_key"].as_str().map(str::to_string),
        };
        match self.events.publish(&self.tenant, vec![event], "").await {
            Ok(mut published) => {
                metrics::counter!("hearth_events_published_total").increment(1);
                let Some(appended) = published.pop() else {
                    return error_frame("internal_error", "nothing was published", reference);
                };
                let mut answer = json!({"type": "published", "id": appended.event.id,
                    "topic": appended.event.topic, "seq": appended.event.sequence,
                    "time": appended.event.time_ms, "duplicate": appended.duplicate});
                if let Some(reference) = reference {
                    answer["ref"] = reference.clone();
                }
                answer
            }
            Err(error) => events_error_frame(error, reference),
        }
    }

    async fn consume(&mut self, frame: &Value) -> Value {
        let Some(name) = frame["consumer"].as_str().map(str::to_string) else {
            return error_frame("invalid_request", "consume needs a `consumer`", None);
        };
        let reference = frame.get("consumer");
        if hearth_events::is_system_consumer(&name) {
            return events_error_frame(EventsError::NoConsumer(name), reference);
        }
        let key = format!("consumer:{name}");
        if self.streams.contains_key(&key) {
            return error_frame(
                "invalid_request",
                format!("consumer `{name}` is already pushed on this connection"),
                reference,
            );
        }
        if let Err(error) = self.room_for_another(reference) {
            return error;
        }
        match self.events.consumer_config(&self.tenant, &name).await {
            Ok(config) => {
                let filter = config.filter.iter().map(String::as_str);
                if let Err(refused) = self.access.check_subscribe(filter, "consumer") {
                    return api_error_frame(refused, reference);
                }
            }
            Err(error) => return events_error_frame(error, reference),
        }
        let events = Arc::clone(&self.events);
        let tenant = self.tenant.clone();
        let outbound = self.outbound.clone();
        let consumer = name.clone();
        let task = self.tasks.spawn(async move {
            loop {
                let fetched = events
                    .fetch(&tenant, &consumer, PUSH_BATCH, Duration::from_secs(10))
                    .await;
                let deliveries = match fetched {
                    Ok(deliveries) => deliveries,
                    Err(error) => {
                        let mut frame = events_error_frame(error, None);
                        frame["consumer"] = json!(consumer);
                        let _ = outbound.send(frame).await;
                        return;
                    }
                };
                for delivery in deliveries {
                    let head = format!(
                        "\"type\":\"delivery\",\"consumer\":{},\"delivery_id\":{},\
                         \"delivery_count\":{}",
                        Value::String(consumer.clone()),
                        Value::String(delivery.delivery_id.clone()),
                        delivery.delivery_count
                    );
                    if !outbound
                        .send_text(event_frame(&head, &delivery.event))
                        .await
                    {
                        return;
                    }
                }
            }
        });
        self.streams.insert(key, task);
        json!({"type": "consuming", "consumer": name})
    }

    async fn settle(&mut self, action: &str, frame: &Value, reference: Option<&Value>) -> Value {
        let Some(name) = frame["consumer"].as_str() else {
            return error_frame(
                "invalid_request",
                format!("{action} needs the `consumer`"),
                reference,
            );
        };
        if hearth_events::is_system_consumer(name) {
            return events_error_frame(EventsError::NoConsumer(name.to_string()), reference);
        }
        let ids: Vec<String> = frame["delivery_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Err(refused) =
            crate::routes::consumers::may_consume(&self.events, &self.access, &self.tenant, name)
                .await
        {
            return api_error_frame(refused, reference);
        }
        let delay = frame["delay_ms"].as_u64().map(Duration::from_millis);
        let settled = match action {
            "ack" => self.events.ack(&self.tenant, name, &ids).await,
            "nak" => self.events.nak(&self.tenant, name, &ids, delay).await,
            "term" => self.events.term(&self.tenant, name, &ids).await,
            _ => self.events.in_progress(&self.tenant, name, &ids).await,
        };
        match settled {
            Ok(count) => {
                let mut answer =
                    json!({"type": "settled", "action": action, "consumer": name, "count": count});
                if let Some(reference) = reference {
                    answer["ref"] = reference.clone();
                }
                answer
            }
            Err(error) => events_error_frame(error, reference),
        }
    }
}
