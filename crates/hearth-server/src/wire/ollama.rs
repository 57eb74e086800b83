//! Ollama's request and response shapes (`/api/chat`, `/api/generate`, `/api/embed`,
//! `/api/pull`, ...) and their conversion to engine requests and registry operations. Ollama's
//! sampling defaults apply here, not OpenAI's, because Ollama clients expect them.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use hearth_engine::{ChatMessage, ChatRole, Constraint, GenerationRequest, Prompt, SamplingParams};
use hearth_inference::KeepAlive;
use hearth_inference::tools::{self, ToolCall, ToolChoice, ToolDefinition, ToolUse, Turn};
use hearth_models::{ModelReference, PullProgress, PullSource};
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::{OneOrMany, schema};
use crate::error::ApiError;

/// Parses Ollama's `keep_alive`: seconds as a number, or a Go duration string ("5m", "1h30m",
/// "0"); negative means forever, zero unloads right after the request.
pub fn keep_alive(value: Option<&serde_json::Value>) -> Result<Option<KeepAlive>, ApiError> {
    let invalid = |shown: String| {
        ApiError::bad_request(format!(
            "keep_alive {shown} is not a duration; use seconds (300) or a duration like \"5m\", \
             0 to unload after the request, or -1 to keep loaded"
        ))
        .with_param("keep_alive")
    };
    let seconds = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(number)) => {
            number.as_f64().ok_or_else(|| invalid(number.to_string()))?
        }
        Some(serde_json::Value::String(text)) => {
            parse_duration_seconds(text).ok_or_else(|| invalid(format!("{text:?}")))?
        }
        Some(other) => return Err(invalid(other.to_string())),
    };
    if !seconds.is_finite() {
        return Err(invalid(seconds.to_string()));
    }
    // A duration too long to represent is as good as forever.
    Ok(Some(if seconds < 0.0 {
        KeepAlive::Forever
    } else {
        Duration::try_from_secs_f64(seconds).map_or(KeepAlive::Forever, KeepAlive::For)
    }))
}

fn parse_duration_seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Some(seconds);
    }
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_length] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_length..];
    }
    Some(if negative { -total } else { total })
}

/// Ollama's `options` object: the subset that maps onto the engine. Other options Ollama
/// accepts (num_ctx, num_thread, mirostat, ...) are ignored, as serde ignores unknown fields:
/// the context per sequence is a server setting here, shared by all requests.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Options {
    #[schema(schema_with = schema::num_predict)]
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub num_predict: Option<i64>,
    /// At most the largest f32: a larger number would read as infinity.
    #[schema(minimum = 0.0, maximum = 3.4028234663852886e38)]
    pub temperature: Option<f32>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub top_k: Option<i64>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub top_p: Option<f32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub min_p: Option<f32>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub seed: Option<i64>,
    pub stop: Option<OneOrMany>,
    pub repeat_penalty: Option<f32>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub repeat_last_n: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
}

