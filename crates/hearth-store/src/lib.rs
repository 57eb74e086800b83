//! Hearth's durable state.
//!
//! [`Store`] owns the SQLite database in the data directory: it checks the file's integrity
//! before anything writes to it, runs the versioned migrations embedded in the binary, and
//! offers the queries the domain crates need. SQL is kept portable (numbered `$N` parameters,
//! `BIGINT` timestamps in milliseconds, text ids made by the caller) so that the same queries
//! can run on PostgreSQL when scale-out arrives.
//!
//! This crate knows nothing of HTTP or configuration files; ids and timestamps come from the
//! caller, and the store writes them as given.

mod audit;
mod conversations;
mod error;
mod experiments;
mod files;
mod flags;
mod gateway;
mod graphs;
mod jobs;
mod memory;
mod memory_text;
mod migrations;
mod plugins;
mod prompts;
mod responses;
mod store;
mod vector_stores;

pub use audit::AuditEntry;
pub use error::StoreError;
pub use experiments::{
    EXPOSURE_METRICS, ExperimentRow, ExposureKey, ExposureRow, FeedbackRow, VariantSums,
};
pub use files::{FileQuery, FileRow};
pub use flags::FlagRow;
pub use gateway::{
    KeyRow, LimitColumns, TenantRow, TokenTotal, UsageGroup, UsageQuery, UsageRow, UserRow,
};
pub use graphs::{
    EdgeDirection, GraphEdge, GraphNodeRow, GraphRelationRow, GraphRow, NeighborRow, NewGraphNode,
    NewGraphRelation, NodesDeleted, RelationsWrite,
};
pub use jobs::{JobAttemptRow, JobRow, JobRunRow};
pub use memory::{
    CollectionWrite, MemoryChunkKey, MemoryChunkRow, MemoryCollectionRow, MemoryWrite,
    NewMemoryChunk,
};
pub use memory_text::{KeywordRow, SNIPPET_CLOSE, SNIPPET_OPEN, keyword_query};
pub use migrations::MigrationState;
pub use plugins::PluginRow;
pub use prompts::{PromptLabelRow, PromptVersionRow};
pub use responses::{MAX_RESPONSE_CHAIN, ResponseRow};
pub use store::{DATABASE_FILE, IntegrityCheck, OpenOptions, Store};
pub use vector_stores::{
    FileCounts, IngestOutcome, ListWindow, VectorStoreFileBatchRow, VectorStoreFileQuery,
    VectorStoreFileRow, VectorStoreRow,
};
