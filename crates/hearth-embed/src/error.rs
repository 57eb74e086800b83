//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or embedding texts.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A file the model needs is not in the model directory.
    #[error("model file {path} is missing")]
    MissingFile { path: PathBuf },

    /// A model file exists but could not be read.
    #[error("could not read model file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A model file was read but its content is not what the model needs.
    #[error("model file {path} is not valid: {reason}")]
    InvalidFile { path: PathBuf, reason: String },

    /// The model directory describes a model this crate cannot run (for example CLS pooling).
    #[error("unsupported embedding model: {reason}")]
    UnsupportedModel { reason: String },

    /// The tokenizer rejected an input.
    #[error("tokenization failed: {message}")]
    Tokenization { message: String },

    /// A text cannot be split into chunks as asked.
    #[error(transparent)]
    Chunking(#[from] crate::ChunkingError),

    /// The forward pass failed. The message comes from the tensor library; a batch that fails
    /// fails every request in it, so the message is kept as text to hand a copy to each one.
    #[error("the embedding forward pass failed: {message}")]
    Inference { message: String },

    /// The service queue already holds its maximum number of requests; retry later.
    #[error("the embedding queue is full ({capacity} requests waiting); retry later")]
    QueueFull { capacity: usize },

    /// The service worker thread could not be started.
    #[error("could not start the embedding worker thread: {source}")]
    WorkerStart {
        #[source]
        source: std::io::Error,
    },

    /// The service worker thread is gone, so no answer will come.
    #[error("the embedding worker has stopped")]
    WorkerStopped,
}

impl EmbedError {
    pub(crate) fn inference(error: candle_core::Error) -> Self {
        Self::Inference {
            message: error.to_string(),
        }
    }

    /// The same failure for another request of a failed batch. `embed` only fails with
    /// `Tokenization` or `Inference`, which copy exactly; anything else keeps its message.
    pub(crate) fn copy_for_another_caller(&self) -> Self {
        match self {
            Self::Tokenization { message } => Self::Tokenization {
                message: message.clone(),
            },
            Self::Inference { message } => Self::Inference {
                message: message.clone(),
            },
            other => Self::Inference {
                message: other.to_string(),
            },
        }
    }
}
