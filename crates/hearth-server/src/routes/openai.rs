//! OpenAI-compatible endpoints: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `/v1/models`. Each handler converts the wire request, makes one call into the inference
//! service, and maps events and errors back to OpenAI's shapes (SSE when streaming).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
use hearth_engine::{GenerationEvent, ModelHandle};
use hearth_inference::tools::{AssistantReply, ToolUse};

use super::cache::{self, CacheScope};
use super::experiments;
use super::generate::{self, Bound, Started, inference};
use super::plugin_tools;
use super::prompts::{self, PromptTarget};
use super::proxy;
use super::retrieval;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::gate::{CallerPlugins, CallerUser, MaybeCaller, Meter, MeteredGeneration, TenantScope};
use crate::state::AppState;
use crate::wire::openai::*;
use crate::wire::unix_seconds;

/// One choice's stream of events, tagged with its index.
type ChoiceEvents =
    BoxStream<'static, (usize, Result<GenerationEvent, hearth_engine::EngineError>)>;

fn merged_events(streams: Vec<MeteredGeneration>) -> ChoiceEvents {
    stream::select_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(index, stream)| stream.map(move |event| (index, event)).boxed()),
    )
    .boxed()
}

fn token_piece(handle: &ModelHandle, token_id: i32) -> String {
    handle.model().detokenize(&[token_id]).unwrap_or_default()
}

fn chat_logprobs(
    handle: &ModelHandle,
    token_id: i32,
    logprob: Option<f32>,
    top: &[hearth_engine::TopLogprob],
) -> Option<TokenLogprobOut> {
    let logprob = logprob?;
    let token = token_piece(handle, token_id);
    Some(TokenLogprobOut {
        bytes: token.as_bytes().to_vec(),
        token,
        logprob,
        top_logprobs: top
            .iter()
            .map(|alternative| TopLogprobOut {
                token: alternative.text.clone(),
                logprob: alternative.logprob,
                bytes: alternative.text.as_bytes().to_vec(),
            })
            .collect(),
    })
}

/// Creates a chat completion, streamed as server-sent events when `stream` is true.
///
/// A request for a routed model (a route alias or `upstream/model`) gets the upstream's answer
/// as the upstream sent it, its error statuses included.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    request_body(content = ChatCompletionBody, description = "OpenAI chat completion request"),
    responses(
        (status = 200, description = "The chat completion. With `stream: true` the body is \
            `text/event-stream`: `data:` events that each hold a chat.completion.chunk, ending \
            with `data: [DONE]`.",
            content(
                (ChatCompletion = "application/json"),
                (ChatCompletionEvent = "text/event-stream")
            )),
        (status = 400, description = "Invalid request: a field out of range, an unsupported \
            role or content part, a model that cannot chat, a prompt longer than the context",
            body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "The model's queue is full, or every upstream of the \
            route is rate-limiting", body = ErrorBody),
        (status = 502, description = "No upstream of the route answered", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)
    )
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    meter: Meter,
    scope: CacheScope,
    TenantScope(tenant): TenantScope,
    (caller_user, plugin_access, MaybeCaller(caller)): (CallerUser, CallerPlugins, MaybeCaller),
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    // An experiment on the request's model or prompt places it first: its variant may change
    // both.
    experiments::assign_request(
        &state,
        &meter,
        (&tenant, caller.as_ref()),
        &headers,
        &mut body,
    );
    // A prompt template becomes the request's own messages before anything reads them.
    prompts::expand_reference(&state, &meter, &tenant, &mut body, PromptTarget::Chat)?;
    // Plugin tools run between generations, and what they answer is not the request's.
    if plugin_tools::wants_plugins(&body) {
        let caller = (tenant.as_str(), &caller_user, &plugin_access);
        return plugin_tools::chat_with_plugins(&state, &meter, caller, body).await;
    }
    // An answer drawn from memory depends on what the collections hold now: never cached.
    let recalls = ["memory", "files"]
        .iter()
        .any(|field| body.get(field).is_some_and(|value| !value.is_null()));
    // So does one that is remembered (a key may remember by default).
    if recalls || caller_user.remember_by_default {
        return chat_completions_uncached(&state, &meter, (&tenant, &caller_user), body).await;
    }
    cache::cached(
        &state,
        &meter,
        &scope,
        &headers,
        "/v1/chat/completions",
        body,
        |body| chat_completions_uncached(&state, &meter, (&tenant, &caller_user), body),
    )
    .await
}

