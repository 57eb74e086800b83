//! The embedding model: tokenizer, BERT encoder, mean pooling and normalization.
//!
//! [`EmbeddingModel::embed`] tokenizes a batch, sorts it by token count and runs the encoder
//! over groups of similar length (see [`plan_passes`]): on a CPU every padding token costs as
//! much as a real one, so one query padded to the length of a document chunk would waste most of
//! a pass. Within a pass, inputs are padded on the right to the longest one and the attention
//! mask keeps padding out of both the attention and the pooling, so an input gets the same
//! vector alone or in any batch.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
use candle_transformers::models::bert::BertEncoder;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::EmbedError;
use crate::input_layer::InputLayer;
use crate::model_files::ModelFiles;
use crate::weights::SafetensorsFile;

/// A sentence embedding model loaded in memory, ready to embed batches on the CPU.
pub struct EmbeddingModel {
    input: InputLayer,
    encoder: BertEncoder,
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation, for splitting long text into chunks.
    splitter: Tokenizer,
    device: Device,
    dimensions: usize,
    max_tokens: usize,
    pad_token_id: u32,
    forward_passes: AtomicU64,
}

/// Padding may add at most this share of the real tokens to a pass before the next, longer
/// inputs go to a pass of their own; below it, one pass with a little padding beats two.
const PADDING_ALLOWANCE: f64 = 0.25;

/// The most token positions (inputs × longest input) in one pass. Attention holds
/// inputs × heads × longest² scores, so this bounds memory for a caller that sends thousands of
/// inputs at once: 8192 positions are 32 inputs of 256 tokens, about 100 MB of scores.
const MAX_PASS_POSITIONS: usize = 8192;

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

/// Splits text into chunks of a model's tokens; see [`EmbeddingModel::chunk`].
#[derive(Clone)]
pub struct Chunker {
    splitter: Tokenizer,
    max_content_tokens: usize,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Chunker")
            .field("max_content_tokens", &self.max_content_tokens)
            .finish_non_exhaustive()
    }
}

impl Chunker {
    /// The most tokens of text the model reads in one input (its limit less `[CLS]` and
    /// `[SEP]`): the largest chunk that is embedded whole.
    pub fn max_content_tokens(&self) -> usize {
        self.max_content_tokens
    }

    /// See [`EmbeddingModel::chunk`].
    pub fn chunk(
        &self,
        text: &str,
        max_tokens: usize,
        overlap: usize,
    ) -> Result<Vec<std::ops::Range<usize>>, EmbedError> {
        let encoding =
            self.splitter
                .encode(text, false)
                .map_err(|error| EmbedError::Tokenization {
                    message: error.to_string(),
                })?;
        Ok(crate::token_windows(
            encoding.get_offsets(),
            text.len(),
            max_tokens,
            overlap,
        )?)
    }
}

impl EmbeddingModel {
    /// Loads a sentence-transformers BERT model from `dir` (see the crate docs for the files).
    ///
    /// The weights are read tensor by tensor into memory, so loading holds them once, except
    /// the word embeddings, which are read row by row as batches need them (see `weights`).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let files = ModelFiles::read(dir.as_ref())?;
        let device = Device::Cpu;

