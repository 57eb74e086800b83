//! What the prompts service answers when it cannot do what was asked.

use hearth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// A definition or request field is wrong; `field` names it (`messages[1].content`,
    /// `variables.question`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no prompt named {0}")]
    NotFound(String),
    /// The prompt exists but has no such version or label.
    #[error("prompt {prompt} has no {what}")]
    NoSuchVersion { prompt: String, what: String },
    #[error("{0}")]
    Limit(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PromptError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> PromptError {
        PromptError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The request field at fault, for invalid definitions and variables.
    pub fn field(&self) -> Option<&str> {
        match self {
            PromptError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}
