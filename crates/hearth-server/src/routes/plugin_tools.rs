//! Plugin tools in chat (`"plugins"` on `/v1/chat/completions`). The named plugins' tools are
//! offered to the model as functions (`<plugin>__<tool>`); when its reply calls them, the
//! sandbox runs them in the caller's tenant, the results go back as `tool` messages and the
//! model is asked again, up to `max_steps` generations (the last may not call tools, so it
//! answers). The answer is the last generation's, with `plugin_calls` (every call, its
//! arguments, output or error and time) and the usage of all steps. The loop reads and writes
//! the request and response JSON, so local and routed models run it alike; a call to one of
//! the client's own functions ends it, as without plugins.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::response::{IntoResponse, Response};
use hearth_plugins::{PluginError, Plugins};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::gate::{CallerPlugins, CallerUser, Meter};
use crate::routes::openai::chat_completions_uncached;
use crate::state::AppState;
use crate::wire::plugins::{PluginCallErrorOut, PluginCallOut, PluginToolsIn};

const DEFAULT_STEPS: u32 = 4;
const MAX_STEPS: u32 = 8;
/// The largest answer one step may give (it is read whole to find the tool calls).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Whether a chat request asks for plugin tools.
pub(crate) fn wants_plugins(body: &Value) -> bool {
    body.get("plugins")
        .is_some_and(|plugins| !plugins.is_null())
}

/// A plugin tool as the model sees it.
struct Offered {
    plugin: String,
    tool: String,
}

fn plugins(state: &AppState) -> Result<Plugins, ApiError> {
    state
        .plugins
        .clone()
        .ok_or_else(|| ApiError::unavailable("plugins are not configured on this server"))
}

/// The functions a request's `plugins.tools` offers, by function name, and their definitions.
fn offer(
    plugins: &Plugins,
    wanted: Option<&[String]>,
    access: &CallerPlugins,
) -> Result<(HashMap<String, Offered>, Vec<Value>), ApiError> {
    let available = plugins.tools();
    let mut chosen = Vec::new();
    match wanted {
        None => chosen.extend(available.iter().filter(|(owner, _)| access.allows(owner))),
        Some(wanted) => {
            for (index, name) in wanted.iter().enumerate() {
                let param = format!("plugins.tools[{index}]");
                let (plugin, tool) = match name.split_once('.') {
                    Some((plugin, tool)) => (plugin, Some(tool)),
                    None => (name.as_str(), None),
                };
                if !access.allows(plugin) {
                    return Err(access.refuse(plugin, &param));
                }
                // Say why a plugin offers nothing: missing, or disabled.
                plugins
                    .ensure_enabled(plugin)
                    .map_err(|error| ApiError::from(error).with_param(&param))?;
                let before = chosen.len();
                chosen.extend(available.iter().filter(|(owner, spec)| {
                    owner == plugin && tool.is_none_or(|tool| spec.name == tool)
                }));
                if chosen.len() == before {
                    return Err(ApiError::not_found(format!(
                        "plugin {plugin} has no tool {name:?}"
                    ))
                    .with_param(param));
                }
            }
        }
    }
    let mut offered = HashMap::new();
    let mut functions = Vec::new();
    for (plugin, spec) in chosen {
        let name = format!("{plugin}__{}", spec.name);
        if name.len() > 64 {
            return Err(ApiError::bad_request(format!(
                "the function name {name:?} for plugin tool {plugin}.{} is over 64 characters",
                spec.name
            ))
            .with_param("plugins.tools"));
        }
        if offered.contains_key(&name) {
            continue;
        }
        let parameters: Value = serde_json::from_str(&spec.parameters).unwrap_or(json!({}));
        functions.push(json!({"type": "function", "function": {
            "name": name, "description": spec.description, "parameters": parameters}}));
        offered.insert(
            name,
            Offered {
                plugin: plugin.clone(),
                tool: spec.name.clone(),
            },
        );
    }
    if offered.is_empty() {
        return Err(ApiError::bad_request("no enabled plugin offers a tool").with_param("plugins"));
    }
    Ok((offered, functions))
}

