//! Hearth's local inference engine: GGUF models on llama.cpp, run by a continuous-batching
//! scheduler with prefix (KV-cache) reuse and per-sequence sampling.
//!
//! The flow: [`Model::load`] reads a GGUF file and its metadata; [`ModelHandle::start`] gives
//! the model a scheduler thread owning its llama.cpp context; [`ModelHandle::generate`] queues
//! a [`GenerationRequest`] and returns a [`GenerationStream`] of [`GenerationEvent`]s.
//!
//! This crate knows nothing of HTTP or JSON: the server converts its wire types into these.

mod backend;
mod chat;
mod config;
mod error;
mod generation;
mod model;
pub mod raw;
mod sampling;
mod scheduler;
mod stats;
mod text_output;

pub use chat::{ChatMessage, ChatRole, ChatTemplate, TemplateSource};
pub use config::EngineConfig;
pub use error::EngineError;
pub use generation::{
    Completion, FinishReason, GenerationEvent, GenerationRequest, GenerationStream, Prompt,
    Timings, TokenLogprob, TopLogprob, Usage,
};
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
