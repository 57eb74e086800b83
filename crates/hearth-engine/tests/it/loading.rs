//! Loading the sample model: metadata, tokenizer, chat formatting, and load errors.

use hearth_engine::{ChatMessage, ChatRole, EngineConfig, EngineError, Model, TemplateSource};

use crate::support::load_model;

#[test]
fn the_sample_model_reports_its_gguf_metadata() {
    let model = load_model(&EngineConfig::default());
    let info = model.info();
    assert_eq!(info.architecture, "gemma3");
    assert_eq!(info.quantization, "Q4_K_M");
    assert_eq!(info.context_length_trained, 32768);
    assert!(
        (250_000_000..300_000_000).contains(&info.parameter_count),
        "{} parameters",
        info.parameter_count
    );
    assert_eq!(info.file_bytes, 253_113_024);
    assert!(info.tensor_bytes > 0 && info.tensor_bytes <= info.file_bytes);
    assert_eq!(info.vocabulary_size, 262_144);
}

#[test]
fn a_base_model_without_a_template_gets_the_built_in_gemma_format() {
    let model = load_model(&EngineConfig::default());
    let info = model.info();
    assert_eq!(info.gguf_chat_template, None);
    assert_eq!(info.chat_template.name, "gemma");
    assert_eq!(info.chat_template.source, TemplateSource::BuiltIn);
    assert!(info.chat_template.text.contains("<start_of_turn>"));

    let prompt = model
        .format_chat(&[
            ChatMessage::new(ChatRole::System, "Answer briefly."),
            ChatMessage::new(ChatRole::User, "Hi"),
        ])
        .expect("formats");
    assert_eq!(
        prompt,
        "<start_of_turn>user\nAnswer briefly.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    // The turn markers are single control tokens, not text.
    let tokens = model.tokenize(&prompt, true);
    assert!(tokens.len() < 20, "{tokens:?}");
}

#[test]
fn tokenize_then_detokenize_gives_the_text_back() {
    let model = load_model(&EngineConfig::default());
    let text = "Hearth runs models locally: 1, 2, 3 — ünïcødé too.";
    let tokens = model.tokenize(text, false);
    assert!(!tokens.is_empty());
    assert_eq!(model.detokenize(&tokens).expect("valid tokens"), text);
    // With special tokens the BOS comes first and is not rendered back.
    let with_bos = model.tokenize(text, true);
    assert_eq!(with_bos.len(), tokens.len() + 1);
    assert_eq!(model.detokenize(&with_bos).expect("valid tokens"), text);
}

#[test]
fn token_ids_outside_the_vocabulary_are_rejected_not_passed_to_llama_cpp() {
    let model = load_model(&EngineConfig::default());
    assert!(matches!(
        model.detokenize(&[1, 300_000]),
        Err(EngineError::InvalidRequest(_))
    ));
    assert!(matches!(
        model.detokenize(&[-1]),
        Err(EngineError::InvalidRequest(_))
    ));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let error =
        Model::load("/nonexistent/model.gguf", &EngineConfig::default()).expect_err("no such file");
    assert!(
        matches!(error, EngineError::ModelNotFound { .. }),
        "{error}"
    );
}

#[test]
fn an_inconsistent_config_names_the_field_to_fix() {
    let config = EngineConfig {
        n_parallel: 8,
        n_batch: 4,
        ..EngineConfig::default()
    };
    let error = Model::load(crate::support::sample_model_path(), &config).expect_err("invalid");
    assert!(
        matches!(
            error,
            EngineError::InvalidConfig {
                field: "n_batch",
                ..
            }
        ),
        "{error}"
    );
}
