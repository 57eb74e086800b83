//! The JSON shapes of the native memory API under `/v1/collections`, and their conversion into
//! `hearth-memory`'s domain types. Lists are OpenAI's `{"object": "list", "data": [...]}` with
//! a cursor; filters are OpenAI's metadata filters, parsed by the domain.

use hearth_memory::{Collection, Document, Metric, SearchHit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The distance a collection ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricIo {
    /// Cosine similarity (vectors are normalized when stored).
    Cosine,
    /// Inner product.
    Dot,
    /// Euclidean distance; scores are its negation, so higher is closer.
    L2,
}

impl From<MetricIo> for Metric {
    fn from(metric: MetricIo) -> Metric {
        match metric {
            MetricIo::Cosine => Metric::Cosine,
            MetricIo::Dot => Metric::Dot,
            MetricIo::L2 => Metric::L2,
        }
    }
}

impl From<Metric> for MetricIo {
    fn from(metric: Metric) -> MetricIo {
        match metric {
            Metric::Cosine => MetricIo::Cosine,
            Metric::Dot => MetricIo::Dot,
            Metric::L2 => MetricIo::L2,
        }
    }
}

/// How vectors are kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuantizationIo {
    /// 32-bit floats only.
    None,
    /// int8 codes beside the floats: searches traverse on the codes and rescore with the
    /// floats.
    Int8,
}

/// The graph's parameters, fixed at creation except `ef`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HnswIo {
    /// Neighbours per node (2–128; default 16).
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub m: Option<u64>,
    /// Search effort while building (default 200).
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub ef_construction: Option<u64>,
    /// Search effort of a search that gives none (default 64).
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub ef: Option<u64>,
}

/// `POST /v1/collections`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionIn {
    /// 1–128 characters: letters, digits, `-`, `_` and `.`; unique within the tenant.
    pub name: String,
    /// Default `cosine`.
    pub metric: Option<MetricIo>,
    /// For vectors you supply. Omitted: the embedding model's.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub dimensions: Option<u64>,
    /// The model that embeds text sent without an embedding. Omitted with no `dimensions`:
    /// the server's default embedding model.
    pub embedding_model: Option<String>,
    /// Default `none`.
    pub quantization: Option<QuantizationIo>,
    pub hnsw: Option<HnswIo>,
    /// Your own key-value data (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `PATCH /v1/collections/{name}`: what is given changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionPatch {
    /// A new name.
    pub name: Option<String>,
    /// Replaces the whole metadata object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Only `ef` can change; the graph is built with the others.
    pub hnsw: Option<HnswPatch>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HnswPatch {
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub ef: Option<u64>,
}

/// A collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionOut {
    /// Always `collection`.
    pub object: &'static str,
    pub id: String,
    pub name: String,
    pub metric: MetricIo,
    pub dimensions: usize,
    /// `null` when clients supply every vector.
    pub embedding_model: Option<String>,
    pub quantization: QuantizationIo,
    pub hnsw: HnswIo,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Unix seconds.
    pub created_at: i64,
    /// How many documents it holds; given when one collection is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_count: Option<usize>,
}

impl From<Collection> for CollectionOut {
    fn from(collection: Collection) -> CollectionOut {
        CollectionOut {
            object: "collection",
            id: collection.id,
            name: collection.name,
            metric: collection.metric.into(),
            dimensions: collection.dimensions,
            embedding_model: collection.embedding_model,
            quantization: if collection.int8 {
                QuantizationIo::Int8
            } else {
                QuantizationIo::None
            },
            hnsw: HnswIo {
                m: Some(collection.m as u64),
                ef_construction: Some(collection.ef_construction as u64),
                ef: Some(collection.ef as u64),
            },
            metadata: collection.metadata,
            created_at: collection.created_at_ms.div_euclid(1000),
            document_count: None,
        }
    }
}

/// A page of a list, OpenAI's shape plus the cursor of the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl<T> Paged<T> {
    pub fn of<D>(page: hearth_memory::Page<D>, convert: impl FnMut(D) -> T) -> Paged<T> {
        Paged {
            object: "list",
            has_more: page.next_cursor.is_some(),
            next_cursor: page.next_cursor,
            data: page.items.into_iter().map(convert).collect(),
        }
    }
}

/// `?after=&limit=` of a list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// 1–1000; default 100.
    pub limit: Option<usize>,
}

/// `?after=&limit=&filter=&include=` of a document list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentsQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// 1–1000; default 100.
    pub limit: Option<usize>,
    /// A metadata filter as JSON (URL-encoded).
    pub filter: Option<String>,
    /// `embedding` to return the vectors too.
    pub include: Option<String>,
}

