//! Counters the scheduler thread updates and `ModelHandle::stats` reads, for `/api/ps` and the
//! per-model metrics (queue depth, time to first token, tokens/s, cache reuse).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How many finished requests the "recent" averages cover.
const RECENT_REQUESTS: usize = 32;

/// A snapshot of one model's scheduler.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchedulerStats {
    /// Requests accepted but not yet given a slot.
    pub queue_depth: usize,
    pub queue_capacity: usize,
    /// Slots running a sequence now.
    pub active_sequences: usize,
    pub slots: usize,
    /// Tokens passed through llama.cpp decode (prompt and generated).
    pub total_tokens_decoded: u64,
    pub total_prompt_tokens: u64,
    pub total_generated_tokens: u64,
    /// Decode calls made; with `total_tokens_decoded` this gives the mean batch size.
    pub decode_steps: u64,
    pub requests_completed: u64,
    /// Requests whose stream was dropped before they finished.
    pub requests_cancelled: u64,
    pub requests_failed: u64,
    /// Requests that reused part of a slot's KV cache.
    pub prefix_cache_hits: u64,
    /// Prompt tokens not decoded again thanks to reuse.
    pub prefix_cache_reused_tokens: u64,
    /// Requests whose shared prefix could not be reused because the sliding-window layers had
    /// already dropped the entries before it; their prompt was read again from the start.
    pub prefix_cache_window_misses: u64,
    /// Tokens drafted by prompt lookup and decoded for verification.
    pub draft_tokens: u64,
    /// Drafted tokens the sampler then chose: each saved a decode step of its own.
    pub draft_tokens_accepted: u64,
    /// Time in llama.cpp's decode, and in whole scheduler steps (decode plus batching and
    /// sampling): their difference is the per-step work outside llama.cpp.
    pub decode_seconds: f64,
    pub step_seconds: f64,
    /// Mean time to first token of the recent requests.
    pub recent_time_to_first_token: Option<Duration>,
    /// Mean per-request generation speed of the recent requests.
    pub recent_tokens_per_second: Option<f64>,
}

#[derive(Debug, Default)]
pub(crate) struct SharedStats {
    pub(crate) scheduler_running: AtomicBool,
    pub(crate) queue_depth: AtomicUsize,
    pub(crate) active_sequences: AtomicUsize,
    pub(crate) total_tokens_decoded: AtomicU64,
    pub(crate) total_prompt_tokens: AtomicU64,
    pub(crate) total_generated_tokens: AtomicU64,
    pub(crate) decode_steps: AtomicU64,
    pub(crate) requests_completed: AtomicU64,
    pub(crate) requests_cancelled: AtomicU64,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) prefix_cache_hits: AtomicU64,
    pub(crate) prefix_cache_reused_tokens: AtomicU64,
    pub(crate) prefix_cache_window_misses: AtomicU64,
    pub(crate) draft_tokens: AtomicU64,
    pub(crate) draft_tokens_accepted: AtomicU64,
    pub(crate) decode_nanos: AtomicU64,
    pub(crate) step_nanos: AtomicU64,
    recent: Mutex<VecDeque<(Duration, f64)>>,
}

impl SharedStats {
    pub(crate) fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub(crate) fn add_duration(counter: &AtomicU64, duration: Duration) {
        Self::add(
            counter,
            u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
        );
    }

    pub(crate) fn record_finished(&self, time_to_first_token: Duration, tokens_per_second: f64) {
        Self::add(&self.requests_completed, 1);
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() == RECENT_REQUESTS {
            recent.pop_front();
        }
        recent.push_back((time_to_first_token, tokens_per_second));
    }

    pub(crate) fn snapshot(&self, slots: usize, queue_capacity: usize) -> SchedulerStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = recent.len();
        let (recent_time_to_first_token, recent_tokens_per_second) = if count == 0 {
            (None, None)
        } else {
            let total_ttft: Duration = recent.iter().map(|&(ttft, _)| ttft).sum();
            let total_speed: f64 = recent.iter().map(|&(_, speed)| speed).sum();
            (
                Some(total_ttft / count as u32),
                Some(total_speed / count as f64),
            )
        };
        SchedulerStats {
            queue_depth: self.queue_depth.load(Ordering::Relaxed),
            queue_capacity,
            active_sequences: self.active_sequences.load(Ordering::Relaxed),
            slots,
            total_tokens_decoded: load(&self.total_tokens_decoded),
            total_prompt_tokens: load(&self.total_prompt_tokens),
            total_generated_tokens: load(&self.total_generated_tokens),
            decode_steps: load(&self.decode_steps),
            requests_completed: load(&self.requests_completed),
            requests_cancelled: load(&self.requests_cancelled),
            requests_failed: load(&self.requests_failed),
            prefix_cache_hits: load(&self.prefix_cache_hits),
            prefix_cache_reused_tokens: load(&self.prefix_cache_reused_tokens),
            prefix_cache_window_misses: load(&self.prefix_cache_window_misses),
            draft_tokens: load(&self.draft_tokens),
            draft_tokens_accepted: load(&self.draft_tokens_accepted),
            decode_seconds: load(&self.decode_nanos) as f64 / 1e9,
            step_seconds: load(&self.step_nanos) as f64 / 1e9,
            recent_time_to_first_token,
            recent_tokens_per_second,
        }
    }
}
