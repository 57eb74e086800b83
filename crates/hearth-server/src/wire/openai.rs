//! OpenAI's request and response shapes for chat completions, completions, embeddings and
//! models, and their conversion to engine requests. Validation names the field at fault the
//! way OpenAI does (`param`).

use std::collections::BTreeMap;

use hearth_engine::{Constraint, GenerationRequest, MAX_TOP_LOGPROBS, Prompt, SamplingParams};
use hearth_inference::tools::{self, ToolCall, ToolChoice, ToolDefinition, ToolUse, Turn};
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::{OneOrMany, schema};
use crate::error::ApiError;

/// Most stop sequences a request may give.
const MAX_STOP_SEQUENCES: usize = 16;
/// Most choices one request may ask for.
const MAX_CHOICES: usize = 16;

// ---------------------------------------------------------------- requests

/// A chat completion request. Fields OpenAI defines that are not listed here are accepted
/// and ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// A local model (`gemma3:270m`), a route alias, or `upstream/model`; may be left out
    /// when `prompt` names a template that sets one.
    pub model: String,
    /// The conversation so far.
    #[schema(min_items = 1)]
    pub messages: Vec<ChatMessageIn>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// Most tokens to generate per choice; `max_completion_tokens` wins when both are given.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub max_tokens: Option<u32>,
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub max_completion_tokens: Option<u32>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// llama-server's extension: never stop at an end-of-generation token, only at the token
    /// limit or a stop sequence (benchmarks, fixed-length output).
    #[serde(default)]
    pub ignore_eos: bool,
    /// Hearth's extension: `false` turns prompt-lookup speculative decoding off for this
    /// request. The output is the same either way; only the speed differs.
    pub speculation: Option<bool>,
    /// How many choices to generate.
    #[schema(minimum = 1, maximum = 16)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub n: Option<u32>,
    #[schema(schema_with = schema::openai_stop)]
    pub stop: Option<OneOrMany>,
    /// Return each output token's log probability.
    #[serde(default)]
    pub logprobs: bool,
    /// Alternatives per token to return; needs `logprobs: true`.
    #[schema(maximum = 20)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub top_logprobs: Option<u32>,
    /// Constrain the output to JSON. Cannot be combined with `tools` yet.
    pub response_format: Option<ResponseFormat>,
    /// Functions the model may call.
    #[schema(max_items = 128)]
    pub tools: Option<Vec<ToolIn>>,
    #[schema(schema_with = schema::tool_choice)]
    pub tool_choice: Option<serde_json::Value>,
    /// Allow more than one tool call per reply (default false).
    pub parallel_tool_calls: Option<bool>,
    /// Ollama-style keep-alive, accepted here too ("5m", seconds, 0, -1).
    #[schema(schema_with = schema::keep_alive)]
    pub keep_alive: Option<serde_json::Value>,
    /// Hearth's extension: answer from these collections, with citations; and remember
    /// the conversation per user.
    #[schema(value_type = Option<MemoryBody>)]
    pub memory: Option<MemoryIn>,
    /// Open WebUI's attachments: `{"type": "collection", "id"}` answers from that collection.
    #[schema(max_items = 10)]
    pub files: Option<Vec<AttachedFileIn>>,
    /// The end user the request is for (OpenAI's field): whose memory `memory.remember`
    /// reaches, when the key was not issued to a user.
    pub user: Option<String>,
    /// Hearth's extension: plugin tools the server runs for the model (not with `stream`,
    /// `n` > 1 or `memory` yet).
    #[expect(
        dead_code,
        reason = "documented here; the tool loop reads it from the JSON before parsing"
    )]
    pub plugins: Option<super::plugins::PluginToolsIn>,
    /// A prompt template of the caller's tenant: its rendered messages go before `messages`,
    /// its model and sampling defaults apply where the request sets none.
    #[expect(
        dead_code,
        reason = "documented here; the handler renders it into the request before parsing"
    )]
    pub prompt: Option<super::prompts::PromptRefIn>,
}

/// Retrieval for a chat: the last user turn is searched in the collections (and, with
/// `remember`, in the user's earlier turns), and the passages that fit the context are placed
/// before it as numbered sources.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct MemoryIn {
    /// Collections of the caller's tenant, by name (1–10; may be empty with `remember`).
    #[schema(max_items = 10)]
    #[serde(default)]
    pub collections: Vec<String>,
    /// Remember this exchange in the user's conversation memory, and recall the user's
    /// earlier turns that match the question (default: false, or true for a key with the
    /// scope `memory:remember`).
    pub remember: Option<bool>,
    /// Set when `remember` came from the key's default rather than the request: then a chat
    /// whose user cannot be told, or a server without conversation memory, answers without it.
    #[serde(skip)]
    pub remember_by_default: bool,
    /// Whose memory: the key's user, or else this (or the request's `user`).
    pub user: Option<String>,
    /// Knowledge graphs of the caller's tenant whose nodes are searched too (0–5), each hit
    /// optionally expanded along relations.
    #[schema(max_items = 5)]
    #[serde(default)]
    pub graphs: Vec<GraphMemoryIn>,
    /// Passages searched for overall (1–50, default 5).
    #[schema(minimum = 1, maximum = 50)]
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub top_k: Option<usize>,
    /// The memory filter language (OpenAI's comparisons and compounds) over metadata.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// `hybrid` (the default), `vector` or `keyword`.
    pub mode: Option<MemoryMode>,
    /// Passages scoring below it are left out.
    pub min_score: Option<f32>,
    /// How many of the latest user messages the search reads (1–5, default 1): more lets a
    /// follow-up ("and when did she die?") find what the earlier question named.
    #[schema(minimum = 1, maximum = 5)]
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub query_turns: Option<usize>,
}

