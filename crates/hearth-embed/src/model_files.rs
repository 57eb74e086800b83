//! Reads and checks the files of a sentence-transformers model directory.
//!
//! Layout (as published for all-MiniLM-L6-v2):
//! - `config.json`: the BERT architecture (required);
//! - `tokenizer.json`: the Hugging Face tokenizer (required);
//! - `model.safetensors`: the weights (required, read tensor by tensor by the model);
//! - `1_Pooling/config.json`: the pooling mode (optional, mean pooling when absent, as
//!   sentence-transformers does for a plain BERT checkpoint);
//! - `sentence_bert_config.json`: `max_seq_length` (optional, the position embedding count
//!   when absent).
//!
//! A missing required file and a file that does not parse are errors that name the file.

use std::path::{Path, PathBuf};

use candle_transformers::models::bert;
use serde::Deserialize;

use crate::EmbedError;

/// The parsed, checked content of a model directory, minus the weights.
pub(crate) struct ModelFiles {
    pub(crate) bert_config: bert::Config,
    pub(crate) tokenizer: tokenizers::Tokenizer,
    pub(crate) weights_path: PathBuf,
    /// The longest input in tokens, `[CLS]` and `[SEP]` included.
    pub(crate) max_tokens: usize,
}

/// `1_Pooling/config.json`; only the fields that choose the pooling mode.
#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default = "mean_pooling_by_default")]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

fn mean_pooling_by_default() -> bool {
    true
}

/// `sentence_bert_config.json`.
#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

impl ModelFiles {
    pub(crate) fn read(dir: &Path) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let bert_config: bert::Config = parse_json(&config_path, &read_required(&config_path)?)?;

        let pooling_path = dir.join("1_Pooling").join("config.json");
        if let Some(text) = read_optional(&pooling_path)? {
            let pooling: PoolingConfig = parse_json(&pooling_path, &text)?;
            check_mean_pooling(&pooling)?;
        }

        let sentence_bert_path = dir.join("sentence_bert_config.json");
        let max_tokens = match read_optional(&sentence_bert_path)? {
            Some(text) => {
                let sentence_bert: SentenceBertConfig = parse_json(&sentence_bert_path, &text)?;
                sentence_bert.max_seq_length
            }
            None => bert_config.max_position_embeddings,
        };
        // Positions past the embedding table do not exist; two tokens are [CLS] and [SEP].
        let max_tokens = max_tokens.min(bert_config.max_position_embeddings);
        if max_tokens < 3 {
            return Err(EmbedError::UnsupportedModel {
                reason: format!(
                    "inputs of at most {max_tokens} tokens (max_seq_length, capped at \
                     max_position_embeddings) leave no room for text besides [CLS] and [SEP]"
                ),
            });
        }

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_bytes = read_required_bytes(&tokenizer_path)?;
        let tokenizer = tokenizers::Tokenizer::from_bytes(&tokenizer_bytes).map_err(|error| {
            EmbedError::InvalidFile {
                path: tokenizer_path.clone(),
                reason: error.to_string(),
            }
        })?;

        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() {
            return Err(EmbedError::MissingFile { path: weights_path });
        }

        Ok(Self {
            bert_config,
            tokenizer,
            weights_path,
            max_tokens,
        })
    }
}

fn check_mean_pooling(pooling: &PoolingConfig) -> Result<(), EmbedError> {
    let other_modes = pooling.pooling_mode_cls_token
        || pooling.pooling_mode_max_tokens
        || pooling.pooling_mode_mean_sqrt_len_tokens;
    if pooling.pooling_mode_mean_tokens && !other_modes {
        Ok(())
    } else {
        Err(EmbedError::UnsupportedModel {
            reason: "only mean pooling (pooling_mode_mean_tokens alone) is supported".to_owned(),
        })
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, EmbedError> {
    serde_json::from_str(text).map_err(|error| EmbedError::InvalidFile {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

fn read_required_bytes(path: &Path) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(path).map_err(|source| read_error(path, source))
}

fn read_required(path: &Path) -> Result<String, EmbedError> {
    std::fs::read_to_string(path).map_err(|source| read_error(path, source))
}

fn read_optional(path: &Path) -> Result<Option<String>, EmbedError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EmbedError::ReadFile {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_error(path: &Path, source: std::io::Error) -> EmbedError {
    if source.kind() == std::io::ErrorKind::NotFound {
        EmbedError::MissingFile {
            path: path.to_owned(),
        }
    } else {
        EmbedError::ReadFile {
            path: path.to_owned(),
            source,
        }
    }
}