impl Options {
    fn to_request(&self, prompt: Prompt) -> Result<GenerationRequest, ApiError> {
        let invalid = |param: &str, message: String| {
            ApiError::bad_request(message).with_param(format!("options.{param}"))
        };
        // Ollama's defaults, which its users' prompts are tuned for.
        let mut sampling = SamplingParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            repeat_penalty: 1.1,
            ..SamplingParams::default()
        };
        if let Some(temperature) = self.temperature {
            if !(temperature.is_finite() && temperature >= 0.0) {
                return Err(invalid(
                    "temperature",
                    format!("temperature must be >= 0; got {temperature}"),
                ));
            }
            sampling.temperature = temperature;
        }
        if let Some(top_k) = self.top_k {
            sampling.top_k = u32::try_from(top_k.max(0)).unwrap_or(u32::MAX);
        }
        if let Some(top_p) = self.top_p {
            if !(0.0..=1.0).contains(&top_p) {
                return Err(invalid(
                    "top_p",
                    format!("top_p must be between 0 and 1; got {top_p}"),
                ));
            }
            sampling.top_p = top_p;
        }
        if let Some(min_p) = self.min_p {
            if !(0.0..=1.0).contains(&min_p) {
                return Err(invalid(
                    "min_p",
                    format!("min_p must be between 0 and 1; got {min_p}"),
                ));
            }
            sampling.min_p = min_p;
        }
        if let Some(seed) = self.seed {
            sampling.seed = Some(super::fold_seed(seed));
        }
        if let Some(penalty) = self.repeat_penalty {
            sampling.repeat_penalty = penalty;
        }
        if let Some(last_n) = self.repeat_last_n {
            sampling.repeat_last_n = u32::try_from(last_n.max(0)).unwrap_or(u32::MAX);
        }
        if let Some(penalty) = self.presence_penalty {
            sampling.presence_penalty = penalty;
        }
        if let Some(penalty) = self.frequency_penalty {
            sampling.frequency_penalty = penalty;
        }
        let mut request = GenerationRequest::new(prompt).with_sampling(sampling);
        if let Some(stop) = &self.stop {
            request = request.with_stop(stop.0.iter().filter(|text| !text.is_empty()).cloned());
        }
        // num_predict: -1 is unlimited, -2 fills the context; both mean "no limit" here.
        request.max_tokens = match self.num_predict {
            Some(count) if count > 0 => Some(count as usize),
            Some(0) => {
                return Err(invalid(
                    "num_predict",
                    "num_predict must not be 0".to_string(),
                ));
            }
            _ => None,
        };
        Ok(request)
    }
}

schema::checked_body!(
    /// [`ChatRequest`] with the rule across its fields that `to_request` checks: `format`
    /// cannot be combined with tools yet.
    ChatBody = ChatRequest,
    [schema::one_of_holds([
        schema::where_present(
            "format",
            schema::one_of_holds([schema::null(), schema::strings_of(&[""])]),
        ),
        schema::where_present("tools", schema::no_items()),
    ])]
);

schema::checked_body!(
    /// [`GenerateRequest`] with the rule across its fields that `to_request` checks: a
    /// `context` to continue is only taken with a raw prompt (which ignores it).
    GenerateBody = GenerateRequest,
    [schema::one_of_holds([
        schema::where_present("context", schema::no_items()),
        schema::present("raw", schema::true_value()),
    ])]
);

/// An Ollama chat request. Without messages it loads the model (or unloads it, with
/// `keep_alive: 0`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    pub model: String,
    #[serde(default)]
    pub messages: Vec<MessageIn>,
    /// Stream NDJSON lines (the default), or answer with one object.
    pub stream: Option<bool>,
    #[schema(schema_with = schema::ollama_format)]
    pub format: Option<serde_json::Value>,
    #[serde(default)]
    pub options: Options,
    #[schema(schema_with = schema::keep_alive)]
    pub keep_alive: Option<serde_json::Value>,
    /// Tools in OpenAI's declaration shape, which Ollama uses too. Cannot be combined with
    /// `format` yet.
    #[schema(max_items = 128)]
    pub tools: Option<Vec<super::openai::ToolIn>>,
    /// Hearth's extension, as on chat completions: answer from these collections, with
    /// citations on the last line; and remember the conversation per user.
    #[schema(value_type = Option<super::openai::MemoryBody>)]
    pub memory: Option<super::openai::MemoryIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageIn {
    #[schema(schema_with = schema::ollama_role)]
    pub role: String,
    #[serde(default)]
    pub content: String,
    /// Images are not supported by the models Hearth serves: only an empty list is accepted.
    #[schema(max_items = 0)]
    pub images: Option<Vec<String>>,
    /// The calls an earlier assistant message made.
    pub tool_calls: Option<Vec<ToolCallIo>>,
    /// On a `tool` message: which tool produced it.
    pub tool_name: Option<String>,
}

/// Ollama's tool call, in and out: arguments are an object, not a JSON text as in OpenAI.
#[derive(Debug, Deserialize, Serialize, Clone, ToSchema)]
pub struct ToolCallIo {
    pub function: FunctionCallIo,
}