pub(crate) async fn chat_completions_uncached(
    state: &AppState,
    meter: &Meter,
    (tenant, caller_user): (&str, &CallerUser),
    body: serde_json::Value,
) -> Result<Response, ApiError> {
    let request: ChatCompletionRequest =
        match generate::route(state, meter, body, "/chat/completions").await? {
            Bound::Local(request) => request,
            Bound::Answered(response) => return Ok(response),
        };
    // The request is checked whole before anything is asked of the models.
    let mut plan = request.to_plan()?;
    let memory = MemoryIn::with_default(request.memory()?, caller_user.remember_by_default);
    let loaded = generate::load(state, &request.model, request.keep_alive.as_ref()).await?;
    let recalled = match &memory {
        None => None,
        Some(memory) => {
            let user = retrieval::memory_user(caller_user, memory, request.user.as_deref())?;
            let texts = request.message_texts();
            let recalled = retrieval::recall(
                state,
                meter,
                tenant,
                (memory, user),
                &request.recent_user_texts(memory.query_turns.unwrap_or(1)),
                (
                    loaded.handle.model(),
                    texts.iter().map(String::as_str).collect(),
                    plan.request.max_tokens,
                ),
            )
            .await?;
            if !recalled.sources.is_empty() {
                plan = request.to_plan_asking(Some(&recalled.question))?;
            }
            Some(Arc::new(recalled))
        }
    };
    let started = loaded.start(meter, &request.model, &plan).await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    meter.answered_as(&id);
    let created = unix_seconds();
    let model = started.model.clone();
    let handle = started.handle.clone();

    if request.stream {
        return Ok(stream_chat(
            id,
            created,
            model,
            handle,
            started.streams,
            (plan, recalled, meter.clone()),
        ));
    }

    let mut choices: Vec<ChatChoice> = Vec::with_capacity(plan.choices);
    let mut usage = UsageOut::default();
    let mut answers = String::new();
    let mut first_answer = String::new();
    let Started {
        inference, streams, ..
    } = started;
    for (index, stream) in streams.into_iter().enumerate() {
        let completion = stream
            .collect()
            .await
            .map_err(|error| inference.engine_error(&model, error))?;
        usage.add(completion.usage);
        let logprobs = plan.request.logprobs.map(|_| ChatLogprobs {
            content: completion
                .logprobs
                .iter()
                .filter_map(|entry| {
                    chat_logprobs(
                        &handle,
                        entry.token_id,
                        Some(entry.logprob),
                        &entry.top_logprobs,
                    )
                })
                .collect(),
        });
        let finish = completion
            .finish_reason
            .map(finish_reason)
            .unwrap_or("stop");
        if recalled.is_some() {
            if index == 0 {
                first_answer = completion.text.clone();
            }
            answers.push_str(&completion.text);
            answers.push('\n');
        }
        let (message, finish_reason) =
            assistant_reply(plan.tools.as_ref(), completion.text, finish);
        choices.push(ChatChoice {
            index,
            message,
            logprobs,
            finish_reason,
        });
    }
    if let Some(recalled) = &recalled {
        recalled.remember(meter, &model, &first_answer).await;
    }
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
        choices,
        usage,
        system_fingerprint: fingerprint(),
        citations: recalled
            .as_ref()
            .map(|recalled| recalled.citations(&answers)),
        retrieval: recalled.as_ref().map(|recalled| recalled.retrieval()),
        plugin_calls: None,
    })
    .into_response())
}

