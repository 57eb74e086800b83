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
//!
//! How a collection is expected to hold an index: documents get a `u64` key (their row in the
//! store); the index maps keys to dense internal `u32` ids and back. Searches, inserts,
//! deletes and snapshots all take `&self` and run concurrently; only growing the index
//! ([`Hnsw::reserve`]) needs `&mut self`, so the collection keeps it in an `RwLock` whose
//! write side is taken for that alone (doubling the capacity keeps it rare), and swaps in the
//! result of [`Hnsw::compacted`] once tombstones pile up. Metadata filters become an
//! [`Allowed`]: an [`IdSet`] when a payload index can list the matches (the planner then
//! knows their number), or a predicate over internal ids otherwise.

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