/// A graph searched for a chat, and how its hits grow along relations.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphMemoryIn {
    /// The graph's name.
    pub graph: String,
    /// Also place the nodes the hits reach.
    pub expand: Option<super::graphs::ExpandIn>,
}

schema::checked_body!(
    /// [`MemoryIn`] with the rule across its fields that `checked` holds: collections may be
    /// left out (or empty) only when the request remembers or searches graphs.
    MemoryBody = MemoryIn,
    [schema::one_of_holds([
        schema::present("remember", schema::true_value()),
        schema::present("collections", schema::some_items()),
        schema::present("graphs", schema::some_items()),
    ])]
);

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    Hybrid,
    Vector,
    Keyword,
}

/// An Open WebUI attachment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AttachedFileIn {
    /// `collection` (the only kind Hearth answers from).
    #[serde(rename = "type")]
    #[schema(schema_with = schema::collection_type)]
    pub kind: String,
    pub id: String,
}

/// Passages searched for when `memory.top_k` is not given.
pub const MEMORY_TOP_K: usize = 5;

impl MemoryIn {
    pub fn remembers(&self) -> bool {
        self.remember == Some(true)
    }

    /// The request's retrieval with the key's default applied: a key that remembers by
    /// default makes a chat without `memory` remember, and fills in a `remember` left out.
    pub fn with_default(memory: Option<MemoryIn>, remember_by_default: bool) -> Option<MemoryIn> {
        if !remember_by_default {
            return memory;
        }
        let mut memory = memory.unwrap_or_default();
        if memory.remember.is_none() {
            memory.remember = Some(true);
            memory.remember_by_default = true;
        }
        Some(memory)
    }

    /// Itself, once its counts are within bounds (the same on every API that takes it).
    pub fn checked(self) -> Result<MemoryIn, ApiError> {
        let fewest = if self.remembers() || !self.graphs.is_empty() {
            0
        } else {
            1
        };
        if !(fewest..=10).contains(&self.collections.len()) {
            return Err(ApiError::bad_request(
                "memory.collections must name 1 to 10 collections (or none, with \
                 memory.remember or memory.graphs)",
            )
            .with_param("memory.collections"));
        }
        if !(1..=5).contains(&self.query_turns.unwrap_or(1)) {
            return Err(
                ApiError::bad_request("memory.query_turns must be between 1 and 5")
                    .with_param("memory.query_turns"),
            );
        }
        if self.graphs.len() > 5 {
            return Err(
                ApiError::bad_request("memory.graphs names at most 5 graphs")
                    .with_param("memory.graphs"),
            );
        }
        if !(1..=50).contains(&self.top_k.unwrap_or(MEMORY_TOP_K)) {
            return Err(
                ApiError::bad_request("memory.top_k must be between 1 and 50")
                    .with_param("memory.top_k"),
            );
        }
        Ok(self)
    }
}

impl ChatCompletionRequest {
    /// The request's retrieval (`memory`, and Open WebUI's collection `files`), if it asks
    /// for any.
    pub fn memory(&self) -> Result<Option<MemoryIn>, ApiError> {
        let mut memory = self.memory.clone();
        for (index, file) in self.files.iter().flatten().enumerate() {
            if file.kind != "collection" {
                return Err(ApiError::bad_request(format!(
                    "files[{index}].type {:?} is not supported; attach a \"collection\"",
                    file.kind
                ))
                .with_param(format!("files[{index}].type")));
            }
            memory
                .get_or_insert_with(MemoryIn::default)
                .collections
                .push(file.id.clone());
        }
        memory.map(MemoryIn::checked).transpose()
    }

    /// Each message's text (what the conversation takes of the context).
    pub fn message_texts(&self) -> Vec<String> {
        self.messages
            .iter()
            .map(|message| match &message.content {
                None => String::new(),
                Some(MessageContent::Text(text)) => text.clone(),
                Some(MessageContent::Parts(parts)) => parts
                    .iter()
                    .filter_map(|part| part.text.as_deref())
                    .collect(),
            })
            .collect()
    }

    /// The last `count` user turns' texts, oldest first (what `memory.query_turns` searches).
    pub fn recent_user_texts(&self, count: usize) -> Vec<String> {
        let mut texts: Vec<String> = self
            .messages
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, message)| message.role == "user")
            .filter_map(|(index, message)| match message.to_turn(index) {
                Ok(Turn::User(text)) => Some(text),
                _ => None,
            })
            .take(count)
            .collect();
        texts.reverse();
        texts
    }
}