#[derive(Debug, Deserialize, Serialize, Clone, ToSchema)]
pub struct FunctionCallIo {
    pub name: String,
    /// The arguments, as an object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
}

/// An Ollama generate request. With an empty prompt it loads the model (or unloads it, with
/// `keep_alive: 0`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct GenerateRequest {
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    /// Fill-in-the-middle is not supported yet: only an empty suffix is accepted.
    #[schema(max_length = 0)]
    pub suffix: Option<String>,
    pub system: Option<String>,
    /// Custom templates are not supported: only an empty template is accepted.
    #[schema(max_length = 0)]
    pub template: Option<String>,
    /// Continuing an earlier generation is not supported yet: only an empty list is accepted,
    /// or any with `raw`, which ignores it.
    pub context: Option<Vec<i32>>,
    /// Stream NDJSON lines (the default), or answer with one object.
    pub stream: Option<bool>,
    /// Send the prompt as it is, without the model's chat template.
    #[serde(default)]
    pub raw: bool,
    #[schema(schema_with = schema::ollama_format)]
    pub format: Option<serde_json::Value>,
    #[serde(default)]
    pub options: Options,
    #[schema(schema_with = schema::keep_alive)]
    pub keep_alive: Option<serde_json::Value>,
    /// Images are not supported by the models Hearth serves: only an empty list is accepted.
    #[schema(max_items = 0)]
    pub images: Option<Vec<String>>,
}

/// Ollama's `format`: `"json"` for any JSON object, or a JSON schema.
fn output_constraint(format: &Option<serde_json::Value>) -> Result<Option<Constraint>, ApiError> {
    match format {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) if text.is_empty() => Ok(None),
        Some(serde_json::Value::String(text)) if text == "json" => Ok(Some(Constraint::JsonObject)),
        Some(schema @ serde_json::Value::Object(_)) => {
            Ok(Some(Constraint::JsonSchema(schema.clone())))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "format must be \"json\" or a JSON schema object; got {other}"
        ))
        .with_param("format")),
    }
}

impl ChatRequest {
    /// The request's retrieval, checked.
    pub fn memory(&self) -> Result<Option<super::openai::MemoryIn>, ApiError> {
        self.memory
            .clone()
            .map(super::openai::MemoryIn::checked)
            .transpose()
    }

    /// The last `count` user messages, oldest first (what `memory.query_turns` searches).
    pub fn recent_user_texts(&self, count: usize) -> Vec<String> {
        let mut texts: Vec<String> = self
            .messages
            .iter()
            .rev()
            .filter(|message| message.role == "user")
            .take(count)
            .map(|message| message.content.clone())
            .collect();
        texts.reverse();
        texts
    }

    /// The engine request, and the tools the model may call (Ollama has no tool_choice: a
    /// request with tools may call them or answer).
    pub fn to_request(&self) -> Result<(GenerationRequest, Option<ToolUse>), ApiError> {
        self.to_request_asking(None)
    }

    /// [`to_request`](Self::to_request), with the last user message's text replaced by
    /// `question` (retrieved sources before the question).
    pub fn to_request_asking(
        &self,
        question: Option<&str>,
    ) -> Result<(GenerationRequest, Option<ToolUse>), ApiError> {
        let constraint = output_constraint(&self.format)?;
        let tools = self.tool_use()?;
        if tools.is_some() && constraint.is_some() {
            return Err(ApiError::bad_request(
                "format cannot be combined with tools yet; send one or the other",
            )
            .with_param("format"));
        }
        let mut turns = Vec::with_capacity(self.messages.len());
        for (index, message) in self.messages.iter().enumerate() {
            if message
                .images
                .as_ref()
                .is_some_and(|images| !images.is_empty())
            {
                return Err(
                    ApiError::bad_request("images are not supported by this model")
                        .with_param(format!("messages[{index}].images")),
                );
            }
            let content = message.content.clone();
            turns.push(match message.role.as_str() {
                "system" => Turn::System(content),
                "user" => Turn::User(content),
                "assistant" => Turn::Assistant {
                    content,
                    tool_calls: message
                        .tool_calls
                        .iter()
                        .flatten()
                        .map(|call| ToolCall {
                            id: String::new(),
                            name: call.function.name.clone(),
                            arguments: call.function.arguments.clone(),
                        })
                        .collect(),
                },
                "tool" => Turn::ToolResult {
                    call_id: None,
                    name: message.tool_name.clone(),
                    content,
                },
                other => {
                    return Err(ApiError::bad_request(format!(
                        "messages[{index}].role {other:?} is not supported; use system, user, \
                         assistant or tool"
                    ))
                    .with_param(format!("messages[{index}].role")));
                }
            });
        }
        if let Some(question) = question
            && let Some(last_user) = turns
                .iter_mut()
                .rev()
                .find(|turn| matches!(turn, Turn::User(_)))
        {
            *last_user = Turn::User(question.to_string());
        }
        let messages = tools::chat_messages(&turns, tools.as_ref());
        let mut request = self.options.to_request(Prompt::Chat(messages))?;
        request.constraint = match &tools {
            Some(tools) => Some(tools.constraint()),
            None => constraint,
        };
        Ok((request, tools))
    }

