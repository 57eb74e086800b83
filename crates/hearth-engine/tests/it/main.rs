//! Integration tests of the engine against the real sample model (Gemma 3 270M Q4_K_M).
//! One test binary for the whole crate keeps link times down; the model is memory-mapped, so
//! each test loading it again costs little.

mod batching;
mod constrained;
mod loading;
mod penalties;
mod prefix_reuse;
mod requests;
mod speculation;
mod support;
mod tokenizer;