/// A passage the answer cites: where it was placed, and its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CitationOut {
    #[serde(flatten)]
    pub placed: PlacedOut,
    /// The passage as placed in the prompt (its start, at most 500 characters).
    pub text: String,
}

/// What retrieval did for a request: every passage placed in the prompt (cited or not), the
/// search's time and the tokens its embedding read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetrievalOut {
    pub search_ms: f64,
    pub embedding_tokens: u64,
    pub placed: Vec<PlacedOut>,
}

/// A passage placed in the prompt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlacedOut {
    /// The `[n]` the passage had in the prompt.
    pub number: usize,
    /// `collection`, `graph`, or `conversation` for an earlier turn of the user's.
    pub source: &'static str,
    /// The collection, for a passage of one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The graph, for a node of one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// The document's id, the node's, or the earlier turn's.
    pub document_id: String,
    pub chunk: usize,
    pub score: f32,
}

schema::checked_body!(
    /// [`ChatCompletionRequest`] with the rules across its fields that `to_plan` checks:
    /// `top_logprobs` needs `logprobs`, a `tool_choice` other than "none" needs tools, and
    /// tools cannot be combined with a JSON `response_format` yet.
    ChatCompletionBody = ChatCompletionRequest,
    [
        schema::one_of_holds([
            schema::where_present("top_logprobs", schema::null()),
            schema::present("logprobs", schema::true_value()),
        ]),
        schema::one_of_holds([
            schema::where_present(
                "tool_choice",
                schema::one_of_holds([schema::null(), schema::strings_of(&["none"])]),
            ),
            schema::present(
                "tools",
                utoipa::openapi::schema::ArrayBuilder::new().min_items(Some(1)),
            ),
        ]),
        schema::one_of_holds([
            schema::where_present(
                "response_format",
                schema::one_of_holds([
                    schema::null(),
                    schema::present("type", schema::strings_of(&["text"])),
                ]),
            ),
            schema::where_present("tools", schema::no_items()),
            schema::present("tool_choice", schema::strings_of(&["none"])),
        ]),
    ]
);

schema::stream_event!(
    /// One event of a streamed chat completion.
    ChatCompletionEvent = ChatCompletionChunk
);

schema::stream_event!(
    /// One event of a streamed text completion.
    TextCompletionEvent = TextCompletion
);

/// Sampling fields shared by chat completions and completions, including the llama.cpp
/// extensions clients of local servers send (`top_k`, `min_p`, `repeat_penalty`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SamplingFields {
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<f32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub top_p: Option<f32>,
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub top_k: Option<u32>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub min_p: Option<f32>,
    /// The same seed and request give the same output.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub seed: Option<i64>,
    #[schema(minimum = -2.0, maximum = 2.0)]
    pub presence_penalty: Option<f32>,
    #[schema(minimum = -2.0, maximum = 2.0)]
    pub frequency_penalty: Option<f32>,
    #[schema(minimum = 0.0, maximum = 10.0)]
    pub repeat_penalty: Option<f32>,
    #[schema(schema_with = schema::logit_bias)]
    pub logit_bias: Option<BTreeMap<String, f32>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the usage of the whole request.
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessageIn {
    #[schema(schema_with = schema::openai_role)]
    pub role: String,
    pub content: Option<MessageContent>,
    /// The calls an earlier assistant message made.
    pub tool_calls: Option<Vec<ToolCallIn>>,
    /// On a `tool` message: the call it answers.
    pub tool_call_id: Option<String>,
}

/// `response_format`: free text, any JSON object, or JSON valid against a schema.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

/// OpenAI's `name` and `strict` are accepted and ignored: the schema is always enforced.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JsonSchemaFormat {
    /// The JSON schema the output follows.
    #[schema(required = true, value_type = Object)]
    pub schema: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ToolIn {
    #[serde(rename = "type")]
    #[schema(schema_with = schema::function_type)]
    pub kind: String,
    pub function: FunctionIn,
}

/// `strict` is accepted and ignored: the arguments always follow `parameters`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FunctionIn {
    /// Unique among the tools.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: String,
    pub description: Option<String>,
    /// The JSON schema of the arguments; none means an empty object.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ToolCallIn {
    pub id: Option<String>,
    pub function: FunctionCallIn,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FunctionCallIn {
    pub name: String,
    /// The arguments as a JSON text, as OpenAI sends them.
    #[schema(content_media_type = "application/json")]
    pub arguments: String,
}

/// A message's content: a text, or a list of text parts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ContentPart {
    #[serde(rename = "type")]
    #[schema(schema_with = schema::text_part_type)]
    pub kind: String,
    #[schema(required = true, nullable = false)]
    pub text: Option<String>,
}

