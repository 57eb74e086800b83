//! OpenAI's Responses API: `POST /v1/responses` (answered whole or as the typed event stream
//! the official clients parse), `GET|DELETE /v1/responses/{response_id}` and
//! `GET /v1/responses/{response_id}/input_items`. A response runs on the shared generation
//! path; a stored one (the default) keeps its turn in the store, per tenant, for
//! `responses.ttl_days` (30, OpenAI's), and
//! `previous_response_id` continues the conversation it ends.

use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_engine::{FinishReason, GenerationEvent};
use hearth_gateway::now_ms;
use hearth_inference::tools::{AssistantReply, ToolUse};
use hearth_memory::retrieval::{Source, citations, quoted_sources, with_sources};
use hearth_store::{ResponseRow, Store};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::generate::{self, Bound, Started};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::{MaybeCaller, Meter, TenantScope};
use crate::state::AppState;
use crate::wire::responses::*;
use crate::wire::unix_seconds;

/// Events a streamed response may hold back when its client reads slowly.
const STREAM_BUFFER: usize = 64;

fn store(state: &AppState) -> Result<Store, ApiError> {
    state
        .store
        .clone()
        .ok_or_else(|| ApiError::unavailable("stored responses need the server's store"))
}

fn store_error(error: hearth_store::StoreError) -> ApiError {
    ApiError::internal(format!("the store failed: {error}"))
}

fn no_response(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no response {id:?} (it may have expired or been deleted)"
    ))
}

/// The conversation a stored response ends: each turn's input items, then its output.
async fn conversation(store: &Store, tenant: &str, id: &str) -> Result<Vec<Item>, ApiError> {
    let chain = store
        .response_chain(tenant, id, now_ms())
        .await
        .map_err(store_error)?;
    if chain.is_empty() {
        return Err(no_response(id).with_param("previous_response_id"));
    }
    let mut items = Vec::new();
    for row in chain {
        let (input, response) = stored_turn(&row)?;
        items.extend(input);
        items.extend(response.output);
    }
    Ok(items)
}

/// A tenant's stored response by id: its turn's input items and the response.
async fn stored(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> Result<(Vec<Item>, ResponseObject), ApiError> {
    let row = store(state)?
        .response(tenant, id, now_ms())
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_response(id))?;
    stored_turn(&row)
}

fn stored_turn(row: &ResponseRow) -> Result<(Vec<Item>, ResponseObject), ApiError> {
    let corrupt = |error: serde_json::Error| {
        ApiError::internal(format!(
            "stored response {} cannot be read: {error}",
            row.id
        ))
    };
    Ok((
        serde_json::from_str(&row.input_items).map_err(corrupt)?,
        serde_json::from_str(&row.response).map_err(corrupt)?,
    ))
}

/// Where a finished response is kept, if it is.
struct Keeper {
    store: Option<Store>,
    /// How long it is kept (`responses.ttl_days`).
    ttl: Duration,
    /// How many of the tenant's are kept (`responses.max_per_tenant`).
    cap: u64,
    tenant: String,
    input: Vec<Item>,
}

impl Keeper {
    async fn keep(&self, response: &ResponseObject) -> Result<(), ApiError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now = now_ms();
        store
            .insert_response(&ResponseRow {
                id: response.id.clone(),
                tenant_id: self.tenant.clone(),
                previous_response_id: response.previous_response_id.clone(),
                input_items: serde_json::to_string(&self.input).unwrap_or_default(),
                response: serde_json::to_string(response).unwrap_or_default(),
                created_at_ms: now,
                expires_at_ms: now.saturating_add(self.ttl.as_millis() as i64),
            })
            .await
            .map_err(store_error)?;
        // A tenant past its cap loses its oldest responses, so one tenant cannot fill the
        // disk within the TTL (a failure here costs nothing the client asked for).
        if let Err(error) = store
            .cap_responses(&self.tenant, i64::try_from(self.cap).unwrap_or(i64::MAX))
            .await
        {
            tracing::warn!(%error, "trimming a tenant's stored responses failed");
        }
        // Expired responses go as new ones come, at most once a minute.
        let swept = LAST_SWEEP_MS.load(Ordering::Relaxed);
        if now - swept >= 60_000
            && LAST_SWEEP_MS
                .compare_exchange(swept, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let _ = store.delete_expired_responses(now).await;
        }
        Ok(())
    }
}

