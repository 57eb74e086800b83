//! The benchmark's guest for Extism: the same logic as Hearth's `unruly` sample plugin.

use extism_pdk::*;

/// Answers its input: the no-op call whose cost is the host's.
#[plugin_fn]
pub fn echo(input: String) -> FnResult<String> {
    Ok(input)
}

/// Loops forever: what a time limit must stop.
#[plugin_fn]
pub fn spin(_input: String) -> FnResult<String> {
    let mut counter: u64 = 0;
    loop {
        counter = core::hint::black_box(counter.wrapping_add(1));
    }
}

/// Allocates until it cannot: what a memory limit must stop.
#[plugin_fn]
pub fn grow(_input: String) -> FnResult<String> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![1u8; 1 << 20]);
        core::hint::black_box(&blocks);
    }
}