/// The assistant message of a finished generation: its text, or the tool calls read from it
/// when the model could call tools.
fn assistant_reply(
    tools: Option<&ToolUse>,
    text: String,
    finish: &'static str,
) -> (AssistantMessage, &'static str) {
    let reply = match tools {
        Some(tools) => tools.parse(&text),
        None => AssistantReply::Text(text),
    };
    match reply {
        AssistantReply::Text(text) => (
            AssistantMessage {
                role: "assistant",
                content: Some(text),
                refusal: None,
                tool_calls: None,
            },
            finish,
        ),
        AssistantReply::ToolCalls(calls) => (
            AssistantMessage {
                role: "assistant",
                content: None,
                refusal: None,
                tool_calls: Some(
                    calls
                        .iter()
                        .map(|call| ToolCallOut::from_call(call, None))
                        .collect(),
                ),
            },
            "tool_calls",
        ),
    }
}

fn stream_chat(
    id: String,
    created: u64,
    model: String,
    handle: ModelHandle,
    streams: Vec<MeteredGeneration>,
    (plan, recalled, meter): (GenerationPlan, Option<Arc<retrieval::Recalled>>, Meter),
) -> Response {
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |choices: Vec<ChunkChoice>, usage: Option<UsageOut>| ChatCompletionChunk {
            id: id.clone(),
            object: "chat.completion.chunk",
            created,
            model: model.clone(),
            system_fingerprint: fingerprint(),
            choices,
            usage,
            citations: None,
            retrieval: None,
        }
    };
    let sse = |chunk: &ChatCompletionChunk| {
        Event::default().data(serde_json::to_string(chunk).unwrap_or_default())
    };

    // OpenAI opens each choice with a role-only delta.
    let openings: Vec<Result<Event, Infallible>> = (0..plan.choices)
        .map(|index| {
            Ok(sse(&chunk(
                vec![ChunkChoice {
                    index,
                    delta: Delta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                        tool_calls: None,
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            )))
        })
        .collect();

    let wants_logprobs = plan.request.logprobs.is_some();
    let include_usage = plan.include_usage;
    let chunk_for_events = chunk.clone();
    let mut usage = UsageOut::default();
    let mut remaining = plan.choices;
    // A tool reply is only known once it is complete: its text is gathered per choice, and
    // sent as content or tool calls when the choice finishes.
    let tools = plan.tools;
    let mut tool_replies: Vec<String> = vec![String::new(); plan.choices];
    // With memory, each choice's text is gathered too: its last chunk names what it cites,
    // and the first choice's is what `memory.remember` keeps once the stream ends.
    let mut answers: Vec<String> = vec![String::new(); plan.choices];
    let first_answer = Arc::new(std::sync::Mutex::new(String::new()));
    let remember = {
        let (recalled, first_answer, model) =
            (recalled.clone(), first_answer.clone(), model.clone());
        stream::once(async move {
            if let Some(recalled) = recalled {
                let answer = first_answer
                    .lock()
                    .map(|answer| answer.clone())
                    .unwrap_or_default();
                recalled.remember(&meter, &model, &answer).await;
            }
            stream::empty::<Result<Event, Infallible>>()
        })
        .flatten()
    };
    let body = merged_events(streams).filter_map(move |(index, event)| {
        if recalled.is_some()
            && let Ok(GenerationEvent::Token { text, .. } | GenerationEvent::Text { text }) =
                &event
        {
            answers[index].push_str(text);
        }
        if tools.is_some() {
            match &event {
                Ok(GenerationEvent::Token { text, .. }) | Ok(GenerationEvent::Text { text }) => {
                    tool_replies[index].push_str(text);
                    return std::future::ready(None);
                }
                _ => {}
            }
        }
        let item = match event {
            Ok(GenerationEvent::Token {
                text,
                token_id,
                logprob,
                top_logprobs,
            }) => {
                let logprobs = if wants_logprobs {
                    chat_logprobs(&handle, token_id, logprob, &top_logprobs)
                        .map(|entry| ChatLogprobs { content: vec![entry] })
                } else {
                    None
                };
                if text.is_empty() && logprobs.is_none() {
                    None
                } else {
                    Some(vec![sse(&chunk_for_events(
                        vec![ChunkChoice {
                            index,
                            delta: Delta {
                                content: Some(text),
                                ..Delta::default()
                            },
                            logprobs,
                            finish_reason: None,
                        }],
                        None,
                    ))])
                }
            }
            Ok(GenerationEvent::Text { text }) => Some(vec![sse(&chunk_for_events(
                vec![ChunkChoice {
                    index,
                    delta: Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            ))]),
            Ok(GenerationEvent::Done {
                finish_reason: reason,
                usage: choice_usage,
                ..
            }) => {
                usage.add(choice_usage);
                remaining -= 1;
                let mut events = Vec::new();
                let mut reason = finish_reason(reason);
                if tools.is_some() {
                    let text = std::mem::take(&mut tool_replies[index]);
                    let (message, tool_reason) = assistant_reply(tools.as_ref(), text, reason);
                    reason = tool_reason;
                    events.push(sse(&chunk_for_events(
                        vec![ChunkChoice {
                            index,
                            delta: Delta {
                                content: message.content,
                                tool_calls: message.tool_calls.map(|calls| {
                                    calls
                                        .into_iter()
                                        .enumerate()
                                        .map(|(call_index, call)| ToolCallOut {
                                            index: Some(call_index),
                                            ..call
                                        })
                                        .collect()
                                }),
                                ..Delta::default()
                            },
                            logprobs: None,
                            finish_reason: None,
                        }],
                        None,
                    )));
                }
                let mut last = chunk_for_events(
                    vec![ChunkChoice {
                        index,
                        delta: Delta::default(),
                        logprobs: None,
                        finish_reason: Some(reason),
                    }],
                    None,
                );
                last.citations = recalled
                    .as_ref()
                    .map(|recalled| recalled.citations(&answers[index]));
                last.retrieval = recalled.as_ref().map(|recalled| recalled.retrieval());
                if index == 0
                    && recalled.as_ref().is_some_and(|recalled| recalled.remembers())
                    && let Ok(mut first) = first_answer.lock()
                {
                    first.clone_from(&answers[0]);
                }
                events.push(sse(&last));
                if remaining == 0 && include_usage {
                    events.push(sse(&chunk_for_events(Vec::new(), Some(usage))));
                }
                Some(events)
            }
            Err(error) => {
                // Headers are sent; report the failure in-band, as OpenAI does.
                let body = serde_json::json!({"error": {
                    "message": error.to_string(), "type": "server_error", "param": null, "code": "generation_failed"
                }});
                Some(vec![Event::default().data(body.to_string())])
            }
        };
        std::future::ready(item.map(|events| stream::iter(events.into_iter().map(Ok))))
    });
    let stream = stream::iter(openings)
        .chain(body.flatten())
        .chain(remember)
        .chain(stream::once(async { Ok(Event::default().data("[DONE]")) }))
        .boxed();
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Creates a text completion (the legacy completions API), streamed as SSE when `stream` is true.
///
/// A request for a routed model gets the upstream's answer as the upstream sent it.
#[utoipa::path(
    post,
    path = "/v1/completions",
    tag = "openai",
    request_body(content = CompletionRequest, description = "OpenAI completion request"),
    responses(
        (status = 200, description = "The completion. With `stream: true` the body is \
            `text/event-stream`: `data:` events that each hold a text_completion chunk, ending \
            with `data: [DONE]`.",
            content(
                (TextCompletion = "application/json"),
                (TextCompletionEvent = "text/event-stream")
            )),
        (status = 400, description = "Invalid request: a field out of range, a model that \
            cannot generate, a prompt longer than the context", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "The model's queue is full, or every upstream of the \
            route is rate-limiting", body = ErrorBody),
        (status = 502, description = "No upstream of the route answered", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)
    )
)]
pub async fn completions(
    State(state): State<AppState>,
    meter: Meter,
    scope: CacheScope,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    cache::cached(
        &state,
        &meter,
        &scope,
        &headers,
        "/v1/completions",
        body,
        |body| completions_uncached(&state, &meter, body),
    )
    .await
}

async fn completions_uncached(
    state: &AppState,
    meter: &Meter,
    body: serde_json::Value,
) -> Result<Response, ApiError> {
    let request: CompletionRequest =
        match generate::route(state, meter, body, "/completions").await? {
            Bound::Local(request) => request,
            Bound::Answered(response) => return Ok(response),
        };
    // The request is checked whole before anything is asked of the models.
    let plan = request.to_plan()?;
    let Started {
        inference,
        model,
        handle,
        streams,
    } = generate::start(
        state,
        meter,
        &request.model,
        request.keep_alive.as_ref(),
        &plan,
    )
    .await?;
    let id = format!("cmpl-{}", uuid::Uuid::new_v4().simple());
    let created = unix_seconds();
    let echo = request.echo.then(|| request.prompt.0[0].clone());

    if request.stream {
        let include_usage = plan.include_usage;
        let mut usage = UsageOut::default();
        let mut remaining = plan.choices;
        let (stream_id, stream_model) = (id.clone(), model.clone());
        let text_chunk = move |index: usize,
                               text: String,
                               reason: Option<&'static str>,
                               usage: Option<UsageOut>| {
            let choices = if usage.is_some() {
                Vec::new()
            } else {
                vec![TextChoice {
                    index,
                    text,
                    logprobs: None,
                    finish_reason: reason,
                }]
            };
            Event::default().data(
                serde_json::to_string(&TextCompletion {
                    id: stream_id.clone(),
                    object: "text_completion",
                    created,
                    model: stream_model.clone(),
                    choices,
                    usage,
                    system_fingerprint: fingerprint(),
                })
                .unwrap_or_default(),
            )
        };
        let openings: Vec<Result<Event, Infallible>> = match &echo {
            Some(prompt) => (0..plan.choices)
                .map(|index| Ok(text_chunk(index, prompt.clone(), None, None)))
                .collect(),
            None => Vec::new(),
        };
        let body = merged_events(streams).map(move |(index, event)| {
            let events = match event {
                Ok(GenerationEvent::Token { text, .. }) | Ok(GenerationEvent::Text { text }) => {
                    if text.is_empty() {
                        Vec::new()
                    } else {
                        vec![text_chunk(index, text, None, None)]
                    }
                }
                Ok(GenerationEvent::Done {
                    finish_reason: reason,
                    usage: choice_usage,
                    ..
                }) => {
                    usage.add(choice_usage);
                    remaining -= 1;
                    let mut events = vec![text_chunk(index, String::new(), Some(finish_reason(reason)), None)];
                    if remaining == 0 && include_usage {
                        events.push(text_chunk(0, String::new(), None, Some(usage)));
                    }
                    events
                }
                Err(error) => {
                    let body = serde_json::json!({"error": {
                        "message": error.to_string(), "type": "server_error", "param": null, "code": "generation_failed"
                    }});
                    vec![Event::default().data(body.to_string())]
                }
            };
            stream::iter(events.into_iter().map(Ok::<Event, Infallible>))
        });
        let stream = stream::iter(openings)
            .chain(body.flatten())
            .chain(stream::once(async { Ok(Event::default().data("[DONE]")) }))
            .boxed();
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }

    let mut choices = Vec::with_capacity(plan.choices);
    let mut usage = UsageOut::default();
    for (index, stream) in streams.into_iter().enumerate() {
        let completion = stream
            .collect()
            .await
            .map_err(|error| inference.engine_error(&model, error))?;
        usage.add(completion.usage);
        let prefix = echo.clone().unwrap_or_default();
        let logprobs = plan.request.logprobs.map(|_| {
            let mut legacy = LegacyLogprobs::default();
            let mut offset = prefix.len();
            for entry in &completion.logprobs {
                let token = token_piece(&handle, entry.token_id);
                legacy.text_offset.push(offset);
                offset += token.len();
                legacy.tokens.push(token);
                legacy.token_logprobs.push(entry.logprob);
                legacy.top_logprobs.push(
                    entry
                        .top_logprobs
                        .iter()
                        .map(|alternative| (alternative.text.clone(), alternative.logprob))
                        .collect(),
                );
            }
            legacy
        });
        choices.push(TextChoice {
            index,
            text: format!("{prefix}{}", completion.text),
            logprobs,
            finish_reason: Some(
                completion
                    .finish_reason
                    .map(finish_reason)
                    .unwrap_or("stop"),
            ),
        });
    }
    Ok(Json(TextCompletion {
        id,
        object: "text_completion",
        created,
        model,
        choices,
        usage: Some(usage),
        system_fingerprint: fingerprint(),
    })
    .into_response())
}

/// Embeds one or more texts with a local embedding model (or a routed one).
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "openai",
    request_body(content = EmbeddingRequest, description = "OpenAI embeddings request"),
    responses(
        (status = 200, description = "The embeddings, in input order", body = EmbeddingList),
        (status = 400, description = "Invalid request: a model that does not embed, \
            dimensions the model does not produce, a text the tokenizer refuses",
            body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "The model's queue is full, or every upstream of the \
            route is rate-limiting", body = ErrorBody),
        (status = 502, description = "No upstream of the route answered", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)
    )
)]
pub async fn embeddings(
    State(state): State<AppState>,
    meter: Meter,
    scope: CacheScope,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    cache::cached(
        &state,
        &meter,
        &scope,
        &headers,
        "/v1/embeddings",
        body,
        |body| embeddings_uncached(&state, &meter, body),
    )
    .await
}

