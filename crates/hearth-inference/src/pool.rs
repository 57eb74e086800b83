//! The pool of loaded models and their lifecycle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_embed::{EmbeddingModel, EmbeddingService, ServiceConfig};
use hearth_engine::{EngineConfig, KvCacheType, Model, ModelHandle};

use crate::error::InferenceError;
use crate::memory::{self, Activity, QuietRelease};

pub use hearth_models::ModelKind;

/// A kind's name for logs and messages.
pub fn kind_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Chat => "chat",
        ModelKind::Embedding => "embedding",
    }
}

fn with_article(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Chat => "a chat",
        ModelKind::Embedding => "an embedding",
    }
}

/// Everything the pool needs to know to load a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The canonical `name:tag`.
    pub name: String,
    pub kind: ModelKind,
    /// The GGUF file, or the directory of a safetensors embedding model.
    pub path: PathBuf,
    /// Bytes the weights occupy; counted against the memory budget.
    pub size_bytes: u64,
}

/// How long a model stays loaded after it was last used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Unload once this much time has passed since the last use; zero unloads right away.
    For(Duration),
    /// Never unload for idleness (only for the memory budget or an explicit unload).
    Forever,
}

/// A loaded model, ready to take requests. Cheap to clone; in-flight requests keep the model
/// alive even after the pool lets go of it.
#[derive(Clone)]
pub enum LoadedModel {
    Chat(ModelHandle),
    Embedding(EmbeddingService),
}

#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    pub engine: EngineSettings,
    pub embedding: ServiceConfig,
    pub memory_budget_bytes: u64,
    pub default_keep_alive: KeepAlive,
}

/// Engine settings for chat models (a `Copy` mirror of [`EngineConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    pub n_parallel: usize,
    pub n_ctx_per_seq: usize,
    pub n_batch: usize,
    pub prefill_chunk: usize,
    pub threads: usize,
    pub queue_capacity: usize,
    pub kv_cache_type: KvCacheType,
    pub json_number_max_digits: usize,
    pub lookup_draft_max: usize,
}

impl From<EngineSettings> for EngineConfig {
    fn from(settings: EngineSettings) -> EngineConfig {
        EngineConfig {
            n_parallel: settings.n_parallel,
            n_ctx_per_seq: settings.n_ctx_per_seq,
            n_batch: settings.n_batch,
            prefill_chunk: settings.prefill_chunk,
            threads: settings.threads,
            queue_capacity: settings.queue_capacity,
            kv_cache_type: settings.kv_cache_type,
            json_number_max_digits: settings.json_number_max_digits,
            lookup_draft_max: settings.lookup_draft_max,
        }
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        let defaults = EngineConfig::default();
        EngineSettings {
            n_parallel: defaults.n_parallel,
            n_ctx_per_seq: defaults.n_ctx_per_seq,
            n_batch: defaults.n_batch,
            prefill_chunk: defaults.prefill_chunk,
            threads: defaults.threads,
            queue_capacity: defaults.queue_capacity,
            kv_cache_type: defaults.kv_cache_type,
            json_number_max_digits: defaults.json_number_max_digits,
            lookup_draft_max: defaults.lookup_draft_max,
        }
    }
}

/// A loaded model as `/api/ps` shows it.
#[derive(Debug, Clone)]
pub struct RunningModel {
    pub spec: ModelSpec,
    pub loaded_at: Instant,
    pub last_used: Instant,
    /// When it will be unloaded for idleness; `None` for [`KeepAlive::Forever`].
    pub expires_at: Option<Instant>,
    pub queue_depth: usize,
    pub active_requests: usize,
}

struct Entry {
    spec: ModelSpec,
    model: LoadedModel,
    loaded_at: Instant,
    last_used: Instant,
    keep_alive: KeepAlive,
}

impl Entry {
    fn expires_at(&self) -> Option<Instant> {
        match self.keep_alive {
            KeepAlive::For(duration) => Some(self.last_used + duration),
            KeepAlive::Forever => None,
        }
    }
}

/// A change in what the pool holds, told to its observer (the server publishes them as
/// `hearth.model.*` events).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelChange {
    Loaded {
        name: String,
        kind: ModelKind,
        load_ms: f64,
    },
    /// `reason`: `request` (asked to), `keep_alive` (idle), `memory_budget` (to make room).
    Unloaded { name: String, reason: &'static str },
    /// A load failed, or a loaded model's engine failed (it is dropped and reloaded on the
    /// next request).
    Failed { name: String, reason: String },
}

/// Told of each [`ModelChange`]; must not block.
pub type ModelObserver = Arc<dyn Fn(ModelChange) + Send + Sync>;

