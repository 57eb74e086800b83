//! Ollama-compatible endpoints under `/api`. Streaming responses are NDJSON, one JSON object
//! per line, and streaming is the default, as in Ollama. Model management (`/api/pull`,
//! `/api/delete`, `/api/copy`) changes the registry the other endpoints read.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use hearth_engine::{GenerationEvent, GenerationRequest, ModelHandle};
use hearth_inference::tools::{AssistantReply, ToolUse};
use hearth_inference::{Inference, InferenceError, KeepAlive, LoadedModel, ModelKind};
use hearth_models::{Manifest, ModelFormat, PullOptions, PullSource};
use tokio::sync::mpsc;

use super::generate::inference;
use super::retrieval::Recalled;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::gate::{CallerUser, Meter, MeteredGeneration, TenantScope};
use crate::state::AppState;
use crate::wire::ollama::*;
use crate::wire::{rfc3339_from_unix_millis, rfc3339_now};

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn ndjson_line(value: &impl serde::Serialize) -> bytes::Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    bytes::Bytes::from(line)
}

/// Which of Ollama's two response shapes a generation is rendered in.
#[derive(Clone, Copy)]
enum Shape {
    Chat,
    Generate,
}

fn render(
    shape: Shape,
    model: &str,
    text: String,
    tool_calls: Option<Vec<ToolCallIo>>,
    final_fields: Option<FinalFields>,
) -> bytes::Bytes {
    let done = final_fields.is_some();
    match shape {
        Shape::Chat => ndjson_line(&ChatResponse {
            model: model.to_string(),
            created_at: rfc3339_now(),
            message: MessageOut {
                role: "assistant",
                content: text,
                tool_calls,
            },
            done,
            final_fields,
        }),
        Shape::Generate => ndjson_line(&GenerateResponse {
            model: model.to_string(),
            created_at: rfc3339_now(),
            response: text,
            done,
            final_fields,
        }),
    }
}

/// A finished reply as Ollama shows it: the text, or (when tools could be called) the calls.
fn reply_parts(tools: Option<&ToolUse>, text: String) -> (String, Option<Vec<ToolCallIo>>) {
    match tools.map(|tools| tools.parse(&text)) {
        None => (text, None),
        Some(AssistantReply::Text(text)) => (text, None),
        Some(AssistantReply::ToolCalls(calls)) => (
            String::new(),
            Some(
                calls
                    .into_iter()
                    .map(|call| ToolCallIo {
                        function: FunctionCallIo {
                            name: call.name,
                            arguments: call.arguments,
                        },
                    })
                    .collect(),
            ),
        ),
    }
}

