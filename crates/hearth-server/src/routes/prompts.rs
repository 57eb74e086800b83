//! Prompt templates under `/v1/prompts`, in the caller's tenant: readers read and render them;
//! admins push versions, move labels and remove prompts, each change audited. And the `prompt`
//! reference of chat completions and responses: the template is rendered here, before routing
//! and caching, into the request's own fields (messages or input, model, sampling defaults),
//! so everything after it (upstreams included) sees an ordinary request.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_prompts::{Prompts, Rendered, Selector};
use serde_json::{Map, Value, json};

use super::audit::audit;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::gate::{Caller, ClientAddress, Meter, TenantScope};
use crate::state::AppState;
use crate::wire::admin::List;
use crate::wire::memory::Deleted;
use crate::wire::prompts::*;

fn prompts(state: &AppState) -> Result<&Prompts, ApiError> {
    state
        .prompts
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("prompts are not configured on this server"))
}

/// The tenant's prompts, by name.
#[utoipa::path(get, path = "/v1/prompts", tag = "prompts",
    responses((status = 200, description = "The prompts", body = List<PromptOut>)))]
pub async fn list_prompts(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
) -> Result<Json<List<PromptOut>>, ApiError> {
    let list = prompts(&state)?.list(&tenant);
    Ok(Json(List::of(list.into_iter().map(PromptOut::from))))
}

/// Pushes a new version of a prompt (making the prompt with its first) and points `labels`
/// at it. The same definition as the newest version makes none (200, `created: false`): a
/// push from CI can run on every commit.
#[utoipa::path(post, path = "/v1/prompts", tag = "prompts",
    request_body = PromptIn,
    responses(
        (status = 201, description = "The new version", body = PromptVersionOut),
        (status = 200, description = "The newest version had this definition already", body = PromptVersionOut),
        (status = 400, description = "A bad field (named in `param`) or a limit reached", body = ErrorBody)))]
pub async fn push_prompt(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    ApiJson(request): ApiJson<PromptIn>,
) -> Result<(StatusCode, Json<PromptVersionOut>), ApiError> {
    let service = prompts(&state)?;
    let actor = caller.actor(ip);
    let (name, definition, labels, note) = request.into_parts();
    let push = hearth_prompts::Push {
        definition,
        labels: labels.clone(),
        note,
        created_by: Some(actor.name()),
    };
    let pushed = service
        .push(&tenant, &name, push, hearth_time::now_ms())
        .await?;
    let version = pushed.version.version;
    let detail = json!({"version": version, "created": pushed.created, "labels": labels});
    audit(
        &state,
        &actor,
        &tenant,
        "prompt.push",
        &name,
        Some(detail.to_string()),
    )
    .await?;
    let info = service.get(&tenant, &name)?;
    let mut out = PromptVersionOut::of(&pushed.version, &info.labels);
    out.created = Some(pushed.created);
    let status = if pushed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)))
}

/// A prompt: its labels and versions.
#[utoipa::path(get, path = "/v1/prompts/{prompt}", tag = "prompts",
    params(("prompt" = String, Path, description = "The prompt's name")),
    responses(
        (status = 200, description = "The prompt", body = PromptOut),
        (status = 404, description = "No such prompt", body = ErrorBody)))]
pub async fn get_prompt(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(prompt): Path<String>,
) -> Result<Json<PromptOut>, ApiError> {
    Ok(Json(prompts(&state)?.get(&tenant, &prompt)?.into()))
}

/// Removes a prompt with every version and label. Requests that reference it fail from now.
#[utoipa::path(delete, path = "/v1/prompts/{prompt}", tag = "prompts",
    params(("prompt" = String, Path, description = "The prompt's name")),
    responses(
        (status = 200, description = "Removed", body = Deleted),
        (status = 404, description = "No such prompt", body = ErrorBody)))]
pub async fn delete_prompt(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path(prompt): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    prompts(&state)?.delete(&tenant, &prompt).await?;
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "prompt.delete",
        &prompt,
        None,
    )
    .await?;
    Ok(Json(Deleted {
        id: prompt,
        object: "prompt.deleted",
        deleted: true,
    }))
}

