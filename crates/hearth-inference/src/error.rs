//! Errors of the inference service; the server maps each to an HTTP status in one place.

use hearth_embed::EmbedError;
use hearth_engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(
        "model `{0}` not found; list the available models with GET /v1/models or `hearth models list`"
    )]
    ModelNotFound(String),

    #[error("model `{name}` is {actual} model and cannot serve {expected} requests")]
    WrongKind {
        name: String,
        expected: &'static str,
        actual: &'static str,
    },

    #[error(
        "model `{name}` needs {needed_bytes} bytes, more than the whole memory budget of \
         {budget_bytes} bytes; raise models.memory_budget_bytes"
    )]
    OverBudget {
        name: String,
        needed_bytes: u64,
        budget_bytes: u64,
    },

    #[error("model `{name}` failed to load: {reason}")]
    LoadFailed { name: String, reason: String },

    #[error("the model registry failed: {0}")]
    Registry(String),

    #[error(transparent)]
    Engine(#[from] EngineError),

    #[error(transparent)]
    Embed(#[from] EmbedError),
}
