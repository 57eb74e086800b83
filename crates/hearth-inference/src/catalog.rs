//! What the inference service knows about the models it may serve: their names, kinds, files
//! and the details listings show.

use std::path::PathBuf;

use crate::pool::{ModelKind, ModelSpec};

/// A servable model as listings and `/api/show` describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDescription {
    /// The canonical `name:tag`.
    pub name: String,
    pub kind: ModelKind,
    /// `gguf` or `safetensors`.
    pub format: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    pub sha256: String,
    pub family: Option<String>,
    pub quantization: Option<String>,
    pub parameter_size: Option<String>,
    pub context_length: Option<u64>,
    /// The chat template stored in the model file, if any.
    pub chat_template: Option<String>,
    pub modified_at_ms: i64,
}

impl ModelDescription {
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            name: self.name.clone(),
            kind: self.kind,
            path: self.path.clone(),
            size_bytes: self.size_bytes,
        }
    }
}

/// Resolves what a client typed to a catalogue name: `gemma3` means `gemma3:latest`.
pub fn canonical_name(name: &str) -> String {
    let name = name.trim();
    if name.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}