/// Ollama's `format` is OpenAI's `response_format`: a grammar error names the Ollama field.
fn ollama_param(error: ApiError) -> ApiError {
    match error.param.as_deref() {
        Some("response_format") => error.with_param("format"),
        _ => error,
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one generation's whole context; a struct would only rename the arguments"
)]
async fn run_generation(
    inference: &Inference,
    shape: Shape,
    description: Manifest,
    handle: ModelHandle,
    request: GenerationRequest,
    (tools, recalled): (Option<ToolUse>, Option<Arc<Recalled>>),
    stream: bool,
    meter: Meter,
    // When the request arrived, and how long loading the model took of that.
    (started, load_duration): (Instant, std::time::Duration),
) -> Result<Response, ApiError> {
    let requested = description.reference.to_string();
    let mut generation = super::generate::start_choices(&handle, &request, 1, (&meter, &requested))
        .await
        .map_err(|error| {
            ollama_param(ApiError::from(
                inference.engine_error(&description.reference.to_string(), error),
            ))
        })?
        .pop()
        .ok_or_else(|| ApiError::internal("no generation was started"))?;
    let model = description.reference.to_string();
    let recalled_for_fields = recalled.clone();
    let final_fields = move |reason,
                             usage: hearth_engine::Usage,
                             timings: hearth_engine::Timings,
                             answer: &str| {
        FinalFields {
            citations: recalled_for_fields
                .as_ref()
                .map(|recalled| recalled.citations(answer)),
            retrieval: recalled_for_fields
                .as_ref()
                .map(|recalled| recalled.retrieval()),
            done_reason: done_reason(reason),
            total_duration: nanos(started.elapsed()),
            load_duration: nanos(load_duration),
            prompt_eval_count: usage.prompt_tokens,
            prompt_eval_duration: nanos(timings.prompt),
            eval_count: usage.completion_tokens,
            eval_duration: nanos(timings.generation),
        }
    };

    if !stream {
        let completion = generation
            .collect()
            .await
            .map_err(|error| inference.engine_error(&description.reference.to_string(), error))?;
        let fields = final_fields(
            completion
                .finish_reason
                .unwrap_or(hearth_engine::FinishReason::Stop),
            completion.usage,
            completion.timings,
            &completion.text,
        );
        if let Some(recalled) = &recalled {
            recalled.remember(&meter, &model, &completion.text).await;
        }
        let (text, tool_calls) = reply_parts(tools.as_ref(), completion.text);
        let line = render(shape, &model, text, tool_calls, Some(fields));
        return Ok(([(header::CONTENT_TYPE, "application/json")], line).into_response());
    }

    // A tool reply is only known once complete: gather it, then send it in one message. The
    // text is gathered for the citations too.
    let mut tool_reply = String::new();
    let mut answer = String::new();
    // With `memory.remember`, the answer is kept once the stream has sent its last line.
    let remembered_answer = Arc::new(std::sync::Mutex::new(String::new()));
    let remember = {
        let (recalled, remembered_answer, model) =
            (recalled.clone(), remembered_answer.clone(), model.clone());
        stream::once(async move {
            if let Some(recalled) = recalled {
                let answer = remembered_answer
                    .lock()
                    .map(|answer| answer.clone())
                    .unwrap_or_default();
                recalled.remember(&meter, &model, &answer).await;
            }
            stream::empty::<Result<bytes::Bytes, std::convert::Infallible>>()
        })
        .flatten()
    };
    let lines = stream::poll_fn(move |context| generation_poll(&mut generation, context))
        .filter_map(move |event| {
            let line = match event {
                Ok(GenerationEvent::Token { text, .. }) | Ok(GenerationEvent::Text { text })
                    if tools.is_some() =>
                {
                    tool_reply.push_str(&text);
                    None
                }
                Ok(GenerationEvent::Token { text, .. }) | Ok(GenerationEvent::Text { text }) => {
                    answer.push_str(&text);
                    (!text.is_empty()).then(|| render(shape, &model, text, None, None))
                }
                Ok(GenerationEvent::Done {
                    finish_reason,
                    usage,
                    timings,
                }) => {
                    let mut lines = bytes::BytesMut::new();
                    if tools.is_some() {
                        let (text, tool_calls) =
                            reply_parts(tools.as_ref(), std::mem::take(&mut tool_reply));
                        lines.extend_from_slice(&render(shape, &model, text, tool_calls, None));
                    }
                    lines.extend_from_slice(&render(
                        shape,
                        &model,
                        String::new(),
                        None,
                        Some(final_fields(finish_reason, usage, timings, &answer)),
                    ));
                    if let Ok(mut kept) = remembered_answer.lock() {
                        kept.clone_from(&answer);
                    }
                    Some(lines.freeze())
                }
                Err(error) => Some(ndjson_line(
                    &serde_json::json!({ "error": error.to_string() }),
                )),
            };
            std::future::ready(line.map(Ok::<_, std::convert::Infallible>))
        })
        .chain(remember);
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

fn generation_poll(
    generation: &mut MeteredGeneration,
    context: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<Result<GenerationEvent, hearth_engine::EngineError>>> {
    use futures_util::Stream;
    std::pin::Pin::new(generation).poll_next(context)
}

/// Ollama chat: a conversation in, the assistant's reply out (NDJSON stream by default).
#[utoipa::path(post, path = "/api/chat", tag = "ollama",
    request_body(content = ChatBody, description = "Ollama chat request"),
    responses(
        (status = 200, description = "The reply. Streamed (the default), the body is \
            `application/x-ndjson`: one object per line, the last with `done: true` and the \
            statistics; a failure after the first line is a line `{\"error\": ...}`.",
            content(
                (ChatResponse = "application/json"),
                (ChatResponse = "application/x-ndjson")
            )),
        (status = 400, description = "Invalid request: an unsupported role, images, a \
            format that is not JSON or a schema, a model that cannot chat, a conversation \
            longer than the context", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "The model's queue is full", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)))]
