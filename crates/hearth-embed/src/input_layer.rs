//! BERT's input layer: each token's word embedding plus its position's embedding plus the
//! segment embedding, then a layer norm. The encoder layers after it are candle's.
//!
//! The word-embedding table is the largest tensor of a small BERT (MiniLM: 45 MiB of its
//! 87 MiB) and the only one used by lookup alone, so it stays in the file and each batch reads
//! just its rows ([`FileRows`]); the rest of the model is in memory.

use candle_core::{Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};
use candle_transformers::models::bert;

use crate::weights::FileRows;

pub(crate) struct InputLayer {
    words: FileRows,
    /// `max_position_embeddings` × hidden.
    positions: Tensor,
    /// 1 × hidden: segment 0's embedding. Every input here is a single sentence, segment 0.
    segment: Tensor,
    layer_norm: LayerNorm,
}

impl InputLayer {
    /// `weights` is the model's builder at the `embeddings` prefix; `words` its
    /// `word_embeddings.weight` rows.
    pub(crate) fn load(
        words: FileRows,
        weights: VarBuilder,
        config: &bert::Config,
    ) -> candle_core::Result<Self> {
        let hidden = config.hidden_size;
        if words.columns() != hidden || words.rows() != config.vocab_size {
            candle_core::bail!(
                "the word embeddings are {} × {}, but config.json says {} × {hidden}",
                words.rows(),
                words.columns(),
                config.vocab_size
            );
        }
        let positions = weights.get(
            (config.max_position_embeddings, hidden),
            "position_embeddings.weight",
        )?;
        let segment = weights
            .get(
                (config.type_vocab_size, hidden),
                "token_type_embeddings.weight",
            )?
            .narrow(0, 0, 1)?;
        let layer_norm =
            candle_nn::layer_norm(hidden, config.layer_norm_eps, weights.pp("LayerNorm"))?;
        Ok(Self {
            words,
            positions,
            segment,
            layer_norm,
        })
    }

    /// The input of the first encoder layer for `token_ids`, `batch` rows of `length` tokens
    /// each: batch × length × hidden.
    pub(crate) fn forward(
        &self,
        token_ids: &[u32],
        batch: usize,
        length: usize,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        if length > self.positions.dim(0)? {
            candle_core::bail!(
                "{length} tokens but only {} positions",
                self.positions.dim(0)?
            );
        }
        let words =
            self.words
                .gather(token_ids, device)?
                .reshape((batch, length, self.words.columns()))?;
        // Added in the order Hugging Face's BERT adds them (word + segment, then position),
        // so the sums round the same way.
        let summed = words
            .broadcast_add(&self.segment)?
            .broadcast_add(&self.positions.narrow(0, 0, length)?)?;
        self.layer_norm.forward(&summed)
    }
}
