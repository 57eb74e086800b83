//! The embedding model: tokenizer, BERT encoder, mean pooling and normalization.
//!
//! One call to [`EmbeddingModel::embed`] is one forward pass over the whole batch. Inputs are
//! padded on the right to the longest one in the batch and the attention mask keeps padding out
//! of both the attention and the pooling, so an input gets the same vector alone or in a batch.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::EmbedError;
use crate::model_files::ModelFiles;

/// A sentence embedding model loaded in memory, ready to embed batches on the CPU.
pub struct EmbeddingModel {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimensions: usize,
    max_tokens: usize,
    pad_token_id: u32,
}

/// The embedding of one input text.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Unit-length vector of [`EmbeddingModel::dimensions`] values.
    pub vector: Vec<f32>,
    /// Tokens the model read for this input, `[CLS]` and `[SEP]` included, after truncation.
    pub n_tokens: usize,
    /// The input was longer than [`EmbeddingModel::max_tokens`] and its end was cut off.
    pub truncated: bool,
}

/// The embeddings of a batch, one per input, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    pub items: Vec<Embedding>,
}

impl Embeddings {
    /// Tokens read over the whole batch (what an API reports as prompt tokens).
    pub fn total_tokens(&self) -> usize {
        self.items.iter().map(|item| item.n_tokens).sum()
    }
}

impl EmbeddingModel {
    /// Loads a sentence-transformers BERT model from `dir` (see the crate docs for the files).
    ///
    /// The weights are memory-mapped, not copied.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let files = ModelFiles::read(dir.as_ref())?;
        let device = Device::Cpu;

        // SAFETY: the weights file is memory-mapped read-only. Changing it while mapped would be
        // undefined behaviour; Hearth never writes model files in place (downloads go to a
        // temporary name and are renamed over, which leaves the mapped file untouched).
        let weights = unsafe {
            VarBuilder::from_mmaped_safetensors(&[&files.weights_path], DType::F32, &device)
        }
        .map_err(|error| invalid_weights(&files.weights_path, error))?;
        let bert = BertModel::load(weights, &files.bert_config)
            .map_err(|error| invalid_weights(&files.weights_path, error))?;

        let mut tokenizer = files.tokenizer;
        // tokenizer.json ships with its own truncation (128) and fixed padding; the model's
        // max_seq_length decides truncation here and `embed` pads each batch to its longest.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: files.max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|error| EmbedError::UnsupportedModel {
                reason: format!("cannot truncate to {} tokens: {error}", files.max_tokens),
            })?;
        tokenizer.with_padding(None);

        let pad_token_id = u32::try_from(files.bert_config.pad_token_id).map_err(|_| {
            EmbedError::UnsupportedModel {
                reason: "pad_token_id does not fit in 32 bits".to_owned(),
            }
        })?;

        tracing::debug!(
            dimensions = files.bert_config.hidden_size,
            max_tokens = files.max_tokens,
            "embedding model loaded"
        );
        Ok(Self {
            bert,
            tokenizer,
            device,
            dimensions: files.bert_config.hidden_size,
            max_tokens: files.max_tokens,
            pad_token_id,
        })
    }

    /// Length of every embedding vector (384 for all-MiniLM-L6-v2).
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The longest input the model reads, in tokens with `[CLS]` and `[SEP]`; longer inputs are
    /// truncated and flagged in [`Embedding::truncated`].
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embeds a batch of texts in one forward pass and returns one embedding per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        let encodings = texts
            .iter()
            .map(|text| self.tokenizer.encode_fast(*text, true))
            .collect::<Result<Vec<Encoding>, _>>()
            .map_err(|error| EmbedError::Tokenization {
                message: error.to_string(),
            })?;
        let vectors = self.forward(&encodings).map_err(EmbedError::inference)?;
        let items = vectors
            .into_iter()
            .zip(&encodings)
            .map(|(vector, encoding)| Embedding {
                vector,
                n_tokens: encoding.len(),
                truncated: !encoding.get_overflowing().is_empty(),
            })
            .collect();
        Ok(Embeddings { items })
    }

    /// Runs the encoder over padded token ids, then mean-pools and normalizes each row.
    fn forward(&self, encodings: &[Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let batch_size = encodings.len();
        let longest = encodings.iter().map(Encoding::len).max().unwrap_or(0);
        let mut token_ids = Vec::with_capacity(batch_size * longest);
        let mut attention_mask = Vec::with_capacity(batch_size * longest);
        for encoding in encodings {
            let padding = longest - encoding.len();
            token_ids.extend_from_slice(encoding.get_ids());
            token_ids.extend(std::iter::repeat_n(self.pad_token_id, padding));
            attention_mask.extend(std::iter::repeat_n(1u32, encoding.len()));
            attention_mask.extend(std::iter::repeat_n(0u32, padding));
        }
        let token_ids = Tensor::from_vec(token_ids, (batch_size, longest), &self.device)?;
        let attention_mask = Tensor::from_vec(attention_mask, (batch_size, longest), &self.device)?;
        // Single-sentence inputs: every token is in segment 0.
        let token_type_ids = token_ids.zeros_like()?;

        let hidden = self
            .bert
            .forward(&token_ids, &token_type_ids, Some(&attention_mask))?;

        // Mean over real tokens only: padding rows are multiplied by zero and not counted.
        let mask = attention_mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;

        // L2 normalization as sentence-transformers' Normalize module does, so that cosine
        // similarity is a dot product for the vector index.
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

fn invalid_weights(path: &Path, error: candle_core::Error) -> EmbedError {
    EmbedError::InvalidFile {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}
