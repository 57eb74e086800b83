//! The continuous-batching scheduler: one OS thread per running model owns the llama.cpp
//! context and loops over steps. Every step decodes one token of every generating sequence and a
//! bounded chunk of the prompts still being read, all in one llama.cpp batch; requests join
//! between steps, finished or abandoned sequences leave and free their slot.
//!
//! Each slot remembers which tokens its KV cache holds, so a new request goes to the free slot
//! sharing the longest token prefix with it and only the rest of its prompt is decoded.
//!
//! llama.cpp aborts the process on some misuse (a batch larger than `n_batch`, positions beyond
//! the context, partial KV copies between sequences), so this module keeps every batch within
//! `n_batch`, every position below `n_ctx_per_seq`, and never copies KV between sequences.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvError, SyncSender, TryRecvError, TrySendError};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use tokio::sync::mpsc;

use crate::generation::{
    FinishReason, GenerationEvent, GenerationRequest, GenerationStream, Prompt, Timings,
    TopLogprob, Usage,
};
use crate::lookup::{DraftLength, draft_from_history};
use crate::sampling::{MAX_TOP_LOGPROBS, SequenceSampler, log_probabilities};
use crate::stats::{SchedulerStats, SharedStats};
use crate::text_output::TextOutput;
use crate::{EngineError, Model, TokenId};

type EventSender = mpsc::UnboundedSender<Result<GenerationEvent, EngineError>>;

/// A running model: submit generations to it and read its statistics. Cheap to clone; the
/// scheduler thread stops once every handle is dropped and its last sequence has finished.
#[derive(Clone)]
pub struct ModelHandle {
    model: Model,
    requests: SyncSender<QueuedRequest>,
    stats: Arc<SharedStats>,
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ModelHandle")
            .field("model", &self.model.info().path)
            .finish()
    }
}

impl ModelHandle {
    /// Creates the model's inference context on a new scheduler thread and returns once it is
    /// ready to take requests.
    pub fn start(model: &Model) -> Result<ModelHandle, EngineError> {
        let config = model.config();
        let (request_sender, request_receiver) =
            std::sync::mpsc::sync_channel(config.queue_capacity);
        let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
        let stats = Arc::new(SharedStats::default());
        let thread_model = model.clone();
        let thread_stats = Arc::clone(&stats);
        let thread_name = format!("hearth-scheduler-{}", model.info().architecture);
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                run_scheduler(thread_model, request_receiver, thread_stats, ready_sender)
            })
            .map_err(|error| EngineError::ContextCreation {
                reason: format!("cannot spawn the scheduler thread: {error}"),
            })?;
        match ready_receiver.recv() {
            Ok(Ok(())) => Ok(ModelHandle {
                model: model.clone(),
                requests: request_sender,
                stats,
            }),
            Ok(Err(error)) => Err(error),
            Err(RecvError) => Err(EngineError::SchedulerStopped),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Validates and queues a generation. Returns at once: `QueueFull` when the bounded queue is
    /// full, `ContextOverflow` when prompt plus `max_tokens` exceed the sequence's context.
    pub fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, EngineError> {
        let config = self.model.config();
        let info = self.model.info();
        let is_empty = match &request.prompt {
            Prompt::Text(text) => text.is_empty(),
            Prompt::Tokens(tokens) => tokens.is_empty(),
            Prompt::Chat(messages) => messages.is_empty(),
        };
        if is_empty {
            return Err(EngineError::InvalidRequest(
                "the prompt is empty".to_owned(),
            ));
        }
        let prompt_tokens = match &request.prompt {
            Prompt::Text(text) => self.model.tokenize(text, true),
            Prompt::Tokens(tokens) => tokens.clone(),
            Prompt::Chat(messages) => self
                .model
                .tokenize(&self.model.format_chat(messages)?, true),
        };
        if prompt_tokens.is_empty() {
            return Err(EngineError::InvalidRequest(
                "the prompt has no tokens".to_owned(),
            ));
        }
        self.model.validate_tokens(&prompt_tokens)?;
        request.sampling.validate(info.vocabulary_size)?;
        if let Some(top) = request.logprobs
            && top > MAX_TOP_LOGPROBS
        {
            return Err(EngineError::InvalidRequest(format!(
                "at most {MAX_TOP_LOGPROBS} top log-probabilities per token, got {top}"
            )));
        }
        if request.max_tokens == Some(0) {
            return Err(EngineError::InvalidRequest(
                "max_tokens must be at least 1".to_owned(),
            ));
        }
        let n_ctx = config.n_ctx_per_seq;
        let max_tokens = request
            .max_tokens
            .unwrap_or(n_ctx.saturating_sub(prompt_tokens.len()));
        // The last sampled token is never decoded, so prompt + max_tokens positions suffice.
        if max_tokens == 0 || prompt_tokens.len().saturating_add(max_tokens) > n_ctx {
            return Err(EngineError::ContextOverflow {
                prompt_tokens: prompt_tokens.len(),
                max_tokens,
                n_ctx,
            });
        }

        let grammar = request
            .constraint
            .as_ref()
            .map(|constraint| self.model.sequence_grammar(constraint))
            .transpose()?;

        let mut sampling = request.sampling;
        if request.ignore_eos {
            // As llama-server does: the end-of-generation tokens can never be sampled.
            sampling.logit_bias.extend(
                self.model
                    .end_of_generation_tokens()
                    .iter()
                    .map(|&token| (token, f32::NEG_INFINITY)),
            );
        }

        let (event_sender, event_receiver) = mpsc::unbounded_channel();
        let n_prompt_tokens = prompt_tokens.len();
        let queued = QueuedRequest {
            prompt: prompt_tokens.into_iter().map(LlamaToken).collect(),
            max_tokens,
            sampler: SequenceSampler::new(&sampling, info.vocabulary_size, grammar),
            speculation: request.speculation && config.lookup_draft_max > 0,
            output: TextOutput::new(request.stop),
            logprobs: request.logprobs,
            events: event_sender,
            submitted_at: Instant::now(),
        };
        // Counted before sending so the scheduler's decrement can never run first.
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        match self.requests.try_send(queued) {
            Ok(()) => Ok(GenerationStream {
                receiver: event_receiver,
                prompt_tokens: n_prompt_tokens,
            }),
            Err(error) => {
                self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                match error {
                    TrySendError::Full(_) => Err(EngineError::QueueFull {
                        capacity: config.queue_capacity,
                    }),
                    TrySendError::Disconnected(_) => Err(EngineError::SchedulerStopped),
                }
            }
        }
    }

    /// Whether the scheduler thread is alive. False after it failed or panicked: the model must
    /// be started again (requests meanwhile get `SchedulerStopped`).
    pub fn is_running(&self) -> bool {
        self.stats.scheduler_running.load(Ordering::Acquire)
    }

    /// A snapshot of the queue, the slots and the recent performance.
    pub fn stats(&self) -> SchedulerStats {
        let config = self.model.config();
        self.stats
            .snapshot(config.n_parallel, config.queue_capacity)
    }
}

