//! Searching a collection: nearest vectors through the loaded index, BM25 through the store's
//! per-collection text index, and both fused by reciprocal rank. Every mode takes the same
//! metadata filter and returns `top_k` hits whenever that many documents match.

use std::collections::HashMap;

use hearth_store::{MemoryChunkRow, MemoryCollectionRow};

use super::{MAX_EF, MAX_TOP_K, Memory, document_of, loaded, validate};
use crate::{
    Filter, HybridWeights, MemoryError, SearchHit, SearchMode, SearchRequest, SearchResults,
};

/// Keyword matches read from the store per page while a filter rejects some of them.
const KEYWORD_PAGE: usize = 256;
/// Each side of a hybrid search ranks at least this many candidates before fusion, so a
/// document ranked moderately on both sides can still make the top.
const HYBRID_CANDIDATES: usize = 50;

/// A ranked chunk before its row is read: its key (sequence), score and, from keyword
/// search, its snippet.
struct Ranked {
    key: i64,
    score: f32,
    snippet: Option<String>,
}

/// The query vector and what embedding it cost.
struct QueryVector {
    vector: Vec<f32>,
    tokens: u64,
    model: Option<String>,
}

impl Memory {
    /// The documents that best match the request, best first: nearest vectors, best BM25
    /// matches (with snippets) or both fused, as `request.mode` says. With a filter, only
    /// documents whose metadata matches, and `top_k` of them whenever that many match.
    pub async fn search(
        &self,
        tenant_id: &str,
        collection: &str,
        request: &SearchRequest,
    ) -> Result<SearchResults, MemoryError> {
        validate::within("top_k", request.top_k, 1..=MAX_TOP_K)?;
        if let Some(ef) = request.ef {
            validate::within("ef", ef, 1..=MAX_EF)?;
        }
        let row = self.row(tenant_id, collection).await?;
        let filter = request.filter.as_ref();
        let text = request
            .text
            .as_deref()
            .filter(|text| !text.trim().is_empty());
        let mut query = None;
        let ranked = match request.mode {
            SearchMode::Vector => {
                if text.is_some() && request.vector.is_some() {
                    return Err(MemoryError::invalid(
                        "query",
                        "give either a text query or a vector for a vector search, not both",
                    ));
                }
                let vector = self.query_vector(&row, request).await?;
                let ranked = self
                    .vector_ranking(&row, &vector.vector, request.top_k, request.ef, filter)
                    .await?;
                query = Some(vector);
                ranked
            }
            SearchMode::Keyword => {
                if request.vector.is_some() {
                    return Err(MemoryError::invalid(
                        "vector",
                        "a keyword search matches text; send a text query without a vector",
                    ));
                }
                let text = required_text(text)?;
                self.keyword_ranking(&row, text, request.top_k, filter)
                    .await?
            }
            SearchMode::Hybrid(weights) => {
                let text = required_text(text)?;
                check_weights(&weights)?;
                let candidates = request.top_k.max(HYBRID_CANDIDATES);
                // The keyword side runs in the store while the model embeds the query (each on
                // its own thread): the search waits for the longer of the two, not their sum.
                let (vector, by_keyword) = tokio::join!(
                    self.query_vector(&row, request),
                    self.keyword_ranking(&row, text, candidates, filter)
                );
                let (vector, by_keyword) = (vector?, by_keyword?);
                let by_vector = self
                    .vector_ranking(&row, &vector.vector, candidates, request.ef, filter)
                    .await?;
                query = Some(vector);
                fuse(by_vector, by_keyword, &weights, request.top_k)
            }
        };
        let hits = self
            .read_hits(&row, ranked, request.include_embedding)
            .await?;
        let (embedding_tokens, embedding_model) = match query {
            Some(QueryVector { tokens, model, .. }) => (tokens, model),
            None => (0, None),
        };
        Ok(SearchResults {
            hits,
            embedding_tokens,
            embedding_model,
        })
    }