/// When expired responses were last deleted (ms since the epoch).
static LAST_SWEEP_MS: AtomicI64 = AtomicI64::new(0);

/// The output of a finished generation: the message, or the function calls read from it when
/// the model could call tools.
fn output_items(tools: Option<&ToolUse>, text: String) -> Vec<Item> {
    let reply = match tools {
        Some(tools) => tools.parse(&text),
        None => AssistantReply::Text(text),
    };
    match reply {
        AssistantReply::Text(text) => vec![Item::Message {
            id: item_id("msg"),
            role: "assistant".into(),
            content: vec![ContentItem::OutputText {
                text,
                annotations: Vec::new(),
            }],
            status: "completed".into(),
        }],
        AssistantReply::ToolCalls(calls) => calls
            .iter()
            .map(|call| Item::FunctionCall {
                id: item_id("fc"),
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.to_string(),
                status: "completed".into(),
            })
            .collect(),
    }
}

/// Creates a model response: text or function calls, streamed as typed server-sent events
/// when `stream` is true.
#[utoipa::path(
    post,
    path = "/v1/responses",
    tag = "openai",
    request_body(content = ResponsesRequest, description = "OpenAI Responses API request"),
    responses(
        (status = 200, description = "The response. With `stream: true` the body is \
            `text/event-stream`: typed events (`response.created`, \
            `response.output_text.delta`, ..., `response.completed`), each `event:` named by \
            its `type`.", body = ResponseObject),
        (status = 400, description = "Invalid request: an input item or content part that is \
            not supported, a field out of range, a tool that is not a function",
            body = ErrorBody),
        (status = 404, description = "Unknown model, or a `previous_response_id` that is not \
            stored", body = ErrorBody),
        (status = 429, description = "The model's queue is full", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)
    )
)]
pub async fn create_response(
    State(state): State<AppState>,
    meter: Meter,
    TenantScope(tenant): TenantScope,
    (MaybeCaller(caller), headers): (MaybeCaller, axum::http::HeaderMap),
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    // An experiment on the request's model or prompt places it first.
    super::experiments::assign_request(
        &state,
        &meter,
        (&tenant, caller.as_ref()),
        &headers,
        &mut body,
    );
    // A prompt template becomes the request's instructions and input before anything reads
    // them.
    super::prompts::expand_reference(
        &state,
        &meter,
        &tenant,
        &mut body,
        super::prompts::PromptTarget::Responses,
    )?;
    let request: ResponsesRequest =
        match generate::route(&state, &meter, body, "/responses").await? {
            Bound::Local(request) => request,
            Bound::Answered(response) => return Ok(response),
        };
    let input = input_items(request.input.as_ref())?;
    let mut items = match &request.previous_response_id {
        Some(previous) => conversation(&store(&state)?, &tenant, previous).await?,
        None => Vec::new(),
    };
    items.extend(input.iter().cloned());
    // The request is checked whole before anything is asked of the models.
    let mut plan = request.to_plan(&items, None)?;
    let file_search = request.file_search()?;
    let keeper = Keeper {
        store: if request.store.unwrap_or(true) {
            Some(store(&state)?)
        } else {
            None
        },
        ttl: state.settings.response_ttl,
        cap: state.settings.responses_per_tenant,
        tenant,
        input,
    };
    let loaded = generate::load(&state, &request.model, request.keep_alive.as_ref()).await?;
    if request.truncation == Some(Truncation::Auto) {
        let dropped = truncate_oldest(
            loaded.handle.model(),
            &mut items,
            1,
            request.instructions.as_deref(),
            request.max_output_tokens,
        );
        if dropped > 0 {
            tracing::info!(dropped, "truncation: auto left out the oldest items");
            plan = request.to_plan(&items, None)?;
        }
    }
    // file_search runs first: what it finds is placed in the prompt as numbered sources.
    let mut searched = Searched::default();
    if let Some((index, tool)) = &file_search {
        searched = search_files(
            &state,
            &meter,
            &keeper.tenant,
            (*index, tool),
            &items,
            &loaded,
            &request,
        )
        .await?;
        if !searched.placed.is_empty() {
            let question = with_sources(&searched.query, &searched.placed);
            plan = request.to_plan(&items, Some(&question))?;
        }
    }
    let mut started = loaded.start(&meter, &request.model, &plan).await?;
    let response = ResponseObject::started(
        item_id("resp"),
        unix_seconds(),
        started.model.clone(),
        &request,
    );
    meter.answered_as(&response.id);
    let Some(generation) = started.streams.pop() else {
        return Err(ApiError::internal("no generation was started"));
    };
    if request.stream {
        let (events, body) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(stream_response(
            Emitter {
                events,
                sequence: 0,
            },
            response,
            generation,
            (plan.tools, searched),
            keeper,
            started,
        ));
        let body = tokio_stream_of(body);
        return Ok(Sse::new(body)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let completion = generation
        .collect()
        .await
        .map_err(|error| started.engine_error(error))?;
    let mut output = searched.call.into_iter().collect::<Vec<_>>();
    let mut generated = output_items(plan.tools.as_ref(), completion.text);
    annotate(&mut generated, &searched.placed);
    output.extend(generated);
    let mut response = response;
    response.finish(
        output,
        completion.finish_reason.unwrap_or(FinishReason::Stop),
        completion.usage,
    );
    keeper.keep(&response).await?;
    Ok(Json(response).into_response())
}

/// What a `file_search` did: its output item and the passages placed in the prompt.
#[derive(Default)]
struct Searched {
    call: Option<Item>,
    /// What was searched for: the last user message.
    query: String,
    placed: Vec<Source>,
}

/// Runs the request's `file_search` tool (`tools[index]`): the last user message searched in
/// each named vector store of the caller's tenant, the best passages overall kept, and as many
/// of them placed as fit the model's context beside the conversation and the answer.
async fn search_files(
    state: &AppState,
    meter: &Meter,
    tenant: &str,
    (index, tool): (usize, &FileSearchTool),
    items: &[Item],
    loaded: &generate::Loaded,
    request: &ResponsesRequest,
) -> Result<Searched, ApiError> {
    let service = state
        .vector_stores
        .clone()
        .ok_or_else(|| ApiError::unavailable("vector stores are not configured on this server"))?;
    let query = last_user_text(items).ok_or_else(|| {
        ApiError::bad_request("file_search searches for the last user message, and there is none")
            .with_param("input")
    })?;
    let max_results = tool.max_num_results.unwrap_or(FILE_SEARCH_RESULTS);
    if !(1..=50).contains(&max_results) {
        return Err(
            ApiError::bad_request("max_num_results must be between 1 and 50")
                .with_param(format!("tools[{index}].max_num_results")),
        );
    }
    let search = crate::wire::vector_stores::store_search(
        vec![query.clone()],
        max_results,
        tool.filters.as_ref(),
        tool.ranking_options.as_ref(),
        &format!("tools[{index}]."),
    )?;
    let searching = std::time::Instant::now();
    let mut hits = Vec::new();
    for id in &tool.vector_store_ids {
        let found = service.search(tenant, id, &search).await.map_err(|error| {
            ApiError::from(error).with_param(format!("tools[{index}].vector_store_ids"))
        })?;
        super::memory::count_embedding(
            meter,
            found.embedding_model.as_deref(),
            found.embedding_tokens,
        );
        hits.extend(found.hits);
    }
    let searched_in = searching.elapsed();
    metrics::histogram!("hearth_memory_search_duration_seconds", "mode" => "file_search")
        .record(searched_in.as_secs_f64());
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(max_results);

    // The sources get what the context has left after the conversation and the answer.
    let messages = chat_messages(request.instructions.as_deref(), items);
    let texts = messages
        .iter()
        .filter_map(|message| message["content"].as_str());
    let sources = hits
        .iter()
        .map(|hit| Source {
            id: hit.file_id.clone(),
            name: hit.filename.clone(),
            score: hit.score,
            text: hit.text.clone(),
        })
        .collect();
    let placed = super::retrieval::fit_to_context(
        loaded.handle.model(),
        texts,
        request.max_output_tokens.map(|tokens| tokens as usize),
        sources,
    );
    // Retrieval is observable: an event in the request's span with what was placed.
    tracing::info!(
        vector_stores = ?tool.vector_store_ids,
        placed = ?placed.iter().map(|source| source.id.as_str()).collect::<Vec<_>>(),
        search_ms = searched_in.as_secs_f64() * 1e3,
        "file_search retrieved"
    );
    let results = request.includes_search_results().then(|| {
        hits.into_iter()
            .map(|hit| FileSearchResult {
                file_id: hit.file_id,
                filename: hit.filename,
                score: hit.score,
                text: hit.text,
                attributes: hit.attributes,
            })
            .collect()
    });
    Ok(Searched {
        call: Some(Item::FileSearchCall {
            id: item_id("fs"),
            status: "completed".into(),
            queries: vec![query.clone()],
            results,
        }),
        query,
        placed,
    })
}

/// The text of the conversation's last user message.
fn last_user_text(items: &[Item]) -> Option<String> {
    items.iter().rev().find_map(|item| match item {
        Item::Message { role, content, .. } if role == "user" => Some(
            content
                .iter()
                .map(|part| match part {
                    ContentItem::InputText { text } | ContentItem::OutputText { text, .. } => {
                        text.as_str()
                    }
                })
                .collect(),
        ),
        _ => None,
    })
}

/// The `file_citation` annotations of an answer written from `placed` sources: one per `[n]`
/// marker naming a placed source, just after it. An answer that cites nothing by number cites,
/// at its end, each placed file it quotes (a run of words in common); one that quotes none
/// cites nothing.
fn citation_annotations(text: &str, placed: &[Source]) -> Vec<Value> {
    let annotation = |index: usize, source: &Source| {
        json!({"type": "file_citation", "index": index, "file_id": source.id,
            "filename": source.name})
    };
    let found = citations(text, placed.len());
    if !found.is_empty() {
        return found
            .iter()
            .map(|citation| annotation(citation.index, &placed[citation.source]))
            .collect();
    }
    let end = text.chars().count();
    let mut seen = std::collections::HashSet::new();
    quoted_sources(text, placed)
        .into_iter()
        .map(|index| &placed[index])
        .filter(|source| seen.insert(source.id.as_str()))
        .map(|source| annotation(end, source))
        .collect()
}

/// Adds the citations of `placed` sources to the answer's text.
fn annotate(output: &mut [Item], placed: &[Source]) {
    if placed.is_empty() {
        return;
    }
    for item in output {
        if let Item::Message { content, .. } = item {
            for part in content {
                if let ContentItem::OutputText { text, annotations } = part {
                    *annotations = citation_annotations(text, placed);
                }
            }
        }
    }
}

fn tokio_stream_of(
    mut receiver: mpsc::Receiver<Event>,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context).map(|e| e.map(Ok)))
}

