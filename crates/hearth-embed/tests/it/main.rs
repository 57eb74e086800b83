//! Integration tests of hearth-embed against the real all-MiniLM-L6-v2 sample model.
//!
//! The model comes from `$HEARTH_MODEL_CACHE/all-minilm-l6-v2`, or
//! `~/.cache/hearth/models/all-minilm-l6-v2`; `scripts/fetch-sample-models` puts it there.

mod loading;
mod model;
mod reference;
mod service;

use std::path::PathBuf;
use std::sync::OnceLock;

use hearth_embed::EmbeddingModel;

/// The sample model directory; fails the test, never skips it, when the model is missing.
fn model_dir() -> PathBuf {
    let cache = match std::env::var_os("HEARTH_MODEL_CACHE") {
        Some(cache) => PathBuf::from(cache),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache/hearth/models")
        }
    };
    let dir = cache.join("all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the sample embedding model is not in {}: run scripts/fetch-sample-models \
         (or point HEARTH_MODEL_CACHE at a cache that has it)",
        dir.display()
    );
    dir
}

/// One model shared by the tests that only read it, to load it once per test binary.
fn shared_model() -> &'static EmbeddingModel {
    static MODEL: OnceLock<EmbeddingModel> = OnceLock::new();
    MODEL.get_or_init(load_model)
}

fn load_model() -> EmbeddingModel {
    let dir = model_dir();
    EmbeddingModel::load(&dir).unwrap_or_else(|error| panic!("loading {}: {error}", dir.display()))
}

/// Embeds one text alone.
fn embed_one(text: &str) -> Vec<f32> {
    let embeddings = shared_model().embed(&[text]).expect("embedding one text");
    embeddings
        .items
        .into_iter()
        .next()
        .expect("one embedding")
        .vector
}

fn dot(left: &[f32], right: &[f32]) -> f32 {
    left.iter().zip(right).map(|(l, r)| l * r).sum()
}

fn norm(vector: &[f32]) -> f32 {
    dot(vector, vector).sqrt()
}

fn largest_difference(left: &[f32], right: &[f32]) -> f32 {
    assert_eq!(left.len(), right.len(), "vectors of different lengths");
    left.iter()
        .zip(right)
        .map(|(l, r)| (l - r).abs())
        .fold(0.0, f32::max)
}
