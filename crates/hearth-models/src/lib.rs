//! Hearth's local model registry.
//!
//! A model is known by a [`ModelReference`] (`name:tag`). The [`Registry`] keeps one
//! [`Manifest`] per reference under `<data_dir>/models/`: the current [`ModelVersion`] (file,
//! sha256, size, family, quantization, context length, chat template, ...) and the versions it
//! replaced, for rollback. [`pull()`] fetches a model from a URL, a Hugging Face reference or a
//! local path, with resume and sha256 verification, and registers it. [`gguf`] reads a GGUF
//! file's metadata without loading the model.
//!
//! This crate knows nothing of HTTP serving or of inference; it is an HTTP client only for
//! downloads. The engine asks it where a model's file is; the server maps its errors.

mod error;
pub mod gguf;
mod manifest;
mod pull;
mod reference;
mod registry;

pub use error::ModelsError;
pub use manifest::{BASE_MODEL_NOTE, Manifest, ModelFormat, ModelKind, ModelVersion, Storage};
pub use pull::{
    HUGGING_FACE_ENDPOINT, HuggingFaceFile, PullOptions, PullProgress, PullSource, pull,
};
pub use reference::{DEFAULT_TAG, ModelReference};
pub use registry::{Registry, Removed};