/// The typed events of a streamed response, numbered in order.
struct Emitter {
    events: mpsc::Sender<Event>,
    sequence: u64,
}

impl Emitter {
    /// Sends one event; false once the client is gone (the generation is then dropped, which
    /// cancels it).
    async fn emit(&mut self, kind: &str, mut data: Value) -> bool {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let event = Event::default().event(kind).data(data.to_string());
        self.events.send(event).await.is_ok()
    }
}

/// Runs a streamed response to its end: the opening events, the file search's item when
/// there was one, a delta per piece of text (a tool reply is only known once complete, so its
/// items come whole at the end), the citations, the closing events, and the stored response
/// before `response.completed`.
async fn stream_response(
    mut out: Emitter,
    mut response: ResponseObject,
    mut generation: crate::gate::MeteredGeneration,
    (tools, searched): (Option<ToolUse>, Searched),
    keeper: Keeper,
    started: Started,
) {
    if !out
        .emit("response.created", json!({"response": response}))
        .await
        || !out
            .emit("response.in_progress", json!({"response": response}))
            .await
    {
        return;
    }
    let mut output: Vec<Item> = Vec::new();
    if let Some(call) = searched.call {
        let Item::FileSearchCall { id, .. } = &call else {
            return;
        };
        let mut added = json!(call);
        added["status"] = json!("in_progress");
        added["results"] = Value::Null;
        let at = json!({"output_index": 0, "item_id": id});
        let steps = [
            (
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            ),
            ("response.file_search_call.in_progress", at.clone()),
            ("response.file_search_call.searching", at.clone()),
            ("response.file_search_call.completed", at),
            (
                "response.output_item.done",
                json!({"output_index": 0, "item": call}),
            ),
        ];
        for (kind, data) in steps {
            if !out.emit(kind, data).await {
                return;
            }
        }
        output.push(call);
    }
    let first_index = output.len();
    let message_id = item_id("msg");
    let streams_text = tools.is_none();
    let mut text = String::new();
    if streams_text {
        let item = json!({"type": "message", "id": message_id, "status": "in_progress",
            "role": "assistant", "content": []});
        let part = json!({"type": "output_text", "text": "", "annotations": []});
        if !out
            .emit(
                "response.output_item.added",
                json!({"output_index": first_index, "item": item}),
            )
            .await
            || !out
                .emit(
                    "response.content_part.added",
                    json!({"item_id": message_id, "output_index": first_index,
                        "content_index": 0, "part": part}),
                )
                .await
        {
            return;
        }
    }
    let (finish, usage) = loop {
        let delta = match generation.next().await {
            Some(Ok(GenerationEvent::Token { text: piece, .. }))
            | Some(Ok(GenerationEvent::Text { text: piece })) => piece,
            Some(Ok(GenerationEvent::Done {
                finish_reason,
                usage,
                ..
            })) => break (finish_reason, usage),
            Some(Err(error)) => {
                let error = started.engine_error(error);
                response.status = "failed".into();
                response.error = Some(json!({"code": "server_error", "message": error.message}));
                out.emit("response.failed", json!({"response": response}))
                    .await;
                return;
            }
            None => return,
        };
        if delta.is_empty() {
            continue;
        }
        text.push_str(&delta);
        if streams_text
            && !out
                .emit(
                    "response.output_text.delta",
                    json!({"item_id": message_id, "output_index": first_index,
                        "content_index": 0, "delta": delta, "logprobs": []}),
                )
                .await
        {
            return;
        }
    };
    let mut generated = output_items(tools.as_ref(), text);
    annotate(&mut generated, &searched.placed);
    if let (true, Some(Item::Message { id, .. })) = (streams_text, generated.first_mut()) {
        id.clone_from(&message_id);
    }
    for (offset, item) in generated.iter().enumerate() {
        let index = first_index + offset;
        if !emit_item(&mut out, index, item, streams_text).await {
            return;
        }
    }
    output.extend(generated);
    response.finish(output, finish, usage);
    if let Err(error) = keeper.keep(&response).await {
        response.status = "failed".into();
        response.error = Some(json!({"code": "server_error", "message": error.message}));
        out.emit("response.failed", json!({"response": response}))
            .await;
        return;
    }
    let kind = if response.status == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    out.emit(kind, json!({"response": response})).await;
}