/// One version whole, by number, label or `latest`.
#[utoipa::path(get, path = "/v1/prompts/{prompt}/versions/{version}", tag = "prompts",
    params(("prompt" = String, Path, description = "The prompt's name"),
           ("version" = String, Path, description = "A version number, a label or `latest`")),
    responses(
        (status = 200, description = "The version", body = PromptVersionOut),
        (status = 404, description = "No such prompt, version or label", body = ErrorBody)))]
pub async fn get_version(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((prompt, version)): Path<(String, String)>,
) -> Result<Json<PromptVersionOut>, ApiError> {
    let service = prompts(&state)?;
    let found = service.version(&tenant, &prompt, &Selector::parse(&version))?;
    let info = service.get(&tenant, &prompt)?;
    Ok(Json(PromptVersionOut::of(&found, &info.labels)))
}

/// Points a label at a version (moving it from the one it pointed at): what requests that
/// reference the label get from now.
#[utoipa::path(put, path = "/v1/prompts/{prompt}/labels/{label}", tag = "prompts",
    params(("prompt" = String, Path, description = "The prompt's name"),
           ("label" = String, Path, description = "The label (`production`)")),
    request_body = LabelIn,
    responses(
        (status = 200, description = "The prompt", body = PromptOut),
        (status = 400, description = "A bad label", body = ErrorBody),
        (status = 404, description = "No such prompt or version", body = ErrorBody)))]
pub async fn put_label(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path((prompt, label)): Path<(String, String)>,
    ApiJson(request): ApiJson<LabelIn>,
) -> Result<Json<PromptOut>, ApiError> {
    let service = prompts(&state)?;
    let before = service.get(&tenant, &prompt)?.labels.get(&label).copied();
    service
        .set_label(
            &tenant,
            &prompt,
            &label,
            request.version,
            hearth_time::now_ms(),
        )
        .await?;
    let detail = json!({"label": label, "version": request.version, "was": before});
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "prompt.label",
        &prompt,
        Some(detail.to_string()),
    )
    .await?;
    Ok(Json(service.get(&tenant, &prompt)?.into()))
}

/// Removes a label; the version it pointed at stays.
#[utoipa::path(delete, path = "/v1/prompts/{prompt}/labels/{label}", tag = "prompts",
    params(("prompt" = String, Path, description = "The prompt's name"),
           ("label" = String, Path, description = "The label")),
    responses(
        (status = 200, description = "The prompt", body = PromptOut),
        (status = 404, description = "No such prompt or label", body = ErrorBody)))]
pub async fn delete_label(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    caller: Caller,
    ClientAddress(ip): ClientAddress,
    Path((prompt, label)): Path<(String, String)>,
) -> Result<Json<PromptOut>, ApiError> {
    let service = prompts(&state)?;
    service.remove_label(&tenant, &prompt, &label).await?;
    let detail = json!({"label": label});
    audit(
        &state,
        &caller.actor(ip),
        &tenant,
        "prompt.unlabel",
        &prompt,
        Some(detail.to_string()),
    )
    .await?;
    Ok(Json(service.get(&tenant, &prompt)?.into()))
}

/// Renders a version with variables, as a request that references it would get it.
#[utoipa::path(post, path = "/v1/prompts/{prompt}/render", tag = "prompts",
    params(("prompt" = String, Path, description = "The prompt's name")),
    request_body = RenderIn,
    responses(
        (status = 200, description = "The rendered messages", body = RenderedOut),
        (status = 400, description = "A missing, unknown or mistyped variable (named in `param`)", body = ErrorBody),
        (status = 404, description = "No such prompt, version or label", body = ErrorBody)))]
pub async fn render_prompt(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(prompt): Path<String>,
    ApiJson(request): ApiJson<RenderIn>,
) -> Result<Json<RenderedOut>, ApiError> {
    let selector = selector(request.version.as_ref(), request.label.as_deref(), "")?;
    let rendered = prompts(&state)?.render(&tenant, &prompt, &selector, &request.variables)?;
    Ok(Json(rendered.into()))
}

