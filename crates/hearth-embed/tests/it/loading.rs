//! `EmbeddingModel::load` errors name the file that is missing or wrong.

use std::path::Path;

use hearth_embed::{EmbedError, EmbeddingModel};

use crate::model_dir;

/// A copy of the sample model's small files in a temporary directory; the weights are linked.
fn model_copy() -> tempfile::TempDir {
    let source = model_dir();
    let copy = tempfile::tempdir().expect("temporary directory");
    for name in ["config.json", "tokenizer.json", "sentence_bert_config.json"] {
        std::fs::copy(source.join(name), copy.path().join(name)).expect("copying a model file");
    }
    std::fs::create_dir(copy.path().join("1_Pooling")).expect("creating 1_Pooling");
    std::fs::copy(
        source.join("1_Pooling/config.json"),
        copy.path().join("1_Pooling/config.json"),
    )
    .expect("copying the pooling config");
    std::os::unix::fs::symlink(
        source.join("model.safetensors"),
        copy.path().join("model.safetensors"),
    )
    .expect("linking the weights");
    copy
}

fn load_error(dir: &Path) -> EmbedError {
    match EmbeddingModel::load(dir) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(error) => error,
    }
}

#[test]
fn a_complete_copy_loads() {
    let copy = model_copy();
    let model = EmbeddingModel::load(copy.path()).expect("loading the copy");
    assert_eq!(model.dimensions(), 384);
}

#[test]
fn missing_required_files_are_named() {
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        let copy = model_copy();
        std::fs::remove_file(copy.path().join(name)).expect("removing a model file");
        match load_error(copy.path()) {
            EmbedError::MissingFile { path } => assert_eq!(path, copy.path().join(name)),
            other => panic!("without {name}: expected MissingFile, got {other:?}"),
        }
    }
}

#[test]
fn a_config_that_does_not_parse_is_named_in_the_error() {
    let copy = model_copy();
    std::fs::write(copy.path().join("config.json"), "{ not json").expect("writing config");
    let error = load_error(copy.path());
    assert!(
        matches!(&error, EmbedError::InvalidFile { path, .. } if path.ends_with("config.json")),
        "{error:?}"
    );
    assert!(error.to_string().contains("config.json"), "{error}");
}

#[test]
fn truncated_weights_are_reported_as_invalid() {
    let copy = model_copy();
    let weights = copy.path().join("model.safetensors");
    std::fs::remove_file(&weights).expect("removing the link");
    std::fs::write(&weights, b"not safetensors").expect("writing bad weights");
    let error = load_error(copy.path());
    assert!(
        matches!(&error, EmbedError::InvalidFile { path, .. } if *path == weights),
        "{error:?}"
    );
}

#[test]
fn pooling_other_than_mean_is_refused() {
    let copy = model_copy();
    std::fs::write(
        copy.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true,
            "pooling_mode_mean_tokens": false}"#,
    )
    .expect("writing the pooling config");
    let error = load_error(copy.path());
    assert!(
        matches!(error, EmbedError::UnsupportedModel { .. }),
        "{error:?}"
    );
}

#[test]
fn max_seq_length_decides_truncation() {
    let copy = model_copy();
    std::fs::write(
        copy.path().join("sentence_bert_config.json"),
        r#"{"max_seq_length": 16, "do_lower_case": false}"#,
    )
    .expect("writing sentence_bert_config.json");
    let model = EmbeddingModel::load(copy.path()).expect("loading");
    assert_eq!(model.max_tokens(), 16);
    let embeddings = model.embed(&[&"word ".repeat(40)]).expect("embedding");
    assert_eq!(embeddings.items[0].n_tokens, 16);
    assert!(embeddings.items[0].truncated);
}
