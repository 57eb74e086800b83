//! OpenAI's Responses API (`/v1/responses`): the request, the items a conversation is made of,
//! the response object and the typed events of its stream. A request becomes a chat request
//! (instructions, the stored conversation before it, its own input items) so that it runs on
//! the same generation path, checks and grammar as `/v1/chat/completions`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::openai::{ChatCompletionRequest, GenerationPlan, SamplingFields};
use crate::error::ApiError;

// ---------------------------------------------------------------- requests

/// A Responses API request. Fields OpenAI defines that are not listed here are accepted and
/// ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResponsesRequest {
    /// A local model (`gemma3:270m`), a route alias, or `upstream/model`.
    pub model: String,
    /// A text (one user message) or a list of input items: messages (`role`, `content`),
    /// `function_call` and `function_call_output` items.
    #[schema(schema_with = super::schema::responses_input, required = true)]
    pub input: Option<Value>,
    /// A system message placed before the conversation. Not carried over to responses that
    /// continue this one.
    pub instructions: Option<String>,
    /// Stream the answer as typed server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Continue the conversation that ended with this stored response.
    pub previous_response_id: Option<String>,
    /// Keep the response for `GET /v1/responses/{id}` and `previous_response_id` (default true).
    pub store: Option<bool>,
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub max_output_tokens: Option<u32>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", "schema"}}`.
    #[schema(schema_with = super::schema::responses_text)]
    pub text: Option<Value>,
    /// Functions the model may call: `{"type": "function", "name", "description",
    /// "parameters"}`.
    #[schema(schema_with = super::schema::responses_tools)]
    pub tools: Option<Vec<Value>>,
    #[schema(schema_with = super::schema::responses_tool_choice)]
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    /// Up to 16 string pairs kept with the response.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    pub user: Option<String>,
    /// Ollama-style keep-alive, accepted here too ("5m", seconds, 0, -1).
    #[schema(schema_with = super::schema::keep_alive)]
    pub keep_alive: Option<Value>,
    /// Hearth's extension, as on chat completions.
    pub speculation: Option<bool>,
    /// llama-server's extension, as on chat completions: generate to the token limit.
    #[serde(default)]
    pub ignore_eos: bool,
    /// Extra output: `file_search_call.results` shows the passages a search found.
    pub include: Option<Vec<String>>,
    /// `auto`: when the conversation does not fit the model's context beside the answer, its
    /// oldest items are left out (never the newest); `disabled` (the default):
    /// such a request fails with `context_length_exceeded`.
    pub truncation: Option<Truncation>,
    /// A prompt template of the caller's tenant: its system and developer messages go before
    /// `instructions`, the others before `input`; its model and defaults apply where the
    /// request sets none.
    #[expect(
        dead_code,
        reason = "documented here; the handler renders it into the request before parsing"
    )]
    pub prompt: Option<super::prompts::PromptRefIn>,
}

/// What a conversation longer than the context does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Truncation {
    Auto,
    #[default]
    Disabled,
}

// ---------------------------------------------------------------- items

/// A part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentItem {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
        #[serde(default)]
        #[schema(value_type = Vec<Object>)]
        annotations: Vec<Value>,
    },
}

impl Item {
    /// The text the item puts in the prompt, for counting its tokens.
    pub fn prompt_text(&self) -> String {
        match self {
            Item::Message { content, .. } => content.iter().map(ContentItem::text).collect(),
            Item::FunctionCall {
                name, arguments, ..
            } => format!("{name}{arguments}"),
            Item::FunctionCallOutput { output, .. } => output.clone(),
            Item::FileSearchCall { queries, .. } => queries.join(" "),
        }
    }
}

impl ContentItem {
    fn text(&self) -> &str {
        match self {
            ContentItem::InputText { text } | ContentItem::OutputText { text, .. } => text,
        }
    }
}

