//! Local sentence embeddings for Hearth.
//!
//! [`EmbeddingModel`] loads a sentence-transformers BERT model (all-MiniLM-L6-v2 class) from a
//! directory on disk and turns a batch of texts into unit-length vectors: tokenize, group the
//! inputs by length and pad each group to its longest, run the BERT encoder on the CPU,
//! mean-pool over the real tokens, L2-normalize.
//!
//! [`EmbeddingService`] puts one model behind a dedicated OS thread so that many async callers
//! share batches: requests wait in a bounded queue ([`EmbedError::QueueFull`] when it is
//! full) and the worker embeds whatever is waiting in one batch.
//!
//! This crate knows nothing of HTTP or JSON wire types, and never fetches anything at run time.

mod chunking;
mod error;
mod input_layer;
mod model;
mod model_files;
mod service;
mod weights;

pub use chunking::{ChunkingError, rebuild, token_windows};
pub use error::EmbedError;
pub use model::{Chunker, Embedding, EmbeddingModel, Embeddings};
pub use service::{EmbeddingService, ServiceConfig, ServiceStats};