/// A validated request waiting for a slot. Everything the scheduler thread needs is prepared on
/// the caller's thread so the thread only decodes.
struct QueuedRequest {
    prompt: Vec<LlamaToken>,
    max_tokens: usize,
    sampler: SequenceSampler,
    /// Whether prompt-lookup drafts may be decoded for this request.
    speculation: bool,
    output: TextOutput,
    logprobs: Option<usize>,
    events: EventSender,
    submitted_at: Instant,
}

/// A request running in a slot.
struct Sequence {
    request: QueuedRequest,
    /// Prompt tokens already in the KV cache (reused or decoded).
    n_prompt_done: usize,
    cached_prompt_tokens: usize,
    /// The token sampled last step, decoded in the next one.
    next_token: Option<LlamaToken>,
    /// Row of the current batch whose logits this sequence samples from.
    batch_index: Option<i32>,
    /// Tokens drafted by prompt lookup and decoded this step right after `next_token`, in the
    /// batch rows after `batch_index`; checked against what is sampled, then cleared.
    draft: Vec<LlamaToken>,
    draft_length: DraftLength,
    n_generated: usize,
    started_at: Instant,
    first_token_at: Option<Instant>,
}

/// One of the `n_parallel` KV-cache sequences of the context.
struct Slot {
    seq_id: i32,
    /// Exactly the tokens whose KV entries sequence `seq_id` holds, at positions 0..len.
    cached: Vec<LlamaToken>,
    /// Admission counter value when last used, to evict the least recently used cache first.
    last_used: u64,
    sequence: Option<Sequence>,
}

struct Scheduler<'model> {
    model: &'model Model,
    context: LlamaContext<'model>,
    batch: LlamaBatch<'static>,
    slots: Vec<Slot>,
    stats: Arc<SharedStats>,
    admissions: u64,
    /// Scratch space for sampling with penalties (see `SequenceSampler::sample`): empty until
    /// such a request runs, then one vocabulary's worth, shared by every slot.
    candidates: LlamaTokenDataArray,
}

