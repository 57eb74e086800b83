//! What the jobs service answers when it cannot do what was asked.

use hearth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A definition or request field is wrong; `field` names it (`schedule`, `after[0]`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no job named {0}")]
    NotFound(String),
    #[error("no run {0}")]
    RunNotFound(String),
    /// The change would break another job, or the job is defined elsewhere.
    #[error("{0}")]
    Conflict(String),
    #[error("the tenant has {0} jobs, the most it may have; remove one first")]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the job runner failed: {0}")]
    Runtime(String),
}

impl JobError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> JobError {
        JobError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The request field at fault, for invalid definitions.
    pub fn field(&self) -> Option<&str> {
        match self {
            JobError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}
