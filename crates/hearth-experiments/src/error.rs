//! What the experiments service answers when it cannot do what was asked.

use hearth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A definition or request field is wrong; `field` names it (`variants[1].weight`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no experiment or exposure: {0}")]
    NotFound(String),
    /// The change does not fit the experiment's state, or another experiment's.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExperimentError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ExperimentError {
        ExperimentError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ExperimentError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}