fn run_scheduler(
    model: Model,
    requests: Receiver<QueuedRequest>,
    stats: Arc<SharedStats>,
    ready: std::sync::mpsc::Sender<Result<(), EngineError>>,
) {
    // Marks the scheduler stopped however this function ends, a panic included, so that the
    // model registry can tell a dead model from a busy one and reload it.
    struct RunningGuard(Arc<SharedStats>);
    impl Drop for RunningGuard {
        fn drop(&mut self) {
            self.0.scheduler_running.store(false, Ordering::Release);
        }
    }
    stats.scheduler_running.store(true, Ordering::Release);
    let _running = RunningGuard(Arc::clone(&stats));

    let context = match create_context(&model) {
        Ok(context) => context,
        Err(error) => {
            // The caller is waiting in `ModelHandle::start`; if it is gone there is no one to tell.
            let _ = ready.send(Err(error));
            return;
        }
    };
    let config = model.config();
    let slots = (0..config.n_parallel)
        .map(|slot_idx| Slot {
            seq_id: i32::try_from(slot_idx).unwrap_or(i32::MAX),
            cached: Vec::new(),
            last_used: 0,
            sequence: None,
        })
        .collect();
    let mut scheduler = Scheduler {
        model: &model,
        context,
        batch: LlamaBatch::new(config.effective_n_batch(), 1),
        slots,
        stats,
        admissions: 0,
        candidates: LlamaTokenDataArray::new(Vec::new(), false),
    };
    let _ = ready.send(Ok(()));
    tracing::debug!(slots = config.n_parallel, "scheduler started");
    loop {
        scheduler.drop_cancelled();
        if !scheduler.admit(&requests) {
            break;
        }
        scheduler.step();
    }
    tracing::debug!("scheduler stopped: no handle left and no sequence running");
}

/// Context parameters storing the KV cache as `kv_cache_type`. A quantized V cache needs flash
/// attention, so it is switched on for those (llama.cpp refuses the context otherwise).
pub(crate) fn with_kv_cache_type(
    params: LlamaContextParams,
    kv_cache_type: crate::KvCacheType,
) -> LlamaContextParams {
    use llama_cpp_2::context::params::KvCacheType as Raw;
    let raw = match kv_cache_type {
        crate::KvCacheType::F16 => Raw::F16,
        crate::KvCacheType::Q8_0 => Raw::Q8_0,
        crate::KvCacheType::Q4_0 => Raw::Q4_0,
    };
    let params = params.with_type_k(raw).with_type_v(raw);
    if kv_cache_type.is_quantized() {
        // LLAMA_FLASH_ATTN_TYPE_ENABLED.
        params.with_flash_attention_policy(1)
    } else {
        params
    }
}

fn create_context(model: &Model) -> Result<LlamaContext<'_>, EngineError> {
    let config = model.config();
    let to_u32 = |value: usize, field: &'static str| {
        u32::try_from(value).map_err(|_| EngineError::InvalidConfig {
            field,
            reason: format!("{value} is too large"),
        })
    };
    let n_ctx_total = to_u32(config.n_parallel * config.n_ctx_per_seq, "n_ctx_per_seq")?;
    let n_batch = to_u32(config.effective_n_batch(), "n_batch")?;
    let n_ubatch = to_u32(config.micro_batch(), "n_batch")?;
    let threads = i32::try_from(config.threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx_total))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_ubatch)
        .with_n_seq_max(to_u32(config.n_parallel, "n_parallel")?)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        // Separate KV streams per sequence: each gets exactly n_ctx_per_seq cells and positions.
        .with_kv_unified(false)
        // Sliding-window layers keep only the last window (plus a batch) of each sequence,
        // which for Gemma 3 halves the KV cache; `assign_slot` reuses a prefix only while the
        // window before it is still there. Without a known window size the whole history is
        // kept, as reuse could not be checked.
        .with_swa_full(model.info().sliding_window.is_none());
    let params = with_kv_cache_type(params, config.kv_cache_type);
    let backend = crate::backend::backend()?;
    let context = model
        .inner
        .llama
        .new_context(backend, params)
        .map_err(|error| EngineError::ContextCreation {
            reason: error.to_string(),
        })?;
    if (context.n_ctx() as usize) < config.n_parallel * config.n_ctx_per_seq
        || (context.n_batch() as usize) < config.effective_n_batch()
    {
        return Err(EngineError::ContextCreation {
            reason: format!(
                "llama.cpp gave n_ctx {} and n_batch {}, less than the configured {} and {}",
                context.n_ctx(),
                context.n_batch(),
                config.n_parallel * config.n_ctx_per_seq,
                config.effective_n_batch()
            ),
        });
    }
    Ok(context)
}

