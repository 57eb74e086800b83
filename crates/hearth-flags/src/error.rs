//! What the flags service answers when it cannot do what was asked.

use hearth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// A definition field is wrong; `field` names it (`rules[2].when[0].values`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no flag {0}")]
    NotFound(String),
    /// The flag exists already, or is the configuration's.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Limit(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FlagError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> FlagError {
        FlagError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            FlagError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}
