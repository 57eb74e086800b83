//! The crate's one error type: the index core's errors and the collection service's.

use std::path::PathBuf;

/// Everything that can go wrong in the memory index core.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A filter expression is malformed; `path` names the bad part, e.g. `filters[1].type`.
    #[error("invalid filter at `{path}`: {reason}")]
    InvalidFilter { path: String, reason: String },
    /// A vector has the wrong number of dimensions for the index.
    #[error("vector has {found} dimensions, the index expects {expected}")]
    DimensionMismatch { expected: usize, found: usize },
    /// A vector holds NaN or an infinity.
    #[error("vector holds a value that is not finite at dimension {index}")]
    NonFiniteValue { index: usize },
    /// A cosine index cannot normalize an all-zero vector.
    #[error("a zero vector has no direction, so it cannot be indexed for cosine similarity")]
    ZeroVector,
    /// The index is full; grow it with `Hnsw::reserve` first.
    #[error("the index holds {capacity} vectors and is full")]
    CapacityExhausted { capacity: usize },
    /// Index parameters out of range.
    #[error("invalid index parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// A snapshot file could not be read or written.
    #[error("snapshot I/O on {path}: {source}")]
    SnapshotIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored file's bytes could not be read or written.
    #[error("file I/O on {path}: {source}")]
    FileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A snapshot file is damaged, truncated or of an unknown version; it must not be served.
    #[error("snapshot {path} is unusable: {reason}")]
    SnapshotCorrupt { path: PathBuf, reason: String },
    /// A collection (or another named thing) does not exist for this tenant. Another tenant's
    /// collection is reported this way too, never as forbidden.
    #[error("{what} not found")]
    NotFound { what: String },
    /// A field of the request has a bad value; `field` names it, e.g. `documents[3].embedding`.
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    /// A request is over a size limit (documents per upsert, text bytes).
    #[error("`{field}` is too large: {reason}")]
    TooLarge { field: String, reason: String },
    /// Text could not be embedded; `field` names the text (`documents[2].text`, `query`) or
    /// the model (`embedding_model`).
    #[error("cannot embed `{field}`: {failure}")]
    Embedding {
        field: String,
        failure: crate::EmbedFailure,
    },
    /// A tenant is at one of its limits (collections, file bytes); `field` names what the
    /// request would have added.
    #[error("{reason}")]
    LimitReached { field: String, reason: String },
    /// The name is taken, e.g. a collection name within its tenant.
    #[error("{0}")]
    Conflict(String),
    /// A stored row cannot be read back (an embedding of the wrong length, metadata that is
    /// not JSON).
    #[error("stored data is unreadable: {0}")]
    StoredData(String),
    #[error("storage failed: {0}")]
    Store(#[from] hearth_store::StoreError),
}

impl MemoryError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> MemoryError {
        MemoryError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn too_large(field: impl Into<String>, reason: impl Into<String>) -> MemoryError {
        MemoryError::TooLarge {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