/// The events that finish one generated output item. A message whose text was already
/// streamed (`streamed`) gets only its citations and closing events; an item that comes whole
/// (a tool reply) is opened, filled and closed here.
async fn emit_item(out: &mut Emitter, index: usize, item: &Item, streamed: bool) -> bool {
    let mut steps = Vec::new();
    if !streamed {
        let mut added = json!(item);
        added["status"] = json!("in_progress");
        match item {
            Item::FunctionCall { .. } => added["arguments"] = json!(""),
            Item::Message { .. } => added["content"] = json!([]),
            _ => {}
        }
        steps.push((
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        ));
    }
    match item {
        Item::FunctionCall { id, arguments, .. } => {
            steps.push((
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": arguments}),
            ));
            steps.push((
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": index, "arguments": arguments}),
            ));
        }
        Item::Message { id, content, .. } => {
            let part = json!(content[0]);
            let at = json!({"item_id": id, "output_index": index, "content_index": 0});
            let with = |fields: Value| {
                let mut data = at.clone();
                if let (Some(data), Some(fields)) = (data.as_object_mut(), fields.as_object()) {
                    data.extend(fields.clone());
                }
                data
            };
            if !streamed {
                steps.push((
                    "response.content_part.added",
                    with(json!({"part": {"type": "output_text", "text": "", "annotations": []}})),
                ));
                steps.push((
                    "response.output_text.delta",
                    with(json!({"delta": part["text"], "logprobs": []})),
                ));
            }
            for (annotation_index, annotation) in part["annotations"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                steps.push((
                    "response.output_text.annotation.added",
                    with(json!({"annotation_index": annotation_index, "annotation": annotation})),
                ));
            }
            steps.push((
                "response.output_text.done",
                with(json!({"text": part["text"], "logprobs": []})),
            ));
            steps.push(("response.content_part.done", with(json!({"part": part}))));
        }
        Item::FunctionCallOutput { .. } | Item::FileSearchCall { .. } => {}
    }
    steps.push((
        "response.output_item.done",
        json!({"output_index": index, "item": item}),
    ));
    for (kind, data) in steps {
        if !out.emit(kind, data).await {
            return false;
        }
    }
    true
}

