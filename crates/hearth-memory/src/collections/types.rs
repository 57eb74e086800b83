//! The domain types of collections and documents, as the service takes and returns them.
//! None of them is a wire type: the server converts its JSON shapes into these.

use serde_json::{Map, Value};

use crate::{Filter, Metric};

/// What a new collection is made with; [`NewCollection::new`] gives the usual defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCollection {
    pub name: String,
    pub metric: Metric,
    /// Dimensions of every embedding. `None`: the embedding model's. Given with a model, they
    /// must be the model's.
    pub dimensions: Option<usize>,
    /// The model that embeds text sent without an embedding. `None` with no dimensions: the
    /// service's default model; `None` with dimensions: clients supply every embedding.
    pub embedding_model: Option<String>,
    /// Keep int8 codes beside the f32 vectors: searches traverse on the codes and rescore.
    pub int8: bool,
    pub m: usize,
    pub ef_construction: usize,
    /// The search effort used when a search does not give its own.
    pub ef: usize,
    /// Must be a JSON object.
    pub metadata: Value,
}

impl NewCollection {
    /// A cosine collection of `dimensions` for vectors the client supplies, with m 16,
    /// ef_construction 200, ef 64 and no metadata.
    pub fn new(name: impl Into<String>, dimensions: usize) -> NewCollection {
        NewCollection {
            dimensions: Some(dimensions),
            ..NewCollection::embedded(name, None)
        }
    }

    /// A cosine collection whose text is embedded by `model` (`None`: the service's default
    /// model), with the same defaults as [`NewCollection::new`].
    pub fn embedded(name: impl Into<String>, model: Option<String>) -> NewCollection {
        NewCollection {
            name: name.into(),
            metric: Metric::Cosine,
            dimensions: None,
            embedding_model: model,
            int8: false,
            m: 16,
            ef_construction: 200,
            ef: 64,
            metadata: Value::Object(Map::new()),
        }
    }
}

/// A stored collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub metric: Metric,
    pub dimensions: usize,
    pub embedding_model: Option<String>,
    pub int8: bool,
    pub m: usize,
    pub ef_construction: usize,
    pub ef: usize,
    pub metadata: Map<String, Value>,
    pub created_at_ms: i64,
}

/// Changes to a collection; `None` keeps the current value. The metric, dimensions and graph
/// shape are fixed at creation, since the index is built with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionUpdate {
    pub name: Option<String>,
    /// Replaces the whole metadata object.
    pub metadata: Option<Value>,
    pub ef: Option<usize>,
}

/// A document to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// `None`: a time-ordered id (UUIDv7) is made.
    pub id: Option<String>,
    pub text: String,
    /// Must be a JSON object.
    pub metadata: Value,
    /// The caller's embedding; `None`: `text` is embedded with the collection's model.
    pub embedding: Option<Vec<f32>>,
}

impl NewDocument {
    /// A document whose text the collection's model embeds, with no id or metadata.
    pub fn text(text: impl Into<String>) -> NewDocument {
        NewDocument {
            id: None,
            text: text.into(),
            metadata: Value::Object(Map::new()),
            embedding: None,
        }
    }

    /// A document with a given embedding and no id or metadata.
    pub fn with_embedding(text: impl Into<String>, embedding: Vec<f32>) -> NewDocument {
        NewDocument {
            id: None,
            text: text.into(),
            metadata: Value::Object(Map::new()),
            embedding: Some(embedding),
        }
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub metadata: Map<String, Value>,
    /// Present when asked for.
    pub embedding: Option<Vec<f32>>,
}

/// A page of results and the cursor of the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as [`PageRequest::after`] to get the next page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `limit + 1` items read in cursor order: the extra item only tells
    /// that another page follows, whose cursor is the last kept item's (`cursor_of`).
    pub(crate) fn from_overfetched(
        mut items: Vec<T>,
        limit: usize,
        cursor_of: impl Fn(&T) -> String,
    ) -> Page<T> {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// Which page to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The cursor of the previous page; `None` for the first.
    pub after: Option<String>,
    /// At most this many items (1 to [`crate::MAX_PAGE_LIMIT`]).
    pub limit: usize,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: usize) -> PageRequest {
        PageRequest { after: None, limit }
    }
}