    fn tool_use(&self) -> Result<Option<ToolUse>, ApiError> {
        let declared = self.tools.as_deref().unwrap_or_default();
        if declared.is_empty() {
            return Ok(None);
        }
        let tools =
            ToolUse {
                tools: declared
                    .iter()
                    .map(|tool| ToolDefinition {
                        name: tool.function.name.clone(),
                        description: tool.function.description.clone(),
                        parameters: tool.function.parameters.clone().unwrap_or_else(
                            || serde_json::json!({"type": "object", "properties": {}}),
                        ),
                    })
                    .collect(),
                choice: ToolChoice::Auto,
                // Ollama has no switch for it; one call per reply keeps small models from
                // repeating a call until num_predict.
                parallel: false,
            };
        tools
            .validate()
            .map_err(|error| ApiError::bad_request(error.message).with_param(error.param))?;
        Ok(Some(tools))
    }
}

impl GenerateRequest {
    pub fn to_request(&self) -> Result<GenerationRequest, ApiError> {
        let constraint = output_constraint(&self.format)?;
        if self
            .images
            .as_ref()
            .is_some_and(|images| !images.is_empty())
        {
            return Err(
                ApiError::bad_request("images are not supported by this model")
                    .with_param("images"),
            );
        }
        if self
            .suffix
            .as_deref()
            .is_some_and(|suffix| !suffix.is_empty())
        {
            return Err(ApiError::bad_request("suffix is not supported yet").with_param("suffix"));
        }
        if self
            .template
            .as_deref()
            .is_some_and(|template| !template.is_empty())
        {
            return Err(ApiError::bad_request(
                "custom templates are not supported; use raw: true with a formatted prompt",
            )
            .with_param("template"));
        }
        let prompt = if self.raw {
            Prompt::Text(self.prompt.clone())
        } else if self
            .context
            .as_ref()
            .is_some_and(|context| !context.is_empty())
        {
            return Err(ApiError::bad_request(
                "context (continuing an earlier /api/generate) is not supported yet; send the \
                 whole text as the prompt",
            )
            .with_param("context"));
        } else {
            let mut messages = Vec::new();
            if let Some(system) = self.system.as_ref().filter(|system| !system.is_empty()) {
                messages.push(ChatMessage::new(ChatRole::System, system.clone()));
            }
            messages.push(ChatMessage::new(ChatRole::User, self.prompt.clone()));
            Prompt::Chat(messages)
        };
        let mut request = self.options.to_request(prompt)?;
        request.constraint = constraint;
        Ok(request)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    pub model: String,
    #[schema(schema_with = schema::ollama_embed_input)]
    pub input: OneOrMany,
    /// `false` refuses inputs longer than the model reads instead of cutting them.
    pub truncate: Option<bool>,
    #[schema(schema_with = schema::keep_alive)]
    pub keep_alive: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LegacyEmbeddingsRequest {
    pub model: String,
    pub prompt: String,
    #[schema(schema_with = schema::keep_alive)]
    pub keep_alive: Option<serde_json::Value>,
}

/// `{"model": NAME}`; older clients send `name` instead.
#[derive(Debug, Deserialize)]
pub struct ModelNameRequest {
    /// Ollama sends `model`; older clients send `name`.
    pub model: Option<String>,
    pub name: Option<String>,
}

/// `model`, or (without it) `name`: the one [`ModelNameRequest::model`] reads must be a model
/// name, the other may be anything.
impl utoipa::PartialSchema for ModelNameRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
        let text_or_null =
            || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .property("model", schema::model_reference())
                    .property("name", text_or_null())
                    .required("model"),
            )
            .item(
                ObjectBuilder::new()
                    .property("model", ObjectBuilder::new().schema_type(Type::Null))
                    .property("name", schema::model_reference())
                    .required("name"),
            )
            .description(Some(
                "The model, as `model` (Ollama's field) or `name` (older clients').",
            ))
            .into()
    }
}

