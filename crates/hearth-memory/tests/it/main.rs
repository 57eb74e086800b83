//! Integration tests of the memory index core: recall against exact search, filtered search at
//! several selectivities, deletes, concurrent reads during writes, int8 quantization and
//! snapshots; and of the collections service over a real store, embedding text with the real
//! local model. One test binary keeps link
//! times down.

mod collections;
mod conversations;
mod embedded;
mod files;
mod filtered;
mod mutation;
mod quantized;
mod recall;
mod snapshot;
mod support;
mod vector_stores;