    /// The request's vector, or its text embedded with the collection's model.
    async fn query_vector(
        &self,
        row: &MemoryCollectionRow,
        request: &SearchRequest,
    ) -> Result<QueryVector, MemoryError> {
        let params = loaded::params_of(row)?;
        if let Some(vector) = &request.vector {
            validate::embedding("vector", vector, params.dim, params.metric)?;
            return Ok(QueryVector {
                vector: vector.clone(),
                tokens: 0,
                model: None,
            });
        }
        let text = request.text.as_deref().unwrap_or("");
        if text.trim().is_empty() {
            return Err(MemoryError::invalid(
                "query",
                "give a text query or a vector to search by",
            ));
        }
        let Some(model) = row.embedding_model.as_deref() else {
            return Err(MemoryError::invalid(
                "query",
                "this collection has no embedding model (it was created with dimensions alone); \
                 search it with a vector, or by keyword",
            ));
        };
        let mut embedded = self.embed("query", model, vec![text.to_string()]).await?;
        let vector = embedded.vectors.pop().unwrap_or_default();
        validate::embedding("query", &vector, params.dim, params.metric)?;
        Ok(QueryVector {
            vector,
            tokens: embedded.tokens,
            model: Some(model.to_string()),
        })
    }

    async fn vector_ranking(
        &self,
        row: &MemoryCollectionRow,
        vector: &[f32],
        k: usize,
        ef: Option<usize>,
        filter: Option<&Filter>,
    ) -> Result<Vec<Ranked>, MemoryError> {
        let index = self.index_of(row).await?;
        let ef = ef.unwrap_or(row.hnsw_ef as usize).max(k);
        Ok(index
            .search(vector, k, ef, filter)?
            .into_iter()
            .map(|(key, score)| Ranked {
                key: key as i64,
                score,
                snippet: None,
            })
            .collect())
    }

