//! The process-wide llama.cpp backend. llama.cpp must be initialised exactly once per process,
//! before any model is loaded, and never torn down while a model may still be in use.

use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;

use crate::EngineError;

static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// Returns the shared backend, initialising it (and routing llama.cpp's logs to `tracing`) on
/// first use.
pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    let backend = BACKEND.get_or_init(|| {
        // llama.cpp prints every load step to stderr by default; as tracing events they follow
        // the application's log filter instead.
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().map_err(|error| error.to_string())
    });
    backend.as_ref().map_err(|reason| EngineError::ModelLoad {
        path: Default::default(),
        reason: format!("llama.cpp backend: {reason}"),
    })
}