/// Which documents a delete removes.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentSelector {
    Ids(Vec<String>),
    Filter(Filter),
}

/// How a search ranks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchMode {
    /// Nearest vectors.
    Vector,
    /// BM25 over the text, with highlighted snippets.
    Keyword,
    /// Vector and keyword rankings fused by reciprocal rank.
    Hybrid(HybridWeights),
}

impl SearchMode {
    /// The API's name of the mode: `vector`, `keyword` or `hybrid`.
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Vector => "vector",
            SearchMode::Keyword => "keyword",
            SearchMode::Hybrid(_) => "hybrid",
        }
    }
}

/// Reciprocal rank fusion: a hit scores `weight / (k + rank)` on each side it appears on
/// (ranks from 1), summed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridWeights {
    pub k: f32,
    pub vector_weight: f32,
    pub keyword_weight: f32,
}

impl Default for HybridWeights {
    /// k 60 (the constant of the RRF paper, and Qdrant's and OpenAI's), equal weights.
    fn default() -> HybridWeights {
        HybridWeights {
            k: 60.0,
            vector_weight: 1.0,
            keyword_weight: 1.0,
        }
    }
}

/// A search: a vector, text, or both (hybrid search may take the text for keywords and the
/// client's vector for the other side).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Matched by keyword search; embedded with the collection's model for vector search
    /// when no `vector` is given.
    pub text: Option<String>,
    pub vector: Option<Vec<f32>>,
    pub mode: SearchMode,
    pub top_k: usize,
    pub filter: Option<Filter>,
    /// The search effort; `None` uses the collection's.
    pub ef: Option<usize>,
    pub include_embedding: bool,
}

impl SearchRequest {
    /// The `top_k` nearest documents to `vector`, unfiltered.
    pub fn new(vector: Vec<f32>, top_k: usize) -> SearchRequest {
        SearchRequest {
            text: None,
            vector: Some(vector),
            ..SearchRequest::text(String::new(), top_k)
        }
    }

    /// The `top_k` documents nearest to the embedding of `text`, unfiltered.
    pub fn text(text: impl Into<String>, top_k: usize) -> SearchRequest {
        SearchRequest {
            text: Some(text.into()),
            vector: None,
            mode: SearchMode::Vector,
            top_k,
            filter: None,
            ef: None,
            include_embedding: false,
        }
    }

    /// The `top_k` documents whose text best matches `text` by BM25.
    pub fn keyword(text: impl Into<String>, top_k: usize) -> SearchRequest {
        SearchRequest {
            mode: SearchMode::Keyword,
            ..SearchRequest::text(text, top_k)
        }
    }

    /// The `top_k` documents of the vector and keyword rankings of `text`, fused.
    pub fn hybrid(text: impl Into<String>, top_k: usize) -> SearchRequest {
        SearchRequest {
            mode: SearchMode::Hybrid(HybridWeights::default()),
            ..SearchRequest::text(text, top_k)
        }
    }
}

/// One search result, best first: the passage (chunk) of a document that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The document's id and metadata, with the chunk's text (and embedding, if asked).
    pub document: Document,
    /// Which chunk of the document matched (0 for a document stored in one piece).
    pub chunk_index: usize,
    /// Higher is better: cosine similarity, inner product or negated Euclidean distance for
    /// vector search, BM25 for keyword search, the fused score for hybrid search.
    pub score: f32,
    /// For hits keyword search found: a fragment of the text with the matched terms between
    /// `<mark>` and `</mark>`.
    pub snippet: Option<String>,
}

/// The hits of a search, closest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Tokens the embedding model read for a text query (0 for a vector).
    pub embedding_tokens: u64,
    /// The model that embedded the query, if one did.
    pub embedding_model: Option<String>,
}

/// What an upsert stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Upserted {
    /// The documents' ids in request order, made for those sent without one.
    pub ids: Vec<String>,
    /// The chunks stored for them (a document embedded in several pieces is several).
    pub chunks: usize,
    /// Tokens the embedding model read for documents sent without an embedding.
    pub embedding_tokens: u64,
    /// The model that embedded them, if one did.
    pub embedding_model: Option<String>,
}