impl Scheduler<'_> {
    fn active_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.sequence.is_some())
            .count()
    }

    fn publish_active(&self) {
        self.stats
            .active_sequences
            .store(self.active_count(), Ordering::Relaxed);
    }

    /// Frees the slots of sequences whose stream was dropped. Their KV cache stays, valid for
    /// the tokens decoded so far, and can serve a later request sharing the prefix.
    fn drop_cancelled(&mut self) {
        let mut cancelled = 0;
        for slot in &mut self.slots {
            if slot
                .sequence
                .as_ref()
                .is_some_and(|sequence| sequence.request.events.is_closed())
            {
                slot.sequence = None;
                cancelled += 1;
            }
        }
        if cancelled > 0 {
            SharedStats::add(&self.stats.requests_cancelled, cancelled);
            self.publish_active();
            tracing::debug!(cancelled, "freed the slots of abandoned generations");
        }
    }

    /// Moves queued requests into free slots. Blocks while there is nothing to do; returns false
    /// when every handle is gone and no sequence is left.
    fn admit(&mut self, requests: &Receiver<QueuedRequest>) -> bool {
        loop {
            if !self.slots.iter().any(|slot| slot.sequence.is_none()) {
                return true;
            }
            let request = if self.active_count() == 0 {
                match requests.recv() {
                    Ok(request) => request,
                    Err(RecvError) => return false,
                }
            } else {
                match requests.try_recv() {
                    Ok(request) => request,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return true,
                }
            };
            self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
            if request.events.is_closed() {
                SharedStats::add(&self.stats.requests_cancelled, 1);
                continue;
            }
            self.assign_slot(request);
            self.publish_active();
        }
    }

    /// Gives the request the free slot with the longest cached prefix of its prompt and drops
    /// the part of that slot's cache after the point where they diverge.
    fn assign_slot(&mut self, request: QueuedRequest) {
        self.admissions += 1;
        let running: Vec<bool> = self
            .slots
            .iter()
            .map(|slot| slot.sequence.is_some())
            .collect();
        let candidates = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.sequence.is_none())
            .map(|(slot_idx, slot)| SlotCandidate {
                slot_idx,
                shared: common_prefix_len(&slot.cached, &request.prompt),
                last_used: slot.last_used,
            });
        let Some((slot_idx, shared)) = choose_slot(candidates, &running, request.prompt.len())
        else {
            // `admit` only calls this with a slot free; should that ever change, the caller
            // hears about it instead of waiting forever.
            let _ = request.events.send(Err(EngineError::SchedulerStopped));
            return;
        };
        // At least one prompt token is always decoded: its logits give the first sampled token.
        let mut reused = shared.min(request.prompt.len() - 1);
        if reused > 0 && !self.window_is_cached(self.slots[slot_idx].seq_id, reused) {
            // The sliding-window layers have dropped entries the first new token attends to
            // (the slot's cache ran on more than a window past the shared prefix): start over.
            // Dropping the cache's tail below does not change its oldest entry, so the check
            // can come first.
            reused = 0;
            SharedStats::add(&self.stats.prefix_cache_window_misses, 1);
        }
        let max_draft = self.max_draft();
        let slot = &mut self.slots[slot_idx];
        if reused < slot.cached.len() {
            let start = u32::try_from(reused).unwrap_or(u32::MAX);
            if self
                .context
                .kv_cache_seq_rm(slot.seq_id, Some(start), None)
                .is_err()
            {
                // Removing a whole sequence never fails; start over from an empty cache.
                let _ = self.context.kv_cache_seq_rm(slot.seq_id, None, None);
                reused = 0;
            }
            slot.cached.truncate(reused);
        }
        if reused > 0 {
            SharedStats::add(&self.stats.prefix_cache_hits, 1);
            SharedStats::add(&self.stats.prefix_cache_reused_tokens, reused as u64);
        }
        slot.last_used = self.admissions;
        slot.sequence = Some(Sequence {
            request,
            n_prompt_done: reused,
            cached_prompt_tokens: reused,
            next_token: None,
            batch_index: None,
            draft: Vec::new(),
            draft_length: DraftLength::new(max_draft),
            n_generated: 0,
            started_at: Instant::now(),
            first_token_at: None,
        });
    }

    /// Whether the sliding-window layers still hold every entry a token at position `next`
    /// attends to: the `n_swa - 1` positions before it (llama.cpp masks keys `n_swa` or more
    /// positions back). The check is llama-server's, one position stricter than needed.
    fn window_is_cached(&self, seq_id: i32, next: usize) -> bool {
        let Some(window) = self.model.info().sliding_window else {
            return true;
        };
        let oldest_needed = next.saturating_sub(window);
        let oldest_cached = self.context.kv_cache_seq_pos_min(seq_id);
        usize::try_from(oldest_cached).is_ok_and(|oldest| oldest <= oldest_needed)
    }

    /// One decode call: a token for every generating sequence, then prompt chunks.
    fn step(&mut self) {
        let step_started = Instant::now();
        let config = self.model.config();
        self.batch.clear();
        let mut n_prompt_in_batch = 0_usize;
        let mut n_drafted = 0_usize;

        let draft_length = self.plan_drafts();

        for slot in &mut self.slots {
            let Some(sequence) = slot.sequence.as_mut() else {
                continue;
            };
            sequence.batch_index = None;
            if let Some(token) = sequence.next_token.take() {
                let position = slot.cached.len() as i32;
                if self
                    .batch
                    .add(token, position, &[slot.seq_id], true)
                    .is_err()
                {
                    // Unreachable: n_batch >= n_parallel is validated. Keep the token for next step.
                    sequence.next_token = Some(token);
                    sequence.draft.clear();
                    continue;
                }
                sequence.batch_index = Some(self.batch.n_tokens() - 1);
                slot.cached.push(token);
                sequence.draft.truncate(draft_length);
                for (offset, &drafted) in sequence.draft.iter().enumerate() {
                    let position = slot.cached.len() as i32;
                    if self
                        .batch
                        .add(drafted, position, &[slot.seq_id], true)
                        .is_err()
                    {
                        // Unreachable: `plan_drafts` counted the room.
                        sequence.draft.truncate(offset);
                        break;
                    }
                    slot.cached.push(drafted);
                }
                n_drafted += sequence.draft.len();
            }
        }

        // Prompts are read oldest first, within what is left of the batch and the chunk budget.
        let mut budget = config.prefill_chunk.min(
            config
                .effective_n_batch()
                .saturating_sub(self.batch.n_tokens() as usize),
        );
        let mut reading: Vec<usize> = (0..self.slots.len())
            .filter(|&slot_idx| {
                self.slots[slot_idx]
                    .sequence
                    .as_ref()
                    .is_some_and(|sequence| sequence.n_prompt_done < sequence.request.prompt.len())
            })
            .collect();
        reading.sort_by_key(|&slot_idx| {
            self.slots[slot_idx]
                .sequence
                .as_ref()
                .map(|sequence| sequence.started_at)
        });
        for slot_idx in reading {
            if budget == 0 {
                break;
            }
            let slot = &mut self.slots[slot_idx];
            let Some(sequence) = slot.sequence.as_mut() else {
                continue;
            };
            let prompt_len = sequence.request.prompt.len();
            let take = budget.min(prompt_len - sequence.n_prompt_done);
            for prompt_idx in sequence.n_prompt_done..sequence.n_prompt_done + take {
                let token = sequence.request.prompt[prompt_idx];
                let is_last = prompt_idx + 1 == prompt_len;
                let position = slot.cached.len() as i32;
                if self
                    .batch
                    .add(token, position, &[slot.seq_id], is_last)
                    .is_err()
                {
                    break;
                }
                slot.cached.push(token);
                sequence.n_prompt_done += 1;
                n_prompt_in_batch += 1;
                budget -= 1;
                if is_last {
                    sequence.batch_index = Some(self.batch.n_tokens() - 1);
                }
            }
        }

        let n_tokens = self.batch.n_tokens();
        if n_tokens == 0 {
            return;
        }
        let decode_started = Instant::now();
        if let Err(error) = self.context.decode(&mut self.batch) {
            self.fail_batch(&EngineError::Decode(error.to_string()));
            return;
        }
        let decode_time = decode_started.elapsed();
        SharedStats::add(&self.stats.decode_steps, 1);
        SharedStats::add(&self.stats.total_tokens_decoded, n_tokens as u64);
        SharedStats::add(&self.stats.total_prompt_tokens, n_prompt_in_batch as u64);
        SharedStats::add(&self.stats.draft_tokens, n_drafted as u64);

        for slot_idx in 0..self.slots.len() {
            self.sample_slot(slot_idx);
        }
        self.publish_active();
        SharedStats::add_duration(&self.stats.decode_nanos, decode_time);
        SharedStats::add_duration(&self.stats.step_nanos, step_started.elapsed());
    }

    /// Looks up this step's drafts and returns how many tokens each sequence decodes beyond its
    /// next token. Every generating sequence gets the same number: with a KV stream per
    /// sequence, llama.cpp computes a step in one pass only while the sequences in it have equal
    /// tokens (`split_equal`), and a pass of its own for a longer draft costs more than the
    /// draft saves. So one sequence without a draft (no recurring n-gram, speculation off for
    /// its request) means no drafts at all. Drafts also wait while a prompt is being read: the
    /// step is then a prompt's pass anyway, and requests that arrive together see the same batch
    /// shapes, which keeps a seed's output repeatable among them.
    fn plan_drafts(&mut self) -> usize {
        let config = self.model.config();
        let reading_a_prompt = self
            .slots
            .iter()
            .filter_map(|slot| slot.sequence.as_ref())
            .any(|sequence| sequence.next_token.is_none());
        if reading_a_prompt {
            return 0;
        }
        let mut n_generating = 0_usize;
        let mut common = usize::MAX;
        for slot in &mut self.slots {
            let Some(sequence) = slot.sequence.as_mut() else {
                continue;
            };
            let Some(token) = sequence.next_token else {
                continue;
            };
            n_generating += 1;
            if !sequence.request.speculation {
                common = 0;
            }
            if common == 0 {
                continue;
            }
            // Drafts never pass `max_tokens` (so neither the context): what the request may
            // still generate beyond the token this step samples.
            let left = sequence
                .request
                .max_tokens
                .saturating_sub(sequence.n_generated + 1);
            let wanted = sequence.draft_length.get().min(left);
            slot.cached.push(token);
            draft_from_history(&slot.cached, wanted, &mut sequence.draft);
            slot.cached.pop();
            common = common.min(sequence.draft.len());
        }
        if n_generating == 0 {
            return 0;
        }
        // Every drafted row needs its logits, and llama.cpp keeps a row of them (a vocabulary
        // of floats: 1 MiB for Gemma 3) per output both in its output buffer and in its compute
        // buffer, neither of which shrinks after a step. So a step's rows are capped at what one
        // sequence drafting alone uses: speculation costs the same memory at any concurrency,
        // and sequences side by side share that many rows. The step also fits one pass.
        let rows = (1 + self.max_draft())
            .max(n_generating)
            .min(config.micro_batch());
        common.min((rows / n_generating).saturating_sub(1))
    }

    /// The longest draft a sequence may get: the configured bound, kept below the smallest
    /// pass so that a rejected draft never pushed out sliding-window entries still needed.
    fn max_draft(&self) -> usize {
        let config = self.model.config();
        config
            .lookup_draft_max
            .min(config.micro_batch().saturating_sub(1))
    }

    /// A failed decode may have left part of the batch in the KV cache. Every running sequence
    /// (all of them take part in a step, or are about to) ends with the error and its cache is
    /// cleared, so no later request reuses entries that may be incomplete.
    fn fail_batch(&mut self, error: &EngineError) {
        tracing::error!(%error, "decode failed; ending every running sequence");
        for slot in &mut self.slots {
            if let Some(sequence) = slot.sequence.take() {
                let _ = sequence.request.events.send(Err(error.clone()));
                SharedStats::add(&self.stats.requests_failed, 1);
                let _ = self.context.kv_cache_seq_rm(slot.seq_id, None, None);
                slot.cached.clear();
            }
        }
        self.publish_active();
    }

    /// Samples the next token of the sequence in `slot_idx` if the last batch produced its logits,
    /// sends it, and ends the sequence when it is done. With a draft, sampling goes on along the
    /// draft's rows for as long as each sampled token is the drafted one; the rest of the draft
    /// leaves the KV cache.
    fn sample_slot(&mut self, slot_idx: usize) {
        let slot = &mut self.slots[slot_idx];
        let Some(sequence) = slot.sequence.as_mut() else {
            return;
        };
        let Some(mut batch_index) = sequence.batch_index.take() else {
            return;
        };
        let draft = std::mem::take(&mut sequence.draft);
        let mut accepted = 0;
        let finished = loop {
            let (token, finish) = self.sample_token(slot_idx, batch_index);
            if let Some(finish) = finish {
                break Some(finish);
            }
            if draft.get(accepted) == Some(&token) {
                // The next row decoded exactly this token at the next position: its logits
                // are those a step of its own would give.
                accepted += 1;
                batch_index += 1;
                continue;
            }
            if let Some(sequence) = self.slots[slot_idx].sequence.as_mut() {
                sequence.next_token = Some(token);
            }
            break None;
        };

        let slot = &mut self.slots[slot_idx];
        let drafted = draft.len();
        if drafted > 0 {
            SharedStats::add(&self.stats.draft_tokens_accepted, accepted as u64);
        }
        if let Some(sequence) = slot.sequence.as_mut() {
            sequence.draft_length.record(drafted, accepted);
            // The buffer goes back for the next step's draft, so drafting allocates once.
            sequence.draft = draft;
            sequence.draft.clear();
        }
        let rejected = drafted - accepted;
        if rejected > 0 {
            let keep = slot.cached.len() - rejected;
            let removed = self.context.kv_cache_seq_rm(
                slot.seq_id,
                Some(u32::try_from(keep).unwrap_or(u32::MAX)),
                None,
            );
            slot.cached.truncate(keep);
            if removed.is_err() || !self.window_is_cached(self.slots[slot_idx].seq_id, keep) {
                // Not expected (see `max_draft`); should llama.cpp ever refuse, the sequence
                // ends rather than decode on a cache that no longer matches its tokens.
                let slot = &mut self.slots[slot_idx];
                let _ = self.context.kv_cache_seq_rm(slot.seq_id, None, None);
                slot.cached.clear();
                if let Some(sequence) = slot.sequence.take() {
                    let _ = sequence.request.events.send(Err(EngineError::Decode(
                        "llama.cpp could not take back a rejected draft".to_owned(),
                    )));
                    SharedStats::add(&self.stats.requests_failed, 1);
                }
                return;
            }
        }
        if let Some(finish_reason) = finished {
            let Some(sequence) = self.slots[slot_idx].sequence.take() else {
                return;
            };
            self.finish_sequence(sequence, finish_reason, Instant::now());
        }
    }

    /// Samples one token of the sequence in `slot_idx` from batch row `batch_index`, sends it,
    /// and says whether the sequence is finished.
    fn sample_token(
        &mut self,
        slot_idx: usize,
        batch_index: i32,
    ) -> (LlamaToken, Option<FinishReason>) {
        let model = self.model;
        let vocab = model.inner.llama.vocab();
        let Some(sequence) = self.slots[slot_idx].sequence.as_mut() else {
            return (LlamaToken(0), Some(FinishReason::Stop));
        };
        let token =
            sequence
                .request
                .sampler
                .sample(&self.context, batch_index, &mut self.candidates);
        let now = Instant::now();
        sequence.n_generated += 1;
        SharedStats::add(&self.stats.total_generated_tokens, 1);
        if sequence.first_token_at.is_none() {
            sequence.first_token_at = Some(now);
        }

        if vocab.is_eog(LlamaToken(token)) {
            let trailing = sequence.request.output.finish();
            if !trailing.is_empty() {
                let _ = sequence
                    .request
                    .events
                    .send(Ok(GenerationEvent::Text { text: trailing }));
            }
            return (LlamaToken(token), Some(FinishReason::Stop));
        }
        let (logprob, top_logprobs) = match sequence.request.logprobs {
            Some(top_n) => {
                let logits = self.context.get_logits_ith(batch_index);
                let (chosen, top) = log_probabilities(logits, token, top_n);
                let top = top
                    .into_iter()
                    .map(|(token_id, logprob)| TopLogprob {
                        token_id,
                        text: token_text(model, token_id),
                        logprob,
                    })
                    .collect();
                (Some(chosen), top)
            }
            None => (None, Vec::new()),
        };
        let piece = vocab.token_to_piece(LlamaToken(token), false, None);
        let mut emitted = sequence.request.output.push(&piece);
        let finish = if emitted.stopped {
            Some(FinishReason::Stop)
        } else if sequence.n_generated >= sequence.request.max_tokens {
            emitted.text.push_str(&sequence.request.output.finish());
            Some(FinishReason::Length)
        } else {
            None
        };
        let event = GenerationEvent::Token {
            text: emitted.text,
            token_id: token,
            logprob,
            top_logprobs,
        };
        // A closed stream is noticed and freed at the start of the next step.
        let _ = sequence.request.events.send(Ok(event));
        (LlamaToken(token), finish)
    }

    /// Records a finished sequence and sends its summary. Statistics are updated first, so a
    /// caller that has seen `Done` also sees the freed slot in `stats()`.
    fn finish_sequence(&self, sequence: Sequence, finish_reason: FinishReason, now: Instant) {
        let first_token_at = sequence.first_token_at.unwrap_or(now);
        let generation = now.saturating_duration_since(first_token_at);
        let tokens_per_second = if sequence.n_generated > 1 && !generation.is_zero() {
            (sequence.n_generated - 1) as f64 / generation.as_secs_f64()
        } else {
            0.0
        };
        let timings = Timings {
            queued: sequence
                .started_at
                .saturating_duration_since(sequence.request.submitted_at),
            time_to_first_token: first_token_at
                .saturating_duration_since(sequence.request.submitted_at),
            prompt: first_token_at.saturating_duration_since(sequence.started_at),
            generation,
            tokens_per_second,
        };
        let usage = Usage {
            prompt_tokens: sequence.request.prompt.len(),
            completion_tokens: sequence.n_generated,
            cached_prompt_tokens: sequence.cached_prompt_tokens,
        };
        self.publish_active();
        self.stats
            .record_finished(timings.time_to_first_token, tokens_per_second);
        let _ = sequence.request.events.send(Ok(GenerationEvent::Done {
            finish_reason,
            usage,
            timings,
        }));
    }
}

