//! OpenAI's request and response shapes for chat completions, completions, embeddings and
//! models, and their conversion to engine requests. Validation names the field at fault the
//! way OpenAI does (`param`).

use std::collections::BTreeMap;

use hearth_engine::{
    ChatMessage, ChatRole, GenerationRequest, MAX_TOP_LOGPROBS, Prompt, SamplingParams,
};
use serde::{Deserialize, Serialize};

use super::OneOrMany;
use crate::error::ApiError;

/// Most stop sequences a request may give.
const MAX_STOP_SEQUENCES: usize = 16;
/// Most choices one request may ask for.
const MAX_CHOICES: usize = 16;

// ---------------------------------------------------------------- requests

#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<ChatMessageIn>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    pub n: Option<u32>,
    pub stop: Option<OneOrMany>,
    #[serde(default)]
    pub logprobs: bool,
    pub top_logprobs: Option<u32>,
    pub response_format: Option<serde_json::Value>,
    pub tools: Option<Vec<serde_json::Value>>,
    pub tool_choice: Option<serde_json::Value>,
    /// Ollama-style keep-alive, accepted here too ("5m", seconds, 0, -1).
    pub keep_alive: Option<serde_json::Value>,
}

/// Sampling fields shared by chat completions and completions, including the llama.cpp
/// extensions clients of local servers send (`top_k`, `min_p`, `repeat_penalty`).
#[derive(Debug, Default, Deserialize)]
pub struct SamplingFields {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub min_p: Option<f32>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub logit_bias: Option<BTreeMap<String, f32>>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChatMessageIn {
    pub role: String,
    pub content: Option<MessageContent>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: OneOrMany,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u32>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    pub n: Option<u32>,
    pub stop: Option<OneOrMany>,
    /// Top alternatives per token, 0 to 5 in OpenAI's legacy API.
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub echo: bool,
    pub suffix: Option<String>,
    pub keep_alive: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    pub encoding_format: Option<String>,
    pub dimensions: Option<u32>,
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
        if let Some(tools) = &self.tools {
            let choice_is_none = self
                .tool_choice
                .as_ref()
                .is_some_and(|choice| choice == "none");
            if !tools.is_empty() && !choice_is_none {
                return Err(ApiError::bad_request(
                    "tool calling is not supported by Hearth yet; send the request without \
                     `tools` (or with tool_choice \"none\")",
                )
                .with_param("tools"));
            }
        }
        if let Some(format) = &self.response_format {
            let kind = format
                .get("type")
                .and_then(|kind| kind.as_str())
                .unwrap_or("");
            if kind != "text" {
                return Err(ApiError::bad_request(format!(
                    "response_format type {kind:?} is not supported by Hearth yet; use \"text\""
                ))
                .with_param("response_format"));
            }
        }
        if self.messages.is_empty() {
            return Err(ApiError::bad_request("messages must not be empty").with_param("messages"));
        }
        let mut messages = Vec::with_capacity(self.messages.len());
        for (index, message) in self.messages.iter().enumerate() {
            let role = match message.role.as_str() {
                "system" | "developer" => ChatRole::System,
                "user" => ChatRole::User,
                "assistant" => ChatRole::Assistant,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "messages[{index}].role {other:?} is not supported; use system, \
                         developer, user or assistant"
                    ))
                    .with_param(format!("messages[{index}].role")));
                }
            };
            let content = match &message.content {
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
            messages.push(ChatMessage::new(role, content));
        }

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
            .with_stop(stop_sequences(&self.stop)?);
        request.max_tokens = max_tokens;
        request.logprobs = top_logprobs;
        Ok(GenerationPlan {
            request,
            choices: choice_count(self.n)?,
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|options| options.include_usage),
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
            .with_stop(stop_sequences(&self.stop)?);
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

#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: UsageOut,
    pub system_fingerprint: String,
}

#[derive(Debug, Serialize)]
pub struct ChatChoice {
    pub index: usize,
    pub message: AssistantMessage,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
    pub refusal: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct ChatLogprobs {
    pub content: Vec<TokenLogprobOut>,
}

#[derive(Debug, Serialize, Clone)]
pub struct TokenLogprobOut {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprobOut>,
}

#[derive(Debug, Serialize, Clone)]
pub struct TopLogprobOut {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Serialize, Clone, Copy, Default)]
pub struct UsageOut {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptTokensDetails,
}

#[derive(Debug, Serialize, Clone, Copy, Default)]
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

#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    pub index: usize,
    pub delta: Delta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Serialize, Default)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct TextChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<LegacyLogprobs>,
    pub finish_reason: Option<&'static str>,
}

/// The legacy completions log-probability shape.
#[derive(Debug, Serialize, Default, Clone)]
pub struct LegacyLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<f32>,
    pub top_logprobs: Vec<BTreeMap<String, f32>>,
    pub text_offset: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingList {
    pub object: &'static str,
    pub data: Vec<EmbeddingOut>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingOut {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingVector,
}

/// One embedding as `encoding_format` asked: numbers, or base64 of little-endian f32 bytes.
#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}

#[derive(Debug, Serialize)]
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
    use super::*;

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