    /// The best BM25 matches, read a page at a time while the filter rejects some.
    async fn keyword_ranking(
        &self,
        row: &MemoryCollectionRow,
        text: &str,
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Ranked>, MemoryError> {
        let Some(query) = hearth_store::keyword_query(text) else {
            return Err(MemoryError::invalid(
                "query",
                "has no words to match; a keyword search needs letters or digits",
            ));
        };
        // Loaded first: it makes the text index of a collection made before keyword search.
        let index = self.index_of(row).await?;
        let page = if filter.is_some() {
            KEYWORD_PAGE.max(k)
        } else {
            k
        };
        let mut ranked = Vec::with_capacity(k);
        let mut offset = 0;
        loop {
            let rows = self
                .store
                .memory_keyword_search(&row.id, &query, page as i64, offset as i64)
                .await?;
            let last_page = rows.len() < page;
            offset += rows.len();
            let keys: Vec<u64> = rows.iter().map(|row| row.sequence as u64).collect();
            let allowed = match filter {
                Some(filter) => index.keys_matching(&keys, filter),
                None => vec![true; keys.len()],
            };
            for (row, allowed) in rows.into_iter().zip(allowed) {
                if allowed {
                    ranked.push(Ranked {
                        key: row.sequence,
                        score: row.score as f32,
                        snippet: Some(row.snippet),
                    });
                    if ranked.len() == k {
                        return Ok(ranked);
                    }
                }
            }
            if last_page {
                return Ok(ranked);
            }
        }
    }

    /// The ranked chunks' rows as hits, in rank order; a chunk deleted meanwhile is left out.
    async fn read_hits(
        &self,
        row: &MemoryCollectionRow,
        ranked: Vec<Ranked>,
        include_embedding: bool,
    ) -> Result<Vec<SearchHit>, MemoryError> {
        let keys: Vec<i64> = ranked.iter().map(|ranked| ranked.key).collect();
        let mut rows: HashMap<i64, MemoryChunkRow> = self
            .store
            .memory_chunks_by_sequence(&row.id, &keys)
            .await?
            .into_iter()
            .map(|chunk| (chunk.sequence, chunk))
            .collect();
        let dimensions = row.dimensions as usize;
        let mut hits = Vec::with_capacity(ranked.len());
        for ranked in ranked {
            if let Some(mut chunk) = rows.remove(&ranked.key) {
                // A hit is the passage that matched: the chunk's own text.
                chunk.document_text = None;
                let chunk_index = chunk.chunk_index.max(0) as usize;
                hits.push(SearchHit {
                    document: document_of(chunk, dimensions, include_embedding)?,
                    chunk_index,
                    score: ranked.score,
                    snippet: ranked.snippet,
                });
            }
        }
        Ok(hits)
    }
}

fn required_text(text: Option<&str>) -> Result<&str, MemoryError> {
    text.ok_or_else(|| {
        MemoryError::invalid(
            "query",
            "a keyword or hybrid search needs a text query to match",
        )
    })
}

fn check_weights(weights: &HybridWeights) -> Result<(), MemoryError> {
    let finite_non_negative = |value: f32| value.is_finite() && value >= 0.0;
    if !(weights.k.is_finite() && weights.k > 0.0) {
        return Err(MemoryError::invalid(
            "hybrid.k",
            "must be a positive number",
        ));
    }
    if !finite_non_negative(weights.vector_weight) || !finite_non_negative(weights.keyword_weight) {
        return Err(MemoryError::invalid(
            "hybrid",
            "weights must be finite and not negative",
        ));
    }
    if weights.vector_weight + weights.keyword_weight == 0.0 {
        return Err(MemoryError::invalid(
            "hybrid",
            "at least one weight must be above 0",
        ));
    }
    Ok(())
}

/// Reciprocal rank fusion of two rankings: `weight / (k + rank)` summed over the sides a
/// chunk appears on (ranks from 1), best `top_k` first; ties keep the vector side's order. A
/// keyword hit keeps its snippet.
fn fuse(
    by_vector: Vec<Ranked>,
    by_keyword: Vec<Ranked>,
    weights: &HybridWeights,
    top_k: usize,
) -> Vec<Ranked> {
    let mut fused: Vec<Ranked> = Vec::with_capacity(by_vector.len() + by_keyword.len());
    let mut position: HashMap<i64, usize> = HashMap::new();
    let sides = [
        (by_vector, weights.vector_weight),
        (by_keyword, weights.keyword_weight),
    ];
    for (ranking, weight) in sides {
        for (rank, ranked) in ranking.into_iter().enumerate() {
            let contribution = weight / (weights.k + rank as f32 + 1.0);
            match position.get(&ranked.key) {
                Some(&at) => {
                    fused[at].score += contribution;
                    if ranked.snippet.is_some() {
                        fused[at].snippet = ranked.snippet;
                    }
                }
                None => {
                    position.insert(ranked.key, fused.len());
                    fused.push(Ranked {
                        score: contribution,
                        ..ranked
                    });
                }
            }
        }
    }
    // Stable: equal scores keep the order they were first seen in.
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused.truncate(top_k);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranking(keys: &[i64]) -> Vec<Ranked> {
        keys.iter()
            .map(|&key| Ranked {
                key,
                score: 0.0,
                snippet: None,
            })
            .collect()
    }

    #[test]
    fn fusion_rewards_agreement_and_follows_the_weights() {
        let weights = HybridWeights::default();
        // 3 is second on both sides; 1 and 5 lead one side each and are missing from the other.
        let fused = fuse(ranking(&[1, 3, 2]), ranking(&[5, 3, 4]), &weights, 3);
        let keys: Vec<i64> = fused.iter().map(|ranked| ranked.key).collect();
        assert_eq!(keys, [3, 1, 5]);
        assert!((fused[0].score - 2.0 / 62.0).abs() < 1e-6);

        let keyword_only = HybridWeights {
            vector_weight: 0.0,
            ..weights
        };
        let fused = fuse(ranking(&[1, 3, 2]), ranking(&[5, 3, 4]), &keyword_only, 2);
        let keys: Vec<i64> = fused.iter().map(|ranked| ranked.key).collect();
        assert_eq!(keys, [5, 3]);
    }

    #[test]
    fn weights_that_rank_nothing_are_refused() {
        let zero = HybridWeights {
            vector_weight: 0.0,
            keyword_weight: 0.0,
            ..HybridWeights::default()
        };
        assert!(check_weights(&zero).is_err());
        let negative_k = HybridWeights {
            k: -1.0,
            ..HybridWeights::default()
        };
        assert!(check_weights(&negative_k).is_err());
        assert!(check_weights(&HybridWeights::default()).is_ok());
    }
}