/// A legacy text completion request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompletionRequest {
    /// A local model (`gemma3:270m`), a route alias, or `upstream/model`.
    pub model: String,
    #[schema(schema_with = schema::completion_prompt)]
    pub prompt: OneOrMany,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// Most tokens to generate per choice (default 16).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub max_tokens: Option<u32>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// llama-server's extension: never stop at an end-of-generation token, only at the token
    /// limit or a stop sequence (benchmarks, fixed-length output).
    #[serde(default)]
    pub ignore_eos: bool,
    /// Hearth's extension: `false` turns prompt-lookup speculative decoding off for this
    /// request. The output is the same either way; only the speed differs.
    pub speculation: Option<bool>,
    #[schema(minimum = 1, maximum = 16)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub n: Option<u32>,
    #[schema(schema_with = schema::openai_stop)]
    pub stop: Option<OneOrMany>,
    /// Top alternatives per token, 0 to 5 in OpenAI's legacy API.
    #[schema(maximum = 5)]
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub logprobs: Option<u32>,
    /// Start the text with the prompt.
    #[serde(default)]
    pub echo: bool,
    /// Fill-in-the-middle is not supported: only an empty suffix is accepted.
    #[schema(max_length = 0)]
    pub suffix: Option<String>,
    #[schema(schema_with = schema::keep_alive)]
    pub keep_alive: Option<serde_json::Value>,
}

/// An embeddings request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingRequest {
    /// A local embedding model, a route alias, or `upstream/model`.
    pub model: String,
    #[schema(schema_with = schema::embedding_input)]
    pub input: EmbeddingInput,
    #[schema(schema_with = schema::encoding_format)]
    pub encoding_format: Option<String>,
    /// Must be the model's own dimension count when given: vectors are not shortened.
    #[serde(default, deserialize_with = "super::integer::int32")]
    pub dimensions: Option<u32>,
    #[schema(schema_with = schema::keep_alive)]
    pub keep_alive: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
    /// Token arrays, which are refused: the embedding model has its own tokenizer.
    Tokens(
        #[expect(dead_code, reason = "only the shape matters: token input is refused")]
        Vec<serde_json::Value>,
    ),
}

// ---------------------------------------------------------------- conversion

/// The engine request of one choice, and how many choices to run.
pub struct GenerationPlan {
    pub request: GenerationRequest,
    pub choices: usize,
    pub include_usage: bool,
    /// Set when the model may call tools: its output is then a tool reply to parse.
    pub tools: Option<ToolUse>,
}

impl SamplingFields {
    /// OpenAI's ranges; `param` names the field at fault.
    pub fn to_sampling(&self) -> Result<SamplingParams, ApiError> {
        let mut sampling = SamplingParams::default();
        if let Some(temperature) = self.temperature {
            check_range("temperature", temperature, 0.0, 2.0)?;
            sampling.temperature = temperature;
        }
        if let Some(top_p) = self.top_p {
            check_range("top_p", top_p, 0.0, 1.0)?;
            sampling.top_p = top_p;
        }
        if let Some(top_k) = self.top_k {
            sampling.top_k = top_k;
        }
        if let Some(min_p) = self.min_p {
            check_range("min_p", min_p, 0.0, 1.0)?;
            sampling.min_p = min_p;
        }
        if let Some(seed) = self.seed {
            sampling.seed = Some(super::fold_seed(seed));
        }
        if let Some(penalty) = self.presence_penalty {
            check_range("presence_penalty", penalty, -2.0, 2.0)?;
            sampling.presence_penalty = penalty;
        }
        if let Some(penalty) = self.frequency_penalty {
            check_range("frequency_penalty", penalty, -2.0, 2.0)?;
            sampling.frequency_penalty = penalty;
        }
        if let Some(penalty) = self.repeat_penalty {
            check_range("repeat_penalty", penalty, 0.0, 10.0)?;
            sampling.repeat_penalty = penalty;
        }
        if let Some(biases) = &self.logit_bias {
            for (token, bias) in biases {
                let token_id: i32 = token.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "logit_bias keys must be token ids (integers as strings); got {token:?}"
                    ))
                    .with_param("logit_bias")
                })?;
                check_range("logit_bias", *bias, -100.0, 100.0)?;
                sampling.logit_bias.push((token_id, *bias));
            }
        }
        Ok(sampling)
    }
}

fn check_range(param: &str, value: f32, min: f32, max: f32) -> Result<(), ApiError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{param} must be between {min} and {max}; got {value}"
        ))
        .with_param(param))
    }
}

fn stop_sequences(stop: &Option<OneOrMany>) -> Result<Vec<String>, ApiError> {
    let stop: Vec<String> = stop
        .as_ref()
        .map(|stop| {
            stop.0
                .iter()
                .filter(|text| !text.is_empty())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if stop.len() > MAX_STOP_SEQUENCES {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_STOP_SEQUENCES} stop sequences are allowed; got {}",
            stop.len()
        ))
        .with_param("stop"));
    }
    Ok(stop)
}

fn choice_count(n: Option<u32>) -> Result<usize, ApiError> {
    match n.unwrap_or(1) as usize {
        count @ 1..=MAX_CHOICES => Ok(count),
        count => Err(ApiError::bad_request(format!(
            "n must be between 1 and {MAX_CHOICES}; got {count}"
        ))
        .with_param("n")),
    }
}

