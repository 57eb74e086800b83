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
        load_cpu_backends();
        LlamaBackend::init().map_err(|error| error.to_string())
    });
    backend.as_ref().map_err(|reason| EngineError::ModelLoad {
        path: Default::default(),
        reason: format!("llama.cpp backend: {reason}"),
    })
}

/// Loads ggml's CPU backend for a portable build (the `portable` feature), once: such a build
/// ships one CPU backend per instruction-set level (`libggml-cpu-haswell.so`,
/// `libggml-cpu-skylakex.so`, ...) beside the binary, and ggml loads the best one this CPU
/// runs. Only the binary's own directory is searched (not the working directory, from which a
/// library could be planted), then the directory the build put them in. Other builds link
/// their one CPU backend, and this does nothing.
pub(crate) fn load_cpu_backends() {
    #[cfg(feature = "portable")]
    {
        static LOADED: std::sync::Once = std::sync::Once::new();
        LOADED.call_once(|| {
            let beside_binary = std::env::current_exe()
                .ok()
                .and_then(|binary| binary.parent().map(std::path::Path::to_path_buf));
            if let Some(directory) = beside_binary {
                llama_cpp_2::llama_backend::load_backends_from_path(&directory);
            }
            // SAFETY: a NUL-terminated name; only looks the name up in ggml's registry.
            let found =
                !unsafe { llama_cpp_sys_2::ggml_backend_reg_by_name(c"CPU".as_ptr()) }.is_null();
            if !found {
                llama_cpp_2::llama_backend::load_backends();
            }
        });
    }
}