/// Answers a chat that asks for plugin tools.
pub(crate) async fn chat_with_plugins(
    state: &AppState,
    meter: &Meter,
    (tenant, caller_user, access): (&str, &CallerUser, &CallerPlugins),
    mut body: Value,
) -> Result<Response, ApiError> {
    let request: PluginToolsIn =
        serde_json::from_value(body["plugins"].take()).map_err(|error| {
            ApiError::bad_request(format!("plugins: {error}")).with_param("plugins")
        })?;
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::bad_request("the request is not a JSON object"));
    };
    object.remove("plugins");
    let refuse = |field: &str, why: &str| {
        Err(ApiError::bad_request(format!(
            "{field} cannot be combined with plugins yet: {why}"
        ))
        .with_param(field))
    };
    // Streamed, the steps still run whole (their tool calls must be complete to run); the
    // answer is then sent as chunks, as a streamed chat is.
    let stream = object.remove("stream").and_then(|value| value.as_bool()) == Some(true);
    let include_usage = object
        .remove("stream_options")
        .is_some_and(|options| options["include_usage"] == json!(true));
    if object
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return refuse("n", "the tool loop follows one choice");
    }
    for field in ["memory", "files"] {
        if object.get(field).is_some_and(|value| !value.is_null()) {
            return refuse(field, "each step would search and remember again");
        }
    }
    let max_steps = request.max_steps.unwrap_or(DEFAULT_STEPS);
    if !(1..=MAX_STEPS).contains(&max_steps) {
        return Err(
            ApiError::bad_request(format!("max_steps is 1 to {MAX_STEPS}"))
                .with_param("plugins.max_steps"),
        );
    }
    let plugins = plugins(state)?;
    let (offered, functions) = offer(&plugins, request.tools.as_deref(), access)?;
    let tools = object.entry("tools").or_insert_with(|| json!([]));
    let Some(tools) = tools.as_array_mut() else {
        return Err(ApiError::bad_request("tools must be a list").with_param("tools"));
    };
    for function in functions {
        let name = &function["function"]["name"];
        if tools.iter().any(|tool| &tool["function"]["name"] == name) {
            return Err(ApiError::bad_request(format!(
                "a function of the request is named {name}, as a plugin tool is"
            ))
            .with_param("tools"));
        }
        tools.push(function);
    }

    let mut calls: Vec<PluginCallOut> = Vec::new();
    let mut usage = [0u64; 3];
    for step in 1..=max_steps {
        if step == max_steps {
            body["tool_choice"] = json!("none");
        }
        let mut answer = match chat_once(state, meter, (tenant, caller_user), body.clone()).await? {
            Ok(answer) => answer,
            Err(response) => return Ok(response),
        };
        for (total, field) in
            usage
                .iter_mut()
                .zip(["prompt_tokens", "completion_tokens", "total_tokens"])
        {
            *total += answer["usage"][field].as_u64().unwrap_or(0);
        }
        let message = answer["choices"][0]["message"].clone();
        let requested: Vec<Value> = message["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ours = requested.iter().all(|call| {
            call["function"]["name"]
                .as_str()
                .is_some_and(|name| offered.contains_key(name))
        });
        if requested.is_empty() || !ours {
            // An answer, or a call of the client's own: the client's turn.
            answer["usage"]["prompt_tokens"] = json!(usage[0]);
            answer["usage"]["completion_tokens"] = json!(usage[1]);
            answer["usage"]["total_tokens"] = json!(usage[2]);
            answer["plugin_calls"] = serde_json::to_value(&calls).unwrap_or(Value::Null);
            if stream {
                return Ok(as_chunks(&answer, include_usage));
            }
            return Ok(Json(answer).into_response());
        }
        let mut results = Vec::with_capacity(requested.len());
        for call in &requested {
            let name = call["function"]["name"].as_str().unwrap_or_default();
            let offered = &offered[name];
            let call_id = call["id"].as_str().unwrap_or_default().to_string();
            let record = run_call(&plugins, tenant, offered, call, step, call_id.clone()).await;
            let content = match (&record.output, &record.error) {
                (Some(output), _) => output.clone(),
                (None, Some(error)) => format!("error: {}", error.message),
                (None, None) => String::new(),
            };
            results.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
            calls.push(record);
        }
        let messages = body["messages"].as_array_mut().ok_or_else(|| {
            ApiError::bad_request("messages must be a list").with_param("messages")
        })?;
        messages.push(json!({"role": "assistant", "content": message["content"],
                             "tool_calls": requested}));
        messages.extend(results);
        // The client's choice (a required call, a named function) holds for the first step;
        // with results in hand the model decides whether to call again or answer.
        body["tool_choice"] = json!("auto");
    }
    Err(ApiError::internal("the tool loop ended without an answer"))
}