pub async fn chat(
    State(state): State<AppState>,
    meter: Meter,
    TenantScope(tenant): TenantScope,
    caller_user: CallerUser,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    // The request is checked whole before anything is asked of the models, as the document
    // describes it: a request that only loads the model too.
    let (mut generation, mut tools) = request.to_request()?;
    let memory = crate::wire::openai::MemoryIn::with_default(
        request.memory()?,
        caller_user.remember_by_default,
    );
    let inference = inference(&state)?;
    if request.messages.is_empty() {
        // Ollama loads (or with keep_alive 0, unloads) the model for an empty conversation.
        return load_or_unload(&inference, &request.model, keep_alive, Shape::Chat).await;
    }
    let (description, handle) = inference.chat_model(&request.model, keep_alive).await?;
    let load_duration = started.elapsed();
    let recalled = match &memory {
        None => None,
        Some(memory) => {
            let user = super::retrieval::memory_user(&caller_user, memory, None)?;
            let texts = request
                .messages
                .iter()
                .map(|message| message.content.as_str())
                .collect();
            let recalled = super::retrieval::recall(
                &state,
                &meter,
                &tenant,
                (memory, user),
                &request.recent_user_texts(memory.query_turns.unwrap_or(1)),
                (handle.model(), texts, generation.max_tokens),
            )
            .await?;
            if !recalled.sources.is_empty() {
                (generation, tools) = request.to_request_asking(Some(&recalled.question))?;
            }
            Some(Arc::new(recalled))
        }
    };
    run_generation(
        &inference,
        Shape::Chat,
        description,
        handle,
        generation,
        (tools, recalled),
        request.stream.unwrap_or(true),
        meter,
        (started, load_duration),
    )
    .await
}

/// Ollama generate: a prompt in, a completion out (NDJSON stream by default).
#[utoipa::path(post, path = "/api/generate", tag = "ollama",
    request_body(content = GenerateBody, description = "Ollama generate request"),
    responses(
        (status = 200, description = "The completion. Streamed (the default), the body is \
            `application/x-ndjson`: one object per line, the last with `done: true` and the \
            statistics; a failure after the first line is a line `{\"error\": ...}`.",
            content(
                (GenerateResponse = "application/json"),
                (GenerateResponse = "application/x-ndjson")
            )),
        (status = 400, description = "Invalid request: images, a suffix, a template, a \
            context, a format that is not JSON or a schema, a model that cannot generate, a \
            prompt longer than the context", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "The model's queue is full", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)))]
pub async fn generate(
    State(state): State<AppState>,
    meter: Meter,
    ApiJson(request): ApiJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    let generation = request.to_request()?;
    let inference = inference(&state)?;
    if request.prompt.is_empty() {
        return load_or_unload(&inference, &request.model, keep_alive, Shape::Generate).await;
    }
    let (description, handle) = inference.chat_model(&request.model, keep_alive).await?;
    let load_duration = started.elapsed();
    run_generation(
        &inference,
        Shape::Generate,
        description,
        handle,
        generation,
        (None, None),
        request.stream.unwrap_or(true),
        meter,
        (started, load_duration),
    )
    .await
}