/// An item of a conversation, as the API shows it (each with an id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message {
        id: String,
        role: String,
        content: Vec<ContentItem>,
        status: String,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        /// The arguments as JSON text.
        arguments: String,
        status: String,
    },
    FunctionCallOutput {
        id: String,
        call_id: String,
        output: String,
        status: String,
    },
    /// A `file_search` Hearth ran before answering: its query and, when asked for with
    /// `include: ["file_search_call.results"]`, the passages it found.
    FileSearchCall {
        id: String,
        status: String,
        queries: Vec<String>,
        #[serde(default)]
        results: Option<Vec<FileSearchResult>>,
    },
}

/// A passage a `file_search` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileSearchResult {
    pub file_id: String,
    pub filename: String,
    pub score: f32,
    pub text: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
}

/// The `file_search` tool of a request.
#[derive(Debug, Deserialize)]
pub struct FileSearchTool {
    pub vector_store_ids: Vec<String>,
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub max_num_results: Option<usize>,
    pub filters: Option<Value>,
    pub ranking_options: Option<super::vector_stores::RankingOptionsIn>,
}

/// Passages a `file_search` returns when the tool gives no `max_num_results` (OpenAI's
/// default).
pub const FILE_SEARCH_RESULTS: usize = 10;

/// A new item id with OpenAI's prefix for its kind.
pub fn item_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

const ROLES: [&str; 4] = ["user", "assistant", "system", "developer"];

/// The request's input as items (ids given to those that have none).
pub fn input_items(input: Option<&Value>) -> Result<Vec<Item>, ApiError> {
    let invalid = |param: String, message: String| ApiError::bad_request(message).with_param(param);
    match input {
        None | Some(Value::Null) => {
            Err(ApiError::bad_request("input is required").with_param("input"))
        }
        Some(Value::String(text)) => Ok(vec![Item::Message {
            id: item_id("msg"),
            role: "user".into(),
            content: vec![ContentItem::InputText { text: text.clone() }],
            status: "completed".into(),
        }]),
        Some(Value::Array(entries)) => {
            let mut items = Vec::with_capacity(entries.len());
            for (index, entry) in entries.iter().enumerate() {
                let at = |field: &str| format!("input[{index}]{field}");
                let Some(object) = entry.as_object() else {
                    return Err(invalid(at(""), format!("input[{index}] must be an object")));
                };
                let text_field = |name: &str| -> Result<String, ApiError> {
                    match object.get(name) {
                        Some(Value::String(text)) => Ok(text.clone()),
                        _ => Err(invalid(
                            at(&format!(".{name}")),
                            format!("input[{index}].{name} must be a string"),
                        )),
                    }
                };
                let id = |prefix: &str| {
                    object
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| item_id(prefix))
                };
                let kind = object.get("type").and_then(Value::as_str);
                let item = match kind {
                    None | Some("message") => {
                        let role = text_field("role")?;
                        if !ROLES.contains(&role.as_str()) {
                            return Err(invalid(
                                at(".role"),
                                format!(
                                    "input[{index}].role {role:?} is not one of user, assistant, \
                                     system or developer"
                                ),
                            ));
                        }
                        let content = message_content(object.get("content"), &role, index)?;
                        Item::Message {
                            id: id("msg"),
                            role,
                            content,
                            status: "completed".into(),
                        }
                    }
                    Some("function_call") => {
                        let arguments = text_field("arguments")?;
                        if serde_json::from_str::<Value>(&arguments).is_err() {
                            return Err(invalid(
                                at(".arguments"),
                                format!("input[{index}].arguments is not JSON text"),
                            ));
                        }
                        Item::FunctionCall {
                            id: id("fc"),
                            call_id: text_field("call_id")?,
                            name: text_field("name")?,
                            arguments,
                            status: "completed".into(),
                        }
                    }
                    Some("function_call_output") => Item::FunctionCallOutput {
                        id: id("fco"),
                        call_id: text_field("call_id")?,
                        output: match object.get("output") {
                            Some(Value::String(text)) => text.clone(),
                            Some(Value::Array(_)) => {
                                let parts = message_content(object.get("output"), "user", index)
                                    .map_err(|error| error.with_param(at(".output")))?;
                                parts.iter().map(ContentItem::text).collect()
                            }
                            _ => {
                                return Err(invalid(
                                    at(".output"),
                                    format!("input[{index}].output must be a string"),
                                ));
                            }
                        },
                        status: "completed".into(),
                    },
                    // An earlier response's search, sent back: kept in the conversation, not
                    // shown to the model (its passages were for that turn).
                    Some("file_search_call") => {
                        serde_json::from_value(entry.clone()).map_err(|error| {
                            invalid(
                                at(""),
                                format!("input[{index}] is not a file_search_call: {error}"),
                            )
                        })?
                    }
                    Some(other) => {
                        return Err(invalid(
                            at(".type"),
                            format!(
                                "input[{index}].type {other:?} is not supported; send message, \
                                 function_call, function_call_output or file_search_call items"
                            ),
                        ));
                    }
                };
                items.push(item);
            }
            if items.is_empty() {
                return Err(ApiError::bad_request("input must not be empty").with_param("input"));
            }
            Ok(items)
        }
        Some(_) => Err(
            ApiError::bad_request("input must be a string or a list of items").with_param("input"),
        ),
    }
}

