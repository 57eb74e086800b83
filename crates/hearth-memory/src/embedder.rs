//! What the memory service needs of an embedding model: its dimensions, and one vector per
//! text. The service holds an [`Embedder`] and calls it for documents sent without an
//! embedding and for text queries; the binary wires one over its local model pool, so this
//! crate never loads a model itself.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

/// A boxed future, so that [`Embedder`] can be used as a trait object.
pub type EmbedFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EmbedFailure>> + Send + 'a>>;

/// Embeds text with named models.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// The length of the model's vectors (loading the model when it is not loaded).
    fn dimensions<'a>(&'a self, model: &'a str) -> EmbedFuture<'a, usize>;

    /// One vector per text, in order, with the tokens the model read.
    fn embed<'a>(&'a self, model: &'a str, texts: Vec<String>) -> EmbedFuture<'a, Embedded>;

    /// Splits each text into chunks the model reads whole: byte ranges that cover it, each at
    /// most `size.max_tokens` of the model's tokens (never more than the model reads),
    /// consecutive ones sharing `size.overlap_tokens`. One list of ranges per text, in order.
    fn chunk<'a>(
        &'a self,
        model: &'a str,
        texts: &'a [&'a str],
        size: ChunkSize,
    ) -> EmbedFuture<'a, Vec<Vec<Range<usize>>>>;
}

/// How large chunks are, in the model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkSize {
    /// `None`: as many as the model reads in one input.
    pub max_tokens: Option<usize>,
    /// `None`: a quarter of the chunk.
    pub overlap_tokens: Option<usize>,
}

impl ChunkSize {
    /// The chunk and overlap for a model that reads `model_tokens` tokens of text at most. A
    /// chunk asked larger than the model reads is cut to what it reads, and its overlap keeps
    /// its share of the chunk (OpenAI's 800 with 400 overlap is 254 with 127 for a model of
    /// 254), so the chunks still step forward.
    pub fn resolve(self, model_tokens: usize) -> (usize, usize) {
        let model_tokens = model_tokens.max(1);
        let asked = self.max_tokens.unwrap_or(model_tokens).max(1);
        let max = asked.min(model_tokens);
        let overlap = match self.overlap_tokens {
            Some(overlap) => overlap * max / asked,
            None => max / 4,
        };
        (max, overlap.min(max - 1))
    }
}

/// The vectors of one [`Embedder::embed`] call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, which count against the caller's limits and usage.
    pub tokens: u64,
}

/// Why text could not be embedded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedFailure {
    pub kind: EmbedFailureKind,
    /// What went wrong and what to do, as the model layer said it.
    pub message: String,
}

/// What kind of failure an [`EmbedFailure`] is, which decides how a caller answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedFailureKind {
    /// No such model, or it is not an embedding model: the request names the wrong one.
    UnknownModel,
    /// The text cannot be embedded (it does not tokenize).
    InvalidInput,
    /// The model's queue is full: retry shortly.
    Busy,
    /// The model cannot run now (failed to load, over the memory budget, stopped).
    Unavailable,
}

impl EmbedFailure {
    pub fn new(kind: EmbedFailureKind, message: impl Into<String>) -> EmbedFailure {
        EmbedFailure {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for EmbedFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::ChunkSize;

    #[test]
    fn chunks_larger_than_the_model_keep_their_overlap_share() {
        let openai_auto = ChunkSize {
            max_tokens: Some(800),
            overlap_tokens: Some(400),
        };
        assert_eq!(openai_auto.resolve(254), (254, 127));
        assert_eq!(openai_auto.resolve(8192), (800, 400));
        assert_eq!(ChunkSize::default().resolve(254), (254, 63));
        let no_step = ChunkSize {
            max_tokens: Some(10),
            overlap_tokens: Some(50),
        };
        assert_eq!(no_step.resolve(254), (10, 9));
    }
}
