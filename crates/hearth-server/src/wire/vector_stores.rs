//! The JSON shapes of OpenAI's vector stores (`/v1/vector_stores`), and their conversion into
//! `hearth-memory`'s domain types. Requests are not strict about unknown fields: OpenAI adds
//! fields to these shapes, and its clients send them.

use hearth_memory::{
    AttachedFile, Chunking, FileBatch, FileCounts, FileToAttach, StoreHit, VectorStore,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::OneOrMany;

/// How files are cut into chunks.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChunkingIn {
    /// 800 tokens with 400 overlap.
    Auto,
    Static {
        #[serde(rename = "static")]
        sizes: StaticSizes,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StaticSizes {
    /// 100–4096.
    pub max_chunk_size_tokens: usize,
    /// At most half of `max_chunk_size_tokens`.
    pub chunk_overlap_tokens: usize,
}

impl From<ChunkingIn> for Chunking {
    fn from(chunking: ChunkingIn) -> Chunking {
        match chunking {
            ChunkingIn::Auto => Chunking::Auto,
            ChunkingIn::Static { sizes } => Chunking::Static {
                max_tokens: sizes.max_chunk_size_tokens,
                overlap_tokens: sizes.chunk_overlap_tokens,
            },
        }
    }
}

/// A file's chunking as OpenAI reports it: always `static` with the sizes (`auto` is 800/400).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkingOut {
    /// Always `static`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "static")]
    pub sizes: StaticSizes,
}

impl From<Chunking> for ChunkingOut {
    fn from(chunking: Chunking) -> ChunkingOut {
        let (max, overlap) = chunking.sizes();
        ChunkingOut {
            kind: "static",
            sizes: StaticSizes {
                max_chunk_size_tokens: max,
                chunk_overlap_tokens: overlap,
            },
        }
    }
}

/// When a vector store expires: `days` after it was last used.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExpiresAfter {
    /// Always `last_active_at`.
    pub anchor: String,
    /// 1–365.
    pub days: u32,
}

/// `POST /v1/vector_stores`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VectorStoreCreate {
    pub name: Option<String>,
    /// Files to attach at once (the caller's, from `/v1/files`).
    #[serde(default)]
    pub file_ids: Vec<String>,
    pub chunking_strategy: Option<ChunkingIn>,
    /// Up to 16 string values.
    pub metadata: Option<Map<String, Value>>,
    pub expires_after: Option<ExpiresAfter>,
}

/// `POST /v1/vector_stores/{id}`: each field present replaces the current value; a
/// `null` `expires_after` removes the expiry.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VectorStoreModify {
    pub name: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ExpiresAfter>)]
    pub expires_after: Option<Option<ExpiresAfter>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// File counts by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileCountsOut {
    pub in_progress: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub total: i64,
}

impl From<FileCounts> for FileCountsOut {
    fn from(counts: FileCounts) -> FileCountsOut {
        FileCountsOut {
            in_progress: counts.in_progress,
            completed: counts.completed,
            failed: counts.failed,
            cancelled: counts.cancelled,
            total: counts.total(),
        }
    }
}

fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// A vector store.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorStoreOut {
    pub id: String,
    /// Always `vector_store`.
    pub object: &'static str,
    /// Unix seconds.
    pub created_at: i64,
    pub name: String,
    /// Bytes its files' passages take.
    pub usage_bytes: i64,
    pub file_counts: FileCountsOut,
    /// `in_progress`, `completed` or `expired`.
    pub status: &'static str,
    pub expires_after: Option<ExpiresAfter>,
    pub expires_at: Option<i64>,
    pub last_active_at: i64,
    pub metadata: Map<String, Value>,
}

