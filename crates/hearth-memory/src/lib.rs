//! Hearth's memory: the index core a collection is built from, and the collections service
//! over the store. Nothing of HTTP or JSON wire types (metadata and filters are plain
//! `serde_json::Value`s); its SQL lives in `hearth-store`'s memory module.
//!
//! - [`Memory`] (module `collections`): tenant-scoped collections and documents, durable in
//!   the store before a write is acknowledged, searched through an index per collection that
//!   loads from its snapshot plus the writes after it.
//! - [`Filter`]: OpenAI's metadata filter language, parsed and evaluated.
//! - [`Metric`] and [`Kernels`]: distances with run-time-detected SIMD kernels.
//! - [`Hnsw`]: the graph index: parallel build, searches concurrent with inserts, tombstone
//!   deletes, filtered search with an exact-scan planner, optional int8 quantization with
//!   rescoring, and checksummed snapshots.
//! - [`IdSet`]: a set of internal ids whose size the planner uses.
//! - [`Int8Quantizer`]: per-dimension scalar quantization.
//! - [`Conversations`]: conversation memory, the chat turns apps ask Hearth to remember,
//!   recalled per user (one collection per tenant, every read filtered by user).
//! - [`Files`] and [`VectorStores`]: OpenAI's Files API and vector stores, a vector store
//!   being a collection whose documents are the text of attached files, read in the
//!   background.
//!
//! How a collection is expected to hold an index: documents get a `u64` key (their row in the
//! store); the index maps keys to dense internal `u32` ids and back. Searches, inserts,
//! deletes and snapshots all take `&self` and run concurrently; only growing the index
//! ([`Hnsw::reserve`]) needs `&mut self`, so the collection keeps it in an `RwLock` whose
//! write side is taken for that alone (doubling the capacity keeps it rare), and swaps in the
//! result of [`Hnsw::compacted`] once tombstones pile up. Metadata filters become an
//! [`Allowed`]: an [`IdSet`] when a payload index can list the matches (the planner then
//! knows their number), or a predicate over internal ids otherwise.
//!
//! ```
//! use hearth_memory::{Allowed, Filter, Hnsw, HnswParams, Metric, SearchOptions};
//! use serde_json::json;
//!
//! let index = Hnsw::new(HnswParams::new(3, Metric::Cosine), 100, None)?;
//! let vectors = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.7, 0.7, 0.0];
//! index.insert_batch(&[10, 20, 30], &vectors, 1)?;
//! let hits = index.search(&[1.0, 0.1, 0.0], &SearchOptions::new(2))?;
//! assert_eq!(hits.iter().map(|hit| hit.key).collect::<Vec<_>>(), [10, 30]);
//!
//! // A metadata filter, evaluated while the graph is searched.
//! let metadata = [json!({"lang": "en"}), json!({"lang": "fr"}), json!({"lang": "fr"})];
//! let filter = Filter::parse(&json!({"key": "lang", "type": "eq", "value": "fr"}))?;
//! let matches = |id: u32| filter.matches(&metadata[id as usize]);
//! let options = SearchOptions { allowed: Allowed::Predicate(&matches), ..SearchOptions::new(1) };
//! assert_eq!(index.search(&[1.0, 0.1, 0.0], &options)?[0].key, 30);
//! # Ok::<(), hearth_memory::MemoryError>(())
//! ```

mod collections;
mod conversations;
mod distance;
mod embedder;
mod error;
mod extract;
mod files;
mod filter;
mod hnsw;
mod idset;
mod office;
mod quant;
pub mod retrieval;
mod vector_stores;

pub use collections::{
    Collection, CollectionUpdate, Document, DocumentSelector, HybridWeights, MAX_PAGE_LIMIT,
    MAX_TOP_K, Memory, MemoryOptions, NewCollection, NewDocument, Page, PageRequest,
    SNAPSHOT_DIRECTORY, SearchHit, SearchMode, SearchRequest, SearchResults, Upserted,
};
pub use conversations::{
    Conversations, Exchange, RecalledTurn, Recollection, Remembered, Turn, check_user,
};
pub use distance::{Kernels, Metric, normalize, scalar};
pub use embedder::{ChunkSize, EmbedFailure, EmbedFailureKind, EmbedFuture, Embedded, Embedder};
pub use error::MemoryError;
pub use extract::extract_text;
pub use files::{
    FILE_PURPOSES, FILES_DIRECTORY, FileListRequest, FilePage, Files, MAX_FILE_PAGE, StoredFile,
};
pub use filter::{CompareOp, Filter, FilterValue, Scalar};
pub use hnsw::{Allowed, Hit, Hnsw, HnswParams, Plan, SearchOptions};
pub use idset::IdSet;
pub use quant::Int8Quantizer;
pub use vector_stores::{
    AttachedFile, Chunking, FileBatch, FileCounts, FileStatus, FileToAttach, IngestError,
    IngestObserver, IngestReport, ListPage, ListRequest, MAX_FILES_PER_REQUEST, MAX_LIST_LIMIT,
    MAX_SEARCH_RESULTS, NewVectorStore, StoreHit, StoreSearch, StoreSearchResults, VectorStore,
    VectorStoreStatus, VectorStoreUpdate, VectorStores,
};
