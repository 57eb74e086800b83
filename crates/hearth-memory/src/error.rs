//! The crate's one error type.

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
    /// A snapshot file is damaged, truncated or of an unknown version; it must not be served.
    #[error("snapshot {path} is unusable: {reason}")]
    SnapshotCorrupt { path: PathBuf, reason: String },
}