/// A message's content: a text or a list of text parts (`input_text`, `output_text`).
fn message_content(
    content: Option<&Value>,
    role: &str,
    index: usize,
) -> Result<Vec<ContentItem>, ApiError> {
    let as_item = |text: String| {
        if role == "assistant" {
            ContentItem::OutputText {
                text,
                annotations: Vec::new(),
            }
        } else {
            ContentItem::InputText { text }
        }
    };
    match content {
        Some(Value::String(text)) => Ok(vec![as_item(text.clone())]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(part_index, part)| {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                match (kind, part.get("text").and_then(Value::as_str)) {
                    ("input_text" | "output_text" | "text", Some(text)) => {
                        Ok(as_item(text.to_string()))
                    }
                    _ => Err(ApiError::bad_request(format!(
                        "input[{index}].content[{part_index}] of type {kind:?} is not \
                         supported; send input_text parts"
                    ))
                    .with_param(format!("input[{index}].content[{part_index}]"))),
                }
            })
            .collect(),
        _ => Err(ApiError::bad_request(format!(
            "input[{index}].content must be a string or a list of text parts"
        ))
        .with_param(format!("input[{index}].content"))),
    }
}

/// The chat messages of a conversation: `instructions` first, then the items in order; a run
/// of function calls is one assistant message, as chat completions carry them.
pub fn chat_messages(instructions: Option<&str>, items: &[Item]) -> Vec<Value> {
    let mut messages = Vec::with_capacity(items.len() + 1);
    if let Some(instructions) = instructions {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    for item in items {
        match item {
            Item::Message { role, content, .. } => {
                let text: String = content.iter().map(ContentItem::text).collect();
                messages.push(json!({"role": role, "content": text}));
            }
            Item::FunctionCall {
                call_id,
                name,
                arguments,
                ..
            } => {
                let call = json!({"id": call_id, "type": "function",
                    "function": {"name": name, "arguments": arguments}});
                let joins_last = messages.last().is_some_and(|last: &Value| {
                    last["role"] == "assistant" && last["tool_calls"].is_array()
                });
                if joins_last {
                    if let Some(calls) = messages
                        .last_mut()
                        .and_then(|last| last["tool_calls"].as_array_mut())
                    {
                        calls.push(call);
                    }
                } else {
                    messages.push(json!({"role": "assistant", "content": null,
                        "tool_calls": [call]}));
                }
            }
            Item::FunctionCallOutput {
                call_id, output, ..
            } => {
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            Item::FileSearchCall { .. } => {}
        }
    }
    messages
}

impl ResponsesRequest {
    /// The request's `file_search` tool, checked: at most one, naming 1 to 10 vector stores.
    pub fn file_search(&self) -> Result<Option<(usize, FileSearchTool)>, ApiError> {
        let mut found = None;
        for (index, tool) in self.tools.iter().flatten().enumerate() {
            if tool.get("type") != Some(&json!("file_search")) {
                continue;
            }
            let param = format!("tools[{index}]");
            if found.is_some() {
                return Err(
                    ApiError::bad_request("only one file_search tool may be given")
                        .with_param(param),
                );
            }
            let parsed: FileSearchTool = serde_json::from_value(tool.clone()).map_err(|error| {
                ApiError::bad_request(format!("{param} is not a file_search tool: {error}"))
                    .with_param(param.clone())
            })?;
            if !(1..=10).contains(&parsed.vector_store_ids.len()) {
                return Err(ApiError::bad_request(format!(
                    "{param}.vector_store_ids must name 1 to 10 vector stores"
                ))
                .with_param(format!("{param}.vector_store_ids")));
            }
            found = Some((index, parsed));
        }
        Ok(found)
    }

    /// Whether the response shows what `file_search` found.
    pub fn includes_search_results(&self) -> bool {
        self.include
            .iter()
            .flatten()
            .any(|included| included == "file_search_call.results")
    }

    /// The generation plan for `conversation` (the stored items before this request, then its
    /// own input): the request as a chat request, checked by the same rules, with errors
    /// naming this API's fields. `sources`, when given, replaces the last user turn's text
    /// (the question with the retrieved passages before it).
    pub fn to_plan(
        &self,
        conversation: &[Item],
        sources: Option<&str>,
    ) -> Result<GenerationPlan, ApiError> {
        let mut messages = chat_messages(self.instructions.as_deref(), conversation);
        // Retrieved sources go into the last user turn, before its question.
        if let Some(sources) = sources
            && let Some(last_user) = messages
                .iter_mut()
                .rev()
                .find(|message| message["role"] == "user")
        {
            last_user["content"] = json!(sources);
        }
        let mut chat = json!({"model": self.model, "messages": messages});
        if let Some(tokens) = self.max_output_tokens {
            chat["max_completion_tokens"] = json!(tokens);
        }
        if let Some(format) = self.text.as_ref().and_then(|text| text.get("format")) {
            chat["response_format"] = response_format(format)?;
        }
        if let Some(tools) = &self.tools {
            // file_search runs before generation; the model calls only functions.
            let functions: Vec<Value> = tools
                .iter()
                .enumerate()
                .filter(|(_, tool)| tool.get("type") != Some(&json!("file_search")))
                .map(|(index, tool)| chat_tool(index, tool))
                .collect::<Result<_, _>>()?;
            if !functions.is_empty() {
                chat["tools"] = Value::Array(functions);
            }
        }
        if let Some(choice) = &self.tool_choice {
            chat["tool_choice"] = match choice {
                Value::Object(object) if object.get("type") == Some(&json!("function")) => {
                    json!({"type": "function", "function": {"name": object.get("name")}})
                }
                other => other.clone(),
            };
        }
        if let Some(parallel) = self.parallel_tool_calls {
            chat["parallel_tool_calls"] = json!(parallel);
        }
        if let Some(speculation) = self.speculation {
            chat["speculation"] = json!(speculation);
        }
        chat["ignore_eos"] = json!(self.ignore_eos);
        let mut request: ChatCompletionRequest = serde_json::from_value(chat)
            .map_err(|error| ApiError::bad_request(format!("invalid request: {error}")))?;
        request.sampling = self.sampling.clone();
        request.to_plan().map_err(responses_param)
    }
}

/// A chat request's error, naming the Responses API's field.
fn responses_param(error: ApiError) -> ApiError {
    let Some(param) = error.param.clone() else {
        return error;
    };
    let renamed = if param.starts_with("messages") {
        "input".to_string()
    } else if param.starts_with("response_format.json_schema") {
        param.replacen("response_format.json_schema", "text.format", 1)
    } else if param.starts_with("response_format") {
        param.replacen("response_format", "text.format", 1)
    } else if param == "max_completion_tokens" {
        "max_output_tokens".to_string()
    } else if param.starts_with("tools[") {
        param.replacen(".function", "", 1)
    } else {
        param
    };
    error.with_param(renamed)
}

/// `text.format` as chat completions' `response_format`.
fn response_format(format: &Value) -> Result<Value, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(json!({"type": "text"})),
        Some("json_object") => Ok(json!({"type": "json_object"})),
        Some("json_schema") => Ok(json!({"type": "json_schema", "json_schema": {
            "name": format.get("name"), "schema": format.get("schema")}})),
        _ => Err(ApiError::bad_request(
            "text.format.type must be text, json_object or json_schema",
        )
        .with_param("text.format.type")),
    }
}