/// The loaded models. Share it as `Arc<ModelPool>`.
pub struct ModelPool {
    config: PoolConfig,
    observer: std::sync::RwLock<Option<ModelObserver>>,
    entries: Mutex<HashMap<String, Entry>>,
    /// One lock per model name, held while that model loads, so concurrent first requests
    /// wait for one load instead of starting several.
    load_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ModelPool {
    pub fn new(config: PoolConfig) -> Arc<ModelPool> {
        Arc::new(ModelPool {
            config,
            observer: std::sync::RwLock::new(None),
            entries: Mutex::new(HashMap::new()),
            load_locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Tells `observer` of every load, unload and failure from now on.
    pub fn observe(&self, observer: ModelObserver) {
        *self
            .observer
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(observer);
    }

    fn tell(&self, change: ModelChange) {
        let observer = self
            .observer
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        if let Some(observer) = observer {
            observer(change);
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The loaded model for `spec`, loading it first if needed. `keep_alive` (the request's,
    /// or the default) restarts the model's idle timer.
    pub async fn acquire(
        &self,
        spec: &ModelSpec,
        keep_alive: Option<KeepAlive>,
    ) -> Result<LoadedModel, InferenceError> {
        let keep_alive = keep_alive.unwrap_or(self.config.default_keep_alive);
        if let Some(model) = self.touch(spec, keep_alive) {
            return Ok(model);
        }
        let lock = {
            let mut locks = self
                .load_locks
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            locks.entry(spec.name.clone()).or_default().clone()
        };
        let _loading = lock.lock().await;
        if let Some(model) = self.touch(spec, keep_alive) {
            return Ok(model);
        }
        self.make_room_for(spec)?;
        let started = Instant::now();
        let model = match load(spec.clone(), self.config).await {
            Ok(model) => model,
            Err(error) => {
                self.tell(ModelChange::Failed {
                    name: spec.name.clone(),
                    reason: error.to_string(),
                });
                return Err(error);
            }
        };
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            model = %spec.name,
            kind = kind_name(spec.kind),
            load_ms,
            "model loaded"
        );
        self.tell(ModelChange::Loaded {
            name: spec.name.clone(),
            kind: spec.kind,
            load_ms,
        });
        let now = Instant::now();
        self.entries().insert(
            spec.name.clone(),
            Entry {
                spec: spec.clone(),
                model: model.clone(),
                loaded_at: now,
                last_used: now,
                keep_alive,
            },
        );
        Ok(model)
    }

    /// The loaded model when it is there and still the same file; updates its idle timer.
    fn touch(&self, spec: &ModelSpec, keep_alive: KeepAlive) -> Option<LoadedModel> {
        let mut entries = self.entries();
        let entry = entries.get_mut(&spec.name)?;
        if entry.spec != *spec {
            // The name now points at another file (a new version, a rollback): load afresh.
            entries.remove(&spec.name);
            return None;
        }
        entry.last_used = Instant::now();
        entry.keep_alive = keep_alive;
        Some(entry.model.clone())
    }

    /// Evicts least-recently-used models until `spec` fits in the memory budget.
    fn make_room_for(&self, spec: &ModelSpec) -> Result<(), InferenceError> {
        let budget = self.config.memory_budget_bytes;
        if spec.size_bytes > budget {
            return Err(InferenceError::OverBudget {
                name: spec.name.clone(),
                needed_bytes: spec.size_bytes,
                budget_bytes: budget,
            });
        }
        let mut entries = self.entries();
        loop {
            let used: u64 = entries.values().map(|entry| entry.spec.size_bytes).sum();
            if used + spec.size_bytes <= budget {
                return Ok(());
            }
            let Some(oldest) = entries
                .values()
                .min_by_key(|entry| entry.last_used)
                .map(|entry| entry.spec.name.clone())
            else {
                return Ok(());
            };
            tracing::info!(model = %oldest, for_model = %spec.name, "model unloaded to stay within the memory budget");
            entries.remove(&oldest);
            self.tell(ModelChange::Unloaded {
                name: oldest,
                reason: "memory_budget",
            });
        }
    }

    /// Unloads a model now. In-flight requests finish on their own handle.
    pub fn unload(&self, name: &str) -> bool {
        let removed = self.entries().remove(name).is_some();
        if removed {
            tracing::info!(model = %name, "model unloaded");
            self.tell(ModelChange::Unloaded {
                name: name.to_string(),
                reason: "request",
            });
        }
        removed
    }

    /// Drops a model whose engine failed, so the next request loads it again.
    pub fn report_failure(&self, name: &str, reason: &str) {
        if self.entries().remove(name).is_some() {
            tracing::warn!(model = %name, reason, "model failed; it will be reloaded on the next request");
            self.tell(ModelChange::Failed {
                name: name.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// Unloads every model idle past its keep-alive; returns their names.
    pub fn unload_expired(&self, now: Instant) -> Vec<String> {
        let mut entries = self.entries();
        let expired: Vec<String> = entries
            .values()
            .filter(|entry| entry.expires_at().is_some_and(|at| at <= now))
            .map(|entry| entry.spec.name.clone())
            .collect();
        for name in &expired {
            entries.remove(name);
            tracing::info!(model = %name, "model unloaded after its keep-alive");
        }
        drop(entries);
        for name in &expired {
            self.tell(ModelChange::Unloaded {
                name: name.clone(),
                reason: "keep_alive",
            });
        }
        expired
    }

    /// Every `interval` until the pool is dropped: unloads idle models, and after a tick in
    /// which no model did anything, returns the heap memory the last burst freed (see
    /// `memory.rs`).
    pub fn spawn_reaper(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            let mut quiet_release = QuietRelease::default();
            loop {
                ticker.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                pool.unload_expired(Instant::now());
                let activity = pool.activity();
                drop(pool);
                if quiet_release.observe(activity) {
                    let _ = tokio::task::spawn_blocking(memory::release_freed_heap).await;
                }
            }
        })
    }

    /// The loaded models' work so far, for deciding when they have gone quiet.
    fn activity(&self) -> Activity {
        let entries = self.entries();
        let mut activity = Activity {
            loaded_models: entries.len(),
            ..Activity::default()
        };
        for entry in entries.values() {
            let work_done = match &entry.model {
                LoadedModel::Chat(handle) => {
                    let stats = handle.stats();
                    activity.busy |= stats.active_sequences > 0 || stats.queue_depth > 0;
                    stats.decode_steps + stats.requests_completed + stats.requests_cancelled
                }
                LoadedModel::Embedding(service) => {
                    let stats = service.stats();
                    stats.forward_passes + stats.requests
                }
            };
            activity.work_done = activity.work_done.wrapping_add(work_done);
        }
        activity
    }

    /// The loaded models, most recently used first.
    pub fn running(&self) -> Vec<RunningModel> {
        let entries = self.entries();
        let mut running: Vec<RunningModel> = entries
            .values()
            .map(|entry| {
                let (queue_depth, active_requests) = match &entry.model {
                    LoadedModel::Chat(handle) => {
                        let stats = handle.stats();
                        (stats.queue_depth, stats.active_sequences)
                    }
                    LoadedModel::Embedding(_) => (0, 0),
                };
                RunningModel {
                    spec: entry.spec.clone(),
                    loaded_at: entry.loaded_at,
                    last_used: entry.last_used,
                    expires_at: entry.expires_at(),
                    queue_depth,
                    active_requests,
                }
            })
            .collect();
        running.sort_by_key(|model| std::cmp::Reverse(model.last_used));
        running
    }

    /// The loaded chat model's handle, if loaded (for statistics).
    pub fn loaded(&self, name: &str) -> Option<LoadedModel> {
        self.entries().get(name).map(|entry| entry.model.clone())
    }
}

impl LoadedModel {
    pub fn kind(&self) -> ModelKind {
        match self {
            LoadedModel::Chat(_) => ModelKind::Chat,
            LoadedModel::Embedding(_) => ModelKind::Embedding,
        }
    }

    pub fn chat(self, name: &str) -> Result<ModelHandle, InferenceError> {
        match self {
            LoadedModel::Chat(handle) => Ok(handle),
            LoadedModel::Embedding(_) => Err(InferenceError::WrongKind {
                name: name.to_string(),
                expected: "chat",
                actual: with_article(ModelKind::Embedding),
            }),
        }
    }

    pub fn embedding(self, name: &str) -> Result<EmbeddingService, InferenceError> {
        match self {
            LoadedModel::Embedding(service) => Ok(service),
            LoadedModel::Chat(_) => Err(InferenceError::WrongKind {
                name: name.to_string(),
                expected: "embedding",
                actual: with_article(ModelKind::Chat),
            }),
        }
    }
}

/// Loads a model on a blocking thread: reading weights and creating contexts take long enough
/// to stall the async workers.
async fn load(spec: ModelSpec, config: PoolConfig) -> Result<LoadedModel, InferenceError> {
    let name = spec.name.clone();
    let joined = tokio::task::spawn_blocking(move || -> Result<LoadedModel, InferenceError> {
        match spec.kind {
            ModelKind::Chat => {
                let model = Model::load(&spec.path, &EngineConfig::from(config.engine))?;
                Ok(LoadedModel::Chat(ModelHandle::start(&model)?))
            }
            ModelKind::Embedding => {
                let model = EmbeddingModel::load(&spec.path)?;
                Ok(LoadedModel::Embedding(EmbeddingService::start(
                    model,
                    config.embedding,
                )?))
            }
        }
    })
    .await;
    match joined {
        Ok(result) => result,
        Err(error) => Err(InferenceError::LoadFailed {
            name,
            reason: format!("the loading thread panicked: {error}"),
        }),
    }
}

impl ModelSpec {
    /// The spec of a registered model's current version.
    pub fn of(manifest: &hearth_models::Manifest) -> ModelSpec {
        ModelSpec {
            name: manifest.reference.to_string(),
            kind: manifest.current.kind,
            path: manifest.current.path.clone(),
            size_bytes: manifest.current.size_bytes,
        }
    }
}