async fn load_or_unload(
    inference: &Inference,
    model: &str,
    keep_alive: Option<KeepAlive>,
    shape: Shape,
) -> Result<Response, ApiError> {
    let (name, reason) = if keep_alive == Some(KeepAlive::For(std::time::Duration::ZERO)) {
        inference.unload(model)?;
        (inference.describe(model)?.reference.to_string(), "unload")
    } else {
        let (description, _) = inference.load(model, keep_alive).await?;
        (description.reference.to_string(), "load")
    };
    let body = match shape {
        Shape::Chat => serde_json::json!({
            "model": name, "created_at": rfc3339_now(),
            "message": {"role": "assistant", "content": ""}, "done_reason": reason, "done": true
        }),
        Shape::Generate => serde_json::json!({
            "model": name, "created_at": rfc3339_now(), "response": "", "done_reason": reason, "done": true
        }),
    };
    Ok(Json(body).into_response())
}

/// Ollama embed: one or more inputs, normalized embeddings out.
#[utoipa::path(post, path = "/api/embed", tag = "ollama",
    request_body(content = EmbedRequest, description = "Ollama embed request"),
    responses(
        (status = 200, description = "The embeddings, in input order", body = EmbedResponse),
        (status = 400, description = "Invalid request: a model that does not embed, an input \
            longer than the model reads with `truncate: false`", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "The model's queue is full", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)))]
pub async fn embed(
    State(state): State<AppState>,
    meter: Meter,
    ApiJson(request): ApiJson<EmbedRequest>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let started = Instant::now();
    if request.input.0.is_empty() {
        return Err(ApiError::bad_request("input must not be empty").with_param("input"));
    }
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    let inference = inference(&state)?;
    let (description, service) = inference
        .embedding_model(&request.model, keep_alive)
        .await?;
    let load_duration = started.elapsed();
    let embeddings = service.embed(request.input.0.clone()).await?;
    if request.truncate == Some(false)
        && let Some(index) = embeddings.items.iter().position(|item| item.truncated)
    {
        return Err(ApiError::bad_request(format!(
            "input[{index}] is longer than the {} tokens this model reads; shorten it or allow truncate",
            service.max_tokens()
        ))
        .with_param("input"));
    }
    let prompt_eval_count = embeddings.total_tokens();
    meter.started(&request.model, prompt_eval_count);
    Ok(Json(EmbedResponse {
        model: description.reference.to_string(),
        embeddings: embeddings
            .items
            .into_iter()
            .map(|embedding| embedding.vector)
            .collect(),
        total_duration: nanos(started.elapsed()),
        load_duration: nanos(load_duration),
        prompt_eval_count,
    }))
}

/// Ollama's older single-input embeddings endpoint.
#[utoipa::path(post, path = "/api/embeddings", tag = "ollama",
    request_body(content = LegacyEmbeddingsRequest,
        description = "Ollama legacy embeddings request"),
    responses(
        (status = 200, description = "The embedding", body = LegacyEmbeddingsResponse),
        (status = 400, description = "Invalid request: a model that does not embed",
            body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 429, description = "The model's queue is full", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model cannot \
            be loaded now", body = ErrorBody)))]
pub async fn embeddings(
    State(state): State<AppState>,
    meter: Meter,
    ApiJson(request): ApiJson<LegacyEmbeddingsRequest>,
) -> Result<Json<LegacyEmbeddingsResponse>, ApiError> {
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    let inference = inference(&state)?;
    let (_, service) = inference
        .embedding_model(&request.model, keep_alive)
        .await?;
    let embeddings = service.embed(vec![request.prompt]).await?;
    meter.started(&request.model, embeddings.total_tokens());
    let embedding = embeddings
        .items
        .into_iter()
        .next()
        .map(|embedding| embedding.vector)
        .unwrap_or_default();
    Ok(Json(LegacyEmbeddingsResponse { embedding }))
}

pub(crate) fn details(manifest: &Manifest) -> ModelDetails {
    let model = &manifest.current;
    let family = model.family.clone().unwrap_or_default();
    ModelDetails {
        parent_model: String::new(),
        format: match model.format {
            ModelFormat::Gguf => "gguf",
            ModelFormat::Safetensors => "safetensors",
        }
        .to_string(),
        families: if family.is_empty() {
            Vec::new()
        } else {
            vec![family.clone()]
        },
        family,
        parameter_size: model.size_label.clone().unwrap_or_default(),
        quantization_level: model.quantization.clone().unwrap_or_default(),
    }
}

/// The local models (Ollama's `tags`).
#[utoipa::path(get, path = "/api/tags", tag = "ollama",
    responses(
        (status = 200, description = "The local models", body = TagsResponse),
        (status = 503, description = "Model serving is not configured", body = ErrorBody)))]
