//! The batching service: one worker thread owns the model, async callers queue requests.
//!
//! Callers send a request over a bounded channel and await the answer on a oneshot. The worker
//! blocks until a request arrives, then also takes whatever other requests are already waiting
//! (without waiting for more) until it holds [`ServiceConfig::max_batch_inputs`] inputs, and
//! embeds them in one batch. Under load, many small requests therefore share a pass;
//! when idle, a lone request is answered without delay. Requests are served first come, first
//! served; a request with more inputs than a batch holds is split over several batches.
//!
//! The forward pass runs on a plain OS thread, never on the async runtime, because it is
//! CPU-bound for milliseconds at a time.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use tokio::sync::oneshot;

use crate::{EmbedError, Embedding, EmbeddingModel, Embeddings};

/// Sizes of the service's queue and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Requests that may wait for the worker; one more is refused with
    /// [`EmbedError::QueueFull`].
    pub queue_capacity: usize,
    /// The most inputs embedded in one batch.
    pub max_batch_inputs: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_batch_inputs: 32,
        }
    }
}

/// Counters since the service started, for metrics and for tests of the batching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Requests answered with embeddings.
    pub requests: u64,
    /// Inputs embedded, over all requests.
    pub inputs: u64,
    /// Batches handed to the model; `inputs / batches` is the mean batch size.
    pub batches: u64,
    /// The most inputs in one batch.
    pub largest_batch: u64,
    /// Encoder passes run for those batches: the model splits a batch whose inputs differ much
    /// in length into passes of similar lengths (see `EmbeddingModel::embed`).
    pub forward_passes: u64,
}

/// A handle to the batching service. Cheap to clone; the worker stops when every handle is
/// dropped and the queue is drained.
#[derive(Clone)]
pub struct EmbeddingService {
    sender: SyncSender<Request>,
    counters: Arc<Counters>,
    queue_capacity: usize,
    dimensions: usize,
    max_tokens: usize,
    /// Shared: a tokenizer is large, and every clone of the handle uses the same one.
    chunker: Arc<crate::Chunker>,
}

struct Request {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Embeddings, EmbedError>>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    inputs: AtomicU64,
    batches: AtomicU64,
    largest_batch: AtomicU64,
    forward_passes: AtomicU64,
}

impl EmbeddingService {
    /// Moves `model` onto a new worker thread and returns the handle callers share.
    pub fn start(model: EmbeddingModel, config: ServiceConfig) -> Result<Self, EmbedError> {
        let queue_capacity = config.queue_capacity.max(1);
        let max_batch_inputs = config.max_batch_inputs.max(1);
        let (sender, receiver) = std::sync::mpsc::sync_channel(queue_capacity);
        let counters = Arc::new(Counters::default());
        let dimensions = model.dimensions();
        let max_tokens = model.max_tokens();
        let chunker = Arc::new(model.chunker());
        let worker = Worker {
            model,
            receiver,
            max_batch_inputs,
            counters: Arc::clone(&counters),
            waiting: VecDeque::new(),
        };
        std::thread::Builder::new()
            .name("hearth-embed".to_owned())
            .spawn(move || worker.run())
            .map_err(|source| EmbedError::WorkerStart { source })?;
        tracing::info!(
            queue_capacity,
            max_batch_inputs,
            "embedding service started"
        );
        Ok(Self {
            sender,
            counters,
            queue_capacity,
            dimensions,
            max_tokens,
            chunker,
        })
    }

    /// Splits text as the model counts tokens, on the caller's thread.
    pub fn chunker(&self) -> &crate::Chunker {
        &self.chunker
    }

    /// Embeds `texts`, sharing a batch with other callers' requests when they overlap.
    ///
    /// Fails at once with [`EmbedError::QueueFull`] when the queue is full. Dropping the future
    /// withdraws the request if the worker has not started on it yet.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embeddings, EmbedError> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        let (reply, answer) = oneshot::channel();
        self.sender
            .try_send(Request { texts, reply })
            .map_err(|error| match error {
                TrySendError::Full(_) => EmbedError::QueueFull {
                    capacity: self.queue_capacity,
                },
                TrySendError::Disconnected(_) => EmbedError::WorkerStopped,
            })?;
        answer.await.map_err(|_| EmbedError::WorkerStopped)?
    }

    /// Counters since the service started.
    pub fn stats(&self) -> ServiceStats {
        ServiceStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            inputs: self.counters.inputs.load(Ordering::Relaxed),
            batches: self.counters.batches.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
            forward_passes: self.counters.forward_passes.load(Ordering::Relaxed),
        }
    }

    /// Length of every embedding vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The longest input the model reads, in tokens; longer inputs are truncated.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

