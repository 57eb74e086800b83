//! What the registry records about a model: one [`Manifest`] per `name:tag`, holding the
//! current [`ModelVersion`] and the versions it replaced, and the JSON form they take on disk.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ModelReference;

/// What a model is for, which decides the API that can serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Chat,
    Embedding,
}

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// One GGUF file, for llama.cpp.
    Gguf,
    /// A directory with `config.json`, `tokenizer.json` and `model.safetensors`.
    Safetensors,
}

/// Who owns the file, which decides whether removing the model deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// A content-addressed blob under `models/blobs/`, deleted when no manifest refers to it.
    Owned,
    /// The user's own file, registered where it lies and never deleted by Hearth.
    InPlace,
}

/// One version of a model: which file, its identity, and what its metadata says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub kind: ModelKind,
    pub format: ModelFormat,
    /// Absolute path of the GGUF file or safetensors directory. On disk, owned blobs are
    /// written relative to the models directory so that the data directory can move.
    pub path: PathBuf,
    pub storage: Storage,
    /// Hex sha256 of the GGUF file, or of `model.safetensors` for a safetensors model.
    pub sha256: String,
    pub size_bytes: u64,
    /// The architecture, e.g. `gemma3` or `bert`.
    pub family: Option<String>,
    /// The quantization name, e.g. `Q4_K_M`; absent for safetensors.
    pub quantization: Option<String>,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub parameter_count: Option<u64>,
    /// The converter's size label, e.g. `268M`.
    pub size_label: Option<String>,
    /// The Jinja chat template the file carries, if any.
    pub chat_template: Option<String>,
    /// Where the model came from: the URL, `hf:` reference or local path given to pull.
    pub source: String,
    pub created_at_ms: u64,
}

/// A model name with its current version and the versions it replaced, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub reference: ModelReference,
    pub current: ModelVersion,
    pub previous: Vec<ModelVersion>,
}

impl Manifest {
    /// Every version, current first.
    pub fn versions(&self) -> impl Iterator<Item = &ModelVersion> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

/// The manifest file's JSON: the current version's fields at the top level, beside the name and
/// tag, so that the file reads as "this model", with older versions below.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ManifestFile {
    pub schema_version: u32,
    pub name: String,
    pub tag: String,
    #[serde(flatten)]
    pub current: ModelVersion,
    #[serde(default)]
    pub previous: Vec<ModelVersion>,
}

/// Bumped when the file layout changes incompatibly.
pub(crate) const SCHEMA_VERSION: u32 = 1;