/// A Responses API tool (`{"type": "function", "name", ...}`) as a chat completions tool.
fn chat_tool(index: usize, tool: &Value) -> Result<Value, ApiError> {
    match tool.get("type").and_then(Value::as_str) {
        Some("function") => Ok(json!({"type": "function", "function": {
            "name": tool.get("name").and_then(Value::as_str).unwrap_or_default(),
            "description": tool.get("description"),
            "parameters": tool.get("parameters"),
        }})),
        other => Err(ApiError::bad_request(format!(
            "tools[{index}].type {} is not supported; use \"function\" or \"file_search\"",
            other.map_or("(missing)".to_string(), |kind| format!("{kind:?}"))
        ))
        .with_param(format!("tools[{index}].type"))),
    }
}

// ---------------------------------------------------------------- responses

/// Token counts, as the Responses API names them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResponseUsage {
    pub input_tokens: u32,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u32,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InputTokensDetails {
    pub cached_tokens: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u32,
}

impl ResponseUsage {
    pub fn from_engine(usage: hearth_engine::Usage) -> ResponseUsage {
        ResponseUsage {
            input_tokens: usage.prompt_tokens as u32,
            input_tokens_details: InputTokensDetails {
                cached_tokens: usage.cached_prompt_tokens as u32,
            },
            output_tokens: usage.completion_tokens as u32,
            output_tokens_details: OutputTokensDetails::default(),
            total_tokens: (usage.prompt_tokens + usage.completion_tokens) as u32,
        }
    }
}

