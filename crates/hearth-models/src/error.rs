//! The one error type of this crate. Every message names the thing that is wrong (the model
//! name, the file, the URL) and, where there is one, what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong in the registry, the GGUF reader and pull.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("invalid model name {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    #[error("model {0} not found; `hearth models list` shows the registered models")]
    NotFound(String),

    #[error("model {0} has no previous version to roll back to")]
    NoPreviousVersion(String),

    #[error("{path} is not a GGUF file: {reason}")]
    NotGguf { path: PathBuf, reason: String },

    #[error("{path} is a damaged GGUF file: {reason}")]
    MalformedGguf { path: PathBuf, reason: String },

    #[error("invalid model source {source_text:?}: {reason}")]
    InvalidSource { source_text: String, reason: String },

    #[error(
        "{path} is not a model: expected a .gguf file or a directory with config.json, \
         tokenizer.json and model.safetensors ({reason})"
    )]
    NotAModel { path: PathBuf, reason: String },

    #[error("cannot derive a model name from {source_text:?}; give one with --name NAME:TAG")]
    CannotDeriveName { source_text: String },

    #[error("invalid sha256 {value:?}: expected 64 hexadecimal characters")]
    InvalidSha256 { value: String },

    #[error(
        "sha256 mismatch for {source_text}: expected {expected}, got {actual}; \
         the download was discarded and nothing was registered"
    )]
    ChecksumMismatch {
        source_text: String,
        expected: String,
        actual: String,
    },

    #[error("download of {url} failed: {source}; run the same pull again to resume")]
    Download {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("download of {url} failed: the server answered {status}")]
    HttpStatus { url: String, status: u16 },

    #[error(
        "download of {url} ended early: {received} of {expected} bytes; \
         run the same pull again to resume"
    )]
    Truncated {
        url: String,
        received: u64,
        expected: u64,
    },

    #[error("manifest {path} is damaged: {reason}")]
    CorruptManifest { path: PathBuf, reason: String },

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ModelsError {
    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ModelsError {
        let path = path.into();
        move |source| ModelsError::Io {
            action,
            path,
            source,
        }
    }
}
