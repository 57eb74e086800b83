//! The one place where errors become HTTP responses, in OpenAI's shape:
//! `{"error": {"message", "type", "param", "code"}}`. Clients written for OpenAI parse it, and
//! the `code` is a stable string a program can match on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub param: Option<String>,
    pub code: &'static str,
    /// Seconds until a retry may succeed, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong and what to do about it.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// A stable machine-readable code such as `not_found`.
    pub code: &'static str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            param: None,
            code,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!(
                "request body exceeds the limit of {limit} bytes; send a smaller body or raise \
                 server.max_body_bytes"
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// OpenAI's error `type` for this status.
    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            status if status.is_server_error() => "server_error",
            _ => "invalid_request_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind(),
                message: self.message,
                param: self.param,
                code: self.code,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl From<hearth_inference::InferenceError> for ApiError {
    fn from(error: hearth_inference::InferenceError) -> ApiError {
        use hearth_inference::InferenceError as Error;
        let message = error.to_string();
        match error {
            Error::ModelNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "model_not_found", message).with_param("model")
            }
            Error::WrongKind { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "wrong_model_kind", message)
                    .with_param("model")
            }
            Error::Registry(_) => ApiError::internal(message),
            Error::OverBudget { .. } | Error::LoadFailed { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                message,
            ),
            Error::Engine(engine) => ApiError::from(engine),
            Error::Embed(embed) => ApiError::from(embed),
        }
    }
}

impl From<hearth_memory::MemoryError> for ApiError {
    fn from(error: hearth_memory::MemoryError) -> ApiError {
        use hearth_memory::{EmbedFailureKind, MemoryError as Error};
        let message = error.to_string();
        match error {
            Error::Invalid { field, .. } => ApiError::bad_request(message).with_param(field),
            Error::InvalidParameter { name, .. } => ApiError::bad_request(message).with_param(name),
            Error::InvalidFilter { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_filter", message)
                    .with_param("filter")
            }
            Error::DimensionMismatch { .. } | Error::NonFiniteValue { .. } | Error::ZeroVector => {
                ApiError::bad_request(message).with_param("vector")
            }
            Error::TooLarge { field, .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", message)
                    .with_param(field)
            }
            Error::NotFound { .. } => ApiError::not_found(message),
            Error::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            Error::LimitReached { field, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "limit_reached", message).with_param(field)
            }
            Error::Embedding { field, failure } => match failure.kind {
                EmbedFailureKind::UnknownModel => {
                    ApiError::new(StatusCode::BAD_REQUEST, "model_not_found", message)
                        .with_param(field)
                }
                EmbedFailureKind::InvalidInput => ApiError::bad_request(message).with_param(field),
                EmbedFailureKind::Busy => {
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
                        .with_retry_after(1)
                }
                EmbedFailureKind::Unavailable => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "model_unavailable",
                    message,
                ),
            },
            Error::CapacityExhausted { .. }
            | Error::SnapshotIo { .. }
            | Error::FileIo { .. }
            | Error::SnapshotCorrupt { .. }
            | Error::StoredData(_)
            | Error::Store(_) => ApiError::internal(message),
        }
    }
}

impl From<hearth_engine::EngineError> for ApiError {
    fn from(error: hearth_engine::EngineError) -> ApiError {
        use hearth_engine::EngineError as Error;
        let message = error.to_string();
        match error {
            Error::InvalidRequest(_) | Error::ChatTemplate(_) => ApiError::bad_request(message),
            // Only OpenAI's field is named here; the Ollama handlers rename it to `format`.
            Error::InvalidGrammar { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_response_format", message)
                    .with_param("response_format")
            }
            Error::ContextOverflow { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "context_length_exceeded", message)
                    .with_param("messages")
            }
            Error::QueueFull { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
                    .with_retry_after(1)
            }
            Error::SchedulerStopped | Error::Decode(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                format!("{message}; the model is being reloaded, retry shortly"),
            )
            .with_retry_after(1),
            Error::ModelNotFound { .. }
            | Error::ModelLoad { .. }
            | Error::ContextCreation { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                message,
            ),
            Error::InvalidConfig { .. } => ApiError::internal(message),
        }
    }
}

impl From<hearth_embed::EmbedError> for ApiError {
    fn from(error: hearth_embed::EmbedError) -> ApiError {
        use hearth_embed::EmbedError as Error;
        let message = error.to_string();
        match error {
            Error::QueueFull { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
                    .with_retry_after(1)
            }
            Error::Tokenization { .. } => ApiError::bad_request(message).with_param("input"),
            _ => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_unavailable",
                message,
            ),
        }
    }
}

