//! Hearth's memory index core: the pieces a collection is built from, and nothing of HTTP,
//! SQL or JSON wire types (metadata and filters are plain `serde_json::Value`s).
//!
//! - [`Filter`]: OpenAI's metadata filter language, parsed and evaluated.
//! - [`Metric`] and [`Kernels`]: distances with run-time-detected SIMD kernels.
//! - [`Hnsw`]: the graph index: parallel build, searches concurrent with inserts, tombstone
//!   deletes, filtered search with an exact-scan planner, optional int8 quantization with
//!   rescoring, and checksummed snapshots.
//! - [`IdSet`]: a set of internal ids whose size the planner uses.
//! - [`Int8Quantizer`]: per-dimension scalar quantization.

mod distance;
mod error;
mod filter;
mod hnsw;
mod idset;
mod quant;

pub use distance::{Kernels, Metric, normalize, scalar};
pub use error::MemoryError;
pub use filter::{CompareOp, Filter, FilterValue, Scalar};
pub use hnsw::{Allowed, Hit, Hnsw, HnswParams, Plan, SearchOptions};
pub use idset::IdSet;
pub use quant::Int8Quantizer;
