//! Direct access to the llama.cpp binding under a loaded [`Model`], for the raw-engine
//! benchmark and for tests that compare the scheduler with a plain sequential decode. Not for
//! application code: everything here bypasses the scheduler's validation.

pub use llama_cpp_2;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;

use crate::{EngineError, Model};

/// The process-wide llama.cpp backend (initialised on first use).
pub fn backend() -> Result<&'static LlamaBackend, EngineError> {
    crate::backend::backend()
}

/// `params` with the KV cache stored as the scheduler stores it for `kv_cache_type`, so a raw
/// reference decode reads the same cache numerics as the scheduler.
pub fn with_kv_cache_type(
    params: llama_cpp_2::context::params::LlamaContextParams,
    kv_cache_type: crate::KvCacheType,
) -> llama_cpp_2::context::params::LlamaContextParams {
    crate::scheduler::with_kv_cache_type(params, kv_cache_type)
}

/// The llama.cpp model behind a [`Model`].
pub fn llama_model(model: &Model) -> &LlamaModel {
    &model.inner.llama
}