fn positive_max_tokens(param: &str, value: Option<u32>) -> Result<Option<usize>, ApiError> {
    match value {
        Some(0) => {
            Err(ApiError::bad_request(format!("{param} must be at least 1")).with_param(param))
        }
        other => Ok(other.map(|tokens| tokens as usize)),
    }
}

impl ChatCompletionRequest {
    pub fn to_plan(&self) -> Result<GenerationPlan, ApiError> {
        self.to_plan_asking(None)
    }

    /// [`to_plan`](Self::to_plan), with the last user turn's text replaced by `question`
    /// (retrieved sources before the question).
    pub fn to_plan_asking(&self, question: Option<&str>) -> Result<GenerationPlan, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::bad_request("messages must not be empty").with_param("messages"));
        }
        let tools = self.tool_use()?;
        let constraint = self.constraint()?;
        if tools.is_some() && constraint.is_some() {
            return Err(ApiError::bad_request(
                "response_format cannot be combined with tools yet; send one or the other",
            )
            .with_param("response_format"));
        }
        let mut turns = self
            .messages
            .iter()
            .enumerate()
            .map(|(index, message)| message.to_turn(index))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(question) = question
            && let Some(last_user) = turns
                .iter_mut()
                .rev()
                .find(|turn| matches!(turn, Turn::User(_)))
        {
            *last_user = Turn::User(question.to_string());
        }
        let messages = tools::chat_messages(&turns, tools.as_ref());

        let max_tokens = match self.max_completion_tokens {
            Some(_) => positive_max_tokens("max_completion_tokens", self.max_completion_tokens)?,
            None => positive_max_tokens("max_tokens", self.max_tokens)?,
        };
        let top_logprobs = match (self.logprobs, self.top_logprobs) {
            (false, Some(_)) => {
                return Err(
                    ApiError::bad_request("top_logprobs requires logprobs to be true")
                        .with_param("top_logprobs"),
                );
            }
            (true, Some(top)) if top as usize > MAX_TOP_LOGPROBS => {
                return Err(ApiError::bad_request(format!(
                    "top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}"
                ))
                .with_param("top_logprobs"));
            }
            (true, top) => Some(top.unwrap_or(0) as usize),
            (false, None) => None,
        };
        let mut request = GenerationRequest::new(Prompt::Chat(messages))
            .with_sampling(self.sampling.to_sampling()?)
            .with_stop(stop_sequences(&self.stop)?)
            .with_ignore_eos(self.ignore_eos)
            .with_speculation(self.speculation.unwrap_or(true));
        request.max_tokens = max_tokens;
        request.logprobs = top_logprobs;
        request.constraint = match &tools {
            Some(tools) => Some(tools.constraint()),
            None => constraint,
        };
        Ok(GenerationPlan {
            request,
            choices: choice_count(self.n)?,
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|options| options.include_usage),
            tools,
        })
    }

    fn constraint(&self) -> Result<Option<Constraint>, ApiError> {
        Ok(match &self.response_format {
            None | Some(ResponseFormat::Text) => None,
            Some(ResponseFormat::JsonObject) => Some(Constraint::JsonObject),
            Some(ResponseFormat::JsonSchema { json_schema }) => match &json_schema.schema {
                Some(schema) => Some(Constraint::JsonSchema(schema.clone())),
                None => {
                    return Err(ApiError::bad_request(
                        "response_format.json_schema.schema is required",
                    )
                    .with_param("response_format.json_schema.schema"));
                }
            },
        })
    }

    /// The tools the model may call, or `None` when it may not call any.
    fn tool_use(&self) -> Result<Option<ToolUse>, ApiError> {
        let declared = self.tools.as_deref().unwrap_or_default();
        let choice = match &self.tool_choice {
            None if declared.is_empty() => return Ok(None),
            None => ToolChoice::Auto,
            Some(serde_json::Value::String(choice)) => match choice.as_str() {
                "none" => return Ok(None),
                "auto" => ToolChoice::Auto,
                "required" => ToolChoice::Required,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "tool_choice {other:?} is not one of none, auto, required or a function"
                    ))
                    .with_param("tool_choice"));
                }
            },
            Some(object) => match object
                .pointer("/function/name")
                .and_then(|name| name.as_str())
            {
                Some(name) => ToolChoice::Function(name.to_owned()),
                None => {
                    return Err(ApiError::bad_request(
                        "tool_choice must be \"none\", \"auto\", \"required\" or                          {\"type\": \"function\", \"function\": {\"name\": ...}}",
                    )
                    .with_param("tool_choice"));
                }
            },
        };
        let mut definitions = Vec::with_capacity(declared.len());
        for (index, tool) in declared.iter().enumerate() {
            if tool.kind != "function" {
                return Err(ApiError::bad_request(format!(
                    "tools[{index}].type {:?} is not supported; use \"function\"",
                    tool.kind
                ))
                .with_param(format!("tools[{index}].type")));
            }
            definitions.push(ToolDefinition {
                name: tool.function.name.clone(),
                description: tool.function.description.clone(),
                // A function without parameters takes an empty object.
                parameters: tool
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            });
        }
        let tool_use = ToolUse {
            tools: definitions,
            choice,
            // One call per reply unless the client asks for more, as llama.cpp's server does:
            // small models asked for a list of calls tend to repeat the same call until
            // max_tokens.
            parallel: self.parallel_tool_calls.unwrap_or(false),
        };
        tool_use
            .validate()
            .map_err(|error| ApiError::bad_request(error.message).with_param(error.param))?;
        Ok(Some(tool_use))
    }
}

