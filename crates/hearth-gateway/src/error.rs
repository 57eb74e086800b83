//! The gateway's one error type; the server maps each variant to HTTP in one place.

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The caller may not do this (a member managing keys, a tenant admin reaching another
    /// tenant).
    #[error("{0}")]
    Forbidden(String),

    #[error("{what} not found")]
    NotFound { what: String },

    /// The request names a field with a bad value.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },

    #[error("{0}")]
    Conflict(String),

    #[error("storage failed: {0}")]
    Store(#[from] hearth_store::StoreError),
}

impl GatewayError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> GatewayError {
        GatewayError::Invalid {
            field,
            message: message.into(),
        }
    }
}
