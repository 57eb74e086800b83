//! Hearth's local inference engine: GGUF models on llama.cpp, run by a continuous-batching
//! scheduler with prefix (KV-cache) reuse and per-sequence sampling.
//!
//! The flow: [`Model::load`] reads a GGUF file and its metadata; [`ModelHandle::start`] gives
//! the model a scheduler thread owning its llama.cpp context; [`ModelHandle::generate`] queues
//! a [`GenerationRequest`] and returns a [`GenerationStream`] of [`GenerationEvent`]s.
//!
//! Invariants:
//! - Only the scheduler thread touches a model's llama.cpp context; callers talk to it through
//!   a bounded queue (full means `QueueFull`, never unbounded memory).
//! - Nothing reaches llama.cpp unvalidated: token ids are inside the vocabulary, a prompt plus
//!   `max_tokens` fits `n_ctx_per_seq`, batches never exceed `n_batch`, and KV entries are never
//!   copied between sequences (llama.cpp aborts the process on those mistakes).
//! - A slot's remembered tokens are exactly what its KV cache holds, so prefix reuse never
//!   changes an output.
//! - Speculation never changes what is sampled: every emitted token is sampled, in order, from
//!   the logits of its true prefix; a drafted token only lets the next position's logits come
//!   from the same pass. Rejected drafts leave the KV cache before the next step.
//!
//! Boundary: this crate knows nothing of HTTP or JSON; the server converts its wire types into
//! these. The model registry (manifests, pulls, keep-alive, the memory budget) is not built yet;
//! it will sit on top of `Model` and `ModelHandle`.

mod backend;
mod chat;
mod config;
mod cpu;
mod error;
mod generation;
mod grammar;
mod json_numbers;
mod lookup;
mod model;
pub mod raw;
mod sampling;
mod scheduler;
mod spm;
mod stats;
mod text_output;

pub use chat::{ChatMessage, ChatRole, ChatTemplate, TemplateSource};
pub use config::{
    DEFAULT_JSON_NUMBER_MAX_DIGITS, DEFAULT_LOOKUP_DRAFT_MAX, EngineConfig, KvCacheType,
    MAX_LOOKUP_DRAFT,
};
pub use cpu::cpu_features;
pub use error::EngineError;
pub use generation::{
    Completion, FinishReason, GenerationEvent, GenerationRequest, GenerationStream, Prompt,
    Timings, TokenLogprob, TopLogprob, Usage,
};
pub use grammar::Constraint;
pub use model::{Model, ModelInfo};
pub use sampling::{MAX_TOP_LOGPROBS, SamplingParams};
pub use scheduler::ModelHandle;
pub use stats::SchedulerStats;

/// A token id of the model's vocabulary (llama.cpp's `llama_token`).
pub type TokenId = i32;

#[cfg(test)]
mod tests {
    /// The server keeps handles in shared state and moves streams into response bodies.
    #[test]
    fn public_handles_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>() {}
        assert_send_sync::<crate::Model>();
        assert_send_sync::<crate::ModelHandle>();
        assert_send::<crate::GenerationStream>();
        assert_send_sync::<crate::EngineError>();
    }
}
