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

/// `text`'s tokens as llama.cpp itself gives them (`Model::tokenize` may take a faster path to
/// the same tokens).
pub fn llama_tokenize(model: &Model, text: &str, add_special: bool) -> Vec<crate::TokenId> {
    crate::model::llama_tokenize(&model.inner.llama, text, add_special)
}

/// Whether `Model::tokenize` uses the faster path for this model.
pub fn has_fast_tokenizer(model: &Model) -> bool {
    model.inner.spm.is_some()
}

/// The faster path's tokens for `text`; `None` where it leaves the text to llama.cpp (or the
/// model has no faster path).
pub fn fast_tokenize(model: &Model, text: &str, add_special: bool) -> Option<Vec<crate::TokenId>> {
    model.inner.spm.as_ref()?.tokenize(text, add_special)
}