impl ToSchema for ModelNameRequest {}

impl ModelNameRequest {
    pub fn model(&self) -> Result<&str, ApiError> {
        self.model
            .as_deref()
            .or(self.name.as_deref())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ApiError::bad_request("model is required").with_param("model"))
    }

    /// The model as a registry reference, for the endpoints that change the registry
    /// (`/api/delete`): a name that cannot exist is the client's mistake, not a missing model.
    pub fn reference(&self) -> Result<ModelReference, ApiError> {
        parse_reference(self.model()?, "model")
    }
}

/// Parses a model name a request gives in `param`; an invalid one is a 400 naming `param`.
fn parse_reference(text: &str, param: &str) -> Result<ModelReference, ApiError> {
    ModelReference::parse(text).map_err(|error| ApiError::from(error).with_param(param))
}

/// `/api/copy`: a second name for a model's current version.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CopyRequest {
    #[schema(required = true, schema_with = schema::model_reference)]
    pub source: Option<String>,
    #[schema(required = true, schema_with = schema::model_reference)]
    pub destination: Option<String>,
}

impl CopyRequest {
    /// (source, destination), each validated as a model name.
    pub fn references(&self) -> Result<(ModelReference, ModelReference), ApiError> {
        let required = |value: &Option<String>, param: &str| {
            let text = value
                .as_deref()
                .filter(|text| !text.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{param} is required")).with_param(param)
                })?;
            parse_reference(text, param)
        };
        Ok((
            required(&self.source, "source")?,
            required(&self.destination, "destination")?,
        ))
    }
}

/// `/api/pull`. Hearth has no model hub, so where Ollama takes a model name, `model` is a pull
/// source: an `https://` URL or `hf:owner/repo/path/file.gguf[@revision]`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PullRequest {
    #[schema(required = true, schema_with = schema::pull_source)]
    pub model: Option<String>,
    /// `NAME:TAG` to register the model under; derived from the file name when absent.
    #[schema(schema_with = schema::optional_model_reference)]
    pub name: Option<String>,
    /// The expected sha256 (hex, optionally `sha256:`-prefixed); anything else is refused.
    #[schema(schema_with = schema::sha256)]
    pub sha256: Option<String>,
    /// Stream NDJSON progress lines (the default), or answer once the pull is done.
    pub stream: Option<bool>,
}

/// A pull request checked and converted: what to fetch, under which name, how to report.
#[derive(Debug)]
pub struct PullPlan {
    pub source: PullSource,
    pub name: Option<ModelReference>,
    pub sha256: Option<String>,
    pub stream: bool,
}

