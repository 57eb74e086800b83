//! The domain types of vector stores, as the service takes and returns them (the server turns
//! OpenAI's JSON shapes into these and back).

use serde_json::{Map, Value};

pub use hearth_store::FileCounts;

use crate::{Filter, HybridWeights};

/// How a file's text is cut into chunks, in the embedding model's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// OpenAI's `auto`: 800 tokens with 400 overlap.
    Auto,
    /// OpenAI's `static`: 100 to 4096 tokens, overlap at most half of that.
    Static {
        max_tokens: usize,
        overlap_tokens: usize,
    },
}

impl Chunking {
    /// The sizes asked for: `auto` is 800 with 400 overlap. A model that reads fewer tokens
    /// gets chunks of what it reads, the overlap keeping its share (see
    /// [`crate::ChunkSize::resolve`]).
    pub fn sizes(self) -> (usize, usize) {
        match self {
            Chunking::Auto => (800, 400),
            Chunking::Static {
                max_tokens,
                overlap_tokens,
            } => (max_tokens, overlap_tokens),
        }
    }
}

/// Where a vector store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorStoreStatus {
    /// Some files are still being read.
    InProgress,
    Completed,
    /// Unused for longer than its `expires_after`: it can no longer be searched or changed.
    Expired,
}

impl VectorStoreStatus {
    pub fn name(self) -> &'static str {
        match self {
            VectorStoreStatus::InProgress => "in_progress",
            VectorStoreStatus::Completed => "completed",
            VectorStoreStatus::Expired => "expired",
        }
    }
}

/// A vector store.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorStore {
    /// `vs_` and 32 hex digits.
    pub id: String,
    pub name: String,
    pub metadata: Map<String, Value>,
    pub created_at_ms: i64,
    pub last_active_at_ms: i64,
    /// Days of inactivity after which it expires.
    pub expires_after_days: Option<u32>,
    pub expires_at_ms: Option<i64>,
    pub status: VectorStoreStatus,
    pub file_counts: FileCounts,
}

/// A file to attach, with its own attributes and chunking (`None`: the request's).
#[derive(Debug, Clone, PartialEq)]
pub struct FileToAttach {
    pub file_id: String,
    pub attributes: Option<Value>,
    pub chunking: Option<Chunking>,
}

impl FileToAttach {
    pub fn new(file_id: impl Into<String>) -> FileToAttach {
        FileToAttach {
            file_id: file_id.into(),
            attributes: None,
            chunking: None,
        }
    }
}

/// What a new vector store is made with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewVectorStore {
    pub name: Option<String>,
    pub files: Vec<FileToAttach>,
    /// For files that name none.
    pub chunking: Option<Chunking>,
    /// A JSON object of up to 16 short strings; `None`: empty.
    pub metadata: Option<Value>,
    pub expires_after_days: Option<u32>,
}

/// Changes to a vector store; `None` keeps the current value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorStoreUpdate {
    pub name: Option<String>,
    pub metadata: Option<Value>,
    /// `Some(None)` removes the expiry.
    pub expires_after_days: Option<Option<u32>>,
}

/// Where a file's ingestion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

impl FileStatus {
    pub fn name(self) -> &'static str {
        match self {
            FileStatus::InProgress => "in_progress",
            FileStatus::Completed => "completed",
            FileStatus::Failed => "failed",
            FileStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<FileStatus> {
        Some(match name {
            "in_progress" => FileStatus::InProgress,
            "completed" => FileStatus::Completed,
            "failed" => FileStatus::Failed,
            "cancelled" => FileStatus::Cancelled,
            _ => return None,
        })
    }
}

/// Why a file could not be read into a store: OpenAI's codes (`server_error`,
/// `unsupported_file`, `invalid_file`) and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestError {
    pub code: String,
    pub message: String,
}

/// A file attached to a vector store.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachedFile {
    pub file_id: String,
    pub vector_store_id: String,
    pub batch_id: Option<String>,
    pub filename: String,
    pub status: FileStatus,
    pub last_error: Option<IngestError>,
    pub attributes: Map<String, Value>,
    pub chunking: Chunking,
    pub usage_bytes: u64,
    pub created_at_ms: i64,
}

/// A batch of files attached together.
#[derive(Debug, Clone, PartialEq)]
pub struct FileBatch {
    /// `vsfb_` and 32 hex digits.
    pub id: String,
    pub vector_store_id: String,
    pub created_at_ms: i64,
    /// `in_progress` while any of its files is, `cancelled` once cancelled, else `completed`.
    pub status: FileStatus,
    pub file_counts: FileCounts,
}

/// Which page of a list, in OpenAI's cursor style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub after: Option<String>,
    pub before: Option<String>,
    /// 1 to 100.
    pub limit: usize,
    /// Newest first (OpenAI's default) when true.
    pub descending: bool,
}

impl ListRequest {
    /// The newest `limit` items.
    pub fn newest(limit: usize) -> ListRequest {
        ListRequest {
            after: None,
            before: None,
            limit,
            descending: true,
        }
    }
}

/// A page of a list and whether more follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// A search of a vector store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSearch {
    /// One or more queries, searched together.
    pub queries: Vec<String>,
    /// 1 to 50.
    pub max_num_results: usize,
    pub filter: Option<Filter>,
    /// Hits scoring below it (0 to 1) are left out.
    pub score_threshold: f32,
    /// How the vector and keyword rankings are fused.
    pub weights: HybridWeights,
}

impl StoreSearch {
    /// Up to 10 results for `query`, unfiltered, equal weights.
    pub fn new(query: impl Into<String>) -> StoreSearch {
        StoreSearch {
            queries: vec![query.into()],
            max_num_results: 10,
            filter: None,
            score_threshold: 0.0,
            weights: HybridWeights::default(),
        }
    }
}

/// One passage that matched, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreHit {
    pub file_id: String,
    pub filename: String,
    /// 0 to 1: the fused rank score over the best a passage can get (first on both sides).
    pub score: f32,
    pub attributes: Map<String, Value>,
    pub text: String,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreSearchResults {
    pub hits: Vec<StoreHit>,
    /// Tokens the embedding model read for the query.
    pub embedding_tokens: u64,
    pub embedding_model: Option<String>,
}

/// What an ingestion did, for the caller's metrics and usage.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    pub tenant_id: String,
    pub vector_store_id: String,
    pub file_id: String,
    pub status: FileStatus,
    pub chunks: usize,
    pub embedding_tokens: u64,
    pub embedding_model: Option<String>,
}