fn token_text(model: &Model, token: TokenId) -> String {
    let piece = model
        .inner
        .llama
        .vocab()
        .token_to_piece(LlamaToken(token), false, None);
    String::from_utf8_lossy(&piece).into_owned()
}

fn common_prefix_len(left: &[LlamaToken], right: &[LlamaToken]) -> usize {
    left.iter().zip(right).take_while(|(a, b)| a == b).count()
}

/// A free slot a new request could take.
#[derive(Debug, Clone, Copy)]
struct SlotCandidate {
    slot_idx: usize,
    /// Prompt tokens its cache shares with the request.
    shared: usize,
    last_used: u64,
}

/// A shared prefix decides the slot only from this many tokens, or from half the prompt (as
/// llama-server's slot similarity): a BOS token or a chat template's opening saves a few
/// milliseconds of prompt reading, less than one more pass per decode step costs over a
/// generation, while a short prompt asked again is still found.
const MIN_DECIDING_PREFIX: usize = 16;

/// The slot a new request takes, and the prompt tokens it shares: the longest shared prefix
/// first (its KV is reused); among equals, the slot that adds the fewest llama.cpp passes to a
/// step; then the least recently used, so the caches most likely to be asked for again stay.
fn choose_slot(
    candidates: impl Iterator<Item = SlotCandidate>,
    running: &[bool],
    prompt_len: usize,
) -> Option<(usize, usize)> {
    let deciding = |candidate: &SlotCandidate| {
        if candidate.shared >= MIN_DECIDING_PREFIX.min(prompt_len.div_ceil(2)) {
            candidate.shared
        } else {
            0
        }
    };
    candidates
        .max_by(|left, right| {
            deciding(left)
                .cmp(&deciding(right))
                .then_with(|| {
                    added_passes(running, right.slot_idx).cmp(&added_passes(running, left.slot_idx))
                })
                .then(right.last_used.cmp(&left.last_used))
        })
        .map(|candidate| (candidate.slot_idx, candidate.shared))
}