impl PullRequest {
    pub fn to_plan(&self) -> Result<PullPlan, ApiError> {
        let invalid_source = |message: String| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_source", message).with_param("model")
        };
        let text = self
            .model
            .as_deref()
            .filter(|text| !text.is_empty())
            .ok_or_else(|| {
                invalid_source(
                    "model is required: the URL or hf:owner/repo/file.gguf reference to pull"
                        .to_string(),
                )
            })?;
        let source = PullSource::parse(text).map_err(|error| invalid_source(error.to_string()))?;
        if let PullSource::Local(_) = source {
            // Reading a path an HTTP client names would let any client make the server read
            // (and hash, and register) arbitrary files on its machine.
            return Err(invalid_source(format!(
                "{text:?} is not a URL or an hf: reference; over HTTP Hearth pulls https:// URLs                  and hf:owner/repo/file.gguf[@revision] (it has no model hub to look names up                  in). To add a file that is on the server machine, run `hearth pull PATH` there."
            )));
        }
        let name = self
            .name
            .as_deref()
            .filter(|name| !name.is_empty())
            .map(|name| parse_reference(name, "name"))
            .transpose()?;
        Ok(PullPlan {
            source,
            name,
            sha256: self.sha256.clone().filter(|sha256| !sha256.is_empty()),
            stream: self.stream.unwrap_or(true),
        })
    }
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatResponse {
    pub model: String,
    pub created_at: String,
    pub message: MessageOut,
    pub done: bool,
    #[serde(flatten)]
    #[schema(value_type = FinalFields)]
    pub final_fields: Option<FinalFields>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub role: &'static str,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallIo>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateResponse {
    pub model: String,
    pub created_at: String,
    pub response: String,
    pub done: bool,
    #[serde(flatten)]
    #[schema(value_type = FinalFields)]
    pub final_fields: Option<FinalFields>,
}