pub async fn tags(State(state): State<AppState>) -> Result<Json<TagsResponse>, ApiError> {
    let inference = inference(&state)?;
    let models = inference
        .models()?
        .into_iter()
        .map(|model| ModelEntry {
            model: model.reference.to_string(),
            name: model.reference.to_string(),
            modified_at: rfc3339_from_unix_millis(model.current.created_at_ms as i64),
            size: model.current.size_bytes,
            digest: model.current.sha256.clone(),
            details: details(&model),
        })
        .collect();
    Ok(Json(TagsResponse { models }))
}

/// The loaded models and when each will be unloaded.
#[utoipa::path(get, path = "/api/ps", tag = "ollama",
    responses(
        (status = 200, description = "The loaded models", body = PsResponse),
        (status = 503, description = "Model serving is not configured", body = ErrorBody)))]
pub async fn ps(State(state): State<AppState>) -> Result<Json<PsResponse>, ApiError> {
    let inference = inference(&state)?;
    let now = Instant::now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0);
    let models = inference
        .running()
        .into_iter()
        .filter_map(|(running, description)| {
            let description = description?;
            let expires_at = match running.expires_at {
                Some(at) => rfc3339_from_unix_millis(
                    now_ms + at.saturating_duration_since(now).as_millis() as i64,
                ),
                // Ollama shows "forever" as a date far in the future.
                None => "2318-11-22T00:00:00.000Z".to_string(),
            };
            Some(RunningEntry {
                name: description.reference.to_string(),
                model: description.reference.to_string(),
                size: description.current.size_bytes,
                digest: description.current.sha256.clone(),
                details: details(&description),
                expires_at,
                size_vram: 0,
            })
        })
        .collect();
    Ok(Json(PsResponse { models }))
}

/// Details of one model: format, family, quantization, chat template in effect, capabilities.
#[utoipa::path(post, path = "/api/show", tag = "ollama",
    request_body(content = ModelNameRequest, description = "The model to show"),
    responses(
        (status = 200, description = "The model's details", body = ShowResponse),
        (status = 400, description = "No model named", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 503, description = "Model serving is not configured, or the model (loaded \
            to read its built-in template) cannot be loaded now", body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ModelNameRequest>,
) -> Result<Json<ShowResponse>, ApiError> {
    let model = request.model()?;
    let inference = inference(&state)?;
    let description = inference.describe(model)?;
    let mut model_info = std::collections::BTreeMap::new();
    let current = &description.current;
    if let Some(family) = &current.family {
        model_info.insert(
            "general.architecture".to_string(),
            serde_json::json!(family),
        );
        if let Some(context) = current.context_length {
            model_info.insert(
                format!("{family}.context_length"),
                serde_json::json!(context),
            );
        }
    }
    // The template in effect: the file's own, or (for a chat model without one) the family's
    // built-in format, which only the loaded model can tell; load it to ask.
    let template = match (&current.chat_template, current.kind) {
        (Some(template), _) => template.clone(),
        (None, ModelKind::Chat) => match inference
            .load(&description.reference.to_string(), None)
            .await?
        {
            (_, LoadedModel::Chat(handle)) => {
                if description.is_base_model() {
                    model_info.insert(
                        "hearth.note".to_string(),
                        serde_json::json!(hearth_models::BASE_MODEL_NOTE),
                    );
                }
                let template = &handle.model().info().chat_template;
                model_info.insert(
                    "hearth.chat_template.source".to_string(),
                    serde_json::json!(format!("built-in {}", template.name)),
                );
                template.text.clone()
            }
            _ => String::new(),
        },
        (None, ModelKind::Embedding) => String::new(),
    };
    let capabilities = match current.kind {
        // Every chat model can call tools here: the generic tool format needs no template support.
        ModelKind::Chat => vec!["completion", "tools"],
        ModelKind::Embedding => vec!["embedding"],
    };
    Ok(Json(ShowResponse {
        modelfile: format!(
            "# Modelfile generated by Hearth\nFROM {}\n",
            current.path.display()
        ),
        parameters: String::new(),
        template,
        details: details(&description),
        model_info,
        capabilities,
        modified_at: rfc3339_from_unix_millis(current.created_at_ms as i64),
    }))
}

/// The server version, as Ollama clients check it, and the CPU features the engine uses.
#[utoipa::path(get, path = "/api/version", tag = "ollama",
    responses((status = 200, description = "Hearth's version and the CPU instruction sets its \
        inference kernels were built for", body = VersionResponse)))]
