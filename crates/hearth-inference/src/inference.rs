//! The facade the HTTP handlers call: name resolution against the model registry, model
//! acquisition from the pool, and error hygiene.

use std::sync::Arc;

use hearth_embed::EmbeddingService;
use hearth_engine::{EngineError, ModelHandle};
use hearth_models::{Manifest, ModelReference, ModelsError, Registry, Removed};

use crate::error::InferenceError;
use crate::pool::{KeepAlive, LoadedModel, ModelPool, ModelSpec, RunningModel};

/// The inference service: the registry of models and the pool that runs them.
pub struct Inference {
    registry: Registry,
    pool: Arc<ModelPool>,
}

impl Inference {
    pub fn new(pool: Arc<ModelPool>, registry: Registry) -> Inference {
        Inference { registry, pool }
    }

    pub fn pool(&self) -> &Arc<ModelPool> {
        &self.pool
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every registered model, sorted by name. The registry is read on each call (a few small
    /// files), so models pulled by the CLI while the server runs appear at once.
    pub fn models(&self) -> Result<Vec<Manifest>, InferenceError> {
        let mut models = self.registry.list().map_err(registry_error)?;
        models.sort_by_key(|manifest| manifest.reference.to_string());
        Ok(models)
    }

    /// One model by the name a client typed (`gemma3` is `gemma3:latest`).
    pub fn describe(&self, name: &str) -> Result<Manifest, InferenceError> {
        let reference = ModelReference::parse(name)
            .map_err(|_| InferenceError::ModelNotFound(name.to_string()))?;
        self.registry.show(&reference).map_err(|error| match error {
            ModelsError::NotFound(_) => InferenceError::ModelNotFound(name.to_string()),
            other => registry_error(other),
        })
    }

    async fn acquire(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(Manifest, LoadedModel), InferenceError> {
        let manifest = self.describe(name)?;
        let loaded = self
            .pool
            .acquire(&ModelSpec::of(&manifest), keep_alive)
            .await?;
        Ok((manifest, loaded))
    }

    /// The running chat model for `name`, loaded if needed.
    pub async fn chat_model(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(Manifest, ModelHandle), InferenceError> {
        let (manifest, loaded) = self.acquire(name, keep_alive).await?;
        let handle = loaded.chat(&manifest.reference.to_string())?;
        Ok((manifest, handle))
    }

    /// The running embedding model for `name`, loaded if needed.
    pub async fn embedding_model(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(Manifest, EmbeddingService), InferenceError> {
        let (manifest, loaded) = self.acquire(name, keep_alive).await?;
        let service = loaded.embedding(&manifest.reference.to_string())?;
        Ok((manifest, service))
    }

    /// Loads a model without using it (Ollama's empty-prompt load, `models.preload`).
    pub async fn load(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(Manifest, LoadedModel), InferenceError> {
        self.acquire(name, keep_alive).await
    }

    /// Unloads a model now; in-flight requests finish first on their own handle.
    pub fn unload(&self, name: &str) -> Result<bool, InferenceError> {
        let manifest = self.describe(name)?;
        Ok(self.pool.unload(&manifest.reference.to_string()))
    }

    /// The loaded models with their registry entries, most recently used first.
    pub fn running(&self) -> Vec<(RunningModel, Option<Manifest>)> {
        self.pool
            .running()
            .into_iter()
            .map(|running| {
                let manifest = self.describe(&running.spec.name).ok();
                (running, manifest)
            })
            .collect()
    }

    /// Removes a model and all its versions from the registry (deleting blobs nothing else
    /// uses) and unloads it. The registry goes first: once the name is gone no request can load
    /// it again, and requests already running finish on their own handle.
    pub async fn remove(&self, reference: &ModelReference) -> Result<Removed, InferenceError> {
        let registry = self.registry.clone();
        let target = reference.clone();
        let removed = blocking(move || registry.remove(&target)).await?;
        self.pool.unload(&reference.to_string());
        Ok(removed)
    }

    /// Gives the current version of `source` the name `destination` too (`ollama cp`).
    pub async fn copy(
        &self,
        source: &ModelReference,
        destination: &ModelReference,
    ) -> Result<Manifest, InferenceError> {
        let registry = self.registry.clone();
        let (source, destination) = (source.clone(), destination.clone());
        blocking(move || registry.copy(&source, &destination)).await
    }

    /// Converts an engine error for the client, dropping the model from the pool when the
    /// error means its engine is broken, so that the next request gets a fresh one.
    pub fn engine_error(&self, name: &str, error: EngineError) -> InferenceError {
        if matches!(
            error,
            EngineError::SchedulerStopped | EngineError::Decode(_)
        ) {
            self.pool.report_failure(name, &error.to_string());
        }
        InferenceError::Engine(error)
    }
}

fn registry_error(error: ModelsError) -> InferenceError {
    match error {
        ModelsError::NotFound(name) => InferenceError::ModelNotFound(name),
        other => InferenceError::Registry(other.to_string()),
    }
}

/// Runs a registry operation on the blocking pool: it is synchronous file I/O (and deleting a
/// blob of gigabytes can take a while).
async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, ModelsError> + Send + 'static,
) -> Result<T, InferenceError> {
    tokio::task::spawn_blocking(operation)
        .await
        .map_err(|error| {
            InferenceError::Registry(format!("the registry operation panicked: {error}"))
        })?
        .map_err(registry_error)
}