/// `?include=embedding` of a document read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuery {
    /// `embedding` to return the vector too.
    pub include: Option<String>,
}

/// One document to upsert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// Omitted: a time-ordered id is made. A stored id is replaced.
    pub id: Option<String>,
    /// Embedded with the collection's model unless `embedding` is given.
    #[serde(default)]
    pub text: String,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// A vector of the collection's dimensions, finite values only.
    pub embedding: Option<Vec<f32>>,
}

/// `POST /v1/collections/{name}/documents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertIn {
    pub documents: Vec<DocumentIn>,
}

/// Tokens the embedding model read for the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingUsageOut {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

impl EmbeddingUsageOut {
    pub fn of(tokens: u64) -> EmbeddingUsageOut {
        EmbeddingUsageOut {
            prompt_tokens: tokens,
            total_tokens: tokens,
        }
    }
}

/// What an upsert stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpsertOut {
    /// Always `list`.
    pub object: &'static str,
    /// The documents' ids, in request order.
    pub ids: Vec<String>,
    pub usage: EmbeddingUsageOut,
}

/// A stored document.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentOut {
    /// Always `document`.
    pub object: &'static str,
    pub id: String,
    pub text: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

impl From<Document> for DocumentOut {
    fn from(document: Document) -> DocumentOut {
        DocumentOut {
            object: "document",
            id: document.id,
            text: document.text,
            metadata: document.metadata,
            embedding: document.embedding,
        }
    }
}

/// `POST /v1/collections/{name}/delete`: ids or a filter, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteIn {
    pub ids: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

/// How many documents a delete removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedCount {
    /// Always `document.deleted`.
    pub object: &'static str,
    pub deleted: usize,
}

/// Something deleted, by its name or id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    /// `collection.deleted` or `document.deleted`.
    pub object: &'static str,
    pub deleted: bool,
}

/// How a search ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Nearest vectors (the default).
    Vector,
    /// BM25 over the text.
    Keyword,
    /// Vector and keyword results fused by reciprocal rank.
    Hybrid,
}

/// A field a search hit may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncludeField {
    Text,
    Metadata,
    Embedding,
}

/// How a hybrid search fuses its rankings: reciprocal rank fusion, each side's hits scoring
/// `weight / (k + rank)`. The weights' names are those of OpenAI's `hybrid_search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HybridIo {
    /// Default 60.
    pub k: Option<f32>,
    /// The vector side's weight; default 1.
    pub embedding_weight: Option<f32>,
    /// The keyword side's weight; default 1.
    pub text_weight: Option<f32>,
}

/// `POST /v1/collections/{name}/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchIn {
    /// Text: matched by keyword search, embedded with the collection's model for vector
    /// search when no `vector` is given.
    pub query: Option<String>,
    /// A vector of the collection's dimensions (vector and hybrid search).
    pub vector: Option<Vec<f32>>,
    /// 1–1000; default 10.
    pub top_k: Option<usize>,
    /// An OpenAI metadata filter, applied while the index is searched.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Default `vector`.
    pub mode: Option<SearchMode>,
    /// Fusion of a hybrid search.
    pub hybrid: Option<HybridIo>,
    /// The fields each hit carries; default `["text", "metadata"]`.
    pub include: Option<Vec<IncludeField>>,
    /// Search effort for this search (default: the collection's `hnsw.ef`).
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub ef: Option<u64>,
}

/// One hit, closest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitOut {
    pub id: String,
    /// Higher is better: cosine similarity, inner product or negated Euclidean distance for
    /// vector search, BM25 for keyword search, the fused score for hybrid search.
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// For keyword matches: a fragment of the text with the matched terms between `<mark>`
    /// and `</mark>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// Which chunk of the document matched: long text is split into chunks the embedding
    /// model reads whole, and `text` is that chunk's.
    pub chunk_index: usize,
}

impl SearchHitOut {
    pub fn of(hit: SearchHit, include: &[IncludeField]) -> SearchHitOut {
        let wants = |field| include.contains(&field);
        SearchHitOut {
            score: hit.score,
            text: wants(IncludeField::Text).then_some(hit.document.text),
            metadata: wants(IncludeField::Metadata).then_some(hit.document.metadata),
            embedding: hit.document.embedding,
            id: hit.document.id,
            snippet: hit.snippet,
            chunk_index: hit.chunk_index,
        }
    }
}

/// The hits of a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchOut {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<SearchHitOut>,
    pub usage: EmbeddingUsageOut,
}
