//! Settings of one loaded model: how many sequences run in parallel, how big each one's context
//! is, and how the scheduler slices work into llama.cpp batches.

use crate::EngineError;

/// How keys and values are stored in the KV cache. Quantized caches take about half
/// (`q8_0`) or a quarter (`q4_0`) of the memory of `f16`, at a small cost in accuracy; they
/// need flash attention, which the engine then turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvCacheType {
    /// llama.cpp's default: exact.
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

impl KvCacheType {
    pub const NAMES: [&'static str; 3] = ["f16", "q8_0", "q4_0"];

    pub fn name(self) -> &'static str {
        match self {
            KvCacheType::F16 => "f16",
            KvCacheType::Q8_0 => "q8_0",
            KvCacheType::Q4_0 => "q4_0",
        }
    }

    pub fn from_name(name: &str) -> Option<KvCacheType> {
        match name {
            "f16" => Some(KvCacheType::F16),
            "q8_0" => Some(KvCacheType::Q8_0),
            "q4_0" => Some(KvCacheType::Q4_0),
            _ => None,
        }
    }

    pub fn is_quantized(self) -> bool {
        self != KvCacheType::F16
    }
}

/// llama.cpp's bound on the digits of each part of a JSON number (`[1-9] [0-9]{0,15}`).
pub const DEFAULT_JSON_NUMBER_MAX_DIGITS: usize = 16;

/// How a model is run. Defaults suit a small model on a laptop CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Sequences decoded together in every step (the number of slots).
    pub n_parallel: usize,
    /// Context window of each sequence, in tokens (prompt plus completion).
    pub n_ctx_per_seq: usize,
    /// Most tokens handed to llama.cpp in one decode call; decode steps never exceed it.
    pub n_batch: usize,
    /// Most prompt tokens processed per step, shared by all sequences still reading their prompt,
    /// so that running streams keep producing tokens while a long prompt is read.
    pub prefill_chunk: usize,
    /// CPU threads llama.cpp uses for both decoding and prompt processing.
    pub threads: usize,
    /// Requests that may wait for a free slot; one more is refused with `QueueFull`.
    pub queue_capacity: usize,
    /// How the KV cache stores keys and values.
    pub kv_cache_type: KvCacheType,
    /// Most digits in each part (integral, fraction, exponent) of a number in grammar-constrained
    /// JSON output; 0 leaves numbers unbounded. llama.cpp's JSON grammars allow 16.
    pub json_number_max_digits: usize,
    /// Most tokens prompt-lookup speculative decoding drafts for a sequence in one step (each
    /// sequence starts lower and adapts to how many are accepted); 0 turns it off.
    pub lookup_draft_max: usize,
}

/// The largest draft allowed: a rejected draft's KV entries are removed again, and a
/// sliding-window layer keeps `n_ubatch` cells beyond its window, so a draft shorter than the
/// smallest pass never pushes out entries the sequence still needs.
pub const MAX_LOOKUP_DRAFT: usize = 64;

/// llama-server's default for its drafts (`--draft-max`).
pub const DEFAULT_LOOKUP_DRAFT_MAX: usize = 16;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            n_parallel: 4,
            n_ctx_per_seq: 2048,
            n_batch: 512,
            prefill_chunk: 256,
            threads: 2,
            queue_capacity: 64,
            kv_cache_type: KvCacheType::F16,
            json_number_max_digits: DEFAULT_JSON_NUMBER_MAX_DIGITS,
            lookup_draft_max: DEFAULT_LOOKUP_DRAFT_MAX,
        }
    }
}

impl EngineConfig {
    /// The batch size actually used: llama.cpp never batches more tokens than the whole context
    /// holds, so a larger `n_batch` is cut down to it.
    pub fn effective_n_batch(&self) -> usize {
        self.n_batch
            .min(self.n_parallel.saturating_mul(self.n_ctx_per_seq))
    }

    /// Tokens llama.cpp computes in one pass (its `n_ubatch`). With a KV stream per sequence,
    /// llama.cpp already splits a step into passes of equal tokens per sequence: one token for
    /// each generating sequence, then each prompt's chunk on its own. So a pass never needs more
    /// than `max(n_parallel, prefill_chunk)` tokens, and a larger one only costs memory: a
    /// sliding-window layer keeps `window + n_ubatch` cells per sequence (rounded up to 256).
    pub fn micro_batch(&self) -> usize {
        self.effective_n_batch()
            .min(self.prefill_chunk.max(self.n_parallel))
    }