/// The response object (`"object": "response"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResponseObject {
    pub id: String,
    pub object: String,
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: String,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub incomplete_details: Option<Value>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub model: String,
    pub output: Vec<Item>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub store: bool,
    pub temperature: f32,
    #[schema(value_type = Object)]
    pub text: Value,
    #[schema(value_type = Object)]
    pub tool_choice: Value,
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    pub top_p: f32,
    pub truncation: String,
    pub usage: Option<ResponseUsage>,
    pub user: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, Value>,
}

impl ResponseObject {
    /// A response to `request` before any output: `in_progress`.
    pub fn started(id: String, created_at: u64, model: String, request: &ResponsesRequest) -> Self {
        ResponseObject {
            id,
            object: "response".into(),
            created_at,
            status: "in_progress".into(),
            error: None,
            incomplete_details: None,
            instructions: request.instructions.clone(),
            max_output_tokens: request.max_output_tokens,
            model,
            output: Vec::new(),
            parallel_tool_calls: request.parallel_tool_calls.unwrap_or(false),
            previous_response_id: request.previous_response_id.clone(),
            store: request.store.unwrap_or(true),
            temperature: request.sampling.temperature.unwrap_or(1.0),
            text: request
                .text
                .clone()
                .unwrap_or_else(|| json!({"format": {"type": "text"}})),
            tool_choice: request.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            tools: request.tools.clone().unwrap_or_default(),
            top_p: request.sampling.top_p.unwrap_or(1.0),
            truncation: match request.truncation.unwrap_or_default() {
                Truncation::Auto => "auto".into(),
                Truncation::Disabled => "disabled".into(),
            },
            usage: None,
            user: request.user.clone(),
            metadata: request.metadata.clone().unwrap_or_default(),
        }
    }

