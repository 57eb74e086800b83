//! The one error type of the engine crate. The server maps each variant to an HTTP status in
//! exactly one place; the messages here say what went wrong and, where it helps, what to do.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or generating with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The model file does not exist or cannot be read.
    #[error("model file {path} not found: {reason}")]
    ModelNotFound { path: PathBuf, reason: String },

    /// llama.cpp could not load the file as a GGUF model.
    #[error("failed to load model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },

    /// llama.cpp could not create an inference context (usually: not enough memory for the KV cache).
    #[error("failed to create an inference context: {reason}")]
    ContextCreation { reason: String },

    /// The engine configuration is inconsistent; `field` names the setting to fix.
    #[error("invalid engine configuration `{field}`: {reason}")]
    InvalidConfig { field: &'static str, reason: String },

    /// The request itself is malformed (empty prompt, a NUL byte in a message, a bad parameter).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The prompt plus the requested completion does not fit in one sequence's context.
    #[error(
        "prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds the context \
         window of {n_ctx} tokens per sequence; shorten the prompt or lower max_tokens"
    )]
    ContextOverflow {
        prompt_tokens: usize,
        max_tokens: usize,
        n_ctx: usize,
    },

    /// The bounded request queue is full; the caller should retry later (HTTP 429).
    #[error("the request queue for this model is full ({capacity} waiting); retry later")]
    QueueFull { capacity: usize },

    /// The model's scheduler thread has stopped (the model was unloaded or crashed).
    #[error("the model is not running; it was unloaded or its scheduler stopped")]
    SchedulerStopped,

    /// The requested output constraint (JSON schema, grammar) cannot be compiled.
    #[error("the output format cannot be enforced: {reason}")]
    InvalidGrammar { reason: String },

    /// The chat messages could not be turned into a prompt.
    #[error("failed to apply the chat template: {0}")]
    ChatTemplate(String),

    /// llama.cpp failed while decoding a batch.
    #[error("inference failed: {0}")]
    Decode(String),
}