/// One generation, as the JSON a client would have received; an error answer (an upstream's
/// included) is passed through as it is.
pub(crate) async fn chat_once(
    state: &AppState,
    meter: &Meter,
    caller: (&str, &CallerUser),
    body: Value,
) -> Result<Result<Value, Response>, ApiError> {
    let response = chat_completions_uncached(state, meter, caller, body).await?;
    if !response.status().is_success() {
        return Ok(Err(response));
    }
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
        .await
        .map_err(|error| ApiError::internal(format!("reading a tool step's answer: {error}")))?;
    serde_json::from_slice(&bytes)
        .map(Ok)
        .map_err(|error| ApiError::internal(format!("a tool step's answer is not JSON: {error}")))
}

/// Runs one of the model's calls in the sandbox and records it.
async fn run_call(
    plugins: &Plugins,
    tenant: &str,
    offered: &Offered,
    call: &Value,
    step: u32,
    call_id: String,
) -> PluginCallOut {
    let started = Instant::now();
    let text = call["function"]["arguments"].as_str().unwrap_or("{}");
    let arguments: Value =
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    let mut record = PluginCallOut {
        step,
        call_id,
        plugin: offered.plugin.clone(),
        tool: offered.tool.clone(),
        arguments: arguments.clone(),
        output: None,
        error: None,
        duration_ms: 0.0,
    };
    let result = if arguments.is_object() {
        plugins
            .call_tool(
                &offered.plugin,
                &offered.tool,
                &arguments.to_string(),
                tenant,
            )
            .await
    } else {
        Err(PluginError::InvalidArguments {
            field: "arguments".into(),
            message: "the model's arguments are not a JSON object".into(),
        })
    };
    match result {
        Ok(output) => record.output = Some(output.output),
        Err(error) => {
            let code = match &error {
                PluginError::ToolFailed(_) => "tool_error",
                PluginError::Stopped { .. } => "plugin_stopped",
                PluginError::Disabled { .. } => "plugin_disabled",
                PluginError::InvalidArguments { .. } => "invalid_arguments",
                _ => "plugin_error",
            };
            record.error = Some(PluginCallErrorOut {
                code,
                message: error.to_string(),
            });
        }
    }
    record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    record
}

/// A whole chat answer as the server-sent events of a streamed one: the message in one delta
/// (its text, or its tool calls, indexed), then the finish reason with `plugin_calls`, the
/// usage chunk when asked for, and `[DONE]`.
fn as_chunks(answer: &Value, include_usage: bool) -> Response {
    let choice = &answer["choices"][0];
    let message = &choice["message"];
    let chunk = |choices: Value| {
        json!({"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
               "model": answer["model"], "system_fingerprint": answer["system_fingerprint"],
               "choices": choices})
    };
    let mut delta = json!({"role": "assistant", "content": message["content"]});
    if let Some(calls) = message["tool_calls"].as_array() {
        let indexed: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                let mut call = call.clone();
                call["index"] = json!(index);
                call
            })
            .collect();
        delta["tool_calls"] = Value::Array(indexed);
    }
    let mut events = vec![chunk(
        json!([{"index": 0, "delta": delta, "finish_reason": null}]),
    )];
    let mut last =
        chunk(json!([{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]));
    last["plugin_calls"] = answer["plugin_calls"].clone();
    events.push(last);
    if include_usage {
        let mut usage = chunk(json!([]));
        usage["usage"] = answer["usage"].clone();
        events.push(usage);
    }
    let mut body = String::new();
    for event in events {
        body.push_str("data: ");
        body.push_str(&event.to_string());
        body.push_str("\n\n");
    }
    body.push_str("data: [DONE]\n\n");
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/event-stream"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