    /// Checks the settings against each other, so that llama.cpp never sees a batch or a
    /// position it would abort on.
    pub fn validate(&self) -> Result<(), EngineError> {
        let invalid =
            |field: &'static str, reason: String| Err(EngineError::InvalidConfig { field, reason });
        if self.n_parallel == 0 || self.n_parallel > 256 {
            return invalid(
                "n_parallel",
                format!("must be between 1 and 256, got {}", self.n_parallel),
            );
        }
        if self.n_ctx_per_seq < 16 {
            return invalid(
                "n_ctx_per_seq",
                format!("must be at least 16, got {}", self.n_ctx_per_seq),
            );
        }
        let total_ctx = self.n_parallel.saturating_mul(self.n_ctx_per_seq);
        if total_ctx > i32::MAX as usize / 2 {
            return invalid(
                "n_ctx_per_seq",
                format!("n_parallel * n_ctx_per_seq = {total_ctx} is too large"),
            );
        }
        if self.n_batch < self.n_parallel {
            return invalid(
                "n_batch",
                format!(
                    "must be at least n_parallel ({}) so every sequence fits in one step, got {}",
                    self.n_parallel, self.n_batch
                ),
            );
        }
        if self.prefill_chunk == 0 {
            return invalid("prefill_chunk", "must be at least 1".to_owned());
        }
        if self.threads == 0 || self.threads > 1024 {
            return invalid(
                "threads",
                format!("must be between 1 and 1024, got {}", self.threads),
            );
        }
        if self.queue_capacity == 0 {
            return invalid("queue_capacity", "must be at least 1".to_owned());
        }
        if self.lookup_draft_max > MAX_LOOKUP_DRAFT {
            return invalid(
                "lookup_draft_max",
                format!(
                    "must be at most {MAX_LOOKUP_DRAFT} (0 turns drafting off), got {}",
                    self.lookup_draft_max
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(EngineConfig::default().validate(), Ok(()));
    }

    #[test]
    fn each_inconsistent_setting_is_named() {
        let cases = [
            (
                "n_parallel",
                EngineConfig {
                    n_parallel: 0,
                    ..EngineConfig::default()
                },
            ),
            (
                "n_ctx_per_seq",
                EngineConfig {
                    n_ctx_per_seq: 8,
                    ..EngineConfig::default()
                },
            ),
            (
                "n_batch",
                EngineConfig {
                    n_parallel: 16,
                    n_batch: 8,
                    ..EngineConfig::default()
                },
            ),
            (
                "prefill_chunk",
                EngineConfig {
                    prefill_chunk: 0,
                    ..EngineConfig::default()
                },
            ),
            (
                "threads",
                EngineConfig {
                    threads: 0,
                    ..EngineConfig::default()
                },
            ),
            (
                "queue_capacity",
                EngineConfig {
                    queue_capacity: 0,
                    ..EngineConfig::default()
                },
            ),
        ];
        for (expected_field, config) in cases {
            match config.validate() {
                Err(EngineError::InvalidConfig { field, .. }) => assert_eq!(field, expected_field),
                other => panic!("{expected_field}: expected InvalidConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_batch_never_exceeds_the_whole_context() {
        let config = EngineConfig {
            n_parallel: 1,
            n_ctx_per_seq: 64,
            n_batch: 512,
            ..EngineConfig::default()
        };
        assert_eq!(config.effective_n_batch(), 64);
    }

    #[test]
    fn a_pass_holds_every_decode_or_one_prompt_chunk_never_more() {
        let config = EngineConfig {
            n_parallel: 8,
            n_batch: 512,
            prefill_chunk: 256,
            ..EngineConfig::default()
        };
        assert_eq!(config.micro_batch(), 256);
        let many_slots = EngineConfig {
            n_parallel: 64,
            prefill_chunk: 16,
            ..config.clone()
        };
        assert_eq!(many_slots.micro_batch(), 64);
        let small_batch = EngineConfig {
            n_batch: 128,
            ..config
        };
        assert_eq!(small_batch.micro_batch(), 128);
    }
}