impl ChatMessageIn {
    fn to_turn(&self, index: usize) -> Result<Turn, ApiError> {
        let content = match &self.content {
            None => String::new(),
            Some(MessageContent::Text(text)) => text.clone(),
            Some(MessageContent::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(part_text)) => text.push_str(part_text),
                        (kind, _) => {
                            return Err(ApiError::bad_request(format!(
                                "content parts of type {kind:?} are not supported; send text"
                            ))
                            .with_param(format!("messages[{index}].content")));
                        }
                    }
                }
                text
            }
        };
        Ok(match self.role.as_str() {
            "system" | "developer" => Turn::System(content),
            "user" => Turn::User(content),
            "assistant" => {
                let mut tool_calls = Vec::new();
                for (call_index, call) in self.tool_calls.iter().flatten().enumerate() {
                    let arguments =
                        serde_json::from_str(&call.function.arguments).map_err(|error| {
                            ApiError::bad_request(format!(
                                "tool call arguments are not JSON: {error}"
                            ))
                            .with_param(format!(
                                "messages[{index}].tool_calls[{call_index}].function.arguments"
                            ))
                        })?;
                    tool_calls.push(ToolCall {
                        id: call.id.clone().unwrap_or_default(),
                        name: call.function.name.clone(),
                        arguments,
                    });
                }
                Turn::Assistant {
                    content,
                    tool_calls,
                }
            }
            "tool" | "function" => Turn::ToolResult {
                call_id: self.tool_call_id.clone(),
                name: None,
                content,
            },
            other => {
                return Err(ApiError::bad_request(format!(
                    "messages[{index}].role {other:?} is not supported; use system, developer, \
                     user, assistant or tool"
                ))
                .with_param(format!("messages[{index}].role")));
            }
        })
    }
}

impl CompletionRequest {
    pub fn to_plan(&self) -> Result<GenerationPlan, ApiError> {
        if self
            .suffix
            .as_deref()
            .is_some_and(|suffix| !suffix.is_empty())
        {
            return Err(
                ApiError::bad_request("suffix (fill-in-the-middle) is not supported yet")
                    .with_param("suffix"),
            );
        }
        let prompt = match self.prompt.0.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "prompt must be one string; send one request per prompt",
                )
                .with_param("prompt"));
            }
        };
        if prompt.is_empty() {
            return Err(ApiError::bad_request("prompt must not be empty").with_param("prompt"));
        }
        let logprobs = match self.logprobs {
            Some(top) if top > 5 => {
                return Err(ApiError::bad_request("logprobs must be between 0 and 5")
                    .with_param("logprobs"));
            }
            other => other.map(|top| top as usize),
        };
        let mut request = GenerationRequest::new(Prompt::Text(prompt))
            .with_sampling(self.sampling.to_sampling()?)
            .with_stop(stop_sequences(&self.stop)?)
            .with_ignore_eos(self.ignore_eos)
            .with_speculation(self.speculation.unwrap_or(true));
        // OpenAI's legacy completions default to 16 tokens.
        request.max_tokens = positive_max_tokens("max_tokens", self.max_tokens)?.or(Some(16));
        request.logprobs = logprobs;
        Ok(GenerationPlan {
            request,
            choices: choice_count(self.n)?,
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|options| options.include_usage),
            tools: None,
        })
    }
}

/// How embedding vectors are written in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingEncoding {
    /// A JSON array of numbers.
    Float,
    /// The little-endian f32 bytes in base64: what the official OpenAI clients ask for by
    /// default, since it is a quarter of the size and exact.
    Base64,
}

impl EmbeddingRequest {
    pub fn encoding(&self) -> Result<EmbeddingEncoding, ApiError> {
        match self.encoding_format.as_deref() {
            None | Some("float") => Ok(EmbeddingEncoding::Float),
            Some("base64") => Ok(EmbeddingEncoding::Base64),
            Some(format) => Err(ApiError::bad_request(format!(
                "encoding_format {format:?} is not supported; use \"float\" or \"base64\""
            ))
            .with_param("encoding_format")),
        }
    }