pub async fn version() -> Json<VersionResponse> {
    Json(VersionResponse {
        version: env!("CARGO_PKG_VERSION"),
        cpu_features: hearth_engine::cpu_features(),
    })
}

/// Pulls a model from a URL or a Hugging Face reference, verifies it and registers it.
#[utoipa::path(post, path = "/api/pull", tag = "ollama",
    request_body(content = PullRequest,
        description = "What to pull, and the name to register it under"),
    responses(
        (status = 200, description = "Pulled. Streamed (the default), the body is \
            `application/x-ndjson`: progress lines ending with `{\"status\": \"success\"}`, or \
            with `{\"error\": ...}` when the pull fails after it started; with `stream: false`, \
            the one object `{\"status\": \"success\"}`.",
            content(
                (PullStatus = "application/json"),
                (PullStatus = "application/x-ndjson")
            )),
        (status = 400, description = "Invalid source, name or sha256; a local path; a file \
            that fails verification", body = ErrorBody),
        (status = 409, description = "The same source is being pulled already", body = ErrorBody),
        (status = 502, description = "The download failed", body = ErrorBody),
        (status = 503, description = "Model serving is not configured", body = ErrorBody)))]
pub async fn pull(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PullRequest>,
) -> Result<Response, ApiError> {
    let plan = request.to_plan()?;
    let inference = inference(&state)?;
    let options = PullOptions {
        sha256: plan.sha256.clone(),
        copy: false,
        huggingface_endpoint: state.settings.huggingface_endpoint.clone(),
    };
    let in_flight = PullInFlight::claim(download_url(&plan.source, &options))?;
    let registry = inference.registry().clone();
    if !plan.stream {
        hearth_models::pull(
            &registry,
            &plan.source,
            plan.name.as_ref(),
            &options,
            |_| {},
        )
        .await?;
        drop(in_flight);
        return Ok(Json(PullStatus::success()).into_response());
    }

    let (sender, mut receiver) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let _in_flight = in_flight;
        let progress = sender.clone();
        let result = hearth_models::pull(
            &registry,
            &plan.source,
            plan.name.as_ref(),
            &options,
            |event| {
                // `success` is sent once the result is known, after any note about the model.
                if event.status != "success" {
                    let _ = progress.send(Ok(PullStatus::from(event)));
                }
            },
        )
        .await;
        match result {
            Ok(manifest) => {
                if manifest.is_base_model() {
                    let note = PullStatus::note(hearth_models::BASE_MODEL_NOTE);
                    let _ = sender.send(Ok(note));
                }
                let _ = sender.send(Ok(PullStatus::success()));
            }
            Err(error) => {
                // The response is already 200, so the access log cannot tell; this line does.
                tracing::warn!(source = %plan.source, %error, "pull failed");
                let _ = sender.send(Err(error));
            }
        }
    });
    // A client that goes away drops the body, and with it this guard: the download stops and
    // leaves its partial file for the next pull to resume, as an interrupted `hearth pull` does.
    let cancel_on_drop = AbortOnDrop(task.abort_handle());
    // Until the first event the pull may still fail on its input (a malformed sha256, a URL
    // with no file name to derive a name from): that is an ordinary error response.
    let first = match receiver.recv().await {
        Some(Ok(status)) => status,
        Some(Err(error)) => return Err(error.into()),
        None => {
            return Err(ApiError::internal(
                "the pull ended without reporting anything",
            ));
        }
    };
    let rest = stream::unfold(
        (receiver, cancel_on_drop),
        |(mut receiver, cancel_on_drop)| async move {
            let item = receiver.recv().await?;
            Some((item, (receiver, cancel_on_drop)))
        },
    );
    let lines = stream::once(std::future::ready(Ok(first)))
        .chain(rest)
        .map(|item| {
            Ok::<_, std::convert::Infallible>(match item {
                Ok(status) => ndjson_line(&status),
                // Ollama's way of failing a stream that has started.
                Err(error) => ndjson_line(&serde_json::json!({ "error": error.to_string() })),
            })
        });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// The URL a pull downloads from; two pulls of one URL would share one partial file.
