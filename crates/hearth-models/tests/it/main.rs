//! Integration tests of the model registry: pulls over real HTTP from a server started in the
//! test, local files, versions, and the real Gemma sample's metadata.

mod gguf;
mod pull;
mod registry;
mod server;

use std::path::Path;

use hearth_models::gguf::GgufBuilder;
use hearth_models::{
    Manifest, ModelReference, ModelsError, PullOptions, PullProgress, PullSource, Registry,
};
use sha2::{Digest, Sha256};

/// A small chat-model GGUF: real metadata and one zero-filled tensor of `tensor_elements`
/// floats, so the file is about `4 * tensor_elements` bytes.
pub fn fake_chat_gguf(label: &str, tensor_elements: u64) -> Vec<u8> {
    GgufBuilder::new()
        .string("general.architecture", "llama")
        .string("general.name", label)
        .string("general.size_label", "1M")
        .u32("general.file_type", 15)
        .u32("llama.context_length", 2048)
        .u32("llama.embedding_length", 64)
        .string_array("tokenizer.ggml.tokens", &["<s>", "</s>", "hi"])
        .string(
            "tokenizer.chat_template",
            "{% for m in messages %}{{ m.content }}{% endfor %}",
        )
        .tensor("token_embd.weight", &[tensor_elements])
        .build()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

pub fn reference(text: &str) -> ModelReference {
    ModelReference::parse(text).expect("valid reference")
}

/// A registry in a fresh temporary data directory (kept alive by the returned guard).
pub fn temporary_registry() -> (tempfile::TempDir, Registry) {
    let directory = tempfile::tempdir().expect("temp dir");
    let registry = Registry::open(directory.path()).expect("open registry");
    (directory, registry)
}

/// Pulls `source` and returns the result with every progress event.
pub async fn pull_collecting(
    registry: &Registry,
    source: &str,
    name: Option<&str>,
    options: &PullOptions,
) -> (Result<Manifest, ModelsError>, Vec<PullProgress>) {
    let source = PullSource::parse(source).expect("valid source");
    let name = name.map(reference);
    let mut events = Vec::new();
    let result = hearth_models::pull(registry, &source, name.as_ref(), options, |event| {
        events.push(event.clone())
    })
    .await;
    (result, events)
}

/// Names of the files in a directory, sorted.
pub fn file_names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