    pub fn inputs(&self) -> Result<Vec<String>, ApiError> {
        let inputs = match &self.input {
            EmbeddingInput::One(text) => vec![text.clone()],
            EmbeddingInput::Many(texts) => texts.clone(),
            EmbeddingInput::Tokens(_) => {
                return Err(ApiError::bad_request(
                    "token-array input is not supported; send strings",
                )
                .with_param("input"));
            }
        };
        if inputs.is_empty() {
            return Err(ApiError::bad_request("input must not be empty").with_param("input"));
        }
        if inputs.len() > 2048 {
            return Err(
                ApiError::bad_request("at most 2048 inputs per request").with_param("input")
            );
        }
        Ok(inputs)
    }
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: UsageOut,
    pub system_fingerprint: String,
    /// With `memory`: the placed passages the answer cites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<CitationOut>>,
    /// With `memory`: what retrieval placed in the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalOut>,
    /// With `plugins`: the plugin tools the server ran, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_calls: Option<Vec<super::plugins::PluginCallOut>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatChoice {
    pub index: usize,
    pub message: AssistantMessage,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    pub role: &'static str,
    /// `null` when the reply is tool calls, as OpenAI sends it.
    pub content: Option<String>,
    pub refusal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallOut>>,
}

#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct ToolCallOut {
    /// Present in streamed deltas, which say which call a fragment belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCallOut,
}

#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct FunctionCallOut {
    pub name: String,
    /// The arguments as a JSON text, as OpenAI returns them.
    pub arguments: String,
}

impl ToolCallOut {
    pub fn from_call(call: &ToolCall, index: Option<usize>) -> ToolCallOut {
        ToolCallOut {
            index,
            id: call.id.clone(),
            kind: "function",
            function: FunctionCallOut {
                name: call.name.clone(),
                arguments: call.arguments.to_string(),
            },
        }
    }
}

#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct ChatLogprobs {
    pub content: Vec<TokenLogprobOut>,
}

#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct TokenLogprobOut {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprobOut>,
}

#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct TopLogprobOut {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Serialize, Clone, Copy, Default, ToSchema)]
pub struct UsageOut {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptTokensDetails,
}

#[derive(Debug, Serialize, Clone, Copy, Default, ToSchema)]
pub struct PromptTokensDetails {
    pub cached_tokens: usize,
}

impl UsageOut {
    pub fn add(&mut self, usage: hearth_engine::Usage) {
        self.completion_tokens += usage.completion_tokens;
        // Every choice reads the same prompt; OpenAI counts it once.
        self.prompt_tokens = usage.prompt_tokens;
        self.prompt_tokens_details.cached_tokens = self
            .prompt_tokens_details
            .cached_tokens
            .max(usage.cached_prompt_tokens);
        self.total_tokens = self.prompt_tokens + self.completion_tokens;
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
    /// With `memory`: on a choice's last chunk, the placed passages its answer cites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<CitationOut>>,
    /// With `memory`: on a choice's last chunk, what retrieval placed in the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkChoice {
    pub index: usize,
    pub delta: Delta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Serialize, Default, ToSchema)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallOut>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TextCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<TextChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
    pub system_fingerprint: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TextChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<LegacyLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// The legacy completions log-probability shape.
#[derive(Debug, Serialize, Default, Clone, ToSchema)]
pub struct LegacyLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<f32>,
    pub top_logprobs: Vec<BTreeMap<String, f32>>,
    pub text_offset: Vec<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingList {
    pub object: &'static str,
    pub data: Vec<EmbeddingOut>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingOut {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingVector,
}

/// One embedding as `encoding_format` asked: numbers, or base64 of little-endian f32 bytes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

impl EmbeddingVector {
    pub fn encode(vector: Vec<f32>, encoding: EmbeddingEncoding) -> EmbeddingVector {
        match encoding {
            EmbeddingEncoding::Float => EmbeddingVector::Float(vector),
            EmbeddingEncoding::Base64 => {
                use base64::Engine as _;
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect();
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelObject {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

pub fn finish_reason(reason: hearth_engine::FinishReason) -> &'static str {
    match reason {
        hearth_engine::FinishReason::Stop => "stop",
        hearth_engine::FinishReason::Length => "length",
    }
}

pub fn fingerprint() -> String {
    format!("hearth-{}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    //! The response shapes clients parse, pinned as snapshots: a change to a field name, its
    //! order or its null-ness shows up as a diff to review.

    use super::*;

    fn usage() -> UsageOut {
        let mut usage = UsageOut::default();
        usage.add(hearth_engine::Usage {
            prompt_tokens: 12,
            completion_tokens: 5,
            cached_prompt_tokens: 8,
        });
        usage
    }

    #[test]
    fn a_follow_up_searches_the_latest_user_messages_oldest_first() {
        let request: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Who keeps the Zorvath lighthouse?"},
                {"role": "assistant", "content": "Miriel Quandt."},
                {"role": "user", "content": [{"type": "text", "text": "Since when?"}]}
            ],
            "memory": {"collections": ["almanac"], "query_turns": 2}
        }))
        .expect("request");
        assert_eq!(request.recent_user_texts(1), ["Since when?"]);
        assert_eq!(
            request.recent_user_texts(2),
            ["Who keeps the Zorvath lighthouse?", "Since when?"]
        );
        assert_eq!(request.recent_user_texts(5).len(), 2);
        let memory = request.memory().expect("memory").expect("some");
        assert_eq!(memory.query_turns, Some(2));
        let mut too_many = memory.clone();
        too_many.query_turns = Some(6);
        let refused = too_many.checked().expect_err("6 turns");
        assert_eq!(refused.param.as_deref(), Some("memory.query_turns"));
    }

    #[test]
    fn a_chat_completion_with_text() {
        let completion = ChatCompletion {
            id: "chatcmpl-1".to_owned(),
            object: "chat.completion",
            created: 1_700_000_000,
            model: "gemma3:270m".to_owned(),
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: Some("3, 4, 5".to_owned()),
                    refusal: None,
                    tool_calls: None,
                },
                logprobs: Some(ChatLogprobs {
                    content: vec![TokenLogprobOut {
                        token: "3".to_owned(),
                        logprob: -0.25,
                        bytes: b"3".to_vec(),
                        top_logprobs: vec![TopLogprobOut {
                            token: "3".to_owned(),
                            logprob: -0.25,
                            bytes: b"3".to_vec(),
                        }],
                    }],
                }),
                finish_reason: "stop",
            }],
            usage: usage(),
            system_fingerprint: "hearth-0.1.0".to_owned(),
            citations: None,
            retrieval: None,
            plugin_calls: None,
        };
        insta::assert_json_snapshot!(completion);
    }