fn download_url(source: &PullSource, options: &PullOptions) -> String {
    match source {
        PullSource::Url(url) => url.clone(),
        PullSource::HuggingFace(file) => file.url(&options.huggingface_endpoint),
        PullSource::Local(path) => path.display().to_string(),
    }
}

/// A download URL this process is pulling. Two pulls of one URL at once would write the same
/// partial file; the second is refused until the first ends (the registry has no lock of its
/// own, see `hearth_models::Registry`).
struct PullInFlight(String);

impl PullInFlight {
    fn urls() -> std::sync::MutexGuard<'static, HashSet<String>> {
        static IN_FLIGHT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
        IN_FLIGHT
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn claim(url: String) -> Result<PullInFlight, ApiError> {
        if !Self::urls().insert(url.clone()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "pull_in_progress",
                format!(
                    "{url} is being pulled already; wait for that pull to finish (the model \
                     appears in GET /api/tags) or for it to fail, then retry"
                ),
            )
            .with_param("model"));
        }
        Ok(PullInFlight(url))
    }
}

impl Drop for PullInFlight {
    fn drop(&mut self) {
        Self::urls().remove(&self.0);
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Deletes a model and all its versions (Ollama's `rm`), unloading it if it is loaded.
#[utoipa::path(delete, path = "/api/delete", tag = "ollama",
    request_body(content = ModelNameRequest, description = "The model to delete"),
    responses(
        (status = 200, description = "Deleted; the body is empty"),
        (status = 400, description = "Invalid model name", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 503, description = "Model serving is not configured", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ModelNameRequest>,
) -> Result<StatusCode, ApiError> {
    let reference = request.reference()?;
    let inference = inference(&state)?;
    inference.remove(&reference).await?;
    Ok(StatusCode::OK)
}

/// Gives a model a second name (Ollama's `cp`); both names share the file.
#[utoipa::path(post, path = "/api/copy", tag = "ollama",
    request_body(content = CopyRequest, description = "The model and its new name"),
    responses(
        (status = 200, description = "Copied; the body is empty"),
        (status = 400, description = "Invalid source or destination name", body = ErrorBody),
        (status = 404, description = "Unknown source model", body = ErrorBody),
        (status = 503, description = "Model serving is not configured", body = ErrorBody)))]
pub async fn copy(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CopyRequest>,
) -> Result<StatusCode, ApiError> {
    let (source, destination) = request.references()?;
    let inference = inference(&state)?;
    inference
        .copy(&source, &destination)
        .await
        .map_err(|error| match error {
            InferenceError::ModelNotFound(_) => ApiError::from(error).with_param("source"),
            other => ApiError::from(other),
        })?;
    Ok(StatusCode::OK)
}