        let file = SafetensorsFile::open(&files.weights_path).map_err(|reason| {
            EmbedError::InvalidFile {
                path: files.weights_path.clone(),
                reason,
            }
        })?;
        let invalid = |reason: String| EmbedError::InvalidFile {
            path: files.weights_path.clone(),
            reason,
        };
        // Checkpoints saved from a task model prefix every name with `bert.`.
        let prefix = if file.contains_tensor("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let words = file
            .rows(&format!("{prefix}embeddings.word_embeddings.weight"))
            .map_err(invalid)?;
        let weights = VarBuilder::from_backend(Box::new(file), DType::F32, device.clone());
        let weights = if prefix.is_empty() {
            weights
        } else {
            weights.pp("bert")
        };
        let input = InputLayer::load(words, weights.pp("embeddings"), &files.bert_config)
            .map_err(|error| invalid_weights(&files.weights_path, error))?;
        let encoder = BertEncoder::load(weights.pp("encoder"), &files.bert_config)
            .map_err(|error| invalid_weights(&files.weights_path, error))?;

        let mut tokenizer = files.tokenizer;
        let mut splitter = tokenizer.clone();
        splitter
            .with_truncation(None)
            .map_err(|error| EmbedError::UnsupportedModel {
                reason: format!("cannot turn truncation off: {error}"),
            })?;
        splitter.with_padding(None);
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
            input,
            encoder,
            tokenizer,
            splitter,
            device,
            dimensions: files.bert_config.hidden_size,
            max_tokens: files.max_tokens,
            pad_token_id,
            forward_passes: AtomicU64::new(0),
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

    /// Splits `text` into chunks of at most `max_tokens` of this model's tokens (`[CLS]` and
    /// `[SEP]` not counted), consecutive ones sharing `overlap` tokens: byte ranges that cover
    /// the text whole (see [`crate::token_windows`]).
    pub fn chunk(
        &self,
        text: &str,
        max_tokens: usize,
        overlap: usize,
    ) -> Result<Vec<std::ops::Range<usize>>, EmbedError> {
        self.chunker().chunk(text, max_tokens, overlap)
    }

    /// What splits text as this model counts tokens, usable apart from the model (the
    /// service's callers split on their own threads while the worker embeds).
    pub fn chunker(&self) -> Chunker {
        Chunker {
            splitter: self.splitter.clone(),
            max_content_tokens: self.max_tokens.saturating_sub(2).max(1),
        }
    }

    /// Forward passes of the encoder run so far; one `embed` call runs one or more.
    pub fn forward_passes(&self) -> u64 {
        self.forward_passes.load(Ordering::Relaxed)
    }

    /// Embeds a batch of texts and returns one embedding per text, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        let encodings = texts
            .iter()
            .map(|text| self.tokenizer.encode_fast(*text, true))
            .collect::<Result<Vec<Encoding>, _>>()
            .map_err(|error| EmbedError::Tokenization {
                message: error.to_string(),
            })?;

        let mut by_length: Vec<usize> = (0..encodings.len()).collect();
        by_length.sort_by_key(|&index| encodings[index].len());
        let sorted_lengths: Vec<usize> = by_length
            .iter()
            .map(|&index| encodings[index].len())
            .collect();

        let mut vectors = vec![Vec::new(); encodings.len()];
        for pass in plan_passes(&sorted_lengths) {
            let members = &by_length[pass];
            let pass_encodings: Vec<&Encoding> =
                members.iter().map(|&index| &encodings[index]).collect();
            let pass_vectors = self
                .forward(&pass_encodings)
                .map_err(EmbedError::inference)?;
            self.forward_passes.fetch_add(1, Ordering::Relaxed);
            for (&index, vector) in members.iter().zip(pass_vectors) {
                vectors[index] = vector;
            }
        }

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
    fn forward(&self, encodings: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let batch_size = encodings.len();
        let longest = encodings
            .iter()
            .map(|encoding| encoding.len())
            .max()
            .unwrap_or(0);
        let mut token_ids = Vec::with_capacity(batch_size * longest);
        // 1 for a real token, 0 for padding (pooling), and what attention adds to the scores
        // of each key: 0 for a real token, the lowest float for padding, so softmax gives
        // padding no weight.
        let mut real = Vec::with_capacity(batch_size * longest);
        let mut score_bias = Vec::with_capacity(batch_size * longest);
        for encoding in encodings {
            let padding = longest - encoding.len();
            token_ids.extend_from_slice(encoding.get_ids());
            token_ids.extend(std::iter::repeat_n(self.pad_token_id, padding));
            real.extend(std::iter::repeat_n(1f32, encoding.len()));
            real.extend(std::iter::repeat_n(0f32, padding));
            score_bias.extend(std::iter::repeat_n(0f32, encoding.len()));
            score_bias.extend(std::iter::repeat_n(f32::MIN, padding));
        }
        let score_bias = Tensor::from_vec(score_bias, (batch_size, 1, 1, longest), &self.device)?;

        let embedded = self
            .input
            .forward(&token_ids, batch_size, longest, &self.device)?;
        let hidden = self.encoder.forward(&embedded, &score_bias)?;

        // Mean over real tokens only: padding rows are multiplied by zero and not counted.
        let mask = Tensor::from_vec(real, (batch_size, longest, 1), &self.device)?;
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

/// Splits inputs sorted by token count into passes: consecutive ranges of the sorted order
/// where padding to the longest adds at most [`PADDING_ALLOWANCE`] of the real tokens and a pass
/// holds at most [`MAX_PASS_POSITIONS`] positions (a single input always gets a pass).
fn plan_passes(sorted_lengths: &[usize]) -> Vec<Range<usize>> {
    let mut passes = Vec::new();
    let mut start = 0;
    let mut real_tokens = 0;
    for (index, &length) in sorted_lengths.iter().enumerate() {
        let inputs = index - start + 1;
        // Sorted, so `length` is the longest of the pass if this input joins it.
        let positions = inputs * length;
        let padding = positions - (real_tokens + length);
        let too_much_padding = padding as f64 > PADDING_ALLOWANCE * (real_tokens + length) as f64;
        if index > start && (too_much_padding || positions > MAX_PASS_POSITIONS) {
            passes.push(start..index);
            start = index;
            real_tokens = 0;
        }
        real_tokens += length;
    }
    if start < sorted_lengths.len() {
        passes.push(start..sorted_lengths.len());
    }
    passes
}

fn invalid_weights(path: &Path, error: candle_core::Error) -> EmbedError {
    EmbedError::InvalidFile {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::plan_passes;

    #[test]
    fn passes_group_inputs_of_similar_length() {
        // Passes are written as (start, end) ranges of the sorted order.
        type Case<'a> = (&'a [usize], &'a [(usize, usize)]);
        let cases: &[Case] = &[
            (&[], &[]),
            (&[7], &[(0, 1)]),
            // Equal lengths: no padding at all, one pass.
            (&[10, 10, 10, 10], &[(0, 4)]),
            // A little padding is cheaper than a second pass.
            (&[9, 10, 10, 11], &[(0, 4)]),
            // One document chunk among queries gets a pass of its own.
            (&[8, 9, 10, 12, 200], &[(0, 4), (4, 5)]),
            (&[5, 5, 20, 21, 22, 256], &[(0, 2), (2, 5), (5, 6)]),
        ];
        for (lengths, expected) in cases {
            let passes: Vec<(usize, usize)> = plan_passes(lengths)
                .into_iter()
                .map(|pass| (pass.start, pass.end))
                .collect();
            assert_eq!(passes, *expected, "lengths {lengths:?}");
        }
    }

    #[test]
    fn a_pass_never_exceeds_the_position_budget() {
        let lengths = vec![256; 100];
        let passes = plan_passes(&lengths);
        assert_eq!(passes.len(), 4, "{passes:?}");
        for pass in passes {
            assert!(pass.len() * 256 <= super::MAX_PASS_POSITIONS);
        }
    }
}