impl From<VectorStore> for VectorStoreOut {
    fn from(store: VectorStore) -> VectorStoreOut {
        VectorStoreOut {
            object: "vector_store",
            created_at: seconds(store.created_at_ms),
            name: store.name,
            usage_bytes: store.file_counts.usage_bytes,
            file_counts: store.file_counts.into(),
            status: store.status.name(),
            expires_after: store.expires_after_days.map(|days| ExpiresAfter {
                anchor: "last_active_at".to_string(),
                days,
            }),
            expires_at: store.expires_at_ms.map(seconds),
            last_active_at: seconds(store.last_active_at_ms),
            metadata: store.metadata,
            id: store.id,
        }
    }
}

/// Query of the lists: OpenAI's cursors.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1–100; default 20.
    pub limit: Option<usize>,
    /// `asc` or `desc` (default) by creation time.
    pub order: Option<super::files::Order>,
    /// An id: the page starts after it.
    pub after: Option<String>,
    /// An id: the page ends before it.
    pub before: Option<String>,
    /// Files only: `in_progress`, `completed`, `failed` or `cancelled`.
    pub filter: Option<String>,
}

/// A page of vector stores.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorStoreList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<VectorStoreOut>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

/// A page of a vector store's files.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorStoreFileList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<VectorStoreFileOut>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

/// What a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedOut {
    pub id: String,
    /// `vector_store.deleted` or `vector_store.file.deleted`.
    pub object: &'static str,
    pub deleted: bool,
}

/// `POST /v1/vector_stores/{id}/files`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FileAttach {
    pub file_id: String,
    /// Up to 16 values (strings, numbers, booleans) that filters can match.
    pub attributes: Option<Map<String, Value>>,
    pub chunking_strategy: Option<ChunkingIn>,
}

impl From<FileAttach> for FileToAttach {
    fn from(file: FileAttach) -> FileToAttach {
        FileToAttach {
            file_id: file.file_id,
            attributes: file.attributes.map(Value::Object),
            chunking: file.chunking_strategy.map(Chunking::from),
        }
    }
}

/// `POST /v1/vector_stores/{id}/files/{file_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FileAttributesIn {
    /// Replaces the file's attributes.
    pub attributes: Option<Map<String, Value>>,
}

/// Why a file could not be read.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastErrorOut {
    /// `server_error`, `unsupported_file` or `invalid_file`.
    pub code: String,
    pub message: String,
}

/// A file attached to a vector store.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorStoreFileOut {
    /// The file's id.
    pub id: String,
    /// Always `vector_store.file`.
    pub object: &'static str,
    pub usage_bytes: u64,
    pub created_at: i64,
    pub vector_store_id: String,
    /// `in_progress`, `completed`, `failed` or `cancelled`.
    pub status: &'static str,
    pub last_error: Option<LastErrorOut>,
    pub chunking_strategy: ChunkingOut,
    pub attributes: Map<String, Value>,
}

impl From<AttachedFile> for VectorStoreFileOut {
    fn from(file: AttachedFile) -> VectorStoreFileOut {
        VectorStoreFileOut {
            object: "vector_store.file",
            usage_bytes: file.usage_bytes,
            created_at: seconds(file.created_at_ms),
            vector_store_id: file.vector_store_id,
            status: file.status.name(),
            last_error: file.last_error.map(|error| LastErrorOut {
                code: error.code,
                message: error.message,
            }),
            chunking_strategy: file.chunking.into(),
            attributes: file.attributes,
            id: file.file_id,
        }
    }
}

/// A passage of text.
#[derive(Debug, Serialize, ToSchema)]
pub struct TextPart {
    /// Always `text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

impl TextPart {
    pub fn of(text: String) -> TextPart {
        TextPart { kind: "text", text }
    }
}

/// `GET /v1/vector_stores/{id}/files/{file_id}/content`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileContentOut {
    /// Always `vector_store.file_content.page`.
    pub object: &'static str,
    pub data: Vec<TextPart>,
    pub has_more: bool,
    pub next_page: Option<String>,
}

/// `POST /v1/vector_stores/{id}/file_batches`: `file_ids` sharing the request's attributes
/// and chunking, or `files` each with its own.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchCreate {
    #[serde(default)]
    pub file_ids: Vec<String>,
    #[serde(default)]
    pub files: Vec<FileAttach>,
    pub attributes: Option<Map<String, Value>>,
    pub chunking_strategy: Option<ChunkingIn>,
}

