//! The GGUF reader on the real Gemma 3 270M sample.

use std::path::PathBuf;

/// The sample model, fetched by `scripts/fetch-sample-models`.
fn gemma_sample() -> PathBuf {
    let cache = std::env::var_os("HEARTH_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth/models")
        });
    let path = cache.join("gemma-3-270m-q4_k_m.gguf");
    assert!(
        path.is_file(),
        "{} is missing; run scripts/fetch-sample-models",
        path.display()
    );
    path
}

#[test]
fn the_gemma_sample_reads_as_gemma3_q4_k_m_without_a_chat_template() {
    let metadata = hearth_models::gguf::read_metadata(&gemma_sample()).expect("read GGUF");
    assert_eq!(metadata.architecture(), Some("gemma3"));
    assert_eq!(metadata.quantization().as_deref(), Some("Q4_K_M"));
    assert_eq!(metadata.file_type(), Some(15));
    assert_eq!(metadata.chat_template(), None);
    assert_eq!(metadata.context_length(), Some(32768));
    assert_eq!(metadata.embedding_length(), Some(640));
    assert!(!metadata.is_embedding_model());
    // 268M parameters by its own label; the tensor shapes add up to the same.
    assert!(
        (260_000_000..280_000_000).contains(&metadata.parameter_count),
        "{}",
        metadata.parameter_count
    );
    // The vocabulary was skipped, not loaded, but is described.
    assert!(matches!(
        metadata.values["tokenizer.ggml.tokens"],
        hearth_models::gguf::GgufValue::Array { element_type: 8, length } if length > 200_000
    ));
    assert_eq!(metadata.name(), Some("Gemma 3 270m"));
    assert_eq!(metadata.size_label(), Some("270M"));
    assert_eq!(metadata.tensor_count, 236);
}
