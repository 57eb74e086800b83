//! The facade the HTTP handlers call: name resolution, model acquisition and error hygiene.

use std::sync::{Arc, RwLock};

use hearth_embed::EmbeddingService;
use hearth_engine::{EngineError, ModelHandle};

use crate::catalog::{ModelDescription, canonical_name};
use crate::error::InferenceError;
use crate::pool::{KeepAlive, LoadedModel, ModelPool, RunningModel};

/// The inference service: the catalogue of models and the pool that runs them.
pub struct Inference {
    catalog: RwLock<Vec<ModelDescription>>,
    pool: Arc<ModelPool>,
}

impl Inference {
    pub fn new(pool: Arc<ModelPool>, catalog: Vec<ModelDescription>) -> Inference {
        Inference {
            catalog: RwLock::new(catalog),
            pool,
        }
    }

    pub fn pool(&self) -> &Arc<ModelPool> {
        &self.pool
    }

    /// Replaces the catalogue (after a pull, copy or delete).
    pub fn set_catalog(&self, catalog: Vec<ModelDescription>) {
        *self
            .catalog
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = catalog;
    }

    /// Every model that can be served, sorted by name.
    pub fn models(&self) -> Result<Vec<ModelDescription>, InferenceError> {
        let mut models = self
            .catalog
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        models.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(models)
    }

    /// One model by the name a client typed (`gemma3` is `gemma3:latest`).
    pub fn describe(&self, name: &str) -> Result<ModelDescription, InferenceError> {
        let wanted = canonical_name(name);
        self.catalog
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .find(|model| model.name == wanted)
            .cloned()
            .ok_or_else(|| InferenceError::ModelNotFound(name.to_string()))
    }

    /// The running chat model for `name`, loaded if needed.
    pub async fn chat_model(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(ModelDescription, ModelHandle), InferenceError> {
        let description = self.describe(name)?;
        let loaded = self.pool.acquire(&description.spec(), keep_alive).await?;
        let handle = loaded.chat(&description.name)?;
        Ok((description, handle))
    }

    /// The running embedding model for `name`, loaded if needed.
    pub async fn embedding_model(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(ModelDescription, EmbeddingService), InferenceError> {
        let description = self.describe(name)?;
        let loaded = self.pool.acquire(&description.spec(), keep_alive).await?;
        let service = loaded.embedding(&description.name)?;
        Ok((description, service))
    }

    /// Loads a model without using it (Ollama's empty-prompt load).
    pub async fn load(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(ModelDescription, LoadedModel), InferenceError> {
        let description = self.describe(name)?;
        let loaded = self.pool.acquire(&description.spec(), keep_alive).await?;
        Ok((description, loaded))
    }

    pub fn unload(&self, name: &str) -> Result<bool, InferenceError> {
        let description = self.describe(name)?;
        Ok(self.pool.unload(&description.name))
    }

    pub fn running(&self) -> Vec<(RunningModel, Option<ModelDescription>)> {
        self.pool
            .running()
            .into_iter()
            .map(|running| {
                let description = self.describe(&running.spec.name).ok();
                (running, description)
            })
            .collect()
    }

    /// Converts an engine error for the client, dropping the model from the pool when the
    /// error means its engine is broken, so the next request gets a fresh one.
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