/// A stored response, as it was answered.
#[utoipa::path(
    get,
    path = "/v1/responses/{response_id}",
    tag = "openai",
    params(("response_id" = String, Path, description = "The response's id")),
    responses(
        (status = 200, description = "The response", body = ResponseObject),
        (status = 404, description = "No such response in the caller's tenant (or expired)",
            body = ErrorBody)
    )
)]
pub async fn get_response(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
) -> Result<Json<ResponseObject>, ApiError> {
    Ok(Json(stored(&state, &tenant, &id).await?.1))
}

/// Deletes a stored response. A response that continued it keeps its own turn, and
/// continuing from it again starts from that turn.
#[utoipa::path(
    delete,
    path = "/v1/responses/{response_id}",
    tag = "openai",
    params(("response_id" = String, Path, description = "The response's id")),
    responses(
        (status = 200, description = "Deleted", body = ResponseDeleted),
        (status = 404, description = "No such response in the caller's tenant",
            body = ErrorBody)
    )
)]
pub async fn delete_response(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
) -> Result<Json<ResponseDeleted>, ApiError> {
    if !store(&state)?
        .delete_response(&tenant, &id)
        .await
        .map_err(store_error)?
    {
        return Err(no_response(&id));
    }
    Ok(Json(ResponseDeleted {
        id,
        object: "response",
        deleted: true,
    }))
}