/// How many more passes a decode step takes once the free slot `slot_idx` runs too. With a KV
/// stream per sequence, llama.cpp computes only consecutive sequence ids together
/// (`split_equal`), so every run of adjacent running slots is a pass of its own (4 sequences on
/// slots 0, 2, 4, 6 decode ~30% slower than on 0-3): a slot beside a run costs nothing, one
/// between two runs joins them, a lone one adds a pass.
fn added_passes(running: &[bool], slot_idx: usize) -> i8 {
    let left = slot_idx > 0 && running[slot_idx - 1];
    let right = running.get(slot_idx + 1).copied().unwrap_or(false);
    match (left, right) {
        (true, true) => -1,
        (false, false) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prompt tokens of a request whose shared prefixes decide from 16 tokens.
    const LONG_PROMPT: usize = 100;

    fn free(slot_idx: usize, shared: usize, last_used: u64) -> SlotCandidate {
        SlotCandidate {
            slot_idx,
            shared,
            last_used,
        }
    }

    #[test]
    fn the_longest_shared_prefix_wins_even_where_it_adds_a_pass() {
        let running = [true, false, false, true, false, false];
        let chosen = choose_slot(
            [free(1, 4, 1), free(5, 90, 9)].into_iter(),
            &running,
            LONG_PROMPT,
        );
        assert_eq!(chosen, Some((5, 90)));
    }

    #[test]
    fn among_equal_prefixes_a_slot_beside_running_ones_is_taken() {
        // Slots 0 and 1 run; slot 6 is the least recently used but would decode on its own.
        let running = [true, true, false, false, false, false, false, false];
        let chosen = choose_slot(
            [free(2, 4, 5), free(3, 4, 4), free(6, 4, 1)].into_iter(),
            &running,
            LONG_PROMPT,
        );
        assert_eq!(chosen, Some((2, 4)));
    }

    #[test]
    fn a_slot_that_joins_two_runs_beats_one_beside_a_run() {
        let running = [true, false, true, false];
        let chosen = choose_slot(
            [free(3, 0, 1), free(1, 0, 7)].into_iter(),
            &running,
            LONG_PROMPT,
        );
        assert_eq!(chosen, Some((1, 0)));
    }

    #[test]
    fn with_nothing_running_the_least_recently_used_slot_is_taken() {
        let running = [false; 4];
        let chosen = choose_slot(
            [free(0, 0, 3), free(1, 0, 1), free(2, 0, 2), free(3, 0, 4)].into_iter(),
            &running,
            LONG_PROMPT,
        );
        assert_eq!(chosen, Some((1, 0)));
    }

    #[test]
    fn a_few_shared_tokens_do_not_outweigh_a_pass() {
        // Every used slot shares the BOS token and the template's opening with a new chat.
        let running = [true, false, false, false];
        let chosen = choose_slot(
            [free(1, 0, 0), free(3, 4, 2)].into_iter(),
            &running,
            LONG_PROMPT,
        );
        assert_eq!(chosen, Some((1, 0)));
        let chosen = choose_slot(
            [free(1, 0, 0), free(3, 16, 2)].into_iter(),
            &running,
            LONG_PROMPT,
        );
        assert_eq!(chosen, Some((3, 16)));
    }

    #[test]
    fn a_short_prompt_asked_again_finds_its_cache() {
        // 9 tokens, all cached in slot 3: half the prompt or more decides.
        let running = [true, false, false, false];
        let chosen = choose_slot([free(1, 0, 0), free(3, 9, 2)].into_iter(), &running, 9);
        assert_eq!(chosen, Some((3, 9)));
    }

    #[test]
    fn no_free_slot_means_no_choice() {
        assert_eq!(
            choose_slot(std::iter::empty(), &[true, true], LONG_PROMPT),
            None
        );
    }
}