/// A batch of attached files.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    pub id: String,
    /// Always `vector_store.files_batch`.
    pub object: &'static str,
    pub created_at: i64,
    pub vector_store_id: String,
    /// `in_progress`, `completed` or `cancelled`.
    pub status: &'static str,
    pub file_counts: FileCountsOut,
}

impl From<FileBatch> for BatchOut {
    fn from(batch: FileBatch) -> BatchOut {
        BatchOut {
            object: "vector_store.files_batch",
            created_at: seconds(batch.created_at_ms),
            vector_store_id: batch.vector_store_id,
            status: batch.status.name(),
            file_counts: batch.file_counts.into(),
            id: batch.id,
        }
    }
}

/// Hybrid weights of a search.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HybridSearchIn {
    pub embedding_weight: Option<f32>,
    pub text_weight: Option<f32>,
}

/// How results are ranked.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RankingOptionsIn {
    /// `auto`, `default-2024-11-15` or `none`: all rank the same here (hybrid, fused by
    /// reciprocal rank).
    pub ranker: Option<String>,
    /// 0–1: results below it are left out.
    pub score_threshold: Option<f32>,
    pub hybrid_search: Option<HybridSearchIn>,
}

/// A search of vector stores as OpenAI's fields give it (the search endpoint's and the
/// Responses API's `file_search` tool's): `param` prefixes the fields named in errors.
pub fn store_search(
    queries: Vec<String>,
    max_num_results: usize,
    filters: Option<&Value>,
    ranking: Option<&RankingOptionsIn>,
    param: &str,
) -> Result<hearth_memory::StoreSearch, crate::error::ApiError> {
    let defaults = hearth_memory::HybridWeights::default();
    let hybrid = ranking.and_then(|options| options.hybrid_search.as_ref());
    let filter = filters
        .map(|value| {
            hearth_memory::Filter::parse(value).map_err(|error| {
                crate::error::ApiError::from(error).with_param(format!("{param}filters"))
            })
        })
        .transpose()?;
    Ok(hearth_memory::StoreSearch {
        queries,
        max_num_results,
        filter,
        score_threshold: ranking
            .and_then(|options| options.score_threshold)
            .unwrap_or(0.0),
        weights: hearth_memory::HybridWeights {
            k: defaults.k,
            vector_weight: hybrid
                .and_then(|hybrid| hybrid.embedding_weight)
                .unwrap_or(defaults.vector_weight),
            keyword_weight: hybrid
                .and_then(|hybrid| hybrid.text_weight)
                .unwrap_or(defaults.keyword_weight),
        },
    })
}

/// `POST /v1/vector_stores/{id}/search`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StoreSearchIn {
    /// One query or several, searched together.
    pub query: OneOrMany,
    /// 1–50; default 10.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub max_num_results: Option<usize>,
    /// OpenAI's attribute filter: comparisons and compounds.
    pub filters: Option<Value>,
    pub ranking_options: Option<RankingOptionsIn>,
    /// Accepted; queries are searched as given (no model rewrites them).
    pub rewrite_query: Option<bool>,
}

/// One matching passage.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreHitOut {
    pub file_id: String,
    pub filename: String,
    /// 0–1, higher is better.
    pub score: f32,
    pub attributes: Map<String, Value>,
    pub content: Vec<TextPart>,
}

impl From<StoreHit> for StoreHitOut {
    fn from(hit: StoreHit) -> StoreHitOut {
        StoreHitOut {
            file_id: hit.file_id,
            filename: hit.filename,
            score: hit.score,
            attributes: hit.attributes,
            content: vec![TextPart::of(hit.text)],
        }
    }
}

/// What a search answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreSearchOut {
    /// Always `vector_store.search_results.page`.
    pub object: &'static str,
    pub search_query: Vec<String>,
    pub data: Vec<StoreHitOut>,
    pub has_more: bool,
    pub next_page: Option<String>,
}