/// The worker thread's state: the model and the requests taken off the queue but not answered.
struct Worker {
    model: EmbeddingModel,
    receiver: Receiver<Request>,
    max_batch_inputs: usize,
    counters: Arc<Counters>,
    waiting: VecDeque<InProgress>,
}

/// A request taken off the queue, with the embeddings of its first inputs done.
struct InProgress {
    request: Request,
    done: Vec<Embedding>,
}

impl InProgress {
    fn remaining_inputs(&self) -> usize {
        self.request.texts.len() - self.done.len()
    }
}

impl Worker {
    fn run(mut self) {
        loop {
            if self.waiting.is_empty() {
                match self.receiver.recv() {
                    Ok(request) => self.accept(request),
                    // Every handle is dropped and the queue is empty: nothing more will come.
                    Err(_) => return,
                }
            }
            self.take_already_queued();
            // A caller that gave up should not cost a forward pass.
            self.waiting.retain(|job| !job.request.reply.is_closed());
            if !self.waiting.is_empty() {
                self.run_one_batch();
            }
        }
    }

    fn accept(&mut self, request: Request) {
        let done = Vec::with_capacity(request.texts.len());
        self.waiting.push_back(InProgress { request, done });
    }

    /// Moves queued requests into `waiting`, without blocking, until a batch is full. Stopping
    /// there leaves the rest in the bounded channel, so the queue limit keeps meaning something.
    fn take_already_queued(&mut self) {
        let mut pending: usize = self.waiting.iter().map(InProgress::remaining_inputs).sum();
        while pending < self.max_batch_inputs {
            match self.receiver.try_recv() {
                Ok(request) => {
                    pending += request.texts.len();
                    self.accept(request);
                }
                Err(_) => break,
            }
        }
    }

    /// Embeds the next `max_batch_inputs` inputs in arrival order and answers every request
    /// that is then complete.
    fn run_one_batch(&mut self) {
        // (index in `waiting`, number of its inputs in this batch)
        let mut plan = Vec::new();
        let mut batch_size = 0;
        for (job_index, job) in self.waiting.iter().enumerate() {
            if batch_size == self.max_batch_inputs {
                break;
            }
            let taken = job
                .remaining_inputs()
                .min(self.max_batch_inputs - batch_size);
            plan.push((job_index, taken));
            batch_size += taken;
        }

        let texts: Vec<&str> = plan
            .iter()
            .flat_map(|&(job_index, taken)| {
                let job = &self.waiting[job_index];
                let first = job.done.len();
                job.request.texts[first..first + taken]
                    .iter()
                    .map(String::as_str)
            })
            .collect();
        // A panic inside the tensor library fails this batch, not the service: the model is only
        // read during `embed`, so it is as good afterwards as before.
        let model = &self.model;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| model.embed(&texts)))
            .unwrap_or_else(|_| {
                Err(EmbedError::Inference {
                    message: "the model panicked on this batch".to_owned(),
                })
            });
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .forward_passes
            .store(self.model.forward_passes(), Ordering::Relaxed);

        let touched_jobs = plan.len();
        match result {
            Ok(embeddings) => {
                self.counters
                    .inputs
                    .fetch_add(batch_size as u64, Ordering::Relaxed);
                self.counters
                    .largest_batch
                    .fetch_max(batch_size as u64, Ordering::Relaxed);
                let mut items = embeddings.items.into_iter();
                for (job_index, taken) in plan {
                    self.waiting[job_index]
                        .done
                        .extend(items.by_ref().take(taken));
                }
                // Only the jobs at the front can be complete: later ones got nothing yet.
                let complete = self
                    .waiting
                    .iter()
                    .take(touched_jobs)
                    .take_while(|job| job.remaining_inputs() == 0)
                    .count();
                for job in self.waiting.drain(..complete) {
                    self.counters.requests.fetch_add(1, Ordering::Relaxed);
                    // The caller may have stopped waiting; then nobody needs the answer.
                    let _ = job.request.reply.send(Ok(Embeddings { items: job.done }));
                }
            }
            Err(error) => {
                tracing::warn!(%error, batch_size, "embedding batch failed");
                for job in self.waiting.drain(..touched_jobs) {
                    let _ = job.request.reply.send(Err(error.copy_for_another_caller()));
                }
            }
        }
    }
}