/// The API a request came in on, which decides where a rendered prompt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PromptTarget {
    /// `/v1/chat/completions`: the messages go before the request's own.
    Chat,
    /// `/v1/responses`: system and developer messages go before `instructions`, the others
    /// before `input`.
    Responses,
}

/// Renders the request's `prompt` reference (when it has one) into its own fields, and notes
/// the version on the meter. A bad reference is an error naming `prompt.<field>`.
pub(crate) fn expand_reference(
    state: &AppState,
    meter: &Meter,
    tenant: &str,
    body: &mut Value,
    target: PromptTarget,
) -> Result<(), ApiError> {
    let Some(fields) = body.as_object_mut() else {
        return Ok(());
    };
    let reference = match fields.remove("prompt") {
        None | Some(Value::Null) => return Ok(()),
        Some(reference) => reference,
    };
    let reference: PromptRefIn = serde_json::from_value(reference).map_err(|error| {
        ApiError::bad_request(format!(
            "prompt: {error}; give {{\"id\": NAME, \"version\" or \"label\", \"variables\": {{...}}}}"
        ))
        .with_param("prompt")
    })?;
    let selector = selector(
        reference.version.as_ref(),
        reference.label.as_deref(),
        "prompt.",
    )?;
    let rendered = prompts(state)?
        .render(tenant, &reference.id, &selector, &reference.variables)
        .map_err(|error| {
            let field = error.field().map(str::to_string);
            let not_found = !matches!(error, hearth_prompts::PromptError::Invalid { .. });
            let api = ApiError::from(error);
            match (field, not_found) {
                (Some(field), _) => api.with_param(format!("prompt.{field}")),
                (None, true) => api.with_param("prompt.id"),
                (None, false) => api.with_param("prompt"),
            }
        })?;
    meter.used_prompt(&rendered.name, rendered.version);
    apply(fields, rendered, target)
}

fn message(role: &str, content: String) -> Value {
    json!({"role": role, "content": content})
}

fn is_absent(fields: &Map<String, Value>, key: &str) -> bool {
    fields.get(key).is_none_or(Value::is_null)
}