async fn embeddings_uncached(
    state: &AppState,
    meter: &Meter,
    body: serde_json::Value,
) -> Result<Response, ApiError> {
    let request: EmbeddingRequest = match generate::route(state, meter, body, "/embeddings").await?
    {
        Bound::Local(request) => request,
        Bound::Answered(response) => return Ok(response),
    };
    let inputs = request.inputs()?;
    let encoding = request.encoding()?;
    let keep_alive = crate::wire::ollama::keep_alive(request.keep_alive.as_ref())?;
    let inference = inference(state)?;
    let (description, service) = inference
        .embedding_model(&request.model, keep_alive)
        .await?;
    if let Some(dimensions) = request.dimensions
        && dimensions as usize != service.dimensions()
    {
        return Err(ApiError::bad_request(format!(
            "this model produces {} dimensions and cannot shorten them; omit dimensions",
            service.dimensions()
        ))
        .with_param("dimensions"));
    }
    let embeddings = service.embed(inputs).await?;
    let prompt_tokens = embeddings.total_tokens();
    meter.started(&request.model, prompt_tokens);
    Ok(Json(EmbeddingList {
        object: "list",
        data: embeddings
            .items
            .into_iter()
            .enumerate()
            .map(|(index, embedding)| EmbeddingOut {
                object: "embedding",
                index,
                embedding: EmbeddingVector::encode(embedding.vector, encoding),
            })
            .collect(),
        model: description.reference.to_string(),
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    })
    .into_response())
}

