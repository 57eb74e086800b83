//! Integration tests of the memory index core: recall against exact search, filtered search at
//! several selectivities, deletes, concurrent reads during writes, int8 quantization and
//! snapshots. One test binary keeps link times down.

mod filtered;
mod mutation;
mod quantized;
mod recall;
mod snapshot;
mod support;