fn apply(
    fields: &mut Map<String, Value>,
    rendered: Rendered,
    target: PromptTarget,
) -> Result<(), ApiError> {
    if is_absent(fields, "model") {
        let Some(model) = rendered.model.clone() else {
            return Err(ApiError::bad_request(format!(
                "name a model: prompt {} version {} sets none",
                rendered.name, rendered.version
            ))
            .with_param("model"));
        };
        fields.insert("model".into(), Value::String(model));
    }
    match target {
        PromptTarget::Chat => {
            let mut messages: Vec<Value> = rendered
                .messages
                .into_iter()
                .map(|rendered| message(&rendered.role, rendered.content))
                .collect();
            match fields.remove("messages") {
                None | Some(Value::Null) => {}
                Some(Value::Array(own)) => messages.extend(own),
                Some(_) => {
                    return Err(
                        ApiError::bad_request("messages must be a list").with_param("messages")
                    );
                }
            }
            fields.insert("messages".into(), Value::Array(messages));
            for (key, value) in rendered.parameters {
                let given = if key == "max_tokens" {
                    !is_absent(fields, "max_tokens") || !is_absent(fields, "max_completion_tokens")
                } else {
                    !is_absent(fields, &key)
                };
                if !given {
                    fields.insert(key, value);
                }
            }
        }
        PromptTarget::Responses => {
            let (instructions, turns): (Vec<_>, Vec<_>) = rendered
                .messages
                .into_iter()
                .partition(|rendered| matches!(rendered.role.as_str(), "system" | "developer"));
            if !instructions.is_empty() {
                let mut text: Vec<String> = instructions
                    .into_iter()
                    .map(|message| message.content)
                    .collect();
                match fields.remove("instructions") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(own)) => text.push(own),
                    Some(_) => {
                        return Err(ApiError::bad_request("instructions must be a string")
                            .with_param("instructions"));
                    }
                }
                fields.insert("instructions".into(), Value::String(text.join("\n\n")));
            }
            let mut input: Vec<Value> = turns
                .into_iter()
                .map(|rendered| message(&rendered.role, rendered.content))
                .collect();
            match fields.remove("input") {
                None | Some(Value::Null) => {}
                Some(Value::String(own)) => input.push(message("user", own)),
                Some(Value::Array(own)) => input.extend(own),
                Some(_) => {
                    return Err(ApiError::bad_request("input must be a string or a list")
                        .with_param("input"));
                }
            }
            if !input.is_empty() {
                fields.insert("input".into(), Value::Array(input));
            }
            for (key, value) in rendered.parameters {
                match key.as_str() {
                    "max_tokens" => {
                        if is_absent(fields, "max_output_tokens") {
                            fields.insert("max_output_tokens".into(), value);
                        }
                    }
                    // The Responses API has no stop sequences.
                    "stop" => {}
                    "response_format" => {
                        if is_absent(fields, "text")
                            && let Some(format) = text_format(&value)
                        {
                            fields.insert("text".into(), json!({"format": format}));
                        }
                    }
                    _ => {
                        if is_absent(fields, &key) {
                            fields.insert(key, value);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Chat's `response_format` as the Responses API's `text.format` (whose JSON schema is flat).
fn text_format(response_format: &Value) -> Option<Value> {
    match response_format.get("type")?.as_str()? {
        "json_schema" => {
            let mut format = response_format.get("json_schema")?.as_object()?.clone();
            format.insert("type".into(), json!("json_schema"));
            Some(Value::Object(format))
        }
        _ => Some(response_format.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(parameters: Value) -> Rendered {
        Rendered {
            name: "p".into(),
            version: 3,
            messages: vec![
                hearth_prompts::RenderedMessage {
                    role: "system".into(),
                    content: "Be brief.".into(),
                },
                hearth_prompts::RenderedMessage {
                    role: "user".into(),
                    content: "Hello".into(),
                },
            ],
            model: Some("m".into()),
            parameters: serde_json::from_value(parameters).unwrap(),
        }
    }

    fn applied(body: Value, parameters: Value, target: PromptTarget) -> Result<Value, ApiError> {
        let mut fields = body.as_object().unwrap().clone();
        apply(&mut fields, rendered(parameters), target)?;
        Ok(Value::Object(fields))
    }

    #[test]
    fn a_chat_gets_the_messages_first_and_only_the_defaults_it_lacks() {
        let body = json!({"messages": [{"role": "user", "content": "And you?"}],
                          "temperature": 1.0, "max_completion_tokens": 5});
        let out = applied(
            body,
            json!({"temperature": 0.1, "max_tokens": 64, "seed": 7}),
            PromptTarget::Chat,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "m", "temperature": 1.0, "max_completion_tokens": 5, "seed": 7,
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Hello"},
                                {"role": "user", "content": "And you?"}]})
        );
    }

    #[test]
    fn a_response_gets_instructions_and_input_in_their_places() {
        let body = json!({"model": "own", "input": "And you?", "instructions": "Mine."});
        let out = applied(
            body,
            json!({"max_tokens": 9, "stop": "x",
                   "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}}),
            PromptTarget::Responses,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "own", "instructions": "Be brief.\n\nMine.",
                   "input": [{"role": "user", "content": "Hello"},
                             {"role": "user", "content": "And you?"}],
                   "max_output_tokens": 9,
                   "text": {"format": {"name": "n", "schema": {}, "type": "json_schema"}}})
        );
    }

    #[test]
    fn no_model_anywhere_is_an_error_naming_model() {
        let mut fields = Map::new();
        let mut without_model = rendered(json!({}));
        without_model.model = None;
        let error = apply(&mut fields, without_model, PromptTarget::Chat).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("model"));
    }
}
