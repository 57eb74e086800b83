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
    /// The converter's `general.name` (`Gemma 3 270m`); absent in manifests written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The converter's `general.finetune` (`it`, `Instruct`), when the file records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<String>,
    /// Where the model came from: the URL, `hf:` reference or local path given to pull.
    pub source: String,
    pub created_at_ms: u64,
}

/// What a user is told about a chat model that is a base (pretrained-only) model: chat requests
/// answer with continuation text, since nothing taught it to take turns.
pub const BASE_MODEL_NOTE: &str =
    "base model (no chat template): use /v1/completions, or pull an instruct model";

/// Words in a model's names that mark it as tuned to follow instructions or chat.
const INSTRUCT_MARKERS: &[&str] = &[
    "it",
    "instruct",
    "chat",
    "sft",
    "dpo",
    "orpo",
    "rlhf",
    "assistant",
];

impl ModelVersion {
    /// True for a chat-kind model that carries no chat template and whose names (`general.name`,
    /// `general.finetune`, its file and source) say nothing of instruction tuning: a base model.
    /// An instruct-tuned model without a template still chats through the family's built-in
    /// format, so it is not one. `registered_name` is the name it was pulled as.
    pub fn is_base_model(&self, registered_name: &str) -> bool {
        if self.kind != ModelKind::Chat || self.chat_template.is_some() {
            return false;
        }
        let file_name = self
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let names = [
            self.display_name.as_deref().unwrap_or_default(),
            self.finetune.as_deref().unwrap_or_default(),
            &file_name,
            &self.source,
            registered_name,
        ];
        !names.iter().any(|name| names_instruct_tuning(name))
    }
}

fn names_instruct_tuning(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            INSTRUCT_MARKERS.contains(&word)
                || word.starts_with("instruct")
                || word.starts_with("chat")
        })
}

/// A model name with its current version and the versions it replaced, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub reference: ModelReference,
    pub current: ModelVersion,
    pub previous: Vec<ModelVersion>,
}

impl Manifest {
    /// Whether the current version is a base model ([`ModelVersion::is_base_model`]).
    pub fn is_base_model(&self) -> bool {
        self.current.is_base_model(&self.reference.to_string())
    }

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

#[cfg(test)]
mod base_model_tests {
    use super::*;

    fn chat_version(path: &str, template: Option<&str>) -> ModelVersion {
        ModelVersion {
            kind: ModelKind::Chat,
            format: ModelFormat::Gguf,
            path: PathBuf::from(path),
            storage: Storage::InPlace,
            sha256: String::new(),
            size_bytes: 0,
            family: Some("gemma3".to_string()),
            quantization: None,
            context_length: None,
            embedding_length: None,
            parameter_count: None,
            size_label: None,
            chat_template: template.map(str::to_string),
            display_name: Some("Gemma 3 270m".to_string()),
            finetune: None,
            source: path.to_string(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn a_chat_model_without_template_or_instruct_name_is_a_base_model() {
        let sample = chat_version("/models/gemma-3-270m-q4_k_m.gguf", None);
        assert!(sample.is_base_model("gemma3:270m"));
        // The same file with a template chats.
        assert!(
            !chat_version("/models/gemma-3-270m-q4_k_m.gguf", Some("{{x}}"))
                .is_base_model("gemma3:270m")
        );
    }

    #[test]
    fn an_instruct_name_anywhere_keeps_the_family_template_fallback() {
        let cases = [
            chat_version("/models/gemma-3-270m-it-q4_k_m.gguf", None),
            chat_version("/models/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", None),
            ModelVersion {
                finetune: Some("it".to_string()),
                ..chat_version("/models/x.gguf", None)
            },
            ModelVersion {
                display_name: Some("SmolLM2 135M Chat".to_string()),
                ..chat_version("/models/x.gguf", None)
            },
        ];
        for version in cases {
            assert!(!version.is_base_model("m:latest"), "{version:?}");
        }
        assert!(!chat_version("/models/x.gguf", None).is_base_model("gemma3:270m-it"));
    }

    #[test]
    fn embedding_models_are_never_base_chat_models() {
        let version = ModelVersion {
            kind: ModelKind::Embedding,
            ..chat_version("/models/minilm.gguf", None)
        };
        assert!(!version.is_base_model("minilm"));
    }
}
