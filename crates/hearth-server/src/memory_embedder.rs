//! Memory's [`Embedder`] over the local model pool: the same loaded embedding models, with
//! their batching across requests, that `/v1/embeddings` uses.

use std::sync::Arc;

use hearth_embed::EmbedError;
use hearth_inference::{Inference, InferenceError};
use hearth_memory::{ChunkSize, EmbedFailure, EmbedFailureKind, EmbedFuture, Embedded, Embedder};

/// Embeds with the models of an [`Inference`].
#[derive(Clone)]
pub struct PoolEmbedder(pub Arc<Inference>);

impl std::fmt::Debug for PoolEmbedder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PoolEmbedder")
            .finish_non_exhaustive()
    }
}

fn failure(error: InferenceError) -> EmbedFailure {
    let kind = match &error {
        InferenceError::ModelNotFound(_) | InferenceError::WrongKind { .. } => {
            EmbedFailureKind::UnknownModel
        }
        InferenceError::Embed(EmbedError::QueueFull { .. }) => EmbedFailureKind::Busy,
        InferenceError::Embed(EmbedError::Tokenization { .. }) => EmbedFailureKind::InvalidInput,
        _ => EmbedFailureKind::Unavailable,
    };
    EmbedFailure::new(kind, error.to_string())
}

impl Embedder for PoolEmbedder {
    fn dimensions<'a>(&'a self, model: &'a str) -> EmbedFuture<'a, usize> {
        Box::pin(async move {
            let (_, service) = self.0.embedding_model(model, None).await.map_err(failure)?;
            Ok(service.dimensions())
        })
    }

    fn embed<'a>(&'a self, model: &'a str, texts: Vec<String>) -> EmbedFuture<'a, Embedded> {
        Box::pin(async move {
            let (_, service) = self.0.embedding_model(model, None).await.map_err(failure)?;
            let embeddings = service
                .embed(texts)
                .await
                .map_err(|error| failure(InferenceError::Embed(error)))?;
            let tokens = embeddings.total_tokens() as u64;
            Ok(Embedded {
                vectors: embeddings
                    .items
                    .into_iter()
                    .map(|item| item.vector)
                    .collect(),
                tokens,
            })
        })
    }

    fn chunk<'a>(
        &'a self,
        model: &'a str,
        texts: &'a [&'a str],
        size: ChunkSize,
    ) -> EmbedFuture<'a, Vec<Vec<std::ops::Range<usize>>>> {
        Box::pin(async move {
            let (_, service) = self.0.embedding_model(model, None).await.map_err(failure)?;
            let chunker = service.chunker();
            let (max, overlap) = size.resolve(chunker.max_content_tokens());
            texts
                .iter()
                .map(|text| chunker.chunk(text, max, overlap))
                .collect::<Result<_, _>>()
                .map_err(|error| failure(InferenceError::Embed(error)))
        })
    }
}