/// The input items of a stored response (its own turn's, not the earlier turns').
#[utoipa::path(
    get,
    path = "/v1/responses/{response_id}/input_items",
    tag = "openai",
    params(("response_id" = String, Path, description = "The response's id"), InputItemsQuery),
    responses(
        (status = 200, description = "A page of input items", body = InputItemList),
        (status = 400, description = "A limit or order out of range", body = ErrorBody),
        (status = 404, description = "No such response in the caller's tenant",
            body = ErrorBody)
    )
)]
pub async fn list_input_items(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<InputItemsQuery>,
) -> Result<Json<InputItemList>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100").with_param("limit"));
    }
    let descending = match query.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => {
            return Err(ApiError::bad_request("order must be asc or desc").with_param("order"));
        }
    };
    let mut items = stored(&state, &tenant, &id).await?.0;
    if descending {
        items.reverse();
    }
    if let Some(after) = &query.after {
        let position = items
            .iter()
            .position(|item| item_key(item) == after)
            .ok_or_else(|| {
                ApiError::bad_request(format!("after {after:?} is not an item of this response"))
                    .with_param("after")
            })?;
        items.drain(..=position);
    }
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok(Json(InputItemList {
        object: "list",
        first_id: items.first().map(|item| item_key(item).to_string()),
        last_id: items.last().map(|item| item_key(item).to_string()),
        data: items,
        has_more,
    }))
}

fn item_key(item: &Item) -> &str {
    match item {
        Item::Message { id, .. }
        | Item::FunctionCall { id, .. }
        | Item::FunctionCallOutput { id, .. }
        | Item::FileSearchCall { id, .. } => id,
    }
}

/// `truncation: auto`: leaves out the conversation's oldest items, one at a time, until what
/// remains fits the model's context beside the answer (`max_output_tokens`, or a quarter of
/// the context when unset); the last `keep` items (the newest message) always stay. A
/// function call and its output go together, so no output is left without its call. Returns
/// how many items were left out.
fn truncate_oldest(
    model: &hearth_engine::Model,
    items: &mut Vec<Item>,
    keep: usize,
    instructions: Option<&str>,
    max_output: Option<u32>,
) -> usize {
    let context = model.config().n_ctx_per_seq;
    let reserve = max_output.map_or(context / 4, |tokens| tokens as usize);
    // A few tokens per item for the chat template's turn markers.
    let tokens = |text: &str| 8 + model.tokenize(text, false).len();
    let mut total: usize = instructions.map_or(0, tokens)
        + items
            .iter()
            .map(|item| tokens(&item.prompt_text()))
            .sum::<usize>();
    let mut dropped = 0;
    while total + reserve > context && items.len() > keep {
        let first = items.remove(0);
        total -= tokens(&first.prompt_text()).min(total);
        dropped += 1;
        // An output whose call went is no use on its own.
        while items.len() > keep && matches!(items.first(), Some(Item::FunctionCallOutput { .. })) {
            let orphan = items.remove(0);
            total -= tokens(&orphan.prompt_text()).min(total);
            dropped += 1;
        }
    }
    dropped
}
