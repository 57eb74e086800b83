//! Hearth's inference service: the layer between the HTTP handlers and the engines.
//!
//! [`Inference`] resolves model names against the registry and hands out running models.
//! [`ModelPool`] keeps them: a model is loaded on first use (once, however many requests ask
//! for it at the same moment), stays loaded for its keep-alive after the last use, is evicted
//! least-recently-used first when loading another would exceed the memory budget, and is
//! dropped after an engine failure so that the next request loads it afresh.
//!
//! This crate knows nothing of HTTP; it speaks the engines' domain types.

mod error;
mod inference;
mod memory;
mod pool;
pub mod tools;

pub use error::InferenceError;
pub use hearth_engine::{KvCacheType, cpu_features};
pub use inference::Inference;
pub use pool::{
    EngineSettings, KeepAlive, LoadedModel, ModelChange, ModelKind, ModelObserver, ModelPool,
    ModelSpec, PoolConfig, RunningModel, kind_name,
};