/// Lists the models this server can serve: chat and embedding models alike.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    responses(
        (status = 200, description = "The models", body = ModelList),
        (status = 503, description = "Model serving is not configured", body = ErrorBody)
    )
)]
pub async fn list_models(State(state): State<AppState>) -> Result<Json<ModelList>, ApiError> {
    let inference = inference(&state)?;
    let mut data: Vec<ModelObject> = inference
        .models()?
        .into_iter()
        .map(|manifest| model_object(&manifest))
        .collect();
    // Route aliases are models clients can name too.
    data.extend(
        proxy::route_names(&state)
            .into_iter()
            .map(|name| ModelObject {
                id: name,
                object: "model",
                created: 0,
                owned_by: "hearth-route",
            }),
    );
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

/// One model by id.
#[utoipa::path(
    get,
    path = "/v1/models/{model}",
    tag = "openai",
    params(("model" = String, Path, description = "Model name, e.g. gemma3:270m")),
    responses(
        (status = 200, description = "The model", body = ModelObject),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 503, description = "Model serving is not configured", body = ErrorBody)
    )
)]
pub async fn get_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    let inference = inference(&state)?;
    Ok(Json(model_object(&inference.describe(&model)?)))
}

fn model_object(manifest: &hearth_models::Manifest) -> ModelObject {
    ModelObject {
        id: manifest.reference.to_string(),
        object: "model",
        created: manifest.current.created_at_ms / 1000,
        owned_by: "hearth",
    }
}