/// The statistics Ollama adds to the last object of a response (durations in nanoseconds).
/// Only that object has them, and the answer to a load or unload has `done_reason` alone.
#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct FinalFields {
    #[schema(required = false, schema_with = schema::done_reason)]
    pub done_reason: &'static str,
    #[schema(required = false)]
    pub total_duration: u64,
    #[schema(required = false)]
    pub load_duration: u64,
    #[schema(required = false)]
    pub prompt_eval_count: usize,
    #[schema(required = false)]
    pub prompt_eval_duration: u64,
    #[schema(required = false)]
    pub eval_count: usize,
    #[schema(required = false)]
    pub eval_duration: u64,
    /// With `memory`: the placed passages the answer cites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<super::openai::CitationOut>>,
    /// With `memory`: what retrieval placed in the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<super::openai::RetrievalOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    pub model: String,
    pub embeddings: Vec<Vec<f32>>,
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyEmbeddingsResponse {
    pub embedding: Vec<f32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagsResponse {
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    pub name: String,
    pub model: String,
    pub modified_at: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
}

#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct ModelDetails {
    pub parent_model: String,
    pub format: String,
    pub family: String,
    pub families: Vec<String>,
    pub parameter_size: String,
    pub quantization_level: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PsResponse {
    pub models: Vec<RunningEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunningEntry {
    pub name: String,
    pub model: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
    pub expires_at: String,
    pub size_vram: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShowResponse {
    pub modelfile: String,
    pub parameters: String,
    pub template: String,
    pub details: ModelDetails,
    pub model_info: BTreeMap<String, serde_json::Value>,
    pub capabilities: Vec<&'static str>,
    pub modified_at: String,
}

/// `/api/version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionResponse {
    pub version: &'static str,
    /// Hearth's addition: the CPU instruction sets the inference kernels were built for
    /// (`avx2`, `avx512`, ...). Ollama clients read `version` only.
    pub cpu_features: Vec<&'static str>,
}

/// One line of the `/api/pull` stream, as Ollama writes it.
#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct PullStatus {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
}

impl PullStatus {
    /// The last line of a pull that worked, and the whole answer when `stream` is false.
    pub fn success() -> PullStatus {
        PullStatus::status("success".to_string())
    }

    /// A line telling the user something about the pulled model, before `success`.
    pub fn note(text: &str) -> PullStatus {
        PullStatus::status(format!("note: {text}"))
    }

    fn status(status: String) -> PullStatus {
        PullStatus {
            status,
            digest: None,
            total: None,
            completed: None,
        }
    }
}

impl From<&PullProgress> for PullStatus {
    fn from(progress: &PullProgress) -> PullStatus {
        PullStatus {
            status: progress.status.clone(),
            digest: progress.digest.clone(),
            total: progress.total,
            completed: progress.completed,
        }
    }
}

pub fn done_reason(reason: hearth_engine::FinishReason) -> &'static str {
    match reason {
        hearth_engine::FinishReason::Stop => "stop",
        hearth_engine::FinishReason::Length => "length",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_accepts_ollama_forms() {
        let parse = |value: serde_json::Value| keep_alive(Some(&value)).expect("valid");
        assert_eq!(
            parse(serde_json::json!("5m")),
            Some(KeepAlive::For(Duration::from_secs(300)))
        );
        assert_eq!(
            parse(serde_json::json!("1h30m")),
            Some(KeepAlive::For(Duration::from_secs(5400)))
        );
        assert_eq!(
            parse(serde_json::json!(0)),
            Some(KeepAlive::For(Duration::ZERO))
        );
        assert_eq!(
            parse(serde_json::json!("0")),
            Some(KeepAlive::For(Duration::ZERO))
        );
        assert_eq!(parse(serde_json::json!(-1)), Some(KeepAlive::Forever));
        assert_eq!(parse(serde_json::json!("-1m")), Some(KeepAlive::Forever));
        assert_eq!(
            parse(serde_json::json!(90)),
            Some(KeepAlive::For(Duration::from_secs(90)))
        );
        assert_eq!(keep_alive(None).expect("absent"), None);
        let error = keep_alive(Some(&serde_json::json!("soon"))).expect_err("invalid");
        assert_eq!(error.param.as_deref(), Some("keep_alive"));
    }

    #[test]
    fn keep_alive_past_what_a_duration_holds_is_forever_and_not_a_number_is_refused() {
        // A huge value, NaN and infinity used to panic in Duration::from_secs_f64: a 500 for
        // a fuzzer's request.
        assert_eq!(
            keep_alive(Some(&serde_json::json!(1e300))).expect("huge"),
            Some(KeepAlive::Forever)
        );
        assert_eq!(
            keep_alive(Some(&serde_json::json!("99999999999999999999999h"))).expect("huge"),
            Some(KeepAlive::Forever)
        );
        for text in ["NaN", "inf", "-inf"] {
            let error = keep_alive(Some(&serde_json::json!(text))).expect_err(text);
            assert_eq!(error.param.as_deref(), Some("keep_alive"));
        }
    }
}

#[cfg(test)]
mod response_tests {
    //! Ollama's response shapes, pinned as snapshots.

    use super::*;

    fn final_fields() -> FinalFields {
        FinalFields {
            citations: None,
            retrieval: None,
            done_reason: "stop",
            total_duration: 1_000_000,
            load_duration: 10_000,
            prompt_eval_count: 12,
            prompt_eval_duration: 200_000,
            eval_count: 5,
            eval_duration: 700_000,
        }
    }

    #[test]
    fn chat_lines_with_text_a_tool_call_and_the_final_statistics() {
        let lines = vec![
            ChatResponse {
                model: "gemma3:270m".to_owned(),
                created_at: "2026-01-01T00:00:00.000Z".to_owned(),
                message: MessageOut {
                    role: "assistant",
                    content: "Hello".to_owned(),
                    tool_calls: None,
                },
                done: false,
                final_fields: None,
            },
            ChatResponse {
                model: "gemma3:270m".to_owned(),
                created_at: "2026-01-01T00:00:00.000Z".to_owned(),
                message: MessageOut {
                    role: "assistant",
                    content: String::new(),
                    tool_calls: Some(vec![ToolCallIo {
                        function: FunctionCallIo {
                            name: "get_weather".to_owned(),
                            arguments: serde_json::json!({"city": "Paris"}),
                        },
                    }]),
                },
                done: true,
                final_fields: Some(final_fields()),
            },
        ];
        insta::assert_json_snapshot!(lines);
    }

    #[test]
    fn a_final_generate_line() {
        insta::assert_json_snapshot!(GenerateResponse {
            model: "gemma3:270m".to_owned(),
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            response: String::new(),
            done: true,
            final_fields: Some(final_fields()),
        });
    }
}