    /// Finished with `output`: `completed`, or `incomplete` when the token limit cut it.
    pub fn finish(
        &mut self,
        output: Vec<Item>,
        finish: hearth_engine::FinishReason,
        usage: hearth_engine::Usage,
    ) {
        self.output = output;
        self.usage = Some(ResponseUsage::from_engine(usage));
        if finish == hearth_engine::FinishReason::Length {
            self.status = "incomplete".into();
            self.incomplete_details = Some(json!({"reason": "max_output_tokens"}));
        } else {
            self.status = "completed".into();
        }
    }
}

/// `DELETE /v1/responses/{id}`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseDeleted {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

/// A page of a response's input items.
#[derive(Debug, Serialize, ToSchema)]
pub struct InputItemList {
    pub object: &'static str,
    pub data: Vec<Item>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

/// `GET /v1/responses/{id}/input_items` query: OpenAI's cursor pagination.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InputItemsQuery {
    /// 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `asc` or `desc` (default `desc`, newest first).
    pub order: Option<String>,
    /// An item id: the page starts after it.
    pub after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> ResponsesRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_text_input_is_one_user_message() {
        let items = input_items(Some(&json!("What is Hearth?"))).unwrap();
        assert!(matches!(&items[0], Item::Message { role, content, .. }
            if role == "user" && content == &[ContentItem::InputText { text: "What is Hearth?".into() }]));
    }

    #[test]
    fn items_become_chat_messages_with_calls_grouped() {
        let items = input_items(Some(&json!([
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": "cold"},
            {"type": "message", "role": "assistant", "content": "It is cold."}
        ])))
        .unwrap();
        let messages = chat_messages(Some("Be brief."), &items);
        assert_eq!(
            messages[0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(messages[1], json!({"role": "user", "content": "weather?"}));
        assert_eq!(messages[2]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "cold"})
        );
        assert_eq!(
            messages[4],
            json!({"role": "assistant", "content": "It is cold."})
        );
        assert!(matches!(&items[4], Item::Message { content, .. }
            if matches!(content[0], ContentItem::OutputText { .. })));
    }

    #[test]
    fn bad_input_names_the_field_at_fault() {
        let cases = [
            (json!(null), "input"),
            (json!([]), "input"),
            (json!(7), "input"),
            (json!([{"role": "robot", "content": "hi"}]), "input[0].role"),
            (
                json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
                "input[0].content[0]",
            ),
            (
                json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]),
                "input[0].arguments",
            ),
            (json!([{"type": "reasoning"}]), "input[0].type"),
            (
                json!([{"type": "function_call_output", "output": "x"}]),
                "input[0].call_id",
            ),
        ];
        for (input, param) in cases {
            let error = input_items(Some(&input)).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param), "{input}");
        }
    }

    fn plan_error(value: Value, items: &[Item]) -> ApiError {
        match request(value).to_plan(items, None) {
            Ok(_) => panic!("the plan was accepted"),
            Err(error) => error,
        }
    }

    #[test]
    fn the_plan_checks_fields_by_their_responses_names() {
        let items = input_items(Some(&json!("hi"))).unwrap();
        let plan = request(json!({"model": "m", "max_output_tokens": 5, "temperature": 0}))
            .to_plan(&items, None)
            .unwrap();
        assert_eq!(plan.request.max_tokens, Some(5));
        let error = plan_error(json!({"model": "m", "max_output_tokens": 0}), &items);
        assert_eq!(error.param.as_deref(), Some("max_output_tokens"));
        let error = plan_error(
            json!({"model": "m", "text": {"format": {"type": "json_schema"}}}),
            &items,
        );
        assert_eq!(error.param.as_deref(), Some("text.format.schema"));
        let error = plan_error(
            json!({"model": "m", "tools": [{"type": "web_search"}]}),
            &items,
        );
        assert_eq!(error.param.as_deref(), Some("tools[0].type"));
        let tools = request(
            json!({"model": "m", "tools": [{"type": "function", "name": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}),
        )
        .to_plan(&items, None)
        .unwrap();
        assert!(tools.tools.is_some());
        assert!(tools.request.constraint.is_some());
    }
}