impl From<hearth_models::ModelsError> for ApiError {
    fn from(error: hearth_models::ModelsError) -> ApiError {
        use hearth_models::ModelsError as Error;
        let message = error.to_string();
        match error {
            Error::InvalidReference { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_model_name", message)
                    .with_param("model")
            }
            Error::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "model_not_found", message).with_param("model")
            }
            Error::NoPreviousVersion(_) => ApiError::bad_request(message).with_param("model"),
            Error::InvalidSource { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_source", message)
                    .with_param("model")
            }
            // The library's message names the CLI flag; an HTTP client sets a field instead.
            Error::CannotDeriveName { source_text } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_model_name",
                format!(
                    "cannot derive a model name from {source_text:?}; give one in name (NAME:TAG)"
                ),
            )
            .with_param("name"),
            Error::InvalidSha256 { .. } => ApiError::bad_request(message).with_param("sha256"),
            Error::ChecksumMismatch { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "sha256_mismatch", message)
                    .with_param("sha256")
            }
            Error::NotGguf { .. } | Error::MalformedGguf { .. } | Error::NotAModel { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "not_a_model", message).with_param("model")
            }
            // The server that holds the file failed us: a gateway error, not ours or the client's.
            Error::Download { .. } | Error::HttpStatus { .. } | Error::Truncated { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "download_failed", message)
            }
            Error::CorruptManifest { .. } | Error::Io { .. } => ApiError::internal(message),
        }
    }
}

impl From<hearth_plugins::PluginError> for ApiError {
    fn from(error: hearth_plugins::PluginError) -> ApiError {
        use hearth_plugins::PluginError as Error;
        let message = error.to_string();
        match error {
            // The manifest's own fields are named under `manifest` (the request field).
            Error::InvalidManifest { field, .. } => {
                let param = if field == "manifest" {
                    field
                } else {
                    format!("manifest.{field}")
                };
                ApiError::bad_request(message).with_param(param)
            }
            Error::ImportRefused { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "import_refused", message)
                    .with_param("component")
            }
            Error::InvalidSignature(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_signature", message)
                    .with_param("signature")
            }
            Error::InvalidComponent(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_component", message)
                    .with_param("component")
            }
            Error::InvalidArguments { field, .. } => {
                ApiError::bad_request(message).with_param(field)
            }
            Error::NotFound(_) | Error::ToolNotFound { .. } => ApiError::not_found(message),
            Error::AlreadyInstalled(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            Error::NoPreviousVersion(_) => {
                ApiError::new(StatusCode::CONFLICT, "no_previous_version", message)
            }
            Error::Disabled { .. } => {
                ApiError::new(StatusCode::CONFLICT, "plugin_disabled", message)
            }
            Error::ToolFailed(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "tool_error", message)
            }
            Error::Stopped { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "plugin_stopped", message)
            }
            Error::Store(_) | Error::Io(_) | Error::Runtime(_) => ApiError::internal(message),
        }
    }
}

impl From<hearth_gateway::GatewayError> for ApiError {
    fn from(error: hearth_gateway::GatewayError) -> ApiError {
        use hearth_gateway::GatewayError as Error;
        let message = error.to_string();
        match error {
            Error::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            Error::NotFound { .. } => ApiError::not_found(message),
            Error::Invalid { field, .. } => ApiError::bad_request(message).with_param(field),
            Error::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            Error::Store(_) => ApiError::internal(message),
        }
    }
}

impl From<hearth_experiments::ExperimentError> for ApiError {
    fn from(error: hearth_experiments::ExperimentError) -> ApiError {
        use hearth_experiments::ExperimentError as Error;
        let message = error.to_string();
        match error {
            Error::Invalid { field, .. } => ApiError::bad_request(message).with_param(field),
            Error::NotFound(_) => ApiError::not_found(message),
            Error::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            Error::Store(_) => ApiError::internal(message),
        }
    }
}

impl From<hearth_flags::FlagError> for ApiError {
    fn from(error: hearth_flags::FlagError) -> ApiError {
        use hearth_flags::FlagError as Error;
        let message = error.to_string();
        match error {
            Error::Invalid { field, .. } => ApiError::bad_request(message).with_param(field),
            Error::NotFound(_) => ApiError::not_found(message),
            Error::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            Error::Limit(_) => ApiError::new(StatusCode::BAD_REQUEST, "limit_reached", message),
            Error::Store(_) => ApiError::internal(message),
        }
    }
}

impl From<hearth_prompts::PromptError> for ApiError {
    fn from(error: hearth_prompts::PromptError) -> ApiError {
        use hearth_prompts::PromptError as Error;
        let message = error.to_string();
        match error {
            Error::Invalid { field, .. } => ApiError::bad_request(message).with_param(field),
            Error::NotFound(_) | Error::NoSuchVersion { .. } => ApiError::not_found(message),
            Error::Limit(_) => ApiError::new(StatusCode::BAD_REQUEST, "limit_reached", message),
            Error::Store(_) => ApiError::internal(message),
        }
    }
}

impl From<hearth_jobs::JobError> for ApiError {
    fn from(error: hearth_jobs::JobError) -> ApiError {
        use hearth_jobs::JobError as Error;
        let message = error.to_string();
        match error {
            Error::Invalid { field, .. } => ApiError::bad_request(message).with_param(field),
            Error::NotFound(_) | Error::RunNotFound(_) => ApiError::not_found(message),
            Error::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            Error::TooMany(_) => ApiError::new(StatusCode::BAD_REQUEST, "limit_reached", message),
            Error::Store(_) | Error::Runtime(_) => ApiError::internal(message),
        }
    }
}