    #[test]
    fn a_chat_completion_with_a_tool_call() {
        let call = ToolCall {
            id: "call_1".to_owned(),
            name: "get_weather".to_owned(),
            arguments: serde_json::json!({"city": "Paris", "unit": "celsius"}),
        };
        let completion = ChatCompletion {
            id: "chatcmpl-2".to_owned(),
            object: "chat.completion",
            created: 1_700_000_000,
            model: "gemma3:270m".to_owned(),
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: None,
                    refusal: None,
                    tool_calls: Some(vec![ToolCallOut::from_call(&call, None)]),
                },
                logprobs: None,
                finish_reason: "tool_calls",
            }],
            usage: usage(),
            system_fingerprint: "hearth-0.1.0".to_owned(),
            citations: None,
            retrieval: None,
            plugin_calls: None,
        };
        insta::assert_json_snapshot!(completion);
    }

    #[test]
    fn stream_chunks_for_content_a_tool_call_and_usage() {
        let chunk = |choices, usage| ChatCompletionChunk {
            id: "chatcmpl-3".to_owned(),
            object: "chat.completion.chunk",
            created: 1_700_000_000,
            model: "gemma3:270m".to_owned(),
            system_fingerprint: "hearth-0.1.0".to_owned(),
            choices,
            usage,
            citations: None,
            retrieval: None,
        };
        let call = ToolCall {
            id: "call_2".to_owned(),
            name: "get_weather".to_owned(),
            arguments: serde_json::json!({"city": "Oslo"}),
        };
        let chunks = vec![
            chunk(
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                        tool_calls: None,
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            ),
            chunk(
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        tool_calls: Some(vec![ToolCallOut::from_call(&call, Some(0))]),
                        ..Delta::default()
                    },
                    logprobs: None,
                    finish_reason: None,
                }],
                None,
            ),
            chunk(
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta::default(),
                    logprobs: None,
                    finish_reason: Some("tool_calls"),
                }],
                None,
            ),
            chunk(Vec::new(), Some(usage())),
        ];
        insta::assert_json_snapshot!(chunks);
    }

    #[test]
    fn a_text_completion_with_legacy_logprobs() {
        let completion = TextCompletion {
            id: "cmpl-1".to_owned(),
            object: "text_completion",
            created: 1_700_000_000,
            model: "gemma3:270m".to_owned(),
            choices: vec![TextChoice {
                index: 0,
                text: " 7, 8".to_owned(),
                logprobs: Some(LegacyLogprobs {
                    tokens: vec![" 7".to_owned()],
                    token_logprobs: vec![-0.5],
                    top_logprobs: vec![BTreeMap::from([(" 7".to_owned(), -0.5)])],
                    text_offset: vec![0],
                }),
                finish_reason: Some("length"),
            }],
            usage: Some(usage()),
            system_fingerprint: "hearth-0.1.0".to_owned(),
        };
        insta::assert_json_snapshot!(completion);
    }

    #[test]
    fn base64_embeddings_are_little_endian_f32_bytes() {
        // What the OpenAI Python client decodes with numpy.frombuffer(..., dtype="float32").
        let encoded = EmbeddingVector::encode(vec![1.0, -2.5], EmbeddingEncoding::Base64);
        assert_eq!(
            serde_json::to_value(encoded).expect("json"),
            serde_json::json!("AACAPwAAIMA=")
        );
        let plain = EmbeddingVector::encode(vec![1.0, -2.5], EmbeddingEncoding::Float);
        assert_eq!(
            serde_json::to_value(plain).expect("json"),
            serde_json::json!([1.0, -2.5])
        );
    }
}
