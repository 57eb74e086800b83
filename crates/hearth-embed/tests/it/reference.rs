//! Accuracy pinned against an independent implementation of the same model.
//!
//! `tests/reference/reference_embedding.py` tokenizes one sentence by hand and runs the BERT
//! forward pass in numpy (float64) from model.safetensors; `expected.json` is its output.

use serde::Deserialize;

use crate::shared_model;

#[derive(Deserialize)]
struct Expected {
    sentence: String,
    token_ids: Vec<u32>,
    first_values: Vec<f32>,
}

#[test]
fn the_embedding_matches_the_numpy_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/expected.json");
    let text = std::fs::read_to_string(path).expect("reading expected.json");
    let expected: Expected = serde_json::from_str(&text).expect("parsing expected.json");

    let embeddings = shared_model()
        .embed(&[&expected.sentence])
        .expect("embedding the reference sentence");
    let item = &embeddings.items[0];
    assert_eq!(item.n_tokens, expected.token_ids.len());
    for (index, (actual, wanted)) in item.vector.iter().zip(&expected.first_values).enumerate() {
        assert!(
            (actual - wanted).abs() < 1e-4,
            "value {index}: {actual} but the reference says {wanted}"
        );
    }
}
